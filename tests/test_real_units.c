/*
 * Real units: the model configured as each unit of tests/data/real_units.tsv (CAP and
 * ECAP values real machines printed at boot, from 2008 chipsets to current client and
 * server parts), with its sticky caches, and the driver taken through everything on it:
 * bring-up, domain creation at the default and the widest width, map, DMA both ways,
 * superpages where SLLPS offers them, unmap, the DMA that then faults, fault draining
 * and explanation, busdma load/DMA/unload. Every unit must pass, or be refused by the
 * driver with a logged reason listed in `refusals` below.
 */
#include "harness.h"
#include "simsys.h"
#include "dmar/busdma.h"
#include "dmar/caps.h"
#include "regs.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SID VTD_SID(0, 2, 0)
#define MIB (1ull << 20)

struct unit_row {
	char id[64];
	uint32_t ver;
	uint64_t cap, ecap;
	char kind[16];
	char platform[160];
};

/* Units the driver is expected to refuse, with the reason it must log. */
static const struct {
	const char *id;
	const char *log;
} refusals[] = {
	{ NULL, NULL },
};

static const char *data_path(char *buf, size_t len)
{
	const char *dir = getenv("DMAR_SOURCE_DIR");
	snprintf(buf, len, "%s/tests/data/real_units.tsv", dir ? dir : ".");
	return buf;
}

/* Reads the table; returns the number of rows (0 and a failure when unreadable). */
static unsigned load_units(struct unit_row *rows, unsigned max)
{
	char path[512], line[2048];
	FILE *f = fopen(data_path(path, sizeof(path)), "r");
	if (!f) {
		harness_fail(__FILE__, __LINE__, "cannot read %s", path);
		return 0;
	}
	unsigned n = 0;
	bool header = false;
	while (fgets(line, sizeof(line), f) && n < max) {
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (!header) { /* id ver cap ecap kind platform year source */
			header = true;
			continue;
		}
		char *field[8] = { 0 };
		unsigned nf = 0;
		for (char *p = line, *tab; nf < 8; p = tab + 1) {
			field[nf++] = p;
			tab = strchr(p, '\t');
			if (!tab)
				break;
			*tab = '\0';
		}
		if (nf < 6) {
			harness_fail(__FILE__, __LINE__, "%s: a row has %u fields", path, nf);
			continue;
		}
		struct unit_row *r = &rows[n];
		snprintf(r->id, sizeof(r->id), "%.63s", field[0]);
		unsigned maj = 0, min = 0;
		r->ver = sscanf(field[1], "%u:%u", &maj, &min) == 2 ? (maj << 4 | min) : 0x10;
		r->cap = strtoull(field[2], NULL, 16);
		r->ecap = strtoull(field[3], NULL, 16);
		snprintf(r->kind, sizeof(r->kind), "%.15s", field[4]);
		snprintf(r->platform, sizeof(r->platform), "%.159s", field[5]);
		if (!r->cap) {
			harness_fail(__FILE__, __LINE__, "%s: bad CAP in row %s", path, r->id);
			continue;
		}
		n++;
	}
	fclose(f);
	return n;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 13);
}

/* Map, DMA both ways, unmap, fault, drain and explain in one domain of `width` bits
 * (0: the default); returns the levels the domain got. */
static unsigned translate_roundtrip(struct simsys *s, unsigned width)
{
	struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED, .width = width };
	struct dmar_domain *d;
	int rc = dmar_domain_create(s->unit, &p, &d);
	if (rc) {
		harness_fail(__FILE__, __LINE__, "domain of width %u: %s", width,
			     dmar_strerror(rc));
		return 0;
	}
	struct dmar_domain_info di;
	dmar_domain_get_info(d, &di);
	/* The highest 4 MiB-aligned IOVA below the domain's width, and one near 0. */
	uint64_t top = ((1ull << di.width) - 4 * MIB);
	uint64_t iovas[2] = { 0x12345000ull, top };
	uint64_t pa;
	unsigned char *buf = simsys_buffer(s, 4 * 4096, &pa);
	unsigned char b[256];
	CHECK_OK(dmar_domain_attach(d, SID));
	for (int k = 0; k < 2; k++) {
		uint64_t iova = iovas[k];
		CHECK_OK(dmar_map(d, iova, pa, 4 * 4096, DMAR_PROT_RW));
		fill(buf, 4 * 4096, (unsigned)k + 3);
		CHECK_EQ(simsys_dma(s, SID, iova + 4096 - 128, b, sizeof(b), false), 0);
		CHECK(memcmp(b, buf + 4096 - 128, sizeof(b)) == 0);
		fill(b, sizeof(b), 77);
		CHECK_EQ(simsys_dma(s, SID, iova + 3 * 4096, b, sizeof(b), true), 0);
		CHECK(memcmp(b, buf + 3 * 4096, sizeof(b)) == 0);
		CHECK_OK(dmar_unmap(d, iova + 4096, 4096));
		CHECK_EQ(simsys_dma(s, SID, iova + 4096, b, 16, false), VTD_FR_READ);
		CHECK_EQ(simsys_dma(s, SID, iova, b, 16, false), 0);
		CHECK_EQ(dmar_fault_poll(s->sys), 1);
		struct dmar_fault_record rec;
		if (dmar_fault_read(s->sys, &rec, 1) == 1) {
			CHECK_EQ(rec.addr, iova + 4096);
			CHECK_EQ(rec.sid, SID);
			CHECK_EQ(rec.reason, VTD_FR_READ);
			CHECK_EQ(rec.did, di.did);
			char line[512];
			dmar_fault_format(s->sys, &rec, line, sizeof(line));
			CHECK(strstr(line, "not present") != NULL);
		} else {
			harness_fail(__FILE__, __LINE__, "no fault record at 0x%llx",
				     (unsigned long long)(iova + 4096));
		}
		CHECK_OK(dmar_unmap(d, iova, 4096));
		CHECK_OK(dmar_unmap(d, iova + 2 * 4096, 2 * 4096));
	}
	CHECK_OK(dmar_domain_detach(d, SID));
	CHECK_OK(dmar_domain_destroy(d));
	return di.levels;
}

/* A 2 MiB superpage when SLLPS offers one: one leaf, DMA through it, split by an unmap. */
static void superpage_roundtrip(struct simsys *s)
{
	struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED };
	struct dmar_domain *d;
	REQUIRE_OK(dmar_domain_create(s->unit, &p, &d));
	uint64_t pa;
	unsigned char *buf = simsys_buffer(s, 4 * MIB, &pa);
	uint64_t big = (pa + 2 * MIB - 1) & ~(2 * MIB - 1);
	unsigned char *bigv = buf + (big - pa);
	const uint64_t iova = 0x40000000ull;
	struct dmar_domain_info before, after;
	dmar_domain_get_info(d, &before);
	CHECK_OK(dmar_map(d, iova, big, 2 * MIB, DMAR_PROT_RW));
	dmar_domain_get_info(d, &after);
	CHECK_EQ(after.table_pages, after.levels - 1); /* no leaf table: a 2 MiB entry */
	CHECK_OK(dmar_domain_attach(d, SID));
	unsigned char b[64];
	fill(bigv + MIB, 64, 5);
	CHECK_EQ(simsys_dma(s, SID, iova + MIB, b, 64, false), 0);
	CHECK(memcmp(b, bigv + MIB, 64) == 0);
	CHECK_OK(dmar_unmap(d, iova + MIB, 4096));
	CHECK_EQ(simsys_dma(s, SID, iova + MIB, b, 16, false), VTD_FR_READ);
	CHECK_EQ(simsys_dma(s, SID, iova + MIB + 4096, b, 16, false), 0);
	dmar_fault_poll(s->sys);
	CHECK_OK(dmar_unmap(d, iova, MIB));
	CHECK_OK(dmar_unmap(d, iova + MIB + 4096, MIB - 4096));
	CHECK_OK(dmar_domain_detach(d, SID));
	CHECK_OK(dmar_domain_destroy(d));
}

static void busdma_roundtrip(struct simsys *s)
{
	struct dmar_busdma *bus;
	REQUIRE_OK(dmar_busdma_create(dmar_posix_machine_os(s->pm), &s->cfg, s->sys, &bus));
	struct dmar_busdma_dev *dev;
	struct dmar_pci_addr a = { 0, 0, 2, 0 };
	REQUIRE_OK(dmar_busdma_device(bus, a, NULL, NULL, &dev));
	struct dmar_dma_tag_params tp;
	dmar_dma_tag_params_default(&tp);
	tp.maxsize = 64 * 1024;
	tp.nsegments = 16;
	tp.maxsegsz = 64 * 1024;
	struct dmar_dma_tag *tag;
	REQUIRE_OK(dmar_dma_tag_create(dev, NULL, &tp, &tag));
	struct dmar_dmamap *map;
	REQUIRE_OK(dmar_dmamap_create(tag, 0, &map));
	uint64_t pa;
	unsigned char *buf = simsys_buffer(s, 64 * 1024, &pa);
	fill(buf, 64 * 1024, 9);
	REQUIRE_OK(dmar_dmamap_load(tag, map, buf, 64 * 1024, 0));
	CHECK_EQ(dmar_dmamap_nsegs(map), 1);
	uint64_t addr = dmar_dmamap_segs(map)[0].addr;
	CHECK_OK(dmar_dmamap_sync(tag, map, DMAR_DMASYNC_PREWRITE));
	unsigned char b[512];
	CHECK_EQ(simsys_dma(s, SID, addr + 60 * 1024, b, sizeof(b), false), 0);
	CHECK(memcmp(b, buf + 60 * 1024, sizeof(b)) == 0);
	CHECK_OK(dmar_dmamap_sync(tag, map, DMAR_DMASYNC_POSTWRITE));
	CHECK_OK(dmar_dmamap_unload(tag, map));
	CHECK_EQ(simsys_dma(s, SID, addr, b, 16, false), VTD_FR_READ);
	CHECK_EQ(dmar_fault_poll(s->sys), 1);
	CHECK_OK(dmar_dmamap_destroy(tag, map));
	CHECK_OK(dmar_dma_tag_destroy(tag));
	CHECK_OK(dmar_busdma_device_destroy(dev));
	CHECK_OK(dmar_busdma_destroy(bus));
}

static const char *expected_refusal(const char *id)
{
	for (size_t i = 0; i < DMAR_ARRAY_SIZE(refusals); i++)
		if (refusals[i].id && strcmp(refusals[i].id, id) == 0)
			return refusals[i].log;
	return NULL;
}

/* Names of the set CAP/ECAP bits the model reports without implementing. */
static void extras(const struct model_config *m, char *buf, size_t len)
{
	static const struct { bool ecap; unsigned bit; const char *name; } names[] = {
		{ false, 23, "ISOCH" }, { false, 56, "FL1GP" }, { false, 59, "PI" },
		{ false, 60, "FL5LP" }, { false, 62, "ESIRTPS" }, { false, 63, "ESRTPS" },
		{ true, 24, "ECS" }, { true, 25, "MTS" }, { true, 26, "NEST" }, { true, 28, "DIS" },
		{ true, 29, "PRS" }, { true, 30, "ERS" }, { true, 31, "SRS" }, { true, 33, "NWFS" },
		{ true, 34, "EAFS" }, { true, 40, "PASID" }, { true, 41, "DIT" }, { true, 42, "PDS" },
		{ true, 43, "SMTS" }, { true, 44, "VCS" }, { true, 45, "SLADS" }, { true, 46, "SLTS" },
		{ true, 47, "FLTS" }, { true, 48, "SMPWCS" }, { true, 49, "RPS" },
	};
	size_t used = 0;
	buf[0] = '\0';
	uint64_t named_cap = 0, named_ecap = 0;
	for (size_t i = 0; i < DMAR_ARRAY_SIZE(names); i++) {
		uint64_t bit = 1ull << names[i].bit;
		uint64_t v = names[i].ecap ? m->ecap_extra : m->cap_extra;
		*(names[i].ecap ? &named_ecap : &named_cap) |= bit;
		if ((v & bit) && used < len)
			used += (size_t)snprintf(buf + used, len - used, " %s", names[i].name);
	}
	uint64_t rest_c = m->cap_extra & ~named_cap, rest_e = m->ecap_extra & ~named_ecap;
	if ((rest_c || rest_e) && used < len)
		snprintf(buf + used, len - used, " other(cap 0x%llx ecap 0x%llx)",
			 (unsigned long long)rest_c, (unsigned long long)rest_e);
}

TEST(every_real_unit_is_driven_or_refused_with_a_reason)
{
	static struct unit_row rows[512];
	unsigned n = load_units(rows, DMAR_ARRAY_SIZE(rows));
	REQUIRE(n >= 40);
	unsigned passed = 0, refused = 0, four_level_only = 0, no_qi = 0, with_sp = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct unit_row *r = &rows[i];
		char ctx[256];
		snprintf(ctx, sizeof(ctx), "%.63s (CAP 0x%llx ECAP 0x%llx)", r->id,
			 (unsigned long long)r->cap, (unsigned long long)r->ecap);
		harness_set_context(ctx);
		struct model_config m;
		if (!dmar_model_config_from_regs(r->ver, r->cap, r->ecap, &m)) {
			harness_fail(__FILE__, __LINE__, "the model cannot be this unit");
			continue;
		}
		CHECK_EQ(dmar_model_config_cap(&m), r->cap);
		CHECK_EQ(dmar_model_config_ecap(&m), r->ecap);
		struct simsys s;
		int rc = simsys_up(&s, &m, NULL);
		const char *want = expected_refusal(r->id);
		if (rc || want) {
			const char *log = dmar_posix_machine_log(s.pm);
			if (!rc)
				harness_fail(__FILE__, __LINE__, "expected a refusal (%s)", want);
			else if (!want)
				harness_fail(__FILE__, __LINE__, "refused: %s; log: %s",
					     dmar_strerror(rc), log);
			else if (!strstr(log, want))
				harness_fail(__FILE__, __LINE__, "refused without \"%s\": %s", want, log);
			else
				refused++;
			CHECK_EQ(simsys_down(&s), 0);
			continue;
		}
		struct dmar_unit_info ui;
		dmar_unit_get_info(s.unit, &ui);
		CHECK_EQ(ui.qi, (r->ecap & VTD_ECAP_QI) != 0);
		no_qi += !ui.qi;
		unsigned sagaw = (unsigned)VTD_CAP_SAGAW(r->cap);
		four_level_only += (sagaw & 0xe) == VTD_SAGAW_48;
		unsigned levels = translate_roundtrip(&s, 0);
		/* The default domain uses the fewest levels SAGAW offers for 39 bits. */
		CHECK_EQ(levels, (sagaw & VTD_SAGAW_39) ? 3u : (sagaw & VTD_SAGAW_48) ? 4u : 5u);
		if (ui.max_width > 39)
			CHECK_EQ(translate_roundtrip(&s, ui.max_width), ui.max_width > 48 ? 5u : 4u);
		if (VTD_CAP_SLLPS(r->cap) & 1) {
			superpage_roundtrip(&s);
			with_sp++;
		}
		busdma_roundtrip(&s);
		char ex[256];
		extras(&m, ex, sizeof(ex));
		printf("  ok %-28s %-8s %s%s%s\n", r->id, r->kind, r->platform,
		       ex[0] ? "; not modelled:" : "", ex);
		CHECK_EQ(simsys_down(&s), 0);
		passed++;
	}
	harness_set_context(NULL);
	printf("  %u units: %u driven through every step, %u refused as expected; "
	       "%u offer only 4-level tables, %u have no queued invalidation, %u 2 MiB pages\n",
	       n, passed, refused, four_level_only, no_qi, with_sp);
	CHECK_EQ(passed + refused, n);
}

/* The two integrated-graphics units named in the review: SAGAW offers only 4-level
 * tables, MGAW is 39. A default domain is a 4-level table bounded to 39 bits, and the
 * context entry says 4 levels (AW=2): DMA through it works. */
TEST(four_level_only_graphics_units_translate)
{
	static const uint64_t caps[] = { 0xc0000020660462ull, 0x1c0000c40660462ull };
	for (size_t i = 0; i < DMAR_ARRAY_SIZE(caps); i++) {
		struct model_config m;
		REQUIRE(dmar_model_config_from_regs(0x10, caps[i], 0xf0101aull, &m));
		REQUIRE_EQ(m.sagaw, VTD_SAGAW_48);
		REQUIRE_EQ(m.mgaw, 39);
		struct simsys s;
		REQUIRE_OK(simsys_up(&s, &m, NULL));
		struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED };
		struct dmar_domain *d;
		REQUIRE_OK(dmar_domain_create(s.unit, &p, &d));
		struct dmar_domain_info di;
		dmar_domain_get_info(d, &di);
		CHECK_EQ(di.levels, 4);
		CHECK_EQ(di.width, 39);
		uint64_t pa;
		unsigned char *buf = simsys_buffer(&s, 4096, &pa);
		CHECK_OK(dmar_map(d, 0x7fff000000ull, pa, 4096, DMAR_PROT_RW));
		CHECK_EQ(dmar_map(d, 1ull << 39, pa, 4096, DMAR_PROT_RW), DMAR_ERANGE);
		CHECK_OK(dmar_domain_attach(d, SID));
		unsigned char b[16];
		fill(buf, 16, 1);
		CHECK_EQ(simsys_dma(&s, SID, 0x7fff000000ull, b, 16, false), 0);
		CHECK(memcmp(b, buf, 16) == 0);
		CHECK_OK(dmar_domain_detach(d, SID));
		CHECK_OK(dmar_unmap(d, 0x7fff000000ull, 4096));
		CHECK_OK(dmar_domain_destroy(d));
		CHECK_EQ(simsys_down(&s), 0);
	}
}

/* 2008 chipsets (GM45/ICH9 era): MGAW 36, no queued invalidation, no pass-through,
 * RWBF. A default domain is 36 bits wide, 3 levels. */
TEST(mgaw_36_unit_gets_a_36_bit_default_domain)
{
	struct model_config m;
	REQUIRE(dmar_model_config_from_regs(0x10, 0xc9008020e30272ull, 0x1000ull, &m));
	REQUIRE_EQ(m.mgaw, 36);
	REQUIRE(m.rwbf);
	struct simsys s;
	REQUIRE_OK(simsys_up(&s, &m, NULL));
	CHECK_EQ(translate_roundtrip(&s, 0), 3);
	struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED, .width = 39 };
	struct dmar_domain *d;
	CHECK_EQ(dmar_domain_create(s.unit, &p, &d), DMAR_ENOTSUP);
	struct dmar_unit_stats st;
	dmar_unit_get_stats(s.unit, &st);
	CHECK(st.wbf > 0);
	CHECK_EQ(simsys_down(&s), 0);
}
