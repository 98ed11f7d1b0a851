/*
 * dmar/os.h - what the embedding kernel provides to the library (the OS layer).
 *
 * The library never calls libc or a kernel directly: every memory allocation, register
 * access, cache flush, clock read, lock and log line goes through one table of function
 * pointers with a context pointer, passed when a dmar_system is created. There is no
 * global state, so several systems (e.g. several simulated machines) can live in one
 * process.
 *
 * Contract for every operation: it may be called from any library call, with library
 * locks held (see Locks below), so none may sleep or call back into the library.
 *
 * Locks the library takes, outermost first; a call never takes an outer lock while it
 * holds an inner one:
 *   1. busdma: first the lock of a device's per-CPU window (its free pages and
 *      deferred unloads; held across the window's map of a new page on a unit in
 *      caching mode and across its flush, i.e. an invalidation and its wait), then the
 *      bus lock and each device's lock (bounce pool, IOVA space). Held around
 *      page_alloc (the bounce pool grows under the bus lock); a device's lock also
 *      around dmar_unmap_deferred and dmar_domain_flush (a deferred unload, and the
 *      flush that gives the deferred ranges back), so it is taken before:
 *   2. a domain's lock (its page table; the table pages it allocates). Held while
 *      the invalidation of its changes is queued, so together with:
 *   3. the unit's lock (context tables, domain ids, invalidation), held across MMIO,
 *      cache_flush, wmb, now_ns and delay_ns while a wait for the hardware lasts (at
 *      most hw.dmar.timeout_us). dmar_unmap waits for its IOTLB invalidation holding
 *      neither (it polls the unit's status word; other CPUs queue meanwhile); the
 *      other waits (context and interrupt entries, flushes of deferred unmaps, the
 *      retry of a failed invalidation) hold them.
 *   4. leaf locks, never held across a wait or an allocation: a unit's fault-register
 *      lock, then the system's fault-ring lock; and a unit's IR lock (its interrupt
 *      remapping table, entries and handles: taken inside the unit lock by the calls
 *      of dmar/ir.h, alone by fault explanations; no other lock is taken under it).
 * So: alloc and page_alloc must not sleep (return NULL rather than wait for memory),
 * delay_ns must busy-wait, and an embedder that takes these locks from interrupt
 * handlers must make them interrupt-safe (e.g. disable interrupts while held). The
 * only calls meant for a hard interrupt handler are dmar_fault_poll_irq and
 * dmar_fault_read (leaf locks only); dmar_fault_poll takes the unit and domain locks
 * and belongs in thread context.
 */
#ifndef DMAR_OS_H
#define DMAR_OS_H

#include <stddef.h>
#include <stdint.h>

#define DMAR_PAGE_SIZE 4096u
#define DMAR_PAGE_SHIFT 12

enum dmar_log_level {
	DMAR_LOG_ERR = 0,
	DMAR_LOG_WARN = 1,
	DMAR_LOG_INFO = 2,
	DMAR_LOG_DEBUG = 3,
};

struct dmar_os_ops {
	/* Small allocation of `size` bytes, any alignment suitable for uint64_t.
	 * Returns NULL on failure (the library then fails the call cleanly). */
	void *(*alloc)(void *ctx, size_t size);
	/* Frees what alloc returned; `size` is the size that was asked for. */
	void (*free)(void *ctx, void *ptr, size_t size);

	/* One zeroed, 4 KiB-aligned page of physical memory usable for remapping tables,
	 * with its physical address in *phys. NULL on failure. */
	void *(*page_alloc)(void *ctx, uint64_t *phys);
	void (*page_free)(void *ctx, void *va, uint64_t phys);

	/* Translation between the kernel's virtual and physical addresses for memory
	 * returned by page_alloc (and, for busdma, for buffers a driver loads).
	 * virt_to_phys returns UINT64_MAX for an address it cannot translate. */
	void *(*phys_to_virt)(void *ctx, uint64_t phys);
	uint64_t (*virt_to_phys)(void *ctx, const void *va);

	/* Register access at a unit's physical register address. */
	uint32_t (*mmio_read32)(void *ctx, uint64_t pa);
	uint64_t (*mmio_read64)(void *ctx, uint64_t pa);
	void (*mmio_write32)(void *ctx, uint64_t pa, uint32_t val);
	void (*mmio_write64)(void *ctx, uint64_t pa, uint64_t val);

	/* Write back CPU caches for [va, va+len) to memory (clflush + fence on x86). Used
	 * for table writes when the unit's page walks do not snoop (ECAP.C=0). */
	void (*cache_flush)(void *ctx, const void *va, size_t len);
	/* Order all earlier memory writes before later ones and before MMIO writes. */
	void (*wmb)(void *ctx);

	/* Monotonic time in nanoseconds, and a short busy or sleeping delay. */
	uint64_t (*now_ns)(void *ctx);
	void (*delay_ns)(void *ctx, uint64_t ns);

	/* Locks (spinlocks: held only briefly, see the order above). lock_create returns
	 * NULL on failure. May be NULL for a single-threaded embedder (then the library
	 * does no locking). */
	void *(*lock_create)(void *ctx);
	void (*lock_acquire)(void *ctx, void *lock);
	void (*lock_release)(void *ctx, void *lock);
	void (*lock_destroy)(void *ctx, void *lock);

	/* One finished line of text (no trailing newline) at a level. */
	void (*log)(void *ctx, enum dmar_log_level level, const char *line);

	/* Optional (NULL: busdma's dmar_dmamem_alloc gives at most 4 KiB): `npages` zeroed
	 * pages contiguous both physically and in the kernel's virtual space, aligned to
	 * `align` bytes (a power of two, at least 4096), the last byte at or below
	 * `max_addr`; physical address in *phys. NULL on failure. contig_free gives them
	 * back (npages as asked). Not used for remapping tables, except an interrupt
	 * remapping table of more than 256 entries (hw.dmar.ir_entries, dmar/ir.h). */
	void *(*contig_alloc)(void *ctx, size_t npages, uint64_t align, uint64_t max_addr,
			      uint64_t *phys);
	void (*contig_free)(void *ctx, void *va, uint64_t phys, size_t npages);

	/* Optional (NULL: every caller counts as CPU 0): the index of the CPU calling, any
	 * number (the library takes it modulo its count of per-CPU structures). It picks
	 * busdma's per-CPU window (hw.dmar.cpu_windows); each is locked, so a thread that
	 * moves to another CPU meanwhile is still correct, only slower. */
	unsigned (*cpu_index)(void *ctx);
};

struct dmar_os {
	const struct dmar_os_ops *ops;
	void *ctx;
};

#endif
