/*
 * pgtable.c - VT-d second-level page tables (spec 9.8): map, unmap, lookup, explain.
 *
 * Every change runs in two passes over the same range: a read-only pass that checks the
 * range (EEXIST / ENOENT) and counts the table pages the change needs, then, once those
 * pages are allocated, a writing pass that cannot fail. So a failed call has written
 * nothing, and the unit never sees a half-made mapping.
 *
 * Invariants: a non-root table page holds at least one present entry (an unmap that
 * empties one detaches it); non-leaf entries are R|W with the child's address; leaves
 * hold R/W from the caller, PS at levels 2 and 3.
 */
#include "pgtable.h"

#include "dmar/error.h"
#include "regs.h"
#include "lib/util.h"

#define PT_ENTRIES 512u
#define PT_PRESENT (VTD_SL_R | VTD_SL_W)
#define PT_PAGE_MASK ((uint64_t)DMAR_PAGE_SIZE - 1)
#define PT_PHYS_LAST (VTD_SL_ADDR_MASK | PT_PAGE_MASK) /* 52-bit physical addresses */

static inline unsigned lvl_shift(unsigned level)
{
	return DMAR_PAGE_SHIFT + 9u * (level - 1u);
}

static inline uint64_t lvl_size(unsigned level)
{
	return 1ull << lvl_shift(level);
}

static inline unsigned lvl_index(uint64_t iova, unsigned level)
{
	return (unsigned)(iova >> lvl_shift(level)) & (PT_ENTRIES - 1u);
}

/* Identifies the table at `level` whose span holds iova. */
static inline uint64_t tbl_tag(uint64_t iova, unsigned level)
{
	return iova >> (lvl_shift(level) + 9u);
}

static inline uint64_t width_limit(const struct pgtable *pt)
{
	return 1ull << lvl_shift(pt->levels + 1u);
}

static inline bool pte_present(uint64_t e)
{
	return (e & PT_PRESENT) != 0;
}

static inline bool pte_leaf(uint64_t e, unsigned level)
{
	return level == 1 || (e & VTD_SL_PS);
}

/* A single 64-bit store (also on 32-bit targets), so the unit never reads half an
 * entry. A new table is published with release order: its contents come first. */
typedef uint64_t pte_word __attribute__((aligned(8))); /* table pages are page-aligned */

static inline void pte_store(uint64_t *p, uint64_t v)
{
	__atomic_store_n((pte_word *)p, v, __ATOMIC_RELAXED);
}

static inline void pte_publish(uint64_t *p, uint64_t v)
{
	__atomic_store_n((pte_word *)p, v, __ATOMIC_RELEASE);
}

static bool leaf_allowed(const struct pgtable *pt, unsigned level)
{
	if (level == 1)
		return true;
	if (!(pt->sp_levels & PGTABLE_SP_2M))
		return false;
	return level == 2 || (level == 3 && (pt->sp_levels & PGTABLE_SP_1G));
}

/* Whether [a, next), inside one slot of `level`, can be one leaf mapping a + delta. */
static inline bool can_leaf(const struct pgtable *pt, unsigned level, uint64_t a,
			    uint64_t next, uint64_t delta)
{
	uint64_t sz = lvl_size(level);

	if (level == 1)
		return true;
	return next - a == sz && ((a | (a + delta)) & (sz - 1)) == 0 && leaf_allowed(pt, level);
}

static inline uint64_t slot_end(uint64_t a, unsigned level, uint64_t e)
{
	return dmar_min_u64(e, (a | (lvl_size(level) - 1)) + 1);
}

static uint64_t *tbl_va(const struct pgtable *pt, uint64_t e)
{
	return pt->os->ops->phys_to_virt(pt->os->ctx, e & VTD_SL_ADDR_MASK);
}

static void flush_range(const struct pgtable *pt, const void *va, size_t len)
{
	if (!pt->coherent)
		pt->os->ops->cache_flush(pt->os->ctx, va, len);
}

/* Flushes entries lo..hi of one table, if any was written (lo <= hi). */
static void flush_entries(const struct pgtable *pt, const uint64_t *t, unsigned lo,
			  unsigned hi)
{
	if (lo <= hi)
		flush_range(pt, &t[lo], (size_t)(hi - lo + 1) * sizeof(uint64_t));
}

/* Whether no entry of the table is present. The entry at `start` (a neighbour of what
 * was just cleared) answers most "no"s at once; otherwise every entry is OR-ed together,
 * a branch-free loop the compiler vectorises (an empty table must be read whole). */
static bool table_empty(const uint64_t *t, unsigned start)
{
	uint64_t acc = 0;
	if (pte_present(t[start & (PT_ENTRIES - 1u)]))
		return false;
	for (unsigned n = 0; n < PT_ENTRIES; n++)
		acc |= t[n];
	return !pte_present(acc);
}

static void cache_reset(struct pgtable *pt)
{
	for (unsigned l = 0; l <= PGTABLE_MAX_LEVELS; l++)
		pt->walk_cache[l].va = NULL;
}

/* --- pages allocated before a change writes anything -------------------------------- */

struct pt_pool {
	void *head;
	uint64_t head_phys;
	uint64_t count;
};

static void pool_release(struct pgtable *pt, struct pt_pool *pool)
{
	while (pool->count) {
		void *va = pool->head;
		uint64_t phys = pool->head_phys;

		dmar_memcpy(&pool->head, va, sizeof(pool->head));
		dmar_memcpy(&pool->head_phys, (char *)va + 8, sizeof(uint64_t));
		dmar_memset(va, 0, 16);
		pt->os->ops->page_free(pt->os->ctx, va, phys);
		pool->count--;
	}
}

/* Allocates n pages; on failure frees what it got and returns DMAR_ENOMEM. The pages
 * are unreachable by the unit, so their first 16 bytes can chain them. */
static int pool_fill(struct pgtable *pt, struct pt_pool *pool, uint64_t n)
{
	while (pool->count < n) {
		uint64_t phys = 0;
		void *va = pt->os->ops->page_alloc(pt->os->ctx, &phys);

		if (!va) {
			pool_release(pt, pool);
			return DMAR_ENOMEM;
		}
		dmar_memcpy(va, &pool->head, sizeof(pool->head));
		dmar_memcpy((char *)va + 8, &pool->head_phys, sizeof(uint64_t));
		pool->head = va;
		pool->head_phys = phys;
		pool->count++;
	}
	return DMAR_OK;
}

static uint64_t *pool_take(struct pgtable *pt, struct pt_pool *pool, uint64_t *phys)
{
	uint64_t *va = pool->head;

	*phys = pool->head_phys;
	dmar_memcpy(&pool->head, va, sizeof(pool->head));
	dmar_memcpy(&pool->head_phys, (char *)va + 8, sizeof(uint64_t));
	dmar_memset(va, 0, 16);
	pool->count--;
	pt->pages++;
	return va;
}

/* --- pages detached by an unmap, freed after the invalidation ------------------------ */

static void defer_page(struct pgtable *pt, struct pgtable_flush *flush, uint64_t *va,
		       uint64_t phys)
{
	if (!flush) {
		pt->os->ops->page_free(pt->os->ctx, va, phys);
		pt->pages--;
		return;
	}
	/* The unit may still walk this page until the invalidation: the link has R=W=0,
	 * so entry 0 then reads as not present (it was being unmapped anyway). */
	pte_store(&va[0], flush->deferred_pages ? flush->deferred_phys : 0);
	flush->deferred = va;
	flush->deferred_phys = phys;
	flush->deferred_pages++;
}

void dmar__pgtable_flush_done(struct pgtable *pt, struct pgtable_flush *flush)
{
	uint64_t *va;
	uint64_t phys;

	if (!pt || !flush)
		return;
	va = flush->deferred;
	phys = flush->deferred_phys;
	while (flush->deferred_pages) {
		uint64_t prev = va[0];

		pt->os->ops->page_free(pt->os->ctx, va, phys);
		pt->pages--;
		if (--flush->deferred_pages) {
			phys = prev;
			va = pt->os->ops->phys_to_virt(pt->os->ctx, prev);
		}
	}
	flush->deferred = NULL;
	flush->deferred_phys = 0;
}

/* [s, e) widened to cover [a, b) too (an empty range takes the other). */
static void range_union(uint64_t *s, uint64_t *e, uint64_t a, uint64_t b)
{
	if (a == b)
		return;
	if (*s == *e) {
		*s = a;
		*e = b;
		return;
	}
	*s = dmar_min_u64(*s, a);
	*e = dmar_max_u64(*e, b);
}

void dmar__pgtable_flush_merge(struct pgtable *pt, struct pgtable_flush *into,
			 struct pgtable_flush *from)
{
	range_union(&into->start, &into->end, from->start, from->end);
	range_union(&into->tables_start, &into->tables_end, from->tables_start,
		    from->tables_end);
	into->tables_changed = into->tables_changed || from->tables_changed;
	if (from->deferred_pages) {
		/* Link the oldest page of `from` to the newest of `into`. */
		uint64_t *va = from->deferred;
		for (uint64_t n = 1; n < from->deferred_pages; n++)
			va = pt->os->ops->phys_to_virt(pt->os->ctx, va[0]);
		if (into->deferred_pages)
			pte_store(&va[0], into->deferred_phys);
		into->deferred = from->deferred;
		into->deferred_phys = from->deferred_phys;
		into->deferred_pages += from->deferred_pages;
	}
	dmar_memset(from, 0, sizeof(*from));
}

/* Detaches a table page and every table below it (the parent entry is cleared by the
 * caller). */
static void detach_tree(struct pgtable *pt, uint64_t *t, unsigned level, uint64_t phys,
			struct pgtable_flush *flush)
{
	if (level > 1) {
		for (unsigned i = 0; i < PT_ENTRIES; i++) {
			uint64_t e = t[i];

			if (pte_present(e) && !pte_leaf(e, level))
				detach_tree(pt, tbl_va(pt, e), level - 1, e & VTD_SL_ADDR_MASK, flush);
		}
	}
	defer_page(pt, flush, t, phys);
}

/* --- walking ------------------------------------------------------------------------ */

/* The deepest existing table whose span holds [s, last], starting from the cached walk
 * when it is there; *level gets its level. Stops early at a missing table or a leaf. */
static uint64_t *descend(struct pgtable *pt, uint64_t s, uint64_t last, unsigned *level)
{
	unsigned top = pt->levels, target = 1, l = top;
	uint64_t *t = pt->root;

	while (target < top && tbl_tag(s, target) != tbl_tag(last, target))
		target++;
	for (unsigned c = target; c < top; c++) {
		if (pt->walk_cache[c].va && pt->walk_cache[c].tag == tbl_tag(s, c)) {
			t = pt->walk_cache[c].va;
			l = c;
			break;
		}
	}
	while (l > target) {
		uint64_t e = t[lvl_index(s, l)];

		if (!pte_present(e) || pte_leaf(e, l))
			break;
		t = tbl_va(pt, e);
		l--;
		pt->walk_cache[l].tag = tbl_tag(s, l);
		pt->walk_cache[l].va = t;
	}
	*level = l;
	return t;
}

/* Empties *flush (so a failed call reports nothing) and checks the range. */
static int begin_change(const struct pgtable *pt, uint64_t iova, uint64_t size,
			struct pgtable_flush *flush)
{
	if (flush)
		dmar_memset(flush, 0, sizeof(*flush));
	if (!pt || !pt->root)
		return DMAR_EINVAL;
	if (!size || ((iova | size) & PT_PAGE_MASK))
		return DMAR_EINVAL;
	if (iova + size < iova || iova + size > width_limit(pt))
		return DMAR_ERANGE;
	return DMAR_OK;
}

/* Stops tracking kept table k (it was detached, or is about to be). */
/* A bit per table page, for the filter of kept tables (kept_mask). */
static inline uint64_t kept_bit(const uint64_t *t)
{
	return 1ull << (((uintptr_t)t >> 12) & 63u);
}

static void forget_kept(struct pgtable *pt, unsigned k)
{
	pt->kept[k].level = 0;
	pt->kept[k].va = NULL;
	pt->kept_mask = 0;
	for (unsigned j = 0; j < PGTABLE_KEPT; j++)
		if (pt->kept[j].level)
			pt->kept_mask |= kept_bit(pt->kept[j].va);
}

/* Which kept slot tracks table t, or -1. */
static inline int kept_find(const struct pgtable *pt, const uint64_t *t)
{
	if (!(pt->kept_mask & kept_bit(t)))
		return -1; /* (the common answer, without looking at the slots) */
	for (unsigned k = 0; k < PGTABLE_KEPT; k++)
		if (pt->kept[k].va == t)
			return (int)k;
	return -1;
}

/* Counts n more present entries in t if it is kept. */
static inline void kept_add(struct pgtable *pt, const uint64_t *t, unsigned n)
{
	int k = kept_find(pt, t);
	if (k >= 0)
		pt->kept[k].present += n;
}

/* --- init / fini -------------------------------------------------------------------- */

int dmar__pgtable_init(struct pgtable *pt, const struct dmar_os *os, unsigned levels,
		 unsigned sp_levels, bool coherent)
{
	const struct dmar_os_ops *ops;
	uint64_t phys = 0;

	if (!pt)
		return DMAR_EINVAL;
	dmar_memset(pt, 0, sizeof(*pt));
	if (!os || !os->ops)
		return DMAR_EINVAL;
	ops = os->ops;
	if (!ops->page_alloc || !ops->page_free || !ops->phys_to_virt ||
	    (!coherent && !ops->cache_flush))
		return DMAR_EINVAL;
	if (levels < PGTABLE_MIN_LEVELS || levels > PGTABLE_MAX_LEVELS ||
	    (sp_levels & ~(PGTABLE_SP_2M | PGTABLE_SP_1G)))
		return DMAR_EINVAL;
	pt->os = os;
	pt->levels = levels;
	pt->sp_levels = sp_levels;
	pt->coherent = coherent;
	pt->root = ops->page_alloc(os->ctx, &phys);
	if (!pt->root)
		return DMAR_ENOMEM;
	pt->root_phys = phys;
	pt->pages = 1;
	flush_range(pt, pt->root, DMAR_PAGE_SIZE);
	return DMAR_OK;
}

static void free_tree(struct pgtable *pt, uint64_t *t, unsigned level, uint64_t phys)
{
	if (level > 1) {
		for (unsigned i = 0; i < PT_ENTRIES; i++) {
			uint64_t e = t[i];

			if (pte_present(e) && !pte_leaf(e, level))
				free_tree(pt, tbl_va(pt, e), level - 1, e & VTD_SL_ADDR_MASK);
		}
	}
	pt->os->ops->page_free(pt->os->ctx, t, phys);
	pt->pages--;
}

void dmar__pgtable_fini(struct pgtable *pt)
{
	if (!pt || !pt->root)
		return;
	free_tree(pt, pt->root, pt->levels, pt->root_phys);
	for (unsigned k = 0; k < PGTABLE_KEPT; k++)
		forget_kept(pt, k);
	pt->root = NULL;
	pt->root_phys = 0;
	cache_reset(pt);
}

/* --- map ---------------------------------------------------------------------------- */

/* Table pages needed to map [s, e) (mapping s to s + delta) below table t of `level`,
 * or DMAR_EEXIST. t == NULL stands for a table still to be made (all empty). */
static int64_t map_count(const struct pgtable *pt, const uint64_t *t, unsigned level,
			 uint64_t s, uint64_t e, uint64_t delta)
{
	int64_t n = 0;

	if (!t && level == 1)
		return 0;
	for (uint64_t a = s, next; a < e; a = next) {
		uint64_t ent = t ? t[lvl_index(a, level)] : 0;
		int64_t r;

		next = slot_end(a, level, e);
		/* A leaf could go here: unless a table (the kept empty one, or one on its
		 * path) is already there, then the pages go into that table. */
		if (can_leaf(pt, level, a, next, delta) && !(pte_present(ent) && !pte_leaf(ent, level))) {
			if (pte_present(ent))
				return DMAR_EEXIST;
			continue;
		}
		if (!pte_present(ent)) {
			n += 1 + map_count(pt, NULL, level - 1, a, next, delta);
			continue;
		}
		if (pte_leaf(ent, level))
			return DMAR_EEXIST;
		r = map_count(pt, tbl_va(pt, ent), level - 1, a, next, delta);
		if (r < 0)
			return r;
		n += r;
	}
	return n;
}

struct map_ctx {
	struct pt_pool pool;
	uint64_t delta;
	uint64_t bits; /* VTD_SL_R/W of the leaves */
	bool linked;   /* a new table was linked */
};

/* Writes the leaves of [s, e) below table t. A fresh table is flushed whole by the
 * caller, so only an existing one flushes the entries written here. */
static void map_fill(struct pgtable *pt, uint64_t *t, unsigned level, uint64_t s,
		     uint64_t e, struct map_ctx *c, bool fresh)
{
	unsigned lo = PT_ENTRIES, hi = 0;

	if (level == 1) {
		uint64_t pa = s + c->delta;

		lo = lvl_index(s, 1);
		hi = lvl_index(e - 1, 1);
		for (unsigned i = lo; i <= hi; i++, pa += DMAR_PAGE_SIZE)
			pte_store(&t[i], pa | c->bits);
		kept_add(pt, t, hi - lo + 1);
	} else {
		for (uint64_t a = s, next; a < e; a = next) {
			unsigned i = lvl_index(a, level);
			uint64_t ent = t[i], cphys;
			uint64_t *child;

			next = slot_end(a, level, e);
			if (can_leaf(pt, level, a, next, c->delta) && !pte_present(ent)) {
				pte_store(&t[i], (a + c->delta) | c->bits | VTD_SL_PS);
			} else if (pte_present(ent)) {
				map_fill(pt, tbl_va(pt, ent), level - 1, a, next, c, false);
				continue;
			} else {
				child = pool_take(pt, &c->pool, &cphys);
				map_fill(pt, child, level - 1, a, next, c, true);
				flush_range(pt, child, DMAR_PAGE_SIZE);
				pte_publish(&t[i], cphys | PT_PRESENT);
				c->linked = true;
			}
			kept_add(pt, t, 1);
			lo = i < lo ? i : lo;
			hi = i;
		}
	}
	if (!fresh)
		flush_entries(pt, t, lo, hi);
}

/* map for a range inside one existing leaf table t (the common busdma load): the
 * checks and stores of map_count/map_fill without their walk. `pa_bits` is the
 * physical address of iova 0 plus the R/W bits. */
static int map_in_leaf_table(struct pgtable *pt, uint64_t *t, uint64_t iova, uint64_t size,
			     uint64_t pa_bits, struct pgtable_flush *flush)
{
	unsigned lo = lvl_index(iova, 1), hi = lvl_index(iova + size - 1, 1);
	for (unsigned i = lo; i <= hi; i++)
		if (pte_present(t[i]))
			return DMAR_EEXIST;
	uint64_t v = pa_bits + iova;
	for (unsigned i = lo; i <= hi; i++, v += DMAR_PAGE_SIZE)
		pte_store(&t[i], v);
	kept_add(pt, t, hi - lo + 1);
	flush_entries(pt, t, lo, hi);
	if (flush) {
		flush->start = iova;
		flush->end = iova + size;
	}
	return DMAR_OK;
}

int dmar__pgtable_map_flush(struct pgtable *pt, uint64_t iova, uint64_t phys, uint64_t size,
		      unsigned prot, struct pgtable_flush *flush)
{
	struct map_ctx c;
	uint64_t *t;
	unsigned level;
	int64_t need;
	int rc;

	rc = begin_change(pt, iova, size, flush);
	if (rc)
		return rc;
	if (!prot || (prot & ~DMAR_PROT_RW) || (phys & PT_PAGE_MASK))
		return DMAR_EINVAL;
	if (phys + size - 1 < phys || phys + size - 1 > PT_PHYS_LAST)
		return DMAR_ERANGE;

	dmar_memset(&c, 0, sizeof(c));
	c.delta = phys - iova;
	c.bits = ((prot & DMAR_PROT_READ) ? VTD_SL_R : 0) | ((prot & DMAR_PROT_WRITE) ? VTD_SL_W : 0);
	t = descend(pt, iova, iova + size - 1, &level);
	if (level == 1)
		return map_in_leaf_table(pt, t, iova, size, c.delta | c.bits, flush);
	need = map_count(pt, t, level, iova, iova + size, c.delta);
	if (need < 0)
		return (int)need;
	rc = pool_fill(pt, &c.pool, (uint64_t)need);
	if (rc)
		return rc;
	map_fill(pt, t, level, iova, iova + size, &c, false);
	if (flush) {
		flush->start = iova;
		flush->end = iova + size;
		flush->tables_changed = c.linked;
	}
	return DMAR_OK;
}

int dmar__pgtable_map(struct pgtable *pt, uint64_t iova, uint64_t phys, uint64_t size,
		unsigned prot)
{
	return dmar__pgtable_map_flush(pt, iova, phys, size, prot, NULL);
}

/* --- unmap -------------------------------------------------------------------------- */

/* Table pages needed to split a leaf of `level` so that [s, e), a part of it, can be
 * removed: one table of the level below, plus the splits of its slots [s, e) covers
 * only partly (at most the first and the last). */
static uint64_t split_pages(unsigned level, uint64_t s, uint64_t e)
{
	unsigned below = level - 1;
	uint64_t sz = lvl_size(below), n = 1;
	uint64_t s0 = s & ~(sz - 1), e0 = (e - 1) & ~(sz - 1);

	if (below == 1)
		return 1;
	if (s0 == e0) {
		if (s != s0 || e != s0 + sz)
			n += split_pages(below, s, e);
		return n;
	}
	if (s != s0)
		n += split_pages(below, s, s0 + sz);
	if (e != e0 + sz)
		n += split_pages(below, e0, e);
	return n;
}

struct unmap_scan {
	uint64_t need;          /* pages for splits */
	uint64_t start, end;    /* leaves touched: first one's start, last one's end */
	bool any;
};

static int unmap_count(const struct pgtable *pt, const uint64_t *t, unsigned level,
		       uint64_t s, uint64_t e, struct unmap_scan *u)
{
	uint64_t sz = lvl_size(level);

	for (uint64_t a = s, next; a < e; a = next) {
		uint64_t ent = t[lvl_index(a, level)];
		int rc;

		next = slot_end(a, level, e);
		if (!pte_present(ent))
			return DMAR_ENOENT;
		if (pte_leaf(ent, level)) {
			uint64_t base = a & ~(sz - 1);

			if (!u->any)
				u->start = base;
			u->any = true;
			u->end = base + sz;
			if (a != base || next != base + sz)
				u->need += split_pages(level, a, next);
			continue;
		}
		rc = unmap_count(pt, tbl_va(pt, ent), level - 1, a, next, u);
		if (rc)
			return rc;
	}
	return DMAR_OK;
}

struct unmap_ctx {
	struct pt_pool pool;
	struct pgtable_flush *flush;
	bool tables;   /* a non-leaf entry changed */
	bool detached; /* a table page was detached */
};

/* Fills a new table with the leaves that together map what leaf `ent` of level+1
 * mapped, with the same rights. */
static void split_fill(uint64_t *t, unsigned level, uint64_t ent)
{
	uint64_t sz = lvl_size(level);
	uint64_t pa = ent & VTD_SL_ADDR_MASK & ~(lvl_size(level + 1) - 1);
	uint64_t attr = (ent & ~VTD_SL_ADDR_MASK & ~VTD_SL_PS) | (level > 1 ? VTD_SL_PS : 0);

	for (unsigned i = 0; i < PT_ENTRIES; i++, pa += sz)
		t[i] = pa | attr;
}

static bool after_clear(struct pgtable *pt, uint64_t *t, unsigned lo, unsigned hi,
			unsigned cleared);

/* Removes [s, e) below table t; returns whether t is now empty (never for a fresh
 * table, which only ever loses part of what it maps). */
static bool unmap_apply(struct pgtable *pt, uint64_t *t, unsigned level, uint64_t s,
			uint64_t e, struct unmap_ctx *c, bool fresh)
{
	uint64_t sz = lvl_size(level);
	unsigned lo = PT_ENTRIES, hi = 0, cleared = 0;

	for (uint64_t a = s, next; a < e; a = next) {
		unsigned i = lvl_index(a, level);
		uint64_t ent = t[i], base = a & ~(sz - 1), cphys;
		bool whole;
		uint64_t *child;

		next = slot_end(a, level, e);
		whole = a == base && next == base + sz;
		if (pte_leaf(ent, level)) {
			if (whole) {
				pte_store(&t[i], 0);
				cleared++;
			} else {
				child = pool_take(pt, &c->pool, &cphys);
				split_fill(child, level - 1, ent);
				unmap_apply(pt, child, level - 1, a, next, c, true);
				flush_range(pt, child, DMAR_PAGE_SIZE);
				pte_publish(&t[i], cphys | PT_PRESENT);
				c->tables = true;
			}
		} else if (whole) {
			/* kept tables, filled again since, may be among them */
			for (unsigned k = 0; k < PGTABLE_KEPT; k++)
				if (pt->kept[k].level && pt->kept[k].base >= base &&
				    pt->kept[k].base < base + sz)
					forget_kept(pt, k);
			detach_tree(pt, tbl_va(pt, ent), level - 1, ent & VTD_SL_ADDR_MASK, c->flush);
			pte_store(&t[i], 0);
			cleared++;
			c->tables = c->detached = true;
		} else {
			child = tbl_va(pt, ent);
			if (!unmap_apply(pt, child, level - 1, a, next, c, false))
				continue;
			int k = kept_find(pt, child);
			if (k >= 0)
				forget_kept(pt, (unsigned)k); /* emptied by a wider unmap */
			defer_page(pt, c->flush, child, ent & VTD_SL_ADDR_MASK);
			pte_store(&t[i], 0);
			cleared++;
			c->tables = c->detached = true;
		}
		lo = i < lo ? i : lo;
		hi = i;
	}
	if (fresh)
		return false;
	return after_clear(pt, t, lo, hi, cleared);
}

/* After `cleared` entries of t in [lo, hi] were cleared: flushes them and returns
 * whether t is now empty. */
static bool after_clear(struct pgtable *pt, uint64_t *t, unsigned lo, unsigned hi,
			unsigned cleared)
{
	flush_entries(pt, t, lo, hi);
	int k = kept_find(pt, t);
	if (k >= 0) {
		pt->kept[k].present -= cleared;
		return lo <= hi && !pt->kept[k].present;
	}
	return lo <= hi && table_empty(t, hi + 1);
}

/* Clears the present 4 KiB leaves [lo, hi] of leaf table t; whether t is now empty. */
static bool unmap_leaves(struct pgtable *pt, uint64_t *t, unsigned lo, unsigned hi)
{
	for (unsigned i = lo; i <= hi; i++)
		pte_store(&t[i], 0);
	return after_clear(pt, t, lo, hi, hi - lo + 1);
}

/* After the table of `level` holding iova was emptied: detach it, and each ancestor
 * below the root that this empties in turn. */
static void prune_up(struct pgtable *pt, uint64_t iova, unsigned level, struct unmap_ctx *c)
{
	uint64_t *tables[PGTABLE_MAX_LEVELS + 1];
	uint64_t phys[PGTABLE_MAX_LEVELS + 1];
	uint64_t *t = pt->root, tphys = pt->root_phys;

	for (unsigned l = pt->levels; l >= level; l--) {
		tables[l] = t;
		phys[l] = tphys;
		if (l > level) {
			uint64_t e = t[lvl_index(iova, l)];

			tphys = e & VTD_SL_ADDR_MASK;
			t = tbl_va(pt, e);
		}
	}
	for (unsigned l = level; l < pt->levels; l++) {
		uint64_t *parent = tables[l + 1];
		unsigned i = lvl_index(iova, l + 1);

		int k = kept_find(pt, tables[l]);
		if (k >= 0)
			forget_kept(pt, (unsigned)k);
		defer_page(pt, c->flush, tables[l], phys[l]);
		pte_store(&parent[i], 0);
		flush_entries(pt, parent, i, i);
		c->tables = c->detached = true;
		if ((k = kept_find(pt, parent)) >= 0) {
			/* a kept table filled again since: one entry fewer, and when that
			 * was its last, it goes too (kept tables are never the root) */
			if (--pt->kept[k].present)
				break;
			continue;
		}
		if (l + 1 == pt->levels || !table_empty(parent, i + 1))
			break;
	}
}

/* Detaches kept empty table k (and the ancestors that leaves empty) into c's flush,
 * whose tables_start/tables_end then cover its region too. */
static void release_kept(struct pgtable *pt, unsigned k, struct unmap_ctx *c)
{
	uint64_t base = pt->kept[k].base;
	unsigned level = pt->kept[k].level;

	forget_kept(pt, k);
	prune_up(pt, base, level, c);
	if (c->flush)
		range_union(&c->flush->tables_start, &c->flush->tables_end, base,
			    base + lvl_size(level + 1));
}

/* The unmap left table t (of `level`, below the root, holding iova) empty: it stays
 * linked for the next map in its region, and the table kept before, if another one, is
 * released. A kept table holds only not-present entries, and the leaves it held were
 * invalidated by the unmap that emptied it: a device access there faults. */
static void keep_empty(struct pgtable *pt, uint64_t *t, unsigned level, uint64_t iova,
		       struct unmap_ctx *c)
{
	if (kept_find(pt, t) >= 0)
		return;
	/* A free slot, or one whose table was filled again since (just a table now);
	 * else the kept empty table nearest to this one makes room (a neighbour's region
	 * is invalidated in one go with the unmap's range). */
	uint64_t base = iova & ~(lvl_size(level + 1) - 1), best = UINT64_MAX;
	unsigned k = PGTABLE_KEPT;
	for (unsigned j = 0; j < PGTABLE_KEPT && k == PGTABLE_KEPT; j++)
		if (!pt->kept[j].level || pt->kept[j].present)
			k = j;
	if (k == PGTABLE_KEPT) {
		for (unsigned j = 0; j < PGTABLE_KEPT; j++) {
			uint64_t b = pt->kept[j].base;
			uint64_t dist = b > base ? b - base : base - b;
			if (dist < best) {
				best = dist;
				k = j;
			}
		}
		release_kept(pt, k, c);
	}
	pt->kept_mask |= kept_bit(t);
	pt->kept[k].level = level;
	pt->kept[k].base = base;
	pt->kept[k].va = t;
	pt->kept[k].present = 0;
}

/* unmap for a range inside one leaf table t (the common busdma unload): no count
 * pass, no split. DMAR_ENOENT (nothing changed) when a page is not mapped. */
static int unmap_in_leaf_table(struct pgtable *pt, uint64_t *t, uint64_t iova, uint64_t size,
			       struct unmap_ctx *c)
{
	unsigned lo = lvl_index(iova, 1), hi = lvl_index(iova + size - 1, 1);
	for (unsigned i = lo; i <= hi; i++)
		if (!pte_present(t[i]))
			return DMAR_ENOENT;
	if (unmap_leaves(pt, t, lo, hi) && pt->levels > 1)
		keep_empty(pt, t, 1, iova, c);
	if (c->detached)
		cache_reset(pt);
	return DMAR_OK;
}

int dmar__pgtable_unmap_merge(struct pgtable *pt, uint64_t iova, uint64_t size,
			      struct pgtable_flush *acc)
{
	struct pgtable_flush fl;
	struct unmap_ctx c;
	unsigned level;
	int rc = begin_change(pt, iova, size, &fl);
	if (rc)
		return rc;
	uint64_t *t = descend(pt, iova, iova + size - 1, &level);
	if (level != 1) {
		rc = dmar__pgtable_unmap(pt, iova, size, &fl);
		if (rc == DMAR_OK)
			dmar__pgtable_flush_merge(pt, acc, &fl);
		return rc;
	}
	dmar_memset(&c, 0, sizeof(c));
	c.flush = &fl;
	rc = unmap_in_leaf_table(pt, t, iova, size, &c);
	if (rc)
		return rc;
	if (c.detached) {
		fl.start = iova;
		fl.end = iova + size;
		fl.tables_changed = c.tables;
		dmar__pgtable_flush_merge(pt, acc, &fl);
	} else {
		/* The range straight from registers: nothing else to merge. */
		range_union(&acc->start, &acc->end, iova, iova + size);
	}
	return DMAR_OK;
}

int dmar__pgtable_unmap(struct pgtable *pt, uint64_t iova, uint64_t size,
		  struct pgtable_flush *flush)
{
	struct unmap_scan u;
	struct unmap_ctx c;
	uint64_t *t;
	unsigned level;
	int rc;

	rc = begin_change(pt, iova, size, flush);
	if (rc)
		return rc;
	t = descend(pt, iova, iova + size - 1, &level);
	dmar_memset(&c, 0, sizeof(c));
	c.flush = flush;
	if (level == 1) {
		rc = unmap_in_leaf_table(pt, t, iova, size, &c);
		if (rc)
			return rc;
		if (flush) {
			flush->start = iova;
			flush->end = iova + size;
			flush->tables_changed = c.tables;
		}
		return DMAR_OK;
	}
	{
		dmar_memset(&u, 0, sizeof(u));
		rc = unmap_count(pt, t, level, iova, iova + size, &u);
		if (rc)
			return rc;
		rc = pool_fill(pt, &c.pool, u.need);
		if (rc)
			return rc;
		if (unmap_apply(pt, t, level, iova, iova + size, &c, false) &&
		    level < pt->levels)
			keep_empty(pt, t, level, iova, &c);
	}
	if (c.detached)
		cache_reset(pt);
	if (flush) {
		flush->start = u.start;
		flush->end = u.end;
		flush->tables_changed = c.tables;
	}
	return DMAR_OK;
}

int dmar__pgtable_trim(struct pgtable *pt, struct pgtable_flush *flush)
{
	struct unmap_ctx c;

	if (flush)
		dmar_memset(flush, 0, sizeof(*flush));
	if (!pt || !pt->root)
		return DMAR_EINVAL;
	dmar_memset(&c, 0, sizeof(c));
	c.flush = flush;
	for (unsigned k = 0; k < PGTABLE_KEPT; k++)
		if (pt->kept[k].level && !pt->kept[k].present)
			release_kept(pt, k, &c);
	if (!c.detached)
		return DMAR_OK;
	cache_reset(pt);
	if (flush) {
		flush->start = flush->tables_start;
		flush->end = flush->tables_end;
		flush->tables_start = flush->tables_end = 0;
		flush->tables_changed = true;
	}
	return DMAR_OK;
}

/* --- windows: leaf tables written one entry at a time, without the walk ---------------- */

int dmar__pgtable_leaf_table(struct pgtable *pt, uint64_t iova, uint64_t **leaf)
{
	struct pt_pool pool = { 0 };
	uint64_t *t;
	unsigned need = 0;
	int rc;

	if (!pt || !pt->root)
		return DMAR_EINVAL;
	if (iova >= width_limit(pt))
		return DMAR_ERANGE;
	/* Count the missing tables; a superpage on the way is a mapping there. */
	t = pt->root;
	for (unsigned l = pt->levels; l > 1; l--) {
		uint64_t e = t[lvl_index(iova, l)];
		if (!pte_present(e)) {
			need = l - 1;
			break;
		}
		if (pte_leaf(e, l))
			return DMAR_EEXIST;
		t = tbl_va(pt, e);
	}
	if (!need) {
		/* The leaf table exists: it must map nothing yet. */
		for (unsigned i = 0; i < PT_ENTRIES; i++)
			if (pte_present(t[i]))
				return DMAR_EEXIST;
		int k = kept_find(pt, t);
		if (k >= 0)
			forget_kept(pt, (unsigned)k);
		*leaf = t;
		return DMAR_OK;
	}
	rc = pool_fill(pt, &pool, need);
	if (rc)
		return rc;
	/* Link them top down, each filled (zeroes) and flushed before it is published. */
	for (unsigned l = need + 1; l > 1; l--) {
		uint64_t cphys;
		uint64_t *child = pool_take(pt, &pool, &cphys);
		unsigned i = lvl_index(iova, l);
		flush_range(pt, child, DMAR_PAGE_SIZE);
		pte_publish(&t[i], cphys | PT_PRESENT);
		flush_entries(pt, t, i, i);
		t = child;
	}
	*leaf = t;
	return DMAR_OK;
}

int dmar__pgtable_leaf_set(const struct pgtable *pt, uint64_t *leaf, unsigned index,
			   uint64_t phys, unsigned prot)
{
	uint64_t bits = ((prot & DMAR_PROT_READ) ? VTD_SL_R : 0) |
			((prot & DMAR_PROT_WRITE) ? VTD_SL_W : 0);
	if (pte_present(__atomic_load_n((pte_word *)&leaf[index], __ATOMIC_RELAXED)))
		return DMAR_EEXIST;
	pte_store(&leaf[index], phys | bits);
	flush_entries(pt, leaf, index, index);
	return DMAR_OK;
}

bool dmar__pgtable_leaf_empty(const uint64_t *leaf)
{
	for (unsigned i = 0; i < PT_ENTRIES; i++)
		if (pte_present(__atomic_load_n((const pte_word *)&leaf[i], __ATOMIC_RELAXED)))
			return false;
	return true;
}

int dmar__pgtable_leaf_clear(const struct pgtable *pt, uint64_t *leaf, unsigned index)
{
	if (!pte_present(__atomic_load_n((pte_word *)&leaf[index], __ATOMIC_RELAXED)))
		return DMAR_ENOENT;
	pte_store(&leaf[index], 0);
	flush_entries(pt, leaf, index, index);
	return DMAR_OK;
}

/* --- lookup and explain ------------------------------------------------------------- */

static unsigned pte_prot(uint64_t e)
{
	return ((e & VTD_SL_R) ? DMAR_PROT_READ : 0) | ((e & VTD_SL_W) ? DMAR_PROT_WRITE : 0);
}

static void walk_stop(struct pgtable_walk *w, enum pgtable_walk_result r, unsigned level,
		      unsigned index, uint64_t entry, uint64_t table_phys)
{
	w->result = r;
	w->level = level;
	w->index = index;
	w->entry = entry;
	w->table_phys = table_phys;
}

int dmar__pgtable_explain(const struct pgtable *pt, uint64_t iova, struct pgtable_walk *w)
{
	const uint64_t *t;
	uint64_t tphys;
	unsigned rights = DMAR_PROT_RW;
	bool lacking = false;

	if (!pt || !pt->root || !w)
		return DMAR_EINVAL;
	dmar_memset(w, 0, sizeof(*w));
	w->iova = iova;
	if (iova >= width_limit(pt))
		return DMAR_ERANGE;
	t = pt->root;
	tphys = pt->root_phys;
	for (unsigned level = pt->levels;; level--) {
		unsigned i = lvl_index(iova, level);
		uint64_t ent = t[i];
		bool leaf = pte_leaf(ent, level);

		w->path[w->depth++] = ent;
		if (!pte_present(ent)) {
			walk_stop(w, PGTABLE_WALK_NOT_PRESENT, level, i, ent, tphys);
			return DMAR_OK;
		}
		if (leaf && !leaf_allowed(pt, level)) {
			walk_stop(w, PGTABLE_WALK_RESERVED, level, i, ent, tphys);
			return DMAR_OK;
		}
		if ((rights & ~pte_prot(ent)) && !lacking) {
			lacking = true;
			walk_stop(w, (pte_prot(ent) & DMAR_PROT_READ) ? PGTABLE_WALK_READ_ONLY
								       : PGTABLE_WALK_WRITE_ONLY,
				  level, i, ent, tphys);
		}
		rights &= pte_prot(ent);
		if (leaf) {
			uint64_t sz = lvl_size(level);

			w->page_size = sz;
			w->phys = (ent & VTD_SL_ADDR_MASK & ~(sz - 1)) | (iova & (sz - 1));
			w->prot = rights;
			if (!lacking)
				walk_stop(w, PGTABLE_WALK_MAPPED, level, i, ent, tphys);
			return DMAR_OK;
		}
		t = tbl_va(pt, ent);
		if (!t) {
			walk_stop(w, PGTABLE_WALK_RESERVED, level, i, ent, tphys);
			return DMAR_OK;
		}
		tphys = ent & VTD_SL_ADDR_MASK;
	}
}

int dmar__pgtable_lookup(const struct pgtable *pt, uint64_t iova, uint64_t *phys,
		   unsigned *prot, uint64_t *page_size)
{
	struct pgtable_walk w;
	int rc = dmar__pgtable_explain(pt, iova, &w);

	if (rc)
		return rc;
	if (!w.page_size)
		return DMAR_ENOENT;
	if (phys)
		*phys = w.phys;
	if (prot)
		*prot = w.prot;
	if (page_size)
		*page_size = w.page_size;
	return DMAR_OK;
}

const char *dmar__pgtable_walk_result_str(enum pgtable_walk_result r)
{
	switch (r) {
	case PGTABLE_WALK_MAPPED: return "mapped read/write";
	case PGTABLE_WALK_READ_ONLY: return "present but not writable";
	case PGTABLE_WALK_WRITE_ONLY: return "present but not readable";
	case PGTABLE_WALK_NOT_PRESENT: return "not present";
	case PGTABLE_WALK_RESERVED: return "reserved bits set or bad table address";
	}
	return "unknown walk result";
}

int dmar__pgtable_walk_format(const struct pgtable_walk *w, char *buf, size_t size)
{
	int n = dmar__snprintf(buf, size, "iova 0x%llx: level %u index %u entry 0x%llx: %s",
			      (unsigned long long)w->iova, w->level, w->index,
			      (unsigned long long)w->entry,
			      dmar__pgtable_walk_result_str(w->result));

	if (w->page_size && n >= 0) {
		size_t used = (size_t)n < size ? (size_t)n : (size ? size - 1 : 0);

		n += dmar__snprintf(size ? buf + used : buf, size ? size - used : 0,
				   " -> phys 0x%llx (%llu KiB page)", (unsigned long long)w->phys,
				   (unsigned long long)(w->page_size >> 10));
	}
	return n;
}
