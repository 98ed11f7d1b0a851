/*
 * dmar/fault_reason.h - the VT-d specification's meaning of each fault reason code
 * (FRCD.FR, section 7.1.3 and the fault-condition tables of chapter 7): the legacy-mode
 * DMA-remapping codes 0x1-0xD, the interrupt-remapping codes 0x20-0x27 and the
 * scalable-mode codes 0x30-0x91 (root pointer, root and context entries, PASID
 * directory and table, first- and second-stage paging entries, final checks,
 * accessed/dirty updates; the list is in src/vtd/fault_reason.c).
 *
 * Pure, stateless, callable concurrently; never fails and never returns NULL (unknown
 * and reserved codes give "reserved/unknown" and DMAR_FAULT_KIND_UNKNOWN).
 */
#ifndef DMAR_FAULT_REASON_H
#define DMAR_FAULT_REASON_H

enum dmar_fault_kind {
	DMAR_FAULT_KIND_UNKNOWN = 0,
	DMAR_FAULT_KIND_DMA,        /* legacy-mode DMA remapping */
	DMAR_FAULT_KIND_INTR,       /* interrupt remapping */
	DMAR_FAULT_KIND_SCALABLE,   /* scalable-mode DMA remapping */
};

/* The condition the code stands for, in one lower-case phrase. */
const char *dmar_fault_reason_text(unsigned code);
enum dmar_fault_kind dmar_fault_reason_kind(unsigned code);
/* "DMA remapping", "interrupt remapping", "scalable-mode DMA remapping", "unknown". */
const char *dmar_fault_kind_name(enum dmar_fault_kind kind);

#endif
