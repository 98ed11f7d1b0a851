/*
 * explain_parse.h - recognises, one line at a time, the DMAR fault lines kernels have
 * printed: Linux since 2.6 (the old two-line form, the one-line form of 4.x/5.x with
 * decimal reasons, the 5.14+ form with NO_PASID/PASID and 0x numbers), Xen's two-line
 * form, and this library's own fault log line (src/vtd/fault.c). Timestamps, syslog
 * and journal prefixes, printk levels are skipped because the markers are searched
 * anywhere in the line.
 *
 * Pure: no I/O, no state, no allocation; safe to call concurrently.
 */
#ifndef EXPLAIN_PARSE_H
#define EXPLAIN_PARSE_H

#include <stdbool.h>
#include <stdint.h>

enum ex_line_kind {
	EX_OTHER = 0,      /* not a line this parser knows: skipped by the caller */
	EX_FAULT,          /* a whole fault on one line */
	EX_FAULT_HEAD,     /* first line of a two-line fault; the reason line follows */
	EX_REASON,         /* the reason line of a two-line fault */
	EX_STATUS,         /* Linux "DRHD: handling fault status reg N" (N in hex) */
	EX_SUPPRESSED,     /* Linux "dmar_fault: N callbacks suppressed" */
};

enum ex_request { EX_REQ_WRITE, EX_REQ_READ, EX_REQ_INTR };

enum ex_format {
	EX_FMT_LINUX,      /* one line, Linux 4.x and later */
	EX_FMT_LINUX_OLD,  /* two lines, Linux before 4.x */
	EX_FMT_XEN,        /* two lines, Xen */
	EX_FMT_DMAR,       /* this library's own log line */
};

struct ex_fault {
	enum ex_format format;
	enum ex_request request;
	bool has_segment;       /* the line named the PCI segment */
	uint16_t segment;
	uint8_t bus, dev, fn;
	uint64_t addr;          /* DMA: the faulting page address; interrupt: the index */
	bool has_pasid;
	uint32_t pasid;
	int reason;             /* 0..255, or -1 while (or when) the log does not say */
	int unit;               /* the library's unit number ("dmar3: ..."), else -1 */
};

struct ex_line {
	enum ex_line_kind kind;
	struct ex_fault fault;  /* EX_FAULT, EX_FAULT_HEAD */
	int reason;             /* EX_REASON */
	uint64_t value;         /* EX_STATUS: the register value; EX_SUPPRESSED: the count */
};

/* Classifies one line (without its newline). Never fails: unknown or damaged lines
 * are EX_OTHER. Reason numbers written without "0x" are decimal in Linux lines (the
 * kernel printed them with %02d until 5.14) and hexadecimal in Xen lines. */
void explain_parse_line(const char *line, struct ex_line *out);

/* "linux", "linux-old", "xen", "dmar". */
const char *explain_format_name(enum ex_format f);

#endif
