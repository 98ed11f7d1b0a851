/*
 * dmarctl_explain.c - `dmarctl explain [--json] [--table FILE | --no-table] [LOG]`.
 *
 * Reads kernel log text (LOG, or standard input), finds the DMAR fault lines in it
 * (explain_parse.c knows the formats), groups identical faults (same device, request,
 * address or interrupt index, PASID and reason) with a count, and tells for each group
 * what happened: the device, the remapping unit and device scope that cover it (with a
 * DMAR table: --table FILE, else /sys/firmware/acpi/tables/DMAR when readable), read,
 * write or interrupt, the reason in the specification's words and what it usually means,
 * and where the address lies: in an RMRR of this or another device, within 1 MiB of
 * one, in the interrupt range.
 *
 * Exit status: 0 when the input was read (with or without fault lines), 2 on a usage or
 * I/O error (an unreadable LOG, an unreadable or broken --table FILE).
 */
#include "dmarctl_explain.h"
#include "json_out.h"
#include "explain_parse.h"

#include <dmar/acpi.h>
#include <dmar/error.h>
#include <dmar/fault_reason.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TABLE "/sys/firmware/acpi/tables/DMAR"
#define MAX_TABLE (1u << 20)
#define NEAR_BYTES (1ull << 20)          /* "near an RMRR": within 1 MiB of it */
#define INTR_BASE 0xfee00000ull          /* the interrupt address range (VT-d 3.15) */
#define INTR_LIMIT 0xfeefffffull
#define PAGE 0x1000ull
#define MAX_STATUS 4                     /* distinct fault status values kept per group */

/* ---- the table ---- */

struct table {
	bool present;
	const char *path;
	unsigned char *bytes;
	struct dmar_acpi_table t;
};

/* Loads `path`. `required`: the user named it, so any failure is an error (2); the
 * default path may be absent (0, no table) and only a broken one is reported. */
static int table_load(struct table *tb, const char *path, bool required)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		if (!required)
			return 0;
		fprintf(stderr, "dmarctl: explain: %s: %s\n", path, strerror(errno));
		return 2;
	}
	tb->bytes = malloc(MAX_TABLE);
	if (!tb->bytes) {
		fclose(f);
		fprintf(stderr, "dmarctl: explain: out of memory\n");
		return 2;
	}
	size_t n = fread(tb->bytes, 1, MAX_TABLE, f);
	int rerr = ferror(f);
	fclose(f);
	int rc = rerr ? DMAR_EINVAL : dmar_acpi_parse(tb->bytes, n, NULL, &tb->t);
	if (rc) {
		fprintf(stderr, "dmarctl: explain: %s: %s\n", path,
			rerr ? "read error"
			     : (n < 4 || memcmp(tb->bytes, "DMAR", 4) != 0) ? "not an ACPI DMAR table"
									    : dmar_strerror(rc));
		free(tb->bytes);
		tb->bytes = NULL;
		return required ? 2 : 0;
	}
	tb->present = true;
	tb->path = path;
	return 0;
}

/* ---- grouping ---- */

struct group {
	struct ex_fault f;
	unsigned long count;
	unsigned long first_line, last_line;
	unsigned nstatus;
	uint32_t status[MAX_STATUS];      /* fault status values reported just before it */
};

struct state {
	struct group *groups;
	size_t ngroups, cap;
	unsigned long fault_lines;
	unsigned long status_lines;
	unsigned long suppressed;
	bool have_status;
	uint32_t status;                  /* the last "handling fault status reg" value */
	bool pending;                     /* a two-line fault waiting for its reason */
	struct ex_fault head;
	unsigned long head_line;
};

static bool same_fault(const struct ex_fault *a, const struct ex_fault *b)
{
	return a->segment == b->segment && a->bus == b->bus && a->dev == b->dev &&
	       a->fn == b->fn && a->request == b->request && a->addr == b->addr &&
	       a->reason == b->reason && a->has_pasid == b->has_pasid &&
	       (!a->has_pasid || a->pasid == b->pasid) && a->unit == b->unit;
}

static int add_fault(struct state *st, const struct ex_fault *f, unsigned long line)
{
	st->fault_lines++;
	struct group *g = NULL;
	for (size_t i = 0; i < st->ngroups; i++)
		if (same_fault(&st->groups[i].f, f)) {
			g = &st->groups[i];
			break;
		}
	if (!g) {
		if (st->ngroups == st->cap) {
			size_t cap = st->cap ? 2 * st->cap : 16;
			struct group *n = realloc(st->groups, cap * sizeof(*n));
			if (!n)
				return -1;
			st->groups = n;
			st->cap = cap;
		}
		g = &st->groups[st->ngroups++];
		memset(g, 0, sizeof(*g));
		g->f = *f;
		g->first_line = line;
	}
	g->count++;
	g->last_line = line;
	if (st->have_status) {
		unsigned k = 0;
		while (k < g->nstatus && g->status[k] != st->status)
			k++;
		if (k == g->nstatus && k < MAX_STATUS)
			g->status[g->nstatus++] = st->status;
	}
	return 0;
}

static int flush_pending(struct state *st)
{
	if (!st->pending)
		return 0;
	st->pending = false;
	return add_fault(st, &st->head, st->head_line);
}

static int feed(struct state *st, const char *text, unsigned long line)
{
	struct ex_line l;
	explain_parse_line(text, &l);
	switch (l.kind) {
	case EX_FAULT:
		if (flush_pending(st))
			return -1;
		return add_fault(st, &l.fault, line);
	case EX_FAULT_HEAD:
		if (flush_pending(st))
			return -1;
		st->pending = true;
		st->head = l.fault;
		st->head_line = line;
		return 0;
	case EX_REASON:
		if (st->pending) {
			st->head.reason = l.reason;
			return flush_pending(st);
		}
		return 0;
	case EX_STATUS:
		st->status_lines++;
		st->have_status = true;
		st->status = (uint32_t)l.value;
		return 0;
	case EX_SUPPRESSED:
		st->suppressed += (unsigned long)l.value;
		return 0;
	case EX_OTHER:
		/* A status line belongs to the fault lines printed right after it. */
		st->have_status = false;
		break;
	}
	return 0;
}

/* ---- what the table says about a device and an address ---- */

struct unit_info {
	bool found;
	unsigned drhd;
	struct dmar_acpi_drhd d;
	char scope[160];                  /* how the unit covers the device */
	char scope_kind[24];              /* "endpoint", "bridge", "ioapic", "hpet",
					     "include-pci-all" */
	char note[200];                   /* why none was found */
};

static void path_text(const struct dmar_acpi_scope *s, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "%02x:", s->start_bus);
	for (unsigned k = 0; k < s->npath && n < len; k++)
		n += (size_t)snprintf(buf + n, len - n, "%s%02x.%x", k ? ">" : "", s->path[k].dev,
				      s->path[k].fn);
}

/* I/O APIC and HPET scopes name a source id directly (start bus and one path entry). */
static bool find_apic_scope(const struct dmar_acpi_table *t, const struct ex_fault *f,
			    struct unit_info *u)
{
	struct dmar_acpi_drhd d;
	for (unsigned i = 0; dmar_acpi_drhd_get(t, i, &d) == 0; i++) {
		struct dmar_acpi_scope_iter it;
		struct dmar_acpi_scope s;
		if (d.segment != f->segment || dmar_acpi_scope_begin(t, d.offset, &it))
			continue;
		while (dmar_acpi_scope_next(&it, &s)) {
			if ((s.type != DMAR_SCOPE_IOAPIC && s.type != DMAR_SCOPE_HPET) ||
			    s.npath != 1 || s.start_bus != f->bus || s.path[0].dev != f->dev ||
			    s.path[0].fn != f->fn)
				continue;
			u->found = true;
			u->drhd = i;
			u->d = d;
			bool ioapic = s.type == DMAR_SCOPE_IOAPIC;
			snprintf(u->scope_kind, sizeof(u->scope_kind), "%s", ioapic ? "ioapic" : "hpet");
			snprintf(u->scope, sizeof(u->scope), "its %s scope (%s id %u, %02x:%02x.%x)",
				 ioapic ? "I/O APIC" : "HPET", ioapic ? "I/O APIC" : "HPET",
				 s.enum_id, s.start_bus, s.path[0].dev, s.path[0].fn);
			return true;
		}
	}
	return false;
}

static void unit_lookup(const struct table *tb, const struct ex_fault *f, struct unit_info *u)
{
	memset(u, 0, sizeof(*u));
	if (!tb->present)
		return;
	const struct dmar_acpi_table *t = &tb->t;
	if (find_apic_scope(t, f, u))
		return;
	unsigned idx;
	if (dmar_acpi_device_unit(t, f->segment, f->bus, f->dev, f->fn, NULL, NULL, &idx) != 0) {
		unsigned bridges = 0;
		struct dmar_acpi_drhd d;
		for (unsigned i = 0; dmar_acpi_drhd_get(t, i, &d) == 0; i++) {
			struct dmar_acpi_scope_iter it;
			struct dmar_acpi_scope s;
			if (d.segment != f->segment || dmar_acpi_scope_begin(t, d.offset, &it))
				continue;
			while (dmar_acpi_scope_next(&it, &s))
				bridges += s.type == DMAR_SCOPE_BRIDGE || s.npath > 1;
		}
		snprintf(u->note, sizeof(u->note),
			 "no remapping unit of this table lists %02x:%02x.%x on segment %u%s",
			 f->bus, f->dev, f->fn, f->segment,
			 bridges ? " (it may sit below one of its bridge or multi-level scopes, "
				   "which a log line alone cannot resolve)"
				 : "; is the table from another machine?");
		return;
	}
	u->found = true;
	u->drhd = idx;
	dmar_acpi_drhd_get(t, idx, &u->d);
	struct dmar_acpi_scope_iter it;
	struct dmar_acpi_scope s;
	if (dmar_acpi_scope_begin(t, u->d.offset, &it) == 0) {
		while (dmar_acpi_scope_next(&it, &s)) {
			if (!dmar_acpi_scope_matches(&s, f->segment, f->bus, f->dev, f->fn,
						     u->d.segment, NULL, NULL))
				continue;
			char p[96];
			path_text(&s, p, sizeof(p));
			snprintf(u->scope_kind, sizeof(u->scope_kind), "%s",
				 dmar_acpi_scope_type_name(s.type));
			snprintf(u->scope, sizeof(u->scope), "its device scope: %s %s",
				 dmar_acpi_scope_type_name(s.type), p);
			return;
		}
	}
	snprintf(u->scope_kind, sizeof(u->scope_kind), "include-pci-all");
	snprintf(u->scope, sizeof(u->scope),
		 "INCLUDE_PCI_ALL: it takes every device of segment %u that no other unit lists",
		 u->d.segment);
}

enum addr_note_kind { AN_RMRR_INSIDE, AN_RMRR_BELOW, AN_RMRR_ABOVE, AN_INTR_RANGE, AN_ZERO };

struct addr_note {
	enum addr_note_kind kind;
	unsigned rmrr;
	struct dmar_acpi_rmrr r;
	bool own;                         /* the RMRR names the faulting device */
	uint64_t distance;                /* bytes between the page and the RMRR */
	char devices[160];                /* the devices the RMRR names */
};

#define MAX_NOTES 8

/* The devices an RMRR names, as "00:14.0 00:1a.0". */
static void rmrr_devices(const struct dmar_acpi_table *t, const struct dmar_acpi_rmrr *r,
			 char *buf, size_t len)
{
	struct dmar_acpi_scope_iter it;
	struct dmar_acpi_scope s;
	size_t n = 0;
	buf[0] = '\0';
	if (dmar_acpi_scope_begin(t, r->offset, &it))
		return;
	while (dmar_acpi_scope_next(&it, &s) && n < len) {
		char p[96];
		path_text(&s, p, sizeof(p));
		n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? " " : "", p);
	}
}

static unsigned addr_notes(const struct table *tb, const struct ex_fault *f,
			   struct addr_note *out)
{
	unsigned n = 0;
	if (f->request == EX_REQ_INTR)
		return 0;
	uint64_t a = f->addr;
	if (a == 0)
		out[n++] = (struct addr_note){.kind = AN_ZERO};
	if (a >= INTR_BASE && a <= INTR_LIMIT)
		out[n++] = (struct addr_note){.kind = AN_INTR_RANGE};
	if (!tb->present)
		return n;
	const struct dmar_acpi_table *t = &tb->t;
	struct dmar_acpi_rmrr r;
	for (unsigned i = 0; dmar_acpi_rmrr_get(t, i, &r) == 0 && n < MAX_NOTES; i++) {
		if (r.segment != f->segment || r.limit < r.base)
			continue;
		struct addr_note an = {.rmrr = i, .r = r};
		uint64_t page_end = a > UINT64_MAX - (PAGE - 1) ? UINT64_MAX : a + (PAGE - 1);
		if (a <= r.limit && page_end >= r.base) {
			an.kind = AN_RMRR_INSIDE;
		} else if (page_end < r.base && r.base - page_end - 1 < NEAR_BYTES) {
			an.kind = AN_RMRR_BELOW;
			an.distance = r.base - a;
		} else if (a > r.limit && a - r.limit - 1 < NEAR_BYTES) {
			an.kind = AN_RMRR_ABOVE;
			an.distance = a - r.limit - 1;
		} else {
			continue;
		}
		struct dmar_acpi_scope_iter it;
		struct dmar_acpi_scope s;
		if (dmar_acpi_scope_begin(t, r.offset, &it) == 0)
			while (dmar_acpi_scope_next(&it, &s))
				an.own |= dmar_acpi_scope_matches(&s, f->segment, f->bus, f->dev,
								  f->fn, r.segment, NULL, NULL);
		rmrr_devices(t, &r, an.devices, sizeof(an.devices));
		out[n++] = an;
	}
	return n;
}

/* ---- words ---- */

/* What a reason usually means in practice, for the common ones. */
static const char *reason_meaning(int code)
{
	switch (code) {
	case 0x01:
		return "the unit has no root entry for the device's bus: translation is on but "
		       "nothing was set up there, so the device did DMA before the OS attached "
		       "it (early boot, resume, firmware still driving it) or the OS never "
		       "meant to translate it";
	case 0x02:
	case 0x39:
	case 0x41:
		return "the device is not attached to any domain (its context entry is empty): "
		       "DMA before the OS attached it or after it detached it (driver unbound, "
		       "boot, resume, kexec), or a requester id the OS does not know, such as "
		       "a DMA alias of a device behind a PCIe-to-PCI bridge";
	case 0x03:
	case 0x0a:
	case 0x0b:
	case 0x42:
	case 0x43:
		return "the remapping structures themselves are malformed: a bug in the IOMMU "
		       "driver or hypervisor that wrote them (or tables inherited across "
		       "kexec/kdump), not in the device";
	case 0x04:
	case 0x83:
		return "the device used an address wider than its domain translates: a garbage "
		       "or truncated DMA address, or a DMA mask wider than the IOMMU's address "
		       "width";
	case 0x05:
	case 0x85:
		return "the device wrote to an address the driver never mapped for writing: a "
		       "stale buffer used after unmap, a buffer mapped for the other direction "
		       "only, a garbage descriptor, or firmware-owned memory the firmware still "
		       "DMAs to (then an RMRR is missing)";
	case 0x06:
	case 0x86:
		return "the device read from an address the driver never mapped: a stale "
		       "buffer used after unmap, a buffer mapped for the other direction only, a "
		       "garbage descriptor, or firmware-owned memory (graphics stolen memory, "
		       "USB legacy buffers) missing from the RMRRs";
	case 0x07:
	case 0x70:
	case 0x78:
		return "a page-table pointer of the device's domain leads to memory the unit "
		       "cannot read: a freed or corrupted page table (an IOMMU driver bug)";
	case 0x0c:
	case 0x72:
	case 0x7a:
		return "a page-table entry has reserved bits set: a corrupted page table or a "
		       "page size the unit does not support (an IOMMU driver bug)";
	case 0x0d:
	case 0x44:
		return "the device sent an ATS translation request (or an already translated "
		       "one) but its context entry does not allow device-TLB use: ATS is on in "
		       "the device but not set up in the IOMMU";
	case 0x21:
		return "the interrupt index the device sent is beyond the interrupt-remapping "
		       "table: a stale or garbage MSI address/data in the device";
	case 0x22:
		return "the interrupt-remapping entry the device named is not in use: the device "
		       "raised an interrupt after its vector was freed or before it was set up "
		       "(a driver setup/teardown race, or a device left programmed by firmware "
		       "or an earlier kernel)";
	case 0x25:
		return "an old-style (compatibility format) interrupt was blocked because "
		       "interrupt remapping is on: something programmed the source without the "
		       "remapping table (firmware, an I/O APIC or HPET entry, a guest, or a "
		       "driver writing MSI registers itself)";
	case 0x26:
		return "the interrupt arrived with another requester id than its remapping "
		       "entry expects: typical of devices behind bridges or with DMA aliases "
		       "(the interrupt carries the bridge's id) and of devices using another "
		       "function's id";
	case 0x51:
	case 0x59:
		return "the PASID the request used (or the RID_PASID of a request without one) "
		       "has no PASID entry: the device used a PASID nobody bound, or did DMA "
		       "before attach or after detach (e.g. in a kdump kernel)";
	case 0x71:
		return "the first-stage page table has no mapping for this address: like 0x06/"
		       "0x05 in legacy mode, an address the driver never mapped or a stale one";
	case 0x79:
		return "the second-stage table lacks the permission: like 0x05/0x06 in legacy "
		       "mode";
	case 0x87:
		return "the DMA address lies in the interrupt address range, which DMA may not "
		       "reach";
	default:
		return NULL;
	}
}

static const char *request_name(enum ex_request r)
{
	return r == EX_REQ_READ ? "read" : r == EX_REQ_WRITE ? "write" : "interrupt";
}

static const char *request_words(enum ex_request r)
{
	switch (r) {
	case EX_REQ_READ:
		return "DMA read: the device tried to read memory";
	case EX_REQ_WRITE:
		return "DMA write: the device tried to write memory";
	case EX_REQ_INTR:
		return "interrupt request: the device (or an I/O APIC or HPET) sent an "
		       "interrupt message, which the unit looked up in its interrupt-remapping "
		       "table";
	}
	return "?";
}

/* Fault status register bits (VT-d 10.4.9). */
static size_t status_words(uint32_t v, char *buf, size_t len)
{
	static const char *const bits[] = {
		"PFO (primary fault overflow: later faults were lost)",
		"PPF (primary fault pending)",
		"AFO (advanced fault overflow)",
		"APF (advanced fault pending)",
		"IQE (invalidation queue error)",
		"ICE (invalidation completion error)",
		"ITE (invalidation time-out error)",
		"PRO (page request overflow)",
	};
	size_t n = (size_t)snprintf(buf, len, "0x%x:", (unsigned)v);
	unsigned k = 0;
	for (unsigned i = 0; i < 8 && n < len; i++)
		if (v & (1u << i))
			n += (size_t)snprintf(buf + n, len - n, "%s %s", k++ ? "," : "", bits[i]);
	if ((v & 2) && n < len)
		n += (size_t)snprintf(buf + n, len - n, "; the first pending fault is in fault "
				      "recording register %u", (unsigned)(v >> 8) & 0xff);
	return n;
}

static void bdf_text(const struct ex_fault *f, char *buf, size_t len)
{
	snprintf(buf, len, "%04x:%02x:%02x.%x", f->segment, f->bus, f->dev, f->fn);
}

static void size_text(uint64_t bytes, char *buf, size_t len)
{
	if (bytes >= 1024 && bytes % 1024 == 0)
		snprintf(buf, len, "%llu KiB", (unsigned long long)(bytes / 1024));
	else
		snprintf(buf, len, "%llu bytes", (unsigned long long)bytes);
}

static void note_text(const struct addr_note *an, const struct ex_fault *f, char *buf,
		      size_t len)
{
	char sz[32];
	switch (an->kind) {
	case AN_ZERO:
		snprintf(buf, len, "address 0: the device used a null DMA address (a descriptor "
				   "or register never programmed, or cleared by a reset)");
		return;
	case AN_INTR_RANGE:
		snprintf(buf, len,
			 "0x%llx is in the interrupt address range 0xfee00000-0xfeefffff: %s",
			 (unsigned long long)f->addr,
			 f->request == EX_REQ_WRITE
				 ? "a write there is a message-signalled interrupt the unit did "
				   "not take as one (an MSI sent as plain DMA, e.g. a device "
				   "whose MSI address was programmed for another mode), or a "
				   "DMA pointer gone astray"
				 : "no device has a reason to read there; a DMA pointer gone "
				   "astray");
		return;
	case AN_RMRR_INSIDE:
		snprintf(buf, len,
			 "inside RMRR %u (0x%llx-0x%llx, for %s), %s",
			 an->rmrr, (unsigned long long)an->r.base, (unsigned long long)an->r.limit,
			 an->devices[0] ? an->devices : "no device",
			 an->own ? "which the firmware reserves for this very device: the OS "
				   "should map it one-to-one in the device's domain, so the "
				   "mapping is missing (translation was on before the OS mapped "
				   "it, the device was moved to a domain without it, e.g. "
				   "assigned to a VM, or the OS ignores this RMRR)"
				 : "which the firmware reserves for other devices, not this one: "
				   "if this device really uses that memory, the RMRR's device "
				   "scope lacks it (a firmware bug); otherwise it used another "
				   "device's buffer");
		return;
	case AN_RMRR_BELOW:
	case AN_RMRR_ABOVE:
		if (an->distance)
			size_text(an->distance, sz, sizeof(sz));
		else
			snprintf(sz, sizeof(sz), "right");
		snprintf(buf, len,
			 "near RMRR %u (0x%llx-0x%llx, for %s%s): %s %s its %s; firmware often "
			 "DMAs to memory just outside what its RMRRs report, so if this is "
			 "firmware-owned memory the RMRR is too small (a firmware bug)",
			 an->rmrr, (unsigned long long)an->r.base, (unsigned long long)an->r.limit,
			 an->devices[0] ? an->devices : "no device",
			 an->own ? ", this device" : ", not this device", sz,
			 an->kind == AN_RMRR_BELOW ? "below" : "past",
			 an->kind == AN_RMRR_BELOW ? "start" : "end");
		return;
	}
}

static const char *note_kind_name(enum addr_note_kind k)
{
	switch (k) {
	case AN_RMRR_INSIDE:
		return "rmrr-inside";
	case AN_RMRR_BELOW:
		return "rmrr-below";
	case AN_RMRR_ABOVE:
		return "rmrr-above";
	case AN_INTR_RANGE:
		return "interrupt-range";
	case AN_ZERO:
		return "zero";
	}
	return "?";
}

static const char *reason_text(int code)
{
	return code < 0 ? "not in the log" : dmar_fault_reason_text((unsigned)code);
}

static const char *reason_kind(int code)
{
	return code < 0 ? "unknown" : dmar_fault_kind_name(dmar_fault_reason_kind((unsigned)code));
}

/* ---- text output ---- */

static void print_group_text(const struct table *tb, const struct group *g, size_t k)
{
	const struct ex_fault *f = &g->f;
	char bdf[32], buf[1024];
	bdf_text(f, bdf, sizeof(bdf));
	printf("fault %zu: %s ", k + 1, bdf);
	if (f->request == EX_REQ_INTR)
		printf("interrupt request, index 0x%llx", (unsigned long long)f->addr);
	else
		printf("DMA %s at 0x%llx", request_name(f->request), (unsigned long long)f->addr);
	if (f->reason >= 0)
		printf(", reason 0x%02x", f->reason);
	if (g->count == 1)
		printf(" -- once (line %lu)\n", g->first_line);
	else
		printf(" -- %lu times (lines %lu-%lu)\n", g->count, g->first_line, g->last_line);

	printf("  device   %02x:%02x.%x (bus 0x%02x, device 0x%02x, function %u; source id "
	       "0x%04x) on PCI segment %u%s\n",
	       f->bus, f->dev, f->fn, f->bus, f->dev, f->fn,
	       (unsigned)(f->bus << 8 | f->dev << 3 | f->fn), f->segment,
	       f->has_segment ? "" : " (assumed: the line does not name the segment)");
	if (f->unit >= 0)
		printf("  logged   by this library's unit dmar%d\n", f->unit);
	if (f->has_pasid)
		printf("  pasid    0x%x (the request carried a PASID: a process address space "
		       "or a scalable-mode domain)\n", (unsigned)f->pasid);

	struct unit_info u;
	unit_lookup(tb, f, &u);
	if (!tb->present)
		printf("  unit     unknown: no DMAR table (give --table FILE, or run where %s is "
		       "readable)\n", DEFAULT_TABLE);
	else if (u.found)
		printf("  unit     DRHD %u (registers at 0x%llx, segment %u) covers it through %s\n",
		       u.drhd, (unsigned long long)u.d.base, u.d.segment, u.scope);
	else
		printf("  unit     none: %s\n", u.note);

	printf("  request  %s\n", request_words(f->request));
	printf("  reason   ");
	if (f->reason >= 0)
		printf("0x%02x (%s): %s\n", f->reason, reason_kind(f->reason), reason_text(f->reason));
	else
		printf("not in the log (the line with it is missing)\n");
	const char *m = reason_meaning(f->reason);
	if (m)
		printf("  meaning  %s\n", m);

	struct addr_note notes[MAX_NOTES];
	unsigned nn = addr_notes(tb, f, notes);
	for (unsigned i = 0; i < nn; i++) {
		note_text(&notes[i], f, buf, sizeof(buf));
		printf("  address  %s\n", buf);
	}
	if (f->request != EX_REQ_INTR && tb->present && !nn)
		printf("  address  0x%llx is in no RMRR of this table, nor within 1 MiB of one\n",
		       (unsigned long long)f->addr);
	for (unsigned i = 0; i < g->nstatus; i++) {
		status_words(g->status[i], buf, sizeof(buf));
		printf("  status   fault status register %s\n", buf);
	}
}

static void print_text(const struct table *tb, const struct state *st, unsigned long lines)
{
	if (tb->present)
		printf("DMAR table: %s (%u remapping units, %u RMRRs)\n\n", tb->path,
		       tb->t.count[DMAR_ACPI_DRHD], tb->t.count[DMAR_ACPI_RMRR]);
	for (size_t i = 0; i < st->ngroups; i++) {
		print_group_text(tb, &st->groups[i], i);
		printf("\n");
	}
	if (!st->fault_lines)
		printf("no DMAR fault lines in %lu lines of input", lines);
	else
		printf("%lu fault%s in %zu group%s", st->fault_lines,
		       st->fault_lines == 1 ? "" : "s", st->ngroups, st->ngroups == 1 ? "" : "s");
	if (st->status_lines)
		printf("; %lu fault-status line%s", st->status_lines,
		       st->status_lines == 1 ? "" : "s");
	if (st->suppressed)
		printf("; the kernel suppressed %lu more fault message%s (rate limit), so the "
		       "counts are lower bounds", st->suppressed, st->suppressed == 1 ? "" : "s");
	printf("\n");
}

/* ---- JSON output ---- */

static void json_key_str(const char *key, const char *val)
{
	printf(", \"%s\": ", key);
	json_str(val);
}

static void print_group_json(const struct table *tb, const struct group *g, size_t k)
{
	const struct ex_fault *f = &g->f;
	char bdf[32], buf[1024];
	bdf_text(f, bdf, sizeof(bdf));
	printf("%s\n  {\"device\": \"%02x:%02x.%x\"", k ? "," : "", f->bus, f->dev, f->fn);
	json_key_str("sbdf", bdf);
	printf(", \"segment\": %u, \"segment_known\": %s, \"bus\": %u, \"dev\": %u, \"fn\": %u, "
	       "\"source_id\": %u",
	       f->segment, f->has_segment ? "true" : "false", f->bus, f->dev, f->fn,
	       (unsigned)(f->bus << 8 | f->dev << 3 | f->fn));
	printf(", \"request\": \"%s\"", request_name(f->request));
	if (f->request == EX_REQ_INTR)
		printf(", \"address\": null, \"interrupt_index\": %llu", (unsigned long long)f->addr);
	else
		printf(", \"address\": \"0x%llx\", \"interrupt_index\": null",
		       (unsigned long long)f->addr);
	if (f->has_pasid)
		printf(", \"pasid\": %u", (unsigned)f->pasid);
	else
		printf(", \"pasid\": null");
	if (f->reason >= 0)
		printf(", \"reason\": %d", f->reason);
	else
		printf(", \"reason\": null");
	json_key_str("reason_kind", reason_kind(f->reason));
	json_key_str("reason_text", reason_text(f->reason));
	const char *m = reason_meaning(f->reason);
	printf(", \"meaning\": ");
	if (m)
		json_str(m);
	else
		printf("null");
	printf(", \"count\": %lu, \"first_line\": %lu, \"last_line\": %lu", g->count,
	       g->first_line, g->last_line);
	json_key_str("format", explain_format_name(f->format));
	if (f->unit >= 0)
		printf(", \"logged_by_unit\": %d", f->unit);
	printf(", \"fault_status\": [");
	for (unsigned i = 0; i < g->nstatus; i++)
		printf("%s%u", i ? ", " : "", (unsigned)g->status[i]);
	printf("]");

	struct unit_info u;
	unit_lookup(tb, f, &u);
	printf(",\n   \"unit\": ");
	if (u.found) {
		printf("{\"drhd\": %u, \"base\": \"0x%llx\", \"segment\": %u, \"scope_kind\": \"%s\"",
		       u.drhd, (unsigned long long)u.d.base, u.d.segment, u.scope_kind);
		json_key_str("scope", u.scope);
		printf("}");
	} else {
		printf("null");
	}
	printf(",\n   \"address_notes\": [");
	struct addr_note notes[MAX_NOTES];
	unsigned nn = addr_notes(tb, f, notes);
	for (unsigned i = 0; i < nn; i++) {
		const struct addr_note *an = &notes[i];
		printf("%s{\"kind\": \"%s\"", i ? ", " : "", note_kind_name(an->kind));
		if (an->kind == AN_RMRR_INSIDE || an->kind == AN_RMRR_BELOW ||
		    an->kind == AN_RMRR_ABOVE) {
			printf(", \"rmrr\": %u, \"base\": \"0x%llx\", \"limit\": \"0x%llx\", "
			       "\"own\": %s, \"distance\": %llu",
			       an->rmrr, (unsigned long long)an->r.base,
			       (unsigned long long)an->r.limit, an->own ? "true" : "false",
			       (unsigned long long)an->distance);
			printf(", \"devices\": [");
			const char *d = an->devices;
			for (unsigned j = 0; *d; j++) {
				size_t w = strcspn(d, " ");
				printf("%s\"%.*s\"", j ? ", " : "", (int)w, d);
				d += w;
				d += *d == ' ';
			}
			printf("]");
		}
		note_text(an, f, buf, sizeof(buf));
		json_key_str("text", buf);
		printf("}");
	}
	printf("]}");
}

static void print_json(const struct table *tb, const struct state *st)
{
	printf("[");
	for (size_t i = 0; i < st->ngroups; i++)
		print_group_json(tb, &st->groups[i], i);
	printf("%s]\n", st->ngroups ? "\n" : "");
}

/* ---- the command ---- */

static int usage(void)
{
	fprintf(stderr, "usage: dmarctl explain [--json] [--table FILE | --no-table] [LOG]\n");
	return 2;
}

int dmarctl_explain(int argc, char **argv)
{
	bool json = false, no_table = false;
	const char *table_path = NULL, *log_path = NULL;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = true;
		} else if (strcmp(argv[i], "--no-table") == 0) {
			no_table = true;
		} else if (strcmp(argv[i], "--table") == 0) {
			if (i + 1 >= argc)
				return usage();
			table_path = argv[++i];
		} else if (strncmp(argv[i], "--table=", 8) == 0) {
			table_path = argv[i] + 8;
		} else if (strcmp(argv[i], "-") == 0 && !log_path) {
			log_path = "-";
		} else if (argv[i][0] == '-' || log_path) {
			return usage();
		} else {
			log_path = argv[i];
		}
	}
	if (no_table && table_path)
		return usage();

	struct table tb = {0};
	if (table_path) {
		if (table_load(&tb, table_path, true))
			return 2;
	} else if (!no_table && table_load(&tb, DEFAULT_TABLE, false)) {
		return 2;
	}

	FILE *in = stdin;
	if (log_path && strcmp(log_path, "-") != 0) {
		in = fopen(log_path, "r");
		if (!in) {
			fprintf(stderr, "dmarctl: explain: %s: %s\n", log_path, strerror(errno));
			free(tb.bytes);
			return 2;
		}
	}
	struct state st = {0};
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned long lines = 0;
	int rc = 0;
	while ((n = getline(&line, &cap, in)) >= 0) {
		lines++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (feed(&st, line, lines)) {
			rc = 2;
			break;
		}
	}
	if (!rc && ferror(in)) {
		fprintf(stderr, "dmarctl: explain: %s: read error\n", log_path ? log_path : "stdin");
		rc = 2;
	}
	if (!rc && flush_pending(&st))
		rc = 2;
	if (rc == 2 && !ferror(in))
		fprintf(stderr, "dmarctl: explain: out of memory\n");
	free(line);
	if (in != stdin)
		fclose(in);
	if (!rc) {
		if (json)
			print_json(&tb, &st);
		else
			print_text(&tb, &st, lines);
	}
	free(st.groups);
	free(tb.bytes);
	return rc;
}
