/*
 * dmar/acpi.h - the ACPI DMAR table (VT-d specification, chapter 8): parser, validator
 * and device lookup.
 *
 * dmar_acpi_parse() checks every byte of a table once and records its header, counts and
 * findings in a struct dmar_acpi_table that keeps a pointer to the caller's bytes (no
 * allocation: the bytes must stay unchanged while the table is used). The getters and
 * iterators below then walk those validated bytes. Errors mean the table cannot be used;
 * findings mean firmware broke a rule but the table is still usable.
 *
 * Framing and per-structure checks take time linear in the length. Cross-structure
 * checks (overlaps, duplicates, coverage) compare pairs of structures or scopes, so they
 * stop after DMAR_ACPI_CROSS_WORK steps (thousands of times what real tables need, some
 * milliseconds; see opt->cross_work) and say so with a DMAR_FIND_CROSS_LIMITED finding.
 * A check cut short reports only what it proved, never an absence it did not finish
 * looking for. Without the PCI bus topology, scopes are compared by their paths: a
 * device is a duplicate when two scopes spell the same start bus and path, and uncovered
 * only when no DRHD scope of its segment can lead to it.
 *
 * Contracts (all functions are pure: no I/O, no allocation, no global state):
 * - dmar_acpi_parse: validates `len` bytes; returns 0, or DMAR_EINVAL (NULL argument),
 *   DMAR_EBADTABLE (bad signature, zero or too short length, bad scope), DMAR_ETRUNC
 *   (buffer shorter than the length field, a structure or scope overrunning its parent),
 *   DMAR_ECHECKSUM (only with opt->checksum_fatal). On error *out is zeroed.
 * - Getters (dmar_acpi_*_get, _struct_get) fill *out and return 0, or DMAR_ENOENT when the
 *   index is out of range; they may run concurrently on one table (they only read).
 * - dmar_acpi_device_unit / dmar_acpi_device_rmrr_next: see below; the callback may be
 *   called several times and must not modify the table.
 * - Text functions never return NULL.
 */
#ifndef DMAR_ACPI_H
#define DMAR_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DMAR_ACPI_HEADER_LEN 48u      /* ACPI header (36) + HAW, flags, 10 reserved */

/* Table flags (8.1). */
#define DMAR_ACPI_INTR_REMAP 0x1u
#define DMAR_ACPI_X2APIC_OPT_OUT 0x2u
#define DMAR_ACPI_DMA_CTRL_PLATFORM_OPT_IN 0x4u

/* Remapping structure types (8.2). */
enum dmar_acpi_type {
	DMAR_ACPI_DRHD = 0,
	DMAR_ACPI_RMRR = 1,
	DMAR_ACPI_ATSR = 2,
	DMAR_ACPI_RHSA = 3,
	DMAR_ACPI_ANDD = 4,
	DMAR_ACPI_SATC = 5,
	DMAR_ACPI_SIDP = 6,
	DMAR_ACPI_NTYPES = 7,
};

/* Device scope types (8.3.1). */
enum dmar_acpi_scope_type {
	DMAR_SCOPE_ENDPOINT = 1,
	DMAR_SCOPE_BRIDGE = 2,     /* PCI sub-hierarchy: the bridge and all below it */
	DMAR_SCOPE_IOAPIC = 3,
	DMAR_SCOPE_HPET = 4,
	DMAR_SCOPE_ACPI = 5,       /* ACPI namespace device (named by an ANDD) */
};

#define DMAR_DRHD_INCLUDE_PCI_ALL 0x1u
#define DMAR_ATSR_ALL_PORTS 0x1u
#define DMAR_SATC_ATC_REQUIRED 0x1u

/* Findings: stable codes (never renumbered; new ones are appended). */
enum dmar_acpi_finding_code {
	DMAR_FIND_CHECKSUM = 1,            /* table checksum does not sum to 0 */
	DMAR_FIND_UNKNOWN_TYPE,            /* structure type this parser does not know; skipped */
	DMAR_FIND_DRHD_BASE_ZERO,          /* DRHD register base 0 */
	DMAR_FIND_DRHD_BASE_UNALIGNED,     /* DRHD register base not 4 KiB aligned */
	DMAR_FIND_RMRR_END_BEFORE_BASE,    /* RMRR limit < base */
	DMAR_FIND_RMRR_UNALIGNED,          /* RMRR base or limit+1 not 4 KiB aligned */
	DMAR_FIND_RMRR_ZERO_LENGTH,        /* RMRR base and limit both 0 (an empty range) */
	DMAR_FIND_RMRR_OVERLAP,            /* two RMRRs of one segment overlap */
	DMAR_FIND_DUP_IOAPIC,              /* an IOAPIC id is listed more than once */
	DMAR_FIND_DUP_HPET,                /* an HPET id is listed more than once */
	DMAR_FIND_RHSA_NO_DRHD,            /* RHSA base matches no DRHD */
	DMAR_FIND_X2APIC_OPT_OUT_NO_IR,    /* X2APIC_OPT_OUT set without INTR_REMAP */
	DMAR_FIND_RESERVED_NONZERO,        /* a reserved byte or bit is not zero */
	DMAR_FIND_PCI_ALL_MULTIPLE,        /* more than one INCLUDE_PCI_ALL DRHD in a segment */
	DMAR_FIND_PCI_ALL_NOT_LAST,        /* INCLUDE_PCI_ALL DRHD followed by one of its segment */
	DMAR_FIND_PCI_ALL_PCI_SCOPE,       /* endpoint/bridge scope on an INCLUDE_PCI_ALL DRHD */
	DMAR_FIND_UNKNOWN_SCOPE,           /* device scope type this parser does not know */
	DMAR_FIND_SCOPE_NO_PATH,           /* device scope with no path entry */
	DMAR_FIND_STRUCT_TRAILING,         /* structure longer than its fixed part allows */
	DMAR_FIND_HEADER_ID_NOT_ASCII,     /* OEM/OEM table/creator ID byte not printable ASCII */
	DMAR_FIND_DRHD_BEYOND_HAW,         /* DRHD register set above the host address width */
	DMAR_FIND_RMRR_BEYOND_HAW,         /* RMRR base or limit above the host address width */
	DMAR_FIND_DUP_SCOPE,               /* one device named twice in one scope list */
	DMAR_FIND_DUP_DRHD_DEVICE,         /* one device named by two DRHDs of a segment */
	DMAR_FIND_DRHD_OVERLAP,            /* two DRHDs' register sets overlap (e.g. one base) */
	DMAR_FIND_RMRR_OVERLAP_SEGMENT,    /* RMRRs of two segments overlap */
	DMAR_FIND_SEGMENT_NO_DRHD,         /* RMRR/ATSR/SATC/SIDP of a segment without DRHDs */
	DMAR_FIND_SCOPE_NO_DRHD,           /* RMRR/ATSR/SATC/SIDP scope no DRHD covers */
	DMAR_FIND_CROSS_LIMITED,           /* cross-structure checks stopped at their work bound */
	DMAR_FIND_CODE_MAX
};

struct dmar_acpi_finding {
	uint16_t code;     /* enum dmar_acpi_finding_code */
	uint32_t offset;   /* byte offset in the table of the offending field/structure */
	uint64_t value;    /* the offending value (base, id, byte...) */
};

#define DMAR_ACPI_MAX_FINDINGS 32u
#define DMAR_ACPI_CROSS_WORK (1u << 22)   /* bound on cross-structure check steps */

struct dmar_acpi_options {
	bool checksum_fatal;   /* checksum mismatch is DMAR_ECHECKSUM instead of a finding */
	uint32_t cross_work;   /* bound on cross-check steps; 0: DMAR_ACPI_CROSS_WORK */
};

struct dmar_acpi_table {
	const uint8_t *bytes;  /* the caller's buffer (not copied) */
	uint32_t length;       /* header length field (<= buffer length) */
	uint8_t revision;
	uint8_t checksum;
	bool checksum_ok;
	char oem_id[7];
	char oem_table_id[9];
	uint32_t oem_revision;
	char creator_id[5];
	uint32_t creator_revision;
	uint16_t haw;          /* host address width in bits (field + 1: up to 256) */
	uint8_t flags;         /* DMAR_ACPI_INTR_REMAP, ... */
	unsigned nstructs;     /* all remapping structures, known or not */
	unsigned count[DMAR_ACPI_NTYPES];
	unsigned nfindings;    /* total; the first DMAR_ACPI_MAX_FINDINGS are stored */
	struct dmar_acpi_finding findings[DMAR_ACPI_MAX_FINDINGS];
};

int dmar_acpi_parse(const void *buf, size_t len, const struct dmar_acpi_options *opt,
		    struct dmar_acpi_table *out);

/* Any remapping structure, by position in the table (0 .. nstructs-1). */
struct dmar_acpi_struct {
	uint16_t type;
	uint16_t length;
	uint32_t offset;
};
int dmar_acpi_struct_get(const struct dmar_acpi_table *t, unsigned i, struct dmar_acpi_struct *out);
/* Number of structures of a type (0 for unknown types). */
unsigned dmar_acpi_count(const struct dmar_acpi_table *t, unsigned type);

struct dmar_acpi_drhd {
	uint32_t offset;
	uint8_t flags;        /* DMAR_DRHD_INCLUDE_PCI_ALL */
	uint8_t size;         /* register set is 2^size 4 KiB pages */
	uint16_t segment;
	uint64_t base;
};
struct dmar_acpi_rmrr {
	uint32_t offset;
	uint16_t segment;
	uint64_t base;
	uint64_t limit;       /* inclusive */
};
struct dmar_acpi_atsr {
	uint32_t offset;
	uint8_t flags;        /* DMAR_ATSR_ALL_PORTS */
	uint16_t segment;
};
struct dmar_acpi_rhsa {
	uint32_t offset;
	uint64_t base;
	uint32_t proximity_domain;
};
#define DMAR_ACPI_ANDD_NAME_MAX 128u
struct dmar_acpi_andd {
	uint32_t offset;
	uint8_t device;       /* ACPI device number, the enumeration id of ACPI scopes */
	char name[DMAR_ACPI_ANDD_NAME_MAX]; /* object name, truncated and NUL-terminated */
};
struct dmar_acpi_satc {
	uint32_t offset;
	uint8_t flags;        /* DMAR_SATC_ATC_REQUIRED */
	uint16_t segment;
};
struct dmar_acpi_sidp {
	uint32_t offset;
	uint16_t segment;
};
/* The i-th structure of that type, in table order. */
int dmar_acpi_drhd_get(const struct dmar_acpi_table *t, unsigned i, struct dmar_acpi_drhd *out);
int dmar_acpi_rmrr_get(const struct dmar_acpi_table *t, unsigned i, struct dmar_acpi_rmrr *out);
int dmar_acpi_atsr_get(const struct dmar_acpi_table *t, unsigned i, struct dmar_acpi_atsr *out);
int dmar_acpi_rhsa_get(const struct dmar_acpi_table *t, unsigned i, struct dmar_acpi_rhsa *out);
int dmar_acpi_andd_get(const struct dmar_acpi_table *t, unsigned i, struct dmar_acpi_andd *out);
int dmar_acpi_satc_get(const struct dmar_acpi_table *t, unsigned i, struct dmar_acpi_satc *out);
int dmar_acpi_sidp_get(const struct dmar_acpi_table *t, unsigned i, struct dmar_acpi_sidp *out);

/* Device scopes of one structure (DRHD, RMRR, ATSR, SATC, SIDP; others have none). */
#define DMAR_ACPI_MAX_PATH 124u      /* (255 - 6) / 2 */
struct dmar_acpi_scope {
	uint32_t offset;
	uint8_t type;          /* enum dmar_acpi_scope_type (or an unknown value) */
	uint8_t length;
	uint8_t flags;         /* byte 2: scope flags (SIDP), else 0 */
	uint8_t enum_id;       /* IOAPIC id, HPET number, ACPI device number */
	uint8_t start_bus;
	uint8_t npath;
	struct { uint8_t dev, fn; } path[DMAR_ACPI_MAX_PATH];
};
struct dmar_acpi_scope_iter {
	const struct dmar_acpi_table *t;
	uint32_t next, end;
};
/* Starts iterating the scopes of the structure at byte `struct_offset` (as reported by a
 * getter); DMAR_EINVAL if no structure with scopes starts there. */
int dmar_acpi_scope_begin(const struct dmar_acpi_table *t, uint32_t struct_offset,
			  struct dmar_acpi_scope_iter *it);
/* Fills *out with the next scope; false at the end. */
bool dmar_acpi_scope_next(struct dmar_acpi_scope_iter *it, struct dmar_acpi_scope *out);

/* Device lookup. The callback returns the secondary bus number of the bridge at
 * (seg, bus, dev, fn), or -1 when unknown (no such bridge); when it knows the
 * subordinate bus number it also stores it in *subordinate (left alone, only the
 * secondary bus counts as below the bridge), so that devices deeper below a
 * sub-hierarchy scope match too. */
typedef int (*dmar_acpi_secondary_bus_fn)(void *ctx, uint16_t seg, uint8_t bus, uint8_t dev,
					   uint8_t fn, uint8_t *subordinate);

/* Does the scope name the device (an endpoint scope resolving to it, or a bridge scope
 * resolving to the bridge itself or to a bus range containing the device's bus)? Path
 * entries before the last are bridges walked with `cb` (8.3.1); a NULL cb resolves only
 * one-entry paths. */
bool dmar_acpi_scope_matches(const struct dmar_acpi_scope *s, uint16_t seg, uint8_t bus,
			     uint8_t dev, uint8_t fn, uint16_t scope_seg,
			     dmar_acpi_secondary_bus_fn cb, void *cb_ctx);

/* The DRHD covering a PCI device: one whose endpoint/bridge scope names it, else the
 * segment's INCLUDE_PCI_ALL DRHD. Stores its DRHD index; DMAR_ENODEV if none. */
int dmar_acpi_device_unit(const struct dmar_acpi_table *t, uint16_t seg, uint8_t bus,
			  uint8_t dev, uint8_t fn, dmar_acpi_secondary_bus_fn cb, void *cb_ctx,
			  unsigned *drhd_index);

/* RMRRs naming a device: start with *cursor = 0; each call searches from RMRR index
 * *cursor, fills *out with the next RMRR whose scope names the device, sets *cursor to its
 * index + 1 and returns 0; DMAR_ENOENT when there are no more. */
int dmar_acpi_device_rmrr_next(const struct dmar_acpi_table *t, uint16_t seg, uint8_t bus,
			       uint8_t dev, uint8_t fn, dmar_acpi_secondary_bus_fn cb,
			       void *cb_ctx, unsigned *cursor, struct dmar_acpi_rmrr *out);

/* Names and text. */
const char *dmar_acpi_type_name(unsigned type);          /* "DRHD", ..., "unknown" */
const char *dmar_acpi_scope_type_name(unsigned type);    /* "endpoint", ..., "unknown" */
const char *dmar_acpi_finding_name(unsigned code);       /* stable short name, "rmrr-overlap" */
const char *dmar_acpi_finding_text(unsigned code);       /* one English sentence */
/* "0x78 rmrr-unaligned: <text> (value 0x...)" into buf; returns the full length. */
int dmar_acpi_finding_format(const struct dmar_acpi_finding *f, char *buf, size_t len);

#endif
