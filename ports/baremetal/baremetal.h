/*
 * baremetal.h - the OS layer (dmar/os.h) for the bare-metal test kernel: several CPUs
 * (kernel/arch/smp.h), identity-mapped memory, polled hardware. Every operation may be
 * called from any CPU at once.
 *
 * memory: a size-class heap over the kernel's physical page allocator (pmem), poisoned
 *   on alloc and free so a use of stale or uninitialised memory shows up; the heap, its
 *   statistics and the failure injection share one spinlock;
 * pages: zeroed pmem pages; phys <-> virt is the identity;
 * MMIO: volatile 32/64-bit accesses; cache_flush: clflush per line + mfence;
 * time: the kernel's TSC clock (one TSC for all CPUs under QEMU);
 * locks: test-and-test-and-set spinlocks (kernel/arch/spinlock.h) that keep interrupts
 *   off on the CPU holding them and stop the run ("Bail out!") when a CPU takes a lock
 *   it holds, releases one it does not hold, waits for one longer than 5 s (a deadlock,
 *   i.e. a library bug) or destroys a held one;
 * log: "# dmar <level>: <line>" on the serial console (a TAP comment).
 */
#ifndef PORTS_BAREMETAL_H
#define PORTS_BAREMETAL_H

#include <stdint.h>

#include "dmar/os.h"

struct baremetal_stats {
	uint64_t heap_bytes;   /* bytes allocated and not freed */
	uint64_t heap_allocs;  /* allocations not freed */
	uint64_t pages;        /* page_alloc pages not freed */
	uint64_t locks;        /* locks created and not destroyed */
	uint64_t failed;       /* allocations refused (injected) */
};

/* The operations and their context. Messages below `verbosity` are not printed. */
void baremetal_os_init(struct dmar_os *os, enum dmar_log_level verbosity);
void baremetal_get_stats(struct baremetal_stats *st);

/* Statistics are a snapshot taken under the heap lock. Fault injection: the n-th
 * allocation (alloc or page_alloc, from any CPU) from now fails, and every one after it
 * until reset with 0. */
void baremetal_fail_alloc_after(unsigned n);

#endif
