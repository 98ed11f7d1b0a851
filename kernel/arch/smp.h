/*
 * smp.h - the kernel on several CPUs: the application processors (APs) the ACPI MADT
 * lists are started with INIT-SIPI-SIPI (Intel SDM vol. 3, 8.4.4 and 11.6.1) through a
 * real-mode trampoline copied to SMP_TRAMPOLINE_PA (16-bit -> 32-bit -> long mode with
 * the kernel's page tables), each on a stack of its own, with its per-CPU data (index,
 * APIC id) at its GS base. Started APs keep interrupts off except while they halt
 * between jobs: smp_run puts a function in each AP's mailbox, wakes it with an IPI on
 * SMP_WAKE_VECTOR (claimed from trap.c's device vectors) and waits for all of them. An
 * idle AP halts rather than spins, so under QEMU it takes no host CPU from the
 * bootstrap CPU (the single-CPU tests of a -smp configuration run at full speed).
 *
 * CPU indexes are dense: 0 is the bootstrap CPU, 1.. the APs in the order they came up.
 * An AP that does not answer within SMP_AP_TIMEOUT_NS is reported and left out (and no
 * further AP is started: the late one might still run the shared trampoline).
 */
#ifndef KERNEL_SMP_H
#define KERNEL_SMP_H

#include <stdbool.h>
#include <stdint.h>

#define SMP_MAX_CPUS 16
#define SMP_TRAMPOLINE_PA 0x8000ull /* below 1 MiB, 4 KiB aligned: SIPI vector 0x08 */
#define SMP_AP_STACK_PAGES 16       /* 64 KiB each */
#define SMP_AP_TIMEOUT_NS 1000000000ull
#define SMP_WAKE_VECTOR 0xfdu

/* Reads the MADT, starts every enabled AP (up to SMP_MAX_CPUS CPUs in all); returns
 * how many CPUs run, the bootstrap CPU included. Call once, after trap_init (the APs
 * load its IDT). `max` (0: no limit) caps the CPUs running. */
unsigned smp_init(unsigned max);

/* CPUs running (1 before smp_init), and those the MADT lists as enabled. */
unsigned smp_cpu_count(void);
unsigned smp_cpus_listed(void);
/* This CPU's index (0 on the bootstrap CPU, also before smp_init). */
unsigned smp_cpu_index(void);
/* The local APIC id of CPU `index`. */
uint32_t smp_cpu_apic_id(unsigned index);

/* Runs fn(arg, index) on every running CPU at once (the caller's, index 0, too) and
 * returns when all have returned. Only from the bootstrap CPU, not nested; the APs run
 * it with interrupts off. A CPU that never returns is ended by the test watchdog on
 * the bootstrap CPU's tick. */
typedef void (*smp_fn)(void *arg, unsigned cpu);
void smp_run(smp_fn fn, void *arg);

/* A barrier for the `n` CPUs of one smp_run: each waits until all have arrived. Reset
 * with smp_barrier_init before the run. */
struct smp_barrier {
	volatile unsigned count, generation;
	unsigned n;
};
void smp_barrier_init(struct smp_barrier *b, unsigned n);
void smp_barrier_wait(struct smp_barrier *b);

#endif
