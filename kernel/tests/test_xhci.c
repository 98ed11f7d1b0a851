/*
 * The xHCI driver (kernel/drivers/xhci.c) with the USB core's mass storage on QEMU's
 * qemu-xhci and usb-storage, through busdma: the storage read/write/verify test, and a
 * transfer ring unloaded while the controller still points at it.
 *
 * QEMU: -device qemu-xhci,id=xhci -drive if=none,id=xd,file=IMG,format=raw
 *       -device usb-storage,drive=xd,bus=xhci.0
 */
#include "dmar/busdma.h"
#include "clock.h"
#include "storage.h"
#include "tests.h"
#include "usb.h"
#include "util.h"
#include "xhci.h"

#define XHCI_RW_LBA 0x800ull     /* storage_rw_verify's regions start here */
#define XHCI_STALE_LBA 0x6000ull /* the stale-ring test's blocks */
#define XHCI_WRAP_LBA 0x4000ull  /* the ring-wrap reads' blocks */
#define XHCI_SCRATCHPADS 600u    /* asked for when the controller asks for none */
#define XHCI_WRAP_IOS 300u       /* reads: every transfer ring and the event ring wrap */

struct xhci_env {
	struct dmar_busdma *bus;
	struct dmar_busdma_dev *dev;
	struct xhci x;
	bool bound, attached;
	struct usb_device udev;
	struct blockdev b;
};

/* The controller's state is large for a stack frame: one environment at a time. */
static struct xhci_env xhci_env;

static int xhci_io(struct blockdev *b, bool write, uint64_t lba, uint32_t count,
		   struct dmar_dmamap *map)
{
	struct xhci_env *e = b->drv;
	return usb_msd_rw(&e->udev, write, lba, count, map, count * b->sector_size);
}

static struct dmar_pci_addr xhci_addr(const struct xhci *x)
{
	struct dmar_pci_addr a = { 0, x->pci->bus, x->pci->dev, x->pci->fn };
	return a;
}

static const char *speed_name(enum usb_speed s)
{
	return s == USB_SPEED_SUPER ? "super" : s == USB_SPEED_HIGH ? "high"
						: s == USB_SPEED_FULL ? "full" : "low";
}

/* busdma for the controller (translated or bounced as kenv.cfg says), the driver bound,
 * the disk on its first port attached and sized. */
static int xhci_env_up(struct ktest *t, struct fixture *f, struct xhci_env *e,
		       bool scratchpads)
{
	int rc = dmar_busdma_create(&kenv.os, &kenv.cfg, f->sys, &e->bus);
	if (!rc)
		rc = dmar_busdma_device(e->bus, xhci_addr(&e->x), pci_bridge_buses, 0, &e->dev);
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "busdma for the controller: %s", dmar_strerror(rc));
		return rc;
	}
	bool bounce = !kenv.cfg.enable || dmar_config_device_bounces(&kenv.cfg, xhci_addr(&e->x));
	CHECK(dmar_busdma_device_mode(e->dev) ==
	      (bounce ? DMAR_BUSDMA_BOUNCE : DMAR_BUSDMA_TRANSLATE));
	CHECK_EQ(dmar_busdma_device_sid(e->dev), e->x.sid);
	/* QEMU asks for no scratchpad buffers; real controllers ask for up to 1023. The
	 * driver is told to keep 600 anyway (an array of more than one page, 600 buffers in
	 * one map), so that path runs too: QEMU never reads DCBAA[0]. */
	if (scratchpads && e->x.nscratch == 0)
		e->x.nscratch = XHCI_SCRATCHPADS;
	uint64_t t0 = clock_now_ns();
	rc = xhci_init(&e->x, e->dev);
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "xhci_init: %d", rc);
		return rc;
	}
	e->bound = true;
	if (e->x.nscratch) {
		const uint64_t *sp = (const uint64_t *)e->x.sp_array_va;
		bool ok = e->x.dcbaa[0] == dmar_dmamap_segs(e->x.sp_array_map)[0].addr;
		for (unsigned i = 0; i < e->x.nscratch && ok; i++)
			ok = sp[i] && !(sp[i] & (e->x.page_size - 1)) && (i == 0 || sp[i] != sp[i - 1]);
		CHECK(ok);
	}
	rc = usb_attach_msd(&e->x.hcd, &e->udev);
	if (rc == USB_ENODEV) {
		t->skip = "no mass-storage disk on the xHCI controller (usb-storage,bus=xhci.0)";
		return rc;
	}
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "usb_attach_msd: %d (completion code %u)", rc,
			   e->x.last_cc);
		return rc;
	}
	e->attached = true;
	uint8_t type = 0xff;
	uint64_t blocks = 0;
	uint32_t bsize = 0;
	rc = usb_msd_inquiry(&e->udev, &type);
	if (!rc)
		rc = usb_msd_capacity(&e->udev, &blocks, &bsize);
	if (rc || type != 0 || (bsize != 512 && bsize != 4096) || blocks == 0) {
		ktest_fail(t, __FILE__, __LINE__,
			   "INQUIRY / READ CAPACITY: %d, type %u, %llu blocks of %u bytes", rc, type,
			   (unsigned long long)blocks, bsize);
		return rc ? rc : DMAR_EINVAL;
	}
	uint32_t hcs2 = e->x.hcsparams2;
	kprintf("# xhci %02x:%02x.%x (%s), HCIVERSION %#x, %u ports, %u slots, %u-byte "
		"contexts, %u scratchpad buffers (HCSPARAMS2 asks for %u): %04x:%04x on port %u "
		"(USB %u, %s speed, slot address %u), %llu blocks of %u bytes; up in %llu ms\n",
		e->x.pci->bus, e->x.pci->dev, e->x.pci->fn, bounce ? "bounced" : "translated",
		e->x.hciversion, e->x.max_ports, e->x.max_slots, e->x.ctx_size, e->x.nscratch,
		(hcs2 >> 21 & 0x1fu) << 5 | (hcs2 >> 27 & 0x1fu),
		e->udev.id_vendor, e->udev.id_product, e->udev.port,
		e->x.port_major[e->udev.port], speed_name(e->udev.speed), e->udev.address,
		(unsigned long long)blocks, bsize,
		(unsigned long long)((clock_now_ns() - t0) / 1000000));
	e->b = (struct blockdev){ .name = "xhci", .tag = e->x.hcd.data_tag, .sector_size = bsize,
				  .sectors = blocks, .max_bytes = e->x.hcd.max_transfer,
				  .io = xhci_io, .drv = e };
	return 0;
}

static void xhci_env_down(struct ktest *t, struct xhci_env *e)
{
	if (e->attached)
		usb_detach(&e->udev);
	if (e->bound)
		xhci_detach(&e->x);
	if (e->dev)
		CHECK_EQ(dmar_busdma_device_destroy(e->dev), 0);
	if (e->bus)
		CHECK_EQ(dmar_busdma_destroy(e->bus), 0);
}

/* Many small READs, one TRB or a chain of several each, so that the transfer rings
 * wrap through their Link TRBs (TDs straddling them) and the event ring wraps: every
 * read returns the blocks written before. A child tag with 4 KiB segments makes the
 * chains. */
static void ring_wrap_reads(struct ktest *t, struct fixture *f, struct xhci_env *e)
{
	struct dmar_dma_tag *small = NULL;
	struct dmar_dmamap *map = NULL;
	const uint32_t ss = e->b.sector_size, seed = 0x3a9;
	const uint64_t len = 3 * PAGE, blocks = len / ss;
	uint64_t wr = buffer(f, 4, PAGE, 0), rd = buffer(f, 4, PAGE, 0);
	struct dmar_dma_tag_params p;
	ENSURE(wr && rd);
	dmar_dma_tag_params_default(&p);
	p.maxsegsz = PAGE;
	p.nsegments = 8;
	p.maxsize = 4 * PAGE;
	TRY(dmar_dma_tag_create(NULL, e->b.tag, &p, &small));
	TRY(dmar_dmamap_create(small, 0, &map));
	storage_fill(va(wr), len, ss, seed, XHCI_WRAP_LBA);
	TRY(dmar_dmamap_load(small, map, va(wr), len, 0));
	dmar_dmamap_sync(small, map, DMAR_DMASYNC_PREWRITE);
	int rc = usb_msd_rw(&e->udev, true, XHCI_WRAP_LBA, (uint32_t)blocks, map, (uint32_t)len);
	dmar_dmamap_sync(small, map, DMAR_DMASYNC_POSTWRITE);
	TRY(dmar_dmamap_unload(small, map));
	TRY(rc);
	uint64_t t0 = clock_now_ns();
	unsigned trbs = 0;
	for (unsigned i = 0; i < XHCI_WRAP_IOS; i++) {
		/* Odd reads: one block in one TRB; even ones: a chain of 3 or 4 TRBs from
		 * a mid-page start. */
		uint64_t off = i % 2 ? 0 : (i % 7 + 1) * ss;
		uint64_t n = i % 2 ? 1 : blocks - (i % 7 + 1);
		uint64_t lba = XHCI_WRAP_LBA + (i % 2 ? i % blocks : 0);
		dmar_memset(va(rd), 0xa5, 4 * PAGE);
		TRY(dmar_dmamap_load(small, map, va(rd) + off, n * ss, 0));
		trbs += dmar_dmamap_nsegs(map);
		dmar_dmamap_sync(small, map, DMAR_DMASYNC_PREREAD);
		rc = usb_msd_rw(&e->udev, false, lba, (uint32_t)n, map, (uint32_t)(n * ss));
		dmar_dmamap_sync(small, map, DMAR_DMASYNC_POSTREAD);
		TRY(dmar_dmamap_unload(small, map));
		TRY(rc);
		if (!storage_matches(va(rd) + off, n * ss, ss, seed, lba)) {
			ktest_fail(t, __FILE__, __LINE__, "read %u (%llu blocks at %llu) differs", i,
				   (unsigned long long)n, (unsigned long long)lba);
			goto out;
		}
	}
	kprintf("# %u reads (%u data TRBs; the bulk rings and the event ring wrapped) "
		"verified in %llu ms\n", XHCI_WRAP_IOS, trbs,
		(unsigned long long)((clock_now_ns() - t0) / 1000000));
	storage_disk_check(&e->b, XHCI_WRAP_LBA, blocks, seed);
out:
	if (map)
		CHECK_EQ(dmar_dmamap_destroy(small, map), 0);
	if (small)
		CHECK_EQ(dmar_dma_tag_destroy(small), 0);
}

void test_xhci_msd_rw_verify(struct ktest *t)
{
	struct fixture f;
	struct xhci_env *e = &xhci_env;
	*e = (struct xhci_env){ 0 };
	if (!xhci_probe(0, &e->x))
		SKIP("no xHCI controller (class 0c:03:30) on this machine");
	if (fixture_up(t, &f, 0) != 0)
		goto out;
	if (xhci_env_up(t, &f, e, true) == 0) {
		storage_rw_verify(t, &f, &e->b, XHCI_RW_LBA);
		ring_wrap_reads(t, &f, e);
		CHECK_EQ(e->x.timeouts, 0);
		CHECK_EQ(e->x.ring_recoveries, 0);
	}
	expect_no_fault(t, &f);
out:
	xhci_env_down(t, e);
	fixture_down(t, &f);
}

/* One READ or WRITE of `len` bytes at `buf` through a map loaded for it. */
static int xhci_xfer(struct xhci_env *e, struct dmar_dmamap *map, bool write, uint64_t lba,
		     uint8_t *buf, uint64_t len)
{
	int rc = dmar_dmamap_load(e->b.tag, map, buf, len, 0);
	if (rc)
		return rc;
	dmar_dmamap_sync(e->b.tag, map, write ? DMAR_DMASYNC_PREWRITE : DMAR_DMASYNC_PREREAD);
	rc = e->b.io(&e->b, write, lba, (uint32_t)(len / e->b.sector_size), map);
	dmar_dmamap_sync(e->b.tag, map, write ? DMAR_DMASYNC_POSTWRITE : DMAR_DMASYNC_POSTREAD);
	int urc = dmar_dmamap_unload(e->b.tag, map);
	return rc ? rc : urc;
}

/* A CBW (USB MSC BOT 5.1) asking for READ(10) of `count` blocks at `lba`. */
static void build_read_cbw(uint8_t *p, uint32_t tag, uint32_t lba, uint16_t count,
			   uint32_t bytes)
{
	const uint32_t sig = 0x43425355u;
	dmar_memset(p, 0, 31);
	dmar_memcpy(p, &sig, 4);
	dmar_memcpy(p + 4, &tag, 4);
	dmar_memcpy(p + 8, &bytes, 4);
	p[12] = 0x80; /* data IN */
	p[14] = 10;   /* CDB length */
	p[15] = 0x28; /* READ(10) */
	p[17] = (uint8_t)(lba >> 24);
	p[18] = (uint8_t)(lba >> 16);
	p[19] = (uint8_t)(lba >> 8);
	p[20] = (uint8_t)lba;
	p[22] = (uint8_t)(count >> 8);
	p[23] = (uint8_t)count;
}

/* The driver bug: the bulk OUT endpoint's transfer ring is unloaded while the
 * controller still points at it, and a CBW is queued on it at once (its buffer was
 * loaded before, so nothing takes the freed IOVA in between). The doorbell makes the
 * controller fetch the TRB from the stale IOVA: the read faults (recorded with the
 * controller's source id, the ring's page, a read), no completion comes, the driver
 * stops the endpoint and moves it to a fresh ring (Set TR Dequeue Pointer), and the
 * next READ returns the data written before. */
void test_xhci_stale_ring_faults(struct ktest *t)
{
	struct fixture f;
	struct xhci_env *e = &xhci_env;
	struct dmar_dmamap *map = NULL, *cbw_map = NULL;
	uint8_t *cbw = NULL;
	*e = (struct xhci_env){ 0 };
	if (!xhci_probe(0, &e->x))
		SKIP("no xHCI controller (class 0c:03:30) on this machine");
	if (!kenv.cfg.enable)
		SKIP("hw.dmar.enable=0: DMA is not translated, a stale address is not stopped");
	if (dmar_config_device_bounces(&kenv.cfg, xhci_addr(&e->x)))
		SKIP("the bounce tunable names the controller: its DMA is not translated");
	if (fixture_up(t, &f, 0) != 0)
		goto out;
	if (xhci_env_up(t, &f, e, false) != 0)
		goto out;
	const uint64_t len = 2 * PAGE;
	const uint32_t ss = e->b.sector_size, seed = 0x57a1e;
	uint64_t wr = buffer(&f, 2, PAGE, 0), fresh = buffer(&f, 2, PAGE, 0);
	ENSURE(wr && fresh);
	TRY(dmar_dmamap_create(e->b.tag, 0, &map));

	storage_fill(va(wr), len, ss, seed, XHCI_STALE_LBA);
	TRY(xhci_xfer(e, map, true, XHCI_STALE_LBA, va(wr), len));
	expect_no_fault(t, &f);

	struct dmar_dma_tag *ctl = e->x.hcd.ctl_tag;
	TRY(dmar_dmamem_alloc(ctl, (void **)&cbw, 0, &cbw_map));
	build_read_cbw(cbw, 0x5a1e, (uint32_t)XHCI_STALE_LBA, (uint16_t)(len / ss), (uint32_t)len);
	TRY(dmar_dmamap_load(ctl, cbw_map, cbw, 31, 0));
	dmar_dmamap_sync(ctl, cbw_map, DMAR_DMASYNC_PREWRITE);

	uint64_t ring = 0;
	TRY(xhci_test_unload_ring(&e->x, &e->udev.bulk_out, &ring));
	kprintf("# bulk OUT transfer ring at IOVA %#llx unloaded; the controller still points "
		"at it\n", (unsigned long long)ring);
	unsigned recoveries = e->x.ring_recoveries, timeouts = e->x.timeouts;
	uint64_t t0 = clock_now_ns();
	uint32_t got = 0;
	int rc = e->x.hcd.ops->bulk(&e->x.hcd, &e->udev, &e->udev.bulk_out, cbw_map, 31, &got);
	kprintf("# CBW queued on the stale ring: %d after %llu ms (timeouts %u, ring "
		"recoveries %u, last completion code %u)\n", rc,
		(unsigned long long)((clock_now_ns() - t0) / 1000000), e->x.timeouts,
		e->x.ring_recoveries, e->x.last_cc);
	dmar_dmamap_sync(ctl, cbw_map, DMAR_DMASYNC_POSTWRITE);
	TRY(dmar_dmamap_unload(ctl, cbw_map));
	CHECK_EQ(rc, USB_ETIMEOUT);
	CHECK_EQ(got, 0);
	CHECK_EQ(e->x.timeouts, timeouts + 1);
	CHECK_EQ(e->x.ring_recoveries, recoveries + 1);
	/* The record's walk may show the page mapped again: busdma hands a freed IOVA to
	 * the next load of its size, here the fresh ring. */
	expect_fault(t, &f, e->x.sid, ring, true);

	/* Recovered: the next READ (its CBW on the fresh ring) moves the data written
	 * before; the device never saw the lost CBW. */
	TRY(xhci_xfer(e, map, false, XHCI_STALE_LBA, va(fresh), len));
	CHECK(storage_matches(va(fresh), len, ss, seed, XHCI_STALE_LBA));
	storage_disk_check(&e->b, XHCI_STALE_LBA, len / ss, seed);
	expect_no_fault(t, &f);
out:
	if (cbw_map) {
		(void)dmar_dmamap_unload(e->x.hcd.ctl_tag, cbw_map);
		CHECK_EQ(dmar_dmamem_free(e->x.hcd.ctl_tag, cbw, cbw_map), 0);
	}
	if (map)
		CHECK_EQ(dmar_dmamap_destroy(e->b.tag, map), 0);
	xhci_env_down(t, e);
	fixture_down(t, &f);
}
