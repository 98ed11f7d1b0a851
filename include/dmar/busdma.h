/*
 * dmar/busdma.h - the DMA API device drivers use (FreeBSD busdma(9) semantics), over
 * DMA remapping or, where remapping is off or cannot help, over bounce buffers.
 *
 * Objects, from the outside in:
 *   dmar_busdma      one per system (or per embedder when hw.dmar.enable=0): the config,
 *                    the bounce-page pool, a lock.
 *   dmar_busdma_dev  one per PCI function. Decides its backend once, when created:
 *                      TRANSLATE  the device gets its own translated domain on the unit
 *                                 that covers it and its own IOVA space; a load maps the
 *                                 buffer's pages at fresh IOVAs, an unload unmaps them and
 *                                 waits for the IOTLB invalidation (strict). The device
 *                                 reaches nothing but the 4 KiB pages the loaded
 *                                 buffers touch (VT-d maps whole pages: the rest of a
 *                                 partly used page is reachable too; a guard page
 *                                 follows each load). No copies, except for a
 *                                 piece whose start breaks the tag's alignment (an IOVA
 *                                 keeps the in-page offset): that piece is copied
 *                                 through a bounce page mapped in its place.
 *                                 A load of one page (not bounced, alignment at most a
 *                                 page) takes a page of the calling CPU's window
 *                                 (hw.dmar.cpu_windows, the OS layer's cpu_index): 2 MiB
 *                                 of the device's IOVA space that CPU writes without
 *                                 any lock shared with other CPUs (dmar_window_* in
 *                                 dmar/dmar.h), so loads on several CPUs scale.
 *                      BOUNCE     used when hw.dmar.enable=0, when no unit covers the
 *                                 device, or for hw.busdma.pciD:B:S:F.bounce=1 (then the
 *                                 device is attached to a PASSTHROUGH domain: TT=2, or an
 *                                 identity table up to the identity limit without ECAP.PT).
 *                                 Segments are physical addresses; the parts of a buffer
 *                                 that break a tag constraint (address inside the tag's
 *                                 exclusion window, misaligned start) are copied through
 *                                 bounce pages at dmar_dmamap_sync().
 *   dmar_dma_tag     the constraints of one kind of transfer (see struct
 *                    dmar_dma_tag_params); made from a device or a parent tag, whose
 *                    constraints it inherits and can only narrow.
 *   dmar_dmamap      one in-flight transfer: load it, sync it, unload it, load again.
 *                    Its segment array is allocated at create, so loads do not allocate.
 *
 * A typical driver:
 *   dmar_busdma_device(bus, addr, NULL, NULL, &dev);
 *   struct dmar_dma_tag_params p; dmar_dma_tag_params_default(&p);
 *   p.lowaddr = 0x0fffffff;             // the device drives 28 address bits
 *   p.maxsize = 64 * 1024; p.nsegments = 16;
 *   dmar_dma_tag_create(dev, NULL, &p, &tag);
 *   dmar_dmamap_create(tag, 0, &map);
 *   dmar_dmamap_load(tag, map, buf, len, DMAR_DMA_NOWAIT);
 *   for i < dmar_dmamap_nsegs(map): program dmar_dmamap_segs(map)[i].addr / .len
 *   dmar_dmamap_sync(tag, map, DMAR_DMASYNC_PREWRITE);   // CPU wrote, device reads
 *   ... device DMA ...
 *   dmar_dmamap_sync(tag, map, DMAR_DMASYNC_POSTWRITE);
 *   dmar_dmamap_unload(tag, map);
 *
 * Errors: every call returns 0 or a negative dmar_error, and a failed call leaves
 * nothing behind (no mapping, no bounce page held, no memory). Bad arguments are
 * DMAR_EINVAL, never an assertion.
 *
 * Concurrency: a dmar_busdma, a device and a tag may be used from several threads at
 * once (create/destroy of tags and maps, loads and unloads on different maps are safe
 * concurrently). One map is used by one thread at a time (load, sync, unload of one map
 * must be serialised by the caller, as in FreeBSD). Destroying an object while another
 * thread still uses it or its children is the caller's error (the library refuses it
 * with DMAR_EBUSY when it can see the children).
 */
#ifndef DMAR_BUSDMA_H
#define DMAR_BUSDMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmar/config.h"
#include "dmar/dmar.h"
#include "dmar/error.h"
#include "dmar/os.h"

struct dmar_busdma;
struct dmar_busdma_dev;
struct dmar_dma_tag;
struct dmar_dmamap;

/* One DMA segment as the device must be programmed with it. */
struct dmar_dma_segment {
	uint64_t addr; /* device address: an IOVA (TRANSLATE) or a physical address */
	uint64_t len;  /* bytes, >= 1 */
};

/* ------------------------------------------------------------- the context ---- */

/* Creates the busdma context. `sys` is the remapping system, or NULL when remapping is
 * off (hw.dmar.enable=0; then every device bounces). cfg is copied (tunables such as
 * hw.busdma.*.bounce and hw.dmar.guard_pages are read from it); os must outlive the
 * context. DMAR_EINVAL, DMAR_ENOMEM. Not concurrent with anything on the same sys. */
int dmar_busdma_create(const struct dmar_os *os, const struct dmar_config *cfg,
		       struct dmar_system *sys, struct dmar_busdma **out);
/* Frees the context and its bounce pool. DMAR_EBUSY while devices exist. */
int dmar_busdma_destroy(struct dmar_busdma *bus);

/* Bounce pool policy. Bounce pages are taken with os->page_alloc when a load needs
 * them and kept in the pool for later loads (freed at dmar_busdma_destroy); the pool
 * never holds more than `max_pages` (default DMAR_BUSDMA_BOUNCE_DEFAULT; a load that
 * needs more pages than the pool can ever hold fails with DMAR_ENOSPC). page_alloc
 * cannot be asked for low memory, so when a tag needs pages below its lowaddr the pool
 * asks page_alloc up to DMAR_BUSDMA_BOUNCE_TRIES times for a page that fits, returns
 * the ones that do not, and fails the load with DMAR_ENOSPC if none fit. Loads with
 * DMAR_DMA_WAITOK wait (polling, bounded by hw.dmar.timeout_us; then DMAR_ETIMEDOUT)
 * for other maps to release pages instead of failing with DMAR_ENOSPC. */
#define DMAR_BUSDMA_BOUNCE_DEFAULT 1024u
#define DMAR_BUSDMA_BOUNCE_TRIES 64u
void dmar_busdma_set_bounce_limit(struct dmar_busdma *bus, unsigned max_pages);

/* Identity limit for bounce devices attached to a PASSTHROUGH domain on a unit without
 * ECAP.PT (the identity table covers [0, limit)). Default 4 GiB. */
void dmar_busdma_set_identity_limit(struct dmar_busdma *bus, uint64_t limit);

struct dmar_busdma_stats {
	uint64_t pool_pages;   /* bounce pages held by the pool */
	uint64_t pool_free;    /* of those, not used by a loaded map */
	uint64_t bounced_loads;
	uint64_t bounce_copies; /* sync copies done, bytes */
};
void dmar_busdma_get_stats(struct dmar_busdma *bus, struct dmar_busdma_stats *st);

/* ------------------------------------------------------------- the device ----- */

enum dmar_busdma_mode {
	DMAR_BUSDMA_TRANSLATE,
	DMAR_BUSDMA_BOUNCE,
};

/* Creates the handle of one PCI function and chooses its backend (see above). For a
 * translated device: creates its own TRANSLATED domain on the covering unit, sets up
 * its IOVA space (the domain's width, without the interrupt window 0xfee00000-0xfeefffff
 * and page 0, hw.dmar.guard_pages guard pages after each load) and attaches the
 * device by every requester id its DMA may carry (dmar_domain_attach_device; set the
 * system's dmar_system_set_upstream for devices behind bridges). A function that
 * shares a requester id with a device already set up on this context (two functions
 * behind one conventional PCI bridge) cannot be isolated from it: it joins that
 * device's domain, IOVA space and mode instead. `secondary_bus`/`ctx` are passed to
 * dmar_unit_for_device (may be NULL).
 * DMAR_EINVAL (dev > 31, fn > 7), DMAR_ENOMEM, DMAR_ENOSPC (no domain id), or the
 * attach's error; on failure nothing is attached. Concurrent calls are safe for
 * different functions; one function must have at most one handle. */
int dmar_busdma_device(struct dmar_busdma *bus, struct dmar_pci_addr addr,
		       dmar_secondary_bus_fn secondary_bus, void *ctx,
		       struct dmar_busdma_dev **out);
/* Deferred invalidation (hw.dmar.strict=0, or this call with strict = false, before
 * the device's first load): an unload clears the device's mappings and returns without
 * waiting for the IOTLB invalidation; the IOVA range stays out of use until a flush
 * has completed, which happens after hw.dmar.defer_max deferred unloads of the
 * device's IOVA space (of a CPU's window, for one-page loads: each window flushes its
 * own with one invalidation), when dmar_busdma_tick finds the oldest older than
 * hw.dmar.defer_us, when a load finds no IOVA room (it flushes and tries again), on
 * dmar_busdma_flush, and when the device is destroyed. Until that flush the device may
 * still reach the old pages of a buffer it had loaded (through the unit's IOTLB); it
 * never reaches the pages of any other buffer and never through an IOVA handed out
 * again. Loads with DMAR_DMA_STRICT, and maps that used bounce pages, unload strictly. */
void dmar_busdma_device_set_strict(struct dmar_busdma_dev *dev, bool strict);
/* Flushes every device's deferred unloads (waits). 0 or the first hardware error. */
int dmar_busdma_flush(struct dmar_busdma *bus);
/* Flushes the devices whose oldest deferred unload is older than hw.dmar.defer_us: for
 * a periodic timer of the embedder's (any thread context; it waits for the hardware). */
int dmar_busdma_tick(struct dmar_busdma *bus);

/* Detaches the device (its DMA then faults), frees its domain and IOVA space (when no
 * device sharing them is left). DMAR_EBUSY while tags of the device exist. */
int dmar_busdma_device_destroy(struct dmar_busdma_dev *dev);

enum dmar_busdma_mode dmar_busdma_device_mode(const struct dmar_busdma_dev *dev);
/* The device's domain: its own translated domain, its PASSTHROUGH domain, or NULL when
 * no unit covers it (or remapping is off). For tests and diagnostics. */
struct dmar_domain *dmar_busdma_device_domain(struct dmar_busdma_dev *dev);
/* PCI source id (bus << 8 | dev << 3 | fn). */
uint16_t dmar_busdma_device_sid(const struct dmar_busdma_dev *dev);

/* ---------------------------------------------------------------- tags -------- */

/* FreeBSD's tag constraints. A device address `a` is usable when a <= lowaddr or
 * a > highaddr (the window (lowaddr, highaddr] is excluded); a device that drives 32
 * address bits uses lowaddr = 0xffffffff, highaddr = UINT64_MAX. */
struct dmar_dma_tag_params {
	uint64_t alignment; /* each segment starts at a multiple: power of two, 0 or 1: none */
	uint64_t boundary;  /* 0, or a power of two >= 4 KiB no segment crosses */
	uint64_t lowaddr;   /* exclusion window (lowaddr, highaddr], see above */
	uint64_t highaddr;
	uint64_t maxsize;   /* bytes one load may cover, >= 1 */
	unsigned nsegments; /* segments one load may produce, 1..DMAR_DMA_MAX_SEGMENTS */
	uint64_t maxsegsz;  /* bytes one segment may cover, >= 1 */
	unsigned flags;     /* 0 (reserved) */
};
#define DMAR_DMA_MAX_SEGMENTS 65536u

/* Fills p with "no constraint": alignment 1, boundary 0, lowaddr = highaddr =
 * UINT64_MAX, maxsize = maxsegsz = 1 GiB, nsegments = 1. */
void dmar_dma_tag_params_default(struct dmar_dma_tag_params *p);

/* Creates a tag for `dev`, or a child of `parent` (then dev may be NULL; if both are
 * given, they must agree). A child gets the stricter value of every constraint: the
 * larger alignment, the smaller nonzero boundary, lowaddr, maxsize, nsegments and
 * maxsegsz, the larger highaddr. DMAR_EINVAL for inconsistent params (alignment or
 * boundary not a power of two, boundary below 4 KiB, lowaddr > highaddr, zero sizes,
 * nsegments out of range), DMAR_ENOMEM. */
int dmar_dma_tag_create(struct dmar_busdma_dev *dev, struct dmar_dma_tag *parent,
			const struct dmar_dma_tag_params *p, struct dmar_dma_tag **out);
/* DMAR_EBUSY while maps or child tags of the tag exist (nothing changes). */
int dmar_dma_tag_destroy(struct dmar_dma_tag *tag);
/* The effective (inherited and narrowed) constraints. */
void dmar_dma_tag_get_params(const struct dmar_dma_tag *tag, struct dmar_dma_tag_params *p);

/* ---------------------------------------------------------------- maps -------- */

/* Load flags. */
#define DMAR_DMA_NOWAIT 0u    /* fail with DMAR_ENOSPC when bounce pages are short */
#define DMAR_DMA_WAITOK 1u    /* wait for bounce pages (bounded, see the pool policy) */
#define DMAR_DMA_NOWRITE 2u   /* TRANSLATE: the device may only read the buffer */
#define DMAR_DMA_STRICT 4u    /* TRANSLATE: this load's unload waits for its invalidation
			       * even when the device defers (hw.dmar.strict=0) */

/* Creates an unloaded map with room for the tag's nsegments segments. flags: 0.
 * DMAR_EINVAL, DMAR_ENOMEM. */
int dmar_dmamap_create(struct dmar_dma_tag *tag, unsigned flags, struct dmar_dmamap **out);
/* DMAR_EBUSY while the map is loaded. */
int dmar_dmamap_destroy(struct dmar_dma_tag *tag, struct dmar_dmamap *map);

/* DMA-able memory: allocates maxsize bytes, zeroed, and a map for it; load it with
 * dmar_dmamap_load. One page comes from page_alloc (for a bounced device, one below
 * lowaddr: same policy as the bounce pool, DMAR_ENOSPC when none could be had). More
 * than 4 KiB come from the OS layer's contig_alloc, aligned to the tag's alignment (at
 * least a page) and, for a bounced device, below lowaddr and the device's reach:
 * contiguous for the CPU and, translated or not, one range for the device.
 * DMAR_ENOTSUP when maxsize > 4 KiB and the OS layer has no contig_alloc, DMAR_ENOMEM. */
int dmar_dmamem_alloc(struct dmar_dma_tag *tag, void **vaddr, unsigned flags,
		      struct dmar_dmamap **mapp);
/* Frees memory and map from dmar_dmamem_alloc (the map must be unloaded). */
int dmar_dmamem_free(struct dmar_dma_tag *tag, void *vaddr, struct dmar_dmamap *map);

/* Loads. Each turns a buffer into the map's segment list, obeying every constraint of
 * the tag, or fails and maps nothing:
 *   DMAR_EINVAL   bad arguments, a map already loaded, a virtual buffer the OS layer
 *                 cannot translate (virt_to_phys gives UINT64_MAX: e.g. malloc'd host
 *                 memory), length 0 or > maxsize, or, for an alignment above 4 KiB,
 *                 a segment that would start somewhere not aligned as the tag asks
 *                 (BOUNCE: a later page of a discontiguous buffer; TRANSLATE: a buffer
 *                 starting inside a page and going on past it; bounce pages are single
 *                 4 KiB pages, so they cannot fix this);
 *   DMAR_ERANGE   the buffer needs more than nsegments segments;
 *   DMAR_ENOSPC   no IOVA range satisfies the tag / not enough bounce pages (NOWAIT);
 *   DMAR_ETIMEDOUT  WAITOK and no bounce pages were freed in time;
 *   DMAR_ENOMEM, or the remapping core's error.
 * TRANSLATE: the whole buffer is mapped at one contiguous IOVA range (so physically
 * discontiguous pages make one segment when maxsegsz and boundary allow), read/write
 * unless DMAR_DMA_NOWRITE. */
int dmar_dmamap_load(struct dmar_dma_tag *tag, struct dmar_dmamap *map, const void *buf,
		     uint64_t len, unsigned flags);
/* A physically contiguous range [paddr, paddr + len). */
int dmar_dmamap_load_phys(struct dmar_dma_tag *tag, struct dmar_dmamap *map, uint64_t paddr,
			  uint64_t len, unsigned flags);
/* `len` bytes starting `offset` bytes into the list of 4 KiB-aligned physical pages
 * pages[0..npages) (offset < 4 KiB; the bytes must lie within the pages). */
int dmar_dmamap_load_pages(struct dmar_dma_tag *tag, struct dmar_dmamap *map,
			   const uint64_t *pages, unsigned npages, uint64_t offset, uint64_t len,
			   unsigned flags);
/* A scatter-gather list of physical (addr, len) pieces, transferred in order. */
int dmar_dmamap_load_sg(struct dmar_dma_tag *tag, struct dmar_dmamap *map,
			const struct dmar_dma_segment *sg, unsigned nsg, unsigned flags);

/* The loaded segments (valid until unload); count 0 when unloaded. */
const struct dmar_dma_segment *dmar_dmamap_segs(const struct dmar_dmamap *map);
unsigned dmar_dmamap_nsegs(const struct dmar_dmamap *map);
/* Copies at most `max` segments to `out` and returns how many the map has. */
unsigned dmar_dmamap_copy_segs(const struct dmar_dmamap *map, struct dmar_dma_segment *out,
			       unsigned max);
bool dmar_dmamap_is_bounced(const struct dmar_dmamap *map);

/* Sync operations (may be or'ed). PRE before the device accesses the memory, POST after.
 * READ: the device writes memory (the CPU reads the result); WRITE: the device reads
 * memory the CPU wrote. Bounced maps copy: PREWRITE buffer -> bounce pages, POSTREAD
 * bounce pages -> buffer. Translated maps copy nothing (a write barrier only) unless a
 * misaligned piece was bounced (dmar_dmamap_is_bounced()). */
#define DMAR_DMASYNC_PREREAD 1u
#define DMAR_DMASYNC_POSTREAD 2u
#define DMAR_DMASYNC_PREWRITE 4u
#define DMAR_DMASYNC_POSTWRITE 8u
/* DMAR_EINVAL for unknown bits or an unloaded map. */
int dmar_dmamap_sync(struct dmar_dma_tag *tag, struct dmar_dmamap *map, unsigned op);

/* Unmaps (TRANSLATE: unmaps and waits for the IOTLB invalidation before returning),
 * releases bounce pages and empties the segment list. Unloading an unloaded map is a
 * no-op. If the core fails to unmap (e.g. DMAR_ETIMEDOUT) the map stays loaded and
 * the call may be retried. (A load that fails and then cannot undo its own mapping
 * keeps its IOVA range and bounce pages out of use for good rather than reuse them.) */
int dmar_dmamap_unload(struct dmar_dma_tag *tag, struct dmar_dmamap *map);

#endif
