/*
 * Register-based invalidation (VT-d 6.5.1): CCMD, and IVA/IOTLB at ECAP.IRO. Each request
 * is complete when its ICC/IVT bit clears; the wait is bounded by the timeout.
 */
#include "dmar_internal.h"

static int reg_context(struct dmar_unit *u, unsigned gran, uint16_t did, uint16_t sid,
		       unsigned fm)
{
	dmar__unit_write64(u, VTD_CCMD_REG,
		     VTD_CCMD_ICC | VTD_CCMD_CIRG(gran) | VTD_CCMD_FM(fm) | VTD_CCMD_SID(sid) |
			     VTD_CCMD_DID(did));
	int rc = dmar__unit_wait(u, VTD_CCMD_REG, true, VTD_CCMD_ICC, 0,
				 "context-cache invalidation");
	if (rc)
		return rc;
	if (VTD_CCMD_CAIG(dmar__unit_read64(u, VTD_CCMD_REG)) == 0) {
		dmar__log(u->sys, DMAR_LOG_ERR, "dmar%u: context-cache invalidation rejected",
			 u->index);
		return DMAR_EHW;
	}
	return DMAR_OK;
}

static int reg_iotlb(struct dmar_unit *u, unsigned gran, uint16_t did, uint64_t addr,
		     unsigned am, bool ih)
{
	uint64_t cmd = VTD_IOTLB_IVT | VTD_IOTLB_IIRG(gran);
	if (gran != VTD_IOTLB_GLOBAL)
		cmd |= VTD_IOTLB_DID(did);
	if (u->cap & VTD_CAP_DRD)
		cmd |= VTD_IOTLB_DR;
	if (u->cap & VTD_CAP_DWD)
		cmd |= VTD_IOTLB_DW;
	if (gran == VTD_IOTLB_PAGE)
		dmar__unit_write64(u, u->iotlb_off + VTD_IVA_OFF,
			     (addr & VTD_IVA_ADDR_MASK) | VTD_IVA_AM(am) | (ih ? VTD_IVA_IH : 0));
	dmar__unit_write64(u, u->iotlb_off + VTD_IOTLB_OFF, cmd);
	int rc = dmar__unit_wait(u, u->iotlb_off + VTD_IOTLB_OFF, true, VTD_IOTLB_IVT, 0,
			   "IOTLB invalidation");
	if (rc)
		return rc;
	if (VTD_IOTLB_IAIG(dmar__unit_read64(u, u->iotlb_off + VTD_IOTLB_OFF)) == 0) {
		dmar__log(u->sys, DMAR_LOG_ERR, "dmar%u: IOTLB invalidation rejected", u->index);
		return DMAR_EHW;
	}
	return DMAR_OK;
}

static int reg_sync(struct dmar_unit *u)
{
	(void)u;
	return DMAR_OK;
}

const struct inval_backend dmar__inval_reg_backend = {
	.name = "register-based",
	.context = reg_context,
	.iotlb = reg_iotlb,
	.sync = reg_sync,
};
