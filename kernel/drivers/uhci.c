/* The UHCI host controller (names as in the UHCI design guide 1.1, sections 2 and 3). */
#include "uhci.h"
#include "dmamem.h"

#include "clock.h"
#include "util.h"
#include "x86.h"

#define UHCI_CLASS 0x0c0300u /* serial bus, USB, UHCI */

/* I/O registers (2.1). */
#define USBCMD 0x00
#define USBSTS 0x02
#define USBINTR 0x04
#define FRNUM 0x06
#define FRBASEADD 0x08
#define SOFMOD 0x0c
#define PORTSC(port) (0x10 + 2 * ((port) - 1))

#define USBCMD_RS 0x0001
#define USBCMD_HCRESET 0x0002
#define USBCMD_GRESET 0x0004
#define USBCMD_CF 0x0040
#define USBCMD_MAXP 0x0080 /* 64-byte full-speed reclamation packets */

#define USBSTS_USBINT 0x0001
#define USBSTS_USBERRINT 0x0002
#define USBSTS_RD 0x0004
#define USBSTS_HSE 0x0008   /* host system error: a PCI master abort, e.g. a blocked DMA */
#define USBSTS_HCPE 0x0010  /* host controller process error: a bad schedule */
#define USBSTS_HCH 0x0020
#define USBSTS_ALL 0x003f

#define PORTSC_CCS 0x0001
#define PORTSC_CSC 0x0002
#define PORTSC_PED 0x0004
#define PORTSC_PEDC 0x0008
#define PORTSC_LSDA 0x0100
#define PORTSC_PR 0x0200

/* PCI configuration: command register and legacy support (USBLEGSUP, 5.2.1). */
#define PCI_CMD 0x04
#define PCI_CMD_IO 0x1
#define PCI_CMD_MASTER 0x4
#define PCI_BAR4 0x20
#define USBLEGSUP 0xc0
#define USBLEGSUP_DEFAULT 0x8f00 /* clear the trap status bits, no SMI, no PIRQ */

/* Link pointers (frame list entries, QH and TD links, 3.1-3.3). */
#define LINK_T 0x1  /* terminate */
#define LINK_Q 0x2  /* the pointer names a queue head */
#define LINK_VF 0x4 /* TD link: depth first, the next TD of this queue in the same frame */

/* TD control and status (3.2.2). */
#define TD_ACTLEN_MASK 0x7ffu
#define TD_BITSTUFF (1u << 17)
#define TD_CRC_TIMEOUT (1u << 18)
#define TD_NAK (1u << 19)
#define TD_BABBLE (1u << 20)
#define TD_DBUFERR (1u << 21)
#define TD_STALLED (1u << 22)
#define TD_ACTIVE (1u << 23)
#define TD_LS (1u << 26)
#define TD_CERR_3 (3u << 27)
#define TD_SPD (1u << 29)
#define TD_ERRORS (TD_BITSTUFF | TD_CRC_TIMEOUT | TD_BABBLE | TD_DBUFERR | TD_STALLED)

/* TD token (3.2.3). */
#define PID_SETUP 0x2du
#define PID_IN 0x69u
#define PID_OUT 0xe1u
#define TOKEN_D (1u << 19)
#define TOKEN_MAXLEN_NULL 0x7ffu /* a zero-length packet */

struct uhci_td {
	uint32_t link, status, token, buffer;
};
_Static_assert(sizeof(struct uhci_td) == 16, "TD");

struct uhci_qh {
	uint32_t link, element;
};

#define TDS_PER_PAGE (4096u / sizeof(struct uhci_td))
#define UHCI_NTDS (UHCI_TD_PAGES * TDS_PER_PAGE)
#define FRAME_LIST_ENTRIES 1024u
#define SETUP_OFFSET 64u /* the SETUP packet's place in the queue head page */

#define PORT_RESET_NS 50000000ull      /* TDRSTR for a root port (USB 2.0 7.1.7.5) */
#define PORT_ENABLE_NS 100000000ull
#define HC_RESET_NS 50000000ull
#define HC_HALT_NS 50000000ull
/* After taking TDs off the schedule, long enough for the controller to drop packets
 * it had in flight for them (QEMU forgets a queue after 32 idle frames). */
#define UNLINK_SETTLE_NS 40000000ull

static uint16_t rd16(const struct uhci *c, unsigned off) { return inw((uint16_t)(c->iobase + off)); }
static void wr16(const struct uhci *c, unsigned off, uint16_t v) { outw((uint16_t)(c->iobase + off), v); }
static void wr32(const struct uhci *c, unsigned off, uint32_t v) { outl((uint16_t)(c->iobase + off), v); }
static void wr8(const struct uhci *c, unsigned off, uint8_t v) { outb((uint16_t)(c->iobase + off), v); }

static volatile struct uhci_qh *qh_of(struct uhci *c) { return (volatile struct uhci_qh *)c->qh_page; }
static volatile struct uhci_td *td_at(struct uhci *c, unsigned i)
{
	return &c->td[i / TDS_PER_PAGE][i % TDS_PER_PAGE];
}
static uint32_t td_addr(const struct uhci *c, unsigned i)
{
	return c->td_addr[i / TDS_PER_PAGE] + (uint32_t)((i % TDS_PER_PAGE) * sizeof(struct uhci_td));
}
/* The index of the TD at device address `a`, or -1. */
static int td_index(const struct uhci *c, uint32_t a)
{
	for (unsigned p = 0; p < UHCI_TD_PAGES; p++)
		if (a >= c->td_addr[p] && a - c->td_addr[p] < 4096u)
			return (int)(p * TDS_PER_PAGE + (a - c->td_addr[p]) / sizeof(struct uhci_td));
	return -1;
}

static int wait_reg(const struct uhci *c, unsigned off, uint16_t mask, uint16_t want, uint64_t ns)
{
	uint64_t end = clock_now_ns() + ns;
	while ((rd16(c, off) & mask) != want) {
		if (clock_now_ns() > end)
			return DMAR_ETIMEDOUT;
		cpu_relax();
	}
	return 0;
}

/* Stops the schedule and resets the controller: no more DMA from it afterwards. */
static int hc_stop_reset(struct uhci *c)
{
	wr16(c, USBCMD, 0);
	int rc = wait_reg(c, USBSTS, USBSTS_HCH, USBSTS_HCH, HC_HALT_NS);
	wr16(c, USBCMD, USBCMD_HCRESET);
	int rc2 = wait_reg(c, USBCMD, USBCMD_HCRESET, 0, HC_RESET_NS);
	c->running = false;
	return rc ? rc : rc2;
}

bool uhci_probe(unsigned n, struct uhci *c)
{
	for (unsigned i = 0; i < pci_count(); i++) {
		const struct pci_dev *d = pci_device_at(i);
		if (d->header_type != 0 || d->class_rev >> 8 != UHCI_CLASS)
			continue;
		uint32_t bar = pci_read32(d->bus, d->dev, d->fn, PCI_BAR4);
		if (!(bar & 1) || (bar & ~3u) == 0)
			continue; /* BAR4 must be an assigned I/O BAR */
		if (n-- != 0)
			continue;
		dmar_memset(c, 0, sizeof(*c));
		c->pci = d;
		c->iobase = (uint16_t)(bar & ~3u);
		c->sid = pci_sid(d);
		uint16_t cmd = pci_read16(d->bus, d->dev, d->fn, PCI_CMD);
		pci_write16(d->bus, d->dev, d->fn, PCI_CMD, (uint16_t)(cmd | PCI_CMD_IO));
		/* Firmware may have left it running on a schedule of its own: stop it before
		 * the caller puts the function in a domain where that schedule is unmapped. */
		pci_write16(d->bus, d->dev, d->fn, USBLEGSUP, USBLEGSUP_DEFAULT);
		(void)hc_stop_reset(c);
		return true;
	}
	return false;
}

unsigned uhci_quiesce_all(void)
{
	struct uhci c;
	unsigned n = 0;
	while (uhci_probe(n, &c)) /* probing stops it */
		n++;
	return n;
}

/* ------------------------------------------------------------- transfers ---- */

static uint32_t td_token(uint32_t pid, uint8_t addr, uint8_t ep, bool toggle, uint32_t len)
{
	uint32_t maxlen = len ? len - 1 : TOKEN_MAXLEN_NULL;
	return pid | (uint32_t)addr << 8 | (uint32_t)(ep & 0xf) << 15 | (toggle ? TOKEN_D : 0) |
	       maxlen << 21;
}

static void td_fill(struct uhci *c, unsigned i, const struct usb_device *dev, uint32_t pid,
		    uint8_t ep, bool toggle, uint32_t buf, uint32_t len)
{
	volatile struct uhci_td *td = td_at(c, i);
	td->link = LINK_T;
	td->token = td_token(pid, dev->address, ep, toggle, len);
	td->buffer = buf;
	/* SPD on IN: a short packet stops the queue, so the driver sees where data ended. */
	td->status = TD_ACTIVE | TD_CERR_3 | (dev->speed == USB_SPEED_LOW ? TD_LS : 0) |
		     (pid == PID_IN ? TD_SPD : 0);
}

/* Bytes a TD moved (ActLen is n - 1, 0x7ff for none). */
static uint32_t td_actlen(uint32_t status) { return (status + 1) & TD_ACTLEN_MASK; }
static uint32_t td_maxlen(uint32_t token) { return ((token >> 21) + 1) & TD_ACTLEN_MASK; }

/* TDs first.. for `len` bytes of the loaded `map`, one packet of `mp` bytes each (the
 * last may be shorter), toggles alternating from `toggle`. A packet must lie in one
 * segment: a TD has a single buffer pointer. Returns the number of TDs, or a negative
 * error. */
static int data_tds(struct uhci *c, unsigned first, const struct usb_device *dev, uint32_t pid,
		    uint8_t ep, bool toggle, const struct dmar_dmamap *map, uint32_t len, uint16_t mp)
{
	const struct dmar_dma_segment *seg = dmar_dmamap_segs(map);
	unsigned nsegs = dmar_dmamap_nsegs(map), s = 0, n = 0;
	uint64_t off = 0;
	if (mp == 0)
		return DMAR_EINVAL;
	while (len) {
		if (s >= nsegs)
			return DMAR_EINVAL; /* the map holds fewer bytes than asked */
		uint64_t left = seg[s].len - off;
		uint32_t pkt = len < mp ? len : mp;
		if (left < pkt)
			return DMAR_EINVAL; /* a packet would straddle two segments */
		uint64_t a = seg[s].addr + off;
		if (a + pkt - 1 > 0xffffffffull)
			return DMAR_ERANGE;
		if (first + n >= UHCI_NTDS)
			return DMAR_ENOSPC;
		td_fill(c, first + n, dev, pid, ep, toggle, (uint32_t)a, pkt);
		toggle = !toggle;
		n++;
		len -= pkt;
		off += pkt;
		if (off == seg[s].len) {
			s++;
			off = 0;
		}
	}
	return (int)n;
}

/* Puts TDs 0..n-1 on the queue head and polls until they are done. `status_td` is the
 * control transfer's status stage (where a short data stage continues), or -1. TDs
 * [d0, d1) carry data: *actual gets their bytes, *done how many of them completed. */
static int run_tds(struct uhci *c, unsigned n, int status_td, unsigned d0, unsigned d1,
		   uint32_t *actual, unsigned *done)
{
	volatile struct uhci_qh *qh = qh_of(c);
	for (unsigned i = 0; i + 1 < n; i++)
		td_at(c, i)->link = td_addr(c, i + 1) | LINK_VF;
	td_at(c, n - 1)->link = LINK_T;
	mfence(); /* the TDs are in memory before the controller can find them */
	qh->element = td_addr(c, 0);

	int rc = USB_ETIMEOUT;
	bool unlink = false;
	uint64_t end = clock_now_ns() + USB_TIMEOUT_NS;
	while (clock_now_ns() < end) {
		uint32_t el = qh->element;
		if (el & LINK_T) {
			rc = 0;
			break;
		}
		uint16_t sts = rd16(c, USBSTS);
		if (sts & (USBSTS_HSE | USBSTS_HCPE | USBSTS_HCH)) {
			c->last_usbsts = sts;
			rc = USB_EPROTO;
			unlink = true;
			break;
		}
		int i = td_index(c, el & ~0xfu);
		if (i < 0) {
			cpu_relax();
			continue; /* not yet written back in full: read it again */
		}
		volatile struct uhci_td *td = td_at(c, (unsigned)i);
		uint32_t st = td->status, tok = td->token;
		if (st & TD_ACTIVE) {
			cpu_relax();
			continue;
		}
		if (st & TD_ERRORS) {
			c->last_td_status = st;
			/* QEMU marks babble as stalled too: babble is the worse news. */
			rc = (st & TD_STALLED) && !(st & (TD_BABBLE | TD_DBUFERR | TD_CRC_TIMEOUT |
							  TD_BITSTUFF))
				     ? USB_ESTALL
				     : USB_EPROTO;
			unlink = true;
			break;
		}
		if ((tok & 0xff) == PID_IN && td_actlen(st) < td_maxlen(tok)) {
			/* A short packet ended the data stage (SPD kept the queue on it). */
			if (status_td >= 0 && i < status_td) {
				qh->element = td_addr(c, (unsigned)status_td);
				continue;
			}
			rc = 0;
			unlink = true;
			break;
		}
		/* Done, and the controller is about to advance the element pointer. */
		cpu_relax();
	}
	if (rc == USB_ETIMEOUT) {
		c->last_td_status = 0;
		unlink = true;
	}
	if (unlink) {
		qh->element = LINK_T;
		mfence();
		if (rc == USB_ETIMEOUT || rc == USB_EPROTO)
			clock_delay_ns(UNLINK_SETTLE_NS);
	}

	uint32_t got = 0;
	unsigned completed = 0;
	for (unsigned i = d0; i < d1; i++) {
		uint32_t st = td_at(c, i)->status;
		if (st & (TD_ACTIVE | TD_ERRORS))
			break;
		got += td_actlen(st);
		completed++;
	}
	if (actual)
		*actual = got;
	if (done)
		*done = completed;
	return rc;
}

static struct uhci *uhci_of(struct usb_hcd *h) { return (struct uhci *)h; }

static int uhci_control(struct usb_hcd *h, struct usb_device *dev, const struct usb_setup *setup,
			struct dmar_dmamap *data, uint32_t *actual)
{
	struct uhci *c = uhci_of(h);
	bool in = (setup->bmRequestType & 0x80) != 0;
	uint32_t len = setup->wLength;
	if (actual)
		*actual = 0;
	if (len && !data)
		return DMAR_EINVAL;

	dmar_memcpy(c->qh_page + SETUP_OFFSET, setup, sizeof(*setup));
	td_fill(c, 0, dev, PID_SETUP, 0, false, c->qh_addr + SETUP_OFFSET, sizeof(*setup));
	int n = 0;
	if (len) {
		n = data_tds(c, 1, dev, in ? PID_IN : PID_OUT, 0, true, data, len, dev->ep0.max_packet);
		if (n < 0)
			return n;
	}
	unsigned status_td = 1 + (unsigned)n;
	if (status_td >= UHCI_NTDS)
		return DMAR_ENOSPC;
	/* The status stage goes the other way, always DATA1 (USB 2.0 8.5.3). */
	td_fill(c, status_td, dev, (in && len) ? PID_OUT : PID_IN, 0, true, 0, 0);
	return run_tds(c, status_td + 1, (int)status_td, 1, status_td, actual, NULL);
}

static int uhci_bulk(struct usb_hcd *h, struct usb_device *dev, struct usb_endpoint *ep,
		     struct dmar_dmamap *data, uint32_t len, uint32_t *actual)
{
	struct uhci *c = uhci_of(h);
	bool in = (ep->addr & 0x80) != 0;
	uint32_t pid = in ? PID_IN : PID_OUT;
	int n;
	if (actual)
		*actual = 0;
	if (len > h->max_transfer || (len && !data))
		return DMAR_EINVAL;
	if (len == 0) {
		td_fill(c, 0, dev, pid, ep->addr, ep->toggle, 0, 0);
		n = 1;
	} else {
		n = data_tds(c, 0, dev, pid, ep->addr, ep->toggle, data, len, ep->max_packet);
		if (n < 0)
			return n;
	}
	unsigned done = 0;
	int rc = run_tds(c, (unsigned)n, -1, 0, (unsigned)n, actual, &done);
	/* Each packet the device took (or sent) flipped its toggle once. */
	if (done & 1)
		ep->toggle = !ep->toggle;
	return rc;
}

static int uhci_port_reset(struct usb_hcd *h, unsigned port, enum usb_speed *speed)
{
	struct uhci *c = uhci_of(h);
	if (port < 1 || port > h->nports)
		return DMAR_EINVAL;
	if (!(rd16(c, PORTSC(port)) & PORTSC_CCS))
		return USB_ENODEV;
	wr16(c, PORTSC(port), PORTSC_PR);
	clock_delay_ns(PORT_RESET_NS);
	wr16(c, PORTSC(port), 0);
	clock_delay_ns(100000); /* the port leaves reset before it can be enabled */
	uint64_t end = clock_now_ns() + PORT_ENABLE_NS;
	uint16_t v;
	for (;;) {
		/* Enable, and acknowledge the change bits the reset left (write 1 to clear). */
		wr16(c, PORTSC(port), PORTSC_PED | PORTSC_CSC | PORTSC_PEDC);
		v = rd16(c, PORTSC(port));
		if (!(v & PORTSC_CCS))
			return USB_ENODEV;
		if (v & PORTSC_PED)
			break;
		if (clock_now_ns() > end)
			return USB_ETIMEOUT;
		clock_delay_ns(1000000);
	}
	*speed = (v & PORTSC_LSDA) ? USB_SPEED_LOW : USB_SPEED_FULL;
	return 0;
}

static int uhci_set_address(struct usb_hcd *h, struct usb_device *dev)
{
	/* One device per root port, no hubs: the port number is a unique address. */
	uint8_t addr = (uint8_t)dev->port;
	struct usb_setup s = { 0x00, 0x05 /* SET_ADDRESS */, addr, 0, 0 };
	uint32_t got;
	dev->address = 0;
	int rc = uhci_control(h, dev, &s, NULL, &got);
	if (rc == 0)
		dev->address = addr;
	return rc;
}

static int uhci_configure(struct usb_hcd *h, struct usb_device *dev)
{
	(void)h;
	/* SET_CONFIGURATION starts every endpoint at DATA0 (USB 2.0 9.1.1.5). */
	dev->bulk_in.toggle = dev->bulk_out.toggle = false;
	return 0;
}

static void uhci_release(struct usb_hcd *h, struct usb_device *dev)
{
	(void)dev;
	qh_of(uhci_of(h))->element = LINK_T;
}

static const struct usb_hcd_ops uhci_ops = {
	.port_reset = uhci_port_reset,
	.set_address = uhci_set_address,
	.configure = uhci_configure,
	.control = uhci_control,
	.bulk = uhci_bulk,
	.release = uhci_release,
	.clear_halt = NULL, /* toggles are kept in software: the core resets them */
};

/* ------------------------------------------------------------ bring-up ------ */

/* One 4 KiB page of schedule memory, loaded; its (32-bit) device address in *addr. */
static int sched_page(struct uhci *c, void **va, struct dmar_dmamap **map, uint32_t *addr)
{
	uint64_t a;
	int rc = dmamem_get(c->sched_tag, 4096, va, map, &a);
	if (!rc)
		*addr = (uint32_t)a; /* the tag keeps it below 4 GiB */
	return rc;
}

static void sched_page_free(struct uhci *c, void *va, struct dmar_dmamap **map)
{
	dmamem_put(c->sched_tag, va, map);
}

static void free_dma(struct uhci *c)
{
	for (unsigned p = 0; p < UHCI_TD_PAGES; p++)
		sched_page_free(c, c->td[p], &c->td_map[p]);
	sched_page_free(c, c->qh_page, &c->qh_map);
	sched_page_free(c, c->frame_list, &c->fl_map);
	if (c->hcd.data_tag)
		dmar_dma_tag_destroy(c->hcd.data_tag);
	if (c->hcd.ctl_tag)
		dmar_dma_tag_destroy(c->hcd.ctl_tag);
	if (c->sched_tag)
		dmar_dma_tag_destroy(c->sched_tag);
	c->hcd.data_tag = c->hcd.ctl_tag = c->sched_tag = NULL;
}

static int make_tags(struct uhci *c)
{
	struct dmar_dma_tag_params p;
	dmar_dma_tag_params_default(&p);
	p.lowaddr = 0xffffffffull; /* 32-bit bus master */
	p.alignment = 4096;        /* the frame list's alignment; QH and TD pages share it */
	p.maxsize = p.maxsegsz = 4096;
	p.nsegments = 1;
	int rc = dmar_dma_tag_create(c->dev, NULL, &p, &c->sched_tag);
	if (rc)
		return rc;
	/* Control data, CBW and CSW: any byte address (a TD's buffer pointer is 32 bits). */
	p.alignment = 1;
	rc = dmar_dma_tag_create(c->dev, NULL, &p, &c->hcd.ctl_tag);
	if (rc)
		return rc;
	p.maxsize = p.maxsegsz = UHCI_MAX_TRANSFER;
	p.nsegments = UHCI_MAX_TRANSFER / 4096 + 1;
	return dmar_dma_tag_create(c->dev, NULL, &p, &c->hcd.data_tag);
}

int uhci_init(struct uhci *c, struct dmar_busdma_dev *dev)
{
	const struct pci_dev *d = c->pci;
	c->dev = dev;
	int rc = make_tags(c);
	for (unsigned p = 0; rc == 0 && p < UHCI_TD_PAGES; p++)
		rc = sched_page(c, (void **)&c->td[p], &c->td_map[p], &c->td_addr[p]);
	if (rc == 0)
		rc = sched_page(c, (void **)&c->qh_page, &c->qh_map, &c->qh_addr);
	if (rc == 0)
		rc = sched_page(c, (void **)&c->frame_list, &c->fl_map, &c->fl_addr);
	if (rc)
		goto fail;

	volatile struct uhci_qh *qh = qh_of(c);
	qh->link = LINK_T;
	qh->element = LINK_T;
	/* Every frame visits the one queue head; nothing periodic is ever scheduled. */
	for (unsigned i = 0; i < FRAME_LIST_ENTRIES; i++)
		c->frame_list[i] = c->qh_addr | LINK_Q;
	mfence();

	rc = hc_stop_reset(c);
	if (rc)
		goto fail;
	uint16_t cmd = pci_read16(d->bus, d->dev, d->fn, PCI_CMD);
	pci_write16(d->bus, d->dev, d->fn, PCI_CMD, (uint16_t)(cmd | PCI_CMD_IO | PCI_CMD_MASTER));
	wr16(c, USBINTR, 0);
	wr16(c, USBSTS, USBSTS_ALL);
	wr16(c, FRNUM, 0);
	wr32(c, FRBASEADD, c->fl_addr);
	wr8(c, SOFMOD, 64); /* the default: 1 ms frames */
	wr16(c, USBCMD, USBCMD_RS | USBCMD_CF | USBCMD_MAXP);
	rc = wait_reg(c, USBSTS, USBSTS_HCH, 0, HC_HALT_NS);
	if (rc)
		goto fail;
	c->running = true;

	c->hcd.name = "uhci";
	c->hcd.ops = &uhci_ops;
	c->hcd.nports = UHCI_NPORTS;
	c->hcd.dev = dev;
	c->hcd.max_transfer = UHCI_MAX_TRANSFER;
	return 0;
fail:
	(void)hc_stop_reset(c);
	free_dma(c);
	return rc;
}

void uhci_detach(struct uhci *c)
{
	(void)hc_stop_reset(c);
	free_dma(c);
}
