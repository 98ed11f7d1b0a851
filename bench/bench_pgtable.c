/*
 * bench_pgtable.c - cost of the I/O page-table engine against a "floor" loop that only
 * stores the same 8-byte entries into table pages allocated beforehand.
 *
 * Table pages come from a pool zeroed ahead of time (page_alloc pops a page, page_free
 * parks it; parked pages are zeroed again between rounds, outside the timing), so the
 * allocator's cost does not dominate. Tables are coherent (no cache flushes). Each case
 * runs several rounds; the table shows the median.
 */
#include "bench.h"
#include "pgtable.h"
#include "dmar/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define PG 4096ull
#define MB (1024ull * 1024)
#define GB (1024ull * MB)
#define POOL_PAGES 2048u
#define POOL_PHYS 0x4000000000ull /* physical address of pool page 0 */

struct pool {
	uint8_t *arena;
	unsigned free_idx[POOL_PAGES], nfree;
	unsigned parked[POOL_PAGES], nparked;
};

static void *pool_page_alloc(void *ctx, uint64_t *phys)
{
	struct pool *p = ctx;
	if (!p->nfree)
		return NULL;
	unsigned k = p->free_idx[--p->nfree];
	*phys = POOL_PHYS + (uint64_t)k * PG;
	return p->arena + (size_t)k * PG;
}

static void pool_page_free(void *ctx, void *va, uint64_t phys)
{
	struct pool *p = ctx;
	(void)va;
	p->parked[p->nparked++] = (unsigned)((phys - POOL_PHYS) / PG);
}

static void *pool_phys_to_virt(void *ctx, uint64_t phys)
{
	struct pool *p = ctx;
	return p->arena + (size_t)(phys - POOL_PHYS);
}

/* Zeroes parked pages and makes them allocatable again (between timed regions). */
static void pool_refill(struct pool *p)
{
	while (p->nparked) {
		unsigned k = p->parked[--p->nparked];
		memset(p->arena + (size_t)k * PG, 0, PG);
		p->free_idx[p->nfree++] = k;
	}
}

static struct pool the_pool;
static const struct dmar_os_ops pool_ops = {
	.page_alloc = pool_page_alloc,
	.page_free = pool_page_free,
	.phys_to_virt = pool_phys_to_virt,
};
static const struct dmar_os pool_os = {&pool_ops, &the_pool};

static void must(int rc, const char *what)
{
	if (rc) {
		fprintf(stderr, "bench_pgtable: %s failed: %s\n", what, dmar_strerror(rc));
		exit(1);
	}
}

/* The floor: store n entries (phys + i*step | R|W [|PS]) into pre-allocated pages of
 * 512 entries each. Returns ns. */
static double floor_store(uint64_t **pages, uint64_t n, uint64_t phys, uint64_t step,
			  uint64_t bits)
{
	uint64_t t0 = bench_now_ns();
	for (uint64_t p = 0; p * 512 < n; p++) {
		uint64_t *t = pages[p], left = n - p * 512, pa = phys + p * 512 * step;
		for (unsigned i = 0; i < 512 && i < left; i++, pa += step)
			__atomic_store_n(&t[i], pa | bits, __ATOMIC_RELAXED);
	}
	bench_keep(pages[0][0]);
	return (double)(bench_now_ns() - t0);
}

static uint64_t **floor_pages(unsigned npages)
{
	uint64_t **v = calloc(npages, sizeof(*v));
	for (unsigned i = 0; i < npages; i++) {
		v[i] = aligned_alloc(PG, PG);
		memset(v[i], 0, PG);
	}
	return v;
}

static void floor_free(uint64_t **v, unsigned npages)
{
	for (unsigned i = 0; i < npages; i++)
		free(v[i]);
	free(v);
}

static void row(const char *name, uint64_t entries, double ns, double floor_ns,
		const char *target)
{
	printf("%-44s %8" PRIu64 " %12.1f %12.1f %7.2fx  %s\n", name, entries, ns, floor_ns,
	       floor_ns > 0 ? ns / floor_ns : 0.0, target);
}

#define ROUNDS 31

/* 4 KiB maps and unmaps into a leaf table that exists (one page stays mapped). */
static void bench_4k(void)
{
	struct pgtable pt;
	double map_ns[ROUNDS], unmap_ns[ROUNDS], fl_ns[ROUNDS];
	uint64_t base = 5 * GB, **fp = floor_pages(1);
	const unsigned n = 511;

	must(dmar__pgtable_init(&pt, &pool_os, 4, 3, true), "init");
	must(dmar__pgtable_map(&pt, base, 0x100000000ull, PG, DMAR_PROT_RW), "map");
	for (int r = 0; r < ROUNDS; r++) {
		struct pgtable_flush fl;
		uint64_t t0 = bench_now_ns();
		for (unsigned i = 1; i <= n; i++)
			must(dmar__pgtable_map(&pt, base + i * PG, 0x200000000ull + i * PG, PG,
					       DMAR_PROT_RW), "map");
		uint64_t t1 = bench_now_ns();
		for (unsigned i = 1; i <= n; i++) {
			must(dmar__pgtable_unmap(&pt, base + i * PG, PG, &fl), "unmap");
			dmar__pgtable_flush_done(&pt, &fl);
		}
		uint64_t t2 = bench_now_ns();
		map_ns[r] = (double)(t1 - t0) / n;
		unmap_ns[r] = (double)(t2 - t1) / n;
		fl_ns[r] = floor_store(fp, n, 0x200000000ull, PG, 3) / n;
		memset(fp[0], 0, PG);
	}
	double fl = bench_median(fl_ns, ROUNDS);
	row("map 4 KiB into an existing table path", 1, bench_median(map_ns, ROUNDS), fl, "<= 50 ns");
	row("unmap 4 KiB (engine part, no invalidation)", 1, bench_median(unmap_ns, ROUNDS), fl, "");
	dmar__pgtable_fini(&pt);
	pool_refill(&the_pool);
	floor_free(fp, 1);
}

/* Maps 1 GiB at iova 1 GiB to phys, unmaps it (untimed); the median map time. */
static double map_1g(unsigned sp, uint64_t phys, uint64_t *pages)
{
	struct pgtable pt;
	double ns[ROUNDS];

	must(dmar__pgtable_init(&pt, &pool_os, 4, sp, true), "init");
	for (int r = 0; r < ROUNDS; r++) {
		uint64_t t0 = bench_now_ns();
		must(dmar__pgtable_map(&pt, GB, phys, GB, DMAR_PROT_RW), "map 1 GiB");
		ns[r] = (double)(bench_now_ns() - t0);
		*pages = pt.pages;
		must(dmar__pgtable_unmap(&pt, GB, GB, NULL), "unmap 1 GiB");
		pool_refill(&the_pool);
	}
	dmar__pgtable_fini(&pt);
	pool_refill(&the_pool);
	return bench_median(ns, ROUNDS);
}

static void bench_1g(void)
{
	uint64_t **fp = floor_pages(512), pages;
	double fl[ROUNDS], ns;

	ns = map_1g(PGTABLE_SP_2M, 0x40200000ull, &pages);
	for (int r = 0; r < ROUNDS; r++)
		fl[r] = floor_store(fp, 512, 0x40200000ull, 2 * MB, 3 | 0x80);
	row("map 1 GiB as 2 MiB leaves (SLLPS=2M)", 512, ns, bench_median(fl, ROUNDS), "<= 5000 ns");

	ns = map_1g(PGTABLE_SP_2M | PGTABLE_SP_1G, 0x80000000ull, &pages);
	for (int r = 0; r < ROUNDS; r++)
		fl[r] = floor_store(fp, 1, 0x80000000ull, GB, 3 | 0x80);
	row("map 1 GiB as one 1 GiB leaf", 1, ns, bench_median(fl, ROUNDS), "");

	ns = map_1g(PGTABLE_SP_2M | PGTABLE_SP_1G, 0x80001000ull, &pages);
	for (int r = 0; r < ROUNDS; r++)
		fl[r] = floor_store(fp, 262144, 0x80001000ull, PG, 3);
	row("map 1 GiB as 4 KiB leaves (phys 4K-aligned)", 262144, ns, bench_median(fl, ROUNDS),
	    "<= 5x floor");
	printf("%-44s %8" PRIu64 " table pages in use after that map (root, level 3, level 2, 512 leaf tables)\n", "",
	       pages);
	floor_free(fp, 512);
}

/* 1 GiB of 4 KiB leaves unmapped in 4 KiB pieces; each flush range must be exactly the
 * page, tables_changed only when a leaf table empties and the oldest of the
 * PGTABLE_KEPT kept before goes (every leaf table but the first PGTABLE_KEPT of a
 * round); the last PGTABLE_KEPT stay kept. */
static void bench_unmap_pieces(void)
{
	struct pgtable pt;
	const int rounds = 5;
	double ns[5];
	uint64_t inexact = 0, tables = 0;

	must(dmar__pgtable_init(&pt, &pool_os, 4, 3, true), "init");
	for (int r = 0; r < rounds; r++) {
		struct pgtable_flush fl;
		must(dmar__pgtable_map(&pt, GB, 0x80001000ull, GB, DMAR_PROT_RW), "map 1 GiB");
		tables = 0;
		uint64_t t0 = bench_now_ns();
		for (uint64_t a = GB; a < 2 * GB; a += PG) {
			must(dmar__pgtable_unmap(&pt, a, PG, &fl), "unmap 4 KiB");
			inexact += fl.start != a || fl.end != a + PG;
			tables += fl.tables_changed;
			dmar__pgtable_flush_done(&pt, &fl);
		}
		ns[r] = (double)(bench_now_ns() - t0);
		pool_refill(&the_pool);
	}
	double total = bench_median(ns, rounds);
	printf("unmap 1 GiB in 262144 pieces of 4 KiB: %.2f ms total, %.1f ns per piece; "
	       "%" PRIu64 " inexact flush ranges, %" PRIu64 " with tables_changed (want %u: each "
	       "emptied leaf table but the first %u freed the kept one nearest to it)\n",
	       total / 1e6, total / 262144, inexact, tables, 512 - PGTABLE_KEPT, PGTABLE_KEPT);
	/* root, level 3, level 2 and the kept leaf tables */
	if (pt.pages != 3 + PGTABLE_KEPT || inexact || tables != 512 - PGTABLE_KEPT) {
		fprintf(stderr, "bench_pgtable: unexpected unmap result (pages %" PRIu64 ")\n", pt.pages);
		exit(1);
	}
	dmar__pgtable_fini(&pt);
	pool_refill(&the_pool);
}

int main(void)
{
	the_pool.arena = aligned_alloc(PG, (size_t)POOL_PAGES * PG);
	memset(the_pool.arena, 0, (size_t)POOL_PAGES * PG);
	for (unsigned k = 0; k < POOL_PAGES; k++)
		the_pool.free_idx[the_pool.nfree++] = POOL_PAGES - 1 - k;

	printf("pgtable: medians of %d rounds; page allocator = pre-zeroed pool (parked pages are "
	       "re-zeroed outside the timing); coherent tables (no cache flushes)\n", ROUNDS);
	printf("floor = the same 8-byte entries stored into pages allocated beforehand\n\n");
	printf("%-44s %8s %12s %12s %8s  %s\n", "case", "entries", "ns", "floor ns", "ratio",
	       "target");
	bench_4k();
	bench_1g();
	printf("\n");
	bench_unmap_pieces();
	free(the_pool.arena);
	return 0;
}
