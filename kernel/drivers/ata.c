/* Bus-master IDE (ATA/ATAPI-8 task file, SFF-8038i Bus Master IDE), one disk, polled. */
#include "ata.h"

#include "clock.h"
#include "util.h"
#include "x86.h"

/* Task file registers, from the command block base. */
#define ATA_DATA 0
#define ATA_ERROR 1    /* read */
#define ATA_FEATURES 1 /* write */
#define ATA_COUNT 2
#define ATA_LBA_LOW 3
#define ATA_LBA_MID 4
#define ATA_LBA_HIGH 5
#define ATA_DEVICE 6
#define ATA_STATUS 7   /* read: also acknowledges INTRQ */
#define ATA_COMMAND 7  /* write */
/* Control block: alternate status (read), device control (write). */
#define ATA_DEVCTL_NIEN 0x02
#define ATA_DEVCTL_SRST 0x04

#define ATA_STS_ERR 0x01
#define ATA_STS_DRQ 0x08
#define ATA_STS_DF 0x20
#define ATA_STS_DRDY 0x40
#define ATA_STS_BSY 0x80
#define ATA_DEV_LBA 0x40
#define ATA_DEV_OBS 0xa0 /* bits 7 and 5: obsolete, set by convention */

#define ATA_IDENTIFY_DEVICE 0xec
#define ATA_READ_DMA 0xc8
#define ATA_WRITE_DMA 0xca
#define ATA_READ_DMA_EXT 0x25
#define ATA_WRITE_DMA_EXT 0x35

/* Bus Master IDE registers, per channel (secondary at + 8). */
#define BMICX 0x0      /* command */
#define BMISX 0x2      /* status */
#define BMIDTP 0x4     /* PRD table address */
#define BMICX_START 0x01
#define BMICX_RWCON 0x08  /* 1: the bus master writes memory (a disk READ) */
#define BMISX_ACTIVE 0x01
#define BMISX_ERROR 0x02
#define BMISX_INTR 0x04
#define BMISX_DMA_CAP 0x60 /* drive 0/1 DMA capable: kept as they are */
#define PRD_EOT 0x80000000u

#define PCI_CMD 0x04
#define PCI_CMD_IO 0x1
#define PCI_CMD_MASTER 0x4
#define PIIX_IDETIM 0x40   /* primary; secondary at 0x42 */
#define PIIX_IDETIM_IDE 0x8000u /* IDE decode enable */

#define PAGE_SIZE 4096u
#define LBA28_LIMIT (1ull << 28)
#define RESET_TIMEOUT_NS 5000000000ull

static uint8_t status_alt(const struct ata *a) { return inb(a->ctl); }

/* The 400 ns a device may take to post status after a command or selection. */
static void settle(const struct ata *a)
{
	for (int i = 0; i < 4; i++)
		(void)status_alt(a);
}

/* Waits until (alternate status & mask) == want; 0 or DMAR_ETIMEDOUT. */
static int wait_status(const struct ata *a, uint8_t mask, uint8_t want, uint64_t ns)
{
	uint64_t end = clock_now_ns() + ns;
	while ((status_alt(a) & mask) != want) {
		if (clock_now_ns() > end)
			return DMAR_ETIMEDOUT;
		cpu_relax();
	}
	return 0;
}

static void select_drive(struct ata *a, uint8_t bits)
{
	outb((uint16_t)(a->cmd + ATA_DEVICE), (uint8_t)(ATA_DEV_OBS | a->drive << 4 | bits));
	settle(a);
}

const struct pci_dev *ata_find(unsigned n)
{
	for (unsigned i = 0; i < pci_count(); i++) {
		const struct pci_dev *d = pci_device_at(i);
		if (d->header_type != 0 || d->class_rev >> 16 != ATA_CLASS)
			continue;
		if (!(pci_read32(d->bus, d->dev, d->fn, 0x20) & 1)) /* BAR4 must be I/O */
			continue;
		if (n-- == 0)
			return d;
	}
	return 0;
}

/* The channel's I/O ports: legacy in compatibility mode, BARs in native mode. */
static void channel_ports(struct ata *a)
{
	const struct pci_dev *d = a->pci;
	uint8_t progif = (uint8_t)(d->class_rev >> 8);
	uint32_t bm = pci_read32(d->bus, d->dev, d->fn, 0x20) & ~3u;
	a->bm = (uint16_t)(bm + 8 * a->channel);
	if (progif & (1u << (2 * a->channel))) {
		uint8_t bar = (uint8_t)(0x10 + 8 * a->channel);
		a->cmd = (uint16_t)(pci_read32(d->bus, d->dev, d->fn, bar) & ~3u);
		/* The control block BAR decodes 4 bytes; the register is the third. */
		a->ctl = (uint16_t)((pci_read32(d->bus, d->dev, d->fn, (uint8_t)(bar + 4)) & ~3u) + 2);
	} else {
		a->cmd = a->channel ? 0x170 : 0x1f0;
		a->ctl = a->channel ? 0x376 : 0x3f6;
	}
}

static void bm_stop(struct ata *a)
{
	outb((uint16_t)(a->bm + BMICX), (uint8_t)(inb((uint16_t)(a->bm + BMICX)) & ~BMICX_START));
	/* Write-1-to-clear the error and interrupt bits, keep the capability bits. */
	outb((uint16_t)(a->bm + BMISX),
	     (uint8_t)((inb((uint16_t)(a->bm + BMISX)) & BMISX_DMA_CAP) | BMISX_ERROR | BMISX_INTR));
}

int ata_recover(struct ata *a)
{
	bm_stop(a);
	outb(a->ctl, ATA_DEVCTL_NIEN | ATA_DEVCTL_SRST);
	clock_delay_ns(5000); /* SRST held at least 5 us */
	outb(a->ctl, ATA_DEVCTL_NIEN);
	clock_delay_ns(2000000); /* the device sets BSY within 2 ms */
	if (wait_status(a, ATA_STS_BSY, 0, RESET_TIMEOUT_NS))
		return DMAR_ETIMEDOUT;
	select_drive(a, 0);
	outb(a->ctl, ATA_DEVCTL_NIEN);
	(void)inb((uint16_t)(a->cmd + ATA_STATUS)); /* drop a pending INTRQ */
	return wait_status(a, ATA_STS_BSY, 0, ATA_TIMEOUT_NS);
}

/* IDENTIFY DEVICE by PIO: 0 with the data in id[], DMAR_ENODEV when no ATA device
 * answers (none there, or a packet device that aborts the command). */
static int identify(struct ata *a, uint16_t id[256])
{
	select_drive(a, 0);
	uint8_t st = status_alt(a);
	if (st == 0xff || st == 0x00)
		return DMAR_ENODEV; /* floating bus or no drive */
	if (wait_status(a, ATA_STS_BSY, 0, ATA_TIMEOUT_NS))
		return DMAR_ENODEV;
	outb(a->ctl, ATA_DEVCTL_NIEN);
	outb((uint16_t)(a->cmd + ATA_COMMAND), ATA_IDENTIFY_DEVICE);
	settle(a);
	uint64_t end = clock_now_ns() + ATA_TIMEOUT_NS;
	for (;;) {
		st = status_alt(a);
		if (!(st & ATA_STS_BSY) && (st & (ATA_STS_ERR | ATA_STS_DF)))
			return DMAR_ENODEV;
		if (!(st & ATA_STS_BSY) && (st & ATA_STS_DRQ))
			break;
		if (st == 0 || clock_now_ns() > end)
			return DMAR_ENODEV;
		cpu_relax();
	}
	for (unsigned i = 0; i < 256; i++)
		id[i] = inw((uint16_t)(a->cmd + ATA_DATA));
	(void)inb((uint16_t)(a->cmd + ATA_STATUS));
	return 0;
}

static void parse_identify(struct ata *a, const uint16_t *id)
{
	a->lba48 = id[83] & (1u << 10); /* 48-bit Address feature set */
	if (a->lba48)
		a->sectors = (uint64_t)id[100] | (uint64_t)id[101] << 16 |
			     (uint64_t)id[102] << 32 | (uint64_t)id[103] << 48;
	else
		a->sectors = (uint64_t)id[60] | (uint64_t)id[61] << 16;
	a->sector_size = 512;
	if ((id[106] & 0xc000) == 0x4000 && (id[106] & (1u << 12)))
		a->sector_size = 2u * ((uint32_t)id[117] | (uint32_t)id[118] << 16);
	for (unsigned i = 0; i < 20; i++) { /* words 27..46, high byte first */
		a->model[2 * i] = (char)(id[27 + i] >> 8);
		a->model[2 * i + 1] = (char)id[27 + i];
	}
	a->model[40] = 0;
	for (int i = 39; i >= 0 && a->model[i] == ' '; i--)
		a->model[i] = 0;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

int ata_prepare(struct ata *a, uint32_t count, const struct dmar_dmamap *map)
{
	const struct dmar_dma_segment *s = dmar_dmamap_segs(map);
	unsigned n = dmar_dmamap_nsegs(map);
	uint64_t total = 0;
	if (n == 0 || n > ATA_PRDS)
		return DMAR_EINVAL;
	for (unsigned i = 0; i < n; i++) {
		/* What the bus master cannot do: busdma's tag should never hand it out. */
		if ((s[i].addr & 1) || (s[i].len & 1) || s[i].len > ATA_PRD_MAX ||
		    (s[i].addr & (ATA_PRD_MAX - 1)) + s[i].len > ATA_PRD_MAX ||
		    s[i].addr + s[i].len - 1 > 0xffffffffull)
			return DMAR_EINVAL;
		put32(a->prdt + 8 * i, (uint32_t)s[i].addr);
		put32(a->prdt + 8 * i + 4, (uint32_t)(s[i].len & 0xffff) | (i == n - 1 ? PRD_EOT : 0));
		total += s[i].len;
	}
	if (total != (uint64_t)count * a->sector_size)
		return DMAR_EINVAL;
	return 0;
}

int ata_start(struct ata *a, bool write, uint64_t lba, uint32_t count)
{
	bool ext = lba + count > LBA28_LIMIT || count > 256;
	if (count == 0 || lba + count > a->sectors || (ext && (!a->lba48 || count > 65536)))
		return DMAR_EINVAL;
	if (wait_status(a, ATA_STS_BSY | ATA_STS_DRQ, 0, ATA_TIMEOUT_NS))
		return DMAR_ETIMEDOUT;
	(void)dmar_dmamap_sync(a->prd_tag, a->prdt_map, DMAR_DMASYNC_PREWRITE);
	bm_stop(a);
	outl((uint16_t)(a->bm + BMIDTP), (uint32_t)a->prdt_bus);
	outb((uint16_t)(a->bm + BMICX), write ? 0 : BMICX_RWCON);
	mfence(); /* the PRD table is in memory before the bus master can fetch it */

	uint16_t tf = a->cmd;
	if (ext) {
		select_drive(a, ATA_DEV_LBA);
		/* The high-order bytes first: each register is a two-deep FIFO. */
		outb((uint16_t)(tf + ATA_COUNT), (uint8_t)(count >> 8));
		outb((uint16_t)(tf + ATA_LBA_LOW), (uint8_t)(lba >> 24));
		outb((uint16_t)(tf + ATA_LBA_MID), (uint8_t)(lba >> 32));
		outb((uint16_t)(tf + ATA_LBA_HIGH), (uint8_t)(lba >> 40));
	} else {
		select_drive(a, (uint8_t)(ATA_DEV_LBA | ((lba >> 24) & 0xf)));
	}
	outb((uint16_t)(tf + ATA_FEATURES), 0);
	outb((uint16_t)(tf + ATA_COUNT), (uint8_t)count); /* 28-bit: 0 means 256 */
	outb((uint16_t)(tf + ATA_LBA_LOW), (uint8_t)lba);
	outb((uint16_t)(tf + ATA_LBA_MID), (uint8_t)(lba >> 8));
	outb((uint16_t)(tf + ATA_LBA_HIGH), (uint8_t)(lba >> 16));
	uint8_t command = ext ? (write ? ATA_WRITE_DMA_EXT : ATA_READ_DMA_EXT)
			      : (write ? ATA_WRITE_DMA : ATA_READ_DMA);
	outb((uint16_t)(tf + ATA_COMMAND), command);
	outb((uint16_t)(a->bm + BMICX), (uint8_t)((write ? 0 : BMICX_RWCON) | BMICX_START));
	return 0;
}

int ata_wait(struct ata *a)
{
	/* nIEN is set, so BMISX.INTR never rises: the command is over when the bus master
	 * is no longer active and the device no longer busy. */
	uint64_t end = clock_now_ns() + ATA_TIMEOUT_NS;
	int rc = 0;
	settle(a);
	for (;;) {
		uint8_t bmisx = inb((uint16_t)(a->bm + BMISX));
		uint8_t st = status_alt(a);
		if (bmisx & BMISX_ERROR)
			break;
		if (!(st & ATA_STS_BSY) && (st & (ATA_STS_ERR | ATA_STS_DF)))
			break;
		if (!(bmisx & BMISX_ACTIVE) && !(st & (ATA_STS_BSY | ATA_STS_DRQ)))
			break;
		if (clock_now_ns() > end) {
			rc = DMAR_ETIMEDOUT;
			break;
		}
		cpu_relax();
	}
	a->last_bmisx = inb((uint16_t)(a->bm + BMISX));
	outb((uint16_t)(a->bm + BMICX), (uint8_t)(inb((uint16_t)(a->bm + BMICX)) & ~BMICX_START));
	a->last_status = inb((uint16_t)(a->cmd + ATA_STATUS)); /* acknowledges INTRQ */
	a->last_error = inb((uint16_t)(a->cmd + ATA_ERROR));
	bm_stop(a);
	mfence();
	(void)dmar_dmamap_sync(a->prd_tag, a->prdt_map, DMAR_DMASYNC_POSTWRITE);
	if (rc == 0 && ((a->last_bmisx & BMISX_ERROR) ||
			(a->last_status & (ATA_STS_ERR | ATA_STS_DF | ATA_STS_BSY | ATA_STS_DRQ))))
		rc = DMAR_EHW;
	return rc;
}

int ata_rw(struct ata *a, bool write, uint64_t lba, uint32_t count,
	   const struct dmar_dmamap *map)
{
	int rc = ata_prepare(a, count, map);
	if (!rc)
		rc = ata_start(a, write, lba, count);
	if (!rc)
		rc = ata_wait(a);
	return rc;
}

static int make_tags(struct ata *a)
{
	struct dmar_dma_tag_params p;
	dmar_dma_tag_params_default(&p);
	/* The PRD table: dword aligned, within one 64 KiB region, 32-bit address. */
	p.alignment = 4;
	p.boundary = ATA_PRD_MAX;
	p.lowaddr = 0xffffffffull;
	p.maxsize = PAGE_SIZE;
	p.maxsegsz = PAGE_SIZE;
	p.nsegments = 1;
	int rc = dmar_dma_tag_create(a->dev, 0, &p, &a->prd_tag);
	if (rc)
		return rc;
	/* Data: each PRD entry at most 64 KiB, never across a 64 KiB boundary, word
	 * aligned, 32-bit addresses. */
	dmar_dma_tag_params_default(&p);
	p.alignment = 2;
	p.boundary = ATA_PRD_MAX;
	p.lowaddr = 0xffffffffull;
	p.maxsize = ATA_MAX_BYTES;
	p.maxsegsz = ATA_PRD_MAX;
	p.nsegments = ATA_NSEGS;
	return dmar_dma_tag_create(a->dev, 0, &p, &a->data_tag);
}

void ata_detach(struct ata *a)
{
	if (a->bm)
		bm_stop(a);
	if (a->prdt_map) {
		(void)dmar_dmamap_unload(a->prd_tag, a->prdt_map);
		(void)dmar_dmamem_free(a->prd_tag, a->prdt, a->prdt_map);
		a->prdt_map = 0;
	}
	if (a->data_tag)
		(void)dmar_dma_tag_destroy(a->data_tag);
	if (a->prd_tag)
		(void)dmar_dma_tag_destroy(a->prd_tag);
	a->data_tag = a->prd_tag = 0;
}

int ata_attach(struct ata *a, const struct pci_dev *d, struct dmar_busdma_dev *dev)
{
	dmar_memset(a, 0, sizeof(*a));
	a->pci = d;
	a->dev = dev;
	uint16_t cmd = pci_read16(d->bus, d->dev, d->fn, PCI_CMD);
	pci_write16(d->bus, d->dev, d->fn, PCI_CMD, (uint16_t)(cmd | PCI_CMD_IO | PCI_CMD_MASTER));
	if (d->vendor == 0x8086) /* PIIX: both channels' decode on */
		for (uint8_t off = PIIX_IDETIM; off <= PIIX_IDETIM + 2; off = (uint8_t)(off + 2))
			pci_write16(d->bus, d->dev, d->fn, off,
				    (uint16_t)(pci_read16(d->bus, d->dev, d->fn, off) | PIIX_IDETIM_IDE));

	static uint16_t id[256];
	int rc = DMAR_ENODEV;
	for (unsigned ch = 0; ch < 2 && rc; ch++)
		for (unsigned drv = 0; drv < 2 && rc; drv++) {
			a->channel = ch;
			a->drive = drv;
			channel_ports(a);
			outb(a->ctl, ATA_DEVCTL_NIEN);
			bm_stop(a);
			rc = identify(a, id);
		}
	if (rc)
		return rc;
	parse_identify(a, id);
	if (!a->sectors || a->sector_size < 512)
		return DMAR_EHW;

	rc = make_tags(a);
	void *p = 0;
	if (!rc)
		rc = dmar_dmamem_alloc(a->prd_tag, &p, 0, &a->prdt_map);
	if (!rc) {
		a->prdt = p;
		rc = dmar_dmamap_load(a->prd_tag, a->prdt_map, p, PAGE_SIZE, DMAR_DMA_NOWAIT);
		if (rc) {
			(void)dmar_dmamem_free(a->prd_tag, p, a->prdt_map);
			a->prdt_map = 0;
		}
	}
	if (!rc)
		a->prdt_bus = dmar_dmamap_segs(a->prdt_map)[0].addr;
	if (!rc)
		rc = ata_recover(a); /* a known state: whatever firmware did on this channel */
	if (rc)
		ata_detach(a);
	return rc;
}
