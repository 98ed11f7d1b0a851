/*
 * test_concurrency.c - many CPUs at once (issue 17): threads calling the library
 * together on the simulated machine, each checking what a device sees against its own
 * reference, then a check of every mapping once they are done.
 *
 * What each thread owns is its own (IOVA pages of a domain, busdma maps, buffers), so
 * what it observes is exactly determined by what it did: a mapping it made must be
 * reached by the device (through the model's caches, which keep stale entries until
 * they are invalidated), a page it unmapped strictly must fault, never reach the old
 * page. Neighbouring threads' pages share page-table pages, so tables are created,
 * split and freed under each other. Run under ThreadSanitizer (`ctest -L threads` in a
 * -DDMAR_TSAN=ON build) a missing lock shows as a data race report; in any build a
 * lost update or a stale translation shows as a failed check.
 *
 * Seeded (DMAR_SEED overrides), bounded steps per thread (DMAR_STEPS sets them for
 * every test), fewer under the sanitizers.
 */
#include "harness.h"
#include "simsys.h"
#include "regs.h"
#include "pgtable.h"
#include "dmar/busdma.h"

#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define PG 4096ull
#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define TAG 0x7a6e3c5d00000000ull /* first 8 bytes of every tagged page: TAG ^ its address */
#define MAX_THREADS 8
#define MAX_DOMS 4

/* Under a sanitizer every access is checked: fewer steps keep make check short. */
#if defined(__SANITIZE_THREAD__)
#define STEP_DIVISOR 2
#elif defined(__SANITIZE_ADDRESS__)
#define STEP_DIVISOR 4
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define STEP_DIVISOR 2
#elif __has_feature(address_sanitizer)
#define STEP_DIVISOR 4
#endif
#endif
#ifndef STEP_DIVISOR
#define STEP_DIVISOR 1
#endif

/* ------------------------------------------------------------------ helpers --- */

static uint64_t seed_from_env(uint64_t dflt)
{
	const char *e = getenv("DMAR_SEED");
	return e ? strtoull(e, NULL, 0) : dflt;
}

/* Steps per thread: the default (the whole file takes about 5 s in a plain build),
 * halved under ThreadSanitizer (about 30 s) and quartered under AddressSanitizer (about
 * 10 s), or DMAR_STEPS. */
static unsigned long steps(unsigned long dflt)
{
	const char *e = getenv("DMAR_STEPS");
	if (e)
		return strtoul(e, NULL, 0);
	return dflt / STEP_DIVISOR;
}

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	r->s ^= r->s << 13;
	r->s ^= r->s >> 7;
	r->s ^= r->s << 17;
	return r->s;
}

static unsigned below(struct rng *r, unsigned n)
{
	return (unsigned)(rnd(r) % n);
}

/* What a worker found wrong. Workers cannot use CHECK (the harness belongs to the main
 * thread): they keep the first message and a count, reported after the join. */
struct errs {
	unsigned n;
	char first[320];
};

static void err(struct errs *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void err(struct errs *e, const char *fmt, ...)
{
	if (e->n++ == 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(e->first, sizeof(e->first), fmt, ap);
		va_end(ap);
	}
}

static void report(const char *who, unsigned id, const struct errs *e)
{
	if (e->n)
		harness_fail(__FILE__, __LINE__, "%s %u: %u error(s), the first: %s", who, id,
			     e->n, e->first);
}

static int flag_get(const int *f)
{
	return __atomic_load_n(f, __ATOMIC_ACQUIRE);
}

static void flag_set(int *f)
{
	__atomic_store_n(f, 1, __ATOMIC_RELEASE);
}

/* `n` pages of simulated RAM, `align`-aligned, each tagged with its own address so that
 * a device read tells which page it reached. */
static uint64_t tagged_pages(struct simsys *s, unsigned n, uint64_t align)
{
	uint64_t pa;
	uint8_t *va = dmar_posix_machine_alloc_dma(s->pm, (size_t)(n * PG), (size_t)align, &pa);
	if (!va) {
		fprintf(stderr, "out of simulated RAM\n");
		abort();
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t t = TAG ^ (pa + i * PG);
		memcpy(va + i * PG, &t, 8);
	}
	return pa;
}

/* A device reads the first 8 bytes at iova: 0 with *pa the tagged page it reached
 * (UINT64_MAX: a page without a tag), or the fault reason (> 0), or a bus error (< 0). */
static int probe(struct simsys *s, struct model *m, uint16_t sid, uint64_t iova, uint64_t *pa)
{
	uint64_t v = 0;
	int rc = simsys_dma_via(s, m, sid, iova, &v, 8, false);
	if (rc == 0) {
		*pa = v ^ TAG;
		if ((*pa & (PG - 1)) || !dmar_posix_machine_phys_to_virt(s->pm, *pa))
			*pa = UINT64_MAX;
	}
	return rc;
}

/* ------------------------------------------------ domains under many threads --- */

/* The reference of one page, kept by the thread that owns it: 0 when nothing maps it,
 * else the physical page | REF_MAPPED | prot bits, or the old page | REF_DEFERRED after
 * a deferred unmap whose invalidation the owner has not seen complete. */
#define REF_MAPPED 1ull
#define REF_DEFERRED 2ull
#define REF_PROT_SHIFT 2
#define REF_PA(r) ((r) & ~(PG - 1))

struct dut { /* a domain under test */
	struct dmar_domain *dom;
	struct model *model; /* its unit */
	uint16_t sid;        /* the device attached to it */
	uint64_t base;       /* the window: npages pages from base */
	bool holds;          /* created caller_holds_deferred: its users never map over a
				range they unmapped deferred before their flush (busdma's way) */
};

struct storm {
	struct simsys *s;
	pthread_barrier_t go; /* the workers start together */
	struct dut d[MAX_DOMS];
	unsigned ndoms;
	unsigned nthreads;
	/* The window: `shared` pages dealt round-robin to the threads in slots of `slot`
	 * pages (so every table page of it is shared), then `priv` 2 MiB blocks per
	 * thread (superpages, long runs). */
	unsigned slot, shared, priv;
	unsigned npages;
	bool random_ops;   /* random operations of random sizes (the property test) */
	unsigned max_live; /* otherwise: map runs, and unmap the oldest past this many */
	bool deferred;     /* some unmaps deferred, flushes from the threads */
	unsigned long steps;
	uint64_t seed;
	int stop;          /* the workers are done (the roaming device stops) */
};

struct live_run {
	unsigned d, first, n;
};

struct worker {
	struct storm *st;
	unsigned id;
	struct rng rng;
	uint64_t pool;       /* 256 tagged pages for small maps */
	uint64_t big;        /* 2 MiB-aligned, 2 MiB of tagged pages, for superpages */
	uint64_t *ref[MAX_DOMS];
	struct live_run live[16];
	unsigned nlive;
	unsigned long maps, unmaps, deferred, superpages, refused, lookups, probes, flushes;
	struct errs e;
};

#define POOL_PAGES 256u

static unsigned owner(const struct storm *st, unsigned p)
{
	if (p < st->shared)
		return (p / st->slot) % st->nthreads;
	return (p - st->shared) / 512u / st->priv;
}

static uint64_t iova_of(const struct storm *st, unsigned d, unsigned p)
{
	return st->d[d].base + (uint64_t)p * PG;
}

/* What the device sees at page p of domain d must be what the reference says: the
 * page (mapped), a fault (unmapped), or a fault or the old page (deferred). */
static void expect_device(struct worker *w, unsigned d, unsigned p, const char *after)
{
	struct storm *st = w->st;
	uint64_t r = w->ref[d][p], pa = 0;
	int rc = probe(st->s, st->d[d].model, st->d[d].sid, iova_of(st, d, p), &pa);
	w->probes++;
	if (r & REF_MAPPED) {
		if (rc != 0 || pa != REF_PA(r))
			err(&w->e, "domain %u page 0x%llx after %s: device got rc %d, page 0x%llx, "
			    "not 0x%llx", d, (unsigned long long)iova_of(st, d, p), after, rc,
			    (unsigned long long)pa, (unsigned long long)REF_PA(r));
		return;
	}
	if (rc > 0)
		return;
	if ((r & REF_DEFERRED) && rc == 0 && pa == REF_PA(r))
		return; /* the window of a deferred unmap: the old page, nothing else */
	err(&w->e, "domain %u page 0x%llx after %s: unmapped, yet the device got rc %d, "
	    "page 0x%llx (stale translation)", d, (unsigned long long)iova_of(st, d, p), after,
	    rc, (unsigned long long)pa);
}

/* A write needs DMAR_PROT_WRITE (offset 8: the tag stays). */
static void expect_write(struct worker *w, unsigned d, unsigned p)
{
	struct storm *st = w->st;
	uint64_t r = w->ref[d][p], v = 0;
	int rc = simsys_dma_via(st->s, st->d[d].model, st->d[d].sid, iova_of(st, d, p) + 8, &v,
				8, true);
	unsigned prot = (unsigned)(r >> REF_PROT_SHIFT) & 3u;
	if ((prot & DMAR_PROT_WRITE) ? rc != 0 : rc != (int)VTD_FR_WRITE)
		err(&w->e, "domain %u page 0x%llx (prot %u): device write gave %d", d,
		    (unsigned long long)iova_of(st, d, p), prot, rc);
}

static void expect_lookup(struct worker *w, unsigned d, unsigned p)
{
	struct storm *st = w->st;
	uint64_t r = w->ref[d][p], pa = 0;
	unsigned prot = 0;
	int rc = dmar_lookup(st->d[d].dom, iova_of(st, d, p), &pa, &prot);
	w->lookups++;
	if (r & REF_MAPPED) {
		if (rc != 0 || pa != REF_PA(r) || prot != ((r >> REF_PROT_SHIFT) & 3u))
			err(&w->e, "domain %u page 0x%llx: lookup gave %d, 0x%llx prot %u; "
			    "reference 0x%llx", d, (unsigned long long)iova_of(st, d, p), rc,
			    (unsigned long long)pa, prot, (unsigned long long)r);
	} else if (rc != DMAR_ENOENT) {
		err(&w->e, "domain %u page 0x%llx: unmapped, lookup gave %d (0x%llx)", d,
		    (unsigned long long)iova_of(st, d, p), rc, (unsigned long long)pa);
	}
}

static void do_map(struct worker *w, unsigned d, unsigned first, unsigned n, uint64_t pa,
		   unsigned prot)
{
	struct storm *st = w->st;
	bool free = true;
	for (unsigned i = 0; i < n; i++) {
		free = free && !(w->ref[d][first + i] & REF_MAPPED);
		if (st->d[d].holds && (w->ref[d][first + i] & REF_DEFERRED))
			return; /* kept out of use until this thread's flush */
	}
	int rc = dmar_map(st->d[d].dom, iova_of(st, d, first), pa, (uint64_t)n * PG, prot);
	if (!free) {
		if (rc != DMAR_EEXIST)
			err(&w->e, "domain %u: map over a mapped page gave %d", d, rc);
		w->refused++;
		return;
	}
	if (rc) {
		err(&w->e, "domain %u: map of %u pages at 0x%llx failed: %s", d, n,
		    (unsigned long long)iova_of(st, d, first), dmar_strerror(rc));
		return;
	}
	for (unsigned i = 0; i < n; i++)
		w->ref[d][first + i] = (pa + i * PG) | REF_MAPPED |
				       ((uint64_t)prot << REF_PROT_SHIFT);
	w->maps++;
	w->superpages += n == 512;
	expect_device(w, d, first, "map");
	expect_device(w, d, first + n - 1, "map");
	expect_write(w, d, first);
	expect_lookup(w, d, first + n / 2);
}

static void do_unmap(struct worker *w, unsigned d, unsigned first, unsigned n, bool deferred)
{
	struct storm *st = w->st;
	uint64_t pa;
	/* Warm the IOTLB with what is about to go. */
	(void)probe(st->s, st->d[d].model, st->d[d].sid, iova_of(st, d, first), &pa);
	(void)probe(st->s, st->d[d].model, st->d[d].sid, iova_of(st, d, first + n - 1), &pa);
	int rc = deferred ? dmar_unmap_deferred(st->d[d].dom, iova_of(st, d, first), (uint64_t)n * PG)
			  : dmar_unmap(st->d[d].dom, iova_of(st, d, first), (uint64_t)n * PG);
	if (rc) {
		err(&w->e, "domain %u: %s of %u pages at 0x%llx failed: %s", d,
		    deferred ? "deferred unmap" : "unmap", n,
		    (unsigned long long)iova_of(st, d, first), dmar_strerror(rc));
		return;
	}
	for (unsigned i = 0; i < n; i++)
		w->ref[d][first + i] = deferred ? REF_PA(w->ref[d][first + i]) | REF_DEFERRED : 0;
	w->unmaps++;
	w->deferred += deferred;
	expect_device(w, d, first, deferred ? "deferred unmap" : "unmap");
	expect_device(w, d, first + n - 1, deferred ? "deferred unmap" : "unmap");
	expect_lookup(w, d, first);
}

/* After the worker's own flush every deferred unmap it made before has completed. */
static void do_flush(struct worker *w, unsigned d)
{
	int rc = dmar_domain_flush(w->st->d[d].dom);
	w->flushes++;
	if (rc) {
		err(&w->e, "domain %u: flush failed: %s", d, dmar_strerror(rc));
		return;
	}
	for (unsigned p = 0; p < w->st->npages; p++) {
		if (w->ref[d][p] & REF_DEFERRED) {
			w->ref[d][p] = 0;
			if (below(&w->rng, 8) == 0)
				expect_device(w, d, p, "flush");
		}
	}
}

/* A random page of this worker's (shared or private). */
static unsigned my_page(struct worker *w)
{
	struct storm *st = w->st;
	unsigned nslots = st->shared / st->slot;
	unsigned nmine = nslots / st->nthreads;
	if (st->priv && below(&w->rng, 2))
		return st->shared + (w->id * st->priv + below(&w->rng, st->priv)) * 512u +
		       below(&w->rng, 512);
	unsigned slot = below(&w->rng, nmine) * st->nthreads + w->id;
	return slot * st->slot + below(&w->rng, st->slot);
}

/* The property test's step: one random operation, checked at once. */
static void random_step(struct worker *w)
{
	struct storm *st = w->st;
	unsigned d = below(&w->rng, st->ndoms);
	unsigned op = below(&w->rng, 100);
	if (op < 40) {
		unsigned p = my_page(w), n, tries = 0;
		uint64_t pa;
		while ((w->ref[d][p] & REF_MAPPED) && tries++ < 8)
			p = my_page(w);
		if (p >= st->shared) {
			unsigned start = st->shared + (p - st->shared) / 512u * 512u;
			bool block_free = true;
			for (unsigned i = 0; i < 512; i++)
				block_free = block_free && !(w->ref[d][start + i] & REF_MAPPED);
			if (block_free && below(&w->rng, 3) == 0) {
				p = start; /* a superpage */
				n = 512;
				pa = w->big;
			} else {
				n = 1 + below(&w->rng, below(&w->rng, 4) ? 16 : POOL_PAGES);
				if (p + n > start + 512)
					n = start + 512 - p;
				pa = w->pool + below(&w->rng, POOL_PAGES - n + 1) * PG;
			}
		} else {
			unsigned end = (p / st->slot + 1) * st->slot;
			n = 1 + below(&w->rng, end - p);
			pa = w->pool + below(&w->rng, POOL_PAGES - n + 1) * PG;
		}
		/* Mostly a map of free pages; sometimes one over a mapped page, refused. */
		if (below(&w->rng, 8)) {
			for (unsigned i = 1; i < n; i++) {
				if (w->ref[d][p + i] & (REF_MAPPED | REF_DEFERRED)) {
					n = i;
					break;
				}
			}
		}
		do_map(w, d, p, n, pa, below(&w->rng, 3) ? DMAR_PROT_RW : DMAR_PROT_READ);
	} else if (op < 70) {
		/* A run of mapped pages of this worker's, from a random mapped one on. */
		unsigned p = my_page(w), tries = 0;
		while (!(w->ref[d][p] & REF_MAPPED) && tries++ < 32)
			p = my_page(w);
		if (!(w->ref[d][p] & REF_MAPPED))
			return;
		unsigned want = 1 + below(&w->rng, below(&w->rng, 4) ? 8 : 600), n = 1;
		while (n < want && p + n < st->npages && owner(st, p + n) == w->id &&
		       (w->ref[d][p + n] & REF_MAPPED))
			n++;
		do_unmap(w, d, p, n, st->deferred && below(&w->rng, 3) == 0);
	} else if (op < 73 && st->priv) {
		/* Everything in one of this worker's 2 MiB blocks goes, run by run (then a
		 * superpage may come). */
		unsigned start = st->shared + (w->id * st->priv + below(&w->rng, st->priv)) * 512u;
		for (unsigned p = start, n; p < start + 512; p += n) {
			for (n = 0; p + n < start + 512 && (w->ref[d][p + n] & REF_MAPPED); n++)
				;
			if (n)
				do_unmap(w, d, p, n, st->deferred && below(&w->rng, 3) == 0);
			else
				n = 1;
		}
	} else if (op < 82) {
		expect_lookup(w, d, my_page(w));
	} else if (op < 97) {
		expect_device(w, d, my_page(w), "nothing");
	} else if (st->deferred) {
		do_flush(w, d);
	}
}

/* The storm's step: map a run in a free slot of this worker's, or unmap its oldest run,
 * keeping few runs alive so that table pages empty (and are freed) and fill (and are
 * allocated) all the time. */
static void storm_step(struct worker *w)
{
	struct storm *st = w->st;
	if (w->nlive < st->max_live && (w->nlive == 0 || below(&w->rng, 2))) {
		unsigned d = below(&w->rng, st->ndoms);
		for (unsigned tries = 0; tries < 8; tries++) {
			unsigned p = my_page(w);
			unsigned end = (p / st->slot + 1) * st->slot;
			unsigned n = 1 + below(&w->rng, end - p);
			bool free = true;
			for (unsigned i = 0; i < n; i++)
				free = free && w->ref[d][p + i] == 0;
			if (!free)
				continue;
			uint64_t pa = w->pool + below(&w->rng, POOL_PAGES - n + 1) * PG;
			do_map(w, d, p, n, pa, below(&w->rng, 4) ? DMAR_PROT_RW : DMAR_PROT_READ);
			if (w->ref[d][p] & REF_MAPPED)
				w->live[w->nlive++] = (struct live_run){ d, p, n };
			break;
		}
	} else {
		struct live_run r = w->live[0];
		memmove(&w->live[0], &w->live[1], --w->nlive * sizeof(w->live[0]));
		do_unmap(w, r.d, r.first, r.n, false);
	}
	/* A look at another page of this worker's. */
	unsigned d = below(&w->rng, st->ndoms), p = my_page(w);
	if (below(&w->rng, 2))
		expect_lookup(w, d, p);
	else
		expect_device(w, d, p, "nothing");
}

static void *storm_worker(void *arg)
{
	struct worker *w = arg;
	pthread_barrier_wait(&w->st->go);
	for (unsigned long i = 0; i < w->st->steps && w->e.n < 10; i++) {
		if (w->st->random_ops)
			random_step(w);
		else
			storm_step(w);
	}
	return NULL;
}

/* A device that reads anywhere in the windows while the tables change: it may fault
 * or reach a page some thread mapped (every such page is tagged), nothing else (a
 * table page freed under the walk, say). */
struct roamer {
	struct storm *st;
	struct rng rng;
	unsigned long reads, faults;
	struct errs e;
};

static void *roaming_device(void *arg)
{
	struct roamer *r = arg;
	struct storm *st = r->st;
	while (!flag_get(&st->stop)) {
		unsigned d = below(&r->rng, st->ndoms);
		uint64_t pa = 0;
		int rc = probe(st->s, st->d[d].model, st->d[d].sid,
			       iova_of(st, d, below(&r->rng, st->npages)), &pa);
		r->reads++;
		if (rc > 0)
			r->faults++;
		else if (rc < 0 || pa == UINT64_MAX)
			err(&r->e, "domain %u: the device reached memory nobody mapped (rc %d)", d, rc);
		if ((r->reads & 63) == 0) {
			/* A diagnostics thread's look at the domain meanwhile. */
			struct dmar_domain_info di;
			dmar_domain_get_info(st->d[d].dom, &di);
			if (di.levels != 3 || di.table_pages < 1)
				err(&r->e, "domain %u: info says %u levels, %llu table pages", d,
				    di.levels, (unsigned long long)di.table_pages);
			sched_yield(); /* mutexes are unfair: let the mappers at the unit */
		}
	}
	return NULL;
}

/* After the threads: every page of every window against its owner's reference, in the
 * tables (lookup), in memory (the model's walk without caches) and through the caches
 * (DMA), with the deferred unmaps flushed first. Then everything is unmapped. */
static void check_every_mapping(struct storm *st, struct worker *w)
{
	unsigned bad = 0;
	for (unsigned d = 0; d < st->ndoms; d++) {
		struct dut *u = &st->d[d];
		CHECK_OK(dmar_domain_flush(u->dom));
		for (unsigned p = 0; p < st->npages; p++) {
			struct worker *o = &w[owner(st, p)];
			if (o->ref[d][p] & REF_DEFERRED)
				o->ref[d][p] = 0;
			uint64_t r = o->ref[d][p], pa = 0, want = REF_PA(r);
			unsigned prot = 0, reason = 0;
			int lk = dmar_lookup(u->dom, iova_of(st, d, p), &pa, &prot);
			bool ok = (r & REF_MAPPED) ? lk == 0 && pa == want : lk == DMAR_ENOENT;
			int tr = dmar_model_translate(u->model, u->sid, iova_of(st, d, p),
						      MODEL_DMA_READ, &pa, &reason);
			ok = ok && ((r & REF_MAPPED) ? tr == 0 && pa == want : tr != 0);
			int dm = probe(st->s, u->model, u->sid, iova_of(st, d, p), &pa);
			ok = ok && ((r & REF_MAPPED) ? dm == 0 && pa == want : dm > 0);
			if (!ok && bad++ < 5)
				harness_fail(__FILE__, __LINE__, "domain %u page 0x%llx: reference "
					     "0x%llx, lookup %d, walk %d, DMA %d (0x%llx)", d,
					     (unsigned long long)iova_of(st, d, p),
					     (unsigned long long)r, lk, tr, dm,
					     (unsigned long long)pa);
		}
		/* Unmap what is left, run by run. */
		for (unsigned p = 0; p < st->npages;) {
			struct worker *o = &w[owner(st, p)];
			if (!(o->ref[d][p] & REF_MAPPED)) {
				p++;
				continue;
			}
			unsigned n = 1;
			while (p + n < st->npages && (w[owner(st, p + n)].ref[d][p + n] & REF_MAPPED))
				n++;
			CHECK_OK(dmar_unmap(u->dom, iova_of(st, d, p), (uint64_t)n * PG));
			for (unsigned i = 0; i < n; i++)
				w[owner(st, p + i)].ref[d][p + i] = 0;
			p += n;
		}
		uint64_t pa;
		for (unsigned p = 0; p < st->npages; p += 61)
			CHECK(probe(st->s, u->model, u->sid, iova_of(st, d, p), &pa) > 0);
		struct dmar_domain_info di;
		dmar_domain_get_info(u->dom, &di);
		/* Nothing mapped: at most the root and the paths of the kept tables. */
		CHECK(di.table_pages <= 1 + PGTABLE_KEPT * (di.levels - 1));
	}
	CHECK_EQ(bad, 0);
}

/* Runs the workers (and a roaming device) over the storm's domains, then checks. */
static void run_storm(struct storm *st, bool roam)
{
	struct worker *w = calloc(st->nthreads, sizeof(*w));
	REQUIRE(w);
	st->npages = st->shared + st->nthreads * st->priv * 512u;
	for (unsigned t = 0; t < st->nthreads; t++) {
		w[t].st = st;
		w[t].id = t;
		w[t].rng.s = st->seed + 0x9e3779b97f4a7c15ull * (t + 1);
		w[t].pool = tagged_pages(st->s, POOL_PAGES, PG);
		if (st->priv)
			w[t].big = tagged_pages(st->s, 512, 2 * MIB);
		for (unsigned d = 0; d < st->ndoms; d++) {
			w[t].ref[d] = calloc(st->npages, sizeof(uint64_t));
			REQUIRE(w[t].ref[d]);
		}
	}
	pthread_t th[MAX_THREADS], rt;
	struct roamer r = { .st = st, .rng = { st->seed ^ 0x5555 } };
	st->stop = 0;
	pthread_barrier_init(&st->go, NULL, st->nthreads);
	if (roam)
		REQUIRE(pthread_create(&rt, NULL, roaming_device, &r) == 0);
	for (unsigned t = 0; t < st->nthreads; t++)
		REQUIRE(pthread_create(&th[t], NULL, storm_worker, &w[t]) == 0);
	unsigned long maps = 0, unmaps = 0, deferred = 0, sp = 0, refused = 0, lookups = 0,
		      probes = 0, flushes = 0;
	for (unsigned t = 0; t < st->nthreads; t++) {
		pthread_join(th[t], NULL);
		report("thread", t, &w[t].e);
		maps += w[t].maps;
		unmaps += w[t].unmaps;
		deferred += w[t].deferred;
		sp += w[t].superpages;
		refused += w[t].refused;
		lookups += w[t].lookups;
		probes += w[t].probes;
		flushes += w[t].flushes;
	}
	flag_set(&st->stop);
	pthread_barrier_destroy(&st->go);
	if (roam) {
		pthread_join(rt, NULL);
		report("roaming device", 0, &r.e);
	}
	printf("  %u threads x %lu steps on %u domain(s): %lu maps (%lu superpages, %lu "
	       "refused overlaps), %lu unmaps (%lu deferred), %lu flushes, %lu lookups, "
	       "%lu device reads checked; roaming device: %lu reads, %lu faults\n",
	       st->nthreads, st->steps, st->ndoms, maps, sp, refused, unmaps, deferred, flushes,
	       lookups, probes, r.reads, r.faults);
	CHECK(maps > st->nthreads * st->steps / 8);
	CHECK(unmaps > st->nthreads * st->steps / 16);
	check_every_mapping(st, w);
	for (unsigned t = 0; t < st->nthreads; t++)
		for (unsigned d = 0; d < st->ndoms; d++)
			free(w[t].ref[d]);
	free(w);
}

static struct dmar_domain *attached_domain(struct dmar_unit *u, uint16_t sid)
{
	struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED };
	struct dmar_domain *d = NULL;
	REQUIRE_OK(dmar_domain_create(u, &p, &d));
	REQUIRE_OK(dmar_domain_attach(d, sid));
	return d;
}

static void storm_down(struct storm *st)
{
	for (unsigned d = 0; d < st->ndoms; d++) {
		CHECK_OK(dmar_domain_detach(st->d[d].dom, st->d[d].sid));
		CHECK_OK(dmar_domain_destroy(st->d[d].dom));
	}
	CHECK_EQ(simsys_down(st->s), 0);
}

/* Four threads map, unmap and look up on one domain, each in its own 16-page slots of
 * eight 2 MiB regions straddling a 1 GiB boundary: every leaf table and both
 * second-level tables are shared, and with few runs alive they are freed and allocated
 * again all the time, under each other's feet, while a device reads everywhere. */
TEST(map_unmap_lookup_storm_on_one_domain)
{
	struct simsys s;
	struct model_config m = simsys_keep_everything();
	REQUIRE_OK(simsys_up(&s, &m, NULL));
	struct storm st = { .s = &s, .ndoms = 1, .nthreads = 4, .slot = 16, .shared = 4096,
			    .max_live = 3, .steps = steps(100000), .seed = seed_from_env(0x17) };
	st.d[0] = (struct dut){ attached_domain(s.unit, VTD_SID(0, 5, 0)), s.model,
				VTD_SID(0, 5, 0), GIB - 8 * MIB, false };
	run_storm(&st, true);
	storm_down(&st);
}

/* The same on three domains at once: two on a unit with queued invalidation (QEMU's),
 * one on a second unit with register-based invalidation, caching mode and coherent
 * page walks; each thread works in all three, so invalidations of different domains
 * meet at one unit and map/unmap meet in one domain. */
TEST(map_unmap_storm_on_several_domains_and_units)
{
	struct simsys s;
	struct model_config m = simsys_keep_everything();
	REQUIRE_OK(simsys_up(&s, &m, NULL));
	struct model_config m2 = simsys_keep_everything();
	m2.qi = false;
	m2.cm = true;
	m2.c = true;
	struct dmar_unit *u2;
	struct model *model2;
	REQUIRE_OK(simsys_add_unit(&s, SIMSYS_REG_BASE + 0x10000, &m2, &u2, &model2));
	struct storm st = { .s = &s, .ndoms = 3, .nthreads = 4, .slot = 8, .shared = 2048,
			    .max_live = 4, .steps = steps(100000), .seed = seed_from_env(0x1717) };
	st.d[0] = (struct dut){ attached_domain(s.unit, VTD_SID(0, 5, 0)), s.model,
				VTD_SID(0, 5, 0), 2 * GIB - 4 * MIB, false };
	st.d[1] = (struct dut){ attached_domain(s.unit, VTD_SID(0, 6, 0)), s.model,
				VTD_SID(0, 6, 0), 16 * MIB, false };
	st.d[2] = (struct dut){ attached_domain(u2, VTD_SID(1, 0, 0)), model2,
				VTD_SID(1, 0, 0), GIB - 4 * MIB, false };
	run_storm(&st, true);
	storm_down(&st);
}

/* The property test: four threads do random operations on two domains (maps of 1 to
 * 256 pages and 2 MiB superpages, strict and deferred unmaps of any part of what they
 * mapped, splitting superpages, flushes, lookups, device reads and writes), each
 * checked at once against the thread's reference; then every mapping is checked. No
 * lost update (a mapping that vanished or was never made), no stale translation (a
 * device reaching a page after its strict unmap, or the old page after a new map).
 * The second domain is caller_holds_deferred, as busdma's are: its users keep what
 * they unmapped deferred out of use until their flush, and the core flushes for the
 * rest. */
TEST(random_operations_from_many_threads_match_the_reference)
{
	struct simsys s;
	struct model_config m = simsys_keep_everything();
	REQUIRE_OK(simsys_up(&s, &m, NULL));
	struct storm st = { .s = &s, .ndoms = 2, .nthreads = 4, .slot = 8, .shared = 2048,
			    .priv = 2, .random_ops = true, .deferred = true,
			    .steps = steps(600000), .seed = seed_from_env(0x5eed17) };
	st.d[0] = (struct dut){ attached_domain(s.unit, VTD_SID(0, 5, 0)), s.model,
				VTD_SID(0, 5, 0), GIB - 4 * MIB, false };
	struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED,
					.caller_holds_deferred = true };
	struct dmar_domain *held;
	REQUIRE_OK(dmar_domain_create(s.unit, &p, &held));
	REQUIRE_OK(dmar_domain_attach(held, VTD_SID(0, 6, 0)));
	st.d[1] = (struct dut){ held, s.model, VTD_SID(0, 6, 0), 64 * MIB, true };
	run_storm(&st, false);
	storm_down(&st);
}

/* Found by the property test (the busdma test too), single-threaded here: a deferred
 * unmap that detaches a table leaves it in the unit's paging-structure caches until the
 * flush, so a new map anywhere in that table's region (not only over the range
 * unmapped) must flush first, or the device walks the detached table and faults. Both
 * ways a table goes: the kept empty table released by a later unmap (busdma's
 * caller_holds_deferred domain), and tables emptied beside an unmap spanning two. */
TEST(map_in_the_region_of_a_table_a_deferred_unmap_detached_is_reached)
{
	for (int holds = 0; holds < 2; holds++) {
		struct simsys s;
		struct model_config m = simsys_keep_everything();
		REQUIRE_OK(simsys_up(&s, &m, NULL));
		struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED,
						.caller_holds_deferred = holds };
		struct dmar_domain *d;
		REQUIRE_OK(dmar_domain_create(s.unit, &p, &d));
		const uint16_t sid = VTD_SID(0, 5, 0);
		REQUIRE_OK(dmar_domain_attach(d, sid));
		uint64_t pa = tagged_pages(&s, 4, PG), got = 0;
		/* Tables of 2 MiB regions kept empty, until one more empties: the one
		 * nearest to it is released. */
		for (unsigned i = 0; i <= PGTABLE_KEPT; i++) {
			uint64_t at = (2 + 2 * (uint64_t)i) * MIB;
			CHECK_OK(dmar_map(d, at, pa, PG, DMAR_PROT_RW));
			CHECK_EQ(probe(&s, s.model, sid, at, &got), 0);
			CHECK_OK(dmar_unmap_deferred(d, at, PG));
		}
		const uint64_t released = (2 + 2 * (uint64_t)(PGTABLE_KEPT - 1)) * MIB;
		CHECK_OK(dmar_map(d, released + PG, pa + PG, PG, DMAR_PROT_RW));
		CHECK_EQ(probe(&s, s.model, sid, released + PG, &got), 0);
		CHECK_EQ(got, pa + PG);
		CHECK_OK(dmar_unmap(d, released + PG, PG));
		/* Two tables emptied by one unmap across their boundary. */
		uint64_t edge = 64 * MIB;
		CHECK_OK(dmar_map(d, edge - PG, pa, 2 * PG, DMAR_PROT_RW));
		CHECK_EQ(probe(&s, s.model, sid, edge - PG, &got), 0);
		CHECK_EQ(probe(&s, s.model, sid, edge, &got), 0);
		CHECK_OK(dmar_unmap_deferred(d, edge - PG, 2 * PG));
		CHECK_OK(dmar_map(d, edge - 2 * MIB, pa + 2 * PG, PG, DMAR_PROT_RW));
		CHECK_EQ(probe(&s, s.model, sid, edge - 2 * MIB, &got), 0);
		CHECK_EQ(got, pa + 2 * PG);
		CHECK_OK(dmar_unmap(d, edge - 2 * MIB, PG));
		CHECK_OK(dmar_domain_flush(d));
		CHECK_OK(dmar_domain_detach(d, sid));
		CHECK_OK(dmar_domain_destroy(d));
		CHECK_EQ(simsys_down(&s), 0);
	}
}

/* ------------------------------------------- invalidation waits and locks --- */

struct waiting_unmap {
	struct dmar_domain *d;
	uint64_t iova;
	int rc;
	int done;
};

static void *unmap_thread(void *arg)
{
	struct waiting_unmap *w = arg;
	w->rc = dmar_unmap(w->d, w->iova, PG);
	flag_set(&w->done);
	return NULL;
}

/* Until the unit has been handed one more IOTLB invalidation than `before`. */
static void await_iotlb_queued(struct simsys *s, uint64_t before)
{
	struct dmar_unit_stats st;
	for (unsigned i = 0; i < 100000; i++) {
		dmar_unit_get_stats(s->unit, &st);
		if (st.iotlb_page + st.iotlb_domain + st.iotlb_global > before)
			return;
		sched_yield();
	}
	harness_fail(__FILE__, __LINE__, "the unmap never queued its invalidation");
}

static uint64_t iotlb_count(struct simsys *s)
{
	struct dmar_unit_stats st;
	dmar_unit_get_stats(s->unit, &st);
	return st.iotlb_page + st.iotlb_domain + st.iotlb_global;
}

/* A strict unmap waits for its invalidation holding no lock: while the unit sits on it
 * (the model does not process the queue until the next tail write), another thread maps
 * in the same domain, and that thread's own unmap (the next tail write) completes both.
 * The waiting unmap returns only then, and its page is no longer reached. */
TEST(an_unmap_waiting_for_its_invalidation_blocks_no_other_map)
{
	struct simsys s;
	struct model_config m = simsys_keep_everything();
	struct dmar_config cfg;
	dmar_config_default(&cfg);
	cfg.timeout_ns = 5000000000ull; /* 5 s of the machine's clock */
	REQUIRE_OK(simsys_up(&s, &m, &cfg));
	const uint16_t sid = VTD_SID(0, 5, 0);
	struct dmar_domain *d = attached_domain(s.unit, sid);
	uint64_t pa = tagged_pages(&s, 2, PG), got = 0;
	CHECK_OK(dmar_map(d, 4 * MIB, pa, PG, DMAR_PROT_RW));
	CHECK_EQ(probe(&s, s.model, sid, 4 * MIB, &got), 0); /* now in the IOTLB */
	CHECK_EQ(got, pa);

	uint64_t before = iotlb_count(&s);
	dmar_model_set_ack_delay(s.model, MODEL_ACK_QI, MODEL_NEVER);
	struct waiting_unmap w = { .d = d, .iova = 4 * MIB };
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, unmap_thread, &w) == 0);
	await_iotlb_queued(&s, before);
	/* (after the unit lock the unmap held: the model's setting is ours again) */
	dmar_model_set_ack_delay(s.model, MODEL_ACK_QI, 0);
	CHECK_OK(dmar_map(d, 64 * MIB, pa + PG, PG, DMAR_PROT_RW));
	uint64_t phys = 0;
	CHECK_OK(dmar_lookup(d, 64 * MIB, &phys, NULL));
	CHECK_EQ(phys, pa + PG);
	CHECK(!flag_get(&w.done)); /* still waiting: nothing kicked the queue since */
	CHECK_EQ(probe(&s, s.model, sid, 64 * MIB, &got), 0);
	CHECK_EQ(got, pa + PG);
	CHECK_OK(dmar_unmap(d, 64 * MIB, PG)); /* this tail write runs both */
	pthread_join(t, NULL);
	CHECK_EQ(w.rc, 0);
	CHECK(probe(&s, s.model, sid, 4 * MIB, &got) > 0);
	CHECK_OK(dmar_domain_detach(d, sid));
	CHECK_OK(dmar_domain_destroy(d));
	CHECK_EQ(simsys_down(&s), 0);
}

/* A strict unmap that takes deferred unmaps' invalidation over waits under the domain
 * lock: a flush meanwhile must not report them done before that invalidation completed
 * (a page unmapped deferred would stay reachable through the IOTLB after the flush).
 * The unit takes its time: it runs the queue only after 100,000 polls. */
TEST(a_flush_never_passes_deferred_unmaps_whose_invalidation_is_in_flight)
{
	struct simsys s;
	struct model_config m = simsys_keep_everything();
	struct dmar_config cfg;
	dmar_config_default(&cfg);
	cfg.timeout_ns = 5000000000ull; /* 5 s of the machine's clock: 100,000 polls fit */
	REQUIRE_OK(simsys_up(&s, &m, &cfg));
	const uint16_t sid = VTD_SID(0, 5, 0);
	struct dmar_domain *d = attached_domain(s.unit, sid);
	uint64_t pa = tagged_pages(&s, 2, PG), got = 0;
	CHECK_OK(dmar_map(d, 4 * MIB, pa, PG, DMAR_PROT_RW));
	CHECK_OK(dmar_map(d, 4 * MIB + 2 * PG, pa + PG, PG, DMAR_PROT_RW));
	CHECK_EQ(probe(&s, s.model, sid, 4 * MIB + 2 * PG, &got), 0); /* in the IOTLB */
	CHECK_OK(dmar_unmap_deferred(d, 4 * MIB + 2 * PG, PG));
	CHECK_EQ(probe(&s, s.model, sid, 4 * MIB + 2 * PG, &got), 0); /* still, stale */

	uint64_t before = iotlb_count(&s);
	dmar_model_set_ack_delay(s.model, MODEL_ACK_QI, 100000);
	struct waiting_unmap w = { .d = d, .iova = 4 * MIB };
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, unmap_thread, &w) == 0);
	await_iotlb_queued(&s, before);
	CHECK_OK(dmar_domain_flush(d));
	CHECK(probe(&s, s.model, sid, 4 * MIB + 2 * PG, &got) > 0);
	pthread_join(t, NULL);
	CHECK_EQ(w.rc, 0);
	CHECK(probe(&s, s.model, sid, 4 * MIB, &got) > 0);
	dmar_model_set_ack_delay(s.model, MODEL_ACK_QI, 0);
	CHECK_OK(dmar_domain_detach(d, sid));
	CHECK_OK(dmar_domain_destroy(d));
	CHECK_EQ(simsys_down(&s), 0);
}

/* ------------------------------------------------------------------- busdma --- */

#define BD_BUF_PAGES 16u
#define BD_SID VTD_SID(0, 3, 0)

struct bd {
	struct simsys *s;
	struct dmar_busdma *bus;
	struct dmar_busdma_dev *dev;
	struct dmar_dma_tag *tag;  /* shared by every thread */
	bool strict;
	unsigned long steps;
	int stop;
};

struct bd_worker {
	struct bd *b;
	unsigned id;
	struct rng rng;
	uint8_t *buf;              /* BD_BUF_PAGES pages of simulated RAM, this thread's */
	unsigned long loads, faults_after_unload;
	struct errs e;
};

/* The device reads (or writes) every segment of the loaded map. */
static int seg_dma(struct bd *b, struct dmar_dmamap *map, uint8_t *data, bool write)
{
	const struct dmar_dma_segment *sg = dmar_dmamap_segs(map);
	uint64_t done = 0;
	for (unsigned i = 0; i < dmar_dmamap_nsegs(map); i++) {
		int rc = simsys_dma(b->s, BD_SID, sg[i].addr, data + done, (size_t)sg[i].len, write);
		if (rc)
			return rc;
		done += sg[i].len;
	}
	return 0;
}

/* Loads of this thread's buffer through its own maps (on the shared tag and on a child
 * tag of its own): the device must read exactly what the thread wrote, and its write
 * must reach the buffer; after a strict unload it must no longer reach the buffer. */
static void *bd_loads(void *arg)
{
	struct bd_worker *w = arg;
	struct bd *b = w->b;
	struct dmar_dma_tag_params p;
	struct dmar_dma_tag *child;
	struct dmar_dmamap *maps[2];
	dmar_dma_tag_params_default(&p);
	p.maxsize = BD_BUF_PAGES * PG;
	p.nsegments = 4;
	p.maxsegsz = 4 * PG;
	if (dmar_dma_tag_create(NULL, b->tag, &p, &child) ||
	    dmar_dmamap_create(b->tag, 0, &maps[0]) || dmar_dmamap_create(child, 0, &maps[1])) {
		err(&w->e, "setup failed");
		return NULL;
	}
	uint8_t *got = malloc(BD_BUF_PAGES * PG);
	for (unsigned long i = 0; i < b->steps && got && w->e.n < 10; i++) {
		unsigned which = below(&w->rng, 2);
		struct dmar_dma_tag *tag = which ? child : b->tag;
		struct dmar_dmamap *map = maps[which];
		uint64_t off = below(&w->rng, 4) ? 0 : below(&w->rng, (unsigned)PG);
		uint64_t len = 1 + below(&w->rng, below(&w->rng, 2) ? (unsigned)PG
								     : (unsigned)(BD_BUF_PAGES - 1) * (unsigned)PG);
		if (which && len > 4 * 4 * PG - off)
			len = 4 * 4 * PG - off; /* the child tag: 4 segments of 4 pages */
		/* What the thread writes: its id (in every word's first byte, so that even
		 * one byte tells whose buffer a device reached) and the load's number. */
		for (uint64_t k = 0; k < len; k += 8) {
			uint64_t v = (uint64_t)i << 24 | (k >> 3 & 0xffff) << 8 | w->id;
			memcpy(w->buf + off + k, &v, len - k < 8 ? len - k : 8);
		}
		int rc = dmar_dmamap_load(tag, map, w->buf + off, len, DMAR_DMA_NOWAIT);
		if (rc) {
			err(&w->e, "load of %llu bytes failed: %s", (unsigned long long)len,
			    dmar_strerror(rc));
			continue;
		}
		w->loads++;
		dmar_dmamap_sync(tag, map, DMAR_DMASYNC_PREWRITE);
		rc = seg_dma(b, map, got, false);
		if (rc || memcmp(got, w->buf + off, (size_t)len) != 0)
			err(&w->e, "load %lu: the device read rc %d or other data than the buffer "
			    "holds (a stale translation to another buffer)", i, rc);
		dmar_dmamap_sync(tag, map, DMAR_DMASYNC_POSTWRITE);
		/* The device writes the buffer back, inverted. */
		for (uint64_t k = 0; k < len; k++)
			got[k] = (uint8_t)~w->buf[off + k];
		dmar_dmamap_sync(tag, map, DMAR_DMASYNC_PREREAD);
		rc = seg_dma(b, map, got, true);
		dmar_dmamap_sync(tag, map, DMAR_DMASYNC_POSTREAD);
		if (rc || w->buf[off] != got[0] || w->buf[off + len - 1] != got[len - 1])
			err(&w->e, "load %lu: the device's write (rc %d) did not reach the buffer",
			    i, rc);
		struct dmar_dma_segment first = dmar_dmamap_segs(map)[0];
		rc = dmar_dmamap_unload(tag, map);
		if (rc) {
			err(&w->e, "unload failed: %s", dmar_strerror(rc));
			continue;
		}
		/* Strict: gone, unless another thread's load has the IOVA now (then it
		 * reaches that thread's buffer, not this one's). Deferred: the device may
		 * still reach the old pages (busdma.h), which their owners may have freed
		 * and reused meanwhile (dmamem_free right after an unload, as bd_churn
		 * does): a device doing that is the driver's bug, not tried here. */
		if (!b->strict)
			continue;
		uint8_t after[8];
		memcpy(after, w->buf + off, sizeof(after));
		uint8_t seen[8] = { 0 };
		size_t n = first.len < 8 ? (size_t)first.len : 8;
		rc = simsys_dma(b->s, BD_SID, first.addr, seen, n, false);
		if (rc > 0)
			w->faults_after_unload++;
		else if (rc == 0 && memcmp(seen, after, n) == 0)
			err(&w->e, "load %lu: after its strict unload the device still reads "
			    "the buffer at 0x%llx", i, (unsigned long long)first.addr);
	}
	free(got);
	for (unsigned k = 0; k < 2; k++)
		if (dmar_dmamap_destroy(k ? child : b->tag, maps[k]))
			err(&w->e, "map destroy failed");
	if (dmar_dma_tag_destroy(child))
		err(&w->e, "child tag destroy failed");
	return NULL;
}

/* The embedder's timer and a driver's flush, while the loads go on. */
static void *bd_flusher(void *arg)
{
	struct bd_worker *w = arg;
	struct bd *b = w->b;
	unsigned long n = 0;
	while (!flag_get(&b->stop)) {
		int rc = (n++ & 1) ? dmar_busdma_tick(b->bus) : dmar_busdma_flush(b->bus);
		if (rc)
			err(&w->e, "flush/tick failed: %s", dmar_strerror(rc));
		struct dmar_busdma_stats bs;
		dmar_busdma_get_stats(b->bus, &bs);
		sched_yield();
	}
	w->loads = n;
	return NULL;
}

/* Tags and maps come and go beside the loads: child tags of the shared tag, maps,
 * DMA memory, a load of it; and the shared tag, which has maps, refuses to go. */
static void *bd_churn(void *arg)
{
	struct bd_worker *w = arg;
	struct bd *b = w->b;
	unsigned long n = 0;
	while (!flag_get(&b->stop)) {
		struct dmar_dma_tag_params p;
		struct dmar_dma_tag *t, *tt;
		struct dmar_dmamap *m1, *m2, *m3;
		void *mem;
		dmar_dma_tag_params_default(&p);
		p.maxsize = PG;
		if (dmar_dma_tag_create(NULL, b->tag, &p, &t)) {
			err(&w->e, "tag create failed");
			break;
		}
		if (dmar_dma_tag_create(b->dev, t, &p, &tt) || dmar_dmamap_create(tt, 0, &m1) ||
		    dmar_dmamem_alloc(tt, &mem, 0, &m2) || dmar_dmamap_create(b->tag, 0, &m3)) {
			err(&w->e, "child tag, map or memory failed");
			break;
		}
		if (dmar_dma_tag_destroy(t) != DMAR_EBUSY || dmar_dma_tag_destroy(b->tag) != DMAR_EBUSY)
			err(&w->e, "a tag with children or maps was destroyed");
		memset(mem, 0x5a, 64);
		if (dmar_dmamap_load(tt, m2, mem, PG, 0) == 0) {
			uint8_t v[64];
			if (simsys_dma(b->s, BD_SID, dmar_dmamap_segs(m2)[0].addr, v, 64, false) ||
			    v[0] != 0x5a || v[63] != 0x5a)
				err(&w->e, "DMA memory not reached through its load");
			if (dmar_dmamap_unload(tt, m2))
				err(&w->e, "unload of DMA memory failed");
		} else {
			err(&w->e, "load of DMA memory failed");
		}
		if (dmar_dmamap_destroy(b->tag, m3) || dmar_dmamem_free(tt, mem, m2) ||
		    dmar_dmamap_destroy(tt, m1) || dmar_dma_tag_destroy(tt) ||
		    dmar_dma_tag_destroy(t))
			err(&w->e, "teardown of tags and maps failed");
		n++;
	}
	w->loads = n;
	return NULL;
}

static void busdma_threads(bool strict)
{
	struct simsys s;
	struct model_config m = simsys_keep_everything();
	REQUIRE_OK(simsys_up(&s, &m, NULL));
	struct bd b = { .s = &s, .strict = strict, .steps = steps(15000) };
	REQUIRE_OK(dmar_busdma_create(dmar_posix_machine_os(s.pm), &s.cfg, s.sys, &b.bus));
	struct dmar_pci_addr a = { 0, 0, 3, 0 };
	REQUIRE_OK(dmar_busdma_device(b.bus, a, NULL, NULL, &b.dev));
	REQUIRE(dmar_busdma_device_mode(b.dev) == DMAR_BUSDMA_TRANSLATE);
	dmar_busdma_device_set_strict(b.dev, strict);
	struct dmar_dma_tag_params p;
	dmar_dma_tag_params_default(&p);
	p.maxsize = BD_BUF_PAGES * PG;
	p.nsegments = BD_BUF_PAGES;
	REQUIRE_OK(dmar_dma_tag_create(b.dev, NULL, &p, &b.tag));
	struct dmar_dmamap *keeper; /* so the shared tag always has a map */
	REQUIRE_OK(dmar_dmamap_create(b.tag, 0, &keeper));

	enum { NLOAD = 4, NALL = NLOAD + 3 }; /* loaders, a flusher, two tag/map churners */
	struct bd_worker w[NALL];
	memset(w, 0, sizeof(w));
	pthread_t th[NALL];
	uint64_t pa;
	for (unsigned t = 0; t < NALL; t++) {
		w[t].b = &b;
		w[t].id = t + 1;
		w[t].rng.s = seed_from_env(0xb05d) * (t + 3);
		w[t].buf = dmar_posix_machine_alloc_dma(s.pm, BD_BUF_PAGES * PG, PG, &pa);
		REQUIRE(w[t].buf);
	}
	REQUIRE(pthread_create(&th[NLOAD], NULL, bd_flusher, &w[NLOAD]) == 0);
	for (unsigned t = NLOAD + 1; t < NALL; t++)
		REQUIRE(pthread_create(&th[t], NULL, bd_churn, &w[t]) == 0);
	for (unsigned t = 0; t < NLOAD; t++)
		REQUIRE(pthread_create(&th[t], NULL, bd_loads, &w[t]) == 0);
	unsigned long loads = 0, gone = 0;
	for (unsigned t = 0; t < NLOAD; t++) {
		pthread_join(th[t], NULL);
		report("loading thread", t, &w[t].e);
		loads += w[t].loads;
		gone += w[t].faults_after_unload;
	}
	flag_set(&b.stop);
	pthread_join(th[NLOAD], NULL);
	report("flushing thread", 0, &w[NLOAD].e);
	unsigned long churned = 0;
	for (unsigned t = NLOAD + 1; t < NALL; t++) {
		pthread_join(th[t], NULL);
		report("tag and map thread", t, &w[t].e);
		churned += w[t].loads;
	}
	printf("  %s: %lu loads from %u threads (%lu unloaded buffers probed faulted at once), "
	       "%lu flushes and ticks, %lu rounds of tag and map create/destroy\n",
	       strict ? "strict" : "deferred", loads, NLOAD, gone, w[NLOAD].loads, churned);
	CHECK_EQ(loads, NLOAD * b.steps);
	if (strict)
		CHECK(gone > loads / 2);
	/* Nothing is mapped once everything is flushed. */
	CHECK_OK(dmar_busdma_flush(b.bus));
	struct dmar_domain *dom = dmar_busdma_device_domain(b.dev);
	CHECK_EQ(dmar_domain_deferred(dom), 0);
	for (uint64_t iova = PG; iova < 64 * MIB; iova += PG) {
		uint64_t phys;
		unsigned prot;
		if (dmar_lookup(dom, iova, &phys, &prot) != DMAR_ENOENT) {
			harness_fail(__FILE__, __LINE__, "0x%llx still mapped", (unsigned long long)iova);
			break;
		}
	}
	for (unsigned t = 0; t < NALL; t++)
		dmar_posix_machine_free_dma(s.pm, w[t].buf, BD_BUF_PAGES * PG);
	CHECK_OK(dmar_dmamap_destroy(b.tag, keeper));
	CHECK_OK(dmar_dma_tag_destroy(b.tag));
	CHECK_OK(dmar_busdma_device_destroy(b.dev));
	CHECK_OK(dmar_busdma_destroy(b.bus));
	CHECK_EQ(simsys_down(&s), 0);
}

/* Four threads load, sync and unload different maps of one device (on a shared tag and
 * on child tags of their own) while a fifth flushes and ticks and two more create and
 * destroy tags (children of the shared one), maps (on it too) and DMA memory. Strict: every unload waits for its
 * invalidation. */
TEST(busdma_loads_on_one_device_from_many_threads_strict)
{
	busdma_threads(true);
}

/* The same with deferred unloads: IOVAs come back only through flushes (by count, by
 * the tick, by dmar_busdma_flush, by a load finding no room), and no load ever reaches
 * another buffer through an IOVA handed out again. */
TEST(busdma_loads_on_one_device_from_many_threads_deferred)
{
	busdma_threads(false);
}

/* ------------------------------------------------------------------- faults --- */

#define F_DEV_A VTD_SID(0, 8, 0)
#define F_DEV_B VTD_SID(0, 9, 0)
#define F_DEV_C VTD_SID(0, 10, 0) /* attached and detached all the time */
#define F_WINDOW (4 * MIB)        /* [F_WINDOW, 2 * F_WINDOW): in each 32 pages, the */
#define F_GROUP 32u               /* devices fault in the upper 16 while the mapper maps */
				  /* and unmaps the lower 16: the same table pages */

struct fz {
	struct simsys *s;
	struct dmar_domain *dom;
	unsigned long steps;
	int stop;
	unsigned long cb_calls; /* atomic: the fault callback */
	int cb_bad;             /* atomic */
};

struct fz_worker {
	struct fz *f;
	unsigned id;
	struct rng rng;
	unsigned long n, faults, drained, read;
	uint64_t last_seq;
	struct errs e;
};

static void fz_callback(void *ctx, const struct dmar_fault_record *rec)
{
	struct fz *f = ctx;
	__atomic_fetch_add(&f->cb_calls, 1, __ATOMIC_RELAXED);
	if (rec->sid != F_DEV_A && rec->sid != F_DEV_B && rec->sid != F_DEV_C)
		__atomic_store_n(&f->cb_bad, 1, __ATOMIC_RELAXED);
}

/* A device that DMAs to addresses nothing maps (and, for C, while it is detached). */
static void *fz_device(void *arg)
{
	struct fz_worker *w = arg;
	uint16_t sid = w->id == 0 ? F_DEV_A : w->id == 1 ? F_DEV_B : F_DEV_C;
	for (unsigned long i = 0; i < w->f->steps; i++) {
		uint8_t b[8];
		uint64_t iova = F_WINDOW + below(&w->rng, (unsigned)(F_WINDOW / PG / F_GROUP)) *
					   F_GROUP * PG + (F_GROUP / 2 + below(&w->rng, F_GROUP / 2)) * PG;
		int rc = simsys_dma(w->f->s, sid, iova, b, sizeof(b), below(&w->rng, 2));
		w->n++;
		if (rc > 0)
			w->faults++;
		else
			err(&w->e, "DMA at unmapped 0x%llx gave %d", (unsigned long long)iova, rc);
		if ((i & 15) == 0)
			sched_yield();
	}
	return NULL;
}

/* Maps and unmaps beside the faulting addresses (the explanations walk those tables),
 * and attaches and detaches device C, and creates and destroys a domain (an
 * explanation may pin it). */
static void *fz_mapper(void *arg)
{
	struct fz_worker *w = arg;
	struct fz *f = w->f;
	uint64_t pa;
	simsys_buffer(f->s, 16 * PG, &pa);
	while (!flag_get(&f->stop)) {
		uint64_t iova = F_WINDOW + below(&w->rng, (unsigned)(F_WINDOW / PG / F_GROUP)) *
					   F_GROUP * PG;
		int rc = dmar_map(f->dom, iova, pa, 16 * PG, DMAR_PROT_RW);
		rc = rc ? rc : dmar_domain_attach(f->dom, F_DEV_C);
		rc = rc ? rc : dmar_domain_detach(f->dom, F_DEV_C);
		rc = rc ? rc : dmar_unmap(f->dom, iova, 16 * PG);
		if (rc)
			err(&w->e, "map/attach/detach/unmap failed: %s", dmar_strerror(rc));
		struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED };
		struct dmar_domain *d;
		if (dmar_domain_create(dmar_domain_unit(f->dom), &p, &d) == 0) {
			if (dmar_domain_attach(d, F_DEV_C) || dmar_domain_detach(d, F_DEV_C))
				err(&w->e, "attach to a second domain failed");
			(void)dmar_domain_destroy(d);
		}
		w->n++;
	}
	return NULL;
}

/* Thread context (dmar_fault_poll, explaining each fault) or the interrupt handler's
 * call (dmar_fault_poll_irq), both reading the records out. */
static void *fz_poller(void *arg)
{
	struct fz_worker *w = arg;
	struct fz *f = w->f;
	struct dmar_fault_record recs[16];
	while (!flag_get(&f->stop)) {
		int n = w->id == 0 ? dmar_fault_poll(f->s->sys) : dmar_fault_poll_irq(f->s->sys);
		if (n < 0)
			err(&w->e, "poll gave %d", n);
		else
			w->drained += (unsigned long)n;
		unsigned got = dmar_fault_read(f->s->sys, recs, 16);
		for (unsigned i = 0; i < got; i++) {
			const struct dmar_fault_record *r = &recs[i];
			bool sid_ok = r->sid == F_DEV_A || r->sid == F_DEV_B || r->sid == F_DEV_C;
			bool what_ok = r->reason == VTD_FR_READ || r->reason == VTD_FR_WRITE ||
				       (r->sid == F_DEV_C && r->reason == VTD_FR_CTX_NOT_PRESENT);
			bool addr_ok = r->addr >= F_WINDOW && r->addr < 2 * F_WINDOW &&
				       (r->addr / PG) % F_GROUP >= F_GROUP / 2;
			if (!sid_ok || !what_ok || !addr_ok)
				err(&w->e, "record #%llu: sid 0x%x reason %u at 0x%llx",
				    (unsigned long long)r->seq, r->sid, r->reason,
				    (unsigned long long)r->addr);
			if (r->seq <= w->last_seq)
				err(&w->e, "record #%llu read after #%llu", (unsigned long long)r->seq,
				    (unsigned long long)w->last_seq);
			w->last_seq = r->seq;
			if (w->id == 0 && (i & 7) == 0) {
				char line[512];
				dmar_fault_format(f->s->sys, r, line, sizeof(line));
				if (!strstr(line, "; walk: "))
					err(&w->e, "no walk in: %s", line);
			}
		}
		w->read += got;
		struct dmar_fault_counters c;
		dmar_fault_get_counters(f->s->sys, &c);
		if ((++w->n & 63) == 0)
			dmar_posix_machine_log_clear(f->s->pm);
	}
	return NULL;
}

/* Two pollers (a thread with dmar_fault_poll, an interrupt handler with
 * dmar_fault_poll_irq) drain the fault registers while three devices fault all the
 * time, one of them attached and detached meanwhile, and the faulting domain's tables
 * change: every record the unit made is drained once, in order, and makes sense. */
TEST(fault_polling_while_devices_fault_and_tables_change)
{
	struct simsys s;
	struct model_config m = simsys_keep_everything();
	m.nfr = 8;
	REQUIRE_OK(simsys_up(&s, &m, NULL));
	struct fz f = { .s = &s, .steps = steps(40000) };
	f.dom = attached_domain(s.unit, F_DEV_A);
	REQUIRE_OK(dmar_domain_attach(f.dom, F_DEV_B));
	dmar_fault_set_callback(s.sys, fz_callback, &f);
	enum { NDEV = 3, NPOLL = 2 };
	struct fz_worker w[NDEV + 1 + NPOLL];
	memset(w, 0, sizeof(w));
	pthread_t th[NDEV + 1 + NPOLL];
	for (unsigned t = 0; t < NDEV + 1 + NPOLL; t++) {
		w[t].f = &f;
		w[t].id = t < NDEV ? t : t < NDEV + 1 ? 0 : t - NDEV - 1;
		w[t].rng.s = seed_from_env(0xfa17) + 7919 * t;
	}
	for (unsigned t = NDEV; t < NDEV + 1 + NPOLL; t++)
		REQUIRE(pthread_create(&th[t], NULL, t == NDEV ? fz_mapper : fz_poller, &w[t]) == 0);
	for (unsigned t = 0; t < NDEV; t++)
		REQUIRE(pthread_create(&th[t], NULL, fz_device, &w[t]) == 0);
	unsigned long dma = 0, faults = 0, drained = 0, read = 0;
	for (unsigned t = 0; t < NDEV; t++) {
		pthread_join(th[t], NULL);
		report("device", t, &w[t].e);
		dma += w[t].n;
		faults += w[t].faults;
	}
	flag_set(&f.stop);
	for (unsigned t = NDEV; t < NDEV + 1 + NPOLL; t++) {
		pthread_join(th[t], NULL);
		report(t == NDEV ? "mapper" : "poller", t, &w[t].e);
		drained += w[t].drained;
		read += w[t].read;
	}
	/* What is still in the registers, then the ring. */
	for (int i = 0; i < 8; i++)
		drained += (unsigned long)dmar_fault_poll(s.sys);
	struct dmar_fault_record r;
	while (dmar_fault_read(s.sys, &r, 1))
		read++;
	const struct model_stats *ms = dmar_model_stats(s.model);
	struct dmar_fault_counters c;
	dmar_fault_get_counters(s.sys, &c);
	printf("  %lu DMAs (%lu faults; the unit recorded %llu, overflowed %llu), %lu drained, "
	       "%lu read, %llu dropped from the ring; %lu map/attach rounds\n", dma, faults,
	       (unsigned long long)ms->faults_recorded, (unsigned long long)ms->faults_overflowed,
	       drained, read, (unsigned long long)c.dropped, w[NDEV].n);
	CHECK_EQ(faults, dma);
	CHECK_EQ(drained, ms->faults_recorded);
	CHECK_EQ(ms->faults_recorded + ms->faults_overflowed + ms->faults_suppressed, faults);
	CHECK_EQ(c.recorded, drained);
	CHECK_EQ(read + c.dropped, drained);
	CHECK_EQ(__atomic_load_n(&f.cb_calls, __ATOMIC_RELAXED), drained);
	CHECK(!__atomic_load_n(&f.cb_bad, __ATOMIC_RELAXED));
	CHECK(drained > 0);
	CHECK(!(dmar_model_read32(s.model, VTD_FSTS_REG) & VTD_FSTS_PPF));
	CHECK_OK(dmar_domain_detach(f.dom, F_DEV_A));
	CHECK_OK(dmar_domain_detach(f.dom, F_DEV_B));
	CHECK_OK(dmar_domain_destroy(f.dom));
	CHECK_EQ(simsys_down(&s), 0);
}
