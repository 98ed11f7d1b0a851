/*
 * test_acpi_parse.c - the DMAR parser on synthetic tables: every structure and scope
 * type decodes, every finding code and every error is produced by a table that breaks
 * exactly that rule, and device lookup follows scope paths through bridges.
 */
#include <dmar/acpi.h>
#include <dmar/error.h>

#include <string.h>

#include "dmar_table_builder.h"
#include "harness.h"

static struct dtb B;
static struct dmar_acpi_table T;

static unsigned count_code(const struct dmar_acpi_table *t, unsigned code)
{
	unsigned n = 0;
	for (unsigned i = 0; i < t->nfindings && i < DMAR_ACPI_MAX_FINDINGS; i++)
		n += t->findings[i].code == code;
	return n;
}

/* A rule-abiding table with every structure type. */
static size_t build_full(struct dtb *b)
{
	static const uint8_t deep[] = {0x1c, 0, 0, 0, 0, 1}; /* 00:1c.0 -> 00.0 -> 00.1 */
	dtb_init(b, 46, DMAR_ACPI_INTR_REMAP | DMAR_ACPI_X2APIC_OPT_OUT);
	dtb_drhd(b, 0, 0, 0xfed90000);
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_scope(b, DMAR_SCOPE_ENDPOINT, 0, 0, deep, 3);
	dtb_drhd(b, DMAR_DRHD_INCLUDE_PCI_ALL, 0, 0xfed91000);
	dtb_scope_pci(b, DMAR_SCOPE_IOAPIC, 0xf0, 0x1f, 0, 2);
	dtb_scope_pci(b, DMAR_SCOPE_HPET, 0, 0x1f, 7, 0);
	dtb_scope_pci(b, DMAR_SCOPE_ACPI, 0, 0x15, 0, 1);
	dtb_rmrr(b, 0, 0x3e2e0000, 0x3e2fffff);
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 0x14, 0, 0);
	dtb_scope_pci(b, DMAR_SCOPE_BRIDGE, 0, 0x1d, 0, 0);
	dtb_atsr(b, DMAR_ATSR_ALL_PORTS, 0);
	dtb_rhsa(b, 0xfed91000, 3);
	dtb_andd(b, 1, "\\_SB.PCI0.I2C1");
	dtb_satc(b, DMAR_SATC_ATC_REQUIRED, 0);
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_sidp(b, 0);
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 3, 0, 0);
	return dtb_finish(b);
}

TEST(every_structure_and_scope_type_decodes)
{
	size_t len = build_full(&B);
	REQUIRE_OK(dmar_acpi_parse(B.buf, len, NULL, &T));
	CHECK_EQ(T.nfindings, 0);
	CHECK_EQ(T.length, len);
	CHECK_EQ(T.haw, 46);
	CHECK(T.checksum_ok);
	CHECK(strcmp(T.oem_id, "DMARTB") == 0);
	CHECK_EQ(T.nstructs, 8);
	CHECK_EQ(dmar_acpi_count(&T, DMAR_ACPI_DRHD), 2);
	for (unsigned ty = DMAR_ACPI_RMRR; ty < DMAR_ACPI_NTYPES; ty++)
		CHECK_EQ(dmar_acpi_count(&T, ty), 1);

	struct dmar_acpi_drhd d;
	REQUIRE_OK(dmar_acpi_drhd_get(&T, 1, &d));
	CHECK_EQ(d.base, 0xfed91000);
	CHECK_EQ(d.flags, DMAR_DRHD_INCLUDE_PCI_ALL);
	CHECK_EQ(dmar_acpi_drhd_get(&T, 2, &d), DMAR_ENOENT);
	REQUIRE_OK(dmar_acpi_drhd_get(&T, 0, &d));
	CHECK_EQ(d.base, 0xfed90000);
	CHECK_EQ(d.offset, DMAR_ACPI_HEADER_LEN);

	struct dmar_acpi_scope_iter it;
	struct dmar_acpi_scope s;
	REQUIRE_OK(dmar_acpi_scope_begin(&T, d.offset, &it));
	REQUIRE(dmar_acpi_scope_next(&it, &s));
	CHECK_EQ(s.type, DMAR_SCOPE_ENDPOINT);
	CHECK_EQ(s.npath, 1);
	CHECK_EQ(s.path[0].dev, 2);
	REQUIRE(dmar_acpi_scope_next(&it, &s));
	CHECK_EQ(s.npath, 3);
	CHECK_EQ(s.path[0].dev, 0x1c);
	CHECK_EQ(s.path[2].fn, 1);
	CHECK(!dmar_acpi_scope_next(&it, &s));

	REQUIRE_OK(dmar_acpi_drhd_get(&T, 1, &d));
	REQUIRE_OK(dmar_acpi_scope_begin(&T, d.offset, &it));
	unsigned types = 0;
	while (dmar_acpi_scope_next(&it, &s))
		types |= 1u << s.type;
	CHECK_EQ(types, (1u << DMAR_SCOPE_IOAPIC) | (1u << DMAR_SCOPE_HPET) | (1u << DMAR_SCOPE_ACPI));

	struct dmar_acpi_rmrr r;
	REQUIRE_OK(dmar_acpi_rmrr_get(&T, 0, &r));
	CHECK_EQ(r.base, 0x3e2e0000);
	CHECK_EQ(r.limit, 0x3e2fffff);
	struct dmar_acpi_atsr a;
	REQUIRE_OK(dmar_acpi_atsr_get(&T, 0, &a));
	CHECK_EQ(a.flags, DMAR_ATSR_ALL_PORTS);
	struct dmar_acpi_rhsa h;
	REQUIRE_OK(dmar_acpi_rhsa_get(&T, 0, &h));
	CHECK_EQ(h.proximity_domain, 3);
	struct dmar_acpi_andd n;
	REQUIRE_OK(dmar_acpi_andd_get(&T, 0, &n));
	CHECK_EQ(n.device, 1);
	CHECK(strcmp(n.name, "\\_SB.PCI0.I2C1") == 0);
	struct dmar_acpi_satc sa;
	REQUIRE_OK(dmar_acpi_satc_get(&T, 0, &sa));
	CHECK_EQ(sa.flags, DMAR_SATC_ATC_REQUIRED);
	struct dmar_acpi_sidp si;
	REQUIRE_OK(dmar_acpi_sidp_get(&T, 0, &si));
	REQUIRE_OK(dmar_acpi_scope_begin(&T, si.offset, &it));
	REQUIRE(dmar_acpi_scope_next(&it, &s));
	CHECK_EQ(s.path[0].dev, 3);
	/* Scopes are not offered for structures without them, nor mid-structure. */
	CHECK_EQ(dmar_acpi_scope_begin(&T, h.offset, &it), DMAR_EINVAL);
	CHECK_EQ(dmar_acpi_scope_begin(&T, d.offset + 4, &it), DMAR_EINVAL);

	struct dmar_acpi_struct st;
	REQUIRE_OK(dmar_acpi_struct_get(&T, 7, &st));
	CHECK_EQ(st.type, DMAR_ACPI_SIDP);
	CHECK_EQ(st.offset + st.length, len);
	CHECK_EQ(dmar_acpi_struct_get(&T, 8, &st), DMAR_ENOENT);
}

/* ---- findings: each case breaks one rule of the clean table ---- */

static void f_checksum(struct dtb *b) { b->buf[9] ^= 1; }
static void f_unknown_type(struct dtb *b)
{
	static const uint8_t body[8] = {0};
	dtb_struct(b, 0x77, body, sizeof(body));
	dtb_finish(b);
}
static void f_base_zero(struct dtb *b) { dtb_put64(b, 48 + 8, 0); dtb_fix_checksum(b); }
static void f_base_unaligned(struct dtb *b) { dtb_put64(b, 48 + 8, 0xfed90010); dtb_fix_checksum(b); }
static void f_rmrr(struct dtb *b, uint64_t base, uint64_t limit)
{
	dtb_rmrr(b, 0, base, limit);
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_finish(b);
}
static void f_rmrr_end_before(struct dtb *b) { f_rmrr(b, 0x80000000, 0x7fffffff - 0x1000); }
static void f_rmrr_unaligned(struct dtb *b) { f_rmrr(b, 0x80000000, 0x80000ffe); }
static void f_rmrr_zero(struct dtb *b) { f_rmrr(b, 0, 0); }
static void f_rmrr_overlap(struct dtb *b) { f_rmrr(b, 0x3e2f0000, 0x3e30ffff); }
static void f_dup_ioapic(struct dtb *b)
{
	dtb_drhd(b, 0, 1, 0xfed92000);
	dtb_scope_pci(b, DMAR_SCOPE_IOAPIC, 0xf0, 0x1f, 0, 2); /* id 2 again */
	dtb_finish(b);
}
static void f_dup_hpet(struct dtb *b)
{
	dtb_drhd(b, 0, 1, 0xfed92000);
	dtb_scope_pci(b, DMAR_SCOPE_HPET, 0, 0x1f, 7, 0);
	dtb_finish(b);
}
static void f_rhsa(struct dtb *b) { dtb_rhsa(b, 0xfed99000, 0); dtb_finish(b); }
static void f_x2apic(struct dtb *b) { b->buf[37] = DMAR_ACPI_X2APIC_OPT_OUT; dtb_fix_checksum(b); }
static void f_reserved_hdr(struct dtb *b) { b->buf[40] = 1; dtb_fix_checksum(b); }
static void f_reserved_scope(struct dtb *b) { b->buf[48 + 16 + 3] = 2; dtb_fix_checksum(b); }
static void f_pci_all_multiple(struct dtb *b)
{
	dtb_drhd(b, DMAR_DRHD_INCLUDE_PCI_ALL, 0, 0xfed93000);
	dtb_finish(b);
}
static void f_pci_all_not_last(struct dtb *b)
{
	dtb_drhd(b, 0, 0, 0xfed93000);
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 4, 0, 0);
	dtb_finish(b);
}
static void f_pci_all_scope(struct dtb *b)
{
	dtb_drhd(b, DMAR_DRHD_INCLUDE_PCI_ALL, 1, 0xfed93000);
	dtb_scope_pci(b, DMAR_SCOPE_BRIDGE, 0, 1, 0, 0);
	dtb_finish(b);
}
static void f_unknown_scope(struct dtb *b)
{
	dtb_drhd(b, 0, 1, 0xfed93000);
	dtb_scope_pci(b, 9, 0, 1, 0, 0);
	dtb_finish(b);
}
static void f_no_path(struct dtb *b)
{
	dtb_drhd(b, 0, 1, 0xfed93000);
	dtb_scope(b, DMAR_SCOPE_ENDPOINT, 0, 0, NULL, 0);
	dtb_finish(b);
}
static void f_trailing(struct dtb *b)
{
	static const uint8_t body[20] = {[4] = 0x00, [5] = 0x10, [6] = 0x00, [7] = 0x00};
	/* RHSA with 4 extra bytes; base 0 matches no DRHD either, so base it on DRHD 0. */
	size_t s = dtb_struct(b, DMAR_ACPI_RHSA, body, sizeof(body));
	dtb_put64(b, s + 8, 0xfed90000);
	dtb_finish(b);
}

static const struct {
	const char *name;
	void (*make)(struct dtb *);
	unsigned code;
	unsigned also;   /* a second finding the same bytes rightly produce, or 0 */
} finding_cases[] = {
	{"checksum", f_checksum, DMAR_FIND_CHECKSUM, 0},
	{"unknown_type", f_unknown_type, DMAR_FIND_UNKNOWN_TYPE, 0},
	{"base_zero", f_base_zero, DMAR_FIND_DRHD_BASE_ZERO, 0},
	{"base_unaligned", f_base_unaligned, DMAR_FIND_DRHD_BASE_UNALIGNED, 0},
	{"rmrr_end_before", f_rmrr_end_before, DMAR_FIND_RMRR_END_BEFORE_BASE, 0},
	{"rmrr_unaligned", f_rmrr_unaligned, DMAR_FIND_RMRR_UNALIGNED, 0},
	{"rmrr_zero", f_rmrr_zero, DMAR_FIND_RMRR_ZERO_LENGTH, DMAR_FIND_RMRR_UNALIGNED},
	{"rmrr_overlap", f_rmrr_overlap, DMAR_FIND_RMRR_OVERLAP, 0},
	{"dup_ioapic", f_dup_ioapic, DMAR_FIND_DUP_IOAPIC, 0},
	{"dup_hpet", f_dup_hpet, DMAR_FIND_DUP_HPET, 0},
	{"rhsa", f_rhsa, DMAR_FIND_RHSA_NO_DRHD, 0},
	{"x2apic", f_x2apic, DMAR_FIND_X2APIC_OPT_OUT_NO_IR, 0},
	{"reserved_hdr", f_reserved_hdr, DMAR_FIND_RESERVED_NONZERO, 0},
	{"reserved_scope", f_reserved_scope, DMAR_FIND_RESERVED_NONZERO, 0},
	{"pci_all_multiple", f_pci_all_multiple, DMAR_FIND_PCI_ALL_MULTIPLE, 0},
	{"pci_all_not_last", f_pci_all_not_last, DMAR_FIND_PCI_ALL_NOT_LAST, 0},
	{"pci_all_scope", f_pci_all_scope, DMAR_FIND_PCI_ALL_PCI_SCOPE, 0},
	{"unknown_scope", f_unknown_scope, DMAR_FIND_UNKNOWN_SCOPE, 0},
	{"no_path", f_no_path, DMAR_FIND_SCOPE_NO_PATH, 0},
	{"trailing", f_trailing, DMAR_FIND_STRUCT_TRAILING, 0},
};

TEST(each_broken_rule_gives_its_finding_and_only_it)
{
	unsigned covered = 0;
	for (size_t i = 0; i < sizeof(finding_cases) / sizeof(finding_cases[0]); i++) {
		harness_set_context(finding_cases[i].name);
		build_full(&B);
		finding_cases[i].make(&B);
		REQUIRE_OK(dmar_acpi_parse(B.buf, B.len, NULL, &T));
		CHECK_EQ(count_code(&T, finding_cases[i].code), 1);
		CHECK_EQ(T.nfindings, finding_cases[i].also ? 2 : 1);
		if (finding_cases[i].also)
			CHECK_EQ(count_code(&T, finding_cases[i].also), 1);
		if (T.nfindings) {
			char line[256];
			dmar_acpi_finding_format(&T.findings[0], line, sizeof(line));
			CHECK(strstr(line, dmar_acpi_finding_name(finding_cases[i].code)) != NULL);
			CHECK(T.findings[0].offset < B.len);
		}
		covered |= 1u << finding_cases[i].code;
	}
	harness_set_context(NULL);
	for (unsigned c = 1; c < DMAR_FIND_CODE_MAX; c++)
		CHECK(covered & (1u << c));
}

TEST(findings_beyond_the_array_are_counted)
{
	build_full(&B);
	for (unsigned i = 0; i < DMAR_ACPI_MAX_FINDINGS + 5; i++)
		dtb_rhsa(&B, 0x1000 * (i + 1), 0);
	dtb_finish(&B);
	REQUIRE_OK(dmar_acpi_parse(B.buf, B.len, NULL, &T));
	CHECK_EQ(T.nfindings, DMAR_ACPI_MAX_FINDINGS + 5);
	CHECK_EQ(T.findings[DMAR_ACPI_MAX_FINDINGS - 1].code, DMAR_FIND_RHSA_NO_DRHD);
}

TEST(checksum_is_fatal_only_when_asked)
{
	struct dmar_acpi_options strict = {.checksum_fatal = true};
	size_t len = build_full(&B);
	REQUIRE_OK(dmar_acpi_parse(B.buf, len, &strict, &T));
	B.buf[20] ^= 0x40;
	CHECK_EQ(dmar_acpi_parse(B.buf, len, &strict, &T), DMAR_ECHECKSUM);
	CHECK_EQ(T.bytes, NULL);
	REQUIRE_OK(dmar_acpi_parse(B.buf, len, NULL, &T));
	CHECK(!T.checksum_ok);
	CHECK_EQ(count_code(&T, DMAR_FIND_CHECKSUM), 1);
}

/* ---- errors ---- */

TEST(errors_for_unusable_tables)
{
	size_t len = build_full(&B);
	CHECK_EQ(dmar_acpi_parse(NULL, len, NULL, &T), DMAR_EINVAL);
	CHECK_EQ(dmar_acpi_parse(B.buf, len, NULL, NULL), DMAR_EINVAL);
	CHECK_EQ(dmar_acpi_parse(B.buf, 3, NULL, &T), DMAR_ETRUNC);
	CHECK_EQ(dmar_acpi_parse(B.buf, 40, NULL, &T), DMAR_ETRUNC);
	CHECK_EQ(dmar_acpi_parse(B.buf, len - 1, NULL, &T), DMAR_ETRUNC);
	/* A longer buffer is fine: the length field rules. */
	CHECK_OK(dmar_acpi_parse(B.buf, len + 100, NULL, &T));
	CHECK_EQ(T.length, len);

	memcpy(B.buf, "APIC", 4);
	CHECK_EQ(dmar_acpi_parse(B.buf, len, NULL, &T), DMAR_EBADTABLE);

	build_full(&B);
	dtb_put32(&B, 4, 20); /* length below the header */
	CHECK_EQ(dmar_acpi_parse(B.buf, len, NULL, &T), DMAR_EBADTABLE);
	dtb_put32(&B, 4, (uint32_t)len + 1);
	CHECK_EQ(dmar_acpi_parse(B.buf, len, NULL, &T), DMAR_ETRUNC);

	/* Structure length 0, below its fixed part, and past the table. */
	build_full(&B);
	dtb_put16(&B, 48 + 2, 0);
	CHECK_EQ(dmar_acpi_parse(B.buf, len, NULL, &T), DMAR_EBADTABLE);
	dtb_put16(&B, 48 + 2, 12);
	CHECK_EQ(dmar_acpi_parse(B.buf, len, NULL, &T), DMAR_EBADTABLE);
	dtb_put16(&B, 48 + 2, (uint16_t)(len - 48 + 8));
	CHECK_EQ(dmar_acpi_parse(B.buf, len, NULL, &T), DMAR_ETRUNC);
	/* Unknown structure type with a zero length must not loop. */
	build_full(&B);
	dtb_struct(&B, 0x99, NULL, 0);
	dtb_put16(&B, B.len - 2, 0);
	dtb_finish(&B);
	CHECK_EQ(dmar_acpi_parse(B.buf, B.len, NULL, &T), DMAR_EBADTABLE);

	/* Scope overrunning its structure, too short, odd length. */
	build_full(&B);
	B.buf[48 + 16 + 1] = 10;
	CHECK_EQ(dmar_acpi_parse(B.buf, len, NULL, &T), DMAR_EBADTABLE);
	B.buf[48 + 16 + 1] = 4;
	CHECK_EQ(dmar_acpi_parse(B.buf, len, NULL, &T), DMAR_EBADTABLE);
	B.buf[48 + 16 + 1] = 0;
	CHECK_EQ(dmar_acpi_parse(B.buf, len, NULL, &T), DMAR_EBADTABLE);
	B.buf[48 + 16 + 1] = 8;
	B.buf[48 + 16 + 8 + 1] = 200; /* second scope runs past the DRHD */
	CHECK_EQ(dmar_acpi_parse(B.buf, len, NULL, &T), DMAR_ETRUNC);

	/* 1..3 stray bytes after the last structure: a truncated structure header. */
	for (unsigned extra = 1; extra < 4; extra++) {
		build_full(&B);
		B.len += extra;
		dtb_finish(&B);
		CHECK_EQ(dmar_acpi_parse(B.buf, B.len, NULL, &T), DMAR_ETRUNC);
	}
}

/* ---- device lookup through bridges ----
 * Topology of segment 0: 00:1c.0 is a bridge to bus 2 (subordinate 4); 02:00.0 a bridge
 * to bus 3; 02:01.0 a bridge to bus 4. */
struct topo_bridge {
	uint8_t bus, dev, fn, sec, sub;
};
static const struct topo_bridge topo[] = {
	{0, 0x1c, 0, 2, 4}, {2, 0, 0, 3, 3}, {2, 1, 0, 4, 4},
};
static unsigned cb_calls;
static int topo_cb(void *ctx, uint16_t seg, uint8_t bus, uint8_t dev, uint8_t fn, uint8_t *sub)
{
	(void)ctx;
	cb_calls++;
	for (size_t i = 0; i < sizeof(topo) / sizeof(topo[0]); i++) {
		if (seg == 0 && topo[i].bus == bus && topo[i].dev == dev && topo[i].fn == fn) {
			*sub = topo[i].sub;
			return topo[i].sec;
		}
	}
	return -1;
}

static size_t build_topology(struct dtb *b)
{
	static const uint8_t to_nic[] = {0x1c, 0, 0, 0, 0, 0};  /* 00:1c.0 > 02:00.0 > 03:00.0 */
	static const uint8_t to_bridge[] = {0x1c, 0, 1, 0};      /* 00:1c.0 > 02:01.0 (bus 4) */
	dtb_init(b, 39, 0);
	dtb_drhd(b, 0, 0, 0xfed90000);                 /* DRHD 0: the GPU only */
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_drhd(b, 0, 0, 0xfed91000);                 /* DRHD 1: deep endpoint + sub-hierarchy */
	dtb_scope(b, DMAR_SCOPE_ENDPOINT, 0, 0, to_nic, 3);
	dtb_scope(b, DMAR_SCOPE_BRIDGE, 0, 0, to_bridge, 2);
	dtb_drhd(b, DMAR_DRHD_INCLUDE_PCI_ALL, 0, 0xfed92000); /* DRHD 2: the rest of seg 0 */
	dtb_drhd(b, 0, 1, 0xfed93000);                 /* DRHD 3: segment 1, 00:02.0 */
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_rmrr(b, 0, 0x10000000, 0x10ffffff);        /* RMRR 0: GPU */
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_rmrr(b, 0, 0x20000000, 0x2000ffff);        /* RMRR 1: NIC and the GPU */
	dtb_scope(b, DMAR_SCOPE_ENDPOINT, 0, 0, to_nic, 3);
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_rmrr(b, 0, 0x30000000, 0x3000ffff);        /* RMRR 2: all below 02:01.0 */
	dtb_scope(b, DMAR_SCOPE_BRIDGE, 0, 0, to_bridge, 2);
	return dtb_finish(b);
}

static int unit_of(uint16_t seg, uint8_t bus, uint8_t dev, uint8_t fn, dmar_acpi_secondary_bus_fn cb)
{
	unsigned idx = 99;
	int rc = dmar_acpi_device_unit(&T, seg, bus, dev, fn, cb, NULL, &idx);
	return rc ? rc : (int)idx;
}

TEST(device_unit_explicit_scope_first_then_include_all)
{
	REQUIRE_OK(dmar_acpi_parse(B.buf, build_topology(&B), NULL, &T));
	CHECK_EQ(T.nfindings, 0);
	CHECK_EQ(unit_of(0, 0, 2, 0, topo_cb), 0);        /* explicit endpoint */
	CHECK_EQ(unit_of(0, 0, 2, 1, topo_cb), 2);        /* its other function is not named */
	CHECK_EQ(unit_of(0, 1, 2, 0, topo_cb), 2);        /* nor the same dev.fn on bus 1 */
	CHECK_EQ(unit_of(0, 3, 0, 0, topo_cb), 1);        /* three-level path */
	CHECK_EQ(unit_of(0, 2, 1, 0, topo_cb), 1);        /* the sub-hierarchy bridge itself */
	CHECK_EQ(unit_of(0, 4, 5, 3, topo_cb), 1);        /* below it */
	CHECK_EQ(unit_of(0, 3, 1, 0, topo_cb), 2);        /* bus 3 but not the named device */
	CHECK_EQ(unit_of(0, 0, 0x1f, 3, topo_cb), 2);     /* anything else: INCLUDE_PCI_ALL */
	CHECK_EQ(unit_of(1, 0, 2, 0, topo_cb), 3);        /* other segment, explicit */
	CHECK_EQ(unit_of(1, 0, 3, 0, topo_cb), DMAR_ENODEV); /* segment 1 has no catch-all */
	CHECK_EQ(unit_of(7, 0, 2, 0, topo_cb), DMAR_ENODEV);
	/* Without a bridge callback only one-entry paths resolve. */
	CHECK_EQ(unit_of(0, 3, 0, 0, NULL), 2);
	CHECK_EQ(unit_of(0, 0, 2, 0, NULL), 0);
	cb_calls = 0;
	CHECK_EQ(unit_of(0, 3, 0, 0, topo_cb), 1);
	CHECK(cb_calls >= 2);
	CHECK_EQ(dmar_acpi_device_unit(&T, 0, 0, 2, 0, topo_cb, NULL, NULL), DMAR_EINVAL);
}

static unsigned rmrrs_of(uint8_t bus, uint8_t dev, uint8_t fn, uint64_t *bases)
{
	unsigned cursor = 0, n = 0;
	struct dmar_acpi_rmrr r;
	while (dmar_acpi_device_rmrr_next(&T, 0, bus, dev, fn, topo_cb, NULL, &cursor, &r) == 0)
		bases[n++] = r.base;
	return n;
}

TEST(device_rmrrs_follow_scope_paths)
{
	uint64_t bases[4];
	REQUIRE_OK(dmar_acpi_parse(B.buf, build_topology(&B), NULL, &T));
	REQUIRE_EQ(rmrrs_of(0, 2, 0, bases), 2);
	CHECK_EQ(bases[0], 0x10000000);
	CHECK_EQ(bases[1], 0x20000000);
	REQUIRE_EQ(rmrrs_of(3, 0, 0, bases), 1);
	CHECK_EQ(bases[0], 0x20000000);
	REQUIRE_EQ(rmrrs_of(4, 0, 0, bases), 1);
	CHECK_EQ(bases[0], 0x30000000);
	CHECK_EQ(rmrrs_of(0, 0x1f, 0, bases), 0);
	CHECK_EQ(rmrrs_of(0, 2, 1, bases), 0);
	CHECK_EQ(rmrrs_of(5, 0, 0, bases), 0);            /* beyond 02:01.0's subordinate bus */
}

TEST(names_and_texts_exist_for_every_code)
{
	for (unsigned c = 1; c < DMAR_FIND_CODE_MAX; c++) {
		CHECK(strcmp(dmar_acpi_finding_name(c), "unknown-finding") != 0);
		CHECK(strcmp(dmar_acpi_finding_text(c), "unknown finding") != 0);
	}
	CHECK(strcmp(dmar_acpi_finding_name(DMAR_FIND_CODE_MAX), "unknown-finding") == 0);
	CHECK(strcmp(dmar_acpi_type_name(DMAR_ACPI_SATC), "SATC") == 0);
	CHECK(strcmp(dmar_acpi_type_name(99), "unknown") == 0);
	CHECK(strcmp(dmar_acpi_scope_type_name(DMAR_SCOPE_HPET), "hpet") == 0);
	CHECK(strcmp(dmar_acpi_scope_type_name(0), "unknown") == 0);
}
