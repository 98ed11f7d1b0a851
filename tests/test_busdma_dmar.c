/*
 * test_busdma_dmar.c - busdma over DMA remapping on the simulated machine: a VT-d unit
 * model (QEMU 7.2's defaults) under the remapping core, an ACPI table with one
 * INCLUDE_PCI_ALL unit and an RMRR for device 00:03.0, and simulated devices doing DMA
 * through the unit. What is checked is what a device would see: which addresses it
 * may reach, which fault, and the data it moves.
 */
#include "harness.h"
#include "busdma_test.h"
#include "dmar/busdma.h"
#include "dmar_table_builder.h"
#include "posix_machine.h"
#include "regs.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PG 4096ull
#define UNIT_BASE 0xfed90000ull
#define PHYS_BASE 0x08000000ull        /* arena 128 MiB .. 320 MiB: straddles 28 bits */
#define MEM_SIZE (192ull << 20)
#define RMRR_BASE 0x10000000ull        /* 256 MiB, in RAM: where a 256 MiB-aligned load would go */
#define RMRR_LIMIT (RMRR_BASE + 0xffff)

struct rig {
	struct posix_machine *pm;
	struct model *unit;
	const struct dmar_os *os;
	struct dtb *dtb;
	struct dmar_acpi_table table;
	struct dmar_config cfg;
	struct dmar_system *sys;
	struct dmar_busdma *bus;
	struct dmar_busdma_dev *dev;   /* 00:03.0, translated */
	struct dmar_dma_tag *t;        /* optional tag and map of dev (rig_tag) */
	struct dmar_dmamap *m;
	uint8_t *buf;                  /* optional DMA buffer (rig_buf) */
	uint64_t buf_pa, buf_size;
};

static void rig_up_cfg(struct rig *r, const char *tunables, const struct model_config *mc)
{
	memset(r, 0, sizeof(*r));
	struct dmar_posix_machine_config pc = { .mem_size = MEM_SIZE, .phys_base = PHYS_BASE };
	r->pm = dmar_posix_machine_create(&pc);
	REQUIRE(r->pm);
	r->unit = dmar_posix_machine_add_unit(r->pm, UNIT_BASE, mc);
	REQUIRE(r->unit);
	r->os = dmar_posix_machine_os(r->pm);
	r->dtb = calloc(1, sizeof(*r->dtb));
	REQUIRE(r->dtb);
	dtb_init(r->dtb, 39, 0);
	dtb_drhd(r->dtb, DMAR_DRHD_INCLUDE_PCI_ALL, 0, UNIT_BASE);
	dtb_rmrr(r->dtb, 0, RMRR_BASE, RMRR_LIMIT);
	dtb_scope_pci(r->dtb, DMAR_SCOPE_ENDPOINT, 0, 3, 0, 0);
	size_t len = dtb_finish(r->dtb);
	REQUIRE_OK(dmar_acpi_parse(r->dtb->buf, len, NULL, &r->table));
	dmar_config_default(&r->cfg);
	if (tunables)
		REQUIRE_EQ(dmar_config_parse(&r->cfg, tunables, NULL, NULL), 0);
	REQUIRE_OK(dmar_system_create(r->os, &r->cfg, &r->table, &r->sys));
	REQUIRE_OK(dmar_busdma_create(r->os, &r->cfg, r->sys, &r->bus));
	struct dmar_pci_addr a = { 0, 0, 3, 0 };
	REQUIRE_OK(dmar_busdma_device(r->bus, a, NULL, NULL, &r->dev));
}

static void rig_up(struct rig *r, const char *tunables)
{
	rig_up_cfg(r, tunables, NULL);
}

static void rig_down(struct rig *r)
{
	if (r->buf)
		dmar_posix_machine_free_dma(r->pm, r->buf, (size_t)r->buf_size);
	if (r->m) {
		CHECK_OK(dmar_dmamap_unload(r->t, r->m));
		CHECK_OK(dmar_dmamap_destroy(r->t, r->m));
	}
	if (r->t)
		CHECK_OK(dmar_dma_tag_destroy(r->t));
	CHECK_OK(dmar_busdma_device_destroy(r->dev));
	CHECK_OK(dmar_busdma_destroy(r->bus));
	dmar_system_destroy(r->sys);
	CHECK_EQ(dmar_posix_machine_allocs_outstanding(r->pm), 0);
	CHECK_EQ(dmar_posix_machine_pages_outstanding(r->pm), 0);
	CHECK_EQ(dmar_posix_machine_dma_outstanding(r->pm), 0);
	CHECK_EQ(dmar_posix_machine_os_errors(r->pm), 0);
	CHECK_EQ(dmar_posix_machine_coherency_errors(r->pm), 0);
	dmar_posix_machine_destroy(r->pm);
	free(r->dtb);
}

/* A zeroed DMA buffer in the arena (physical address in r->buf_pa), freed by rig_down. */
static uint8_t *rig_buf(struct rig *r, uint64_t size)
{
	r->buf = dmar_posix_machine_alloc_dma(r->pm, (size_t)size, PG, &r->buf_pa);
	REQUIRE(r->buf);
	r->buf_size = size;
	return r->buf;
}

/* A tag for the rig's device and one map of it, both freed by rig_down. */
static struct dmar_dma_tag *rig_tag(struct rig *r, uint64_t lowaddr, uint64_t maxsize,
				    unsigned nseg, uint64_t maxsegsz, uint64_t boundary,
				    uint64_t align)
{
	r->t = busdma_test_tag(r->dev, lowaddr, UINT64_MAX, maxsize, nseg, maxsegsz, boundary, align);
	REQUIRE_OK(dmar_dmamap_create(r->t, 0, &r->m));
	return r->t;
}

/* DMA by device `sid` over every segment of the map, in order, into/out of buf.
 * Returns 0 or the first fault reason. */
static int device_dma(struct rig *r, uint16_t sid, const struct dmar_dmamap *m, uint8_t *buf,
		      enum model_dir dir)
{
	const struct dmar_dma_segment *s = dmar_dmamap_segs(m);
	for (unsigned i = 0; i < dmar_dmamap_nsegs(m); i++) {
		int rc = dmar_posix_machine_dma(r->pm, r->unit, sid, s[i].addr, buf, (size_t)s[i].len,
					   dir, NULL);
		if (rc)
			return rc;
		buf += s[i].len;
	}
	return 0;
}

static int dma_at(struct rig *r, uint64_t iova, size_t len, enum model_dir dir)
{
	uint8_t tmp[64];
	return dmar_posix_machine_dma(r->pm, r->unit, dmar_busdma_device_sid(r->dev), iova, tmp,
				 len < sizeof(tmp) ? len : sizeof(tmp), dir, NULL);
}

static void check_segments(const struct dmar_dma_tag *t, const struct dmar_dmamap *m, uint64_t len)
{
	struct dmar_dma_tag_params p;
	dmar_dma_tag_get_params(t, &p);
	uint64_t total = 0;
	const struct dmar_dma_segment *s = dmar_dmamap_segs(m);
	CHECK(dmar_dmamap_nsegs(m) >= 1 && dmar_dmamap_nsegs(m) <= p.nsegments);
	for (unsigned i = 0; i < dmar_dmamap_nsegs(m); i++) {
		uint64_t last = s[i].addr + s[i].len - 1;
		CHECK(s[i].len <= p.maxsegsz);
		CHECK(last <= p.lowaddr || s[i].addr > p.highaddr);
		CHECK_EQ(s[i].addr & (p.alignment - 1), 0);
		if (p.boundary)
			CHECK_EQ(s[i].addr / p.boundary, last / p.boundary);
		CHECK(last < 0xfee00000ull || s[i].addr > 0xfeefffffull); /* interrupt window */
		CHECK(last < RMRR_BASE || s[i].addr > RMRR_LIMIT);
		CHECK(s[i].addr >= PG);
		total += s[i].len;
	}
	CHECK_EQ(total, len);
}

/* No page among the lowest IOVAs a load would use is mapped (nothing stale). */
static void check_nothing_mapped_low(struct rig *r, unsigned pages)
{
	struct dmar_domain *dom = dmar_busdma_device_domain(r->dev);
	for (unsigned i = 1; i < pages; i++) {
		uint64_t pa;
		unsigned prot;
		if (dmar_lookup(dom, i * PG, &pa, &prot) != DMAR_ENOENT) {
			harness_fail(__FILE__, __LINE__, "IOVA 0x%llx still mapped",
				     (unsigned long long)(i * PG));
			return;
		}
	}
}

static void fill(uint8_t *p, uint64_t n, unsigned seed)
{
	for (uint64_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 13 + seed);
}

/* ------------------------------------------------------------------ tests --- */

TEST(translated_device_gets_its_own_domain)
{
	struct rig r;
	rig_up(&r, NULL);
	CHECK_EQ(dmar_busdma_device_mode(r.dev), DMAR_BUSDMA_TRANSLATE);
	struct dmar_domain_info info;
	dmar_domain_get_info(dmar_busdma_device_domain(r.dev), &info);
	CHECK_EQ(info.kind, DMAR_DOMAIN_TRANSLATED);
	CHECK_EQ(info.devices, 1);
	struct dmar_busdma_dev *other;
	struct dmar_pci_addr a = { 0, 0, 4, 0 };
	REQUIRE_OK(dmar_busdma_device(r.bus, a, NULL, NULL, &other));
	CHECK(dmar_busdma_device_domain(other) != dmar_busdma_device_domain(r.dev));
	CHECK_OK(dmar_busdma_device_destroy(other));
	rig_down(&r);
}

TEST(discontiguous_pages_load_as_one_segment_and_move_the_right_data)
{
	struct rig r;
	rig_up(&r, NULL);
	struct dmar_dma_tag *t = rig_tag(&r, UINT64_MAX, 1 << 20, 4, 1 << 20, 0, 1);
	struct dmar_dmamap *m = r.m;
	enum { N = 8 };
	void *va[N];
	uint64_t pages[N];
	for (int i = 0; i < N; i++) {
		/* two pages each, one used: the used pages are never adjacent */
		va[i] = dmar_posix_machine_alloc_dma(r.pm, 2 * PG, PG, &pages[N - 1 - i]);
		REQUIRE(va[i]);
		fill(va[i], PG, (unsigned)i);
	}
	REQUIRE_OK(dmar_dmamap_load_pages(t, m, pages, N, 100, N * PG - 200, 0));
	check_segments(t, m, N * PG - 200);
	CHECK_EQ(dmar_dmamap_nsegs(m), 1);
	uint8_t *got = malloc(N * PG), *want = malloc(N * PG);
	for (int i = 0; i < N; i++)
		memcpy(want + i * PG, va[N - 1 - i], PG);
	CHECK_OK(dmar_dmamap_sync(t, m, DMAR_DMASYNC_PREWRITE));
	CHECK_EQ(device_dma(&r, dmar_busdma_device_sid(r.dev), m, got, MODEL_DMA_READ), 0);
	CHECK(memcmp(got, want + 100, N * PG - 200) == 0);
	/* And the other way: the device writes, the CPU sees it in the pages. */
	fill(got, N * PG, 77);
	CHECK_EQ(device_dma(&r, dmar_busdma_device_sid(r.dev), m, got, MODEL_DMA_WRITE), 0);
	CHECK_OK(dmar_dmamap_sync(t, m, DMAR_DMASYNC_POSTREAD));
	CHECK(memcmp((uint8_t *)va[N - 1] + 100, got, PG - 100) == 0);
	CHECK(!dmar_dmamap_is_bounced(m));
	CHECK_OK(dmar_dmamap_unload(t, m));
	for (int i = 0; i < N; i++)
		dmar_posix_machine_free_dma(r.pm, va[i], 2 * PG);
	free(got);
	free(want);
	rig_down(&r);
}

TEST(device_reaches_only_what_is_loaded_and_faults_after_unload)
{
	struct rig r;
	rig_up(&r, NULL);
	struct dmar_dma_tag *t = rig_tag(&r, UINT64_MAX, 1 << 16, 1, 1 << 16, 0, 1);
	struct dmar_dmamap *m = r.m;
	uint8_t *buf = rig_buf(&r, 2 * PG);
	REQUIRE_OK(dmar_dmamap_load(t, m, buf + 512, 1024, DMAR_DMA_NOWRITE));
	uint64_t seg = dmar_dmamap_segs(m)[0].addr;
	uint64_t page = seg & ~(PG - 1);
	CHECK_EQ(dma_at(&r, seg, 64, MODEL_DMA_READ), 0);
	/* Read-only: the device may not write. */
	CHECK_EQ(dma_at(&r, seg, 64, MODEL_DMA_WRITE), VTD_FR_WRITE);
	/* The guard page after the load, and the page the buffer continues into. */
	CHECK_EQ(dma_at(&r, page + PG, 8, MODEL_DMA_READ), VTD_FR_READ);
	/* Another device on the unit sees nothing of it. */
	uint8_t tmp[8];
	CHECK(dmar_posix_machine_dma(r.pm, r.unit, 0x0028, seg, tmp, 8, MODEL_DMA_READ, NULL) != 0);
	/* The IOTLB now holds the translation: unload must invalidate it. */
	CHECK_OK(dmar_dmamap_unload(t, m));
	CHECK_EQ(dma_at(&r, seg, 64, MODEL_DMA_READ), VTD_FR_READ);
	/* Reload read/write: the same IOVA may come back, now writable. */
	REQUIRE_OK(dmar_dmamap_load(t, m, buf + 512, 1024, 0));
	CHECK_EQ(dma_at(&r, dmar_dmamap_segs(m)[0].addr, 64, MODEL_DMA_WRITE), 0);
	CHECK_OK(dmar_dmamap_unload(t, m));
	rig_down(&r);
}

TEST(rmrr_works_before_any_load_and_loads_avoid_it)
{
	struct rig r;
	rig_up(&r, NULL);
	/* Firmware DMA to the RMRR works as soon as the device is attached. */
	CHECK_EQ(dma_at(&r, RMRR_BASE + 0x100, 16, MODEL_DMA_READ), 0);
	/* A 256 MiB-aligned load would land on the RMRR if it were not reserved. */
	struct dmar_dma_tag *t = rig_tag(&r, UINT64_MAX, PG, 1, RMRR_BASE, 0, RMRR_BASE);
	struct dmar_dmamap *m = r.m;
	uint8_t *buf = rig_buf(&r, PG);
	REQUIRE_OK(dmar_dmamap_load(t, m, buf, PG, 0));
	check_segments(t, m, PG);
	CHECK_EQ(dmar_dmamap_segs(m)[0].addr, 2 * RMRR_BASE);
	CHECK_OK(dmar_dmamap_unload(t, m));
	CHECK_EQ(dma_at(&r, RMRR_BASE + 0x100, 16, MODEL_DMA_READ), 0);
	rig_down(&r);
}

/* Each constraint alone, then all together, over many loads of awkward sizes. */
TEST(every_tag_constraint_holds_for_translated_loads)
{
	struct rig r;
	rig_up(&r, NULL);
	struct {
		const char *what;
		uint64_t lowaddr, maxsegsz, boundary, align;
		unsigned nseg;
	} c[] = {
		{ "28-bit lowaddr", 0x0fffffff, 1 << 20, 0, 1, 1 },
		{ "boundary 64 KiB", UINT64_MAX, 1 << 20, 0x10000, 1, 2 },
		{ "alignment 64 KiB", UINT64_MAX, 1 << 20, 0, 0x10000, 1 },
		{ "maxsegsz 4 KiB", UINT64_MAX, PG, 0, 1, 16 },
		{ "maxsegsz 12 KiB, boundary 16 KiB, 24-bit", 0xffffff, 0x3000, 0x4000, 1, 16 },
		{ "everything", 0xffffff, 0x8000, 0x10000, 0x1000, 8 },
	};
	uint8_t *buf = rig_buf(&r, 64 * 1024 + PG);
	for (size_t k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
		harness_set_context(c[k].what);
		struct dmar_dma_tag *t = busdma_test_tag(r.dev, c[k].lowaddr, UINT64_MAX,
							 64 * 1024, c[k].nseg,
						 c[k].maxsegsz, c[k].boundary, c[k].align);
		struct dmar_dmamap *m[12];
		for (int i = 0; i < 12; i++)
			REQUIRE_OK(dmar_dmamap_create(t, 0, &m[i]));
		/* Keep several loaded at once so they land at different IOVAs. */
		for (int i = 0; i < 12; i++) {
			uint64_t len = 48 * 1024 - (uint64_t)i * 1000;
			const uint8_t *at = buf + (c[k].align > 1 ? 0 : (uint64_t)i * 64);
			REQUIRE_OK(dmar_dmamap_load(t, m[i], at, len, 0));
			check_segments(t, m[i], len);
		}
		for (int i = 0; i < 12; i++) {
			CHECK_OK(dmar_dmamap_unload(t, m[i]));
			CHECK_OK(dmar_dmamap_destroy(t, m[i]));
		}
		CHECK_OK(dmar_dma_tag_destroy(t));
	}
	harness_set_context(NULL);
	check_nothing_mapped_low(&r, 4096);
	rig_down(&r);
}

TEST(load_that_cannot_fit_fails_and_maps_nothing_misalignment_bounces)
{
	struct rig r;
	rig_up(&r, NULL);
	uint8_t *buf = rig_buf(&r, 16 * PG);
	/* nsegments exhausted: 16 KiB in 4 KiB segments, only 2 allowed */
	struct dmar_dma_tag *t = rig_tag(&r, UINT64_MAX, 16 * PG, 2, PG, 0, 1);
	struct dmar_dmamap *m = r.m;
	CHECK_EQ(dmar_dmamap_load(t, m, buf, 4 * PG, 0), DMAR_ERANGE);
	CHECK_EQ(dmar_dmamap_nsegs(m), 0);
	check_nothing_mapped_low(&r, 64);
	/* A misaligned start is the one constraint an IOVA cannot fix (it keeps the
	 * in-page offset): that piece goes through a bounce page mapped in its place. */
	struct dmar_dma_tag *ta = busdma_test_tag(r.dev, UINT64_MAX, UINT64_MAX, 16 * PG, 2,
						  16 * PG, 0, 256);
	struct dmar_dmamap *ma;
	REQUIRE_OK(dmar_dmamap_create(ta, 0, &ma));
	fill(buf, 3 * PG, 21);
	REQUIRE_OK(dmar_dmamap_load(ta, ma, buf + 8, 2 * PG, 0));
	check_segments(ta, ma, 2 * PG);
	CHECK(dmar_dmamap_is_bounced(ma));
	uint8_t *got = malloc(2 * PG);
	CHECK_OK(dmar_dmamap_sync(ta, ma, DMAR_DMASYNC_PREWRITE));
	CHECK_EQ(device_dma(&r, dmar_busdma_device_sid(r.dev), ma, got, MODEL_DMA_READ), 0);
	CHECK(memcmp(got, buf + 8, 2 * PG) == 0);
	fill(got, 2 * PG, 99);
	CHECK_EQ(device_dma(&r, dmar_busdma_device_sid(r.dev), ma, got, MODEL_DMA_WRITE), 0);
	CHECK_OK(dmar_dmamap_sync(ta, ma, DMAR_DMASYNC_POSTREAD));
	CHECK(memcmp(got, buf + 8, 2 * PG) == 0);
	free(got);
	CHECK_OK(dmar_dmamap_unload(ta, ma));
	CHECK(!dmar_dmamap_is_bounced(ma));
	check_nothing_mapped_low(&r, 64);
	/* no IOVA at all below lowaddr */
	struct dmar_dma_tag *tl = busdma_test_tag(r.dev, 0x2fff, UINT64_MAX, 16 * PG, 4, 16 * PG,
						  0, 1);
	struct dmar_dmamap *ml;
	REQUIRE_OK(dmar_dmamap_create(tl, 0, &ml));
	CHECK_OK(dmar_dmamap_load(tl, ml, buf, PG, 0)); /* 0x1000 fits, its guard 0x2000 too */
	struct dmar_dmamap *ml2;
	REQUIRE_OK(dmar_dmamap_create(tl, 0, &ml2));
	CHECK_EQ(dmar_dmamap_load(tl, ml2, buf + PG, PG, 0), DMAR_ENOSPC);
	CHECK_OK(dmar_dmamap_unload(tl, ml));
	CHECK_OK(dmar_dmamap_destroy(tl, ml));
	CHECK_OK(dmar_dmamap_destroy(tl, ml2));
	CHECK_OK(dmar_dma_tag_destroy(tl));
	CHECK_OK(dmar_dmamap_destroy(ta, ma));
	CHECK_OK(dmar_dma_tag_destroy(ta));
	check_nothing_mapped_low(&r, 64);
	rig_down(&r);
}

TEST(sg_list_with_subpage_pieces_maps_each_piece)
{
	struct rig r;
	rig_up(&r, NULL);
	uint8_t *buf = rig_buf(&r, 8 * PG);
	uint64_t pa = r.buf_pa;
	fill(buf, 8 * PG, 9);
	struct dmar_dma_segment sg[4] = {
		{ pa + 5 * PG + 100, 300 },  /* sub-page piece */
		{ pa + 2 * PG, 2 * PG },     /* whole pages */
		{ pa + 7 * PG, PG },         /* continues in IOVA space */
		{ pa + 10, 20 },
	};
	struct dmar_dma_tag *t = rig_tag(&r, UINT64_MAX, 16 * PG, 8, 16 * PG, 0, 1);
	struct dmar_dmamap *m = r.m;
	REQUIRE_OK(dmar_dmamap_load_sg(t, m, sg, 4, 0));
	uint64_t total = 300 + 3 * PG + 20;
	check_segments(t, m, total);
	CHECK_EQ(dmar_dmamap_nsegs(m), 3); /* 300 | 3 pages | 20 */
	uint8_t *got = malloc(total);
	CHECK_EQ(device_dma(&r, dmar_busdma_device_sid(r.dev), m, got, MODEL_DMA_READ), 0);
	CHECK(memcmp(got, buf + 5 * PG + 100, 300) == 0);
	CHECK(memcmp(got + 300, buf + 2 * PG, 2 * PG) == 0);
	CHECK(memcmp(got + 300 + 2 * PG, buf + 7 * PG, PG) == 0);
	CHECK(memcmp(got + 300 + 3 * PG, buf + 10, 20) == 0);
	free(got);
	CHECK_OK(dmar_dmamap_unload(t, m));
	check_nothing_mapped_low(&r, 64);
	rig_down(&r);
}

TEST(interrupt_window_is_never_handed_out)
{
	struct rig r;
	rig_up(&r, NULL);
	/* Fill [2 MiB, 0xfee00000) with one load (guard page included), then ask for a
	 * 2 MiB-aligned page below 0xff000000: only the interrupt window would fit.
	 * (Device 00:04.0: it has no RMRR in the way.) */
	struct dmar_busdma_dev *dev;
	struct dmar_pci_addr a = { 0, 0, 4, 0 };
	REQUIRE_OK(dmar_busdma_device(r.bus, a, NULL, NULL, &dev));
	struct dmar_dma_tag *t = busdma_test_tag(dev, 0xfeffffff, UINT64_MAX, 0xfec00000, 8,
						 1ull << 30, 0, 2 << 20);
	struct dmar_dmamap *big, *small;
	REQUIRE_OK(dmar_dmamap_create(t, 0, &big));
	REQUIRE_OK(dmar_dmamap_create(t, 0, &small));
	REQUIRE_OK(dmar_dmamap_load_phys(t, big, 0, 0xfec00000 - PG, 0));
	CHECK_EQ(dmar_dmamap_segs(big)[0].addr, 2 << 20);
	CHECK_EQ(dmar_dmamap_load_phys(t, small, PHYS_BASE, PG, 0), DMAR_ENOSPC);
	CHECK_OK(dmar_dmamap_unload(t, big));
	CHECK_OK(dmar_dmamap_destroy(t, big));
	CHECK_OK(dmar_dmamap_destroy(t, small));
	CHECK_OK(dmar_dma_tag_destroy(t));
	CHECK_OK(dmar_busdma_device_destroy(dev));
	rig_down(&r);
}

/* Device 00:04.0, which the tunables make bounce; its domain's info in *info. */
static struct dmar_busdma_dev *bounce_device(struct rig *r, struct dmar_domain_info *info)
{
	struct dmar_busdma_dev *dev;
	struct dmar_pci_addr a = { 0, 0, 4, 0 };
	REQUIRE_OK(dmar_busdma_device(r->bus, a, NULL, NULL, &dev));
	CHECK_EQ(dmar_busdma_device_mode(dev), DMAR_BUSDMA_BOUNCE);
	REQUIRE(dmar_busdma_device_domain(dev));
	dmar_domain_get_info(dmar_busdma_device_domain(dev), info);
	CHECK_EQ(info->kind, DMAR_DOMAIN_PASSTHROUGH);
	return dev;
}

TEST(bounce_tunable_gives_passthrough_and_bounces_above_lowaddr)
{
	struct rig r;
	rig_up(&r, "hw.busdma.pci0:0:4:0.bounce=1");
	struct dmar_domain_info info;
	struct dmar_busdma_dev *dev = bounce_device(&r, &info);
	/* A buffer above 256 MiB for a 28-bit device. */
	void *chunks[192];
	int n = 0;
	uint64_t pa = 0;
	uint8_t *buf = NULL;
	while (n < 192) {
		buf = dmar_posix_machine_alloc_dma(r.pm, 1 << 20, PG, &pa);
		REQUIRE(buf);
		chunks[n++] = buf;
		if (pa >= 0x10000000)
			break;
	}
	REQUIRE(pa >= 0x10000000);
	/* Give the low memory back, so bounce pages below 256 MiB can be had. */
	for (int i = 0; i < n - 1; i++)
		dmar_posix_machine_free_dma(r.pm, chunks[i], 1 << 20);
	struct dmar_dma_tag *t = busdma_test_tag(dev, 0x0fffffff, UINT64_MAX, 4 * PG, 4, 4 * PG, 0,
						 1);
	struct dmar_dmamap *m;
	REQUIRE_OK(dmar_dmamap_create(t, 0, &m));
	fill(buf, 4 * PG, 3);
	REQUIRE_OK(dmar_dmamap_load(t, m, buf + 16, 3 * PG, 0));
	CHECK(dmar_dmamap_is_bounced(m));
	for (unsigned i = 0; i < dmar_dmamap_nsegs(m); i++)
		CHECK(dmar_dmamap_segs(m)[i].addr + dmar_dmamap_segs(m)[i].len - 1 <= 0x0fffffff);
	uint8_t *got = malloc(3 * PG);
	CHECK_OK(dmar_dmamap_sync(t, m, DMAR_DMASYNC_PREWRITE));
	CHECK_EQ(device_dma(&r, dmar_busdma_device_sid(dev), m, got, MODEL_DMA_READ), 0);
	CHECK(memcmp(got, buf + 16, 3 * PG) == 0);
	fill(got, 3 * PG, 55);
	CHECK_OK(dmar_dmamap_sync(t, m, DMAR_DMASYNC_PREREAD));
	CHECK_EQ(device_dma(&r, dmar_busdma_device_sid(dev), m, got, MODEL_DMA_WRITE), 0);
	CHECK_OK(dmar_dmamap_sync(t, m, DMAR_DMASYNC_POSTREAD));
	CHECK(memcmp(got, buf + 16, 3 * PG) == 0);
	free(got);
	CHECK_OK(dmar_dmamap_unload(t, m));
	CHECK_OK(dmar_dmamap_destroy(t, m));
	CHECK_OK(dmar_dma_tag_destroy(t));
	dmar_posix_machine_free_dma(r.pm, buf, 1 << 20);
	CHECK_OK(dmar_busdma_device_destroy(dev));
	rig_down(&r);
}

TEST(enable_0_bounces_every_device)
{
	struct rig r;
	rig_up(&r, "hw.dmar.enable=0");
	CHECK_EQ(dmar_busdma_device_mode(r.dev), DMAR_BUSDMA_BOUNCE);
	CHECK(dmar_busdma_device_domain(r.dev) == NULL);
	struct dmar_unit_info ui;
	dmar_unit_get_info(dmar_unit_at(r.sys, 0), &ui);
	CHECK(!ui.translating); /* nothing was attached */
	rig_down(&r);
}

TEST(device_no_unit_covers_bounces)
{
	struct rig r;
	rig_up(&r, NULL);
	struct dmar_busdma_dev *dev;
	struct dmar_pci_addr a = { 1, 0, 3, 0 }; /* PCI segment 1: no DRHD */
	REQUIRE_OK(dmar_busdma_device(r.bus, a, NULL, NULL, &dev));
	CHECK_EQ(dmar_busdma_device_mode(dev), DMAR_BUSDMA_BOUNCE);
	CHECK(dmar_busdma_device_domain(dev) == NULL);
	CHECK_OK(dmar_busdma_device_destroy(dev));
	rig_down(&r);
}

/* Device, tag, map, load, unload with the n-th allocation failing, n = 1, 2, ...: each
 * failure is an error code, nothing leaks, and nothing stays mapped. */
TEST(fail_nth_across_device_tag_map_load_unload)
{
	struct rig r;
	rig_up(&r, NULL);
	uint8_t *buf = rig_buf(&r, 8 * PG);
	uint64_t allocs0 = dmar_posix_machine_allocs_outstanding(r.pm);
	uint64_t pages0 = dmar_posix_machine_pages_outstanding(r.pm);
	unsigned n;
	for (n = 1; n < 2000; n++) {
		struct dmar_busdma_dev *dev = NULL;
		struct dmar_dma_tag *t = NULL;
		struct dmar_dmamap *m = NULL;
		struct dmar_dma_tag_params p;
		bool loaded = false;
		int rc;
		dmar_dma_tag_params_default(&p);
		p.maxsize = 8 * PG;
		p.nsegments = 4;
		struct dmar_pci_addr a = { 0, 0, 5, 0 };
		dmar_posix_machine_fail_nth(r.pm, n);
		if ((rc = dmar_busdma_device(r.bus, a, NULL, NULL, &dev)))
			goto done;
		if ((rc = dmar_dma_tag_create(dev, NULL, &p, &t)))
			goto done;
		if ((rc = dmar_dmamap_create(t, 0, &m)))
			goto done;
		rc = dmar_dmamap_load(t, m, buf + 8, 7 * PG, 0);
		if (rc) {
			CHECK_EQ(dmar_dmamap_nsegs(m), 0);
			goto done;
		}
		loaded = true;
		rc = dmar_dmamap_unload(t, m);
		loaded = rc != 0;
	done:
		dmar_posix_machine_fail_nth(r.pm, 0);
		if (rc) {
			char what[64];
			snprintf(what, sizeof(what), "allocation %u fails", n);
			harness_set_context(what);
			CHECK(rc == DMAR_ENOMEM);
		}
		if (dev && dmar_busdma_device_mode(dev) == DMAR_BUSDMA_TRANSLATE) {
			struct dmar_domain *dom = dmar_busdma_device_domain(dev);
			unsigned mapped = 0;
			for (unsigned i = 1; i < 32; i++) {
				uint64_t x;
				unsigned prot;
				mapped += dmar_lookup(dom, i * PG, &x, &prot) == 0;
			}
			CHECK_EQ(mapped, loaded ? 8 : 0);
		}
		if (loaded)
			CHECK_OK(dmar_dmamap_unload(t, m));
		if (m)
			CHECK_OK(dmar_dmamap_destroy(t, m));
		if (t)
			CHECK_OK(dmar_dma_tag_destroy(t));
		if (dev)
			CHECK_OK(dmar_busdma_device_destroy(dev));
		CHECK_EQ(dmar_posix_machine_allocs_outstanding(r.pm), allocs0);
		CHECK_EQ(dmar_posix_machine_pages_outstanding(r.pm), pages0);
		harness_set_context(NULL);
		if (!rc && !dmar_posix_machine_failed(r.pm))
			break;
	}
	CHECK(n > 5 && n < 2000);
	rig_down(&r);
}

TEST(bounce_tunable_without_ecap_pt_uses_an_identity_table)
{
	struct model_config mc;
	dmar_model_config_default(&mc);
	mc.pt = false;
	struct rig r;
	rig_up_cfg(&r, "hw.busdma.pci0:0:4:0.bounce=1", &mc);
	struct dmar_domain_info info;
	struct dmar_busdma_dev *dev = bounce_device(&r, &info);
	CHECK(!info.passthrough_tt);
	CHECK(info.levels > 0);
	struct dmar_dma_tag *t = busdma_test_tag(dev, UINT64_MAX, UINT64_MAX, 4 * PG, 4, 4 * PG, 0,
						 1);
	struct dmar_dmamap *m;
	REQUIRE_OK(dmar_dmamap_create(t, 0, &m));
	uint8_t *buf = rig_buf(&r, 4 * PG);
	uint64_t pa = r.buf_pa;
	fill(buf, 4 * PG, 1);
	REQUIRE_OK(dmar_dmamap_load(t, m, buf, 4 * PG, 0));
	CHECK(!dmar_dmamap_is_bounced(m));
	CHECK_EQ(dmar_dmamap_segs(m)[0].addr, pa); /* device address = physical */
	uint8_t *got = malloc(4 * PG);
	CHECK_EQ(device_dma(&r, dmar_busdma_device_sid(dev), m, got, MODEL_DMA_READ), 0);
	CHECK(memcmp(got, buf, 4 * PG) == 0);
	free(got);
	CHECK_OK(dmar_dmamap_unload(t, m));
	CHECK_OK(dmar_dmamap_destroy(t, m));
	CHECK_OK(dmar_dma_tag_destroy(t));
	CHECK_OK(dmar_busdma_device_destroy(dev));
	rig_down(&r);
}

static uint64_t two_loads_gap(const char *tunables)
{
	struct rig r;
	rig_up(&r, tunables);
	struct dmar_dma_tag *t = busdma_test_tag(r.dev, UINT64_MAX, UINT64_MAX, PG, 1, PG, 0, 1);
	struct dmar_dmamap *m1, *m2;
	REQUIRE_OK(dmar_dmamap_create(t, 0, &m1));
	REQUIRE_OK(dmar_dmamap_create(t, 0, &m2));
	uint8_t *buf = rig_buf(&r, PG);
	REQUIRE_OK(dmar_dmamap_load(t, m1, buf, PG, 0));
	REQUIRE_OK(dmar_dmamap_load(t, m2, buf, PG, 0));
	uint64_t gap = dmar_dmamap_segs(m2)[0].addr - dmar_dmamap_segs(m1)[0].addr;
	CHECK_OK(dmar_dmamap_unload(t, m1));
	CHECK_OK(dmar_dmamap_unload(t, m2));
	CHECK_OK(dmar_dmamap_destroy(t, m1));
	CHECK_OK(dmar_dmamap_destroy(t, m2));
	CHECK_OK(dmar_dma_tag_destroy(t));
	rig_down(&r);
	return gap;
}

TEST(guard_pages_tunable_spaces_loads)
{
	CHECK_EQ(two_loads_gap(NULL), 2 * PG);
	CHECK_EQ(two_loads_gap("hw.dmar.guard_pages=0"), PG);
	CHECK_EQ(two_loads_gap("hw.dmar.guard_pages=3"), 4 * PG);
}

struct worker {
	struct rig *r;
	struct dmar_dma_tag *t;
	uint8_t *buf;
	unsigned seed;
	int errors;
};

static void *load_unload_loop(void *arg)
{
	struct worker *w = arg;
	struct dmar_dmamap *m[4];
	for (int i = 0; i < 4; i++)
		if (dmar_dmamap_create(w->t, 0, &m[i]))
			w->errors++;
	for (unsigned it = 0; it < 400 && !w->errors; it++) {
		unsigned i = it % 4;
		uint64_t len = 1 + (w->seed * 2654435761u + it * 977u) % (8 * PG);
		if (dmar_dmamap_load(w->t, m[i], w->buf, len, 0)) {
			w->errors++;
			break;
		}
		uint8_t tmp[16];
		if (dmar_posix_machine_dma(w->r->pm, w->r->unit, dmar_busdma_device_sid(w->r->dev),
				      dmar_dmamap_segs(m[i])[0].addr, tmp, sizeof(tmp) < len ? sizeof(tmp) : len,
				      MODEL_DMA_READ, NULL) != 0)
			w->errors++;
		if (it % 3 == 2)
			for (unsigned j = 0; j < 4; j++)
				if (dmar_dmamap_unload(w->t, m[j]))
					w->errors++;
		if (dmar_dmamap_unload(w->t, m[(i + 1) % 4]))
			w->errors++;
	}
	for (int i = 0; i < 4; i++) {
		dmar_dmamap_unload(w->t, m[i]);
		if (dmar_dmamap_destroy(w->t, m[i]))
			w->errors++;
	}
	return NULL;
}

/* Loads and unloads on different maps of one device from several threads at once. */
TEST(concurrent_loads_on_one_device)
{
	struct rig r;
	rig_up(&r, NULL);
	struct dmar_dma_tag *t = busdma_test_tag(r.dev, UINT64_MAX, UINT64_MAX, 8 * PG, 1, 8 * PG,
						 0, 1);
	uint8_t *buf = rig_buf(&r, 8 * PG);
	enum { NT = 3 };
	pthread_t th[NT];
	struct worker w[NT];
	for (int i = 0; i < NT; i++) {
		w[i] = (struct worker){ &r, t, buf, (unsigned)i + 1, 0 };
		REQUIRE(pthread_create(&th[i], NULL, load_unload_loop, &w[i]) == 0);
	}
	for (int i = 0; i < NT; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(w[i].errors, 0);
	}
	check_nothing_mapped_low(&r, 512);
	CHECK_OK(dmar_dma_tag_destroy(t));
	rig_down(&r);
}

/* splitmix64: a fixed sequence, so a failure is reproducible. */
static uint64_t rnd(uint64_t n)
{
	static uint64_t x = 42;
	uint64_t z = (x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (z ^ (z >> 31)) % n;
}

/* Random tags and loads, with up to 8 loads alive at once: each obeys its tag and the
 * device moves the right bytes through it, or it fails cleanly; at the end nothing is
 * mapped. */
TEST(random_translated_loads_obey_their_tags)
{
	struct rig r;
	rig_up(&r, NULL);
	uint8_t *buf = rig_buf(&r, 40 * PG);
	fill(buf, 40 * PG, 3);
	uint8_t *got = malloc(40 * PG);
	const uint64_t aligns[] = { 1, 64, PG, 16 * PG };
	const uint64_t bounds[] = { 0, 4 * PG, 16 * PG, 1 << 20 };
	const uint64_t lows[] = { UINT64_MAX, 0xffffffff, 0xffffff };
	struct { struct dmar_dma_tag *t; struct dmar_dmamap *m; } live[8] = { { 0 } };
	unsigned ok = 0, failed = 0;
	for (int it = 0; it < 300; it++) {
		unsigned slot = (unsigned)rnd(8);
		if (live[slot].t) {
			CHECK_OK(dmar_dmamap_unload(live[slot].t, live[slot].m));
			CHECK_OK(dmar_dmamap_destroy(live[slot].t, live[slot].m));
			CHECK_OK(dmar_dma_tag_destroy(live[slot].t));
			live[slot].t = NULL;
		}
		struct dmar_dma_tag_params p;
		dmar_dma_tag_params_default(&p);
		p.alignment = aligns[rnd(4)];
		p.boundary = bounds[rnd(4)];
		if (p.boundary && p.boundary < p.alignment)
			p.boundary = 0;
		p.lowaddr = lows[rnd(3)];
		p.maxsize = 32 * PG;
		p.nsegments = 1 + (unsigned)rnd(12);
		p.maxsegsz = p.alignment + rnd(16 * PG);
		struct dmar_dma_tag *t;
		struct dmar_dmamap *m;
		REQUIRE_OK(dmar_dma_tag_create(r.dev, NULL, &p, &t));
		REQUIRE_OK(dmar_dmamap_create(t, 0, &m));
		uint64_t off = rnd(8 * PG), len = 1 + rnd(32 * PG - 1);
		int rc = dmar_dmamap_load(t, m, buf + off, len, 0);
		if (rc == 0) {
			ok++;
			check_segments(t, m, len);
			CHECK_OK(dmar_dmamap_sync(t, m, DMAR_DMASYNC_PREWRITE));
			CHECK_EQ(device_dma(&r, dmar_busdma_device_sid(r.dev), m, got,
					    MODEL_DMA_READ), 0);
			if (memcmp(got, buf + off, len) != 0)
				harness_fail(__FILE__, __LINE__, "load %d (offset 0x%llx, 0x%llx bytes, "
					     "alignment 0x%llx, %s): device read other bytes", it,
					     (unsigned long long)off, (unsigned long long)len,
					     (unsigned long long)p.alignment,
					     dmar_dmamap_is_bounced(m) ? "bounced" : "not bounced");
			live[slot].t = t;
			live[slot].m = m;
		} else {
			failed++;
			/* EINVAL: alignment above a page and a start inside a page (the
			 * bounced first piece cannot make the next segment aligned). */
			if (rc == DMAR_EINVAL)
				CHECK(p.alignment > PG && off % PG);
			else
				CHECK_EQ(rc, DMAR_ERANGE);
			CHECK_EQ(dmar_dmamap_nsegs(m), 0);
			CHECK_OK(dmar_dmamap_destroy(t, m));
			CHECK_OK(dmar_dma_tag_destroy(t));
		}
	}
	for (int i = 0; i < 8; i++) {
		if (!live[i].t)
			continue;
		CHECK_OK(dmar_dmamap_unload(live[i].t, live[i].m));
		CHECK_OK(dmar_dmamap_destroy(live[i].t, live[i].m));
		CHECK_OK(dmar_dma_tag_destroy(live[i].t));
	}
	printf("  %u loads obeyed their tags, %u failed cleanly\n", ok, failed);
	CHECK(ok > 100 && failed > 10);
	check_nothing_mapped_low(&r, 4096);
	free(got);
	rig_down(&r);
}

/* dmamem larger than a page (rings, xHCI scratchpads): contiguous for the CPU, one range
 * for the device; translated it may lie anywhere, bounced it lies below lowaddr. */
static void dmamem_contiguous_case(const char *tunables, uint64_t lowaddr)
{
	struct rig r;
	rig_up(&r, tunables);
	struct dmar_dma_tag *t = busdma_test_tag(r.dev, lowaddr, UINT64_MAX, 8 * PG, 1, 8 * PG,
						 0, 4 * PG);
	void *mem;
	struct dmar_dmamap *m;
	REQUIRE_OK(dmar_dmamem_alloc(t, &mem, 0, &m));
	uint64_t pa = dmar_posix_machine_virt_to_phys(r.pm, mem);
	CHECK_EQ(pa % (4 * PG), 0);
	CHECK(pa + 8 * PG - 1 <= lowaddr);
	CHECK(((uint8_t *)mem)[8 * PG - 1] == 0);
	harness_set_context(tunables ? tunables : "translated");
	REQUIRE_OK(dmar_dmamap_load(t, m, mem, 8 * PG, 0));
	CHECK_EQ(dmar_dmamap_nsegs(m), 1);
	CHECK(!dmar_dmamap_is_bounced(m));
	for (unsigned i = 0; i < 8 * PG; i++)
		((uint8_t *)mem)[i] = (uint8_t)(i * 7 + 1);
	uint8_t got[8 * PG];
	CHECK_EQ(device_dma(&r, dmar_busdma_device_sid(r.dev), m, got, MODEL_DMA_READ), 0);
	CHECK(memcmp(got, mem, sizeof(got)) == 0);
	CHECK_OK(dmar_dmamap_unload(t, m));
	CHECK_OK(dmar_dmamem_free(t, mem, m));
	/* Every allocation failure on the way is clean. */
	for (unsigned n = 1; n < 10; n++) {
		dmar_posix_machine_fail_nth(r.pm, n);
		int rc = dmar_dmamem_alloc(t, &mem, 0, &m);
		bool failed = dmar_posix_machine_failed(r.pm);
		dmar_posix_machine_fail_nth(r.pm, 0);
		if (!failed) {
			CHECK_OK(rc);
			CHECK_OK(dmar_dmamem_free(t, mem, m));
			break;
		}
		CHECK_EQ(rc, DMAR_ENOMEM);
	}
	CHECK_OK(dmar_dma_tag_destroy(t));
	rig_down(&r);
}

TEST(dmamem_of_several_pages_is_one_contiguous_range)
{
	dmamem_contiguous_case(NULL, UINT64_MAX);
	dmamem_contiguous_case("hw.busdma.pci0:0:3:0.bounce=1", 0x0fffffff);
}

/* ---------------------------------------------------- deferred invalidation --- */

static unsigned iotlb_invalidations(struct rig *r)
{
	struct dmar_unit_stats st;
	dmar_unit_get_stats(dmar_unit_at(r->sys, 0), &st);
	return (unsigned)(st.iotlb_page + st.iotlb_domain + st.iotlb_global);
}

/* hw.dmar.strict=0: the unload returns without invalidating; until the flush the unit
 * may still translate the old IOVA (the model's IOTLB keeps it); after it, it faults.
 * Both ways a one-page load goes: the CPU's window, and (hw.dmar.cpu_windows=0) the
 * space's allocator, whose deferred unmaps the domain counts. */
TEST(deferred_unload_window_closes_at_the_flush)
{
	for (int windows = 0; windows < 2; windows++) {
		struct rig r;
		rig_up(&r, windows ? "hw.dmar.strict=0" : "hw.dmar.strict=0 hw.dmar.cpu_windows=0");
		uint8_t *buf = rig_buf(&r, 2 * PG);
		rig_tag(&r, UINT64_MAX, PG, 1, PG, 0, 1);
		fill(buf, PG, 3);
		REQUIRE_OK(dmar_dmamap_load(r.t, r.m, buf, PG, 0));
		uint64_t iova = dmar_dmamap_segs(r.m)[0].addr;
		CHECK_EQ(dma_at(&r, iova, 64, MODEL_DMA_READ), 0); /* into the IOTLB */
		unsigned before = iotlb_invalidations(&r);
		CHECK_OK(dmar_dmamap_unload(r.t, r.m));
		CHECK_EQ(iotlb_invalidations(&r), before); /* nothing issued */
		struct dmar_domain *dom = dmar_busdma_device_domain(r.dev);
		uint64_t pa;
		unsigned prot;
		CHECK_EQ(dmar_lookup(dom, iova, &pa, &prot), DMAR_ENOENT);
		CHECK_EQ(dmar_domain_deferred(dom), windows ? 0u : 1u);
		/* The window: the old page, and only it, may still be reached. */
		CHECK_EQ(dma_at(&r, iova, 64, MODEL_DMA_READ), 0);
		CHECK_OK(dmar_busdma_flush(r.bus));
		CHECK_EQ(iotlb_invalidations(&r), before + 1);
		CHECK_EQ(dmar_domain_deferred(dom), 0);
		CHECK_EQ(dma_at(&r, iova, 64, MODEL_DMA_READ), VTD_FR_READ);
		dmar_fault_poll(r.sys);
		/* A strict load in the deferred device: its unload waits. */
		REQUIRE_OK(dmar_dmamap_load(r.t, r.m, buf, PG, DMAR_DMA_STRICT));
		iova = dmar_dmamap_segs(r.m)[0].addr;
		CHECK_EQ(dma_at(&r, iova, 64, MODEL_DMA_READ), 0);
		CHECK_OK(dmar_dmamap_unload(r.t, r.m));
		CHECK_EQ(dma_at(&r, iova, 64, MODEL_DMA_READ), VTD_FR_READ);
		dmar_fault_poll(r.sys);
		rig_down(&r);
	}
}

/* The window is bounded by count (defer_max unloads: one invalidation for all of them)
 * and by time (dmar_busdma_tick after defer_us). */
TEST(deferred_unloads_flush_by_count_and_by_age)
{
	struct rig r;
	rig_up(&r, "hw.dmar.strict=0 hw.dmar.defer_max=8 hw.dmar.defer_us=1000");
	uint8_t *buf = rig_buf(&r, PG);
	rig_tag(&r, UINT64_MAX, PG, 1, PG, 0, 1);
	unsigned before = iotlb_invalidations(&r);
	for (int i = 0; i < 8; i++) {
		REQUIRE_OK(dmar_dmamap_load(r.t, r.m, buf, PG, 0));
		CHECK_OK(dmar_dmamap_unload(r.t, r.m));
	}
	CHECK_EQ(iotlb_invalidations(&r), before + 1);
	CHECK_EQ(dmar_domain_deferred(dmar_busdma_device_domain(r.dev)), 0);
	REQUIRE_OK(dmar_dmamap_load(r.t, r.m, buf, PG, 0));
	uint64_t iova = dmar_dmamap_segs(r.m)[0].addr;
	CHECK_EQ(dma_at(&r, iova, 64, MODEL_DMA_READ), 0);
	CHECK_OK(dmar_dmamap_unload(r.t, r.m));
	CHECK_OK(dmar_busdma_tick(r.bus)); /* too young */
	CHECK_EQ(dma_at(&r, iova, 64, MODEL_DMA_READ), 0);
	r.os->ops->delay_ns(r.os->ctx, 2000000); /* the machine's clock: 2 ms later */
	CHECK_OK(dmar_busdma_tick(r.bus));
	CHECK_EQ(dma_at(&r, iova, 64, MODEL_DMA_READ), VTD_FR_READ);
	dmar_fault_poll(r.sys);
	rig_down(&r);
}

/* An IOVA space too small for the loads in flight plus the deferred ones: a load that
 * finds no room flushes and goes on instead of failing. */
TEST(deferred_unloads_give_room_back_under_pressure)
{
	struct rig r;
	rig_up(&r, "hw.dmar.strict=0 hw.dmar.guard_pages=0");
	uint8_t *buf = rig_buf(&r, PG);
	rig_tag(&r, 16 * PG - 1, PG, 1, PG, 0, 1); /* IOVA pages 1..15 */
	unsigned before = iotlb_invalidations(&r);
	for (int i = 0; i < 100; i++) {
		REQUIRE_OK(dmar_dmamap_load(r.t, r.m, buf, PG, 0));
		CHECK(dmar_dmamap_segs(r.m)[0].addr < 16 * PG);
		CHECK_OK(dmar_dmamap_unload(r.t, r.m));
	}
	unsigned flushes = iotlb_invalidations(&r) - before;
	printf("  100 loads in a 15-page IOVA space: %u flushes\n", flushes);
	CHECK(flushes >= 6 && flushes <= 8);
	rig_down(&r);
}

/* One-page ranges a flush completed are handed out again before the allocator is
 * asked (the cheap load path), but only to a tag whose window holds them, and they go
 * back to the allocator when a wider load finds no room. */
TEST(deferred_recycled_pages_respect_the_tag_and_make_room)
{
	struct rig r;
	rig_up(&r, "hw.dmar.strict=0 hw.dmar.guard_pages=0 hw.dmar.defer_max=8");
	uint8_t *buf = rig_buf(&r, 9 * PG);
	rig_tag(&r, 16 * PG - 1, 8 * PG, 1, 8 * PG, 0, 1); /* IOVA pages 1..15 */
	struct dmar_dmamap *m[9];
	uint64_t iova[9];
	/* Map 0 is loaded strict: its unload gives its page back to the allocator at once.
	 * The other eight are unloaded deferred, the highest page last: the eighth
	 * deferred unload flushes them all. */
	for (unsigned i = 0; i < 9; i++) {
		REQUIRE_OK(dmar_dmamap_create(r.t, 0, &m[i]));
		REQUIRE_OK(dmar_dmamap_load(r.t, m[i], buf + i * PG, PG, i ? 0 : DMAR_DMA_STRICT));
		iova[i] = dmar_dmamap_segs(m[i])[0].addr;
		REQUIRE(i == 0 || iova[i] > iova[i - 1]); /* the allocator goes up here */
	}
	uint64_t top = iova[8], strict_page = iova[0];
	unsigned before = iotlb_invalidations(&r);
	for (unsigned i = 0; i < 9; i++)
		CHECK_OK(dmar_dmamap_unload(r.t, m[i]));
	CHECK_EQ(iotlb_invalidations(&r) - before, 2u); /* the strict unload, the flush */
	CHECK_EQ(dmar_domain_deferred(dmar_busdma_device_domain(r.dev)), 0u);

	/* A tag whose window ends below the newest recycled page never gets it. */
	struct dmar_dma_tag *low = busdma_test_tag(r.dev, top - 1, UINT64_MAX, PG, 1, PG, 0, 1);
	struct dmar_dmamap *lm;
	REQUIRE_OK(dmar_dmamap_create(low, 0, &lm));
	REQUIRE_OK(dmar_dmamap_load(low, lm, buf, PG, 0));
	CHECK_EQ(dmar_dmamap_segs(lm)[0].addr, strict_page);
	CHECK_EQ(device_dma(&r, dmar_busdma_device_sid(r.dev), lm, buf, MODEL_DMA_READ), 0);
	CHECK_OK(dmar_dmamap_unload(low, lm));
	/* The device's own tag takes it, and the device reaches the new buffer there. */
	REQUIRE_OK(dmar_dmamap_load(r.t, m[0], buf + 3 * PG, PG, 0));
	CHECK_EQ(dmar_dmamap_segs(m[0])[0].addr, top);
	memset(buf + 3 * PG, 0x5a, PG);
	uint8_t got[PG];
	CHECK_EQ(device_dma(&r, dmar_busdma_device_sid(r.dev), m[0], got, MODEL_DMA_READ), 0);
	CHECK_EQ(got[PG - 1], 0x5a);
	CHECK_OK(dmar_dmamap_unload(r.t, m[0]));

	/* Eight contiguous pages in a 15-page space holding seven recycled pages and two
	 * deferred ones: only with the recycled pages given back to the allocator. */
	REQUIRE_OK(dmar_dmamap_load(r.t, m[1], buf, 8 * PG, 0));
	CHECK_EQ(dmar_dmamap_nsegs(m[1]), 1u);
	CHECK_EQ(device_dma(&r, dmar_busdma_device_sid(r.dev), m[1], buf, MODEL_DMA_READ), 0);
	CHECK_OK(dmar_dmamap_unload(r.t, m[1]));
	CHECK_OK(dmar_dmamap_destroy(low, lm));
	CHECK_OK(dmar_dma_tag_destroy(low));
	for (unsigned i = 0; i < 9; i++)
		CHECK_OK(dmar_dmamap_destroy(r.t, m[i]));
	rig_down(&r);
}

/* Random loads and unloads, deferred and strict, flushes and ticks, against the model
 * with its sticky caches, through a tag of `lowaddr`: every loaded segment reaches
 * exactly its buffer's bytes, never a page of an earlier buffer at a recycled IOVA. */
static void recycled_case(uint64_t lowaddr)
{
	struct rig r;
	rig_up(&r, "hw.dmar.strict=0 hw.dmar.defer_max=64 hw.dmar.guard_pages=0");
	enum { NMAP = 8, NBUF = 24, STEPS = 100000 };
	uint8_t *pool = rig_buf(&r, NBUF * PG);
	for (unsigned b = 0; b < NBUF; b++)
		memset(pool + b * PG, 0x10 + b, PG);
	rig_tag(&r, lowaddr, 2 * PG, 2, PG, 0, 1);
	struct dmar_dmamap *maps[NMAP];
	int loaded[NMAP];
	for (unsigned i = 0; i < NMAP; i++) {
		REQUIRE_OK(dmar_dmamap_create(r.t, 0, &maps[i]));
		loaded[i] = -1;
	}
	uint64_t seed = 12345;
	unsigned bad = 0, loads = 0;
	for (unsigned step = 0; step < STEPS && !bad; step++) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		unsigned i = (unsigned)(seed >> 33) % NMAP, what = (unsigned)(seed >> 20) % 16;
		if (what == 0) {
			CHECK_OK(dmar_busdma_tick(r.bus));
			continue;
		}
		if (what == 1) {
			CHECK_OK(dmar_busdma_flush(r.bus));
			continue;
		}
		if (loaded[i] >= 0) {
			CHECK_OK(dmar_dmamap_unload(r.t, maps[i]));
			loaded[i] = -1;
			continue;
		}
		int b = (int)((seed >> 40) % NBUF);
		unsigned flags = what == 2 ? DMAR_DMA_STRICT : 0;
		if (dmar_dmamap_load(r.t, maps[i], pool + (unsigned)b * PG, PG, flags) != 0) {
			bad++;
			harness_fail(__FILE__, __LINE__, "load failed at step %u", step);
			break;
		}
		loaded[i] = b;
		loads++;
		/* The device reads the whole segment: it must be this buffer's bytes. */
		uint8_t got[PG];
		uint64_t iova = dmar_dmamap_segs(maps[i])[0].addr;
		int rc = dmar_posix_machine_dma(r.pm, r.unit, dmar_busdma_device_sid(r.dev), iova,
					   got, PG, MODEL_DMA_READ, NULL);
		if (rc || got[0] != 0x10 + b || got[PG - 1] != 0x10 + b) {
			bad++;
			harness_fail(__FILE__, __LINE__,
				     "step %u: IOVA 0x%llx of buffer %d read rc %d byte 0x%x",
				     step, (unsigned long long)iova, b, rc, got[0]);
		}
	}
	for (unsigned i = 0; i < NMAP; i++) {
		if (loaded[i] >= 0)
			CHECK_OK(dmar_dmamap_unload(r.t, maps[i]));
		CHECK_OK(dmar_dmamap_destroy(r.t, maps[i]));
	}
	printf("  %u steps, %u loads checked through the caches\n", STEPS, loads);
	rig_down(&r);
}

/* In a small space (IOVAs recycle through the allocator's one-page stack) and in a
 * wide one (one-page loads in the CPU's window, recycled at its flushes). */
TEST(deferred_recycled_iova_never_reaches_an_old_buffer)
{
	recycled_case(64 * PG - 1);
	recycled_case(0xffffffff);
}

/* ------------------------------------------------------- per-CPU windows --- */

static uint64_t window_of(uint64_t iova)
{
	return iova & ~(DMAR_WINDOW_SIZE - 1);
}

struct cpu_load {
	struct rig *r;
	struct dmar_dma_tag *t;
	uint8_t *page;            /* this thread's buffer page, its bytes all `tag` */
	uint8_t tag;
	pthread_barrier_t *both;  /* both loaded before either unloads */
	uint64_t iova;
	int load_rc, read_rc, after_rc;
	uint8_t got;
};

static void *cpu_load_thread(void *arg)
{
	struct cpu_load *c = arg;
	struct dmar_dmamap *m;
	uint16_t sid = dmar_busdma_device_sid(c->r->dev);
	c->load_rc = dmar_dmamap_create(c->t, 0, &m);
	if (!c->load_rc)
		c->load_rc = dmar_dmamap_load(c->t, m, c->page, PG, 0);
	if (!c->load_rc) {
		c->iova = dmar_dmamap_segs(m)[0].addr;
		c->read_rc = dmar_posix_machine_dma(c->r->pm, c->r->unit, sid, c->iova, &c->got, 1,
						    MODEL_DMA_READ, NULL);
	}
	pthread_barrier_wait(c->both);
	if (!c->load_rc) {
		c->load_rc = dmar_dmamap_unload(c->t, m);
		uint8_t x;
		c->after_rc = dmar_posix_machine_dma(c->r->pm, c->r->unit, sid, c->iova, &x, 1,
						     MODEL_DMA_READ, NULL);
		dmar_dmamap_destroy(c->t, m);
	}
	return NULL;
}

/* Two CPUs (threads of the host) load one page each on one device at once: each load
 * lands in its own CPU's window (a 2 MiB-aligned range of its own), the device reads
 * each buffer at its IOVA, and once unloaded (strictly) neither is reached. The
 * domain refuses a mapping of its own over a window. */
TEST(one_page_loads_of_two_cpus_go_to_their_own_windows)
{
	struct rig r;
	rig_up(&r, NULL);
	struct dmar_dma_tag *t = busdma_test_tag(r.dev, 0xffffffff, UINT64_MAX, PG, 1, PG, 0, 1);
	uint8_t *buf = rig_buf(&r, 2 * PG);
	pthread_barrier_t both;
	pthread_barrier_init(&both, NULL, 2);
	struct cpu_load c[2];
	pthread_t th[2];
	for (int i = 0; i < 2; i++) {
		memset(buf + i * PG, 0xa0 + i, PG);
		c[i] = (struct cpu_load){ .r = &r, .t = t, .page = buf + i * PG,
					  .tag = (uint8_t)(0xa0 + i), .both = &both };
		REQUIRE(pthread_create(&th[i], NULL, cpu_load_thread, &c[i]) == 0);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		CHECK_OK(c[i].load_rc);
		CHECK_EQ(c[i].read_rc, 0);
		CHECK_EQ(c[i].got, c[i].tag);
		CHECK_EQ(c[i].after_rc, VTD_FR_READ);
		CHECK(c[i].iova + PG - 1 <= 0xffffffffull);
	}
	CHECK(window_of(c[0].iova) != window_of(c[1].iova));
	pthread_barrier_destroy(&both);
	dmar_fault_poll(r.sys);
	struct dmar_domain *dom = dmar_busdma_device_domain(r.dev);
	CHECK_EQ(dmar_map(dom, window_of(c[0].iova), r.buf_pa, PG, DMAR_PROT_RW), DMAR_EBUSY);
	CHECK_OK(dmar_dma_tag_destroy(t));
	rig_down(&r);
}

/* A CPU's window holds 256 one-page loads (a guard page after each): the next one goes
 * to the space's allocator, outside the window; every load moves its own bytes, every
 * unload (strict) faults its IOVA; unloaded, the window serves again. */
TEST(a_full_window_sends_loads_to_the_allocator)
{
	struct rig r;
	rig_up(&r, NULL);
	enum { N = 300, NB = 16 };
	struct dmar_dma_tag *t = busdma_test_tag(r.dev, 0xffffffff, UINT64_MAX, PG, 1, PG, 0, 1);
	uint8_t *buf = rig_buf(&r, NB * PG);
	for (unsigned b = 0; b < NB; b++)
		memset(buf + b * PG, 0x30 + b, PG);
	struct dmar_dmamap *m[N];
	uint64_t iova[N];
	uint16_t sid = dmar_busdma_device_sid(r.dev);
	unsigned in_window = 0;
	for (unsigned i = 0; i < N; i++) {
		REQUIRE_OK(dmar_dmamap_create(t, 0, &m[i]));
		REQUIRE_OK(dmar_dmamap_load(t, m[i], buf + (i % NB) * PG, PG, 0));
		iova[i] = dmar_dmamap_segs(m[i])[0].addr;
		in_window += window_of(iova[i]) == window_of(iova[0]);
		uint8_t x = 0;
		CHECK_EQ(dmar_posix_machine_dma(r.pm, r.unit, sid, iova[i], &x, 1, MODEL_DMA_READ,
						NULL), 0);
		CHECK_EQ(x, 0x30 + i % NB);
	}
	CHECK_EQ(iova[0] & (DMAR_WINDOW_SIZE - 1), 0); /* the window's first page */
	CHECK_EQ(in_window, 256);
	CHECK_EQ(iova[1], iova[0] + 2 * PG); /* its guard page between */
	for (unsigned i = 256; i < N; i++)
		CHECK(window_of(iova[i]) != window_of(iova[0]));
	for (unsigned i = 0; i < N; i++) {
		CHECK_OK(dmar_dmamap_unload(t, m[i]));
		uint8_t x;
		CHECK_EQ(dmar_posix_machine_dma(r.pm, r.unit, sid, iova[i], &x, 1, MODEL_DMA_READ,
						NULL), VTD_FR_READ);
		dmar_fault_poll(r.sys);
	}
	REQUIRE_OK(dmar_dmamap_load(t, m[0], buf, PG, 0));
	CHECK_EQ(window_of(dmar_dmamap_segs(m[0])[0].addr), window_of(iova[0]));
	CHECK_OK(dmar_dmamap_unload(t, m[0]));
	for (unsigned i = 0; i < N; i++)
		CHECK_OK(dmar_dmamap_destroy(t, m[i]));
	CHECK_OK(dmar_dma_tag_destroy(t));
	rig_down(&r);
}

/* A tag whose lowaddr ends below the window: its one-page loads go to the allocator,
 * under lowaddr; with hw.dmar.cpu_windows=0 no load ever lands in a window. */
TEST(one_page_loads_outside_windows_when_the_tag_or_the_tunable_says_so)
{
	for (int off = 0; off < 2; off++) {
		struct rig r;
		rig_up(&r, off ? "hw.dmar.cpu_windows=0" : NULL);
		struct dmar_dma_tag *wide = busdma_test_tag(r.dev, 0xffffffff, UINT64_MAX, PG, 1,
							    PG, 0, 1);
		struct dmar_dma_tag *low = busdma_test_tag(r.dev, 0xfffff, UINT64_MAX, PG, 1, PG, 0,
							   1);
		uint8_t *buf = rig_buf(&r, PG);
		struct dmar_dmamap *mw, *ml;
		REQUIRE_OK(dmar_dmamap_create(wide, 0, &mw));
		REQUIRE_OK(dmar_dmamap_create(low, 0, &ml));
		REQUIRE_OK(dmar_dmamap_load(wide, mw, buf, PG, 0));
		REQUIRE_OK(dmar_dmamap_load(low, ml, buf, PG, 0));
		uint64_t a = dmar_dmamap_segs(mw)[0].addr, b = dmar_dmamap_segs(ml)[0].addr;
		CHECK(b + PG - 1 <= 0xfffff);
		/* Whether a lies in a window: the domain refuses a mapping of its own there. */
		struct dmar_domain *dom = dmar_busdma_device_domain(r.dev);
		uint64_t spare = window_of(a) + 100 * PG;
		int rc = dmar_map(dom, spare, r.buf_pa, PG, DMAR_PROT_RW);
		CHECK_EQ(rc, off ? 0 : DMAR_EBUSY);
		if (!rc)
			CHECK_OK(dmar_unmap(dom, spare, PG));
		CHECK(window_of(b) != window_of(a));
		CHECK_EQ(dma_at(&r, a, 8, MODEL_DMA_READ), 0);
		CHECK_EQ(dma_at(&r, b, 8, MODEL_DMA_READ), 0);
		CHECK_OK(dmar_dmamap_unload(wide, mw));
		CHECK_OK(dmar_dmamap_unload(low, ml));
		CHECK_OK(dmar_dmamap_destroy(wide, mw));
		CHECK_OK(dmar_dmamap_destroy(low, ml));
		CHECK_OK(dmar_dma_tag_destroy(wide));
		CHECK_OK(dmar_dma_tag_destroy(low));
		rig_down(&r);
	}
}

/* Every allocation of a device's first one-page load failing in turn (the slot, its
 * lock, the window's IOVA bookkeeping and table pages): the load still succeeds (the
 * allocator's way when the window cannot be had) or fails cleanly, and nothing leaks. */
TEST(fail_nth_across_a_first_one_page_load)
{
	struct rig r;
	rig_up(&r, NULL);
	uint8_t *buf = rig_buf(&r, PG);
	memset(buf, 0x5a, PG);
	uint64_t allocs0 = dmar_posix_machine_allocs_outstanding(r.pm);
	uint64_t pages0 = dmar_posix_machine_pages_outstanding(r.pm);
	unsigned n, windowed = 0;
	for (n = 1; n < 200; n++) {
		struct dmar_busdma_dev *dev = NULL;
		struct dmar_dma_tag *t = NULL;
		struct dmar_dmamap *m = NULL;
		struct dmar_pci_addr a = { 0, 0, 5, 0 };
		REQUIRE_OK(dmar_busdma_device(r.bus, a, NULL, NULL, &dev));
		t = busdma_test_tag(dev, 0xffffffff, UINT64_MAX, PG, 1, PG, 0, 1);
		REQUIRE_OK(dmar_dmamap_create(t, 0, &m));
		dmar_posix_machine_fail_nth(r.pm, n);
		int rc = dmar_dmamap_load(t, m, buf, PG, 0);
		bool failed = dmar_posix_machine_failed(r.pm);
		dmar_posix_machine_fail_nth(r.pm, 0);
		if (rc) {
			CHECK_EQ(rc, DMAR_ENOMEM);
		} else {
			uint64_t iova = dmar_dmamap_segs(m)[0].addr;
			windowed += (iova & (DMAR_WINDOW_SIZE - 1)) == 0;
			uint8_t x = 0;
			CHECK_EQ(dmar_posix_machine_dma(r.pm, r.unit, dmar_busdma_device_sid(dev), iova,
							&x, 1, MODEL_DMA_READ, NULL), 0);
			CHECK_EQ(x, 0x5a);
			CHECK_OK(dmar_dmamap_unload(t, m));
		}
		CHECK_OK(dmar_dmamap_destroy(t, m));
		CHECK_OK(dmar_dma_tag_destroy(t));
		CHECK_OK(dmar_busdma_device_destroy(dev));
		CHECK_EQ(dmar_posix_machine_allocs_outstanding(r.pm), allocs0);
		CHECK_EQ(dmar_posix_machine_pages_outstanding(r.pm), pages0);
		if (!rc && !failed)
			break;
	}
	CHECK(n > 3 && n < 200);
	CHECK(windowed >= 1); /* the run without a failure */
	rig_down(&r);
}
