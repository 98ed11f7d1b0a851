/*
 * pci.h - PCI configuration space (I/O ports 0xcf8/0xcfc, segment 0) and enumeration of
 * every bus: recursively through PCI-PCI bridges from bus 0, then any other bus that
 * answers (extra root buses such as pxb-pcie's).
 */
#ifndef KERNEL_PCI_H
#define KERNEL_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "dmar/dmar.h"

#define PCI_MAX_DEVICES 256

struct pci_dev {
	uint8_t bus, dev, fn;
	uint16_t vendor, device;
	uint32_t class_rev;     /* class << 8 | revision */
	uint8_t header_type;    /* without the multi-function bit */
	uint8_t secondary_bus;  /* bridges only */
	uint8_t subordinate_bus;
	int parent;             /* index of the bridge above it, -1 on a root bus */
};

uint32_t pci_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off);
void pci_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint32_t v);
uint16_t pci_read16(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off);
void pci_write16(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint16_t v);

/* Finds every function; returns how many (also kept for pci_device_at). */
unsigned pci_enumerate(void);
unsigned pci_count(void);
const struct pci_dev *pci_device_at(unsigned i);
/* The n-th (0-based) function with this vendor and device id, or NULL. */
const struct pci_dev *pci_find(uint16_t vendor, uint16_t device, unsigned n);

/* Memory BAR `bar` (64-bit BARs combined): physical base and size, mapped uncached.
 * Returns false for an I/O or unassigned BAR. */
bool pci_bar_map(const struct pci_dev *d, unsigned bar, uint64_t *base, uint64_t *size);
/* Sets memory decoding and bus mastering in the command register. */
void pci_enable(const struct pci_dev *d, bool bus_master);

/* Source id of DMA from the function (bus << 8 | devfn). */
static inline uint16_t pci_sid(const struct pci_dev *d)
{
	return (uint16_t)(d->bus << 8 | d->dev << 3 | d->fn);
}

/* The library's topology callback (dmar_acpi_secondary_bus_fn): the secondary bus of
 * the bridge at seg/bus/dev/fn and its subordinate bus, or -1 if it is not a bridge. */
int pci_bridge_buses(void *ctx, uint16_t seg, uint8_t bus, uint8_t dev, uint8_t fn,
		     uint8_t *subordinate);

/* Offset of the capability `id` in the function's list, or 0. */
#define PCI_CAP_ID_MSI 0x05
#define PCI_CAP_ID_EXP 0x10
uint8_t pci_find_capability(const struct pci_dev *d, uint8_t id);

/* MSI (PCI Local Bus 3.0, 6.8.1): the function writes `data` (its low bits replaced by
 * the vector number when it has several) to `addr`. Found by capability 0x05, in its
 * 32- or 64-bit-address form, with or without per-vector mask bits. */
struct pci_msi {
	uint8_t cap;         /* offset of the capability */
	bool addr64;         /* has the upper address register */
	bool maskable;       /* has per-vector mask bits */
	unsigned vectors;    /* vectors it can request (1..32) */
};
/* False when the function has no MSI capability. */
bool pci_msi_probe(const struct pci_dev *d, struct pci_msi *out);
/* Programs address and data for `count` vectors (a power of two up to what the function
 * requests), unmasks them, disables INTx and enables MSI. -1 without an MSI capability,
 * for a count it cannot take, or an address above 4 GiB on a 32-bit-address function;
 * then nothing was changed. */
int pci_msi_enable(const struct pci_dev *d, uint64_t addr, uint16_t data, unsigned count);
/* Disables MSI (the function falls back to INTx, which is enabled again). */
void pci_msi_disable(const struct pci_dev *d);
/* Sets the per-vector mask bits; false when the function has none. */
bool pci_msi_set_mask(const struct pci_dev *d, uint32_t mask);
/* What the capability holds now (for diagnostics): enabled, address and data. */
bool pci_msi_read(const struct pci_dev *d, bool *enabled, uint64_t *addr, uint16_t *data);
/* PCI Express device/port type (PCIe capability register bits 7:4), -1 without one. */
#define PCI_EXP_TYPE_ROOT_PORT 0x4
#define PCI_EXP_TYPE_PCI_BRIDGE 0x7  /* PCIe-to-PCI/PCI-X bridge */
#define PCI_EXP_TYPE_PCIE_BRIDGE 0x8 /* PCI/PCI-X-to-PCIe bridge */
int pci_pcie_type(const struct pci_dev *d);

/* The library's walk up to the root (dmar_pci_upstream_fn): the bridge above the
 * function and what kind of aliasing it does, from its PCIe capability. */
int pci_upstream(void *ctx, uint16_t seg, uint8_t bus, uint8_t dev, uint8_t fn,
		 struct dmar_pci_bridge *up);

#endif
