/*
 * bench_busdma.c - cost of a busdma load + unload through a tag of a translated device,
 * on the null-hardware port (ports/null: a unit model in null_hw mode, where every
 * command and invalidation acknowledges at once, and a pre-allocated table-page pool),
 * one thread. Beside it, the floor of the general path: dmar_map + dmar_unmap of the
 * same pages at the IOVA the load got (the remapping core alone, with its invalidation),
 * measured in the same run; the difference is what busdma itself costs (IOVA
 * allocation, page walk, segments). A one-page load goes to the CPU's window instead
 * (dmar_window: no domain lock, no walk), so its floor is taken at an IOVA outside the
 * windows (FLOOR_IOVA) and the difference can be negative: the window path costs less
 * than the general one. Each case runs several rounds; the table shows the medians per
 * load+unload.
 */
#include "bench.h"
#include "dmar/busdma.h"
#include "null_port.h"

#include <stdlib.h>

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define PG 4096ull
#define UNIT_BASE 0xfed90000ull
#define ROUNDS 15
#define FLOOR_IOVA 0xc0000000ull /* far above where this run's loads go */

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_busdma: %s failed: %s\n", what, dmar_strerror(rc));
	exit(1);
}

static double per_op_ns(uint64_t t0, uint64_t t1, unsigned iters)
{
	return (double)(t1 - t0) / iters;
}

/* ns per load+unload; *iova: where the loads went. */
static double time_loads(struct dmar_dma_tag *tag, struct dmar_dmamap *map, uint8_t *buf,
			 uint64_t size, unsigned iters, uint64_t *iova)
{
	int rc;
	uint64_t t0 = bench_now_ns();
	for (unsigned i = 0; i < iters; i++) {
		if ((rc = dmar_dmamap_load(tag, map, buf, size, 0)))
			die("dmar_dmamap_load", rc);
		*iova = dmar_dmamap_segs(map)[0].addr;
		if ((rc = dmar_dmamap_unload(tag, map)))
			die("dmar_dmamap_unload", rc);
	}
	return per_op_ns(t0, bench_now_ns(), iters);
}

/* ns per dmar_map + dmar_unmap of the same pages at `iova`. */
static double time_floor(struct dmar_domain *dom, uint64_t iova, uint64_t pa, uint64_t size,
			 unsigned iters)
{
	int rc;
	uint64_t t0 = bench_now_ns();
	for (unsigned i = 0; i < iters; i++) {
		if ((rc = dmar_map(dom, iova, pa, size, DMAR_PROT_RW)))
			die("dmar_map", rc);
		if ((rc = dmar_unmap(dom, iova, size)))
			die("dmar_unmap", rc);
	}
	return per_op_ns(t0, bench_now_ns(), iters);
}

int main(void)
{
	struct null_port *np = null_port_create(NULL, UNIT_BASE, 4096);
	if (!np) {
		fprintf(stderr, "bench_busdma: no null-hardware port\n");
		return 1;
	}
	const struct dmar_os *os = null_port_os(np);
	struct dmar_config cfg;
	dmar_config_default(&cfg);
	struct dmar_system *sys;
	struct dmar_unit *unit;
	struct dmar_busdma *bus;
	struct dmar_busdma_dev *dev;
	int rc;
	if ((rc = null_port_system(np, &cfg, &sys, &unit)))
		die("system bring-up", rc);
	if ((rc = dmar_busdma_create(os, &cfg, sys, &bus)))
		die("dmar_busdma_create", rc);
	struct dmar_pci_addr a = { 0, 0, 3, 0 };
	if ((rc = dmar_busdma_device(bus, a, NULL, NULL, &dev)))
		die("dmar_busdma_device", rc);
	if (dmar_busdma_device_mode(dev) != DMAR_BUSDMA_TRANSLATE) {
		fprintf(stderr, "bench_busdma: device not translated\n");
		return 1;
	}
	struct dmar_dma_tag_params p;
	dmar_dma_tag_params_default(&p);
	p.lowaddr = 0xffffffff;
	p.maxsize = 1 << 20;
	p.maxsegsz = 1 << 20;
	p.nsegments = 1;
	struct dmar_dma_tag *tag;
	struct dmar_dmamap *map;
	if ((rc = dmar_dma_tag_create(dev, NULL, &p, &tag)))
		die("dmar_dma_tag_create", rc);
	if ((rc = dmar_dmamap_create(tag, 0, &map)))
		die("dmar_dmamap_create", rc);
	/* The null port takes any pointer as its own physical address. */
	uint8_t *buf = aligned_alloc(PG, 1 << 20);
	uint64_t buf_pa = (uint64_t)(uintptr_t)buf;
	if (!buf) {
		fprintf(stderr, "bench_busdma: no DMA buffer\n");
		return 1;
	}
	struct dmar_domain *dom = dmar_busdma_device_domain(dev);

	printf("busdma: load+unload through a 32-bit tag of a translated device; null-hardware "
	       "model, one thread, medians of %d rounds\n", ROUNDS);
	printf("floor = dmar_map + dmar_unmap of the same pages at the same IOVA (4 KiB: at an IOVA "
	       "outside the CPU's window, where the load goes); busdma = ns - floor\n\n");
	printf("%-10s %8s %12s %12s %12s\n", "size", "iters", "ns", "floor ns", "busdma ns");
	const uint64_t sizes[] = { 4096, 64 * 1024, 1 << 20 };
	double m4k = 0;
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint64_t size = sizes[k];
		unsigned iters = (unsigned)(size <= 4096 ? 20000 : size <= 65536 ? 4000 : 300);
		double ns[ROUNDS], floor_ns[ROUNDS], own_ns[ROUNDS];
		uint64_t iova = 0;
		time_loads(tag, map, buf, size, 1, &iova); /* where loads of this size go */
		uint64_t floor_iova = size == PG ? FLOOR_IOVA : iova; /* (4 KiB: a window) */
		for (int r = 0; r < ROUNDS; r++) {
			/* Alternate which loop runs first: the second finds warm caches. */
			if (r % 2) {
				floor_ns[r] = time_floor(dom, floor_iova, buf_pa, size, iters);
				ns[r] = time_loads(tag, map, buf, size, iters, &iova);
			} else {
				ns[r] = time_loads(tag, map, buf, size, iters, &iova);
				floor_ns[r] = time_floor(dom, floor_iova, buf_pa, size, iters);
			}
			own_ns[r] = ns[r] - floor_ns[r];
		}
		double m = bench_median(ns, ROUNDS), f = bench_median(floor_ns, ROUNDS);
		if (size == 4096)
			m4k = m;
		double o = bench_median(own_ns, ROUNDS);
		char name[32];
		snprintf(name, sizeof(name), "%" PRIu64 " KiB", size / 1024);
		printf("%-10s %8u %12.1f %12.1f %12.1f\n", name, iters, m, f, o);
	}
	printf("\ntarget: 4 KiB load+unload <= 250 ns: %s (%.1f ns)\n", m4k <= 250 ? "met" : "NOT met",
	       m4k);

	/* Deferred invalidation (hw.dmar.strict=0) beside strict, in the same rounds: a
	 * second device whose unloads defer, 4 KiB loads. */
	struct dmar_pci_addr a2 = { 0, 0, 4, 0 };
	struct dmar_busdma_dev *dev2;
	struct dmar_dma_tag *tag2;
	struct dmar_dmamap *map2;
	if ((rc = dmar_busdma_device(bus, a2, NULL, NULL, &dev2)))
		die("dmar_busdma_device", rc);
	dmar_busdma_device_set_strict(dev2, false);
	if ((rc = dmar_dma_tag_create(dev2, NULL, &p, &tag2)))
		die("dmar_dma_tag_create", rc);
	if ((rc = dmar_dmamap_create(tag2, 0, &map2)))
		die("dmar_dmamap_create", rc);
	struct dmar_unit_stats st0, st1;
	double strict_ns[ROUNDS], deferred_ns[ROUNDS], ratio[ROUNDS];
	const unsigned iters = 20000;
	uint64_t inval = 0, unloads = 0, iova = 0;
	for (int r = 0; r < ROUNDS; r++) {
		if (r % 2) {
			strict_ns[r] = time_loads(tag, map, buf, 4096, iters, &iova);
			dmar_unit_get_stats(unit, &st0);
			deferred_ns[r] = time_loads(tag2, map2, buf, 4096, iters, &iova);
			dmar_unit_get_stats(unit, &st1);
		} else {
			dmar_unit_get_stats(unit, &st0);
			deferred_ns[r] = time_loads(tag2, map2, buf, 4096, iters, &iova);
			dmar_unit_get_stats(unit, &st1);
			strict_ns[r] = time_loads(tag, map, buf, 4096, iters, &iova);
		}
		inval += (st1.iotlb_page + st1.iotlb_domain + st1.iotlb_global) -
			 (st0.iotlb_page + st0.iotlb_domain + st0.iotlb_global);
		unloads += iters;
		ratio[r] = deferred_ns[r] / strict_ns[r];
	}
	double ms = bench_median(strict_ns, ROUNDS), md = bench_median(deferred_ns, ROUNDS);
	double mr = bench_median(ratio, ROUNDS);
	printf("\ndeferred invalidation (hw.dmar.strict=0, defer_max %u), 4 KiB load+unload:\n",
	       cfg.defer_max);
	printf("  strict %.1f ns, deferred %.1f ns: %.2fx (target <= 0.5x: %s); "
	       "%.2f invalidations per 1,000 deferred unloads (target <= 4: %s)\n",
	       ms, md, mr, mr <= 0.5 ? "met" : "NOT met", 1000.0 * (double)inval / (double)unloads,
	       1000.0 * (double)inval / (double)unloads <= 4 ? "met" : "NOT met");

	/* The core alone: dmar_unmap_deferred of 4 KiB, the flush amortised over a batch of
	 * defer_max (maps of the batch untimed). */
	double un_ns[ROUNDS];
	const unsigned batch = cfg.defer_max;
	for (int r = 0; r < ROUNDS; r++) {
		uint64_t spent = 0;
		for (unsigned k = 0; k < 40; k++) {
			for (unsigned i = 0; i < batch; i++)
				if ((rc = dmar_map(dom, 0x10000000ull + i * PG, buf_pa, PG, DMAR_PROT_RW)))
					die("dmar_map", rc);
			uint64_t t0 = bench_now_ns();
			for (unsigned i = 0; i < batch; i++)
				if ((rc = dmar_unmap_deferred(dom, 0x10000000ull + i * PG, PG)))
					die("dmar_unmap_deferred", rc);
			if ((rc = dmar_domain_flush(dom)))
				die("dmar_domain_flush", rc);
			spent += bench_now_ns() - t0;
		}
		un_ns[r] = (double)spent / (40.0 * batch);
	}
	double mu = bench_median(un_ns, ROUNDS);
	printf("  dmar_unmap_deferred of 4 KiB, one flush per %u: %.1f ns amortised "
	       "(target <= 20 ns: %s)\n", batch, mu, mu <= 20 ? "met" : "NOT met");
	dmar_dmamap_destroy(tag2, map2);
	dmar_dma_tag_destroy(tag2);
	dmar_busdma_device_destroy(dev2);

	dmar_dmamap_destroy(tag, map);
	dmar_dma_tag_destroy(tag);
	free(buf);
	dmar_busdma_device_destroy(dev);
	dmar_busdma_destroy(bus);
	dmar_system_destroy(sys);
	null_port_destroy(np);
	return 0;
}
