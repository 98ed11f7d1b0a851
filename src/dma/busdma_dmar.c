/*
 * busdma_dmar.c - the translating backend: each device has its own domain and IOVA
 * space; a load maps the buffer's pages at one fresh IOVA range (so discontiguous
 * pages become one segment), an unload unmaps it (the core invalidates and waits) and
 * gives the range back.
 */
#include "busdma_impl.h"
#include "lib/util.h"

static int reserve_rmrrs(struct dmar_busdma_dev *dev)
{
	const struct dmar_os *os = dev->bus->os;
	unsigned n = dmar_domain_reserved_ranges(dev->dom, NULL, 0);
	if (!n)
		return 0;
	struct dmar_range *r = os->ops->alloc(os->ctx, n * sizeof(*r));
	if (!r)
		return DMAR_ENOMEM;
	n = dmar_domain_reserved_ranges(dev->dom, r, n);
	int rc = 0;
	for (unsigned i = 0; !rc && i < n; i++)
		rc = iova_reserve(&dev->iova, r[i].start, r[i].end - r[i].start);
	os->ops->free(os->ctx, r, n * sizeof(*r));
	return rc;
}

int busdma_dmar_device_init(struct dmar_busdma_dev *dev, bool bounce)
{
	struct dmar_busdma *bus = dev->bus;
	struct dmar_domain_params params = { .kind = DMAR_DOMAIN_TRANSLATED };
	struct dmar_domain_info info;
	int rc;

	if (bounce) {
		params.kind = DMAR_DOMAIN_PASSTHROUGH;
		params.identity_limit = bus->identity_limit;
	}
	rc = dmar_domain_create(dev->unit, &params, &dev->dom);
	if (rc)
		return rc;
	dmar_domain_get_info(dev->dom, &info);
	if (bounce) {
		dev->mode = DMAR_BUSDMA_BOUNCE;
		if (!info.passthrough_tt)
			dev->phys_limit = bus->identity_limit ? bus->identity_limit - 1 : 0;
	} else {
		dev->mode = DMAR_BUSDMA_TRANSLATE;
		uint64_t last = info.width >= 64 ? UINT64_MAX : (1ull << info.width) - 1;
		/* Page 0 is never handed out: a zero device address looks like a bug. */
		rc = iova_init(&dev->iova, bus->os, DMAR_PAGE_SIZE, last, bus->cfg.guard_pages);
		if (!rc && last >= IOVA_INTR_START)
			rc = iova_reserve(&dev->iova, IOVA_INTR_START,
					  IOVA_INTR_END - IOVA_INTR_START + 1);
		if (rc)
			goto fail;
	}
	rc = dmar_domain_attach(dev->dom, dev->sid);
	if (rc)
		goto fail;
	if (!bounce) {
		/* The core identity-maps the device's RMRRs at attach: keep loads off them. */
		rc = reserve_rmrrs(dev);
		if (rc) {
			dmar_domain_detach(dev->dom, dev->sid);
			goto fail;
		}
	}
	return 0;
fail:
	if (!bounce)
		iova_fini(&dev->iova);
	dmar_domain_destroy(dev->dom);
	dev->dom = NULL;
	dev->mode = DMAR_BUSDMA_BOUNCE;
	dev->phys_limit = UINT64_MAX;
	return rc;
}

void busdma_dmar_device_fini(struct dmar_busdma_dev *dev)
{
	if (!dev->dom)
		return;
	dmar_domain_detach(dev->dom, dev->sid);
	dmar_domain_destroy(dev->dom);
	if (dev->mode == DMAR_BUSDMA_TRANSLATE)
		iova_fini(&dev->iova);
	dev->dom = NULL;
}

/* Lays the source out at IOVA pages from `iova` on: each piece takes a fresh IOVA page
 * unless it continues the previous piece inside the same physical page. With dom NULL
 * it only counts the pages (l->pages); otherwise it maps them (runs of physically
 * contiguous pages in one dmar_map) and builds the segments; l->mapped holds how many pages from `iova` on are mapped, also after a failure. */
struct layout {
	struct dmar_domain *dom;
	unsigned prot;
	uint64_t iova;
	uint64_t pages;      /* IOVA pages used */
	uint64_t limit;      /* pages allocated at iova (mapping mode) */
	uint64_t mapped;     /* of those, mapped */
	uint64_t run_pa;     /* physical start of the run not yet mapped */
	uint64_t run_pages;
};

static int layout_flush(struct layout *l)
{
	if (!l->run_pages)
		return 0;
	uint64_t at = l->iova + l->mapped * DMAR_PAGE_SIZE;
	int rc = dmar_map(l->dom, at, l->run_pa, l->run_pages * DMAR_PAGE_SIZE, l->prot);
	if (rc)
		return rc;
	l->mapped += l->run_pages;
	l->run_pages = 0;
	return 0;
}

static int layout(struct layout *l, struct dmar_dmamap *map, struct busdma_src *src)
{
	struct busdma_piece p;
	uint64_t prev_end = 0, seg_start = 0, seg_len = 0;
	bool have_prev = false;
	unsigned k = 0;
	int rc;

	busdma_src_rewind(src);
	while ((rc = busdma_src_next(src, &p)) > 0) {
		p.pa = bounce_piece_addr(map, &p, &k);
		uint64_t off = p.pa & BUSDMA_PAGE_MASK;
		uint64_t dev_addr;
		if (have_prev && prev_end == p.pa && off) {
			dev_addr = l->iova + (l->pages - 1) * DMAR_PAGE_SIZE + off;
		} else {
			uint64_t page_pa = p.pa - off;
			if (l->dom && l->pages == l->limit)
				return DMAR_EINVAL; /* the buffer's translation changed */
			dev_addr = l->iova + l->pages * DMAR_PAGE_SIZE + off;
			l->pages++;
			if (l->dom) {
				if (l->run_pages && page_pa == l->run_pa + l->run_pages * DMAR_PAGE_SIZE) {
					l->run_pages++;
				} else {
					rc = layout_flush(l);
					if (rc)
						return rc;
					l->run_pa = page_pa;
					l->run_pages = 1;
				}
			}
		}
		/* Device-contiguous pieces go to the segment list as one range. */
		if (l->dom && seg_len && dev_addr != seg_start + seg_len) {
			rc = busdma_seg_add(map, seg_start, seg_len);
			if (rc)
				return rc;
			seg_len = 0;
		}
		if (!seg_len)
			seg_start = dev_addr;
		seg_len += p.len;
		prev_end = p.pa + p.len;
		have_prev = true;
	}
	if (rc < 0)
		return rc;
	if (!l->dom)
		return 0;
	rc = seg_len ? busdma_seg_add(map, seg_start, seg_len) : 0;
	return rc ? rc : layout_flush(l);
}

int busdma_dmar_load(struct dmar_dmamap *map, struct busdma_src *src, unsigned flags)
{
	struct dmar_dma_tag *tag = map->tag;
	struct dmar_busdma_dev *dev = tag->dev;
	uint64_t pages;
	int rc = bounce_reserve(map, src, flags);
	if (rc)
		return rc;

	/* Every piece but an SG list's is one page of its own: no counting walk needed,
	 * unless pieces were moved to bounce pages. */
	switch (map->nbounce ? BUSDMA_SRC_SG : src->kind) {
	case BUSDMA_SRC_VIRT:
		pages = (((uintptr_t)src->va & BUSDMA_PAGE_MASK) + src->len + BUSDMA_PAGE_MASK) >>
			DMAR_PAGE_SHIFT;
		break;
	case BUSDMA_SRC_PHYS:
		pages = ((src->pa & BUSDMA_PAGE_MASK) + src->len + BUSDMA_PAGE_MASK) >> DMAR_PAGE_SHIFT;
		break;
	case BUSDMA_SRC_PAGES:
		pages = (src->offset + src->len + BUSDMA_PAGE_MASK) >> DMAR_PAGE_SHIFT;
		break;
	default: {
		struct layout count = { 0 };
		rc = layout(&count, map, src);
		if (rc) {
			bounce_unload(map);
			return rc;
		}
		pages = count.pages;
		break;
	}
	}

	uint64_t size = pages * DMAR_PAGE_SIZE;
	struct iova_request req = {
		.size = size,
		.align = dmar_max_u64(tag->p.alignment, DMAR_PAGE_SIZE),
		.boundary = tag->p.boundary && size <= tag->p.boundary ? tag->p.boundary : 0,
		.max_addr = tag->p.lowaddr,
	};
	uint64_t iova;
	busdma_lock(dev->bus, dev->lock);
	rc = iova_alloc(&dev->iova, &req, &iova);
	busdma_unlock(dev->bus, dev->lock);
	if (rc) {
		bounce_unload(map);
		return rc == DMAR_EINVAL ? DMAR_ENOSPC : rc;
	}

	struct layout l = {
		.dom = dev->dom,
		.prot = (flags & DMAR_DMA_NOWRITE) ? DMAR_PROT_READ : DMAR_PROT_RW,
		.iova = iova,
		.limit = pages,
	};
	rc = layout(&l, map, src);
	if (rc) {
		if (l.mapped && dmar_unmap(dev->dom, iova, l.mapped * DMAR_PAGE_SIZE)) {
			/* Never hand out an IOVA whose mapping may remain, nor a page the
			 * device may still reach: keep both. */
			map->nbounce = 0;
			return rc;
		}
		bounce_unload(map);
		busdma_lock(dev->bus, dev->lock);
		iova_free(&dev->iova, iova, size);
		busdma_unlock(dev->bus, dev->lock);
		return rc;
	}
	map->iova = iova;
	map->iova_size = size;
	return 0;
}

int busdma_dmar_unload(struct dmar_dmamap *map)
{
	struct dmar_busdma_dev *dev = map->tag->dev;
	int rc = dmar_unmap(dev->dom, map->iova, map->iova_size);
	if (rc)
		return rc;
	bounce_unload(map);
	busdma_lock(dev->bus, dev->lock);
	iova_free(&dev->iova, map->iova, map->iova_size);
	busdma_unlock(dev->bus, dev->lock);
	map->iova = map->iova_size = 0;
	return 0;
}
