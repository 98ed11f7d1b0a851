/*
 * fault_reason.c - what each VT-d fault reason code means (specification 7.1.3 and the
 * fault-condition tables of chapter 7).
 *
 * Three families share the 8-bit FRCD.FR field:
 *   0x01-0x0D  legacy-mode DMA remapping (root, context and second-level entries)
 *   0x20-0x27  interrupt remapping (the request, the IRTE, the posted descriptor)
 *   0x30-0x91  scalable-mode DMA remapping, grouped by the structure the walk was at:
 *              0x30 root-table pointer, 0x38 root entry, 0x40 context entry,
 *              0x50 PASID directory, 0x58 PASID table, 0x70 first-stage and
 *              second-stage paging entries, 0x80 the request against the final
 *              permissions and addresses, 0x90 accessed/dirty updates.
 * Codes between the groups are reserved. The texts paraphrase the conditions; the code
 * assignments follow the specification as Linux (dma_remap_sm_fault_reasons) and QEMU
 * (VTDFaultReason) use them.
 */
#include <dmar/fault_reason.h>

#include "regs.h"
#include "lib/util.h"

struct reason {
	unsigned code;
	enum dmar_fault_kind kind;
	const char *text;
};

#define DMA DMAR_FAULT_KIND_DMA
#define INTR DMAR_FAULT_KIND_INTR
#define SM DMAR_FAULT_KIND_SCALABLE

/* Sorted by code. */
static const struct reason reasons[] = {
	/* Legacy mode. */
	{VTD_FR_ROOT_NOT_PRESENT, DMA,
	 "present (P) field of the root entry used for the request is clear"},
	{VTD_FR_CTX_NOT_PRESENT, DMA,
	 "present (P) field of the context entry used for the request is clear"},
	{VTD_FR_CTX_INVALID, DMA,
	 "invalid programming of a present context entry (e.g. reserved TT value, "
	 "unsupported address width, TT=2 without pass-through support)"},
	{VTD_FR_ADDR_BEYOND_AW, DMA,
	 "input address is above 2^X - 1, X being the address width of the domain "
	 "(context entry AW) or the unit's MGAW"},
	{VTD_FR_WRITE, DMA,
	 "write request to a page whose paging entry does not grant write (W) permission"},
	{VTD_FR_READ, DMA,
	 "read request to a page whose paging entry does not grant read (R) permission"},
	{VTD_FR_PAGING_ENTRY_ERR, DMA,
	 "error accessing a second-level paging entry (its table address is invalid)"},
	{VTD_FR_ROOT_ACCESS_ERR, DMA,
	 "error accessing the root table through the root-table address (RTADDR_REG)"},
	{VTD_FR_CTX_ACCESS_ERR, DMA,
	 "error accessing a context table through the context-table pointer of a root entry"},
	{VTD_FR_ROOT_RSVD, DMA, "reserved field set in a present root entry"},
	{VTD_FR_CTX_RSVD, DMA, "reserved field set in a present context entry"},
	{VTD_FR_PAGING_RSVD, DMA,
	 "reserved field set in a second-level paging entry with read or write permission "
	 "(or a large-page bit the unit does not support)"},
	{VTD_FR_TT_BLOCKED, DMA,
	 "translation or translated request blocked by the translation type (TT) of the "
	 "present context entry"},
	{0x0e, DMA,
	 "request to the interrupt address range (0xFEEx_xxxx) that is not a valid "
	 "interrupt request (a read, or a translated or malformed write there)"},

	/* Interrupt remapping. */
	{0x20, INTR, "reserved field set in a remappable interrupt request as decoded"},
	{0x21, INTR,
	 "interrupt index of the request exceeds the interrupt-remapping table size (IRTA.S)"},
	{0x22, INTR, "present (P) field of the interrupt-remapping table entry is clear"},
	{0x23, INTR, "error accessing the interrupt-remapping table through IRTA_REG"},
	{0x24, INTR, "reserved field set in a present interrupt-remapping table entry"},
	{0x25, INTR,
	 "compatibility-format interrupt blocked (extended interrupt mode on, or "
	 "compatibility format interrupts disabled)"},
	{0x26, INTR,
	 "remappable interrupt blocked by source-id verification (IRTE SVT/SQ/SID)"},
	{0x27, INTR, "error accessing the posted-interrupt descriptor referenced by an IRTE"},

	/* Scalable mode: the root-table pointer. */
	{0x30, SM, "root table address in RTADDR_REG is invalid (the root table cannot be read)"},
	{0x31, SM, "invalid translation table mode (TTM) programmed in RTADDR_REG"},
	{0x32, SM,
	 "page request received while RTADDR_REG selects legacy mode (TTM 00b), which has "
	 "no page requests"},
	/* Scalable mode: the root entry. */
	{0x38, SM, "error accessing the scalable-mode root entry"},
	{0x39, SM,
	 "present field for the requested half (lower or upper context table) of the "
	 "scalable-mode root entry is clear"},
	{0x3a, SM, "reserved field set in a present scalable-mode root entry"},
	/* Scalable mode: the context entry. */
	{0x40, SM, "error accessing the scalable-mode context entry"},
	{0x41, SM, "present (P) field of the scalable-mode context entry is clear"},
	{0x42, SM, "reserved field set in a present scalable-mode context entry"},
	{0x43, SM,
	 "invalid programming of a present scalable-mode context entry (e.g. a PASID "
	 "directory size or feature the unit does not support)"},
	{0x44, SM,
	 "translation request or translated request while device-TLB support (DTE) of the "
	 "context entry is clear"},
	{0x45, SM, "request with a PASID while PASID enable (PASIDE) of the context entry is clear"},
	{0x46, SM,
	 "PASID of the request is beyond the PASID directory size (PDTS) of the context entry"},
	{0x47, SM,
	 "page request enable (PRE) is clear in a present scalable-mode context entry"},
	{0x48, SM,
	 "request without a PASID, and the RID_PASID field of the context entry is invalid"},
	/* Scalable mode: the PASID directory entry. */
	{0x50, SM, "error accessing a PASID directory entry"},
	{0x51, SM, "present (P) field of the PASID directory entry is clear"},
	{0x52, SM, "reserved field set in a present PASID directory entry"},
	/* Scalable mode: the PASID table entry. */
	{0x58, SM, "error accessing a PASID table entry"},
	{0x59, SM, "present (P) field of the PASID table entry is clear"},
	{0x5a, SM, "reserved field set in a present PASID table entry"},
	{0x5b, SM, "invalid programming of a present PASID table entry"},
	{0x5c, SM,
	 "request asks for execute permission while execute requests enable (ERE) of the "
	 "PASID table entry is clear"},
	{0x5d, SM,
	 "request with supervisor privilege while supervisor requests enable (SRE) of the "
	 "PASID table entry is clear"},
	/* Scalable mode: first-stage and second-stage paging entries. */
	{0x70, SM, "error accessing a first-stage (first-level) paging entry"},
	{0x71, SM, "present (P) field of a first-stage paging entry is clear"},
	{0x72, SM, "reserved field set in a present first-stage paging entry"},
	{0x73, SM,
	 "error accessing the top first-stage table through the PASID entry's first-stage "
	 "pointer (invalid pointer)"},
	{0x74, SM,
	 "nested translation: address in a first-stage entry is beyond the second stage's "
	 "address width"},
	{0x75, SM,
	 "nested translation: the second stage does not grant read access to the top "
	 "first-stage table"},
	{0x76, SM,
	 "nested translation: the second stage does not grant read access to a first-stage "
	 "paging entry"},
	{0x77, SM,
	 "nested translation: the second stage does not grant write access to a first-stage "
	 "paging entry whose accessed/dirty bit must be set"},
	{0x78, SM, "error accessing a second-stage (second-level) paging entry"},
	{0x79, SM,
	 "second-stage paging entry does not grant the read or write permission the request "
	 "(or the walk) needs"},
	{0x7a, SM, "reserved field set in a present second-stage paging entry"},
	{0x7b, SM,
	 "invalid second-stage page-table pointer in the PASID table entry"},
	{0x7c, SM,
	 "accessed/dirty bit of a second-stage entry needs setting, but the walk was set up "
	 "as non-snooped"},
	/* Scalable mode: the request against the final translation. */
	{0x80, SM, "input address is not canonical for first-stage translation"},
	{0x81, SM,
	 "user-privilege request to a page the first stage marks supervisor-only (U/S "
	 "clear)"},
	{0x82, SM, "execute request to a page without execute permission"},
	{0x83, SM, "input address is beyond the address width the unit supports"},
	{0x84, SM,
	 "output address of a second-stage entry is beyond the address width the unit "
	 "supports"},
	{0x85, SM,
	 "write or atomic request to a page without write permission (scalable mode)"},
	{0x86, SM,
	 "read or atomic request to a page without read permission (scalable mode)"},
	{0x87, SM,
	 "translated address falls in the interrupt address range (0xFEEx_xxxx)"},
	/* Scalable mode: accessed/dirty updates. */
	{0x90, SM,
	 "accessed/dirty bit of a first-stage entry needs setting, but the walk was set up "
	 "as non-snooped"},
	{0x91, SM, "the unit failed to set the accessed/dirty bit of a first-stage entry"},
};

#undef DMA
#undef INTR
#undef SM

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
