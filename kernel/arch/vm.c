/* Identity page tables with 2 MiB pages (x86-64 4-level paging). */
#include "vm.h"

#include "pmem.h"
#include "x86.h"

#define PTE_P 0x1ull
#define PTE_W 0x2ull
#define PTE_PWT 0x8ull
#define PTE_PCD 0x10ull
#define PTE_PS 0x80ull
#define PTE_ADDR 0x000ffffffffff000ull
#define SZ_2M 0x200000ull
#define SZ_4G 0x100000000ull

extern uint64_t boot_pml4[512];

/* The page directory entry for `va`, allocating missing levels; NULL without memory. */
static uint64_t *pde_for(uint64_t va)
{
	uint64_t *table = boot_pml4;
	for (int shift = 39; shift > 21; shift -= 9) {
		uint64_t *e = &table[(va >> shift) & 511];
		if (!(*e & PTE_P)) {
			uint64_t page = pmem_alloc(1, 4096, SZ_4G); /* reachable before mapping */
			if (!page)
				return 0;
			*e = page | PTE_P | PTE_W;
		}
		table = (uint64_t *)(uintptr_t)(*e & PTE_ADDR);
	}
	return &table[(va >> 21) & 511];
}

static int map_2m(uint64_t pa, uint64_t flags)
{
	uint64_t *pde = pde_for(pa);
	if (!pde)
		return -1;
	*pde = (pa & ~(SZ_2M - 1)) | PTE_P | PTE_W | PTE_PS | flags;
	return 0;
}

static int overlaps_ram(const struct boot_info *bi, uint64_t base, uint64_t len)
{
	for (unsigned i = 0; i < bi->nregions; i++) {
		const struct boot_region *r = &bi->region[i];
		if (r->type == BOOT_MEM_RAM && r->base < base + len && base < r->base + r->len)
			return 1;
	}
	return 0;
}

int vm_init(const struct boot_info *bi)
{
	for (uint64_t pa = 0; pa < SZ_4G; pa += SZ_2M)
		if (!overlaps_ram(bi, pa, SZ_2M) && map_2m(pa, PTE_PCD | PTE_PWT))
			return -1;
	for (unsigned i = 0; i < bi->nregions; i++) {
		const struct boot_region *r = &bi->region[i];
		if (r->type != BOOT_MEM_RAM || r->base + r->len <= SZ_4G)
			continue;
		uint64_t pa = r->base < SZ_4G ? SZ_4G : r->base & ~(SZ_2M - 1);
		for (; pa < r->base + r->len; pa += SZ_2M)
			if (map_2m(pa, 0))
				return -1;
	}
	write_cr3(read_cr3());
	return 0;
}

int vm_map_mmio(uint64_t pa, uint64_t len)
{
	if (pa + len <= SZ_4G) /* mapped uncached by vm_init already */
		return 0;
	for (uint64_t p = pa & ~(SZ_2M - 1); p < pa + len; p += SZ_2M)
		if (map_2m(p, PTE_PCD | PTE_PWT))
			return -1;
	write_cr3(read_cr3());
	return 0;
}
