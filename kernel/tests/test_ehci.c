/*
 * The EHCI driver (kernel/drivers/ehci.c) under the USB core (usb.c) on QEMU's
 * ich9-usb-ehci1 with a usb-storage disk, through busdma: the storage read/write/verify
 * test. Every queue head, qTD, setup packet, descriptor, CBW/CSW and data byte the
 * controller touches is a busdma address. The controller is taken from the firmware and
 * halted before remapping is turned on: the firmware leaves its own schedule running, and
 * the first fetch of it once remapping is on would fault (QEMU then resets the controller).
 *
 * QEMU: -device ich9-usb-ehci1,id=ehci,addr=0xc -drive if=none,id=ed,file=IMG,format=raw
 *       -device usb-storage,drive=ed,bus=ehci.0
 */
#include "dmar/busdma.h"
#include "clock.h"
#include "ehci.h"
#include "storage.h"
#include "tests.h"
#include "usb.h"
#include "util.h"

#define EHCI_RW_LBA 0x800ull /* storage_rw_verify's regions start here */

struct ehci_env {
	struct dmar_busdma *bus;
	struct dmar_busdma_dev *dev;
	struct ehci c;
	bool bound, attached;
	struct usb_device udev;
	struct blockdev b;
};

static struct ehci_env ehci_env; /* large for a test's stack */

static const char *usb_err(int rc)
{
	switch (rc) {
	case USB_ESTALL:
		return "stall";
	case USB_ETIMEOUT:
		return "timeout";
	case USB_EPROTO:
		return "protocol error";
	case USB_ENODEV:
		return "no device";
	default:
		return dmar_strerror(rc);
	}
}

static int ehci_io(struct blockdev *b, bool write, uint64_t lba, uint32_t count,
		   struct dmar_dmamap *map)
{
	return usb_msd_rw(b->drv, write, lba, count, map, count * b->sector_size);
}

void test_ehci_msd_rw_verify(struct ktest *t)
{
	struct fixture f;
	struct ehci_env *e = &ehci_env;
	dmar_memset(e, 0, sizeof(*e));
	/* Before remapping is on: the firmware's schedule must not be fetched any more. */
	if (!ehci_find(0))
		SKIP("no EHCI controller (class 0c:03:20) on this machine");
	REQUIRE(ehci_probe(0, &e->c));
	const struct pci_dev *d = e->c.pci;
	if (fixture_up(t, &f, 0) != 0)
		goto out;
	struct dmar_pci_addr addr = { 0, d->bus, d->dev, d->fn };
	int rc = dmar_busdma_create(&kenv.os, &kenv.cfg, f.sys, &e->bus);
	if (!rc)
		rc = dmar_busdma_device(e->bus, addr, pci_bridge_buses, 0, &e->dev);
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "busdma for the controller: %s", dmar_strerror(rc));
		goto out;
	}
	bool bounce = !kenv.cfg.enable || dmar_config_device_bounces(&kenv.cfg, addr);
	CHECK(dmar_busdma_device_mode(e->dev) ==
	      (bounce ? DMAR_BUSDMA_BOUNCE : DMAR_BUSDMA_TRANSLATE));
	CHECK_EQ(dmar_busdma_device_sid(e->dev), pci_sid(d));

	uint64_t t0 = clock_now_ns();
	rc = ehci_attach(&e->c, e->dev);
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "ehci_attach: %s", dmar_strerror(rc));
		goto out;
	}
	e->bound = true;
	kprintf("# ehci %02x:%02x.%x (%s): version %#x, %u ports, %s addressing%s\n", d->bus,
		d->dev, d->fn, bounce ? "bounced" : "translated", e->c.hciversion, e->c.hcd.nports,
		e->c.ac64 ? "64-bit" : "32-bit", e->c.bios_owned ? ", taken from the firmware" : "");
	rc = usb_attach_msd(&e->c.hcd, &e->udev);
	if (rc == USB_ENODEV) {
		t->skip = "no USB disk on the EHCI controller (usb-storage,bus=ehci.0)";
		goto out;
	}
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "usb_attach_msd: %d (%s), last token %#x, "
			   "USBSTS %#x", rc, usb_err(rc), e->c.last_token, e->c.last_usbsts);
		goto out;
	}
	e->attached = true;
	kprintf("# ehci: port %u, address %u, %04x:%04x, ep0 %u bytes, bulk in %#x/%u out "
		"%#x/%u\n", e->udev.port, e->udev.address, e->udev.id_vendor, e->udev.id_product,
		e->udev.ep0.max_packet, e->udev.bulk_in.addr, e->udev.bulk_in.max_packet,
		e->udev.bulk_out.addr, e->udev.bulk_out.max_packet);

	uint8_t type = 0xff;
	rc = usb_msd_inquiry(&e->udev, &type);
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "INQUIRY: %d (%s)", rc, usb_err(rc));
		goto out;
	}
	CHECK_EQ(type, 0); /* a direct-access block device */
	uint64_t blocks = 0;
	uint32_t bsize = 0;
	rc = usb_msd_capacity(&e->udev, &blocks, &bsize);
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "READ CAPACITY: %d (%s)", rc, usb_err(rc));
		goto out;
	}
	kprintf("# ehci: disk of %llu blocks of %u bytes, largest transfer %llu bytes; up in "
		"%llu ms\n", (unsigned long long)blocks, bsize,
		(unsigned long long)e->c.hcd.max_transfer,
		(unsigned long long)((clock_now_ns() - t0) / 1000000));
	ENSURE(bsize == 512 || bsize == 4096);

	e->b = (struct blockdev){ .name = "ehci", .tag = e->c.hcd.data_tag, .sector_size = bsize,
				  .sectors = blocks, .max_bytes = e->c.hcd.max_transfer,
				  .io = ehci_io, .drv = &e->udev };
	t0 = clock_now_ns();
	storage_rw_verify(t, &f, &e->b, EHCI_RW_LBA);
	struct dmar_busdma_stats st;
	dmar_busdma_get_stats(e->bus, &st);
	kprintf("# ehci: read/write/verify in %llu ms; bounced loads %llu, bounce copies %llu "
		"bytes\n", (unsigned long long)((clock_now_ns() - t0) / 1000000),
		(unsigned long long)st.bounced_loads, (unsigned long long)st.bounce_copies);
	expect_no_fault(t, &f);
out:
	if (e->attached)
		usb_detach(&e->udev);
	if (e->bound)
		ehci_detach(&e->c);
	if (e->dev)
		CHECK_EQ(dmar_busdma_device_destroy(e->dev), 0);
	if (e->bus)
		CHECK_EQ(dmar_busdma_destroy(e->bus), 0);
	fixture_down(t, &f);
}
