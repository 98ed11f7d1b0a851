/* The OS layer for the bare-metal kernel. */
#include "baremetal.h"

#include "clock.h"
#include "console.h"
#include "pmem.h"
#include "smp.h"
#include "spinlock.h"
#include "util.h"
#include "x86.h"

#define PAGE 4096u
#define NCLASSES 8 /* 16 .. 2048 bytes */
#define POISON_ALLOC 0xa5
#define POISON_FREE 0x5a

/* The heap, the statistics and the injection counter are shared by every CPU: one
 * spinlock (heap_lock, interrupts off while held) guards them; poisoning is done outside
 * it. The library's own locks are spinlocks (kernel/arch/spinlock.h, test-and-test-and-set) that keep
 * interrupts off on the CPU holding them. */
struct baremetal {
	struct spinlock heap_lock;
	void *free_list[NCLASSES];
	struct baremetal_stats st;
	unsigned fail_after; /* 0: off */
	enum dmar_log_level verbosity;
	unsigned line;       /* cache line size for clflush */
};

static struct baremetal bm = { .heap_lock = SPINLOCK_INIT("baremetal heap") };

/* A library lock: the spinlock and the interrupt state of the CPU holding it. */
struct bm_lock {
	struct spinlock lock;
	uint64_t flags;
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
	uint64_t flags;
	spin_lock_irqsave(&b->heap_lock, &flags);
	void *p = NULL;
	int c = class_of(size);
	if (injected_failure(b)) {
		p = NULL;
	} else if (c < 0) {
		uint64_t pa = pmem_alloc((size + PAGE - 1) / PAGE, PAGE, PMEM_NO_LIMIT);
		p = pa ? (void *)(uintptr_t)pa : NULL;
	} else {
		if (!b->free_list[c]) {
			uint64_t pa = pmem_alloc(1, PAGE, PMEM_NO_LIMIT);
			size_t bs = (size_t)16 << c;
			for (size_t off = PAGE; pa && off >= bs; off -= bs) {
				void **blk = (void **)(uintptr_t)(pa + off - bs);
				*blk = b->free_list[c];
				b->free_list[c] = blk;
			}
		}
		p = b->free_list[c];
		if (p)
			b->free_list[c] = *(void **)p;
	}
	if (p) {
		b->st.heap_bytes += size;
		b->st.heap_allocs++;
	}
	spin_unlock_irqrestore(&b->heap_lock, flags);
	if (p)
		dmar_memset(p, POISON_ALLOC, size);
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
	int c = class_of(size);
	uint64_t flags;
	spin_lock_irqsave(&b->heap_lock, &flags);
	b->st.heap_bytes -= size;
	b->st.heap_allocs--;
	if (c >= 0) {
		*(void **)ptr = b->free_list[c];
		b->free_list[c] = ptr;
	}
	spin_unlock_irqrestore(&b->heap_lock, flags);
	if (c < 0)
		pmem_free((uintptr_t)ptr, (size + PAGE - 1) / PAGE);
}

/* Injection and page statistics under the heap lock. */
static int inject_locked(struct baremetal *b)
{
	uint64_t flags;
	spin_lock_irqsave(&b->heap_lock, &flags);
	int r = injected_failure(b);
	spin_unlock_irqrestore(&b->heap_lock, flags);
	return r;
}

static void pages_add(struct baremetal *b, int64_t n)
{
	uint64_t flags;
	spin_lock_irqsave(&b->heap_lock, &flags);
	b->st.pages += (uint64_t)n;
	spin_unlock_irqrestore(&b->heap_lock, flags);
}

static void *bm_page_alloc(void *ctx, uint64_t *phys)
{
	struct baremetal *b = ctx;
	if (inject_locked(b))
		return NULL;
	uint64_t pa = pmem_alloc(1, PAGE, PMEM_NO_LIMIT);
	if (!pa)
		return NULL;
	pages_add(b, 1);
	*phys = pa;
	return (void *)(uintptr_t)pa;
}

static void bm_page_free(void *ctx, void *va, uint64_t phys)
{
	struct baremetal *b = ctx;
	(void)va;
	pages_add(b, -1);
	pmem_free(phys, 1);
}

static void *bm_contig_alloc(void *ctx, size_t npages, uint64_t align, uint64_t max_addr,
			     uint64_t *phys)
{
	struct baremetal *b = ctx;
	if (inject_locked(b))
		return NULL;
	uint64_t pa = pmem_alloc(npages, align, max_addr == UINT64_MAX ? PMEM_NO_LIMIT : max_addr + 1);
	if (!pa)
		return NULL;
	pages_add(b, (int64_t)npages);
	*phys = pa;
	return (void *)(uintptr_t)pa;
}

static void bm_contig_free(void *ctx, void *va, uint64_t phys, size_t npages)
{
	struct baremetal *b = ctx;
	(void)va;
	pages_add(b, -(int64_t)npages);
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
	struct bm_lock *l = bm_alloc(ctx, sizeof(*l));
	if (l) {
		spin_init(&l->lock, "dmar library lock");
		l->flags = 0;
		struct baremetal *b = ctx;
		uint64_t flags;
		spin_lock_irqsave(&b->heap_lock, &flags);
		b->st.locks++;
		spin_unlock_irqrestore(&b->heap_lock, flags);
	}
	return l;
}

/* A lock taken again by the CPU holding it is a deadlock (a library bug): spinlock.c
 * reports it and ends the run, as a wait of more than 20 s for another CPU does. */
static void bm_lock_acquire(void *ctx, void *lock)
{
	struct bm_lock *l = lock;
	(void)ctx;
	uint64_t flags;
	spin_lock_irqsave(&l->lock, &flags);
	l->flags = flags;
}

static void bm_lock_release(void *ctx, void *lock)
{
	struct bm_lock *l = lock;
	(void)ctx;
	spin_unlock_irqrestore(&l->lock, l->flags);
}

static void bm_lock_destroy(void *ctx, void *lock)
{
	struct baremetal *b = ctx;
	struct bm_lock *l = lock;
	if (l->lock.owner != SPIN_NO_OWNER) {
		kprintf("# dmar: lock %p destroyed while CPU %u holds it\n", lock,
			l->lock.owner - 1);
		kprintf("Bail out! lock destroyed while held\n");
		qemu_exit(2);
	}
	uint64_t flags;
	spin_lock_irqsave(&b->heap_lock, &flags);
	b->st.locks--;
	spin_unlock_irqrestore(&b->heap_lock, flags);
	bm_free(ctx, lock, sizeof(struct bm_lock));
}

static void bm_log(void *ctx, enum dmar_log_level level, const char *line)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	struct baremetal *b = ctx;
	if (level > b->verbosity)
		return;
	kprintf("# dmar %s: %s\n", names[(unsigned)level & 3], line);
}

static unsigned bm_cpu_index(void *ctx)
{
	(void)ctx;
	return smp_cpu_index();
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
	.cpu_index = bm_cpu_index,
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

void baremetal_get_stats(struct baremetal_stats *st)
{
	uint64_t flags;
	spin_lock_irqsave(&bm.heap_lock, &flags);
	*st = bm.st;
	spin_unlock_irqrestore(&bm.heap_lock, flags);
}

void baremetal_fail_alloc_after(unsigned n)
{
	uint64_t flags;
	spin_lock_irqsave(&bm.heap_lock, &flags);
	bm.fail_after = n;
	spin_unlock_irqrestore(&bm.heap_lock, flags);
}
