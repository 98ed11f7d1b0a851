/*
 * dmar/ir.h - interrupt remapping (VT-d chapter 5): every interrupt request a device,
 * IOAPIC or HPET sends goes through the unit's interrupt remapping table (IRT), which
 * names the vector and destination and checks who sent it (source-id verification).
 * An MSI is only a DMA write to 0xFEEx_xxxx; with remapping on, a device can raise only
 * the interrupts whose entries admit its requester id.
 *
 * Bring-up: the embedder calls dmar_ir_enable() per unit once it is ready to program
 * its interrupt sources in remappable format (with compatibility format blocked, every
 * interrupt it has not moved to an IRT entry stops arriving); dmar_system_create does
 * not turn IR on. Tunables (dmar/config.h: cfg->ir, ir_entries, ir_compat, x2apic):
 *   hw.dmar.ir          [1]    0: dmar_ir_enable refuses (DMAR_ENOTSUP, logged)
 *   hw.dmar.ir_entries  [256]  IRT entries per unit, a power of two 16..65536
 *   hw.dmar.ir_compat   [0]    1: compatibility-format interrupts pass (GSTS.CFIS);
 *                              0: they are blocked (and fault, reason 0x25)
 *   hw.dmar.x2apic      [0]    1: the local APICs run in x2APIC mode (cfg->x2apic)
 * Extended interrupt mode (IRTA.EIME, 32-bit destination ids) is used when the unit
 * offers ECAP.EIM and the embedder says its local APICs run in x2APIC mode
 * (cfg->x2apic); the DMAR table's X2APIC_OPT_OUT flag turns it off (logged). Without
 * EIM, destinations above 255 are refused with DMAR_ERANGE.
 *
 * Entries: each dmar_irq holds `count` consecutive IRT entries (a multi-message MSI
 * block: count a power of two, the message's data selects the sub-handle) on the unit
 * that covers the source. Programming an entry writes it whole (the 128-bit entry is
 * written high half first, present bit last) and invalidates that index in the
 * interrupt entry cache, waiting for completion; freeing clears it and invalidates the
 * same way. A failed allocation leaves no entry half-programmed.
 *
 * Locking: every function here takes the unit's IR lock (a leaf lock below the unit
 * lock, see os.h); none may be called from an interrupt handler except
 * dmar_ir_msi_message and dmar_ir_ioapic_rte (pure).
 */
#ifndef DMAR_IR_H
#define DMAR_IR_H

#include <stdbool.h>
#include <stdint.h>

struct dmar_system;
struct dmar_unit;
struct dmar_irq;

/* Where an interrupt goes: what the IRTE's DST, V, DLM, TM and DM fields hold. */
struct dmar_irq_target {
	uint32_t dest;           /* APIC id (xAPIC: 0..255; x2APIC with EIM: 32 bits) */
	uint8_t vector;          /* 16..255 */
	bool logical;            /* destination mode: logical (DM=1), else physical */
	bool lowest_priority;    /* delivery mode lowest priority, else fixed */
	bool level;              /* trigger mode level (TM=1), else edge */
};

/* Sets up the unit's IRT (cfg->ir_entries entries), points IRTA at it (SIRTP handshake,
 * bounded wait), invalidates the whole interrupt entry cache, sets CFI as cfg->ir_compat
 * says and enables IRE (bounded wait). DMAR_ENOTSUP (and a log line saying why) when
 * the unit has no ECAP.IR or does not use queued invalidation. 0 when already on.
 * (Also DMAR_ENOTSUP with hw.dmar.ir=0 or a DMAR table without its INTR_REMAP flag;
 * DMAR_EINVAL when cfg->ir_entries is no power of two in 16..65536; DMAR_ENOTSUP when
 * a table above 256 entries needs contig_alloc and the OS layer has none;
 * DMAR_ENOMEM; DMAR_ETIMEDOUT when a status bit does not come: IR is then left off.
 * A unit that never acknowledges CFI only gets a warning: see hw.dmar.ir_compat.) */
int dmar_ir_enable(struct dmar_unit *unit);
/* Clears IRE (bounded wait) and frees the table; entries still allocated are dropped
 * (their dmar_irq handles must not be used afterwards). */
int dmar_ir_disable(struct dmar_unit *unit);
bool dmar_ir_enabled(const struct dmar_unit *unit);
/* Whether the unit runs in extended interrupt mode (IRTA.EIME). */
bool dmar_ir_eim(const struct dmar_unit *unit);

/* Entries for a PCI function's MSI or MSI-X vectors (count a power of two, 1..32 for
 * MSI; any count up to the table size for MSI-X, one dmar_irq per vector is simpler;
 * entry i gets vector t->vector + i, which must stay within 16..255, else DMAR_EINVAL).
 * Source validation: the function's own requester id (SVT=1, SQ=0) when its requests
 * carry it; when they carry a bridge's alias (dmar_device_requester_ids), the alias
 * (SVT=1), or for a PCIe-to-PCI bridge's secondary bus the bus range [alias bus,
 * device bus] (SVT=2), as the unit would see them. All entries get `t`'s target with
 * vector t->vector + i. DMAR_ENOENT when no unit with IR covers the function,
 * DMAR_ENOSPC when the table has no `count` aligned free entries. */
int dmar_ir_alloc_msi(struct dmar_system *sys, uint16_t segment, uint8_t bus, uint8_t dev,
		      uint8_t fn, unsigned count, const struct dmar_irq_target *t,
		      struct dmar_irq **out);
/* An entry for an IOAPIC pin: the source id is the one the DMAR table's IOAPIC scope
 * with that enumeration id names (SVT=1). DMAR_ENOENT when no scope names the IOAPIC. */
int dmar_ir_alloc_ioapic(struct dmar_system *sys, uint8_t ioapic_id, unsigned pin,
			 const struct dmar_irq_target *t, struct dmar_irq **out);
/* An entry for an HPET timer block's comparator (the HPET scope's source id). */
int dmar_ir_alloc_hpet(struct dmar_system *sys, uint8_t hpet_id, unsigned timer,
		       const struct dmar_irq_target *t, struct dmar_irq **out);

/* Rewrites the entries with a new target (vector + i for entry i) and invalidates them.
 * (DMAR_EINVAL/DMAR_ERANGE for a target as dmar_ir_alloc_msi refuses, nothing changed;
 * when the invalidation fails, DMAR_ETIMEDOUT/DMAR_EHW: the entries hold the new target
 * but the unit may still use the old one until a retry succeeds.) */
int dmar_ir_set_target(struct dmar_irq *irq, const struct dmar_irq_target *t);
/* Clears the entries (present bit first), invalidates them, waits, frees the handle.
 * (The handle is freed even when the invalidation fails, returning its error: the
 * entries are clear, and whoever gets them next invalidates them again.) */
int dmar_ir_free(struct dmar_irq *irq);

/* The first IRT index of the handle, its entry count, and its unit. */
unsigned dmar_ir_index(const struct dmar_irq *irq);
unsigned dmar_ir_count(const struct dmar_irq *irq);
struct dmar_unit *dmar_ir_unit(const struct dmar_irq *irq);

/* The remappable-format MSI the source must send for entry `sub` (0..count-1) of the
 * handle: address 0xFEE00000 | handle[14:0] << 5 | 1 << 4 (remappable) | SHV << 3 |
 * handle[15] << 2, and data (the sub-handle when SHV=1). Pure. */
void dmar_ir_msi_message(const struct dmar_irq *irq, unsigned sub, uint64_t *addr,
			 uint32_t *data);
/* The remappable-format IOAPIC redirection-table entry (64 bits, masked when `masked`)
 * for an IOAPIC handle: index in bits 63:49 and 11, format bit 48, the entry's vector in
 * 7:0 (the IOAPIC matches EOIs by it), trigger mode and polarity. Pure. */
uint64_t dmar_ir_ioapic_rte(const struct dmar_irq *irq, bool active_low, bool masked);

/* What entry `index` of a unit's IRT holds now (for fault explanations and tests):
 * fills *lo and *hi with its two 64-bit halves. DMAR_ERANGE beyond the table. */
int dmar_ir_entry(struct dmar_unit *unit, unsigned index, uint64_t *lo, uint64_t *hi);

/* A unit's interrupt remapping state and counters (for tests, dmarctl-like tools). */
struct dmar_ir_info {
	bool enabled;            /* the driver turned IRE on (dmar_ir_enable) */
	bool eim;                /* extended interrupt mode (IRTA.EIME) */
	bool compat;             /* compatibility-format interrupts pass (CFI, no EIM) */
	unsigned entries;        /* IRT size; 0 while off */
	unsigned used;           /* entries held by dmar_irq handles */
	uint64_t table_phys;     /* the IRT's physical address (IRTA) */
	uint64_t iec_global;     /* interrupt entry cache invalidations issued: global */
	uint64_t iec_index;      /*   and index-selective */
};
void dmar_ir_get_info(const struct dmar_unit *unit, struct dmar_ir_info *info);

#endif
