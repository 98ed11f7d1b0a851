/*
 * window.c - windows (dmar/dmar.h): 2 MiB of a domain's IOVA space whose leaf table one
 * user writes directly, one entry at a time, without the domain lock. The table is
 * created when the window is, and never detached while it lasts: the domain refuses
 * map and unmap calls over a window's range, so no other change reaches it.
 */
#include "dmar_internal.h"
#include "pgtable.h"

int dmar_window_create(struct dmar_domain *dom, uint64_t base, struct dmar_window **out)
{
	const struct dmar_os *os = &dom->unit->sys->os;
	if (dom->kind != DMAR_DOMAIN_TRANSLATED || (base & (DMAR_WINDOW_SIZE - 1)))
		return DMAR_EINVAL;
	if (dom->width < 64 && base + DMAR_WINDOW_SIZE > (1ull << dom->width))
		return DMAR_ERANGE;
	struct dmar_window *w = dmar__os_alloc(os, sizeof(*w));
	if (!w)
		return DMAR_ENOMEM;
	w->dom = dom;
	w->base = base;
	os_lock(os, dom->lock);
	int rc = DMAR_OK;
	for (struct dmar_window *o = dom->windows; o; o = o->next)
		if (o->base == base)
			rc = DMAR_EEXIST;
	if (!rc)
		rc = dmar__pgtable_leaf_table(&dom->pt, base, &w->leaf);
	if (!rc) {
		w->next = dom->windows;
		dom->windows = w;
	}
	os_unlock(os, dom->lock);
	if (rc) {
		dmar__os_free(os, w, sizeof(*w));
		return rc;
	}
	*out = w;
	return DMAR_OK;
}

int dmar_window_destroy(struct dmar_window *w)
{
	struct dmar_domain *dom = w->dom;
	const struct dmar_os *os = &dom->unit->sys->os;
	if (!dmar__pgtable_leaf_empty(w->leaf))
		return DMAR_EBUSY;
	os_lock(os, dom->lock);
	for (struct dmar_window **pp = &dom->windows; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	os_unlock(os, dom->lock);
	dmar__os_free(os, w, sizeof(*w));
	return DMAR_OK;
}

int dmar_window_map(struct dmar_window *w, unsigned index, uint64_t phys, unsigned prot)
{
	struct dmar_domain *dom = w->dom;
	if (index >= DMAR_WINDOW_PAGES || !prot || (prot & ~DMAR_PROT_RW) ||
	    (phys & (DMAR_PAGE_SIZE - 1)))
		return DMAR_EINVAL;
	int rc = dmar__pgtable_leaf_set(&dom->pt, w->leaf, index, phys, prot);
	if (rc)
		return rc;
	uint64_t a = w->base + (uint64_t)index * DMAR_PAGE_SIZE;
	struct pgtable_flush fl = { .start = a, .end = a + DMAR_PAGE_SIZE };
	rc = dmar__domain_map_announce(dom, &fl);
	if (rc) /* the unit may not see it: take it out again (nothing reached it) */
		(void)dmar__pgtable_leaf_clear(&dom->pt, w->leaf, index);
	return rc;
}

int dmar_window_unmap(struct dmar_window *w, unsigned index)
{
	if (index >= DMAR_WINDOW_PAGES)
		return DMAR_EINVAL;
	return dmar__pgtable_leaf_clear(&w->dom->pt, w->leaf, index);
}

int dmar_window_invalidate(struct dmar_window *w, unsigned first, unsigned n)
{
	if (!n || first >= DMAR_WINDOW_PAGES || n > DMAR_WINDOW_PAGES - first)
		return DMAR_EINVAL;
	uint64_t a = w->base + (uint64_t)first * DMAR_PAGE_SIZE;
	return dmar__domain_invalidate(w->dom, a, a + (uint64_t)n * DMAR_PAGE_SIZE);
}

uint64_t dmar_window_base(const struct dmar_window *w)
{
	return w->base;
}
