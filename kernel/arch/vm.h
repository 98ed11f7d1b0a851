/*
 * vm.h - the identity mapping. boot.S maps the low 4 GiB with 2 MiB pages; vm_init makes
 * every 2 MiB page without RAM uncached (MMIO) and maps RAM above 4 GiB; vm_map_mmio maps
 * a device range anywhere (64-bit BARs).
 */
#ifndef KERNEL_VM_H
#define KERNEL_VM_H

#include <stdint.h>

#include "boot.h"

/* Returns 0, or -1 when a page-table page could not be allocated. */
int vm_init(const struct boot_info *bi);
int vm_map_mmio(uint64_t pa, uint64_t len);

#endif
