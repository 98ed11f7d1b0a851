/*
 * The remapping core on the simulated machine: every mechanism through the public API,
 * checked by the model's DMA with its sticky caches, over a matrix of unit variants.
 */
#include "harness.h"
#include "simsys.h"
#include "regs.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define SID_A VTD_SID(0, 3, 0)
#define SID_B VTD_SID(0, 4, 0)
#define SID_C VTD_SID(2, 0, 1)

struct variant {
	const char *name;
	int qi;          /* hw.dmar.qi */
	unsigned width;  /* domain width asked for */
	bool cm, coherent, rwbf;
	unsigned nfr;
	bool pt;
	unsigned sagaw, mgaw; /* 0: all three table depths, 57 bits */
	bool no_qi;           /* the unit has no queued invalidation */
};

static const struct variant variants[] = {
	{ "qemu-default(qi)", -1, 39, false, false, false, 1, true, 0, 0, false },
	{ "registers", 0, 39, false, false, false, 1, true, 0, 0, false },
	{ "4-level", -1, 48, false, false, false, 1, true, 0, 0, false },
	{ "5-level", -1, 57, false, false, false, 1, true, 0, 0, false },
	{ "caching-mode", -1, 39, true, false, false, 1, true, 0, 0, false },
	{ "caching-mode+registers", 0, 39, true, false, false, 1, true, 0, 0, false },
	{ "coherent", -1, 39, false, true, false, 1, true, 0, 0, false },
	{ "rwbf", 0, 39, false, false, true, 1, true, 0, 0, false },
	{ "nfr8", -1, 48, false, true, false, 8, true, 0, 0, false },
	{ "no-pt", -1, 39, false, false, false, 1, false, 0, 0, false },
	/* Client graphics units: only 4-level tables, MGAW 39; the default width. */
	{ "sagaw48-only-mgaw39", -1, 0, false, false, false, 1, true, VTD_SAGAW_48, 39, false },
	/* 2008 chipsets: MGAW 36, no QI, no PT, RWBF; the default width. */
	{ "mgaw36-no-qi-rwbf", -1, 0, false, false, true, 1, false, VTD_SAGAW_39, 36, true },
};

static void variant_configs(const struct variant *v, struct model_config *m, struct dmar_config *c)
{
	dmar_model_config_default(m);
	m->sagaw = v->sagaw ? v->sagaw : VTD_SAGAW_39 | VTD_SAGAW_48 | VTD_SAGAW_57;
	m->mgaw = v->mgaw ? v->mgaw : 57;
	m->qi = !v->no_qi;
	m->cm = v->cm;
	m->c = v->coherent;
	m->rwbf = v->rwbf;
	m->nfr = v->nfr;
	m->pt = v->pt;
	dmar_config_default(c);
	c->qi = v->qi;
	c->timeout_ns = 10000000ull;
}

static int up(struct simsys *s, const struct variant *v)
{
	struct model_config m;
	struct dmar_config c;
	variant_configs(v, &m, &c);
	return simsys_up(s, &m, &c);
}

static struct dmar_domain *new_domain(struct simsys *s, enum dmar_domain_kind kind, unsigned width)
{
	struct dmar_domain_params p = { .kind = kind, .width = width, .identity_limit = 0 };
	struct dmar_domain *d = NULL;
	if (kind == DMAR_DOMAIN_IDENTITY)
		p.identity_limit = 4 * GIB; /* the simulated RAM sits at 1 GiB */
	int rc = dmar_domain_create(s->unit, &p, &d);
	if (rc)
		harness_fail(__FILE__, __LINE__, "domain_create: %s", dmar_strerror(rc));
	return d;
}

static void fill(void *p, size_t n, unsigned seed)
{
	unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(seed + i * 7);
}

typedef void (*scenario_fn)(struct simsys *s, const struct variant *v);

/* Runs a scenario once per variant, each on a fresh machine that must end clean. */
static void each_variant(scenario_fn fn)
{
	for (size_t i = 0; i < DMAR_ARRAY_SIZE(variants); i++) {
		const struct variant *v = &variants[i];
		struct simsys s;
		harness_set_context(v->name);
		int rc = up(&s, v);
		if (rc)
			harness_fail(__FILE__, __LINE__, "bring-up failed: %s", dmar_strerror(rc));
		else
			fn(&s, v);
		if (simsys_down(&s))
			harness_fail(__FILE__, __LINE__, "leak or coherency error");
	}
	harness_set_context(NULL);
}

static void map_then_dma_works_body(struct simsys *s, const struct variant *v)
{
	struct dmar_domain *d = new_domain(s, DMAR_DOMAIN_TRANSLATED, v->width);
	REQUIRE(d);
	uint64_t pa;
	unsigned char *buf = simsys_buffer(s, 3 * 4096, &pa);
	fill(buf, 3 * 4096, 1);
	uint64_t iova = 0x7000000000ull & ((1ull << 38) - 1); /* differs from pa */
	iova = 0x12345000ull;
	CHECK_OK(dmar_map(d, iova, pa, 3 * 4096, DMAR_PROT_RW));
	CHECK_OK(dmar_domain_attach(d, SID_A));
	unsigned char got[3 * 4096];
	CHECK_EQ(simsys_dma(s, SID_A, iova + 100, got, sizeof(got) - 200, false), 0);
	CHECK(memcmp(got, buf + 100, sizeof(got) - 200) == 0);
	unsigned char src[512];
	fill(src, sizeof(src), 99);
	CHECK_EQ(simsys_dma(s, SID_A, iova + 4096 - 256, src, sizeof(src), true), 0);
	CHECK(memcmp(buf + 4096 - 256, src, sizeof(src)) == 0);
	uint64_t phys;
	unsigned prot;
	CHECK_OK(dmar_lookup(d, iova + 8192, &phys, &prot));
	CHECK_EQ(phys, pa + 8192);
	CHECK_EQ(prot, DMAR_PROT_RW);
	struct dmar_unit_info ui;
	dmar_unit_get_info(s->unit, &ui);
	CHECK(ui.translating);
	CHECK_EQ(ui.qi, v->qi != 0 && !v->no_qi);
	CHECK_OK(dmar_domain_detach(d, SID_A));
	CHECK_OK(dmar_domain_destroy(d));
}

TEST(map_then_dma_works)
{
	each_variant(map_then_dma_works_body);
}

static void unmap_then_dma_faults_body(struct simsys *s, const struct variant *v)
{
	struct dmar_domain *d = new_domain(s, DMAR_DOMAIN_TRANSLATED, v->width);
	REQUIRE(d);
	uint64_t pa;
	unsigned char *buf = simsys_buffer(s, 4 * 4096, &pa);
	uint64_t iova = 0x40000000ull;
	CHECK_OK(dmar_map(d, iova, pa, 4 * 4096, DMAR_PROT_RW));
	CHECK_OK(dmar_domain_attach(d, SID_A));
	unsigned char b[64];
	/* Warm the IOTLB for every page, so a missing invalidation shows. */
	for (int i = 0; i < 4; i++)
		CHECK_EQ(simsys_dma(s, SID_A, iova + i * 4096ull, b, sizeof(b), false), 0);
	CHECK_OK(dmar_unmap(d, iova + 4096, 4096));
	memset(buf + 4096, 0xaa, 4096);
	memset(b, 0x55, sizeof(b));
	CHECK_EQ(simsys_dma(s, SID_A, iova + 4096, b, sizeof(b), true), VTD_FR_WRITE);
	CHECK_EQ(buf[4096], 0xaa);
	CHECK_EQ(simsys_dma(s, SID_A, iova + 4096, b, sizeof(b), false), VTD_FR_READ);
	/* neighbours still work */
	CHECK_EQ(simsys_dma(s, SID_A, iova, b, sizeof(b), false), 0);
	CHECK_EQ(simsys_dma(s, SID_A, iova + 2 * 4096, b, sizeof(b), false), 0);
	CHECK_EQ(dmar_unmap(d, iova + 4096, 4096), DMAR_ENOENT);
	dmar_fault_poll(s->sys);
	CHECK_OK(dmar_domain_detach(d, SID_A));
	CHECK_OK(dmar_domain_destroy(d));
}

TEST(unmap_then_dma_faults)
{
	each_variant(unmap_then_dma_faults_body);
}

/* The emptied leaf table stays linked; when another table empties it is freed, and its
 * page is soon a table for another region. A DMA to the old region must then fault:
 * with a missing or too-narrow invalidation, the unit's paging-structure caches would
 * still lead there through the freed page, now holding present entries. Both ways of
 * reporting the freed table are covered: next to the unmap (one joined invalidation)
 * and far away (an invalidation of its own). */
static void freed_kept_table_is_not_walked_body(struct simsys *s, const struct variant *v)
{
	struct dmar_domain *d = new_domain(s, DMAR_DOMAIN_TRANSLATED, v->width);
	REQUIRE(d);
	uint64_t pa;
	unsigned char *buf = simsys_buffer(s, 4 * 4096, &pa);
	unsigned char b[64];
	static const struct {
		uint64_t x, y, z; /* emptied first, emptied next, mapped last */
		const char *what;
	} cases[] = {
		{ 0x40000000ull, 0x40200000ull, 0x40400000ull, "neighbouring regions" },
		{ 0x40000000ull, 0x80000000ull, 0xc0000000ull, "far regions" },
	};
	CHECK_OK(dmar_domain_attach(d, SID_A));
	fill(buf, 4 * 4096, 9);
	for (size_t i = 0; i < DMAR_ARRAY_SIZE(cases); i++) {
		uint64_t x = cases[i].x, y = cases[i].y, z = cases[i].z;
		CHECK_OK(dmar_map(d, x, pa, 4096, DMAR_PROT_RW));
		CHECK_EQ(simsys_dma(s, SID_A, x, b, sizeof(b), false), 0); /* warm the caches */
		CHECK_OK(dmar_unmap(d, x, 4096));
		CHECK_EQ(simsys_dma(s, SID_A, x, b, sizeof(b), false), VTD_FR_READ);
		dmar_fault_poll(s->sys);
		CHECK_OK(dmar_map(d, y, pa + 4096, 4096, DMAR_PROT_RW));
		CHECK_EQ(simsys_dma(s, SID_A, y, b, sizeof(b), false), 0);
		CHECK_OK(dmar_unmap(d, y, 4096)); /* frees x's table, keeps y's */
		CHECK_OK(dmar_map(d, z, pa + 2 * 4096, 4096, DMAR_PROT_RW)); /* reuses pages */
		CHECK_EQ(simsys_dma(s, SID_A, z, b, sizeof(b), false), 0);
		CHECK(memcmp(b, buf + 2 * 4096, sizeof(b)) == 0);
		if (simsys_dma(s, SID_A, x, b, sizeof(b), false) != VTD_FR_READ)
			harness_fail(__FILE__, __LINE__, "%s: DMA to the freed table's region did not fault",
				     cases[i].what);
		dmar_fault_poll(s->sys);
		CHECK_OK(dmar_unmap(d, z, 4096));
	}
	CHECK_OK(dmar_domain_detach(d, SID_A));
	CHECK_OK(dmar_domain_destroy(d));
}

TEST(freed_kept_table_is_not_walked)
{
	each_variant(freed_kept_table_is_not_walked_body);
}

static void partial_unmap_inside_superpage_keeps_rest_body(struct simsys *s, const struct variant *v)
{
	struct dmar_domain *d = new_domain(s, DMAR_DOMAIN_TRANSLATED, v->width);
	REQUIRE(d);
	uint64_t pa;
	unsigned char *buf = simsys_buffer(s, 4 * MIB, &pa);
	uint64_t base = (pa + 2 * MIB - 1) & ~(2 * MIB - 1); /* 2 MiB aligned phys */
	unsigned char *sp = buf + (base - pa);
	uint64_t iova = 0x80000000ull;
	CHECK_OK(dmar_map(d, iova, base, 2 * MIB, DMAR_PROT_RW));
	struct dmar_domain_info di;
	dmar_domain_get_info(d, &di);
	/* one 2 MiB leaf: no leaf table page beyond the directory path */
	CHECK_EQ(di.table_pages, di.levels - 1);
	CHECK_OK(dmar_domain_attach(d, SID_A));
	unsigned char b[16];
	CHECK_EQ(simsys_dma(s, SID_A, iova + MIB, b, sizeof(b), false), 0);
	CHECK_OK(dmar_unmap(d, iova + MIB, 4096));
	CHECK_EQ(simsys_dma(s, SID_A, iova + MIB, b, sizeof(b), false), VTD_FR_READ);
	fill(sp + MIB + 4096, 16, 5);
	CHECK_EQ(simsys_dma(s, SID_A, iova + MIB + 4096, b, sizeof(b), false), 0);
	CHECK(memcmp(b, sp + MIB + 4096, 16) == 0);
	fill(sp + MIB - 4096, 16, 6);
	CHECK_EQ(simsys_dma(s, SID_A, iova + MIB - 4096, b, sizeof(b), false), 0);
	CHECK(memcmp(b, sp + MIB - 4096, 16) == 0);
	CHECK_EQ(simsys_dma(s, SID_A, iova, b, sizeof(b), false), 0);
	CHECK_EQ(simsys_dma(s, SID_A, iova + 2 * MIB - 16, b, sizeof(b), false), 0);
	dmar_fault_poll(s->sys);
	CHECK_OK(dmar_unmap(d, iova, MIB));
	CHECK_OK(dmar_unmap(d, iova + MIB + 4096, MIB - 4096));
	/* the emptied leaf table stays linked for the next map; DMA through it faults */
	dmar_domain_get_info(d, &di);
	CHECK_EQ(di.table_pages, di.levels);
	CHECK_EQ(simsys_dma(s, SID_A, iova + MIB + 4096, b, sizeof(b), false), VTD_FR_READ);
	dmar_fault_poll(s->sys);
	CHECK_OK(dmar_domain_detach(d, SID_A));
	CHECK_OK(dmar_domain_destroy(d));
}

TEST(partial_unmap_inside_superpage_keeps_rest)
{
	each_variant(partial_unmap_inside_superpage_keeps_rest_body);
}

static void moved_device_cannot_reach_old_domain_body(struct simsys *s, const struct variant *v)
{
	struct dmar_domain *d1 = new_domain(s, DMAR_DOMAIN_TRANSLATED, v->width);
	struct dmar_domain *d2 = new_domain(s, DMAR_DOMAIN_TRANSLATED, v->width);
	REQUIRE(d1 && d2);
	uint64_t pa1, pa2;
	unsigned char *b1 = simsys_buffer(s, 4096, &pa1);
	unsigned char *b2 = simsys_buffer(s, 4096, &pa2);
	CHECK_OK(dmar_map(d1, 0x100000, pa1, 4096, DMAR_PROT_RW));
	CHECK_OK(dmar_map(d2, 0x200000, pa2, 4096, DMAR_PROT_RW));
	CHECK_OK(dmar_domain_attach(d1, SID_A));
	CHECK_OK(dmar_domain_attach(d2, SID_B));
	unsigned char b[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	CHECK_EQ(simsys_dma(s, SID_A, 0x100000, b, 8, true), 0);
	CHECK_EQ(simsys_dma(s, SID_B, 0x100000, b, 8, true), VTD_FR_WRITE);
	CHECK_EQ(simsys_dma(s, SID_A, 0x200000, b, 8, true), VTD_FR_WRITE);
	CHECK(memcmp(b1, b, 8) == 0);
	CHECK_EQ(b2[0], 0);
	/* move A to d2: the context cache held d1 for A */
	CHECK_OK(dmar_domain_attach(d2, SID_A));
	CHECK(dmar_device_domain(s->unit, SID_A) == d2);
	CHECK_EQ(simsys_dma(s, SID_A, 0x100000, b, 8, true), VTD_FR_WRITE);
	CHECK_EQ(simsys_dma(s, SID_A, 0x200000, b, 8, true), 0);
	CHECK(memcmp(b2, b, 8) == 0);
	CHECK_EQ(dmar_domain_destroy(d2), DMAR_EBUSY);
	struct dmar_domain_info di;
	dmar_domain_get_info(d1, &di);
	CHECK_EQ(di.devices, 0);
	CHECK_OK(dmar_domain_destroy(d1));
	/* detached devices fault with "context not present" */
	CHECK_OK(dmar_domain_detach(d2, SID_A));
	CHECK_EQ(simsys_dma(s, SID_A, 0x200000, b, 8, true), VTD_FR_CTX_NOT_PRESENT);
	CHECK_EQ(dmar_domain_detach(d2, SID_A), DMAR_ENOENT);
	dmar_fault_poll(s->sys);
	CHECK_OK(dmar_domain_detach(d2, SID_B));
	CHECK_OK(dmar_domain_destroy(d2));
}

TEST(moved_device_cannot_reach_old_domain)
{
	each_variant(moved_device_cannot_reach_old_domain_body);
}

static void readonly_mapping_faults_on_write_body(struct simsys *s, const struct variant *v)
{
	struct dmar_domain *d = new_domain(s, DMAR_DOMAIN_TRANSLATED, v->width);
	REQUIRE(d);
	uint64_t pa;
	unsigned char *buf = simsys_buffer(s, 4096, &pa);
	fill(buf, 4096, 3);
	CHECK_OK(dmar_map(d, 0x5000, pa, 4096, DMAR_PROT_READ));
	CHECK_OK(dmar_domain_attach(d, SID_A));
	unsigned char b[32], orig[32];
	memcpy(orig, buf, 32);
	CHECK_EQ(simsys_dma(s, SID_A, 0x5000, b, 32, false), 0);
	CHECK(memcmp(b, buf, 32) == 0);
	memset(b, 0xee, 32);
	CHECK_EQ(simsys_dma(s, SID_A, 0x5000, b, 32, true), VTD_FR_WRITE);
	CHECK(memcmp(buf, orig, 32) == 0);
	dmar_fault_poll(s->sys);
	CHECK_OK(dmar_domain_detach(d, SID_A));
	CHECK_OK(dmar_domain_destroy(d));
}

TEST(readonly_mapping_faults_on_write)
{
	each_variant(readonly_mapping_faults_on_write_body);
}

static void passthrough_and_identity_reach_physical_addresses_body(struct simsys *s, const struct variant *v)
{
	struct dmar_domain *pt = new_domain(s, DMAR_DOMAIN_PASSTHROUGH, v->width);
	struct dmar_domain *id = new_domain(s, DMAR_DOMAIN_IDENTITY, v->width);
	REQUIRE(pt && id);
	struct dmar_domain_info di;
	dmar_domain_get_info(pt, &di);
	CHECK_EQ(di.passthrough_tt, v->pt);
	CHECK_OK(dmar_domain_attach(pt, SID_A));
	CHECK_OK(dmar_domain_attach(id, SID_B));
	uint64_t pa;
	unsigned char *buf = simsys_buffer(s, 8192, &pa);
	unsigned char b[16];
	fill(b, 16, 42);
	CHECK_EQ(simsys_dma(s, SID_A, pa + 100, b, 16, true), 0);
	CHECK(memcmp(buf + 100, b, 16) == 0);
	fill(b, 16, 43);
	CHECK_EQ(simsys_dma(s, SID_B, pa + 4096, b, 16, true), 0);
	CHECK(memcmp(buf + 4096, b, 16) == 0);
	/* identity tables use superpages: 1 GiB needs far fewer than 512 pages */
	dmar_domain_get_info(id, &di);
	CHECK(di.table_pages <= di.levels + 1);
	/* identity and pass-through domains take no maps */
	CHECK_EQ(dmar_map(id, 0, 0, 4096, DMAR_PROT_RW), DMAR_EINVAL);
	CHECK_OK(dmar_domain_detach(pt, SID_A));
	CHECK_OK(dmar_domain_detach(id, SID_B));
	CHECK_OK(dmar_domain_destroy(pt));
	CHECK_OK(dmar_domain_destroy(id));
}

TEST(passthrough_and_identity_reach_physical_addresses)
{
	each_variant(passthrough_and_identity_reach_physical_addresses_body);
}

static void blocked_domain_stops_everything_body(struct simsys *s, const struct variant *v)
{
	struct dmar_domain *d = new_domain(s, DMAR_DOMAIN_BLOCKED, v->width);
	REQUIRE(d);
	CHECK_OK(dmar_domain_attach(d, SID_C));
	uint64_t pa;
	unsigned char *buf = simsys_buffer(s, 4096, &pa);
	unsigned char b[16] = { 9 };
	CHECK(simsys_dma(s, SID_C, pa, b, 16, true) != 0);
	CHECK_EQ(buf[0], 0);
	CHECK_EQ(dmar_map(d, 0, pa, 4096, DMAR_PROT_RW), DMAR_EINVAL);
	dmar_fault_poll(s->sys);
	CHECK_OK(dmar_domain_detach(d, SID_C));
	CHECK_OK(dmar_domain_destroy(d));
}

TEST(blocked_domain_stops_everything)
{
	each_variant(blocked_domain_stops_everything_body);
}

static unsigned faults_seen;
static void on_fault(void *ctx, const struct dmar_fault_record *r)
{
	(void)ctx;
	(void)r;
	faults_seen++;
}

static void faults_are_recorded_printed_and_overflow_counted_body(struct simsys *s, const struct variant *v)
{
	struct dmar_domain *d = new_domain(s, DMAR_DOMAIN_TRANSLATED, v->width);
	REQUIRE(d);
	uint64_t pa;
	simsys_buffer(s, 4096, &pa);
	CHECK_OK(dmar_map(d, 0x10000, pa, 4096, DMAR_PROT_READ));
	CHECK_OK(dmar_domain_attach(d, SID_C));
	faults_seen = 0;
	dmar_fault_set_callback(s->sys, on_fault, NULL);
	dmar_posix_machine_log_clear(s->pm);
	unsigned char b[8] = { 0 };
	CHECK_EQ(simsys_dma(s, SID_C, 0x10000, b, 8, true), VTD_FR_WRITE);
	CHECK_EQ(dmar_fault_poll(s->sys), 1);
	struct dmar_fault_record r[16];
	REQUIRE_EQ(dmar_fault_read(s->sys, r, 16), 1);
	CHECK_EQ(r[0].sid, SID_C);
	CHECK_EQ(r[0].addr, 0x10000);
	CHECK_EQ(r[0].reason, VTD_FR_WRITE);
	CHECK(!r[0].is_read);
	CHECK_EQ(faults_seen, 1);
	const char *log = dmar_posix_machine_log(s->pm);
	CHECK(strstr(log, "DMA write fault") != NULL);
	CHECK(strstr(log, "0000:02:00.1") != NULL);
	CHECK(strstr(log, "reason 0x05") != NULL);
	CHECK(strstr(log, "walk: domain") != NULL);
	/* A read of an unmapped page explains where the walk stops. */
	dmar_posix_machine_log_clear(s->pm);
	CHECK_EQ(simsys_dma(s, SID_C, 0x3000000, b, 8, false), VTD_FR_READ);
	CHECK_EQ(dmar_fault_poll(s->sys), 1);
	REQUIRE_EQ(dmar_fault_read(s->sys, r, 16), 1);
	CHECK(r[0].is_read);
	CHECK_EQ(r[0].addr, 0x3000000);
	CHECK(strstr(dmar_posix_machine_log(s->pm), "not present") != NULL);
	/* More faults than recording registers: overflow is counted, and after the
	 * drain a later fault is recorded again. */
	struct dmar_fault_counters c0, c1;
	dmar_fault_get_counters(s->sys, &c0);
	for (unsigned i = 0; i < v->nfr + 3; i++)
		simsys_dma(s, SID_C, 0x100000 + i * 4096ull, b, 8, true);
	int n = dmar_fault_poll(s->sys);
	CHECK_EQ(n, (int)v->nfr);
	dmar_fault_get_counters(s->sys, &c1);
	CHECK_EQ(c1.overflows, c0.overflows + 1);
	CHECK_EQ(c1.recorded, c0.recorded + v->nfr);
	CHECK_EQ(dmar_fault_read(s->sys, r, 16), v->nfr);
	CHECK_EQ(simsys_dma(s, SID_C, 0x7000, b, 8, false), VTD_FR_READ);
	CHECK_EQ(dmar_fault_poll(s->sys), 1);
	REQUIRE_EQ(dmar_fault_read(s->sys, r, 16), 1);
	CHECK_EQ(r[0].addr, 0x7000);
	dmar_fault_set_callback(s->sys, NULL, NULL);
	CHECK_OK(dmar_domain_detach(d, SID_C));
	CHECK_OK(dmar_domain_destroy(d));
}

TEST(faults_are_recorded_printed_and_overflow_counted)
{
	each_variant(faults_are_recorded_printed_and_overflow_counted_body);
}

TEST(fault_ring_drops_oldest_when_full)
{
	struct simsys s;
	struct model_config m;
	struct dmar_config c;
	dmar_model_config_default(&m);
	m.nfr = 8;
	dmar_config_default(&c);
	c.fault_log_size = 4;
	c.timeout_ns = 10000000;
	REQUIRE_OK(simsys_up(&s, &m, &c));
	struct dmar_domain *d = new_domain(&s, DMAR_DOMAIN_TRANSLATED, 39);
	REQUIRE(d);
	CHECK_OK(dmar_domain_attach(d, SID_A));
	unsigned char b[4];
	for (int i = 0; i < 6; i++)
		CHECK_EQ(simsys_dma(&s, SID_A, 0x1000ull * (i + 1), b, 4, false), VTD_FR_READ);
	CHECK_EQ(dmar_fault_poll(s.sys), 6);
	struct dmar_fault_record r[8];
	struct dmar_fault_counters fc;
	dmar_fault_get_counters(s.sys, &fc);
	CHECK_EQ(fc.dropped, 2);
	REQUIRE_EQ(dmar_fault_read(s.sys, r, 8), 4);
	CHECK_EQ(r[0].addr, 0x3000);
	CHECK_EQ(r[3].addr, 0x6000);
	CHECK_EQ(r[3].seq, 6);
	CHECK_OK(dmar_domain_detach(d, SID_A));
	CHECK_OK(dmar_domain_destroy(d));
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(unmap_issues_one_page_selective_invalidation)
{
	struct simsys s;
	REQUIRE_OK(simsys_up(&s, NULL, NULL));
	struct dmar_domain *d = new_domain(&s, DMAR_DOMAIN_TRANSLATED, 39);
	REQUIRE(d);
	uint64_t pa;
	simsys_buffer(&s, 64 * 4096, &pa);
	CHECK_OK(dmar_map(d, 0x200000, pa, 64 * 4096, DMAR_PROT_RW));
	CHECK_OK(dmar_domain_attach(d, SID_A));
	struct dmar_unit_stats a, b;
	dmar_unit_get_stats(s.unit, &a);
	for (int i = 0; i < 64; i++)
		CHECK_OK(dmar_unmap(d, 0x200000 + i * 4096ull, 4096));
	dmar_unit_get_stats(s.unit, &b);
	CHECK_EQ(b.iotlb_page - a.iotlb_page, 64);
	CHECK_EQ(b.iotlb_domain - a.iotlb_domain, 0);
	CHECK_EQ(b.waits - a.waits, 64);
	const struct model_stats *ms = dmar_model_stats(s.model);
	(void)ms;
	CHECK_OK(dmar_domain_detach(d, SID_A));
	CHECK_OK(dmar_domain_destroy(d));
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(domain_ids_are_bounded_and_zero_reserved_in_caching_mode)
{
	struct simsys s;
	struct model_config m;
	dmar_model_config_default(&m);
	m.nd = 0; /* 16 domains */
	m.cm = true;
	REQUIRE_OK(simsys_up(&s, &m, NULL));
	struct dmar_domain *ds[16];
	unsigned n = 0;
	struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED };
	while (n < 16 && dmar_domain_create(s.unit, &p, &ds[n]) == DMAR_OK) {
		struct dmar_domain_info di;
		dmar_domain_get_info(ds[n], &di);
		CHECK(di.did != 0);
		CHECK(di.did < 16);
		n++;
	}
	CHECK_EQ(n, 15);
	struct dmar_domain *extra;
	CHECK_EQ(dmar_domain_create(s.unit, &p, &extra), DMAR_ENOSPC);
	while (n)
		CHECK_OK(dmar_domain_destroy(ds[--n]));
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(bad_arguments_get_error_codes)
{
	struct simsys s;
	REQUIRE_OK(simsys_up(&s, NULL, NULL));
	struct dmar_domain *d = new_domain(&s, DMAR_DOMAIN_TRANSLATED, 39);
	REQUIRE(d);
	CHECK_EQ(dmar_map(d, 0x1001, 0x1000, 4096, DMAR_PROT_RW), DMAR_EINVAL);
	CHECK_EQ(dmar_map(d, 0x1000, 0x1000, 0, DMAR_PROT_RW), DMAR_EINVAL);
	CHECK_EQ(dmar_map(d, 0x1000, 0x1000, 4096, 0), DMAR_EINVAL);
	CHECK_EQ(dmar_map(d, 1ull << 39, 0x1000, 4096, DMAR_PROT_RW), DMAR_ERANGE);
	CHECK_EQ(dmar_map(d, ~0xfffull, 0x1000, 0x2000, DMAR_PROT_RW), DMAR_ERANGE);
	CHECK_OK(dmar_map(d, 0x1000, 0x1000, 4096, DMAR_PROT_RW));
	CHECK_EQ(dmar_map(d, 0x1000, 0x9000, 4096, DMAR_PROT_RW), DMAR_EEXIST);
	CHECK_EQ(dmar_unmap(d, 0x2000, 4096), DMAR_ENOENT);
	struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED, .width = 48 };
	struct dmar_domain *d48;
	CHECK_EQ(dmar_domain_create(s.unit, &p, &d48), DMAR_ENOTSUP); /* QEMU default: 39 only */
	CHECK_EQ(dmar_system_add_unit(s.sys, 0, SIMSYS_REG_BASE, NULL), DMAR_EEXIST);
	CHECK_EQ(dmar_system_add_unit(s.sys, 0, 0, NULL), DMAR_EINVAL);
	CHECK_OK(dmar_domain_destroy(d));
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(unit_without_registers_is_refused_with_a_reason)
{
	/* A DRHD naming an address where no unit answers: registers read all ones. */
	struct simsys s;
	REQUIRE_OK(simsys_up(&s, NULL, NULL));
	struct dmar_unit *u;
	CHECK_EQ(dmar_system_add_unit(s.sys, 0, 0xfeda0000ull, &u), DMAR_ENOTSUP);
	CHECK(u == NULL);
	CHECK(strstr(dmar_posix_machine_log(s.pm), "no registers at 0xfeda0000") != NULL);
	CHECK_EQ(dmar_unit_count(s.sys), 1);
	/* the unrouted reads are the machine's complaint, not a leak */
	dmar_system_destroy(s.sys);
	s.sys = NULL;
	CHECK(dmar_posix_machine_os_errors(s.pm) > 0);
	CHECK_EQ(dmar_posix_machine_allocs_outstanding(s.pm), 0);
	CHECK_EQ(dmar_posix_machine_pages_outstanding(s.pm), 0);
	dmar_posix_machine_destroy(s.pm);
}

TEST(translation_left_on_by_firmware_is_taken_over)
{
	/* Firmware (or a previous kernel) left the unit translating with its own root
	 * table: the driver turns translation off, installs its tables, and only what it
	 * maps is reachable afterwards. */
	struct simsys s;
	struct dmar_posix_machine_config pmc;
	memset(&s, 0, sizeof(s));
	memset(&pmc, 0, sizeof(pmc));
	s.pm = dmar_posix_machine_create(&pmc);
	REQUIRE(s.pm);
	dmar_model_config_default(&s.mcfg);
	s.model = dmar_posix_machine_add_unit(s.pm, SIMSYS_REG_BASE, &s.mcfg);
	REQUIRE(s.model);
	uint64_t fw_root;
	simsys_buffer(&s, 4096, &fw_root);
	dmar_model_write64(s.model, VTD_RTADDR_REG, fw_root);
	dmar_model_write32(s.model, VTD_GCMD_REG, (uint32_t)VTD_GCMD_SRTP);
	dmar_model_write32(s.model, VTD_GCMD_REG, (uint32_t)VTD_GCMD_TE);
	REQUIRE(dmar_model_read32(s.model, VTD_GSTS_REG) & VTD_GSTS_TES);
	dmar_config_default(&s.cfg);
	s.cfg.timeout_ns = 10000000;
	REQUIRE_OK(dmar_system_create(dmar_posix_machine_os(s.pm), &s.cfg, NULL, &s.sys));
	REQUIRE_OK(dmar_system_add_unit(s.sys, 0, SIMSYS_REG_BASE, &s.unit));
	CHECK(strstr(dmar_posix_machine_log(s.pm), "left enabled by firmware") != NULL);
	struct dmar_unit_info ui;
	dmar_unit_get_info(s.unit, &ui);
	CHECK(!ui.translating);
	CHECK(dmar_model_read64(s.model, VTD_RTADDR_REG) != fw_root);
	struct dmar_domain *d = new_domain(&s, DMAR_DOMAIN_TRANSLATED, 39);
	REQUIRE(d);
	uint64_t pa;
	unsigned char *buf = simsys_buffer(&s, 4096, &pa);
	buf[0] = 0x77;
	CHECK_OK(dmar_map(d, 0x9000, pa, 4096, DMAR_PROT_READ));
	CHECK_OK(dmar_domain_attach(d, SID_A));
	unsigned char b[4];
	CHECK_EQ(simsys_dma(&s, SID_A, 0x9000, b, 4, false), 0);
	CHECK_EQ(b[0], 0x77);
	CHECK_EQ(simsys_dma(&s, SID_B, 0x9000, b, 4, false), VTD_FR_CTX_NOT_PRESENT);
	dmar_fault_poll(s.sys);
	CHECK_OK(dmar_domain_detach(d, SID_A));
	CHECK_OK(dmar_domain_destroy(d));
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(fault_interrupt_is_programmed_raised_and_masked)
{
	struct simsys s;
	REQUIRE_OK(simsys_up(&s, NULL, NULL));
	struct dmar_domain *d = new_domain(&s, DMAR_DOMAIN_TRANSLATED, 39);
	REQUIRE(d);
	CHECK_OK(dmar_domain_attach(d, SID_A));
	CHECK_EQ(dmar_unit_set_fault_interrupt(s.unit, 0x41, 0x12345000, true), DMAR_EINVAL);
	REQUIRE_OK(dmar_unit_set_fault_interrupt(s.unit, 0x4041, 0xfee01000, true));
	CHECK_EQ(dmar_model_read32(s.model, VTD_FEDATA_REG), 0x4041);
	CHECK_EQ(dmar_model_read32(s.model, VTD_FEADDR_REG), 0xfee01000);
	CHECK_EQ(dmar_model_read32(s.model, VTD_FECTL_REG) & VTD_FECTL_IM, 0);
	uint64_t before = dmar_posix_machine_irqs(s.pm, MODEL_IRQ_FAULT);
	unsigned char b[4];
	CHECK_EQ(simsys_dma(&s, SID_A, 0x5000, b, 4, false), VTD_FR_READ);
	CHECK_EQ(dmar_posix_machine_irqs(s.pm, MODEL_IRQ_FAULT), before + 1);
	/* the handler's poll clears it; a later fault raises it again */
	CHECK_EQ(dmar_fault_poll(s.sys), 1);
	CHECK_EQ(simsys_dma(&s, SID_A, 0x6000, b, 4, false), VTD_FR_READ);
	CHECK_EQ(dmar_posix_machine_irqs(s.pm, MODEL_IRQ_FAULT), before + 2);
	CHECK_EQ(dmar_fault_poll(s.sys), 1);
	/* masked: recorded, but no interrupt */
	REQUIRE_OK(dmar_unit_set_fault_interrupt(s.unit, 0, 0, false));
	CHECK_EQ(simsys_dma(&s, SID_A, 0x7000, b, 4, false), VTD_FR_READ);
	CHECK_EQ(dmar_posix_machine_irqs(s.pm, MODEL_IRQ_FAULT), before + 2);
	CHECK_EQ(dmar_fault_poll(s.sys), 1);
	CHECK_OK(dmar_domain_detach(d, SID_A));
	CHECK_OK(dmar_domain_destroy(d));
	CHECK_EQ(simsys_down(&s), 0);
}
