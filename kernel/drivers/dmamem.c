/* DMA memory a driver keeps loaded (dmamem.h). */
#include "dmamem.h"

int dmamem_get(struct dmar_dma_tag *tag, uint64_t len, void **va, struct dmar_dmamap **map,
	       uint64_t *addr)
{
	int rc = dmar_dmamem_alloc(tag, va, 0, map);
	if (rc) {
		*map = 0;
		return rc;
	}
	rc = dmar_dmamap_load(tag, *map, *va, len, 0);
	if (rc) {
		(void)dmar_dmamem_free(tag, *va, *map);
		*map = 0;
		*va = 0;
		return rc;
	}
	*addr = dmar_dmamap_segs(*map)[0].addr;
	return 0;
}

void dmamem_put(struct dmar_dma_tag *tag, void *va, struct dmar_dmamap **map)
{
	if (!*map)
		return;
	(void)dmar_dmamap_unload(tag, *map);
	(void)dmar_dmamem_free(tag, va, *map);
	*map = 0;
}
