/*
 * spinlock.h - spinlocks for the kernel's several CPUs (smp.h).
 *
 * Test-and-test-and-set: an atomic exchange takes it, waiters spin on a plain read with
 * `pause` until it looks free. Not a ticket lock, on purpose: under QEMU with more vCPUs
 * than host cores, a fair lock hands the lock to one particular waiter, whose vCPU thread
 * may be descheduled on the host, and every hand-off then waits for the host scheduler
 * (measured: 4 vCPUs on 2 cores taking one lock 80,000 times went from 70 ms to over
 * 20 s). Here whichever CPU runs takes it.
 * It knows its owner (the CPU index, smp_cpu_index()), so taking a lock this CPU
 * already holds is reported as the deadlock it would be ("Bail out!"), as is releasing a
 * lock this CPU does not hold, and a wait that
 * lasts longer than SPIN_DEADLOCK_NS (a lock-order deadlock between CPUs, or a CPU that
 * died holding it) names the lock and its owner and ends the run instead of hanging.
 *
 * spin_lock_irqsave also turns interrupts off on this CPU while the lock is held (before
 * it spins: an interrupt handler that wants the lock must never interrupt its holder),
 * and spin_unlock_irqrestore restores them. Locks an interrupt handler may take (the
 * console's, from the watchdog) must use these.
 */
#ifndef KERNEL_SPINLOCK_H
#define KERNEL_SPINLOCK_H

#include <stdbool.h>
#include <stdint.h>

#define SPIN_DEADLOCK_NS 5000000000ull /* 5 s: no lock of this kernel is held that long */
#define SPIN_NO_OWNER 0u /* a zeroed lock is a free lock */

struct spinlock {
	volatile uint32_t locked;
	volatile uint32_t owner; /* 1 + the index of the CPU holding it, or SPIN_NO_OWNER */
	const char *name;        /* for the deadlock report (may be NULL) */
};

#define SPINLOCK_INIT(n) { 0, SPIN_NO_OWNER, (n) }

void spin_init(struct spinlock *l, const char *name);
void spin_lock(struct spinlock *l);
void spin_unlock(struct spinlock *l);
/* True and the lock taken, or false at once when another CPU holds it. */
bool spin_trylock(struct spinlock *l);
/* With interrupts off on this CPU while held; `*flags` keeps the caller's state. */
void spin_lock_irqsave(struct spinlock *l, uint64_t *flags);
void spin_unlock_irqrestore(struct spinlock *l, uint64_t flags);
/* Whether this CPU holds it. */
bool spin_held_here(const struct spinlock *l);

/* The interrupt flag: save and disable, restore. */
static inline uint64_t irq_save(void)
{
	uint64_t f;
	__asm__ volatile("pushfq; popq %0; cli" : "=r"(f) : : "memory");
	return f;
}

static inline void irq_restore(uint64_t f)
{
	if (f & 0x200)
		__asm__ volatile("sti" : : : "memory");
}

#endif
