/*
 * Root and context entries (VT-d 9.1-9.3, legacy mode) and the invalidation sequences
 * the specification requires when a context entry changes (6.5.3.3):
 * - not present -> present: with caching mode, a device-selective context-cache
 *   invalidation for domain id 0 (where not-present context entries are cached) and a
 *   domain-selective IOTLB invalidation of the new domain; otherwise a write-buffer
 *   flush.
 * - present -> not present: device-selective context-cache invalidation with the old
 *   domain id, then a domain-selective IOTLB invalidation of the old domain.
 * A present entry is never rewritten in place: a move clears it first.
 * All functions run with the unit's lock held.
 */
#include "dmar_internal.h"

static uint64_t *ctx_entry(const struct dmar_unit *u, uint16_t sid)
{
	void *t = u->ctx[VTD_SID_BUS(sid)];
	return t ? (uint64_t *)t + 2 * VTD_SID_DEVFN(sid) : NULL;
}

int dmar__context_did(const struct dmar_unit *u, uint16_t sid)
{
	const uint64_t *e = ctx_entry(u, sid);
	if (!e || !(e[0] & VTD_CTX_LO_P))
		return -1;
	return (int)VTD_CTX_HI_DID_GET(e[1]);
}

int dmar__context_did_peek(const struct dmar_unit *u, uint16_t sid)
{
	const volatile uint64_t *t = *(void *const volatile *)&u->ctx[VTD_SID_BUS(sid)];
	if (!t)
		return -1;
	const volatile uint64_t *e = t + 2 * VTD_SID_DEVFN(sid);
	if (!(e[0] & VTD_CTX_LO_P))
		return -1;
	return (int)VTD_CTX_HI_DID_GET(e[1]);
}

static void install_ctx_table(struct dmar_unit *u, uint8_t bus, void *page, uint64_t phys)
{
	u->ctx[bus] = page;
	u->ctx_phys[bus] = phys;
	unit_flush_table(u, page, DMAR_PAGE_SIZE);
	uint64_t *root = (uint64_t *)u->root + 2 * bus;
	root[1] = 0;
	root[0] = (phys & VTD_ROOT_CTP_MASK) | VTD_ROOT_P;
	unit_flush_table(u, root, 16);
}

static int ensure_ctx_table(struct dmar_unit *u, uint8_t bus)
{
	const struct dmar_os *os = &u->sys->os;
	uint64_t phys;
	if (u->ctx[bus])
		return DMAR_OK;
	void *page = os->ops->page_alloc(os->ctx, &phys);
	if (!page)
		return DMAR_ENOMEM;
	install_ctx_table(u, bus, page, phys);
	return DMAR_OK;
}

int dmar__context_tables_for(struct dmar_unit *u, const uint16_t *ids, unsigned n)
{
	const struct dmar_os *os = &u->sys->os;
	void *page[DMAR_MAX_REQUESTER_IDS];
	uint64_t phys[DMAR_MAX_REQUESTER_IDS];
	uint8_t bus[DMAR_MAX_REQUESTER_IDS];
	unsigned k = 0;
	for (unsigned i = 0; i < n && i < DMAR_MAX_REQUESTER_IDS; i++) {
		uint8_t b = VTD_SID_BUS(ids[i]);
		bool have = u->ctx[b] != NULL;
		for (unsigned j = 0; j < k; j++)
			have = have || bus[j] == b;
		if (have)
			continue;
		page[k] = os->ops->page_alloc(os->ctx, &phys[k]);
		if (!page[k]) {
			/* Never seen by the unit: give them back, nothing changed. */
			while (k--)
				os->ops->page_free(os->ctx, page[k], phys[k]);
			return DMAR_ENOMEM;
		}
		bus[k++] = b;
	}
	for (unsigned j = 0; j < k; j++)
		install_ctx_table(u, bus[j], page[j], phys[j]);
	return DMAR_OK;
}

/* AW names the depth of the table the unit walks (9.3: 1 = 3 levels, 2 = 4, 3 = 5),
 * not the domain's width: a 4-level table bounded to 39 bits (SAGAW 48 only, MGAW 39,
 * as on most client graphics units) is programmed as 4 levels. */
static unsigned aw_for_levels(unsigned levels)
{
	return levels - 2;
}

static unsigned levels_for_width(unsigned width)
{
	return width > 48 ? 5 : width > 39 ? 4 : 3;
}

/* Invalidates the device's context-cache entry (tagged ctx_did) and the IOTLB of
 * domain iotlb_did, and waits for both. */
static int flush_device(struct dmar_unit *u, uint16_t sid, uint16_t ctx_did, uint16_t iotlb_did)
{
	int rc = dmar__inval_context(u, VTD_CC_DEVICE, ctx_did, sid);
	if (!rc)
		rc = dmar__inval_iotlb(u, VTD_IOTLB_DOMAIN, iotlb_did, 0, 0, false);
	if (!rc)
		rc = dmar__inval_sync(u);
	return rc;
}

int dmar__context_clear(struct dmar_unit *u, uint16_t sid)
{
	uint64_t *e = ctx_entry(u, sid);
	if (!e || !(e[0] & VTD_CTX_LO_P))
		return DMAR_ENOENT;
	uint16_t old = (uint16_t)VTD_CTX_HI_DID_GET(e[1]);
	e[0] = 0;
	unit_flush_table(u, e, 16);
	e[1] = 0;
	unit_flush_table(u, e, 16);
	return flush_device(u, sid, old, old);
}

int dmar__context_set(struct dmar_unit *u, uint16_t sid, struct dmar_domain *dom)
{
	int rc = ensure_ctx_table(u, VTD_SID_BUS(sid));
	if (rc)
		return rc;
	uint64_t *e = ctx_entry(u, sid);
	if (e[0] & VTD_CTX_LO_P) {
		rc = dmar__context_clear(u, sid);
		if (rc)
			return rc;
	}
	uint64_t lo, hi;
	if (dom->passthrough_tt) {
		/* AW must name a supported width even though no table is walked (9.3). */
		lo = VTD_CTX_LO_TT(VTD_TT_PASSTHROUGH) | VTD_CTX_LO_P;
		hi = VTD_CTX_HI_AW(aw_for_levels(levels_for_width(dmar__unit_widest_agaw(u)))) |
		     VTD_CTX_HI_DID(dom->did);
	} else {
		lo = (dom->pt.root_phys & VTD_CTX_LO_SLPTPTR_MASK) | VTD_CTX_LO_TT(VTD_TT_SLPT) |
		     VTD_CTX_LO_P;
		hi = VTD_CTX_HI_AW(aw_for_levels(dom->pt.levels)) | VTD_CTX_HI_DID(dom->did);
	}
	e[1] = hi;
	u->sys->os.ops->wmb(u->sys->os.ctx);
	e[0] = lo;
	unit_flush_table(u, e, 16);
	/* Caching mode: not-present entries are cached under domain id 0 (6.1). */
	rc = u->cm ? flush_device(u, sid, 0, dom->did) : dmar__unit_flush_write_buffer(u);
	if (rc) {
		/* The unit did not confirm; take the entry back out so no half state stays. */
		e[0] = 0;
		e[1] = 0;
		unit_flush_table(u, e, 16);
	}
	return rc;
}

void dmar__context_free_tables(struct dmar_unit *u)
{
	const struct dmar_os *os = &u->sys->os;
	for (unsigned b = 0; b < 256; b++) {
		if (u->ctx[b]) {
			os->ops->page_free(os->ctx, u->ctx[b], u->ctx_phys[b]);
			u->ctx[b] = NULL;
		}
	}
}
