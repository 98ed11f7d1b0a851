/*
 * usb.h - the small USB core the test kernel's host controller drivers share (UHCI,
 * EHCI, xHCI): device enumeration on a root port, and bulk-only mass storage with the
 * SCSI commands a disk needs, on top of a host controller interface (struct usb_hcd_ops)
 * each controller driver implements.
 *
 * Every byte a controller reads or writes in RAM (frame lists, queue heads, transfer
 * descriptors, device contexts, rings, setup packets, descriptors, CBW/CSW and data)
 * comes from busdma: a controller driver creates its tags from the busdma device it is
 * given; the core's own small buffers (setup packets, descriptors, CBW, CSW) come from
 * dmar_dmamem_alloc on the controller's `ctl_tag`. Polling only, every wait bounded.
 */
#ifndef KERNEL_USB_H
#define KERNEL_USB_H

#include <stdbool.h>
#include <stdint.h>

#include "dmar/busdma.h"

#define USB_TIMEOUT_NS 2000000000ull /* per transfer */

enum usb_speed { USB_SPEED_LOW, USB_SPEED_FULL, USB_SPEED_HIGH, USB_SPEED_SUPER };

/* Errors besides the negative dmar_error values. */
#define USB_ESTALL (-2000)   /* the endpoint stalled */
#define USB_ETIMEOUT (-2001) /* no completion within USB_TIMEOUT_NS */
#define USB_EPROTO (-2002)   /* anything else the controller reported (babble, CRC, ...) */
#define USB_ENODEV (-2003)   /* nothing on the port, or not a mass-storage disk */

/* The 8-byte SETUP packet (USB 2.0 9.3). */
struct usb_setup {
	uint8_t bmRequestType, bRequest;
	uint16_t wValue, wIndex, wLength;
} __attribute__((packed));

struct usb_endpoint {
	uint8_t addr;          /* bEndpointAddress: number | 0x80 for IN */
	uint16_t max_packet;
	bool toggle;           /* data toggle (controllers that keep it in software) */
	void *hc;              /* the controller driver's per-endpoint state */
};

struct usb_device {
	struct usb_hcd *hcd;
	unsigned port;         /* root port, 1-based */
	enum usb_speed speed;
	uint8_t address;       /* 0 until addressed */
	struct usb_endpoint ep0, bulk_in, bulk_out;
	uint8_t interface;     /* the mass-storage interface number */
	void *hc;              /* the controller driver's per-device state (xHCI slot) */
	/* Added by the core (it sets them; controller drivers may ignore them). */
	uint16_t id_vendor, id_product; /* from the device descriptor */
	uint8_t configuration;          /* bConfigurationValue set */
	uint32_t cbw_tag;               /* dCBWTag of the last CBW */
	uint32_t csw_residue;           /* dCSWDataResidue of the last CSW */
	uint8_t csw_status;             /* bCSWStatus of the last CSW */
	uint8_t sense_key, asc, ascq;   /* from the last REQUEST SENSE */
};

struct usb_hcd_ops {
	/* Resets root port `port` and reports whether a device is attached and its speed
	 * (0: attached; USB_ENODEV: nothing there). */
	int (*port_reset)(struct usb_hcd *h, unsigned port, enum usb_speed *speed);
	/* Gives the device at dev->port an address: UHCI/EHCI send SET_ADDRESS on ep0 of
	 * address 0 (with ops->control) and set dev->address; xHCI enables a slot and
	 * issues Address Device. ep0.max_packet is known (8, or read from the first 8
	 * bytes of the device descriptor) when this is called. */
	int (*set_address)(struct usb_hcd *h, struct usb_device *dev);
	/* After SET_CONFIGURATION: makes dev->bulk_in/bulk_out usable (xHCI: Configure
	 * Endpoint; others: nothing or a queue head each). */
	int (*configure)(struct usb_hcd *h, struct usb_device *dev);
	/* A control transfer on ep0: SETUP, an optional data stage of setup->wLength bytes
	 * through `data` (loaded on a tag of this controller; NULL when wLength is 0),
	 * STATUS. *actual gets the bytes moved in the data stage. */
	int (*control)(struct usb_hcd *h, struct usb_device *dev, const struct usb_setup *setup,
		       struct dmar_dmamap *data, uint32_t *actual);
	/* A bulk transfer of `len` bytes on `ep`, the data described by the loaded `data`
	 * map's segments. *actual gets the bytes moved. */
	int (*bulk)(struct usb_hcd *h, struct usb_device *dev, struct usb_endpoint *ep,
		    struct dmar_dmamap *data, uint32_t len, uint32_t *actual);
	/* Frees what the controller driver holds for the device. */
	void (*release)(struct usb_hcd *h, struct usb_device *dev);
	/* Added, optional (NULL: nothing to do). Called after the core has cleared a halt
	 * with CLEAR_FEATURE(ENDPOINT_HALT) on `ep` (the core has set ep->toggle to DATA0,
	 * as USB 2.0 9.4.5 says the device does): resets the controller's own state of the
	 * endpoint (xHCI: Reset Endpoint and Set TR Dequeue Pointer, if the stall was not
	 * already handled when it was reported; queue-head toggles). */
	int (*clear_halt)(struct usb_hcd *h, struct usb_device *dev, struct usb_endpoint *ep);
};

/* A host controller as the core sees it; the driver embeds it in its own state. */
struct usb_hcd {
	const char *name;                /* "uhci", "ehci", "xhci" */
	const struct usb_hcd_ops *ops;
	unsigned nports;
	struct dmar_busdma_dev *dev;     /* the controller's busdma device */
	struct dmar_dma_tag *ctl_tag;    /* for small control buffers (<= 4 KiB) */
	struct dmar_dma_tag *data_tag;   /* for bulk data: the controller's constraints */
	uint64_t max_transfer;           /* bytes one bulk transfer may move */
};

/* Finds the first root port with a device, resets and addresses it, reads its device
 * and configuration descriptors, checks it is bulk-only mass storage (class 8, SCSI
 * transparent subclass 6, protocol 0x50), sets its configuration and configures its
 * bulk endpoints. USB_ENODEV when no port has such a device. */
int usb_attach_msd(struct usb_hcd *h, struct usb_device *dev);
void usb_detach(struct usb_device *dev);

/* Bulk-only transport (USB MSC BOT 1.0): a CBW with `cdb`, `len` bytes of data in the
 * given direction through `data` (NULL when len is 0), a CSW. 0, or a negative error;
 * a CSW reporting failure is USB_EPROTO (after a reset recovery, BOT 5.3.4). */
int usb_msd_command(struct usb_device *dev, const uint8_t *cdb, unsigned cdb_len,
		    bool in, struct dmar_dmamap *data, uint32_t len);
/* SCSI on top: INQUIRY (peripheral type 0: a disk), READ CAPACITY(10), READ(10),
 * WRITE(10). */
int usb_msd_inquiry(struct usb_device *dev, uint8_t *peripheral_type);
int usb_msd_capacity(struct usb_device *dev, uint64_t *blocks, uint32_t *block_size);
int usb_msd_rw(struct usb_device *dev, bool write, uint64_t lba, uint32_t count,
	       struct dmar_dmamap *data, uint32_t len);

/* Added. TEST UNIT READY until the unit is ready (a REQUEST SENSE after each failure
 * clears a unit attention), bounded by a few tries; usb_attach_msd calls it once. 0 or
 * the last error. */
int usb_msd_wait_ready(struct usb_device *dev);
/* Added. REQUEST SENSE (fixed format): fills dev->sense_key, asc, ascq. */
int usb_msd_request_sense(struct usb_device *dev);
/* Added. CLEAR_FEATURE(ENDPOINT_HALT) on `ep`, its toggle back to DATA0, then
 * ops->clear_halt when the controller has one. */
int usb_clear_halt(struct usb_device *dev, struct usb_endpoint *ep);
/* Added. A control transfer with `len` bytes of data at `buf` (IN: filled; OUT: sent),
 * through DMA memory the core allocates on ctl_tag; len <= 4096. *actual (may
 * be NULL) gets the bytes moved. */
int usb_control_msg(struct usb_device *dev, uint8_t bmRequestType, uint8_t bRequest,
		    uint16_t wValue, uint16_t wIndex, void *buf, uint16_t len, uint32_t *actual);

#endif
