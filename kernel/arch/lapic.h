/*
 * lapic.h - the local APIC in xAPIC mode: its registers are MMIO at the address
 * IA32_APIC_BASE names (0xfee00000 on QEMU). Enabled with a spurious vector; LINT0 is
 * left (or set) as ExtINT so the 8259's PIT tick keeps reaching the CPU. Interrupts it
 * delivers on a device vector (MSIs, IOAPIC pins) end with lapic_eoi().
 *
 * Each CPU has its own local APIC at the same address: the register accesses below act
 * on the calling CPU's. QEMU 7.2 under TCG offers no x2APIC (CPUID.1:ECX[21] clear).
 */
#ifndef KERNEL_LAPIC_H
#define KERNEL_LAPIC_H

#include <stdbool.h>
#include <stdint.h>

#define LAPIC_SPURIOUS_VECTOR 0xffu

/* Globally and software-enables the local APIC (spurious vector 255, TPR 0, LINT0
 * ExtINT on the bootstrap CPU if it was masked). False, leaving it alone, when the CPU
 * has none or runs it in x2APIC mode (MSR access only; not supported here). */
bool lapic_init(void);
bool lapic_present(void);

/* The local APIC id of this CPU (the destination an interrupt must name to reach it). */
uint32_t lapic_id(void);
/* Physical base of its registers. */
uint64_t lapic_base(void);
/* The CPU could run its local APIC in x2APIC mode (CPUID.1:ECX[21]). */
bool lapic_x2apic_capable(void);

/* On an application processor (after lapic_init on the bootstrap CPU): enables its
 * local APIC with the spurious vector, LINT0/LINT1 masked (the 8259 stays the
 * bootstrap CPU's). */
void lapic_init_ap(void);
/* INIT (level assert) and STARTUP with `vector` (the start page's number) IPIs to one
 * CPU by its APIC id; false when the local APIC did not send it within 100 ms. */
bool lapic_send_init(uint32_t apic_id);
bool lapic_send_startup(uint32_t apic_id, uint8_t vector);
/* A fixed interrupt on `vector` to one CPU (the SMP mailbox's wake-up). */
bool lapic_send_fixed(uint32_t apic_id, uint8_t vector);

/* End of interrupt for the highest in-service vector. */
void lapic_eoi(void);
/* Whether the vector is in service (ISR) or requested (IRR) right now. */
bool lapic_in_service(unsigned vector);
bool lapic_requested(unsigned vector);

#endif
