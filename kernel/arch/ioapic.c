/* I/O APICs from the ACPI MADT (ACPI 5.2.12) and their redirection tables (82093AA). */
#include "ioapic.h"

#include "acpi_find.h"
#include "console.h"
#include "vm.h"
#include "x86.h"

#define IOREGSEL 0x00
#define IOWIN 0x10
#define IOAPIC_REG_ID 0x00
#define IOAPIC_REG_VER 0x01
#define IOAPIC_REG_RTE(pin) (0x10u + 2u * (pin))

#define MADT_HEADER 44 /* SDT header (36), local APIC address (4), flags (4) */
#define MADT_PCAT_COMPAT 0x1u
#define MADT_IOAPIC 1
#define MADT_OVERRIDE 2
#define MPS_POLARITY_MASK 0x3u
#define MPS_POLARITY_LOW 0x3u
#define MPS_TRIGGER_MASK 0xcu
#define MPS_TRIGGER_LEVEL 0xcu

struct override {
	uint8_t irq;
	uint32_t gsi;
	uint16_t flags;
};

static struct ioapic ioapics[IOAPIC_MAX];
static unsigned nioapics;
static struct override overrides[IOAPIC_MAX_OVERRIDES];
static unsigned noverrides;
static bool pcat_compat;

static uint32_t rd(const struct ioapic *io, unsigned reg)
{
	volatile uint32_t *base = (volatile uint32_t *)phys_ptr(io->base);
	base[IOREGSEL / 4] = reg;
	return base[IOWIN / 4];
}

static void wr(const struct ioapic *io, unsigned reg, uint32_t v)
{
	volatile uint32_t *base = (volatile uint32_t *)phys_ptr(io->base);
	base[IOREGSEL / 4] = reg;
	base[IOWIN / 4] = v;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void add_ioapic(const uint8_t *e)
{
	if (nioapics == IOAPIC_MAX)
		return;
	struct ioapic *io = &ioapics[nioapics];
	io->id = e[2];
	io->base = le32(e + 4);
	io->gsi_base = le32(e + 8);
	if (vm_map_mmio(io->base, 4096))
		return;
	uint32_t ver = rd(io, IOAPIC_REG_VER);
	if (ver == 0xffffffffu)
		return; /* nothing answers there */
	io->version = (uint8_t)ver;
	io->pins = ((ver >> 16) & 0xff) + 1;
	nioapics++;
}

unsigned ioapic_init(void)
{
	struct acpi_found f;
	nioapics = noverrides = 0;
	if (acpi_find_table("APIC", &f) != 0 || f.length < MADT_HEADER)
		return 0;
	const uint8_t *t = (const uint8_t *)phys_ptr(f.table);
	if (acpi_sum(t, f.length) != 0) {
		kprintf("# MADT checksum is wrong: IOAPICs not used\n");
		return 0;
	}
	pcat_compat = le32(t + 40) & MADT_PCAT_COMPAT;
	for (uint32_t off = MADT_HEADER; off + 2 <= f.length;) {
		const uint8_t *e = t + off;
		uint8_t type = e[0], len = e[1];
		if (len < 2 || off + len > f.length)
			break; /* a malformed entry ends the list */
		if (type == MADT_IOAPIC && len >= 12)
			add_ioapic(e);
		else if (type == MADT_OVERRIDE && len >= 10 && e[2] == 0 /* ISA */ &&
			 noverrides < IOAPIC_MAX_OVERRIDES)
			overrides[noverrides++] = (struct override){
				e[3], le32(e + 4), (uint16_t)(e[8] | e[9] << 8) };
		off += len;
	}
	for (unsigned i = 0; i < nioapics; i++)
		for (unsigned pin = 0; pin < ioapics[i].pins; pin++)
			ioapic_rte_write(i, pin, IOAPIC_RTE_MASKED);
	return nioapics;
}

unsigned ioapic_count(void) { return nioapics; }
const struct ioapic *ioapic_at(unsigned i) { return i < nioapics ? &ioapics[i] : 0; }
bool ioapic_pcat_compat(void) { return pcat_compat; }

void ioapic_isa_route(unsigned irq, struct ioapic_isa_route *out)
{
	*out = (struct ioapic_isa_route){ .gsi = irq };
	for (unsigned i = 0; i < noverrides; i++) {
		if (overrides[i].irq != irq)
			continue;
		/* "Conforming" (0) means the ISA bus's own: active high, edge. */
		out->gsi = overrides[i].gsi;
		out->active_low = (overrides[i].flags & MPS_POLARITY_MASK) == MPS_POLARITY_LOW;
		out->level = (overrides[i].flags & MPS_TRIGGER_MASK) == MPS_TRIGGER_LEVEL;
		out->overridden = true;
	}
}

int ioapic_for_gsi(uint32_t gsi, unsigned *pin)
{
	for (unsigned i = 0; i < nioapics; i++)
		if (gsi >= ioapics[i].gsi_base && gsi - ioapics[i].gsi_base < ioapics[i].pins) {
			*pin = gsi - ioapics[i].gsi_base;
			return (int)i;
		}
	return -1;
}

uint64_t ioapic_rte_read(unsigned io, unsigned pin)
{
	if (io >= nioapics || pin >= ioapics[io].pins)
		return IOAPIC_RTE_MASKED;
	const struct ioapic *a = &ioapics[io];
	return (uint64_t)rd(a, IOAPIC_REG_RTE(pin) + 1) << 32 | rd(a, IOAPIC_REG_RTE(pin));
}

void ioapic_rte_write(unsigned io, unsigned pin, uint64_t rte)
{
	if (io >= nioapics || pin >= ioapics[io].pins)
		return;
	const struct ioapic *a = &ioapics[io];
	wr(a, IOAPIC_REG_RTE(pin), rd(a, IOAPIC_REG_RTE(pin)) | (uint32_t)IOAPIC_RTE_MASKED);
	wr(a, IOAPIC_REG_RTE(pin) + 1, (uint32_t)(rte >> 32));
	wr(a, IOAPIC_REG_RTE(pin), (uint32_t)rte);
}

uint64_t ioapic_rte_compat(uint8_t vector, uint8_t apic_id, bool active_low, bool level,
			   bool masked)
{
	return (uint64_t)vector | (active_low ? IOAPIC_RTE_ACTIVE_LOW : 0) |
	       (level ? IOAPIC_RTE_LEVEL : 0) | (masked ? IOAPIC_RTE_MASKED : 0) |
	       (uint64_t)apic_id << IOAPIC_RTE_DEST_SHIFT;
}
