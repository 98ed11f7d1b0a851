/*
 * The busdma layer end to end: an edu driver written the FreeBSD way (tag, map, load,
 * sync, program the segments, sync, unload) against QEMU's unit, once translated and
 * once bounced (hw.busdma.pciD:B:S:F.bounce=1).
 */
#include "dmar/busdma.h"
#include "fixture.h"
#include "pmem.h"
#include "tests.h"
#include "util.h"

struct busdma_env {
	struct dmar_busdma *bus;
	struct dmar_busdma_dev *dev;
	struct dmar_dma_tag *tag;
	struct dmar_dmamap *map[2];
};

static void print_segments(const char *what, const struct dmar_dmamap *map)
{
	const struct dmar_dma_segment *s = dmar_dmamap_segs(map);
	for (unsigned i = 0; i < dmar_dmamap_nsegs(map); i++)
		kprintf("# %s segment %u: %#llx + %llu%s\n", what, i, (unsigned long long)s[i].addr,
			(unsigned long long)s[i].len, dmar_dmamap_is_bounced(map) ? " (bounced)" : "");
}

static int busdma_setup(struct fixture *f, struct busdma_env *b, const struct dmar_config *cfg,
			struct edu *e, const struct dmar_dma_tag_params *p)
{
	struct dmar_pci_addr addr = { 0, e->pci->bus, e->pci->dev, e->pci->fn };
	int rc = dmar_busdma_create(&kenv.os, cfg, f->sys, &b->bus);
	if (!rc)
		rc = dmar_busdma_device(b->bus, addr, pci_bridge_buses, 0, &b->dev);
	if (!rc)
		rc = dmar_dma_tag_create(b->dev, 0, p, &b->tag);
	for (unsigned i = 0; i < 2 && !rc; i++)
		rc = dmar_dmamap_create(b->tag, 0, &b->map[i]);
	return rc;
}

static void busdma_teardown(struct ktest *t, struct busdma_env *b)
{
	for (unsigned i = 0; i < 2; i++)
		if (b->map[i]) {
			CHECK_EQ(dmar_dmamap_unload(b->tag, b->map[i]), 0);
			CHECK_EQ(dmar_dmamap_destroy(b->tag, b->map[i]), 0);
		}
	if (b->tag)
		CHECK_EQ(dmar_dma_tag_destroy(b->tag), 0);
	if (b->dev)
		CHECK_EQ(dmar_busdma_device_destroy(b->dev), 0);
	if (b->bus)
		CHECK_EQ(dmar_busdma_destroy(b->bus), 0);
}

/* Translated, for a device that can only address 28 bits (the edu's default dma_mask,
 * which silently clamps anything higher): buffers placed above 256 MiB when the machine
 * has RAM there come out as one segment each below the tag's lowaddr 0x0fffffff, keep
 * their in-page offset, move the right bytes, and after unload the device can no longer
 * reach them. */
void test_busdma_edu_28bit_mask(struct ktest *t)
{
	struct fixture f;
	struct busdma_env b = { 0 };
	struct edu *e = &kenv.edu[0];
	if (!kenv.cfg.enable)
		SKIP("hw.dmar.enable=0: busdma translates for no device (it bounces, as "
		     "busdma_bounce_tunable and the storage tests check)");
	if (fixture_up(t, &f, 1) != 0)
		goto out;
	uint64_t src = buffer_in(&f, 2, PAGE, KENV_EDU_LIMIT, 0);
	uint64_t dst = buffer_in(&f, 2, PAGE, KENV_EDU_LIMIT, 0xee);
	if (!src || !dst) {
		kprintf("# no RAM above 256 MiB: buffers below it\n");
		src = buffer(&f, 2, PAGE, 0);
		dst = buffer(&f, 2, PAGE, 0xee);
	}
	ENSURE(src && dst);
	kprintf("# buffers at 0x%llx and 0x%llx\n", (unsigned long long)src,
		(unsigned long long)dst);
	struct dmar_dma_tag_params p;
	dmar_dma_tag_params_default(&p);
	p.lowaddr = 0x0fffffff;
	p.maxsize = EDU_DMA_MAX;
	p.maxsegsz = EDU_DMA_MAX;
	p.nsegments = 1;
	TRY(busdma_setup(&f, &b, &kenv.cfg, e, &p));
	CHECK(dmar_busdma_device_mode(b.dev) == DMAR_BUSDMA_TRANSLATE);
	CHECK_EQ(dmar_busdma_device_sid(b.dev), e->sid);

	fill_pattern(src + 0x800, XFER, 70);
	TRY(dmar_dmamap_load(b.tag, b.map[0], va(src + 0x800), XFER, DMAR_DMA_NOWRITE));
	/* Strict even where the configuration defers (hw.dmar.strict=0): its unload is
	 * checked below. */
	TRY(dmar_dmamap_load(b.tag, b.map[1], va(dst + 0x900), XFER, DMAR_DMA_STRICT));
	print_segments("src", b.map[0]);
	print_segments("dst", b.map[1]);
	ENSURE(dmar_dmamap_nsegs(b.map[0]) == 1 && dmar_dmamap_nsegs(b.map[1]) == 1);
	struct dmar_dma_segment s = dmar_dmamap_segs(b.map[0])[0];
	struct dmar_dma_segment d = dmar_dmamap_segs(b.map[1])[0];
	CHECK(s.addr + s.len - 1 <= p.lowaddr && d.addr + d.len - 1 <= p.lowaddr);
	CHECK_EQ(s.addr & (PAGE - 1), 0x800);
	CHECK_EQ(d.addr & (PAGE - 1), 0x900);
	CHECK_EQ(s.len, XFER);
	CHECK(!dmar_dmamap_is_bounced(b.map[0]));

	/* The read-only load refuses device writes (tried before any read of it: QEMU
	 * records a permission fault only on a table walk, not on an IOTLB hit). */
	TRY(edu_dma_from_device(e, s.addr, 0, 64));
	expect_fault(t, &f, e->sid, s.addr, false);
	fill_pattern(dst, 64, 70); /* what src + 0x800 still holds */
	CHECK(dmar_memcmp(va(src + 0x800), va(dst), 64) == 0);
	dmar_memset(va(dst), 0xee, 64);

	TRY(dmar_dmamap_sync(b.tag, b.map[0], DMAR_DMASYNC_PREWRITE));
	TRY(dmar_dmamap_sync(b.tag, b.map[1], DMAR_DMASYNC_PREREAD));
	TRY(edu_dma_map(e, b.map[0], 0, true));
	TRY(edu_dma_map(e, b.map[1], 0, false));
	TRY(dmar_dmamap_sync(b.tag, b.map[0], DMAR_DMASYNC_POSTWRITE));
	TRY(dmar_dmamap_sync(b.tag, b.map[1], DMAR_DMASYNC_POSTREAD));
	CHECK(dmar_memcmp(va(dst + 0x900), va(src + 0x800), XFER) == 0);
	CHECK(all_bytes(dst, 0x900, 0xee));
	expect_no_fault(t, &f);

	/* Unloaded: gone for the device. */
	TRY(dmar_dmamap_unload(b.tag, b.map[1]));
	dmar_memset(va(dst), 0xee, 2 * PAGE);
	TRY(edu_dma_from_device(e, d.addr, 0, XFER));
	CHECK(all_bytes(dst, 2 * PAGE, 0xee));
	expect_fault(t, &f, e->sid, d.addr, false);
out:
	busdma_teardown(t, &b);
	fixture_down(t, &f);
}

/* Bounced because the command line says so (-append hw.busdma.pciD:B:S:F.bounce=1 for an
 * edu): the device sits in a pass-through domain (an identity table without ECAP.PT)
 * and sees bounce pages, which also stay below its 28-bit lowaddr; the tag wants
 * page-aligned segments and the buffers are not; the data moves only at sync time. */
void test_busdma_bounce_tunable(struct ktest *t)
{
	struct fixture f;
	struct busdma_env b = { 0 };
	struct edu *e = NULL;
	for (unsigned i = 0; i < kenv.nedu && !e; i++) {
		struct dmar_pci_addr a = { 0, kenv.edu[i].pci->bus, kenv.edu[i].pci->dev,
					   kenv.edu[i].pci->fn };
		if (dmar_config_device_bounces(&kenv.cfg, a))
			e = &kenv.edu[i];
	}
	if (!e)
		SKIP("no hw.busdma.pciD:B:S:F.bounce=1 names an edu on this command line");
	kprintf("# bouncing for %02x:%02x.%x as the command line asks\n", e->pci->bus,
		e->pci->dev, e->pci->fn);
	if (fixture_up(t, &f, 1) != 0)
		goto out;
	struct dmar_config cfg = kenv.cfg;
	uint64_t src = buffer(&f, 1, PAGE, 0), dst = buffer(&f, 1, PAGE, 0xee);
	ENSURE(src && dst);
	struct dmar_dma_tag_params p;
	dmar_dma_tag_params_default(&p);
	p.alignment = PAGE;
	p.lowaddr = 0x0fffffff;
	p.maxsize = EDU_DMA_MAX;
	p.maxsegsz = PAGE; /* a segment split must stay aligned: at least the alignment */
	p.nsegments = 4;
	TRY(busdma_setup(&f, &b, &cfg, e, &p));
	CHECK(dmar_busdma_device_mode(b.dev) == DMAR_BUSDMA_BOUNCE);
	struct dmar_domain *dom = dmar_busdma_device_domain(b.dev);
	ENSURE(dom);
	struct dmar_domain_info info;
	dmar_domain_get_info(dom, &info);
	CHECK(info.kind == DMAR_DOMAIN_PASSTHROUGH);

	uint32_t len = 2000;
	fill_pattern(src + 0x10, len, 80);
	TRY(dmar_dmamap_load(b.tag, b.map[0], va(src + 0x10), len, 0));
	TRY(dmar_dmamap_load(b.tag, b.map[1], va(dst + 0x20), len, 0));
	print_segments("src", b.map[0]);
	print_segments("dst", b.map[1]);
	CHECK(dmar_dmamap_is_bounced(b.map[0]) && dmar_dmamap_is_bounced(b.map[1]));
	const struct dmar_dma_segment *ds = dmar_dmamap_segs(b.map[1]);
	for (unsigned i = 0; i < dmar_dmamap_nsegs(b.map[1]); i++) {
		CHECK_EQ(ds[i].addr & (PAGE - 1), 0);
		CHECK(ds[i].addr + ds[i].len - 1 <= p.lowaddr);
	}

	TRY(dmar_dmamap_sync(b.tag, b.map[0], DMAR_DMASYNC_PREWRITE));
	TRY(dmar_dmamap_sync(b.tag, b.map[1], DMAR_DMASYNC_PREREAD));
	TRY(edu_dma_map(e, b.map[0], 0, true));
	TRY(edu_dma_map(e, b.map[1], 0, false));
	CHECK(all_bytes(dst, PAGE, 0xee)); /* the device wrote the bounce pages only */
	TRY(dmar_dmamap_sync(b.tag, b.map[0], DMAR_DMASYNC_POSTWRITE));
	TRY(dmar_dmamap_sync(b.tag, b.map[1], DMAR_DMASYNC_POSTREAD));
	CHECK(dmar_memcmp(va(dst + 0x20), va(src + 0x10), len) == 0);
	CHECK(all_bytes(dst, 0x20, 0xee));
	CHECK(all_bytes(dst + 0x20 + len, PAGE - 0x20 - len, 0xee));
	struct dmar_busdma_stats st;
	dmar_busdma_get_stats(b.bus, &st);
	CHECK(st.bounced_loads >= 2);
	expect_no_fault(t, &f);
out:
	busdma_teardown(t, &b);
	fixture_down(t, &f);
}
