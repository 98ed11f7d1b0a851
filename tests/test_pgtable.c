/*
 * test_pgtable.c - the I/O page-table engine through its API, on a fake OS layer:
 * table pages come from an arena whose physical addresses are scrambled (phys != virt,
 * above 4 GiB), every page and allocation is counted, the n-th page allocation can be
 * made to fail, and a fake CPU cache keeps a "memory view" of each page that only
 * cache_flush updates (a new page's memory view is garbage), which is what a unit that
 * does not snoop (ECAP.C=0) would read. The tables are checked with a walker written
 * here from the specification, reading that memory view, not with pgtable.c's code.
 */
#include "harness.h"
#include "pgtable.h"
#include "dmar/error.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KB 1024ull
#define MB (1024ull * KB)
#define GB (1024ull * MB)
#define PG 4096ull

/* ---------------------------------------------------------------- fake OS layer --- */

#define FAKE_PAGES 16384u              /* arena capacity, a power of two */
#define FAKE_SCRAMBLE 0x2a5au          /* page k lives at physical frame k ^ this */
#define FAKE_PHYS_BASE 0x7000000000ull /* above 4 GiB: truncation shows */
#define FAKE_GARBAGE 0xa5

struct fake {
	uint8_t *cpu;      /* what the CPU sees */
	uint8_t *mem;      /* what a non-snooping unit sees */
	bool live[FAKE_PAGES];
	unsigned free_idx[FAKE_PAGES];
	unsigned nfree, next_new;
	bool coherent;
	uint64_t live_pages, page_allocs, small_live;
	uint64_t fail_countdown; /* 0: never; n: the n-th page allocation from now fails */
	uint64_t flush_calls, flush_bytes, flush_errors;
	struct dmar_os_ops ops;
	struct dmar_os os;
};

static unsigned fake_index_of_va(const struct fake *f, const void *va)
{
	uintptr_t off = (uintptr_t)((const uint8_t *)va - f->cpu);
	return (unsigned)(off / PG);
}

static bool fake_va_ok(const struct fake *f, const void *va)
{
	return (const uint8_t *)va >= f->cpu && (const uint8_t *)va < f->cpu + (size_t)FAKE_PAGES * PG &&
	       f->live[fake_index_of_va(f, va)];
}

static uint64_t fake_phys_of(unsigned k)
{
	return FAKE_PHYS_BASE + (uint64_t)(k ^ FAKE_SCRAMBLE) * PG;
}

/* Index of a physical page, or -1 if the address is not one of ours. */
static int fake_index_of_phys(const struct fake *f, uint64_t phys)
{
	if (phys < FAKE_PHYS_BASE || (phys & (PG - 1)))
		return -1;
	uint64_t frame = (phys - FAKE_PHYS_BASE) / PG;
	if (frame >= FAKE_PAGES)
		return -1;
	unsigned k = (unsigned)frame ^ FAKE_SCRAMBLE;
	return f->live[k] ? (int)k : -1;
}

static void *fake_page_alloc(void *ctx, uint64_t *phys)
{
	struct fake *f = ctx;
	unsigned k;

	if (f->fail_countdown && --f->fail_countdown == 0)
		return NULL;
	if (f->nfree)
		k = f->free_idx[--f->nfree];
	else if (f->next_new < FAKE_PAGES)
		k = f->next_new++;
	else
		return NULL;
	f->live[k] = true;
	f->live_pages++;
	f->page_allocs++;
	memset(f->cpu + (size_t)k * PG, 0, PG);
	memset(f->mem + (size_t)k * PG, f->coherent ? 0 : FAKE_GARBAGE, PG);
	*phys = fake_phys_of(k);
	return f->cpu + (size_t)k * PG;
}

static void fake_page_free(void *ctx, void *va, uint64_t phys)
{
	struct fake *f = ctx;
	unsigned k = fake_index_of_va(f, va);

	if (!fake_va_ok(f, va) || fake_phys_of(k) != phys || ((uintptr_t)va & (PG - 1))) {
		harness_fail(__FILE__, __LINE__, "page_free of a page not allocated (%p, 0x%" PRIx64 ")",
			     va, phys);
		return;
	}
	memset(va, 0xdb, PG); /* a use after free reads garbage entries */
	f->live[k] = false;
	f->live_pages--;
	f->free_idx[f->nfree++] = k;
}

static void *fake_phys_to_virt(void *ctx, uint64_t phys)
{
	struct fake *f = ctx;
	int k = fake_index_of_phys(f, phys & ~(PG - 1));

	return k < 0 ? NULL : f->cpu + (size_t)k * PG + (phys & (PG - 1));
}

static uint64_t fake_virt_to_phys(void *ctx, const void *va)
{
	struct fake *f = ctx;

	if (!fake_va_ok(f, va))
		return UINT64_MAX;
	return fake_phys_of(fake_index_of_va(f, va)) + ((uintptr_t)va & (PG - 1));
}

static void fake_cache_flush(void *ctx, const void *va, size_t len)
{
	struct fake *f = ctx;
	const uint8_t *p = va;

	f->flush_calls++;
	f->flush_bytes += len;
	if (f->coherent || !len || !fake_va_ok(f, va) ||
	    fake_index_of_va(f, p) != fake_index_of_va(f, p + len - 1)) {
		f->flush_errors++; /* flushes are wanted per table page, and only if C=0 */
		return;
	}
	size_t start = (size_t)(p - f->cpu) & ~(size_t)63, end = ((size_t)(p - f->cpu) + len + 63) & ~(size_t)63;
	memcpy(f->mem + start, f->cpu + start, end - start);
}

static void *fake_alloc(void *ctx, size_t size)
{
	struct fake *f = ctx;
	void *p = malloc(size);
	if (p)
		f->small_live++;
	return p;
}

static void fake_free(void *ctx, void *p, size_t size)
{
	struct fake *f = ctx;
	(void)size;
	f->small_live--;
	free(p);
}

static struct fake *fake_new(bool coherent)
{
	struct fake *f = calloc(1, sizeof(*f));
	REQUIRE(f);
	f->cpu = aligned_alloc(PG, (size_t)FAKE_PAGES * PG);
	f->mem = aligned_alloc(PG, (size_t)FAKE_PAGES * PG);
	REQUIRE(f->cpu && f->mem);
	f->coherent = coherent;
	f->ops.alloc = fake_alloc;
	f->ops.free = fake_free;
	f->ops.page_alloc = fake_page_alloc;
	f->ops.page_free = fake_page_free;
	f->ops.phys_to_virt = fake_phys_to_virt;
	f->ops.virt_to_phys = fake_virt_to_phys;
	f->ops.cache_flush = fake_cache_flush;
	f->os.ops = &f->ops;
	f->os.ctx = f;
	return f;
}

/* Frees the fake after checking that nothing leaked. */
static void fake_done(struct fake *f)
{
	CHECK_EQ(f->live_pages, 0);
	CHECK_EQ(f->small_live, 0);
	CHECK_EQ(f->flush_errors, 0);
	free(f->cpu);
	free(f->mem);
	free(f);
}

/* What the unit reads at a physical address (the memory view unless coherent). */
static const uint64_t *unit_view(const struct fake *f, uint64_t table_phys)
{
	int k = fake_index_of_phys(f, table_phys);
	if (k < 0)
		return NULL;
	return (const uint64_t *)((f->coherent ? f->cpu : f->mem) + (size_t)k * PG);
}

/* ----------------------------------------- independent walker (spec 9.8, 3.7) --- */

struct leaf {
	uint64_t iova, phys, size;
	unsigned prot;
};

/* Bits of IOVA that select the entry at table level L (1 = 4 KiB leaves). */
static const unsigned level_lo_bit[6] = {0, 12, 21, 30, 39, 48};

/* Translates iova as the unit would. 1: mapped (*out), 0: not mapped, -1: a malformed
 * entry (non-leaf without R|W, large page where not allowed, unknown table address). */
static int unit_walk(const struct fake *f, const struct pgtable *pt, uint64_t iova,
		     struct leaf *out)
{
	uint64_t table = pt->root_phys;
	unsigned prot = 3;

	for (int L = (int)pt->levels; L >= 1; L--) {
		const uint64_t *view = unit_view(f, table);
		if (!view)
			return -1;
		unsigned i = (unsigned)(iova >> level_lo_bit[L]) & 511;
		uint64_t e = view[i];
		if (!f->coherent && e != ((const uint64_t *)fake_phys_to_virt((void *)f, table))[i])
			return -1; /* written but not flushed: the unit reads a stale entry */
		if ((e & 3) == 0)
			return 0;
		prot &= (unsigned)(e & 3);
		bool large = L > 1 && (e >> 7 & 1);
		if (large && !((L == 2 && (pt->sp_levels & 1)) || (L == 3 && (pt->sp_levels & 2))))
			return -1;
		if (L == 1 || large) {
			uint64_t sz = 1ull << level_lo_bit[L];
			if (e & (sz - 1) & 0x000ffffffffff000ull)
				return -1; /* address bits below the page size are reserved */
			out->size = sz;
			out->iova = iova & ~(sz - 1);
			out->phys = e & 0x000ffffffffff000ull;
			out->prot = prot;
			return 1;
		}
		if ((e & 3) != 3)
			return -1; /* this engine promises R|W on non-leaf entries */
		table = e & 0x000ffffffffff000ull;
	}
	return -1;
}

/* Every leaf reachable, merged into runs of contiguous iova and phys with equal prot;
 * also checks that each non-root table has a present entry and, when C=0, that the
 * memory view of each table equals the CPU view. */
struct runs {
	struct leaf *v;
	size_t n, cap;
	uint64_t tables;
	int bad;
	unsigned kept_seen; /* bit k: kept slot k's table was found (empty tables allowed) */
};

static void runs_add(struct runs *r, uint64_t iova, uint64_t phys, uint64_t size, unsigned prot)
{
	if (r->n) {
		struct leaf *l = &r->v[r->n - 1];
		if (l->iova + l->size == iova && l->phys + l->size == phys && l->prot == prot) {
			l->size += size;
			return;
		}
	}
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 64;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		if (!r->v)
			abort();
	}
	r->v[r->n++] = (struct leaf){iova, phys, size, prot};
}

static void enum_table(const struct fake *f, const struct pgtable *pt, uint64_t table,
		       int L, uint64_t base, struct runs *r)
{
	const uint64_t *view = unit_view(f, table);
	int k = fake_index_of_phys(f, table);
	unsigned present = 0;

	if (!view) {
		r->bad++;
		return;
	}
	r->tables++;
	if (!f->coherent && memcmp(f->mem + (size_t)k * PG, f->cpu + (size_t)k * PG, PG) != 0)
		r->bad++;
	for (unsigned i = 0; i < 512; i++) {
		uint64_t e = view[i], iova = base + ((uint64_t)i << level_lo_bit[L]);
		if ((e & 3) == 0)
			continue;
		present++;
		if (L == 1 || (e >> 7 & 1)) {
			struct leaf l;
			if (unit_walk(f, pt, iova, &l) != 1 || l.iova != iova)
				r->bad++;
			else
				runs_add(r, l.iova, l.phys, l.size, l.prot);
		} else {
			enum_table(f, pt, e & 0x000ffffffffff000ull, L - 1, iova, r);
		}
	}
	for (unsigned j = 0; j < PGTABLE_KEPT; j++) {
		if (pt->kept[j].level == (unsigned)L && pt->kept[j].base == base) {
			/* a table the engine tracks: its count of present entries is exact */
			r->kept_seen |= 1u << j;
			if (pt->kept[j].present != present)
				r->bad++;
			return;
		}
	}
	if (!present && table != pt->root_phys)
		r->bad++;
}

static void enum_all(const struct fake *f, const struct pgtable *pt, struct runs *r)
{
	memset(r, 0, sizeof(*r));
	enum_table(f, pt, pt->root_phys, (int)pt->levels, 0, r);
	for (unsigned k = 0; k < PGTABLE_KEPT; k++)
		if (pt->kept[k].level && !(r->kept_seen & (1u << k)))
			r->bad++; /* a table said to be kept is not there */
}

static bool runs_equal(const struct runs *a, const struct runs *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct leaf *x = &a->v[i], *y = &b->v[i];
		if (x->iova != y->iova || x->phys != y->phys || x->size != y->size || x->prot != y->prot)
			return false;
	}
	return true;
}

/* ------------------------------------------------------------- small helpers --- */

/* What must not change when a call fails: the translations, the table pages, the
 * allocations and the flushes. */
struct snapshot {
	struct runs runs;
	uint64_t pages, live, allocs, flushes;
};

static void snapshot_take(const struct fake *f, const struct pgtable *pt, struct snapshot *s)
{
	enum_all(f, pt, &s->runs);
	s->pages = pt->pages;
	s->live = f->live_pages;
	s->allocs = f->page_allocs;
	s->flushes = f->flush_calls;
}

/* Checks that nothing changed since *s except, if allow_allocs, allocations that
 * were given back; frees the snapshot. */
static void snapshot_check(const struct fake *f, const struct pgtable *pt, struct snapshot *s,
			   bool allow_allocs)
{
	struct runs now;

	enum_all(f, pt, &now);
	CHECK(runs_equal(&s->runs, &now));
	CHECK_EQ(now.bad, 0);
	CHECK_EQ(now.tables, pt->pages);
	CHECK_EQ(pt->pages, s->pages);
	CHECK_EQ(f->live_pages, s->live);
	if (!allow_allocs)
		CHECK_EQ(f->page_allocs, s->allocs);
	CHECK_EQ(f->flush_calls, s->flushes);
	free(now.v);
	free(s->runs.v);
}

static struct pgtable *pt_new(struct fake *f, unsigned levels, unsigned sp)
{
	static struct pgtable pt;
	REQUIRE_OK(dmar__pgtable_init(&pt, &f->os, levels, sp, f->coherent));
	return &pt;
}

/* Unit-visible translation of one address, or 0 if not mapped; *size gets the leaf. */
static uint64_t unit_phys(const struct fake *f, const struct pgtable *pt, uint64_t iova,
			  uint64_t *size, unsigned *prot)
{
	struct leaf l;
	if (unit_walk(f, pt, iova, &l) != 1)
		return 0;
	if (size)
		*size = l.size;
	if (prot)
		*prot = l.prot;
	return l.phys + (iova - l.iova);
}

static void unmap_all(struct pgtable *pt, uint64_t iova, uint64_t size)
{
	struct pgtable_flush fl;
	CHECK_OK(dmar__pgtable_unmap(pt, iova, size, &fl));
	dmar__pgtable_flush_done(pt, &fl);
}

/* ------------------------------------------------------------------ unit tests --- */

TEST(init_rejects_bad_arguments)
{
	struct fake *f = fake_new(true);
	struct pgtable pt;

	CHECK_EQ(dmar__pgtable_init(&pt, &f->os, 2, 0, true), DMAR_EINVAL);
	CHECK_EQ(dmar__pgtable_init(&pt, &f->os, 6, 0, true), DMAR_EINVAL);
	CHECK_EQ(dmar__pgtable_init(&pt, &f->os, 4, 4, true), DMAR_EINVAL);
	CHECK_EQ(dmar__pgtable_init(&pt, NULL, 4, 0, true), DMAR_EINVAL);
	CHECK_EQ(dmar__pgtable_init(NULL, &f->os, 4, 0, true), DMAR_EINVAL);
	f->fail_countdown = 1;
	CHECK_EQ(dmar__pgtable_init(&pt, &f->os, 4, 0, true), DMAR_ENOMEM);
	dmar__pgtable_fini(&pt); /* harmless after a failed init */
	CHECK_EQ(dmar__pgtable_map(&pt, 0, 0, PG, DMAR_PROT_RW), DMAR_EINVAL);
	CHECK_EQ(f->live_pages, 0);
	fake_done(f);
}

TEST(map_and_lookup_at_3_4_5_levels)
{
	for (unsigned levels = 3; levels <= 5; levels++) {
		struct fake *f = fake_new(false);
		struct pgtable *pt = pt_new(f, levels, 3);
		uint64_t top = 1ull << (12 + 9 * levels);
		uint64_t iova = top - 3 * PG, phys = 0x123456789000ull, got, sz;
		unsigned prot;

		CHECK_OK(dmar__pgtable_map(pt, iova, phys, 3 * PG, DMAR_PROT_READ));
		CHECK_EQ(pt->pages, levels); /* root and one table per lower level */
		CHECK_EQ(f->live_pages, levels);
		CHECK_OK(dmar__pgtable_lookup(pt, iova + PG + 0x10, &got, &prot, &sz));
		CHECK_EQ(got, phys + PG + 0x10);
		CHECK_EQ(prot, DMAR_PROT_READ);
		CHECK_EQ(sz, PG);
		CHECK_EQ(unit_phys(f, pt, iova + 2 * PG + 7, NULL, NULL), phys + 2 * PG + 7);
		CHECK_EQ(dmar__pgtable_lookup(pt, iova - PG, &got, NULL, NULL), DMAR_ENOENT);
		CHECK_EQ(dmar__pgtable_lookup(pt, top, &got, NULL, NULL), DMAR_ERANGE);
		CHECK_EQ(dmar__pgtable_map(pt, top, phys, PG, DMAR_PROT_RW), DMAR_ERANGE);
		CHECK_EQ(dmar__pgtable_map(pt, top - PG, phys, 2 * PG, DMAR_PROT_RW), DMAR_ERANGE);
		unmap_all(pt, iova, 3 * PG);
		/* the emptied leaf table stays linked (with the tables above it) */
		CHECK_EQ(pt->pages, levels);
		CHECK_EQ(dmar__pgtable_lookup(pt, iova, &got, NULL, NULL), DMAR_ENOENT);
		CHECK_OK(dmar__pgtable_trim(pt, NULL));
		CHECK_EQ(pt->pages, 1);
		CHECK_EQ(f->live_pages, 1);
		dmar__pgtable_fini(pt);
		fake_done(f);
	}
}

TEST(map_rejects_impossible_input_without_allocating)
{
	struct fake *f = fake_new(true);
	struct pgtable *pt = pt_new(f, 4, 3);
	uint64_t allocs = f->page_allocs;
	struct pgtable_flush fl;

	CHECK_EQ(dmar__pgtable_map(pt, 0x1001, 0, PG, DMAR_PROT_RW), DMAR_EINVAL);
	CHECK_EQ(dmar__pgtable_map(pt, 0x1000, 0x10, PG, DMAR_PROT_RW), DMAR_EINVAL);
	CHECK_EQ(dmar__pgtable_map(pt, 0x1000, 0, 100, DMAR_PROT_RW), DMAR_EINVAL);
	CHECK_EQ(dmar__pgtable_map(pt, 0x1000, 0, 0, DMAR_PROT_RW), DMAR_EINVAL);
	CHECK_EQ(dmar__pgtable_map(pt, 0x1000, 0, PG, 0), DMAR_EINVAL);
	CHECK_EQ(dmar__pgtable_map(pt, 0x1000, 0, PG, 4), DMAR_EINVAL);
	CHECK_EQ(dmar__pgtable_map(pt, 0xfffffffffffff000ull, 0, 2 * PG, DMAR_PROT_RW),
		 DMAR_ERANGE);
	CHECK_EQ(dmar__pgtable_map(pt, 0, 0xfffffffffffff000ull, 2 * PG, DMAR_PROT_RW),
		 DMAR_ERANGE);
	CHECK_EQ(dmar__pgtable_map(pt, 0, 1ull << 52, PG, DMAR_PROT_RW), DMAR_ERANGE);
	CHECK_EQ(dmar__pgtable_map(pt, 1ull << 48, 0, PG, DMAR_PROT_RW), DMAR_ERANGE);
	CHECK_EQ(dmar__pgtable_unmap(pt, 0x1001, PG, &fl), DMAR_EINVAL);
	CHECK_EQ(dmar__pgtable_unmap(pt, 0x1000, 0, &fl), DMAR_EINVAL);
	CHECK_EQ(dmar__pgtable_unmap(pt, 0xfffffffffffff000ull, 2 * PG, &fl), DMAR_ERANGE);
	CHECK_EQ(fl.start, fl.end);
	CHECK_EQ(f->page_allocs, allocs);
	CHECK_EQ(pt->pages, 1);
	dmar__pgtable_fini(pt);
	fake_done(f);
}

TEST(superpage_used_when_2m_aligned)
{
	struct fake *f = fake_new(false);
	struct pgtable *pt = pt_new(f, 4, PGTABLE_SP_2M);
	uint64_t sz = 0;

	/* both addresses 2 MiB aligned: one 2 MiB leaf, no level-1 table */
	CHECK_OK(dmar__pgtable_map(pt, 2 * MB, 64 * MB, 2 * MB, DMAR_PROT_RW));
	CHECK_EQ(unit_phys(f, pt, 3 * MB, &sz, NULL), 65 * MB);
	CHECK_EQ(sz, 2 * MB);
	CHECK_EQ(pt->pages, 3);
	/* iova aligned, phys only 4 KiB aligned: 512 small pages */
	CHECK_OK(dmar__pgtable_map(pt, 4 * MB, 64 * MB + PG, 2 * MB, DMAR_PROT_RW));
	CHECK_EQ(unit_phys(f, pt, 5 * MB, &sz, NULL), 65 * MB + PG);
	CHECK_EQ(sz, PG);
	CHECK_EQ(pt->pages, 4);
	/* 1 MiB-aligned 6 MiB: 4 KiB up to 2 MiB boundary, 2 MiB leaves, 4 KiB tail */
	CHECK_OK(dmar__pgtable_map(pt, 9 * MB, 9 * MB, 6 * MB, DMAR_PROT_READ));
	CHECK_EQ(unit_phys(f, pt, 9 * MB, &sz, NULL), 9 * MB);
	CHECK_EQ(sz, PG);
	CHECK_EQ(unit_phys(f, pt, 10 * MB, &sz, NULL), 10 * MB);
	CHECK_EQ(sz, 2 * MB);
	CHECK_EQ(unit_phys(f, pt, 12 * MB, &sz, NULL), 12 * MB);
	CHECK_EQ(sz, 2 * MB);
	CHECK_EQ(unit_phys(f, pt, 14 * MB + 5 * PG, &sz, NULL), 14 * MB + 5 * PG);
	CHECK_EQ(sz, PG);
	/* 1 GiB aligned but only 2 MiB allowed: 512 leaves of 2 MiB in one table */
	uint64_t before = pt->pages;
	CHECK_OK(dmar__pgtable_map(pt, 4 * GB, 8 * GB, GB, DMAR_PROT_RW));
	CHECK_EQ(unit_phys(f, pt, 4 * GB + 700 * MB, &sz, NULL), 8 * GB + 700 * MB);
	CHECK_EQ(sz, 2 * MB);
	CHECK_EQ(pt->pages, before + 1);
	dmar__pgtable_fini(pt);
	fake_done(f);
}

TEST(superpage_1g_only_when_aligned_and_allowed)
{
	struct fake *f = fake_new(true);
	struct pgtable *pt = pt_new(f, 4, PGTABLE_SP_2M | PGTABLE_SP_1G);
	uint64_t sz = 0;

	CHECK_OK(dmar__pgtable_map(pt, GB, 3 * GB, 2 * GB + 2 * MB, DMAR_PROT_RW));
	CHECK_EQ(unit_phys(f, pt, GB + 12345 * PG, &sz, NULL), 3 * GB + 12345 * PG);
	CHECK_EQ(sz, GB);
	CHECK_EQ(unit_phys(f, pt, 2 * GB, &sz, NULL), 4 * GB);
	CHECK_EQ(sz, GB);
	CHECK_EQ(unit_phys(f, pt, 3 * GB + MB, &sz, NULL), 5 * GB + MB);
	CHECK_EQ(sz, 2 * MB);
	CHECK_EQ(pt->pages, 3); /* root, level 3, one level-2 table for the tail */
	dmar__pgtable_fini(pt);

	/* 1 GiB allowed without 2 MiB is not used (splitting it would need 2 MiB) */
	pt = pt_new(f, 4, PGTABLE_SP_1G);
	CHECK_OK(dmar__pgtable_map(pt, GB, GB, GB, DMAR_PROT_RW));
	CHECK_EQ(unit_phys(f, pt, GB, &sz, NULL), GB);
	CHECK_EQ(sz, PG);
	dmar__pgtable_fini(pt);

	/* no superpages at all */
	pt = pt_new(f, 3, 0);
	CHECK_OK(dmar__pgtable_map(pt, 2 * MB, 2 * MB, 2 * MB, DMAR_PROT_RW));
	CHECK_EQ(unit_phys(f, pt, 2 * MB, &sz, NULL), 2 * MB);
	CHECK_EQ(sz, PG);
	dmar__pgtable_fini(pt);
	fake_done(f);
}

TEST(partial_unmap_splits_superpage_and_keeps_the_rest)
{
	struct fake *f = fake_new(false);
	struct pgtable *pt = pt_new(f, 4, 3);
	struct pgtable_flush fl;
	uint64_t sz = 0;
	unsigned prot = 0;

	CHECK_OK(dmar__pgtable_map(pt, 2 * MB, 6 * MB, 2 * MB, DMAR_PROT_READ));
	CHECK_OK(dmar__pgtable_unmap(pt, 2 * MB + 5 * PG, PG, &fl));
	CHECK_EQ(fl.start, 2 * MB);
	CHECK_EQ(fl.end, 4 * MB);
	CHECK(fl.tables_changed);
	dmar__pgtable_flush_done(pt, &fl);
	CHECK_EQ(unit_phys(f, pt, 2 * MB + 5 * PG, NULL, NULL), 0);
	CHECK_EQ(dmar__pgtable_lookup(pt, 2 * MB + 5 * PG, NULL, NULL, NULL), DMAR_ENOENT);
	for (uint64_t p = 0; p < 512; p++) {
		if (p == 5)
			continue;
		CHECK_EQ(unit_phys(f, pt, 2 * MB + p * PG, &sz, &prot), 6 * MB + p * PG);
		CHECK_EQ(prot, DMAR_PROT_READ);
		CHECK_EQ(sz, PG);
	}

	/* a 4 KiB hole in a 1 GiB leaf: 2 MiB leaves around a 4 KiB table */
	CHECK_OK(dmar__pgtable_map(pt, 4 * GB, 16 * GB, GB, DMAR_PROT_WRITE));
	uint64_t pages = pt->pages;
	CHECK_OK(dmar__pgtable_unmap(pt, 4 * GB + 300 * MB + PG, PG, &fl));
	CHECK_EQ(fl.start, 4 * GB);
	CHECK_EQ(fl.end, 5 * GB);
	CHECK(fl.tables_changed);
	dmar__pgtable_flush_done(pt, &fl);
	CHECK_EQ(pt->pages, pages + 2);
	CHECK_EQ(unit_phys(f, pt, 4 * GB + 100 * MB, &sz, &prot), 16 * GB + 100 * MB);
	CHECK_EQ(sz, 2 * MB);
	CHECK_EQ(prot, DMAR_PROT_WRITE);
	CHECK_EQ(unit_phys(f, pt, 4 * GB + 300 * MB, &sz, &prot), 16 * GB + 300 * MB);
	CHECK_EQ(sz, PG);
	CHECK_EQ(unit_phys(f, pt, 4 * GB + 300 * MB + 2 * PG, &sz, NULL), 16 * GB + 300 * MB + 2 * PG);
	CHECK_EQ(unit_phys(f, pt, 4 * GB + 300 * MB + PG, NULL, NULL), 0);
	CHECK_EQ(unit_phys(f, pt, 5 * GB - PG, &sz, NULL), 17 * GB - PG);
	CHECK_EQ(sz, 2 * MB);

	/* unmapping across two superpages widens to both */
	CHECK_OK(dmar__pgtable_map(pt, 64 * MB, 64 * MB, 4 * MB, DMAR_PROT_RW));
	CHECK_OK(dmar__pgtable_unmap(pt, 65 * MB, 2 * MB, &fl));
	CHECK_EQ(fl.start, 64 * MB);
	CHECK_EQ(fl.end, 68 * MB);
	dmar__pgtable_flush_done(pt, &fl);
	CHECK_EQ(unit_phys(f, pt, 64 * MB + MB - PG, NULL, NULL), 64 * MB + MB - PG);
	CHECK_EQ(unit_phys(f, pt, 67 * MB, NULL, NULL), 67 * MB);
	CHECK_EQ(unit_phys(f, pt, 66 * MB, NULL, NULL), 0);

	struct runs r;
	enum_all(f, pt, &r);
	CHECK_EQ(r.bad, 0);
	CHECK_EQ(r.tables, pt->pages);
	free(r.v);
	dmar__pgtable_fini(pt);
	fake_done(f);
}

TEST(unmap_flush_range_is_exact_for_small_pages)
{
	struct fake *f = fake_new(true);
	struct pgtable *pt = pt_new(f, 4, 3);
	struct pgtable_flush fl;

	CHECK_OK(dmar__pgtable_map(pt, 0x100000, 0x900000, 64 * PG, DMAR_PROT_RW));
	CHECK_OK(dmar__pgtable_unmap(pt, 0x100000 + 7 * PG, PG, &fl));
	CHECK_EQ(fl.start, 0x100000 + 7 * PG);
	CHECK_EQ(fl.end, 0x100000 + 8 * PG);
	CHECK(!fl.tables_changed);
	CHECK_EQ(fl.deferred_pages, 0);
	dmar__pgtable_flush_done(pt, &fl);
	CHECK_OK(dmar__pgtable_unmap(pt, 0x100000 + 8 * PG, 10 * PG, &fl));
	CHECK_EQ(fl.start, 0x100000 + 8 * PG);
	CHECK_EQ(fl.end, 0x100000 + 18 * PG);
	CHECK(!fl.tables_changed);
	dmar__pgtable_flush_done(pt, &fl);
	dmar__pgtable_fini(pt);
	fake_done(f);
}

TEST(unmap_frees_empty_tables_after_flush_done)
{
	struct fake *f = fake_new(false);
	struct pgtable *pt = pt_new(f, 5, 3);
	struct pgtable_flush fl;

	CHECK_OK(dmar__pgtable_map(pt, 0, 0, 16 * PG, DMAR_PROT_RW));
	CHECK_OK(dmar__pgtable_map(pt, 1ull << 50, 0x40000000, 3 * MB, DMAR_PROT_RW));
	CHECK_OK(dmar__pgtable_map(pt, 7 * GB, 0x40000000, GB, DMAR_PROT_RW));
	uint64_t pages = pt->pages;
	/* a 1 GiB leaf goes, its table still holds the 4 KiB pages' table */
	CHECK_OK(dmar__pgtable_unmap(pt, 7 * GB, GB, &fl));
	CHECK(!fl.tables_changed);
	CHECK_EQ(fl.start, 7 * GB);
	CHECK_EQ(fl.end, 8 * GB);
	dmar__pgtable_flush_done(pt, &fl);
	CHECK_EQ(pt->pages, pages);
	CHECK_EQ(pages, 9); /* root; levels 4 to 1 below entry 0; levels 4 to 1 at 2^50 */
	CHECK_OK(dmar__pgtable_unmap(pt, 0, 15 * PG, &fl));
	CHECK(!fl.tables_changed);
	dmar__pgtable_flush_done(pt, &fl);
	/* the last page of a table: the table stays linked, empty, nothing to free */
	CHECK_OK(dmar__pgtable_unmap(pt, 15 * PG, PG, &fl));
	CHECK(!fl.tables_changed);
	CHECK_EQ(fl.start, 15 * PG);
	CHECK_EQ(fl.end, 16 * PG);
	CHECK_EQ(fl.tables_start, fl.tables_end);
	CHECK_EQ(fl.deferred_pages, 0);
	dmar__pgtable_flush_done(pt, &fl);
	CHECK_EQ(pt->pages, pages);
	CHECK_EQ(unit_phys(f, pt, 15 * PG, NULL, NULL), 0);
	CHECK_EQ(dmar__pgtable_lookup(pt, 15 * PG, NULL, NULL, NULL), DMAR_ENOENT);
	/* a map there uses it again and allocates nothing; emptied again, it stays */
	uint64_t allocs = f->page_allocs;
	CHECK_OK(dmar__pgtable_map(pt, 3 * PG, 0x5000, PG, DMAR_PROT_RW));
	CHECK_EQ(f->page_allocs, allocs);
	CHECK_EQ(unit_phys(f, pt, 3 * PG + 8, NULL, NULL), 0x5008);
	CHECK_OK(dmar__pgtable_unmap(pt, 3 * PG, PG, &fl));
	CHECK(!fl.tables_changed);
	CHECK_EQ(fl.deferred_pages, 0);
	dmar__pgtable_flush_done(pt, &fl);
	CHECK_EQ(pt->pages, pages);
	/* another table left empty (the 3 MiB's level-2 table, whose 2 MiB leaf goes and
	 * whose leaf table is detached on the way): that one is kept too, beside the
	 * first (up to PGTABLE_KEPT are) */
	CHECK_OK(dmar__pgtable_unmap(pt, 1ull << 50, 3 * MB, &fl));
	CHECK(fl.tables_changed);
	CHECK_EQ(fl.start, 1ull << 50);
	CHECK_EQ(fl.end, (1ull << 50) + 3 * MB);
	CHECK_EQ(fl.tables_start, fl.tables_end);
	CHECK_EQ(fl.deferred_pages, 1);
	/* detached pages stay allocated (the unit may still walk them) until done */
	CHECK_EQ(pt->pages, pages);
	CHECK_EQ(f->live_pages, pages);
	dmar__pgtable_flush_done(pt, &fl);
	CHECK_EQ(pt->pages, 8); /* root; levels 4 to 1 below entry 0; levels 4 to 2 at 2^50 */
	CHECK_EQ(f->live_pages, pt->pages);
	/* trim: everything but the root goes, reported for invalidation as one range over
	 * both regions */
	CHECK_OK(dmar__pgtable_trim(pt, &fl));
	CHECK(fl.tables_changed);
	CHECK_EQ(fl.start, 0);
	CHECK_EQ(fl.end, (1ull << 50) + GB);
	CHECK_EQ(fl.deferred_pages, 7);
	CHECK_EQ(pt->pages, 8);
	dmar__pgtable_flush_done(pt, &fl);
	CHECK_EQ(pt->pages, 1);
	CHECK_EQ(f->live_pages, 1);
	CHECK_OK(dmar__pgtable_trim(pt, &fl)); /* nothing kept: nothing to do */
	CHECK_EQ(fl.start, fl.end);
	CHECK_EQ(fl.deferred_pages, 0);
	/* the same without deferring */
	CHECK_OK(dmar__pgtable_map(pt, 5 * GB, 0, 8 * MB, DMAR_PROT_RW));
	CHECK_OK(dmar__pgtable_unmap(pt, 5 * GB, 8 * MB, NULL));
	CHECK_EQ(pt->pages, 4);
	CHECK_OK(dmar__pgtable_trim(pt, NULL));
	CHECK_EQ(pt->pages, 1);
	CHECK_EQ(f->live_pages, 1);
	/* a superpage-sized map over a region whose kept table is still linked fills that
	 * table with small leaves (the range is unmapped, so this is not an overlap) */
	CHECK_OK(dmar__pgtable_map(pt, 6 * GB, 0x200000, PG, DMAR_PROT_RW));
	unmap_all(pt, 6 * GB, PG);
	CHECK_EQ(pt->pages, 5);
	allocs = f->page_allocs;
	CHECK_OK(dmar__pgtable_map(pt, 6 * GB, 0x200000, 2 * MB, DMAR_PROT_RW));
	CHECK_EQ(f->page_allocs, allocs);
	CHECK_EQ(unit_phys(f, pt, 6 * GB + MB + 4, NULL, NULL), 0x200000 + MB + 4);
	uint64_t psz = 0;
	CHECK_OK(dmar__pgtable_lookup(pt, 6 * GB, NULL, NULL, &psz));
	CHECK_EQ(psz, PG);
	unmap_all(pt, 6 * GB, 2 * MB);
	CHECK_OK(dmar__pgtable_trim(pt, NULL));
	CHECK_EQ(pt->pages, 1);
	dmar__pgtable_fini(pt);
	CHECK_EQ(pt->pages, 0);
	fake_done(f);
}


/* Emptied in PGTABLE_KEPT + 1 regions one after the other: the kept table nearest to
 * the last one makes room, detached with what it leaves empty and reported as the
 * second range to invalidate; the others stay, and a map in each allocates nothing. */
TEST(the_nearest_kept_table_goes_when_one_more_is_emptied)
{
	struct fake *f = fake_new(false);
	struct pgtable *pt = pt_new(f, 4, 3);
	struct pgtable_flush fl;
	const uint64_t step = 4 * MB, last = PGTABLE_KEPT * step, gone = last - step;

	for (unsigned i = 0; i <= PGTABLE_KEPT; i++)
		CHECK_OK(dmar__pgtable_map(pt, (uint64_t)i * step, 0x100000, PG, DMAR_PROT_RW));
	uint64_t pages = pt->pages; /* root, levels 3 and 2, a leaf table per region */
	CHECK_EQ(pages, 3 + PGTABLE_KEPT + 1);
	for (unsigned i = 0; i < PGTABLE_KEPT; i++) {
		CHECK_OK(dmar__pgtable_unmap(pt, (uint64_t)i * step, PG, &fl));
		CHECK(!fl.tables_changed);
		CHECK_EQ(fl.tables_start, fl.tables_end);
		dmar__pgtable_flush_done(pt, &fl);
	}
	CHECK_EQ(pt->pages, pages);
	CHECK_OK(dmar__pgtable_unmap(pt, last, PG, &fl));
	CHECK(fl.tables_changed);
	CHECK_EQ(fl.tables_start, gone);
	CHECK_EQ(fl.tables_end, gone + 2 * MB);
	CHECK_EQ(fl.deferred_pages, 1);
	dmar__pgtable_flush_done(pt, &fl);
	CHECK_EQ(pt->pages, pages - 1);
	CHECK_EQ(unit_phys(f, pt, gone, NULL, NULL), 0);
	uint64_t allocs = f->page_allocs;
	for (unsigned i = 0; i <= PGTABLE_KEPT; i++)
		if ((uint64_t)i * step != gone)
			CHECK_OK(dmar__pgtable_map(pt, (uint64_t)i * step + PG, 0x200000, PG,
						   DMAR_PROT_RW));
	CHECK_EQ(f->page_allocs, allocs);
	CHECK_EQ(unit_phys(f, pt, step + PG + 8, NULL, NULL), 0x200008);
	CHECK_OK(dmar__pgtable_map(pt, gone, 0x300000, PG, DMAR_PROT_RW));
	CHECK_EQ(f->page_allocs, allocs + 1); /* the region whose table went */
	struct runs r;
	enum_all(f, pt, &r);
	CHECK_EQ(r.bad, 0);
	free(r.v);
	dmar__pgtable_fini(pt);
	CHECK_EQ(f->live_pages, 0);
	fake_done(f);
}
TEST(map_over_a_mapping_is_eexist_and_changes_nothing)
{
	struct fake *f = fake_new(false);
	struct pgtable *pt = pt_new(f, 4, 3);
	struct snapshot snap;

	CHECK_OK(dmar__pgtable_map(pt, 4 * MB, 4 * MB, 2 * MB, DMAR_PROT_RW));
	CHECK_OK(dmar__pgtable_map(pt, 8 * MB + 4 * PG, 0, 4 * PG, DMAR_PROT_READ));
	CHECK_OK(dmar__pgtable_map(pt, 2 * GB, 2 * GB, GB, DMAR_PROT_READ));
	snapshot_take(f, pt, &snap);
	static const struct {
		uint64_t iova, phys, size;
	} clash[] = {
		{4 * MB, 4 * MB, 2 * MB},                   /* identical */
		{6 * MB - PG, 100 * MB, 2 * PG},            /* last page of a superpage */
		{0, 0, 5 * MB},                             /* runs into a superpage */
		{2 * MB, 2 * MB, 4 * MB},                   /* a 2 MiB slot whole */
		{8 * MB, 0, 5 * PG},                        /* into 4 KiB pages */
		{8 * MB + 7 * PG, 0x1000, 100 * PG},        /* from the last 4 KiB page on */
		{8 * MB, 8 * MB, 2 * MB},                   /* a slot holding a table */
		{GB, GB, 2 * GB},                           /* into a 1 GiB leaf */
		{3 * GB - 2 * MB, 0, 2 * MB},               /* the end of a 1 GiB leaf */
	};
	for (size_t i = 0; i < sizeof(clash) / sizeof(clash[0]); i++) {
		CHECK_EQ(dmar__pgtable_map(pt, clash[i].iova, clash[i].phys, clash[i].size,
					   DMAR_PROT_RW),
			 DMAR_EEXIST);
	}
	snapshot_check(f, pt, &snap, false);
	dmar__pgtable_fini(pt);
	fake_done(f);
}

TEST(unmap_of_unmapped_pages_is_enoent_and_changes_nothing)
{
	struct fake *f = fake_new(false);
	struct pgtable *pt = pt_new(f, 4, 3);
	struct pgtable_flush fl;
	struct snapshot snap;

	CHECK_OK(dmar__pgtable_map(pt, 4 * MB, 4 * MB, 2 * MB, DMAR_PROT_RW));
	CHECK_OK(dmar__pgtable_map(pt, 6 * MB, 0, 3 * PG, DMAR_PROT_RW));
	CHECK_OK(dmar__pgtable_map(pt, 6 * MB + 4 * PG, 0, 3 * PG, DMAR_PROT_RW));
	snapshot_take(f, pt, &snap);
	CHECK_EQ(dmar__pgtable_unmap(pt, 4 * MB + PG, 2 * MB + 3 * PG, &fl),
		 DMAR_ENOENT); /* hole at +3 */
	CHECK_EQ(fl.start, fl.end);
	CHECK_EQ(dmar__pgtable_unmap(pt, 3 * MB, 2 * MB, &fl), DMAR_ENOENT);
	CHECK_EQ(dmar__pgtable_unmap(pt, 10 * GB, PG, &fl), DMAR_ENOENT);
	CHECK_EQ(dmar__pgtable_unmap(pt, 6 * MB + 6 * PG, 2 * PG, &fl), DMAR_ENOENT);
	snapshot_check(f, pt, &snap, false);
	dmar__pgtable_fini(pt);
	fake_done(f);
}

TEST(noncoherent_flushes_cover_every_written_entry)
{
	struct fake *f = fake_new(false);
	struct pgtable *pt = pt_new(f, 4, 3);
	struct pgtable_flush fl;
	struct runs r;

	CHECK_OK(dmar__pgtable_map(pt, 0, 0, PG, DMAR_PROT_RW));
	/* a 4 KiB map into an existing path: one flush of one entry */
	uint64_t calls = f->flush_calls, bytes = f->flush_bytes;
	CHECK_OK(dmar__pgtable_map(pt, PG, PG, PG, DMAR_PROT_RW));
	CHECK_EQ(f->flush_calls - calls, 1);
	CHECK_EQ(f->flush_bytes - bytes, 8);
	/* 16 pages in one leaf table: one flush of 16 entries */
	calls = f->flush_calls, bytes = f->flush_bytes;
	CHECK_OK(dmar__pgtable_map(pt, 32 * PG, 0, 16 * PG, DMAR_PROT_RW));
	CHECK_EQ(f->flush_calls - calls, 1);
	CHECK_EQ(f->flush_bytes - bytes, 16 * 8);
	calls = f->flush_calls, bytes = f->flush_bytes;
	CHECK_OK(dmar__pgtable_unmap(pt, 33 * PG, 2 * PG, &fl));
	CHECK_EQ(f->flush_calls - calls, 1);
	CHECK_EQ(f->flush_bytes - bytes, 16);
	dmar__pgtable_flush_done(pt, &fl);

	/* new tables, superpages, splits, detaches: after each call, memory view == CPU
	 * view in every table page (enum_all counts a difference as bad) */
	static const struct {
		bool map;
		uint64_t iova, phys, size;
	} steps[] = {
		{true, 3 * GB + MB, MB, 9 * MB},   {true, 8 * GB, 8 * GB, 2 * GB},
		{false, 8 * GB + 5 * PG, 0, 3 * MB}, {false, 3 * GB + 2 * MB, 0, 4 * MB + 5 * PG},
		{false, 0, 0, 2 * PG},              {false, 9 * GB + 4 * MB, 0, 2 * MB},
		{true, 1ull << 40, 0, 5 * PG},      {false, (1ull << 40) + PG, 0, 4 * PG},
		{false, 1ull << 40, 0, PG},
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		if (steps[i].map)
			CHECK_OK(dmar__pgtable_map(pt, steps[i].iova, steps[i].phys, steps[i].size,
						   DMAR_PROT_READ));
		else
			unmap_all(pt, steps[i].iova, steps[i].size);
		enum_all(f, pt, &r);
		CHECK_EQ(r.bad, 0);
		CHECK_EQ(r.tables, pt->pages);
		free(r.v);
	}
	CHECK_EQ(unit_phys(f, pt, 8 * GB + 5 * PG + 3 * MB, NULL, NULL), 8 * GB + 5 * PG + 3 * MB);
	CHECK_EQ(unit_phys(f, pt, 3 * GB + 6 * MB + 5 * PG, NULL, NULL), 6 * MB + 5 * PG);
	CHECK_EQ(unit_phys(f, pt, 9 * GB + 6 * MB, NULL, NULL), 9 * GB + 6 * MB);
	CHECK_EQ(unit_phys(f, pt, 9 * GB + 5 * MB, NULL, NULL), 0);
	CHECK_EQ(f->flush_errors, 0);
	dmar__pgtable_fini(pt);
	fake_done(f);
}

TEST(coherent_tables_are_never_flushed)
{
	struct fake *f = fake_new(true);
	struct pgtable *pt = pt_new(f, 4, 3);

	CHECK_OK(dmar__pgtable_map(pt, 3 * GB + MB, MB, 9 * MB, DMAR_PROT_READ));
	CHECK_OK(dmar__pgtable_map(pt, 8 * GB, 8 * GB, 2 * GB, DMAR_PROT_RW));
	unmap_all(pt, 8 * GB + 5 * PG, 3 * MB);
	unmap_all(pt, 3 * GB + MB, 9 * MB);
	CHECK_EQ(f->flush_calls, 0);
	dmar__pgtable_fini(pt);
	fake_done(f);
}

TEST(map_flush_reports_new_tables_for_caching_mode)
{
	struct fake *f = fake_new(true);
	struct pgtable *pt = pt_new(f, 3, 3);
	struct pgtable_flush fl;

	CHECK_OK(dmar__pgtable_map_flush(pt, 2 * MB, 0, 3 * PG, DMAR_PROT_RW, &fl));
	CHECK_EQ(fl.start, 2 * MB);
	CHECK_EQ(fl.end, 2 * MB + 3 * PG);
	CHECK(fl.tables_changed);
	CHECK_OK(dmar__pgtable_map_flush(pt, 2 * MB + 3 * PG, 0, PG, DMAR_PROT_RW, &fl));
	CHECK(!fl.tables_changed);
	CHECK_EQ(dmar__pgtable_map_flush(pt, 2 * MB, 0, PG, DMAR_PROT_RW, &fl), DMAR_EEXIST);
	CHECK_EQ(fl.start, fl.end);
	dmar__pgtable_fini(pt);
	fake_done(f);
}

TEST(explain_says_where_and_why_a_walk_stops)
{
	struct fake *f = fake_new(true);
	struct pgtable *pt = pt_new(f, 4, 3);
	struct pgtable_walk w;
	char line[200];

	CHECK_OK(dmar__pgtable_explain(pt, 5 * GB, &w));
	CHECK_EQ(w.result, PGTABLE_WALK_NOT_PRESENT);
	CHECK_EQ(w.level, 4);
	CHECK_EQ(w.index, 0);
	CHECK_EQ(w.table_phys, pt->root_phys);
	CHECK_EQ(w.depth, 1);

	CHECK_OK(dmar__pgtable_map(pt, 5 * GB, 0x77000, PG, DMAR_PROT_READ));
	CHECK_OK(dmar__pgtable_explain(pt, 5 * GB + PG, &w));
	CHECK_EQ(w.result, PGTABLE_WALK_NOT_PRESENT);
	CHECK_EQ(w.level, 1);
	CHECK_EQ(w.index, 1);
	CHECK_EQ(w.entry, 0);
	CHECK_EQ(w.depth, 4);
	dmar__pgtable_walk_format(&w, line, sizeof(line));
	CHECK(strstr(line, "level 1 index 1") && strstr(line, "not present"));

	CHECK_OK(dmar__pgtable_explain(pt, 5 * GB + 0x123, &w));
	CHECK_EQ(w.result, PGTABLE_WALK_READ_ONLY);
	CHECK_EQ(w.level, 1);
	CHECK_EQ(w.index, 0);
	CHECK_EQ(w.entry & 0x000ffffffffff000ull, 0x77000);
	CHECK_EQ(w.phys, 0x77123);
	CHECK_EQ(w.page_size, PG);
	CHECK_EQ(w.prot, DMAR_PROT_READ);
	dmar__pgtable_walk_format(&w, line, sizeof(line));
	CHECK(strstr(line, "not writable") && strstr(line, "0x77123"));

	CHECK_OK(dmar__pgtable_map(pt, 6 * GB, 6 * GB, GB, DMAR_PROT_RW));
	CHECK_OK(dmar__pgtable_explain(pt, 6 * GB + 42, &w));
	CHECK_EQ(w.result, PGTABLE_WALK_MAPPED);
	CHECK_EQ(w.level, 3);
	CHECK_EQ(w.page_size, GB);
	CHECK_EQ(w.phys, 6 * GB + 42);
	CHECK_EQ(dmar__pgtable_explain(pt, 1ull << 48, &w), DMAR_ERANGE);

	/* entries this engine never writes: a table address the OS cannot translate, and
	 * a large page at level 4 */
	uint64_t *root = pt->root;
	root[9] = 0xdead000ull | 3;
	CHECK_OK(dmar__pgtable_explain(pt, 9ull << 39, &w));
	CHECK_EQ(w.result, PGTABLE_WALK_RESERVED);
	CHECK_EQ(w.level, 4);
	CHECK_EQ(w.index, 9);
	CHECK_EQ(dmar__pgtable_lookup(pt, 9ull << 39, NULL, NULL, NULL), DMAR_ENOENT);
	root[9] = 0x40000000ull | 0x80 | 3;
	CHECK_OK(dmar__pgtable_explain(pt, 9ull << 39, &w));
	CHECK_EQ(w.result, PGTABLE_WALK_RESERVED);
	CHECK_EQ(w.entry, 0x40000000ull | 0x80 | 3);
	root[9] = 0;
	dmar__pgtable_fini(pt);
	fake_done(f);
}

/* ----------------------------------------------------- allocation failure paths --- */

/* Runs op with the n-th page allocation failing, n = 1, 2, ... until it succeeds; each
 * failure must return DMAR_ENOMEM and leave tables, page counts and flushed memory as
 * they were. Returns how many allocations the op needed. */
typedef int (*table_op)(struct pgtable *pt, void *arg);

static unsigned fail_each_allocation(struct fake *f, struct pgtable *pt, table_op op, void *arg)
{
	unsigned n;

	for (n = 1;; n++) {
		struct snapshot snap;
		snapshot_take(f, pt, &snap);
		f->fail_countdown = n;
		int rc = op(pt, arg);
		bool hit = f->fail_countdown == 0;
		f->fail_countdown = 0;
		if (!hit) {
			free(snap.runs.v);
			CHECK_OK(rc);
			break;
		}
		CHECK_EQ(rc, DMAR_ENOMEM);
		snapshot_check(f, pt, &snap, true);
		if (rc != DMAR_ENOMEM)
			break;
	}
	return n - 1;
}

struct range_arg {
	uint64_t iova, phys, size;
};

static int op_map(struct pgtable *pt, void *arg)
{
	struct range_arg *a = arg;
	return dmar__pgtable_map(pt, a->iova, a->phys, a->size, DMAR_PROT_RW);
}

static int op_unmap(struct pgtable *pt, void *arg)
{
	struct range_arg *a = arg;
	struct pgtable_flush fl;
	int rc = dmar__pgtable_unmap(pt, a->iova, a->size, &fl);
	dmar__pgtable_flush_done(pt, &fl);
	return rc;
}

TEST(failed_allocation_in_map_or_unmap_changes_nothing)
{
	struct fake *f = fake_new(false);
	struct pgtable *pt = pt_new(f, 5, 3);
	struct range_arg a;

	CHECK_OK(dmar__pgtable_map(pt, 0, 0, PG, DMAR_PROT_RW));
	/* a fresh path at 5 levels: four new tables */
	a = (struct range_arg){3ull << 48, 0, PG};
	CHECK_EQ(fail_each_allocation(f, pt, op_map, &a), 4);
	/* 1 GiB at 4 KiB physical alignment: 512 leaf tables and their directory */
	a = (struct range_arg){5 * GB, 5 * GB + PG, GB};
	CHECK_EQ(fail_each_allocation(f, pt, op_map, &a), 513);
	/* splitting a 1 GiB leaf around a 4 KiB hole: a 2 MiB table and a 4 KiB table */
	CHECK_OK(dmar__pgtable_map(pt, 9 * GB, 9 * GB, GB, DMAR_PROT_RW));
	a = (struct range_arg){9 * GB + 3 * MB, 0, PG};
	CHECK_EQ(fail_each_allocation(f, pt, op_unmap, &a), 2);
	/* a range that splits two 2 MiB leaves (one 2 MiB table each) */
	a = (struct range_arg){9 * GB + 9 * MB, 0, 4 * MB};
	CHECK_EQ(fail_each_allocation(f, pt, op_unmap, &a), 2);
	/* an unmap that needs no allocation is not affected */
	a = (struct range_arg){0, 0, PG};
	CHECK_EQ(fail_each_allocation(f, pt, op_unmap, &a), 0);
	dmar__pgtable_fini(pt);
	fake_done(f);
}

/* ------------------------------------------------------------- property test --- */

/* The reference: sorted, non-overlapping mapped intervals. */
struct ref {
	struct leaf *v; /* iova, phys, size, prot */
	size_t n, cap;
};

static size_t ref_first_after(const struct ref *r, uint64_t iova)
{
	size_t lo = 0, hi = r->n; /* first interval whose end > iova */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (r->v[mid].iova + r->v[mid].size > iova)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static bool ref_overlaps(const struct ref *r, uint64_t s, uint64_t e)
{
	size_t i = ref_first_after(r, s);
	return i < r->n && r->v[i].iova < e;
}

static bool ref_covers(const struct ref *r, uint64_t s, uint64_t e)
{
	for (size_t i = ref_first_after(r, s); s < e; i++) {
		if (i >= r->n || r->v[i].iova > s)
			return false;
		s = r->v[i].iova + r->v[i].size;
	}
	return true;
}

static bool ref_lookup(const struct ref *r, uint64_t iova, uint64_t *phys, unsigned *prot)
{
	size_t i = ref_first_after(r, iova);
	if (i >= r->n || r->v[i].iova > iova)
		return false;
	*phys = r->v[i].phys + (iova - r->v[i].iova);
	*prot = r->v[i].prot;
	return true;
}

static void ref_insert_at(struct ref *r, size_t i, struct leaf l)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 256;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		if (!r->v)
			abort();
	}
	memmove(&r->v[i + 1], &r->v[i], (r->n - i) * sizeof(*r->v));
	r->v[i] = l;
	r->n++;
}

static void ref_map(struct ref *r, uint64_t iova, uint64_t phys, uint64_t size, unsigned prot)
{
	ref_insert_at(r, ref_first_after(r, iova), (struct leaf){iova, phys, size, prot});
}

static void ref_unmap(struct ref *r, uint64_t s, uint64_t e)
{
	size_t i = ref_first_after(r, s);
	while (i < r->n && r->v[i].iova < e) {
		struct leaf l = r->v[i];
		uint64_t le = l.iova + l.size;
		memmove(&r->v[i], &r->v[i + 1], (r->n - i - 1) * sizeof(*r->v));
		r->n--;
		if (l.iova < s) {
			ref_insert_at(r, i++, (struct leaf){l.iova, l.phys, s - l.iova, l.prot});
		}
		if (le > e) {
			ref_insert_at(r, i++, (struct leaf){e, l.phys + (e - l.iova), le - e, l.prot});
		}
	}
}

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t x = rng_state; /* xorshift64* */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dull;
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static uint64_t seed_from_env(uint64_t fallback)
{
	const char *s = getenv("DMAR_SEED");
	return s && *s ? strtoull(s, NULL, 0) : fallback;
}

/* Compares engine, unit walk and reference at one address. */
static void check_point(const struct fake *f, const struct pgtable *pt, const struct ref *r,
			uint64_t iova, uint64_t op)
{
	uint64_t want, got = 0, sz;
	unsigned wprot = 0, prot = 0;
	bool mapped = ref_lookup(r, iova, &want, &wprot);
	struct leaf l;
	int rc = dmar__pgtable_lookup(pt, iova, &got, &prot, &sz);
	int w = unit_walk(f, pt, iova, &l);

	if (mapped && (rc != 0 || got != want || prot != wprot || w != 1 ||
		       l.phys + (iova - l.iova) != want || l.prot != wprot))
		harness_fail(__FILE__, __LINE__, "op %" PRIu64 ": iova 0x%" PRIx64 " should map 0x%" PRIx64
			     " prot %u: lookup rc %d 0x%" PRIx64 " prot %u, unit walk %d", op, iova, want,
			     wprot, rc, got, prot, w);
	if (!mapped && (rc != DMAR_ENOENT || w != 0))
		harness_fail(__FILE__, __LINE__, "op %" PRIu64 ": iova 0x%" PRIx64
			     " should be unmapped: lookup rc %d, unit walk %d", op, iova, rc, w);
}

static void check_range_points(const struct fake *f, const struct pgtable *pt,
			       const struct ref *r, uint64_t s, uint64_t e, uint64_t op)
{
	if (s >= PG)
		check_point(f, pt, r, s - PG, op);
	check_point(f, pt, r, s, op);
	check_point(f, pt, r, e - PG, op);
	check_point(f, pt, r, e, op);
	for (int i = 0; i < 6; i++)
		check_point(f, pt, r, s + (rnd_below((e - s) / PG) * PG) + rnd_below(PG), op);
}

static void check_full(const struct fake *f, const struct pgtable *pt, const struct ref *r,
		       uint64_t op)
{
	struct runs got, want;

	enum_all(f, pt, &got);
	memset(&want, 0, sizeof(want));
	for (size_t i = 0; i < r->n; i++)
		runs_add(&want, r->v[i].iova, r->v[i].phys, r->v[i].size, r->v[i].prot);
	if (!runs_equal(&got, &want) || got.bad || got.tables != pt->pages ||
	    f->live_pages != pt->pages)
		harness_fail(__FILE__, __LINE__, "op %" PRIu64 ": full check: %zu runs vs %zu expected, "
			     "%d bad tables, %" PRIu64 " tables walked, %" PRIu64 " counted, %" PRIu64 " live",
			     op, got.n, want.n, got.bad, got.tables, pt->pages, f->live_pages);
	free(got.v);
	free(want.v);
}

static const uint64_t align_choices[] = {PG, PG, PG, 64 * KB, 2 * MB, 2 * MB, GB};

static uint64_t pick_size(void)
{
	uint64_t x = rnd_below(1000);
	if (x < 550)
		return (1 + rnd_below(16)) * PG;
	if (x < 800)
		return (1 + rnd_below(1024)) * PG;
	if (x < 900)
		return (1 + rnd_below(4)) * 2 * MB;
	if (x < 996)
		return (1 + rnd_below(3072)) * PG;
	return x < 998 ? GB : GB + (1 + rnd_below(600)) * PG;
}

static void property_run(unsigned levels, unsigned sp, bool coherent, uint64_t ops,
			 uint64_t seed)
{
	struct fake *f = fake_new(coherent);
	struct pgtable *pt = pt_new(f, levels, sp);
	struct ref r = {0};
	const uint64_t window = 8 * GB; /* dense enough for collisions */
	uint64_t base = levels == 3 ? 0 : (1ull << (12 + 9 * levels)) - 2 * window;
	uint64_t mapped = 0, nfail = 0, nok = 0;
	char ctx[96];

	snprintf(ctx, sizeof(ctx), "levels %u sp %u %s seed %" PRIu64, levels, sp,
		 coherent ? "coherent" : "C=0", seed);
	harness_set_context(ctx);
	printf("  property: %s, %" PRIu64 " operations (DMAR_SEED=%" PRIu64 " repeats)\n", ctx, ops, seed);
	rng_state = seed * 2 + 1;
	for (uint64_t op = 0; op < ops; op++) {
		bool do_map = mapped < 3 * GB ? rnd_below(100) < 52 : rnd_below(100) < 25;
		bool inject = rnd_below(100) < 3;
		uint64_t s, e, size;
		int rc;

		if (inject)
			f->fail_countdown = 1 + rnd_below(3);
		if (do_map) {
			uint64_t al = align_choices[rnd_below(sizeof(align_choices) / sizeof(align_choices[0]))];
			uint64_t phys;
			unsigned prot = 1 + (unsigned)rnd_below(3);

			size = pick_size();
			s = base + rnd_below(window / al) * al;
			phys = rnd_below(2) ? (s & (GB - 1)) + rnd_below(64) * GB
					    : rnd_below((1ull << 40) / PG) * PG;
			if (s + size > base + window)
				s = base + window - size;
			e = s + size;
			rc = dmar__pgtable_map(pt, s, phys, size, prot);
			bool clash = ref_overlaps(&r, s, e);
			if (rc == 0 && !clash) {
				ref_map(&r, s, phys, size, prot);
				mapped += size;
			} else if (!(clash && rc == DMAR_EEXIST) && !(inject && rc == DMAR_ENOMEM)) {
				harness_fail(__FILE__, __LINE__, "op %" PRIu64 ": map 0x%" PRIx64 "+0x%" PRIx64
					     " returned %d, overlap %d", op, s, size, rc, clash);
			}
		} else {
			struct pgtable_flush fl;
			struct leaf first = {0}, last = {0};
			uint64_t pages_before = pt->pages;

			if (r.n && rnd_below(10) < 8) {
				const struct leaf *l = &r.v[rnd_below(r.n)];
				uint64_t np = l->size / PG, a = rnd_below(np), b = a + 1 + rnd_below(np - a);
				if (rnd_below(4) == 0)
					a = 0, b = np; /* the whole mapping */
				s = l->iova + a * PG;
				e = l->iova + b * PG;
				if (rnd_below(8) == 0 && l + 1 < r.v + r.n)
					e = l[1].iova + PG * (1 + rnd_below(l[1].size / PG)); /* into the next */
			} else {
				s = base + rnd_below(window / PG) * PG;
				e = s + pick_size();
			}
			size = e - s;
			bool covered = ref_covers(&r, s, e);
			if (covered) {
				unit_walk(f, pt, s, &first);
				unit_walk(f, pt, e - 1, &last);
			}
			rc = dmar__pgtable_unmap(pt, s, size, &fl);
			if (rc == 0 && covered) {
				bool split = first.iova != s || last.iova + last.size != e;
				ref_unmap(&r, s, e);
				mapped -= size;
				if (fl.start != first.iova || fl.end != last.iova + last.size)
					harness_fail(__FILE__, __LINE__, "op %" PRIu64 ": unmap 0x%" PRIx64 "-0x%" PRIx64
						     " flush 0x%" PRIx64 "-0x%" PRIx64 ", want 0x%" PRIx64 "-0x%" PRIx64,
						     op, s, e, fl.start, fl.end, first.iova, last.iova + last.size);
				dmar__pgtable_flush_done(pt, &fl);
				if ((split || pt->pages < pages_before) != fl.tables_changed)
					harness_fail(__FILE__, __LINE__, "op %" PRIu64 ": tables_changed %d, split %d, "
						     "pages %" PRIu64 " -> %" PRIu64, op, fl.tables_changed, split,
						     pages_before, pt->pages);
			} else if (!(!covered && rc == DMAR_ENOENT) && !(inject && rc == DMAR_ENOMEM)) {
				harness_fail(__FILE__, __LINE__, "op %" PRIu64 ": unmap 0x%" PRIx64 "+0x%" PRIx64
					     " returned %d, covered %d", op, s, size, rc, covered);
			}
		}
		rc == 0 ? nok++ : nfail++;
		f->fail_countdown = 0;
		if (f->live_pages != pt->pages)
			harness_fail(__FILE__, __LINE__, "op %" PRIu64 ": %" PRIu64 " pages live, %" PRIu64
				     " counted", op, f->live_pages, pt->pages);
		check_range_points(f, pt, &r, s, e, op);
		if (op % 4096 == 4095 || op + 1 == ops)
			check_full(f, pt, &r, op);
	}
	printf("  property: %" PRIu64 " succeeded, %" PRIu64 " refused, %zu mappings, %" PRIu64 " pages\n",
	       nok, nfail, r.n, pt->pages);
	CHECK(nok > ops / 4 && nfail > ops / 20);
	/* tear down through the API: the table ends with the root alone */
	while (r.n) {
		struct leaf l = r.v[r.n - 1];
		struct pgtable_flush fl;
		CHECK_OK(dmar__pgtable_unmap(pt, l.iova, l.size, &fl));
		dmar__pgtable_flush_done(pt, &fl);
		r.n--;
	}
	/* at most the last PGTABLE_KEPT emptied tables are left, with the tables above */
	CHECK(pt->pages <= 1 + PGTABLE_KEPT * (pt->levels - 1));
	unsigned empty_kept = 0;
	for (unsigned k = 0; k < PGTABLE_KEPT; k++)
		empty_kept += pt->kept[k].level && !pt->kept[k].present;
	CHECK_EQ(pt->pages == 1, empty_kept == 0);
	struct pgtable_flush fl;
	CHECK_OK(dmar__pgtable_trim(pt, &fl));
	dmar__pgtable_flush_done(pt, &fl);
	CHECK_EQ(pt->pages, 1);
	free(r.v);
	dmar__pgtable_fini(pt);
	fake_done(f);
	harness_set_context(NULL);
}

TEST(property_random_map_unmap_matches_reference)
{
	uint64_t seed = seed_from_env((uint64_t)time(NULL));
	property_run(4, PGTABLE_SP_2M | PGTABLE_SP_1G, false, 100000, seed);
}

TEST(property_other_geometries)
{
	uint64_t seed = seed_from_env((uint64_t)time(NULL));
	property_run(3, PGTABLE_SP_2M, true, 20000, seed);
	property_run(5, PGTABLE_SP_2M | PGTABLE_SP_1G, true, 20000, seed);
	property_run(4, 0, false, 10000, seed);
}
