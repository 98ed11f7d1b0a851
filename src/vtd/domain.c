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

/* Table depth and IOVA width of a new domain: the fewest levels SAGAW offers whose
 * AGAW covers the width asked for, the width capped at MGAW (addresses above it fault).
 * Width 0 asks for the default: 39 bits, or MGAW when the unit has fewer (36-bit
 * chipsets). A unit offering only 4-level tables gets them for 39 bits too. */
static int pick_width(const struct dmar_unit *u, unsigned want, unsigned *width, unsigned *levels)
{
	static const struct { unsigned bits, sagaw, levels; } ws[] = {
		{ 39, VTD_SAGAW_39, 3 }, { 48, VTD_SAGAW_48, 4 }, { 57, VTD_SAGAW_57, 5 },
	};
	if (want == 0)
		want = u->mgaw < 39 ? u->mgaw : 39;
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
	return dmar__pgtable_map(&dom->pt, 0, 0, limit, DMAR_PROT_RW);
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
	dom = dmar__os_alloc(os, sizeof(*dom));
	if (!dom)
		return DMAR_ENOMEM;
	dom->unit = u;
	dom->kind = p->kind;
	dom->caller_holds_deferred = p->caller_holds_deferred;
	dom->width = width;
	dom->lock = dmar__os_lock_create(os, &lock_failed);
	if (lock_failed) {
		dmar__os_free(os, dom, sizeof(*dom));
		return DMAR_ENOMEM;
	}
	bool pt_hw = (u->ecap & VTD_ECAP_PT) != 0;
	dom->passthrough_tt = p->kind == DMAR_DOMAIN_PASSTHROUGH && pt_hw;
	if (!dom->passthrough_tt) {
		rc = dmar__pgtable_init(&dom->pt, os, levels, (unsigned)VTD_CAP_SLLPS(u->cap) & 3u,
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
		dmar__log(u->sys, DMAR_LOG_ERR, "dmar%u: out of domain ids (%u)", u->index,
			 u->ndomains);
		goto fail;
	}
	*out = dom;
	return DMAR_OK;
fail:
	if (dom->has_pgtable)
		dmar__pgtable_fini(&dom->pt);
	dmar__os_lock_destroy(os, dom->lock);
	dmar__os_free(os, dom, sizeof(*dom));
	return rc;
}

/* Frees what a domain holds, owed table pages included (no device is attached: if
 * the invalidation they wait for never completed, the unit is not walking for anyone
 * of this domain any more, or is dead). */
static void domain_release(struct dmar_domain *dom)
{
	const struct dmar_os *os = &dom->unit->sys->os;
	while (dom->windows) {
		struct dmar_window *w = dom->windows;
		dom->windows = w->next;
		dmar__os_free(os, w, sizeof(*w));
	}
	if (dom->has_pgtable) {
		dmar__pgtable_flush_done(&dom->pt, &dom->owed.fl);
		dmar__pgtable_flush_done(&dom->pt, &dom->deferred.fl);
		dmar__pgtable_fini(&dom->pt);
	}
	dmar__os_lock_destroy(os, dom->lock);
	dmar__os_free(os, dom, sizeof(*dom));
}

/* Unlinks a domain and frees its id (unit lock held). */
static void domain_unlink(struct dmar_domain *dom)
{
	struct dmar_unit *u = dom->unit;
	for (struct dmar_domain **pp = &u->domains; *pp; pp = &(*pp)->next) {
		if (*pp == dom) {
			*pp = dom->next;
			break;
		}
	}
	did_free(u, dom->did);
}

/* Unlinks and frees a domain (unit lock held, or the unit is being destroyed). */
void dmar__domain_free(struct dmar_domain *dom)
{
	domain_unlink(dom);
	domain_release(dom);
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
	domain_unlink(dom);
	bool pinned = dom->pins != 0;
	dom->dying = pinned;
	os_unlock(os, u->lock);
	if (!pinned)
		domain_release(dom);
	return DMAR_OK;
}

static struct dmar_domain *domain_by_did(struct dmar_unit *u, int did)
{
	for (struct dmar_domain *d = u->domains; d; d = d->next)
		if (d->did == did)
			return d;
	return NULL;
}

struct dmar_domain *dmar__domain_pin(struct dmar_unit *u, int did)
{
	os_lock(&u->sys->os, u->lock);
	struct dmar_domain *d = did < 0 ? NULL : domain_by_did(u, did);
	if (d)
		d->pins++;
	os_unlock(&u->sys->os, u->lock);
	return d;
}

void dmar__domain_unpin(struct dmar_domain *dom)
{
	struct dmar_unit *u = dom->unit;
	os_lock(&u->sys->os, u->lock);
	bool release = --dom->pins == 0 && dom->dying;
	os_unlock(&u->sys->os, u->lock);
	if (release)
		domain_release(dom);
}

void dmar_domain_get_info(const struct dmar_domain *dom, struct dmar_domain_info *info)
{
	const struct dmar_os *os = &dom->unit->sys->os;
	dmar_memset(info, 0, sizeof(*info));
	info->did = dom->did;
	info->kind = dom->kind;
	info->width = dom->width;
	info->levels = dom->has_pgtable ? dom->pt.levels : 0;
	info->passthrough_tt = dom->passthrough_tt;
	/* Another thread may be mapping (the table's page count changes under the domain
	 * lock) or attaching (the device count, under the unit lock) meanwhile. */
	os_lock(os, dom->lock);
	os_lock(os, dom->unit->lock);
	info->devices = dom->ndevices;
	os_unlock(os, dom->unit->lock);
	info->table_pages = dom->has_pgtable ? dom->pt.pages : 0;
	os_unlock(os, dom->lock);
}

struct dmar_unit *dmar_domain_unit(struct dmar_domain *dom)
{
	return dom->unit;
}

struct dmar_domain *dmar_device_domain(struct dmar_unit *u, uint16_t sid)
{
	os_lock(&u->sys->os, u->lock);
	int did = dmar__context_did(u, sid);
	struct dmar_domain *d = did < 0 ? NULL : domain_by_did(u, did);
	os_unlock(&u->sys->os, u->lock);
	return d;
}

unsigned dmar_domain_reserved_ranges(const struct dmar_domain *dom, struct dmar_range *out,
				     unsigned max)
{
	const struct dmar_os *os = &dom->unit->sys->os;
	os_lock(os, dom->lock);
	unsigned n = dom->nreserved;
	for (unsigned i = 0; i < n && i < max; i++)
		out[i] = dom->reserved[i];
	os_unlock(os, dom->lock);
	return n;
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

/* The arguments of a map or unmap: a translated domain, a page-aligned range in it. */
static int check_translated_range(const struct dmar_domain *dom, uint64_t iova, uint64_t size)
{
	if (dom->kind != DMAR_DOMAIN_TRANSLATED)
		return DMAR_EINVAL;
	return check_range(dom, iova, size);
}

/* Invalidates what a table change reported and waits for it (IH=1 only when no
 * paging-structure entry changed). The region of a detached kept table, when there is
 * one, joins the range in one invalidation if the two lie close together (the union at
 * most twice their sizes: an unmap next to the table it releases), else gets its own.
 * Domain lock held. */
static int flush_iotlb_start(struct dmar_domain *dom, const struct pgtable_flush *fl,
			     uint32_t *ticket)
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
	int rc = dmar__inval_iotlb_range(u, dom->did, start, end, ih);
	if (!rc && ts != te)
		rc = dmar__inval_iotlb_range(u, dom->did, ts, te, false);
	if (!rc)
		rc = dmar__inval_sync_start(u, ticket);
	os_unlock(os, u->lock);
	return rc;
}

/* flush_iotlb_start, then its wait (both with the domain lock held). */
static int flush_iotlb(struct dmar_domain *dom, const struct pgtable_flush *fl)
{
	uint32_t ticket;
	int rc = flush_iotlb_start(dom, fl, &ticket);
	return rc ? rc : dmar__inval_sync_wait(dom->unit, ticket);
}

int dmar__domain_invalidate(struct dmar_domain *dom, uint64_t start, uint64_t end)
{
	struct pgtable_flush fl = { .start = start, .end = end };
	return flush_iotlb(dom, &fl);
}

static inline int map_announce(struct dmar_domain *dom, const struct pgtable_flush *fl)
{
	struct dmar_unit *u = dom->unit;
	if (u->cm)
		return flush_iotlb(dom, fl);
	if (!u->rwbf)
		return DMAR_OK;
	const struct dmar_os *os = &u->sys->os;
	os_lock(os, u->lock);
	int rc = dmar__unit_flush_write_buffer(u);
	os_unlock(os, u->lock);
	return rc;
}

int dmar__domain_map_announce(struct dmar_domain *dom, const struct pgtable_flush *fl)
{
	return map_announce(dom, fl);
}

/* Whether [iova, iova + size) overlaps a window (domain lock held). */
static bool in_window(const struct dmar_domain *dom, uint64_t iova, uint64_t size)
{
	for (const struct dmar_window *w = dom->windows; w; w = w->next)
		if (iova < w->base + DMAR_WINDOW_SIZE && iova + size > w->base)
			return true;
	return false;
}

/* Completes the invalidation an earlier failure left owed, then frees the table pages
 * it kept. Domain lock held. Returns its error when it fails again (still owed). */
static int owed_settle(struct dmar_domain *dom)
{
	if (!dom->owed.pending)
		return DMAR_OK;
	int rc = flush_iotlb(dom, &dom->owed.fl);
	if (rc)
		return rc;
	dmar__pgtable_flush_done(&dom->pt, &dom->owed.fl);
	dmar_memset(&dom->owed.fl, 0, sizeof(dom->owed.fl));
	dom->owed.pending = false;
	return DMAR_OK;
}

/* Keeps an invalidation that failed: its pages stay allocated until one covering it
 * completes. A failed unmap's range is listed so that retrying it succeeds then (past
 * DMAR_MAX_OWED failed unmaps the last listed range grows to cover the new one). */
static void owed_add(struct dmar_domain *dom, struct pgtable_flush *fl, const struct dmar_range *r)
{
	dmar__pgtable_flush_merge(&dom->pt, &dom->owed.fl, fl);
	dom->owed.pending = true;
	if (!r)
		return;
	if (dom->owed.nranges < DMAR_MAX_OWED) {
		dom->owed.ranges[dom->owed.nranges++] = *r;
		return;
	}
	struct dmar_range *last = &dom->owed.ranges[DMAR_MAX_OWED - 1];
	last->start = dmar_min_u64(last->start, r->start);
	last->end = dmar_max_u64(last->end, r->end);
}

/* A retry of an unmap that failed: true (and forgotten) when [iova, iova + size) lies in
 * a listed range whose invalidation has completed since. */
static bool owed_retry(struct dmar_domain *dom, uint64_t iova, uint64_t size)
{
	for (unsigned i = 0; i < dom->owed.nranges; i++) {
		struct dmar_range *r = &dom->owed.ranges[i];
		if (iova >= r->start && iova + size <= r->end) {
			*r = dom->owed.ranges[--dom->owed.nranges];
			return true;
		}
	}
	return false;
}

/* Takes a mapping just made back out after its invalidation or write-buffer flush
 * failed; its pages wait for an invalidation like an unmap's. Domain lock held. */
static void map_undo(struct dmar_domain *dom, uint64_t iova, uint64_t size)
{
	struct pgtable_flush fl;
	if (dmar__pgtable_unmap(&dom->pt, iova, size, &fl) == DMAR_OK)
		owed_add(dom, &fl, NULL);
}

static bool overlaps(uint64_t s, uint64_t e, uint64_t iova, uint64_t size)
{
	return s != e && iova < e && iova + size > s;
}

/* Completes the deferred unmaps' invalidation and frees the tables they detached.
 * Domain lock held; on failure they stay deferred. */
static int deferred_settle(struct dmar_domain *dom)
{
	if (!dom->deferred.count)
		return DMAR_OK;
	/* A batch: one invalidation over the span of all of it, the regions of detached
	 * tables included (IH=0), rather than one per region. */
	struct pgtable_flush *fl = &dom->deferred.fl;
	if (fl->tables_start != fl->tables_end) {
		if (fl->start == fl->end) {
			fl->start = fl->tables_start;
			fl->end = fl->tables_end;
		} else {
			fl->start = dmar_min_u64(fl->start, fl->tables_start);
			fl->end = dmar_max_u64(fl->end, fl->tables_end);
		}
		fl->tables_start = fl->tables_end = 0;
		fl->tables_changed = true;
	}
	int rc = flush_iotlb(dom, fl);
	if (rc)
		return rc;
	dmar__pgtable_flush_done(&dom->pt, &dom->deferred.fl);
	dmar_memset(&dom->deferred, 0, sizeof(dom->deferred));
	return DMAR_OK;
}

/* dmar_map with the domain lock held. */
static int map_locked(struct dmar_domain *dom, uint64_t iova, uint64_t phys, uint64_t size,
		      unsigned prot)
{
	int rc = owed_settle(dom);
	if (rc)
		return rc;
	/* A range unmapped deferred may still be in the IOTLB: flush before reusing it.
	 * And a table a deferred unmap detached may still be in the paging-structure
	 * caches, where a walk for any address of its region finds it (and faults there,
	 * not seeing the new table): that region is wider than the range unmapped, the
	 * only part a caller_holds_deferred caller keeps out of use, and is not recorded
	 * whole (a table emptied beside the range), so any map flushes first while the
	 * batch holds such a change (once per detach, rare in busdma's packed space). */
	const struct pgtable_flush *df = &dom->deferred.fl;
	if (dom->deferred.count &&
	    (df->tables_changed ||
	     (!dom->caller_holds_deferred &&
	      (overlaps(df->start, df->end, iova, size) ||
	       overlaps(df->tables_start, df->tables_end, iova, size))))) {
		rc = deferred_settle(dom);
		if (rc)
			return rc;
	}
	struct dmar_unit *u = dom->unit;
	if (!u->cm && !u->rwbf)
		return dmar__pgtable_map(&dom->pt, iova, phys, size, prot);
	/* (what turned present is reported only where the unit must hear of it) */
	struct pgtable_flush fl;
	rc = dmar__pgtable_map_flush(&dom->pt, iova, phys, size, prot, u->cm ? &fl : NULL);
	if (rc == DMAR_OK && (rc = map_announce(dom, &fl)) != DMAR_OK)
		map_undo(dom, iova, size);
	return rc;
}

/* Completes an unmap whose invalidation was queued (domain lock held): on failure the
 * domain owes it, else the table pages it detached are freed. */
static int unmap_finish(struct dmar_domain *dom, uint64_t iova, uint64_t size,
			struct pgtable_flush *fl, int rc)
{
	if (rc) {
		struct dmar_range r = { iova, iova + size };
		owed_add(dom, fl, &r);
		return rc;
	}
	/* Detached table pages are freed only now that the unit has let go of them. */
	dmar__pgtable_flush_done(&dom->pt, fl);
	return DMAR_OK;
}

/* dmar_unmap (domain lock held): the entries cleared and their invalidation queued. With
 * *ticket set the caller waits for it (with no lock: maps and unmaps of other ranges
 * proceed while the unit works; the range is the caller's until dmar_unmap returns) and
 * calls unmap_finish; else the call is complete (or failed) and its result returned.
 * An unmap that takes deferred unmaps' invalidation over waits here, under the lock:
 * until it completes, dmar_domain_flush must not report them flushed. So does an unmap
 * with ticket NULL. */
static int unmap_locked(struct dmar_domain *dom, uint64_t iova, uint64_t size,
			struct pgtable_flush *fl, uint32_t *ticket, bool *waiting)
{
	*waiting = false;
	int rc = owed_settle(dom);
	if (rc)
		return rc;
	rc = dmar__pgtable_unmap(&dom->pt, iova, size, fl);
	if (rc == DMAR_ENOENT && owed_retry(dom, iova, size))
		return DMAR_OK;
	if (rc)
		return rc;
	/* Deferred unmaps ride along: one invalidation settles them too. */
	bool took_deferred = dom->deferred.count != 0;
	if (took_deferred) {
		dmar__pgtable_flush_merge(&dom->pt, fl, &dom->deferred.fl);
		dom->deferred.count = 0;
	}
	uint32_t t;
	rc = flush_iotlb_start(dom, fl, &t);
	if (!rc && ticket && !took_deferred) {
		*ticket = t;
		*waiting = true;
		return DMAR_OK;
	}
	if (!rc)
		rc = dmar__inval_sync_wait(dom->unit, t);
	return unmap_finish(dom, iova, size, fl, rc);
}

int dmar_map(struct dmar_domain *dom, uint64_t iova, uint64_t phys, uint64_t size,
	     unsigned prot)
{
	const struct dmar_os *os = &dom->unit->sys->os;
	if (!prot || (prot & ~DMAR_PROT_RW) || (phys & (DMAR_PAGE_SIZE - 1)))
		return DMAR_EINVAL;
	int rc = check_translated_range(dom, iova, size);
	if (rc)
		return rc;
	os_lock(os, dom->lock);
	rc = in_window(dom, iova, size) ? DMAR_EBUSY : map_locked(dom, iova, phys, size, prot);
	os_unlock(os, dom->lock);
	return rc;
}

int dmar_unmap(struct dmar_domain *dom, uint64_t iova, uint64_t size)
{
	const struct dmar_os *os = &dom->unit->sys->os;
	int rc = check_translated_range(dom, iova, size);
	if (rc)
		return rc;
	struct pgtable_flush fl;
	uint32_t ticket;
	bool waiting = false;
	os_lock(os, dom->lock);
	rc = in_window(dom, iova, size) ? DMAR_EBUSY
					: unmap_locked(dom, iova, size, &fl, &ticket, &waiting);
	os_unlock(os, dom->lock);
	if (!waiting)
		return rc;
	rc = dmar__inval_sync_wait(dom->unit, ticket);
	if (!rc && !fl.deferred_pages)
		return DMAR_OK; /* (nothing detached: no need of the lock again) */
	os_lock(os, dom->lock);
	rc = unmap_finish(dom, iova, size, &fl, rc);
	os_unlock(os, dom->lock);
	return rc;
}

int dmar_unmap_deferred(struct dmar_domain *dom, uint64_t iova, uint64_t size)
{
	const struct dmar_os *os = &dom->unit->sys->os;
	int rc = check_translated_range(dom, iova, size);
	if (rc)
		return rc;
	os_lock(os, dom->lock);
	if (in_window(dom, iova, size))
		rc = DMAR_EBUSY;
	else
		rc = dmar__pgtable_unmap_merge(&dom->pt, iova, size, &dom->deferred.fl);
	if (rc == DMAR_OK)
		dom->deferred.count++;
	os_unlock(os, dom->lock);
	return rc;
}

int dmar_domain_flush(struct dmar_domain *dom)
{
	const struct dmar_os *os = &dom->unit->sys->os;
	if (dom->kind != DMAR_DOMAIN_TRANSLATED)
		return DMAR_OK;
	os_lock(os, dom->lock);
	int rc = owed_settle(dom);
	if (!rc)
		rc = deferred_settle(dom);
	os_unlock(os, dom->lock);
	return rc;
}

unsigned dmar_domain_deferred(const struct dmar_domain *dom)
{
	const struct dmar_os *os = &dom->unit->sys->os;
	os_lock(os, dom->lock);
	unsigned n = dom->deferred.count;
	os_unlock(os, dom->lock);
	return n;
}

/* RMRRs (8.4): the device may DMA there on the firmware's behalf at any time, so each
 * one naming it is identity-mapped into a translated domain before the device is
 * attached. Several devices may name one range: it is mapped once and counted per
 * attach that asked for it. */
struct rmrr_claim {
	unsigned n;
	struct dmar_range r[DMAR_MAX_RESERVED];
};

static int reserved_index(const struct dmar_domain *dom, const struct dmar_range *rg)
{
	for (unsigned i = 0; i < dom->nreserved; i++)
		if (dom->reserved[i].start == rg->start && dom->reserved[i].end == rg->end)
			return (int)i;
	return -1;
}

/* Gives back what claim_rmrrs took (domain lock held): a range nobody else asked for is
 * unmapped again. */
static void release_rmrrs(struct dmar_domain *dom, const struct rmrr_claim *c)
{
	for (unsigned k = c->n; k-- > 0;) {
		int i = reserved_index(dom, &c->r[k]);
		if (i < 0 || --dom->reserved_refs[i])
			continue;
		struct pgtable_flush fl;
		bool waiting;
		(void)unmap_locked(dom, c->r[k].start, c->r[k].end - c->r[k].start, &fl, NULL,
				   &waiting);
		dom->nreserved--;
		dom->reserved[i] = dom->reserved[dom->nreserved];
		dom->reserved_refs[i] = dom->reserved_refs[dom->nreserved];
	}
}

/* Identity-maps (or counts) every usable RMRR naming the device, under the domain lock,
 * recording in *c what it took. 0, or DMAR_ENOMEM (or the error of a failed
 * invalidation) with everything it took given back; ranges it cannot use are logged and
 * skipped. */
static int claim_rmrrs(struct dmar_domain *dom, uint16_t sid, struct rmrr_claim *c)
{
	struct dmar_system *sys = dom->unit->sys;
	const struct dmar_os *os = &sys->os;
	struct dmar_acpi_rmrr r;
	unsigned cursor = 0;
	int rc = DMAR_OK;
	c->n = 0;
	if (!sys->table || dom->kind != DMAR_DOMAIN_TRANSLATED)
		return DMAR_OK;
	os_lock(os, dom->lock);
	while (dmar_acpi_device_rmrr_next(sys->table, dom->unit->segment, VTD_SID_BUS(sid),
					  (uint8_t)(VTD_SID_DEVFN(sid) >> 3),
					  (uint8_t)(VTD_SID_DEVFN(sid) & 7), sys->topology,
					  sys->topology_ctx, &cursor, &r) == DMAR_OK) {
		if (r.limit < r.base || r.limit == UINT64_MAX) {
			dmar__log(sys, DMAR_LOG_WARN,
				 "RMRR at table offset 0x%x: empty range 0x%llx-0x%llx; skipped",
				 r.offset, (unsigned long long)r.base, (unsigned long long)r.limit);
			continue;
		}
		struct dmar_range rg = { r.base & ~(uint64_t)(DMAR_PAGE_SIZE - 1),
					 (r.limit | (DMAR_PAGE_SIZE - 1)) + 1 };
		if (rg.start != r.base || rg.end != r.limit + 1)
			dmar__log(sys, DMAR_LOG_WARN,
				 "RMRR at table offset 0x%x: 0x%llx-0x%llx not page-aligned; "
				 "mapped as 0x%llx-0x%llx", r.offset, (unsigned long long)r.base,
				 (unsigned long long)r.limit, (unsigned long long)rg.start,
				 (unsigned long long)rg.end - 1);
		bool dup = false;
		for (unsigned k = 0; k < c->n; k++)
			dup = dup || (c->r[k].start == rg.start && c->r[k].end == rg.end);
		if (dup)
			continue;
		int i = reserved_index(dom, &rg);
		if (i >= 0) {
			dom->reserved_refs[i]++;
			c->r[c->n++] = rg;
			continue;
		}
		if (dom->nreserved == DMAR_MAX_RESERVED) {
			dmar__log(sys, DMAR_LOG_WARN,
				 "domain %u: more than %u RMRRs; 0x%llx skipped",
				 dom->did, DMAR_MAX_RESERVED, (unsigned long long)rg.start);
			continue;
		}
		if (check_range(dom, rg.start, rg.end - rg.start) != DMAR_OK)
			rc = DMAR_ERANGE;
		else if (in_window(dom, rg.start, rg.end - rg.start))
			rc = DMAR_EBUSY; /* (logged and skipped below, as a clash) */
		else
			rc = map_locked(dom, rg.start, rg.start, rg.end - rg.start, DMAR_PROT_RW);
		if (rc == DMAR_ENOMEM || rc == DMAR_ETIMEDOUT || rc == DMAR_EHW)
			break;
		if (rc) {
			dmar__log(sys, DMAR_LOG_WARN,
				 "RMRR 0x%llx-0x%llx for %02x:%02x.%x: %s; skipped",
				 (unsigned long long)rg.start, (unsigned long long)rg.end - 1,
				 VTD_SID_BUS(sid), VTD_SID_DEVFN(sid) >> 3, VTD_SID_DEVFN(sid) & 7,
				 dmar_strerror(rc));
			rc = DMAR_OK;
			continue;
		}
		dom->reserved[dom->nreserved] = rg;
		dom->reserved_refs[dom->nreserved++] = 1;
		c->r[c->n++] = rg;
	}
	if (rc)
		release_rmrrs(dom, c);
	os_unlock(os, dom->lock);
	return rc;
}

static void unclaim_rmrrs(struct dmar_domain *dom, const struct rmrr_claim *c)
{
	const struct dmar_os *os = &dom->unit->sys->os;
	if (!c->n)
		return;
	os_lock(os, dom->lock);
	release_rmrrs(dom, c);
	os_unlock(os, dom->lock);
}

int dmar_domain_attach(struct dmar_domain *dom, uint16_t sid)
{
	struct dmar_unit *u = dom->unit;
	const struct dmar_os *os = &u->sys->os;
	struct rmrr_claim claim;
	int rc = claim_rmrrs(dom, sid, &claim);
	if (rc)
		return rc;
	os_lock(os, u->lock);
	int old_did = dmar__context_did(u, sid);
	if (old_did == dom->did) {
		os_unlock(os, u->lock);
		unclaim_rmrrs(dom, &claim);
		return DMAR_EEXIST;
	}
	struct dmar_attached *holder = dmar__attached_holder(u, sid, NULL);
	if (holder && holder->dom != dom) {
		os_unlock(os, u->lock);
		unclaim_rmrrs(dom, &claim);
		return DMAR_EBUSY;
	}
	struct dmar_domain *old = old_did < 0 ? NULL : domain_by_did(u, old_did);
	rc = dmar__context_set(u, sid, dom);
	if (rc == DMAR_OK) {
		dom->ndevices++;
		if (old)
			old->ndevices--;
		rc = dmar__unit_translation_on(u);
		if (rc) {
			/* Translation could not be turned on: undo the attach. */
			(void)dmar__context_clear(u, sid);
			dom->ndevices--;
			if (old)
				old->ndevices++;
		}
	}
	os_unlock(os, u->lock);
	if (rc)
		unclaim_rmrrs(dom, &claim);
	return rc;
}

int dmar_domain_detach(struct dmar_domain *dom, uint16_t sid)
{
	struct dmar_unit *u = dom->unit;
	const struct dmar_os *os = &u->sys->os;
	int rc;
	os_lock(os, u->lock);
	if (dmar__context_did(u, sid) != dom->did) {
		os_unlock(os, u->lock);
		return DMAR_ENOENT;
	}
	if (dmar__attached_holder(u, sid, NULL)) {
		os_unlock(os, u->lock);
		return DMAR_EBUSY; /* dmar_domain_detach_device owns it */
	}
	rc = dmar__context_clear(u, sid);
	if (rc != DMAR_ENOENT)
		dom->ndevices--; /* the entry is gone even if the flush timed out */
	os_unlock(os, u->lock);
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
	int rc = dmar__pgtable_lookup(&dom->pt, iova, phys, prot, &page_size);
	os_unlock(os, dom->lock);
	return rc;
}

/* Points the context entry of `id` at dom (unit lock held), keeping the per-domain count
 * of entries; *moved_from tells which domain had it (NULL: none). */
static int context_take(struct dmar_unit *u, uint16_t id, struct dmar_domain *dom,
			struct dmar_domain **moved_from)
{
	int old_did = dmar__context_did(u, id);
	*moved_from = old_did < 0 ? NULL : domain_by_did(u, old_did);
	int rc = dmar__context_set(u, id, dom);
	if (rc)
		return rc;
	dom->ndevices++;
	if (*moved_from)
		(*moved_from)->ndevices--;
	return DMAR_OK;
}

int dmar_domain_attach_device(struct dmar_domain *dom, uint8_t bus, uint8_t dev, uint8_t fn)
{
	struct dmar_unit *u = dom->unit;
	struct dmar_system *sys = u->sys;
	const struct dmar_os *os = &sys->os;
	if (dev > 31 || fn > 7)
		return DMAR_EINVAL;
	uint16_t bdf = VTD_SID(bus, dev, fn);
	struct dmar_attached *rec = dmar__os_alloc(os, sizeof(*rec));
	if (!rec)
		return DMAR_ENOMEM;
	rec->dom = dom;
	rec->bdf = bdf;
	rec->nids = dmar_device_requester_ids(sys, u->segment, bus, dev, fn, rec->ids,
					      DMAR_MAX_REQUESTER_IDS);
	struct rmrr_claim claim;
	int rc = claim_rmrrs(dom, bdf, &claim);
	if (rc) {
		dmar__os_free(os, rec, sizeof(*rec));
		return rc;
	}
	os_lock(os, u->lock);
	if (dmar__attached_find(u, bdf)) {
		rc = DMAR_EEXIST;
		goto unlock;
	}
	for (unsigned i = 0; i < rec->nids; i++) {
		struct dmar_attached *h = dmar__attached_holder(u, rec->ids[i], NULL);
		if (h && h->dom != dom) {
			dmar__log(sys, DMAR_LOG_ERR,
				 "dmar%u: %02x:%02x.%x shares requester id %02x:%02x.%x with "
				 "%02x:%02x.%x, attached to domain %u: the unit cannot tell them "
				 "apart, so they can only be in one domain together", u->index,
				 bus, dev, fn, rec->ids[i] >> 8, (rec->ids[i] >> 3) & 0x1f,
				 rec->ids[i] & 7, h->bdf >> 8, (h->bdf >> 3) & 0x1f, h->bdf & 7,
				 h->dom->did);
			rc = DMAR_EBUSY;
			goto unlock;
		}
	}
	/* Every table first, so that running out of memory changes nothing. */
	rc = dmar__context_tables_for(u, rec->ids, rec->nids);
	if (rc)
		goto unlock;
	struct dmar_domain *was[DMAR_MAX_REQUESTER_IDS] = { 0 };
	bool taken[DMAR_MAX_REQUESTER_IDS] = { 0 };
	for (unsigned i = 0; i < rec->nids && !rc; i++) {
		if (dmar__context_did(u, rec->ids[i]) == dom->did)
			continue; /* a function sharing this id has it in dom already */
		rc = context_take(u, rec->ids[i], dom, &was[i]);
		taken[i] = rc == DMAR_OK;
	}
	if (!rc)
		rc = dmar__unit_translation_on(u);
	if (rc) {
		/* Put every entry this call changed back as it was. */
		for (unsigned i = 0; i < rec->nids; i++) {
			struct dmar_domain *back;
			if (!taken[i])
				continue;
			if (was[i])
				(void)context_take(u, rec->ids[i], was[i], &back);
			else if (dmar__context_clear(u, rec->ids[i]) != DMAR_ENOENT)
				dom->ndevices--;
		}
		goto unlock;
	}
	rec->next = u->attached;
	u->attached = rec;
	rec = NULL;
unlock:
	os_unlock(os, u->lock);
	if (rec) {
		unclaim_rmrrs(dom, &claim);
		dmar__os_free(os, rec, sizeof(*rec));
	}
	return rc;
}

int dmar_domain_detach_device(struct dmar_domain *dom, uint8_t bus, uint8_t dev, uint8_t fn)
{
	struct dmar_unit *u = dom->unit;
	const struct dmar_os *os = &u->sys->os;
	int rc = DMAR_OK;
	os_lock(os, u->lock);
	struct dmar_attached *rec = dmar__attached_find(u, VTD_SID(bus, dev, fn));
	if (!rec || rec->dom != dom) {
		os_unlock(os, u->lock);
		return DMAR_ENOENT;
	}
	for (struct dmar_attached **pp = &u->attached; *pp; pp = &(*pp)->next) {
		if (*pp == rec) {
			*pp = rec->next;
			break;
		}
	}
	for (unsigned i = 0; i < rec->nids; i++) {
		if (dmar__attached_holder(u, rec->ids[i], NULL) ||
		    dmar__context_did(u, rec->ids[i]) != dom->did)
			continue; /* still needed by a function sharing it */
		int crc = dmar__context_clear(u, rec->ids[i]);
		if (crc != DMAR_ENOENT)
			dom->ndevices--; /* the entry is gone even if the flush timed out */
		if (crc && !rc)
			rc = crc;
	}
	os_unlock(os, u->lock);
	dmar__os_free(os, rec, sizeof(*rec));
	return rc;
}
