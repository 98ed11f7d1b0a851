/*
 * ehci.h - a polled EHCI (USB 2.0 high-speed) host controller driver, bound by PCI class
 * 0c:03:20 like a real driver (QEMU's ich9-usb-ehci1, 8086:293a), for the USB core
 * (usb.h):
 *   - capability and operational registers in memory BAR0; ownership taken from the
 *     firmware through the EECP legacy-support capability when HCCPARAMS has one;
 *   - HCRESET, then run with the asynchronous schedule only (no frame list, no
 *     interrupts), CONFIGFLAG set so every port routes to EHCI; every wait bounded;
 *   - one queue head per endpoint in a circular list behind a halted head queue head
 *     (H set), qTDs built per transfer from the data map's segments (each qTD covers at
 *     most five pages, 20 KiB), completion seen by polling the qTDs' Active bits;
 *   - port reset: a high-speed device stays with EHCI; a full- or low-speed one belongs
 *     to a companion controller (USB_ENODEV here, the port handed over).
 * Queue heads and qTDs live in two busdma pages (tag: 32-byte alignment, no 4 KiB
 * crossing, 32-bit addresses: they share CTRLDSSEGMENT 0); data buffers may lie above
 * 4 GiB only when HCCPARAMS says the controller has 64-bit addressing.
 */
#ifndef KERNEL_EHCI_H
#define KERNEL_EHCI_H

#include <stdbool.h>
#include <stdint.h>

#include "dmar/busdma.h"
#include "pci.h"
#include "usb.h"

#define EHCI_CLASS 0x0c0320u          /* serial bus, USB, EHCI */
#define EHCI_QH_SLOTS 31u             /* queue heads in the QH page (slot 0: the head) */
#define EHCI_QTD_SLOTS 64u            /* qTDs in the qTD page (slot 0: the stop qTD) */
#define EHCI_MAX_TRANSFER (64u << 10) /* bytes one bulk transfer of this driver moves */

struct ehci_qh {
	volatile uint32_t *hw; /* in the QH page */
	uint32_t bus;          /* its device address */
	bool used;
};

struct ehci {
	struct usb_hcd hcd;         /* what the USB core sees (hcd.ops, tags, ports) */
	const struct pci_dev *pci;
	volatile uint8_t *cap;      /* capability registers (BAR0) */
	volatile uint8_t *op;       /* operational registers (BAR0 + CAPLENGTH) */
	uint32_t hcsparams, hccparams;
	uint16_t hciversion;
	bool ac64;                  /* HCCPARAMS: 64-bit addressing */
	bool bios_owned;            /* the firmware owned it when bound */
	bool running;

	struct dmar_dma_tag *sched_tag; /* QH and qTD pages */
	uint8_t *qh_page, *qtd_page;
	struct dmar_dmamap *qh_map, *qtd_map;
	uint32_t qh_bus, qtd_bus;       /* device addresses of the pages */
	struct ehci_qh qh[EHCI_QH_SLOTS];
	uint8_t next_address;           /* the next USB address set_address hands out */
	uint32_t last_token;            /* token of the qTD that ended the last transfer */
	uint32_t last_usbsts;
};

/* The n-th function of class EHCI_CLASS, or NULL. */
const struct pci_dev *ehci_find(unsigned n);

/* The early handoff a kernel does for every EHCI function before it turns DMA remapping
 * on: ownership taken from the firmware and the controller halted and reset, so the
 * schedule the firmware left running (in memory no domain maps) is fetched no more.
 * 0, DMAR_EHW (no usable BAR0) or DMAR_ETIMEDOUT. */
int ehci_quiesce(const struct pci_dev *d);

/* Finds the n-th EHCI function, maps BAR0, reads the capability registers and does the
 * handoff of ehci_quiesce. No DMA yet. false when there is none (or it does not answer). */
bool ehci_probe(unsigned n, struct ehci *e);

/* Sets up DMA for the probed controller through `dev` (the busdma device of its
 * function): creates the tags (hcd.ctl_tag, hcd.data_tag and its own), allocates and
 * loads the schedule pages, starts the controller with the asynchronous schedule and
 * routes the ports to itself. 0, DMAR_ETIMEDOUT or DMAR_EHW when the hardware does not
 * answer, or busdma's error; on failure everything is undone (ehci_detach not needed). */
int ehci_attach(struct ehci *e, struct dmar_busdma_dev *dev);
/* Halts and resets the controller (so it DMAs no more), hands nothing back to the
 * firmware, frees the schedule pages and tags (the caller's maps on the tags must be
 * gone, and usb_detach done). */
void ehci_detach(struct ehci *e);

#endif
