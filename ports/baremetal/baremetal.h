/*
 * baremetal.h - the OS layer (dmar/os.h) for the bare-metal test kernel: one CPU,
 * identity-mapped memory, polled hardware.
 *
 * memory: a size-class heap over the kernel's physical page allocator (pmem), poisoned
 *   on alloc and free so a use of stale or uninitialised memory shows up;
 * pages: zeroed pmem pages; phys <-> virt is the identity;
 * MMIO: volatile 32/64-bit accesses; cache_flush: clflush per line + mfence;
 * time: the kernel's TSC clock; locks: spinlocks that stop the run if a lock is taken
 *   twice (on one CPU that is a deadlock, i.e. a library bug);
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

/* Fault injection: the n-th allocation (alloc or page_alloc) from now fails, and every
 * one after it until reset with 0. */
void baremetal_fail_alloc_after(unsigned n);

#endif
