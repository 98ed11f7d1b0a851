/*
 * ioapic.h - the I/O APICs and ISA interrupt routing the ACPI MADT describes: each
 * IOAPIC's id (the enumeration id a DMAR IOAPIC scope names), MMIO base and first GSI,
 * and the interrupt source overrides (on QEMU's q35: ISA IRQ 0, the PIT, arrives on
 * GSI 2). Redirection-table entries are read and written whole, in compatibility or
 * remappable format (the caller builds the 64 bits).
 *
 * One CPU: no locking; not for interrupt context.
 */
#ifndef KERNEL_IOAPIC_H
#define KERNEL_IOAPIC_H

#include <stdbool.h>
#include <stdint.h>

#define IOAPIC_MAX 8
#define IOAPIC_MAX_OVERRIDES 16

/* Redirection-table entry bits (82093AA, compatibility format). */
#define IOAPIC_RTE_VECTOR 0xffull
#define IOAPIC_RTE_DEST_LOGICAL (1ull << 11)
#define IOAPIC_RTE_ACTIVE_LOW (1ull << 13)
#define IOAPIC_RTE_LEVEL (1ull << 15)
#define IOAPIC_RTE_MASKED (1ull << 16)
#define IOAPIC_RTE_DEST_SHIFT 56

struct ioapic {
	uint8_t id;          /* from the MADT */
	uint8_t version;     /* from its version register */
	uint64_t base;       /* physical MMIO base */
	uint32_t gsi_base;   /* GSI of pin 0 */
	unsigned pins;       /* redirection entries */
};

/* How an ISA IRQ reaches an IOAPIC: its GSI, polarity and trigger (an override's, or
 * the ISA default: same number, active high, edge). */
struct ioapic_isa_route {
	uint32_t gsi;
	bool active_low;
	bool level;
	bool overridden;     /* a MADT interrupt source override names the IRQ */
};

/* Reads the MADT, records its IOAPICs and overrides and masks every pin. Returns how
 * many IOAPICs it found (0: no MADT, a bad checksum, or none listed). */
unsigned ioapic_init(void);
unsigned ioapic_count(void);
const struct ioapic *ioapic_at(unsigned i);
/* The MADT's flag PCAT_COMPAT: the machine also has the dual 8259. */
bool ioapic_pcat_compat(void);

void ioapic_isa_route(unsigned irq, struct ioapic_isa_route *out);
/* The IOAPIC (index for ioapic_at) and pin serving a GSI, or -1. */
int ioapic_for_gsi(uint32_t gsi, unsigned *pin);

uint64_t ioapic_rte_read(unsigned io, unsigned pin);
/* Writes an entry: masks the pin first, then writes the high half, then the low half
 * (so the pin never fires with half an entry). */
void ioapic_rte_write(unsigned io, unsigned pin, uint64_t rte);

/* A compatibility-format entry: fixed delivery to the physical APIC id. */
uint64_t ioapic_rte_compat(uint8_t vector, uint8_t apic_id, bool active_low, bool level,
			   bool masked);

#endif
