/*
 * iova_marks.c - per-page marks for the IOVA allocator (see iova_marks.h).
 */
#include "iova_marks.h"

#include "dmar/error.h"
#include "lib/util.h"

void dmar__iova_marks_init(struct iova_marks *m, const struct dmar_os *os)
{
	m->memory = 0;
	dmar__iova_dir_init(&m->dir, os, &m->memory);
}

void dmar__iova_marks_fini(struct iova_marks *m)
{
	struct iova_marks_leaf *leaf;

	IOVA_DIR_FOREACH(&m->dir, i, leaf)
		dmar__iova_mem_free(m->dir.os, &m->memory, leaf, sizeof(*leaf));
	dmar__iova_dir_fini(&m->dir);
}

int dmar__iova_marks_grow(struct iova_marks *m, uint64_t page)
{
	struct iova_marks_leaf *leaf;

	if (dmar__iova_dir_reserve(&m->dir))
		return DMAR_ENOMEM;
	leaf = dmar__iova_mem_alloc(m->dir.os, &m->memory, sizeof(*leaf));
	if (!leaf)
		return DMAR_ENOMEM;
	dmar_memset(leaf, 0, sizeof(*leaf));
	dmar__iova_dir_put(&m->dir, page >> IOVA_MARKS_LEAF_SHIFT, leaf);
	return DMAR_OK;
}

bool dmar__iova_marks_any(struct iova_marks *m, enum iova_mark kind, uint64_t first, uint64_t last)
{
	for (uint64_t p = first; p <= last;) {
		/* the word holding p: bits p..min(last, end of word) */
		uint64_t word_last = p | 63, hi = last < word_last ? last : word_last;
		uint64_t mask = (~0ull << (p & 63)) & (~0ull >> (63 - (hi & 63)));
		struct iova_marks_leaf *leaf = iova_marks_find(m, p);

		if (leaf && (*iova_marks_word(leaf, kind, p) & mask))
			return true;
		if (hi == UINT64_MAX)
			break;
		p = hi + 1;
	}
	return false;
}
