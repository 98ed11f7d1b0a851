/*
 * iova_chunk.c - chunks of slots for the IOVA allocator (see iova_chunk.h).
 */
#include "iova_chunk.h"

#include "lib/util.h"

void dmar__iova_chunk_init(struct iova_chunk *c, uint64_t base, uint32_t stride, uint32_t slots,
		     unsigned klass, bool rounded)
{
	uint32_t words = iova_chunk_words(slots);

	dmar_memset(c, 0, iova_chunk_size(slots, rounded));
	c->base = base;
	c->stride = stride;
	c->slots = slots;
	c->klass = (uint16_t)klass;
	c->rounded = rounded;
	for (uint32_t w = 0; w < words; w++)
		c->nonfull[w / 64] |= 1ull << (w % 64);
	if (slots % 64) /* the slots past the last are never free */
		c->bits[words - 1] = ~0ull << (slots % 64);
}
