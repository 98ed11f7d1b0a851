/*
 * trap.h - interrupts: an IDT whose exception handlers print the CPU state and fail the
 * run (so a crash is a reported failure, not a silent reboot), and a 100 Hz PIT tick
 * (8259 IRQ 0) on which the watchdog runs.
 */
#ifndef KERNEL_TRAP_H
#define KERNEL_TRAP_H

#include <stdint.h>

struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};

typedef void (*trap_tick_fn)(void);

/* Installs the IDT, remaps the 8259 PICs, starts the PIT at 100 Hz and enables
 * interrupts; `tick` runs on every timer interrupt. */
void trap_init(trap_tick_fn tick);

void trap_dispatch(struct trap_frame *f);

/* Ticks seen so far (proves the timer runs). */
uint64_t trap_ticks(void);

#endif
