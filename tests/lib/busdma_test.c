#include "busdma_test.h"

#include "harness.h"

struct dmar_dma_tag *busdma_test_tag(struct dmar_busdma_dev *dev, uint64_t lowaddr,
				     uint64_t highaddr, uint64_t maxsize, unsigned nseg,
				     uint64_t maxsegsz, uint64_t boundary, uint64_t align)
{
	struct dmar_dma_tag_params p;
	struct dmar_dma_tag *t;
	dmar_dma_tag_params_default(&p);
	p.lowaddr = lowaddr;
	p.highaddr = highaddr;
	p.maxsize = maxsize;
	p.nsegments = nseg;
	p.maxsegsz = maxsegsz;
	p.boundary = boundary;
	p.alignment = align;
	REQUIRE_OK(dmar_dma_tag_create(dev, NULL, &p, &t));
	return t;
}
