/* The null-hardware OS layer: see null_port.h. */
#include "null_port.h"
#include "../thread_cpu.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NP_PHYS_OFFSET 0x100000000000ull
#define NP_HELD_MAX 1024u /* wait descriptors in flight (the ring holds 128) */

struct null_port {
	struct dmar_os os;
	struct model *model;
	uint64_t reg_base;
	uint8_t *pool;
	size_t npages;
	uint32_t *free_stack; /* indices of free pool pages */
	size_t nfree;
	bool threaded;        /* null_port_create_threaded: real locks */
	struct dmar_os_ops ops; /* np_ops, with the lock ops when threaded */
	pthread_spinlock_t pool_lock, mmio_lock;
	/* null_port_set_wait_latency: status writes of wait descriptors held back until
	 * `due`, in a ring: entries [consumed, produced) are held. The unit (under
	 * mmio_lock) produces; any thread whose clock passes an entry's due time claims it
	 * (compare-and-swap on consumed) and writes it, with no lock, as a unit would
	 * complete a wait on its own. */
	uint64_t wait_latency_ns;
	struct held_status { uint64_t pa, due; uint32_t val; } held[NP_HELD_MAX];
	uint64_t produced, consumed;
};

static void pool_lock(struct null_port *np)
{
	if (np->threaded)
		pthread_spin_lock(&np->pool_lock);
}

static void pool_unlock(struct null_port *np)
{
	if (np->threaded)
		pthread_spin_unlock(&np->pool_lock);
}

/* The model is not thread-safe: one register access at a time, as on a bus. */
static void mmio_lock(struct null_port *np)
{
	if (np->threaded)
		pthread_spin_lock(&np->mmio_lock);
}

static void mmio_unlock(struct null_port *np)
{
	if (np->threaded)
		pthread_spin_unlock(&np->mmio_lock);
}

static bool in_pool(const struct null_port *np, const void *va)
{
	const uint8_t *p = va;
	return p >= np->pool && p < np->pool + np->npages * DMAR_PAGE_SIZE;
}

/* Each allocation in cache lines of its own, as a kernel's per-CPU caches would place
 * objects that different CPUs made: the benchmark's threads write their maps and
 * their locks all the time, and two sharing a line would measure false sharing. */
static void *np_alloc(void *ctx, size_t size)
{
	(void)ctx;
	return aligned_alloc(64, (size + 63) & ~(size_t)63);
}

static void np_free(void *ctx, void *p, size_t size)
{
	(void)ctx;
	(void)size;
	free(p);
}

static void *np_page_alloc(void *ctx, uint64_t *phys)
{
	struct null_port *np = ctx;
	pool_lock(np);
	if (!np->nfree) {
		pool_unlock(np);
		return NULL;
	}
	uint8_t *va = np->pool + (size_t)np->free_stack[--np->nfree] * DMAR_PAGE_SIZE;
	pool_unlock(np);
	memset(va, 0, DMAR_PAGE_SIZE);
	*phys = (uint64_t)(uintptr_t)va + NP_PHYS_OFFSET;
	return va;
}

static void np_page_free(void *ctx, void *va, uint64_t phys)
{
	struct null_port *np = ctx;
	(void)phys;
	pool_lock(np);
	np->free_stack[np->nfree++] = (uint32_t)(((uint8_t *)va - np->pool) / DMAR_PAGE_SIZE);
	pool_unlock(np);
}

static void *np_phys_to_virt(void *ctx, uint64_t phys)
{
	struct null_port *np = ctx;
	void *pool_va = (void *)(uintptr_t)(phys - NP_PHYS_OFFSET);
	if (phys >= NP_PHYS_OFFSET && in_pool(np, pool_va))
		return pool_va;
	return (void *)(uintptr_t)phys;
}

static uint64_t np_virt_to_phys(void *ctx, const void *va)
{
	struct null_port *np = ctx;
	uint64_t a = (uint64_t)(uintptr_t)va;
	return in_pool(np, va) ? a + NP_PHYS_OFFSET : a;
}

static uint32_t np_read32(void *ctx, uint64_t pa)
{
	struct null_port *np = ctx;
	mmio_lock(np);
	uint32_t v = dmar_model_read32(np->model, (uint32_t)(pa - np->reg_base));
	mmio_unlock(np);
	return v;
}

static uint64_t np_read64(void *ctx, uint64_t pa)
{
	struct null_port *np = ctx;
	mmio_lock(np);
	uint64_t v = dmar_model_read64(np->model, (uint32_t)(pa - np->reg_base));
	mmio_unlock(np);
	return v;
}

static void np_write32(void *ctx, uint64_t pa, uint32_t v)
{
	struct null_port *np = ctx;
	mmio_lock(np);
	dmar_model_write32(np->model, (uint32_t)(pa - np->reg_base), v);
	mmio_unlock(np);
}

static void np_write64(void *ctx, uint64_t pa, uint64_t v)
{
	struct null_port *np = ctx;
	mmio_lock(np);
	dmar_model_write64(np->model, (uint32_t)(pa - np->reg_base), v);
	mmio_unlock(np);
}

static void np_cache_flush(void *ctx, const void *va, size_t len)
{
	(void)ctx;
	(void)va;
	(void)len;
}

static void np_wmb(void *ctx)
{
	(void)ctx;
	__atomic_thread_fence(__ATOMIC_RELEASE);
}

static uint64_t clock_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Stores a wait descriptor's status word, never moving it back: the unit writes the
 * sequence numbers in order, and two threads delivering at once may land in either
 * order (serial comparison, as the library's waiters read it). */
static void status_store(uint32_t *w, uint32_t val)
{
	uint32_t cur = __atomic_load_n(w, __ATOMIC_RELAXED);
	while ((int32_t)(val - cur) > 0 &&
	       !__atomic_compare_exchange_n(w, &cur, val, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
}

/* Writes the held status words whose time has come. */
static void deliver_due(struct null_port *np, uint64_t now)
{
	for (;;) {
		uint64_t c = __atomic_load_n(&np->consumed, __ATOMIC_ACQUIRE);
		if (c == __atomic_load_n(&np->produced, __ATOMIC_ACQUIRE))
			return;
		const struct held_status *h = &np->held[c % NP_HELD_MAX];
		uint64_t pa = __atomic_load_n(&h->pa, __ATOMIC_RELAXED);
		uint64_t due = __atomic_load_n(&h->due, __ATOMIC_RELAXED);
		uint32_t val = __atomic_load_n(&h->val, __ATOMIC_RELAXED);
		if (due > now)
			return;
		if (__atomic_compare_exchange_n(&np->consumed, &c, c + 1, false, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED))
			status_store((uint32_t *)np_phys_to_virt(np, pa), val);
	}
}

static uint64_t np_now(void *ctx)
{
	struct null_port *np = ctx;
	uint64_t now = clock_ns();
	if (np->wait_latency_ns)
		deliver_due(np, now);
	return now;
}

/* Without a wait latency nothing is ever waited for; with one, a busy wait. */
static void np_delay(void *ctx, uint64_t ns)
{
	struct null_port *np = ctx;
	if (!np->wait_latency_ns)
		return;
	uint64_t end = clock_ns() + ns, now;
	while ((now = clock_ns()) < end) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
	}
	deliver_due(np, now);
}

static void np_log(void *ctx, enum dmar_log_level level, const char *line)
{
	(void)ctx;
	if (level <= DMAR_LOG_WARN)
		fprintf(stderr, "null port: %s\n", line);
}

/* null_port_create_threaded: the library's locks are pthread spinlocks. */
static void *np_lock_create(void *ctx)
{
	(void)ctx;
	void *l = np_alloc(ctx, sizeof(pthread_spinlock_t));
	if (l && pthread_spin_init((pthread_spinlock_t *)l, PTHREAD_PROCESS_PRIVATE) != 0) {
		free(l);
		return NULL;
	}
	return l;
}

static void np_lock_acquire(void *ctx, void *lock)
{
	(void)ctx;
	pthread_spin_lock(lock);
}

static void np_lock_release(void *ctx, void *lock)
{
	(void)ctx;
	pthread_spin_unlock(lock);
}

static void np_lock_destroy(void *ctx, void *lock)
{
	(void)ctx;
	pthread_spin_destroy(lock);
	free(lock);
}

static unsigned np_cpu_index(void *ctx)
{
	(void)ctx;
	return dmar_port_thread_cpu_index();
}

static const struct dmar_os_ops np_ops = {
	.alloc = np_alloc,
	.free = np_free,
	.page_alloc = np_page_alloc,
	.page_free = np_page_free,
	.phys_to_virt = np_phys_to_virt,
	.virt_to_phys = np_virt_to_phys,
	.mmio_read32 = np_read32,
	.mmio_read64 = np_read64,
	.mmio_write32 = np_write32,
	.mmio_write64 = np_write64,
	.cache_flush = np_cache_flush,
	.wmb = np_wmb,
	.now_ns = np_now,
	.delay_ns = np_delay,
	.log = np_log,
	.cpu_index = np_cpu_index,
};


/* The model's memory: wait-descriptor status writes (and descriptor reads). */
static int mem_read(void *ctx, uint64_t pa, void *buf, size_t len, enum model_mem_kind kind)
{
	(void)kind;
	memcpy(buf, np_phys_to_virt(ctx, pa), len);
	return 0;
}

static int mem_write(void *ctx, uint64_t pa, const void *buf, size_t len,
		     enum model_mem_kind kind)
{
	struct null_port *np = ctx;
	if (kind == MODEL_MEM_STATUS && np->wait_latency_ns && len == 4 &&
	    np->produced - __atomic_load_n(&np->consumed, __ATOMIC_ACQUIRE) < NP_HELD_MAX) {
		/* (under mmio_lock: the model writes while it handles an IQT write; a slot
		 * is reused only once consumed, so no deliverer still reads it) */
		struct held_status *h = &np->held[np->produced % NP_HELD_MAX];
		uint32_t val;
		memcpy(&val, buf, 4);
		__atomic_store_n(&h->pa, pa, __ATOMIC_RELAXED);
		__atomic_store_n(&h->val, val, __ATOMIC_RELAXED);
		__atomic_store_n(&h->due, clock_ns() + np->wait_latency_ns, __ATOMIC_RELAXED);
		__atomic_store_n(&np->produced, np->produced + 1, __ATOMIC_RELEASE);
		return 0;
	}
	if (kind == MODEL_MEM_STATUS && len == 4) {
		uint32_t val;
		memcpy(&val, buf, 4);
		status_store((uint32_t *)np_phys_to_virt(ctx, pa), val);
		return 0;
	}
	memcpy(np_phys_to_virt(ctx, pa), buf, len);
	return 0;
}

static const struct model_mem_ops np_mem_ops = {
	.read = mem_read,
	.write = mem_write,
	.alloc = np_alloc,
	.free = np_free,
};

static struct null_port *create(const struct model_config *cfg, uint64_t reg_base,
				size_t pool_pages, bool threaded)
{
	struct model_config mc;
	struct null_port *np = calloc(1, sizeof(*np));
	if (!np)
		return NULL;
	if (cfg)
		mc = *cfg;
	else
		dmar_model_config_default(&mc);
	mc.null_hw = true;
	np->reg_base = reg_base;
	np->npages = pool_pages;
	np->pool = aligned_alloc(DMAR_PAGE_SIZE, pool_pages * DMAR_PAGE_SIZE);
	np->free_stack = malloc(pool_pages * sizeof(uint32_t));
	np->model = dmar_model_create(&mc, &np_mem_ops, np);
	if (!np->pool || !np->free_stack || !np->model) {
		null_port_destroy(np);
		return NULL;
	}
	/* Touch every page once so page faults are not measured; pop in address order. */
	memset(np->pool, 0, pool_pages * DMAR_PAGE_SIZE);
	for (size_t i = 0; i < pool_pages; i++)
		np->free_stack[i] = (uint32_t)(pool_pages - 1 - i);
	np->nfree = pool_pages;
	np->threaded = threaded;
	if (threaded) {
		pthread_spin_init(&np->pool_lock, PTHREAD_PROCESS_PRIVATE);
		pthread_spin_init(&np->mmio_lock, PTHREAD_PROCESS_PRIVATE);
	}
	np->ops = np_ops;
	if (threaded) {
		np->ops.lock_create = np_lock_create;
		np->ops.lock_acquire = np_lock_acquire;
		np->ops.lock_release = np_lock_release;
		np->ops.lock_destroy = np_lock_destroy;
	}
	np->os.ops = &np->ops;
	np->os.ctx = np;
	return np;
}

struct null_port *null_port_create(const struct model_config *cfg, uint64_t reg_base,
				   size_t pool_pages)
{
	return create(cfg, reg_base, pool_pages, false);
}

struct null_port *null_port_create_threaded(const struct model_config *cfg, uint64_t reg_base,
					    size_t pool_pages)
{
	return create(cfg, reg_base, pool_pages, true);
}

void null_port_destroy(struct null_port *np)
{
	if (!np)
		return;
	if (np->model)
		dmar_model_destroy(np->model);
	if (np->threaded) {
		pthread_spin_destroy(&np->pool_lock);
		pthread_spin_destroy(&np->mmio_lock);
	}
	free(np->free_stack);
	free(np->pool);
	free(np);
}

void null_port_set_wait_latency(struct null_port *np, uint64_t ns)
{
	mmio_lock(np);
	np->wait_latency_ns = ns;
	mmio_unlock(np);
	if (!ns)
		deliver_due(np, UINT64_MAX);
}

int null_port_system(struct null_port *np, const struct dmar_config *cfg,
		     struct dmar_system **sys, struct dmar_unit **unit)
{
	struct dmar_config dflt;
	if (!cfg) {
		dmar_config_default(&dflt);
		cfg = &dflt;
	}
	int rc = dmar_system_create(&np->os, cfg, NULL, sys);
	if (rc)
		return rc;
	rc = dmar_system_add_unit(*sys, 0, np->reg_base, unit);
	if (rc)
		dmar_system_destroy(*sys);
	return rc;
}

const struct dmar_os *null_port_os(struct null_port *np)
{
	return &np->os;
}

struct model *null_port_model(struct null_port *np)
{
	return np->model;
}

size_t null_port_pages_in_use(const struct null_port *np)
{
	return np->npages - np->nfree;
}
