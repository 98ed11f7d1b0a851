/*
 * dmar_internal.h - state of the remapping core, shared by system.c, unit.c, inval*.c,
 * context.c, domain.c, fault.c and ir.c. Not part of the public API.
 */
#ifndef DMAR_INTERNAL_H
#define DMAR_INTERNAL_H

#include "dmar/dmar.h"
#include "dmar/ir.h"
#include "pgtable.h"
#include "regs.h"
#include "lib/util.h"

#define DMAR_MAX_UNITS 64
#define DMAR_MAX_RESERVED 16
#define DMAR_MAX_OWED 16

struct dmar_unit;

/* An invalidation backend (inval_reg.c, inval_qi.c). Each call either completes the
 * invalidation (registers) or queues it (QI); sync() returns when everything issued
 * before it has completed. All calls are made with the unit's inval lock held. */
struct inval_backend {
	const char *name;
	int (*context)(struct dmar_unit *u, unsigned gran, uint16_t did, uint16_t sid,
		       unsigned fm);
	int (*iotlb)(struct dmar_unit *u, unsigned gran, uint16_t did, uint64_t addr,
		     unsigned am, bool ih);
	int (*sync)(struct dmar_unit *u);
	/* sync in two halves (queued only; NULL in the register backend, whose requests
	 * complete as they are made): start under the unit lock, then wait for the ticket
	 * without it. */
	int (*sync_start)(struct dmar_unit *u, uint32_t *ticket);
	int (*sync_wait)(struct dmar_unit *u, uint32_t ticket);
	/* Interrupt entry cache (queued only; NULL in the register backend): global, or
	 * the 2^im entries from `index` (aligned). */
	int (*iec)(struct dmar_unit *u, bool global, unsigned index, unsigned im);
};

struct inval_qi {
	void *ring;              /* one page: 256 descriptors of 16 bytes */
	uint64_t ring_phys;
	unsigned tail;           /* next free slot */
	unsigned head;           /* IQH as last seen (the ring is full when tail+1 == head) */
	volatile uint32_t *status; /* wait-descriptor status word (in its own page) */
	void *status_page;
	uint64_t status_phys;
	uint32_t seq;            /* the last wait descriptor's number (unit lock) */
	uint32_t failed_seq;     /* waits up to this number were dropped by a recovery
				    (atomic; read by waiters without the unit lock) */
};

struct dmar_domain {
	struct dmar_unit *unit;
	struct dmar_domain *next;  /* the unit's list of domains */
	uint16_t did;
	enum dmar_domain_kind kind;
	unsigned width;
	bool passthrough_tt;
	bool has_pgtable;
	bool caller_holds_deferred;
	struct pgtable pt;
	unsigned ndevices;
	void *lock;
	/* Under the domain lock: */
	unsigned nreserved;      /* identity-mapped RMRR ranges */
	struct dmar_range reserved[DMAR_MAX_RESERVED];
	unsigned reserved_refs[DMAR_MAX_RESERVED]; /* attaches that asked for each */
	/* An IOTLB invalidation that failed (timeout, queue error) and is still owed:
	 * the range and the table pages the unmaps detached (kept allocated, the unit
	 * may still walk them) until an invalidation covering them completes; and the
	 * unmaps that returned the error, so that retrying one of them succeeds. */
	struct {
		bool pending;
		struct pgtable_flush fl;
		unsigned nranges;
		struct dmar_range ranges[DMAR_MAX_OWED];
	} owed;
	/* Deferred unmaps (dmar_unmap_deferred): entries cleared, their invalidation and
	 * the table pages they detached still to come (domain lock). */
	struct {
		struct pgtable_flush fl;
		unsigned count;
	} deferred;
	/* Windows (window.c), under the domain lock: their ranges are refused to map and
	 * unmap, and destroying the domain frees those left. */
	struct dmar_window *windows;
	/* Under the unit lock: pins by fault explanations, and a destroy that waits for
	 * the last one to go (the domain is unlinked and its id free already). */
	unsigned pins;
	bool dying;
};

struct dmar_window {
	struct dmar_domain *dom;
	struct dmar_window *next;  /* the domain's list (domain lock) */
	uint64_t base;
	uint64_t *leaf;            /* its leaf table */
};

/* Interrupt remapping of a unit while it is on (ir.c). The pointer in the unit changes
 * only with both the unit lock and the IR lock held, so either lock keeps it stable;
 * the table's contents, the bitmap and the handle list are under the IR lock. */
struct dmar_ir {
	volatile uint64_t *irt;  /* entries x 2 quadwords (low, high) */
	uint64_t irt_phys;
	unsigned entries;
	bool contig;             /* from contig_alloc (several pages), else page_alloc */
	bool eim;                /* IRTA.EIME: 32-bit destinations */
	bool compat;             /* GCMD.CFI set: compatibility format passes */
	uint64_t *used;          /* bitmap of the entries handles hold */
	unsigned nused;
	struct dmar_irq *irqs;   /* every handle (dmar_ir_disable drops them) */
};

/* What kind of source a handle's entries serve. */
enum dmar_irq_kind { DMAR_IRQ_MSI, DMAR_IRQ_IOAPIC, DMAR_IRQ_HPET };

struct dmar_irq {
	struct dmar_unit *unit;
	struct dmar_irq *prev, *next; /* the unit's handle list (IR lock) */
	unsigned index, count;
	enum dmar_irq_kind kind;
	uint64_t hi;             /* source-id verification of every entry */
	struct dmar_irq_target target;
};

/* A function attached with dmar_domain_attach_device, by all its requester ids (on
 * its unit's list, under the unit lock). */
struct dmar_attached {
	struct dmar_attached *next;
	struct dmar_domain *dom;
	uint16_t bdf;
	unsigned nids;
	uint16_t ids[DMAR_MAX_REQUESTER_IDS];
};

struct dmar_unit {
	struct dmar_system *sys;
	unsigned index;
	uint16_t segment;
	uint64_t base;
	uint32_t ver;
	uint64_t cap, ecap;
	unsigned iotlb_off;      /* ECAP.IRO * 16 */
	unsigned frcd_off;       /* CAP.FRO * 16 */
	unsigned nfr;
	unsigned sagaw;          /* supported AGAW bits the driver can use */
	unsigned mgaw;
	unsigned ndomains;
	bool coherent, cm, rwbf;
	void *lock;              /* context tables, domain ids, domain list, invalidation */
	void *fault_lock;        /* the fault registers (a leaf lock, see os.h) */
	void *ir_lock;           /* interrupt remapping: table, handles (a leaf lock) */
	struct dmar_ir *ir;      /* NULL while interrupt remapping is off */
	uint64_t iec_global, iec_index; /* IEC invalidations issued */
	void *root;
	uint64_t root_phys;
	void *ctx[256];          /* context table per bus, NULL until needed */
	uint64_t ctx_phys[256];
	uint64_t *did_map;       /* bitmap of used domain ids */
	unsigned did_hint;
	struct dmar_domain *domains;
	struct dmar_attached *attached; /* functions attached by requester ids */
	const struct inval_backend *inval;
	struct inval_qi qi;
	unsigned fault_next;     /* next fault recording register to look at */
	struct dmar_unit_stats stats;
};

struct dmar_system {
	struct dmar_os os;
	struct dmar_config cfg;
	const struct dmar_acpi_table *table;
	dmar_secondary_bus_fn topology;
	void *topology_ctx;
	dmar_pci_upstream_fn upstream;
	void *upstream_ctx;
	unsigned naliases;                /* declared DMA-alias quirks */
	struct { uint16_t segment, sid, alias; } aliases[DMAR_MAX_DMA_ALIASES];
	struct dmar_unit *units[DMAR_MAX_UNITS];
	unsigned nunits;
	/* fault ring */
	void *fault_lock;
	struct dmar_fault_record *ring;
	unsigned ring_size, ring_head, ring_count;
	uint64_t fault_seq;
	struct dmar_fault_counters fault_counters;
	dmar_fault_fn fault_cb;
	void *fault_cb_ctx;
};

/* log.c */
void dmar__log(const struct dmar_system *sys, enum dmar_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* OS layer wrappers (locks are optional). */
void *dmar__os_alloc(const struct dmar_os *os, size_t size);   /* zeroed */
void dmar__os_free(const struct dmar_os *os, void *p, size_t size);
void *dmar__os_lock_create(const struct dmar_os *os, bool *failed);
void dmar__os_lock_destroy(const struct dmar_os *os, void *lock);
static inline void os_lock(const struct dmar_os *os, void *lock)
{
	if (lock)
		os->ops->lock_acquire(os->ctx, lock);
}
static inline void os_unlock(const struct dmar_os *os, void *lock)
{
	if (lock)
		os->ops->lock_release(os->ctx, lock);
}
/* Makes `len` bytes of table memory at `va` visible to a non-snooping unit. */
static inline void unit_flush_table(const struct dmar_unit *u, const void *va, size_t len)
{
	if (!u->coherent)
		u->sys->os.ops->cache_flush(u->sys->os.ctx, va, len);
}

/* Size of the unit's domain-id bitmap. */
static inline unsigned did_map_words(const struct dmar_unit *u)
{
	return (u->ndomains + 63) / 64;
}

/* unit.c: register access and handshakes */
uint32_t dmar__unit_read32(const struct dmar_unit *u, unsigned off);
uint64_t dmar__unit_read64(const struct dmar_unit *u, unsigned off);
void dmar__unit_write32(const struct dmar_unit *u, unsigned off, uint32_t v);
void dmar__unit_write64(const struct dmar_unit *u, unsigned off, uint64_t v);
/* Calls done() with growing pauses until it returns 1 (DMAR_OK) or a negative error
 * (returned as is); DMAR_ETIMEDOUT, logged, after the configured timeout. */
typedef int (*unit_poll_fn)(struct dmar_unit *u, void *arg);
int dmar__unit_poll(struct dmar_unit *u, unit_poll_fn done, void *arg, const char *what);
/* Polls a register until (value & mask) == want, within the configured timeout. */
int dmar__unit_wait(struct dmar_unit *u, unsigned off, bool is64, uint64_t mask, uint64_t want,
	      const char *what);
/* Sets (on) or clears a persistent GCMD enable and waits for its GSTS bit. */
int dmar__unit_gcmd_enable(struct dmar_unit *u, uint32_t cmd, uint32_t sts, bool on,
			   const char *what);
/* Issues a one-shot GCMD command (SRTP, SIRTP) with the persistent enables carried
 * along, and waits for its GSTS status bit to be set. */
int dmar__unit_gcmd_oneshot(struct dmar_unit *u, uint32_t cmd, uint32_t sts, const char *what);
/* Turns translation on if it is off (unit lock held), then switches off protected
 * memory regions firmware left enabled. */
int dmar__unit_translation_on(struct dmar_unit *u);
/* Widest address width the unit supports for second-level tables (SAGAW), in bits. */
unsigned dmar__unit_widest_agaw(const struct dmar_unit *u);
/* Flushes the write buffer when CAP.RWBF says it must be. */
int dmar__unit_flush_write_buffer(struct dmar_unit *u);
int dmar__unit_create(struct dmar_system *sys, uint16_t segment, uint64_t base,
		      struct dmar_unit **out);
void dmar__unit_destroy(struct dmar_unit *u);

/* inval.c */
extern const struct inval_backend dmar__inval_reg_backend;
extern const struct inval_backend dmar__inval_qi_backend;
int dmar__inval_qi_start(struct dmar_unit *u);
void dmar__inval_qi_stop(struct dmar_unit *u);
/* One context-cache or IOTLB invalidation through the unit's backend, counted in the
 * unit's stats. Queued: call dmar__inval_sync. */
int dmar__inval_context(struct dmar_unit *u, unsigned gran, uint16_t did, uint16_t sid);
int dmar__inval_iotlb(struct dmar_unit *u, unsigned gran, uint16_t did, uint64_t addr, unsigned am,
		bool ih);
/* Invalidates the IOTLB for [start, end) of a domain: one page-selective invalidation
 * whose mask covers the range when PSI and MAMV allow, else domain-selective. Queued:
 * call dmar__inval_sync. */
int dmar__inval_iotlb_range(struct dmar_unit *u, uint16_t did, uint64_t start, uint64_t end,
			    bool ih);
int dmar__inval_sync(struct dmar_unit *u);
/* dmar__inval_sync in two halves: start (unit lock held) hands everything queued so far
 * to the unit with a wait behind it; wait (no lock needed, the unit must stay alive)
 * returns once that wait completed, or its error (the queue error or timeout that
 * dropped it). Between the two, other CPUs queue and wait on their own. */
int dmar__inval_sync_start(struct dmar_unit *u, uint32_t *ticket);
int dmar__inval_sync_wait(struct dmar_unit *u, uint32_t ticket);
/* Interrupt entry cache invalidation: global, or index-selective over the 2^im entries
 * from `index` (im <= ECAP.MHMV). DMAR_ENOTSUP without queued invalidation. Queued:
 * call dmar__inval_sync. */
int dmar__inval_iec(struct dmar_unit *u, bool global, unsigned index, unsigned im);

/* context.c (unit lock held) */
int dmar__context_set(struct dmar_unit *u, uint16_t sid, struct dmar_domain *dom);
int dmar__context_clear(struct dmar_unit *u, uint16_t sid);
/* Makes sure the context tables of the ids' buses exist: all of them, or (DMAR_ENOMEM)
 * none of those it had to allocate. */
int dmar__context_tables_for(struct dmar_unit *u, const uint16_t *ids, unsigned n);
/* DID of the present context entry of sid, or -1. */
int dmar__context_did(const struct dmar_unit *u, uint16_t sid);
void dmar__context_free_tables(struct dmar_unit *u);

/* DID of the context entry of sid, read without the unit lock (for fault draining in
 * an interrupt; context tables live as long as the unit), or -1. */
int dmar__context_did_peek(const struct dmar_unit *u, uint16_t sid);

/* alias.c (unit lock held) */
/* The attached function whose own id is bdf, or NULL. */
struct dmar_attached *dmar__attached_find(const struct dmar_unit *u, uint16_t bdf);
/* An attached function other than `except` whose requester ids include id, or NULL. */
struct dmar_attached *dmar__attached_holder(const struct dmar_unit *u, uint16_t id,
				      const struct dmar_attached *except);
/* Names the attached functions that reach the unit as `sid` without it being their own
 * id ("; an alias of 02:03.0 02:04.0"), or writes "" when there are none. */
void dmar__attached_alias_note(struct dmar_unit *u, uint16_t sid, char *buf, size_t len);
void dmar__attached_free_all(struct dmar_unit *u);

/* domain.c */
void dmar__domain_free(struct dmar_domain *dom);
/* The domain with that id, pinned so that a concurrent destroy does not free it
 * (takes the unit lock), or NULL; dmar_domain_unpin releases it. */
struct dmar_domain *dmar__domain_pin(struct dmar_unit *u, int did);
void dmar__domain_unpin(struct dmar_domain *dom);
/* Invalidates the IOTLB for leaf entries of [start, end) that changed (IH=1) and waits,
 * holding no lock while waiting (the unit lock while queueing). For windows. */
int dmar__domain_invalidate(struct dmar_domain *dom, uint64_t start, uint64_t end);
/* Tells the unit of entries a map made present (fl: what the map reported; read only
 * in caching mode, where the unit may hold them as not present (6.1) and they are
 * invalidated); with CAP.RWBF flushes the write buffer. No domain lock needed. */
int dmar__domain_map_announce(struct dmar_domain *dom, const struct pgtable_flush *fl);

/* ir.c */
/* Turns interrupt remapping off (if the driver turned it on) and frees the table and
 * the handles; unit teardown, unit lock not needed (nothing runs concurrently). */
void dmar__ir_teardown(struct dmar_unit *u);
/* Explains an interrupt-remapping fault with what the entry holds now (IR lock). */
int dmar__ir_explain(struct dmar_system *sys, const struct dmar_fault_record *rec, char *buf,
		     size_t len);

/* fault.c */
int dmar__fault_ring_init(struct dmar_system *sys);
void dmar__fault_ring_fini(struct dmar_system *sys);
int dmar__fault_drain_unit(struct dmar_unit *u, bool explain);

#endif
