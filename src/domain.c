/*
 * Domains: domain ids, address widths, kinds (translated, identity, pass-through,
 * blocked), attach/detach and strict map/unmap (policy: what to flush and when).
 */
#include "dmar_internal.h"

#define GIB (1ull << 30)

static int did_alloc(struct dmar_unit *u, uint16_t *did)
{
	unsigned words = did_map_words(u);
	for (unsigned n = 0; n < words; n++) {
		unsigned w = (u->did_hint + n) % words;
		uint64_t free = ~u->did_map[w];
		if (!free)
			continue;
		unsigned bit = (unsigned)dmar_ffs64(free);
		unsigned id = w * 64 + bit;
		if (id >= u->ndomains)
			continue;
		u->did_map[w] |= 1ull << bit;
		u->did_hint = w;
		*did = (uint16_t)id;
		return DMAR_OK;
	}
	return DMAR_ENOSPC;
}

static void did_free(struct dmar_unit *u, uint16_t did)
{
	u->did_map[did / 64] &= ~(1ull << (did % 64));
}

/* Levels for a width: the smallest supported AGAW >= width (39 -> 3, 48 -> 4, 57 -> 5). */
static int pick_width(const struct dmar_unit *u, unsigned want, unsigned *width, unsigned *levels)
{
	static const struct { unsigned bits, sagaw, levels; } ws[] = {
		{ 39, VTD_SAGAW_39, 3 }, { 48, VTD_SAGAW_48, 4 }, { 57, VTD_SAGAW_57, 5 },
	};
	if (want == 0)
		want = 39;
	if (want > 64)
		return DMAR_ENOTSUP;
	for (unsigned i = 0; i < DMAR_ARRAY_SIZE(ws); i++) {
		if (ws[i].bits < want || !(u->sagaw & ws[i].sagaw))
			continue;
		*levels = ws[i].levels;
		*width = ws[i].bits < u->mgaw ? ws[i].bits : u->mgaw;
		if (*width < want)
			return DMAR_ENOTSUP;
		return DMAR_OK;
	}
	return DMAR_ENOTSUP;
}

static int identity_fill(struct dmar_domain *dom, uint64_t limit)
{
	if (limit == 0 || (limit & (DMAR_PAGE_SIZE - 1)))
		return DMAR_EINVAL;
	if (dom->width < 64 && limit > (1ull << dom->width))
		return DMAR_ERANGE;
	return pgtable_map(&dom->pt, 0, 0, limit, DMAR_PROT_RW);
}

int dmar_domain_create(struct dmar_unit *u, const struct dmar_domain_params *p,
		       struct dmar_domain **out)
{
	const struct dmar_os *os = &u->sys->os;
	struct dmar_domain *dom;
	unsigned width = 0, levels = 0;
	bool lock_failed;
	int rc;
	*out = NULL;
	if (!p || p->kind > DMAR_DOMAIN_BLOCKED)
		return DMAR_EINVAL;
	rc = pick_width(u, p->width, &width, &levels);
	if (rc)
		return rc;
	dom = os_alloc(os, sizeof(*dom));
	if (!dom)
		return DMAR_ENOMEM;
	dom->unit = u;
	dom->kind = p->kind;
	dom->width = width;
	dom->lock = os_lock_create(os, &lock_failed);
	if (lock_failed) {
		os_free(os, dom, sizeof(*dom));
		return DMAR_ENOMEM;
	}
	bool pt_hw = (u->ecap & VTD_ECAP_PT) != 0;
	dom->passthrough_tt = p->kind == DMAR_DOMAIN_PASSTHROUGH && pt_hw;
	if (!dom->passthrough_tt) {
		rc = pgtable_init(&dom->pt, os, levels, (unsigned)VTD_CAP_SLLPS(u->cap) & 3u,
				  u->coherent);
		if (rc)
			goto fail;
		dom->has_pgtable = true;
	}
	if (p->kind == DMAR_DOMAIN_IDENTITY ||
	    (p->kind == DMAR_DOMAIN_PASSTHROUGH && !pt_hw)) {
		uint64_t limit = p->identity_limit;
		if (!limit && p->kind == DMAR_DOMAIN_PASSTHROUGH)
			limit = 4 * GIB; /* documented default when the unit has no PT */
		rc = identity_fill(dom, limit);
		if (rc)
			goto fail;
	}
	os_lock(os, u->lock);
	rc = did_alloc(u, &dom->did);
	if (!rc) {
		dom->next = u->domains;
		u->domains = dom;
	}
	os_unlock(os, u->lock);
	if (rc) {
		dmar_log(u->sys, DMAR_LOG_ERR, "dmar%u: out of domain ids (%u)", u->index,
			 u->ndomains);
		goto fail;
	}
	*out = dom;
	return DMAR_OK;
fail:
	if (dom->has_pgtable)
		pgtable_fini(&dom->pt);
	os_lock_destroy(os, dom->lock);
	os_free(os, dom, sizeof(*dom));
	return rc;
}

/* Unlinks and frees a domain (unit lock held, or the unit is being destroyed). */
void domain_free(struct dmar_domain *dom)
{
	struct dmar_unit *u = dom->unit;
	const struct dmar_os *os = &u->sys->os;
	for (struct dmar_domain **pp = &u->domains; *pp; pp = &(*pp)->next) {
		if (*pp == dom) {
			*pp = dom->next;
			break;
		}
	}
	did_free(u, dom->did);
	if (dom->has_pgtable)
		pgtable_fini(&dom->pt);
	os_lock_destroy(os, dom->lock);
	os_free(os, dom, sizeof(*dom));
}

int dmar_domain_destroy(struct dmar_domain *dom)
{
	struct dmar_unit *u = dom->unit;
	const struct dmar_os *os = &u->sys->os;
	os_lock(os, u->lock);
	if (dom->ndevices) {
		os_unlock(os, u->lock);
		return DMAR_EBUSY;
	}
	domain_free(dom);
	os_unlock(os, u->lock);
	return DMAR_OK;
}

void dmar_domain_get_info(const struct dmar_domain *dom, struct dmar_domain_info *info)
{
	dmar_memset(info, 0, sizeof(*info));
	info->did = dom->did;
	info->kind = dom->kind;
	info->width = dom->width;
	info->levels = dom->has_pgtable ? dom->pt.levels : 0;
	info->passthrough_tt = dom->passthrough_tt;
	info->devices = dom->ndevices;
	info->table_pages = dom->has_pgtable ? dom->pt.pages : 0;
}

struct dmar_unit *dmar_domain_unit(struct dmar_domain *dom)
{
	return dom->unit;
}

static struct dmar_domain *domain_by_did(struct dmar_unit *u, int did)
{
	for (struct dmar_domain *d = u->domains; d; d = d->next)
		if (d->did == did)
			return d;
	return NULL;
}

struct dmar_domain *dmar_device_domain(struct dmar_unit *u, uint16_t sid)
{
	os_lock(&u->sys->os, u->lock);
	int did = context_did(u, sid);
	struct dmar_domain *d = did < 0 ? NULL : domain_by_did(u, did);
	os_unlock(&u->sys->os, u->lock);
	return d;
}

unsigned dmar_domain_reserved_ranges(const struct dmar_domain *dom, struct dmar_range *out,
				     unsigned max)
{
	for (unsigned i = 0; i < dom->nreserved && i < max; i++)
		out[i] = dom->reserved[i];
	return dom->nreserved;
}

/* Identity-maps the RMRRs naming the device into a translated domain (8.4: the device
 * may DMA there on the firmware's behalf at any time). Returns 0 or DMAR_ENOMEM; ranges
 * it cannot use are logged and skipped. */
static int map_rmrrs(struct dmar_domain *dom, uint16_t sid)
{
	struct dmar_system *sys = dom->unit->sys;
	struct dmar_acpi_rmrr r;
	unsigned cursor = 0;
	if (!sys->table || dom->kind != DMAR_DOMAIN_TRANSLATED)
		return DMAR_OK;
	while (dmar_acpi_device_rmrr_next(sys->table, dom->unit->segment, VTD_SID_BUS(sid),
					  (uint8_t)(VTD_SID_DEVFN(sid) >> 3),
					  (uint8_t)(VTD_SID_DEVFN(sid) & 7), sys->topology,
					  sys->topology_ctx, &cursor, &r) == DMAR_OK) {
		if (r.limit < r.base || r.limit == UINT64_MAX) {
			dmar_log(sys, DMAR_LOG_WARN,
				 "RMRR at table offset 0x%x: empty range 0x%llx-0x%llx; skipped",
				 r.offset, (unsigned long long)r.base, (unsigned long long)r.limit);
			continue;
		}
		struct dmar_range rg = { r.base & ~(uint64_t)(DMAR_PAGE_SIZE - 1),
					 (r.limit | (DMAR_PAGE_SIZE - 1)) + 1 };
		if (rg.start != r.base || rg.end != r.limit + 1)
			dmar_log(sys, DMAR_LOG_WARN,
				 "RMRR at table offset 0x%x: 0x%llx-0x%llx not page-aligned; "
				 "mapped as 0x%llx-0x%llx", r.offset, (unsigned long long)r.base,
				 (unsigned long long)r.limit, (unsigned long long)rg.start,
				 (unsigned long long)rg.end - 1);
		bool known = false;
		for (unsigned i = 0; i < dom->nreserved; i++)
			known = known || (dom->reserved[i].start == rg.start &&
					  dom->reserved[i].end == rg.end);
		if (known)
			continue;
		if (dom->nreserved == DMAR_MAX_RESERVED) {
			dmar_log(sys, DMAR_LOG_WARN, "domain %u: more than %u RMRRs; 0x%llx skipped",
				 dom->did, DMAR_MAX_RESERVED, (unsigned long long)rg.start);
			continue;
		}
		int rc = dmar_map(dom, rg.start, rg.start, rg.end - rg.start, DMAR_PROT_RW);
		if (rc == DMAR_ENOMEM)
			return rc;
		if (rc) {
			dmar_log(sys, DMAR_LOG_WARN,
				 "RMRR 0x%llx-0x%llx for %02x:%02x.%x: %s; skipped",
				 (unsigned long long)rg.start, (unsigned long long)rg.end - 1,
				 VTD_SID_BUS(sid), VTD_SID_DEVFN(sid) >> 3, VTD_SID_DEVFN(sid) & 7,
				 dmar_strerror(rc));
			continue;
		}
		dom->reserved[dom->nreserved++] = rg;
	}
	return DMAR_OK;
}

/* Takes back the RMRR maps made since there were `keep` of them. */
static void unmap_rmrrs(struct dmar_domain *dom, unsigned keep)
{
	while (dom->nreserved > keep) {
		struct dmar_range *rg = &dom->reserved[--dom->nreserved];
		(void)dmar_unmap(dom, rg->start, rg->end - rg->start);
	}
}

int dmar_domain_attach(struct dmar_domain *dom, uint16_t sid)
{
	struct dmar_unit *u = dom->unit;
	const struct dmar_os *os = &u->sys->os;
	unsigned reserved_before = dom->nreserved;
	int rc = map_rmrrs(dom, sid);
	if (rc) {
		unmap_rmrrs(dom, reserved_before);
		return rc;
	}
	os_lock(os, u->lock);
	int old_did = context_did(u, sid);
	if (old_did == dom->did) {
		os_unlock(os, u->lock);
		return DMAR_EEXIST;
	}
	struct dmar_domain *old = old_did < 0 ? NULL : domain_by_did(u, old_did);
	rc = context_set(u, sid, dom);
	if (rc == DMAR_OK) {
		dom->ndevices++;
		if (old)
			old->ndevices--;
		if (!(unit_read32(u, VTD_GSTS_REG) & VTD_GSTS_TES))
			rc = unit_gcmd_enable(u, (uint32_t)VTD_GCMD_TE, (uint32_t)VTD_GSTS_TES,
					      true, "translation enable");
		if (rc) {
			/* Translation could not be turned on: undo the attach. */
			(void)context_clear(u, sid);
			dom->ndevices--;
			if (old)
				old->ndevices++;
		}
	}
	os_unlock(os, u->lock);
	if (rc)
		unmap_rmrrs(dom, reserved_before);
	return rc;
}

int dmar_domain_detach(struct dmar_domain *dom, uint16_t sid)
{
	struct dmar_unit *u = dom->unit;
	const struct dmar_os *os = &u->sys->os;
	int rc;
	os_lock(os, u->lock);
	if (context_did(u, sid) != dom->did) {
		os_unlock(os, u->lock);
		return DMAR_ENOENT;
	}
	rc = context_clear(u, sid);
	if (rc != DMAR_ENOENT)
		dom->ndevices--; /* the entry is gone even if the flush timed out */
	os_unlock(os, u->lock);
	return rc;
}

static int check_range(const struct dmar_domain *dom, uint64_t iova, uint64_t size)
{
	if (!size || ((iova | size) & (DMAR_PAGE_SIZE - 1)))
		return DMAR_EINVAL;
	if (iova + size < iova)
		return DMAR_ERANGE;
	if (dom->width < 64 && iova + size > (1ull << dom->width))
		return DMAR_ERANGE;
	return DMAR_OK;
}

/* Invalidates what a table change reported and waits for it (IH=1 only when no
 * paging-structure entry changed). The region of a detached kept table, when there is
 * one, joins the range in one invalidation if the two lie close together (the union at
 * most twice their sizes: an unmap next to the table it releases), else gets its own.
 * Domain lock held. */
static int flush_iotlb(struct dmar_domain *dom, const struct pgtable_flush *fl)
{
	struct dmar_unit *u = dom->unit;
	const struct dmar_os *os = &u->sys->os;
	uint64_t start = fl->start, end = fl->end, ts = fl->tables_start, te = fl->tables_end;
	bool ih = !fl->tables_changed;

	if (ts != te) {
		uint64_t us = dmar_min_u64(start, ts), ue = dmar_max_u64(end, te);
		if (ue - us <= 2 * ((end - start) + (te - ts))) {
			start = us;
			end = ue;
			ih = false;
			ts = te = 0;
		}
	}
	os_lock(os, u->lock);
	int rc = inval_iotlb_range(u, dom->did, start, end, ih);
	if (!rc && ts != te)
		rc = inval_iotlb_range(u, dom->did, ts, te, false);
	if (!rc)
		rc = inval_sync(u);
	os_unlock(os, u->lock);
	return rc;
}

int dmar_map(struct dmar_domain *dom, uint64_t iova, uint64_t phys, uint64_t size,
	     unsigned prot)
{
	struct dmar_unit *u = dom->unit;
	const struct dmar_os *os = &u->sys->os;
	if (dom->kind != DMAR_DOMAIN_TRANSLATED)
		return DMAR_EINVAL;
	if (!prot || (prot & ~DMAR_PROT_RW) || (phys & (DMAR_PAGE_SIZE - 1)))
		return DMAR_EINVAL;
	int rc = check_range(dom, iova, size);
	if (rc)
		return rc;
	os_lock(os, dom->lock);
	if (u->cm) {
		/* Caching mode: the unit may have cached the not-present entries (6.1). */
		struct pgtable_flush fl;
		rc = pgtable_map_flush(&dom->pt, iova, phys, size, prot, &fl);
		if (rc == DMAR_OK) {
			rc = flush_iotlb(dom, &fl);
			if (rc)
				(void)pgtable_unmap(&dom->pt, iova, size, NULL);
		}
	} else {
		rc = pgtable_map(&dom->pt, iova, phys, size, prot);
		if (rc == DMAR_OK && u->rwbf) {
			os_lock(os, u->lock);
			rc = unit_flush_write_buffer(u);
			os_unlock(os, u->lock);
			if (rc)
				(void)pgtable_unmap(&dom->pt, iova, size, NULL);
		}
	}
	os_unlock(os, dom->lock);
	return rc;
}

int dmar_unmap(struct dmar_domain *dom, uint64_t iova, uint64_t size)
{
	struct dmar_unit *u = dom->unit;
	const struct dmar_os *os = &u->sys->os;
	struct pgtable_flush fl;
	if (dom->kind != DMAR_DOMAIN_TRANSLATED)
		return DMAR_EINVAL;
	int rc = check_range(dom, iova, size);
	if (rc)
		return rc;
	os_lock(os, dom->lock);
	rc = pgtable_unmap(&dom->pt, iova, size, &fl);
	if (rc == DMAR_OK) {
		rc = flush_iotlb(dom, &fl);
		/* Detached table pages are freed only now that the unit has let go of them
		 * (on a timeout too: the unit is then considered dead). */
		pgtable_flush_done(&dom->pt, &fl);
	}
	os_unlock(os, dom->lock);
	return rc;
}

int dmar_lookup(struct dmar_domain *dom, uint64_t iova, uint64_t *phys, unsigned *prot)
{
	const struct dmar_os *os = &dom->unit->sys->os;
	if (dom->passthrough_tt) {
		*phys = iova;
		*prot = DMAR_PROT_RW;
		return DMAR_OK;
	}
	if (!dom->has_pgtable)
		return DMAR_ENOENT;
	uint64_t page_size;
	os_lock(os, dom->lock);
	int rc = pgtable_lookup(&dom->pt, iova, phys, prot, &page_size);
	os_unlock(os, dom->lock);
	return rc;
}
