/*
 * dmarctl - decode and lint an ACPI DMAR table, decode VT-d CAP/ECAP registers and fault
 * reason codes.
 *
 *   dmarctl table [--json] [FILE]   decoded table (default /sys/firmware/acpi/tables/DMAR)
 *   dmarctl lint [FILE]             findings, one per line: exit 0 clean, 1 findings, 2 errors
 *   dmarctl caps [CAP ECAP]         every CAP/ECAP field (default: each unit in sysfs)
 *   dmarctl fault-reason N          the specification's text for a fault reason code
 *   dmarctl explain [--json] [--table FILE | --no-table] [LOG]
 *                                   explains the DMAR fault lines of kernel log text
 *                                   (LOG, or standard input): see dmarctl_explain.c
 *
 * A file that is not a usable DMAR table gets one line on stderr and exit status 2.
 */
#include <dmar/acpi.h>
#include <dmar/caps.h>
#include <dmar/error.h>
#include <dmar/fault_reason.h>

#include "dmarctl_explain.h"
#include "json_out.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TABLE "/sys/firmware/acpi/tables/DMAR"
#define SYSFS_IOMMU "/sys/class/iommu"
#define MAX_TABLE (1u << 20)

static unsigned char table_buf[MAX_TABLE];

static int usage(void)
{
	fprintf(stderr, "usage: dmarctl table [--json] [FILE] | lint [FILE] | caps [CAP ECAP] | "
			"fault-reason N | explain [--json] [--table FILE | --no-table] [LOG]\n");
	return 2;
}

/* Reads and parses FILE; on failure prints one line on stderr and returns 2. */
static int load(const char *path, struct dmar_acpi_table *t)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "dmarctl: %s: %s\n", path, strerror(errno));
		return 2;
	}
	size_t n = fread(table_buf, 1, sizeof(table_buf), f);
	int rerr = ferror(f);
	fclose(f);
	if (rerr) {
		fprintf(stderr, "dmarctl: %s: read error\n", path);
		return 2;
	}
	int rc = dmar_acpi_parse(table_buf, n, NULL, t);
	if (rc == DMAR_EBADTABLE && (n < 4 || memcmp(table_buf, "DMAR", 4) != 0)) {
		fprintf(stderr, "dmarctl: %s: not an ACPI DMAR table\n", path);
		return 2;
	}
	if (rc) {
		fprintf(stderr, "dmarctl: %s: broken DMAR table: %s\n", path, dmar_strerror(rc));
		return 2;
	}
	return 0;
}

/* ---- one decoding of each structure, rendered as text or JSON ---- */

enum field_kind {
	F_DEC,    /* number: decimal in text and JSON */
	F_FLAGS,  /* number: hex in text, a number in JSON */
	F_ADDR,   /* 64-bit address: hex in text, a "0x..." string in JSON */
	F_STR,
};
struct field {
	const char *key;
	enum field_kind kind;
	uint64_t v;
	const char *s;
};
#define MAX_FIELDS 8

static const char *const table_flag_names[] = {"INTR_REMAP", "X2APIC_OPT_OUT",
					       "DMA_CTRL_PLATFORM_OPT_IN"};

static void flag_names(char *buf, size_t len, unsigned flags, const char *const *names, unsigned n)
{
	size_t pos = 0;
	buf[0] = '\0';
	for (unsigned i = 0; i < n && pos < len; i++)
		if ((flags & (1u << i)) && names[i])
			pos += (size_t)snprintf(buf + pos, len - pos, "%s%s", pos ? " " : "", names[i]);
}

/* The type-specific fields of structure `st`, the k-th of its type. Strings point into
 * static storage valid until the next call. */
static unsigned struct_fields(const struct dmar_acpi_table *t, const struct dmar_acpi_struct *st,
			      unsigned k, struct field *f)
{
	static struct dmar_acpi_andd andd;
	static const char *const drhd_flags[] = {"INCLUDE_PCI_ALL"};
	static const char *const atsr_flags[] = {"ALL_PORTS"};
	static const char *const satc_flags[] = {"ATC_REQUIRED"};
	static char names[64];
	unsigned n = 0;
	const char *const *fnames = NULL;
	unsigned flags = 0;
#define ADD(k_, kind_, v_) (f[n++] = (struct field){k_, kind_, (uint64_t)(v_), NULL})
	switch (st->type) {
	case DMAR_ACPI_DRHD: {
		struct dmar_acpi_drhd d;
		dmar_acpi_drhd_get(t, k, &d);
		ADD("segment", F_DEC, d.segment);
		ADD("address", F_ADDR, d.base);
		ADD("size", F_DEC, d.size);
		ADD("flags", F_FLAGS, d.flags);
		fnames = drhd_flags, flags = d.flags;
		break;
	}
	case DMAR_ACPI_RMRR: {
		struct dmar_acpi_rmrr r;
		dmar_acpi_rmrr_get(t, k, &r);
		ADD("segment", F_DEC, r.segment);
		ADD("base", F_ADDR, r.base);
		ADD("limit", F_ADDR, r.limit);
		break;
	}
	case DMAR_ACPI_ATSR: {
		struct dmar_acpi_atsr a;
		dmar_acpi_atsr_get(t, k, &a);
		ADD("segment", F_DEC, a.segment);
		ADD("flags", F_FLAGS, a.flags);
		fnames = atsr_flags, flags = a.flags;
		break;
	}
	case DMAR_ACPI_RHSA: {
		struct dmar_acpi_rhsa h;
		dmar_acpi_rhsa_get(t, k, &h);
		ADD("address", F_ADDR, h.base);
		ADD("proximity_domain", F_DEC, h.proximity_domain);
		break;
	}
	case DMAR_ACPI_ANDD:
		dmar_acpi_andd_get(t, k, &andd);
		ADD("device", F_DEC, andd.device);
		f[n++] = (struct field){"name", F_STR, 0, andd.name};
		break;
	case DMAR_ACPI_SATC: {
		struct dmar_acpi_satc c;
		dmar_acpi_satc_get(t, k, &c);
		ADD("segment", F_DEC, c.segment);
		ADD("flags", F_FLAGS, c.flags);
		fnames = satc_flags, flags = c.flags;
		break;
	}
	case DMAR_ACPI_SIDP: {
		struct dmar_acpi_sidp p;
		dmar_acpi_sidp_get(t, k, &p);
		ADD("segment", F_DEC, p.segment);
		break;
	}
	default:
		break;
	}
#undef ADD
	if (fnames) {
		flag_names(names, sizeof(names), flags, fnames, 1);
		if (names[0])
			f[n++] = (struct field){"flag_names", F_STR, 0, names};
	}
	return n;
}

/* Calls fn for every structure with its decoded fields. */
typedef void (*struct_fn)(const struct dmar_acpi_table *t, const struct dmar_acpi_struct *st,
			  const struct field *f, unsigned n, unsigned index);
static void for_each_struct(const struct dmar_acpi_table *t, struct_fn fn)
{
	struct dmar_acpi_struct st;
	unsigned per_type[DMAR_ACPI_NTYPES] = {0};
	for (unsigned i = 0; dmar_acpi_struct_get(t, i, &st) == 0; i++) {
		struct field f[MAX_FIELDS];
		unsigned k = st.type < DMAR_ACPI_NTYPES ? per_type[st.type]++ : 0;
		fn(t, &st, f, struct_fields(t, &st, k, f), i);
	}
}

/* ---- text output ---- */

/* Prints n bytes as a quoted C string: \\, \" and \xNN (always two digits) for bytes
 * that are not printable ASCII, so odd firmware bytes stay visible and the output stays
 * one line of ASCII. */
static void text_str(const unsigned char *s, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c > 0x7e)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* A header ID field from the table bytes, without its NUL padding (an inner NUL shows). */
static void text_header_id(const struct dmar_acpi_table *t, size_t off, size_t n)
{
	while (n > 0 && t->bytes[off + n - 1] == 0)
		n--;
	text_str(t->bytes + off, n);
}

static void text_struct(const struct dmar_acpi_table *t, const struct dmar_acpi_struct *st,
			const struct field *f, unsigned n, unsigned index)
{
	(void)index;
	printf("[0x%03x] %s", (unsigned)st->offset, dmar_acpi_type_name(st->type));
	if (st->type >= DMAR_ACPI_NTYPES)
		printf(" (type %u, length %u, skipped)", st->type, st->length);
	for (unsigned i = 0; i < n; i++) {
		if (f[i].kind == F_STR) {
			printf(" %s ", f[i].key);
			text_str((const unsigned char *)f[i].s, strlen(f[i].s));
		} else {
			printf(f[i].kind == F_DEC ? " %s %llu" : " %s 0x%llx", f[i].key,
			       (unsigned long long)f[i].v);
		}
	}
	printf("\n");
	struct dmar_acpi_scope_iter it;
	struct dmar_acpi_scope s;
	if (dmar_acpi_scope_begin(t, st->offset, &it))
		return;
	while (dmar_acpi_scope_next(&it, &s)) {
		printf("    [0x%03x] scope %-8s id %u bus 0x%02x path", (unsigned)s.offset,
		       dmar_acpi_scope_type_name(s.type), s.enum_id, s.start_bus);
		for (unsigned k = 0; k < s.npath; k++)
			printf("%s%02x.%x", k ? " > " : " ", s.path[k].dev, s.path[k].fn);
		if (s.flags)
			printf(" flags 0x%x", s.flags);
		printf("\n");
	}
}

static void print_table_text(const struct dmar_acpi_table *t)
{
	char fl[128];
	flag_names(fl, sizeof(fl), t->flags, table_flag_names, 3);
	printf("DMAR length %u revision %u checksum 0x%02x (%s)\n", (unsigned)t->length,
	       t->revision, t->checksum, t->checksum_ok ? "ok" : "BAD");
	printf("OEM ");
	text_header_id(t, 10, 6);
	printf(" table ");
	text_header_id(t, 16, 8);
	printf(" revision 0x%x, creator ", (unsigned)t->oem_revision);
	text_header_id(t, 28, 4);
	printf(" revision 0x%x\n", (unsigned)t->creator_revision);
	printf("host address width %u, flags 0x%x%s%s%s\n", t->haw, t->flags, fl[0] ? " (" : "",
	       fl, fl[0] ? ")" : "");
	for_each_struct(t, text_struct);
	printf("findings: %u\n", t->nfindings);
}

/* ---- JSON output ---- */

static void json_struct(const struct dmar_acpi_table *t, const struct dmar_acpi_struct *st,
			const struct field *f, unsigned n, unsigned index)
{
	printf("%s\n    {\"type\": \"%s\", \"type_id\": %u, \"offset\": %u, \"length\": %u",
	       index ? "," : "", dmar_acpi_type_name(st->type), st->type, (unsigned)st->offset,
	       st->length);
	for (unsigned i = 0; i < n; i++) {
		printf(", \"%s\": ", f[i].key);
		if (f[i].kind == F_STR)
			json_str(f[i].s);
		else
			printf(f[i].kind == F_ADDR ? "\"0x%llx\"" : "%llu", (unsigned long long)f[i].v);
	}
	struct dmar_acpi_scope_iter it;
	struct dmar_acpi_scope s;
	if (dmar_acpi_scope_begin(t, st->offset, &it) == 0) {
		printf(", \"scopes\": [");
		for (unsigned k = 0; dmar_acpi_scope_next(&it, &s); k++) {
			printf("%s\n      {\"type\": \"%s\", \"type_id\": %u, \"offset\": %u, "
			       "\"length\": %u, \"flags\": %u, \"enumeration_id\": %u, "
			       "\"start_bus\": %u, \"path\": [",
			       k ? "," : "", dmar_acpi_scope_type_name(s.type), s.type,
			       (unsigned)s.offset, s.length, s.flags, s.enum_id, s.start_bus);
			for (unsigned p = 0; p < s.npath; p++)
				printf("%s{\"device\": %u, \"function\": %u}", p ? ", " : "",
				       s.path[p].dev, s.path[p].fn);
			printf("]}");
		}
		printf("]");
	}
	printf("}");
}

static void print_table_json(const struct dmar_acpi_table *t)
{
	printf("{\n  \"signature\": \"DMAR\", \"length\": %u, \"revision\": %u, \"checksum\": %u, "
	       "\"checksum_ok\": %s,\n  \"oem_id\": ", (unsigned)t->length, t->revision,
	       t->checksum, t->checksum_ok ? "true" : "false");
	json_str(t->oem_id);
	printf(", \"oem_table_id\": ");
	json_str(t->oem_table_id);
	printf(", \"oem_revision\": %u, \"creator_id\": ", (unsigned)t->oem_revision);
	json_str(t->creator_id);
	printf(", \"creator_revision\": %u,\n  \"host_address_width\": %u, \"flags\": %u,\n"
	       "  \"structures\": [", (unsigned)t->creator_revision, t->haw, t->flags);
	for_each_struct(t, json_struct);
	printf("\n  ],\n  \"findings_total\": %u, \"findings\": [", t->nfindings);
	for (unsigned i = 0; i < t->nfindings && i < DMAR_ACPI_MAX_FINDINGS; i++) {
		const struct dmar_acpi_finding *f = &t->findings[i];
		printf("%s\n    {\"code\": %u, \"name\": \"%s\", \"offset\": %u, \"value\": \"0x%llx\", "
		       "\"text\": ", i ? "," : "", f->code, dmar_acpi_finding_name(f->code),
		       (unsigned)f->offset, (unsigned long long)f->value);
		json_str(dmar_acpi_finding_text(f->code));
		printf("}");
	}
	printf("\n  ]\n}\n");
}

static int cmd_table(int argc, char **argv)
{
	bool json = false;
	const char *path = DEFAULT_TABLE;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (argv[i][0] == '-')
			return usage();
		else
			path = argv[i];
	}
	struct dmar_acpi_table t;
	int rc = load(path, &t);
	if (rc)
		return rc;
	if (json)
		print_table_json(&t);
	else
		print_table_text(&t);
	return 0;
}

static int cmd_lint(int argc, char **argv)
{
	if (argc > 1)
		return usage();
	const char *path = argc ? argv[0] : DEFAULT_TABLE;
	struct dmar_acpi_table t;
	int rc = load(path, &t);
	if (rc)
		return rc;
	for (unsigned i = 0; i < t.nfindings && i < DMAR_ACPI_MAX_FINDINGS; i++) {
		char line[256];
		dmar_acpi_finding_format(&t.findings[i], line, sizeof(line));
		printf("%s: %s\n", path, line);
	}
	if (t.nfindings > DMAR_ACPI_MAX_FINDINGS)
		printf("%s: ... %u more findings\n", path, t.nfindings - DMAR_ACPI_MAX_FINDINGS);
	return t.nfindings ? 1 : 0;
}

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 16);
	if (errno || end == s || *end || s[0] == '-')
		return false;
	*v = x;
	return true;
}

static void print_caps(uint64_t cap, uint64_t ecap)
{
	static char text[16384];
	dmar_caps_format(cap, ecap, text, sizeof(text));
	fputs(text, stdout);
}

static bool read_hex_file(const char *path, uint64_t *v)
{
	char line[64];
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	bool ok = fgets(line, sizeof(line), f) != NULL;
	fclose(f);
	if (!ok)
		return false;
	line[strcspn(line, "\r\n")] = '\0';
	return parse_u64(line, v);
}

static int cmd_caps(int argc, char **argv)
{
	uint64_t cap, ecap;
	if (argc == 2) {
		if (!parse_u64(argv[0], &cap) || !parse_u64(argv[1], &ecap)) {
			fprintf(stderr, "dmarctl: caps: CAP and ECAP must be hexadecimal numbers\n");
			return 2;
		}
		print_caps(cap, ecap);
		return 0;
	}
	if (argc != 0)
		return usage();
	DIR *d = opendir(SYSFS_IOMMU);
	unsigned units = 0;
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		char base[512], p[600];
		if (e->d_name[0] == '.')
			continue;
		snprintf(base, sizeof(base), "%s/%s/intel-iommu", SYSFS_IOMMU, e->d_name);
		snprintf(p, sizeof(p), "%s/cap", base);
		if (!read_hex_file(p, &cap))
			continue;
		snprintf(p, sizeof(p), "%s/ecap", base);
		if (!read_hex_file(p, &ecap))
			continue;
		char ver[32] = "?";
		snprintf(p, sizeof(p), "%s/version", base);
		FILE *f = fopen(p, "r");
		if (f) {
			if (fgets(ver, sizeof(ver), f))
				ver[strcspn(ver, "\r\n")] = '\0';
			fclose(f);
		}
		printf("%s%s: version %s\n", units ? "\n" : "", e->d_name, ver);
		print_caps(cap, ecap);
		units++;
	}
	if (d)
		closedir(d);
	if (!units) {
		fprintf(stderr, "dmarctl: no VT-d unit under %s/*/intel-iommu/\n", SYSFS_IOMMU);
		return 2;
	}
	return 0;
}

static int cmd_fault_reason(int argc, char **argv)
{
	if (argc != 1)
		return usage();
	char *end;
	errno = 0;
	unsigned long code = strtoul(argv[0], &end, 0);
	if (errno || end == argv[0] || *end || argv[0][0] == '-' || code > 0xff) {
		fprintf(stderr, "dmarctl: fault-reason: %s is not a code 0..0xff\n", argv[0]);
		return 2;
	}
	enum dmar_fault_kind k = dmar_fault_reason_kind((unsigned)code);
	printf("0x%02lx (%s): %s\n", code, dmar_fault_kind_name(k),
	       dmar_fault_reason_text((unsigned)code));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	const char *cmd = argv[1];
	if (strcmp(cmd, "table") == 0)
		return cmd_table(argc - 2, argv + 2);
	if (strcmp(cmd, "lint") == 0)
		return cmd_lint(argc - 2, argv + 2);
	if (strcmp(cmd, "caps") == 0)
		return cmd_caps(argc - 2, argv + 2);
	if (strcmp(cmd, "fault-reason") == 0)
		return cmd_fault_reason(argc - 2, argv + 2);
	if (strcmp(cmd, "explain") == 0)
		return dmarctl_explain(argc - 2, argv + 2);
	return usage();
}
