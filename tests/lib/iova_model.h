/*
 * iova_model.h - a brute-force reference for the IOVA allocator (src/dma/iova.c), for tests
 * and the fuzzer: one byte per page of a small space says what the page is, and a
 * request fits when some start, tried one by one, satisfies it.
 */
#ifndef DMAR_TEST_IOVA_MODEL_H
#define DMAR_TEST_IOVA_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "iova.h"

enum { IOVA_MODEL_FREE = 0, IOVA_MODEL_LIVE = 1, IOVA_MODEL_RESERVED = 2 };

struct iova_model {
	uint64_t first, end; /* pages: the space is [first, end) */
	unsigned guard;
	uint8_t *page;       /* indexed by page number, [0, end) */
	uint32_t *run;       /* scratch: free pages from each page on */
};

/* A model of dmar__iova_init(first * 4 KiB, end * 4 KiB - 1, guard); 0, or -1 without memory. */
int iova_model_init(struct iova_model *m, uint64_t first, uint64_t end, unsigned guard);
void iova_model_fini(struct iova_model *m);
/* Sets pages [p, p + n) (clipped to the space) to v. */
void iova_model_set(struct iova_model *m, uint64_t p, uint64_t n, uint8_t v);
/* Whether a page of [p, p + n) (clipped) is v. */
bool iova_model_any(const struct iova_model *m, uint64_t p, uint64_t n, uint8_t v);
/* Whether some start satisfies r (size, alignment, boundary, max_addr) with the request
 * and its guard pages on free pages. */
bool iova_model_fits(struct iova_model *m, const struct iova_request *r);

#endif
