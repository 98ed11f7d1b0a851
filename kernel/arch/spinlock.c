/* Test-and-test-and-set spinlocks with owner tracking and a deadlock bound (spinlock.h). */
#include "spinlock.h"

#include "clock.h"
#include "console.h"
#include "smp.h"
#include "x86.h"

void spin_init(struct spinlock *l, const char *name)
{
	l->locked = 0;
	l->owner = SPIN_NO_OWNER;
	l->name = name;
}

_Noreturn static void deadlock(const struct spinlock *l, unsigned me, const char *why)
{
	console_emergency("\n# spinlock ");
	console_emergency(l->name ? l->name : "(unnamed)");
	kprintf_emergency(" at %p: %s (this CPU %u, owner CPU %d)\n", (const void *)l, why,
			  me - 1, (int)l->owner - 1);
	console_emergency("Bail out! spinlock deadlock\n");
	qemu_exit(2);
}

void spin_lock(struct spinlock *l)
{
	unsigned me = smp_cpu_index() + 1;
	if (l->owner == me)
		deadlock(l, me, "taken again by the CPU that holds it");
	if (__atomic_exchange_n(&l->locked, 1u, __ATOMIC_ACQUIRE)) {
		uint64_t start = clock_now_ns();
		unsigned spins = 0;
		do {
			while (__atomic_load_n(&l->locked, __ATOMIC_RELAXED)) {
				cpu_relax();
				if (++spins % 4096 == 0 && clock_now_ns() - start > SPIN_DEADLOCK_NS)
					deadlock(l, me, "still held after 5 s");
			}
		} while (__atomic_exchange_n(&l->locked, 1u, __ATOMIC_ACQUIRE));
	}
	l->owner = me;
}

bool spin_trylock(struct spinlock *l)
{
	if (__atomic_load_n(&l->locked, __ATOMIC_RELAXED) ||
	    __atomic_exchange_n(&l->locked, 1u, __ATOMIC_ACQUIRE))
		return false;
	l->owner = smp_cpu_index() + 1;
	return true;
}

void spin_unlock(struct spinlock *l)
{
	unsigned me = smp_cpu_index() + 1;
	if (l->owner != me)
		deadlock(l, me, l->locked ? "released by a CPU that does not hold it"
					  : "released while free");
	l->owner = SPIN_NO_OWNER;
	__atomic_store_n(&l->locked, 0u, __ATOMIC_RELEASE);
}

void spin_lock_irqsave(struct spinlock *l, uint64_t *flags)
{
	*flags = irq_save();
	spin_lock(l);
}

void spin_unlock_irqrestore(struct spinlock *l, uint64_t flags)
{
	spin_unlock(l);
	irq_restore(flags);
}

bool spin_held_here(const struct spinlock *l)
{
	return l->owner == smp_cpu_index() + 1;
}
