/*
 * model/model.h - a simulated Intel VT-d remapping unit (legacy mode), for host tests,
 * fuzzing and benchmarks of any VT-d driver.
 *
 * The model implements the registers of one unit (VT-d spec chapter 11), legacy-mode
 * translation through root, context and second-level tables (chapters 3 and 9), the
 * context cache, IOTLB and paging-structure caches (chapter 6), register-based and
 * queued invalidation (6.5), primary fault recording and the fault event (7.2), and the
 * write-buffer flush. Its default configuration is QEMU 7.2's intel-iommu device.
 *
 * It is plain C11 with no libc: memory (the tables, the invalidation queue, DMA data)
 * and its own allocations go through `struct model_mem_ops`, so it runs anywhere.
 *
 * Choices where the specification leaves room (each one what a careful driver must
 * survive): nothing cached is evicted except when a cache reaches iotlb_capacity (then
 * it is emptied whole, as QEMU does); SRTP does not empty the caches (software must
 * invalidate globally after it); device-selective context invalidation matches the DID
 * as well as the source id under the function mask; not-present results cached in
 * caching mode carry domain 0; FPD suppresses the faults found after a context entry
 * was fetched (reasons 3-7 and 0xc); the host address width is MGAW; the fault event
 * is raised when a fault is recorded while none was pending, and when IQE is set;
 * every context-cache and IOTLB invalidation (register or queued) also drains the
 * write buffer (CAP.RWBF), as the specification says invalidations do.
 * Interrupt remapping (chapter 5): an interrupt request (dmar_model_interrupt) goes
 * through the table IRTA names (latched with its size and EIME by SIRTP), checked as
 * the specification says (reserved bits of request and entry, size, present bit,
 * source-id verification; compatibility format only with CFIS and EIME clear), and
 * through an interrupt entry cache that keeps every well-formed present entry it used
 * until an IEC invalidation (global, or index-selective under IM, which may not exceed
 * ECAP.MHMV; SIRTP empties it only with CAP.ESIRTPS), so a missing invalidation after an entry change shows up as a stale
 * vector, destination or source check. Faults are recorded like DMA faults, with the
 * interrupt index in FRCD bits 63:48 (QEMU's layout since it records them), T=0; FPD in
 * the entry suppresses the qualified ones (0x22, 0x24, 0x26).
 * Not modelled: scalable mode and first-level tables, protected memory regions,
 * advanced fault logging, posted interrupts (IRTE.IM=1 is a reserved-bit fault),
 * device-TLBs (their descriptors are checked and counted), page requests.
 *
 * Concurrency: a model is not thread-safe; the embedder serialises every call on one
 * model (ports/posix takes a per-machine lock). Different models are independent.
 */
#ifndef DMAR_MODEL_H
#define DMAR_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Configuration: CAP/ECAP fields by name (values as encoded in the registers unless
 * said otherwise) plus knobs of the simulation. */
struct model_config {
	uint32_t ver;     /* VER_REG, e.g. 0x10 = 1.0 */
	/* CAP_REG */
	unsigned nd;      /* domains: 2^(4 + 2*nd); 0..6 */
	unsigned sagaw;   /* bit1: 39-bit/3-level, bit2: 48-bit/4-level, bit3: 57-bit/5-level */
	unsigned mgaw;    /* maximum guest address width in bits (encoded as mgaw-1) */
	unsigned sllps;   /* bit0: 2 MiB, bit1: 1 GiB second-level superpages */
	unsigned nfr;     /* number of fault recording registers, 1..256 */
	unsigned fro;     /* fault recording registers at fro*16 */
	bool psi;         /* page-selective IOTLB invalidation */
	unsigned mamv;    /* maximum address mask value for page-selective invalidation */
	bool cm;          /* caching mode: not-present entries are cached too */
	bool rwbf;        /* required write-buffer flushing */
	bool plmr, phmr;  /* protected memory regions: PMEN.EPM/PRS work; the regions
			   * themselves block nothing (not modelled) */
	bool zlr;         /* zero-length reads */
	bool afl;         /* advanced fault logging: SFL and EAFL/AFLS work, no log is written */
	bool dwd, drd;    /* write / read draining */
	bool esirtps;     /* SIRTP also empties the interrupt entry cache */
	/* ECAP_REG */
	bool c;           /* page walks snoop CPU caches (coherent) */
	bool qi;          /* queued invalidation */
	bool dt;          /* device-TLB (ATS); TT=1 allowed */
	bool ir;          /* interrupt remapping (IEC descriptors; IRTA, SIRTP, IRE, CFI) */
	bool eim;         /* extended interrupt mode (IRTA.EIME writable: 32-bit DST) */
	bool pt;          /* pass-through (TT=2) */
	bool sc;          /* snoop control (SNP bit allowed in leaf entries) */
	unsigned iro;     /* IVA/IOTLB registers at iro*16 */
	unsigned mhmv;    /* maximum handle mask value */
	/* Bits reported in CAP/ECAP as they are, with no behaviour behind them: fields of
	 * a real unit the model does not implement (scalable mode, nested translation,
	 * PASID, posted interrupts, first-level page sizes, ...), none of which a
	 * legacy-mode driver uses. dmar_model_config_from_regs fills them. */
	uint64_t cap_extra, ecap_extra;
	/* Knobs */
	bool null_hw;     /* benchmark mode: everything acknowledges at once, no caches
			   * and no DMA translation (dmar_model_dma copies untranslated) */
	unsigned iotlb_capacity; /* entries in the IOTLB (and in the paging-structure
				  * cache) before it is emptied whole, as QEMU does;
				  * 0 = unlimited. Default 1024. */
};

/* QEMU 7.2 defaults: VER 0x10, CAP 0x00d2008c22260206, ECAP 0xf00f4a. */
void dmar_model_config_default(struct model_config *cfg);
/* The configuration of a unit that reports these VER, CAP and ECAP values (as a real
 * machine prints them at boot): every field the model implements is decoded, the
 * rest goes to cap_extra/ecap_extra, so dmar_model_config_cap/ecap give back exactly `cap`
 * and `ecap`. Knobs get their defaults. Returns false (cfg still filled) when the
 * values describe a unit the model cannot be (e.g. SAGAW offering no 3-, 4- or 5-level
 * table): dmar_model_create would refuse it. */
bool dmar_model_config_from_regs(uint32_t ver, uint64_t cap, uint64_t ecap,
				 struct model_config *cfg);
/* The CAP and ECAP register values a configuration encodes. */
uint64_t dmar_model_config_cap(const struct model_config *cfg);
uint64_t dmar_model_config_ecap(const struct model_config *cfg);
/* Bytes of register space the unit decodes from its base (at least 4096; more when
 * IRO or FRO place registers beyond the first page), a multiple of 4096. */
uint32_t dmar_model_config_reg_size(const struct model_config *cfg);

/* What a memory access by the model is for. */
enum model_mem_kind {
	MODEL_MEM_TABLE,   /* root/context/paging entry read by a page walk: sees the
			    * memory view (not the CPU cache) when ECAP.C=0 */
	MODEL_MEM_PEEK,    /* the same read for dmar_model_translate(): no side effects, no
			    * coherency accounting */
	MODEL_MEM_QI,      /* invalidation descriptor read */
	MODEL_MEM_STATUS,  /* wait descriptor status write */
	MODEL_MEM_DMA,     /* device DMA data */
};

enum model_irq {
	MODEL_IRQ_FAULT,   /* the fault event (FECTL/FEDATA/FEADDR) */
	MODEL_IRQ_INVAL,   /* the invalidation completion event (IECTL/IEDATA/IEADDR) */
};

/* Memory and services the embedder provides. read/write return 0, or nonzero when
 * [pa, pa+len) is not memory (the model then reports the access-error fault reasons).
 * interrupt may be NULL. alloc returns NULL on failure (the model then degrades: a
 * cache entry is not kept; dmar_model_create fails). flush_write_buffer may be NULL; it is
 * called when GCMD.WBF completes (CAP.RWBF: table writes become visible to the unit). */
struct model_mem_ops {
	int (*read)(void *ctx, uint64_t pa, void *buf, size_t len, enum model_mem_kind kind);
	int (*write)(void *ctx, uint64_t pa, const void *buf, size_t len, enum model_mem_kind kind);
	void (*interrupt)(void *ctx, enum model_irq which);
	void *(*alloc)(void *ctx, size_t size);
	void (*free)(void *ctx, void *ptr, size_t size);
	void (*flush_write_buffer)(void *ctx);
};

struct model;

/* Creates a unit in its reset state. NULL when cfg is inconsistent (e.g. nfr 0 or
 * > 256, mgaw outside 21..64, registers overlapping) or an allocation fails. cfg and
 * ops are copied. */
struct model *dmar_model_create(const struct model_config *cfg, const struct model_mem_ops *ops,
			   void *ctx);
void dmar_model_destroy(struct model *m);
const struct model_config *dmar_model_get_config(const struct model *m);

/* Register access at `off` from the unit's base. 64-bit registers may also be accessed
 * as two 32-bit halves (low half first, as a 32-bit driver does). Misaligned or
 * out-of-range accesses read all-ones and are ignored on write. */
uint32_t dmar_model_read32(struct model *m, uint32_t off);
uint64_t dmar_model_read64(struct model *m, uint32_t off);
void dmar_model_write32(struct model *m, uint32_t off, uint32_t val);
void dmar_model_write64(struct model *m, uint32_t off, uint64_t val);

enum model_dir {
	MODEL_DMA_READ,   /* the device reads memory */
	MODEL_DMA_WRITE,  /* the device writes memory */
};

struct model_fault {
	uint16_t sid;
	uint64_t addr;     /* page address, as recorded in FRCD */
	unsigned reason;   /* VTD_FR_* */
	bool is_read;
	bool recorded;     /* false when suppressed by FPD or lost (registers full / PFO) */
};

/* Result of dmar_model_dma() when the translated address is not memory: a bus error, not a
 * remapping fault; nothing is recorded. */
#define MODEL_DMA_BUS_ERROR (-1)

/* One device DMA of `len` bytes at `iova` from source id `sid`, translated page by
 * page through the caches; data moves through the mem ops (MODEL_MEM_DMA). Returns 0,
 * a fault reason (> 0; the first faulting page stops the transfer, bytes before it
 * were transferred; *fault describes it), or MODEL_DMA_BUS_ERROR. fault may be NULL.
 * With GSTS.TES=0 (or null_hw), DMA goes to physical = iova. A 4-byte write into
 * 0xFEEx_xxxx is an interrupt request instead: dmar_model_interrupt() with the buffer's
 * 32 bits as data (0 when remapped or passed, else its fault reason). */
int dmar_model_dma(struct model *m, uint16_t sid, uint64_t iova, void *buf, size_t len,
	      enum model_dir dir, struct model_fault *fault);

/* What an interrupt request turned into (dmar_model_interrupt). */
struct model_irq_delivery {
	bool remapped;       /* through an IRT entry; false: compatibility format passed */
	uint16_t index;      /* the interrupt_index (remapped, or of the fault) */
	uint8_t vector;
	uint32_t dest;       /* APIC id: 8 bits (xAPIC), 32 bits with EIME */
	unsigned delivery_mode; /* DLM (or the compatibility data's delivery mode) */
	bool logical;        /* destination mode */
	bool level;          /* trigger mode */
	bool redirection_hint;
	bool recorded;       /* on a fault: recorded (false: FPD, or registers full/PFO) */
};

/* One interrupt request from source id `sid`: a DMA write of `data` to `addr` in the
 * interrupt window (VT-d 5.1). With GSTS.IRES clear it passes as a compatibility-format
 * interrupt. Otherwise a remappable request is translated through the IEC and the IRT;
 * a compatibility one passes only with CFIS set and EIME clear. Returns 0 with *out
 * filled, or an interrupt-remapping fault reason (0x20-0x26; out->index and
 * out->recorded say more) after recording it like a DMA fault (FRCD FI[63:48] = the
 * index, or 0 for 0x20 and 0x25) unless the entry's FPD suppresses it. A write outside
 * 0xFEEx_xxxx is no interrupt request: MODEL_DMA_BUS_ERROR. out may be NULL. */
int dmar_model_interrupt(struct model *m, uint16_t sid, uint64_t addr, uint32_t data,
			 struct model_irq_delivery *out);

/* Walks the tables in memory now, ignoring every cache, with no side effects at all
 * (reads use MODEL_MEM_PEEK). Returns 0 with *pa set, or a fault reason with *reason
 * set too (either pointer may be NULL). Translation disabled: *pa = iova. */
int dmar_model_translate(struct model *m, uint16_t sid, uint64_t iova, enum model_dir dir,
		    uint64_t *pa, unsigned *reason);

/* Slow or dead hardware: the status change of `what` happens only after `polls` more
 * polls (register reads of this unit, or dmar_model_tick() calls); MODEL_NEVER: never.
 * The command itself takes effect when its status changes. Ignored in null_hw mode. */
enum model_ack {
	MODEL_ACK_TE,      /* GSTS.TES */
	MODEL_ACK_SRTP,    /* GSTS.RTPS */
	MODEL_ACK_SFL,     /* GSTS.FLS */
	MODEL_ACK_WBF,     /* GSTS.WBFS clearing */
	MODEL_ACK_QIE,     /* GSTS.QIES */
	MODEL_ACK_IRE,     /* GSTS.IRES */
	MODEL_ACK_SIRTP,   /* GSTS.IRTPS */
	MODEL_ACK_CFI,     /* GSTS.CFIS */
	MODEL_ACK_CCMD,    /* CCMD.ICC clearing */
	MODEL_ACK_IOTLB,   /* IOTLB.IVT clearing */
	MODEL_ACK_QI,      /* processing of descriptors after an IQT write */
	MODEL_ACK_AFL,     /* GSTS.AFLS (advanced fault logging enable; CAP.AFL) */
	MODEL_ACK_COUNT
};
#define MODEL_NEVER 0xffffffffu
void dmar_model_set_ack_delay(struct model *m, enum model_ack what, unsigned polls);
/* One poll that is not a register read (the host port calls it when the driver reads
 * the clock or delays), so memory-polled completions (wait descriptors) progress. */
void dmar_model_tick(struct model *m);

struct model_stats {
	uint64_t reg_reads, reg_writes;
	uint64_t reg_writes_ignored;   /* read-only registers, CCMD/IOTLB while QIE, ... */
	uint64_t cc_inval[4];          /* context-cache invalidations by granularity 1..3 */
	uint64_t iotlb_inval[4];       /* IOTLB invalidations by granularity 1..3 */
	uint64_t iotlb_inval_pages;    /* 4 KiB pages covered by page-selective ones */
	uint64_t qi_desc[8];           /* descriptors processed by type (VTD_INV_*) */
	uint64_t qi_wait;              /* wait descriptors processed */
	uint64_t qi_errors;            /* invalid descriptors (IQE) */
	uint64_t wbf;                  /* write-buffer flushes */
	uint64_t faults_recorded, faults_suppressed, faults_overflowed;
	uint64_t iotlb_hits, iotlb_misses;
	uint64_t ctx_hits, ctx_misses;
	uint64_t psc_hits;
	uint64_t dma_ops, dma_bytes;
	uint64_t irq_fault, irq_inval;  /* interrupts delivered */
	/* Interrupt remapping. */
	uint64_t intr_requests, intr_remapped, intr_compat, intr_faults;
	uint64_t iec_hits, iec_misses;
	uint64_t iec_inval_global, iec_inval_index; /* IEC descriptors by granularity */
	uint64_t sirtp;                 /* table pointer latches */
};
const struct model_stats *dmar_model_stats(const struct model *m);
void dmar_model_stats_reset(struct model *m);

/* Entries currently held by the caches (for tests). */
unsigned dmar_model_iotlb_entries(const struct model *m);
unsigned dmar_model_ctx_entries(const struct model *m);
/* Entries the interrupt entry cache holds, and the table SIRTP latched (before any
 * SIRTP: what IRTA's reset value says, 2 entries at address 0). */
unsigned dmar_model_iec_entries(const struct model *m);
void dmar_model_irt(const struct model *m, uint64_t *base, unsigned *entries, bool *eime);

#endif
