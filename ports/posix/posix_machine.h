/*
 * ports/posix/posix_machine.h - a simulated machine for host programs: physical memory,
 * one or more VT-d units (model/model.h) on it, and the OS layer of include/dmar/os.h.
 *
 * Memory: one arena whose physical addresses (from `phys_base`) differ from its
 * virtual ones, so any phys/virt mix-up shows. Table pages (page_alloc) and DMA buffers
 * come from it. Small allocations are malloc'd. Both are counted, and the n-th call can
 * be made to fail.
 *
 * Coherency (ECAP.C=0): every table page has a CPU view (what the driver writes) and a
 * memory view (what a non-snooping unit reads). cache_flush copies the flushed lines from
 * the CPU view to the memory view. When a unit's page walk reads an entry whose two views
 * differ, the driver wrote it and did not flush it: that is counted
 * (dmar_posix_machine_coherency_errors) and logged as a driver error; the unit sees the memory
 * view. Units with C=1 read the CPU view. Only reads made while no library lock is held
 * are counted: while one is held, another thread of the driver may be between writing
 * an entry and flushing it, which is no error (a real unit may read the old value too).
 * RWBF approximation (CAP.RWBF=1): table writes become visible to that unit only at
 * GCMD.WBF. With C=1 the whole memory view is refreshed from the CPU view at WBF; with
 * C=0 cache_flush'd lines are held back and reach the memory view at the next WBF (or
 * the next context-cache or IOTLB invalidation, which drains the write buffer too);
 * reading a held line is not counted as a coherency error.
 *
 * Time: a virtual clock. delay_ns advances it by the delay; each MMIO access by 50 ns
 * and each now_ns call by 10 ns (so a polling loop always reaches its timeout). Every
 * now_ns and delay_ns call is also one dmar_model_tick() for each unit.
 *
 * Threads: MMIO, DMA and the accounting take a per-machine mutex; lock ops are pthread
 * mutexes. Several machines may live in one process.
 */
#ifndef DMAR_POSIX_MACHINE_H
#define DMAR_POSIX_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmar/os.h"
#include "model.h"

struct dmar_posix_machine_config {
	uint64_t mem_size;   /* bytes of simulated RAM; 0 = 256 MiB */
	uint64_t phys_base;  /* its physical address; 0 = 0x40000000. 4 KiB aligned. */
	bool verbose;        /* echo log lines to stderr (also when env DMAR_LOG=1) */
};

struct posix_machine;

/* cfg may be NULL (defaults). NULL on failure. */
struct posix_machine *dmar_posix_machine_create(const struct dmar_posix_machine_config *cfg);
/* Destroys the units and the arena. Outstanding allocations are logged (and freed). */
void dmar_posix_machine_destroy(struct posix_machine *pm);

/* Adds a unit whose registers decode at reg_base (4 KiB aligned, not overlapping the
 * arena or another unit). cfg NULL = dmar_model_config_default. NULL on failure. The
 * machine owns the model. */
struct model *dmar_posix_machine_add_unit(struct posix_machine *pm, uint64_t reg_base,
				     const struct model_config *cfg);
/* The unit at reg_base, or NULL. */
struct model *dmar_posix_machine_unit(struct posix_machine *pm, uint64_t reg_base);

/* The OS layer (valid until destroy). */
const struct dmar_os *dmar_posix_machine_os(struct posix_machine *pm);

/* Device DMA through the unit at reg_base, under the machine lock: dmar_model_dma(). */
int dmar_posix_machine_dma(struct posix_machine *pm, struct model *unit, uint16_t sid,
		      uint64_t iova, void *buf, size_t len, enum model_dir dir,
		      struct model_fault *fault);

/* An interrupt request (an MSI: a write of `data` to `addr`) from `sid` through the
 * unit, under the machine lock: dmar_model_interrupt(). */
int dmar_posix_machine_interrupt(struct posix_machine *pm, struct model *unit, uint16_t sid,
				 uint64_t addr, uint32_t data, struct model_irq_delivery *out);

/* DMA buffers in the arena (zeroed; align a power of two, at least 4096 is used).
 * NULL when the arena has no room. Neither counted as pages nor subject to fail_nth. */
void *dmar_posix_machine_alloc_dma(struct posix_machine *pm, size_t size, size_t align, uint64_t *pa);
void dmar_posix_machine_free_dma(struct posix_machine *pm, void *va, size_t size);
/* Arena only: NULL / UINT64_MAX for anything else. */
void *dmar_posix_machine_phys_to_virt(struct posix_machine *pm, uint64_t pa);
uint64_t dmar_posix_machine_virt_to_phys(struct posix_machine *pm, const void *va);

/* Accounting: os alloc()s not yet freed, page_alloc()s not yet freed, DMA buffers. */
uint64_t dmar_posix_machine_allocs_outstanding(const struct posix_machine *pm);
uint64_t dmar_posix_machine_pages_outstanding(const struct posix_machine *pm);
uint64_t dmar_posix_machine_dma_outstanding(const struct posix_machine *pm);
/* Arms a failure of the n-th alloc-or-page_alloc call from now (n = 0 disarms); it
 * fails once. dmar_posix_machine_alloc_calls counts those calls since the last arm. */
void dmar_posix_machine_fail_nth(struct posix_machine *pm, unsigned n);
uint64_t dmar_posix_machine_alloc_calls(const struct posix_machine *pm);
/* Whether the armed failure has happened. */
bool dmar_posix_machine_failed(const struct posix_machine *pm);

/* Coherency: reads of unflushed table entries by C=0 units so far. */
uint64_t dmar_posix_machine_coherency_errors(const struct posix_machine *pm);
/* Mistakes of the driver seen by the OS layer: free of an unknown pointer or with the
 * wrong size, page_free of a page not allocated, unrouted MMIO. Each is also logged. */
uint64_t dmar_posix_machine_os_errors(const struct posix_machine *pm);

/* Log lines (each ending in '\n') kept since creation or the last clear. */
const char *dmar_posix_machine_log(struct posix_machine *pm);
void dmar_posix_machine_log_clear(struct posix_machine *pm);

/* The virtual clock in ns. */
uint64_t dmar_posix_machine_now(const struct posix_machine *pm);
/* Interrupts the units raised so far (MODEL_IRQ_FAULT / MODEL_IRQ_INVAL). */
uint64_t dmar_posix_machine_irqs(const struct posix_machine *pm, enum model_irq which);

#endif
