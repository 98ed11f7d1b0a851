/* The EHCI host controller: registers, the asynchronous schedule, port reset (names as
 * in the Enhanced Host Controller Interface Specification for USB, revision 1.0). */
#include "ehci.h"
#include "dmamem.h"
#include "mmio.h"

#include <stddef.h>

#include "clock.h"
#include "console.h"
#include "util.h"
#include "x86.h"

/* Capability registers (2.2). */
#define EHCI_CAPLENGTH 0x00 /* byte; HCIVERSION is the word at 0x02 */
#define EHCI_HCSPARAMS 0x04
#define EHCI_HCCPARAMS 0x08
#define HCSPARAMS_N_PORTS(x) ((x) & 0xfu)
#define HCSPARAMS_PPC (1u << 4)
#define HCCPARAMS_AC64 (1u << 0)
#define HCCPARAMS_EECP(x) (((x) >> 8) & 0xffu)

/* Operational registers (2.3), from CAPLENGTH. */
#define EHCI_USBCMD 0x00
#define EHCI_USBSTS 0x04
#define EHCI_USBINTR 0x08
#define EHCI_CTRLDSSEGMENT 0x10
#define EHCI_PERIODICLISTBASE 0x14
#define EHCI_ASYNCLISTADDR 0x18
#define EHCI_CONFIGFLAG 0x40
#define EHCI_PORTSC(n) (0x44u + 4u * ((n) - 1u))

#define USBCMD_RS (1u << 0)
#define USBCMD_HCRESET (1u << 1)
#define USBCMD_PSE (1u << 4)
#define USBCMD_ASE (1u << 5)
#define USBCMD_IAAD (1u << 6)
#define USBCMD_ITC(n) ((uint32_t)(n) << 16)

#define USBSTS_USBINT (1u << 0)
#define USBSTS_USBERRINT (1u << 1)
#define USBSTS_PCD (1u << 2)
#define USBSTS_FLR (1u << 3)
#define USBSTS_HSE (1u << 4)
#define USBSTS_IAA (1u << 5)
#define USBSTS_HCHALTED (1u << 12)
#define USBSTS_ASS (1u << 15)
#define USBSTS_RWC 0x3fu

#define CONFIGFLAG_CF (1u << 0)

#define PORTSC_CCS (1u << 0)
#define PORTSC_CSC (1u << 1)
#define PORTSC_PE (1u << 2)
#define PORTSC_PEC (1u << 3)
#define PORTSC_OCC (1u << 5)
#define PORTSC_PR (1u << 8)
#define PORTSC_LS_MASK (3u << 10)
#define PORTSC_LS_K (1u << 10) /* K-state: a low-speed device */
#define PORTSC_PP (1u << 12)
#define PORTSC_PO (1u << 13)
#define PORTSC_RWC (PORTSC_CSC | PORTSC_PEC | PORTSC_OCC)

/* EHCI extended capabilities in PCI configuration space (2.1.7, 2.1.8). */
#define EECP_ID_LEGSUP 0x01
#define USBLEGSUP_HC_BIOS_OWNED (1u << 16)
#define USBLEGSUP_HC_OS_OWNED (1u << 24)
#define USBLEGCTLSTS 4
#define USBLEGCTLSTS_RWC 0xe0000000u /* SMI on BAR, PCI command, OS ownership change */

/* Link pointers (3.1). */
#define LINK_T 1u
#define LINK_TYPE_QH (1u << 1)

/* Queue head dwords (3.6). */
#define QH_HLP 0
#define QH_EPCHAR 1
#define QH_EPCAP 2
#define QH_CUR 3
#define QH_NEXT 4  /* the overlay: a qTD from here */
#define QH_ALT 5
#define QH_TOKEN 6
#define QH_BUF 7
#define QH_BUFHI 12
#define QH_DWORDS 17
#define EPCHAR_DEVADDR(a) ((uint32_t)(a) & 0x7fu)
#define EPCHAR_ENDPT(n) (((uint32_t)(n) & 0xfu) << 8)
#define EPCHAR_EPS_HIGH (2u << 12)
#define EPCHAR_DTC (1u << 14)
#define EPCHAR_H (1u << 15)
#define EPCHAR_MAXPKT(m) (((uint32_t)(m) & 0x7ffu) << 16)
#define EPCAP_MULT(m) ((uint32_t)(m) << 30)

/* qTD dwords (3.5). */
#define QTD_NEXT 0
#define QTD_ALT 1
#define QTD_TOKEN 2
#define QTD_BUF 3
#define QTD_BUFHI 8
#define TOKEN_DT (1u << 31)
#define TOKEN_BYTES(n) ((uint32_t)(n) << 16)
#define TOKEN_BYTES_GET(t) (((t) >> 16) & 0x7fffu)
#define TOKEN_IOC (1u << 15)
#define TOKEN_CERR(n) ((uint32_t)(n) << 10)
#define TOKEN_PID_OUT (0u << 8)
#define TOKEN_PID_IN (1u << 8)
#define TOKEN_PID_SETUP (2u << 8)
#define TOKEN_ACTIVE (1u << 7)
#define TOKEN_HALTED (1u << 6)
#define TOKEN_DBERR (1u << 5)
#define TOKEN_BABBLE (1u << 4)
#define TOKEN_XACTERR (1u << 3)
#define TOKEN_PING (1u << 0)
#define QTD_MAX_BYTES 0x5000u /* five pages */

#define EHCI_PAGE 4096u
#define QH_STRIDE 128u   /* 68 bytes with the 64-bit buffer pointer dwords, 32-aligned */
#define QTD_STRIDE 64u   /* 52 bytes likewise */
#define SETUP_OFFSET (EHCI_QH_SLOTS * QH_STRIDE) /* the SETUP packet: after the QHs */
#define QTD_STOP 0u      /* an inactive qTD: a short bulk IN stops the queue there */

#define HALT_NS 20000000ull        /* 16 microframes (2.3.1), generously */
#define RESET_NS 250000000ull      /* HCRESET */
#define PORT_RESET_NS 50000000ull  /* TDRSTR: root port reset held 50 ms (USB 2.0 7.1.7.5) */
#define PORT_RESET_END_NS 100000000ull /* PR reads 0 within 2 ms (2.3.9), generously */
#define PORT_POWER_NS 20000000ull  /* power on to good */
#define DOORBELL_NS 100000000ull
#define BIOS_HANDOFF_NS 1000000000ull

_Static_assert(SETUP_OFFSET + 8 <= EHCI_PAGE, "QH page");
_Static_assert(QH_DWORDS * 4 <= QH_STRIDE, "QH stride");

static struct ehci *to_ehci(struct usb_hcd *h)
{
	return (struct ehci *)((uint8_t *)h - offsetof(struct ehci, hcd));
}

static uint32_t cap_rd(struct ehci *e, unsigned off) { return *(volatile uint32_t *)(e->cap + off); }
static uint32_t op_rd(struct ehci *e, unsigned off) { return *(volatile uint32_t *)(e->op + off); }
static void op_wr(struct ehci *e, unsigned off, uint32_t v) { *(volatile uint32_t *)(e->op + off) = v; }

/* Waits until (register & mask) == want. */
static int op_wait(struct ehci *e, unsigned off, uint32_t mask, uint32_t want, uint64_t ns)
{
	return mmio_wait32(e->op, off, mask, want, ns);
}

static volatile uint32_t *qtd_hw(struct ehci *e, unsigned slot)
{
	return (volatile uint32_t *)(e->qtd_page + slot * QTD_STRIDE);
}
static uint32_t qtd_bus(struct ehci *e, unsigned slot) { return e->qtd_bus + slot * QTD_STRIDE; }

const struct pci_dev *ehci_find(unsigned n)
{
	for (unsigned i = 0; i < pci_count(); i++) {
		const struct pci_dev *d = pci_device_at(i);
		if (d->header_type == 0 && d->class_rev >> 8 == EHCI_CLASS && n-- == 0)
			return d;
	}
	return 0;
}

/* ------------------------------------------------------------- bring-up ------ */

/* BIOS-to-OS handoff (5.1): set HC OS Owned, wait for the firmware to drop HC BIOS Owned,
 * and turn off the SMIs it may have left enabled. */
static void take_ownership(struct ehci *e)
{
	const struct pci_dev *d = e->pci;
	uint8_t off = (uint8_t)HCCPARAMS_EECP(e->hccparams);
	/* The list lives above the header; a bound stops a looping one. */
	for (unsigned n = 0; n < 32 && off >= 0x40; n++) {
		uint32_t v = pci_read32(d->bus, d->dev, d->fn, off);
		if ((v & 0xffu) == EECP_ID_LEGSUP) {
			if (v & USBLEGSUP_HC_BIOS_OWNED) {
				e->bios_owned = true;
				/* A word write leaves the firmware's byte as it reads. */
				pci_write16(d->bus, d->dev, d->fn, (uint8_t)(off + 2),
					    (uint16_t)(((v >> 16) & 0xffu) | 0x100u));
				uint64_t end = clock_now_ns() + BIOS_HANDOFF_NS;
				while ((pci_read32(d->bus, d->dev, d->fn, off) &
					USBLEGSUP_HC_BIOS_OWNED) && clock_now_ns() < end)
					clock_delay_ns(1000000);
				if (pci_read32(d->bus, d->dev, d->fn, off) & USBLEGSUP_HC_BIOS_OWNED) {
					kprintf("# ehci: firmware kept ownership; taking it\n");
					pci_write16(d->bus, d->dev, d->fn, (uint8_t)(off + 2), 0x100u);
				}
			} else {
				pci_write16(d->bus, d->dev, d->fn, (uint8_t)(off + 2), 0x100u);
			}
			pci_write32(d->bus, d->dev, d->fn, (uint8_t)(off + USBLEGCTLSTS),
				    USBLEGCTLSTS_RWC);
		}
		off = (uint8_t)((v >> 8) & 0xfcu);
	}
}

/* Stop (HCHalted within 16 microframes) and HCRESET (2.3.1). */
static int hc_reset(struct ehci *e)
{
	if (!(op_rd(e, EHCI_USBSTS) & USBSTS_HCHALTED)) {
		op_wr(e, EHCI_USBCMD, op_rd(e, EHCI_USBCMD) & ~(USBCMD_RS | USBCMD_ASE | USBCMD_PSE));
		int rc = op_wait(e, EHCI_USBSTS, USBSTS_HCHALTED, USBSTS_HCHALTED, HALT_NS);
		if (rc)
			return rc;
	}
	op_wr(e, EHCI_USBCMD, USBCMD_HCRESET);
	return op_wait(e, EHCI_USBCMD, USBCMD_HCRESET, 0, RESET_NS);
}

/* The head of the asynchronous schedule: H set (reclamation), halted, no qTDs. Every
 * endpoint's queue head joins the circle behind it. */
static void head_init(struct ehci *e)
{
	volatile uint32_t *hw = e->qh[0].hw;
	for (unsigned i = 0; i < QH_DWORDS; i++)
		hw[i] = 0;
	hw[QH_HLP] = e->qh[0].bus | LINK_TYPE_QH;
	hw[QH_EPCHAR] = EPCHAR_H | EPCHAR_EPS_HIGH;
	hw[QH_EPCAP] = EPCAP_MULT(1);
	hw[QH_NEXT] = LINK_T;
	hw[QH_ALT] = LINK_T;
	hw[QH_TOKEN] = TOKEN_HALTED;
	e->qh[0].used = true;
}

/* Run with the asynchronous schedule, no interrupts, ports routed to EHCI (4.1). */
static int hc_start(struct ehci *e)
{
	op_wr(e, EHCI_USBINTR, 0);
	if (e->ac64)
		op_wr(e, EHCI_CTRLDSSEGMENT, 0); /* the schedule pages lie below 4 GiB */
	op_wr(e, EHCI_PERIODICLISTBASE, 0);
	op_wr(e, EHCI_ASYNCLISTADDR, e->qh[0].bus);
	op_wr(e, EHCI_USBSTS, USBSTS_RWC);
	op_wr(e, EHCI_USBCMD, USBCMD_ITC(8) | USBCMD_ASE | USBCMD_RS);
	int rc = op_wait(e, EHCI_USBSTS, USBSTS_HCHALTED, 0, HALT_NS);
	if (rc)
		return rc;
	e->running = true;
	op_wr(e, EHCI_CONFIGFLAG, CONFIGFLAG_CF);
	(void)op_rd(e, EHCI_CONFIGFLAG); /* posted write flushed before the ports are read */
	if (e->hcsparams & HCSPARAMS_PPC) {
		for (unsigned p = 1; p <= e->hcd.nports; p++) {
			uint32_t v = op_rd(e, EHCI_PORTSC(p));
			op_wr(e, EHCI_PORTSC(p), (v & ~PORTSC_RWC) | PORTSC_PP);
		}
	}
	clock_delay_ns(PORT_POWER_NS);
	return op_wait(e, EHCI_USBSTS, USBSTS_ASS, USBSTS_ASS, HALT_NS);
}

/* ----------------------------------------------------------- queue heads ----- */

/* Waits for the controller to drop what it cached of unlinked queue heads: the
 * Interrupt on Async Advance doorbell (4.8.2). IAA is cleared again at once (a pending
 * IAA also stalls some controllers' schedules). */
static int doorbell(struct ehci *e)
{
	if (!(op_rd(e, EHCI_USBSTS) & USBSTS_ASS))
		return 0; /* the schedule is not running: nothing is cached */
	op_wr(e, EHCI_USBCMD, op_rd(e, EHCI_USBCMD) | USBCMD_IAAD);
	int rc = op_wait(e, EHCI_USBSTS, USBSTS_IAA, USBSTS_IAA, DOORBELL_NS);
	op_wr(e, EHCI_USBSTS, USBSTS_IAA);
	return rc;
}

static void qh_set_epchar(struct ehci_qh *q, uint8_t addr, uint8_t ep, uint16_t maxp)
{
	/* DTC: the toggle comes from each qTD, kept in software (usb_endpoint.toggle). */
	uint32_t c = EPCHAR_MAXPKT(maxp) | EPCHAR_DTC | EPCHAR_EPS_HIGH | EPCHAR_ENDPT(ep) |
		     EPCHAR_DEVADDR(addr);
	if (q->hw[QH_EPCHAR] != c)
		q->hw[QH_EPCHAR] = c;
}

/* An empty, idle overlay: next and alternate next terminate, nothing active. */
static void qh_idle(struct ehci_qh *q)
{
	q->hw[QH_CUR] = 0;
	q->hw[QH_NEXT] = LINK_T;
	q->hw[QH_ALT] = LINK_T;
	for (unsigned i = QH_BUF; i < QH_DWORDS; i++)
		q->hw[i] = 0;
	q->hw[QH_TOKEN] = 0;
}

/* A queue head for an endpoint, linked behind the head. */
static struct ehci_qh *qh_get(struct ehci *e, struct usb_device *dev, struct usb_endpoint *ep)
{
	if (ep->hc)
		return ep->hc;
	for (unsigned i = 1; i < EHCI_QH_SLOTS; i++) {
		struct ehci_qh *q = &e->qh[i];
		if (q->used)
			continue;
		q->used = true;
		q->hw[QH_HLP] = LINK_T;
		q->hw[QH_EPCHAR] = 0;
		q->hw[QH_EPCAP] = EPCAP_MULT(1);
		qh_set_epchar(q, dev->address, ep->addr, ep->max_packet);
		qh_idle(q);
		mfence();
		q->hw[QH_HLP] = e->qh[0].hw[QH_HLP];
		mfence(); /* complete before the controller can reach it */
		e->qh[0].hw[QH_HLP] = q->bus | LINK_TYPE_QH;
		(void)dmar_dmamap_sync(e->sched_tag, e->qh_map, DMAR_DMASYNC_PREWRITE);
		ep->hc = q;
		return q;
	}
	return 0;
}

/* Takes the queue head out of the circle (its successor stays reachable from it for a
 * controller that is on it now). The caller rings the doorbell before reusing it. */
static void qh_unlink(struct ehci *e, struct ehci_qh *q)
{
	volatile uint32_t *p = e->qh[0].hw;
	for (unsigned n = 0; n < EHCI_QH_SLOTS; n++) {
		uint32_t next = p[QH_HLP] & ~0x1fu;
		if (next == q->bus) {
			p[QH_HLP] = q->hw[QH_HLP];
			break;
		}
		if (next == e->qh[0].bus || next < e->qh_bus ||
		    next >= e->qh_bus + EHCI_QH_SLOTS * QH_STRIDE)
			break;
		p = e->qh[(next - e->qh_bus) / QH_STRIDE].hw;
	}
	(void)dmar_dmamap_sync(e->sched_tag, e->qh_map, DMAR_DMASYNC_PREWRITE);
}

/* ------------------------------------------------------------ transfers ------ */

struct cursor {
	const struct dmar_dma_segment *s;
	unsigned n, i;
	uint64_t off;
};

static uint64_t cur_addr(const struct cursor *c) { return c->s[c->i].addr + c->off; }

static void cur_skip(struct cursor *c, uint64_t k)
{
	while (k && c->i < c->n) {
		uint64_t left = c->s[c->i].len - c->off;
		if (k < left) {
			c->off += k;
			return;
		}
		k -= left;
		c->i++;
		c->off = 0;
	}
}

/* The buffer pointers of one qTD for up to `want` bytes at the cursor: as long as the
 * bytes form one run of pages (the first from any offset, each next one from its start),
 * five pages at most. A qTD that ends before the transfer does must end on a packet
 * boundary (else the device sees a short packet), so it is cut back to a multiple of
 * maxp. Returns the bytes taken (the cursor moves past them); 0 when the segments do not
 * allow a whole packet. */
static uint32_t fill_qtd(struct cursor *c, uint32_t want, uint16_t maxp, uint64_t buf[5])
{
	struct cursor t = *c;
	uint32_t got = 0;
	unsigned np = 0;
	for (unsigned k = 0; k < 5; k++)
		buf[k] = 0;
	buf[np++] = cur_addr(&t);
	while (got < want) {
		uint64_t a = cur_addr(&t);
		uint64_t k = dmar_min_u64(t.s[t.i].len - t.off, EHCI_PAGE - (a & (EHCI_PAGE - 1)));
		k = dmar_min_u64(k, want - got);
		got += (uint32_t)k;
		cur_skip(&t, k);
		if (got == want)
			break;
		uint64_t end = a + k, next = cur_addr(&t);
		if (next == end && (end & (EHCI_PAGE - 1)))
			continue; /* adjacent segments inside a page */
		if (!(end & (EHCI_PAGE - 1)) && !(next & (EHCI_PAGE - 1)) && np < 5) {
			buf[np++] = next;
			continue;
		}
		break;
	}
	if (got < want)
		got -= got % maxp;
	cur_skip(c, got);
	return got;
}

static void qtd_write(struct ehci *e, unsigned slot, uint32_t next, uint32_t alt, uint32_t token,
		      const uint64_t buf[5])
{
	volatile uint32_t *hw = qtd_hw(e, slot);
	hw[QTD_NEXT] = next;
	hw[QTD_ALT] = alt;
	for (unsigned k = 0; k < 5; k++) {
		uint64_t b = buf ? buf[k] : 0;
		hw[QTD_BUF + k] = (uint32_t)(k ? b & ~(uint64_t)(EHCI_PAGE - 1) : b);
		if (e->ac64)
			hw[QTD_BUFHI + k] = (uint32_t)(b >> 32);
	}
	hw[QTD_TOKEN] = token;
}

/* USB packets a qTD of `len` bytes is (a zero-length qTD is one packet). */
static uint32_t packets(uint32_t len, uint16_t maxp)
{
	return len ? (len + maxp - 1u) / maxp : 1u;
}

/* What one transfer's qTDs are: slots first..last, the data stage's in order. */
struct xfer {
	unsigned first, last;      /* slots */
	unsigned data_first, ndata;
	uint32_t len[EHCI_QTD_SLOTS];
	bool dt[EHCI_QTD_SLOTS];   /* the toggle each data qTD starts with */
	bool in;                   /* the data stage's direction */
	bool control;              /* a short data qTD goes on to the status stage */
};

/* Data qTDs for `len` bytes of the segments from slot x->data_first on, their toggles
 * starting at *toggle. Their next pointers chain them and the following slot; `alt` is
 * where a short packet goes. */
static int build_data(struct ehci *e, struct xfer *x, const struct dmar_dma_segment *s,
		      unsigned nseg, uint32_t len, uint16_t maxp, bool toggle, uint32_t alt)
{
	struct cursor c = { s, nseg, 0, 0 };
	uint64_t total = 0;
	for (unsigned i = 0; i < nseg; i++)
		total += s[i].len;
	if (total < len || maxp == 0)
		return DMAR_EINVAL;
	unsigned slot = x->data_first;
	uint32_t left = len;
	do {
		uint64_t buf[5] = { 0 };
		uint32_t n = 0;
		if (slot >= EHCI_QTD_SLOTS - 1)
			return DMAR_ERANGE; /* one slot stays for a status stage */
		if (left) {
			n = fill_qtd(&c, left < QTD_MAX_BYTES ? left : QTD_MAX_BYTES, maxp, buf);
			if (n == 0)
				return DMAR_EINVAL;
			for (unsigned k = 0; k < 5; k++)
				if (!e->ac64 && (buf[k] >> 32))
					return DMAR_EINVAL; /* the tags keep data below 4 GiB */
		}
		uint32_t token = TOKEN_BYTES(n) | TOKEN_CERR(3) | TOKEN_ACTIVE |
				 (x->in ? TOKEN_PID_IN : TOKEN_PID_OUT) | (toggle ? TOKEN_DT : 0);
		qtd_write(e, slot, qtd_bus(e, slot + 1), alt, token, buf);
		x->len[slot] = n;
		x->dt[slot] = toggle;
		if (packets(n, maxp) & 1u)
			toggle = !toggle;
		left -= n;
		slot++;
	} while (left);
	x->ndata = slot - x->data_first;
	return 0;
}

/* Rewrites the idle (or halted) queue head's overlay so the controller fetches the qTD
 * at `first` next (4.10.2): no active or halted token, the alternate next terminated. */
static void qh_start(struct ehci *e, struct ehci_qh *q, unsigned first)
{
	q->hw[QH_ALT] = LINK_T;
	q->hw[QH_NEXT] = qtd_bus(e, first);
	mfence();
	q->hw[QH_TOKEN] = q->hw[QH_TOKEN] & TOKEN_PING;
	(void)dmar_dmamap_sync(e->sched_tag, e->qh_map, DMAR_DMASYNC_PREWRITE);
}

/* Takes an unfinished transfer away from the controller: out of the schedule, the
 * doorbell, the qTDs inactive, an idle overlay, back in. */
static void qh_cancel(struct ehci *e, struct ehci_qh *q, const struct xfer *x)
{
	qh_unlink(e, q);
	(void)doorbell(e);
	for (unsigned s = x->first; s <= x->last; s++)
		qtd_hw(e, s)[QTD_TOKEN] = 0;
	qh_idle(q);
	q->hw[QH_HLP] = e->qh[0].hw[QH_HLP];
	mfence();
	e->qh[0].hw[QH_HLP] = q->bus | LINK_TYPE_QH;
	(void)dmar_dmamap_sync(e->sched_tag, e->qh_map, DMAR_DMASYNC_PREWRITE);
}

/* Starts the transfer and polls its qTDs: done when the last is inactive, when one
 * halted, or (bulk) when a data qTD ended short. *moved gets the data bytes moved and
 * *end_slot the qTD that ended the data stage. */
static int run(struct ehci *e, struct ehci_qh *q, struct xfer *x, uint32_t *moved,
	       unsigned *end_slot)
{
	(void)dmar_dmamap_sync(e->sched_tag, e->qtd_map, DMAR_DMASYNC_PREWRITE | DMAR_DMASYNC_PREREAD);
	mfence(); /* the qTDs are in memory before the overlay points at them */
	qh_start(e, q, x->first);

	uint64_t end = clock_now_ns() + USB_TIMEOUT_NS;
	int rc = 1;
	unsigned data_end = x->data_first + x->ndata;
	*end_slot = x->ndata ? x->data_first : x->first;
	while (rc > 0) {
		(void)dmar_dmamap_sync(e->sched_tag, e->qtd_map, DMAR_DMASYNC_POSTREAD);
		for (unsigned s = x->first; s <= x->last; s++) {
			uint32_t tok = qtd_hw(e, s)[QTD_TOKEN];
			if (tok & TOKEN_ACTIVE)
				break;
			bool data = s >= x->data_first && s < data_end;
			if (data)
				*end_slot = s;
			if (tok & TOKEN_HALTED) {
				e->last_token = tok;
				rc = (tok & (TOKEN_BABBLE | TOKEN_XACTERR | TOKEN_DBERR)) ? USB_EPROTO
											  : USB_ESTALL;
				break;
			}
			if (data && x->in && TOKEN_BYTES_GET(tok) != 0) {
				if (!x->control) {
					e->last_token = tok;
					rc = 0; /* short: the rest stays unreached */
					break;
				}
				s = data_end - 1; /* the controller went on to the status stage */
				continue;
			}
			if (s == x->last) {
				e->last_token = tok;
				rc = 0;
			}
		}
		if (rc <= 0)
			break;
		if (clock_now_ns() > end) {
			e->last_usbsts = op_rd(e, EHCI_USBSTS);
			qh_cancel(e, q, x);
			return USB_ETIMEOUT;
		}
		cpu_relax();
	}
	/* Clear what polling does not need (IOC and short-packet interrupts, errors). */
	e->last_usbsts = op_rd(e, EHCI_USBSTS);
	op_wr(e, EHCI_USBSTS, e->last_usbsts & (USBSTS_USBINT | USBSTS_USBERRINT));
	*moved = 0;
	for (unsigned s = x->data_first; s < data_end; s++) {
		uint32_t tok = qtd_hw(e, s)[QTD_TOKEN];
		if (tok & TOKEN_ACTIVE)
			break;
		*moved += x->len[s] - TOKEN_BYTES_GET(tok);
		if (TOKEN_BYTES_GET(tok) || (tok & TOKEN_HALTED))
			break;
	}
	return rc;
}

static int ehci_control(struct usb_hcd *h, struct usb_device *dev, const struct usb_setup *setup,
			struct dmar_dmamap *data, uint32_t *actual)
{
	struct ehci *e = to_ehci(h);
	struct xfer x = { 0 };
	uint32_t moved = 0;
	unsigned end_slot;
	*actual = 0;
	if (!e->running || (setup->wLength && !data))
		return DMAR_EINVAL;
	struct ehci_qh *q = qh_get(e, dev, &dev->ep0);
	if (!q)
		return DMAR_ENOSPC;
	qh_set_epchar(q, dev->address, 0, dev->ep0.max_packet);

	dmar_memcpy(e->qh_page + SETUP_OFFSET, setup, sizeof(*setup));
	(void)dmar_dmamap_sync(e->sched_tag, e->qh_map, DMAR_DMASYNC_PREWRITE);
	uint64_t sbuf[5] = { e->qh_bus + SETUP_OFFSET, 0, 0, 0, 0 };
	x.first = 1;
	x.data_first = 2;
	x.in = (setup->bmRequestType & 0x80) != 0;
	x.control = true;
	int rc = 0;
	if (setup->wLength) {
		/* A short IN packet goes on to the status stage through the alternate
		 * next pointer; its slot is known once the data stage is built. */
		rc = build_data(e, &x, dmar_dmamap_segs(data), dmar_dmamap_nsegs(data),
				setup->wLength, dev->ep0.max_packet, true, LINK_T);
		if (rc)
			return rc;
	}
	unsigned status = x.data_first + x.ndata;
	for (unsigned s = x.data_first; s < status; s++)
		qtd_hw(e, s)[QTD_ALT] = qtd_bus(e, status);
	qtd_write(e, 1, qtd_bus(e, 2), LINK_T,
		  TOKEN_BYTES(8) | TOKEN_CERR(3) | TOKEN_PID_SETUP | TOKEN_ACTIVE, sbuf);
	/* Status: the other direction (IN when there is no data stage), DATA1. */
	bool status_in = !(setup->wLength && x.in);
	qtd_write(e, status, LINK_T, LINK_T,
		  TOKEN_DT | TOKEN_IOC | TOKEN_CERR(3) | TOKEN_ACTIVE |
			  (status_in ? TOKEN_PID_IN : TOKEN_PID_OUT),
		  0);
	x.last = status;
	rc = run(e, q, &x, &moved, &end_slot);
	*actual = moved;
	return rc;
}

static int ehci_bulk(struct usb_hcd *h, struct usb_device *dev, struct usb_endpoint *ep,
		     struct dmar_dmamap *data, uint32_t len, uint32_t *actual)
{
	struct ehci *e = to_ehci(h);
	struct xfer x = { 0 };
	uint32_t moved = 0;
	unsigned end_slot;
	*actual = 0;
	if (!e->running || (len && !data) || len > h->max_transfer)
		return DMAR_EINVAL;
	struct ehci_qh *q = qh_get(e, dev, ep);
	if (!q)
		return DMAR_ENOSPC;
	qh_set_epchar(q, dev->address, ep->addr, ep->max_packet);
	static const struct dmar_dma_segment none = { 0, 0 };
	x.first = x.data_first = 1;
	x.in = (ep->addr & 0x80) != 0;
	/* A short IN packet stops the queue on the stop qTD (not the next data qTD, which
	 * would take the device's next packet: the CSW). */
	int rc = build_data(e, &x, len ? dmar_dmamap_segs(data) : &none,
			    len ? dmar_dmamap_nsegs(data) : 1, len, ep->max_packet, ep->toggle,
			    x.in ? qtd_bus(e, QTD_STOP) : LINK_T);
	if (rc)
		return rc;
	x.last = x.data_first + x.ndata - 1;
	volatile uint32_t *lastq = qtd_hw(e, x.last);
	lastq[QTD_NEXT] = LINK_T;
	lastq[QTD_TOKEN] |= TOKEN_IOC;
	rc = run(e, q, &x, &moved, &end_slot);
	*actual = moved;
	if (rc == 0) {
		/* The toggle after the last packet: the qTD that ended started with dt[]. */
		uint32_t tok = qtd_hw(e, end_slot)[QTD_TOKEN];
		uint32_t n = x.len[end_slot], done = n - TOKEN_BYTES_GET(tok);
		uint32_t p = done < n ? done / ep->max_packet + 1 : packets(n, ep->max_packet);
		ep->toggle = x.dt[end_slot] ^ (p & 1u);
	}
	return rc;
}

/* ----------------------------------------------------------- the ports ------- */

/* Hands the port to a companion controller (full- and low-speed devices). */
static void port_release(struct ehci *e, unsigned port)
{
	uint32_t v = op_rd(e, EHCI_PORTSC(port));
	op_wr(e, EHCI_PORTSC(port), (v & ~PORTSC_RWC) | PORTSC_PO);
}

/* Port reset (4.2.2, 2.3.9): PR with PE 0 for 50 ms, then PR cleared; a high-speed
 * device leaves the port enabled. */
static int ehci_port_reset(struct usb_hcd *h, unsigned port, enum usb_speed *speed)
{
	struct ehci *e = to_ehci(h);
	if (port < 1 || port > h->nports || !e->running)
		return DMAR_EINVAL;
	uint32_t v = op_rd(e, EHCI_PORTSC(port));
	if (!(v & PORTSC_CCS) || (v & PORTSC_PO))
		return USB_ENODEV;
	if ((v & PORTSC_LS_MASK) == PORTSC_LS_K) {
		port_release(e, port); /* low speed: never EHCI's */
		return USB_ENODEV;
	}
	op_wr(e, EHCI_PORTSC(port), (v & ~(PORTSC_RWC | PORTSC_PE)) | PORTSC_PR);
	clock_delay_ns(PORT_RESET_NS);
	v = op_rd(e, EHCI_PORTSC(port));
	op_wr(e, EHCI_PORTSC(port), v & ~(PORTSC_RWC | PORTSC_PR));
	int rc = op_wait(e, EHCI_PORTSC(port), PORTSC_PR, 0, PORT_RESET_END_NS);
	if (rc)
		return rc;
	v = op_rd(e, EHCI_PORTSC(port));
	/* The change bits the reset left are acknowledged (written back as 1). */
	op_wr(e, EHCI_PORTSC(port), v);
	if (!(v & PORTSC_CCS))
		return USB_ENODEV;
	if (!(v & PORTSC_PE)) {
		port_release(e, port); /* full speed: the companion's */
		return USB_ENODEV;
	}
	*speed = USB_SPEED_HIGH;
	return 0;
}

static int ehci_set_address(struct usb_hcd *h, struct usb_device *dev)
{
	struct ehci *e = to_ehci(h);
	if (e->next_address == 0 || e->next_address > 127)
		e->next_address = 1;
	uint8_t addr = e->next_address++;
	struct usb_setup s = { 0x00, 0x05 /* SET_ADDRESS */, addr, 0, 0 };
	uint32_t got;
	int rc = ehci_control(h, dev, &s, 0, &got);
	if (rc == 0)
		dev->address = addr;
	return rc;
}

static int ehci_configure(struct usb_hcd *h, struct usb_device *dev)
{
	struct ehci *e = to_ehci(h);
	if (!qh_get(e, dev, &dev->bulk_in) || !qh_get(e, dev, &dev->bulk_out))
		return DMAR_ENOSPC;
	return 0;
}

static int ehci_clear_halt(struct usb_hcd *h, struct usb_device *dev, struct usb_endpoint *ep)
{
	(void)h;
	(void)dev;
	struct ehci_qh *q = ep->hc;
	/* A halted queue head is not touched by the controller: safe to make idle. */
	if (q && (q->hw[QH_TOKEN] & TOKEN_HALTED))
		qh_idle(q);
	return 0;
}

static void ehci_release(struct usb_hcd *h, struct usb_device *dev)
{
	struct ehci *e = to_ehci(h);
	struct usb_endpoint *eps[3] = { &dev->ep0, &dev->bulk_in, &dev->bulk_out };
	bool any = false;
	for (unsigned i = 0; i < 3 && e->qh_map; i++) {
		if (eps[i]->hc) {
			qh_unlink(e, eps[i]->hc);
			any = true;
		}
	}
	if (any && e->running)
		(void)doorbell(e);
	for (unsigned i = 0; i < 3; i++) {
		struct ehci_qh *q = eps[i]->hc;
		if (q) {
			q->used = false;
			eps[i]->hc = 0;
		}
	}
}

static const struct usb_hcd_ops ehci_ops = {
	.port_reset = ehci_port_reset,
	.set_address = ehci_set_address,
	.configure = ehci_configure,
	.control = ehci_control,
	.bulk = ehci_bulk,
	.release = ehci_release,
	.clear_halt = ehci_clear_halt,
};

/* ------------------------------------------------------------ attach --------- */

static int page_get(struct ehci *e, uint8_t **va, struct dmar_dmamap **map, uint32_t *bus)
{
	uint64_t addr;
	int rc = dmamem_get(e->sched_tag, EHCI_PAGE, (void **)va, map, &addr);
	if (!rc)
		*bus = (uint32_t)addr; /* the tag keeps it below 4 GiB */
	return rc;
}

static void page_put(struct ehci *e, uint8_t *va, struct dmar_dmamap **map)
{
	dmamem_put(e->sched_tag, va, map);
}

static int make_tags(struct ehci *e)
{
	struct dmar_dma_tag_params p;
	uint64_t lowaddr = e->ac64 ? UINT64_MAX : 0xffffffffull;
	/* Queue heads and qTDs: 32-byte aligned, never across 4 KiB, below 4 GiB (one
	 * CTRLDSSEGMENT for all); a page of them at a time. */
	dmar_dma_tag_params_default(&p);
	p.alignment = 32;
	p.boundary = EHCI_PAGE;
	p.lowaddr = 0xffffffffull;
	p.maxsize = EHCI_PAGE;
	p.maxsegsz = EHCI_PAGE;
	p.nsegments = 1;
	int rc = dmar_dma_tag_create(e->hcd.dev, 0, &p, &e->sched_tag);
	if (rc)
		return rc;
	/* The core's small buffers: one qTD's reach, any byte alignment. */
	dmar_dma_tag_params_default(&p);
	p.lowaddr = lowaddr;
	p.maxsize = EHCI_PAGE;
	p.maxsegsz = EHCI_PAGE;
	p.nsegments = 2;
	rc = dmar_dma_tag_create(e->hcd.dev, 0, &p, &e->hcd.ctl_tag);
	if (rc)
		return rc;
	/* Bulk data: pieces of pages chained through qTD buffer pointers. */
	dmar_dma_tag_params_default(&p);
	p.lowaddr = lowaddr;
	p.maxsize = EHCI_MAX_TRANSFER;
	p.maxsegsz = EHCI_MAX_TRANSFER;
	p.nsegments = EHCI_MAX_TRANSFER / EHCI_PAGE + 1;
	return dmar_dma_tag_create(e->hcd.dev, 0, &p, &e->hcd.data_tag);
}

void ehci_detach(struct ehci *e)
{
	if (e->op) {
		/* Halted and reset: no more DMA; CONFIGFLAG back to 0 with the reset. */
		(void)hc_reset(e);
		e->running = false;
	}
	if (e->pci) {
		uint16_t cmd = pci_read16(e->pci->bus, e->pci->dev, e->pci->fn, 0x04);
		pci_write16(e->pci->bus, e->pci->dev, e->pci->fn, 0x04, (uint16_t)(cmd & ~0x4u));
	}
	if (e->sched_tag) {
		page_put(e, e->qh_page, &e->qh_map);
		page_put(e, e->qtd_page, &e->qtd_map);
		dmar_dma_tag_destroy(e->sched_tag);
		e->sched_tag = 0;
	}
	if (e->hcd.data_tag)
		dmar_dma_tag_destroy(e->hcd.data_tag);
	if (e->hcd.ctl_tag)
		dmar_dma_tag_destroy(e->hcd.ctl_tag);
	e->hcd.data_tag = e->hcd.ctl_tag = 0;
}

/* BAR0 mapped, the capability registers read. */
static int map_regs(struct ehci *e, const struct pci_dev *d)
{
	uint64_t base, size;
	dmar_memset(e, 0, sizeof(*e));
	if (!pci_bar_map(d, 0, &base, &size) || size < 0x100)
		return DMAR_EHW;
	pci_enable(d, false);
	e->pci = d;
	e->cap = (volatile uint8_t *)(uintptr_t)base;
	uint32_t c0 = cap_rd(e, EHCI_CAPLENGTH);
	if (c0 == ~0u || (c0 & 0xffu) < 0x10 || (c0 & 0xffu) >= size)
		return DMAR_EHW;
	e->hciversion = (uint16_t)(c0 >> 16);
	e->op = e->cap + (c0 & 0xffu);
	e->hcsparams = cap_rd(e, EHCI_HCSPARAMS);
	e->hccparams = cap_rd(e, EHCI_HCCPARAMS);
	e->ac64 = (e->hccparams & HCCPARAMS_AC64) != 0;
	e->hcd = (struct usb_hcd){ .name = "ehci", .ops = &ehci_ops,
				   .nports = HCSPARAMS_N_PORTS(e->hcsparams),
				   .max_transfer = EHCI_MAX_TRANSFER };
	return 0;
}

int ehci_quiesce(const struct pci_dev *d)
{
	struct ehci e;
	int rc = map_regs(&e, d);
	if (rc)
		return rc;
	take_ownership(&e);
	return hc_reset(&e);
}

bool ehci_probe(unsigned n, struct ehci *e)
{
	const struct pci_dev *d = ehci_find(n);
	if (!d || map_regs(e, d))
		return false;
	take_ownership(e);
	return hc_reset(e) == 0;
}

int ehci_attach(struct ehci *e, struct dmar_busdma_dev *dev)
{
	if (!e->op || e->sched_tag)
		return DMAR_EINVAL;
	e->hcd.dev = dev;
	int rc = hc_reset(e);
	if (!rc)
		rc = make_tags(e);
	if (!rc)
		rc = page_get(e, &e->qh_page, &e->qh_map, &e->qh_bus);
	if (!rc)
		rc = page_get(e, &e->qtd_page, &e->qtd_map, &e->qtd_bus);
	if (rc) {
		ehci_detach(e);
		return rc;
	}
	for (unsigned i = 0; i < EHCI_QH_SLOTS; i++) {
		e->qh[i].hw = (volatile uint32_t *)(e->qh_page + i * QH_STRIDE);
		e->qh[i].bus = e->qh_bus + i * QH_STRIDE;
	}
	head_init(e);
	qtd_write(e, QTD_STOP, LINK_T, LINK_T, 0, 0);
	(void)dmar_dmamap_sync(e->sched_tag, e->qh_map, DMAR_DMASYNC_PREWRITE);
	(void)dmar_dmamap_sync(e->sched_tag, e->qtd_map, DMAR_DMASYNC_PREWRITE);
	pci_enable(e->pci, true);
	rc = hc_start(e);
	if (rc)
		ehci_detach(e);
	return rc;
}
