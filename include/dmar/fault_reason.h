/*
 * dmar/fault_reason.h - the VT-d specification's meaning of each fault reason code
 * (FRCD.FR, section 7.1.3 and its tables): DMA-remapping codes 0x1-0xD, the
 * interrupt-remapping codes 0x20-0x27, and the scalable-mode codes listed in the source.
 *
 * Pure, stateless, callable concurrently; never fails and never returns NULL (unknown
 * codes give "reserved/unknown").
 */
#ifndef DMAR_FAULT_REASON_H
#define DMAR_FAULT_REASON_H

enum dmar_fault_kind {
	DMAR_FAULT_KIND_UNKNOWN = 0,
	DMAR_FAULT_KIND_DMA,        /* legacy-mode DMA remapping */
	DMAR_FAULT_KIND_INTR,       /* interrupt remapping */
	DMAR_FAULT_KIND_SCALABLE,   /* scalable-mode DMA remapping */
};

const char *dmar_fault_reason_text(unsigned code);
enum dmar_fault_kind dmar_fault_reason_kind(unsigned code);
/* "DMA remapping", "interrupt remapping", "scalable-mode DMA remapping", "unknown". */
const char *dmar_fault_kind_name(enum dmar_fault_kind kind);

#endif
