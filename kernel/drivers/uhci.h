/*
 * uhci.h - a polled UHCI host controller driver (Universal Host Controller Interface
 * design guide 1.1; bound by PCI class 0c:03:00, as QEMU's ich9-usb-uhci1..6 and
 * piix3/4-usb-uhci): one frame list whose every entry points at one queue head, on which
 * a control or bulk transfer is hung as a chain of transfer descriptors (one per packet,
 * depth first) and polled until the queue head's element pointer runs out or a TD stops
 * it (error, stall, short packet). Implements struct usb_hcd_ops for the USB core.
 *
 * UHCI is a 32-bit bus master: every tag the driver makes has lowaddr 0xffffffff. The
 * frame list, queue head and TDs come from busdma like everything else the controller
 * reads or writes. Full (and low) speed only; no interrupts.
 */
#ifndef KERNEL_UHCI_H
#define KERNEL_UHCI_H

#include <stdbool.h>
#include <stdint.h>

#include "dmar/busdma.h"
#include "pci.h"
#include "usb.h"

#define UHCI_MAX_TRANSFER (32u * 1024u) /* bytes per bulk transfer (hcd.max_transfer) */
#define UHCI_TD_PAGES 3u                /* 256 TDs a page: a 32 KiB bulk transfer, or
					 * 4 KiB of control data in 8-byte packets */
#define UHCI_NPORTS 2u

struct uhci_td;
struct uhci_qh;

struct uhci {
	struct usb_hcd hcd;          /* what the USB core sees (first: the ops cast it) */
	const struct pci_dev *pci;
	uint16_t iobase;             /* I/O BAR4 */
	uint16_t sid;
	struct dmar_busdma_dev *dev;
	struct dmar_dma_tag *sched_tag; /* frame list, queue head page, TD pages */
	uint32_t *frame_list;
	struct dmar_dmamap *fl_map;
	uint32_t fl_addr;
	/* One page: the queue head, then the SETUP packet buffer. */
	uint8_t *qh_page;
	struct dmar_dmamap *qh_map;
	uint32_t qh_addr;
	struct uhci_td *td[UHCI_TD_PAGES];
	struct dmar_dmamap *td_map[UHCI_TD_PAGES];
	uint32_t td_addr[UHCI_TD_PAGES];
	/* Diagnostics of the last transfer that failed. */
	uint32_t last_td_status;     /* control/status word of the TD that stopped */
	uint16_t last_usbsts;
	bool running;
};

/* Finds the n-th UHCI controller (class 0c:03:00 with an I/O BAR4), enables its I/O
 * decoding. No DMA yet. Returns false when there is none. */
bool uhci_probe(unsigned n, struct uhci *c);

/* Stops every UHCI controller (and resets it): firmware (SeaBIOS) leaves its own
 * schedule running, whose DMA faults as soon as translation is on and would be recorded
 * against whichever test runs then. For boot, after pci_enumerate(), before any test.
 * Returns how many were stopped. */
unsigned uhci_quiesce_all(void);

/* Sets up DMA through `dev` (the busdma device of the controller's function: its tags,
 * frame list, queue head and TDs), resets the controller and starts its schedule; fills
 * c->hcd for the USB core. 0 or a negative error (DMAR_ETIMEDOUT when the controller
 * does not reset or run); on failure everything is undone. */
int uhci_init(struct uhci *c, struct dmar_busdma_dev *dev);
/* Stops the controller (so it DMAs no more) and frees its DMA memory and tags. The USB
 * device must have been detached (usb_detach). */
void uhci_detach(struct uhci *c);

#endif
