/*
 * iova.h - the IOVA allocator: finds device addresses (IOVAs) for DMA loads in one
 * domain's address space. Pure: no register, no OS call except alloc/free of its own
 * bookkeeping. One iova_space per domain.
 *
 * Model. The space is [first, last] (last inclusive, e.g. 2^aw - 1 for the domain's
 * address width). Everything is counted in 4 KiB pages. An allocation of n pages at a
 * owns the extent [a, a + (n + guard) pages): the n pages handed out plus `guard`
 * unmapped guard pages after them (default 1, 0 allowed), so a device overrunning its
 * buffer faults instead of hitting a neighbour. Extents never overlap one another nor a
 * reservation, and lie wholly inside [first, last]. Nothing is reserved by dmar__iova_init:
 * the caller reserves the interrupt window (IOVA_INTR_START..IOVA_INTR_END) and the
 * RMRRs of the devices in the domain with dmar__iova_reserve.
 *
 * Requests (struct iova_request):
 *   size      bytes, a nonzero multiple of 4 KiB;
 *   align     the first address is a multiple of it: a power of two; 0 or anything below
 *             4 KiB means 4 KiB;
 *   boundary  0, or a power of two >= 4 KiB: [a, a + size) does not cross a multiple of
 *             it (size > boundary is DMAR_EINVAL);
 *   max_addr  inclusive highest address the allocation may use (a + size - 1 <=
 *             max_addr); the guard pages after it may lie above. Clamped to `last`.
 * busdma mapping: FreeBSD's exclusion window (lowaddr, highaddr] maps to max_addr =
 * lowaddr. When highaddr is below the top of the space (a real window with usable
 * addresses above it), max_addr = lowaddr is still correct, only more restrictive: the
 * allocator never returns an address above lowaddr.
 *
 * Size classes. A request of up to 16 pages has its own class; one of 17 to
 * IOVA_CACHE_PAGES pages belongs to one of four classes per power of two (20, 24, 28,
 * 32, 40, ... 256 pages), and its extent is first sought with the class's size (the
 * pages beyond the request are unmapped, like guard pages, and at most a quarter of
 * it), so that a freed range serves any later request of its class. When no such
 * extent fits, the request gets an exact one (n + guard pages) rather than fail.
 *
 * Chunks. A class whose size + guard fits IOVA_CHUNK_MIN_SLOTS times in a window of
 * 2^chunk_shift pages (dmar__iova_init takes a sixteenth of the space, at most 2^14 pages =
 * 64 MiB; dmar__iova_set_chunk_shift changes it, 0 for none) is served from chunks
 * (iova_chunk.h): whole aligned windows taken from the tree as one extent and cut into
 * slots of the class's extent, one bit per slot saying whether it is live. A request
 * of the class with no alignment beyond a page and no boundary below the window takes
 * the slot of its class freed last (kept pending, a few per class) or the lowest free
 * slot of a chunk with room, if that slot is below max_addr; a new chunk comes from the
 * lowest free window. Anything else (larger, aligned, bounded, or below a limit the
 * slot misses) goes to the tree below.
 *
 * Cost. Freeing a slot checks (addr, size) against its chunk's bit (found through a
 * hash of the window and class, iova_dir.h) in O(1): about one bit per live allocation,
 * so that with a million of them the state a free reads stays in the CPU caches. An
 * allocation in the tree is checked against per-page marks (iova_marks.h: its first
 * page, and its last one when of up to IOVA_CACHE_PAGES pages) in O(1). Freed ranges
 * of the tree go to their class's stack (still owned by the allocator, no longer by
 * the caller), and an allocation of the class takes the most recent one in O(1) when
 * it satisfies the request. Otherwise an address-ordered treap of extents, augmented
 * with the largest free gap per subtree, finds the lowest fitting address in O(log n)
 * expected when a gap big enough for the extent + alignment slack exists; a request
 * that fits only in a gap of exactly the right shape then visits the gaps big enough
 * in raw size (more than O(log n) only when many such gaps are misaligned for it).
 * When the tree has no room, the caches are emptied into it and every chunk whose
 * window starts before the end of the highest extent the request could have is given
 * back (its live slots become allocations of the tree, with their slot's extent):
 * O(cached log n + chunks + their live slots log n); then the search repeats, so a
 * request fails only when no placement exists outside the extents of live
 * allocations. A reservation over a
 * chunk gives that chunk back first.
 *
 * Memory: a chunk takes 72 bytes plus a bit per slot (and a byte per slot for rounded
 * classes); 32-byte nodes (one per allocation in the tree, cached range, chunk and
 * reservation) come from slabs allocated with os->alloc and kept until dmar__iova_fini; the
 * marks take about 0.4 bytes per page of the span the tree ever used. A class's stack
 * holds at most 12 ranges plus a quarter of the class's live allocations in the tree.
 * A chunk left empty goes back to the tree unless it is its class's only one with
 * room. A failed call changes no allocation or reservation (it may have given chunks
 * back to the tree); pools it grew before failing stay for later calls (dmar__iova_memory
 * shows them) and are freed by dmar__iova_fini.
 *
 * Concurrency: no lock inside. The caller serialises every call on one space (in the
 * library: the domain's lock); different spaces are independent.
 */
#ifndef DMAR_IOVA_H
#define DMAR_IOVA_H

#include <stddef.h>
#include <stdint.h>

#include "dmar/os.h"
#include "iova_chunk.h"
#include "iova_dir.h"
#include "iova_marks.h"

/* The x86 interrupt address window (MSI writes): never usable as an IOVA. */
#define IOVA_INTR_START 0xfee00000ull
#define IOVA_INTR_END 0xfeefffffull /* inclusive */

#define IOVA_DEFAULT_GUARD 1u
#define IOVA_MAX_GUARD 1024u
/* Sizes (in pages) that have a size class and a cache of freed ranges. */
#define IOVA_CACHE_PAGES 256u
#define IOVA_CLASSES 32u

struct iova_request {
	uint64_t size;     /* bytes, multiple of 4 KiB, nonzero */
	uint64_t align;    /* power of two; < 4 KiB (or 0) means 4 KiB */
	uint64_t boundary; /* 0 or a power of two >= 4 KiB, >= size */
	uint64_t max_addr; /* inclusive; UINT64_MAX: the top of the space */
};

/* Private: one extent (allocation, cached range or reservation) in the tree. Nodes
 * are named by 32-bit indices into slabs (0: none) to keep them at 32 bytes. */
struct iova_node {
	uint64_t start, end;          /* pages, [start, end) */
	uint32_t left, right;         /* children; left links the free list */
	uint32_t gap;                 /* free pages before it (saturated) */
	uint32_t max_gap;             /* largest gap in its subtree (saturated) */
};

/* Private: a pending slot (see iova_chunk.h): freed recently, kept for reuse. */
struct iova_recent {
	struct iova_chunk *chunk;
	uint64_t page;                /* its first page */
};

#define IOVA_RECENT 16u

/* Private: one size class: its chunks with a free slot; and, for the allocations the
 * tree holds, their count and the freed ranges kept for reuse, most recent last. */
struct iova_cache_class {
	struct iova_chunk *avail;     /* chunks with a free slot, most recently filled first */
	struct iova_recent recent[IOVA_RECENT]; /* pending slots: a ring, newest at top - 1 */
	uint32_t top, nrecent;
	uint32_t slots;               /* slots per chunk (0: the class uses no chunk) */
	uint64_t magic;               /* iova_chunk_magic of the class's stride */
	uint64_t *pages;              /* start pages */
	uint32_t count, cap;
	uint64_t live;
};

struct iova_space {
	/* all private; read through the functions below */
	const struct dmar_os *os;
	uint64_t first, end;          /* pages: usable [first, end) */
	uint64_t guard;               /* guard pages per allocation */
	uint32_t root, sentinel;      /* the sentinel: an empty extent at `end` whose gap
					 is the tail of the space */
	uint32_t free_nodes;          /* unused nodes, linked through left */
	uint64_t free_count;          /* how many */
	struct iova_node **slabs;     /* slab k holds nodes k << IOVA_SLAB_SHIFT.. */
	uint32_t slab_count, slab_cap;
	struct iova_marks marks;      /* starts and ends of live allocations in the tree */
	struct iova_dir chunk_dir;    /* (window, class) -> the window's chunk */
	unsigned chunk_shift;         /* windows of 2^chunk_shift pages; 0: no chunks */
	uint64_t chunks;
	uint8_t slack_sink;           /* stands for the slack byte of exact classes: 0 */
	uint64_t live;
	struct iova_cache_class *cache; /* IOVA_CLASSES classes, [0] = 1 page */
	uint64_t cached;
	size_t memory;                /* bytes held from os->alloc */
};

#define IOVA_SLAB_SHIFT 6u

/* Prepares an empty space [first, last] (first 4 KiB-aligned, last + 1 4 KiB-aligned
 * or last = UINT64_MAX; first <= last) with guard_pages (0..IOVA_MAX_GUARD) after each
 * allocation. os must outlive the space. DMAR_EINVAL, DMAR_ENOMEM (then nothing is held
 * and dmar__iova_fini is harmless). */
int dmar__iova_init(struct iova_space *s, const struct dmar_os *os, uint64_t first, uint64_t last,
	      unsigned guard_pages);
/* Sets the size of the windows given to size classes as chunks of slots (see Chunks
 * above): 2^shift pages, shift 6..IOVA_CHUNK_MAX_SHIFT, or 0 for none (every
 * allocation then comes from the tree, lowest address first). dmar__iova_init picks a
 * sixteenth of the space, at most 2^14 pages (64 MiB). Only while the space has no
 * chunk (before the first allocation); DMAR_EINVAL otherwise. */
int dmar__iova_set_chunk_shift(struct iova_space *s, unsigned shift);

/* Frees every byte the space holds; live allocations are forgotten. Safe after a failed
 * init and twice. */
void dmar__iova_fini(struct iova_space *s);

/* Marks [start, start + size) never to be handed out (rounded out to whole pages,
 * clipped to the space; nothing to do outside it). Overlapping or adjacent reservations
 * merge. DMAR_EINVAL (size 0 or wrap-around), DMAR_EBUSY (it overlaps the extent of a
 * live allocation; nothing changed), DMAR_ENOMEM (nothing changed). */
int dmar__iova_reserve(struct iova_space *s, uint64_t start, uint64_t size);

/* Finds an address for req and stores it in *addr. DMAR_EINVAL for an impossible
 * request, DMAR_ENOSPC when no placement exists, DMAR_ENOMEM when node storage cannot
 * be allocated; on failure nothing changed and *addr is untouched. */
int dmar__iova_alloc(struct iova_space *s, const struct iova_request *req, uint64_t *addr);

/* Returns [addr, addr + size) from dmar__iova_alloc (size as requested). DMAR_ENOENT, with
 * nothing changed, when no live allocation starts at addr with that size. */
int dmar__iova_free(struct iova_space *s, uint64_t addr, uint64_t size);

/* The extent of the live allocation of `size` bytes at addr: *extent gets its bytes from
 * addr, rounding to its size class and guard pages included (what no other allocation
 * may use until it is freed). DMAR_ENOENT as for dmar__iova_free. O(log n): for diagnostics
 * and tests. */
int dmar__iova_extent(struct iova_space *s, uint64_t addr, uint64_t size, uint64_t *extent);

/* Live allocations, bytes of memory the space holds from os->alloc, and chunks. */
uint64_t dmar__iova_live(const struct iova_space *s);
size_t dmar__iova_memory(const struct iova_space *s);
uint64_t dmar__iova_chunk_count(const struct iova_space *s);

#endif
