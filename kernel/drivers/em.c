/* Intel 8254x/82574 gigabit Ethernet: registers, legacy descriptors, polled rings
 * (names as in Intel's 8254x Family Software Developer's Manual and the 82574 GbE
 * Controller Datasheet). */
#include "em.h"
#include "dmamem.h"
#include "mmio.h"

#include "clock.h"
#include "x86.h"

/* Registers (byte offsets in BAR0). */
#define EM_CTRL 0x0000
#define EM_STATUS 0x0008
#define EM_EERD 0x0014
#define EM_ICR 0x00c0
#define EM_IMC 0x00d8
#define EM_RCTL 0x0100
#define EM_TCTL 0x0400
#define EM_TIPG 0x0410
#define EM_RDBAL 0x2800
#define EM_RDBAH 0x2804
#define EM_RDLEN 0x2808
#define EM_RDH 0x2810
#define EM_RDT 0x2818
#define EM_RDTR 0x2820
#define EM_TDBAL 0x3800
#define EM_TDBAH 0x3804
#define EM_TDLEN 0x3808
#define EM_TDH 0x3810
#define EM_TDT 0x3818
#define EM_TXDCTL 0x3828
#define EM_MTA 0x5200
#define EM_RAL0 0x5400
#define EM_RAH0 0x5404

#define EM_CTRL_FD (1u << 0)
#define EM_CTRL_LRST (1u << 3)
#define EM_CTRL_ASDE (1u << 5)
#define EM_CTRL_SLU (1u << 6)
#define EM_CTRL_RST (1u << 26)
#define EM_CTRL_PHY_RST (1u << 31)

#define EM_STATUS_LU (1u << 1)

/* EERD: the 82540 has the address at 15:8 and DONE at bit 4; the 82574 moved them to
 * 15:2 and bit 1. Data is 31:16 on both. */
#define EM_EERD_START (1u << 0)
#define EM_EERD_DONE_82540 (1u << 4)
#define EM_EERD_ADDR_SHIFT_82540 8
#define EM_EERD_DONE_82574 (1u << 1)
#define EM_EERD_ADDR_SHIFT_82574 2
#define EM_EERD_DATA_SHIFT 16

#define EM_RCTL_EN (1u << 1)
#define EM_RCTL_BAM (1u << 15)
#define EM_RCTL_BSIZE_2048 (0u << 16) /* with BSEX clear */
#define EM_RCTL_SECRC (1u << 26)      /* strip the FCS: lengths are the frame's */

#define EM_TCTL_EN (1u << 1)
#define EM_TCTL_PSP (1u << 3)
#define EM_TCTL_CT(x) ((uint32_t)(x) << 4)
#define EM_TCTL_COLD(x) ((uint32_t)(x) << 12)

/* 82574 only: write-back threshold in descriptors (GRAN), counting of pending ones. */
#define EM_TXDCTL_WTHRESH(x) ((uint32_t)(x) << 16)
#define EM_TXDCTL_WTHRESH_MASK (0x3fu << 16)
#define EM_TXDCTL_COUNT_DESC (1u << 22)
#define EM_TXDCTL_GRAN (1u << 24)

#define EM_RAH_AV (1u << 31)
#define EM_MTA_ENTRIES 128u

/* Legacy descriptors (8254x SDM 3.2.3 and 3.3.3). */
struct em_rx_desc {
	uint64_t addr;
	uint16_t length;
	uint16_t csum;
	uint8_t status;
	uint8_t errors;
	uint16_t special;
};
_Static_assert(sizeof(struct em_rx_desc) == 16, "RX descriptor");

struct em_tx_desc {
	uint64_t addr;
	uint16_t length;
	uint8_t cso;
	uint8_t cmd;
	uint8_t status;
	uint8_t css;
	uint16_t special;
};
_Static_assert(sizeof(struct em_tx_desc) == 16, "TX descriptor");

#define EM_RXD_STAT_DD (1u << 0)
#define EM_RXD_STAT_EOP (1u << 1)
#define EM_TXD_CMD_EOP (1u << 0)
#define EM_TXD_CMD_IFCS (1u << 1)
#define EM_TXD_CMD_RS (1u << 3)
#define EM_TXD_STAT_DD (1u << 0)

/* RDLEN/TDLEN count bytes in units of 128 (the low 7 bits are ignored). */
#define EM_RING_BYTES (EM_NDESC * 16u)
_Static_assert(EM_RING_BYTES % 128 == 0 && EM_RING_BYTES <= 4096, "ring length");
/* The 82574 wants ring bases on 128 bytes (the 8254x 16): the stricter one for both. */
#define EM_RING_ALIGN 128u

static const struct {
	uint16_t device;
	enum em_kind kind;
	const char *name;
} em_ids[] = {
	{ EM_DEV_82540EM, EM_82540EM, "82540EM" },
	{ EM_DEV_82574L, EM_82574L, "82574L" },
};

static uint32_t rd32(struct em *c, unsigned off) { return *(volatile uint32_t *)(c->regs + off); }
static void wr32(struct em *c, unsigned off, uint32_t v) { *(volatile uint32_t *)(c->regs + off) = v; }

static volatile struct em_rx_desc *rxd(struct em *c, unsigned i)
{
	return (volatile struct em_rx_desc *)c->rxr + i;
}
static volatile struct em_tx_desc *txd(struct em *c, unsigned i)
{
	return (volatile struct em_tx_desc *)c->txr + i;
}

bool em_probe(uint16_t device, unsigned n, struct em *c)
{
	unsigned id;
	for (id = 0; id < sizeof(em_ids) / sizeof(em_ids[0]); id++)
		if (em_ids[id].device == device)
			break;
	if (id == sizeof(em_ids) / sizeof(em_ids[0]))
		return false; /* not a part this driver knows */
	const struct pci_dev *d = pci_find(EM_VENDOR_INTEL, device, n);
	uint64_t base, size;
	if (!d)
		return false;
	__builtin_memset(c, 0, sizeof(*c));
	if (!pci_bar_map(d, 0, &base, &size) || size < 0x20000)
		return false; /* both parts decode 128 KiB of registers */
	pci_enable(d, false);
	c->pci = d;
	c->regs = (volatile uint8_t *)(uintptr_t)base;
	c->sid = pci_sid(d);
	c->kind = em_ids[id].kind;
	c->name = em_ids[id].name;
	return rd32(c, EM_STATUS) != ~0u;
}

/* Polls until (reg & mask) == want, for at most EM_TIMEOUT_NS. */
static int wait_reg(struct em *c, unsigned off, uint32_t mask, uint32_t want)
{
	return mmio_wait32(c->regs, off, mask, want, EM_TIMEOUT_NS);
}

/* Global reset: the MAC, its rings and DMA stop; registers return to defaults. */
static int nic_reset(struct em *c)
{
	wr32(c, EM_RCTL, 0);
	wr32(c, EM_TCTL, 0);
	wr32(c, EM_CTRL, rd32(c, EM_CTRL) | EM_CTRL_RST);
	/* Registers must not be touched for a while after RST (1 us minimum per SDM). */
	clock_delay_ns(10000);
	int rc = wait_reg(c, EM_CTRL, EM_CTRL_RST, 0);
	if (rc)
		return rc;
	wr32(c, EM_IMC, ~0u); /* polled: no interrupt causes enabled */
	(void)rd32(c, EM_ICR);
	return 0;
}

static int eeprom_read(struct em *c, unsigned word, uint16_t *out)
{
	bool old = c->kind == EM_82540EM;
	uint32_t done = old ? EM_EERD_DONE_82540 : EM_EERD_DONE_82574;
	unsigned shift = old ? EM_EERD_ADDR_SHIFT_82540 : EM_EERD_ADDR_SHIFT_82574;
	wr32(c, EM_EERD, (uint32_t)word << shift | EM_EERD_START);
	int rc = wait_reg(c, EM_EERD, done, done);
	if (rc)
		return rc;
	*out = (uint16_t)(rd32(c, EM_EERD) >> EM_EERD_DATA_SHIFT);
	return 0;
}

/* The permanent address: EEPROM words 0-2, low byte first; programmed as receive
 * address 0 so unicast frames to it are accepted. */
static int read_mac(struct em *c)
{
	for (unsigned w = 0; w < 3; w++) {
		uint16_t v;
		int rc = eeprom_read(c, w, &v);
		if (rc)
			return rc;
		c->mac[2 * w] = (uint8_t)v;
		c->mac[2 * w + 1] = (uint8_t)(v >> 8);
	}
	if (c->mac[0] & 1)
		return DMAR_EHW; /* a group address: a blank or corrupt EEPROM */
	wr32(c, EM_RAL0, (uint32_t)c->mac[0] | (uint32_t)c->mac[1] << 8 |
				 (uint32_t)c->mac[2] << 16 | (uint32_t)c->mac[3] << 24);
	wr32(c, EM_RAH0, (uint32_t)c->mac[4] | (uint32_t)c->mac[5] << 8 | EM_RAH_AV);
	for (unsigned i = 0; i < EM_MTA_ENTRIES; i++)
		wr32(c, EM_MTA + 4 * i, 0);
	return 0;
}

/* Loads receive buffer i and gives its descriptor the device address. */
static int rx_load(struct em *c, unsigned i)
{
	struct em_rxslot *s = &c->rx[i];
	int rc = dmar_dmamap_load(c->rx_tag, s->map, s->va, EM_RXBUF, DMAR_DMA_NOWAIT);
	if (rc)
		return rc;
	dmar_dmamap_sync(c->rx_tag, s->map, DMAR_DMASYNC_PREREAD);
	s->addr = dmar_dmamap_segs(s->map)[0].addr;
	s->loaded = true;
	c->rx_loads++;
	volatile struct em_rx_desc *d = rxd(c, i);
	d->addr = s->addr;
	d->length = 0;
	d->status = 0;
	d->errors = 0;
	return 0;
}

static void rx_unload(struct em *c, unsigned i)
{
	struct em_rxslot *s = &c->rx[i];
	if (!s->loaded)
		return;
	dmar_dmamap_sync(c->rx_tag, s->map, DMAR_DMASYNC_POSTREAD);
	dmar_dmamap_unload(c->rx_tag, s->map);
	s->loaded = false;
}

static void ring_sync(struct em *c, struct dmar_dmamap *map, unsigned op)
{
	dmar_dmamap_sync(c->ring_tag, map, op);
}

static void rx_program(struct em *c)
{
	wr32(c, EM_RDBAL, (uint32_t)c->rxr_addr);
	wr32(c, EM_RDBAH, (uint32_t)(c->rxr_addr >> 32));
	wr32(c, EM_RDLEN, EM_RING_BYTES);
	wr32(c, EM_RDH, 0);
	wr32(c, EM_RDT, 0);
	wr32(c, EM_RDTR, 0); /* no receive interrupt delay: nothing to coalesce */
	wr32(c, EM_RCTL, EM_RCTL_EN | EM_RCTL_BAM | EM_RCTL_BSIZE_2048 | EM_RCTL_SECRC);
	/* One descriptor stays back: RDH == RDT means the ring is empty to the NIC. */
	mfence();
	wr32(c, EM_RDT, EM_NDESC - 1);
	c->rx_next = 0;
}

int em_rx_reset(struct em *c)
{
	int rc = 0;
	c->rx_resets++;
	wr32(c, EM_RCTL, 0);
	for (unsigned i = 0; i < EM_NDESC; i++)
		rx_unload(c, i);
	for (unsigned i = 0; i < EM_NDESC && !rc; i++)
		rc = rx_load(c, i);
	if (rc) {
		c->live = false;
		return rc;
	}
	ring_sync(c, c->rxr_map, DMAR_DMASYNC_PREWRITE | DMAR_DMASYNC_PREREAD);
	rx_program(c);
	return 0;
}

static void tx_program(struct em *c)
{
	wr32(c, EM_TDBAL, (uint32_t)c->txr_addr);
	wr32(c, EM_TDBAH, (uint32_t)(c->txr_addr >> 32));
	wr32(c, EM_TDLEN, EM_RING_BYTES);
	wr32(c, EM_TDH, 0);
	wr32(c, EM_TDT, 0);
	c->tx_head = c->tx_tail = 0;
	/* IEEE 802.3 inter-packet gap for copper: IPGT 10 (82540) or 8 (82574), IPGR1 8,
	 * IPGR2 6. */
	wr32(c, EM_TIPG, (c->kind == EM_82540EM ? 10u : 8u) | 8u << 10 | 6u << 20);
	if (c->kind == EM_82574L) {
		/* The 8257x init sequence: status written back per descriptor. */
		uint32_t v = rd32(c, EM_TXDCTL) & ~EM_TXDCTL_WTHRESH_MASK;
		wr32(c, EM_TXDCTL, v | EM_TXDCTL_GRAN | EM_TXDCTL_WTHRESH(1) | EM_TXDCTL_COUNT_DESC);
	}
	/* Pad short frames, retry 15 times, full-duplex collision distance. */
	wr32(c, EM_TCTL, EM_TCTL_EN | EM_TCTL_PSP | EM_TCTL_CT(0x0f) | EM_TCTL_COLD(0x3f));
}

/* One ring of descriptors in one page of dmamem, loaded for good. */
static int ring_alloc(struct em *c, void **va, struct dmar_dmamap **map, uint64_t *addr)
{
	return dmamem_get(c->ring_tag, EM_RING_BYTES, va, map, addr);
}

static void ring_free(struct em *c, void *va, struct dmar_dmamap **map)
{
	dmamem_put(c->ring_tag, va, map);
}

void em_tx_tag_params(struct dmar_dma_tag_params *p)
{
	dmar_dma_tag_params_default(p);
	/* A legacy TX descriptor takes any byte address and up to 16288 bytes; a frame
	 * takes at most EM_TX_MAXSEGS descriptors. 64-bit addresses (TDBAH, DAC). */
	p->maxsize = EM_MAX_FRAME;
	p->nsegments = EM_TX_MAXSEGS;
	p->maxsegsz = 4096;
}

void em_detach(struct em *c)
{
	if (c->regs && c->pci)
		(void)nic_reset(c);
	c->live = false;
	if (c->pci) {
		/* No more DMA from it, whatever state it is in. */
		uint16_t cmd = pci_read16(c->pci->bus, c->pci->dev, c->pci->fn, 0x04);
		pci_write16(c->pci->bus, c->pci->dev, c->pci->fn, 0x04, (uint16_t)(cmd & ~0x4u));
	}
	for (unsigned i = 0; i < EM_NDESC; i++) {
		struct em_rxslot *r = &c->rx[i];
		struct em_txslot *s = &c->tx[i];
		if (r->map) {
			rx_unload(c, i);
			dmar_dmamem_free(c->rx_tag, r->va, r->map);
			r->map = 0;
		}
		if (s->map) {
			dmar_dmamap_unload(c->tx_tag, s->map);
			dmar_dmamap_destroy(c->tx_tag, s->map);
			s->map = 0;
			s->busy = false;
		}
	}
	if (c->ring_tag) {
		ring_free(c, c->rxr, &c->rxr_map);
		ring_free(c, c->txr, &c->txr_map);
		dmar_dma_tag_destroy(c->ring_tag);
		c->ring_tag = 0;
	}
	if (c->rx_tag)
		dmar_dma_tag_destroy(c->rx_tag);
	if (c->tx_tag)
		dmar_dma_tag_destroy(c->tx_tag);
	c->rx_tag = c->tx_tag = 0;
}

int em_init(struct em *c, struct dmar_busdma_dev *dev)
{
	struct dmar_dma_tag_params p;
	c->dev = dev;
	int rc = nic_reset(c);
	if (!rc)
		rc = read_mac(c);
	if (rc)
		goto fail;

	/* Rings: one contiguous block each (RDBA/RDLEN describe one range). */
	dmar_dma_tag_params_default(&p);
	p.alignment = EM_RING_ALIGN;
	p.maxsize = EM_RING_BYTES;
	p.maxsegsz = EM_RING_BYTES;
	p.nsegments = 1;
	rc = dmar_dma_tag_create(dev, 0, &p, &c->ring_tag);
	if (rc)
		goto fail;
	/* Receive buffers: one descriptor each, so one segment of RCTL.BSIZE bytes. */
	dmar_dma_tag_params_default(&p);
	p.maxsize = EM_RXBUF;
	p.maxsegsz = EM_RXBUF;
	p.nsegments = 1;
	rc = dmar_dma_tag_create(dev, 0, &p, &c->rx_tag);
	if (rc)
		goto fail;
	em_tx_tag_params(&p);
	rc = dmar_dma_tag_create(dev, 0, &p, &c->tx_tag);
	if (rc)
		goto fail;

	rc = ring_alloc(c, &c->rxr, &c->rxr_map, &c->rxr_addr);
	if (!rc)
		rc = ring_alloc(c, &c->txr, &c->txr_map, &c->txr_addr);
	for (unsigned i = 0; i < EM_NDESC && !rc; i++) {
		rc = dmar_dmamem_alloc(c->rx_tag, &c->rx[i].va, 0, &c->rx[i].map);
		if (!rc)
			rc = dmar_dmamap_create(c->tx_tag, 0, &c->tx[i].map);
	}
	if (rc)
		goto fail;
	for (unsigned i = 0; i < EM_NDESC && !rc; i++)
		rc = rx_load(c, i);
	if (rc)
		goto fail;
	__builtin_memset(c->txr, 0, EM_RING_BYTES);
	ring_sync(c, c->rxr_map, DMAR_DMASYNC_PREWRITE | DMAR_DMASYNC_PREREAD);
	ring_sync(c, c->txr_map, DMAR_DMASYNC_PREWRITE | DMAR_DMASYNC_PREREAD);

	pci_enable(c->pci, true);
	/* Link: set link up, full duplex with speed auto-detection; no PHY reset. */
	uint32_t ctrl = rd32(c, EM_CTRL);
	ctrl &= ~(EM_CTRL_LRST | EM_CTRL_PHY_RST);
	wr32(c, EM_CTRL, ctrl | EM_CTRL_SLU | EM_CTRL_ASDE | EM_CTRL_FD);
	tx_program(c);
	rx_program(c);
	rc = wait_reg(c, EM_STATUS, EM_STATUS_LU, EM_STATUS_LU);
	if (rc)
		goto fail;
	c->live = true;
	return 0;
fail:
	em_detach(c);
	return rc;
}

unsigned em_tx_reclaim(struct em *c)
{
	unsigned queued = 0;
	ring_sync(c, c->txr_map, DMAR_DMASYNC_POSTREAD | DMAR_DMASYNC_POSTWRITE);
	while (c->tx_head != c->tx_tail) {
		struct em_txslot *s = &c->tx[c->tx_head];
		if (!s->busy) {
			c->tx_head = (c->tx_head + 1) % EM_NDESC;
			continue;
		}
		if (!(txd(c, s->eop)->status & EM_TXD_STAT_DD))
			break;
		dmar_dmamap_sync(c->tx_tag, s->map, DMAR_DMASYNC_POSTWRITE);
		dmar_dmamap_unload(c->tx_tag, s->map);
		s->busy = false;
		c->tx_head = (s->eop + 1) % EM_NDESC;
	}
	for (unsigned i = c->tx_head; i != c->tx_tail; i = (i + 1) % EM_NDESC)
		queued += c->tx[i].busy;
	return queued;
}

int em_tx(struct em *c, const void *buf, uint32_t len)
{
	if (!c->live || !buf || len < 14 || len > EM_MAX_FRAME)
		return DMAR_EINVAL;
	em_tx_reclaim(c);
	unsigned first = c->tx_tail;
	unsigned room = (c->tx_head + EM_NDESC - c->tx_tail - 1) % EM_NDESC;
	struct em_txslot *s = &c->tx[first];
	if (room == 0 || s->busy)
		return DMAR_ENOSPC;
	int rc = dmar_dmamap_load(c->tx_tag, s->map, buf, len, DMAR_DMA_NOWAIT | DMAR_DMA_NOWRITE);
	if (rc)
		return rc;
	unsigned n = dmar_dmamap_nsegs(s->map);
	if (n > room) {
		dmar_dmamap_unload(c->tx_tag, s->map);
		return DMAR_ENOSPC;
	}
	dmar_dmamap_sync(c->tx_tag, s->map, DMAR_DMASYNC_PREWRITE);
	const struct dmar_dma_segment *seg = dmar_dmamap_segs(s->map);
	unsigned i = first;
	for (unsigned k = 0; k < n; k++) {
		volatile struct em_tx_desc *d = txd(c, i);
		d->addr = seg[k].addr;
		d->length = (uint16_t)seg[k].len;
		d->cso = 0;
		d->css = 0;
		d->special = 0;
		d->status = 0;
		/* RS on the last one only: its DD tells the whole frame was fetched. */
		d->cmd = (uint8_t)(EM_TXD_CMD_IFCS | (k + 1 == n ? EM_TXD_CMD_EOP | EM_TXD_CMD_RS : 0));
		if (k + 1 < n)
			i = (i + 1) % EM_NDESC;
	}
	s->eop = i;
	s->busy = true;
	c->tx_tail = (i + 1) % EM_NDESC;
	ring_sync(c, c->txr_map, DMAR_DMASYNC_PREWRITE | DMAR_DMASYNC_PREREAD);
	mfence(); /* descriptors in memory before the NIC is told */
	wr32(c, EM_TDT, c->tx_tail);
	c->tx_frames++;
	return 0;
}

int em_rx(struct em *c, em_rx_fn fn, void *arg, unsigned max)
{
	int n = 0;
	if (!c->live)
		return DMAR_EINVAL;
	while ((unsigned)n < max) {
		unsigned i = c->rx_next;
		ring_sync(c, c->rxr_map, DMAR_DMASYNC_POSTREAD | DMAR_DMASYNC_POSTWRITE);
		volatile struct em_rx_desc *d = rxd(c, i);
		uint8_t status = d->status;
		if (!(status & EM_RXD_STAT_DD))
			break;
		struct em_rxslot *s = &c->rx[i];
		if (!s->loaded) {
			/* The NIC wrote a frame through an address no map holds any more:
			 * whatever it wrote went nowhere (or somewhere wrong). Start over. */
			c->rx_errors++;
			int rc = em_rx_reset(c);
			return rc ? rc : EM_ESTALE;
		}
		uint32_t len = d->length;
		uint8_t errors = d->errors;
		rx_unload(c, i);
		if (errors || !(status & EM_RXD_STAT_EOP) || len > EM_RXBUF) {
			c->rx_errors++; /* bad frame, or one spanning buffers: no jumbo here */
		} else {
			c->rx_frames++;
			n++;
			if (fn)
				fn(arg, s->va, len);
		}
		/* The buffer goes back to the NIC on a fresh load, like a new cluster. */
		int rc = rx_load(c, i);
		if (rc) {
			int rrc = em_rx_reset(c);
			return rrc ? rrc : rc;
		}
		ring_sync(c, c->rxr_map, DMAR_DMASYNC_PREWRITE | DMAR_DMASYNC_PREREAD);
		c->rx_next = (i + 1) % EM_NDESC;
		mfence();
		wr32(c, EM_RDT, i);
	}
	return n;
}

int em_rx_break_next(struct em *c, uint64_t *addr, void **va)
{
	if (!c->live || !c->rx[c->rx_next].loaded)
		return DMAR_EINVAL;
	struct em_rxslot *s = &c->rx[c->rx_next];
	*addr = s->addr;
	*va = s->va;
	rx_unload(c, c->rx_next);
	return 0;
}
