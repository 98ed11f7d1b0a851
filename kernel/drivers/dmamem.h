/*
 * dmamem.h - DMA memory a driver keeps loaded for good (rings, queues, command lists,
 * schedules): dmar_dmamem_alloc on a tag, loaded once, with its device address.
 */
#ifndef KERNEL_DMAMEM_H
#define KERNEL_DMAMEM_H

#include <stdint.h>

#include "dmar/busdma.h"

/* `len` bytes (at most the tag's maxsize) of zeroed DMA memory, loaded as one segment:
 * CPU pointer in *va, map in *map, device address in *addr. On failure nothing is held
 * and *map is NULL. */
int dmamem_get(struct dmar_dma_tag *tag, uint64_t len, void **va, struct dmar_dmamap **map,
	       uint64_t *addr);
/* Unloads and frees what dmamem_get gave (nothing when *map is NULL); *map becomes NULL. */
void dmamem_put(struct dmar_dma_tag *tag, void *va, struct dmar_dmamap **map);

#endif
