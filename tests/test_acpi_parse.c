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

static void f_header_id(struct dtb *b) { b->buf[30] = 0x01; dtb_fix_checksum(b); }
static void f_drhd_beyond_haw(struct dtb *b)
{
	dtb_drhd(b, 0, 1, 1ull << 46); /* build_full's HAW is 46 bits */
	dtb_finish(b);
}
static void f_rmrr_beyond_haw(struct dtb *b) { f_rmrr(b, 1ull << 46, (1ull << 46) + 0xfff); }
static void f_dup_scope(struct dtb *b)
{
	dtb_rmrr(b, 0, 0x50000000, 0x5000ffff);
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_finish(b);
}
/* Segment 1 gets units of its own, so that segment 0's INCLUDE_PCI_ALL stays last. */
static void f_dup_drhd_device(struct dtb *b)
{
	dtb_drhd(b, 0, 1, 0xfed92000);
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_drhd(b, 0, 1, 0xfed93000);
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_finish(b);
}
static void f_drhd_overlap(struct dtb *b) { dtb_drhd(b, 0, 1, 0xfed90000); dtb_finish(b); }
static void f_rmrr_overlap_segment(struct dtb *b)
{
	dtb_drhd(b, 0, 1, 0xfed92000);
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_rmrr(b, 1, 0x3e2f0000, 0x3e30ffff);
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_finish(b);
}
static void f_segment_no_drhd(struct dtb *b)
{
	dtb_rmrr(b, 2, 0x50000000, 0x5000ffff);
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_finish(b);
}
static void f_scope_no_drhd(struct dtb *b)
{
	dtb_drhd(b, 0, 1, 0xfed92000);
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_rmrr(b, 1, 0x50000000, 0x5000ffff);
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 4, 0, 0);
	dtb_finish(b);
}
/* A unit naming `n` distinct devices of segment 1 (buses from `bus`). */
static void drhd_with_devices(struct dtb *b, uint64_t base, unsigned n, unsigned bus)
{
	dtb_drhd(b, 0, 1, base);
	for (unsigned i = 0; i < n; i++)
		dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, (uint8_t)(bus + i / 256), (uint8_t)(i / 8 % 32),
			      (uint8_t)(i % 8), 0);
}
/* 3000 scopes in one list: 4.5 million pairs to compare, past DMAR_ACPI_CROSS_WORK. */
static void f_cross_limited(struct dtb *b)
{
	drhd_with_devices(b, 0xfed92000, 3000, 0);
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
	{"header_id", f_header_id, DMAR_FIND_HEADER_ID_NOT_ASCII, 0},
	{"drhd_beyond_haw", f_drhd_beyond_haw, DMAR_FIND_DRHD_BEYOND_HAW, 0},
	{"rmrr_beyond_haw", f_rmrr_beyond_haw, DMAR_FIND_RMRR_BEYOND_HAW, 0},
	{"dup_scope", f_dup_scope, DMAR_FIND_DUP_SCOPE, 0},
	{"dup_drhd_device", f_dup_drhd_device, DMAR_FIND_DUP_DRHD_DEVICE, 0},
	{"drhd_overlap", f_drhd_overlap, DMAR_FIND_DRHD_OVERLAP, 0},
	{"rmrr_overlap_segment", f_rmrr_overlap_segment, DMAR_FIND_RMRR_OVERLAP_SEGMENT, 0},
	{"segment_no_drhd", f_segment_no_drhd, DMAR_FIND_SEGMENT_NO_DRHD, 0},
	{"scope_no_drhd", f_scope_no_drhd, DMAR_FIND_SCOPE_NO_DRHD, 0},
	{"cross_limited", f_cross_limited, DMAR_FIND_CROSS_LIMITED, 0},
};

TEST(each_broken_rule_gives_its_finding_and_only_it)
{
	_Static_assert(DMAR_FIND_CODE_MAX <= 64, "covered is a 64-bit mask");
	uint64_t covered = 0;
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
		covered |= 1ull << finding_cases[i].code;
	}
	harness_set_context(NULL);
	for (unsigned c = 1; c < DMAR_FIND_CODE_MAX; c++)
		CHECK(covered & (1ull << c));
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

/* ---- the rules one by one: a table that breaks each, and near misses that do not ---- */

/* Parses B; returns the number of findings (all must be `code`, or 0 when code is 0). */
static unsigned parse_findings(unsigned code)
{
	dtb_finish(&B);
	REQUIRE_OK(dmar_acpi_parse(B.buf, B.len, NULL, &T));
	if (code)
		CHECK_EQ(count_code(&T, code), T.nfindings);
	return T.nfindings;
}

/* The first finding of a code, or NULL. */
static const struct dmar_acpi_finding *first_of(unsigned code)
{
	for (unsigned i = 0; i < T.nfindings && i < DMAR_ACPI_MAX_FINDINGS; i++)
		if (T.findings[i].code == code)
			return &T.findings[i];
	return NULL;
}

#define CHECK_FINDING(code, off, val)                                       \
	do {                                                                \
		const struct dmar_acpi_finding *f_ = first_of(code);        \
		CHECK(f_ != NULL);                                          \
		if (f_) {                                                   \
			CHECK_EQ(f_->offset, (off));                        \
			CHECK_EQ(f_->value, (val));                         \
		}                                                           \
	} while (0)

/* A minimal clean table: HAW `haw` bits, segment 0 under one INCLUDE_PCI_ALL unit. */
static void build_min(unsigned haw)
{
	dtb_init(&B, haw, 0);
	dtb_drhd(&B, DMAR_DRHD_INCLUDE_PCI_ALL, 0, 0xfed90000);
}

static void set_ids(const char oem[6], const char table[8], const char creator[4])
{
	memcpy(B.buf + 10, oem, 6);
	memcpy(B.buf + 16, table, 8);
	memcpy(B.buf + 28, creator, 4);
}

TEST(header_ids_are_printable_ascii_with_nul_padding_allowed)
{
	build_min(39);
	set_ids("HP    ", "SNB \0\0\0\0", "~ !\0");        /* padding and edge characters */
	CHECK_EQ(parse_findings(0), 0);
	CHECK(strcmp(T.oem_table_id, "SNB ") == 0);
	set_ids("HP    ", "ProLiant", "\xd2\x04\0\0");     /* a number in the creator ID */
	CHECK_EQ(parse_findings(DMAR_FIND_HEADER_ID_NOT_ASCII), 1);
	CHECK_FINDING(DMAR_FIND_HEADER_ID_NOT_ASCII, 28, 0xd2);
	set_ids("A\0B   ", "SYNTHTBL", "DTB ");            /* a NUL that is not padding */
	CHECK_EQ(parse_findings(DMAR_FIND_HEADER_ID_NOT_ASCII), 1);
	CHECK_FINDING(DMAR_FIND_HEADER_ID_NOT_ASCII, 11, 0);
	set_ids("DMARTB", "\x01\0\0\0\0\0\0\0", "DTB ");   /* a control byte */
	CHECK_EQ(parse_findings(DMAR_FIND_HEADER_ID_NOT_ASCII), 1);
	CHECK_FINDING(DMAR_FIND_HEADER_ID_NOT_ASCII, 16, 1);
	set_ids("DMART\x7f", "SYNTH\x80\x81\x82", "\t   "); /* DEL, high bytes: one per field */
	CHECK_EQ(parse_findings(DMAR_FIND_HEADER_ID_NOT_ASCII), 3);
	CHECK_FINDING(DMAR_FIND_HEADER_ID_NOT_ASCII, 15, 0x7f);
	CHECK_EQ(T.findings[1].offset, 21);
	CHECK_EQ(T.findings[2].value, '\t');
	set_ids("\0\0\0\0\0\0", "\0\0\0\0\0\0\0\0", "\0\0\0\0"); /* empty: nothing to report */
	CHECK_EQ(parse_findings(0), 0);
}

/* One INCLUDE_PCI_ALL unit at `base` with a register set of 2^size pages. */
static size_t drhd_at(unsigned haw, uint64_t base, unsigned size)
{
	dtb_init(&B, haw, 0);
	size_t s = dtb_drhd(&B, DMAR_DRHD_INCLUDE_PCI_ALL, 0, base);
	dtb_put8(&B, s + 5, (uint8_t)size);
	return s;
}

TEST(drhd_registers_lie_within_the_host_address_width)
{
	const uint64_t top = 1ull << 39;
	size_t s = drhd_at(39, top - 0x1000, 0);            /* the last page: fine */
	CHECK_EQ(parse_findings(0), 0);
	drhd_at(39, top, 0);
	CHECK_EQ(parse_findings(DMAR_FIND_DRHD_BEYOND_HAW), 1);
	CHECK_FINDING(DMAR_FIND_DRHD_BEYOND_HAW, s + 8, top);
	drhd_at(39, top - 0x1000, 1);                       /* two pages: the second is out */
	CHECK_EQ(parse_findings(DMAR_FIND_DRHD_BEYOND_HAW), 1);
	drhd_at(39, top - 0x2000, 1);
	CHECK_EQ(parse_findings(0), 0);
	drhd_at(39, 0xfedc000000000000ull, 15);            /* far out, largest register set */
	CHECK_EQ(parse_findings(DMAR_FIND_DRHD_BEYOND_HAW), 1);
	drhd_at(36, 0xfed90000, 0);                         /* old chipsets: 36 bits */
	CHECK_EQ(parse_findings(0), 0);
	drhd_at(64, 0xfffffffffffff000ull, 0);              /* 64 bits: nothing is beyond */
	CHECK_EQ(parse_findings(0), 0);
	CHECK_EQ(T.haw, 64);
	drhd_at(256, 0xfffffffffffff000ull, 0);             /* field 255 */
	CHECK_EQ(parse_findings(0), 0);
	CHECK_EQ(T.haw, 256);
}

TEST(rmrr_lies_within_the_host_address_width)
{
	const uint64_t top = 1ull << 39;
	build_min(39);
	size_t r = dtb_rmrr(&B, 0, top - 0x10000, top - 1);  /* ends at the last byte: fine */
	dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 0x14, 0, 0);
	CHECK_EQ(parse_findings(0), 0);
	dtb_put64(&B, r + 16, top + 0xffff);
	CHECK_EQ(parse_findings(DMAR_FIND_RMRR_BEYOND_HAW), 1);
	CHECK_FINDING(DMAR_FIND_RMRR_BEYOND_HAW, r + 16, top + 0xffff);
	dtb_put64(&B, r + 8, top);                          /* base out, limit below it */
	dtb_put64(&B, r + 16, 0xfff);
	CHECK_EQ(parse_findings(0), 2);
	CHECK_EQ(count_code(&T, DMAR_FIND_RMRR_END_BEFORE_BASE), 1);
	CHECK_FINDING(DMAR_FIND_RMRR_BEYOND_HAW, r + 8, top);
}

TEST(one_scope_list_names_a_device_once)
{
	static const uint8_t deep[] = {0x1c, 0, 0, 0};
	build_min(39);
	size_t r = dtb_rmrr(&B, 0, 0x50000000, 0x5000ffff);
	size_t first = dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 2, 1, 0);     /* other function */
	dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 1, 2, 0, 0);     /* other start bus */
	dtb_scope(&B, DMAR_SCOPE_ENDPOINT, 0, 0, deep, 2);      /* 00:1c.0 > 00.0 */
	dtb_scope_pci(&B, DMAR_SCOPE_BRIDGE, 0, 0x1c, 0, 0);    /* the bridge above it */
	CHECK_EQ(parse_findings(0), 0);
	size_t again = dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	CHECK_EQ(parse_findings(DMAR_FIND_DUP_SCOPE), 1);
	CHECK_FINDING(DMAR_FIND_DUP_SCOPE, again, first);
	(void)r;

	/* In a DRHD: an endpoint and a bridge scope with one path are one device; ACPI
	 * namespace devices repeat by number; IOAPICs keep their own finding. */
	dtb_init(&B, 39, 0);
	dtb_drhd(&B, 0, 0, 0xfed90000);
	dtb_scope_pci(&B, DMAR_SCOPE_ACPI, 0, 0x15, 0, 1);
	dtb_scope_pci(&B, DMAR_SCOPE_ACPI, 0, 0x15, 1, 2);
	dtb_scope_pci(&B, DMAR_SCOPE_IOAPIC, 0xf0, 0x1f, 0, 2); /* id 2 as an ACPI number: no clash */
	first = dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 0x1c, 0, 0);
	CHECK_EQ(parse_findings(0), 0);
	again = dtb_scope_pci(&B, DMAR_SCOPE_BRIDGE, 0, 0x1c, 0, 0);
	CHECK_EQ(parse_findings(DMAR_FIND_DUP_SCOPE), 1);
	CHECK_FINDING(DMAR_FIND_DUP_SCOPE, again, first);
	dtb_init(&B, 39, 0);
	dtb_drhd(&B, 0, 0, 0xfed90000);
	first = dtb_scope_pci(&B, DMAR_SCOPE_ACPI, 0, 0x15, 0, 1);
	again = dtb_scope_pci(&B, DMAR_SCOPE_ACPI, 0, 0x15, 1, 1);
	CHECK_EQ(parse_findings(DMAR_FIND_DUP_SCOPE), 1);
	CHECK_FINDING(DMAR_FIND_DUP_SCOPE, again, first);
	dtb_init(&B, 39, 0);
	dtb_drhd(&B, 0, 0, 0xfed90000);
	dtb_scope_pci(&B, DMAR_SCOPE_IOAPIC, 0xf0, 0x1f, 0, 2);
	dtb_scope_pci(&B, DMAR_SCOPE_IOAPIC, 0xf0, 0x1f, 0, 2);
	CHECK_EQ(parse_findings(DMAR_FIND_DUP_IOAPIC), 1);
	/* Scopes without a path name no device (they have their own finding). */
	dtb_init(&B, 39, 0);
	dtb_drhd(&B, 0, 0, 0xfed90000);
	dtb_scope(&B, DMAR_SCOPE_ENDPOINT, 0, 0, NULL, 0);
	dtb_scope(&B, DMAR_SCOPE_ENDPOINT, 0, 0, NULL, 0);
	dtb_drhd(&B, 0, 0, 0xfed91000);
	dtb_scope(&B, DMAR_SCOPE_ENDPOINT, 0, 0, NULL, 0);
	dtb_rmrr(&B, 0, 0x50000000, 0x5000ffff);
	dtb_scope(&B, DMAR_SCOPE_ENDPOINT, 0, 0, NULL, 0);
	CHECK_EQ(parse_findings(DMAR_FIND_SCOPE_NO_PATH), 4);
}

TEST(two_drhds_of_a_segment_do_not_name_one_device)
{
	dtb_init(&B, 39, 0);
	dtb_drhd(&B, 0, 0, 0xfed90000);
	size_t first = dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_drhd(&B, 0, 1, 0xfed91000);                         /* segment 1: its own 00:02.0 */
	dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_drhd(&B, 0, 0, 0xfed92000);
	dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 2, 1, 0);     /* another function */
	CHECK_EQ(parse_findings(0), 0);
	size_t again = dtb_scope_pci(&B, DMAR_SCOPE_BRIDGE, 0, 2, 0, 0);
	CHECK_EQ(parse_findings(DMAR_FIND_DUP_DRHD_DEVICE), 1);
	CHECK_FINDING(DMAR_FIND_DUP_DRHD_DEVICE, again, first);
	dtb_drhd(&B, 0, 0, 0xfed93000);                         /* a third unit: one more */
	dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	CHECK_EQ(parse_findings(DMAR_FIND_DUP_DRHD_DEVICE), 2);
	/* ACPI namespace devices too. */
	dtb_init(&B, 39, 0);
	dtb_drhd(&B, 0, 0, 0xfed90000);
	dtb_scope_pci(&B, DMAR_SCOPE_ACPI, 0, 0x15, 0, 1);
	dtb_drhd(&B, 0, 0, 0xfed91000);
	dtb_scope_pci(&B, DMAR_SCOPE_ACPI, 0, 0x15, 1, 2);
	CHECK_EQ(parse_findings(0), 0);
	dtb_scope_pci(&B, DMAR_SCOPE_ACPI, 0, 0x15, 2, 1);
	CHECK_EQ(parse_findings(DMAR_FIND_DUP_DRHD_DEVICE), 1);
}

/* Two units: the first at `a` (2^sa pages), the second at `b` in another segment. */
static size_t two_units(uint64_t a, unsigned sa, uint64_t b, unsigned sb)
{
	dtb_init(&B, 46, 0);
	size_t s = dtb_drhd(&B, DMAR_DRHD_INCLUDE_PCI_ALL, 0, a);
	dtb_put8(&B, s + 5, (uint8_t)sa);
	size_t o = dtb_drhd(&B, DMAR_DRHD_INCLUDE_PCI_ALL, 1, b);
	dtb_put8(&B, o + 5, (uint8_t)sb);
	return o;
}

TEST(drhd_register_sets_do_not_overlap)
{
	size_t o = two_units(0xfed90000, 0, 0xfed90000, 0);   /* one base */
	CHECK_EQ(parse_findings(DMAR_FIND_DRHD_OVERLAP), 1);
	CHECK_FINDING(DMAR_FIND_DRHD_OVERLAP, o, DMAR_ACPI_HEADER_LEN);
	two_units(0xfed90000, 0, 0xfed91000, 0);              /* the next page: fine */
	CHECK_EQ(parse_findings(0), 0);
	two_units(0xfed90000, 1, 0xfed91000, 0);              /* first spans two pages */
	CHECK_EQ(parse_findings(DMAR_FIND_DRHD_OVERLAP), 1);
	two_units(0xfed90000, 1, 0xfed92000, 0);
	CHECK_EQ(parse_findings(0), 0);
	two_units(0xfed91000, 0, 0xfed90000, 1);              /* second spans into the first */
	CHECK_EQ(parse_findings(DMAR_FIND_DRHD_OVERLAP), 1);
	two_units(0xfed91000, 0, 0xfed8f000, 1);
	CHECK_EQ(parse_findings(0), 0);
	two_units(0xfed90010, 0, 0xfed91000, 0);              /* low base bits: not a wider set */
	CHECK_EQ(parse_findings(DMAR_FIND_DRHD_BASE_UNALIGNED), 1);
	two_units(0, 0, 0, 0);                                /* base 0 has its own finding */
	CHECK_EQ(parse_findings(DMAR_FIND_DRHD_BASE_ZERO), 2);
}

TEST(rmrrs_of_two_segments_do_not_overlap)
{
	dtb_init(&B, 39, 0);
	dtb_drhd(&B, DMAR_DRHD_INCLUDE_PCI_ALL, 0, 0xfed90000);
	dtb_drhd(&B, DMAR_DRHD_INCLUDE_PCI_ALL, 1, 0xfed91000);
	size_t r0 = dtb_rmrr(&B, 0, 0x10000000, 0x1000ffff);
	dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 0x14, 0, 0);
	size_t r1 = dtb_rmrr(&B, 1, 0x10010000, 0x1001ffff);  /* adjacent: fine */
	dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 0x14, 0, 0);
	CHECK_EQ(parse_findings(0), 0);
	dtb_put64(&B, r1 + 8, 0x1000f000);
	CHECK_EQ(parse_findings(DMAR_FIND_RMRR_OVERLAP_SEGMENT), 1);
	CHECK_FINDING(DMAR_FIND_RMRR_OVERLAP_SEGMENT, r1, r0);
	dtb_put16(&B, r1 + 6, 0);                             /* one segment: the old finding */
	CHECK_EQ(parse_findings(DMAR_FIND_RMRR_OVERLAP), 1);
}

TEST(structures_of_a_segment_without_drhd_are_reported)
{
	build_min(39);
	dtb_atsr(&B, DMAR_ATSR_ALL_PORTS, 0);
	dtb_rmrr(&B, 0, 0x50000000, 0x5000ffff);
	dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 0x14, 0, 0);
	CHECK_EQ(parse_findings(0), 0);
	size_t a = dtb_atsr(&B, DMAR_ATSR_ALL_PORTS, 3);
	CHECK_EQ(parse_findings(DMAR_FIND_SEGMENT_NO_DRHD), 1);
	CHECK_FINDING(DMAR_FIND_SEGMENT_NO_DRHD, a, 3);
	dtb_rmrr(&B, 3, 0x60000000, 0x6000ffff);              /* one finding per structure, */
	dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 0x14, 0, 0); /* none per scope */
	dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 0x1d, 0, 0);
	dtb_satc(&B, 0, 3);
	dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_sidp(&B, 3);
	CHECK_EQ(parse_findings(DMAR_FIND_SEGMENT_NO_DRHD), 4);
}

/* Segment 1: one unit naming 00:02.0 and the sub-hierarchy below the bridge 00:1c.0;
 * then an RMRR of segment 1 naming the device `path` from `bus`. */
static size_t unit_bridge; /* the unit's 00:1c.0 scope */
static size_t rmrr_naming(uint8_t bus, const uint8_t *path, unsigned npath)
{
	dtb_init(&B, 39, 0);
	dtb_drhd(&B, DMAR_DRHD_INCLUDE_PCI_ALL, 0, 0xfed90000);
	dtb_drhd(&B, 0, 1, 0xfed91000);
	dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	unit_bridge = dtb_scope_pci(&B, DMAR_SCOPE_BRIDGE, 0, 0x1c, 0, 0);
	dtb_rmrr(&B, 1, 0x50000000, 0x5000ffff);
	return dtb_scope(&B, DMAR_SCOPE_ENDPOINT, 0, bus, path, npath);
}

TEST(scoped_devices_are_covered_by_a_drhd_of_their_segment)
{
	static const uint8_t gpu[] = {2, 0}, lpc[] = {0x1f, 0}, port[] = {0x1c, 0};
	static const uint8_t below[] = {0x1c, 0, 0, 0}, other_port[] = {0x1c, 1, 0, 0};
	static const uint8_t deeper[] = {0x1c, 0, 3, 0, 0, 1};
	/* Covered: named, below the bridge by path, or possibly below it by bus number. */
	rmrr_naming(0, gpu, 1);
	CHECK_EQ(parse_findings(0), 0);
	rmrr_naming(0, below, 2);
	CHECK_EQ(parse_findings(0), 0);
	rmrr_naming(0, deeper, 3);
	CHECK_EQ(parse_findings(0), 0);
	rmrr_naming(0, port, 1);
	CHECK_EQ(parse_findings(0), 0);
	rmrr_naming(3, gpu, 1);                 /* 03:02.0: bus 3 may lie below 00:1c.0 */
	CHECK_EQ(parse_findings(0), 0);
	/* Not covered: another device of bus 0, another port's sub-hierarchy. */
	size_t sc = rmrr_naming(0, lpc, 1);
	CHECK_EQ(parse_findings(DMAR_FIND_SCOPE_NO_DRHD), 1);
	CHECK_FINDING(DMAR_FIND_SCOPE_NO_DRHD, sc, 1);
	rmrr_naming(0, other_port, 2);
	CHECK_EQ(parse_findings(DMAR_FIND_SCOPE_NO_DRHD), 1);
	/* Nothing lies below an endpoint scope, and an IOAPIC scope names no PCI device. */
	rmrr_naming(0, below, 2);
	B.buf[unit_bridge] = DMAR_SCOPE_ENDPOINT;
	CHECK_EQ(parse_findings(DMAR_FIND_SCOPE_NO_DRHD), 1);
	dtb_init(&B, 39, 0);
	dtb_drhd(&B, 0, 1, 0xfed91000);
	dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_scope_pci(&B, DMAR_SCOPE_IOAPIC, 0xf0, 0x1f, 0, 2);
	dtb_rmrr(&B, 1, 0x50000000, 0x5000ffff);
	dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0xf0, 0x1f, 0, 0);
	CHECK_EQ(parse_findings(DMAR_FIND_SCOPE_NO_DRHD), 1);
	/* An INCLUDE_PCI_ALL unit in the segment covers everything. */
	rmrr_naming(0, lpc, 1);
	dtb_drhd(&B, DMAR_DRHD_INCLUDE_PCI_ALL, 1, 0xfed92000);
	CHECK_EQ(parse_findings(0), 0);

	/* Buses below a bridge are numbered above its own: a unit whose scopes start on bus
	 * 0x80 cannot reach 00:14.0 (a trimmed two-socket table), but may reach a device
	 * two bridges below bus 0. */
	static const uint8_t xhci[] = {0x14, 0}, two_deep[] = {1, 0, 0, 0};
	dtb_init(&B, 46, 0);
	dtb_drhd(&B, 0, 0, 0xd37fc000);
	dtb_scope_pci(&B, DMAR_SCOPE_BRIDGE, 0x80, 0, 0, 0);
	dtb_rmrr(&B, 0, 0x75460000, 0x75470fff);
	sc = dtb_scope(&B, DMAR_SCOPE_ENDPOINT, 0, 0, xhci, 1);
	CHECK_EQ(parse_findings(DMAR_FIND_SCOPE_NO_DRHD), 1);
	CHECK_FINDING(DMAR_FIND_SCOPE_NO_DRHD, sc, 0);
	dtb_put8(&B, sc + 1, 6 + 4);
	memcpy(B.buf + sc + 6, two_deep, 4);
	B.len += 2;
	dtb_put16(&B, B.open + 2, (uint16_t)(B.len - B.open));
	CHECK_EQ(parse_findings(0), 0);
	/* A one-entry endpoint on bus 0 cannot reach a device on bus 3, nor a unit naming
	 * only 00:1c.0 > 00.0 reach the bridge 00:1c.0 above it; ATSR root ports count. */
	dtb_init(&B, 39, 0);
	dtb_drhd(&B, 0, 0, 0xfed90000);
	dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_scope(&B, DMAR_SCOPE_ENDPOINT, 0, 0, below, 2);
	dtb_rmrr(&B, 0, 0x50000000, 0x5000ffff);
	dtb_scope(&B, DMAR_SCOPE_ENDPOINT, 0, 3, gpu, 1);
	dtb_atsr(&B, 0, 0);
	dtb_scope(&B, DMAR_SCOPE_BRIDGE, 0, 0, port, 1);
	CHECK_EQ(parse_findings(DMAR_FIND_SCOPE_NO_DRHD), 2);
}

TEST(cross_checks_stop_at_their_work_bound)
{
	/* 2000 scopes (2 million pairs): within the bound, every check runs. */
	build_min(39);
	drhd_with_devices(&B, 0xfed91000, 2000, 0);
	CHECK_EQ(parse_findings(0), 0);
	dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 0, 0, 0);   /* a repeat at the very end */
	CHECK_EQ(parse_findings(DMAR_FIND_DUP_SCOPE), 1);
	/* 3000: the bound stops them, and says where. */
	build_min(39);
	size_t s = B.len;
	drhd_with_devices(&B, 0xfed91000, 3000, 0);
	dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 0, 0, 0);
	CHECK_EQ(parse_findings(DMAR_FIND_CROSS_LIMITED), 1);
	CHECK_FINDING(DMAR_FIND_CROSS_LIMITED, s, DMAR_ACPI_CROSS_WORK);
}

static size_t build_topology(struct dtb *b);

/* Parses B with the cross checks bounded to `work` steps. */
static int parse_bounded(uint32_t work, struct dmar_acpi_table *t)
{
	struct dmar_acpi_options opt = {.cross_work = work};
	return dmar_acpi_parse(B.buf, B.len, &opt, t);
}

static bool has_finding(const struct dmar_acpi_table *t, const struct dmar_acpi_finding *f)
{
	for (unsigned i = 0; i < t->nfindings && i < DMAR_ACPI_MAX_FINDINGS; i++)
		if (t->findings[i].code == f->code && t->findings[i].offset == f->offset &&
		    t->findings[i].value == f->value)
			return true;
	return false;
}

/* Cut the cross checks short at every possible step: each finding reported must be one
 * the full checks report too (no absence concluded from a partial look), with one
 * cross-checks-incomplete finding, until the bound suffices and all are reported. */
static void check_every_cut(const char *name)
{
	static struct dmar_acpi_table full, cut;
	harness_set_context(name);
	dtb_finish(&B);
	REQUIRE_OK(parse_bounded(0, &full));
	REQUIRE(full.nfindings < DMAR_ACPI_MAX_FINDINGS);
	uint32_t work;
	for (work = 1; work < 100000; work++) {
		REQUIRE_OK(parse_bounded(work, &cut));
		unsigned limited = count_code(&cut, DMAR_FIND_CROSS_LIMITED);
		for (unsigned i = 0; i < cut.nfindings && i < DMAR_ACPI_MAX_FINDINGS; i++)
			if (cut.findings[i].code != DMAR_FIND_CROSS_LIMITED)
				CHECK(has_finding(&full, &cut.findings[i]));
		if (!limited)
			break;
		CHECK_EQ(limited, 1);
		CHECK(cut.nfindings <= full.nfindings + 1);
	}
	CHECK_EQ(cut.nfindings, full.nfindings);
	for (unsigned i = 0; i < full.nfindings; i++)
		CHECK(has_finding(&cut, &full.findings[i]));
	CHECK(work > 1);
	harness_set_context(NULL);
}

TEST(checks_cut_short_report_only_what_full_checks_report)
{
	for (size_t i = 0; i < sizeof(finding_cases) / sizeof(finding_cases[0]); i++) {
		if (finding_cases[i].code == DMAR_FIND_CROSS_LIMITED)
			continue;
		build_full(&B);
		finding_cases[i].make(&B);
		check_every_cut(finding_cases[i].name);
	}
	build_topology(&B);
	check_every_cut("topology");
	/* Absences proved only at the end of a walk: an RHSA whose unit comes last, an
	 * RMRR device and an ATSR segment whose units come last. */
	dtb_init(&B, 39, 0);
	dtb_rhsa(&B, 0xfed93000, 0);
	dtb_rmrr(&B, 1, 0x50000000, 0x5000ffff);
	dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 0x14, 0, 0);
	dtb_atsr(&B, DMAR_ATSR_ALL_PORTS, 2);
	dtb_rmrr(&B, 3, 0x60000000, 0x6000ffff);             /* one that stays uncovered */
	dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 0x14, 0, 0);
	dtb_drhd(&B, 0, 3, 0xfed94000);
	dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_drhd(&B, 0, 1, 0xfed92000);
	dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 0x14, 0, 0);
	dtb_drhd(&B, DMAR_DRHD_INCLUDE_PCI_ALL, 2, 0xfed93000);
	check_every_cut("absences");
	CHECK_EQ(parse_findings(DMAR_FIND_SCOPE_NO_DRHD), 1);
}

TEST(findings_of_cross_checks_beyond_the_array_are_counted)
{
	/* 40 RMRRs in a segment without units, and one device named 40 times. */
	build_min(39);
	for (unsigned i = 0; i < 40; i++) {
		dtb_rmrr(&B, 5, 0x10000000ull * (i + 1), 0x10000000ull * (i + 1) + 0xfff);
		dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 0x14, 0, 0);
	}
	dtb_drhd(&B, 0, 6, 0xfed91000);
	for (unsigned i = 0; i < 40; i++)
		dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	CHECK_EQ(parse_findings(0), 40 + 39);
	CHECK_EQ(count_code(&T, DMAR_FIND_SEGMENT_NO_DRHD), 32);
	CHECK_EQ(T.findings[DMAR_ACPI_MAX_FINDINGS - 1].code, DMAR_FIND_SEGMENT_NO_DRHD);
	/* The other way round: the 39 repeats come first. */
	build_min(39);
	dtb_drhd(&B, 0, 6, 0xfed91000);
	for (unsigned i = 0; i < 40; i++)
		dtb_scope_pci(&B, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	dtb_rmrr(&B, 5, 0x10000000, 0x10000fff);
	CHECK_EQ(parse_findings(0), 39 + 1);
	CHECK_EQ(count_code(&T, DMAR_FIND_DUP_SCOPE), 32);
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
