/*
 * bounce.c - the bounce backend: segments are physical addresses; the pieces of a
 * buffer the device cannot reach under its tag (inside the exclusion window, above the
 * device's reach, or misaligned) are copied through pages of a per-context pool at
 * sync time. Policy: see dmar_busdma_set_bounce_limit() in dmar/busdma.h.
 */
#include "busdma_impl.h"
#include "lib/util.h"

/* A page that page_alloc gave but that does not fit the request: kept, linked
 * through its own first bytes, until the request is over, so page_alloc cannot give
 * it again meanwhile. */
struct reject {
	struct reject *next;
	uint64_t pa;
};

static void rejects_free(const struct dmar_os *os, struct reject *r)
{
	while (r) {
		struct reject *next = r->next;
		os->ops->page_free(os->ctx, r, r->pa);
		r = next;
	}
}

static bool page_fits(const struct dmar_dma_tag *tag, uint64_t pa)
{
	if (tag->dev->mode == DMAR_BUSDMA_TRANSLATE)
		return true; /* the device reaches it through its IOVA */
	return dmar__busdma_addr_ok(tag, pa, DMAR_PAGE_SIZE) && !(pa & (tag->p.alignment - 1));
}

int dmar__bounce_alloc_fitting_page(struct dmar_dma_tag *tag, void **va, uint64_t *pa)
{
	const struct dmar_os *os = tag->dev->bus->os;
	struct reject *rejects = NULL;
	int rc = DMAR_ENOSPC;

	for (unsigned i = 0; i < DMAR_BUSDMA_BOUNCE_TRIES; i++) {
		uint64_t phys;
		void *v = os->ops->page_alloc(os->ctx, &phys);
		if (!v) {
			rc = DMAR_ENOMEM;
			break;
		}
		if (page_fits(tag, phys)) {
			*va = v;
			*pa = phys;
			rc = 0;
			break;
		}
		struct reject *r = v;
		r->next = rejects;
		r->pa = phys;
		rejects = r;
	}
	rejects_free(os, rejects);
	return rc;
}

static void pool_push(struct dmar_busdma *bus, struct bounce_page *pg)
{
	pg->next = bus->pool_free;
	bus->pool_free = pg;
	bus->pool_nfree++;
}

/* Takes `need` pages fitting the tag from the pool, growing it with page_alloc up to
 * its limit; all or nothing. Called with the bus lock held. */
static int pool_take(struct dmar_dma_tag *tag, unsigned need, struct bounce_page **out)
{
	struct dmar_busdma *bus = tag->dev->bus;
	const struct dmar_os *os = bus->os;
	struct bounce_page *taken = NULL, *fresh = NULL, **pp = &bus->pool_free;
	unsigned got = 0, nfresh = 0;
	int rc = DMAR_ENOSPC;

	while (*pp && got < need) {
		struct bounce_page *pg = *pp;
		if (page_fits(tag, pg->pa)) {
			*pp = pg->next;
			bus->pool_nfree--;
			pg->next = taken;
			taken = pg;
			got++;
		} else {
			pp = &pg->next;
		}
	}
	while (got < need && bus->pool_pages + nfresh < bus->pool_max) {
		struct bounce_page *pg = os->ops->alloc(os->ctx, sizeof(*pg));
		if (!pg) {
			rc = DMAR_ENOMEM;
			break;
		}
		int arc = dmar__bounce_alloc_fitting_page(tag, &pg->va, &pg->pa);
		if (arc) {
			os->ops->free(os->ctx, pg, sizeof(*pg));
			rc = arc;
			break;
		}
		pg->next = fresh;
		fresh = pg;
		nfresh++;
		got++;
	}
	if (got < need) {
		while (taken) {
			struct bounce_page *next = taken->next;
			pool_push(bus, taken);
			taken = next;
		}
		while (fresh) {
			struct bounce_page *next = fresh->next;
			os->ops->page_free(os->ctx, fresh->va, fresh->pa);
			os->ops->free(os->ctx, fresh, sizeof(*fresh));
			fresh = next;
		}
		return rc;
	}
	bus->pool_pages += nfresh;
	while (fresh) {
		struct bounce_page *next = fresh->next;
		fresh->next = taken;
		taken = fresh;
		fresh = next;
	}
	*out = taken;
	return 0;
}

static int pool_take_waiting(struct dmar_dma_tag *tag, unsigned need, unsigned flags,
			     struct bounce_page **out)
{
	struct dmar_busdma *bus = tag->dev->bus;
	const struct dmar_os_ops *ops = bus->os->ops;
	bool can_wait = (flags & DMAR_DMA_WAITOK) && ops->now_ns && ops->delay_ns;
	uint64_t deadline = 0;

	for (;;) {
		dmar__busdma_lock(bus, bus->lock);
		int rc = need > bus->pool_max ? DMAR_ENOSPC : pool_take(tag, need, out);
		bool hopeless = need > bus->pool_max;
		dmar__busdma_unlock(bus, bus->lock);
		if (rc != DMAR_ENOSPC || !can_wait || hopeless)
			return rc;
		uint64_t now = ops->now_ns(bus->os->ctx);
		if (!deadline)
			deadline = now + bus->cfg.timeout_ns;
		else if (now >= deadline)
			return DMAR_ETIMEDOUT;
		ops->delay_ns(bus->os->ctx, 10000);
	}
}

/* Bounce backend: pieces outside the device's reach or misaligned. Translating
 * backend: only misaligned pieces (an IOVA keeps the in-page offset, so alignment is the
 * one constraint remapping cannot meet); their bounce pages are then mapped like any
 * other page. */
static bool needs_bounce(const struct dmar_dma_tag *tag, const struct busdma_piece *p)
{
	uint64_t amask = dmar_min_u64(tag->p.alignment, DMAR_PAGE_SIZE) - 1;
	if (p->pa & amask)
		return true;
	return tag->dev->mode == DMAR_BUSDMA_BOUNCE && !dmar__busdma_addr_ok(tag, p->pa, p->len);
}

static void release_pages(struct dmar_busdma *bus, struct bounce_page *list,
			  struct busdma_bounce *b, unsigned n)
{
	dmar__busdma_lock(bus, bus->lock);
	while (list) {
		struct bounce_page *next = list->next;
		pool_push(bus, list);
		list = next;
	}
	for (unsigned i = 0; i < n; i++)
		pool_push(bus, b[i].page);
	dmar__busdma_unlock(bus, bus->lock);
}

/* Makes room for `need` bounce records in the map (kept for later loads). */
static int map_bounce_room(struct dmar_dmamap *map, unsigned need)
{
	if (need <= map->bounce_cap)
		return 0;
	const struct dmar_os *os = map->tag->dev->bus->os;
	struct busdma_bounce *b = os->ops->alloc(os->ctx, (size_t)need * sizeof(*b));
	if (!b)
		return DMAR_ENOMEM;
	if (map->bounce)
		os->ops->free(os->ctx, map->bounce, (size_t)map->bounce_cap * sizeof(*b));
	map->bounce = b;
	map->bounce_cap = need;
	return 0;
}

int dmar__bounce_reserve(struct dmar_dmamap *map, struct busdma_src *src, unsigned flags)
{
	struct dmar_dma_tag *tag = map->tag;
	struct dmar_busdma *bus = tag->dev->bus;
	const struct dmar_os *os = bus->os;
	struct busdma_piece p;
	unsigned need = 0;
	int rc;

	map->nbounce = 0;
	if (!dmar__bounce_possible(tag))
		return 0;
	dmar__busdma_src_rewind(src);
	while ((rc = dmar__busdma_src_next(src, &p)) > 0) {
		if (!needs_bounce(tag, &p))
			continue;
		/* The CPU side of a bounced piece must be addressable for the copies. */
		if (!p.va && !os->ops->phys_to_virt(os->ctx, p.pa & ~BUSDMA_PAGE_MASK))
			return DMAR_EINVAL;
		if (need == UINT32_MAX)
			return DMAR_ERANGE;
		need++;
	}
	if (rc < 0 || !need)
		return rc;

	dmar__busdma_lock(bus, bus->lock);
	bool hopeless = need > bus->pool_max;
	dmar__busdma_unlock(bus, bus->lock);
	if (hopeless)
		return DMAR_ENOSPC; /* more than the pool may ever hold */
	struct bounce_page *list = NULL;
	rc = map_bounce_room(map, need);
	if (rc)
		return rc;
	rc = pool_take_waiting(tag, need, flags, &list);
	if (rc)
		return rc;
	dmar__busdma_src_rewind(src);
	while (dmar__busdma_src_next(src, &p) > 0) {
		if (!needs_bounce(tag, &p))
			continue;
		struct busdma_bounce *b = &map->bounce[map->nbounce++];
		b->page = list;
		list = list->next;
		b->len = p.len;
		b->orig = p.va ? (uint8_t *)(uintptr_t)p.va
			       : (uint8_t *)os->ops->phys_to_virt(os->ctx, p.pa & ~BUSDMA_PAGE_MASK) +
					 (p.pa & BUSDMA_PAGE_MASK);
	}
	dmar__busdma_lock(bus, bus->lock);
	bus->bounced_loads++;
	dmar__busdma_unlock(bus, bus->lock);
	return 0;
}

uint64_t dmar__bounce_piece_addr(const struct dmar_dmamap *map, const struct busdma_piece *p,
			   unsigned *k)
{
	if (*k < map->nbounce && needs_bounce(map->tag, p))
		return map->bounce[(*k)++].page->pa;
	return p->pa;
}

int dmar__bounce_load(struct dmar_dmamap *map, struct busdma_src *src, unsigned flags)
{
	struct busdma_piece p;
	unsigned k = 0;
	int rc = dmar__bounce_reserve(map, src, flags);
	if (rc)
		return rc;
	dmar__busdma_src_rewind(src);
	while ((rc = dmar__busdma_src_next(src, &p)) > 0) {
		rc = dmar__busdma_seg_add(map, dmar__bounce_piece_addr(map, &p, &k), p.len);
		if (rc)
			break;
	}
	if (rc)
		dmar__bounce_unload(map);
	return rc;
}

void dmar__bounce_unload(struct dmar_dmamap *map)
{
	if (map->nbounce)
		release_pages(map->tag->dev->bus, NULL, map->bounce, map->nbounce);
	map->nbounce = 0;
}

void dmar__bounce_sync(struct dmar_dmamap *map, unsigned op)
{
	struct dmar_busdma *bus = map->tag->dev->bus;
	uint64_t bytes = 0;

	for (unsigned i = 0; i < map->nbounce; i++) {
		struct busdma_bounce *b = &map->bounce[i];
		if (op & DMAR_DMASYNC_PREWRITE) {
			dmar_memcpy(b->page->va, b->orig, (size_t)b->len);
			bytes += b->len;
		}
		if (op & DMAR_DMASYNC_POSTREAD) {
			dmar_memcpy(b->orig, b->page->va, (size_t)b->len);
			bytes += b->len;
		}
	}
	dmar__busdma_lock(bus, bus->lock);
	bus->bounce_copies += bytes;
	dmar__busdma_unlock(bus, bus->lock);
}

void dmar__bounce_pool_fini(struct dmar_busdma *bus)
{
	const struct dmar_os *os = bus->os;
	struct bounce_page *pg = bus->pool_free;
	while (pg) {
		struct bounce_page *next = pg->next;
		os->ops->page_free(os->ctx, pg->va, pg->pa);
		os->ops->free(os->ctx, pg, sizeof(*pg));
		pg = next;
	}
	bus->pool_free = NULL;
	bus->pool_pages = bus->pool_nfree = 0;
}
