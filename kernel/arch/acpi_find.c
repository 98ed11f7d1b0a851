/* RSDP scan and root table walk (ACPI 5.2.5 - 5.2.8). */
#include "acpi_find.h"

#include "util.h"
#include "x86.h"

struct rsdp {
	char sig[8];
	uint8_t checksum;
	char oem[6];
	uint8_t revision;
	uint32_t rsdt;
	uint32_t length;  /* revision >= 2 from here */
	uint64_t xsdt;
	uint8_t xchecksum;
	uint8_t reserved[3];
} __attribute__((packed));

struct sdt_header {
	char sig[4];
	uint32_t length;
	uint8_t revision, checksum;
	char oem[6], oem_table[8];
	uint32_t oem_rev, creator, creator_rev;
} __attribute__((packed));

uint8_t acpi_sum(const void *p, uint32_t len)
{
	const uint8_t *b = p;
	uint8_t s = 0;
	for (uint32_t i = 0; i < len; i++)
		s = (uint8_t)(s + b[i]);
	return s;
}

static const struct rsdp *scan(uint64_t start, uint64_t len)
{
	for (uint64_t a = start; a + 20 <= start + len; a += 16) {
		const struct rsdp *r = (const struct rsdp *)phys_ptr(a);
		if (dmar_memcmp(r->sig, "RSD PTR ", 8) == 0 && acpi_sum(r, 20) == 0)
			return r;
	}
	return 0;
}

static const struct rsdp *find_rsdp(void)
{
	uint64_t ebda = (uint64_t)*(const volatile uint16_t *)phys_ptr(0x40e) << 4;
	const struct rsdp *r = 0;
	if (ebda >= 0x80000 && ebda < 0xa0000)
		r = scan(ebda, 1024);
	return r ? r : scan(0xe0000, 0x20000);
}

int acpi_find_table(const char sig[4], struct acpi_found *out)
{
	const struct rsdp *r = find_rsdp();
	if (!r)
		return -1;
	dmar_memset(out, 0, sizeof(*out));
	out->rsdp = (uintptr_t)r;
	if (r->revision >= 2 && r->xsdt && acpi_sum(r, r->length) == 0) {
		out->root = r->xsdt;
		out->xsdt = 1;
	} else {
		out->root = r->rsdt;
	}
	const struct sdt_header *root = (const struct sdt_header *)(uintptr_t)out->root;
	if (root->length < sizeof(*root) || acpi_sum(root, root->length) != 0)
		return -1;
	unsigned esize = out->xsdt ? 8 : 4;
	unsigned n = (root->length - (unsigned)sizeof(*root)) / esize;
	const uint8_t *entries = (const uint8_t *)(root + 1);
	for (unsigned i = 0; i < n; i++) {
		uint64_t pa = 0;
		dmar_memcpy(&pa, entries + i * esize, esize);
		const struct sdt_header *t = (const struct sdt_header *)(uintptr_t)pa;
		if (pa && dmar_memcmp(t->sig, sig, 4) == 0) {
			out->table = pa;
			out->length = t->length;
			return 0;
		}
	}
	return -1;
}
