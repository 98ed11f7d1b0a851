/*
 * busdma.c - the busdma API: context, devices, tags, maps, load sources, segment
 * lists, and the dispatch to the translating (busdma_dmar.c) or bounce (bounce.c)
 * backend.
 */
#include "busdma_impl.h"
#include "lib/util.h"

static void *dmar__os_alloc(const struct dmar_os *os, size_t size)
{
	return os->ops->alloc(os->ctx, size);
}

static void dmar__os_free(const struct dmar_os *os, void *p, size_t size)
{
	if (p)
		os->ops->free(os->ctx, p, size);
}

/* Adjusts a count that the bus lock guards. */
static void count_add(struct dmar_busdma *bus, unsigned *count, int delta)
{
	dmar__busdma_lock(bus, bus->lock);
	*count += (unsigned)delta;
	dmar__busdma_unlock(bus, bus->lock);
}

/* A lock, or NULL (then *ok stays true) when the OS layer has no locks. */
void *dmar__busdma_lock_new(const struct dmar_os *os, bool *ok)
{
	*ok = true;
	if (!os->ops->lock_create)
		return NULL;
	void *l = os->ops->lock_create(os->ctx);
	*ok = l != NULL;
	return l;
}

void dmar__busdma_lock_delete(const struct dmar_os *os, void *lock)
{
	if (lock)
		os->ops->lock_destroy(os->ctx, lock);
}

/* ----------------------------------------------------------------- context --- */

int dmar_busdma_create(const struct dmar_os *os, const struct dmar_config *cfg,
		       struct dmar_system *sys, struct dmar_busdma **out)
{
	if (!os || !os->ops || !cfg || !out || !os->ops->alloc || !os->ops->free ||
	    !os->ops->page_alloc || !os->ops->page_free || !os->ops->virt_to_phys ||
	    !os->ops->phys_to_virt)
		return DMAR_EINVAL;
	struct dmar_busdma *bus = dmar__os_alloc(os, sizeof(*bus));
	if (!bus)
		return DMAR_ENOMEM;
	dmar_memset(bus, 0, sizeof(*bus));
	bool ok;
	bus->lock = dmar__busdma_lock_new(os, &ok);
	if (!ok) {
		dmar__os_free(os, bus, sizeof(*bus));
		return DMAR_ENOMEM;
	}
	bus->os = os;
	bus->cfg = *cfg;
	bus->sys = cfg->enable ? sys : NULL;
	bus->pool_max = DMAR_BUSDMA_BOUNCE_DEFAULT;
	bus->identity_limit = 1ull << 32;
	*out = bus;
	return 0;
}

int dmar_busdma_destroy(struct dmar_busdma *bus)
{
	if (!bus)
		return DMAR_EINVAL;
	dmar__busdma_lock(bus, bus->lock);
	unsigned ndevs = bus->ndevs;
	dmar__busdma_unlock(bus, bus->lock);
	if (ndevs)
		return DMAR_EBUSY;
	dmar__bounce_pool_fini(bus);
	const struct dmar_os *os = bus->os;
	dmar__busdma_lock_delete(os, bus->lock);
	dmar__os_free(os, bus, sizeof(*bus));
	return 0;
}

void dmar_busdma_set_bounce_limit(struct dmar_busdma *bus, unsigned max_pages)
{
	dmar__busdma_lock(bus, bus->lock);
	bus->pool_max = max_pages;
	dmar__busdma_unlock(bus, bus->lock);
}

void dmar_busdma_set_identity_limit(struct dmar_busdma *bus, uint64_t limit)
{
	dmar__busdma_lock(bus, bus->lock);
	bus->identity_limit = limit;
	dmar__busdma_unlock(bus, bus->lock);
}

void dmar_busdma_get_stats(struct dmar_busdma *bus, struct dmar_busdma_stats *st)
{
	dmar__busdma_lock(bus, bus->lock);
	st->pool_pages = bus->pool_pages;
	st->pool_free = bus->pool_nfree;
	st->bounced_loads = bus->bounced_loads;
	st->bounce_copies = bus->bounce_copies;
	dmar__busdma_unlock(bus, bus->lock);
}

/* ------------------------------------------------------------------ device --- */

int dmar_busdma_device(struct dmar_busdma *bus, struct dmar_pci_addr addr,
		       dmar_secondary_bus_fn secondary_bus, void *ctx,
		       struct dmar_busdma_dev **out)
{
	if (!bus || !out || addr.dev > 31 || addr.fn > 7)
		return DMAR_EINVAL;
	const struct dmar_os *os = bus->os;
	struct dmar_busdma_dev *dev = dmar__os_alloc(os, sizeof(*dev));
	if (!dev)
		return DMAR_ENOMEM;
	dmar_memset(dev, 0, sizeof(*dev));
	dev->bus = bus;
	dev->addr = addr;
	dev->sid = (uint16_t)(addr.bus << 8 | addr.dev << 3 | addr.fn);
	dev->mode = DMAR_BUSDMA_BOUNCE;
	dev->phys_limit = UINT64_MAX;
	dev->strict = bus->cfg.strict;
	if (bus->sys)
		dev->unit = dmar_unit_for_device(bus->sys, addr.segment, addr.bus, addr.dev,
						 addr.fn, secondary_bus, ctx);
	if (dev->unit) {
		bool bounce = dmar_config_device_bounces(&bus->cfg, addr);
		int rc = dmar__busdma_dmar_device_init(dev, bounce);
		if (rc) {
			dmar__os_free(os, dev, sizeof(*dev));
			return rc;
		}
	}
	count_add(bus, &bus->ndevs, 1);
	*out = dev;
	return 0;
}

int dmar_busdma_device_destroy(struct dmar_busdma_dev *dev)
{
	if (!dev)
		return DMAR_EINVAL;
	struct dmar_busdma *bus = dev->bus;
	dmar__busdma_lock(bus, bus->lock);
	unsigned ntags = dev->ntags;
	dmar__busdma_unlock(bus, bus->lock);
	if (ntags)
		return DMAR_EBUSY;
	if (dev->unit)
		dmar__busdma_dmar_device_fini(dev);
	count_add(bus, &bus->ndevs, -1);
	dmar__os_free(bus->os, dev, sizeof(*dev));
	return 0;
}

void dmar_busdma_device_set_strict(struct dmar_busdma_dev *dev, bool strict)
{
	dev->strict = strict;
}

/* Flushes the spaces with deferred unloads (only_old: those older than defer_us), each
 * once per call: pinned under the bus lock, flushed without it. */
static int flush_spaces(struct dmar_busdma *bus, bool only_old)
{
	const struct dmar_os *os = bus->os;
	uint64_t now = only_old ? os->ops->now_ns(os->ctx) : 0;
	int first = 0;
	dmar__busdma_lock(bus, bus->lock);
	unsigned gen = ++bus->flush_gen;
	dmar__busdma_unlock(bus, bus->lock);
	for (;;) {
		struct busdma_space *pick = NULL;
		dmar__busdma_lock(bus, bus->lock);
		for (struct busdma_space *sp = bus->spaces; sp && !pick; sp = sp->next) {
			/* npending is read without the space lock: a stale answer only
			 * moves a flush to the next call. */
			if (sp->flushed_gen == gen ||
			    (__atomic_load_n(&sp->npending, __ATOMIC_RELAXED) == 0 &&
			     __atomic_load_n(&sp->cpus_pending, __ATOMIC_RELAXED) == 0))
				continue;
			pick = sp;
		}
		if (pick) {
			pick->refs++;
			pick->flushed_gen = gen;
		}
		dmar__busdma_unlock(bus, bus->lock);
		if (!pick)
			return first;
		/* Only deferred unloads of at least defer_us ago, for the tick. */
		uint64_t due = only_old ? (now > bus->cfg.defer_ns ? now - bus->cfg.defer_ns : 0)
					: UINT64_MAX;
		int rc = dmar__busdma_space_flush(bus, pick, due);
		if (rc && !first)
			first = rc;
		dmar__busdma_space_put(bus, pick);
	}
}

int dmar_busdma_flush(struct dmar_busdma *bus)
{
	return flush_spaces(bus, false);
}

int dmar_busdma_tick(struct dmar_busdma *bus)
{
	return flush_spaces(bus, true);
}

enum dmar_busdma_mode dmar_busdma_device_mode(const struct dmar_busdma_dev *dev)
{
	return dev->mode;
}

struct dmar_domain *dmar_busdma_device_domain(struct dmar_busdma_dev *dev)
{
	return dev->space ? dev->space->dom : NULL;
}

uint16_t dmar_busdma_device_sid(const struct dmar_busdma_dev *dev)
{
	return dev->sid;
}

/* -------------------------------------------------------------------- tags --- */

void dmar_dma_tag_params_default(struct dmar_dma_tag_params *p)
{
	dmar_memset(p, 0, sizeof(*p));
	p->alignment = 1;
	p->lowaddr = UINT64_MAX;
	p->highaddr = UINT64_MAX;
	p->maxsize = 1ull << 30;
	p->maxsegsz = 1ull << 30;
	p->nsegments = 1;
}

static bool pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static int tag_params_check(struct dmar_dma_tag_params *p)
{
	if (p->alignment == 0)
		p->alignment = 1;
	if (!pow2(p->alignment))
		return DMAR_EINVAL;
	if (p->boundary && (!pow2(p->boundary) || p->boundary < DMAR_PAGE_SIZE ||
			    p->boundary < p->alignment))
		return DMAR_EINVAL;
	if (p->lowaddr > p->highaddr || !p->maxsize || !p->maxsegsz || p->flags)
		return DMAR_EINVAL;
	if (p->nsegments < 1 || p->nsegments > DMAR_DMA_MAX_SEGMENTS)
		return DMAR_EINVAL;
	/* A maxsegsz split must leave the next segment aligned. */
	if (p->maxsegsz < p->alignment)
		return DMAR_EINVAL;
	p->maxsegsz &= ~(p->alignment - 1);
	if (p->boundary && p->maxsegsz > p->boundary)
		p->maxsegsz = p->boundary;
	return 0;
}

int dmar_dma_tag_create(struct dmar_busdma_dev *dev, struct dmar_dma_tag *parent,
			const struct dmar_dma_tag_params *params, struct dmar_dma_tag **out)
{
	if (!params || !out || (!dev && !parent) || (dev && parent && parent->dev != dev))
		return DMAR_EINVAL;
	if (!dev)
		dev = parent->dev;
	struct dmar_dma_tag_params p = *params;
	if (parent) {
		const struct dmar_dma_tag_params *q = &parent->p;
		p.alignment = dmar_max_u64(p.alignment, q->alignment);
		if (q->boundary)
			p.boundary = p.boundary ? dmar_min_u64(p.boundary,
							       q->boundary) : q->boundary;
		p.lowaddr = dmar_min_u64(p.lowaddr, q->lowaddr);
		p.highaddr = dmar_max_u64(p.highaddr, q->highaddr);
		p.maxsize = dmar_min_u64(p.maxsize, q->maxsize);
		p.maxsegsz = dmar_min_u64(p.maxsegsz, q->maxsegsz);
		p.nsegments = p.nsegments < q->nsegments ? p.nsegments : q->nsegments;
	}
	int rc = tag_params_check(&p);
	if (rc)
		return rc;
	struct dmar_busdma *bus = dev->bus;
	struct dmar_dma_tag *tag = dmar__os_alloc(bus->os, sizeof(*tag));
	if (!tag)
		return DMAR_ENOMEM;
	dmar_memset(tag, 0, sizeof(*tag));
	tag->dev = dev;
	tag->parent = parent;
	tag->p = p;
	dmar__busdma_lock(bus, bus->lock);
	dev->ntags++;
	if (parent)
		parent->nchildren++;
	dmar__busdma_unlock(bus, bus->lock);
	*out = tag;
	return 0;
}

int dmar_dma_tag_destroy(struct dmar_dma_tag *tag)
{
	if (!tag)
		return DMAR_EINVAL;
	struct dmar_busdma *bus = tag->dev->bus;
	dmar__busdma_lock(bus, bus->lock);
	if (tag->nmaps || tag->nchildren) {
		dmar__busdma_unlock(bus, bus->lock);
		return DMAR_EBUSY;
	}
	tag->dev->ntags--;
	if (tag->parent)
		tag->parent->nchildren--;
	dmar__busdma_unlock(bus, bus->lock);
	dmar__os_free(bus->os, tag, sizeof(*tag));
	return 0;
}

void dmar_dma_tag_get_params(const struct dmar_dma_tag *tag, struct dmar_dma_tag_params *p)
{
	*p = tag->p;
}

bool dmar__busdma_addr_ok(const struct dmar_dma_tag *tag, uint64_t pa, uint64_t len)
{
	uint64_t last = pa + len - 1;
	if (last < pa || last > tag->dev->phys_limit)
		return false;
	/* Usable: wholly at or below lowaddr, or wholly above highaddr. */
	return last <= tag->p.lowaddr || pa > tag->p.highaddr;
}

/* -------------------------------------------------------------------- maps --- */

int dmar_dmamap_create(struct dmar_dma_tag *tag, unsigned flags, struct dmar_dmamap **out)
{
	if (!tag || !out || flags)
		return DMAR_EINVAL;
	struct dmar_busdma *bus = tag->dev->bus;
	struct dmar_dmamap *map = dmar__os_alloc(bus->os, sizeof(*map));
	if (!map)
		return DMAR_ENOMEM;
	dmar_memset(map, 0, sizeof(*map));
	map->maxsegs = tag->p.nsegments;
	map->segs = dmar__os_alloc(bus->os, (size_t)map->maxsegs * sizeof(*map->segs));
	if (!map->segs) {
		dmar__os_free(bus->os, map, sizeof(*map));
		return DMAR_ENOMEM;
	}
	map->tag = tag;
	count_add(bus, &tag->nmaps, 1);
	*out = map;
	return 0;
}

int dmar_dmamap_destroy(struct dmar_dma_tag *tag, struct dmar_dmamap *map)
{
	if (!tag || !map || map->tag != tag || map->mem_va)
		return DMAR_EINVAL;
	if (map->loaded)
		return DMAR_EBUSY;
	struct dmar_busdma *bus = tag->dev->bus;
	count_add(bus, &tag->nmaps, -1);
	dmar__os_free(bus->os, map->bounce, (size_t)map->bounce_cap * sizeof(*map->bounce));
	dmar__os_free(bus->os, map->segs, (size_t)map->maxsegs * sizeof(*map->segs));
	dmar__os_free(bus->os, map, sizeof(*map));
	return 0;
}

/* More than a page, from the OS layer's contiguous allocator. */
static int dmamem_contig(struct dmar_dma_tag *tag, struct dmar_dmamap *map)
{
	const struct dmar_os *os = tag->dev->bus->os;
	if (!os->ops->contig_alloc || !os->ops->contig_free)
		return DMAR_ENOTSUP;
	uint64_t npages = (tag->p.maxsize + DMAR_PAGE_SIZE - 1) / DMAR_PAGE_SIZE;
	uint64_t align = dmar_max_u64(tag->p.alignment, DMAR_PAGE_SIZE);
	uint64_t max_addr = UINT64_MAX;
	if (tag->dev->mode == DMAR_BUSDMA_BOUNCE)
		max_addr = dmar_min_u64(tag->p.lowaddr, tag->dev->phys_limit);
	map->mem_va = os->ops->contig_alloc(os->ctx, (size_t)npages, align, max_addr,
					    &map->mem_pa);
	if (!map->mem_va)
		return DMAR_ENOMEM;
	map->mem_pages = npages;
	dmar_memset(map->mem_va, 0, (size_t)(npages * DMAR_PAGE_SIZE));
	return 0;
}

int dmar_dmamem_alloc(struct dmar_dma_tag *tag, void **vaddr, unsigned flags,
		      struct dmar_dmamap **mapp)
{
	if (!tag || !vaddr || !mapp)
		return DMAR_EINVAL;
	struct dmar_dmamap *map;
	int rc = dmar_dmamap_create(tag, flags, &map);
	if (rc)
		return rc;
	if (tag->p.maxsize > DMAR_PAGE_SIZE) {
		rc = dmamem_contig(tag, map);
	} else if (tag->dev->mode == DMAR_BUSDMA_BOUNCE) {
		rc = dmar__bounce_alloc_fitting_page(tag, &map->mem_va, &map->mem_pa);
	} else {
		const struct dmar_os *os = tag->dev->bus->os;
		map->mem_va = os->ops->page_alloc(os->ctx, &map->mem_pa);
		rc = map->mem_va ? 0 : DMAR_ENOMEM;
	}
	if (rc) {
		dmar_dmamap_destroy(tag, map);
		return rc;
	}
	if (map->mem_pages <= 1)
		dmar_memset(map->mem_va, 0, DMAR_PAGE_SIZE);
	*vaddr = map->mem_va;
	*mapp = map;
	return 0;
}

int dmar_dmamem_free(struct dmar_dma_tag *tag, void *vaddr, struct dmar_dmamap *map)
{
	if (!tag || !map || map->tag != tag || !map->mem_va || map->mem_va != vaddr)
		return DMAR_EINVAL;
	if (map->loaded)
		return DMAR_EBUSY;
	const struct dmar_os *os = tag->dev->bus->os;
	if (map->mem_pages > 1)
		os->ops->contig_free(os->ctx, map->mem_va, map->mem_pa, (size_t)map->mem_pages);
	else
		os->ops->page_free(os->ctx, map->mem_va, map->mem_pa);
	map->mem_va = NULL;
	map->mem_pages = 0;
	return dmar_dmamap_destroy(tag, map);
}

/* ----------------------------------------------------------------- sources --- */

void dmar__busdma_src_rewind(struct busdma_src *s)
{
	s->done = 0;
	s->idx = 0;
}

int dmar__busdma_src_next(struct busdma_src *s, struct busdma_piece *p)
{
	uint64_t left, in_page;

	switch (s->kind) {
	case BUSDMA_SRC_VIRT:
		if (s->done == s->len)
			return 0;
		p->va = s->va + s->done;
		p->pa = s->os->ops->virt_to_phys(s->os->ctx, p->va);
		if (p->pa == UINT64_MAX)
			return DMAR_EINVAL;
		left = s->len - s->done;
		in_page = DMAR_PAGE_SIZE - (p->pa & BUSDMA_PAGE_MASK);
		break;
	case BUSDMA_SRC_PHYS:
		if (s->done == s->len)
			return 0;
		p->va = NULL;
		p->pa = s->pa + s->done;
		left = s->len - s->done;
		in_page = DMAR_PAGE_SIZE - (p->pa & BUSDMA_PAGE_MASK);
		break;
	case BUSDMA_SRC_PAGES: {
		if (s->done == s->len)
			return 0;
		uint64_t pos = s->offset + s->done;
		uint64_t page = s->pages[pos >> DMAR_PAGE_SHIFT];
		if (page & BUSDMA_PAGE_MASK)
			return DMAR_EINVAL;
		p->va = NULL;
		p->pa = page + (pos & BUSDMA_PAGE_MASK);
		left = s->len - s->done;
		in_page = DMAR_PAGE_SIZE - (pos & BUSDMA_PAGE_MASK);
		break;
	}
	case BUSDMA_SRC_SG:
		if (s->idx == s->nsg)
			return 0;
		p->va = NULL;
		p->pa = s->sg[s->idx].addr + s->done;
		left = s->sg[s->idx].len - s->done;
		in_page = DMAR_PAGE_SIZE - (p->pa & BUSDMA_PAGE_MASK);
		break;
	default:
		return DMAR_EINVAL;
	}
	p->len = dmar_min_u64(left, in_page);
	s->done += p->len;
	if (s->kind == BUSDMA_SRC_SG && s->done == s->sg[s->idx].len) {
		s->idx++;
		s->done = 0;
	}
	return 1;
}

/* -------------------------------------------------------------- segments --- */

int dmar__busdma_seg_add(struct dmar_dmamap *map, uint64_t addr, uint64_t len)
{
	const struct dmar_dma_tag_params *p = &map->tag->p;
	uint64_t bmask = p->boundary ? p->boundary - 1 : UINT64_MAX;

	while (len) {
		struct dmar_dma_segment *s = map->nsegs ? &map->segs[map->nsegs - 1] : NULL;
		uint64_t room;
		if (s && s->addr + s->len == addr && s->len < p->maxsegsz &&
		    (!p->boundary || (addr & bmask) != 0)) {
			room = p->maxsegsz - s->len;
		} else {
			if (map->nsegs == map->maxsegs)
				return DMAR_ERANGE;
			if (addr & (p->alignment - 1))
				return DMAR_EINVAL;
			s = &map->segs[map->nsegs++];
			s->addr = addr;
			s->len = 0;
			room = p->maxsegsz;
		}
		if (p->boundary)
			room = dmar_min_u64(room, p->boundary - (addr & bmask));
		uint64_t n = dmar_min_u64(room, len);
		s->len += n;
		addr += n;
		len -= n;
	}
	return 0;
}

const struct dmar_dma_segment *dmar_dmamap_segs(const struct dmar_dmamap *map)
{
	return map->segs;
}

unsigned dmar_dmamap_nsegs(const struct dmar_dmamap *map)
{
	return map->nsegs;
}

unsigned dmar_dmamap_copy_segs(const struct dmar_dmamap *map, struct dmar_dma_segment *out,
			       unsigned max)
{
	for (unsigned i = 0; i < map->nsegs && i < max; i++)
		out[i] = map->segs[i];
	return map->nsegs;
}

bool dmar_dmamap_is_bounced(const struct dmar_dmamap *map)
{
	return map->nbounce != 0;
}

/* ------------------------------------------------------------------- loads --- */

static int load(struct dmar_dma_tag *tag, struct dmar_dmamap *map, struct busdma_src *src,
		unsigned flags)
{
	if (map->loaded || map->tag != tag)
		return DMAR_EINVAL;
	if (flags & ~(DMAR_DMA_WAITOK | DMAR_DMA_NOWRITE | DMAR_DMA_STRICT))
		return DMAR_EINVAL;
	map->strict = (flags & DMAR_DMA_STRICT) != 0;
	/* The top pages of the 64-bit space are refused so page counts cannot wrap. */
	if (src->len == 0 || src->len > tag->p.maxsize ||
	    src->len > UINT64_MAX - 2 * (uint64_t)DMAR_PAGE_SIZE)
		return DMAR_EINVAL;
	src->os = tag->dev->bus->os; /* (every walk of src rewinds its cursor first) */
	map->nsegs = 0;
	int rc = tag->dev->mode == DMAR_BUSDMA_TRANSLATE ? dmar__busdma_dmar_load(map, src, flags)
							  : dmar__bounce_load(map, src, flags);
	if (rc) {
		map->nsegs = 0;
		return rc;
	}
	map->loaded = true;
	return 0;
}

int dmar_dmamap_load(struct dmar_dma_tag *tag, struct dmar_dmamap *map, const void *buf,
		     uint64_t len, unsigned flags)
{
	if (!tag || !map || !buf || len > (uint64_t)(UINTPTR_MAX - (uintptr_t)buf))
		return DMAR_EINVAL;
	/* Only the fields of this kind are set (the others are never read): zeroing the
	 * whole descriptor costs more than the rest of the call on a one-page load. */
	struct busdma_src src;
	src.kind = BUSDMA_SRC_VIRT;
	src.va = buf;
	src.len = len;
	return load(tag, map, &src, flags);
}

int dmar_dmamap_load_phys(struct dmar_dma_tag *tag, struct dmar_dmamap *map, uint64_t paddr,
			  uint64_t len, unsigned flags)
{
	if (!tag || !map || paddr + len < paddr)
		return DMAR_EINVAL;
	struct busdma_src src;
	src.kind = BUSDMA_SRC_PHYS;
	src.pa = paddr;
	src.len = len;
	return load(tag, map, &src, flags);
}

int dmar_dmamap_load_pages(struct dmar_dma_tag *tag, struct dmar_dmamap *map,
			   const uint64_t *pages, unsigned npages, uint64_t offset, uint64_t len,
			   unsigned flags)
{
	if (!tag || !map || !pages || !npages || offset >= DMAR_PAGE_SIZE ||
	    len > (uint64_t)npages * DMAR_PAGE_SIZE - offset)
		return DMAR_EINVAL;
	struct busdma_src src = { .kind = BUSDMA_SRC_PAGES, .pages = pages, .npages = npages,
				  .offset = offset, .len = len };
	return load(tag, map, &src, flags);
}

int dmar_dmamap_load_sg(struct dmar_dma_tag *tag, struct dmar_dmamap *map,
			const struct dmar_dma_segment *sg, unsigned nsg, unsigned flags)
{
	if (!tag || !map || !sg || !nsg)
		return DMAR_EINVAL;
	uint64_t total = 0;
	for (unsigned i = 0; i < nsg; i++) {
		if (!sg[i].len || sg[i].addr + sg[i].len < sg[i].addr ||
		    total + sg[i].len < total)
			return DMAR_EINVAL;
		total += sg[i].len;
	}
	struct busdma_src src = { .kind = BUSDMA_SRC_SG, .sg = sg, .nsg = nsg, .len = total };
	return load(tag, map, &src, flags);
}

int dmar_dmamap_sync(struct dmar_dma_tag *tag, struct dmar_dmamap *map, unsigned op)
{
	const unsigned all = DMAR_DMASYNC_PREREAD | DMAR_DMASYNC_POSTREAD |
			     DMAR_DMASYNC_PREWRITE | DMAR_DMASYNC_POSTWRITE;
	if (!tag || !map || map->tag != tag || !map->loaded || (op & ~all))
		return DMAR_EINVAL;
	if (map->nbounce)
		dmar__bounce_sync(map, op);
	const struct dmar_os *os = tag->dev->bus->os;
	if ((op & DMAR_DMASYNC_PREWRITE) && os->ops->wmb)
		os->ops->wmb(os->ctx);
	return 0;
}

int dmar_dmamap_unload(struct dmar_dma_tag *tag, struct dmar_dmamap *map)
{
	if (!tag || !map || map->tag != tag)
		return DMAR_EINVAL;
	if (!map->loaded)
		return 0;
	if (tag->dev->mode == DMAR_BUSDMA_TRANSLATE) {
		int rc = dmar__busdma_dmar_unload(map);
		if (rc)
			return rc;
	} else {
		dmar__bounce_unload(map);
	}
	map->nsegs = 0;
	map->loaded = false;
	return 0;
}
