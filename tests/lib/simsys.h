/*
 * simsys.h - a simulated machine with one or more VT-d units and a dmar_system on it,
 * for the remapping-core tests and benchmarks.
 */
#ifndef DMAR_TEST_SIMSYS_H
#define DMAR_TEST_SIMSYS_H

#include "dmar/dmar.h"
#include "model.h"
#include "posix_machine.h"

#define SIMSYS_REG_BASE 0xfed90000ull

struct simsys {
	struct posix_machine *pm;
	struct model *model;
	struct dmar_system *sys;
	struct dmar_unit *unit;
	struct dmar_config cfg;
	struct model_config mcfg;
};

/* QEMU's unit whose caches keep every entry until it is invalidated (no eviction), so
 * that a missing invalidation shows as a stale translation. */
struct model_config simsys_keep_everything(void);
/* Machine + unit with `mcfg` (NULL: QEMU defaults) and a system with `cfg` (NULL:
 * defaults, timeout 10 ms). Returns 0 or the error of dmar_system_create/add_unit; the
 * machine stays up on error so the caller can inspect it (call simsys_down). */
int simsys_up(struct simsys *s, const struct model_config *mcfg, const struct dmar_config *cfg);
/* The same, with `firmware` run on the unit before the driver sees it (registers left
 * as a BIOS or boot loader would leave them). */
int simsys_up_after(struct simsys *s, const struct model_config *mcfg,
		    const struct dmar_config *cfg, void (*firmware)(struct model *unit));
/* The same, with the system made from `table` (whose DRHDs name SIMSYS_REG_BASE):
 * s->unit is its first unit. */
int simsys_up_table(struct simsys *s, const struct model_config *mcfg,
		    const struct dmar_config *cfg, const struct dmar_acpi_table *table);
/* Destroys the system and the machine; returns the number of leaked allocations plus
 * table pages plus coherency errors (0 when everything was clean). */
unsigned long simsys_down(struct simsys *s);

/* A DMA buffer in the simulated physical memory. */
void *simsys_buffer(struct simsys *s, size_t size, uint64_t *pa);

/* A device does DMA: returns 0 or the fault reason the unit gave. */
int simsys_dma(struct simsys *s, uint16_t sid, uint64_t iova, void *buf, size_t len, bool write_to_memory);

/* Another unit on the same machine and system (several units at once): registers at
 * `reg_base` (outside the arena, e.g. SIMSYS_REG_BASE + 0x10000), `mcfg` NULL for QEMU
 * defaults. 0 with *unit and *model set, or the error of dmar_system_add_unit. */
int simsys_add_unit(struct simsys *s, uint64_t reg_base, const struct model_config *mcfg,
		    struct dmar_unit **unit, struct model **model);

/* simsys_dma through a given unit of the machine. Safe from several threads at once
 * (the machine lock serialises the model). */
int simsys_dma_via(struct simsys *s, struct model *unit, uint16_t sid, uint64_t iova, void *buf,
		   size_t len, bool write_to_memory);

/* A source sends an interrupt request (a write of `data` to `addr`): returns 0 with
 * *out filled (may be NULL), or the interrupt-remapping fault reason the unit gave. */
int simsys_interrupt(struct simsys *s, uint16_t sid, uint64_t addr, uint32_t data,
		     struct model_irq_delivery *out);

/* A dmar_pci_upstream_fn (ctx unused) over the bridge topology the alias and interrupt
 * remapping tests share:
 *   00:1e.0 conventional PCI bridge, secondary bus 2: 02:03.0 and 02:04.0 below
 *   00:1c.0 PCIe root port, secondary 1; 01:00.0 PCIe-to-PCI bridge, secondary 3:
 *           03:05.0 below
 *   00:1d.0 PCIe-to-PCI bridge, secondary 4; 04:01.0 conventional bridge, secondary 5:
 *           05:00.0 below
 *   everything else on the root bus */
int simsys_bridged_upstream(void *ctx, uint16_t segment, uint8_t bus, uint8_t dev, uint8_t fn,
			    struct dmar_pci_bridge *up);

#endif
