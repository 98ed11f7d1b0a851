/* The xHCI host controller: registers, rings, contexts, commands and transfers (names as
 * in the eXtensible Host Controller Interface specification, revision 1.2). */
#include "xhci.h"
#include "dmamem.h"
#include "mmio.h"

#include "clock.h"
#include "pmem.h"
#include "util.h"
#include "x86.h"

#define XHCI_PAGE 4096u

/* Capability registers (5.3). */
#define XHCI_CAPLENGTH 0x00 /* CAPLENGTH 7:0, HCIVERSION 31:16 */
#define XHCI_HCSPARAMS1 0x04
#define XHCI_HCSPARAMS2 0x08
#define XHCI_HCCPARAMS1 0x10
#define XHCI_DBOFF 0x14
#define XHCI_RTSOFF 0x18

#define HCSPARAMS1_MAXSLOTS(v) ((v) & 0xffu)
#define HCSPARAMS1_MAXPORTS(v) ((v) >> 24)
#define HCSPARAMS2_MAX_SCRATCHPAD(v) (((v) >> 21 & 0x1fu) << 5 | ((v) >> 27 & 0x1fu))
#define HCCPARAMS1_AC64 (1u << 0)
#define HCCPARAMS1_PPC (1u << 3)
#define HCCPARAMS1_CSZ (1u << 2)
#define HCCPARAMS1_XECP(v) ((v) >> 16)

/* Extended capabilities (7). */
#define XECP_ID(v) ((v) & 0xffu)
#define XECP_NEXT(v) ((v) >> 8 & 0xffu)
#define XECP_ID_LEGACY 1
#define XECP_ID_PROTOCOL 2
#define USBLEGSUP_BIOS_OWNED (1u << 16)
#define USBLEGSUP_OS_OWNED (1u << 24)

/* Operational registers (5.4). */
#define XHCI_USBCMD 0x00
#define XHCI_USBSTS 0x04
#define XHCI_PAGESIZE 0x08
#define XHCI_DNCTRL 0x14
#define XHCI_CRCR 0x18
#define XHCI_DCBAAP 0x30
#define XHCI_CONFIG 0x38
#define XHCI_PORTSC(n) (0x400u + 0x10u * ((n) - 1u))

#define USBCMD_RS (1u << 0)
#define USBCMD_HCRST (1u << 1)
#define USBSTS_HCH (1u << 0)
#define USBSTS_HSE (1u << 2)
#define USBSTS_EINT (1u << 3)
#define USBSTS_PCD (1u << 4)
#define USBSTS_CNR (1u << 11)
#define USBSTS_HCE (1u << 12)
#define CRCR_RCS (1u << 0)

#define PORTSC_CCS (1u << 0)
#define PORTSC_PED (1u << 1)
#define PORTSC_PR (1u << 4)
#define PORTSC_PP (1u << 9)
#define PORTSC_SPEED(v) ((v) >> 10 & 0xfu)
#define PORTSC_PRC (1u << 21)
#define PORTSC_CHANGE 0x00fe0000u /* CSC PEC WRC OCC PRC PLC CEC: write 1 to clear */
#define PORTSC_PRESERVE 0x0e00c200u /* PP, PIC, WCE WDE WOE: written back as read */

/* Interrupter 0 of the runtime registers (5.5.2). */
#define XHCI_IMAN 0x20
#define XHCI_ERSTSZ 0x28
#define XHCI_ERSTBA 0x30
#define XHCI_ERDP 0x38
#define IMAN_IP (1u << 0)
#define ERDP_EHB (1u << 3)

/* TRBs (6.4). */
#define TRB_C (1u << 0)
#define TRB_TC (1u << 1)  /* Link: Toggle Cycle */
#define TRB_ISP (1u << 2)
#define TRB_CH (1u << 4)
#define TRB_IOC (1u << 5)
#define TRB_IDT (1u << 6)
#define TRB_BSR (1u << 9) /* Address Device: Block Set Address Request */
#define TRB_DIR_IN (1u << 16)
#define TRB_TRT(v) ((uint32_t)(v) << 16)
#define TRB_TYPE(v) ((uint32_t)(v) << 10)
#define TRB_GET_TYPE(c) ((c) >> 10 & 0x3fu)
#define TRB_SLOT(v) ((uint32_t)(v) << 24)
#define TRB_EP(v) ((uint32_t)(v) << 16)
#define TRB_GET_SLOT(c) ((c) >> 24)
#define TRB_GET_EP(c) ((c) >> 16 & 0x1fu)
#define TRB_LEN(v) ((uint32_t)(v) & 0x1ffffu)
#define TRB_TD_SIZE(v) ((uint32_t)(v) << 17)
#define TRB_CC(s) ((s) >> 24)
#define TRB_RESIDUAL(s) ((s) & 0xffffffu)

#define TRB_NORMAL 1
#define TRB_SETUP 2
#define TRB_DATA 3
#define TRB_STATUS 4
#define TRB_LINK 6
#define TRB_ENABLE_SLOT 9
#define TRB_DISABLE_SLOT 10
#define TRB_ADDRESS_DEVICE 11
#define TRB_CONFIGURE_ENDPOINT 12
#define TRB_EVALUATE_CONTEXT 13
#define TRB_RESET_ENDPOINT 14
#define TRB_STOP_ENDPOINT 15
#define TRB_SET_TR_DEQUEUE 16
#define TRB_TRANSFER_EVENT 32
#define TRB_COMMAND_COMPLETION 33

/* Completion codes (6.4.5). */
#define CC_SUCCESS 1
#define CC_STALL_ERROR 6
#define CC_SHORT_PACKET 13
#define CC_CONTEXT_STATE_ERROR 19

/* Endpoint types (6.2.3). */
#define EP_TYPE_BULK_OUT 2
#define EP_TYPE_CONTROL 4
#define EP_TYPE_BULK_IN 6

#define XHCI_HALT_NS 100000000ull     /* HCH after R/S cleared: 16 ms in the spec */
#define XHCI_RESET_NS 1000000000ull   /* HCRST and CNR clear */
#define XHCI_HANDOFF_NS 1000000000ull /* BIOS Owned clears */
#define XHCI_PORT_RESET_NS 500000000ull
#define XHCI_POWER_NS 20000000ull     /* port power good */
#define XHCI_TD_TRBS (XHCI_RING_TRBS - 2u) /* one TD fits in a ring with room to spare */

struct xhci_erst_entry {
	uint64_t base;
	uint32_t size;
	uint32_t rsvd;
};

static uint32_t rd32(volatile uint8_t *base, unsigned off)
{
	return *(volatile uint32_t *)(base + off);
}
static void wr32(volatile uint8_t *base, unsigned off, uint32_t v)
{
	*(volatile uint32_t *)(base + off) = v;
}
/* 64-bit registers as two dword writes, low first (64-bit accesses are optional). */
static void wr64(volatile uint8_t *base, unsigned off, uint64_t v)
{
	wr32(base, off, (uint32_t)v);
	wr32(base, off + 4, (uint32_t)(v >> 32));
}

static struct xhci *to_xhci(struct usb_hcd *h) { return (struct xhci *)h; }

/* ------------------------------------------------------------ DMA memory ---- */

/* One page of DMA memory on ring_tag, loaded: its device address in *addr. */
static int dma_page(struct xhci *x, void **va, struct dmar_dmamap **map, uint64_t *addr)
{
	return dmamem_get(x->ring_tag, XHCI_PAGE, va, map, addr);
}

static void dma_page_free(struct xhci *x, void **va, struct dmar_dmamap **map)
{
	dmamem_put(x->ring_tag, *va, map);
	*va = 0;
}

static void sync_out(struct xhci *x, struct dmar_dmamap *map)
{
	dmar_dmamap_sync(x->ring_tag, map, DMAR_DMASYNC_PREWRITE | DMAR_DMASYNC_PREREAD);
}

static void sync_in(struct xhci *x, struct dmar_dmamap *map)
{
	dmar_dmamap_sync(x->ring_tag, map, DMAR_DMASYNC_POSTREAD | DMAR_DMASYNC_POSTWRITE);
}

/* ----------------------------------------------------------------- rings ---- */

/* An empty producer ring: the controller owns no TRB (cycle 1 expected, memory 0), and
 * the last TRB links back to the first, toggling the cycle (4.9.2). */
static void ring_reset(struct xhci *x, struct xhci_ring *r)
{
	dmar_memset(r->trb, 0, XHCI_PAGE);
	r->index = 0;
	r->cycle = 1;
	struct xhci_trb *l = &r->trb[XHCI_RING_TRBS - 1];
	l->parameter = r->addr;
	l->control = TRB_TYPE(TRB_LINK) | TRB_TC; /* C = 0: not handed over yet */
	sync_out(x, r->map);
}

static int ring_alloc(struct xhci *x, struct xhci_ring *r)
{
	void *va = 0;
	*r = (struct xhci_ring){ 0 };
	int rc = dma_page(x, &va, &r->map, &r->addr);
	if (rc)
		return rc;
	r->trb = va;
	r->loaded = true;
	ring_reset(x, r);
	return 0;
}

static void ring_free(struct xhci *x, struct xhci_ring *r)
{
	void *va = r->trb;
	dma_page_free(x, &va, &r->map);
	*r = (struct xhci_ring){ 0 };
}

/* Where the controller's dequeue pointer must go for the ring's next TD, with DCS. */
static uint64_t ring_dequeue(const struct xhci_ring *r)
{
	return (r->addr + (uint64_t)r->index * sizeof(struct xhci_trb)) | r->cycle;
}

/* Writes one TRB at the enqueue point and returns its device address. The first TRB of
 * a TD is written with the wrong cycle bit and handed over by ring_publish, so the
 * controller never sees half a TD. `chain`: the TD goes on past this TRB (a Link TRB
 * taken here keeps the chain, 4.11.5.1). */
static uint64_t ring_put(struct xhci_ring *r, uint64_t parameter, uint32_t status,
			 uint32_t control, bool first, bool chain, struct xhci_trb **held)
{
	volatile struct xhci_trb *t = &r->trb[r->index];
	uint64_t at = r->addr + (uint64_t)r->index * sizeof(struct xhci_trb);
	t->parameter = parameter;
	t->status = status;
	uint32_t c = control | r->cycle;
	t->control = first ? c ^ TRB_C : c;
	if (first)
		*held = (struct xhci_trb *)t;
	if (++r->index == XHCI_RING_TRBS - 1) {
		volatile struct xhci_trb *l = &r->trb[XHCI_RING_TRBS - 1];
		l->parameter = r->addr;
		l->status = 0;
		l->control = TRB_TYPE(TRB_LINK) | TRB_TC | (chain ? TRB_CH : 0) | r->cycle;
		r->index = 0;
		r->cycle ^= 1;
	}
	return at;
}

/* Hands the TD starting at `held` to the controller. */
static void ring_publish(struct xhci *x, struct xhci_ring *r, struct xhci_trb *held)
{
	__asm__ volatile("" ::: "memory");
	((volatile struct xhci_trb *)held)->control ^= TRB_C;
	sync_out(x, r->map);
	mfence(); /* the TRBs are in memory before the doorbell */
}

static void doorbell(struct xhci *x, unsigned slot, unsigned target)
{
	wr32(x->db, 4u * slot, target);
}

/* ---------------------------------------------------------------- events ---- */

/* The next event, if the controller has written one; moves ERDP past it. */
static bool event_next(struct xhci *x, struct xhci_trb *ev)
{
	struct xhci_ring *r = &x->event;
	sync_in(x, r->map);
	volatile struct xhci_trb *e = &r->trb[r->index];
	uint32_t control = e->control;
	if ((control & TRB_C) != r->cycle)
		return false;
	__asm__ volatile("" ::: "memory"); /* the rest of the TRB after its cycle bit */
	ev->parameter = e->parameter;
	ev->status = e->status;
	ev->control = control;
	if (++r->index == XHCI_EVENT_TRBS) {
		r->index = 0;
		r->cycle ^= 1;
	}
	wr64(x->rt, XHCI_ERDP,
	     (r->addr + (uint64_t)r->index * sizeof(struct xhci_trb)) | ERDP_EHB);
	return true;
}

/* Polls for the event of `type` about one of the n TRBs at[] (and, for a transfer
 * event, of slot/dci); other events (port status changes, completions of TDs given up
 * before) are consumed and dropped. *which gets the index in at[]. */
static int wait_event(struct xhci *x, unsigned type, const uint64_t *at, unsigned n,
		      unsigned slot, unsigned dci, struct xhci_trb *ev, unsigned *which)
{
	uint64_t end = clock_now_ns() + USB_TIMEOUT_NS;
	for (;;) {
		while (event_next(x, ev)) {
			if (TRB_GET_TYPE(ev->control) != type)
				continue;
			if (type == TRB_TRANSFER_EVENT &&
			    (TRB_GET_SLOT(ev->control) != slot || TRB_GET_EP(ev->control) != dci))
				continue;
			for (unsigned i = 0; i < n; i++)
				if (ev->parameter == at[i]) {
					if (which)
						*which = i;
					return 0;
				}
		}
		uint32_t sts = rd32(x->op, XHCI_USBSTS);
		if (sts == ~0u || (sts & (USBSTS_HCE | USBSTS_HSE)))
			return XHCI_EHALTED;
		if (clock_now_ns() > end)
			return USB_ETIMEOUT;
		cpu_relax();
	}
}

/* One command: 0 when it completed with Success (x->last_cc has the code). */
static int command(struct xhci *x, uint32_t control, uint64_t parameter, struct xhci_trb *ev)
{
	struct xhci_trb held_ev, *held = 0;
	if (!ev)
		ev = &held_ev;
	uint64_t at = ring_put(&x->cmd, parameter, 0, control, true, false, &held);
	ring_publish(x, &x->cmd, held);
	doorbell(x, 0, 0);
	int rc = wait_event(x, TRB_COMMAND_COMPLETION, &at, 1, 0, 0, ev, 0);
	if (rc)
		return rc;
	x->last_cc = TRB_CC(ev->status);
	return x->last_cc == CC_SUCCESS ? 0 : USB_EPROTO;
}

/* -------------------------------------------------------------- contexts ---- */

/* Context i of a Device Context (0: slot, DCI i) or of an Input Context (0: Input
 * Control Context, 1: slot, i + 1: DCI i). */
static uint32_t *ctx(struct xhci *x, void *base, unsigned i)
{
	return (uint32_t *)((uint8_t *)base + (size_t)i * x->ctx_size);
}

static uint32_t speed_psiv(enum usb_speed s)
{
	/* Default Protocol Speed IDs (7.2.2.1.1). */
	switch (s) {
	case USB_SPEED_LOW:
		return 2;
	case USB_SPEED_FULL:
		return 1;
	case USB_SPEED_HIGH:
		return 3;
	default:
		return 4;
	}
}

/* A fresh Input Context adding the contexts of `add` (A bits), with its Slot Context. */
static void input_begin(struct xhci *x, struct xhci_slot *s, struct usb_device *dev,
			uint32_t add, unsigned entries)
{
	dmar_memset(s->in_ctx, 0, XHCI_PAGE);
	ctx(x, s->in_ctx, 0)[1] = add;
	uint32_t *sc = ctx(x, s->in_ctx, 1);
	sc[0] = speed_psiv(dev->speed) << 20 | (uint32_t)entries << 27;
	sc[1] = (uint32_t)dev->port << 16; /* Root Hub Port Number */
}

static void input_ep(struct xhci *x, struct xhci_slot *s, const struct xhci_ep *e, uint32_t type,
		     uint32_t mps, uint32_t avg_trb)
{
	uint32_t *c = ctx(x, s->in_ctx, e->dci + 1);
	uint64_t deq = ring_dequeue(&e->ring);
	c[1] = 3u << 1 | type << 3 | mps << 16; /* CErr 3: retry transaction errors */
	c[2] = (uint32_t)deq;
	c[3] = (uint32_t)(deq >> 32);
	c[4] = avg_trb;
}

static uint16_t ep0_mps(const struct usb_device *dev)
{
	if (dev->ep0.max_packet)
		return dev->ep0.max_packet;
	return dev->speed == USB_SPEED_SUPER ? 512 : dev->speed == USB_SPEED_HIGH ? 64 : 8;
}

/* Address Device with the slot's EP0 context (BSR: the device stays at address 0). */
static int address_device(struct xhci *x, struct xhci_slot *s, struct usb_device *dev, bool bsr)
{
	uint16_t mps = ep0_mps(dev);
	input_begin(x, s, dev, 0x3, 1);
	input_ep(x, s, &s->ep0, EP_TYPE_CONTROL, mps, 8);
	sync_out(x, s->in_map);
	sync_out(x, s->out_map);
	int rc = command(x, TRB_TYPE(TRB_ADDRESS_DEVICE) | (bsr ? TRB_BSR : 0) | TRB_SLOT(s->id),
			 s->in_addr, 0);
	if (rc == 0) {
		s->ep0_mps = mps;
		s->addressed = !bsr;
	}
	return rc;
}

static void slot_free(struct xhci *x, struct xhci_slot *s)
{
	ring_free(x, &s->ep0.ring);
	ring_free(x, &s->bulk_in.ring);
	ring_free(x, &s->bulk_out.ring);
	dma_page_free(x, &s->in_ctx, &s->in_map);
	dma_page_free(x, &s->out_ctx, &s->out_map);
	*s = (struct xhci_slot){ 0 };
}

/* Enable Slot, with the memory of a device: contexts and the EP0 ring. */
static int slot_create(struct xhci *x, struct usb_device *dev)
{
	struct xhci_slot *s = 0;
	for (unsigned i = 0; i < XHCI_MAX_DEVICES && !s; i++)
		if (!x->slots[i].used)
			s = &x->slots[i];
	if (!s)
		return DMAR_ENOSPC;
	*s = (struct xhci_slot){ .used = true };
	s->ep0.dci = 1;
	int rc = dma_page(x, &s->out_ctx, &s->out_map, &s->out_addr);
	if (!rc)
		rc = dma_page(x, &s->in_ctx, &s->in_map, &s->in_addr);
	if (!rc)
		rc = ring_alloc(x, &s->ep0.ring);
	struct xhci_trb ev;
	if (!rc)
		rc = command(x, TRB_TYPE(TRB_ENABLE_SLOT), 0, &ev);
	if (!rc) {
		s->id = TRB_GET_SLOT(ev.control);
		if (s->id == 0 || s->id > x->max_slots)
			rc = USB_EPROTO;
	}
	if (rc) {
		slot_free(x, s);
		return rc;
	}
	x->dcbaa[s->id] = s->out_addr;
	sync_out(x, x->dcbaa_map);
	dev->hc = s;
	dev->ep0.hc = &s->ep0;
	return 0;
}

/* ------------------------------------------------------------- recovery ---- */

/* A halted endpoint (an error completion): Reset Endpoint, then Set TR Dequeue Pointer
 * past the failed TD, to where the next TD goes (4.6.8, 4.6.10). */
static int recover_halted(struct xhci *x, struct xhci_slot *s, struct xhci_ep *e)
{
	uint32_t who = TRB_SLOT(s->id) | TRB_EP(e->dci);
	int rc = command(x, TRB_TYPE(TRB_RESET_ENDPOINT) | who, 0, 0);
	if (rc == USB_EPROTO && x->last_cc == CC_CONTEXT_STATE_ERROR)
		rc = command(x, TRB_TYPE(TRB_STOP_ENDPOINT) | who, 0, 0); /* it was not halted */
	if (rc == 0)
		rc = command(x, TRB_TYPE(TRB_SET_TR_DEQUEUE) | who, ring_dequeue(&e->ring), 0);
	if (rc == 0)
		e->halted = false;
	return rc;
}

/* A TD that never completed: what the controller fetched is unknown, so the endpoint is
 * stopped (or reset, if it halted) and pointed at a fresh ring; the old one is freed
 * only when the controller has let go of it. */
static int recover_ring(struct xhci *x, struct xhci_slot *s, struct xhci_ep *e)
{
	uint32_t who = TRB_SLOT(s->id) | TRB_EP(e->dci);
	x->ring_recoveries++;
	int rc = command(x, TRB_TYPE(TRB_STOP_ENDPOINT) | who, 0, 0);
	if (rc == USB_EPROTO && x->last_cc == CC_CONTEXT_STATE_ERROR)
		rc = command(x, TRB_TYPE(TRB_RESET_ENDPOINT) | who, 0, 0);
	if (rc)
		return rc;
	struct xhci_ring fresh;
	rc = ring_alloc(x, &fresh);
	if (rc)
		return rc;
	rc = command(x, TRB_TYPE(TRB_SET_TR_DEQUEUE) | who, ring_dequeue(&fresh), 0);
	if (rc) {
		ring_free(x, &fresh);
		return rc;
	}
	ring_free(x, &e->ring);
	e->ring = fresh;
	e->halted = false;
	return 0;
}

/* ------------------------------------------------------------- transfers ---- */

/* TD Size of a TRB with `left` bytes of the TD after it (4.11.2.4; 0.96: KiB left). */
static uint32_t td_size(struct xhci *x, uint32_t left, uint32_t mps)
{
	uint32_t n = x->hciversion < 0x100 ? left >> 10 : (left + mps - 1) / (mps ? mps : 1);
	return TRB_TD_SIZE(n > 31 ? 31 : n);
}

/* Waits for the TD whose TRBs are at[0..n) (lens[]: their data bytes) to complete.
 * Success ends at the last TRB's event; a Short Packet ends a bulk TD at once, and a
 * control TD at its Status stage. Errors halt the endpoint (reset here); no completion
 * at all puts the endpoint on a fresh ring. */
static int finish_td(struct xhci *x, struct xhci_slot *s, struct xhci_ep *e, const uint64_t *at,
		     const uint32_t *lens, unsigned n, bool control, uint32_t *actual)
{
	uint32_t total = 0, got;
	for (unsigned i = 0; i < n; i++)
		total += lens[i];
	got = total;
	int rc;
	for (;;) {
		struct xhci_trb ev;
		unsigned k = 0;
		rc = wait_event(x, TRB_TRANSFER_EVENT, at, n, s->id, e->dci, &ev, &k);
		if (rc)
			break;
		uint32_t cc = TRB_CC(ev.status);
		x->last_cc = cc;
		if (cc == CC_SHORT_PACKET) {
			uint32_t residual = TRB_RESIDUAL(ev.status);
			got = 0;
			for (unsigned i = 0; i < k; i++)
				got += lens[i];
			got += residual < lens[k] ? lens[k] - residual : 0;
			if (!control)
				break;
			continue; /* the Status stage follows */
		}
		if (cc == CC_SUCCESS) {
			if (k == n - 1)
				break;
			continue;
		}
		/* Stall, babble, transaction error, ...: the endpoint halted. */
		e->halted = true;
		rc = cc == CC_STALL_ERROR ? USB_ESTALL : USB_EPROTO;
		(void)recover_halted(x, s, e);
		break;
	}
	if (rc == USB_ETIMEOUT || rc == XHCI_EHALTED) {
		x->timeouts++;
		(void)recover_ring(x, s, e);
	}
	*actual = rc == 0 ? got : 0;
	return rc;
}

/* Normal/Data TRBs for the first *need bytes of the segments (one per piece that does
 * not cross a 64 KiB boundary); *need is left with what the segments lacked. */
static unsigned count_trbs(const struct dmar_dma_segment *seg, unsigned nseg, uint32_t *need)
{
	unsigned ntrb = 0;
	for (unsigned i = 0; i < nseg && *need; i++) {
		uint64_t a = seg[i].addr, l = seg[i].len < *need ? seg[i].len : *need;
		*need -= (uint32_t)l;
		while (l) {
			uint64_t piece = XHCI_TRB_MAX - (a & (XHCI_TRB_MAX - 1));
			piece = piece < l ? piece : l;
			a += piece;
			l -= piece;
			ntrb++;
		}
	}
	return ntrb;
}

static int xhci_control(struct usb_hcd *h, struct usb_device *dev, const struct usb_setup *setup,
			struct dmar_dmamap *data, uint32_t *actual)
{
	struct xhci *x = to_xhci(h);
	*actual = 0;
	uint32_t len = setup->wLength;
	bool in = (setup->bmRequestType & 0x80) != 0;
	const struct dmar_dma_segment *seg = data ? dmar_dmamap_segs(data) : 0;
	unsigned nseg = data ? dmar_dmamap_nsegs(data) : 0;
	if (!x->live || (len && !data))
		return DMAR_EINVAL;
	/* The data stage: one TRB per segment (split where a buffer crosses 64 KiB). */
	uint32_t need = len;
	unsigned ntrb = count_trbs(seg, nseg, &need);
	if (need || ntrb + 2 > XHCI_TD_TRBS)
		return DMAR_EINVAL;

	/* Before an address: talk to address 0 through a slot in the Default state. */
	int rc;
	if (!dev->hc) {
		rc = slot_create(x, dev);
		if (rc)
			return rc;
		rc = address_device(x, dev->hc, dev, true);
		if (rc)
			return rc;
	}
	struct xhci_slot *s = dev->hc;
	struct xhci_ep *e = &s->ep0;
	struct xhci_ring *r = &e->ring;
	uint64_t at[XHCI_TD_TRBS];
	uint32_t lens[XHCI_TD_TRBS];
	struct xhci_trb *held = 0;
	unsigned n = 0;
	uint64_t packet;
	__builtin_memcpy(&packet, setup, sizeof(packet));
	uint32_t trt = len ? (in ? 3 : 2) : 0; /* Transfer Type: IN / OUT data stage, none */
	lens[n] = 0;
	at[n++] = ring_put(r, packet, 8, TRB_TYPE(TRB_SETUP) | TRB_IDT | TRB_TRT(trt), true,
			   false, &held);
	uint32_t left = len;
	for (unsigned i = 0; i < nseg && left; i++) {
		uint64_t a = seg[i].addr, l = seg[i].len < left ? seg[i].len : left;
		while (l) {
			uint64_t piece = XHCI_TRB_MAX - (a & (XHCI_TRB_MAX - 1));
			piece = piece < l ? piece : l;
			left -= (uint32_t)piece;
			uint32_t type = n == 1 ? TRB_TYPE(TRB_DATA) | (in ? TRB_DIR_IN : 0)
					       : TRB_TYPE(TRB_NORMAL);
			uint32_t control = type | (in ? TRB_ISP : 0) | (left ? TRB_CH : 0);
			lens[n] = (uint32_t)piece;
			at[n++] = ring_put(r, a, TRB_LEN(piece) | td_size(x, left, s->ep0_mps), control,
					   false, left != 0, &held);
			a += piece;
			l -= piece;
		}
	}
	/* The Status stage goes the other way (IN when there is no data stage). */
	uint32_t dir = (len && in) ? 0 : TRB_DIR_IN;
	lens[n] = 0;
	at[n++] = ring_put(r, 0, 0, TRB_TYPE(TRB_STATUS) | dir | TRB_IOC, false, false, &held);
	ring_publish(x, r, held);
	doorbell(x, s->id, e->dci);
	return finish_td(x, s, e, at, lens, n, true, actual);
}

static int xhci_bulk(struct usb_hcd *h, struct usb_device *dev, struct usb_endpoint *ep,
		     struct dmar_dmamap *data, uint32_t len, uint32_t *actual)
{
	struct xhci *x = to_xhci(h);
	struct xhci_slot *s = dev->hc;
	struct xhci_ep *e = ep->hc;
	*actual = 0;
	if (!x->live || !s || !e || (len && !data))
		return DMAR_EINVAL;
	bool in = (ep->addr & 0x80) != 0;
	const struct dmar_dma_segment *seg = len ? dmar_dmamap_segs(data) : 0;
	unsigned nseg = len ? dmar_dmamap_nsegs(data) : 0;
	uint32_t need = len;
	unsigned ntrb = count_trbs(seg, nseg, &need);
	if (need || ntrb > XHCI_TD_TRBS)
		return DMAR_EINVAL;

	struct xhci_ring *r = &e->ring;
	uint64_t at[XHCI_TD_TRBS];
	uint32_t lens[XHCI_TD_TRBS];
	struct xhci_trb *held = 0;
	unsigned n = 0;
	uint32_t mps = ep->max_packet ? ep->max_packet : 512;
	if (len == 0) {
		/* A zero-length packet: one Normal TRB without a buffer. */
		lens[n] = 0;
		at[n++] = ring_put(r, 0, 0, TRB_TYPE(TRB_NORMAL) | TRB_IOC, true, false, &held);
	}
	uint32_t left = len;
	for (unsigned i = 0; i < nseg && left; i++) {
		uint64_t a = seg[i].addr, l = seg[i].len < left ? seg[i].len : left;
		while (l) {
			uint64_t piece = XHCI_TRB_MAX - (a & (XHCI_TRB_MAX - 1));
			piece = piece < l ? piece : l;
			left -= (uint32_t)piece;
			uint32_t control = TRB_TYPE(TRB_NORMAL) | (in ? TRB_ISP : 0) |
					   (left ? TRB_CH : TRB_IOC);
			lens[n] = (uint32_t)piece;
			at[n] = ring_put(r, a, TRB_LEN(piece) | td_size(x, left, mps), control, n == 0,
					 left != 0, &held);
			n++;
			a += piece;
			l -= piece;
		}
	}
	ring_publish(x, r, held);
	doorbell(x, s->id, e->dci);
	return finish_td(x, s, e, at, lens, n, false, actual);
}

/* ------------------------------------------------------- the core's hooks ---- */

static int xhci_port_reset(struct usb_hcd *h, unsigned port, enum usb_speed *speed)
{
	struct xhci *x = to_xhci(h);
	if (port == 0 || port > x->max_ports)
		return DMAR_EINVAL;
	unsigned reg = XHCI_PORTSC(port);
	uint32_t sc = rd32(x->op, reg);
	if (!(sc & PORTSC_PP)) {
		wr32(x->op, reg, (sc & PORTSC_PRESERVE) | PORTSC_PP);
		clock_delay_ns(XHCI_POWER_NS);
		sc = rd32(x->op, reg);
	}
	if (!(sc & PORTSC_CCS))
		return USB_ENODEV;
	/* PR is a USB 2 bus reset, or a Hot Reset on a USB 3 port (4.19.5). */
	wr32(x->op, reg, (sc & PORTSC_PRESERVE) | PORTSC_PR);
	uint64_t end = clock_now_ns() + XHCI_PORT_RESET_NS;
	for (;;) {
		sc = rd32(x->op, reg);
		if ((sc & PORTSC_PRC) && !(sc & PORTSC_PR))
			break;
		if (clock_now_ns() > end)
			return DMAR_ETIMEDOUT;
		cpu_relax();
	}
	wr32(x->op, reg, (sc & PORTSC_PRESERVE) | (sc & PORTSC_CHANGE));
	sc = rd32(x->op, reg);
	if (!(sc & PORTSC_CCS))
		return USB_ENODEV;
	if (!(sc & PORTSC_PED))
		return USB_EPROTO;
	switch (PORTSC_SPEED(sc)) {
	case 1:
		*speed = USB_SPEED_FULL;
		break;
	case 2:
		*speed = USB_SPEED_LOW;
		break;
	case 3:
		*speed = USB_SPEED_HIGH;
		break;
	default:
		*speed = USB_SPEED_SUPER;
		break;
	}
	return 0;
}

static int xhci_set_address(struct usb_hcd *h, struct usb_device *dev)
{
	struct xhci *x = to_xhci(h);
	if (!x->live)
		return DMAR_EINVAL;
	int rc;
	if (!dev->hc) {
		rc = slot_create(x, dev);
		if (rc)
			return rc;
	}
	struct xhci_slot *s = dev->hc;
	if (!s->addressed) {
		if (s->ep0_mps && s->ep0_mps != ep0_mps(dev)) {
			/* bMaxPacketSize0 turned out other than assumed at address 0 (4.6.7). */
			input_begin(x, s, dev, 0x2, 1);
			input_ep(x, s, &s->ep0, EP_TYPE_CONTROL, ep0_mps(dev), 8);
			sync_out(x, s->in_map);
			rc = command(x, TRB_TYPE(TRB_EVALUATE_CONTEXT) | TRB_SLOT(s->id), s->in_addr, 0);
			if (rc)
				return rc;
		}
		rc = address_device(x, s, dev, false);
		if (rc)
			return rc;
	}
	sync_in(x, s->out_map);
	dev->address = (uint8_t)ctx(x, s->out_ctx, 0)[3]; /* USB Device Address */
	return 0;
}

static int xhci_configure(struct usb_hcd *h, struct usb_device *dev)
{
	struct xhci *x = to_xhci(h);
	struct xhci_slot *s = dev->hc;
	if (!x->live || !s || !s->addressed)
		return DMAR_EINVAL;
	struct xhci_ep *ein = &s->bulk_in, *eout = &s->bulk_out;
	ein->dci = 2u * (dev->bulk_in.addr & 0xfu) + 1u;
	eout->dci = 2u * (dev->bulk_out.addr & 0xfu);
	if (eout->dci < 2 || ein->dci < 3)
		return DMAR_EINVAL;
	int rc = 0;
	if (!ein->ring.map)
		rc = ring_alloc(x, &ein->ring);
	else
		ring_reset(x, &ein->ring);
	if (!rc && !eout->ring.map)
		rc = ring_alloc(x, &eout->ring);
	else if (!rc)
		ring_reset(x, &eout->ring);
	if (rc)
		return rc;
	unsigned entries = ein->dci > eout->dci ? ein->dci : eout->dci;
	input_begin(x, s, dev, 1u | 1u << ein->dci | 1u << eout->dci, entries);
	/* Average TRB Length: a few KiB for bulk (4.14.1.1). */
	input_ep(x, s, ein, EP_TYPE_BULK_IN, dev->bulk_in.max_packet, 3072);
	input_ep(x, s, eout, EP_TYPE_BULK_OUT, dev->bulk_out.max_packet, 3072);
	sync_out(x, s->in_map);
	rc = command(x, TRB_TYPE(TRB_CONFIGURE_ENDPOINT) | TRB_SLOT(s->id), s->in_addr, 0);
	if (rc)
		return rc;
	ein->halted = eout->halted = false;
	dev->bulk_in.hc = ein;
	dev->bulk_out.hc = eout;
	return 0;
}

static int xhci_clear_halt(struct usb_hcd *h, struct usb_device *dev, struct usb_endpoint *ep)
{
	struct xhci *x = to_xhci(h);
	struct xhci_ep *e = ep->hc;
	if (!x->live || !dev->hc || !e)
		return DMAR_EINVAL;
	/* Halts are reset when they are reported; one left over is reset now. */
	return e->halted ? recover_halted(x, dev->hc, e) : 0;
}

static void xhci_release(struct usb_hcd *h, struct usb_device *dev)
{
	struct xhci *x = to_xhci(h);
	struct xhci_slot *s = dev->hc;
	if (!s)
		return;
	if (s->id && x->live) {
		(void)command(x, TRB_TYPE(TRB_DISABLE_SLOT) | TRB_SLOT(s->id), 0, 0);
		x->dcbaa[s->id] = 0;
		sync_out(x, x->dcbaa_map);
	}
	slot_free(x, s);
	dev->hc = 0;
	dev->ep0.hc = dev->bulk_in.hc = dev->bulk_out.hc = 0;
}

static const struct usb_hcd_ops xhci_ops = {
	.port_reset = xhci_port_reset,
	.set_address = xhci_set_address,
	.configure = xhci_configure,
	.control = xhci_control,
	.bulk = xhci_bulk,
	.release = xhci_release,
	.clear_halt = xhci_clear_halt,
};

/* ------------------------------------------------------ the controller ---- */

/* Walks the extended capabilities: takes the controller from firmware (USB Legacy
 * Support, 7.1.1) and learns which ports are USB 2 and USB 3 (Supported Protocol, 7.2). */
static void walk_xecp(struct xhci *x, bool handoff)
{
	unsigned off = HCCPARAMS1_XECP(x->hccparams1) * 4u;
	for (unsigned guard = 0; off && guard < 64; guard++) {
		uint32_t v = rd32(x->cap, off);
		if (v == ~0u)
			return;
		if (XECP_ID(v) == XECP_ID_LEGACY && handoff && (v & USBLEGSUP_BIOS_OWNED)) {
			wr32(x->cap, off, v | USBLEGSUP_OS_OWNED);
			(void)mmio_wait32(x->cap, off, USBLEGSUP_BIOS_OWNED, 0, XHCI_HANDOFF_NS);
			/* No SMIs for the controller's events: clear enables and status. */
			wr32(x->cap, off + 4, 0xe0000000u);
		} else if (XECP_ID(v) == XECP_ID_PROTOCOL && !handoff) {
			uint32_t ports = rd32(x->cap, off + 8);
			unsigned first = ports & 0xffu, count = ports >> 8 & 0xffu;
			for (unsigned p = first; p < first + count && p <= XHCI_MAX_PORTS; p++)
				if (p)
					x->port_major[p] = (uint8_t)(v >> 24);
		}
		off = XECP_NEXT(v) ? off + XECP_NEXT(v) * 4u : 0;
	}
}

bool xhci_probe(unsigned n, struct xhci *x)
{
	for (unsigned i = 0; i < pci_count(); i++) {
		const struct pci_dev *d = pci_device_at(i);
		uint64_t base, size;
		if ((d->class_rev >> 8) != 0x0c0330 || n-- != 0)
			continue;
		__builtin_memset(x, 0, sizeof(*x));
		if (!pci_bar_map(d, 0, &base, &size) || size < 0x1000)
			return false;
		pci_enable(d, false);
		x->pci = d;
		x->sid = pci_sid(d);
		x->cap = (volatile uint8_t *)(uintptr_t)base;
		uint32_t v = rd32(x->cap, XHCI_CAPLENGTH);
		if (v == ~0u)
			return false;
		x->hciversion = (uint16_t)(v >> 16);
		x->op = x->cap + (v & 0xffu);
		x->rt = x->cap + (rd32(x->cap, XHCI_RTSOFF) & ~0x1fu);
		x->db = x->cap + (rd32(x->cap, XHCI_DBOFF) & ~0x3u);
		x->hcsparams1 = rd32(x->cap, XHCI_HCSPARAMS1);
		x->hcsparams2 = rd32(x->cap, XHCI_HCSPARAMS2);
		x->hccparams1 = rd32(x->cap, XHCI_HCCPARAMS1);
		x->max_slots = HCSPARAMS1_MAXSLOTS(x->hcsparams1);
		x->max_ports = HCSPARAMS1_MAXPORTS(x->hcsparams1);
		x->ctx_size = (x->hccparams1 & HCCPARAMS1_CSZ) ? 64 : 32;
		x->nscratch = HCSPARAMS2_MAX_SCRATCHPAD(x->hcsparams2);
		walk_xecp(x, false);
		return x->max_slots > 0 && x->max_ports > 0;
	}
	return false;
}

static int halt(struct xhci *x)
{
	uint32_t cmd = rd32(x->op, XHCI_USBCMD);
	if (cmd & USBCMD_RS)
		wr32(x->op, XHCI_USBCMD, cmd & ~USBCMD_RS);
	return mmio_wait32(x->op, XHCI_USBSTS, USBSTS_HCH, USBSTS_HCH, XHCI_HALT_NS);
}

static int reset(struct xhci *x)
{
	int rc = halt(x);
	if (rc)
		return rc;
	wr32(x->op, XHCI_USBCMD, USBCMD_HCRST);
	rc = mmio_wait32(x->op, XHCI_USBCMD, USBCMD_HCRST, 0, XHCI_RESET_NS);
	if (!rc)
		rc = mmio_wait32(x->op, XHCI_USBSTS, USBSTS_CNR, 0, XHCI_RESET_NS);
	return rc;
}

/* Scratchpad buffers (4.20): PAGESIZE-sized, PAGESIZE-aligned buffers and the array
 * naming them. Both may exceed a page: busdma's dmamem gives them contiguous (through
 * the OS layer's contig_alloc), each loaded as a map of its own. */
static int scratchpad_setup(struct xhci *x, uint64_t limit)
{
	if (x->nscratch == 0)
		return 0;
	uint64_t ps = x->page_size;
	x->sp_array_pages = ((uint64_t)x->nscratch * 8 + XHCI_PAGE - 1) / XHCI_PAGE;
	x->sp_buf_pages = (uint64_t)x->nscratch * (ps / XHCI_PAGE);
	struct dmar_dma_tag_params p;
	dmar_dma_tag_params_default(&p);
	p.alignment = 64;
	p.lowaddr = limit - 1;
	p.maxsize = p.maxsegsz = x->sp_array_pages * XHCI_PAGE;
	p.nsegments = 1;
	int rc = dmar_dma_tag_create(x->dev, 0, &p, &x->sp_array_tag);
	if (rc)
		return rc;
	p.alignment = ps;
	p.boundary = ps;
	p.maxsegsz = ps;
	p.maxsize = (uint64_t)x->nscratch * ps;
	p.nsegments = x->nscratch;
	rc = dmar_dma_tag_create(x->dev, 0, &p, &x->sp_buf_tag);
	void *array_va = 0, *buf_va = 0;
	if (!rc)
		rc = dmar_dmamem_alloc(x->sp_array_tag, &array_va, 0, &x->sp_array_map);
	if (!rc)
		x->sp_array_va = array_va;
	if (!rc)
		rc = dmar_dmamem_alloc(x->sp_buf_tag, &buf_va, 0, &x->sp_buf_map);
	if (!rc)
		x->sp_buf_va = buf_va;
	if (!rc)
		rc = dmar_dmamap_load(x->sp_array_tag, x->sp_array_map, array_va,
				      x->sp_array_pages * XHCI_PAGE, 0);
	if (!rc)
		rc = dmar_dmamap_load(x->sp_buf_tag, x->sp_buf_map, buf_va,
				      (uint64_t)x->nscratch * ps, 0);
	if (rc)
		return rc;
	const struct dmar_dma_segment *seg = dmar_dmamap_segs(x->sp_buf_map);
	if (dmar_dmamap_nsegs(x->sp_buf_map) != x->nscratch)
		return DMAR_EINVAL;
	uint64_t *array = array_va;
	for (unsigned i = 0; i < x->nscratch; i++)
		array[i] = seg[i].addr;
	dmar_dmamap_sync(x->sp_array_tag, x->sp_array_map, DMAR_DMASYNC_PREWRITE);
	dmar_dmamap_sync(x->sp_buf_tag, x->sp_buf_map,
			 DMAR_DMASYNC_PREWRITE | DMAR_DMASYNC_PREREAD);
	x->dcbaa[0] = dmar_dmamap_segs(x->sp_array_map)[0].addr;
	return 0;
}

static void scratchpad_free(struct xhci *x)
{
	if (x->sp_array_map) {
		(void)dmar_dmamap_unload(x->sp_array_tag, x->sp_array_map);
		if (x->sp_array_va)
			(void)dmar_dmamem_free(x->sp_array_tag, x->sp_array_va, x->sp_array_map);
		else
			(void)dmar_dmamap_destroy(x->sp_array_tag, x->sp_array_map);
	}
	if (x->sp_buf_map) {
		(void)dmar_dmamap_unload(x->sp_buf_tag, x->sp_buf_map);
		if (x->sp_buf_va)
			(void)dmar_dmamem_free(x->sp_buf_tag, x->sp_buf_va, x->sp_buf_map);
		else
			(void)dmar_dmamap_destroy(x->sp_buf_tag, x->sp_buf_map);
	}
	if (x->sp_array_tag)
		(void)dmar_dma_tag_destroy(x->sp_array_tag);
	if (x->sp_buf_tag)
		(void)dmar_dma_tag_destroy(x->sp_buf_tag);
	x->sp_array_map = x->sp_buf_map = 0;
	x->sp_array_tag = x->sp_buf_tag = 0;
	x->sp_array_va = x->sp_buf_va = 0;
}

void xhci_detach(struct xhci *x)
{
	if (x->op)
		(void)reset(x); /* halted and reset: no more DMA, DCBAAP and rings forgotten */
	x->live = false;
	if (x->pci) {
		uint16_t cmd = pci_read16(x->pci->bus, x->pci->dev, x->pci->fn, 0x04);
		pci_write16(x->pci->bus, x->pci->dev, x->pci->fn, 0x04, (uint16_t)(cmd & ~0x4u));
	}
	if (x->ring_tag) {
		for (unsigned i = 0; i < XHCI_MAX_DEVICES; i++)
			if (x->slots[i].used)
				slot_free(x, &x->slots[i]);
		ring_free(x, &x->cmd);
		ring_free(x, &x->event);
		dma_page_free(x, &x->erst, &x->erst_map);
		void *va = x->dcbaa;
		dma_page_free(x, &va, &x->dcbaa_map);
		x->dcbaa = 0;
	}
	scratchpad_free(x);
	struct dmar_dma_tag **tags[] = { &x->data_tag, &x->ctl_tag, &x->ring_tag };
	for (unsigned i = 0; i < DMAR_ARRAY_SIZE(tags); i++)
		if (*tags[i]) {
			(void)dmar_dma_tag_destroy(*tags[i]);
			*tags[i] = 0;
		}
	x->hcd.ctl_tag = x->hcd.data_tag = 0;
}

static int make_tags(struct xhci *x, uint64_t lowaddr)
{
	struct dmar_dma_tag_params p;
	dmar_dma_tag_params_default(&p);
	/* Rings, contexts, DCBAA, ERST: 64-byte aligned, never across 64 KiB (6.1). */
	p.alignment = 64;
	p.boundary = XHCI_TRB_MAX;
	p.lowaddr = lowaddr;
	p.maxsize = p.maxsegsz = XHCI_PAGE;
	p.nsegments = 1;
	int rc = dmar_dma_tag_create(x->dev, 0, &p, &x->ring_tag);
	if (rc)
		return rc;
	/* The core's setup data, descriptors, CBW and CSW. */
	p.alignment = 1;
	p.nsegments = 2;
	rc = dmar_dma_tag_create(x->dev, 0, &p, &x->ctl_tag);
	if (rc)
		return rc;
	/* Bulk data: a Normal TRB moves at most 64 KiB and its buffer never crosses a
	 * 64 KiB boundary (6.4.1.1). */
	p.boundary = XHCI_TRB_MAX;
	p.maxsegsz = XHCI_TRB_MAX;
	p.maxsize = XHCI_MAX_TRANSFER;
	p.nsegments = XHCI_MAX_SEGS;
	return dmar_dma_tag_create(x->dev, 0, &p, &x->data_tag);
}

int xhci_init(struct xhci *x, struct dmar_busdma_dev *dev)
{
	x->dev = dev;
	bool ac64 = (x->hccparams1 & HCCPARAMS1_AC64) != 0;
	uint64_t lowaddr = ac64 ? UINT64_MAX : 0xffffffffull;
	int rc = make_tags(x, lowaddr);
	void *va = 0;
	if (!rc)
		rc = dma_page(x, &va, &x->dcbaa_map, &x->dcbaa_addr);
	x->dcbaa = va;
	if (!rc)
		rc = dma_page(x, &x->erst, &x->erst_map, &x->erst_addr);
	if (!rc)
		rc = ring_alloc(x, &x->cmd);
	if (!rc)
		rc = ring_alloc(x, &x->event);
	if (rc)
		goto fail;

	walk_xecp(x, true);
	pci_enable(x->pci, true);
	rc = reset(x);
	if (rc)
		goto fail;
	uint32_t ps = rd32(x->op, XHCI_PAGESIZE) & 0xffffu;
	x->page_size = ps ? (uint64_t)XHCI_PAGE << __builtin_ctz(ps) : XHCI_PAGE;
	rc = scratchpad_setup(x, ac64 ? PMEM_NO_LIMIT : 0x100000000ull);
	if (rc)
		goto fail;

	/* The event ring: one segment, consumer cycle state 1 (4.9.4). */
	dmar_memset(x->event.trb, 0, XHCI_PAGE);
	x->event.index = 0;
	x->event.cycle = 1;
	sync_out(x, x->event.map);
	struct xhci_erst_entry *erst = x->erst;
	erst->base = x->event.addr;
	erst->size = XHCI_EVENT_TRBS;
	sync_out(x, x->erst_map);
	sync_out(x, x->dcbaa_map);

	wr32(x->op, XHCI_CONFIG, x->max_slots); /* MaxSlotsEn */
	wr32(x->op, XHCI_DNCTRL, 0);
	wr64(x->op, XHCI_DCBAAP, x->dcbaa_addr);
	wr64(x->op, XHCI_CRCR, x->cmd.addr | CRCR_RCS);
	wr32(x->rt, XHCI_IMAN, IMAN_IP); /* IE = 0: polled */
	wr32(x->rt, XHCI_ERSTSZ, 1);
	wr64(x->rt, XHCI_ERDP, x->event.addr);
	wr64(x->rt, XHCI_ERSTBA, x->erst_addr); /* last: it starts the event ring */
	wr32(x->op, XHCI_USBSTS, USBSTS_HSE | USBSTS_EINT | USBSTS_PCD);
	wr32(x->op, XHCI_USBCMD, USBCMD_RS);
	rc = mmio_wait32(x->op, XHCI_USBSTS, USBSTS_HCH, 0, XHCI_HALT_NS);
	if (rc)
		goto fail;
	if (x->hccparams1 & HCCPARAMS1_PPC) {
		for (unsigned p = 1; p <= x->max_ports; p++) {
			uint32_t sc = rd32(x->op, XHCI_PORTSC(p));
			if (!(sc & PORTSC_PP))
				wr32(x->op, XHCI_PORTSC(p), (sc & PORTSC_PRESERVE) | PORTSC_PP);
		}
		clock_delay_ns(XHCI_POWER_NS);
	}
	x->live = true;
	x->hcd = (struct usb_hcd){ .name = "xhci", .ops = &xhci_ops, .nports = x->max_ports,
				   .dev = dev, .ctl_tag = x->ctl_tag, .data_tag = x->data_tag,
				   .max_transfer = XHCI_MAX_TRANSFER };
	return 0;
fail:
	xhci_detach(x);
	return rc;
}

int xhci_test_unload_ring(struct xhci *x, struct usb_endpoint *ep, uint64_t *addr)
{
	struct xhci_ep *e = ep->hc;
	if (!e || !e->ring.loaded)
		return DMAR_EINVAL;
	*addr = e->ring.addr;
	int rc = dmar_dmamap_unload(x->ring_tag, e->ring.map);
	if (rc == 0)
		e->ring.loaded = false; /* the page stays: the driver still writes TRBs there */
	return rc;
}
