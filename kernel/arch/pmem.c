/* Physical pages: a bump pointer per usable RAM range plus a list of freed pages. */
#include "pmem.h"

#include "spinlock.h"
#include "util.h"

#define PAGE 4096ull
#define MAX_RANGES 32

struct range {
	uint64_t cur, end;
};

static struct range ranges[MAX_RANGES];
static unsigned nranges;
static uint64_t free_list; /* physical address of the first freed page, 0 if none */
static uint64_t in_use, total, ram_top;
/* Several CPUs allocate (the SMP tests, the OS layer under them). */
static struct spinlock pmem_lock = SPINLOCK_INIT("pmem");

/* Ranges are split here so that pmem_alloc_in(min = this) finds RAM right above it:
 * 256 MiB is the edu's default DMA limit, which the tests place buffers above. */
#define SPLIT_AT 0x10000000ull

static void add_range(uint64_t base, uint64_t end)
{
	base = (base + PAGE - 1) & ~(PAGE - 1);
	end &= ~(PAGE - 1);
	if (end <= base || nranges == MAX_RANGES)
		return;
	if (base < SPLIT_AT && end > SPLIT_AT) {
		add_range(base, SPLIT_AT);
		add_range(SPLIT_AT, end);
		return;
	}
	/* Keep the ranges sorted so low memory is used first (DMA masks, page tables). */
	unsigned i = nranges++;
	while (i > 0 && ranges[i - 1].cur > base) {
		ranges[i] = ranges[i - 1];
		i--;
	}
	ranges[i].cur = base;
	ranges[i].end = end;
	total += (end - base) / PAGE;
}

void pmem_init(const struct boot_info *bi)
{
	uint64_t kstart = (uintptr_t)__kernel_start, kend = (uintptr_t)__kernel_end;
	for (unsigned i = 0; i < bi->nregions; i++) {
		const struct boot_region *r = &bi->region[i];
		if (r->type != BOOT_MEM_RAM)
			continue;
		uint64_t base = r->base, end = r->base + r->len;
		if (end > ram_top)
			ram_top = end;
		if (base < 0x100000)
			base = 0x100000;
		if (end <= base)
			continue;
		if (kstart < end && kend > base) {
			add_range(base, kstart);
			add_range(kend, end);
		} else {
			add_range(base, end);
		}
	}
}

static void zero_pages(uint64_t phys, uint64_t npages)
{
	dmar_memset((void *)(uintptr_t)phys, 0, (size_t)(npages * PAGE));
}

static void push_free(uint64_t phys)
{
	*(uint64_t *)(uintptr_t)phys = free_list;
	free_list = phys;
}

uint64_t pmem_alloc(uint64_t npages, uint64_t align, uint64_t limit)
{
	return pmem_alloc_in(npages, align, 0, limit);
}

static uint64_t alloc_locked(uint64_t npages, uint64_t align, uint64_t min, uint64_t limit);

uint64_t pmem_alloc_in(uint64_t npages, uint64_t align, uint64_t min, uint64_t limit)
{
	if (npages == 0 || align < PAGE || (align & (align - 1)))
		return 0;
	uint64_t flags;
	spin_lock_irqsave(&pmem_lock, &flags);
	uint64_t pa = alloc_locked(npages, align, min, limit);
	spin_unlock_irqrestore(&pmem_lock, flags);
	if (pa)
		zero_pages(pa, npages); /* outside the lock: the pages are the caller's */
	return pa;
}

static uint64_t alloc_locked(uint64_t npages, uint64_t align, uint64_t min, uint64_t limit)
{
	if (npages == 1 && align == PAGE && free_list >= min && free_list &&
	    free_list + PAGE <= limit) {
		uint64_t p = free_list;
		free_list = *(uint64_t *)(uintptr_t)p;
		in_use++;
		return p;
	}
	for (unsigned i = 0; i < nranges; i++) {
		struct range *r = &ranges[i];
		if (r->cur < min)
			continue;
		uint64_t a = (r->cur + align - 1) & ~(align - 1);
		if (a < r->cur || a >= r->end || npages > (r->end - a) / PAGE)
			continue;
		uint64_t end = a + npages * PAGE;
		if (end > limit)
			continue;
		for (uint64_t p = r->cur; p < a; p += PAGE) /* skipped for alignment */
			push_free(p);
		r->cur = end;
		in_use += npages;
		return a;
	}
	return 0;
}

void pmem_free(uint64_t phys, uint64_t npages)
{
	uint64_t flags;
	spin_lock_irqsave(&pmem_lock, &flags);
	for (uint64_t i = 0; i < npages; i++)
		push_free(phys + i * PAGE);
	in_use -= npages;
	spin_unlock_irqrestore(&pmem_lock, flags);
}

uint64_t pmem_pages_in_use(void) { return in_use; }
uint64_t pmem_pages_total(void) { return total; }
uint64_t pmem_ram_top(void) { return ram_top; }
