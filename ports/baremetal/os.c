/* The OS layer for the bare-metal kernel. */
#include "baremetal.h"

#include "clock.h"
#include "console.h"
#include "pmem.h"
#include "util.h"
#include "x86.h"

#define PAGE 4096u
#define NCLASSES 8 /* 16 .. 2048 bytes */
#define POISON_ALLOC 0xa5
#define POISON_FREE 0x5a

struct baremetal {
	void *free_list[NCLASSES];
	struct baremetal_stats st;
	unsigned fail_after; /* 0: off */
	enum dmar_log_level verbosity;
	unsigned line;       /* cache line size for clflush */
};

static struct baremetal bm;

struct spinlock {
	volatile int held;
};

static int class_of(size_t size)
{
	size_t c = 16;
	for (int i = 0; i < NCLASSES; i++, c <<= 1)
		if (size <= c)
			return i;
	return -1;
}

static int injected_failure(struct baremetal *b)
{
	if (b->fail_after == 0)
		return 0;
	if (b->fail_after > 1) {
		b->fail_after--;
		return 0;
	}
	b->st.failed++;
	return 1;
}

static void *bm_alloc(void *ctx, size_t size)
{
	struct baremetal *b = ctx;
	if (size == 0)
		size = 1;
	if (injected_failure(b))
		return NULL;
	void *p;
	int c = class_of(size);
	if (c < 0) {
		uint64_t pa = pmem_alloc((size + PAGE - 1) / PAGE, PAGE, PMEM_NO_LIMIT);
		p = pa ? (void *)(uintptr_t)pa : NULL;
	} else {
		if (!b->free_list[c]) {
			uint64_t pa = pmem_alloc(1, PAGE, PMEM_NO_LIMIT);
			if (!pa)
				return NULL;
			size_t bs = (size_t)16 << c;
			for (size_t off = PAGE; off >= bs; off -= bs) {
				void **blk = (void **)(uintptr_t)(pa + off - bs);
				*blk = b->free_list[c];
				b->free_list[c] = blk;
			}
		}
		p = b->free_list[c];
		b->free_list[c] = *(void **)p;
	}
	if (!p)
		return NULL;
	dmar_memset(p, POISON_ALLOC, size);
	b->st.heap_bytes += size;
	b->st.heap_allocs++;
	return p;
}

static void bm_free(void *ctx, void *ptr, size_t size)
{
	struct baremetal *b = ctx;
	if (!ptr)
		return;
	if (size == 0)
		size = 1;
	dmar_memset(ptr, POISON_FREE, size);
	b->st.heap_bytes -= size;
	b->st.heap_allocs--;
	int c = class_of(size);
	if (c < 0) {
		pmem_free((uintptr_t)ptr, (size + PAGE - 1) / PAGE);
		return;
	}
	*(void **)ptr = b->free_list[c];
	b->free_list[c] = ptr;
}

static void *bm_page_alloc(void *ctx, uint64_t *phys)
{
	struct baremetal *b = ctx;
	if (injected_failure(b))
		return NULL;
	uint64_t pa = pmem_alloc(1, PAGE, PMEM_NO_LIMIT);
	if (!pa)
		return NULL;
	b->st.pages++;
	*phys = pa;
	return (void *)(uintptr_t)pa;
}

static void bm_page_free(void *ctx, void *va, uint64_t phys)
{
	struct baremetal *b = ctx;
	(void)va;
	b->st.pages--;
	pmem_free(phys, 1);
}

static void *bm_contig_alloc(void *ctx, size_t npages, uint64_t align, uint64_t max_addr,
			     uint64_t *phys)
{
	struct baremetal *b = ctx;
	if (injected_failure(b))
		return NULL;
	uint64_t pa = pmem_alloc(npages, align, max_addr == UINT64_MAX ? PMEM_NO_LIMIT : max_addr + 1);
	if (!pa)
		return NULL;
	b->st.pages += npages;
	*phys = pa;
	return (void *)(uintptr_t)pa;
}

static void bm_contig_free(void *ctx, void *va, uint64_t phys, size_t npages)
{
	struct baremetal *b = ctx;
	(void)va;
	b->st.pages -= npages;
	pmem_free(phys, npages);
}

static void *bm_phys_to_virt(void *ctx, uint64_t phys)
{
	(void)ctx;
	return (void *)(uintptr_t)phys;
}

static uint64_t bm_virt_to_phys(void *ctx, const void *va)
{
	(void)ctx;
	return (uintptr_t)va;
}

static uint32_t bm_mmio_read32(void *ctx, uint64_t pa)
{
	(void)ctx;
	return *(volatile uint32_t *)(uintptr_t)pa;
}

static uint64_t bm_mmio_read64(void *ctx, uint64_t pa)
{
	(void)ctx;
	return *(volatile uint64_t *)(uintptr_t)pa;
}

static void bm_mmio_write32(void *ctx, uint64_t pa, uint32_t val)
{
	(void)ctx;
	*(volatile uint32_t *)(uintptr_t)pa = val;
}

static void bm_mmio_write64(void *ctx, uint64_t pa, uint64_t val)
{
	(void)ctx;
	*(volatile uint64_t *)(uintptr_t)pa = val;
}

static void bm_cache_flush(void *ctx, const void *va, size_t len)
{
	struct baremetal *b = ctx;
	uintptr_t p = (uintptr_t)va & ~(uintptr_t)(b->line - 1);
	uintptr_t end = (uintptr_t)va + len;
	mfence();
	for (; p < end; p += b->line)
		clflush((const void *)p);
	mfence();
}

static void bm_wmb(void *ctx)
{
	(void)ctx;
	mfence();
}

static uint64_t bm_now_ns(void *ctx)
{
	(void)ctx;
	return clock_now_ns();
}

static void bm_delay_ns(void *ctx, uint64_t ns)
{
	(void)ctx;
	clock_delay_ns(ns);
}

static void *bm_lock_create(void *ctx)
{
	struct spinlock *l = bm_alloc(ctx, sizeof(*l));
	if (l) {
		l->held = 0;
		((struct baremetal *)ctx)->st.locks++;
	}
	return l;
}

static void bm_lock_acquire(void *ctx, void *lock)
{
	struct spinlock *l = lock;
	(void)ctx;
	if (l->held) {
		kprintf("# dmar: lock %p acquired while held (deadlock on one CPU)\n", lock);
		kprintf("Bail out! recursive lock\n");
		qemu_exit(2);
	}
	l->held = 1;
}

static void bm_lock_release(void *ctx, void *lock)
{
	struct spinlock *l = lock;
	(void)ctx;
	l->held = 0;
}

static void bm_lock_destroy(void *ctx, void *lock)
{
	((struct baremetal *)ctx)->st.locks--;
	bm_free(ctx, lock, sizeof(struct spinlock));
}

static void bm_log(void *ctx, enum dmar_log_level level, const char *line)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	struct baremetal *b = ctx;
	if (level > b->verbosity)
		return;
	kprintf("# dmar %s: %s\n", names[(unsigned)level & 3], line);
}

static const struct dmar_os_ops baremetal_ops = {
	.alloc = bm_alloc,
	.free = bm_free,
	.page_alloc = bm_page_alloc,
	.page_free = bm_page_free,
	.contig_alloc = bm_contig_alloc,
	.contig_free = bm_contig_free,
	.phys_to_virt = bm_phys_to_virt,
	.virt_to_phys = bm_virt_to_phys,
	.mmio_read32 = bm_mmio_read32,
	.mmio_read64 = bm_mmio_read64,
	.mmio_write32 = bm_mmio_write32,
	.mmio_write64 = bm_mmio_write64,
	.cache_flush = bm_cache_flush,
	.wmb = bm_wmb,
	.now_ns = bm_now_ns,
	.delay_ns = bm_delay_ns,
	.lock_create = bm_lock_create,
	.lock_acquire = bm_lock_acquire,
	.lock_release = bm_lock_release,
	.lock_destroy = bm_lock_destroy,
	.log = bm_log,
};

void baremetal_os_init(struct dmar_os *os, enum dmar_log_level verbosity)
{
	uint32_t r[4];
	cpuid(1, 0, r);
	bm.line = ((r[1] >> 8) & 0xff) * 8;
	if (bm.line == 0 || (bm.line & (bm.line - 1)))
		bm.line = 64;
	bm.verbosity = verbosity;
	os->ops = &baremetal_ops;
	os->ctx = &bm;
}

void baremetal_get_stats(struct baremetal_stats *st) { *st = bm.st; }

void baremetal_fail_alloc_after(unsigned n) { bm.fail_after = n; }
