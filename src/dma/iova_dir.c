/*
 * iova_dir.c - window number -> pointer map for the IOVA allocator (see iova_dir.h).
 */
#include "iova_dir.h"

#include "dmar/error.h"
#include "lib/util.h"

#define DIR_MIN_BITS 4u

void *dmar__iova_mem_alloc(const struct dmar_os *os, size_t *memory, size_t bytes)
{
	void *p = os->ops->alloc(os->ctx, bytes);
	if (p)
		*memory += bytes;
	return p;
}

void dmar__iova_mem_free(const struct dmar_os *os, size_t *memory, void *p, size_t bytes)
{
	if (!p)
		return;
	os->ops->free(os->ctx, p, bytes);
	*memory -= bytes;
}

void dmar__iova_dir_init(struct iova_dir *d, const struct dmar_os *os, size_t *memory)
{
	dmar_memset(d, 0, sizeof(*d));
	d->os = os;
	d->memory = memory;
}

void dmar__iova_dir_fini(struct iova_dir *d)
{
	if (d->slots)
		dmar__iova_mem_free(d->os, d->memory, d->slots,
				    ((size_t)1 << d->bits) * sizeof(*d->slots));
	dmar__iova_dir_init(d, d->os, d->memory);
}

void *dmar__iova_dir_find_slow(struct iova_dir *d, uint64_t key)
{
	size_t mask = ((size_t)1 << d->bits) - 1;

	for (size_t i = iova_dir_home(d->bits, key);; i = (i + 1) & mask) {
		if (d->slots[i].key == key) {
			d->last_key = key;
			d->last = d->slots[i].value;
			return d->last;
		}
		if (!d->slots[i].key)
			return NULL;
	}
}

static void slot_put(struct iova_dir_slot *slots, unsigned bits, uint64_t key, void *value)
{
	size_t mask = ((size_t)1 << bits) - 1, i = iova_dir_home(bits, key);

	while (slots[i].key)
		i = (i + 1) & mask;
	slots[i].key = key;
	slots[i].value = value;
}

int dmar__iova_dir_reserve(struct iova_dir *d)
{
	unsigned bits;
	size_t n;
	struct iova_dir_slot *slots;

	if (d->slots && (d->count + 1) * 4 <= (uint64_t)1 << d->bits)
		return DMAR_OK; /* at most a quarter full after the next put */
	bits = d->slots ? d->bits + 1 : DIR_MIN_BITS;
	if (bits >= sizeof(size_t) * 8 - 5)
		return DMAR_ENOMEM;
	n = (size_t)1 << bits;
	slots = dmar__iova_mem_alloc(d->os, d->memory, n * sizeof(*slots));
	if (!slots)
		return DMAR_ENOMEM;
	dmar_memset(slots, 0, n * sizeof(*slots));
	if (d->slots) {
		for (size_t i = 0; i < (size_t)1 << d->bits; i++)
			if (d->slots[i].key)
				slot_put(slots, bits, d->slots[i].key, d->slots[i].value);
		dmar__iova_mem_free(d->os, d->memory, d->slots,
				    ((size_t)1 << d->bits) * sizeof(*slots));
	}
	d->slots = slots;
	d->bits = bits;
	return DMAR_OK;
}

void dmar__iova_dir_put(struct iova_dir *d, uint64_t window, void *value)
{
	slot_put(d->slots, d->bits, window + 1, value);
	d->count++;
}

void dmar__iova_dir_del(struct iova_dir *d, uint64_t window)
{
	uint64_t key = window + 1;
	size_t mask, i, j;

	if (!d->slots)
		return;
	mask = ((size_t)1 << d->bits) - 1;
	for (i = iova_dir_home(d->bits, key); d->slots[i].key != key; i = (i + 1) & mask)
		if (!d->slots[i].key)
			return;
	if (d->last_key == key)
		d->last_key = 0;
	/* Shift back every later entry of the probe run whose home does not lie
	 * cyclically in (i, j]: it would no longer be found past the hole at i. */
	for (j = (i + 1) & mask; d->slots[j].key; j = (j + 1) & mask) {
		size_t h = iova_dir_home(d->bits, d->slots[j].key);
		if (((j - h) & mask) >= ((j - i) & mask)) {
			d->slots[i] = d->slots[j];
			i = j;
		}
	}
	d->slots[i].key = 0;
	d->slots[i].value = NULL;
	d->count--;
}
