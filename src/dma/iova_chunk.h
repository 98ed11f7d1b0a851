/*
 * iova_chunk.h - chunks of the IOVA allocator: a window of the space (2^shift pages,
 * aligned) given to one size class and cut into equal slots, each the class's size
 * plus the guard pages. Pure: no register, no OS call; iova.c allocates them and keeps
 * them in its tree as one extent each.
 *
 * Why. Checking a free needs state that names each live allocation. Marks per page
 * (iova_marks.h) take a few bits per page, and a space of mixed sizes has ten or more
 * pages per allocation: with a million live allocations they span megabytes, and each
 * random free misses the CPU caches. In a chunk, slot i is at base + i * stride, so one
 * bit per slot says whether it is live and the window's base and stride tell where
 * slots start: about one bit per live allocation, plus, for the rounded classes, one
 * byte holding how much of the slot the request leaves unused, so that a free must
 * give the size it was given.
 *
 * Layout: the header, then the live bits (whole words; bits past the last slot are
 * set, so a word is full when it is all ones), then for rounded classes one byte per
 * slot. `nonfull` has one bit per word of live bits that has a free slot, so the lowest
 * free slot is found with two bit scans.
 */
#ifndef DMAR_IOVA_CHUNK_H
#define DMAR_IOVA_CHUNK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IOVA_CHUNK_MAX_SHIFT 14u                       /* the largest window: 64 MiB */
#define IOVA_CHUNK_NONFULL_WORDS ((1u << IOVA_CHUNK_MAX_SHIFT) / 64u / 64u)
#define IOVA_CHUNK_MIN_SLOTS 8u                        /* fewer: the class uses the tree */

struct iova_chunk {
	uint64_t base;                /* first page of its window */
	struct iova_chunk *next, *prev; /* in its class's list of chunks with a free slot */
	uint32_t stride;              /* pages per slot: class size + guard */
	uint32_t slots;
	uint32_t live;                /* live and pending slots */
	uint16_t klass;
	uint8_t listed;               /* on its class's list */
	uint8_t rounded;              /* slack bytes follow the live bits */
	uint64_t nonfull[IOVA_CHUNK_NONFULL_WORDS];
	uint64_t bits[];              /* live bits, then slack bytes */
};

static inline uint32_t iova_chunk_words(uint32_t slots)
{
	return (slots + 63) / 64;
}

/* Bytes of a chunk of `slots` slots (with slack bytes when rounded). */
static inline size_t iova_chunk_size(uint32_t slots, bool rounded)
{
	return sizeof(struct iova_chunk) + iova_chunk_words(slots) * sizeof(uint64_t) +
	       (rounded ? slots : 0);
}

/* The slack bytes of a rounded chunk of `slots` slots (c->slots, given by the caller
 * so that the header need not be read). */
static inline uint8_t *iova_chunk_slack(const struct iova_chunk *c, uint32_t slots)
{
	return (uint8_t *)(uintptr_t)&c->bits[iova_chunk_words(slots)];
}

/* Prepares chunk c (iova_chunk_size(slots, rounded) bytes) over [base, base +
 * slots * stride): every slot free. */
void dmar__iova_chunk_init(struct iova_chunk *c, uint64_t base, uint32_t stride, uint32_t slots,
		     unsigned klass, bool rounded);

/* What iova_chunk_div multiplies by instead of dividing by stride. */
static inline uint64_t iova_chunk_magic(uint32_t stride)
{
	return (1ull << 32) / stride + 1;
}

/* off / stride, exact for off < 2^14 and stride < 2^11, given iova_chunk_magic(stride). */
static inline uint64_t iova_chunk_div(uint64_t off, uint64_t magic)
{
	return (off * magic) >> 32;
}

/* The slot that starts `off` pages into a chunk of `slots` slots of `stride` pages, or
 * -1 when none does. Needs no field of the chunk, so that a free can load the chunk's
 * header and its live bits at the same time. */
static inline int64_t iova_chunk_slot_at(uint64_t off, uint32_t stride, uint64_t magic,
					 uint32_t slots)
{
	uint64_t i = iova_chunk_div(off, magic);

	return i < slots && i * stride == off ? (int64_t)i : -1;
}

static inline bool iova_chunk_live(const struct iova_chunk *c, uint32_t i)
{
	return c->bits[i / 64] >> (i % 64) & 1;
}

/* The lowest free slot; the chunk must have one (live < slots). */
static inline uint32_t iova_chunk_first_free(const struct iova_chunk *c)
{
	for (uint32_t w = 0;; w++)
		if (c->nonfull[w]) {
			uint32_t word = w * 64 + (uint32_t)__builtin_ctzll(c->nonfull[w]);
			return word * 64 + (uint32_t)__builtin_ctzll(~c->bits[word]);
		}
}

/* A slot is free, live, or pending: freed by its owner (its live bit clear, so that
 * a second free fails) but still counted in `live` and not in `nonfull`, kept by the
 * allocator for reuse. Pending -> live and live -> pending touch only the live bits,
 * not the header. The caller keeps the slack bytes.
 *
 * Free slot i becomes live. */
static inline void iova_chunk_take(struct iova_chunk *c, uint32_t i)
{
	uint64_t *w = &c->bits[i / 64];

	*w |= 1ull << (i % 64);
	if (!~*w)
		c->nonfull[i / 4096] &= ~(1ull << (i / 64 % 64));
	c->live++;
}

/* Live slot i becomes pending. */
static inline void iova_chunk_unmark(struct iova_chunk *c, uint32_t i)
{
	c->bits[i / 64] &= ~(1ull << (i % 64));
}

/* Pending slot i becomes live again. */
static inline void iova_chunk_mark(struct iova_chunk *c, uint32_t i)
{
	c->bits[i / 64] |= 1ull << (i % 64);
}

/* Pending slot i becomes free. */
static inline void iova_chunk_settle(struct iova_chunk *c, uint32_t i)
{
	c->nonfull[i / 4096] |= 1ull << (i / 64 % 64);
	c->live--;
}

#endif
