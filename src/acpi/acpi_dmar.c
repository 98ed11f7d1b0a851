/*
 * acpi_dmar.c - ACPI DMAR table parser and validator (VT-d specification, chapter 8).
 *
 * One pass checks the structure and scope framing (errors) and the firmware rules
 * (findings); a second set of cross-structure checks (RMRR and DRHD overlaps, RHSA
 * targets, INCLUDE_PCI_ALL placement, duplicate and uncovered device scopes) runs over
 * the already framed bytes, within a bound on its pairwise work. Getters re-walk the
 * validated bytes, so they need no bounds checks of their own beyond the table length.
 */
#include <dmar/acpi.h>
#include <dmar/error.h>

#include "lib/util.h"

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const uint8_t *p) { return rd32(p) | ((uint64_t)rd32(p + 4) << 32); }

/* Fixed part of each structure type; scopes (if any) follow it. */
static const uint16_t fixed_len[DMAR_ACPI_NTYPES] = {
	[DMAR_ACPI_DRHD] = 16, [DMAR_ACPI_RMRR] = 24, [DMAR_ACPI_ATSR] = 8,
	[DMAR_ACPI_RHSA] = 20, [DMAR_ACPI_ANDD] = 8,  [DMAR_ACPI_SATC] = 8,
	[DMAR_ACPI_SIDP] = 8,
};
static bool has_scopes(unsigned type)
{
	return type == DMAR_ACPI_DRHD || type == DMAR_ACPI_RMRR || type == DMAR_ACPI_ATSR ||
	       type == DMAR_ACPI_SATC || type == DMAR_ACPI_SIDP;
}

#define SCOPE_HDR_LEN 6u
#define STRUCT_HDR_LEN 4u

struct parse_ctx {
	struct dmar_acpi_table *t;
	const uint8_t *b;
	uint8_t ioapic_seen[32], ioapic_reported[32];
	uint8_t hpet_seen[32], hpet_reported[32];
};

static void finding(struct dmar_acpi_table *t, unsigned code, uint32_t off, uint64_t value)
{
	if (t->nfindings < DMAR_ACPI_MAX_FINDINGS) {
		struct dmar_acpi_finding *f = &t->findings[t->nfindings];
		f->code = (uint16_t)code;
		f->offset = off;
		f->value = value;
	}
	t->nfindings++;
}

static void check_reserved(struct parse_ctx *c, uint32_t off, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (c->b[off + i] != 0) {
			finding(c->t, DMAR_FIND_RESERVED_NONZERO, off + i, c->b[off + i]);
			return;
		}
	}
}

/* Records an id in a 256-bit set; reports the first repeat of each id once. */
static void check_dup_id(struct parse_ctx *c, uint8_t *seen, uint8_t *reported, uint8_t id,
			 unsigned code, uint32_t off)
{
	uint8_t bit = (uint8_t)(1u << (id & 7));
	if (!(seen[id >> 3] & bit)) {
		seen[id >> 3] |= bit;
		return;
	}
	if (!(reported[id >> 3] & bit)) {
		reported[id >> 3] |= bit;
		finding(c->t, code, off, id);
	}
}

static int parse_scopes(struct parse_ctx *c, unsigned type, uint32_t s, uint32_t end,
			bool pci_all)
{
	uint32_t off = s + fixed_len[type];
	while (off < end) {
		if (end - off < 2)
			return DMAR_ETRUNC;
		uint8_t stype = c->b[off], slen = c->b[off + 1];
		if (slen < SCOPE_HDR_LEN || ((slen - SCOPE_HDR_LEN) & 1u))
			return DMAR_EBADTABLE;
		if (slen > end - off)
			return DMAR_ETRUNC;
		if (slen == SCOPE_HDR_LEN)
			finding(c->t, DMAR_FIND_SCOPE_NO_PATH, off, stype);
		if (type != DMAR_ACPI_SIDP && c->b[off + 2] != 0)
			finding(c->t, DMAR_FIND_RESERVED_NONZERO, off + 2, c->b[off + 2]);
		check_reserved(c, off + 3, 1);
		uint8_t id = c->b[off + 4];
		switch (stype) {
		case DMAR_SCOPE_ENDPOINT:
		case DMAR_SCOPE_BRIDGE:
			if (pci_all)
				finding(c->t, DMAR_FIND_PCI_ALL_PCI_SCOPE, off, stype);
			break;
		case DMAR_SCOPE_IOAPIC:
			if (type == DMAR_ACPI_DRHD)
				check_dup_id(c, c->ioapic_seen, c->ioapic_reported, id,
					     DMAR_FIND_DUP_IOAPIC, off);
			break;
		case DMAR_SCOPE_HPET:
			if (type == DMAR_ACPI_DRHD)
				check_dup_id(c, c->hpet_seen, c->hpet_reported, id,
					     DMAR_FIND_DUP_HPET, off);
			break;
		case DMAR_SCOPE_ACPI:
			break;
		default:
			finding(c->t, DMAR_FIND_UNKNOWN_SCOPE, off, stype);
			break;
		}
		off += slen;
	}
	return 0;
}

/* Highest physical address the host address width (HAW field + 1 bits) allows. */
static uint64_t haw_max(const uint8_t *b)
{
	unsigned bits = b[36] + 1u;
	return bits >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << bits) - 1;
}

/* A DRHD's register set: 2^size 4 KiB pages (8.3) from its base, taken page-aligned (low
 * bits in the base are a finding of their own, not a wider register set). */
static uint64_t drhd_base(const uint8_t *drhd) { return rd64(drhd + 8) & ~(uint64_t)0xfff; }
static uint64_t drhd_span(const uint8_t *drhd) { return (uint64_t)0x1000 << (drhd[5] & 0xfu); }

static void check_drhd(struct parse_ctx *c, uint32_t s)
{
	uint64_t base = rd64(c->b + s + 8), max = haw_max(c->b);
	if (base == 0)
		finding(c->t, DMAR_FIND_DRHD_BASE_ZERO, s + 8, base);
	else if (base & 0xfffu)
		finding(c->t, DMAR_FIND_DRHD_BASE_UNALIGNED, s + 8, base);
	uint64_t page = drhd_base(c->b + s);
	if (page > max || drhd_span(c->b + s) - 1 > max - page)
		finding(c->t, DMAR_FIND_DRHD_BEYOND_HAW, s + 8, base);
	if (c->b[s + 5] & 0xf0u)
		finding(c->t, DMAR_FIND_RESERVED_NONZERO, s + 5, c->b[s + 5]);
}

static void check_rmrr(struct parse_ctx *c, uint32_t s)
{
	uint64_t base = rd64(c->b + s + 8), limit = rd64(c->b + s + 16);
	check_reserved(c, s + 4, 2);
	if (base == 0 && limit == 0)
		finding(c->t, DMAR_FIND_RMRR_ZERO_LENGTH, s, 0);
	else if (limit < base)
		finding(c->t, DMAR_FIND_RMRR_END_BEFORE_BASE, s + 16, limit);
	if ((base & 0xfffu) != 0)
		finding(c->t, DMAR_FIND_RMRR_UNALIGNED, s + 8, base);
	else if (((limit + 1) & 0xfffu) != 0)
		finding(c->t, DMAR_FIND_RMRR_UNALIGNED, s + 16, limit);
	if (limit > haw_max(c->b))
		finding(c->t, DMAR_FIND_RMRR_BEYOND_HAW, s + 16, limit);
	else if (base > haw_max(c->b))
		finding(c->t, DMAR_FIND_RMRR_BEYOND_HAW, s + 8, base);
}

/* Per-type checks of the fixed part (its length is already checked). */
static void check_fixed(struct parse_ctx *c, unsigned type, uint32_t s, uint16_t len)
{
	switch (type) {
	case DMAR_ACPI_DRHD:
		check_drhd(c, s);
		break;
	case DMAR_ACPI_RMRR:
		check_rmrr(c, s);
		break;
	case DMAR_ACPI_ATSR:
	case DMAR_ACPI_SATC:
		check_reserved(c, s + 5, 1);
		break;
	case DMAR_ACPI_RHSA:
		check_reserved(c, s + 4, 4);
		if (len > fixed_len[type])
			finding(c->t, DMAR_FIND_STRUCT_TRAILING, s, len);
		break;
	case DMAR_ACPI_ANDD:
		check_reserved(c, s + 4, 3);
		break;
	case DMAR_ACPI_SIDP:
		check_reserved(c, s + 4, 2);
		break;
	default:
		break;
	}
}

static int parse_structs(struct parse_ctx *c)
{
	struct dmar_acpi_table *t = c->t;
	uint32_t off = DMAR_ACPI_HEADER_LEN;
	while (off < t->length) {
		if (t->length - off < STRUCT_HDR_LEN)
			return DMAR_ETRUNC;
		uint16_t type = rd16(c->b + off), len = rd16(c->b + off + 2);
		uint16_t min = type < DMAR_ACPI_NTYPES ? fixed_len[type] : STRUCT_HDR_LEN;
		if (len < min)
			return DMAR_EBADTABLE;
		if (len > t->length - off)
			return DMAR_ETRUNC;
		t->nstructs++;
		if (type >= DMAR_ACPI_NTYPES) {
			finding(t, DMAR_FIND_UNKNOWN_TYPE, off, type);
		} else {
			t->count[type]++;
			check_fixed(c, type, off, len);
			if (has_scopes(type)) {
				bool pci_all = type == DMAR_ACPI_DRHD &&
					       (c->b[off + 4] & DMAR_DRHD_INCLUDE_PCI_ALL);
				int rc = parse_scopes(c, type, off, off + len, pci_all);
				if (rc)
					return rc;
			}
		}
		off += len;
	}
	return 0;
}

/* ---- cross-structure rules, on framed bytes ---- */

struct cross {
	struct dmar_acpi_table *t;
	const uint8_t *b;
	uint32_t steps;    /* left of the bound */
	bool limited;      /* the bound was reached: later pairs go unchecked */
};

/* One step of a pairwise walk; false from the moment the bound is reached. */
static bool step(struct cross *x)
{
	if (x->steps == 0) {
		x->limited = true;
		return false;
	}
	x->steps--;
	return true;
}

static uint32_t struct_next(const uint8_t *b, uint32_t s) { return s + rd16(b + s + 2); }

static unsigned scope_npath(const uint8_t *sc) { return (sc[1] - SCOPE_HDR_LEN) / 2u; }

/* An endpoint or bridge scope with a path: one that names a PCI device. */
static bool is_pci_scope(const uint8_t *sc)
{
	return (sc[0] == DMAR_SCOPE_ENDPOINT || sc[0] == DMAR_SCOPE_BRIDGE) &&
	       sc[1] > SCOPE_HDR_LEN;
}

/* Do two scopes name the same device as written: PCI scopes (endpoint or bridge) with one
 * start bus and path, or ACPI namespace scopes with one ACPI device number? */
static bool same_device(const uint8_t *p, const uint8_t *q)
{
	if (is_pci_scope(p) && is_pci_scope(q))
		return p[1] == q[1] && p[5] == q[5] &&
		       dmar_memcmp(p + SCOPE_HDR_LEN, q + SCOPE_HDR_LEN, p[1] - SCOPE_HDR_LEN) == 0;
	return p[0] == DMAR_SCOPE_ACPI && q[0] == DMAR_SCOPE_ACPI && p[4] == q[4];
}

/* Could PCI scope q of a DRHD lead to the device of PCI scope o: name it, or a bridge above
 * it? Without the topology only what the paths prove rules it out; buses below a bridge
 * are numbered above the bridge's own bus. */
static bool scope_may_cover(const uint8_t *q, const uint8_t *o)
{
	unsigned nq = scope_npath(q), no = scope_npath(o);
	bool bridge = q[0] == DMAR_SCOPE_BRIDGE;
	if (q[5] == o[5]) {
		unsigned k = 0;
		while (k < nq && k < no && q[6 + 2 * k] == o[6 + 2 * k] &&
		       q[7 + 2 * k] == o[7 + 2 * k])
			k++;
		/* All of q's path: the same device, or one below the bridge q. Else the
		 * paths part, or o lies above q. */
		return k == nq && (k == no || bridge);
	}
	if (!bridge && (q[4 + 2 * nq] != o[4 + 2 * no] || q[5 + 2 * nq] != o[5 + 2 * no]))
		return false;         /* an endpoint q names one device: its last entry */
	if (q[5] > o[5])
		return no > 1;        /* a one-entry o sits on a bus below all of q's */
	return bridge || nq > 1;      /* a one-entry endpoint q sits on a bus below o's */
}

/* RMRR s against the later ones: overlaps within its segment and across segments. */
static void cross_rmrr(struct cross *x, uint32_t s)
{
	const uint8_t *b = x->b;
	uint16_t seg = rd16(b + s + 6);
	uint64_t base = rd64(b + s + 8), limit = rd64(b + s + 16);
	if (limit < base)
		return;
	for (uint32_t o = struct_next(b, s); o < x->t->length && step(x); o = struct_next(b, o)) {
		if (rd16(b + o) != DMAR_ACPI_RMRR)
			continue;
		uint64_t b2 = rd64(b + o + 8), l2 = rd64(b + o + 16);
		if (l2 >= b2 && b2 <= limit && base <= l2)
			finding(x->t, rd16(b + o + 6) == seg ? DMAR_FIND_RMRR_OVERLAP
							     : DMAR_FIND_RMRR_OVERLAP_SEGMENT, o, s);
	}
}

static void cross_rhsa(struct cross *x, uint32_t s)
{
	const uint8_t *b = x->b;
	uint64_t base = rd64(b + s + 8);
	bool found = false;
	for (uint32_t o = DMAR_ACPI_HEADER_LEN; o < x->t->length && !found && step(x);
	     o = struct_next(b, o))
		found = rd16(b + o) == DMAR_ACPI_DRHD && rd64(b + o + 8) == base;
	if (!found && !x->limited)
		finding(x->t, DMAR_FIND_RHSA_NO_DRHD, s + 8, base);
}

/* DRHD s against the later ones: overlapping register sets (any segment; a base of 0 is
 * reported on its own), INCLUDE_PCI_ALL placement (its segment). */
static void cross_drhd(struct cross *x, uint32_t s)
{
	const uint8_t *b = x->b;
	uint16_t seg = rd16(b + s + 6);
	uint64_t base = drhd_base(b + s), span = drhd_span(b + s);
	bool pci_all = b[s + 4] & DMAR_DRHD_INCLUDE_PCI_ALL, later = false;
	for (uint32_t o = struct_next(b, s); o < x->t->length && step(x); o = struct_next(b, o)) {
		if (rd16(b + o) != DMAR_ACPI_DRHD)
			continue;
		uint64_t b2 = drhd_base(b + o);
		if (base && b2 && (b2 >= base ? b2 - base < span : base - b2 < drhd_span(b + o)))
			finding(x->t, DMAR_FIND_DRHD_OVERLAP, o, s);
		if (!pci_all || rd16(b + o + 6) != seg)
			continue;
		if (b[o + 4] & DMAR_DRHD_INCLUDE_PCI_ALL)
			finding(x->t, DMAR_FIND_PCI_ALL_MULTIPLE, o, seg);
		else
			later = true;
	}
	if (later)
		finding(x->t, DMAR_FIND_PCI_ALL_NOT_LAST, s, seg);
}

/* Is the device of scope o (in DRHD s) named by an earlier DRHD of the segment too? */
static void cross_drhd_device(struct cross *x, uint32_t s, uint16_t seg, uint32_t o)
{
	const uint8_t *b = x->b;
	for (uint32_t d = DMAR_ACPI_HEADER_LEN; d < s && step(x); d = struct_next(b, d)) {
		if (rd16(b + d) != DMAR_ACPI_DRHD || rd16(b + d + 6) != seg)
			continue;
		uint32_t end = struct_next(b, d);
		uint32_t q = d + fixed_len[DMAR_ACPI_DRHD];
		for (; q < end && step(x); q += b[q + 1]) {
			if (same_device(b + q, b + o)) {
				finding(x->t, DMAR_FIND_DUP_DRHD_DEVICE, o, q);
				return;
			}
		}
	}
}

/* Does a DRHD scope of the segment possibly lead to the device of PCI scope o? */
static bool drhd_may_cover(struct cross *x, uint16_t seg, uint32_t o)
{
	const uint8_t *b = x->b;
	uint32_t d = DMAR_ACPI_HEADER_LEN;
	for (; d < x->t->length && step(x); d = struct_next(b, d)) {
		if (rd16(b + d) != DMAR_ACPI_DRHD || rd16(b + d + 6) != seg)
			continue;
		uint32_t end = struct_next(b, d);
		for (uint32_t q = d + fixed_len[DMAR_ACPI_DRHD]; q < end && step(x); q += b[q + 1])
			if (is_pci_scope(b + q) && scope_may_cover(b + q, b + o))
				return true;
	}
	return false;
}

/* Does the segment have DRHDs (*any), and an INCLUDE_PCI_ALL one (*all)? */
static void segment_units(struct cross *x, uint16_t seg, bool *any, bool *all)
{
	const uint8_t *b = x->b;
	*any = *all = false;
	for (uint32_t d = DMAR_ACPI_HEADER_LEN; d < x->t->length && !*all && step(x);
	     d = struct_next(b, d)) {
		if (rd16(b + d) != DMAR_ACPI_DRHD || rd16(b + d + 6) != seg)
			continue;
		*any = true;
		*all = b[d + 4] & DMAR_DRHD_INCLUDE_PCI_ALL;
	}
}

/* The scopes of structure s: a device named twice in its list; for a DRHD, a device an
 * earlier DRHD of the segment names; for the others, devices no DRHD covers. IOAPIC and
 * HPET repeats have their own findings (check_dup_id). */
static void cross_scopes(struct cross *x, uint32_t s, uint16_t type)
{
	const uint8_t *b = x->b;
	uint16_t seg = rd16(b + s + 6);
	uint32_t first = s + fixed_len[type], end = struct_next(b, s);
	bool any = true, all = true;
	if (type != DMAR_ACPI_DRHD) {
		segment_units(x, seg, &any, &all);
		if (x->limited)
			return;
		if (!any)
			finding(x->t, DMAR_FIND_SEGMENT_NO_DRHD, s, seg);
	}
	for (uint32_t o = first; o < end && step(x); o += b[o + 1]) {
		bool pci = is_pci_scope(b + o);
		if (!pci && b[o] != DMAR_SCOPE_ACPI)
			continue;
		for (uint32_t p = first; p < o && step(x); p += b[p + 1]) {
			if (same_device(b + p, b + o)) {
				finding(x->t, DMAR_FIND_DUP_SCOPE, o, p);
				break;
			}
		}
		if (type == DMAR_ACPI_DRHD)
			cross_drhd_device(x, s, seg, o);
		else if (pci && any && !all && !drhd_may_cover(x, seg, o) && !x->limited)
			finding(x->t, DMAR_FIND_SCOPE_NO_DRHD, o, seg);
	}
}

static void check_cross(struct dmar_acpi_table *t, uint32_t work)
{
	struct cross x = {.t = t, .b = t->bytes, .steps = work};
	uint32_t s;
	for (s = DMAR_ACPI_HEADER_LEN; s < t->length; s = struct_next(x.b, s)) {
		uint16_t type = rd16(x.b + s);
		if (type == DMAR_ACPI_RMRR)
			cross_rmrr(&x, s);
		else if (type == DMAR_ACPI_RHSA)
			cross_rhsa(&x, s);
		else if (type == DMAR_ACPI_DRHD)
			cross_drhd(&x, s);
		if (type < DMAR_ACPI_NTYPES && has_scopes(type))
			cross_scopes(&x, s, type);
		if (x.limited)
			break;
	}
	if (x.limited)
		finding(t, DMAR_FIND_CROSS_LIMITED, s, work);
}

static void copy_text(char *dst, const uint8_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = (char)src[i];
	dst[n] = '\0';
}

/* OEM ID, OEM table ID and creator ID are ASCII text; NUL padding at the end is common and
 * harmless. Reports the first other byte of each field that is not printable ASCII. */
static void check_header_id(struct parse_ctx *c, uint32_t off, uint32_t n)
{
	while (n > 0 && c->b[off + n - 1] == 0)
		n--;
	for (uint32_t i = 0; i < n; i++) {
		uint8_t ch = c->b[off + i];
		if (ch < 0x20 || ch > 0x7e) {
			finding(c->t, DMAR_FIND_HEADER_ID_NOT_ASCII, off + i, ch);
			return;
		}
	}
}

static int parse_header(struct parse_ctx *c, size_t len, const struct dmar_acpi_options *opt)
{
	struct dmar_acpi_table *t = c->t;
	const uint8_t *b = c->b;
	if (len < 4)
		return DMAR_ETRUNC;
	if (b[0] != 'D' || b[1] != 'M' || b[2] != 'A' || b[3] != 'R')
		return DMAR_EBADTABLE;
	if (len < 8)
		return DMAR_ETRUNC;
	uint32_t tlen = rd32(b + 4);
	if (tlen < DMAR_ACPI_HEADER_LEN)
		return len < DMAR_ACPI_HEADER_LEN ? DMAR_ETRUNC : DMAR_EBADTABLE;
	if (tlen > len)
		return DMAR_ETRUNC;
	t->length = tlen;
	t->revision = b[8];
	t->checksum = b[9];
	copy_text(t->oem_id, b + 10, 6);
	copy_text(t->oem_table_id, b + 16, 8);
	t->oem_revision = rd32(b + 24);
	copy_text(t->creator_id, b + 28, 4);
	t->creator_revision = rd32(b + 32);
	t->haw = (uint16_t)(b[36] + 1u);
	t->flags = b[37];
	uint8_t sum = 0;
	for (uint32_t i = 0; i < tlen; i++)
		sum = (uint8_t)(sum + b[i]);
	t->checksum_ok = sum == 0;
	if (!t->checksum_ok) {
		if (opt && opt->checksum_fatal)
			return DMAR_ECHECKSUM;
		finding(t, DMAR_FIND_CHECKSUM, 9, sum);
	}
	if ((t->flags & DMAR_ACPI_X2APIC_OPT_OUT) && !(t->flags & DMAR_ACPI_INTR_REMAP))
		finding(t, DMAR_FIND_X2APIC_OPT_OUT_NO_IR, 37, t->flags);
	if (t->flags & 0xf8u)
		finding(t, DMAR_FIND_RESERVED_NONZERO, 37, t->flags);
	check_reserved(c, 38, 10);
	check_header_id(c, 10, 6);
	check_header_id(c, 16, 8);
	check_header_id(c, 28, 4);
	return 0;
}

int dmar_acpi_parse(const void *buf, size_t len, const struct dmar_acpi_options *opt,
		    struct dmar_acpi_table *out)
{
	if (!out)
		return DMAR_EINVAL;
	dmar_memset(out, 0, sizeof(*out));
	if (!buf)
		return DMAR_EINVAL;
	struct parse_ctx c;
	dmar_memset(&c, 0, sizeof(c));
	c.t = out;
	c.b = buf;
	out->bytes = buf;
	int rc = parse_header(&c, len, opt);
	if (rc == 0)
		rc = parse_structs(&c);
	if (rc) {
		dmar_memset(out, 0, sizeof(*out));
		return rc;
	}
	check_cross(out, opt && opt->cross_work ? opt->cross_work : DMAR_ACPI_CROSS_WORK);
	return 0;
}

/* ---- getters over validated bytes ---- */

int dmar_acpi_struct_get(const struct dmar_acpi_table *t, unsigned i, struct dmar_acpi_struct *out)
{
	if (!t || !out || !t->bytes || i >= t->nstructs)
		return DMAR_ENOENT;
	uint32_t off = DMAR_ACPI_HEADER_LEN;
	for (unsigned k = 0; k < i; k++)
		off += rd16(t->bytes + off + 2);
	out->type = rd16(t->bytes + off);
	out->length = rd16(t->bytes + off + 2);
	out->offset = off;
	return 0;
}

unsigned dmar_acpi_count(const struct dmar_acpi_table *t, unsigned type)
{
	return t && type < DMAR_ACPI_NTYPES ? t->count[type] : 0;
}

/* Offset of the i-th structure of `type`, or 0 when there is none. */
static uint32_t nth_of_type(const struct dmar_acpi_table *t, unsigned type, unsigned i)
{
	if (!t || !t->bytes || type >= DMAR_ACPI_NTYPES || i >= t->count[type])
		return 0;
	for (uint32_t off = DMAR_ACPI_HEADER_LEN; off < t->length; off += rd16(t->bytes + off + 2)) {
		if (rd16(t->bytes + off) == type && i-- == 0)
			return off;
	}
	return 0;
}

#define GET_PROLOGUE(type)                                   \
	uint32_t s = out ? nth_of_type(t, type, i) : 0;      \
	if (s == 0)                                          \
		return DMAR_ENOENT;                          \
	const uint8_t *b = t->bytes + s;                     \
	dmar_memset(out, 0, sizeof(*out));                   \
	out->offset = s

int dmar_acpi_drhd_get(const struct dmar_acpi_table *t, unsigned i, struct dmar_acpi_drhd *out)
{
	GET_PROLOGUE(DMAR_ACPI_DRHD);
	out->flags = b[4];
	out->size = b[5] & 0xfu;
	out->segment = rd16(b + 6);
	out->base = rd64(b + 8);
	return 0;
}

int dmar_acpi_rmrr_get(const struct dmar_acpi_table *t, unsigned i, struct dmar_acpi_rmrr *out)
{
	GET_PROLOGUE(DMAR_ACPI_RMRR);
	out->segment = rd16(b + 6);
	out->base = rd64(b + 8);
	out->limit = rd64(b + 16);
	return 0;
}

int dmar_acpi_atsr_get(const struct dmar_acpi_table *t, unsigned i, struct dmar_acpi_atsr *out)
{
	GET_PROLOGUE(DMAR_ACPI_ATSR);
	out->flags = b[4];
	out->segment = rd16(b + 6);
	return 0;
}

int dmar_acpi_rhsa_get(const struct dmar_acpi_table *t, unsigned i, struct dmar_acpi_rhsa *out)
{
	GET_PROLOGUE(DMAR_ACPI_RHSA);
	out->base = rd64(b + 8);
	out->proximity_domain = rd32(b + 16);
	return 0;
}

int dmar_acpi_andd_get(const struct dmar_acpi_table *t, unsigned i, struct dmar_acpi_andd *out)
{
	GET_PROLOGUE(DMAR_ACPI_ANDD);
	uint16_t len = rd16(b + 2);
	out->device = b[7];
	size_t n = 0;
	while (8u + n < len && n + 1 < DMAR_ACPI_ANDD_NAME_MAX && b[8 + n] != 0)
		n++;
	copy_text(out->name, b + 8, n);
	return 0;
}

int dmar_acpi_satc_get(const struct dmar_acpi_table *t, unsigned i, struct dmar_acpi_satc *out)
{
	GET_PROLOGUE(DMAR_ACPI_SATC);
	out->flags = b[4];
	out->segment = rd16(b + 6);
	return 0;
}

int dmar_acpi_sidp_get(const struct dmar_acpi_table *t, unsigned i, struct dmar_acpi_sidp *out)
{
	GET_PROLOGUE(DMAR_ACPI_SIDP);
	out->segment = rd16(b + 6);
	return 0;
}

int dmar_acpi_scope_begin(const struct dmar_acpi_table *t, uint32_t struct_offset,
			  struct dmar_acpi_scope_iter *it)
{
	if (!t || !it || !t->bytes)
		return DMAR_EINVAL;
	/* Accept only offsets where a structure really starts. */
	uint32_t off = DMAR_ACPI_HEADER_LEN;
	while (off < t->length && off < struct_offset)
		off += rd16(t->bytes + off + 2);
	if (off != struct_offset || off >= t->length)
		return DMAR_EINVAL;
	uint16_t type = rd16(t->bytes + off);
	if (type >= DMAR_ACPI_NTYPES || !has_scopes(type))
		return DMAR_EINVAL;
	it->t = t;
	it->next = off + fixed_len[type];
	it->end = off + rd16(t->bytes + off + 2);
	return 0;
}

bool dmar_acpi_scope_next(struct dmar_acpi_scope_iter *it, struct dmar_acpi_scope *out)
{
	if (!it || !out || !it->t || it->next >= it->end)
		return false;
	const uint8_t *b = it->t->bytes + it->next;
	out->offset = it->next;
	out->type = b[0];
	out->length = b[1];
	out->flags = b[2];
	out->enum_id = b[4];
	out->start_bus = b[5];
	out->npath = (uint8_t)((b[1] - SCOPE_HDR_LEN) / 2u);
	if (out->npath > DMAR_ACPI_MAX_PATH) /* cannot happen (length <= 255); tells gcc -O3 */
		out->npath = DMAR_ACPI_MAX_PATH;
	for (unsigned k = 0; k < out->npath; k++) {
		out->path[k].dev = b[SCOPE_HDR_LEN + 2 * k];
		out->path[k].fn = b[SCOPE_HDR_LEN + 2 * k + 1];
	}
	it->next += b[1];
	return true;
}

/* ---- device lookup ---- */

bool dmar_acpi_scope_matches(const struct dmar_acpi_scope *s, uint16_t seg, uint8_t bus,
			     uint8_t dev, uint8_t fn, uint16_t scope_seg,
			     dmar_acpi_secondary_bus_fn cb, void *cb_ctx)
{
	if (!s || scope_seg != seg || s->npath == 0 ||
	    (s->type != DMAR_SCOPE_ENDPOINT && s->type != DMAR_SCOPE_BRIDGE))
		return false;
	uint8_t b = s->start_bus;
	for (unsigned k = 0; k + 1 < s->npath; k++) {
		if (!cb)
			return false;
		uint8_t sub = 0;
		int sec = cb(cb_ctx, seg, b, s->path[k].dev, s->path[k].fn, &sub);
		if (sec < 0 || sec > 255)
			return false;
		b = (uint8_t)sec;
	}
	uint8_t ldev = s->path[s->npath - 1].dev, lfn = s->path[s->npath - 1].fn;
	if (b == bus && ldev == dev && lfn == fn)
		return true;
	if (s->type != DMAR_SCOPE_BRIDGE || !cb)
		return false;
	uint8_t sub = 0;
	int sec = cb(cb_ctx, seg, b, ldev, lfn, &sub);
	if (sec < 0 || sec > 255)
		return false;
	if (sub < sec)
		sub = (uint8_t)sec;
	return bus >= sec && bus <= sub;
}

/* Does any scope of the structure at `s` (segment `sseg`) name the device? */
static bool struct_names_device(const struct dmar_acpi_table *t, uint32_t s, uint16_t sseg,
				uint16_t seg, uint8_t bus, uint8_t dev, uint8_t fn,
				dmar_acpi_secondary_bus_fn cb, void *cb_ctx)
{
	struct dmar_acpi_scope_iter it;
	struct dmar_acpi_scope sc;
	if (dmar_acpi_scope_begin(t, s, &it))
		return false;
	while (dmar_acpi_scope_next(&it, &sc)) {
		if (dmar_acpi_scope_matches(&sc, seg, bus, dev, fn, sseg, cb, cb_ctx))
			return true;
	}
	return false;
}

int dmar_acpi_device_unit(const struct dmar_acpi_table *t, uint16_t seg, uint8_t bus,
			  uint8_t dev, uint8_t fn, dmar_acpi_secondary_bus_fn cb, void *cb_ctx,
			  unsigned *drhd_index)
{
	if (!t || !t->bytes || !drhd_index)
		return DMAR_EINVAL;
	struct dmar_acpi_drhd d;
	for (unsigned i = 0; dmar_acpi_drhd_get(t, i, &d) == 0; i++) {
		if (d.flags & DMAR_DRHD_INCLUDE_PCI_ALL)
			continue;
		if (struct_names_device(t, d.offset, d.segment, seg, bus, dev, fn, cb, cb_ctx)) {
			*drhd_index = i;
			return 0;
		}
	}
	for (unsigned i = 0; dmar_acpi_drhd_get(t, i, &d) == 0; i++) {
		if ((d.flags & DMAR_DRHD_INCLUDE_PCI_ALL) && d.segment == seg) {
			*drhd_index = i;
			return 0;
		}
	}
	return DMAR_ENODEV;
}

int dmar_acpi_device_rmrr_next(const struct dmar_acpi_table *t, uint16_t seg, uint8_t bus,
			       uint8_t dev, uint8_t fn, dmar_acpi_secondary_bus_fn cb,
			       void *cb_ctx, unsigned *cursor, struct dmar_acpi_rmrr *out)
{
	if (!t || !t->bytes || !cursor || !out)
		return DMAR_EINVAL;
	struct dmar_acpi_rmrr r;
	for (unsigned i = *cursor; dmar_acpi_rmrr_get(t, i, &r) == 0; i++) {
		if (struct_names_device(t, r.offset, r.segment, seg, bus, dev, fn, cb, cb_ctx)) {
			*out = r;
			*cursor = i + 1;
			return 0;
		}
	}
	*cursor = t->count[DMAR_ACPI_RMRR];
	return DMAR_ENOENT;
}

/* ---- names ---- */

const char *dmar_acpi_type_name(unsigned type)
{
	static const char *const names[DMAR_ACPI_NTYPES] = {
		"DRHD", "RMRR", "ATSR", "RHSA", "ANDD", "SATC", "SIDP",
	};
	return type < DMAR_ACPI_NTYPES ? names[type] : "unknown";
}

const char *dmar_acpi_scope_type_name(unsigned type)
{
	static const char *const names[] = {
		"reserved", "endpoint", "bridge", "ioapic", "hpet", "acpi",
	};
	return type < DMAR_ARRAY_SIZE(names) && type ? names[type] : "unknown";
}

static const struct {
	const char *name, *text;
} finding_info[DMAR_FIND_CODE_MAX] = {
	[DMAR_FIND_CHECKSUM] = {"checksum", "table checksum does not sum to zero"},
	[DMAR_FIND_UNKNOWN_TYPE] = {"unknown-structure", "unknown remapping structure type skipped"},
	[DMAR_FIND_DRHD_BASE_ZERO] = {"drhd-base-zero", "DRHD register base address is 0"},
	[DMAR_FIND_DRHD_BASE_UNALIGNED] = {"drhd-base-unaligned",
					   "DRHD register base address is not 4 KiB aligned"},
	[DMAR_FIND_RMRR_END_BEFORE_BASE] = {"rmrr-end-before-base",
					    "RMRR limit address is below its base address"},
	[DMAR_FIND_RMRR_UNALIGNED] = {"rmrr-unaligned",
				      "RMRR base or limit+1 is not 4 KiB aligned"},
	[DMAR_FIND_RMRR_ZERO_LENGTH] = {"rmrr-zero-length", "RMRR describes an empty range (0-0)"},
	[DMAR_FIND_RMRR_OVERLAP] = {"rmrr-overlap",
				    "RMRR overlaps an earlier RMRR of the same segment (value: its offset)"},
	[DMAR_FIND_DUP_IOAPIC] = {"duplicate-ioapic", "IOAPIC id is listed more than once"},
	[DMAR_FIND_DUP_HPET] = {"duplicate-hpet", "HPET id is listed more than once"},
	[DMAR_FIND_RHSA_NO_DRHD] = {"rhsa-no-drhd", "RHSA register base matches no DRHD"},
	[DMAR_FIND_X2APIC_OPT_OUT_NO_IR] = {"x2apic-opt-out-without-intr-remap",
					    "X2APIC_OPT_OUT is set but INTR_REMAP is not"},
	[DMAR_FIND_RESERVED_NONZERO] = {"reserved-nonzero", "reserved field is not zero"},
	[DMAR_FIND_PCI_ALL_MULTIPLE] = {"pci-all-multiple",
					"more than one INCLUDE_PCI_ALL DRHD in this segment"},
	[DMAR_FIND_PCI_ALL_NOT_LAST] = {"pci-all-not-last",
					"INCLUDE_PCI_ALL DRHD is not the last DRHD of its segment"},
	[DMAR_FIND_PCI_ALL_PCI_SCOPE] = {"pci-all-pci-scope",
					 "INCLUDE_PCI_ALL DRHD has an endpoint or bridge scope"},
	[DMAR_FIND_UNKNOWN_SCOPE] = {"unknown-scope", "unknown device scope type"},
	[DMAR_FIND_SCOPE_NO_PATH] = {"scope-no-path", "device scope has no path entry"},
	[DMAR_FIND_STRUCT_TRAILING] = {"structure-trailing-bytes",
				       "structure is longer than its type defines"},
	[DMAR_FIND_HEADER_ID_NOT_ASCII] = {"header-id-not-ascii",
					   "OEM ID, OEM table ID or creator ID has a byte that is not "
					   "printable ASCII (value: the byte; NUL padding at the end "
					   "is fine)"},
	[DMAR_FIND_DRHD_BEYOND_HAW] = {"drhd-beyond-haw",
				       "DRHD register set lies above the host address width"},
	[DMAR_FIND_RMRR_BEYOND_HAW] = {"rmrr-beyond-haw",
				       "RMRR base or limit lies above the host address width"},
	[DMAR_FIND_DUP_SCOPE] = {"duplicate-scope",
				 "device scope names the device of an earlier scope of this "
				 "structure (value: its offset)"},
	[DMAR_FIND_DUP_DRHD_DEVICE] = {"duplicate-drhd-device",
				       "device is also named by an earlier DRHD of the same segment "
				       "(value: that scope's offset)"},
	[DMAR_FIND_DRHD_OVERLAP] = {"drhd-overlap",
				    "DRHD register set overlaps an earlier DRHD's, e.g. the same "
				    "base (value: its offset)"},
	[DMAR_FIND_RMRR_OVERLAP_SEGMENT] = {"rmrr-overlap-other-segment",
					    "RMRR overlaps an earlier RMRR of another segment "
					    "(value: its offset)"},
	[DMAR_FIND_SEGMENT_NO_DRHD] = {"segment-no-drhd",
				       "structure belongs to a segment without any DRHD "
				       "(value: the segment)"},
	[DMAR_FIND_SCOPE_NO_DRHD] = {"scope-no-drhd",
				     "no DRHD of the segment covers this device, and none has "
				     "INCLUDE_PCI_ALL (value: the segment)"},
	[DMAR_FIND_CROSS_LIMITED] = {"cross-checks-incomplete",
				     "cross-structure checks reached their work bound here; the "
				     "rest is unchecked (value: the bound)"},
};

const char *dmar_acpi_finding_name(unsigned code)
{
	return code < DMAR_FIND_CODE_MAX && finding_info[code].name ? finding_info[code].name
								     : "unknown-finding";
}

const char *dmar_acpi_finding_text(unsigned code)
{
	return code < DMAR_FIND_CODE_MAX && finding_info[code].text ? finding_info[code].text
								     : "unknown finding";
}

int dmar_acpi_finding_format(const struct dmar_acpi_finding *f, char *buf, size_t len)
{
	if (!f)
		return dmar__snprintf(buf, len, "(null finding)");
	return dmar__snprintf(buf, len, "0x%x %s: %s (value 0x%llx)", (unsigned)f->offset,
			     dmar_acpi_finding_name(f->code), dmar_acpi_finding_text(f->code),
			     (unsigned long long)f->value);
}
