/*
 * busdma_cpu.c - per-CPU windows of the translating backend. A one-page load (the
 * common network and storage case) takes a page of the calling CPU's window of the
 * device's domain (dmar_window: 2 MiB of IOVA space whose leaf table is written without
 * the domain lock), so CPUs loading and unloading on one device share no lock and no
 * cache line: each slot has its own lock, its own free pages and its own deferred
 * unloads, flushed with one invalidation over the window. A CPU's slot is picked by the
 * OS layer's cpu_index; any thread may unload a map another CPU loaded (it takes that
 * slot's lock).
 *
 * Pages are handed out every 1 + guard_pages pages of the window, so each keeps its
 * guard pages after it, unmapped. A load that finds no window under the tag's lowaddr,
 * or its window full, goes the usual way (the space's IOVA allocator).
 */
#include "busdma_impl.h"
#include "lib/util.h"

#define CACHE_LINE 64u

struct busdma_cpu {
	void *raw;                 /* what alloc returned (the slot is aligned within it) */
	void *lock;
	struct busdma_space *sp;
	struct dmar_window *win;   /* NULL until the first load (or when none could be had) */
	bool failed;               /* no window: IOVA space or memory ran out */
	uint64_t base;
	unsigned nfree, npend;     /* pages free / unloaded deferred, not yet flushed */
	unsigned pend_max;         /* deferred unloads before a flush */
	uint64_t oldest_ns;        /* when the first of the pending ones was unloaded */
	uint16_t free[DMAR_WINDOW_PAGES];
	uint16_t pend[DMAR_WINDOW_PAGES];
};

int dmar__busdma_cpu_init(struct dmar_busdma *bus, struct busdma_space *sp)
{
	const struct dmar_os *os = bus->os;
	unsigned n = bus->cfg.cpu_windows;
	if (n && !os->ops->cpu_index)
		n = 1; /* every caller is CPU 0 */
	if (!n || bus->cfg.guard_pages >= DMAR_WINDOW_PAGES)
		return 0;
	sp->cpus = os->ops->alloc(os->ctx, n * sizeof(*sp->cpus));
	if (!sp->cpus)
		return DMAR_ENOMEM;
	dmar_memset(sp->cpus, 0, n * sizeof(*sp->cpus));
	sp->ncpus = n;
	return 0;
}

void dmar__busdma_cpu_fini(struct dmar_busdma *bus, struct busdma_space *sp)
{
	const struct dmar_os *os = bus->os;
	for (unsigned i = 0; i < sp->ncpus; i++) {
		struct busdma_cpu *c = sp->cpus[i];
		if (!c)
			continue;
		if (c->win) {
			/* Pages still loaded are the caller's bug; the domain goes anyway. */
			for (unsigned p = 0; p < DMAR_WINDOW_PAGES; p++)
				(void)dmar_window_unmap(c->win, p);
			(void)dmar_window_destroy(c->win);
			(void)dmar__iova_free(&sp->iova, c->base, DMAR_WINDOW_SIZE);
		}
		dmar__busdma_lock_delete(os, c->lock);
		os->ops->free(os->ctx, c->raw, sizeof(*c) + CACHE_LINE);
	}
	if (sp->cpus)
		os->ops->free(os->ctx, sp->cpus, sp->ncpus * sizeof(*sp->cpus));
	sp->cpus = NULL;
	sp->ncpus = 0;
}

/* The calling CPU's slot, made on its first use; NULL when that fails. */
static struct busdma_cpu *slot(struct dmar_busdma *bus, struct busdma_space *sp)
{
	const struct dmar_os *os = bus->os;
	unsigned k = os->ops->cpu_index ? os->ops->cpu_index(os->ctx) % sp->ncpus : 0;
	struct busdma_cpu *c = __atomic_load_n(&sp->cpus[k], __ATOMIC_ACQUIRE);
	if (c)
		return c;
	bool ok;
	/* A cache line of its own: the CPUs write their slots all the time. */
	void *raw = os->ops->alloc(os->ctx, sizeof(struct busdma_cpu) + CACHE_LINE);
	if (!raw)
		return NULL;
	struct busdma_cpu *n = (struct busdma_cpu *)(((uintptr_t)raw + CACHE_LINE - 1) &
						     ~(uintptr_t)(CACHE_LINE - 1));
	dmar_memset(n, 0, sizeof(*n));
	n->raw = raw;
	n->sp = sp;
	n->lock = dmar__busdma_lock_new(os, &ok);
	if (!ok) {
		os->ops->free(os->ctx, raw, sizeof(*n) + CACHE_LINE);
		return NULL;
	}
	unsigned cap = (DMAR_WINDOW_PAGES + bus->cfg.guard_pages) / (1 + bus->cfg.guard_pages);
	n->pend_max = bus->cfg.defer_max < cap ? bus->cfg.defer_max : cap;
	dmar__busdma_lock(bus, sp->lock);
	c = sp->cpus[k];
	if (!c)
		__atomic_store_n(&sp->cpus[k], n, __ATOMIC_RELEASE);
	dmar__busdma_unlock(bus, sp->lock);
	if (c) { /* another thread of this CPU made it meanwhile */
		dmar__busdma_lock_delete(os, n->lock);
		os->ops->free(os->ctx, raw, sizeof(*n) + CACHE_LINE);
		return c;
	}
	return n;
}

/* Gives the slot its window: 2 MiB of the space, aligned, the lowest free (under
 * 4 GiB when there is room there, for 32-bit devices; under lowaddr when that is
 * higher) (slot lock). Without room, the slot never gets one; without memory, the next
 * load tries again. */
static void window_new(struct dmar_busdma *bus, struct busdma_cpu *c, uint64_t lowaddr)
{
	struct busdma_space *sp = c->sp;
	struct iova_request req = { .size = DMAR_WINDOW_SIZE, .align = DMAR_WINDOW_SIZE,
				    .max_addr = lowaddr > 0xffffffffull ? lowaddr : 0xffffffffull };
	uint64_t base;
	dmar__busdma_lock(bus, sp->lock);
	int rc = dmar__iova_alloc(&sp->iova, &req, &base);
	dmar__busdma_unlock(bus, sp->lock);
	if (!rc) {
		rc = dmar_window_create(sp->dom, base, &c->win);
		if (rc) {
			dmar__busdma_lock(bus, sp->lock);
			(void)dmar__iova_free(&sp->iova, base, DMAR_WINDOW_SIZE);
			dmar__busdma_unlock(bus, sp->lock);
		}
	}
	if (rc) {
		c->failed = rc != DMAR_ENOMEM; /* (out of memory: the next load tries again) */
		return;
	}
	c->base = base;
	unsigned stride = 1 + bus->cfg.guard_pages;
	/* Pushed from the top: the lowest page goes first. */
	for (int p = (int)((DMAR_WINDOW_PAGES - 1) / stride * stride); p >= 0; p -= (int)stride)
		c->free[c->nfree++] = (uint16_t)p;
}

/* Completes the slot's deferred unloads (slot lock): one invalidation over their span. */
static int flush_locked(struct busdma_cpu *c)
{
	if (!c->npend)
		return 0;
	unsigned lo = DMAR_WINDOW_PAGES, hi = 0;
	for (unsigned i = 0; i < c->npend; i++) {
		lo = c->pend[i] < lo ? c->pend[i] : lo;
		hi = c->pend[i] > hi ? c->pend[i] : hi;
	}
	int rc = dmar_window_invalidate(c->win, lo, hi - lo + 1);
	if (rc)
		return rc;
	for (unsigned i = 0; i < c->npend; i++)
		c->free[c->nfree++] = c->pend[i];
	c->npend = 0;
	__atomic_fetch_sub(&c->sp->cpus_pending, 1, __ATOMIC_RELAXED);
	return 0;
}

int dmar__busdma_cpu_load(struct dmar_dmamap *map, struct busdma_src *src, unsigned prot)
{
	struct dmar_dma_tag *tag = map->tag;
	struct dmar_busdma *bus = tag->dev->bus;
	struct busdma_cpu *c = slot(bus, tag->dev->space);
	if (!c)
		return 1;
	dmar__busdma_lock(bus, c->lock);
	if (!c->win && !c->failed)
		window_new(bus, c, tag->p.lowaddr);
	if (!c->win || c->base + DMAR_WINDOW_SIZE - 1 > tag->p.lowaddr) {
		dmar__busdma_unlock(bus, c->lock);
		return 1;
	}
	if (!c->nfree)
		(void)flush_locked(c); /* (a failure leaves them pending: load elsewhere) */
	if (!c->nfree) {
		dmar__busdma_unlock(bus, c->lock);
		return 1;
	}
	unsigned page = c->free[--c->nfree];
	dmar__busdma_unlock(bus, c->lock);

	struct busdma_piece p;
	uint64_t iova = c->base + (uint64_t)page * DMAR_PAGE_SIZE;
	dmar__busdma_src_rewind(src); /* (dmar__bounce_reserve may have walked it) */
	int rc = dmar__busdma_src_next(src, &p);
	if (rc == 0)
		rc = DMAR_EINVAL;
	if (rc > 0) {
		uint64_t off = p.pa & BUSDMA_PAGE_MASK;
		rc = dmar__busdma_seg_add(map, iova + off, p.len);
		if (!rc)
			rc = dmar_window_map(c->win, page, p.pa - off, prot);
	}
	if (rc) {
		dmar__busdma_lock(bus, c->lock);
		c->free[c->nfree++] = (uint16_t)page;
		dmar__busdma_unlock(bus, c->lock);
		return rc;
	}
	map->cpu = c;
	map->cpu_page = page;
	map->iova = iova;
	map->iova_size = DMAR_PAGE_SIZE;
	return 0;
}

int dmar__busdma_cpu_unload(struct dmar_dmamap *map, bool strict)
{
	struct dmar_busdma *bus = map->tag->dev->bus;
	const struct dmar_os *os = bus->os;
	struct busdma_cpu *c = map->cpu;
	unsigned page = map->cpu_page;
	/* (DMAR_ENOENT: cleared by an earlier unload whose invalidation failed) */
	int rc = dmar_window_unmap(c->win, page);
	if (rc && rc != DMAR_ENOENT)
		return rc;
	if (strict) {
		rc = dmar_window_invalidate(c->win, page, 1);
		if (rc)
			return rc;
		dmar__busdma_lock(bus, c->lock);
		c->free[c->nfree++] = (uint16_t)page;
		dmar__busdma_unlock(bus, c->lock);
	} else {
		dmar__busdma_lock(bus, c->lock);
		if (!c->npend) {
			c->oldest_ns = os->ops->now_ns(os->ctx);
			__atomic_fetch_add(&c->sp->cpus_pending, 1, __ATOMIC_RELAXED);
		}
		c->pend[c->npend++] = (uint16_t)page;
		if (c->npend >= c->pend_max)
			(void)flush_locked(c); /* (a failure leaves them for the next one) */
		dmar__busdma_unlock(bus, c->lock);
	}
	map->cpu = NULL;
	map->iova = map->iova_size = 0;
	return 0;
}

int dmar__busdma_cpu_flush(struct dmar_busdma *bus, struct busdma_space *sp, uint64_t due)
{
	int first = 0;
	for (unsigned i = 0; i < sp->ncpus; i++) {
		struct busdma_cpu *c = __atomic_load_n(&sp->cpus[i], __ATOMIC_ACQUIRE);
		if (!c)
			continue;
		dmar__busdma_lock(bus, c->lock);
		int rc = c->npend && c->oldest_ns <= due ? flush_locked(c) : 0;
		dmar__busdma_unlock(bus, c->lock);
		if (rc && !first)
			first = rc;
	}
	return first;
}
