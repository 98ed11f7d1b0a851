/*
 * fixture.h - what the kernel's driver tests share: a dmar_system built from the
 * firmware's DMAR table (fixture_up) and torn down with a leak check (fixture_down),
 * DMA buffers, byte patterns and fault-record checks.
 */
#ifndef KERNEL_FIXTURE_H
#define KERNEL_FIXTURE_H

#include "dmar/acpi.h"
#include "dmar/dmar.h"
#include "dmar/fault.h"
#include "kenv.h"
#include "ktest.h"

#define PAGE 4096ull
#define SZ_2M 0x200000ull
#define SZ_1G 0x40000000ull
#define SZ_4G 0x100000000ull
#define XFER 3000u  /* bytes per edu transfer: below its 4096-byte limit */

struct fixture {
	struct dmar_acpi_table table;
	struct dmar_system *sys;
	struct dmar_unit *unit;
	struct dmar_unit_info info;
	struct baremetal_stats before;
	struct dmar_domain *dom[2]; /* destroyed by fixture_down */
	uint16_t sid[2];            /* attached to dom[i] when nonzero */
	uint64_t pages[16];  /* DMA buffers to give back */
	uint64_t npages[16];
	unsigned nbuf;
};

#define TRY(expr)                                                                        \
	do {                                                                             \
		int rc_ = (expr);                                                        \
		if (rc_ != 0) {                                                          \
			ktest_fail(t, __FILE__, __LINE__, "%s returned %d (%s)", #expr, rc_, \
				   dmar_strerror(rc_));                                  \
			goto out;                                                        \
		}                                                                        \
	} while (0)
#define ENSURE(cond)                                                                \
	do {                                                                        \
		if (!(cond)) {                                                      \
			ktest_fail(t, __FILE__, __LINE__, "ENSURE(%s)", #cond);     \
			goto out;                                                   \
		}                                                                   \
	} while (0)

static inline uint8_t *va(uint64_t pa) { return (uint8_t *)(uintptr_t)pa; }

/* Parses the table, creates the system and finds the unit covering the first edu (or
 * unit 0 when nedu is 0). Returns -1 (after failing or skipping the test) when the
 * machine lacks the table or nedu edu devices. */
int fixture_up(struct ktest *t, struct fixture *f, unsigned nedu);
/* Detaches and destroys the fixture's domains and the system, frees the buffers and
 * checks that the OS layer got every byte, page and lock back. */
void fixture_down(struct ktest *t, struct fixture *f);
/* Creates domain slot i and attaches `e` to it (when not NULL). */
int fixture_domain(struct fixture *f, unsigned i, const struct dmar_domain_params *p,
		   struct edu *e, struct dmar_domain **out);
/* A translated domain of kernel.domain_width bits (when given: DMAR_EINVAL, with a
 * diagnostic, if its table lacks the levels that width needs). */
int translated_domain(struct fixture *f, unsigned i, struct edu *e, struct dmar_domain **out);
/* Page-table levels of a width: 3 up to 39 bits, 4 up to 48, else 5. */
unsigned domain_levels(unsigned width);

/* Whether the configuration offers `feature`: kernel.expect's answer when the command
 * line has one, else `reported` (the driver's). A report that contradicts kernel.expect
 * fails the test, so a misreport cannot turn a test into a skip. */
bool unit_has(struct ktest *t, enum kenv_feature feature, bool reported);

/* DMA buffers (n pages, aligned, filled), given back by fixture_down; 0 when out of
 * memory. buffer() stays below the edu's default 28-bit dma_mask; buffer_in() takes RAM
 * ranges starting at or above `min`. */
uint64_t buffer(struct fixture *f, uint64_t n, uint64_t align, uint8_t fill);
uint64_t buffer_in(struct fixture *f, uint64_t n, uint64_t align, uint64_t min, uint8_t fill);
void fill_pattern(uint64_t pa, size_t len, unsigned seed);
bool all_bytes(uint64_t pa, size_t len, uint8_t v);

/* Drains the unit's faults, prints them, returns how many; the first from `sid` goes to
 * *rec (found tells whether there was one). */
int drain_faults(struct fixture *f, uint16_t sid, struct dmar_fault_record *rec, bool *found);
/* Whether the PCI topology puts an aliasing bridge above both (then the unit sees one
 * requester id for the two and cannot isolate them). */
bool edus_share_requester_id(const struct edu *a, const struct edu *b);
/* Whether `seen` is one of the requester ids of the function `device`. */
bool fixture_sid_matches(struct fixture *f, uint16_t device, uint16_t seen);
/* Exactly the fault a blocked DMA of `sid` at `addr` must have recorded (with the id the
 * unit sees for that function: its own, or a bridge's alias). */
void expect_fault(struct ktest *t, struct fixture *f, uint16_t sid, uint64_t addr, bool is_read);
void expect_no_fault(struct ktest *t, struct fixture *f);

struct dmar_dmamap;
/* The edu moves its buffer from offset `off` on over every segment of a loaded map, in
 * order: to the device (to_device: reads memory) or from it. 0, or DMAR_ETIMEDOUT when a
 * transfer does not complete. */
int edu_dma_map(struct edu *e, const struct dmar_dmamap *map, uint32_t off, bool to_device);

#endif
