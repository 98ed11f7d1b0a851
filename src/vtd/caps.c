/*
 * caps.c - CAP_REG / ECAP_REG decoding (VT-d specification 11.4.2, 11.4.3).
 */
#include <dmar/caps.h>

#include "regs.h"
#include "lib/util.h"

void dmar_caps_decode(uint64_t cap, uint64_t ecap, struct dmar_caps *o)
{
	if (!o)
		return;
	dmar_memset(o, 0, sizeof(*o));
	o->cap = cap;
	o->ecap = ecap;
	uint64_t nd = VTD_CAP_ND(cap);
	o->domains = nd <= 6 ? 1u << (4 + 2 * nd) : 0;  /* ND=7 is reserved */
	o->afl = cap & VTD_CAP_AFL;
	o->rwbf = cap & VTD_CAP_RWBF;
	o->plmr = cap & VTD_CAP_PLMR;
	o->phmr = cap & VTD_CAP_PHMR;
	o->cm = cap & VTD_CAP_CM;
	o->sagaw = (uint8_t)VTD_CAP_SAGAW(cap);
	o->mgaw = (uint8_t)VTD_CAP_MGAW(cap);
	o->zlr = cap & VTD_CAP_ZLR;
	o->frcd_offset = (uint32_t)VTD_CAP_FRO(cap) * 16u;
	o->sp_2m = VTD_CAP_SLLPS(cap) & 1u;
	o->sp_1g = VTD_CAP_SLLPS(cap) & 2u;
	o->psi = cap & VTD_CAP_PSI;
	o->nfr = (uint16_t)VTD_CAP_NFR(cap);
	o->mamv = (uint8_t)VTD_CAP_MAMV(cap);
	o->dwd = cap & VTD_CAP_DWD;
	o->drd = cap & VTD_CAP_DRD;
	o->fl1gp = cap & VTD_CAP_FL1GP;
	o->pi = cap & VTD_CAP_PI;
	o->fl5lp = cap & VTD_CAP_FL5LP;
	o->esirtps = cap & VTD_CAP_ESIRTPS;
	o->esrtps = cap & VTD_CAP_ESRTPS;

	o->c = ecap & VTD_ECAP_C;
	o->qi = ecap & VTD_ECAP_QI;
	o->dt = ecap & VTD_ECAP_DT;
	o->ir = ecap & VTD_ECAP_IR;
	o->eim = ecap & VTD_ECAP_EIM;
	o->pt = ecap & VTD_ECAP_PT;
	o->sc = ecap & VTD_ECAP_SC;
	o->iva_offset = (uint32_t)VTD_ECAP_IRO(ecap) * 16u;
	o->iotlb_offset = o->iva_offset + VTD_IOTLB_OFF;
	o->mhmv = (uint8_t)VTD_ECAP_MHMV(ecap);
	o->mts = ecap & VTD_ECAP_MTS;
	o->nest = ecap & VTD_ECAP_NEST;
	o->prs = ecap & VTD_ECAP_PRS;
	o->ers = ecap & VTD_ECAP_ERS;
	o->srs = ecap & VTD_ECAP_SRS;
	o->nwfs = ecap & VTD_ECAP_NWFS;
	o->eafs = ecap & VTD_ECAP_EAFS;
	o->pss = (uint8_t)VTD_ECAP_PSS(ecap);
	o->pasid = ecap & VTD_ECAP_PASID;
	o->dit = ecap & VTD_ECAP_DIT;
	o->pds = ecap & VTD_ECAP_PDS;
	o->smts = ecap & VTD_ECAP_SMTS;
	o->vcs = ecap & VTD_ECAP_VCS;
	o->slads = ecap & VTD_ECAP_SLADS;
	o->slts = ecap & VTD_ECAP_SLTS;
	o->flts = ecap & VTD_ECAP_FLTS;
	o->smpwcs = ecap & VTD_ECAP_SMPWCS;
	o->rps = ecap & VTD_ECAP_RPS;
}

/* Single-bit fields: register (0 CAP, 1 ECAP), bit, mnemonic, meaning. */
static const struct bitfield {
	uint8_t reg, bit;
	const char *name, *text;
} bits[] = {
	{0, 3, "AFL", "advanced fault logging"},
	{0, 4, "RWBF", "required write-buffer flushing"},
	{0, 5, "PLMR", "protected low-memory region"},
	{0, 6, "PHMR", "protected high-memory region"},
	{0, 7, "CM", "caching mode (not-present entries may be cached)"},
	{0, 22, "ZLR", "zero-length reads"},
	{0, 39, "PSI", "page-selective invalidation"},
	{0, 54, "DWD", "write draining"},
	{0, 55, "DRD", "read draining"},
	{0, 56, "FL1GP", "first-level 1 GiB pages"},
	{0, 59, "PI", "posted interrupts"},
	{0, 60, "FL5LP", "first-level 5-level paging"},
	{0, 62, "ESIRTPS", "IRT pointer set invalidates interrupt caches"},
	{0, 63, "ESRTPS", "root table pointer set invalidates caches"},
	{1, 0, "C", "coherency (page walks snoop CPU caches)"},
	{1, 1, "QI", "queued invalidation"},
	{1, 2, "DT", "device-TLB (ATS)"},
	{1, 3, "IR", "interrupt remapping"},
	{1, 4, "EIM", "extended interrupt mode (x2APIC)"},
	{1, 6, "PT", "pass-through"},
	{1, 7, "SC", "snoop control"},
	{1, 25, "MTS", "memory type"},
	{1, 26, "NEST", "nested translation"},
	{1, 29, "PRS", "page requests"},
	{1, 30, "ERS", "execute requests"},
	{1, 31, "SRS", "supervisor requests"},
	{1, 33, "NWFS", "no write flag"},
	{1, 34, "EAFS", "extended accessed flag"},
	{1, 40, "PASID", "process address space ids"},
	{1, 41, "DIT", "device-TLB invalidation throttling"},
	{1, 42, "PDS", "page-request drain"},
	{1, 43, "SMTS", "scalable-mode translation"},
	{1, 44, "VCS", "virtual command"},
	{1, 45, "SLADS", "second-level accessed/dirty"},
	{1, 46, "SLTS", "second-level translation"},
	{1, 47, "FLTS", "first-level translation"},
	{1, 48, "SMPWCS", "scalable-mode page-walk coherency"},
	{1, 49, "RPS", "RID_PASID"},
};

struct out {
	char *buf;
	size_t len, pos;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	size_t room = o->pos < o->len ? o->len - o->pos : 0;
	int n = dmar__vsnprintf(room ? o->buf + o->pos : NULL, room, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->pos += (size_t)n;
}

static const char *yes_no(uint64_t v) { return v ? "yes" : "no"; }

int dmar_caps_format(uint64_t cap, uint64_t ecap, char *buf, size_t len)
{
	struct dmar_caps c;
	struct out o = {buf, len, 0};
	if (buf && len)
		buf[0] = '\0';
	dmar_caps_decode(cap, ecap, &c);
	put(&o, "CAP  0x%016llx\n", (unsigned long long)cap);
	put(&o, "CAP.ND      %u  domains: %u%s\n", (unsigned)VTD_CAP_ND(cap), c.domains,
	    c.domains ? "" : " (reserved value)");
	put(&o, "CAP.SAGAW   0x%x  supported adjusted guest address widths:%s%s%s%s\n",
	    c.sagaw, (c.sagaw & VTD_SAGAW_39) ? " 39-bit(3-level)" : "",
	    (c.sagaw & VTD_SAGAW_48) ? " 48-bit(4-level)" : "",
	    (c.sagaw & VTD_SAGAW_57) ? " 57-bit(5-level)" : "",
	    (c.sagaw & ~(VTD_SAGAW_39 | VTD_SAGAW_48 | VTD_SAGAW_57)) ? " (reserved bits set)"
								      : "");
	put(&o, "CAP.MGAW    %u  maximum guest address width: %u bits\n", c.mgaw - 1u, c.mgaw);
	put(&o, "CAP.FRO     0x%x  fault recording registers at 0x%x\n",
	    (unsigned)VTD_CAP_FRO(cap), (unsigned)c.frcd_offset);
	put(&o, "CAP.NFR     %u  fault recording registers: %u\n", c.nfr - 1u, c.nfr);
	put(&o, "CAP.SLLPS   0x%x  second-level superpages:%s%s%s\n",
	    (unsigned)VTD_CAP_SLLPS(cap), c.sp_2m ? " 2M" : "", c.sp_1g ? " 1G" : "",
	    (c.sp_2m || c.sp_1g) ? "" : " none");
	put(&o, "CAP.MAMV    %u  maximum address mask value for PSI: %u\n", c.mamv, c.mamv);
	for (size_t i = 0; i < DMAR_ARRAY_SIZE(bits); i++) {
		if (bits[i].reg == 1)
			continue;
		put(&o, "CAP.%-7s %u  %s: %s\n", bits[i].name,
		    (unsigned)((cap >> bits[i].bit) & 1u), bits[i].text,
		    yes_no(cap & VTD_BIT(bits[i].bit)));
	}
	put(&o, "ECAP 0x%016llx\n", (unsigned long long)ecap);
	put(&o, "ECAP.IRO    0x%x  IOTLB registers at 0x%x (IVA_REG 0x%x, IOTLB_REG 0x%x)\n",
	    (unsigned)VTD_ECAP_IRO(ecap), (unsigned)c.iva_offset, (unsigned)c.iva_offset,
	    (unsigned)c.iotlb_offset);
	put(&o, "ECAP.MHMV   %u  maximum handle mask value: %u\n", c.mhmv, c.mhmv);
	put(&o, "ECAP.PSS    %u  PASID size: %u bits\n", c.pss, c.pasid ? c.pss + 1u : 0u);
	for (size_t i = 0; i < DMAR_ARRAY_SIZE(bits); i++) {
		if (bits[i].reg == 0)
			continue;
		put(&o, "ECAP.%-6s %u  %s: %s\n", bits[i].name,
		    (unsigned)((ecap >> bits[i].bit) & 1u), bits[i].text,
		    yes_no(ecap & VTD_BIT(bits[i].bit)));
	}
	return (int)o.pos;
}
