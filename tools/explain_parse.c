/*
 * explain_parse.c - the line formats `dmarctl explain` knows (see explain_parse.h).
 *
 * What the kernels printed (facts from their sources' history):
 *   Linux < 4.x   "DMAR:[DMA Read] Request device [00:02.0] fault addr 9c000000 "
 *                 "DMAR:[fault reason 06] PTE Read access is not set"      (two lines)
 *                 "INTR-REMAP: Request device [[f0:1f.0] fault index 1e"
 *                 "INTR-REMAP:[fault reason 34] ..."                         (two lines)
 *   Linux 4.x     "DMAR: [DMA Read] Request device [00:02.0] fault addr 9c000000
 *                 [fault reason 06] ..."; 5.x adds "PASID ffffffff" after the device
 *   Linux 5.14+   "DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr
 *                 0x9c000000 [fault reason 0x06] ..." ("PASID 0x2" instead of
 *                 NO_PASID; 5.14 alone wrote the device as [0x00:0x02.0])
 *   Linux, all    "[INTR-REMAP] Request device [..] fault index <hex> [fault reason ..]"
 *   Xen           "DMAR:[DMA Write] Request device [0000:01:00.0] fault addr 8c000, ..."
 *                 "DMAR: reason 05 - PTE Write access is not set"   (reason in hex)
 *   this library  "dmar0: DMA write fault #1 from 0000:00:02.0 (sid 0x0010) at 0x14d000:
 *                 reason 0x05 (...)"
 * Linux printed reasons with %02d before 5.14: "[fault reason 12]" is 0x0c, "37" 0x25.
 * Fault addresses and interrupt indexes were always hexadecimal.
 */
#include "explain_parse.h"

#include <string.h>

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool eat(const char **p, const char *lit)
{
	size_t n = strlen(lit);
	if (strncmp(*p, lit, n) != 0)
		return false;
	*p += n;
	return true;
}

static const char *skip_spaces(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* A hexadecimal number with or without "0x"; at most 16 digits. */
static bool parse_hex(const char **p, uint64_t *v)
{
	const char *s = *p;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && hexval(s[2]) >= 0)
		s += 2;
	uint64_t x = 0;
	unsigned n = 0;
	for (; hexval(*s) >= 0; s++, n++) {
		if (n == 16)
			return false;
		x = x << 4 | (uint64_t)hexval(*s);
	}
	if (!n)
		return false;
	*v = x;
	*p = s;
	return true;
}

static bool parse_dec(const char **p, uint64_t *v)
{
	const char *s = *p;
	uint64_t x = 0;
	unsigned n = 0;
	for (; *s >= '0' && *s <= '9'; s++, n++) {
		if (n == 19)
			return false;
		x = x * 10 + (uint64_t)(*s - '0');
	}
	if (!n)
		return false;
	*v = x;
	*p = s;
	return true;
}

/* A fault reason: "0x06" and "06h" are hexadecimal, so are digits with a-f in them
 * or any number when `hex` says the format is hexadecimal; other digits are decimal. */
static bool parse_reason(const char **p, bool hex, int *reason)
{
	const char *s = *p;
	uint64_t v;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		if (!parse_hex(&s, &v))
			return false;
	} else {
		const char *e = s;
		bool letters = false;
		while (hexval(*e) >= 0) {
			if (hexval(*e) > 9)
				letters = true;
			e++;
		}
		if (e == s)
			return false;
		bool h_suffix = *e == 'h';
		if (hex || letters || h_suffix) {
			if (!parse_hex(&s, &v) || s != e)
				return false;
		} else if (!parse_dec(&s, &v)) {
			return false;
		}
		if (h_suffix)
			s++;
	}
	if (v > 0xff)
		return false;
	*reason = (int)v;
	*p = s;
	return true;
}

/* "bb:dd.f" or "ssss:bb:dd.f", each number in hex with or without "0x". */
static bool parse_bdf(const char **p, struct ex_fault *f)
{
	uint64_t n[4];
	const char *s = *p;
	unsigned k = 0;
	if (!parse_hex(&s, &n[k++]) || *s++ != ':' || !parse_hex(&s, &n[k++]))
		return false;
	if (*s == ':') {
		s++;
		if (!parse_hex(&s, &n[k++]))
			return false;
	}
	if (*s++ != '.' || !parse_hex(&s, &n[k++]))
		return false;
	unsigned b = k - 3;
	if (k == 4 && n[0] > 0xffff)
		return false;
	if (n[b] > 0xff || n[b + 1] > 0x1f || n[b + 2] > 7)
		return false;
	f->has_segment = k == 4;
	f->segment = k == 4 ? (uint16_t)n[0] : 0;
	f->bus = (uint8_t)n[b];
	f->dev = (uint8_t)n[b + 1];
	f->fn = (uint8_t)n[b + 2];
	*p = s;
	return true;
}

/* A number in a log line ends at a blank, a comma or the end ("ffxxxxxx" is not 0xff). */
static bool ends_number(char c)
{
	return c == '\0' || c == ' ' || c == '\t' || c == ',';
}

/* Is `lit` in line[0 .. end)? */
static bool has_before(const char *line, const char *end, const char *lit)
{
	size_t n = strlen(lit);
	for (const char *s = line; s + n <= end; s++)
		if (memcmp(s, lit, n) == 0)
			return true;
	return false;
}

/* This library's line: "dmarN: DMA read|write fault #S from SSSS:BB:DD.F (sid 0x...)
 * at 0xADDR: reason 0xRR (...)". */
static bool parse_own(const char *line, struct ex_line *out)
{
	for (const char *q = strstr(line, "dmar"); q; q = strstr(q + 1, "dmar")) {
		const char *p = q + 4;
		struct ex_fault f = {.format = EX_FMT_DMAR, .reason = -1, .unit = -1};
		uint64_t unit, seq;
		if (!parse_dec(&p, &unit) || unit > 0xffff || !eat(&p, ": DMA "))
			continue;
		if (eat(&p, "read"))
			f.request = EX_REQ_READ;
		else if (eat(&p, "write"))
			f.request = EX_REQ_WRITE;
		else
			continue;
		if (!eat(&p, " fault #") || !parse_dec(&p, &seq) || !eat(&p, " from ") ||
		    !parse_bdf(&p, &f))
			continue;
		p = skip_spaces(p);
		if (eat(&p, "(sid ")) {
			const char *e = strchr(p, ')');
			if (!e)
				continue;
			p = skip_spaces(e + 1);
		}
		if (!eat(&p, "at ") || !parse_hex(&p, &f.addr) || !eat(&p, ": reason ") ||
		    !parse_reason(&p, true, &f.reason))
			continue;
		f.unit = (int)unit;
		out->kind = EX_FAULT;
		out->fault = f;
		return true;
	}
	return false;
}

/* Linux and Xen lines built around "Request device [". */
static bool parse_request(const char *line, struct ex_line *out)
{
	const char *q = strstr(line, "Request device [");
	if (!q)
		return false;
	struct ex_fault f = {.format = EX_FMT_LINUX, .reason = -1, .unit = -1};
	if (has_before(line, q, "INTR-REMAP"))
		f.request = EX_REQ_INTR;
	else if (has_before(line, q, "DMA Read"))
		f.request = EX_REQ_READ;
	else if (has_before(line, q, "DMA Write"))
		f.request = EX_REQ_WRITE;
	else
		return false;
	/* 5.14+: "[DMA Read PASID 0x2]" before the device. */
	const char *pp = strstr(line, " PASID ");
	if (pp && pp < q) {
		pp += 7;
		uint64_t v;
		if (!parse_hex(&pp, &v) || v > 0xffffffffu)
			return false;
		f.has_pasid = true;
		f.pasid = (uint32_t)v;
	}
	const char *p = q + strlen("Request device [");
	eat(&p, "[");   /* old INTR-REMAP lines: "[[00:1f.0]" */
	if (!parse_bdf(&p, &f) || !eat(&p, "]"))
		return false;
	p = skip_spaces(p);
	if (eat(&p, "PASID ")) {  /* 5.x: "PASID ffffffff" after the device */
		uint64_t v;
		if (!parse_hex(&p, &v) || v > 0xffffffffu)
			return false;
		/* ffffffff is the kernel's "no PASID". */
		f.has_pasid = v != 0xffffffffu;
		f.pasid = (uint32_t)v;
		p = skip_spaces(p);
	}
	if (!eat(&p, f.request == EX_REQ_INTR ? "fault index " : "fault addr ") ||
	    !parse_hex(&p, &f.addr) || !ends_number(*p))
		return false;
	const char *r = strstr(p, "[fault reason ");
	if (r) {
		r += strlen("[fault reason ");
		if (!parse_reason(&r, false, &f.reason))
			return false;
		out->kind = EX_FAULT;
	} else {
		/* Xen names the segment and the register mapping; old Linux does neither. */
		bool xen = f.has_segment || strstr(p, "iommu reg") || strstr(line, "(XEN)") ||
			   strstr(line, "[VT-D]");
		f.format = xen ? EX_FMT_XEN : EX_FMT_LINUX_OLD;
		out->kind = EX_FAULT_HEAD;
	}
	out->fault = f;
	return true;
}

/* The second line of a two-line fault. */
static bool parse_reason_line(const char *line, struct ex_line *out)
{
	const char *p = strstr(line, "[fault reason ");
	if (p) {
		p += strlen("[fault reason ");
		if (!parse_reason(&p, false, &out->reason) || *p != ']')
			return false;
		out->kind = EX_REASON;
		return true;
	}
	static const char *const xen[] = {"DMAR: reason ", "INTR-REMAP: reason ",
					  "UNKNOWN: reason "};
	for (unsigned i = 0; i < sizeof(xen) / sizeof(xen[0]); i++) {
		p = strstr(line, xen[i]);
		if (!p)
			continue;
		p += strlen(xen[i]);
		if (!parse_reason(&p, true, &out->reason) || !eat(&p, " -"))
			return false;
		out->kind = EX_REASON;
		return true;
	}
	return false;
}

void explain_parse_line(const char *line, struct ex_line *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = EX_OTHER;
	out->reason = -1;
	const char *p = strstr(line, "DRHD: handling fault status reg ");
	if (p) {
		p += strlen("DRHD: handling fault status reg ");
		if (parse_hex(&p, &out->value) && out->value <= 0xffffffffu)
			out->kind = EX_STATUS;
		return;
	}
	p = strstr(line, "dmar_fault: ");
	if (p) {
		p += strlen("dmar_fault: ");
		if (parse_dec(&p, &out->value) && eat(&p, " callbacks suppressed"))
			out->kind = EX_SUPPRESSED;
		return;
	}
	if (parse_own(line, out))
		return;
	/* A damaged fault line is skipped whole: its "[fault reason" must not complete
	 * some earlier two-line fault. */
	bool ok = strstr(line, "Request device [") ? parse_request(line, out)
						   : parse_reason_line(line, out);
	if (!ok) {
		memset(out, 0, sizeof(*out));
		out->kind = EX_OTHER;
		out->reason = -1;
	}
}

const char *explain_format_name(enum ex_format f)
{
	switch (f) {
	case EX_FMT_LINUX:
		return "linux";
	case EX_FMT_LINUX_OLD:
		return "linux-old";
	case EX_FMT_XEN:
		return "xen";
	case EX_FMT_DMAR:
		return "dmar";
	}
	return "unknown";
}
