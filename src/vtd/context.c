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

/* Root and context entries are read by the unit at any time, and by
 * dmar__context_did_peek without the unit lock: each quadword is stored as two 32-bit
 * halves (the library core uses no 64-bit atomics), the upper one first, so that the
 * lower one, holding P (and, in the upper quadword, the DID), changes last and at once.
 * Release: what the entry points at (a context table, a domain's root table) and the
 * upper quadword, written before, are seen first. x86 is little-endian. */
typedef uint32_t ctx_half __attribute__((may_alias));

static void ctx_store(uint64_t *q, uint64_t v)
{
	ctx_half *h = (ctx_half *)q;
	__atomic_store_n(&h[1], (uint32_t)(v >> 32), __ATOMIC_RELEASE);
	__atomic_store_n(&h[0], (uint32_t)v, __ATOMIC_RELEASE);
}

/* The lower half of a quadword (P of a lower quadword, the DID of an upper one). */
static uint32_t ctx_low(const uint64_t *q)
{
	return __atomic_load_n((const ctx_half *)q, __ATOMIC_ACQUIRE);
}

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
	const uint64_t *t = __atomic_load_n(&u->ctx[VTD_SID_BUS(sid)], __ATOMIC_ACQUIRE);
	if (!t)
		return -1;
	const uint64_t *e = t + 2 * VTD_SID_DEVFN(sid);
	/* An attach may be moving the entry meanwhile (clear: P, then the DID; set: the
	 * DID, then P): a DID read the same before and after a present P went with it. */
	for (unsigned tries = 0; tries < 8; tries++) {
		uint32_t hi = ctx_low(&e[1]);
		if (!(ctx_low(&e[0]) & VTD_CTX_LO_P))
			return -1;
		if (ctx_low(&e[1]) == hi)
			return (int)VTD_CTX_HI_DID_GET((uint64_t)hi);
	}
	return -1;
}

static void install_ctx_table(struct dmar_unit *u, uint8_t bus, void *page, uint64_t phys)
{
	__atomic_store_n(&u->ctx[bus], page, __ATOMIC_RELEASE); /* see context_did_peek */
	u->ctx_phys[bus] = phys;
	unit_flush_table(u, page, DMAR_PAGE_SIZE);
	uint64_t *root = (uint64_t *)u->root + 2 * bus;
	ctx_store(&root[1], 0);
	ctx_store(&root[0], (phys & VTD_ROOT_CTP_MASK) | VTD_ROOT_P);
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
	ctx_store(&e[0], 0);
	unit_flush_table(u, e, 16);
	ctx_store(&e[1], 0);
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
	ctx_store(&e[1], hi);
	u->sys->os.ops->wmb(u->sys->os.ctx);
	ctx_store(&e[0], lo);
	unit_flush_table(u, e, 16);
	/* Caching mode: not-present entries are cached under domain id 0 (6.1). */
	rc = u->cm ? flush_device(u, sid, 0, dom->did) : dmar__unit_flush_write_buffer(u);
	if (rc) {
		/* The unit did not confirm; take the entry back out so no half state stays. */
		ctx_store(&e[0], 0);
		ctx_store(&e[1], 0);
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
