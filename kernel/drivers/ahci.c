/* AHCI (Serial ATA AHCI 1.3.1) host bus adapter, one port, polled. */
#include "ahci.h"
#include "dmamem.h"

#include "clock.h"
#include "util.h"
#include "x86.h"

/* Generic host control. */
#define AHCI_CAP 0x00
#define AHCI_GHC 0x04
#define AHCI_IS 0x08
#define AHCI_PI 0x0c
#define AHCI_CAP_NP(c) ((c) & 0x1f)
#define AHCI_CAP_NCS(c) (((c) >> 8) & 0x1f)
#define AHCI_CAP_S64A (1u << 31)
#define AHCI_GHC_HR (1u << 0)
#define AHCI_GHC_IE (1u << 1)
#define AHCI_GHC_AE (1u << 31)

/* Port registers, at 0x100 + 0x80 * port. */
#define AHCI_PxCLB 0x00
#define AHCI_PxCLBU 0x04
#define AHCI_PxFB 0x08
#define AHCI_PxFBU 0x0c
#define AHCI_PxIS 0x10
#define AHCI_PxIE 0x14
#define AHCI_PxCMD 0x18
#define AHCI_PxTFD 0x20
#define AHCI_PxSIG 0x24
#define AHCI_PxSSTS 0x28
#define AHCI_PxSCTL 0x2c
#define AHCI_PxSERR 0x30
#define AHCI_PxSACT 0x34
#define AHCI_PxCI 0x38
#define AHCI_PxCMD_ST (1u << 0)
#define AHCI_PxCMD_SUD (1u << 1)
#define AHCI_PxCMD_POD (1u << 2)
#define AHCI_PxCMD_FRE (1u << 4)
#define AHCI_PxCMD_FR (1u << 14)
#define AHCI_PxCMD_CR (1u << 15)
#define AHCI_PxIS_TFES (1u << 30)
#define AHCI_PxIS_HBFS (1u << 29)
#define AHCI_PxIS_HBDS (1u << 28)
#define AHCI_PxIS_IFS (1u << 27)
#define AHCI_PxIS_ERRORS (AHCI_PxIS_TFES | AHCI_PxIS_HBFS | AHCI_PxIS_HBDS | AHCI_PxIS_IFS)
#define AHCI_PxSSTS_DET(s) ((s) & 0xf)
#define AHCI_DET_PRESENT 3u        /* device present, Phy communication established */
#define AHCI_PxSCTL_DET_MASK 0xfu
#define AHCI_PxSCTL_DET_INIT 1u    /* COMRESET */
#define AHCI_SIG_ATAPI 0xeb140101u

/* ATA status (PxTFD.STS) bits. */
#define ATA_STS_ERR 0x01
#define ATA_STS_DRQ 0x08
#define ATA_STS_BSY 0x80

/* ATA commands. */
#define ATA_IDENTIFY_DEVICE 0xec
#define ATA_READ_DMA_EXT 0x25
#define ATA_WRITE_DMA_EXT 0x35

/* Layout of the port memory: the command list (32 headers of 32 bytes) and the
 * received FIS area share one page; a command table is 0x80 bytes of FIS and ATAPI
 * command, then the PRD table (16-byte entries). */
#define AHCI_CLB_SIZE 0x400
#define AHCI_RFIS_OFF 0x400
#define AHCI_CMD_HDR 32u
#define AHCI_CT_PRDT 0x80
#define AHCI_PRD_SIZE 16u
#define AHCI_CFL_H2D 5u            /* a Register H2D FIS is 5 dwords */
#define AHCI_HDR_W (1u << 6)
#define FIS_TYPE_REG_H2D 0x27
#define FIS_H2D_C 0x80
#define ATA_DEV_LBA 0x40

#define PAGE_SIZE 4096u
#define STOP_TIMEOUT_NS 500000000ull   /* PxCMD.CR / FR clear within 500 ms (10.1.2) */
#define RESET_TIMEOUT_NS 1000000000ull /* GHC.HR clears within 1 s (10.4.3) */
#define LINK_TIMEOUT_NS 1000000000ull

static uint32_t rd(const struct ahci *a, unsigned off)
{
	return *(volatile uint32_t *)(a->abar + off);
}
static void wr(struct ahci *a, unsigned off, uint32_t v)
{
	*(volatile uint32_t *)(a->abar + off) = v;
}
static unsigned preg(const struct ahci *a, unsigned off) { return 0x100 + 0x80 * a->port + off; }
static uint32_t port_rd(const struct ahci *a, unsigned off) { return rd(a, preg(a, off)); }
static void port_wr(struct ahci *a, unsigned off, uint32_t v) { wr(a, preg(a, off), v); }

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}
static uint32_t get32(const volatile uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Waits until (register & mask) == want; 0 or DMAR_ETIMEDOUT. */
static int wait_reg(struct ahci *a, unsigned off, uint32_t mask, uint32_t want, uint64_t ns)
{
	uint64_t end = clock_now_ns() + ns;
	while ((rd(a, off) & mask) != want) {
		if (clock_now_ns() > end)
			return DMAR_ETIMEDOUT;
		cpu_relax();
	}
	return 0;
}

const struct pci_dev *ahci_find(unsigned n)
{
	for (unsigned i = 0; i < pci_count(); i++) {
		const struct pci_dev *d = pci_device_at(i);
		if (d->header_type == 0 && d->class_rev >> 8 == AHCI_CLASS && n-- == 0)
			return d;
	}
	return 0;
}

/* The command list engine and FIS receive off (10.1.2), each bounded. */
static int port_stop(struct ahci *a)
{
	int rc = 0;
	uint32_t cmd = port_rd(a, AHCI_PxCMD);
	if (cmd & (AHCI_PxCMD_ST | AHCI_PxCMD_CR)) {
		port_wr(a, AHCI_PxCMD, cmd & ~AHCI_PxCMD_ST);
		rc |= wait_reg(a, preg(a, AHCI_PxCMD), AHCI_PxCMD_CR, 0, STOP_TIMEOUT_NS);
	}
	cmd = port_rd(a, AHCI_PxCMD);
	if (cmd & (AHCI_PxCMD_FRE | AHCI_PxCMD_FR)) {
		port_wr(a, AHCI_PxCMD, cmd & ~AHCI_PxCMD_FRE);
		rc |= wait_reg(a, preg(a, AHCI_PxCMD), AHCI_PxCMD_FR, 0, STOP_TIMEOUT_NS);
	}
	return rc ? DMAR_ETIMEDOUT : 0;
}

/* Points the port at its memory, clears stale status and starts FIS receive and the
 * command list engine once the device is no longer busy (10.3.1). */
static int port_start(struct ahci *a)
{
	uint64_t fb = a->clb_bus + AHCI_RFIS_OFF;
	port_wr(a, AHCI_PxCLB, (uint32_t)a->clb_bus);
	port_wr(a, AHCI_PxCLBU, (uint32_t)(a->clb_bus >> 32));
	port_wr(a, AHCI_PxFB, (uint32_t)fb);
	port_wr(a, AHCI_PxFBU, (uint32_t)(fb >> 32));
	port_wr(a, AHCI_PxIE, 0);
	port_wr(a, AHCI_PxSERR, 0xffffffffu);
	port_wr(a, AHCI_PxIS, 0xffffffffu);
	port_wr(a, AHCI_PxCMD, port_rd(a, AHCI_PxCMD) | AHCI_PxCMD_FRE | AHCI_PxCMD_SUD | AHCI_PxCMD_POD);
	if (wait_reg(a, preg(a, AHCI_PxTFD), ATA_STS_BSY | ATA_STS_DRQ, 0, LINK_TIMEOUT_NS))
		return DMAR_ETIMEDOUT;
	port_wr(a, AHCI_PxCMD, port_rd(a, AHCI_PxCMD) | AHCI_PxCMD_ST);
	return 0;
}

static void sync_ctrl(struct ahci *a, unsigned op, uint32_t mask)
{
	(void)dmar_dmamap_sync(a->ctrl_tag, a->clb_map, op);
	for (unsigned s = 0; s < a->nslots; s++)
		if (mask & (1u << s))
			(void)dmar_dmamap_sync(a->ctrl_tag, a->ctba_map[s], op);
}

/* One page of control memory from busdma, loaded: its CPU pointer and bus address. */
static int ctrl_page(struct ahci *a, uint8_t **va, struct dmar_dmamap **map, uint64_t *bus)
{
	return dmamem_get(a->ctrl_tag, PAGE_SIZE, (void **)va, map, bus);
}

static void ctrl_page_free(struct ahci *a, uint8_t **va, struct dmar_dmamap **map)
{
	dmamem_put(a->ctrl_tag, *va, map);
}

/* The Register H2D FIS of a 48-bit command. */
static void build_cfis(uint8_t *f, uint8_t command, uint64_t lba, uint32_t count)
{
	dmar_memset(f, 0, AHCI_CT_PRDT);
	f[0] = FIS_TYPE_REG_H2D;
	f[1] = FIS_H2D_C;
	f[2] = command;
	f[4] = (uint8_t)lba;
	f[5] = (uint8_t)(lba >> 8);
	f[6] = (uint8_t)(lba >> 16);
	f[7] = ATA_DEV_LBA;
	f[8] = (uint8_t)(lba >> 24);
	f[9] = (uint8_t)(lba >> 32);
	f[10] = (uint8_t)(lba >> 40);
	f[12] = (uint8_t)count;
	f[13] = (uint8_t)(count >> 8);
}

/* Fills slot's header and PRD table from the segments; -1 when they break the PRD
 * rules (odd address or length, too long, too many). */
static int build_slot(struct ahci *a, unsigned slot, bool write,
		      const struct dmar_dma_segment *seg, unsigned nseg)
{
	uint8_t *prdt = a->ctba[slot] + AHCI_CT_PRDT;
	if (nseg > AHCI_PRDS)
		return DMAR_EINVAL;
	for (unsigned i = 0; i < nseg; i++) {
		if ((seg[i].addr & 1) || (seg[i].len & 1) || seg[i].len > AHCI_PRD_MAX ||
		    (!(a->cap & AHCI_CAP_S64A) && seg[i].addr + seg[i].len - 1 > 0xffffffffull))
			return DMAR_EINVAL;
		uint8_t *e = prdt + i * AHCI_PRD_SIZE;
		put32(e, (uint32_t)seg[i].addr);
		put32(e + 4, (uint32_t)(seg[i].addr >> 32));
		put32(e + 8, 0);
		put32(e + 12, (uint32_t)(seg[i].len - 1)); /* DBC: bytes - 1; no interrupt */
	}
	uint8_t *h = a->clb + slot * AHCI_CMD_HDR;
	put32(h, AHCI_CFL_H2D | (write ? AHCI_HDR_W : 0) | nseg << 16);
	put32(h + 4, 0); /* PRDBC: the HBA counts from zero */
	put32(h + 8, (uint32_t)a->ctba_bus[slot]);
	put32(h + 12, (uint32_t)(a->ctba_bus[slot] >> 32));
	dmar_memset(h + 16, 0, 16);
	return 0;
}

int ahci_prepare(struct ahci *a, unsigned slot, bool write, uint64_t lba, uint32_t count,
		 const struct dmar_dmamap *map)
{
	if (slot >= a->nslots || count == 0 || count > 0xffff || lba + count > a->sectors ||
	    lba >> 48)
		return DMAR_EINVAL;
	uint64_t total = 0;
	for (unsigned i = 0; i < dmar_dmamap_nsegs(map); i++)
		total += dmar_dmamap_segs(map)[i].len;
	if (total != (uint64_t)count * a->sector_size)
		return DMAR_EINVAL;
	build_cfis(a->ctba[slot], write ? ATA_WRITE_DMA_EXT : ATA_READ_DMA_EXT, lba, count);
	return build_slot(a, slot, write, dmar_dmamap_segs(map), dmar_dmamap_nsegs(map));
}

void ahci_issue(struct ahci *a, uint32_t mask)
{
	sync_ctrl(a, DMAR_DMASYNC_PREWRITE | DMAR_DMASYNC_PREREAD, mask);
	mfence(); /* headers and tables are in memory before the HBA fetches them */
	port_wr(a, AHCI_PxCI, mask);
}

int ahci_wait(struct ahci *a, uint32_t mask)
{
	uint64_t end = clock_now_ns() + AHCI_TIMEOUT_NS;
	int rc = 0;
	for (;;) {
		uint32_t is = port_rd(a, AHCI_PxIS);
		if (is & AHCI_PxIS_ERRORS) {
			rc = DMAR_EHW;
			break;
		}
		if (!(port_rd(a, AHCI_PxCI) & mask))
			break;
		if (clock_now_ns() > end) {
			rc = DMAR_ETIMEDOUT;
			break;
		}
		cpu_relax();
	}
	mfence();
	sync_ctrl(a, DMAR_DMASYNC_POSTWRITE | DMAR_DMASYNC_POSTREAD, mask);
	a->last_is = port_rd(a, AHCI_PxIS);
	a->last_tfd = port_rd(a, AHCI_PxTFD);
	if (rc == 0 && (a->last_tfd & ATA_STS_ERR))
		rc = DMAR_EHW;
	port_wr(a, AHCI_PxIS, a->last_is);
	return rc;
}

uint32_t ahci_prdbc(const struct ahci *a, unsigned slot)
{
	return get32(a->clb + slot * AHCI_CMD_HDR + 4);
}

int ahci_rw(struct ahci *a, bool write, uint64_t lba, uint32_t count,
	    const struct dmar_dmamap *map)
{
	if (ahci_prepare(a, 0, write, lba, count, map))
		return DMAR_EINVAL;
	ahci_issue(a, 1u);
	int rc = ahci_wait(a, 1u);
	/* A command that ended without moving every byte did not do its job. */
	if (rc == 0 && ahci_prdbc(a, 0) != count * a->sector_size)
		rc = DMAR_EHW;
	return rc;
}

int ahci_recover(struct ahci *a)
{
	(void)port_stop(a); /* a hung engine is what the COMRESET is for */
	uint32_t sctl = port_rd(a, AHCI_PxSCTL) & ~AHCI_PxSCTL_DET_MASK;
	port_wr(a, AHCI_PxSCTL, sctl | AHCI_PxSCTL_DET_INIT);
	clock_delay_ns(1000000); /* COMRESET is held at least 1 ms (10.4.2) */
	port_wr(a, AHCI_PxSCTL, sctl);
	if (wait_reg(a, preg(a, AHCI_PxSSTS), 0xf, AHCI_DET_PRESENT, LINK_TIMEOUT_NS))
		return DMAR_ETIMEDOUT;
	return port_start(a);
}

static uint16_t ident_word(const struct ahci *a, unsigned w)
{
	return (uint16_t)(a->ident[2 * w] | a->ident[2 * w + 1] << 8);
}

static int identify(struct ahci *a)
{
	struct dmar_dma_segment seg = { dmar_dmamap_segs(a->ident_map)[0].addr, 512 };
	build_cfis(a->ctba[0], ATA_IDENTIFY_DEVICE, 0, 0);
	a->ctba[0][7] = 0;
	if (build_slot(a, 0, false, &seg, 1))
		return DMAR_EINVAL;
	(void)dmar_dmamap_sync(a->ctrl_tag, a->ident_map, DMAR_DMASYNC_PREREAD);
	ahci_issue(a, 1u);
	int rc = ahci_wait(a, 1u);
	(void)dmar_dmamap_sync(a->ctrl_tag, a->ident_map, DMAR_DMASYNC_POSTREAD);
	if (rc)
		return rc;
	if (ident_word(a, 83) & (1u << 10)) /* 48-bit Address feature set */
		a->sectors = (uint64_t)ident_word(a, 100) | (uint64_t)ident_word(a, 101) << 16 |
			     (uint64_t)ident_word(a, 102) << 32 | (uint64_t)ident_word(a, 103) << 48;
	else
		a->sectors = (uint64_t)ident_word(a, 60) | (uint64_t)ident_word(a, 61) << 16;
	uint16_t w106 = ident_word(a, 106);
	a->sector_size = 512;
	if ((w106 & 0xc000) == 0x4000 && (w106 & (1u << 12)))
		a->sector_size = 2u * ((uint32_t)ident_word(a, 117) | (uint32_t)ident_word(a, 118) << 16);
	for (unsigned i = 0; i < 20; i++) { /* words 27..46, two characters each, high first */
		uint16_t w = ident_word(a, 27 + i);
		a->model[2 * i] = (char)(w >> 8);
		a->model[2 * i + 1] = (char)w;
	}
	a->model[40] = 0;
	for (int i = 39; i >= 0 && a->model[i] == ' '; i--)
		a->model[i] = 0;
	return (a->sectors && a->sector_size >= 512) ? 0 : DMAR_EHW;
}

static int make_tags(struct ahci *a)
{
	uint64_t lowaddr = (a->cap & AHCI_CAP_S64A) ? UINT64_MAX : 0xffffffffull;
	struct dmar_dma_tag_params p;
	dmar_dma_tag_params_default(&p);
	/* Control pages: the command list needs 1 KiB alignment (the strictest). */
	p.alignment = AHCI_CLB_SIZE;
	p.lowaddr = lowaddr;
	p.maxsize = PAGE_SIZE;
	p.maxsegsz = PAGE_SIZE;
	p.nsegments = 1;
	int rc = dmar_dma_tag_create(a->dev, 0, &p, &a->ctrl_tag);
	if (rc)
		return rc;
	/* Data: a PRD entry takes a word-aligned base and up to 4 MiB, no boundary. */
	dmar_dma_tag_params_default(&p);
	p.alignment = 2;
	p.lowaddr = lowaddr;
	p.maxsize = AHCI_MAX_BYTES;
	p.maxsegsz = AHCI_PRD_MAX;
	p.nsegments = AHCI_PRDS;
	return dmar_dma_tag_create(a->dev, 0, &p, &a->data_tag);
}

void ahci_detach(struct ahci *a)
{
	if (a->abar)
		(void)port_stop(a);
	for (unsigned s = 0; s < AHCI_SLOTS; s++)
		ctrl_page_free(a, &a->ctba[s], &a->ctba_map[s]);
	ctrl_page_free(a, &a->clb, &a->clb_map);
	ctrl_page_free(a, &a->ident, &a->ident_map);
	if (a->data_tag)
		(void)dmar_dma_tag_destroy(a->data_tag);
	if (a->ctrl_tag)
		(void)dmar_dma_tag_destroy(a->ctrl_tag);
	a->data_tag = a->ctrl_tag = 0;
}

/* The first implemented port whose link is up with an ATA (not ATAPI) device that
 * answers IDENTIFY DEVICE; it is left running. PxSIG is valid only once the device's
 * first D2H Register FIS arrived, which needs FIS receive on: so each port is started
 * before its signature is read. */
static int find_port(struct ahci *a)
{
	uint32_t pi = rd(a, AHCI_PI);
	for (unsigned p = 0; p <= AHCI_CAP_NP(a->cap) && p < 32; p++) {
		if (!(pi & (1u << p)))
			continue;
		a->port = p;
		if (AHCI_PxSSTS_DET(port_rd(a, AHCI_PxSSTS)) != AHCI_DET_PRESENT)
			continue;
		if (port_stop(a) || port_start(a)) {
			(void)port_stop(a);
			continue;
		}
		uint64_t end = clock_now_ns() + LINK_TIMEOUT_NS;
		while (port_rd(a, AHCI_PxSIG) == 0xffffffffu && clock_now_ns() < end)
			cpu_relax();
		if (port_rd(a, AHCI_PxSIG) != AHCI_SIG_ATAPI && identify(a) == 0)
			return 0;
		(void)port_stop(a);
	}
	return DMAR_ENODEV;
}

int ahci_attach(struct ahci *a, const struct pci_dev *d, struct dmar_busdma_dev *dev)
{
	uint64_t base, size;
	dmar_memset(a, 0, sizeof(*a));
	a->pci = d;
	a->dev = dev;
	if (!pci_bar_map(d, 5, &base, &size)) /* ABAR unassigned: firmware's fault */
		return DMAR_EHW;
	a->abar = (volatile uint8_t *)(uintptr_t)base;
	pci_enable(d, true);

	/* HBA reset: every port back to its idle state, whatever ran before. */
	wr(a, AHCI_GHC, AHCI_GHC_AE);
	wr(a, AHCI_GHC, AHCI_GHC_AE | AHCI_GHC_HR);
	if (wait_reg(a, AHCI_GHC, AHCI_GHC_HR, 0, RESET_TIMEOUT_NS))
		return DMAR_ETIMEDOUT;
	wr(a, AHCI_GHC, AHCI_GHC_AE); /* AE again (HR clears it), interrupts off */
	wr(a, AHCI_IS, 0xffffffffu);
	a->cap = rd(a, AHCI_CAP);
	a->nslots = AHCI_CAP_NCS(a->cap) + 1;
	int rc = make_tags(a);
	if (!rc)
		rc = ctrl_page(a, &a->clb, &a->clb_map, &a->clb_bus);
	for (unsigned s = 0; s < a->nslots && !rc; s++)
		rc = ctrl_page(a, &a->ctba[s], &a->ctba_map[s], &a->ctba_bus[s]);
	uint64_t ident_bus;
	if (!rc)
		rc = ctrl_page(a, &a->ident, &a->ident_map, &ident_bus);
	if (!rc)
		rc = find_port(a);
	if (rc)
		ahci_detach(a);
	return rc;
}
