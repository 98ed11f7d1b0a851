/*
 * model_impl.h - the model's internal state, shared by its files (one concept each):
 * config.c (CAP/ECAP encoding), regs.c (register file, GCMD commands, slow-hardware
 * knobs), walk.c (translation, DMA), cache.c (context cache, IOTLB, paging-structure
 * cache and their invalidation), qi.c (queued invalidation), fault.c (fault recording
 * and the fault event), ir.c (interrupt remapping: the IRT, its entry cache, requests).
 */
#ifndef DMAR_MODEL_IMPL_H
#define DMAR_MODEL_IMPL_H

#include "model.h"
#include "regs.h"

/* Context-cache entry for one source id. */
struct cc_entry {
	bool valid;
	uint8_t reason;   /* nonzero: a cached not-present result (caching mode) */
	uint16_t did;
	uint64_t lo, hi;
};

/* IOTLB (leaf) or paging-structure cache (non-leaf) entry. It covers the region of
 * 2^shift bytes at key << shift, shift = 12 + 9 * (level - 1). */
struct tlb_entry {
	struct tlb_entry *next;
	uint64_t key;
	uint64_t addr;    /* leaf: physical base of the page; non-leaf: next table */
	uint16_t did;
	uint8_t level;
	uint8_t leaf;
	uint8_t perm;     /* VTD_SL_R | VTD_SL_W accumulated over the walk; 0 = not present */
};

#define TLB_BUCKETS 1024u

/* Interrupt entry cache: a present, valid IRTE by index. */
struct iec_entry {
	struct iec_entry *next;
	uint16_t index;
	uint64_t lo, hi;
};

#define IEC_BUCKETS 256u

/* Bytes (as a shift) that one entry at page-table `level` maps: 1 -> 4 KiB, 2 -> 2 MiB. */
static inline unsigned level_shift(unsigned level)
{
	return 12u + 9u * (level - 1u);
}

struct pending {
	unsigned left;
	uint32_t arg;
};

struct model {
	struct model_config cfg;
	struct model_mem_ops ops;
	void *ctx;
	uint64_t cap, ecap;
	uint32_t reg_size;
	uint32_t *regs;           /* the register file, reg_size / 4 dwords */
	uint32_t iotlb_off;       /* IVA register offset (IRO * 16) */
	uint32_t frcd_off;        /* first fault recording register (FRO * 16) */

	uint64_t root;            /* root table latched by SRTP */
	unsigned fri_next;        /* next fault recording register to fill */

	/* Slow-hardware knobs and commands waiting for them. */
	unsigned delay[MODEL_ACK_COUNT];
	struct pending pend[MODEL_ACK_COUNT];
	uint32_t pend_mask;       /* bit per MODEL_ACK_* */

	struct cc_entry *cc[256]; /* per bus, 256 devfn each; allocated on first use */
	unsigned cc_count;
	struct tlb_entry *tlb[TLB_BUCKETS];
	uint64_t tlb_used[TLB_BUCKETS / 64]; /* buckets that may hold entries */
	unsigned tlb_leaf, tlb_psc;

	/* Interrupt remapping: the table latched by SIRTP, and the entry cache. */
	uint64_t irt_base;
	unsigned irt_entries;     /* 0: no table latched yet */
	bool irt_eime;
	struct iec_entry *iec[IEC_BUCKETS];
	unsigned iec_count;

	struct model_stats stats;
};

/* config.c: whether a configuration describes hardware the model can be. */
bool dmar__mdl_config_valid(const struct model_config *cfg);

/* regs.c */
static inline uint32_t reg32(const struct model *m, uint32_t off) { return m->regs[off / 4]; }
static inline void set_reg32(struct model *m, uint32_t off, uint32_t v) { m->regs[off / 4] = v; }
static inline uint64_t reg64(const struct model *m, uint32_t off)
{
	return (uint64_t)m->regs[off / 4] | ((uint64_t)m->regs[off / 4 + 1] << 32);
}
static inline void set_reg64(struct model *m, uint32_t off, uint64_t v)
{
	m->regs[off / 4] = (uint32_t)v;
	m->regs[off / 4 + 1] = (uint32_t)(v >> 32);
}
void dmar__mdl_regs_reset(struct model *m);
/* Raises an event: MODEL_IRQ_FAULT via FECTL, MODEL_IRQ_INVAL via IECTL (IM/IP). */
void dmar__mdl_event(struct model *m, enum model_irq which);

/* cache.c */
void dmar__mdl_cache_init(struct model *m);
void dmar__mdl_cache_fini(struct model *m);
struct cc_entry *dmar__mdl_cc_lookup(struct model *m, uint16_t sid);
void dmar__mdl_cc_insert(struct model *m, uint16_t sid, uint16_t did, uint64_t lo, uint64_t hi,
	       unsigned reason);
struct tlb_entry *dmar__mdl_tlb_lookup(struct model *m, uint16_t did, unsigned level, bool leaf,
			     uint64_t iova);
void dmar__mdl_tlb_insert(struct model *m, uint16_t did, unsigned level, bool leaf, uint64_t iova,
		uint64_t addr, unsigned perm);
/* Context-cache invalidation; granularity VTD_CC_*. Returns the granularity done. */
unsigned dmar__mdl_cc_invalidate(struct model *m, unsigned gran, uint16_t did, uint16_t sid,
		       unsigned fm);
/* IOTLB (+ paging-structure cache) invalidation; granularity VTD_IOTLB_*. Returns the
 * granularity performed, or 0 when the request is invalid (AM beyond MAMV). */
unsigned dmar__mdl_iotlb_invalidate(struct model *m, unsigned gran, uint16_t did, uint64_t addr,
			  unsigned am, bool ih);

/* ir.c */
/* SIRTP: latches IRTA (base, size, EIME); empties the IEC when CAP.ESIRTPS. */
void dmar__mdl_ir_latch(struct model *m);
/* IEC invalidation: global, or the 2^im indexes around `index`. */
void dmar__mdl_iec_invalidate(struct model *m, bool global, unsigned index, unsigned im);
void dmar__mdl_iec_fini(struct model *m);

/* qi.c */
void dmar__mdl_qi_process(struct model *m);

/* fault.c */
/* Records a primary fault. Returns whether it was recorded. */
bool dmar__mdl_fault_record(struct model *m, uint16_t sid, uint64_t addr, unsigned reason,
			    bool is_read);
/* FSTS/FRCD write handling. */
void dmar__mdl_fault_write_fsts(struct model *m, uint32_t val);
/* off: from the first fault recording register. */
void dmar__mdl_fault_write_frcd(struct model *m, uint32_t off, uint32_t val);
/* Sets FSTS.IQE (the queue stops) and raises the fault event. */
void dmar__mdl_fault_raise_iqe(struct model *m);

#endif
