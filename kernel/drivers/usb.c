/* The USB core: enumeration of one device on a root port (USB 2.0 chapter 9), bulk-only
 * transport (USB MSC BOT 1.0) and the SCSI commands a disk needs (SPC/SBC). */
#include "usb.h"

#include "clock.h"
#include "util.h"

/* Standard requests (USB 2.0 9.4) and their bmRequestType values. */
#define USB_REQ_CLEAR_FEATURE 0x01
#define USB_REQ_GET_DESCRIPTOR 0x06
#define USB_REQ_SET_CONFIGURATION 0x09
#define USB_DIR_IN 0x80
#define USB_RT_DEVICE 0x00
#define USB_RT_ENDPOINT 0x02
#define USB_RT_CLASS_INTERFACE 0x21
#define USB_FEATURE_ENDPOINT_HALT 0

/* Descriptor types (USB 2.0 table 9-5). */
#define USB_DT_DEVICE 1
#define USB_DT_CONFIG 2
#define USB_DT_INTERFACE 4
#define USB_DT_ENDPOINT 5

#define USB_CLASS_MASS_STORAGE 8
#define USB_MSC_SUBCLASS_SCSI 6
#define USB_MSC_PROTOCOL_BBB 0x50
#define USB_EP_XFER_BULK 2

/* BOT class request (BOT 3.1). */
#define BOT_REQ_RESET 0xff

/* Command Block Wrapper and Command Status Wrapper (BOT 5.1, 5.2). */
#define CBW_SIGNATURE 0x43425355u
#define CSW_SIGNATURE 0x53425355u
#define CBW_LEN 31u
#define CSW_LEN 13u
#define CBW_FLAGS_IN 0x80
#define CSW_STATUS_GOOD 0
#define CSW_STATUS_FAILED 1
#define CSW_STATUS_PHASE_ERROR 2
#define CSW_OFFSET 64 /* the CSW's place in the page that holds the CBW */

struct bot_cbw {
	uint32_t dCBWSignature, dCBWTag, dCBWDataTransferLength;
	uint8_t bmCBWFlags, bCBWLUN, bCBWCBLength;
	uint8_t CBWCB[16];
} __attribute__((packed));
_Static_assert(sizeof(struct bot_cbw) == CBW_LEN, "CBW");

struct bot_csw {
	uint32_t dCSWSignature, dCSWTag, dCSWDataResidue;
	uint8_t bCSWStatus;
} __attribute__((packed));
_Static_assert(sizeof(struct bot_csw) == CSW_LEN, "CSW");

/* SCSI operation codes. */
#define SCSI_TEST_UNIT_READY 0x00
#define SCSI_REQUEST_SENSE 0x03
#define SCSI_INQUIRY 0x12
#define SCSI_READ_CAPACITY_10 0x25
#define SCSI_READ_10 0x28
#define SCSI_WRITE_10 0x2a
#define SCSI_INQUIRY_LEN 36u
#define SCSI_SENSE_LEN 18u

#define USB_RESET_RECOVERY_NS 10000000ull  /* TRSTRCY (USB 2.0 7.1.7.5) */
#define USB_SET_ADDRESS_NS 2000000ull      /* SetAddress recovery (9.2.6.3) */
#define USB_CONFIG_MAX 512u                /* configuration descriptor bytes read */
#define MSD_READY_TRIES 10u
#define MSD_READY_DELAY_NS 100000000ull

static uint16_t get_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* ------------------------------------------------------- control transfers ---- */

int usb_control_msg(struct usb_device *dev, uint8_t bmRequestType, uint8_t bRequest,
		    uint16_t wValue, uint16_t wIndex, void *buf, uint16_t len, uint32_t *actual)
{
	struct usb_hcd *h = dev->hcd;
	struct usb_setup setup = { bmRequestType, bRequest, wValue, wIndex, len };
	struct dmar_dmamap *map = NULL;
	void *va = NULL;
	uint32_t got = 0;
	bool in = (bmRequestType & USB_DIR_IN) != 0;
	int rc;

	if (actual)
		*actual = 0;
	if (len > 4096 || (len && !buf))
		return DMAR_EINVAL;
	if (len == 0)
		return h->ops->control(h, dev, &setup, NULL, &got);

	rc = dmar_dmamem_alloc(h->ctl_tag, &va, 0, &map);
	if (rc)
		return rc;
	if (!in)
		dmar_memcpy(va, buf, len);
	rc = dmar_dmamap_load(h->ctl_tag, map, va, len, 0);
	if (rc)
		goto out;
	dmar_dmamap_sync(h->ctl_tag, map, in ? DMAR_DMASYNC_PREREAD : DMAR_DMASYNC_PREWRITE);
	rc = h->ops->control(h, dev, &setup, map, &got);
	dmar_dmamap_sync(h->ctl_tag, map, in ? DMAR_DMASYNC_POSTREAD : DMAR_DMASYNC_POSTWRITE);
	dmar_dmamap_unload(h->ctl_tag, map);
	if (got > len)
		got = len;
	if (in)
		dmar_memcpy(buf, va, got);
	if (actual)
		*actual = got;
out:
	dmar_dmamem_free(h->ctl_tag, va, map);
	return rc;
}

static int get_descriptor(struct usb_device *dev, uint8_t type, void *buf, uint16_t len,
			  uint32_t *actual)
{
	return usb_control_msg(dev, USB_DIR_IN | USB_RT_DEVICE, USB_REQ_GET_DESCRIPTOR,
			       (uint16_t)(type << 8), 0, buf, len, actual);
}

/* CLEAR_FEATURE(ENDPOINT_HALT): the device resets the endpoint's toggle to DATA0. */
int usb_clear_halt(struct usb_device *dev, struct usb_endpoint *ep)
{
	struct usb_hcd *h = dev->hcd;
	int rc = usb_control_msg(dev, USB_RT_ENDPOINT, USB_REQ_CLEAR_FEATURE,
				 USB_FEATURE_ENDPOINT_HALT, ep->addr, NULL, 0, NULL);
	if (rc)
		return rc;
	ep->toggle = false;
	return h->ops->clear_halt ? h->ops->clear_halt(h, dev, ep) : 0;
}

/* ------------------------------------------------------------ enumeration ---- */

/* Walks the configuration descriptor for a bulk-only SCSI interface and its two bulk
 * endpoints. */
static bool find_msd_interface(struct usb_device *dev, const uint8_t *cfg, uint32_t len)
{
	bool in_msd = false;
	uint32_t off = 0;
	dev->bulk_in.addr = dev->bulk_out.addr = 0;
	while (off + 2 <= len) {
		const uint8_t *d = cfg + off;
		uint8_t dlen = d[0];
		if (dlen < 2 || off + dlen > len)
			break;
		if (d[1] == USB_DT_INTERFACE && dlen >= 9) {
			if (in_msd && dev->bulk_in.addr && dev->bulk_out.addr)
				return true;
			/* Alternate setting 0 only: the core never selects another. */
			in_msd = d[3] == 0 && d[5] == USB_CLASS_MASS_STORAGE &&
				 d[6] == USB_MSC_SUBCLASS_SCSI && d[7] == USB_MSC_PROTOCOL_BBB;
			if (in_msd)
				dev->interface = d[2];
			dev->bulk_in.addr = dev->bulk_out.addr = 0;
		} else if (d[1] == USB_DT_ENDPOINT && dlen >= 7 && in_msd &&
			   (d[3] & 3) == USB_EP_XFER_BULK) {
			struct usb_endpoint *ep = (d[2] & USB_DIR_IN) ? &dev->bulk_in : &dev->bulk_out;
			if (!ep->addr) {
				ep->addr = d[2];
				ep->max_packet = get_le16(d + 4) & 0x7ff;
				ep->toggle = false;
			}
		}
		off += dlen;
	}
	return in_msd && dev->bulk_in.addr && dev->bulk_out.addr;
}

static uint16_t ep0_default_max_packet(enum usb_speed speed)
{
	switch (speed) {
	case USB_SPEED_HIGH:
		return 64;
	case USB_SPEED_SUPER:
		return 512;
	default:
		return 8;
	}
}

/* Enumerates the device on one port; USB_ENODEV when it is absent or not a disk. On
 * failure the controller driver's per-device state is released. */
static int attach_port(struct usb_hcd *h, struct usb_device *dev, unsigned port)
{
	enum usb_speed speed;
	int rc = h->ops->port_reset(h, port, &speed);
	if (rc)
		return rc;
	clock_delay_ns(USB_RESET_RECOVERY_NS);

	*dev = (struct usb_device){ .hcd = h, .port = port, .speed = speed };
	dev->ep0.max_packet = ep0_default_max_packet(speed);

	/* Descriptors land here, copied out of the DMA memory usb_control_msg uses. */
	uint8_t buf[USB_CONFIG_MAX];

	/* The first 8 bytes hold bMaxPacketSize0 (USB 2.0 9.6.1); a full-speed device may
	 * take larger packets than the 8 bytes every device accepts. */
	uint32_t got = 0;
	rc = get_descriptor(dev, USB_DT_DEVICE, buf, 8, &got);
	if (rc == 0 && got == 8 && buf[1] == USB_DT_DEVICE) {
		if (speed == USB_SPEED_SUPER)
			dev->ep0.max_packet = (uint16_t)(buf[7] < 16 ? 1u << buf[7] : 512u);
		else if (buf[7] == 8 || buf[7] == 16 || buf[7] == 32 || buf[7] == 64)
			dev->ep0.max_packet = buf[7];
	} else if (speed < USB_SPEED_HIGH) {
		rc = rc ? rc : USB_EPROTO;
		goto fail;
	}
	/* High and super speed fix ep0's packet size: their defaults hold even when a
	 * controller cannot talk to address 0 before set_address. */

	rc = h->ops->set_address(h, dev);
	if (rc)
		goto fail;
	clock_delay_ns(USB_SET_ADDRESS_NS);

	rc = get_descriptor(dev, USB_DT_DEVICE, buf, 18, &got);
	if (rc == 0 && (got < 18 || buf[1] != USB_DT_DEVICE))
		rc = USB_EPROTO;
	if (rc)
		goto fail;
	dev->id_vendor = get_le16(buf + 8);
	dev->id_product = get_le16(buf + 10);
	if (buf[4] != 0 && buf[4] != USB_CLASS_MASS_STORAGE) {
		rc = USB_ENODEV; /* a hub or another class at the device level */
		goto fail;
	}

	rc = get_descriptor(dev, USB_DT_CONFIG, buf, 9, &got);
	if (rc == 0 && (got < 9 || buf[1] != USB_DT_CONFIG))
		rc = USB_EPROTO;
	if (rc)
		goto fail;
	uint16_t total = get_le16(buf + 2);
	if (total < 9)
		total = 9;
	if (total > USB_CONFIG_MAX)
		total = USB_CONFIG_MAX; /* the interfaces come first in any sane device */
	rc = get_descriptor(dev, USB_DT_CONFIG, buf, total, &got);
	if (rc)
		goto fail;
	dev->configuration = buf[5];
	if (!find_msd_interface(dev, buf, got)) {
		rc = USB_ENODEV;
		goto fail;
	}

	rc = usb_control_msg(dev, USB_RT_DEVICE, USB_REQ_SET_CONFIGURATION, dev->configuration,
			     0, NULL, 0, NULL);
	if (rc)
		goto fail;
	rc = h->ops->configure(h, dev);
	if (rc)
		goto fail;
	return 0;
fail:
	if (h->ops->release)
		h->ops->release(h, dev);
	return rc;
}

int usb_attach_msd(struct usb_hcd *h, struct usb_device *dev)
{
	int rc = USB_ENODEV;
	if (!h || !dev || !h->ops || !h->ctl_tag)
		return DMAR_EINVAL;
	for (unsigned port = 1; port <= h->nports; port++) {
		rc = attach_port(h, dev, port);
		if (rc == 0)
			break;
		/* Only an empty port or another kind of device sends us on to the next port;
		 * a broken transfer is worth reporting as it is. */
		if (rc != USB_ENODEV)
			return rc;
	}
	if (rc)
		return rc;
	/* A fresh disk reports a unit attention (power on, reset) first: clear it now so
	 * the first real command does not fail. Not fatal: INQUIRY works regardless. */
	(void)usb_msd_wait_ready(dev);
	return 0;
}

void usb_detach(struct usb_device *dev)
{
	if (!dev || !dev->hcd)
		return;
	if (dev->hcd->ops->release)
		dev->hcd->ops->release(dev->hcd, dev);
	dev->address = 0;
	dev->hcd = NULL;
}

/* ---------------------------------------------------- bulk-only transport ---- */

/* Reset Recovery (BOT 5.3.4): Bulk-Only Mass Storage Reset, then clear the halt of
 * both bulk endpoints. */
static int bot_reset_recovery(struct usb_device *dev)
{
	int rc = usb_control_msg(dev, USB_RT_CLASS_INTERFACE, BOT_REQ_RESET, 0, dev->interface,
				 NULL, 0, NULL);
	int rc2 = usb_clear_halt(dev, &dev->bulk_in);
	int rc3 = usb_clear_halt(dev, &dev->bulk_out);
	return rc ? rc : rc2 ? rc2 : rc3;
}

/* One bulk transfer of a small core buffer at `va` (in the loaded-on-demand map). */
static int bulk_small(struct usb_device *dev, struct usb_endpoint *ep, struct dmar_dmamap *map,
		      void *va, uint32_t len, uint32_t *actual)
{
	struct usb_hcd *h = dev->hcd;
	bool in = (ep->addr & USB_DIR_IN) != 0;
	int rc = dmar_dmamap_load(h->ctl_tag, map, va, len, 0);
	if (rc)
		return rc;
	dmar_dmamap_sync(h->ctl_tag, map, in ? DMAR_DMASYNC_PREREAD : DMAR_DMASYNC_PREWRITE);
	rc = h->ops->bulk(h, dev, ep, map, len, actual);
	dmar_dmamap_sync(h->ctl_tag, map, in ? DMAR_DMASYNC_POSTREAD : DMAR_DMASYNC_POSTWRITE);
	dmar_dmamap_unload(h->ctl_tag, map);
	return rc;
}

int usb_msd_command(struct usb_device *dev, const uint8_t *cdb, unsigned cdb_len, bool in,
		    struct dmar_dmamap *data, uint32_t len)
{
	struct usb_hcd *h;
	if (!dev || !(h = dev->hcd) || !cdb || cdb_len == 0 || cdb_len > 16 ||
	    (len && !data) || len > h->max_transfer)
		return DMAR_EINVAL;

	uint8_t *page = NULL;
	struct dmar_dmamap *map = NULL;
	int rc = dmar_dmamem_alloc(h->ctl_tag, (void **)&page, 0, &map);
	if (rc)
		return rc;

	struct bot_cbw *cbw = (struct bot_cbw *)page;
	struct bot_csw *csw = (struct bot_csw *)(page + CSW_OFFSET);
	dev->cbw_tag++;
	cbw->dCBWSignature = CBW_SIGNATURE;
	cbw->dCBWTag = dev->cbw_tag;
	cbw->dCBWDataTransferLength = len;
	cbw->bmCBWFlags = in ? CBW_FLAGS_IN : 0;
	cbw->bCBWLUN = 0;
	cbw->bCBWCBLength = (uint8_t)cdb_len;
	dmar_memcpy(cbw->CBWCB, cdb, cdb_len);

	uint32_t got = 0;
	rc = bulk_small(dev, &dev->bulk_out, map, cbw, CBW_LEN, &got);
	if (rc == 0 && got != CBW_LEN)
		rc = USB_EPROTO;
	if (rc) {
		/* The device did not take the CBW (BOT 6.6.1: it may stall it). */
		bot_reset_recovery(dev);
		goto out;
	}

	if (len) {
		struct usb_endpoint *ep = in ? &dev->bulk_in : &dev->bulk_out;
		rc = h->ops->bulk(h, dev, ep, data, len, &got);
		if (rc == USB_ESTALL) {
			/* The device ends the data stage early with a stall (BOT 6.7.2, 6.7.3);
			 * the CSW still follows once the halt is cleared. */
			rc = usb_clear_halt(dev, ep);
		}
		if (rc) {
			bot_reset_recovery(dev);
			goto out;
		}
	}

	rc = bulk_small(dev, &dev->bulk_in, map, csw, CSW_LEN, &got);
	if (rc == USB_ESTALL) {
		/* BOT 6.7.2 / 5.3.3: clear the halt and try the CSW once more. */
		rc = usb_clear_halt(dev, &dev->bulk_in);
		if (rc == 0)
			rc = bulk_small(dev, &dev->bulk_in, map, csw, CSW_LEN, &got);
	}
	if (rc == 0 && (got != CSW_LEN || csw->dCSWSignature != CSW_SIGNATURE ||
			csw->dCSWTag != dev->cbw_tag))
		rc = USB_EPROTO; /* not a valid CSW (BOT 6.3.1) */
	if (rc) {
		bot_reset_recovery(dev);
		goto out;
	}
	dev->csw_status = csw->bCSWStatus;
	dev->csw_residue = csw->dCSWDataResidue;
	if (csw->bCSWStatus == CSW_STATUS_GOOD) {
		rc = 0;
	} else if (csw->bCSWStatus == CSW_STATUS_FAILED) {
		/* The command failed, the transport is fine: the sense data say why. */
		rc = USB_EPROTO;
	} else {
		/* Phase error (or a reserved status): only a reset recovery resynchronises. */
		bot_reset_recovery(dev);
		rc = USB_EPROTO;
	}
out:
	dmar_dmamem_free(h->ctl_tag, page, map);
	return rc;
}

/* ---------------------------------------------------------------- SCSI ------- */

/* A command whose data (IN or OUT, at most 4 KiB) goes through core DMA memory. */
static int msd_small(struct usb_device *dev, const uint8_t *cdb, unsigned cdb_len, bool in,
		     void *buf, uint32_t len)
{
	struct usb_hcd *h = dev->hcd;
	if (len == 0)
		return usb_msd_command(dev, cdb, cdb_len, in, NULL, 0);
	void *va = NULL;
	struct dmar_dmamap *map = NULL;
	int rc = dmar_dmamem_alloc(h->ctl_tag, &va, 0, &map);
	if (rc)
		return rc;
	if (!in)
		dmar_memcpy(va, buf, len);
	rc = dmar_dmamap_load(h->ctl_tag, map, va, len, 0);
	if (rc == 0) {
		dmar_dmamap_sync(h->ctl_tag, map, in ? DMAR_DMASYNC_PREREAD : DMAR_DMASYNC_PREWRITE);
		rc = usb_msd_command(dev, cdb, cdb_len, in, map, len);
		dmar_dmamap_sync(h->ctl_tag, map,
				 in ? DMAR_DMASYNC_POSTREAD : DMAR_DMASYNC_POSTWRITE);
		dmar_dmamap_unload(h->ctl_tag, map);
		if (in)
			dmar_memcpy(buf, va, len);
	}
	dmar_dmamem_free(h->ctl_tag, va, map);
	return rc;
}

int usb_msd_request_sense(struct usb_device *dev)
{
	uint8_t cdb[6] = { SCSI_REQUEST_SENSE, 0, 0, 0, SCSI_SENSE_LEN, 0 };
	uint8_t sense[SCSI_SENSE_LEN] = { 0 };
	int rc = msd_small(dev, cdb, sizeof(cdb), true, sense, sizeof(sense));
	if (rc)
		return rc;
	dev->sense_key = sense[2] & 0xf;
	dev->asc = sense[12];
	dev->ascq = sense[13];
	return 0;
}

int usb_msd_wait_ready(struct usb_device *dev)
{
	uint8_t cdb[6] = { SCSI_TEST_UNIT_READY, 0, 0, 0, 0, 0 };
	int rc = 0;
	for (unsigned i = 0; i < MSD_READY_TRIES; i++) {
		rc = usb_msd_command(dev, cdb, sizeof(cdb), false, NULL, 0);
		if (rc == 0)
			return 0;
		if (rc != USB_EPROTO)
			return rc; /* a transport failure: retrying will not help */
		/* Fetching the sense clears a unit attention; "becoming ready" needs time. */
		int src = usb_msd_request_sense(dev);
		if (src)
			return src;
		if (dev->sense_key != 0x6) /* anything but UNIT ATTENTION: wait a little */
			clock_delay_ns(MSD_READY_DELAY_NS);
	}
	return rc;
}

int usb_msd_inquiry(struct usb_device *dev, uint8_t *peripheral_type)
{
	uint8_t cdb[6] = { SCSI_INQUIRY, 0, 0, 0, SCSI_INQUIRY_LEN, 0 };
	uint8_t data[SCSI_INQUIRY_LEN] = { 0 };
	int rc = msd_small(dev, cdb, sizeof(cdb), true, data, sizeof(data));
	if (rc == 0 && peripheral_type)
		*peripheral_type = data[0] & 0x1f;
	return rc;
}

int usb_msd_capacity(struct usb_device *dev, uint64_t *blocks, uint32_t *block_size)
{
	uint8_t cdb[10] = { SCSI_READ_CAPACITY_10 };
	uint8_t data[8] = { 0 };
	int rc = msd_small(dev, cdb, sizeof(cdb), true, data, sizeof(data));
	if (rc == USB_EPROTO && usb_msd_request_sense(dev) == 0)
		rc = msd_small(dev, cdb, sizeof(cdb), true, data, sizeof(data)); /* after a UA */
	if (rc)
		return rc;
	if (blocks)
		*blocks = (uint64_t)get_be32(data) + 1;
	if (block_size)
		*block_size = get_be32(data + 4);
	return 0;
}

int usb_msd_rw(struct usb_device *dev, bool write, uint64_t lba, uint32_t count,
	       struct dmar_dmamap *data, uint32_t len)
{
	if (!dev || lba + count > 0x100000000ull || count > 0xffff || count == 0)
		return DMAR_EINVAL; /* beyond what READ(10)/WRITE(10) address */
	uint8_t cdb[10] = { write ? SCSI_WRITE_10 : SCSI_READ_10, 0 };
	put_be32(cdb + 2, (uint32_t)lba);
	cdb[7] = (uint8_t)(count >> 8);
	cdb[8] = (uint8_t)count;
	int rc = usb_msd_command(dev, cdb, sizeof(cdb), !write, data, len);
	if (rc == 0 && dev->csw_residue != 0)
		rc = USB_EPROTO; /* a short transfer the device admits to */
	return rc;
}
