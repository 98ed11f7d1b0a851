/*
 * dmar_table_builder.c - synthetic DMAR tables for tests (see the header).
 */
#include "dmar_table_builder.h"

#include <string.h>

void dtb_put8(struct dtb *b, size_t off, uint8_t v)
{
	if (off < DTB_MAX)
		b->buf[off] = v;
}
void dtb_put16(struct dtb *b, size_t off, uint16_t v)
{
	dtb_put8(b, off, (uint8_t)v);
	dtb_put8(b, off + 1, (uint8_t)(v >> 8));
}
void dtb_put32(struct dtb *b, size_t off, uint32_t v)
{
	dtb_put16(b, off, (uint16_t)v);
	dtb_put16(b, off + 2, (uint16_t)(v >> 16));
}
void dtb_put64(struct dtb *b, size_t off, uint64_t v)
{
	dtb_put32(b, off, (uint32_t)v);
	dtb_put32(b, off + 4, (uint32_t)(v >> 32));
}

/* Reserves n zeroed bytes at the end; returns their offset or 0 on overflow. */
static size_t grow(struct dtb *b, size_t n)
{
	if (b->overflow || b->len + n > DTB_MAX) {
		b->overflow = true;
		return 0;
	}
	size_t off = b->len;
	memset(b->buf + off, 0, n);
	b->len += n;
	return off;
}

void dtb_init(struct dtb *b, unsigned haw, uint8_t flags)
{
	memset(b, 0, sizeof(*b));
	grow(b, DMAR_ACPI_HEADER_LEN);
	memcpy(b->buf, "DMAR", 4);
	b->buf[8] = 1;
	memcpy(b->buf + 10, "DMARTB", 6);
	memcpy(b->buf + 16, "SYNTHTBL", 8);
	dtb_put32(b, 24, 1);
	memcpy(b->buf + 28, "DTB ", 4);
	dtb_put32(b, 32, 1);
	b->buf[36] = (uint8_t)(haw ? haw - 1 : 0);
	b->buf[37] = flags;
}

static size_t open_struct(struct dtb *b, uint16_t type, size_t fixed)
{
	size_t off = grow(b, fixed);
	if (!off)
		return 0;
	dtb_put16(b, off, type);
	dtb_put16(b, off + 2, (uint16_t)fixed);
	b->open = off;
	return off;
}

size_t dtb_drhd(struct dtb *b, uint8_t flags, uint16_t segment, uint64_t base)
{
	size_t s = open_struct(b, DMAR_ACPI_DRHD, 16);
	if (s) {
		dtb_put8(b, s + 4, flags);
		dtb_put16(b, s + 6, segment);
		dtb_put64(b, s + 8, base);
	}
	return s;
}

size_t dtb_rmrr(struct dtb *b, uint16_t segment, uint64_t base, uint64_t limit)
{
	size_t s = open_struct(b, DMAR_ACPI_RMRR, 24);
	if (s) {
		dtb_put16(b, s + 6, segment);
		dtb_put64(b, s + 8, base);
		dtb_put64(b, s + 16, limit);
	}
	return s;
}

static size_t flags_segment(struct dtb *b, uint16_t type, uint8_t flags, uint16_t segment)
{
	size_t s = open_struct(b, type, 8);
	if (s) {
		dtb_put8(b, s + 4, flags);
		dtb_put16(b, s + 6, segment);
	}
	return s;
}

size_t dtb_atsr(struct dtb *b, uint8_t flags, uint16_t segment)
{
	return flags_segment(b, DMAR_ACPI_ATSR, flags, segment);
}
size_t dtb_satc(struct dtb *b, uint8_t flags, uint16_t segment)
{
	return flags_segment(b, DMAR_ACPI_SATC, flags, segment);
}
size_t dtb_sidp(struct dtb *b, uint16_t segment)
{
	return flags_segment(b, DMAR_ACPI_SIDP, 0, segment);
}

size_t dtb_rhsa(struct dtb *b, uint64_t base, uint32_t proximity_domain)
{
	size_t s = open_struct(b, DMAR_ACPI_RHSA, 20);
	if (s) {
		dtb_put64(b, s + 8, base);
		dtb_put32(b, s + 16, proximity_domain);
	}
	return s;
}

size_t dtb_andd(struct dtb *b, uint8_t device, const char *name)
{
	size_t n = strlen(name) + 1;
	size_t s = open_struct(b, DMAR_ACPI_ANDD, 8);
	if (s) {
		dtb_put8(b, s + 7, device);
		size_t p = grow(b, n);
		if (p) {
			memcpy(b->buf + p, name, n);
			dtb_put16(b, s + 2, (uint16_t)(8 + n));
		}
	}
	return s;
}

size_t dtb_struct(struct dtb *b, uint16_t type, const void *body, size_t body_len)
{
	size_t s = open_struct(b, type, 4 + body_len);
	if (s && body_len)
		memcpy(b->buf + s + 4, body, body_len);
	return s;
}

size_t dtb_scope(struct dtb *b, uint8_t type, uint8_t enum_id, uint8_t start_bus,
		 const uint8_t *path, unsigned npath)
{
	size_t n = 6 + 2 * (size_t)npath;
	if (!b->open || n > 255) {
		b->overflow = true;
		return 0;
	}
	size_t off = grow(b, n);
	if (!off)
		return 0;
	b->buf[off] = type;
	b->buf[off + 1] = (uint8_t)n;
	b->buf[off + 4] = enum_id;
	b->buf[off + 5] = start_bus;
	if (npath)
		memcpy(b->buf + off + 6, path, 2 * (size_t)npath);
	dtb_put16(b, b->open + 2, (uint16_t)(b->len - b->open));
	return off;
}

size_t dtb_scope_pci(struct dtb *b, uint8_t type, uint8_t bus, uint8_t dev, uint8_t fn,
		     uint8_t enum_id)
{
	uint8_t path[2] = {dev, fn};
	return dtb_scope(b, type, enum_id, bus, path, 1);
}

void dtb_fix_checksum(struct dtb *b)
{
	uint8_t sum = 0;
	b->buf[9] = 0;
	for (size_t i = 0; i < b->len; i++)
		sum = (uint8_t)(sum + b->buf[i]);
	b->buf[9] = (uint8_t)(0x100 - sum);
}

size_t dtb_finish(struct dtb *b)
{
	dtb_put32(b, 4, (uint32_t)b->len);
	dtb_fix_checksum(b);
	return b->len;
}

/* A made-up topology: every (bus, dev, fn) with even bus^dev^fn is a bridge. */
static int exercise_bridge(void *ctx, uint16_t seg, uint8_t bus, uint8_t dev, uint8_t fn,
			   uint8_t *sub)
{
	(void)ctx;
	(void)seg;
	if ((dev ^ fn ^ bus) & 1)
		return -1;
	*sub = (uint8_t)(bus + 3);
	return (uint8_t)(bus + dev + 1);
}

unsigned dtb_exercise(const struct dmar_acpi_table *t)
{
	unsigned scopes = 0;
	char line[256];
	for (unsigned i = 0; i < t->nfindings && i < DMAR_ACPI_MAX_FINDINGS; i++)
		dmar_acpi_finding_format(&t->findings[i], line, sizeof(line));
	struct dmar_acpi_struct st;
	for (unsigned i = 0; dmar_acpi_struct_get(t, i, &st) == 0; i++) {
		struct dmar_acpi_scope_iter it;
		struct dmar_acpi_scope sc;
		(void)dmar_acpi_type_name(st.type);
		if (dmar_acpi_scope_begin(t, st.offset, &it) != 0)
			continue;
		while (dmar_acpi_scope_next(&it, &sc)) {
			scopes++;
			(void)dmar_acpi_scope_type_name(sc.type);
			(void)dmar_acpi_scope_matches(&sc, 0, sc.start_bus, 1, 0, 0,
						      exercise_bridge, NULL);
		}
	}
	union {
		struct dmar_acpi_drhd d;
		struct dmar_acpi_rmrr r;
		struct dmar_acpi_atsr a;
		struct dmar_acpi_rhsa h;
		struct dmar_acpi_andd n;
		struct dmar_acpi_satc s;
		struct dmar_acpi_sidp p;
	} u;
	for (unsigned i = 0; dmar_acpi_drhd_get(t, i, &u.d) == 0; i++)
		;
	for (unsigned i = 0; dmar_acpi_rmrr_get(t, i, &u.r) == 0; i++)
		;
	for (unsigned i = 0; dmar_acpi_atsr_get(t, i, &u.a) == 0; i++)
		;
	for (unsigned i = 0; dmar_acpi_rhsa_get(t, i, &u.h) == 0; i++)
		;
	for (unsigned i = 0; dmar_acpi_andd_get(t, i, &u.n) == 0; i++)
		;
	for (unsigned i = 0; dmar_acpi_satc_get(t, i, &u.s) == 0; i++)
		;
	for (unsigned i = 0; dmar_acpi_sidp_get(t, i, &u.p) == 0; i++)
		;
	for (unsigned bus = 0; bus < 4; bus++) {
		unsigned idx, cursor = 0;
		struct dmar_acpi_rmrr r;
		(void)dmar_acpi_device_unit(t, 0, (uint8_t)bus, 2, 0, exercise_bridge, NULL, &idx);
		while (dmar_acpi_device_rmrr_next(t, 0, (uint8_t)bus, 2, 0, exercise_bridge, NULL,
						  &cursor, &r) == 0)
			;
	}
	return scopes;
}
