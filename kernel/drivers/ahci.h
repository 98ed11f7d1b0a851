/*
 * ahci.h - driver for AHCI SATA host bus adapters (QEMU's ich9-ahci, built into q35 at
 * 00:1f.2), binding by PCI class 01:06:01 like a real driver. It drives one port with an
 * ATA disk, polled (no interrupts), every wait bounded:
 *   - the HBA's registers in ABAR (BAR5), GHC.AE set, interrupts off;
 *   - per port a command list of 32 command headers (1 KiB, 1 KiB aligned), a received
 *     FIS area (256 bytes, 256 aligned) and 32 command tables (128 aligned), each a
 *     command FIS and a PRD table of AHCI_PRDS entries;
 *   - PRD entries of up to 4 MiB, byte count even, data base word aligned;
 *   - IDENTIFY DEVICE, READ DMA EXT and WRITE DMA EXT (48-bit LBA);
 *   - several command slots in flight (PxCI bits issued together).
 * Every structure the HBA reads or writes in RAM comes from busdma; CAP.S64A decides
 * whether the tags may hand out addresses above 4 GiB.
 */
#ifndef KERNEL_AHCI_H
#define KERNEL_AHCI_H

#include <stdbool.h>
#include <stdint.h>

#include "dmar/busdma.h"
#include "pci.h"

#define AHCI_CLASS 0x010601u      /* mass storage, SATA, AHCI 1.x */
#define AHCI_SLOTS 32u
#define AHCI_PRDS 248u            /* PRD entries per command table: one 4 KiB page */
#define AHCI_PRD_MAX (4u << 20)   /* bytes one PRD entry may describe (DBC is 22 bits) */
#define AHCI_MAX_BYTES (512u << 10) /* bytes one command of this driver moves at most */
#define AHCI_TIMEOUT_NS 5000000000ull

struct ahci {
	const struct pci_dev *pci;
	volatile uint8_t *abar;
	uint32_t cap;              /* CAP */
	unsigned nslots;           /* CAP.NCS + 1 */
	unsigned port;             /* the port with the disk */
	uint64_t sectors;          /* from IDENTIFY DEVICE */
	uint32_t sector_size;
	char model[41];

	struct dmar_busdma_dev *dev;
	struct dmar_dma_tag *ctrl_tag;  /* command list + received FIS, command tables */
	struct dmar_dma_tag *data_tag;  /* data buffers: the PRD constraints */
	uint8_t *clb;                   /* command list; received FIS at + 0x400 */
	struct dmar_dmamap *clb_map;
	uint64_t clb_bus;
	uint8_t *ctba[AHCI_SLOTS];      /* command tables */
	struct dmar_dmamap *ctba_map[AHCI_SLOTS];
	uint64_t ctba_bus[AHCI_SLOTS];
	uint8_t *ident;                 /* IDENTIFY DEVICE data (512 bytes) */
	struct dmar_dmamap *ident_map;
	uint32_t last_is, last_tfd;     /* PxIS and PxTFD when the last command ended */
};

/* The n-th function of class AHCI_CLASS, or NULL. */
const struct pci_dev *ahci_find(unsigned n);

/* Binds the HBA at `d` for busdma device `dev`: maps ABAR, enables AHCI mode and bus
 * mastering, creates the tags, allocates and loads the port memory through busdma,
 * starts the first implemented port with an ATA disk and identifies it. Returns 0,
 * DMAR_ENODEV when no port has a disk (nothing left allocated), DMAR_ETIMEDOUT or
 * DMAR_EHW when the hardware does not answer or reports an error, or busdma's error. */
int ahci_attach(struct ahci *a, const struct pci_dev *d, struct dmar_busdma_dev *dev);
/* Stops the port and frees everything ahci_attach made (the caller's maps on data_tag
 * must be gone). */
void ahci_detach(struct ahci *a);

/* Builds command `slot` (READ or WRITE DMA EXT of `count` sectors at `lba`, data in the
 * segments of `map`) without issuing it. 0, or DMAR_EINVAL for bad arguments. */
int ahci_prepare(struct ahci *a, unsigned slot, bool write, uint64_t lba, uint32_t count,
		 const struct dmar_dmamap *map);
/* Issues the prepared slots of `mask` at once (one PxCI write). */
void ahci_issue(struct ahci *a, uint32_t mask);
/* Waits until the slots of `mask` are done: 0, DMAR_ETIMEDOUT, or DMAR_EHW when the HBA
 * reports a task file or host bus error (the port then needs ahci_recover). */
int ahci_wait(struct ahci *a, uint32_t mask);
/* Bytes the HBA says it moved for `slot`'s last command (the header's PRDBC). */
uint32_t ahci_prdbc(const struct ahci *a, unsigned slot);
/* One command in slot 0, issued and waited for. */
int ahci_rw(struct ahci *a, bool write, uint64_t lba, uint32_t count,
	    const struct dmar_dmamap *map);

/* Error recovery: stops the port, COMRESET through PxSCTL.DET, clears the error
 * registers, reprograms the port memory and starts the port again. 0 or DMAR_ETIMEDOUT. */
int ahci_recover(struct ahci *a);

#endif
