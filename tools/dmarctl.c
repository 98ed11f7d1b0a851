/*
 * dmarctl - decode and lint an ACPI DMAR table, decode VT-d CAP/ECAP registers and fault
 * reason codes.
 *
 *   dmarctl table [--json] [FILE]   decoded table (default /sys/firmware/acpi/tables/DMAR)
 *   dmarctl lint [FILE]             findings, one per line: exit 0 clean, 1 findings, 2 errors
 *   dmarctl caps [CAP ECAP]         every CAP/ECAP field (default: each unit in sysfs)
 *   dmarctl fault-reason N          the specification's text for a fault reason code
 *
 * A file that is not a usable DMAR table gets one line on stderr and exit status 2.
 */
#include <dmar/acpi.h>
#include <dmar/caps.h>
#include <dmar/error.h>
#include <dmar/fault_reason.h>

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
			"fault-reason N\n");
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

static void text_flags(char *buf, size_t len, unsigned flags, const char *const *names, unsigned n)
{
	size_t pos = 0;
	buf[0] = '\0';
	for (unsigned i = 0; i < n; i++) {
		if ((flags & (1u << i)) && names[i])
			pos += (size_t)snprintf(buf + pos, len - pos, "%s%s", pos ? " " : "", names[i]);
		if (pos >= len)
			break;
	}
}

/* ---- text output ---- */

static void print_scopes_text(const struct dmar_acpi_table *t, uint32_t off)
{
	struct dmar_acpi_scope_iter it;
	struct dmar_acpi_scope s;
	if (dmar_acpi_scope_begin(t, off, &it))
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

static const char *const table_flag_names[] = {"INTR_REMAP", "X2APIC_OPT_OUT",
					       "DMA_CTRL_PLATFORM_OPT_IN"};

static void print_table_text(const struct dmar_acpi_table *t)
{
	char fl[128];
	text_flags(fl, sizeof(fl), t->flags, table_flag_names, 3);
	printf("DMAR length %u revision %u checksum 0x%02x (%s)\n", (unsigned)t->length,
	       t->revision, t->checksum, t->checksum_ok ? "ok" : "BAD");
	printf("OEM \"%s\" table \"%s\" revision 0x%x, creator \"%s\" revision 0x%x\n", t->oem_id,
	       t->oem_table_id, (unsigned)t->oem_revision, t->creator_id,
	       (unsigned)t->creator_revision);
	printf("host address width %u, flags 0x%x%s%s%s\n", t->haw, t->flags, fl[0] ? " (" : "",
	       fl, fl[0] ? ")" : "");
	struct dmar_acpi_struct st;
	unsigned idx[DMAR_ACPI_NTYPES] = {0};
	for (unsigned i = 0; dmar_acpi_struct_get(t, i, &st) == 0; i++) {
		printf("[0x%03x] %s", (unsigned)st.offset, dmar_acpi_type_name(st.type));
		unsigned k = st.type < DMAR_ACPI_NTYPES ? idx[st.type]++ : 0;
		switch (st.type) {
		case DMAR_ACPI_DRHD: {
			struct dmar_acpi_drhd d;
			dmar_acpi_drhd_get(t, k, &d);
			printf(" segment %u base 0x%llx size %u flags 0x%x%s\n", d.segment,
			       (unsigned long long)d.base, d.size, d.flags,
			       (d.flags & DMAR_DRHD_INCLUDE_PCI_ALL) ? " (INCLUDE_PCI_ALL)" : "");
			break;
		}
		case DMAR_ACPI_RMRR: {
			struct dmar_acpi_rmrr r;
			dmar_acpi_rmrr_get(t, k, &r);
			printf(" segment %u base 0x%llx limit 0x%llx\n", r.segment,
			       (unsigned long long)r.base, (unsigned long long)r.limit);
			break;
		}
		case DMAR_ACPI_ATSR: {
			struct dmar_acpi_atsr a;
			dmar_acpi_atsr_get(t, k, &a);
			printf(" segment %u flags 0x%x%s\n", a.segment, a.flags,
			       (a.flags & DMAR_ATSR_ALL_PORTS) ? " (ALL_PORTS)" : "");
			break;
		}
		case DMAR_ACPI_RHSA: {
			struct dmar_acpi_rhsa h;
			dmar_acpi_rhsa_get(t, k, &h);
			printf(" base 0x%llx proximity domain %u\n", (unsigned long long)h.base,
			       (unsigned)h.proximity_domain);
			break;
		}
		case DMAR_ACPI_ANDD: {
			struct dmar_acpi_andd a;
			dmar_acpi_andd_get(t, k, &a);
			printf(" device %u name \"%s\"\n", a.device, a.name);
			break;
		}
		case DMAR_ACPI_SATC: {
			struct dmar_acpi_satc s;
			dmar_acpi_satc_get(t, k, &s);
			printf(" segment %u flags 0x%x%s\n", s.segment, s.flags,
			       (s.flags & DMAR_SATC_ATC_REQUIRED) ? " (ATC_REQUIRED)" : "");
			break;
		}
		case DMAR_ACPI_SIDP: {
			struct dmar_acpi_sidp s;
			dmar_acpi_sidp_get(t, k, &s);
			printf(" segment %u\n", s.segment);
			break;
		}
		default:
			printf(" (type %u, length %u, skipped)\n", st.type, st.length);
			break;
		}
		print_scopes_text(t, st.offset);
	}
	printf("findings: %u\n", t->nfindings);
}

/* ---- JSON output ---- */

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void json_scopes(const struct dmar_acpi_table *t, uint32_t off)
{
	struct dmar_acpi_scope_iter it;
	struct dmar_acpi_scope s;
	if (dmar_acpi_scope_begin(t, off, &it))
		return;
	printf(", \"scopes\": [");
	for (unsigned n = 0; dmar_acpi_scope_next(&it, &s); n++) {
		printf("%s\n      {\"type\": \"%s\", \"type_id\": %u, \"offset\": %u, \"length\": %u, "
		       "\"flags\": %u, \"enumeration_id\": %u, \"start_bus\": %u, \"path\": [",
		       n ? "," : "", dmar_acpi_scope_type_name(s.type), s.type,
		       (unsigned)s.offset, s.length, s.flags, s.enum_id, s.start_bus);
		for (unsigned k = 0; k < s.npath; k++)
			printf("%s{\"device\": %u, \"function\": %u}", k ? ", " : "",
			       s.path[k].dev, s.path[k].fn);
		printf("]}");
	}
	printf("]");
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
	struct dmar_acpi_struct st;
	unsigned idx[DMAR_ACPI_NTYPES] = {0};
	for (unsigned i = 0; dmar_acpi_struct_get(t, i, &st) == 0; i++) {
		printf("%s\n    {\"type\": \"%s\", \"type_id\": %u, \"offset\": %u, \"length\": %u",
		       i ? "," : "", dmar_acpi_type_name(st.type), st.type, (unsigned)st.offset,
		       st.length);
		unsigned k = st.type < DMAR_ACPI_NTYPES ? idx[st.type]++ : 0;
		switch (st.type) {
		case DMAR_ACPI_DRHD: {
			struct dmar_acpi_drhd d;
			dmar_acpi_drhd_get(t, k, &d);
			printf(", \"flags\": %u, \"size\": %u, \"segment\": %u, \"address\": \"0x%llx\"",
			       d.flags, d.size, d.segment, (unsigned long long)d.base);
			break;
		}
		case DMAR_ACPI_RMRR: {
			struct dmar_acpi_rmrr r;
			dmar_acpi_rmrr_get(t, k, &r);
			printf(", \"segment\": %u, \"base\": \"0x%llx\", \"limit\": \"0x%llx\"",
			       r.segment, (unsigned long long)r.base, (unsigned long long)r.limit);
			break;
		}
		case DMAR_ACPI_ATSR: {
			struct dmar_acpi_atsr a;
			dmar_acpi_atsr_get(t, k, &a);
			printf(", \"flags\": %u, \"segment\": %u", a.flags, a.segment);
			break;
		}
		case DMAR_ACPI_RHSA: {
			struct dmar_acpi_rhsa h;
			dmar_acpi_rhsa_get(t, k, &h);
			printf(", \"address\": \"0x%llx\", \"proximity_domain\": %u",
			       (unsigned long long)h.base, (unsigned)h.proximity_domain);
			break;
		}
		case DMAR_ACPI_ANDD: {
			struct dmar_acpi_andd a;
			dmar_acpi_andd_get(t, k, &a);
			printf(", \"device\": %u, \"name\": ", a.device);
			json_str(a.name);
			break;
		}
		case DMAR_ACPI_SATC: {
			struct dmar_acpi_satc s;
			dmar_acpi_satc_get(t, k, &s);
			printf(", \"flags\": %u, \"segment\": %u", s.flags, s.segment);
			break;
		}
		case DMAR_ACPI_SIDP: {
			struct dmar_acpi_sidp s;
			dmar_acpi_sidp_get(t, k, &s);
			printf(", \"segment\": %u", s.segment);
			break;
		}
		default:
			break;
		}
		json_scopes(t, st.offset);
		printf("}");
	}
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
	return usage();
}
