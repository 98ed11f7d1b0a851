/*
 * bench_iova.c - IOVA alloc+free pairs with 1,000, 100,000 and 1,000,000 live
 * allocations, one thread.
 *
 * Space: 48 bits, the interrupt window reserved, one guard page per allocation,
 * max_addr = the top of the space. Workloads: "1 page" (every request one page) and
 * "mixed" (70% 1 page, 25% 2-16 pages, 5% 17-256 pages). The space is first filled
 * with `live` allocations; each step then frees a random live allocation and allocates
 * a new one in its slot (xorshift, fixed seed). A warm-up of the same steps runs first;
 * each case is timed in several rounds and the median per pair is shown, beside the
 * "floor": the same loop (random numbers, slot bookkeeping) without the allocator.
 * Memory is dmar__iova_memory() / live at the end. The loop keeps each live allocation in 8
 * bytes and picks its random slots 8 steps ahead, prefetching them, so that its own
 * cache misses overlap the allocator's work instead of adding to it (at 1,000,000 live
 * allocations the slot array alone is 8 MiB). `bench_iova 1page|mixed [live]` runs
 * only the cases named.
 *
 * The OS layer here backs every allocation (the allocator's chunks, node slabs, marks and
 * stacks, and the slot array of the benchmark itself) with transparent huge pages
 * where the host allows, as a kernel's direct map would: with 4 KiB pages, TLB misses
 * under nested paging dominate at 1,000,000 live allocations.
 */
#include "bench.h"
#include "iova.h"
#include "dmar/error.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define PG 4096ull
#ifndef ROUNDS
#define ROUNDS 5
#endif
#ifndef STEPS
#define STEPS 1000000u
#endif
#define TARGET_ONE_NS 25.0
#define TARGET_ONE_NET_NS 8.0 /* 1 page, net of the loop: as Linux's per-CPU magazines */
#define TARGET_MIXED_NS 40.0
#define TARGET_BYTES 64.0

#define HUGE_SIZE (2u << 20)
#define ARENA_CHUNK (64u << 20)

/* Blocks of 2 MiB or more: their own huge-page-backed allocation. */
static void *big_alloc(size_t size)
{
	void *p;

	if (posix_memalign(&p, HUGE_SIZE, size))
		return NULL;
#ifdef MADV_HUGEPAGE
	madvise(p, size, MADV_HUGEPAGE);
#endif
	return p;
}

/* Smaller blocks: carved from 64 MiB huge-page chunks, rounded to a power of two of at
 * least 16 bytes, reused through one free list per power of two. Chunks are never
 * returned (the process ends after the benchmark). */
static struct {
	char *cur, *end;
	void *free[32];
} arena;

static unsigned arena_class(size_t size)
{
	unsigned k = 4;

	while (((size_t)1 << k) < size)
		k++;
	return k;
}

static void *arena_alloc(size_t size)
{
	unsigned k = arena_class(size);
	void *p = arena.free[k];

	if (p) {
		memcpy(&arena.free[k], p, sizeof(void *));
		return p;
	}
	if ((size_t)(arena.end - arena.cur) < ((size_t)1 << k)) {
		arena.cur = big_alloc(ARENA_CHUNK);
		if (!arena.cur)
			return NULL;
		arena.end = arena.cur + ARENA_CHUNK;
	}
	p = arena.cur;
	arena.cur += (size_t)1 << k;
	return p;
}

static void *bench_alloc(void *ctx, size_t size)
{
	(void)ctx;
	return size < HUGE_SIZE ? arena_alloc(size) : big_alloc(size);
}

static void bench_free(void *ctx, void *p, size_t size)
{
	(void)ctx;
	if (size >= HUGE_SIZE) {
		free(p);
		return;
	}
	unsigned k = arena_class(size);
	memcpy(p, &arena.free[k], sizeof(void *));
	arena.free[k] = p;
}

static const struct dmar_os_ops bench_ops = {.alloc = bench_alloc, .free = bench_free};
static const struct dmar_os bench_os = {&bench_ops, NULL};

static uint64_t rng = 0x243f6a8885a308d3ull;

static inline uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* A number below n from 32 random bits, by a multiply instead of a division (the
 * loop's own cost stays small beside the allocator's). */
static inline uint64_t below(uint64_t r32, uint64_t n)
{
	return (r32 * n) >> 32;
}

/* Size in bytes for the workload, from one random number. */
static inline uint64_t pick_size(int mixed, uint64_t r)
{
	uint64_t roll = below(r >> 32, 100);

	if (!mixed || roll < 70)
		return PG;
	if (roll < 95)
		return PG * (2 + below(r & 0xffffffffu, 15));
	return PG * (17 + below(r & 0xffffffffu, 240));
}

static void must(int rc, const char *what)
{
	if (rc) {
		fprintf(stderr, "bench_iova: %s failed: %s\n", what, dmar_strerror(rc));
		exit(1);
	}
}

/* One live allocation of the benchmark in 8 bytes: its address, with its size in pages
 * minus one in the low 12 bits (sizes are at most 256 pages), so that the benchmark's
 * own array takes as little of the cache as it can. */
typedef uint64_t slot;

static inline uint64_t slot_addr(slot x)
{
	return x & ~(PG - 1);
}

static inline uint64_t slot_size(slot x)
{
	return ((x & (PG - 1)) + 1) * PG;
}

static inline slot make_slot(uint64_t addr, uint64_t size)
{
	return addr | (size / PG - 1);
}

#define AHEAD 8u /* steps picked in advance */

struct slots {
	slot *s;
	uint64_t n;
	uint64_t ahead[AHEAD]; /* the slots of the next steps, already being fetched */
	unsigned next;
};

/* Takes the slot of this step and picks the one AHEAD steps later, starting to fetch
 * it: the benchmark's own random pick then overlaps the steps before it instead of
 * adding a cache miss to every pair. */
static inline slot *next_slot(struct slots *sl)
{
	uint64_t k = below(rnd() & 0xffffffffu, sl->n), cur = sl->ahead[sl->next];

	__builtin_prefetch(&sl->s[k], 1, 0);
	sl->ahead[sl->next] = k;
	sl->next = (sl->next + 1) % AHEAD;
	return &sl->s[cur];
}

static void start_picks(struct slots *sl)
{
	sl->next = 0;
	for (unsigned i = 0; i < AHEAD; i++)
		sl->ahead[i] = below(rnd() & 0xffffffffu, sl->n);
}

/* `steps` pairs; returns ns. */
static uint64_t run_pairs(struct iova_space *s, struct slots *sl, int mixed, unsigned steps)
{
	struct iova_request req = {0, 0, 0, UINT64_MAX};
	uint64_t t0 = bench_now_ns(), a;

	for (unsigned i = 0; i < steps; i++) {
		slot *x = next_slot(sl);
		if (dmar__iova_free(s, slot_addr(*x), slot_size(*x)))
			must(DMAR_ENOENT, "dmar__iova_free");
		req.size = pick_size(mixed, rnd());
		if (dmar__iova_alloc(s, &req, &a))
			must(DMAR_ENOSPC, "dmar__iova_alloc");
		*x = make_slot(a, req.size);
	}
	return bench_now_ns() - t0;
}

/* The same loop with the allocator replaced by a store: what the loop itself costs. */
static uint64_t run_floor(struct slots *sl, int mixed, unsigned steps)
{
	uint64_t t0 = bench_now_ns();

	for (unsigned i = 0; i < steps; i++) {
		slot *x = next_slot(sl);
		uint64_t size = pick_size(mixed, rnd());
		bench_keep(slot_addr(*x) + slot_size(*x));
		*x = make_slot(size * 3, size);
	}
	return bench_now_ns() - t0;
}

/* Usage: bench_iova [1page|mixed [live]] - every case, or only the ones named. */
int main(int argc, char **argv)
{
	static const uint64_t counts[] = {1000, 100000, 1000000};
	int all_ok = 1;
	int only_mixed = argc > 1 ? strcmp(argv[1], "mixed") == 0 : -1;
	uint64_t only_live = argc > 2 ? strtoull(argv[2], NULL, 0) : 0;

	printf("IOVA alloc+free pairs, one thread, 48-bit space, guard 1, huge pages for big blocks, median of %d rounds of %u pairs\n",
	       ROUNDS, STEPS);
	printf("targets: <= %.0f ns and <= %.0f ns net (1 page), <= %.0f ns (mixed), <= %.0f bytes per live "
	       "allocation\n", TARGET_ONE_NS, TARGET_ONE_NET_NS, TARGET_MIXED_NS, TARGET_BYTES);
	printf("(ns/pair includes the loop itself; floor: the loop alone; net = ns/pair - floor)\n");
	printf("%-8s %10s %12s %10s %8s %12s %8s\n", "workload", "live", "ns/pair", "floor ns", "net ns",
	       "bytes/live", "meets");
	for (int mixed = 0; mixed < 2; mixed++) {
		for (size_t ci = 0; ci < sizeof(counts) / sizeof(counts[0]); ci++) {
			struct iova_space s;
			struct iova_request req = {0, 0, 0, UINT64_MAX};
			struct slots sl;
			double ns[ROUNDS], floor_ns[ROUNDS];

			if ((only_mixed >= 0 && only_mixed != mixed) || (only_live && only_live != counts[ci]))
				continue;
			sl.n = counts[ci];
			sl.s = big_alloc(sl.n * sizeof(*sl.s));
			if (!sl.s)
				must(DMAR_ENOMEM, "malloc");
			must(dmar__iova_init(&s, &bench_os, PG, (1ull << 48) - 1,
					     IOVA_DEFAULT_GUARD), "dmar__iova_init");
			must(dmar__iova_reserve(&s, IOVA_INTR_START,
						IOVA_INTR_END - IOVA_INTR_START + 1),
			     "dmar__iova_reserve");
			for (uint64_t i = 0; i < sl.n; i++) {
				req.size = pick_size(mixed, rnd());
				uint64_t a;
				must(dmar__iova_alloc(&s, &req, &a), "dmar__iova_alloc (fill)");
				sl.s[i] = make_slot(a, req.size);
			}
			start_picks(&sl);
			run_pairs(&s, &sl, mixed, STEPS); /* warm-up: caches reach their steady state */
			for (int round = 0; round < ROUNDS; round++) {
				ns[round] = (double)run_pairs(&s, &sl, mixed, STEPS) / STEPS;
				/* the floor loop scribbles over the slots: run it on a copy */
				struct slots copy = sl;
				copy.s = big_alloc(sl.n * sizeof(*copy.s));
				if (!copy.s)
					must(DMAR_ENOMEM, "malloc");
				memcpy(copy.s, sl.s, sl.n * sizeof(*copy.s));
				floor_ns[round] = (double)run_floor(&copy, mixed, STEPS) / STEPS;
				free(copy.s);
			}
			double med = bench_median(ns, ROUNDS), fl = bench_median(floor_ns, ROUNDS);
			double bytes = (double)dmar__iova_memory(&s) / (double)dmar__iova_live(&s);
			int ok = med <= (mixed ? TARGET_MIXED_NS : TARGET_ONE_NS) && bytes <= TARGET_BYTES &&
				 (mixed || med - fl <= TARGET_ONE_NET_NS);
			all_ok &= ok;
			printf("%-8s %10" PRIu64 " %12.1f %10.1f %8.1f %12.1f %8s\n", mixed ? "mixed" : "1 page",
			       sl.n, med, fl, med - fl, bytes, ok ? "yes" : "NO");
			fflush(stdout);
			dmar__iova_fini(&s);
			free(sl.s);
		}
	}
	printf("%s\n", all_ok ? "all rows meet the targets" : "some rows miss a target (NO above)");
	return 0;
}
