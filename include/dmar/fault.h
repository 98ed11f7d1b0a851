/*
 * dmar/fault.h - fault records: what a unit recorded about a DMA it blocked.
 *
 * The driver drains a unit's fault recording registers into a ring of records (size
 * hw.dmar.fault_log_size; when full the oldest record is dropped and counted). The
 * embedder calls dmar_fault_poll() from its fault interrupt handler or periodically;
 * records can then be read, and each is also printed as one log line followed by a line
 * telling where the page walk for that address stops in the device's domain.
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
};

struct dmar_fault_counters {
	uint64_t recorded;   /* records drained from the hardware */
	uint64_t dropped;    /* records lost because the ring was full */
	uint64_t overflows;  /* times the unit reported FSTS.PFO (faults it could not record) */
};

typedef void (*dmar_fault_fn)(void *ctx, const struct dmar_fault_record *rec);

/* Drains the fault recording registers of every unit, clears them and the overflow
 * status, stores and prints the records, and calls the callback for each. Returns the
 * number of records drained, or a negative error (e.g. DMAR_ETIMEDOUT is never waited
 * for here: draining does not wait). */
int dmar_fault_poll(struct dmar_system *sys);

/* Pops up to `max` of the oldest records into out[]; returns how many. */
unsigned dmar_fault_read(struct dmar_system *sys, struct dmar_fault_record *out, unsigned max);

void dmar_fault_get_counters(const struct dmar_system *sys, struct dmar_fault_counters *c);

/* Called for every drained record, from dmar_fault_poll, without driver locks held. */
void dmar_fault_set_callback(struct dmar_system *sys, dmar_fault_fn fn, void *ctx);

/* One-line description of a record plus " ; walk: ..." explaining where the page walk
 * for that address stops in the domain the device is attached to now. Returns the
 * length the full text would have (like snprintf). */
int dmar_fault_format(struct dmar_system *sys, const struct dmar_fault_record *rec,
		      char *buf, size_t len);

#endif
