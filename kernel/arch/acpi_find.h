/*
 * acpi_find.h - locating ACPI tables: RSDP (EBDA, then 0xe0000-0xfffff) -> XSDT (ACPI
 * 2.0+) or RSDT -> the table with a given signature. Checksums are verified on the RSDP
 * and the root table; the table found is returned as is (its parser judges it).
 */
#ifndef KERNEL_ACPI_FIND_H
#define KERNEL_ACPI_FIND_H

#include <stdint.h>

struct acpi_found {
	uint64_t rsdp;      /* physical addresses */
	uint64_t root;      /* XSDT or RSDT */
	int xsdt;           /* 1 when the root is the XSDT */
	uint64_t table;
	uint32_t length;
};

/* 0 and *out filled, or -1 when there is no RSDP, no valid root table or no table
 * with that signature. */
int acpi_find_table(const char sig[4], struct acpi_found *out);

/* 8-bit sum of `len` bytes (0 for a valid ACPI checksum). */
uint8_t acpi_sum(const void *p, uint32_t len);

#endif
