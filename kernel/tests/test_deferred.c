/*
 * Deferred invalidation against QEMU's unit (which caches translations like hardware):
 * an edu device whose busdma unloads defer their IOTLB invalidation. The window closes
 * at the flush, a recycled IOVA never leads to an old buffer, and an IOVA space that
 * runs out recovers by flushing. Each test turns deferral on for its own device
 * (dmar_busdma_device_set_strict), so it runs in every configuration.
 */
#include "dmar/busdma.h"
#include "fixture.h"
#include "tests.h"
#include "util.h"

struct deferred_env {
	struct dmar_busdma *bus;
	struct dmar_busdma_dev *dev;
	struct dmar_dma_tag *tag;
	struct dmar_dmamap *map[4];
};

/* busdma for edu 0 with deferred unloads; a tag of `pages` IOVA pages at the most (the
 * tag's lowaddr bounds the space). */
static int deferred_up(struct fixture *f, struct deferred_env *d, uint64_t lowaddr)
{
	struct edu *e = &kenv.edu[0];
	struct dmar_pci_addr a = { 0, e->pci->bus, e->pci->dev, e->pci->fn };
	struct dmar_config cfg = kenv.cfg;
	cfg.guard_pages = 0;
	int rc = dmar_busdma_create(&kenv.os, &cfg, f->sys, &d->bus);
	if (!rc)
		rc = dmar_busdma_device(d->bus, a, pci_bridge_buses, 0, &d->dev);
	if (rc)
		return rc;
	dmar_busdma_device_set_strict(d->dev, false);
	struct dmar_dma_tag_params p;
	dmar_dma_tag_params_default(&p);
	p.lowaddr = lowaddr;
	p.maxsize = PAGE;
	p.maxsegsz = PAGE;
	p.alignment = PAGE;
	rc = dmar_dma_tag_create(d->dev, 0, &p, &d->tag);
	for (unsigned i = 0; i < 4 && !rc; i++)
		rc = dmar_dmamap_create(d->tag, 0, &d->map[i]);
	return rc;
}

static void deferred_down(struct ktest *t, struct deferred_env *d)
{
	for (unsigned i = 0; i < 4; i++)
		if (d->map[i]) {
			CHECK_EQ(dmar_dmamap_unload(d->tag, d->map[i]), 0);
			CHECK_EQ(dmar_dmamap_destroy(d->tag, d->map[i]), 0);
		}
	if (d->tag)
		CHECK_EQ(dmar_dma_tag_destroy(d->tag), 0);
	if (d->dev)
		CHECK_EQ(dmar_busdma_device_destroy(d->dev), 0);
	if (d->bus)
		CHECK_EQ(dmar_busdma_destroy(d->bus), 0);
}

static bool translated(struct ktest *t, struct deferred_env *d)
{
	if (dmar_busdma_device_mode(d->dev) == DMAR_BUSDMA_TRANSLATE)
		return true;
	t->skip = "the edu is not translated (hw.dmar.enable=0 or its bounce tunable)";
	return false;
}

/* The device reads a buffer through a deferred device's IOVA (so QEMU caches the
 * translation), the map is unloaded: no invalidation yet. After dmar_busdma_flush, a
 * DMA to the old IOVA faults and leaves the buffer alone. */
void test_deferred_window_closes(struct ktest *t)
{
	struct fixture f;
	struct deferred_env d = { 0 };
	struct edu *e = &kenv.edu[0];
	if (fixture_up(t, &f, 1) != 0)
		goto out;
	uint64_t buf = buffer(&f, 1, PAGE, 0x5a);
	ENSURE(buf);
	TRY(deferred_up(&f, &d, 0x0fffffff));
	if (!translated(t, &d))
		goto out;
	TRY(dmar_dmamap_load(d.tag, d.map[0], va(buf), PAGE, 0));
	uint64_t iova = dmar_dmamap_segs(d.map[0])[0].addr;
	struct dmar_unit_stats s0, s1, s2;
	TRY(edu_dma_to_device(e, iova, 0, 64)); /* into QEMU's IOTLB */
	dmar_unit_get_stats(f.unit, &s0);
	TRY(dmar_dmamap_unload(d.tag, d.map[0]));
	dmar_unit_get_stats(f.unit, &s1);
	CHECK_EQ(s1.iotlb_page + s1.iotlb_domain, s0.iotlb_page + s0.iotlb_domain);
	/* (a one-page load of this CPU's window: the window, not the domain, keeps the
	 * deferred unload; the flush invalidates it) */
	TRY(dmar_busdma_flush(d.bus));
	dmar_unit_get_stats(f.unit, &s2);
	CHECK_EQ(s2.iotlb_page + s2.iotlb_domain, s1.iotlb_page + s1.iotlb_domain + 1);
	dmar_memset(va(buf), 0x5a, PAGE);
	TRY(edu_dma_from_device(e, iova, 0, 64));
	CHECK(all_bytes(buf, PAGE, 0x5a));
	expect_fault(t, &f, e->sid, iova, false);
out:
	deferred_down(t, &d);
	fixture_down(t, &f);
}

/* An IOVA space of three pages: loads recycle IOVAs through flushes. Each buffer holds
 * its own byte in its first 256 bytes and zeroes after; the device reads those 256
 * bytes through the current map and writes them back 256 bytes further. The copy must
 * land in the current buffer, and no earlier buffer may change: a recycled IOVA never
 * leads to an old page (through QEMU's cached translations). */
void test_deferred_no_stale_reuse(struct ktest *t)
{
	struct fixture f;
	struct deferred_env d = { 0 };
	struct edu *e = &kenv.edu[0];
	if (fixture_up(t, &f, 1) != 0)
		goto out;
	uint64_t bufs[6];
	for (unsigned i = 0; i < 6; i++) {
		bufs[i] = buffer(&f, 1, PAGE, 0);
		ENSURE(bufs[i]);
		dmar_memset(va(bufs[i]), 0x40 + (int)i, 256);
	}
	TRY(deferred_up(&f, &d, 4 * PAGE - 1)); /* IOVA pages 1..3 */
	if (!translated(t, &d))
		goto out;
	uint64_t seen[6];
	for (unsigned i = 0; i < 6; i++) {
		TRY(dmar_dmamap_load(d.tag, d.map[0], va(bufs[i]), PAGE, 0));
		seen[i] = dmar_dmamap_segs(d.map[0])[0].addr;
		TRY(edu_dma_to_device(e, seen[i], 0, 256));
		TRY(edu_dma_from_device(e, seen[i] + 256, 0, 256));
		CHECK(all_bytes(bufs[i] + 256, 256, (uint8_t)(0x40 + i)));
		TRY(dmar_dmamap_unload(d.tag, d.map[0]));
	}
	/* Every buffer was written exactly where its own load said, once. */
	for (unsigned i = 0; i < 6; i++) {
		CHECK(all_bytes(bufs[i], 512, (uint8_t)(0x40 + i)));
		CHECK(all_bytes(bufs[i] + 512, PAGE - 512, 0));
	}
	unsigned reused = 0;
	for (unsigned i = 3; i < 6; i++)
		for (unsigned j = 0; j < 3; j++)
			reused += seen[i] == seen[j];
	kprintf("# six loads in a three-page IOVA space: %u recycled IOVAs\n", reused);
	CHECK(reused >= 1);
	expect_no_fault(t, &f);
out:
	deferred_down(t, &d);
	fixture_down(t, &f);
}

/* More loads than the IOVA space holds with unloads deferred: a load that finds no room
 * flushes and succeeds. */
void test_deferred_pressure_flushes(struct ktest *t)
{
	struct fixture f;
	struct deferred_env d = { 0 };
	if (fixture_up(t, &f, 1) != 0)
		goto out;
	uint64_t buf = buffer(&f, 1, PAGE, 0);
	ENSURE(buf);
	TRY(deferred_up(&f, &d, 4 * PAGE - 1));
	if (!translated(t, &d))
		goto out;
	struct dmar_unit_stats s0, s1;
	dmar_unit_get_stats(f.unit, &s0);
	for (unsigned i = 0; i < 30; i++) {
		TRY(dmar_dmamap_load(d.tag, d.map[i % 2], va(buf), PAGE, 0));
		TRY(dmar_dmamap_unload(d.tag, d.map[i % 2]));
	}
	dmar_unit_get_stats(f.unit, &s1);
	uint64_t flushes = (s1.iotlb_page + s1.iotlb_domain) - (s0.iotlb_page + s0.iotlb_domain);
	/* In caching mode every map is invalidated too (not-present entries are cached). */
	if (unit_has(t, KENV_CM, f.info.caching_mode))
		flushes -= 30;
	kprintf("# 30 loads in a three-page IOVA space: %llu flushes\n",
		(unsigned long long)flushes);
	CHECK(flushes >= 9 && flushes <= 10);
	expect_no_fault(t, &f);
out:
	deferred_down(t, &d);
	fixture_down(t, &f);
}
