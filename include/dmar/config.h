/*
 * dmar/config.h - the driver's tunables, set from one string such as a kernel command
 * line: "hw.dmar.enable=1 hw.dmar.qi=0 hw.busdma.pci0:0:2:0.bounce=1".
 *
 * Keys (defaults in brackets; the README has the full table):
 *   hw.dmar.enable        [1]   0: no remapping; busdma bounces for every device
 *   hw.dmar.qi            [-1]  1: queued invalidation, 0: registers, -1: QI when ECAP.QI
 *   hw.dmar.timeout_us    [1000000] bound on every wait for the hardware
 *   hw.dmar.fault_log_size [64] fault records kept in the ring (older ones are dropped)
 *   hw.dmar.guard_pages   [1]   unmapped IOVA pages after each busdma allocation
 *   hw.dmar.checksum_fatal [0]  1: refuse a DMAR table whose checksum is wrong
 *   hw.dmar.strict        [1]   0: busdma unloads defer their IOTLB invalidation (see
 *                               busdma.h: the device may reach the unloaded buffer's old
 *                               pages until the flush, never another buffer's)
 *   hw.dmar.defer_max     [256] deferred unloads of a device before a flush (1..65536)
 *   hw.dmar.defer_us      [10000] age of the oldest deferred unload past which
 *                               dmar_busdma_tick() flushes (1..10000000)
 *   hw.dmar.ir            [1]   0: dmar_ir_enable refuses (no interrupt remapping)
 *   hw.dmar.ir_entries    [256] IRT entries per unit: a power of two, 16..65536 (above
 *                               256 the table needs the OS layer's contig_alloc)
 *   hw.dmar.ir_compat     [0]   1: compatibility-format interrupts pass while
 *                               interrupt remapping is on (GCMD.CFI); 0: blocked
 *   hw.dmar.x2apic        [0]   1: the local APICs run in x2APIC mode (extended
 *                               interrupt mode, 32-bit destinations, when ECAP.EIM)
 *   hw.busdma.pciD:B:S:F.bounce=1   that device bypasses translation (pass-through or an
 *                                   identity table) and its busdma loads bounce
 * Keys outside the hw.dmar. and hw.busdma. namespaces are ignored silently (a kernel
 * command line holds other things); unknown keys inside them and bad values are
 * reported through the warn callback, naming them, and leave the default in place.
 * Pure functions: no locking needed, any thread.
 */
#ifndef DMAR_CONFIG_H
#define DMAR_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#define DMAR_CONFIG_MAX_BOUNCE 32

struct dmar_pci_addr {
	uint16_t segment;
	uint8_t bus, dev, fn;
};

struct dmar_config {
	bool enable;
	int qi;
	uint64_t timeout_ns;
	unsigned fault_log_size;
	unsigned guard_pages;
	bool checksum_fatal;
	bool strict;
	unsigned defer_max;
	uint64_t defer_ns;
	unsigned cpu_windows;    /* busdma: per-CPU IOVA windows per device (0: none) */
	/* Interrupt remapping (dmar/ir.h). */
	bool ir;                 /* dmar_ir_enable allowed */
	unsigned ir_entries;     /* IRT size per unit */
	bool ir_compat;          /* compatibility-format interrupts pass (CFI) */
	bool x2apic;             /* the embedder's local APICs are in x2APIC mode */
	unsigned nbounce;
	struct dmar_pci_addr bounce[DMAR_CONFIG_MAX_BOUNCE];
};

typedef void (*dmar_config_warn_fn)(void *ctx, const char *message);

/* Fills *cfg with the defaults above. */
void dmar_config_default(struct dmar_config *cfg);

/* Applies the key=value words of `str` (separated by blanks) on top of *cfg. Returns the
 * number of warnings issued (0: everything understood). `warn` may be NULL. */
int dmar_config_parse(struct dmar_config *cfg, const char *str, dmar_config_warn_fn warn,
		      void *warn_ctx);

/* True when the tunables ask for the device to bounce instead of being translated. */
bool dmar_config_device_bounces(const struct dmar_config *cfg, struct dmar_pci_addr dev);

#endif
