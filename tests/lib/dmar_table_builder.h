/*
 * dmar_table_builder.h - builds synthetic ACPI DMAR tables in memory for tests.
 *
 *   struct dtb b;
 *   dtb_init(&b, 39, DMAR_ACPI_INTR_REMAP);
 *   dtb_drhd(&b, 0, 0, 0xfed90000);             // opens a DRHD: flags, segment, base
 *   dtb_scope_pci(&b, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);   // 00:02.0
 *   dtb_scope(&b, DMAR_SCOPE_IOAPIC, 2, 0xf0, (uint8_t[]){0x1f, 0}, 1);
 *   dtb_rmrr(&b, 0, 0xa0000, 0xbffff);
 *   size_t len = dtb_finish(&b);               // fixes length and checksum
 *   dmar_acpi_parse(b.buf, len, NULL, &table);
 *
 * Each structure call appends a structure and makes it the open one; scopes go into the
 * open structure and grow its length. Calls return the byte offset of what they added.
 * If the buffer would overflow, b.overflow is set and nothing more is written.
 */
#ifndef DMAR_TABLE_BUILDER_H
#define DMAR_TABLE_BUILDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <dmar/acpi.h>

/* struct dtb holds up to 64 KiB: make it static (or allocate it), not a local. */
#define DTB_MAX 65536u

struct dtb {
	uint8_t buf[DTB_MAX];
	size_t len;
	size_t open;       /* offset of the open structure; 0 when none */
	bool overflow;
};

/* Header: "DMAR", revision 1, OEM "DMARTB", host address width `haw` bits, flags. */
void dtb_init(struct dtb *b, unsigned haw, uint8_t flags);
size_t dtb_drhd(struct dtb *b, uint8_t flags, uint16_t segment, uint64_t base);
size_t dtb_rmrr(struct dtb *b, uint16_t segment, uint64_t base, uint64_t limit);
size_t dtb_atsr(struct dtb *b, uint8_t flags, uint16_t segment);
size_t dtb_rhsa(struct dtb *b, uint64_t base, uint32_t proximity_domain);
size_t dtb_andd(struct dtb *b, uint8_t device, const char *name);
size_t dtb_satc(struct dtb *b, uint8_t flags, uint16_t segment);
size_t dtb_sidp(struct dtb *b, uint16_t segment);
/* Any structure: type, then `body_len` bytes after the 4-byte type/length header. */
size_t dtb_struct(struct dtb *b, uint16_t type, const void *body, size_t body_len);

/* A device scope in the open structure: `npath` (dev, fn) pairs from `path`. */
size_t dtb_scope(struct dtb *b, uint8_t type, uint8_t enum_id, uint8_t start_bus,
		 const uint8_t *path, unsigned npath);
/* One-entry PCI scope: bus:dev.fn. */
size_t dtb_scope_pci(struct dtb *b, uint8_t type, uint8_t bus, uint8_t dev, uint8_t fn,
		     uint8_t enum_id);

/* Writes the header length and checksum; returns the table length. */
size_t dtb_finish(struct dtb *b);
/* Recomputes only the checksum (after a test pokes bytes). */
void dtb_fix_checksum(struct dtb *b);

/* Little-endian pokes at an offset (for corruption tests); no length fix-up. */
void dtb_put8(struct dtb *b, size_t off, uint8_t v);
void dtb_put16(struct dtb *b, size_t off, uint16_t v);
void dtb_put32(struct dtb *b, size_t off, uint32_t v);
void dtb_put64(struct dtb *b, size_t off, uint64_t v);


/* Calls every getter, iterator and lookup of the acpi API over a parsed table (with a
 * made-up bridge topology); returns the number of scopes seen. For robustness tests and
 * the fuzz target: whatever the parser accepted must be safe to walk. */
unsigned dtb_exercise(const struct dmar_acpi_table *t);

#endif
