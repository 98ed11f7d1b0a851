/*
 * busdma_test.h - shared helpers of the busdma tests.
 */
#ifndef DMAR_TEST_BUSDMA_H
#define DMAR_TEST_BUSDMA_H

#include <stdint.h>

#include "dmar/busdma.h"

/* A tag of `dev` with these constraints (everything else default); ends the test when
 * creation fails. */
struct dmar_dma_tag *busdma_test_tag(struct dmar_busdma_dev *dev, uint64_t lowaddr,
				     uint64_t highaddr, uint64_t maxsize, unsigned nseg,
				     uint64_t maxsegsz, uint64_t boundary, uint64_t align);

#endif
