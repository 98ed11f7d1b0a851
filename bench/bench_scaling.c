/*
 * bench_scaling.c - how the library scales with threads: the same work from one thread
 * and from two at once, on the threaded null-hardware port (ports/null: pthread
 * spinlocks for the library's locks, registers acknowledging at once). Two threads on
 * this 2-core machine can at best double the pairs per second; the ratio (two threads'
 * pairs per second over one thread's) is what the targets are stated in:
 *
 *   busdma load+unload of 4 KiB, one translated device, a map per thread:  >= 1.6x
 *   the same on two devices (a device per thread):                          >= 1.8x
 *   dmar_map + dmar_unmap of 4 KiB on disjoint ranges of one domain:         >= 1.6x
 *
 * Each case runs ROUNDS rounds, one and two threads alternating (which goes first
 * alternates too); medians of pairs per second and of the per-round ratio.
 *
 * Every case runs three times: on a unit whose invalidation waits complete at once
 * (the library's own cost: what two CPUs contend for is all that is measured), and on
 * units whose wait descriptors complete 250 ns and WAIT_NS after they are handed over
 * (argv[1] changes the latter), as a real unit's take a while: there, a CPU that waits
 * without holding a lock lets the other one work. A strict unload or dmar_unmap must
 * hand its invalidation to the unit's one queue (under the unit lock), so it shares
 * that lock with the other CPU on every pair. Last, the floor of this machine: one
 * thread, then two, each taking one shared spinlock per pair around nothing (no two
 * CPUs can share anything per pair faster than that).
 */
/* (_GNU_SOURCE, for pthread barriers and sysconf, comes from bench/CMakeLists.txt) */
#include "bench.h"
#include "dmar/busdma.h"
#include "null_port.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PG 4096ull
#define UNIT_BASE 0xfed90000ull
#define ROUNDS 9
#define ITERS 200000u
#define ITERS_WAITING 20000u /* pairs per thread when waits take WAIT_NS */
#define WAIT_NS 1000u

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_scaling: %s failed: %s\n", what, dmar_strerror(rc));
	exit(1);
}

enum kind { BUSDMA_ONE_DEVICE, BUSDMA_TWO_DEVICES, BUSDMA_ONE_DEVICE_DEFERRED, MAP_ONE_DOMAIN };

struct worker {
	enum kind kind;
	struct dmar_dma_tag *tag;
	struct dmar_dmamap *map;
	struct dmar_domain *dom;
	uint64_t iova;          /* MAP_ONE_DOMAIN: this thread's range */
	uint8_t *buf;
	unsigned iters;
	pthread_barrier_t *start;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	int rc;
	if (w->start)
		pthread_barrier_wait(w->start);
	for (unsigned i = 0; i < w->iters; i++) {
		if (w->kind == MAP_ONE_DOMAIN) {
			if ((rc = dmar_map(w->dom, w->iova, (uint64_t)(uintptr_t)w->buf, PG,
					   DMAR_PROT_RW)))
				die("dmar_map", rc);
			if ((rc = dmar_unmap(w->dom, w->iova, PG)))
				die("dmar_unmap", rc);
		} else {
			if ((rc = dmar_dmamap_load(w->tag, w->map, w->buf, PG, 0)))
				die("dmar_dmamap_load", rc);
			if ((rc = dmar_dmamap_unload(w->tag, w->map)))
				die("dmar_dmamap_unload", rc);
		}
	}
	return NULL;
}

/* Pairs per second of `n` workers running `fn` at once. */
static double run_with(void *(*fn)(void *), struct worker *w, unsigned n)
{
	pthread_t t[2];
	pthread_barrier_t b;
	pthread_barrier_init(&b, NULL, n + 1);
	for (unsigned i = 0; i < n; i++) {
		w[i].start = &b;
		if (pthread_create(&t[i], NULL, fn, &w[i]))
			die("pthread_create", DMAR_ENOMEM);
	}
	uint64_t t0 = bench_now_ns();
	pthread_barrier_wait(&b);
	for (unsigned i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	uint64_t ns = bench_now_ns() - t0;
	pthread_barrier_destroy(&b);
	return (double)n * w[0].iters * 1e9 / (double)ns;
}

static double run(struct worker *w, unsigned n)
{
	return run_with(work, w, n);
}

static struct dmar_busdma_dev *device(struct dmar_busdma *bus, uint8_t dev, bool strict)
{
	struct dmar_busdma_dev *d;
	struct dmar_pci_addr a = { 0, 0, dev, 0 };
	int rc = dmar_busdma_device(bus, a, NULL, NULL, &d);
	if (rc)
		die("dmar_busdma_device", rc);
	if (!strict)
		dmar_busdma_device_set_strict(d, false);
	return d;
}

static struct dmar_dma_tag *tag_of(struct dmar_busdma_dev *d)
{
	struct dmar_dma_tag_params p;
	struct dmar_dma_tag *t;
	dmar_dma_tag_params_default(&p);
	p.lowaddr = 0xffffffff;
	p.maxsize = p.maxsegsz = 1 << 16;
	p.nsegments = 1;
	int rc = dmar_dma_tag_create(d, NULL, &p, &t);
	if (rc)
		die("dmar_dma_tag_create", rc);
	return t;
}

/* The floor: a shared spinlock taken and released per pair, nothing else. */
static pthread_spinlock_t floor_lock;
static volatile uint64_t floor_count;

static void *floor_work(void *arg)
{
	struct worker *w = arg;
	pthread_barrier_wait(w->start);
	for (unsigned i = 0; i < w->iters; i++) {
		pthread_spin_lock(&floor_lock);
		floor_count++;
		pthread_spin_unlock(&floor_lock);
	}
	return NULL;
}

static double run_floor(struct worker *w, unsigned n)
{
	return run_with(floor_work, w, n);
}

int main(int argc, char **argv)
{
	uint64_t wait_ns = argc > 1 ? strtoull(argv[1], NULL, 0) : WAIT_NS;
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		printf("bench_scaling: one CPU only; nothing to measure\n");
		return 0;
	}
	struct null_port *np = null_port_create_threaded(NULL, UNIT_BASE, 8192);
	if (!np)
		die("null_port_create_threaded", DMAR_ENOMEM);
	const struct dmar_os *os = null_port_os(np);
	struct dmar_config cfg;
	dmar_config_default(&cfg);
	struct dmar_system *sys;
	struct dmar_unit *unit;
	struct dmar_busdma *bus;
	int rc;
	if ((rc = null_port_system(np, &cfg, &sys, &unit)))
		die("system bring-up", rc);
	if ((rc = dmar_busdma_create(os, &cfg, sys, &bus)))
		die("dmar_busdma_create", rc);
	uint8_t *bufs = aligned_alloc(PG, 2 * PG);
	if (!bufs)
		die("buffers", DMAR_ENOMEM);

	struct dmar_busdma_dev *d3 = device(bus, 3, true), *d4 = device(bus, 4, true);
	struct dmar_busdma_dev *d5 = device(bus, 5, false);
	struct dmar_dma_tag *t3 = tag_of(d3), *t4 = tag_of(d4), *t5 = tag_of(d5);
	struct dmar_domain_params dp = { .kind = DMAR_DOMAIN_TRANSLATED };
	struct dmar_domain *dom;
	if ((rc = dmar_domain_create(unit, &dp, &dom)))
		die("dmar_domain_create", rc);

	struct {
		const char *name;
		double target;
		struct worker w[2];
	} cases[] = {
		{ "busdma 4 KiB load+unload, one device (strict)", 1.6,
		  { { .kind = BUSDMA_ONE_DEVICE, .tag = t3 }, { .kind = BUSDMA_ONE_DEVICE, .tag = t3 } } },
		{ "busdma 4 KiB load+unload, a device per thread (strict)", 1.8,
		  { { .kind = BUSDMA_TWO_DEVICES, .tag = t3 }, { .kind = BUSDMA_TWO_DEVICES, .tag = t4 } } },
		{ "busdma 4 KiB load+unload, one device (deferred)", 1.6,
		  { { .kind = BUSDMA_ONE_DEVICE_DEFERRED, .tag = t5 },
		    { .kind = BUSDMA_ONE_DEVICE_DEFERRED, .tag = t5 } } },
		{ "dmar_map+dmar_unmap 4 KiB, disjoint ranges of one domain", 1.6,
		  { { .kind = MAP_ONE_DOMAIN, .dom = dom, .iova = 0x100000 },
		    { .kind = MAP_ONE_DOMAIN, .dom = dom, .iova = 0x10000000 } } },
	};
	printf("scaling: pairs per second of one thread and of two at once (threaded null-hardware "
	       "port, medians of %d rounds)\n\n", ROUNDS);
	printf("| case | invalidation wait | 1 thread | 2 threads | ratio (min-max) | target |\n"
	       "|---|---|---|---|---|---|\n");
	const uint64_t waits[] = { 0, 250, wait_ns };
	for (unsigned wi = 0; wi < sizeof(waits) / sizeof(waits[0]); wi++) {
		bool waiting = waits[wi] != 0;
		null_port_set_wait_latency(np, waits[wi]);
		for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
			struct worker *w = cases[c].w;
			for (unsigned i = 0; i < 2; i++) {
				w[i].buf = bufs + i * PG;
				w[i].iters = waiting ? ITERS_WAITING : ITERS;
				if (w[i].tag && (rc = dmar_dmamap_create(w[i].tag, 0, &w[i].map)))
					die("dmar_dmamap_create", rc);
			}
			double one[ROUNDS], two[ROUNDS], ratio[ROUNDS];
			for (int r = 0; r < ROUNDS; r++) {
				if (r % 2) {
					two[r] = run(w, 2);
					one[r] = run(w, 1);
				} else {
					one[r] = run(w, 1);
					two[r] = run(w, 2);
				}
				ratio[r] = two[r] / one[r];
			}
			double m = bench_median(ratio, ROUNDS), lo = ratio[0], hi = ratio[0];
			for (int r = 1; r < ROUNDS; r++) {
				lo = ratio[r] < lo ? ratio[r] : lo;
				hi = ratio[r] > hi ? ratio[r] : hi;
			}
			char wait[32];
			snprintf(wait, sizeof(wait), waiting ? "%llu ns" : "at once",
				 (unsigned long long)waits[wi]);
			printf("| %s | %s | %.2f M/s | %.2f M/s | %.2fx (%.2f-%.2f) | >= %.1fx: %s |\n",
			       cases[c].name, wait, bench_median(one, ROUNDS) / 1e6,
			       bench_median(two, ROUNDS) / 1e6, m, lo, hi, cases[c].target,
			       m >= cases[c].target ? "met" : "NOT met");
			for (unsigned i = 0; i < 2; i++)
				if (w[i].map) {
					dmar_dmamap_destroy(w[i].tag, w[i].map);
					w[i].map = NULL;
				}
		}
	}
	null_port_set_wait_latency(np, 0);
	{
		struct worker fw[2] = { { .iters = ITERS }, { .iters = ITERS } };
		double one[ROUNDS], two[ROUNDS], ratio[ROUNDS];
		pthread_spin_init(&floor_lock, PTHREAD_PROCESS_PRIVATE);
		for (int r = 0; r < ROUNDS; r++) {
			one[r] = run_floor(fw, 1);
			two[r] = run_floor(fw, 2);
			ratio[r] = two[r] / one[r];
		}
		printf("| floor: one shared spinlock per pair, nothing else | - | %.2f M/s | %.2f M/s "
		       "| %.2fx | - |\n", bench_median(one, ROUNDS) / 1e6,
		       bench_median(two, ROUNDS) / 1e6, bench_median(ratio, ROUNDS));
		pthread_spin_destroy(&floor_lock);
	}
	dmar_domain_destroy(dom);
	free(bufs);
	return 0;
}
