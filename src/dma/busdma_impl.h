/*
 * busdma_impl.h - private structures shared by busdma.c (API, tags, maps, segment
 * lists), busdma_dmar.c (the translating backend) and bounce.c (the bounce backend).
 */
#ifndef DMAR_BUSDMA_IMPL_H
#define DMAR_BUSDMA_IMPL_H

#include "dmar/busdma.h"
#include "iova.h"

#define BUSDMA_PAGE_MASK ((uint64_t)DMAR_PAGE_SIZE - 1)

struct bounce_page {
	struct bounce_page *next;
	void *va;
	uint64_t pa;
};

struct dmar_busdma {
	const struct dmar_os *os;
	struct dmar_config cfg;
	struct dmar_system *sys; /* NULL: remapping off */
	void *lock;              /* guards everything below; NULL without lock ops */
	unsigned ndevs;
	struct busdma_space *spaces;
	unsigned flush_gen;
	struct bounce_page *pool_free;
	unsigned pool_pages, pool_nfree, pool_max;
	uint64_t identity_limit;
	uint64_t bounced_loads, bounce_copies;
};

/* The domain and IOVA space of one device, or of every device that shares a requester
 * id with it (the unit cannot tell those apart: they share both). */
struct busdma_space {
	struct busdma_space *next; /* the bus's list (bus lock) */
	struct dmar_domain *dom;   /* translated domain, or pass-through domain */
	enum dmar_busdma_mode mode;
	uint64_t phys_limit;       /* BOUNCE: highest physical address the devices reach */
	unsigned refs;             /* devices using it (bus lock) */
	void *lock;                /* TRANSLATE: guards iova and the deferred list */
	struct iova_space iova;    /* TRANSLATE only */
	/* Deferred unloads: IOVA ranges kept out of use until the domain's flush. */
	struct busdma_pending { uint64_t iova, size; } *pending;
	unsigned npending, pending_cap;
	/* One-page ranges whose deferred unload a flush has completed, still allocated in
	 * `iova` (with their guard pages): the next one-page loads take them from here
	 * (pending_cap entries at most; given back to `iova` when it runs out of room). */
	uint64_t *ready;
	unsigned nready;
	uint64_t oldest_ns;        /* when the first of them was unloaded */
	unsigned flushed_gen;      /* bus lock: the last flush_spaces call that took it */
	/* TRANSLATE: per-CPU windows (busdma_cpu.c), ncpus slots, each NULL until its CPU
	 * first loads; cpus_pending counts the slots holding deferred unloads (atomic). */
	struct busdma_cpu **cpus;
	unsigned ncpus;
	unsigned cpus_pending;
};

struct dmar_busdma_dev {
	struct dmar_busdma *bus;
	struct dmar_pci_addr addr;
	uint16_t sid;
	enum dmar_busdma_mode mode;
	struct dmar_unit *unit;    /* covering unit or NULL */
	struct busdma_space *space; /* NULL: no unit (bounce without remapping) */
	uint64_t phys_limit;       /* BOUNCE: highest physical address the device reaches */
	unsigned ntags;
	bool strict;               /* unloads wait for their invalidation */
};

struct dmar_dma_tag {
	struct dmar_busdma_dev *dev;
	struct dmar_dma_tag *parent;
	struct dmar_dma_tag_params p; /* effective */
	unsigned nmaps, nchildren;    /* under the bus lock */
};

/* A bounced piece of a loaded map: `len` bytes at offset 0 of `page` stand for the
 * buffer bytes at `orig`. */
struct busdma_bounce {
	struct bounce_page *page;
	uint8_t *orig;
	uint64_t len;
};

struct dmar_dmamap {
	struct dmar_dma_tag *tag;
	struct dmar_dma_segment *segs;
	unsigned nsegs, maxsegs;
	bool loaded;
	uint64_t iova, iova_size;         /* TRANSLATE: the IOVA range of the load */
	struct busdma_cpu *cpu;           /* loaded in this per-CPU window, at cpu_page */
	unsigned cpu_page;
	bool strict;                      /* loaded with DMAR_DMA_STRICT */
	struct busdma_bounce *bounce;     /* BOUNCE: allocated on the first bounced load */
	unsigned nbounce, bounce_cap;
	void *mem_va;                     /* dmar_dmamem_alloc's memory */
	uint64_t mem_pa;
	uint64_t mem_pages;               /* > 1: from contig_alloc */
};

/* ------------------------------------------------------------ load sources --- */

enum busdma_src_kind { BUSDMA_SRC_VIRT, BUSDMA_SRC_PHYS, BUSDMA_SRC_PAGES, BUSDMA_SRC_SG };

/* What a load covers, walked as pieces that never cross a 4 KiB physical page. */
struct busdma_src {
	const struct dmar_os *os;
	enum busdma_src_kind kind;
	const uint8_t *va;
	uint64_t pa;
	const uint64_t *pages;
	unsigned npages;
	const struct dmar_dma_segment *sg;
	unsigned nsg;
	uint64_t offset, len;
	/* cursor */
	uint64_t done;
	unsigned idx;
};

struct busdma_piece {
	uint64_t pa, len;
	const uint8_t *va; /* NULL when the load gave no virtual address */
};

void dmar__busdma_src_rewind(struct busdma_src *s);
/* 1 with the next piece, 0 at the end, DMAR_EINVAL for untranslatable memory. */
int dmar__busdma_src_next(struct busdma_src *s, struct busdma_piece *p);

/* Appends [addr, addr + len) to the map's segments, merging with the last segment
 * when contiguous, splitting at maxsegsz and boundary. DMAR_ERANGE past nsegments,
 * DMAR_EINVAL for a segment start the tag's alignment forbids. */
int dmar__busdma_seg_add(struct dmar_dmamap *map, uint64_t addr, uint64_t len);

/* A lock from the OS layer (NULL without lock ops; *ok false when creation failed). */
void *dmar__busdma_lock_new(const struct dmar_os *os, bool *ok);
void dmar__busdma_lock_delete(const struct dmar_os *os, void *lock);
/* Take and drop such a lock (nothing for NULL). Inline: every load and unload takes
 * the space lock. */
static inline void dmar__busdma_lock(struct dmar_busdma *bus, void *lock)
{
	if (lock)
		bus->os->ops->lock_acquire(bus->os->ctx, lock);
}
static inline void dmar__busdma_unlock(struct dmar_busdma *bus, void *lock)
{
	if (lock)
		bus->os->ops->lock_release(bus->os->ctx, lock);
}

/* True when [pa, pa + len) is reachable by the device under the tag's window. */
bool dmar__busdma_addr_ok(const struct dmar_dma_tag *tag, uint64_t pa, uint64_t len);

/* busdma_dmar.c */
int dmar__busdma_dmar_device_init(struct dmar_busdma_dev *dev, bool bounce);
void dmar__busdma_dmar_device_fini(struct dmar_busdma_dev *dev);
int dmar__busdma_dmar_load(struct dmar_dmamap *map, struct busdma_src *src, unsigned flags);
int dmar__busdma_dmar_unload(struct dmar_dmamap *map);
/* Completes the space's deferred unloads (its lock taken here, held across the core's
 * flush) and gives their IOVA ranges back; only when the oldest was unloaded at or
 * before `due` (UINT64_MAX: always). */
int dmar__busdma_space_flush(struct dmar_busdma *bus, struct busdma_space *sp, uint64_t due);
/* Drops a reference to a space; the last one unlinks and frees it. */
void dmar__busdma_space_put(struct dmar_busdma *bus, struct busdma_space *sp);

/* busdma_cpu.c: one-page loads in per-CPU windows (dmar/dmar.h's dmar_window), which
 * take no lock shared between CPUs. Slot locks come before the space lock and the
 * domain's.
 * Sets the space's slots up (ncpus from hw.dmar.cpu_windows; none without room). */
int dmar__busdma_cpu_init(struct dmar_busdma *bus, struct busdma_space *sp);
/* Unmaps and destroys every window and frees the slots (the device is detached). */
void dmar__busdma_cpu_fini(struct dmar_busdma *bus, struct busdma_space *sp);
/* A load of the one page holding the source's single piece (not bounced, alignment at
 * most a page) in the calling CPU's window: 0 loaded, 1 not taken (no window, none
 * under the tag's lowaddr, or the window is full: load as usual), or an error. */
int dmar__busdma_cpu_load(struct dmar_dmamap *map, struct busdma_src *src, unsigned prot);
/* Unloads a map loaded by dmar__busdma_cpu_load: strict (invalidates and waits; on
 * error the map stays loaded, to be unloaded again) or deferred (the page stays out of
 * use until its window's flush). */
int dmar__busdma_cpu_unload(struct dmar_dmamap *map, bool strict);
/* Flushes the windows whose oldest deferred unload happened at or before `due`. */
int dmar__busdma_cpu_flush(struct dmar_busdma *bus, struct busdma_space *sp, uint64_t due);

/* bounce.c */
int dmar__bounce_load(struct dmar_dmamap *map, struct busdma_src *src, unsigned flags);
/* Takes bounce pages for the pieces of src that need one (map->nbounce of them, in
 * piece order); 0 with map->nbounce = 0 when none does. Undo with dmar__bounce_unload. */
int dmar__bounce_reserve(struct dmar_dmamap *map, struct busdma_src *src, unsigned flags);
/* False when no piece can need a bounce page under the tag (dmar__bounce_reserve then
 * has nothing to walk). */
static inline bool dmar__bounce_possible(const struct dmar_dma_tag *tag)
{
	if (tag->p.alignment > 1)
		return true;
	if (tag->dev->mode == DMAR_BUSDMA_TRANSLATE)
		return false;
	return tag->dev->phys_limit != UINT64_MAX || tag->p.lowaddr < tag->p.highaddr;
}
/* The address a piece is transferred at: its own, or its bounce page's. `k` counts the
 * bounced pieces seen so far in a walk (start at 0). */
uint64_t dmar__bounce_piece_addr(const struct dmar_dmamap *map, const struct busdma_piece *p,
			   unsigned *k);
void dmar__bounce_unload(struct dmar_dmamap *map);
void dmar__bounce_sync(struct dmar_dmamap *map, unsigned op);
/* One page the device can reach under the tag, from page_alloc (not the pool). */
int dmar__bounce_alloc_fitting_page(struct dmar_dma_tag *tag, void **va, uint64_t *pa);
void dmar__bounce_pool_fini(struct dmar_busdma *bus);

#endif
