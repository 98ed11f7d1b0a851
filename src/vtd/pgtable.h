/*
 * pgtable.h - the I/O page-table engine: VT-d second-level tables (spec 9.8) built in
 * memory from the OS layer's table pages. Pure: it touches no register; the caller
 * (domain.c) points a context entry at root_phys and invalidates what an unmap reports.
 *
 * Format: 3, 4 or 5 levels of 512 eight-byte entries (39, 48, 57-bit IOVAs), 4 KiB base
 * pages, 2 MiB leaves at level 2 and 1 GiB leaves at level 3 when sp_levels (CAP.SLLPS)
 * allows; 1 GiB leaves are used only when 2 MiB leaves are allowed too (every unit that
 * reports 1 GiB reports 2 MiB; splitting a 1 GiB leaf needs 2 MiB leaves). Non-leaf
 * entries carry R|W so the leaf alone decides the access rights. Levels are numbered
 * as the specification does: level 1 holds 4 KiB leaves, level `levels` is the root.
 *
 * Concurrency: the engine takes no lock. The caller serialises every call on one table
 * (map, unmap, flush_done, fini); lookup and explain may run concurrently with each
 * other but not with a call that changes the table.
 *
 * Memory: every table write is followed, when the unit does not snoop (coherent=false,
 * ECAP.C=0), by os cache_flush of exactly the entries written, one call per table page
 * touched (a new table page is flushed whole: its zeroes may still be only in the CPU
 * cache). A new table is filled and flushed before the entry pointing at it is written.
 * Nothing is flushed when coherent.
 *
 * Empty tables: an unmap frees the table pages it leaves empty, except one: when the
 * table the unmap started in (the deepest one holding the whole range) is left empty,
 * it stays linked, mapping nothing, for the next map in its region (a busdma load
 * after an unload at the same IOVA then writes one entry, allocates nothing and needs
 * no paging-structure invalidation). At most PGTABLE_KEPT tables are kept (so that
 * users working in different regions, e.g. one per CPU, each keep theirs): the one
 * nearest to it is detached when a later unmap leaves one more empty (reported in
 * pgtable_flush.tables_start/end), all of them by dmar__pgtable_trim, or at fini. A map
 * over a region that holds a kept table (or the tables leading to it) fills that table
 * rather than a superpage there.
 *
 * Failure: a call that fails changes nothing (map and unmap allocate every page they
 * need before writing the first entry) and leaks nothing.
 */
#ifndef DMAR_PGTABLE_H
#define DMAR_PGTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmar/os.h"
#include "dmar/prot.h"

#define PGTABLE_MIN_LEVELS 3
#define PGTABLE_MAX_LEVELS 5
#define PGTABLE_SP_2M 1u /* sp_levels bit: 2 MiB leaves allowed */
#define PGTABLE_SP_1G 2u /* sp_levels bit: 1 GiB leaves allowed */
#define PGTABLE_KEPT 8u  /* empty tables kept linked (see "Empty tables") */

struct pgtable {
	const struct dmar_os *os;
	unsigned levels;       /* 3, 4 or 5 */
	unsigned sp_levels;    /* PGTABLE_SP_2M | PGTABLE_SP_1G, as CAP.SLLPS */
	bool coherent;         /* ECAP.C: false -> cache_flush after every table write */
	void *root;            /* top-level table page (virtual) */
	uint64_t root_phys;    /* its physical address, for the context entry */
	uint64_t pages;        /* table pages in use, including the root and the pages an
				  unmap detached until dmar__pgtable_flush_done frees them */
	/* Private: the tables unmaps left empty most recently, still linked (level 0: a
	 * free slot), each covering [base, base + 512 entries of its level), with how
	 * many of its entries are present now (maps may have filled it since): a kept
	 * empty table while that is 0, its emptiness known without reading it. */
	struct {
		unsigned level;
		uint64_t base;
		const uint64_t *va;
		unsigned present;
	} kept[PGTABLE_KEPT];
	uint64_t kept_mask;    /* a bit per kept table (a hash of its address): a table
				  whose bit is clear is not kept */
	/* Private: the table last walked at each level, so sequential calls start at the
	 * leaf table instead of the root. tag is iova >> (bits covered by that table). */
	struct {
		uint64_t tag;
		uint64_t *va;
	} walk_cache[PGTABLE_MAX_LEVELS + 1];
};

/* What the caller must invalidate after a change, and (private) the table pages an
 * unmap detached; those stay allocated until dmar__pgtable_flush_done. */
struct pgtable_flush {
	uint64_t start, end;   /* IOVA range, end exclusive; start == end: nothing */
	bool tables_changed;   /* a non-leaf entry changed or a table was detached: the
				  paging-structure caches must be invalidated too (IH=0) */
	uint64_t tables_start, tables_end; /* a second range to invalidate with IH=0
				  (start == end: none): the region of an empty table kept
				  from an earlier unmap, detached by this one */
	/* private */
	uint64_t deferred_pages;
	void *deferred;        /* last detached page; each links the previous one's
				  physical address in its entry 0 (then read as not present) */
	uint64_t deferred_phys;
};

/* Allocates the root table. levels: 3..5; sp_levels: any of PGTABLE_SP_*. os must stay
 * valid until dmar__pgtable_fini. DMAR_EINVAL on bad arguments, DMAR_ENOMEM. */
int dmar__pgtable_init(struct pgtable *pt, const struct dmar_os *os, unsigned levels,
		 unsigned sp_levels, bool coherent);
/* Frees every table page, the root included. The table must not be in use by a unit.
 * Safe on a table whose init failed or that was already finished. */
void dmar__pgtable_fini(struct pgtable *pt);

/* Maps [iova, iova+size) to [phys, phys+size) with prot (DMAR_PROT_READ/WRITE, at least
 * one). Uses the largest leaf that the alignment of both addresses, the remaining size
 * and sp_levels allow. iova, phys and size must be 4 KiB multiples and size > 0
 * (DMAR_EINVAL); the range must fit the table's width and phys must fit 52 bits
 * (DMAR_ERANGE). DMAR_EEXIST if any page of the range is already mapped, DMAR_ENOMEM;
 * on error nothing changed. */
int dmar__pgtable_map(struct pgtable *pt, uint64_t iova, uint64_t phys, uint64_t size,
		unsigned prot);
/* The same, reporting in *flush (may be NULL) what turned from not present to present,
 * for units in caching mode (CAP.CM) that cache not-present entries: [iova, iova+size),
 * and tables_changed when a new table was linked. Never defers pages. */
int dmar__pgtable_map_flush(struct pgtable *pt, uint64_t iova, uint64_t phys, uint64_t size,
		      unsigned prot, struct pgtable_flush *flush);

/* Unmaps [iova, iova+size), any 4 KiB-aligned sub-range of what is mapped: a superpage
 * partly inside is split into smaller leaves (needs new table pages: DMAR_ENOMEM), table
 * pages left empty are detached. Every page of the range must be mapped, else
 * DMAR_ENOENT and nothing changed; DMAR_EINVAL/DMAR_ERANGE as for map.
 * On success *flush says what to invalidate: the range, widened to whole superpages that
 * were split or removed, and tables_changed. With flush != NULL, detached table pages
 * stay allocated (the unit may still walk them through its paging-structure caches):
 * the caller invalidates, waits, then calls dmar__pgtable_flush_done(pt, flush), exactly once
 * per successful unmap. With flush == NULL they are freed at once (for a table no unit
 * uses). On failure *flush is empty and needs no dmar__pgtable_flush_done. The table the unmap
 * started in, if left empty, stays linked (see "Empty tables" above). */
int dmar__pgtable_unmap(struct pgtable *pt, uint64_t iova, uint64_t size,
		  struct pgtable_flush *flush);
/* dmar__pgtable_unmap, then dmar__pgtable_flush_merge of what it owes into *acc (a
 * deferred unmap accumulating its invalidation): the same result, cheaper for a range
 * inside one leaf table. */
int dmar__pgtable_unmap_merge(struct pgtable *pt, uint64_t iova, uint64_t size,
			      struct pgtable_flush *acc);
/* Frees the table pages an unmap detached. Call after the invalidation completed. */
void dmar__pgtable_flush_done(struct pgtable *pt, struct pgtable_flush *flush);
/* Moves what `from` owes into `into` (ranges joined, detached pages chained) and
 * empties `from`: one invalidation covering `into` then settles both. */
void dmar__pgtable_flush_merge(struct pgtable *pt, struct pgtable_flush *into,
			 struct pgtable_flush *from);

/* Detaches the empty tables kept by earlier unmaps, if any, with the ancestors that
 * leaves empty; then nothing but mapped leaves holds table pages. *flush (may be NULL:
 * pages freed at once) reports the region to invalidate, tables_changed set, and needs
 * dmar__pgtable_flush_done as after an unmap. DMAR_EINVAL without a table. */
int dmar__pgtable_trim(struct pgtable *pt, struct pgtable_flush *flush);

/* Windows (dmar_window, domain.c): the leaf table of the 2 MiB region holding iova,
 * created with the tables leading to it when missing, in *leaf. It must map nothing
 * (DMAR_EEXIST otherwise, also for a superpage over the region); it stops being the
 * kept empty table if it was. DMAR_ENOMEM with nothing changed. The caller keeps every
 * other call of this engine out of the region from then on: the table is written only
 * through leaf_set/leaf_clear, which take no lock (each entry a single store; distinct
 * entries may be written from several threads at once), and no unmap ever detaches it. */
int dmar__pgtable_leaf_table(struct pgtable *pt, uint64_t iova, uint64_t **leaf);
/* Entry `index` of such a table: set to phys with prot (DMAR_EEXIST when present), or
 * cleared (DMAR_ENOENT when not present); flushed when the unit does not snoop. */
int dmar__pgtable_leaf_set(const struct pgtable *pt, uint64_t *leaf, unsigned index,
			   uint64_t phys, unsigned prot);
int dmar__pgtable_leaf_clear(const struct pgtable *pt, uint64_t *leaf, unsigned index);
/* Whether no entry of such a table is present. */
bool dmar__pgtable_leaf_empty(const uint64_t *leaf);

/* Translation of iova (any byte address): physical address, rights (DMAR_PROT_*) and
 * size of the leaf (4 KiB, 2 MiB or 1 GiB); out pointers may be NULL. DMAR_ENOENT when
 * not mapped, DMAR_ERANGE beyond the width, DMAR_EINVAL without a table. */
int dmar__pgtable_lookup(const struct pgtable *pt, uint64_t iova, uint64_t *phys,
		   unsigned *prot, uint64_t *page_size);

/* Why a walk ends where it does, for fault reports. */
enum pgtable_walk_result {
	PGTABLE_WALK_MAPPED,      /* translated with read and write rights */
	PGTABLE_WALK_READ_ONLY,   /* translated, but an entry on the way lacks W */
	PGTABLE_WALK_WRITE_ONLY,  /* translated, but an entry on the way lacks R */
	PGTABLE_WALK_NOT_PRESENT, /* an entry with R and W clear */
	PGTABLE_WALK_RESERVED,    /* a large-page bit where none is allowed, or an entry
				     pointing at memory the OS layer cannot translate */
};

struct pgtable_walk {
	uint64_t iova;
	enum pgtable_walk_result result;
	/* Where the walk stopped: the not-present or reserved entry, the entry that first
	 * lacked a right (READ_ONLY/WRITE_ONLY), else the leaf. */
	unsigned level;
	unsigned index;
	uint64_t entry;
	uint64_t table_phys;      /* the table page holding that entry */
	/* Every entry read, from the root (path[0], level `levels`) down. */
	unsigned depth;
	uint64_t path[PGTABLE_MAX_LEVELS];
	/* The translation, when the walk reached a leaf (else phys = page_size = 0). */
	uint64_t phys;
	uint64_t page_size;
	unsigned prot;            /* DMAR_PROT_* granted by the whole path */
};

/* Walks the table for iova as the unit would and records it in *w. Returns 0 (also
 * when the address is not mapped: see w->result), DMAR_ERANGE beyond the width,
 * DMAR_EINVAL without a table. */
int dmar__pgtable_explain(const struct pgtable *pt, uint64_t iova, struct pgtable_walk *w);
/* One line describing a walk, e.g. "iova 0x1000: level 1 index 1 entry 0x0: not
 * present". Returns what dmar__snprintf returns. */
int dmar__pgtable_walk_format(const struct pgtable_walk *w, char *buf, size_t size);
/* Short text for a walk result. Never NULL. */
const char *dmar__pgtable_walk_result_str(enum pgtable_walk_result r);

#endif
