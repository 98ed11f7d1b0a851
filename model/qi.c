/*
 * qi.c - queued invalidation (VT-d 6.5.2): the ring at IQA (2^QS pages of 128-bit
 * descriptors), IQH/IQT, and the descriptors a legacy-mode driver issues: context-cache,
 * IOTLB, device-TLB, interrupt-entry-cache and invalidation wait (status write, fence,
 * interrupt flag). A descriptor with an unknown type, a reserved bit set, an invalid
 * granularity or mask (an IEC mask beyond ECAP.MHMV), or one the configuration does not
 * support sets FSTS.IQE; IQH then points
 * at it and the queue stops until software clears IQE.
 */
#include "model_impl.h"

/* Reserved bits of each legacy descriptor type (lo, hi); type bits 11:9 included. */
#define CC_RSVD_LO 0xfffc00000000ffc0ull
#define IOTLB_RSVD_LO 0xffffffff0000ff00ull
#define IOTLB_RSVD_HI 0xf80ull
#define IEC_RSVD_LO 0xffff000007ffffe0ull
#define WAIT_RSVD_LO 0x00000000ffffff00ull
#define WAIT_RSVD_HI 0x3ull
#define DEVTLB_RSVD_LO 0xff0ull
#define DEVTLB_RSVD_HI 0xffeull

static bool wait_desc(struct model *m, uint64_t lo, uint64_t hi)
{
	uint32_t status = (uint32_t)(lo >> 32);

	if ((lo & WAIT_RSVD_LO) || (hi & WAIT_RSVD_HI))
		return false;
	m->stats.qi_wait++;
	/* Descriptors complete in order here, so the fence (FN) needs nothing more. */
	if ((lo & VTD_INV_WAIT_SW) &&
	    m->ops.write(m->ctx, hi & VTD_INV_WAIT_HI_ADDR_MASK, &status, sizeof(status),
			 MODEL_MEM_STATUS) != 0)
		return false;
	if (lo & VTD_INV_WAIT_IF) {
		if (!(reg32(m, VTD_ICS_REG) & (uint32_t)VTD_ICS_IWC)) {
			set_reg32(m, VTD_ICS_REG, (uint32_t)VTD_ICS_IWC);
			dmar__mdl_event(m, MODEL_IRQ_INVAL);
		}
	}
	return true;
}

/* Carries out one descriptor; false when it is invalid. */
static bool run_desc(struct model *m, uint64_t lo, uint64_t hi)
{
	unsigned type = (unsigned)VTD_INV_TYPE(lo), g = (unsigned)VTD_INV_G_GET(lo);

	switch (type) {
	case VTD_INV_CC:
		if ((lo & CC_RSVD_LO) || hi || g == 0)
			return false;
		dmar__mdl_cc_invalidate(m, g, (uint16_t)VTD_GET(lo, 16, 16),
					(uint16_t)VTD_GET(lo, 32, 16),
			      (unsigned)VTD_GET(lo, 48, 2));
		return true;
	case VTD_INV_IOTLB:
		if ((lo & IOTLB_RSVD_LO) || (hi & IOTLB_RSVD_HI) || g == 0)
			return false;
		return dmar__mdl_iotlb_invalidate(m, g, (uint16_t)VTD_GET(lo, 16, 16),
					hi & VTD_IVA_ADDR_MASK, (unsigned)VTD_GET(hi, 0, 6),
					(hi & VTD_INV_IOTLB_HI_IH) != 0) != 0;
	case VTD_INV_DEVTLB:
		/* No device-TLB is modelled; the descriptor is checked and counted. */
		return m->cfg.dt && !(lo & DEVTLB_RSVD_LO) && !(hi & DEVTLB_RSVD_HI);
	case VTD_INV_IEC:
		/* G (bit 4): 0 global, 1 index-selective; IM may not exceed ECAP.MHMV. */
		if (!m->cfg.ir || (lo & IEC_RSVD_LO) || hi != 0 ||
		    VTD_INV_IEC_IM_GET(lo) > m->cfg.mhmv)
			return false;
		dmar__mdl_iec_invalidate(m, !(lo & VTD_INV_IEC_G_INDEX), VTD_INV_IEC_IIDX_GET(lo),
					 (unsigned)VTD_INV_IEC_IM_GET(lo));
		return true;
	case VTD_INV_WAIT:
		return wait_desc(m, lo, hi);
	default:
		return false;
	}
}

void dmar__mdl_qi_process(struct model *m)
{
	uint64_t iqa = reg64(m, VTD_IQA_REG);
	uint64_t base = iqa & VTD_IQA_ADDR_MASK;
	uint32_t size = 256u << VTD_IQA_QS(iqa);
	uint32_t head = (uint32_t)(reg64(m, VTD_IQH_REG) >> VTD_IQ_INDEX_SHIFT);
	uint32_t tail = (uint32_t)((reg64(m, VTD_IQT_REG) & VTD_IQ_INDEX_MASK) >> VTD_IQ_INDEX_SHIFT);

	if (!(reg32(m, VTD_GSTS_REG) & (uint32_t)VTD_GSTS_QIES) ||
	    (reg32(m, VTD_FSTS_REG) & (uint32_t)VTD_FSTS_IQE))
		return;
	if (head >= size || tail >= size || (iqa & VTD_IQA_DW)) {
		/* A tail beyond the ring, or 256-bit descriptors without scalable mode. */
		dmar__mdl_fault_raise_iqe(m);
		return;
	}
	while (head != tail) {
		uint64_t d[2];

		if (m->ops.read(m->ctx, base + (uint64_t)head * 16u, d, sizeof(d), MODEL_MEM_QI) != 0 ||
		    !run_desc(m, d[0], d[1])) {
			dmar__mdl_fault_raise_iqe(m);
			break;
		}
		m->stats.qi_desc[VTD_INV_TYPE(d[0]) & 7u]++;
		head = (head + 1u) % size;
		set_reg64(m, VTD_IQH_REG, (uint64_t)head << VTD_IQ_INDEX_SHIFT);
	}
}
