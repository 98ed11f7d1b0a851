/*
 * iova_dir.h - a small hash map from a window number (a page number shifted right) to a
 * pointer, for the IOVA allocator's per-window structures: leaves of marks
 * (iova_marks.h) and chunks of slots (iova_chunk.h). Pure: no OS call but alloc/free
 * of its own table.
 *
 * Open addressing with linear probing, at most a quarter full, so the home slot answers
 * most lookups; the entry found last is remembered and answers runs of lookups in one
 * window at once. Removal shifts the entries after it back, so no tombstone slows
 * later lookups. Find is O(1) and touches one or two cache lines.
 *
 * Concurrency: none inside; the IOVA space's caller serialises.
 */
#ifndef DMAR_IOVA_DIR_H
#define DMAR_IOVA_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "dmar/os.h"

struct iova_dir_slot {
	uint64_t key;                 /* window number + 1; 0: empty */
	void *value;
};

struct iova_dir {
	/* all private */
	const struct dmar_os *os;
	size_t *memory;               /* where the bytes held are counted */
	struct iova_dir_slot *slots;
	unsigned bits;
	uint64_t count;
	uint64_t last_key;            /* the entry found last (0: none) */
	void *last;
};

/* Allocation through os, counted in *memory (shared by the allocator's files). */
void *dmar__iova_mem_alloc(const struct dmar_os *os, size_t *memory, size_t bytes);
void dmar__iova_mem_free(const struct dmar_os *os, size_t *memory, void *p, size_t bytes);

/* Prepares an empty map whose table is counted in *memory; holds nothing yet. */
void dmar__iova_dir_init(struct iova_dir *d, const struct dmar_os *os, size_t *memory);
/* Frees the table (not the values); the map is empty and usable again. */
void dmar__iova_dir_fini(struct iova_dir *d);

/* Private: where a key's search starts. */
static inline size_t iova_dir_home(unsigned bits, uint64_t key)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> (64 - bits));
}

/* Private: iova_dir_find past the remembered entry and the home slot. */
void *dmar__iova_dir_find_slow(struct iova_dir *d, uint64_t key);

/* The value of window `window`, or NULL. */
static inline void *iova_dir_find(struct iova_dir *d, uint64_t window)
{
	uint64_t key = window + 1;
	const struct iova_dir_slot *home;

	if (key == d->last_key)
		return d->last;
	if (!d->slots)
		return NULL;
	home = &d->slots[iova_dir_home(d->bits, key)];
	if (home->key == key) {
		d->last_key = key;
		d->last = home->value;
		return d->last;
	}
	return dmar__iova_dir_find_slow(d, key);
}

/* Makes room for one more entry, so that the next dmar__iova_dir_put cannot fail.
 * DMAR_ENOMEM with nothing changed. */
int dmar__iova_dir_reserve(struct iova_dir *d);
/* Adds window -> value (value not NULL, window absent); room must have been
 * reserved. */
void dmar__iova_dir_put(struct iova_dir *d, uint64_t window, void *value);
/* Removes window's entry (nothing to do if absent). */
void dmar__iova_dir_del(struct iova_dir *d, uint64_t window);

/* Slots of the table, and the value in slot i (NULL: empty); for visiting every entry
 * while removing some: a removal may move a later entry into slot i. */
static inline size_t iova_dir_capacity(const struct iova_dir *d)
{
	return d->slots ? (size_t)1 << d->bits : 0;
}

static inline void *iova_dir_value_at(const struct iova_dir *d, size_t i)
{
	return d->slots[i].value;
}

/* Visits every value, in no order; the map must not change meanwhile. */
#define IOVA_DIR_FOREACH(d, i, v)                                                             \
	for (size_t i = 0; (d)->slots && i < (size_t)1 << (d)->bits; i++)                     \
		if (((v) = (d)->slots[i].value) != NULL)

#endif
