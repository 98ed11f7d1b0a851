/*
 * boot.h - what the multiboot v1 loader handed over: the physical memory map and the
 * command line, copied out of the loader's structures (which live in memory the page
 * allocator will hand out) before anything else runs.
 */
#ifndef KERNEL_BOOT_H
#define KERNEL_BOOT_H

#include <stdbool.h>
#include <stdint.h>

#define BOOT_MAX_REGIONS 64
#define BOOT_CMDLINE_MAX 1024

enum { BOOT_MEM_RAM = 1 }; /* multiboot / e820 type of usable RAM */

struct boot_region {
	uint64_t base, len;
	uint32_t type;
};

struct boot_info {
	unsigned nregions;
	struct boot_region region[BOOT_MAX_REGIONS];
	char cmdline[BOOT_CMDLINE_MAX]; /* the -append text, without the image's name */
};

/* Copies the loader's information. Returns false when `magic` is not the multiboot v1
 * magic or no memory map was given. */
bool boot_info_parse(uint32_t magic, uint32_t info_phys, struct boot_info *out);

/* Value of word `key=value` on the command line into buf (NUL-terminated); false when
 * absent. */
bool boot_cmdline_get(const struct boot_info *bi, const char *key, char *buf, unsigned len);

/* Symbols from the linker script. */
extern char __kernel_start[], __kernel_end[];

#endif
