/*
 * The remapping core's own cost: dmar_map/dmar_unmap on a null-hardware unit (registers
 * acknowledge at once, queued-invalidation wait descriptors complete at once, nothing is
 * translated), one thread, medians of several rounds, beside a floor loop that only
 * stores 8-byte entries into table pages, measured in the same run.
 */
#include "bench.h"
#include "dmar/dmar.h"
#include "null_port.h"
#include "regs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROUNDS 15
#define KIB4 4096ull
#define MIB2 (2ull << 20)
#define GIB (1ull << 30)

#define REG_BASE 0xfed90000ull
#define SID VTD_SID(0, 3, 0)

static struct null_port *np;
static struct dmar_system *sys;
static struct dmar_unit *unit;

static struct dmar_domain *setup(unsigned sllps)
{
	struct model_config m;
	dmar_model_config_default(&m);
	m.c = true; /* coherent: no cache flushing, so the library's own cost shows */
	m.sllps = sllps;
	np = null_port_create(&m, REG_BASE, 4096);
	if (!np || null_port_system(np, NULL, &sys, &unit)) {
		fprintf(stderr, "bench: bring-up failed\n");
		exit(1);
	}
	struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED };
	struct dmar_domain *d;
	if (dmar_domain_create(unit, &p, &d) || dmar_domain_attach(d, SID)) {
		fprintf(stderr, "bench: domain setup failed\n");
		exit(1);
	}
	return d;
}

static void must(int rc, const char *what)
{
	if (rc) {
		fprintf(stderr, "bench: %s: %s\n", what, dmar_strerror(rc));
		exit(1);
	}
}

/* Timed loops only count failed calls (a branch the predictor always gets right):
 * checked after the timing, a figure of calls that failed is no figure. */
static void none_failed(unsigned failures, const char *what)
{
	if (failures) {
		fprintf(stderr, "bench: %s: %u calls failed\n", what, failures);
		exit(1);
	}
}

static void teardown(struct dmar_domain *d)
{
	must(dmar_domain_detach(d, SID), "detach");
	must(dmar_domain_destroy(d), "domain destroy");
	dmar_system_destroy(sys);
	if (null_port_pages_in_use(np)) {
		fprintf(stderr, "bench: %zu table pages leaked\n", null_port_pages_in_use(np));
		exit(1);
	}
	null_port_destroy(np);
}

static void row(const char *what, double ns, const char *target, bool ok, const char *note)
{
	char val[32];
	if (ns >= 10000)
		snprintf(val, sizeof(val), "%.1f us", ns / 1000);
	else
		snprintf(val, sizeof(val), "%.1f ns", ns);
	printf("| %-58s | %12s | %-12s | %-4s | %s\n", what, val, target, ok ? "yes" : "NO", note);
}

int main(void)
{
	double s[ROUNDS], s2[ROUNDS];
	const uint64_t phys_base = 0x200000000ull; /* never touched: no translation */
	printf("dmar core on the null-hardware port (QEMU CAP/ECAP but coherent; pre-allocated page pool),\n"
	       "one thread, median of %d rounds\n\n", ROUNDS);
	printf("| %-58s | %12s | %-12s | %-4s | %s\n", "operation", "median", "target", "met", "note");
	printf("|%s|%s|%s|%s|---\n", "------------------------------------------------------------",
	       "--------------", "--------------", "------");

	/* 4 KiB map into an existing path, and 4 KiB unmap with its invalidation. */
	struct dmar_domain *d = setup(3);
	must(dmar_map(d, 0x40000000 + 511 * KIB4, phys_base, KIB4, DMAR_PROT_RW), "anchor");
	struct dmar_unit_stats st0, st1;
	unsigned map_failures = 0, unmap_failures = 0;
	for (int r = 0; r < ROUNDS; r++) {
		uint64_t t0 = bench_now_ns();
		for (int i = 0; i < 511; i++)
			map_failures += dmar_map(d, 0x40000000 + i * KIB4, phys_base + i * KIB4,
						 KIB4,
						 DMAR_PROT_RW) != 0;
		uint64_t t1 = bench_now_ns();
		dmar_unit_get_stats(unit, &st0);
		for (int i = 0; i < 511; i++)
			unmap_failures += dmar_unmap(d, 0x40000000 + i * KIB4, KIB4) != 0;
		uint64_t t2 = bench_now_ns();
		dmar_unit_get_stats(unit, &st1);
		s[r] = (double)(t1 - t0) / 511;
		s2[r] = (double)(t2 - t1) / 511;
	}
	none_failed(map_failures, "map 4 KiB");
	none_failed(unmap_failures, "unmap 4 KiB");
	double map4k = bench_median(s, ROUNDS), unmap4k = bench_median(s2, ROUNDS);
	char note[128];
	row("map 4 KiB into an existing table path", map4k, "<= 50 ns", map4k <= 50, "");
	snprintf(note, sizeof(note), "%.2f page-selective invalidations + %.2f waits per unmap",
		 (double)(st1.iotlb_page - st0.iotlb_page) / 511, (double)(st1.waits - st0.waits) / 511);
	row("unmap 4 KiB, invalidation issued and completed", unmap4k, "<= 150 ns", unmap4k <= 150, note);
	teardown(d);

	/* 1 GiB at 2 MiB alignment on a unit with 2 MiB pages only: 512 leaves. */
	d = setup(1);
	for (int r = 0; r < ROUNDS; r++) {
		uint64_t t0 = bench_now_ns();
		must(dmar_map(d, GIB, phys_base + MIB2, GIB, DMAR_PROT_RW), "map 1G/2M");
		uint64_t t1 = bench_now_ns();
		must(dmar_unmap(d, GIB, GIB), "unmap 1G/2M");
		s[r] = (double)(t1 - t0);
	}
	double g2m = bench_median(s, ROUNDS);
	row("map 1 GiB, 2 MiB-aligned: 512 leaf entries in one page", g2m, "<= 5 us", g2m <= 5000, "");
	teardown(d);

	/* 1 GiB at 1 GiB alignment with 1 GiB pages: one entry. */
	d = setup(3);
	for (int r = 0; r < ROUNDS; r++) {
		uint64_t t0 = bench_now_ns();
		must(dmar_map(d, GIB, phys_base + GIB, GIB, DMAR_PROT_RW), "map 1G/1G");
		uint64_t t1 = bench_now_ns();
		must(dmar_unmap(d, GIB, GIB), "unmap 1G/1G");
		s[r] = (double)(t1 - t0);
	}
	struct dmar_domain_info di;
	must(dmar_map(d, GIB, phys_base + GIB, GIB, DMAR_PROT_RW), "map 1G/1G");
	dmar_domain_get_info(d, &di);
	snprintf(note, sizeof(note), "%llu table page: the 1 GiB leaf sits in the 3-level root",
		 (unsigned long long)di.table_pages);
	double g1g = bench_median(s, ROUNDS);
	row("map 1 GiB, 1 GiB-aligned, unit with 1 GiB pages", g1g, "one entry", di.table_pages == 1, note);
	teardown(d);

	/* 1 GiB at a 1 GiB IOVA but 4 KiB-aligned phys: 262,144 leaves in 512 pages, vs
	 * the floor: the same stores into 512 pre-allocated pages. */
	d = setup(3);
	uint64_t *floor_pages = aligned_alloc(4096, 512 * 4096);
	memset(floor_pages, 0, 512 * 4096);
	double floor_s[ROUNDS];
	for (int r = 0; r < ROUNDS; r++) {
		uint64_t t0 = bench_now_ns();
		uint64_t pa = phys_base + KIB4;
		for (unsigned i = 0; i < 262144; i++, pa += KIB4)
			floor_pages[i] = pa | VTD_SL_R | VTD_SL_W;
		uint64_t t1 = bench_now_ns();
		bench_keep(floor_pages[r * 1000]);
		floor_s[r] = (double)(t1 - t0);
		t0 = bench_now_ns();
		must(dmar_map(d, GIB, phys_base + KIB4, GIB, DMAR_PROT_RW), "map 1G/4K");
		t1 = bench_now_ns();
		if (r == 0)
			dmar_domain_get_info(d, &di);
		must(dmar_unmap(d, GIB, GIB), "unmap 1G/4K");
		s[r] = (double)(t1 - t0);
	}
	free(floor_pages);
	double g4k = bench_median(s, ROUNDS), fl = bench_median(floor_s, ROUNDS);
	snprintf(note, sizeof(note), "%.2fx the floor loop (%.1f us); %llu table pages",
		 g4k / fl, fl / 1000, (unsigned long long)di.table_pages);
	row("map 1 GiB, 1 GiB IOVA, 4 KiB-aligned phys: 262,144 leaves", g4k, "<= 5x floor",
	    g4k <= 5 * fl, note);
	row("floor: 262,144 8-byte stores into 512 pre-allocated pages", fl, "", true, "");

	/* Unmap of 1 GiB in 4 KiB pieces. */
	must(dmar_map(d, GIB, phys_base + KIB4, GIB, DMAR_PROT_RW), "map 1G/4K");
	dmar_unit_get_stats(unit, &st0);
	unsigned piece_failures = 0;
	uint64_t t0 = bench_now_ns();
	for (uint64_t off = 0; off < GIB; off += KIB4)
		piece_failures += dmar_unmap(d, GIB + off, KIB4) != 0;
	uint64_t t1 = bench_now_ns();
	none_failed(piece_failures, "unmap 4 KiB piece of 1 GiB");
	dmar_unit_get_stats(unit, &st1);
	uint64_t inv = (st1.iotlb_page - st0.iotlb_page) + (st1.iotlb_domain - st0.iotlb_domain) +
		       (st1.iotlb_global - st0.iotlb_global);
	snprintf(note, sizeof(note), "%llu invalidations for 262,144 unmaps (%.2f per call); total %.1f ms",
		 (unsigned long long)inv, (double)inv / 262144, (double)(t1 - t0) / 1e6);
	row("unmap 1 GiB in 4 KiB pieces (per unmap)", (double)(t1 - t0) / 262144, "1 inval/call",
	    inv == 262144, note);
	teardown(d);
	return 0;
}
