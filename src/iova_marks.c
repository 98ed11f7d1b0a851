/*
 * iova_marks.c - per-page marks for the IOVA allocator (see iova_marks.h).
 */
#include "iova_marks.h"

#include "dmar/error.h"
#include "util.h"

#define DIR_MIN_BITS 4u

static inline uint64_t leaf_key(uint64_t page)
{
	return (page >> IOVA_MARKS_LEAF_SHIFT) + 1;
}

void *iova_mem_alloc(const struct dmar_os *os, size_t *memory, size_t bytes)
{
	void *p = os->ops->alloc(os->ctx, bytes);
	if (p)
		*memory += bytes;
	return p;
}

void iova_mem_free(const struct dmar_os *os, size_t *memory, void *p, size_t bytes)
{
	if (!p)
		return;
	os->ops->free(os->ctx, p, bytes);
	*memory -= bytes;
}

static inline void *mem_alloc(struct iova_marks *m, size_t bytes)
{
	return iova_mem_alloc(m->os, &m->memory, bytes);
}

static inline void mem_free(struct iova_marks *m, void *p, size_t bytes)
{
	iova_mem_free(m->os, &m->memory, p, bytes);
}

void iova_marks_init(struct iova_marks *m, const struct dmar_os *os)
{
	dmar_memset(m, 0, sizeof(*m));
	m->os = os;
}

void iova_marks_fini(struct iova_marks *m)
{
	const struct dmar_os *os = m->os;

	if (m->dir) {
		for (size_t i = 0; i < (size_t)1 << m->dir_bits; i++)
			mem_free(m, m->dir[i].leaf, sizeof(struct iova_marks_leaf));
		mem_free(m, m->dir, ((size_t)1 << m->dir_bits) * sizeof(*m->dir));
	}
	iova_marks_init(m, os);
}

struct iova_marks_leaf *iova_marks_find_slow(struct iova_marks *m, uint64_t key)
{
	size_t mask, i;

	if (!m->dir)
		return NULL;
	mask = ((size_t)1 << m->dir_bits) - 1;
	for (i = iova_marks_home(m->dir_bits, key);; i = (i + 1) & mask) {
		if (m->dir[i].key == key) {
			m->last_key = key;
			m->last = m->dir[i].leaf;
			return m->last;
		}
		if (!m->dir[i].key)
			return NULL;
	}
}

static void dir_put(struct iova_marks_slot *dir, unsigned bits, uint64_t key,
		    struct iova_marks_leaf *leaf)
{
	size_t mask = ((size_t)1 << bits) - 1, i = iova_marks_home(bits, key);

	while (dir[i].key)
		i = (i + 1) & mask;
	dir[i].key = key;
	dir[i].leaf = leaf;
}

/* Doubles the table (or makes the first one); nothing changes on failure. */
static int dir_grow(struct iova_marks *m)
{
	unsigned bits = m->dir ? m->dir_bits + 1 : DIR_MIN_BITS;
	size_t n = (size_t)1 << bits;
	struct iova_marks_slot *dir;

	if (bits >= sizeof(size_t) * 8 - 5)
		return DMAR_ENOMEM;
	dir = mem_alloc(m, n * sizeof(*dir));
	if (!dir)
		return DMAR_ENOMEM;
	dmar_memset(dir, 0, n * sizeof(*dir));
	if (m->dir) {
		for (size_t i = 0; i < (size_t)1 << m->dir_bits; i++)
			if (m->dir[i].key)
				dir_put(dir, bits, m->dir[i].key, m->dir[i].leaf);
		mem_free(m, m->dir, ((size_t)1 << m->dir_bits) * sizeof(*dir));
	}
	m->dir = dir;
	m->dir_bits = bits;
	return DMAR_OK;
}

int iova_marks_grow(struct iova_marks *m, uint64_t page)
{
	struct iova_marks_leaf *leaf;

	/* at most half full: short probe sequences */
	if ((!m->dir || (m->leaves + 1) * 2 > (uint64_t)1 << m->dir_bits) && dir_grow(m))
		return DMAR_ENOMEM;
	leaf = mem_alloc(m, sizeof(*leaf));
	if (!leaf)
		return DMAR_ENOMEM;
	dmar_memset(leaf, 0, sizeof(*leaf));
	dir_put(m->dir, m->dir_bits, leaf_key(page), leaf);
	m->leaves++;
	return DMAR_OK;
}

bool iova_marks_any(struct iova_marks *m, enum iova_mark kind, uint64_t first, uint64_t last)
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
