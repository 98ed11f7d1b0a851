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
	struct busdma_space *sp = dev->space;
	unsigned n = dmar_domain_reserved_ranges(sp->dom, NULL, 0);
	if (!n)
		return 0;
	struct dmar_range *r = os->ops->alloc(os->ctx, n * sizeof(*r));
	if (!r)
		return DMAR_ENOMEM;
	n = dmar_domain_reserved_ranges(sp->dom, r, n);
	int rc = 0;
	dmar__busdma_lock(dev->bus, sp->lock);
	/* A range a device sharing the space reserved already merges with itself. */
	for (unsigned i = 0; !rc && i < n; i++)
		rc = dmar__iova_reserve(&sp->iova, r[i].start, r[i].end - r[i].start);
	dmar__busdma_unlock(dev->bus, sp->lock);
	os->ops->free(os->ctx, r, n * sizeof(*r));
	return rc;
}

static void space_free(struct dmar_busdma *bus, struct busdma_space *sp)
{
	/* No device is attached any more: detaching invalidated the domain's IOTLB, so the
	 * deferred ranges need no flush of their own; the domain frees their tables. */
	if (sp->pending) {
		bus->os->ops->free(bus->os->ctx, sp->pending,
				   sp->pending_cap * sizeof(*sp->pending));
		bus->os->ops->free(bus->os->ctx, sp->ready, sp->pending_cap * sizeof(*sp->ready));
	}
	if (sp->mode == DMAR_BUSDMA_TRANSLATE)
		dmar__busdma_cpu_fini(bus, sp);
	if (sp->dom)
		(void)dmar_domain_destroy(sp->dom);
	if (sp->mode == DMAR_BUSDMA_TRANSLATE)
		dmar__iova_fini(&sp->iova);
	dmar__busdma_lock_delete(bus->os, sp->lock);
	bus->os->ops->free(bus->os->ctx, sp, sizeof(*sp));
}

/* A new space: its own domain (translated, or pass-through for a bounced device) and,
 * when translated, its IOVA space. */
static int space_new(struct dmar_busdma_dev *dev, bool bounce, struct busdma_space **out)
{
	struct dmar_busdma *bus = dev->bus;
	const struct dmar_os *os = bus->os;
	/* Deferred unloads keep their IOVAs out of use until the flush (busdma.h). */
	struct dmar_domain_params params = { .kind = DMAR_DOMAIN_TRANSLATED,
					     .caller_holds_deferred = true };
	struct dmar_domain_info info;
	bool ok;
	struct busdma_space *sp = os->ops->alloc(os->ctx, sizeof(*sp));
	if (!sp)
		return DMAR_ENOMEM;
	dmar_memset(sp, 0, sizeof(*sp));
	sp->mode = DMAR_BUSDMA_BOUNCE;
	sp->phys_limit = UINT64_MAX;
	sp->lock = dmar__busdma_lock_new(os, &ok);
	int rc = ok ? 0 : DMAR_ENOMEM;
	if (bounce) {
		params.kind = DMAR_DOMAIN_PASSTHROUGH;
		params.identity_limit = bus->identity_limit;
	}
	if (!rc)
		rc = dmar_domain_create(dev->unit, &params, &sp->dom);
	if (rc) {
		space_free(bus, sp);
		return rc;
	}
	dmar_domain_get_info(sp->dom, &info);
	if (bounce) {
		if (!info.passthrough_tt)
			sp->phys_limit = bus->identity_limit ? bus->identity_limit - 1 : 0;
	} else {
		uint64_t last = info.width >= 64 ? UINT64_MAX : (1ull << info.width) - 1;
		/* Page 0 is never handed out: a zero device address looks like a bug. */
		rc = dmar__iova_init(&sp->iova, os, DMAR_PAGE_SIZE, last, bus->cfg.guard_pages);
		if (!rc) {
			sp->mode = DMAR_BUSDMA_TRANSLATE;
			if (last >= IOVA_INTR_START)
				rc = dmar__iova_reserve(&sp->iova, IOVA_INTR_START,
						  IOVA_INTR_END - IOVA_INTR_START + 1);
			if (!rc)
				rc = dmar__busdma_cpu_init(bus, sp);
		}
		if (rc) {
			space_free(bus, sp);
			return rc;
		}
	}
	*out = sp;
	return 0;
}

/* The space of a device already set up on this bus that shares one of dev's requester
 * ids (its domain holds that id's context entry), or NULL. Takes a reference. */
static struct busdma_space *space_shared(struct dmar_busdma_dev *dev)
{
	struct dmar_busdma *bus = dev->bus;
	uint16_t ids[DMAR_MAX_REQUESTER_IDS];
	unsigned n = dmar_device_requester_ids(bus->sys, dev->addr.segment, dev->addr.bus,
					       dev->addr.dev, dev->addr.fn, ids,
					       DMAR_MAX_REQUESTER_IDS);
	struct busdma_space *found = NULL;
	for (unsigned i = 0; i < n && !found; i++) {
		struct dmar_domain *dom = dmar_device_domain(dev->unit, ids[i]);
		if (!dom)
			continue;
		dmar__busdma_lock(bus, bus->lock);
		for (struct busdma_space *sp = bus->spaces; sp; sp = sp->next) {
			if (sp->dom == dom) {
				sp->refs++;
				found = sp;
				break;
			}
		}
		dmar__busdma_unlock(bus, bus->lock);
	}
	return found;
}

/* Drops a reference; the last one unlinks and frees the space. */
void dmar__busdma_space_put(struct dmar_busdma *bus, struct busdma_space *sp)
{
	dmar__busdma_lock(bus, bus->lock);
	bool last = --sp->refs == 0;
	if (last) {
		for (struct busdma_space **pp = &bus->spaces; *pp; pp = &(*pp)->next) {
			if (*pp == sp) {
				*pp = sp->next;
				break;
			}
		}
	}
	dmar__busdma_unlock(bus, bus->lock);
	if (last)
		space_free(bus, sp);
}

int dmar__busdma_dmar_device_init(struct dmar_busdma_dev *dev, bool bounce)
{
	struct dmar_busdma *bus = dev->bus;
	struct busdma_space *sp = space_shared(dev);
	bool fresh = sp == NULL;
	int rc = 0;
	if (fresh) {
		rc = space_new(dev, bounce, &sp);
		if (rc)
			return rc;
		sp->refs = 1;
	}
	dev->space = sp;
	rc = dmar_domain_attach_device(sp->dom, dev->addr.bus, dev->addr.dev, dev->addr.fn);
	if (!rc && sp->mode == DMAR_BUSDMA_TRANSLATE) {
		/* The core identity-maps the device's RMRRs at attach: keep loads off them. */
		rc = reserve_rmrrs(dev);
		if (rc)
			(void)dmar_domain_detach_device(sp->dom, dev->addr.bus, dev->addr.dev,
							dev->addr.fn);
	}
	if (rc) {
		dev->space = NULL;
		if (fresh)
			space_free(bus, sp);
		else
			dmar__busdma_space_put(bus, sp);
		return rc;
	}
	if (fresh) {
		dmar__busdma_lock(bus, bus->lock);
		sp->next = bus->spaces;
		bus->spaces = sp;
		dmar__busdma_unlock(bus, bus->lock);
	}
	dev->mode = sp->mode;
	dev->phys_limit = sp->phys_limit;
	return 0;
}

void dmar__busdma_dmar_device_fini(struct dmar_busdma_dev *dev)
{
	struct busdma_space *sp = dev->space;
	if (!sp)
		return;
	(void)dmar_domain_detach_device(sp->dom, dev->addr.bus, dev->addr.dev, dev->addr.fn);
	dmar__busdma_space_put(dev->bus, sp);
	dev->space = NULL;
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

	dmar__busdma_src_rewind(src);
	while ((rc = dmar__busdma_src_next(src, &p)) > 0) {
		p.pa = dmar__bounce_piece_addr(map, &p, &k);
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
			rc = dmar__busdma_seg_add(map, seg_start, seg_len);
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
	rc = seg_len ? dmar__busdma_seg_add(map, seg_start, seg_len) : 0;
	return rc ? rc : layout_flush(l);
}

static int space_reclaim(struct dmar_busdma *bus, struct busdma_space *sp);

/* layout() for a load within one page and not bounced: one piece, one page to map. */
static int load_one_page(struct layout *l, struct dmar_dmamap *map, struct busdma_src *src)
{
	struct busdma_piece p;
	dmar__busdma_src_rewind(src); /* (dmar__bounce_reserve may have walked it) */
	int rc = dmar__busdma_src_next(src, &p);
	if (rc <= 0)
		return rc ? rc : DMAR_EINVAL;
	uint64_t off = p.pa & BUSDMA_PAGE_MASK;
	rc = dmar__busdma_seg_add(map, l->iova + off, p.len);
	if (rc)
		return rc;
	rc = dmar_map(l->dom, l->iova, p.pa - off, DMAR_PAGE_SIZE, l->prot);
	if (rc)
		return rc;
	l->mapped = 1;
	return 0;
}

int dmar__busdma_dmar_load(struct dmar_dmamap *map, struct busdma_src *src, unsigned flags)
{
	struct dmar_dma_tag *tag = map->tag;
	struct dmar_busdma_dev *dev = tag->dev;
	uint64_t pages;
	int rc = 0;
	map->nbounce = 0;
	if (dmar__bounce_possible(tag) && (rc = dmar__bounce_reserve(map, src, flags)) != 0)
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
			dmar__bounce_unload(map);
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
	struct busdma_space *sp = dev->space;
	unsigned prot = (flags & DMAR_DMA_NOWRITE) ? DMAR_PROT_READ : DMAR_PROT_RW;
	if (pages == 1 && !map->nbounce && src->kind != BUSDMA_SRC_SG &&
	    req.align == DMAR_PAGE_SIZE && sp->ncpus) {
		rc = dmar__busdma_cpu_load(map, src, prot);
		if (rc <= 0) {
			if (rc)
				dmar__bounce_unload(map);
			return rc;
		}
	}
	dmar__busdma_lock(dev->bus, sp->lock);
	if (pages == 1 && req.align == DMAR_PAGE_SIZE && sp->nready &&
	    sp->ready[sp->nready - 1] + (DMAR_PAGE_SIZE - 1) <= req.max_addr) {
		/* A flushed one-page range (a page never crosses a boundary). */
		iova = sp->ready[--sp->nready];
		rc = 0;
	} else {
		rc = dmar__iova_alloc(&sp->iova, &req, &iova);
	}
	bool recover = sp->npending != 0 || sp->nready != 0;
	dmar__busdma_unlock(dev->bus, sp->lock);
	if (rc == DMAR_ENOSPC && recover && space_reclaim(dev->bus, sp) == 0) {
		/* No room: the ranges of deferred unloads come back with a flush. */
		dmar__busdma_lock(dev->bus, sp->lock);
		rc = dmar__iova_alloc(&sp->iova, &req, &iova);
		dmar__busdma_unlock(dev->bus, sp->lock);
	}
	if (rc) {
		dmar__bounce_unload(map);
		return rc == DMAR_EINVAL ? DMAR_ENOSPC : rc;
	}

	struct layout l = {
		.dom = sp->dom,
		.prot = prot,
		.iova = iova,
		.limit = pages,
	};
	if (pages == 1 && !map->nbounce && src->kind != BUSDMA_SRC_SG)
		rc = load_one_page(&l, map, src);
	else
		rc = layout(&l, map, src);
	if (rc) {
		if (l.mapped && dmar_unmap(sp->dom, iova, l.mapped * DMAR_PAGE_SIZE)) {
			/* Never hand out an IOVA whose mapping may remain, nor a page the
			 * device may still reach: keep both. */
			map->nbounce = 0;
			return rc;
		}
		dmar__bounce_unload(map);
		dmar__busdma_lock(dev->bus, sp->lock);
		dmar__iova_free(&sp->iova, iova, size);
		dmar__busdma_unlock(dev->bus, sp->lock);
		return rc;
	}
	map->iova = iova;
	map->iova_size = size;
	return 0;
}

int dmar__busdma_space_flush(struct dmar_busdma *bus, struct busdma_space *sp, uint64_t due)
{
	int crc = dmar__busdma_cpu_flush(bus, sp, due); /* (slot locks before the space's) */
	int rc = 0;
	dmar__busdma_lock(bus, sp->lock);
	if (sp->npending && sp->oldest_ns <= due) {
		rc = dmar_domain_flush(sp->dom);
		for (unsigned i = 0; !rc && i < sp->npending; i++) {
			const struct busdma_pending *pd = &sp->pending[i];
			if (pd->size == DMAR_PAGE_SIZE && sp->nready < sp->pending_cap)
				sp->ready[sp->nready++] = pd->iova;
			else
				(void)dmar__iova_free(&sp->iova, pd->iova, pd->size);
		}
		if (!rc)
			__atomic_store_n(&sp->npending, 0, __ATOMIC_RELAXED);
	}
	dmar__busdma_unlock(bus, sp->lock);
	return crc ? crc : rc;
}

/* Flushes the deferred unloads and gives every flushed range back to the IOVA
 * allocator, for a load that found no room. */
static int space_reclaim(struct dmar_busdma *bus, struct busdma_space *sp)
{
	int rc = dmar__busdma_space_flush(bus, sp, UINT64_MAX);
	if (rc)
		return rc;
	dmar__busdma_lock(bus, sp->lock);
	while (sp->nready)
		(void)dmar__iova_free(&sp->iova, sp->ready[--sp->nready], DMAR_PAGE_SIZE);
	dmar__busdma_unlock(bus, sp->lock);
	return 0;
}

/* A deferred unload: the entries cleared without waiting, the range kept out of use
 * until a flush. 1 when it could not be deferred (the caller unloads strictly). */
static int unload_deferred(struct dmar_busdma_dev *dev, struct dmar_dmamap *map)
{
	struct dmar_busdma *bus = dev->bus;
	struct busdma_space *sp = dev->space;
	const struct dmar_os *os = bus->os;
	/* The space lock is held across the domain's unmap (busdma before domain in the
	 * lock order): one critical section per unload. */
	dmar__busdma_lock(bus, sp->lock);
	if (!sp->pending) {
		unsigned cap = bus->cfg.defer_max ? bus->cfg.defer_max : 1;
		sp->pending = os->ops->alloc(os->ctx, cap * sizeof(*sp->pending));
		sp->ready = sp->pending ? os->ops->alloc(os->ctx, cap * sizeof(*sp->ready)) : NULL;
		if (!sp->ready && sp->pending) {
			os->ops->free(os->ctx, sp->pending, cap * sizeof(*sp->pending));
			sp->pending = NULL;
		}
		sp->pending_cap = sp->pending ? cap : 0;
	}
	if (sp->npending >= sp->pending_cap) {
		dmar__busdma_unlock(bus, sp->lock);
		return 1;
	}
	int rc = dmar_unmap_deferred(sp->dom, map->iova, map->iova_size);
	if (rc) {
		dmar__busdma_unlock(bus, sp->lock);
		return rc;
	}
	if (sp->npending == 0)
		sp->oldest_ns = os->ops->now_ns(os->ctx);
	sp->pending[sp->npending].iova = map->iova;
	sp->pending[sp->npending].size = map->iova_size;
	__atomic_store_n(&sp->npending, sp->npending + 1, __ATOMIC_RELAXED);
	bool full = sp->npending == sp->pending_cap;
	dmar__busdma_unlock(bus, sp->lock);
	map->iova = map->iova_size = 0;
	/* The count bound of the window; a failed flush leaves them for the next one. */
	if (full)
		(void)dmar__busdma_space_flush(bus, sp, UINT64_MAX);
	return 0;
}

int dmar__busdma_dmar_unload(struct dmar_dmamap *map)
{
	struct dmar_busdma_dev *dev = map->tag->dev;
	struct busdma_space *sp = dev->space;
	if (map->cpu)
		return dmar__busdma_cpu_unload(map, dev->strict || map->strict);
	if (!dev->strict && !map->strict && map->nbounce == 0) {
		int drc = unload_deferred(dev, map);
		if (drc <= 0)
			return drc;
	}
	int rc = dmar_unmap(sp->dom, map->iova, map->iova_size);
	if (rc)
		return rc;
	dmar__bounce_unload(map);
	dmar__busdma_lock(dev->bus, sp->lock);
	dmar__iova_free(&sp->iova, map->iova, map->iova_size);
	dmar__busdma_unlock(dev->bus, sp->lock);
	map->iova = map->iova_size = 0;
	return 0;
}
