/*
 * iova_marks.h - per-page marks for the IOVA allocator: a sparse set of a few bits per
 * 4 KiB page of an IOVA space, so that dmar__iova_free can check what it is given without a
 * tree walk. Pure: no register, no OS call but alloc/free of its own storage.
 *
 * Layout. Pages are grouped in leaves of IOVA_MARKS_LEAF_PAGES pages; a leaf holds,
 * for each run of 64 pages, a START and an END word side by side (the marks every
 * free reads share a cache line), and apart from them the EXACT words, which only
 * frees of rounded sizes read (so they do not dilute the cache). Leaves are created on
 * demand and found by their number through an iova_dir, so a lookup is O(1) and
 * touches one or two cache lines whatever the size of the space; big leaves (16384
 * pages, 6 KiB) keep that table small enough to stay in the CPU caches with a million
 * live allocations. A leaf stays until
 * dmar__iova_marks_fini: the memory follows the span of pages ever marked (about 0.4 bytes
 * per page of that span, one leaf at least), not the number of marks.
 *
 * Concurrency: none inside; the IOVA space's caller serialises.
 */
#ifndef DMAR_IOVA_MARKS_H
#define DMAR_IOVA_MARKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmar/os.h"
#include "iova_dir.h"

/* Kinds of marks. */
enum iova_mark {
	IOVA_MARK_START = 0, /* first page of a live allocation */
	IOVA_MARK_END = 1,   /* last page of a live allocation (small ones only) */
	IOVA_MARK_EXACT = 2, /* at a start: the extent is not its size class's */
	IOVA_MARK_KINDS = 3,
};

#define IOVA_MARKS_LEAF_SHIFT 14u
#define IOVA_MARKS_LEAF_PAGES (1u << IOVA_MARKS_LEAF_SHIFT)
#define IOVA_MARKS_LEAF_WORDS (IOVA_MARKS_LEAF_PAGES / 64u)

struct iova_marks_leaf {
	uint64_t hot[IOVA_MARKS_LEAF_WORDS][2]; /* START, END */
	uint64_t exact[IOVA_MARKS_LEAF_WORDS];
};

struct iova_marks {
	/* all private */
	struct iova_dir dir;          /* leaf number -> leaf */
	size_t memory;                /* bytes held from os->alloc */
};

/* Private: the leaf of a page, or NULL. */
static inline struct iova_marks_leaf *iova_marks_find(struct iova_marks *m, uint64_t page)
{
	return (struct iova_marks_leaf *)iova_dir_find(&m->dir, page >> IOVA_MARKS_LEAF_SHIFT);
}

static inline uint64_t *iova_marks_word(struct iova_marks_leaf *leaf, enum iova_mark kind,
					uint64_t page)
{
	unsigned w = (unsigned)(page >> 6) & (IOVA_MARKS_LEAF_WORDS - 1);

	return kind == IOVA_MARK_EXACT ? &leaf->exact[w] : &leaf->hot[w][kind];
}

/* Prepares an empty set; holds nothing yet. */
void dmar__iova_marks_init(struct iova_marks *m, const struct dmar_os *os);
/* Frees everything; the set is empty (and usable) again. */
void dmar__iova_marks_fini(struct iova_marks *m);

/* Private: iova_marks_prepare when the leaf is missing. */
int dmar__iova_marks_grow(struct iova_marks *m, uint64_t page);

/* Makes sure the leaf of `page` exists, so that marks of that page can be set.
 * DMAR_ENOMEM with nothing changed. */
static inline int iova_marks_prepare(struct iova_marks *m, uint64_t page)
{
	return iova_marks_find(m, page) ? 0 : dmar__iova_marks_grow(m, page);
}
/* Sets a mark; the page's leaf must have been prepared. */
static inline void iova_marks_set(struct iova_marks *m, enum iova_mark kind, uint64_t page)
{
	*iova_marks_word(iova_marks_find(m, page), kind, page) |= 1ull << (page & 63);
}

/* Clears a mark (nothing to do if it was never set). */
static inline void iova_marks_clear(struct iova_marks *m, enum iova_mark kind, uint64_t page)
{
	struct iova_marks_leaf *leaf = iova_marks_find(m, page);

	if (leaf)
		*iova_marks_word(leaf, kind, page) &= ~(1ull << (page & 63));
}

/* Whether the mark is set. */
static inline bool iova_marks_test(struct iova_marks *m, enum iova_mark kind, uint64_t page)
{
	struct iova_marks_leaf *leaf = iova_marks_find(m, page);

	return leaf && (*iova_marks_word(leaf, kind, page) >> (page & 63) & 1);
}
/* Marks (on) or unmarks an allocation [first, last]: START at first, and END at last
 * when `small` (its leaves prepared when marking). One lookup when both lie in a leaf. */
static inline void iova_marks_alloc(struct iova_marks *m, uint64_t first, uint64_t last,
				    bool small, bool on)
{
	struct iova_marks_leaf *leaf = iova_marks_find(m, first);
	uint64_t *w;

	if (!leaf)
		return; /* nothing to unmark */
	w = iova_marks_word(leaf, IOVA_MARK_START, first);
	*w = on ? *w | 1ull << (first & 63) : *w & ~(1ull << (first & 63));
	if (!small)
		return;
	if ((first ^ last) >> IOVA_MARKS_LEAF_SHIFT) {
		leaf = iova_marks_find(m, last);
		if (!leaf)
			return;
	}
	w = iova_marks_word(leaf, IOVA_MARK_END, last);
	*w = on ? *w | 1ull << (last & 63) : *w & ~(1ull << (last & 63));
}

/* Whether any page of [first, last] has the mark: O((last - first) / 64). */
bool dmar__iova_marks_any(struct iova_marks *m, enum iova_mark kind, uint64_t first, uint64_t last);

/* Whether [first, last] is marked as one allocation: START at first, END at last and
 * at no page before it (every small allocation has its END mark, so a smaller one at
 * first would show its END earlier and a larger one has none at last). One word in
 * the common case. */
static inline bool iova_marks_span(struct iova_marks *m, uint64_t first, uint64_t last)
{
	struct iova_marks_leaf *leaf = iova_marks_find(m, first);
	uint64_t end_mask;

	if (!leaf || !(*iova_marks_word(leaf, IOVA_MARK_START, first) >> (first & 63) & 1))
		return false;
	if ((first ^ last) >> 6) /* not in one word */
		return iova_marks_test(m, IOVA_MARK_END, last) &&
		       (first == last || !dmar__iova_marks_any(m, IOVA_MARK_END, first, last - 1));
	end_mask = (~0ull << (first & 63)) & (~0ull >> (63 - (last & 63)));
	return (*iova_marks_word(leaf, IOVA_MARK_END, first) & end_mask) == 1ull << (last & 63);
}

#endif
