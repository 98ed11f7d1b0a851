/*
 * dmar/caps.h - decoding of a remapping unit's CAP_REG and ECAP_REG (VT-d specification
 * 11.4.2 and 11.4.3) into a struct and into readable text lines.
 *
 * Pure functions of the two register values: no I/O, no state, callable from any
 * context concurrently. They cannot fail; reserved or unknown bits are shown raw.
 */
#ifndef DMAR_CAPS_H
#define DMAR_CAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dmar_caps {
	uint64_t cap, ecap;
	/* CAP_REG */
	uint32_t domains;        /* 2^(4 + 2*ND) */
	bool afl, rwbf, plmr, phmr, cm, zlr, psi, dwd, drd, fl1gp, pi, fl5lp, esirtps, esrtps;
	uint8_t sagaw;           /* raw bit field: bit1 39-bit, bit2 48-bit, bit3 57-bit */
	uint8_t mgaw;            /* bits (field + 1) */
	uint32_t frcd_offset;    /* byte offset of the first fault recording register */
	uint16_t nfr;            /* number of fault recording registers (field + 1) */
	bool sp_2m, sp_1g;       /* second-level superpages (SLLPS) */
	uint8_t mamv;
	/* ECAP_REG */
	bool c, qi, dt, ir, eim, pt, sc, mts, nest, prs, ers, srs, nwfs, eafs, pasid, dit,
		pds, smts, vcs, slads, slts, flts, smpwcs, rps;
	uint32_t iva_offset;     /* IVA_REG: ECAP.IRO * 16 */
	uint32_t iotlb_offset;   /* IOTLB_REG: IVA_REG + 8 */
	uint8_t mhmv;
	uint8_t pss;             /* PASID size: PSS + 1 bits */
};

void dmar_caps_decode(uint64_t cap, uint64_t ecap, struct dmar_caps *out);

/* Every CAP and ECAP field, one per '\n'-terminated line ("CAP.MGAW  38  maximum guest
 * address width: 39 bits"). Returns the length the full text would have (like snprintf;
 * the text is at most a few KiB). */
int dmar_caps_format(uint64_t cap, uint64_t ecap, char *buf, size_t len);

#endif
