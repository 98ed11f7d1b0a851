/*
 * xhci.h - a polled xHCI driver (bound by PCI class 0c:03:30, as a real driver binds) for
 * the USB core (usb.h): controller halt and reset, the Device Context Base Address
 * Array (with scratchpad buffers when the controller asks for them), a command ring, one
 * event ring with its segment table, a transfer ring per endpoint (one page each, closed
 * by a Link TRB with Toggle Cycle), root port reset on USB 2 and USB 3 ports, Enable
 * Slot / Address Device / Configure Endpoint, control transfers (Setup, Data, Status
 * stage TRBs) and bulk transfers (chained Normal TRBs, one per busdma segment). Names as
 * in the eXtensible Host Controller Interface specification, revision 1.2.
 *
 * Completions are polled on the event ring (no interrupts); every wait is bounded. A
 * transfer that gets no completion within USB_TIMEOUT_NS is taken off the endpoint (Stop
 * Endpoint, or Reset Endpoint when it halted) and the endpoint gets a fresh transfer
 * ring (Set TR Dequeue Pointer): the controller never again fetches from the old one.
 * An endpoint that halts on an error (stall, transaction error) is reset at once and
 * its dequeue pointer moved past the failed TD.
 *
 * Every byte the controller reads or writes in RAM comes from busdma: the driver makes
 * its own tags (rings, contexts, DCBAA, event ring segment table: one 64-byte aligned
 * page each, never crossing 64 KiB) from the busdma device the caller gives it, and
 * offers the core `ctl_tag` (small buffers) and `data_tag` (bulk data) in its usb_hcd.
 */
#ifndef KERNEL_XHCI_H
#define KERNEL_XHCI_H

#include <stdbool.h>
#include <stdint.h>

#include "dmar/busdma.h"
#include "pci.h"
#include "usb.h"

#define XHCI_RING_TRBS 256u          /* TRBs of one ring page; the last is a Link TRB */
#define XHCI_EVENT_TRBS 256u         /* TRBs of the one event ring segment */
#define XHCI_MAX_TRANSFER (128u * 1024u) /* bytes of one bulk transfer */
#define XHCI_MAX_SEGS 64u            /* Normal TRBs of one bulk TD */
#define XHCI_TRB_MAX 65536u          /* bytes one TRB moves; a buffer never crosses 64 KiB */
#define XHCI_MAX_DEVICES 2u          /* devices the driver keeps slots for at once */
#define XHCI_MAX_PORTS 255u

/* Errors besides the USB_* and busdma ones. */
#define XHCI_EHALTED (-3000)         /* the controller stopped (USBSTS.HCE or HSE) */

struct xhci_trb {
	uint64_t parameter;
	uint32_t status;
	uint32_t control;
};

/* A ring of one page: the driver's producer state (or the event ring's consumer state). */
struct xhci_ring {
	struct xhci_trb *trb;
	struct dmar_dmamap *map;
	uint64_t addr;               /* device address of trb[0] */
	unsigned index;              /* next TRB to write (or read, for the event ring) */
	uint32_t cycle;              /* producer (consumer) cycle state */
	bool loaded;                 /* the map is loaded: the controller can reach it */
};

/* One endpoint of a device: its Device Context Index and transfer ring. */
struct xhci_ep {
	struct xhci_ring ring;
	unsigned dci;
	bool halted;                 /* halted and not yet reset */
};

/* One device slot. */
struct xhci_slot {
	bool used;
	unsigned id;                 /* Slot ID from Enable Slot */
	bool addressed;              /* Address Device with BSR = 0 done */
	uint16_t ep0_mps;            /* Max Packet Size in the EP0 context */
	void *out_ctx, *in_ctx;      /* Output Device Context, Input Context */
	struct dmar_dmamap *out_map, *in_map;
	uint64_t out_addr, in_addr;
	struct xhci_ep ep0, bulk_in, bulk_out;
};

struct xhci {
	struct usb_hcd hcd;          /* first: the core's handle is the driver's state */
	const struct pci_dev *pci;
	volatile uint8_t *cap, *op, *rt, *db;
	uint16_t sid;
	uint16_t hciversion;
	uint32_t hcsparams1, hcsparams2, hccparams1;
	unsigned max_slots, max_ports, ctx_size, nscratch;
	uint64_t page_size;          /* PAGESIZE: the controller's page, scratchpads' size */
	uint8_t port_major[XHCI_MAX_PORTS + 1]; /* USB major revision of each port (2 or 3) */
	struct dmar_busdma_dev *dev;
	struct dmar_dma_tag *ring_tag;   /* one page each: rings, contexts, DCBAA, ERST */
	struct dmar_dma_tag *ctl_tag, *data_tag;
	uint64_t *dcbaa;
	struct dmar_dmamap *dcbaa_map;
	uint64_t dcbaa_addr;
	struct xhci_ring cmd, event;
	void *erst;
	struct dmar_dmamap *erst_map;
	uint64_t erst_addr;
	/* Scratchpad Buffer Array and the buffers (several pages each may be needed:
	 * physically contiguous memory loaded as one map). */
	struct dmar_dma_tag *sp_array_tag, *sp_buf_tag;
	struct dmar_dmamap *sp_array_map, *sp_buf_map;
	void *sp_array_va, *sp_buf_va;
	uint64_t sp_array_pages, sp_buf_pages;
	struct xhci_slot slots[XHCI_MAX_DEVICES];
	uint32_t last_cc;            /* Completion Code of the last command or transfer */
	unsigned timeouts;           /* transfers that got no completion */
	unsigned ring_recoveries;    /* endpoints moved to a fresh transfer ring */
	bool live;
};

/* Finds the n-th xHCI controller (class 0c:03:30), maps BAR0, reads the capability
 * registers. No DMA yet. false when there is none. */
bool xhci_probe(unsigned n, struct xhci *x);

/* Sets up DMA through `dev` (the busdma device of the controller's function), takes the
 * controller from firmware, halts and resets it, programs DCBAA, command and event
 * rings and starts it, and fills x->hcd for the core. 0, DMAR_ETIMEDOUT, or a negative
 * busdma error; on failure everything is undone. */
int xhci_init(struct xhci *x, struct dmar_busdma_dev *dev);
/* Halts and resets the controller (so it DMAs no more), frees its DMA memory and tags.
 * Devices must have been detached (usb_detach) first. */
void xhci_detach(struct xhci *x);

/* Only for tests: the driver bug of unloading an endpoint's transfer ring while the
 * controller still points at it. The driver goes on writing TRBs into the page, whose
 * device address (*addr) is no longer mapped: the next doorbell makes the controller
 * fetch from a stale address. */
int xhci_test_unload_ring(struct xhci *x, struct usb_endpoint *ep, uint64_t *addr);

#endif
