/*
 * irte.c - interrupt remapping entries and messages as bits (VT-d 5.1.2, 5.1.5, 9.10).
 * Pure encoding and decoding; ir.c programs the table and the unit with them.
 */
#include "irte.h"

#include "dmar/error.h"
#include "regs.h"
#include "lib/util.h"

int dmar__irte_check_target(const struct dmar_irq_target *t, unsigned count, bool eim)
{
	/* Vectors 0-15 are the CPU's exceptions and reserved ones: never an interrupt. */
	if (!t || count == 0 || t->vector < 16 || (unsigned)t->vector + count - 1u > 255u)
		return DMAR_EINVAL;
	if (!eim && t->dest > 0xffu)
		return DMAR_ERANGE;
	return DMAR_OK;
}

uint64_t dmar__irte_lo(const struct dmar_irq_target *t, unsigned vector, bool eim)
{
	uint64_t lo = VTD_IRTE_LO_P | VTD_IRTE_LO_V(vector) |
		      VTD_IRTE_LO_DLM(t->lowest_priority ? VTD_DLM_LOWPRI : VTD_DLM_FIXED);

	if (t->logical)
		lo |= VTD_IRTE_LO_DM;
	if (t->level)
		lo |= VTD_IRTE_LO_TM;
	/* Lowest priority lets the chipset pick among the destinations: the hint says
	 * so (RH=1), as Linux and FreeBSD program it. */
	if (t->lowest_priority)
		lo |= VTD_IRTE_LO_RH;
	return lo | (eim ? VTD_IRTE_LO_DST(t->dest) : VTD_IRTE_LO_DST_XAPIC(t->dest));
}

uint64_t dmar__irte_hi(unsigned svt, unsigned sq, uint16_t sid)
{
	return VTD_IRTE_HI_SVT(svt) | VTD_IRTE_HI_SQ(sq) | VTD_IRTE_HI_SID(sid);
}

bool dmar__irte_sid_ok(uint64_t hi, uint16_t sid)
{
	/* SQ: which low bits of the requester id are ignored (9.10). */
	static const uint16_t sq_mask[4] = { 0xffff, 0xfffb, 0xfff9, 0xfff8 };
	uint16_t want = VTD_IRTE_HI_SID_GET(hi);
	unsigned bus = sid >> 8;

	switch (VTD_IRTE_HI_SVT_GET(hi)) {
	case VTD_SVT_NONE:
		return true;
	case VTD_SVT_SID: {
		uint16_t mask = sq_mask[VTD_IRTE_HI_SQ_GET(hi)];
		return (sid & mask) == (want & mask);
	}
	case VTD_SVT_BUS:
		return bus >= (unsigned)(want >> 8) && bus <= (unsigned)(want & 0xffu);
	default:
		return false;
	}
}

uint64_t dmar__ir_msi_address(unsigned handle, bool shv)
{
	return VTD_MSI_ADDR_BASE | VTD_MSI_ADDR_HANDLE((uint64_t)handle) | VTD_MSI_ADDR_IF |
	       (shv ? VTD_MSI_ADDR_SHV : 0);
}

uint64_t dmar__ir_ioapic_rte(unsigned index, unsigned vector, bool level, bool active_low,
			     bool masked)
{
	uint64_t rte = VTD_RTE_FORMAT_REMAP | VTD_RTE_INDEX(index) | VTD_RTE_VECTOR(vector);

	if (index & 0x8000u)
		rte |= VTD_RTE_INDEX15;
	if (level)
		rte |= VTD_RTE_TRIGGER_LEVEL;
	if (active_low)
		rte |= VTD_RTE_POLARITY_LOW;
	if (masked)
		rte |= VTD_RTE_MASK;
	return rte;
}

static const char *dlm_name(unsigned dlm)
{
	static const char *const names[8] = { "fixed", "lowest priority", "SMI", "reserved 3",
					      "NMI", "INIT", "reserved 6", "ExtINT" };
	return names[dlm & 7u];
}

int dmar__irte_source_text(uint64_t hi, char *buf, size_t len)
{
	uint16_t sid = VTD_IRTE_HI_SID_GET(hi);

	switch (VTD_IRTE_HI_SVT_GET(hi)) {
	case VTD_SVT_NONE:
		return dmar__snprintf(buf, len, "every requester (SVT 0)");
	case VTD_SVT_SID:
		if (VTD_IRTE_HI_SQ_GET(hi) == VTD_SQ_ALL)
			return dmar__snprintf(buf, len, "requester id 0x%04x (SVT 1)", sid);
		return dmar__snprintf(buf, len, "requester id 0x%04x with its low %u bit(s) "
					       "ignored (SVT 1, SQ %u)", sid,
				      (unsigned)VTD_IRTE_HI_SQ_GET(hi),
				      (unsigned)VTD_IRTE_HI_SQ_GET(hi));
	case VTD_SVT_BUS:
		return dmar__snprintf(buf, len, "buses 0x%02x-0x%02x (SVT 2)", sid >> 8,
				      sid & 0xffu);
	default:
		return dmar__snprintf(buf, len, "nothing (SVT 3 is reserved)");
	}
}

int dmar__irte_format(uint64_t lo, uint64_t hi, bool eim, char *buf, size_t len)
{
	char src[80];
	uint32_t dest = eim ? VTD_IRTE_LO_DST_GET(lo) : VTD_IRTE_LO_DST_XAPIC_GET(lo);

	if (!(lo & VTD_IRTE_LO_P))
		return dmar__snprintf(buf, len, "not present%s",
				      (lo & VTD_IRTE_LO_FPD) ? " (FPD: faults not recorded)" : "");
	dmar__irte_source_text(hi, src, sizeof(src));
	return dmar__snprintf(buf, len,
			      "present, vector 0x%02x to APIC 0x%x (%s, %s, %s%s), admits %s%s",
			      (unsigned)VTD_IRTE_LO_V_GET(lo), (unsigned)dest,
			      (lo & VTD_IRTE_LO_DM) ? "logical" : "physical",
			      dlm_name((unsigned)VTD_IRTE_LO_DLM_GET(lo)),
			      (lo & VTD_IRTE_LO_TM) ? "level" : "edge",
			      (lo & VTD_IRTE_LO_RH) ? ", redirection hint" : "", src,
			      (lo & VTD_IRTE_LO_FPD) ? "; FPD: faults not recorded" : "");
}

int dmar__irte_reserved_text(uint64_t lo, uint64_t hi, bool eim, char *buf, size_t len)
{
	size_t used = 0;
	unsigned dlm = (unsigned)VTD_IRTE_LO_DLM_GET(lo);
	struct {
		bool set;
		const char *what;
	} f[] = {
		{ (lo & VTD_IRTE_LO_RSVD) != 0, "reserved low bits (14:12, 31:24)" },
		{ (lo & VTD_IRTE_LO_IM) != 0, "IM (posted format)" },
		{ !eim && (lo & VTD_IRTE_LO_RSVD_XAPIC) != 0,
		  "destination bits outside the xAPIC id (no extended interrupt mode)" },
		{ dlm == 3 || dlm == 6, "a reserved delivery mode" },
		{ VTD_IRTE_HI_SVT_GET(hi) == 3, "SVT 3 (reserved)" },
		{ (hi & VTD_IRTE_HI_RSVD) != 0, "reserved high bits (127:84)" },
	};

	if (len)
		buf[0] = '\0';
	for (size_t i = 0; i < DMAR_ARRAY_SIZE(f); i++) {
		if (!f[i].set)
			continue;
		used += (size_t)dmar__snprintf(used < len ? buf + used : NULL,
					       used < len ? len - used : 0, "%s%s",
					       used ? ", " : "", f[i].what);
	}
	return (int)used;
}
