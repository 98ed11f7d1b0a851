/*
 * trap.h - interrupts: an IDT whose exception handlers print the CPU state and fail the
 * run (so a crash is a reported failure, not a silent reboot), a 100 Hz PIT tick
 * (8259 IRQ 0, reaching the CPU through the local APIC's LINT0 as ExtINT) on which the
 * watchdog runs, and device interrupts through the local APIC (MSIs, IOAPIC pins) on
 * vectors that tests claim and whose arrivals are counted.
 */
#ifndef KERNEL_TRAP_H
#define KERNEL_TRAP_H

#include <stdbool.h>
#include <stdint.h>

struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};

typedef void (*trap_tick_fn)(void);

/* Installs the IDT, remaps the 8259 PICs, enables the local APIC (lapic.h), starts the
 * PIT at 100 Hz and enables interrupts; `tick` runs on every timer interrupt. */
void trap_init(trap_tick_fn tick);

void trap_dispatch(struct trap_frame *f);

/* Loads the IDT on this CPU (an application processor shares the bootstrap CPU's; its
 * exceptions are reported the same way, with its CPU index). */
void trap_load_idt(void);

/* Ticks seen so far (proves the timer runs). */
uint64_t trap_ticks(void);

/* Device vectors: 48..254 (32..47 are the 8259's, 255 the local APIC's spurious
 * vector). An arrival on one of them is counted with the APIC id of the CPU that took
 * it, handed to the vector's handler if it has one, and ended with a local APIC EOI. */
#define TRAP_VEC_DEVICE_FIRST 48u
#define TRAP_VEC_DEVICE_LAST 254u

/* Runs in the interrupt (interrupts off), before the EOI. */
typedef void (*trap_irq_fn)(void *ctx, unsigned vector);

/* Claims `vector` (0: the lowest free device vector) for `fn` (may be NULL: arrivals
 * are only counted). Returns the vector, or -1 when it is taken or not a device
 * vector. Not for interrupt context. */
int trap_irq_claim(unsigned vector, trap_irq_fn fn, void *ctx);
/* Gives the vector back; later arrivals on it count as stray. */
void trap_irq_release(unsigned vector);

/* Arrivals on a device vector since boot (claimed or not), and the APIC id of the CPU
 * that took the last one (0xffffffff before the first). */
uint64_t trap_irq_count(unsigned vector);
uint32_t trap_irq_last_cpu(unsigned vector);
/* Arrivals on device vectors nobody had claimed, and on the 8259's other lines. */
uint64_t trap_irq_stray(void);

/* Waits until the vector's count exceeds `count`: true, or false once `ticks` timer
 * ticks (10 ms each) have passed (or twice that time by the TSC, should the tick stop).
 * Halts between interrupts. Used both to see an interrupt arrive and to see one never
 * arrive. */
bool trap_irq_wait(unsigned vector, uint64_t count, unsigned ticks);

/* Waits `n` timer ticks (bounded by the TSC as above). */
void trap_wait_ticks(unsigned n);

#endif
