/*
 * dmar/dmar.h - the DMA-remapping driver: system, units, domains, attach, map/unmap.
 *
 * A dmar_system is made from the parsed ACPI DMAR table (or units added by hand), the OS
 * layer and a config. It owns one dmar_unit per remapping unit (DRHD). A domain is one
 * I/O address space on one unit; devices (PCI source ids) attached to it see exactly what
 * is mapped in it. Mapping and unmapping are strict: when dmar_unmap() returns, the unit
 * can no longer use the old translation (the IOTLB was invalidated and the invalidation
 * completed).
 *
 * Concurrency: calls on different domains may run concurrently; calls on one domain are
 * serialised by the driver (a lock per domain); attach/detach and domain creation take
 * the unit's lock. dmar_system_create/destroy must not run concurrently with anything
 * else on that system.
 * Failure: every call returns 0 or a negative dmar_error and leaves no half-done state.
 */
#ifndef DMAR_DMAR_H
#define DMAR_DMAR_H

#include <stdbool.h>
#include <stdint.h>

#include "dmar/acpi.h"
#include "dmar/config.h"
#include "dmar/error.h"
#include "dmar/fault.h"
#include "dmar/os.h"
#include "dmar/prot.h"

struct dmar_acpi_table;
struct dmar_system;
struct dmar_unit;
struct dmar_domain;

/* Creates a system: one unit per DRHD of `table` (may be NULL: add units with
 * dmar_system_add_unit). Each unit is brought up (root table set, caches invalidated,
 * queued invalidation enabled when chosen) but translation is enabled only when the
 * first device is attached or on dmar_unit_enable_translation(). A DRHD whose register
 * base is 0 is skipped with a warning. Fails with the first unit's error and frees all.
 * cfg->enable is the embedder's switch: with hw.dmar.enable=0 it should not create a
 * system at all (busdma then bounces for every device, and ignores a system if given). */
int dmar_system_create(const struct dmar_os *os, const struct dmar_config *cfg,
		       const struct dmar_acpi_table *table, struct dmar_system **out);

/* Disables interrupt remapping, translation and queued invalidation on every unit,
 * frees every domain, IRT, table page and record. Domains and interrupt handles must
 * not be used afterwards. */
void dmar_system_destroy(struct dmar_system *sys);

/* Adds and brings up a unit at `reg_base` on PCI segment `segment`. A unit whose
 * capabilities cannot be used (no SAGAW the driver supports, MGAW too small, register
 * values all ones) is refused with DMAR_ENOTSUP and a log line saying why. If firmware
 * left translation enabled, the unit is first disabled (logged), then set up anew. */
int dmar_system_add_unit(struct dmar_system *sys, uint16_t segment, uint64_t reg_base,
			 struct dmar_unit **out);

const struct dmar_config *dmar_system_config(const struct dmar_system *sys);
unsigned dmar_unit_count(const struct dmar_system *sys);
struct dmar_unit *dmar_unit_at(struct dmar_system *sys, unsigned index);

/* How the library learns the PCI topology below bridges: the callback returns a
 * bridge's secondary bus number (see dmar/acpi.h). Scope paths through bridges are
 * resolved with it; without one only devices named directly on a scope's start bus
 * match. Set it before attaching devices behind bridges. */
typedef dmar_acpi_secondary_bus_fn dmar_secondary_bus_fn;
void dmar_system_set_topology(struct dmar_system *sys, dmar_secondary_bus_fn fn, void *ctx);

/* Requester ids (PCI Express Base spec 2.3; PCIe-to-PCI/PCI-X Bridge spec 2.3): DMA from
 * a function below a bridge may reach the unit with another id than its own. The
 * library walks up from the function, asking the embedder for the bridge above each
 * step, as Linux's pci_for_each_dma_alias and FreeBSD's iommu_get_requester do. */
enum dmar_pci_bridge_kind {
	DMAR_PCI_BRIDGE_PCIE_PORT,    /* PCIe root or switch port: ids pass unchanged */
	DMAR_PCI_BRIDGE_PCIE_TO_PCI,  /* PCIe-to-PCI/PCI-X bridge (PCIe port type 7): DMA
					 from below carries (secondary bus, 00.0) */
	DMAR_PCI_BRIDGE_CONVENTIONAL, /* a bridge without a PCIe capability, or a
					 PCI/PCI-X-to-PCIe bridge: its own id */
};
struct dmar_pci_bridge {
	uint8_t bus, dev, fn;         /* the bridge itself */
	uint8_t secondary_bus;
	enum dmar_pci_bridge_kind kind;
};
/* Fills *up with the bridge directly above segment/bus/dev/fn and returns 1, or returns
 * 0 when the function sits on a root bus (or is unknown). */
typedef int (*dmar_pci_upstream_fn)(void *ctx, uint16_t segment, uint8_t bus, uint8_t dev,
				    uint8_t fn, struct dmar_pci_bridge *up);
/* Sets the walk's callback (NULL: no bridges, every device uses its own id). Not
 * concurrent with attaches. */
void dmar_system_set_upstream(struct dmar_system *sys, dmar_pci_upstream_fn fn, void *ctx);
/* Declares that DMA from `sid` may also arrive as `alias` on that segment (a quirk:
 * phantom functions, a device that DMAs with a neighbour's id). DMAR_ENOSPC beyond
 * DMAR_MAX_DMA_ALIASES declarations. Not concurrent with attaches. */
#define DMAR_MAX_DMA_ALIASES 32
int dmar_system_add_dma_alias(struct dmar_system *sys, uint16_t segment, uint16_t sid,
			      uint16_t alias);
/* The requester ids DMA from the function may carry at the unit: its own first, then
 * the declared quirk aliases, then one per aliasing bridge on the way up; the last one
 * is the id the unit sees for DMA that crossed every bridge. Writes up to `max` to out
 * (may be NULL with max 0) and returns how many there are (at most DMAR_MAX_REQUESTER_IDS). */
#define DMAR_MAX_REQUESTER_IDS 8
unsigned dmar_device_requester_ids(struct dmar_system *sys, uint16_t segment, uint8_t bus,
				   uint8_t dev, uint8_t fn, uint16_t *out, unsigned max);

/* The unit whose DRHD scope covers the device (explicit scope first, then the segment's
 * INCLUDE_PCI_ALL unit), or NULL. `secondary_bus` may be NULL: the system's topology
 * callback is used then. Systems without a table: the first unit of the segment. */
struct dmar_unit *dmar_unit_for_device(struct dmar_system *sys, uint16_t segment,
				       uint8_t bus, uint8_t dev, uint8_t fn,
				       dmar_secondary_bus_fn secondary_bus, void *ctx);

struct dmar_unit_info {
	unsigned index;
	uint16_t segment;
	uint64_t reg_base;
	uint32_t ver;
	uint64_t cap, ecap;
	unsigned max_width;      /* widest supported guest address width (bits) */
	unsigned domains;        /* CAP.ND domains */
	unsigned nfr;            /* fault recording registers */
	bool qi;                 /* queued invalidation in use */
	bool translating;        /* GSTS.TES */
	bool coherent;           /* ECAP.C */
	bool caching_mode;       /* CAP.CM */
	bool passthrough;        /* ECAP.PT */
	unsigned superpages;     /* bit0: 2 MiB, bit1: 1 GiB */
};
void dmar_unit_get_info(const struct dmar_unit *unit, struct dmar_unit_info *info);

/* Programs the unit's fault event (an MSI: FEDATA = data, FEADDR/FEUADDR = addr) and
 * unmasks it (FECTL.IM = 0), or masks it again when enable is false. The embedder's
 * interrupt handler then calls dmar_fault_poll(), which clears what raised it. No wait;
 * DMAR_EINVAL for an address outside the interrupt window 0xfeexxxxx on x86. */
int dmar_unit_set_fault_interrupt(struct dmar_unit *unit, uint32_t data, uint64_t addr,
				  bool enable);

/* Turn translation on or off (GCMD.TE, waited for within the timeout). */
int dmar_unit_enable_translation(struct dmar_unit *unit);
int dmar_unit_disable_translation(struct dmar_unit *unit);

enum dmar_domain_kind {
	DMAR_DOMAIN_TRANSLATED,  /* only what is mapped is reachable */
	DMAR_DOMAIN_IDENTITY,    /* 1:1 page table for [0, identity_limit) */
	DMAR_DOMAIN_PASSTHROUGH, /* untranslated (TT=2) when ECAP.PT, else an identity table */
	DMAR_DOMAIN_BLOCKED,     /* nothing reachable; DMA faults and is recorded */
};

struct dmar_domain_params {
	enum dmar_domain_kind kind;
	unsigned width;          /* guest address width wanted in bits (0: 39, or MGAW
				    when smaller); the table gets the fewest levels SAGAW
				    offers for it (a unit with only 4-level tables gives 4
				    levels for 39 bits) and the width is capped at MGAW */
	uint64_t identity_limit; /* IDENTITY (and PASSTHROUGH without ECAP.PT): map [0, limit) */
	bool caller_holds_deferred; /* the caller never maps over a range it unmapped with
				       dmar_unmap_deferred before dmar_domain_flush returned
				       (busdma keeps those IOVAs out of use): dmar_map then
				       skips its own check for it */
};

/* Creates a domain on a unit with a fresh domain id (CAP.ND bounds them; id 0 is
 * reserved when CAP.CM=1). DMAR_ENOSPC when ids run out, DMAR_ENOTSUP when no supported
 * width fits. */
int dmar_domain_create(struct dmar_unit *unit, const struct dmar_domain_params *params,
		       struct dmar_domain **out);
/* Frees the domain, its tables and its id. DMAR_EBUSY while devices are attached. */
int dmar_domain_destroy(struct dmar_domain *dom);

struct dmar_domain_info {
	uint16_t did;
	enum dmar_domain_kind kind;
	unsigned width;          /* bits */
	unsigned levels;         /* page-table levels, 0 for pass-through */
	bool passthrough_tt;     /* context entries use TT=2 */
	unsigned devices;        /* attached devices */
	uint64_t table_pages;    /* page-table pages in use: those holding mappings, plus
				    the last table an unmap left empty (kept linked for
				    the next map there; freed when another one empties) */
};
void dmar_domain_get_info(const struct dmar_domain *dom, struct dmar_domain_info *info);
struct dmar_unit *dmar_domain_unit(struct dmar_domain *dom);

/* Points the device's context entry at the domain (moving it from another domain of
 * the same unit if needed) with the invalidations the specification requires, and
 * enables translation on the unit if it is not on yet. Before that, every RMRR of the
 * ACPI table that names the device is identity-mapped (read/write) into a translated
 * domain, so the device's firmware-owned DMA keeps working; RMRRs that are empty,
 * unaligned (rounded outward to pages), or collide with other mappings of the domain
 * are logged and skipped. */
int dmar_domain_attach(struct dmar_domain *dom, uint16_t sid);
/* (dmar_domain_attach: DMAR_EBUSY when sid is a requester id of a function attached
 * with dmar_domain_attach_device to another domain.) */
/* Clears the device's context entry (its DMA then faults: context not present).
 * DMAR_EBUSY when an attached device's requester ids include sid. */
int dmar_domain_detach(struct dmar_domain *dom, uint16_t sid);

/* Attaches a PCI function by every requester id its DMA may carry
 * (dmar_device_requester_ids): each id's context entry names the domain, RMRRs naming
 * the function are identity-mapped first. Functions that share an id (two devices
 * behind one conventional bridge) cannot be told apart by the unit: they can only be
 * in one domain together; an attach that would split them fails with DMAR_EBUSY (and a
 * log line naming the device and the id), and nothing changes. DMAR_EEXIST when the
 * function is attached already (to any domain: detach it first). */
int dmar_domain_attach_device(struct dmar_domain *dom, uint8_t bus, uint8_t dev, uint8_t fn);
/* Detaches a function attached with dmar_domain_attach_device; an id it shares with
 * another attached function stays attached for that one. DMAR_ENOENT when not attached
 * to dom. */
int dmar_domain_detach_device(struct dmar_domain *dom, uint8_t bus, uint8_t dev, uint8_t fn);
/* The domain a device is attached to on a unit, or NULL. */
struct dmar_domain *dmar_device_domain(struct dmar_unit *unit, uint16_t sid);

/* Maps [iova, iova+size) to [phys, phys+size) with DMAR_PROT_READ/WRITE. Page-aligned
 * arguments; superpages are used where alignment and the unit allow. DMAR_EEXIST if any
 * page is already mapped (nothing changes); DMAR_ERANGE beyond the domain's width. */
int dmar_map(struct dmar_domain *dom, uint64_t iova, uint64_t phys, uint64_t size,
	     unsigned prot);
/* Unmaps any page-aligned sub-range of what was mapped (splitting superpages), then
 * invalidates the IOTLB for exactly what changed and waits for it. Table pages it
 * leaves empty are freed after that, except the one it started in, kept linked (and
 * mapping nothing) for the next map in its region. DMAR_ENOENT if part of the range is
 * not mapped (nothing changes).
 * If the invalidation fails (DMAR_ETIMEDOUT, DMAR_EHW), the entries stay cleared but
 * the unit may still use the old translation: the domain owes that invalidation and
 * keeps the detached table pages allocated. The next dmar_map/dmar_unmap of the domain
 * first completes what is owed (failing with its error while the unit does not
 * respond), and retrying the failed unmap (same range, or a sub-range) then returns 0. */
int dmar_unmap(struct dmar_domain *dom, uint64_t iova, uint64_t size);
/* Deferred unmap: clears the entries like dmar_unmap and returns without invalidating.
 * Until dmar_domain_flush completes, the unit may still translate the range to its old
 * pages (the IOTLB may hold them) and the table pages it detached stay allocated. A
 * later dmar_map over the range, or a strict dmar_unmap anywhere in the domain, flushes
 * first (one invalidation covers all of them). DMAR_ENOENT, DMAR_EINVAL, DMAR_ERANGE as
 * for dmar_unmap; it never waits for the hardware. */
int dmar_unmap_deferred(struct dmar_domain *dom, uint64_t iova, uint64_t size);
/* Completes the invalidation every deferred (or failed) unmap of the domain owes, with
 * one invalidation (page-selective when MAMV covers their span, else domain-selective),
 * and frees the table pages they detached. 0, or the hardware's error (then they stay
 * owed and a later call retries). */
int dmar_domain_flush(struct dmar_domain *dom);
/* Deferred unmaps waiting for dmar_domain_flush. */
unsigned dmar_domain_deferred(const struct dmar_domain *dom);

/* Windows: 2 MiB of a translated domain's IOVA space (one leaf table, 512 pages) that
 * one user owns, mapping and unmapping single pages there without any lock, so that
 * several CPUs, each in its own window, never wait for one another (busdma gives each
 * CPU one per device: hw.dmar.cpu_windows). dmar_map, dmar_unmap and
 * dmar_unmap_deferred refuse ranges that overlap a window (DMAR_EBUSY).
 *
 * Creates a window at `base` (2 MiB-aligned, inside the domain's width, mapping
 * nothing yet: DMAR_EEXIST otherwise; DMAR_EINVAL for a domain that is not
 * translated). Its leaf table is allocated now (DMAR_ENOMEM) and stays linked. */
struct dmar_window;
#define DMAR_WINDOW_SIZE (2ull << 20)
#define DMAR_WINDOW_PAGES 512u
int dmar_window_create(struct dmar_domain *dom, uint64_t base, struct dmar_window **out);
/* Destroys a window whose pages are all unmapped and invalidated (DMAR_EBUSY
 * otherwise); its range becomes ordinary IOVA space of the domain again. */
int dmar_window_destroy(struct dmar_window *w);
/* Maps page `index` (0..511) of the window to phys (page-aligned) with prot. Takes no
 * lock, except on a unit that must hear of new mappings: caching mode (CAP.CM: the page
 * is invalidated, waited for without a lock) or CAP.RWBF (the write buffer is flushed).
 * DMAR_EEXIST when mapped. Pages of one window may be mapped and unmapped from several
 * threads at once, each page by one at a time. */
int dmar_window_map(struct dmar_window *w, unsigned index, uint64_t phys, unsigned prot);
/* Clears page `index` (DMAR_ENOENT when not mapped) without invalidating: the unit may
 * still translate it from its IOTLB until a dmar_window_invalidate covering it returns
 * 0. */
int dmar_window_unmap(struct dmar_window *w, unsigned index);
/* Invalidates the IOTLB for pages [first, first + n) of the window and waits, holding no
 * lock while it waits. 0, or the hardware's error (DMAR_ETIMEDOUT, DMAR_EHW: nothing is
 * known to be invalidated; call again). */
int dmar_window_invalidate(struct dmar_window *w, unsigned first, unsigned n);
/* The window's first IOVA. */
uint64_t dmar_window_base(const struct dmar_window *w);

/* Translation the domain's tables give now: DMAR_ENOENT when not mapped. */
int dmar_lookup(struct dmar_domain *dom, uint64_t iova, uint64_t *phys, unsigned *prot);

/* The identity-mapped RMRR ranges of a domain (an IOVA allocator must avoid them):
 * copies up to `max` into out[] and returns how many there are. */
struct dmar_range {
	uint64_t start, end;     /* end exclusive */
};
unsigned dmar_domain_reserved_ranges(const struct dmar_domain *dom, struct dmar_range *out,
				     unsigned max);

/* Counters a test or benchmark can read. */
struct dmar_unit_stats {
	uint64_t ctx_invalidations;
	uint64_t iotlb_global, iotlb_domain, iotlb_page;
	uint64_t waits;          /* invalidation waits issued, less those that failed */
	uint64_t wbf;            /* write-buffer flushes */
};
void dmar_unit_get_stats(const struct dmar_unit *unit, struct dmar_unit_stats *st);

#endif
