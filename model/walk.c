/*
 * walk.c - legacy-mode DMA translation (VT-d 3.4 and 9): root entry -> context entry ->
 * second-level page walk of 3, 4 or 5 levels, with the fault reason of every failure
 * (7.1.3), through the caches for device DMA or straight from memory for
 * dmar_model_translate(). The host address width is taken to be MGAW.
 */
#include "model_impl.h"

struct xlate {
	uint64_t pa;
	uint64_t page_mask;  /* page size - 1 */
	bool fpd;            /* the context entry asks to suppress faults */
};

/* Whether address bits of `v` (bits 63:12) lie beyond the host address width. */
static bool beyond_haw(const struct model *m, uint64_t v)
{
	return m->cfg.mgaw < 64 && ((v & 0xfffffffffffff000ull) >> m->cfg.mgaw) != 0;
}

static unsigned access_fault(bool write)
{
	return write ? VTD_FR_WRITE : VTD_FR_READ;
}

/* The context entry of `sid` in ctx[2]; 0 or a fault reason. */
static unsigned ctx_fetch(struct model *m, uint16_t sid, bool cached, uint64_t ctx[2])
{
	enum model_mem_kind kind = cached ? MODEL_MEM_TABLE : MODEL_MEM_PEEK;
	struct cc_entry *e = cached ? dmar__mdl_cc_lookup(m, sid) : NULL;
	uint64_t root[2];
	unsigned reason = 0;

	if (e) {
		m->stats.ctx_hits++;
		ctx[0] = e->lo;
		ctx[1] = e->hi;
		return e->reason;
	}
	if (cached)
		m->stats.ctx_misses++;
	if (m->ops.read(m->ctx, m->root + VTD_SID_BUS(sid) * 16u, root, sizeof(root), kind))
		return VTD_FR_ROOT_ACCESS_ERR;
	if (!(root[0] & VTD_ROOT_P))
		reason = VTD_FR_ROOT_NOT_PRESENT;
	else if ((root[0] & 0xffeu) || root[1] || beyond_haw(m, root[0]))
		return VTD_FR_ROOT_RSVD;
	else if (m->ops.read(m->ctx, (root[0] & VTD_ROOT_CTP_MASK) + VTD_SID_DEVFN(sid) * 16u,
			     ctx, 2 * sizeof(uint64_t), kind))
		return VTD_FR_CTX_ACCESS_ERR;
	else if (!(ctx[0] & VTD_CTX_LO_P))
		reason = VTD_FR_CTX_NOT_PRESENT;
	else if ((ctx[0] & 0xff0u) || beyond_haw(m, ctx[0]) || (ctx[1] & ~0xffff7full))
		return VTD_FR_CTX_RSVD;
	if (reason) {
		/* Caching mode: not-present entries may be cached, tagged with domain 0. */
		if (cached && m->cfg.cm)
			dmar__mdl_cc_insert(m, sid, 0, 0, 0, reason);
		return reason;
	}
	if (cached)
		dmar__mdl_cc_insert(m, sid, (uint16_t)VTD_CTX_HI_DID_GET(ctx[1]), ctx[0], ctx[1],
				    0);
	return 0;
}

/* Reserved bits of a present second-level entry at `level` (9.8). */
static bool sl_reserved(const struct model *m, uint64_t pte, unsigned level, bool leaf)
{
	if (beyond_haw(m, pte & VTD_SL_ADDR_MASK))
		return true;
	if ((pte & VTD_SL_SNP) && (!leaf || !m->cfg.sc))
		return true;
	if (leaf && level > 1)
		return (pte & VTD_SL_ADDR_MASK & ((1ull << level_shift(level)) - 1u)) != 0;
	return false;
}

/* Whether a PS=1 entry at `level` maps a superpage this configuration supports. */
static bool superpage_ok(const struct model *m, unsigned level)
{
	return (level == 2 && (m->cfg.sllps & 1u)) || (level == 3 && (m->cfg.sllps & 2u));
}

static unsigned leaf_done(struct xlate *x, uint64_t base, unsigned level, uint64_t iova,
			  unsigned perm, bool write)
{
	x->page_mask = (1ull << level_shift(level)) - 1u;
	x->pa = base | (iova & x->page_mask);
	if (!(perm & (write ? VTD_SL_W : VTD_SL_R)))
		return access_fault(write);
	return 0;
}

static unsigned translate(struct model *m, uint16_t sid, uint64_t iova, bool write, bool cached,
			  struct xlate *x)
{
	enum model_mem_kind kind = cached ? MODEL_MEM_TABLE : MODEL_MEM_PEEK;
	uint64_t ctx[2], table;
	unsigned reason, tt, aw, levels, limit, level, perm = (unsigned)(VTD_SL_R | VTD_SL_W);
	uint16_t did;

	x->fpd = false;
	reason = ctx_fetch(m, sid, cached, ctx);
	if (reason)
		return reason;
	x->fpd = (ctx[0] & VTD_CTX_LO_FPD) != 0;
	tt = (unsigned)VTD_CTX_LO_TT_GET(ctx[0]);
	if (tt == 3 || (tt == VTD_TT_SLPT_DEVTLB && !m->cfg.dt) ||
	    (tt == VTD_TT_PASSTHROUGH && !m->cfg.pt))
		return VTD_FR_CTX_INVALID;
	if (tt == VTD_TT_PASSTHROUGH) {
		x->pa = iova;
		x->page_mask = 0xfff;
		return 0;
	}
	aw = (unsigned)VTD_CTX_HI_AW_GET(ctx[1]);
	if (aw < 1 || aw > 3 || !((m->cfg.sagaw >> aw) & 1u))
		return VTD_FR_CTX_INVALID;
	levels = aw + 2u;
	limit = 30u + 9u * aw;
	if (m->cfg.mgaw < limit)
		limit = m->cfg.mgaw;
	if (limit < 64 && (iova >> limit) != 0)
		return VTD_FR_ADDR_BEYOND_AW;
	did = (uint16_t)VTD_CTX_HI_DID_GET(ctx[1]);
	table = ctx[0] & VTD_CTX_LO_SLPTPTR_MASK;
	level = levels;

	if (cached) {
		struct tlb_entry *e;

		for (level = 1; level <= 3 && level <= levels; level++) {
			e = dmar__mdl_tlb_lookup(m, did, level, true, iova);
			if (e) {
				m->stats.iotlb_hits++;
				if (!e->perm)
					return access_fault(write);
				return leaf_done(x, e->addr, level, iova, e->perm, write);
			}
		}
		m->stats.iotlb_misses++;
		level = levels;
		for (unsigned l = 2; l <= levels; l++) {
			e = dmar__mdl_tlb_lookup(m, did, l, false, iova);
			if (e) {
				m->stats.psc_hits++;
				table = e->addr;
				perm = e->perm;
				level = l - 1u;
				break;
			}
		}
	}

	for (;; level--) {
		uint64_t pte;
		unsigned idx = (unsigned)(iova >> level_shift(level)) & 511u;
		bool leaf;

		if (m->ops.read(m->ctx, table + idx * 8u, &pte, sizeof(pte), kind))
			return VTD_FR_PAGING_ENTRY_ERR;
		if (!(pte & (VTD_SL_R | VTD_SL_W))) {
			if (cached && m->cfg.cm)
				dmar__mdl_tlb_insert(m, did, 1, true, iova, 0, 0);
			return access_fault(write);
		}
		leaf = level == 1 || (pte & VTD_SL_PS);
		if (leaf && level > 1 && !superpage_ok(m, level))
			return VTD_FR_PAGING_RSVD;
		if (sl_reserved(m, pte, level, leaf))
			return VTD_FR_PAGING_RSVD;
		perm &= (unsigned)(pte & (VTD_SL_R | VTD_SL_W));
		if (leaf) {
			uint64_t base = pte & VTD_SL_ADDR_MASK;

			if (cached)
				dmar__mdl_tlb_insert(m, did, level, true, iova, base, perm);
			return leaf_done(x, base, level, iova, perm, write);
		}
		table = pte & VTD_SL_ADDR_MASK;
		if (cached)
			dmar__mdl_tlb_insert(m, did, level, false, iova, table, perm);
	}
}

static bool translating(const struct model *m)
{
	return !m->cfg.null_hw && (reg32(m, VTD_GSTS_REG) & (uint32_t)VTD_GSTS_TES);
}

int dmar_model_translate(struct model *m, uint16_t sid, uint64_t iova, enum model_dir dir,
		    uint64_t *pa, unsigned *reason)
{
	struct xlate x;
	unsigned r = 0;

	x.pa = iova;
	if (translating(m))
		r = translate(m, sid, iova, dir == MODEL_DMA_WRITE, false, &x);
	if (pa)
		*pa = r ? 0 : x.pa;
	if (reason)
		*reason = r;
	return (int)r;
}

/* FPD suppresses the faults found after the context entry was fetched (7.2.1). */
static bool fpd_applies(unsigned reason)
{
	return reason == VTD_FR_CTX_INVALID || reason == VTD_FR_ADDR_BEYOND_AW ||
	       reason == VTD_FR_WRITE || reason == VTD_FR_READ ||
	       reason == VTD_FR_PAGING_ENTRY_ERR || reason == VTD_FR_PAGING_RSVD;
}

int dmar_model_dma(struct model *m, uint16_t sid, uint64_t iova, void *buf, size_t len,
	      enum model_dir dir, struct model_fault *fault)
{
	bool write = dir == MODEL_DMA_WRITE, xl = translating(m);
	size_t done = 0;

	if (!buf && len)
		return MODEL_DMA_BUS_ERROR;
	/* A DWORD write to 0xFEEx_xxxx is an interrupt request, whatever DMA remapping
	 * says (VT-d 3.14, 5.1): it goes through interrupt remapping with the writer's
	 * source id. A device's DMA engine can forge an MSI this way; only the entry's
	 * source-id check tells it from the device's own. */
	if (write && len == 4 && (iova >> 20) == 0xfee) {
		const uint8_t *b = buf;
		uint32_t data = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
				(uint32_t)b[3] << 24; /* little-endian, as the bus carries it */
		return dmar_model_interrupt(m, sid, iova, data, NULL);
	}
	m->stats.dma_ops++;
	while (done < len) {
		uint64_t cur = iova + done, room;
		struct xlate x;
		size_t chunk;
		int rc;

		x.pa = cur;
		x.page_mask = 0xfff;
		if (xl) {
			unsigned r = translate(m, sid, cur, write, true, &x);

			if (r) {
				bool quiet = x.fpd && fpd_applies(r), rec = false;

				if (quiet)
					m->stats.faults_suppressed++;
				else
					rec = dmar__mdl_fault_record(m, sid, cur, r, !write);
				if (fault) {
					fault->sid = sid;
					fault->addr = cur & ~0xfffull;
					fault->reason = r;
					fault->is_read = !write;
					fault->recorded = rec;
				}
				return (int)r;
			}
		}
		room = x.page_mask + 1u - (cur & x.page_mask);
		chunk = (uint64_t)(len - done) < room ? len - done : (size_t)room;
		if (write)
			rc = m->ops.write(m->ctx, x.pa, (const uint8_t *)buf + done, chunk, MODEL_MEM_DMA);
		else
			rc = m->ops.read(m->ctx, x.pa, (uint8_t *)buf + done, chunk, MODEL_MEM_DMA);
		if (rc)
			return MODEL_DMA_BUS_ERROR;
		done += chunk;
		m->stats.dma_bytes += chunk;
	}
	return 0;
}
