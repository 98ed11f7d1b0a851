/*
 * dmar/fault.h - fault records: what a unit recorded about a DMA or an interrupt request
 * it blocked.
 *
 * The driver drains a unit's fault recording registers into a ring of records (size
 * hw.dmar.fault_log_size; when full the oldest record is dropped and counted). The
 * embedder calls dmar_fault_poll_irq() from its fault interrupt handler, or
 * dmar_fault_poll() from a thread or timer; records can then be read, and each is also
 * printed as one log line (dmar_fault_poll: telling where the page walk for that
 * address stops in the device's domain).
 * All functions may be called concurrently with each other and with map/unmap.
 */
#ifndef DMAR_FAULT_H
#define DMAR_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dmar_system;

struct dmar_fault_record {
	uint64_t seq;        /* 1, 2, 3, ... in the order the driver drained them */
	unsigned unit;       /* index of the unit (dmar_unit_at) */
	uint16_t segment;
	uint16_t sid;        /* source id: bus << 8 | dev << 3 | fn */
	uint64_t addr;       /* faulting page address as recorded (FRCD.FI) */
	uint8_t reason;      /* the specification's fault reason code */
	bool is_read;        /* FRCD.T: 1 = DMA read of memory, 0 = DMA write */
	bool has_pasid;      /* FRCD.PP; pasid is meaningless when false */
	uint32_t pasid;
	int32_t did;         /* id of the domain the device's context entry named when the
				record was drained; -1: none (not attached, or an interrupt
				fault) */
	/* Interrupt-remapping faults (reasons 0x20-0x27, dmar/ir.h): FRCD.FI[63:48] holds
	 * the interrupt_index the request computed (0 when there is none: reasons 0x20
	 * and 0x25); addr then holds FI as recorded, is_read is false. */
	bool is_intr;
	uint16_t intr_index;
};

struct dmar_fault_counters {
	uint64_t recorded;   /* records drained from the hardware */
	uint64_t dropped;    /* records lost because the ring was full */
	uint64_t overflows;  /* times the unit reported FSTS.PFO (faults it could not record) */
};

typedef void (*dmar_fault_fn)(void *ctx, const struct dmar_fault_record *rec);

/* Drains the fault recording registers of every unit (every register holding a record,
 * while FSTS.PPF stays set, up to 4 x NFR records per unit and call: under a fault storm
 * the next call goes on), clears them and the overflow status, stores the records, logs
 * each one explained as dmar_fault_format does, and calls the callback for each.
 * Returns the number of records drained; it never waits for the hardware.
 * Thread context only (a timer, a thread, a threaded interrupt handler): explaining
 * takes the unit and domain locks, which an interrupted thread may hold. */
int dmar_fault_poll(struct dmar_system *sys);

/* The same for a hard interrupt handler: takes only the units' fault-register locks
 * and the fault ring's lock (leaf locks, never held across a wait; see os.h) and logs
 * each record without the walk. The explanation is available later, from thread
 * context, through dmar_fault_format on the records dmar_fault_read returns. */
int dmar_fault_poll_irq(struct dmar_system *sys);

/* Pops up to `max` of the oldest records into out[]; returns how many. */
unsigned dmar_fault_read(struct dmar_system *sys, struct dmar_fault_record *out, unsigned max);

void dmar_fault_get_counters(const struct dmar_system *sys, struct dmar_fault_counters *c);

/* Called for every drained record, from dmar_fault_poll(_irq), without driver locks
 * held (from the interrupt handler when dmar_fault_poll_irq runs there). */
void dmar_fault_set_callback(struct dmar_system *sys, dmar_fault_fn fn, void *ctx);

/* One-line description of a record plus "; walk: ..." explaining where the page walk
 * for that address stops now in the domain the device was attached to when the record
 * was drained (rec->did; the domain is pinned while walked, and a domain destroyed
 * since is said to be gone). An interrupt fault gets "; IRT: ..." instead: the entry
 * index, what that entry holds now (present, vector, destination, source-id check) and
 * why the request was refused. Thread context only (takes the unit, domain and IR
 * locks). Returns the length the full text would have (like snprintf). */
int dmar_fault_format(struct dmar_system *sys, const struct dmar_fault_record *rec,
		      char *buf, size_t len);

#endif
