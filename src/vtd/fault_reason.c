/*
 * fault_reason.c - what each VT-d fault reason code means (specification 7.1.3).
 * The texts paraphrase the specification's tables; scalable-mode codes are only those
 * whose meaning is established (as QEMU's model also uses them).
 */
#include <dmar/fault_reason.h>

#include "regs.h"
#include "lib/util.h"

struct reason {
	unsigned code;
	enum dmar_fault_kind kind;
	const char *text;
};

static const struct reason reasons[] = {
	{VTD_FR_ROOT_NOT_PRESENT, DMAR_FAULT_KIND_DMA,
	 "present (P) field of the root entry used for the request is clear"},
	{VTD_FR_CTX_NOT_PRESENT, DMAR_FAULT_KIND_DMA,
	 "present (P) field of the context entry used for the request is clear"},
	{VTD_FR_CTX_INVALID, DMAR_FAULT_KIND_DMA,
	 "invalid programming of a present context entry (e.g. reserved TT value, "
	 "unsupported address width, TT=2 without pass-through support)"},
	{VTD_FR_ADDR_BEYOND_AW, DMAR_FAULT_KIND_DMA,
	 "input address is above 2^X - 1, X being the address width of the domain "
	 "(context entry AW) or the unit's MGAW"},
	{VTD_FR_WRITE, DMAR_FAULT_KIND_DMA,
	 "write request to a page whose paging entry does not grant write (W) permission"},
	{VTD_FR_READ, DMAR_FAULT_KIND_DMA,
	 "read request to a page whose paging entry does not grant read (R) permission"},
	{VTD_FR_PAGING_ENTRY_ERR, DMAR_FAULT_KIND_DMA,
	 "error accessing a second-level paging entry (its table address is invalid)"},
	{VTD_FR_ROOT_ACCESS_ERR, DMAR_FAULT_KIND_DMA,
	 "error accessing the root table through the root-table address (RTADDR_REG)"},
	{VTD_FR_CTX_ACCESS_ERR, DMAR_FAULT_KIND_DMA,
	 "error accessing a context table through the context-table pointer of a root entry"},
	{VTD_FR_ROOT_RSVD, DMAR_FAULT_KIND_DMA, "reserved field set in a present root entry"},
	{VTD_FR_CTX_RSVD, DMAR_FAULT_KIND_DMA, "reserved field set in a present context entry"},
	{VTD_FR_PAGING_RSVD, DMAR_FAULT_KIND_DMA,
	 "reserved field set in a second-level paging entry with read or write permission "
	 "(or a large-page bit the unit does not support)"},
	{VTD_FR_TT_BLOCKED, DMAR_FAULT_KIND_DMA,
	 "translation or translated request blocked by the translation type (TT) of the "
	 "present context entry"},
	{0x20, DMAR_FAULT_KIND_INTR,
	 "reserved field set in a remappable interrupt request as decoded"},
	{0x21, DMAR_FAULT_KIND_INTR,
	 "interrupt index of the request exceeds the interrupt-remapping table size (IRTA.S)"},
	{0x22, DMAR_FAULT_KIND_INTR,
	 "present (P) field of the interrupt-remapping table entry is clear"},
	{0x23, DMAR_FAULT_KIND_INTR,
	 "error accessing the interrupt-remapping table through IRTA_REG"},
	{0x24, DMAR_FAULT_KIND_INTR,
	 "reserved field set in a present interrupt-remapping table entry"},
	{0x25, DMAR_FAULT_KIND_INTR,
	 "compatibility-format interrupt blocked (extended interrupt mode on, or "
	 "compatibility format interrupts disabled)"},
	{0x26, DMAR_FAULT_KIND_INTR,
	 "remappable interrupt blocked by source-id verification (IRTE SVT/SQ/SID)"},
	{0x27, DMAR_FAULT_KIND_INTR,
	 "error accessing the posted-interrupt descriptor referenced by an IRTE"},
	{0x31, DMAR_FAULT_KIND_SCALABLE,
	 "invalid translation table mode (TTM) programmed in RTADDR_REG"},
	{0x47, DMAR_FAULT_KIND_SCALABLE,
	 "page request enable (PRE) is clear in a present scalable-mode context entry"},
	{0x50, DMAR_FAULT_KIND_SCALABLE, "error accessing a PASID directory entry"},
	{0x51, DMAR_FAULT_KIND_SCALABLE, "present (P) field of the PASID directory entry is clear"},
	{0x58, DMAR_FAULT_KIND_SCALABLE, "error accessing a PASID table entry"},
	{0x59, DMAR_FAULT_KIND_SCALABLE, "present (P) field of the PASID table entry is clear"},
	{0x5b, DMAR_FAULT_KIND_SCALABLE,
	 "invalid programming of a present PASID table entry"},
	{0x87, DMAR_FAULT_KIND_SCALABLE,
	 "translated address falls in the interrupt address range (0xFEEx_xxxx)"},
};

static const struct reason *find(unsigned code)
{
	for (size_t i = 0; i < DMAR_ARRAY_SIZE(reasons); i++)
		if (reasons[i].code == code)
			return &reasons[i];
	return NULL;
}

const char *dmar_fault_reason_text(unsigned code)
{
	const struct reason *r = find(code);
	return r ? r->text : "reserved/unknown";
}

enum dmar_fault_kind dmar_fault_reason_kind(unsigned code)
{
	const struct reason *r = find(code);
	return r ? r->kind : DMAR_FAULT_KIND_UNKNOWN;
}

const char *dmar_fault_kind_name(enum dmar_fault_kind kind)
{
	switch (kind) {
	case DMAR_FAULT_KIND_DMA:
		return "DMA remapping";
	case DMAR_FAULT_KIND_INTR:
		return "interrupt remapping";
	case DMAR_FAULT_KIND_SCALABLE:
		return "scalable-mode DMA remapping";
	default:
		return "unknown";
	}
}
