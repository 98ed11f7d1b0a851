/*
 * ata.h - driver for PCI bus-master IDE controllers (QEMU's piix3-ide, 8086:7010),
 * binding by PCI class 01:01 like a real driver. It drives one ATA disk, polled
 * (nIEN set, no interrupts), every wait bounded:
 *   - the task file at the legacy ports (0x1f0/0x3f6, 0x170/0x376) in compatibility
 *     mode, or at BAR0..3 when the programming interface says native mode;
 *   - the Bus Master IDE registers in BAR4 (BMICX, BMISX, BMIDTP per channel);
 *   - a PRD table of 8-byte entries, 4-byte aligned, not crossing a 64 KiB boundary,
 *     each entry at most 64 KiB (a byte count of 0 means 64 KiB), not crossing a
 *     64 KiB boundary, even length, word-aligned base, 32-bit addresses only;
 *   - IDENTIFY DEVICE (PIO), READ DMA / WRITE DMA (28-bit LBA) and their EXT forms
 *     (48-bit LBA) for what does not fit 28 bits or 256 sectors.
 * The PRD table and the data come from busdma, with tags stating those constraints.
 */
#ifndef KERNEL_ATA_H
#define KERNEL_ATA_H

#include <stdbool.h>
#include <stdint.h>

#include "dmar/busdma.h"
#include "pci.h"

#define ATA_CLASS 0x0101u            /* mass storage, IDE (any programming interface) */
#define ATA_PRD_MAX 65536u           /* bytes per PRD entry, and the boundary */
#define ATA_PRDS 512u                /* entries in the PRD table: one 4 KiB page */
#define ATA_NSEGS 128u               /* segments one command may use */
#define ATA_MAX_BYTES (256u << 10)   /* bytes one command of this driver moves at most */
#define ATA_TIMEOUT_NS 5000000000ull

struct ata {
	const struct pci_dev *pci;
	uint16_t cmd;          /* task file base (data port) */
	uint16_t ctl;          /* device control / alternate status */
	uint16_t bm;           /* this channel's Bus Master IDE registers */
	unsigned channel;      /* 0 primary, 1 secondary */
	unsigned drive;        /* 0 master, 1 slave */
	uint64_t sectors;      /* from IDENTIFY DEVICE */
	uint32_t sector_size;
	bool lba48;
	char model[41];

	struct dmar_busdma_dev *dev;
	struct dmar_dma_tag *prd_tag;   /* the PRD table */
	struct dmar_dma_tag *data_tag;  /* data buffers: the PRD entries' constraints */
	uint8_t *prdt;
	struct dmar_dmamap *prdt_map;
	uint64_t prdt_bus;
	uint8_t last_status, last_error, last_bmisx; /* when the last command ended */
};

/* The n-th function of class ATA_CLASS with an I/O BAR4 (bus master), or NULL. */
const struct pci_dev *ata_find(unsigned n);

/* Binds the controller at `d` for busdma device `dev`: I/O decoding and bus mastering
 * on, finds the first ATA disk (primary master first), identifies it, creates the
 * tags and loads the PRD table through busdma. Returns 0, DMAR_ENODEV when no channel
 * has an ATA disk (nothing left allocated), DMAR_ETIMEDOUT / DMAR_EHW from the
 * hardware, or busdma's error. */
int ata_attach(struct ata *a, const struct pci_dev *d, struct dmar_busdma_dev *dev);
void ata_detach(struct ata *a);

/* Writes the PRD table for the segments of `map` (`count` sectors). 0 or DMAR_EINVAL. */
int ata_prepare(struct ata *a, uint32_t count, const struct dmar_dmamap *map);
/* Starts a READ/WRITE DMA of `count` sectors at `lba` through the PRD table as it is:
 * points BMIDTP at it, issues the command, starts the bus master. 0, DMAR_EINVAL or
 * DMAR_ETIMEDOUT (the device stayed busy). */
int ata_start(struct ata *a, bool write, uint64_t lba, uint32_t count);
/* Waits for the command to end and stops the bus master: 0, DMAR_ETIMEDOUT, or
 * DMAR_EHW when the device (ERR, DF) or the bus master (BMISX error) reports one. */
int ata_wait(struct ata *a);
/* prepare + start + wait. */
int ata_rw(struct ata *a, bool write, uint64_t lba, uint32_t count,
	   const struct dmar_dmamap *map);

/* Error recovery: bus master stopped and its status cleared, the channel soft reset
 * (SRST), the drive selected again with interrupts off. 0 or DMAR_ETIMEDOUT. */
int ata_recover(struct ata *a);

#endif
