/*
 * regs.h - VT-d remapping hardware registers and in-memory structures, named as the
 * Intel VT-d specification names them (register descriptions: chapter 11; root and
 * context entries, second-level paging entries: chapter 9; invalidation descriptors:
 * section 6.5.2; fault recording: section 7.2 and 11.4.14; interrupt remapping: chapter
 * 5, the IRTE in 9.10, IRTA_REG among the registers of 11.4).
 *
 * Shared by the driver and the hardware model so both speak one vocabulary; the
 * independent check of these values is QEMU's model (tests under kernel/).
 */
#ifndef DMAR_REGS_H
#define DMAR_REGS_H

#include <stdint.h>

#define VTD_BIT(n) (1ull << (n))
/* Field of `w` bits at bit `s` of `v`. */
#define VTD_GET(v, s, w) ((uint64_t)(((uint64_t)(v) >> (s)) & ((1ull << (w)) - 1)))
#define VTD_SET(s, w, x) ((((uint64_t)(x)) & ((1ull << (w)) - 1)) << (s))

/* Register offsets (11.4). */
#define VTD_VER_REG 0x00u     /* 32 */
#define VTD_CAP_REG 0x08u     /* 64 */
#define VTD_ECAP_REG 0x10u    /* 64 */
#define VTD_GCMD_REG 0x18u    /* 32 */
#define VTD_GSTS_REG 0x1cu    /* 32 */
#define VTD_RTADDR_REG 0x20u  /* 64 */
#define VTD_CCMD_REG 0x28u    /* 64 */
#define VTD_FSTS_REG 0x34u    /* 32 */
#define VTD_FECTL_REG 0x38u   /* 32 */
#define VTD_FEDATA_REG 0x3cu  /* 32 */
#define VTD_FEADDR_REG 0x40u  /* 32 */
#define VTD_FEUADDR_REG 0x44u /* 32 */
#define VTD_AFLOG_REG 0x58u   /* 64 */
#define VTD_PMEN_REG 0x64u    /* 32 */
#define VTD_PLMBASE_REG 0x68u
#define VTD_PLMLIMIT_REG 0x6cu
#define VTD_PHMBASE_REG 0x70u
#define VTD_PHMLIMIT_REG 0x78u
#define VTD_IQH_REG 0x80u     /* 64 */
#define VTD_IQT_REG 0x88u     /* 64 */
#define VTD_IQA_REG 0x90u     /* 64 */
#define VTD_ICS_REG 0x9cu     /* 32 */
#define VTD_IECTL_REG 0xa0u   /* 32 */
#define VTD_IEDATA_REG 0xa4u
#define VTD_IEADDR_REG 0xa8u
#define VTD_IEUADDR_REG 0xacu
#define VTD_IQERCD_REG 0xb0u  /* 64 */
#define VTD_IRTA_REG 0xb8u    /* 64 */
/* IVA_REG sits at ECAP.IRO * 16, IOTLB_REG 8 bytes after it. */
#define VTD_IVA_OFF 0x0u
#define VTD_IOTLB_OFF 0x8u
/* Fault recording registers: CAP.FRO * 16, 16 bytes each. */
#define VTD_FRCD_SIZE 16u

/* VER_REG */
#define VTD_VER_MAJOR(v) VTD_GET(v, 4, 4)
#define VTD_VER_MINOR(v) VTD_GET(v, 0, 4)

/* CAP_REG (11.4.2) */
#define VTD_CAP_ND(c) VTD_GET(c, 0, 3)        /* domains: 2^(4 + 2*ND) */
#define VTD_CAP_AFL VTD_BIT(3)
#define VTD_CAP_RWBF VTD_BIT(4)
#define VTD_CAP_PLMR VTD_BIT(5)
#define VTD_CAP_PHMR VTD_BIT(6)
#define VTD_CAP_CM VTD_BIT(7)
#define VTD_CAP_SAGAW(c) VTD_GET(c, 8, 5)     /* bit1: 39/3-level, bit2: 48/4, bit3: 57/5 */
#define VTD_CAP_MGAW(c) (VTD_GET(c, 16, 6) + 1)
#define VTD_CAP_ZLR VTD_BIT(22)
#define VTD_CAP_FRO(c) VTD_GET(c, 24, 10)     /* in 16-byte units */
#define VTD_CAP_SLLPS(c) VTD_GET(c, 34, 4)    /* bit0: 2 MiB, bit1: 1 GiB */
#define VTD_CAP_PSI VTD_BIT(39)
#define VTD_CAP_NFR(c) (VTD_GET(c, 40, 8) + 1)
#define VTD_CAP_MAMV(c) VTD_GET(c, 48, 6)
#define VTD_CAP_DWD VTD_BIT(54)
#define VTD_CAP_DRD VTD_BIT(55)
#define VTD_CAP_FL1GP VTD_BIT(56)
#define VTD_CAP_PI VTD_BIT(59)
#define VTD_CAP_FL5LP VTD_BIT(60)
#define VTD_CAP_ESIRTPS VTD_BIT(62)
#define VTD_CAP_ESRTPS VTD_BIT(63)

#define VTD_SAGAW_39 0x2u
#define VTD_SAGAW_48 0x4u
#define VTD_SAGAW_57 0x8u

/* ECAP_REG (11.4.3) */
#define VTD_ECAP_C VTD_BIT(0)
#define VTD_ECAP_QI VTD_BIT(1)
#define VTD_ECAP_DT VTD_BIT(2)
#define VTD_ECAP_IR VTD_BIT(3)
#define VTD_ECAP_EIM VTD_BIT(4)
#define VTD_ECAP_PT VTD_BIT(6)
#define VTD_ECAP_SC VTD_BIT(7)
#define VTD_ECAP_IRO(e) VTD_GET(e, 8, 10)     /* in 16-byte units */
#define VTD_ECAP_MHMV(e) VTD_GET(e, 20, 4)
#define VTD_ECAP_MTS VTD_BIT(25)
#define VTD_ECAP_NEST VTD_BIT(26)
#define VTD_ECAP_PRS VTD_BIT(29)
#define VTD_ECAP_ERS VTD_BIT(30)
#define VTD_ECAP_SRS VTD_BIT(31)
#define VTD_ECAP_NWFS VTD_BIT(33)
#define VTD_ECAP_EAFS VTD_BIT(34)
#define VTD_ECAP_PSS(e) VTD_GET(e, 35, 5)
#define VTD_ECAP_PASID VTD_BIT(40)
#define VTD_ECAP_DIT VTD_BIT(41)
#define VTD_ECAP_PDS VTD_BIT(42)
#define VTD_ECAP_SMTS VTD_BIT(43)
#define VTD_ECAP_VCS VTD_BIT(44)
#define VTD_ECAP_SLADS VTD_BIT(45)
#define VTD_ECAP_SLTS VTD_BIT(46)
#define VTD_ECAP_FLTS VTD_BIT(47)
#define VTD_ECAP_SMPWCS VTD_BIT(48)
#define VTD_ECAP_RPS VTD_BIT(49)

/* PMEN_REG (11.4.13): enable protected memory regions, and their status. */
#define VTD_PMEN_EPM VTD_BIT(31)
#define VTD_PMEN_PRS VTD_BIT(0)

/* GCMD_REG / GSTS_REG (11.4.4, 11.4.5): same bit positions. */
#define VTD_GCMD_TE VTD_BIT(31)
#define VTD_GCMD_SRTP VTD_BIT(30)
#define VTD_GCMD_SFL VTD_BIT(29)
#define VTD_GCMD_EAFL VTD_BIT(28)
#define VTD_GCMD_WBF VTD_BIT(27)
#define VTD_GCMD_QIE VTD_BIT(26)
#define VTD_GCMD_IRE VTD_BIT(25)
#define VTD_GCMD_SIRTP VTD_BIT(24)
#define VTD_GCMD_CFI VTD_BIT(23)
#define VTD_GSTS_TES VTD_BIT(31)
#define VTD_GSTS_RTPS VTD_BIT(30)
#define VTD_GSTS_FLS VTD_BIT(29)
#define VTD_GSTS_AFLS VTD_BIT(28)
#define VTD_GSTS_WBFS VTD_BIT(27)
#define VTD_GSTS_QIES VTD_BIT(26)
#define VTD_GSTS_IRES VTD_BIT(25)
#define VTD_GSTS_IRTPS VTD_BIT(24)
#define VTD_GSTS_CFIS VTD_BIT(23)
/* Persistent enables: GCMD writes must carry these forward from GSTS (11.4.4). */
/* The enables a GCMD write must carry forward from GSTS (11.4.4: GSTS & 0x96FFFFFF). */
#define VTD_GSTS_PERSISTENT \
	(VTD_GSTS_TES | VTD_GSTS_AFLS | VTD_GSTS_QIES | VTD_GSTS_IRES | VTD_GSTS_CFIS)

/* RTADDR_REG */
#define VTD_RTADDR_TTM(v) VTD_GET(v, 10, 2)   /* 0: legacy, 1: scalable */
#define VTD_RTADDR_ADDR_MASK 0xfffffffffffff000ull

/* CCMD_REG (11.4.7) */
#define VTD_CCMD_ICC VTD_BIT(63)
#define VTD_CCMD_CIRG(g) VTD_SET(61, 2, g)
#define VTD_CCMD_CAIG(v) VTD_GET(v, 59, 2)
#define VTD_CCMD_FM(m) VTD_SET(32, 2, m)
#define VTD_CCMD_SID(s) VTD_SET(16, 16, s)
#define VTD_CCMD_DID(d) VTD_SET(0, 16, d)
#define VTD_CC_GLOBAL 1u
#define VTD_CC_DOMAIN 2u
#define VTD_CC_DEVICE 3u

/* IOTLB_REG / IVA_REG (11.4.8) */
#define VTD_IOTLB_IVT VTD_BIT(63)
#define VTD_IOTLB_IIRG(g) VTD_SET(60, 2, g)
#define VTD_IOTLB_IAIG(v) VTD_GET(v, 57, 2)
#define VTD_IOTLB_DR VTD_BIT(49)
#define VTD_IOTLB_DW VTD_BIT(48)
#define VTD_IOTLB_DID(d) VTD_SET(32, 16, d)
#define VTD_IOTLB_GLOBAL 1u
#define VTD_IOTLB_DOMAIN 2u
#define VTD_IOTLB_PAGE 3u
#define VTD_IVA_AM(a) VTD_SET(0, 6, a)
#define VTD_IVA_IH VTD_BIT(6)
#define VTD_IVA_ADDR_MASK 0xfffffffffffff000ull

/* FSTS_REG (11.4.9) */
#define VTD_FSTS_PFO VTD_BIT(0)
#define VTD_FSTS_PPF VTD_BIT(1)
#define VTD_FSTS_AFO VTD_BIT(2)
#define VTD_FSTS_APF VTD_BIT(3)
#define VTD_FSTS_IQE VTD_BIT(4)
#define VTD_FSTS_ICE VTD_BIT(5)
#define VTD_FSTS_ITE VTD_BIT(6)
#define VTD_FSTS_FRI(v) VTD_GET(v, 8, 8)
/* Write-1-to-clear bits of FSTS. */
#define VTD_FSTS_RW1C \
	(VTD_FSTS_PFO | VTD_FSTS_AFO | VTD_FSTS_APF | VTD_FSTS_IQE | VTD_FSTS_ICE | VTD_FSTS_ITE)

/* FECTL_REG / IECTL_REG */
#define VTD_FECTL_IM VTD_BIT(31)
#define VTD_FECTL_IP VTD_BIT(30)

/* Fault recording register, upper 64 bits (11.4.14); lower 64: FI = page address. */
#define VTD_FRCD_HI_SID(v) VTD_GET(v, 0, 16)
#define VTD_FRCD_HI_T2 VTD_BIT(28)
#define VTD_FRCD_HI_PRIV VTD_BIT(29)
#define VTD_FRCD_HI_EXE VTD_BIT(30)
#define VTD_FRCD_HI_PP VTD_BIT(31)
#define VTD_FRCD_HI_FR(v) VTD_GET(v, 32, 8)
#define VTD_FRCD_HI_PV(v) VTD_GET(v, 40, 20)
#define VTD_FRCD_HI_AT(v) VTD_GET(v, 60, 2)
#define VTD_FRCD_HI_T VTD_BIT(62)             /* 1: read request, 0: write */
#define VTD_FRCD_HI_F VTD_BIT(63)             /* fault recorded; write 1 to clear */
#define VTD_FRCD_LO_FI_MASK 0xfffffffffffff000ull

/* IQA_REG, IQH/IQT, ICS (11.4.10) */
#define VTD_IQA_ADDR_MASK 0xfffffffffffff000ull
#define VTD_IQA_DW VTD_BIT(11)               /* 256-bit descriptors (scalable mode) */
#define VTD_IQA_QS(v) VTD_GET(v, 0, 3)       /* 2^QS pages of descriptors */
#define VTD_IQ_INDEX_SHIFT 4                 /* IQH/IQT hold index << 4 (128-bit desc.) */
#define VTD_IQ_INDEX_MASK 0x7fff0ull
#define VTD_ICS_IWC VTD_BIT(0)

/* Invalidation descriptors, 128-bit (6.5.2): lo = bits 63:0, hi = bits 127:64. */
#define VTD_INV_TYPE(lo) VTD_GET(lo, 0, 4)
#define VTD_INV_CC 0x1u
#define VTD_INV_IOTLB 0x2u
#define VTD_INV_DEVTLB 0x3u
#define VTD_INV_IEC 0x4u
#define VTD_INV_WAIT 0x5u
#define VTD_INV_G(g) VTD_SET(4, 2, g)         /* granularity for CC and IOTLB */
#define VTD_INV_G_GET(lo) VTD_GET(lo, 4, 2)
#define VTD_INV_CC_DID(d) VTD_SET(16, 16, d)
#define VTD_INV_CC_SID(s) VTD_SET(32, 16, s)
#define VTD_INV_CC_FM(m) VTD_SET(48, 2, m)
#define VTD_INV_IOTLB_DW VTD_BIT(6)
#define VTD_INV_IOTLB_DR VTD_BIT(7)
#define VTD_INV_IOTLB_DID(d) VTD_SET(16, 16, d)
#define VTD_INV_IOTLB_HI_AM(a) VTD_SET(0, 6, a)
#define VTD_INV_IOTLB_HI_IH VTD_BIT(6)
#define VTD_INV_IEC_G_INDEX VTD_BIT(4)        /* 0: global, 1: index-selective */
#define VTD_INV_IEC_IM(m) VTD_SET(27, 5, m)   /* low index bits masked (<= ECAP.MHMV) */
#define VTD_INV_IEC_IM_GET(lo) VTD_GET(lo, 27, 5)
#define VTD_INV_IEC_IIDX(i) VTD_SET(32, 16, i)
#define VTD_INV_IEC_IIDX_GET(lo) ((unsigned)VTD_GET(lo, 32, 16))
#define VTD_INV_WAIT_IF VTD_BIT(4)
#define VTD_INV_WAIT_SW VTD_BIT(5)
#define VTD_INV_WAIT_FN VTD_BIT(6)
#define VTD_INV_WAIT_PD VTD_BIT(7)
#define VTD_INV_WAIT_SDATA(d) VTD_SET(32, 32, d)
#define VTD_INV_WAIT_HI_ADDR_MASK 0xfffffffffffffffcull

/* Root entry (9.1), 128-bit, legacy mode: lo bit 0 P, lo 63:12 CTP. */
#define VTD_ROOT_P VTD_BIT(0)
#define VTD_ROOT_CTP_MASK 0xfffffffffffff000ull

/* Context entry (9.3), 128-bit, legacy mode. */
#define VTD_CTX_LO_P VTD_BIT(0)
#define VTD_CTX_LO_FPD VTD_BIT(1)
#define VTD_CTX_LO_TT(t) VTD_SET(2, 2, t)
#define VTD_CTX_LO_TT_GET(lo) VTD_GET(lo, 2, 2)
#define VTD_CTX_LO_SLPTPTR_MASK 0xfffffffffffff000ull
#define VTD_CTX_HI_AW(a) VTD_SET(0, 3, a)
#define VTD_CTX_HI_AW_GET(hi) VTD_GET(hi, 0, 3)
#define VTD_CTX_HI_DID(d) VTD_SET(8, 16, d)
#define VTD_CTX_HI_DID_GET(hi) VTD_GET(hi, 8, 16)
#define VTD_TT_SLPT 0u         /* untranslated requests through second-level tables */
#define VTD_TT_SLPT_DEVTLB 1u  /* ... and translated/translation requests (ATS) */
#define VTD_TT_PASSTHROUGH 2u  /* untranslated requests pass through (ECAP.PT) */
/* AW: 1 = 39-bit (3-level), 2 = 48-bit (4-level), 3 = 57-bit (5-level). */
#define VTD_AW_39 1u
#define VTD_AW_48 2u
#define VTD_AW_57 3u

/* Second-level paging entry (9.8). */
#define VTD_SL_R VTD_BIT(0)
#define VTD_SL_W VTD_BIT(1)
#define VTD_SL_X VTD_BIT(2)
#define VTD_SL_PS VTD_BIT(7)
#define VTD_SL_A VTD_BIT(8)
#define VTD_SL_D VTD_BIT(9)
#define VTD_SL_SNP VTD_BIT(11)
#define VTD_SL_ADDR_MASK 0x000ffffffffff000ull
#define VTD_SL_TM VTD_BIT(62)

/* Fault reasons (7.1.3, table "Unsuccessful translated requests", legacy mode). */
#define VTD_FR_ROOT_NOT_PRESENT 0x1u
#define VTD_FR_CTX_NOT_PRESENT 0x2u
#define VTD_FR_CTX_INVALID 0x3u
#define VTD_FR_ADDR_BEYOND_AW 0x4u
#define VTD_FR_WRITE 0x5u
#define VTD_FR_READ 0x6u
#define VTD_FR_PAGING_ENTRY_ERR 0x7u
#define VTD_FR_ROOT_ACCESS_ERR 0x8u
#define VTD_FR_CTX_ACCESS_ERR 0x9u
#define VTD_FR_ROOT_RSVD 0xau
#define VTD_FR_CTX_RSVD 0xbu
#define VTD_FR_PAGING_RSVD 0xcu
#define VTD_FR_TT_BLOCKED 0xdu


/* Interrupt-remapping fault reasons (7.1.3, "Interrupt Remapping Fault Conditions").
 * FPD in the entry suppresses the "qualified" ones (0x22, 0x24, 0x26, 0x27). */
#define VTD_FR_IR_REQ_RSVD 0x20u     /* reserved bits set in the request */
#define VTD_FR_IR_INDEX_OVER 0x21u   /* interrupt_index beyond the table size */
#define VTD_FR_IR_ENTRY_P 0x22u      /* IRTE not present */
#define VTD_FR_IR_ROOT_INVAL 0x23u   /* IRT access through IRTA failed */
#define VTD_FR_IR_IRTE_RSVD 0x24u    /* reserved bits set in a present IRTE */
#define VTD_FR_IR_REQ_COMPAT 0x25u   /* compatibility format blocked (EIME, or CFIS clear) */
#define VTD_FR_IR_SID_ERR 0x26u      /* source-id verification failed */
#define VTD_FR_IR_PID_ERR 0x27u      /* posted-interrupt descriptor access failed */
#define VTD_FR_IS_IR(r) ((r) >= VTD_FR_IR_REQ_RSVD && (r) <= VTD_FR_IR_PID_ERR)
/* FRCD lower 64 bits for an interrupt-remapping fault: FI[63:48] = interrupt_index
 * (11.4.14), bits 47:12 cleared. */
#define VTD_FRCD_LO_IR_INDEX(lo) ((uint16_t)VTD_GET(lo, 48, 16))
#define VTD_FRCD_LO_IR(index) VTD_SET(48, 16, index)

/* IRTA_REG: table base, EIME, size 2^(S+1) entries. */
#define VTD_IRTA_ADDR_MASK 0xfffffffffffff000ull
#define VTD_IRTA_EIME VTD_BIT(11)
#define VTD_IRTA_S(s) VTD_SET(0, 4, s)
#define VTD_IRTA_S_GET(v) VTD_GET(v, 0, 4)
#define VTD_IRT_ENTRIES(irta) (2u << VTD_IRTA_S_GET(irta))

/* Interrupt remapping table entry (9.10), 128-bit, remapped (not posted) format. */
#define VTD_IRTE_LO_P VTD_BIT(0)
#define VTD_IRTE_LO_FPD VTD_BIT(1)
#define VTD_IRTE_LO_DM VTD_BIT(2)            /* destination mode: 1 logical */
#define VTD_IRTE_LO_RH VTD_BIT(3)            /* redirection hint */
#define VTD_IRTE_LO_TM VTD_BIT(4)            /* trigger mode: 1 level */
#define VTD_IRTE_LO_DLM(m) VTD_SET(5, 3, m)  /* delivery mode */
#define VTD_IRTE_LO_DLM_GET(lo) VTD_GET(lo, 5, 3)
#define VTD_IRTE_LO_AVAIL(a) VTD_SET(8, 4, a)
#define VTD_IRTE_LO_IM VTD_BIT(15)           /* IRTE mode: 1 posted (CAP.PI) */
#define VTD_IRTE_LO_V(v) VTD_SET(16, 8, v)   /* vector */
#define VTD_IRTE_LO_V_GET(lo) VTD_GET(lo, 16, 8)
#define VTD_IRTE_LO_DST(d) VTD_SET(32, 32, d)
#define VTD_IRTE_LO_DST_GET(lo) ((uint32_t)VTD_GET(lo, 32, 32))
/* xAPIC mode (EIME=0): the 8-bit APIC id sits in DST[15:8] (bits 47:40). */
#define VTD_IRTE_LO_DST_XAPIC(id) VTD_SET(40, 8, id)
#define VTD_IRTE_LO_DST_XAPIC_GET(lo) ((uint32_t)VTD_GET(lo, 40, 8))
/* Reserved in every mode (14:12, 31:24); in xAPIC mode also DST[7:0] and DST[31:16]. */
#define VTD_IRTE_LO_RSVD 0x00000000ff007000ull
#define VTD_IRTE_LO_RSVD_XAPIC 0xffff00ff00000000ull
#define VTD_IRTE_HI_SID(s) VTD_SET(0, 16, s)
#define VTD_IRTE_HI_SID_GET(hi) ((uint16_t)VTD_GET(hi, 0, 16))
#define VTD_IRTE_HI_SQ(q) VTD_SET(16, 2, q)
#define VTD_IRTE_HI_SQ_GET(hi) VTD_GET(hi, 16, 2)
#define VTD_IRTE_HI_SVT(t) VTD_SET(18, 2, t)
#define VTD_IRTE_HI_SVT_GET(hi) VTD_GET(hi, 18, 2)
#define VTD_IRTE_HI_RSVD 0xfffffffffff00000ull
/* Delivery modes (DLM); 3 and 6 are reserved. */
#define VTD_DLM_FIXED 0u
#define VTD_DLM_LOWPRI 1u
/* Source-id verification (SVT) and qualifier (SQ: low requester-id bits ignored). */
#define VTD_SVT_NONE 0u
#define VTD_SVT_SID 1u     /* requester id == SID under the SQ mask */
#define VTD_SVT_BUS 2u     /* requester bus within [SID[15:8], SID[7:0]] */
#define VTD_SQ_ALL 0u      /* compare all 16 bits */
#define VTD_SQ_IGNORE_FN 3u /* ignore bits 2:0 (the function number) */

/* Interrupt request address (5.1.2): 0xFEE in bits 31:20; bit 4 the format. */
#define VTD_MSI_ADDR_BASE 0xfee00000u
#define VTD_MSI_ADDR_HEAD(a) VTD_GET(a, 20, 12)
#define VTD_MSI_ADDR_IF VTD_BIT(4)           /* 1: remappable format */
/* Remappable format (5.1.2.2): handle[14:0] in 19:5, SHV in 3, handle[15] in 2. */
#define VTD_MSI_ADDR_SHV VTD_BIT(3)
#define VTD_MSI_ADDR_HANDLE(h) (VTD_SET(5, 15, h) | VTD_SET(2, 1, (h) >> 15))
#define VTD_MSI_ADDR_HANDLE_GET(a) ((unsigned)(VTD_GET(a, 5, 15) | (VTD_GET(a, 2, 1) << 15)))
#define VTD_MSI_DATA_SUBHANDLE(d) ((unsigned)VTD_GET(d, 0, 16))
#define VTD_MSI_DATA_RSVD_SHV 0xffff0000u    /* data bits 31:16 with SHV=1 */
/* Compatibility format (5.1.2.1): destination id in 19:12, RH in 3, DM in 2; data:
 * vector 7:0, delivery mode 10:8, trigger mode 15. */
#define VTD_MSI_ADDR_COMPAT_DEST(a) ((uint32_t)VTD_GET(a, 12, 8))
#define VTD_MSI_ADDR_COMPAT_RH VTD_BIT(3)
#define VTD_MSI_ADDR_COMPAT_DM VTD_BIT(2)
#define VTD_MSI_DATA_VECTOR(d) ((uint8_t)VTD_GET(d, 0, 8))
#define VTD_MSI_DATA_DLM(d) ((unsigned)VTD_GET(d, 8, 3))
#define VTD_MSI_DATA_TM VTD_BIT(15)

/* IOAPIC redirection-table entry, remappable format (5.1.5.1). */
#define VTD_RTE_VECTOR(v) VTD_SET(0, 8, v)
#define VTD_RTE_INDEX15 VTD_BIT(11)          /* interrupt_index[15] */
#define VTD_RTE_POLARITY_LOW VTD_BIT(13)
#define VTD_RTE_TRIGGER_LEVEL VTD_BIT(15)
#define VTD_RTE_MASK VTD_BIT(16)
#define VTD_RTE_FORMAT_REMAP VTD_BIT(48)
#define VTD_RTE_INDEX(i) VTD_SET(49, 15, i)  /* interrupt_index[14:0] */

/* Source id = bus:dev.fn packed as PCI requester id. */
#define VTD_SID(bus, dev, fn) ((uint16_t)(((bus) << 8) | ((dev) << 3) | (fn)))
#define VTD_SID_BUS(s) ((uint8_t)((s) >> 8))
#define VTD_SID_DEVFN(s) ((uint8_t)((s) & 0xff))

#endif
