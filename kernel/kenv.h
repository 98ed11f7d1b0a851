/*
 * kenv.h - what the kernel found at boot, shared by the tests: memory map and command
 * line, the DMAR table, the edu devices, the tunables and the OS layer.
 */
#ifndef KERNEL_KENV_H
#define KERNEL_KENV_H

#include "acpi_find.h"
#include "baremetal.h"
#include "boot.h"
#include "dmar/config.h"
#include "edu.h"

#define KENV_MAX_EDU 4

struct kenv {
	struct boot_info boot;
	struct dmar_config cfg;
	int cfg_warnings;
	int verbose;             /* kernel.verbose=1 */
	struct dmar_os os;
	int have_dmar;
	struct acpi_found dmar;  /* the DMAR table, when have_dmar */
	unsigned nedu;
	struct edu edu[KENV_MAX_EDU];
};

extern struct kenv kenv;

/* A zeroed, aligned, physically contiguous buffer below `limit`; 0 when out of memory.
 * The edu's default dma_mask is 28 bits: untranslated DMA buffers stay below 256 MiB. */
uint64_t kenv_dma_buffer(uint64_t npages, uint64_t align, uint64_t limit);
#define KENV_EDU_LIMIT 0x10000000ull

#endif
