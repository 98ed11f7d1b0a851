/*
 * config.c - the unit's configuration and its CAP/ECAP encoding (VT-d 11.4.2, 11.4.3).
 */
#include "model_impl.h"
#include "util.h"

void dmar_model_config_default(struct model_config *cfg)
{
	/* QEMU 7.2 intel-iommu, default properties (aw-bits=39). */
	dmar_memset(cfg, 0, sizeof(*cfg));
	cfg->ver = 0x10;
	cfg->nd = 6;
	cfg->sagaw = VTD_SAGAW_39;
	cfg->mgaw = 39;
	cfg->sllps = 3;
	cfg->nfr = 1;
	cfg->fro = 0x22;
	cfg->psi = true;
	cfg->mamv = 18;
	cfg->dwd = true;
	cfg->drd = true;
	cfg->qi = true;
	cfg->ir = true;
	cfg->pt = true;
	cfg->iro = 0xf;
	cfg->mhmv = 0xf;
	cfg->iotlb_capacity = 1024;
}

uint64_t dmar_model_config_cap(const struct model_config *cfg)
{
	uint64_t cap = VTD_SET(0, 3, cfg->nd) | VTD_SET(8, 5, cfg->sagaw) |
		       VTD_SET(16, 6, cfg->mgaw - 1) | VTD_SET(24, 10, cfg->fro) |
		       VTD_SET(34, 4, cfg->sllps) | VTD_SET(40, 8, cfg->nfr - 1) |
		       VTD_SET(48, 6, cfg->mamv);

	if (cfg->afl)
		cap |= VTD_CAP_AFL;
	if (cfg->rwbf)
		cap |= VTD_CAP_RWBF;
	if (cfg->plmr)
		cap |= VTD_CAP_PLMR;
	if (cfg->phmr)
		cap |= VTD_CAP_PHMR;
	if (cfg->cm)
		cap |= VTD_CAP_CM;
	if (cfg->zlr)
		cap |= VTD_CAP_ZLR;
	if (cfg->psi)
		cap |= VTD_CAP_PSI;
	if (cfg->dwd)
		cap |= VTD_CAP_DWD;
	if (cfg->drd)
		cap |= VTD_CAP_DRD;
	if (cfg->esirtps)
		cap |= VTD_CAP_ESIRTPS;
	return cap | cfg->cap_extra;
}

uint64_t dmar_model_config_ecap(const struct model_config *cfg)
{
	uint64_t ecap = VTD_SET(8, 10, cfg->iro) | VTD_SET(20, 4, cfg->mhmv);

	if (cfg->c)
		ecap |= VTD_ECAP_C;
	if (cfg->qi)
		ecap |= VTD_ECAP_QI;
	if (cfg->dt)
		ecap |= VTD_ECAP_DT;
	if (cfg->ir)
		ecap |= VTD_ECAP_IR;
	if (cfg->eim)
		ecap |= VTD_ECAP_EIM;
	if (cfg->pt)
		ecap |= VTD_ECAP_PT;
	if (cfg->sc)
		ecap |= VTD_ECAP_SC;
	return ecap | cfg->ecap_extra;
}

bool dmar_model_config_from_regs(uint32_t ver, uint64_t cap, uint64_t ecap,
				 struct model_config *cfg)
{
	dmar_model_config_default(cfg);
	cfg->ver = ver;
	cfg->nd = (unsigned)VTD_CAP_ND(cap);
	cfg->afl = (cap & VTD_CAP_AFL) != 0;
	cfg->rwbf = (cap & VTD_CAP_RWBF) != 0;
	cfg->plmr = (cap & VTD_CAP_PLMR) != 0;
	cfg->phmr = (cap & VTD_CAP_PHMR) != 0;
	cfg->cm = (cap & VTD_CAP_CM) != 0;
	cfg->sagaw = (unsigned)VTD_CAP_SAGAW(cap) &
		     (unsigned)(VTD_SAGAW_39 | VTD_SAGAW_48 | VTD_SAGAW_57);
	cfg->mgaw = (unsigned)VTD_CAP_MGAW(cap);
	cfg->zlr = (cap & VTD_CAP_ZLR) != 0;
	cfg->fro = (unsigned)VTD_CAP_FRO(cap);
	cfg->sllps = (unsigned)VTD_CAP_SLLPS(cap) & 3u;
	cfg->psi = (cap & VTD_CAP_PSI) != 0;
	cfg->nfr = (unsigned)VTD_CAP_NFR(cap);
	cfg->mamv = (unsigned)VTD_CAP_MAMV(cap);
	cfg->dwd = (cap & VTD_CAP_DWD) != 0;
	cfg->drd = (cap & VTD_CAP_DRD) != 0;
	cfg->esirtps = (cap & VTD_CAP_ESIRTPS) != 0;
	cfg->c = (ecap & VTD_ECAP_C) != 0;
	cfg->qi = (ecap & VTD_ECAP_QI) != 0;
	cfg->dt = (ecap & VTD_ECAP_DT) != 0;
	cfg->ir = (ecap & VTD_ECAP_IR) != 0;
	cfg->eim = (ecap & VTD_ECAP_EIM) != 0;
	cfg->pt = (ecap & VTD_ECAP_PT) != 0;
	cfg->sc = (ecap & VTD_ECAP_SC) != 0;
	cfg->iro = (unsigned)VTD_ECAP_IRO(ecap);
	cfg->mhmv = (unsigned)VTD_ECAP_MHMV(ecap);
	cfg->cap_extra = 0;
	cfg->ecap_extra = 0;
	cfg->cap_extra = cap & ~dmar_model_config_cap(cfg);
	cfg->ecap_extra = ecap & ~dmar_model_config_ecap(cfg);
	return dmar__mdl_config_valid(cfg);
}

uint32_t dmar_model_config_reg_size(const struct model_config *cfg)
{
	uint32_t end = 0x100;
	uint32_t iotlb_end = cfg->iro * 16u + 16u;
	uint32_t frcd_end = cfg->fro * 16u + cfg->nfr * VTD_FRCD_SIZE;

	if (iotlb_end > end)
		end = iotlb_end;
	if (frcd_end > end)
		end = frcd_end;
	return (end + 4095u) & ~4095u;
}

bool dmar__mdl_config_valid(const struct model_config *cfg)
{
	uint32_t iotlb = cfg->iro * 16u, frcd = cfg->fro * 16u;
	uint32_t frcd_end = frcd + cfg->nfr * VTD_FRCD_SIZE;

	if (cfg->nd > 6 || cfg->nfr < 1 || cfg->nfr > 256 || cfg->mgaw < 21 ||
	    cfg->mgaw > 64 || cfg->sllps > 3 || cfg->mamv > 52 || cfg->iro > 0x3ff ||
	    cfg->fro > 0x3ff || cfg->mhmv > 15)
		return false;
	if ((cfg->sagaw & ~(unsigned)(VTD_SAGAW_39 | VTD_SAGAW_48 | VTD_SAGAW_57)) != 0 ||
	    cfg->sagaw == 0)
		return false;
	/* Both register blocks lie beyond the architectural registers and apart. */
	if (iotlb < 0xc0 || frcd < 0xc0)
		return false;
	if (iotlb + 16u > frcd && frcd_end > iotlb)
		return false;
	return true;
}
