/*
 * cache.c - the unit's translation caches (VT-d 6.2) and their invalidation (6.5).
 *
 * Context cache: one entry per source id, holding the context entry (or, in caching
 * mode, a not-present result tagged with domain 0). IOTLB: leaf translations tagged by
 * domain and page (4 KiB, 2 MiB or 1 GiB), with their accumulated R/W permission; in
 * caching mode a not-present leaf is cached too (permission 0). Paging-structure cache:
 * non-leaf entries tagged by domain, level and the region they map. Nothing is evicted
 * except when the IOTLB or the paging-structure cache reaches its capacity: then both
 * are emptied, as QEMU does with its IOTLB. A stale entry therefore stays until the
 * driver invalidates it.
 */
#include "model_impl.h"
#include "util.h"

static unsigned bucket(uint64_t key, uint16_t did, unsigned level, bool leaf)
{
	uint64_t h = key ^ ((uint64_t)did << 40) ^ ((uint64_t)level << 56) ^ ((uint64_t)leaf << 60);

	h *= 0x9e3779b97f4a7c15ull;
	return (unsigned)(h >> 54) & (TLB_BUCKETS - 1u);
}

void dmar__mdl_cache_init(struct model *m)
{
	(void)m; /* the model is created zeroed: every cache starts empty */
}

static void tlb_free(struct model *m, struct tlb_entry *e)
{
	if (e->leaf)
		m->tlb_leaf--;
	else
		m->tlb_psc--;
	m->ops.free(m->ctx, e, sizeof(*e));
}

/* Removes the entries `drop` selects; with drop NULL, all of them. */
typedef bool (*tlb_pred)(const struct tlb_entry *e, const void *arg);

static void tlb_remove_if(struct model *m, tlb_pred drop, const void *arg)
{
	unsigned w;

	/* Only the buckets marked used: an invalidation of a nearly empty IOTLB is cheap. */
	for (w = 0; w < TLB_BUCKETS / 64; w++) {
		uint64_t bits = m->tlb_used[w];

		while (bits) {
			unsigned b = w * 64u + (unsigned)dmar_ffs64(bits);
			struct tlb_entry **pp = &m->tlb[b];

			bits &= bits - 1;
			while (*pp) {
				struct tlb_entry *e = *pp;

				if (!drop || drop(e, arg)) {
					*pp = e->next;
					tlb_free(m, e);
				} else {
					pp = &e->next;
				}
			}
			if (!m->tlb[b])
				m->tlb_used[w] &= ~(1ull << (b % 64u));
		}
	}
}

void dmar__mdl_cache_fini(struct model *m)
{
	unsigned i;

	tlb_remove_if(m, NULL, NULL);
	for (i = 0; i < 256; i++) {
		if (m->cc[i])
			m->ops.free(m->ctx, m->cc[i], 256 * sizeof(struct cc_entry));
		m->cc[i] = NULL;
	}
	m->cc_count = 0;
}

struct cc_entry *dmar__mdl_cc_lookup(struct model *m, uint16_t sid)
{
	struct cc_entry *bus = m->cc[sid >> 8];

	if (!bus || !bus[sid & 0xff].valid)
		return NULL;
	return &bus[sid & 0xff];
}

void dmar__mdl_cc_insert(struct model *m, uint16_t sid, uint16_t did, uint64_t lo, uint64_t hi,
	       unsigned reason)
{
	struct cc_entry *e;

	if (!m->cc[sid >> 8]) {
		m->cc[sid >> 8] = m->ops.alloc(m->ctx, 256 * sizeof(struct cc_entry));
		if (!m->cc[sid >> 8])
			return; /* not cached: the next request walks again */
		dmar_memset(m->cc[sid >> 8], 0, 256 * sizeof(struct cc_entry));
	}
	e = &m->cc[sid >> 8][sid & 0xff];
	if (!e->valid)
		m->cc_count++;
	e->valid = true;
	e->reason = (uint8_t)reason;
	e->did = did;
	e->lo = lo;
	e->hi = hi;
}

/* Invalidations drain the write buffer as well (6.8): table writes made before them
 * are visible to the walks after them. */
static void drain_write_buffer(struct model *m)
{
	if (m->cfg.rwbf && m->ops.flush_write_buffer)
		m->ops.flush_write_buffer(m->ctx);
}

unsigned dmar__mdl_cc_invalidate(struct model *m, unsigned gran, uint16_t did, uint16_t sid,
				 unsigned fm)
{
	/* FM masks the low 0, 1, 2 or 3 bits of the function number (11.4.7). */
	static const uint16_t fm_mask[4] = { 0, 4, 6, 7 };
	unsigned b, d;

	m->stats.cc_inval[gran & 3u]++;
	drain_write_buffer(m);
	if (m->cfg.null_hw)
		return gran; /* nothing is cached */
	for (b = 0; b < 256; b++) {
		if (!m->cc[b])
			continue;
		for (d = 0; d < 256; d++) {
			struct cc_entry *e = &m->cc[b][d];
			uint16_t esid = (uint16_t)(b << 8 | d);

			if (!e->valid)
				continue;
			if (gran == VTD_CC_DOMAIN && e->did != did)
				continue;
			if (gran == VTD_CC_DEVICE &&
			    (e->did != did || ((esid ^ sid) & ~fm_mask[fm & 3u]) != 0))
				continue;
			e->valid = false;
			m->cc_count--;
		}
	}
	return gran;
}

struct tlb_entry *dmar__mdl_tlb_lookup(struct model *m, uint16_t did, unsigned level, bool leaf,
			     uint64_t iova)
{
	uint64_t key = iova >> level_shift(level);
	struct tlb_entry *e = m->tlb[bucket(key, did, level, leaf)];

	for (; e; e = e->next)
		if (e->key == key && e->did == did && e->level == level && e->leaf == leaf)
			return e;
	return NULL;
}

void dmar__mdl_tlb_insert(struct model *m, uint16_t did, unsigned level, bool leaf, uint64_t iova,
		uint64_t addr, unsigned perm)
{
	uint64_t key = iova >> level_shift(level);
	struct tlb_entry *e = dmar__mdl_tlb_lookup(m, did, level, leaf, iova);
	unsigned b, cap = m->cfg.iotlb_capacity;

	if (!e) {
		if (cap && (leaf ? m->tlb_leaf : m->tlb_psc) >= cap)
			tlb_remove_if(m, NULL, NULL);
		e = m->ops.alloc(m->ctx, sizeof(*e));
		if (!e)
			return; /* not cached */
		b = bucket(key, did, level, leaf);
		e->next = m->tlb[b];
		m->tlb[b] = e;
		m->tlb_used[b / 64u] |= 1ull << (b % 64u);
		e->key = key;
		e->did = did;
		e->level = (uint8_t)level;
		e->leaf = leaf;
		if (leaf)
			m->tlb_leaf++;
		else
			m->tlb_psc++;
	}
	e->addr = addr;
	e->perm = (uint8_t)perm;
}

struct inval_range {
	uint16_t did;
	uint64_t start, last; /* inclusive */
	bool ih;
};

static bool drop_domain(const struct tlb_entry *e, const void *arg)
{
	return e->did == ((const struct inval_range *)arg)->did;
}

static bool drop_range(const struct tlb_entry *e, const void *arg)
{
	const struct inval_range *r = arg;
	unsigned shift = level_shift(e->level);
	uint64_t start = e->key << shift, last = start + ((1ull << shift) - 1u);

	if (e->did != r->did || (!e->leaf && r->ih))
		return false;
	return start <= r->last && last >= r->start;
}

/* The same as tlb_remove_if(drop_range) for a small range: looks up each key the range
 * touches at each level instead of scanning every bucket. */
static void remove_range_by_key(struct model *m, const struct inval_range *r)
{
	unsigned level;

	for (level = 1; level <= 5; level++) {
		unsigned shift = level_shift(level);
		uint64_t key;

		for (key = r->start >> shift; key <= r->last >> shift; key++) {
			for (unsigned leaf = 0; leaf < 2; leaf++) {
				struct tlb_entry **pp;

				if ((!leaf && (r->ih || level == 1)) || (leaf && level > 3))
					continue;
				pp = &m->tlb[bucket(key, r->did, level, leaf)];
				while (*pp) {
					struct tlb_entry *e = *pp;

					if (e->key == key && e->did == r->did && e->level == level &&
					    e->leaf == leaf) {
						*pp = e->next;
						tlb_free(m, e);
					} else {
						pp = &e->next;
					}
				}
			}
			if (key == UINT64_MAX >> shift)
				break;
		}
	}
}

unsigned dmar__mdl_iotlb_invalidate(struct model *m, unsigned gran, uint16_t did, uint64_t addr,
			  unsigned am, bool ih)
{
	struct inval_range r;

	if (gran == VTD_IOTLB_PAGE && !m->cfg.psi)
		gran = VTD_IOTLB_DOMAIN; /* done at a coarser granularity, reported in IAIG */
	if (gran == 0 || (gran == VTD_IOTLB_PAGE && am > m->cfg.mamv))
		return 0;
	m->stats.iotlb_inval[gran]++;
	drain_write_buffer(m);
	if (gran == VTD_IOTLB_PAGE)
		m->stats.iotlb_inval_pages += 1ull << am;
	if (m->cfg.null_hw || m->tlb_leaf + m->tlb_psc == 0)
		return gran; /* nothing is cached */
	r.did = did;
	r.ih = ih;
	switch (gran) {
	case VTD_IOTLB_GLOBAL:
		tlb_remove_if(m, NULL, NULL);
		break;
	case VTD_IOTLB_DOMAIN:
		tlb_remove_if(m, drop_domain, &r);
		break;
	default:
		r.start = addr & ~((1ull << (12u + am)) - 1u);
		r.last = r.start + ((1ull << (12u + am)) - 1u);
		if (am <= 6)
			remove_range_by_key(m, &r);
		else
			tlb_remove_if(m, drop_range, &r);
		break;
	}
	return gran;
}

unsigned dmar_model_iotlb_entries(const struct model *m)
{
	return m->tlb_leaf;
}

unsigned dmar_model_ctx_entries(const struct model *m)
{
	return m->cc_count;
}
