/*
 * pmem.h - physical page allocator over the multiboot memory map.
 *
 * Hands out zeroed 4 KiB pages (or aligned contiguous runs) of usable RAM above 1 MiB
 * that the kernel image does not occupy (so everything below 1 MiB, such as the SMP
 * trampoline page, stays free). Memory is identity-mapped, so a physical address is also
 * a pointer. Any CPU may allocate and free at once (a spinlock, interrupts off while
 * held); not from interrupt handlers.
 */
#ifndef KERNEL_PMEM_H
#define KERNEL_PMEM_H

#include <stdint.h>

#include "boot.h"

#define PMEM_NO_LIMIT UINT64_MAX

void pmem_init(const struct boot_info *bi);

/* `npages` zeroed contiguous pages aligned to `align` (a power of two >= 4096), wholly
 * below `limit`. Returns the physical address, or 0 when no such run is left. */
uint64_t pmem_alloc(uint64_t npages, uint64_t align, uint64_t limit);
/* The same from a RAM range that starts at or above `min` (e.g. RAM above 4 GiB). */
uint64_t pmem_alloc_in(uint64_t npages, uint64_t align, uint64_t min, uint64_t limit);
void pmem_free(uint64_t phys, uint64_t npages);

/* Pages handed out and not freed (leak checks), and total usable pages. */
uint64_t pmem_pages_in_use(void);
uint64_t pmem_pages_total(void);

/* Lowest and highest usable RAM addresses (for tests that need RAM at a place). */
uint64_t pmem_ram_top(void);

#endif
