/*
 * The UHCI driver (kernel/drivers/uhci.c) and the USB core (usb.c) on QEMU's
 * ich9-usb-uhci1 with a usb-storage disk, through busdma: enumeration, bulk-only
 * transport and its error recovery, SCSI INQUIRY / READ CAPACITY, and the storage
 * read/write/verify test.
 *
 * QEMU: -device ich9-usb-uhci1,id=uhci -drive if=none,id=ud,file=IMG,format=raw
 *       -device usb-storage,drive=ud,bus=uhci.0
 */
#include "dmar/busdma.h"
#include "clock.h"
#include "storage.h"
#include "tests.h"
#include "uhci.h"
#include "usb.h"
#include "util.h"

#define UHCI_RW_LBA 0x100ull /* storage_rw_verify's regions start here */

struct uhci_env {
	struct dmar_busdma *bus;
	struct dmar_busdma_dev *dev;
	struct uhci c;
	bool bound;
	struct usb_device udev;
	bool attached;
	struct blockdev b;
};

static int uhci_io(struct blockdev *b, bool write, uint64_t lba, uint32_t count,
		   struct dmar_dmamap *map)
{
	return usb_msd_rw(b->drv, write, lba, count, map, count * b->sector_size);
}

static struct dmar_pci_addr uhci_addr(const struct uhci *c)
{
	struct dmar_pci_addr a = { 0, c->pci->bus, c->pci->dev, c->pci->fn };
	return a;
}

static void uhci_env_down(struct ktest *t, struct uhci_env *e)
{
	if (e->attached)
		usb_detach(&e->udev);
	if (e->bound)
		uhci_detach(&e->c);
	if (e->dev)
		CHECK_EQ(dmar_busdma_device_destroy(e->dev), 0);
	if (e->bus)
		CHECK_EQ(dmar_busdma_destroy(e->bus), 0);
}

/* The transport's error paths before the real I/O: a bulk IN out of turn stalls (the
 * driver sees the stalled TD) and CLEAR_FEATURE(ENDPOINT_HALT) recovers the endpoint; a
 * READ CAPACITY(10) whose CBW asks for more than the 8 bytes the command returns (BOT
 * 6.7.2, host expects more than the device has) ends with a good CSW whose residue is the
 * difference; a READ past the end fails in its CSW, REQUEST SENSE says why (ILLEGAL
 * REQUEST, LBA out of range), and the commands after it work (storage_rw_verify). */
static int transport_errors(struct ktest *t, struct uhci_env *e)
{
	struct dmar_dma_tag *tag = e->c.hcd.ctl_tag;
	struct dmar_dmamap *map = NULL;
	uint8_t *buf = NULL;
	const uint32_t ask = 64;
	int rc = dmar_dmamem_alloc(tag, (void **)&buf, 0, &map);
	if (rc)
		return rc;
	rc = dmar_dmamap_load(tag, map, buf, ask, 0);
	if (rc == 0) {
		/* A bulk IN where the device waits for a CBW: it stalls the endpoint. */
		uint32_t got = 0;
		dmar_dmamap_sync(tag, map, DMAR_DMASYNC_PREREAD);
		int src = e->c.hcd.ops->bulk(&e->c.hcd, &e->udev, &e->udev.bulk_in, map, 13, &got);
		dmar_dmamap_sync(tag, map, DMAR_DMASYNC_POSTREAD);
		kprintf("# bulk IN out of turn: %d (TD status %#x); clearing the halt: ", src,
			e->c.last_td_status);
		CHECK_EQ(src, USB_ESTALL);
		src = usb_clear_halt(&e->udev, &e->udev.bulk_in);
		kprintf("%d\n", src);
		CHECK_EQ(src, 0);
		const uint8_t read_capacity[10] = { 0x25 };
		dmar_dmamap_sync(tag, map, DMAR_DMASYNC_PREREAD);
		rc = usb_msd_command(&e->udev, read_capacity, sizeof(read_capacity), true, map, ask);
		dmar_dmamap_sync(tag, map, DMAR_DMASYNC_POSTREAD);
		dmar_dmamap_unload(tag, map);
		kprintf("# READ CAPACITY(10) with %u bytes expected: %d, residue %u\n", ask, rc,
			e->udev.csw_residue);
		CHECK_EQ(rc, 0);
		CHECK_EQ(e->udev.csw_residue, ask - 8);
	}
	if (rc == 0)
		rc = dmar_dmamap_load(tag, map, buf, 512, 0);
	if (rc == 0) {
		uint64_t blocks = 0;
		uint32_t bsize = 0;
		rc = usb_msd_capacity(&e->udev, &blocks, &bsize);
		if (rc == 0 && bsize == 512) {
			dmar_dmamap_sync(tag, map, DMAR_DMASYNC_PREREAD);
			int rrc = usb_msd_rw(&e->udev, false, blocks, 1, map, 512);
			dmar_dmamap_sync(tag, map, DMAR_DMASYNC_POSTREAD);
			uint8_t status = e->udev.csw_status;
			rc = usb_msd_request_sense(&e->udev);
			kprintf("# READ past the end: %d, CSW status %u; sense key %#x ASC %#x "
				"ASCQ %#x\n", rrc, status, e->udev.sense_key, e->udev.asc,
				e->udev.ascq);
			CHECK_EQ(rrc, USB_EPROTO);
			CHECK_EQ(status, 1); /* Command Failed, not a phase error */
			CHECK_EQ(rc, 0);
			CHECK_EQ(e->udev.sense_key, 0x5); /* ILLEGAL REQUEST */
			CHECK_EQ(e->udev.asc, 0x21);      /* LOGICAL BLOCK ADDRESS OUT OF RANGE */
		}
		dmar_dmamap_unload(tag, map);
	}
	dmar_dmamem_free(tag, buf, map);
	return rc;
}

void test_uhci_msd_rw_verify(struct ktest *t)
{
	struct fixture f;
	struct uhci_env e = { 0 };
	if (!uhci_probe(0, &e.c))
		SKIP("no UHCI controller (class 0c:03:00) on this machine");
	if (fixture_up(t, &f, 0) != 0)
		goto out;

	int rc = dmar_busdma_create(&kenv.os, &kenv.cfg, f.sys, &e.bus);
	if (!rc)
		rc = dmar_busdma_device(e.bus, uhci_addr(&e.c), pci_bridge_buses, 0, &e.dev);
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "busdma for the controller: %s", dmar_strerror(rc));
		goto out;
	}
	bool bounce = !kenv.cfg.enable || dmar_config_device_bounces(&kenv.cfg, uhci_addr(&e.c));
	CHECK(dmar_busdma_device_mode(e.dev) ==
	      (bounce ? DMAR_BUSDMA_BOUNCE : DMAR_BUSDMA_TRANSLATE));
	CHECK_EQ(dmar_busdma_device_sid(e.dev), e.c.sid);

	uint64_t t0 = clock_now_ns();
	TRY(uhci_init(&e.c, e.dev));
	e.bound = true;
	rc = usb_attach_msd(&e.c.hcd, &e.udev);
	if (rc == USB_ENODEV) {
		t->skip = "no USB mass-storage disk on the UHCI controller (usb-storage,bus=...)";
		goto out;
	}
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "usb_attach_msd: %d (TD status %#x, USBSTS %#x)",
			   rc, e.c.last_td_status, e.c.last_usbsts);
		goto out;
	}
	e.attached = true;
	ENSURE(e.udev.speed == USB_SPEED_FULL);
	ENSURE(e.udev.address != 0 && e.udev.bulk_in.addr && e.udev.bulk_out.addr);

	uint8_t type = 0xff;
	TRY(usb_msd_inquiry(&e.udev, &type));
	CHECK_EQ(type, 0); /* a direct-access block device */
	uint64_t blocks = 0;
	uint32_t bsize = 0;
	TRY(usb_msd_capacity(&e.udev, &blocks, &bsize));
	ENSURE(bsize == 512 || bsize == 4096);
	ENSURE(blocks > 0);
	kprintf("# uhci %02x:%02x.%x (%s): port %u, usb %04x:%04x at address %u, ep0 %u bytes, "
		"bulk in %#x / out %#x; %llu blocks of %u bytes; up in %llu ms\n",
		e.c.pci->bus, e.c.pci->dev, e.c.pci->fn, bounce ? "bounced" : "translated",
		e.udev.port, e.udev.id_vendor, e.udev.id_product, e.udev.address,
		e.udev.ep0.max_packet, e.udev.bulk_in.addr, e.udev.bulk_out.addr,
		(unsigned long long)blocks, bsize,
		(unsigned long long)((clock_now_ns() - t0) / 1000000));

	TRY(transport_errors(t, &e));

	e.b = (struct blockdev){ .name = "uhci", .tag = e.c.hcd.data_tag, .sector_size = bsize,
				 .sectors = blocks, .max_bytes = e.c.hcd.max_transfer,
				 .io = uhci_io, .drv = &e.udev };
	t0 = clock_now_ns();
	storage_rw_verify(t, &f, &e.b, UHCI_RW_LBA);
	kprintf("# uhci: read/write/verify in %llu ms\n",
		(unsigned long long)((clock_now_ns() - t0) / 1000000));
	expect_no_fault(t, &f);
out:
	uhci_env_down(t, &e);
	fixture_down(t, &f);
}
