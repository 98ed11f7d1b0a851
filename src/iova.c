/*
 * iova.c - the IOVA allocator (see iova.h for the contract).
 *
 * Three structures share one kind of node:
 *  - a treap of every extent (live allocation with its guard pages, cached range,
 *    reservation, and a sentinel at the end of the space), ordered by start page; each
 *    node knows the free gap before it and the largest gap in its subtree, so a search
 *    skips every subtree without room (in the spirit of FreeBSD's free_down
 *    augmentation). Priorities are a hash of the start page, so nothing is stored;
 *  - a hash table of live allocations by start page, so iova_free checks what it is
 *    given in O(1);
 *  - per-size lists of freed ranges that stay in the tree (Linux keeps freed IOVAs in
 *    per-size caches for the same reason): the common alloc/free pair never touches
 *    the tree.
 */
#include "iova.h"

#include "dmar/error.h"
#include "util.h"

#include <stdbool.h>

#define PG_SHIFT DMAR_PAGE_SHIFT
#define PG_MASK ((uint64_t)DMAR_PAGE_SIZE - 1)
#define END_MAX (1ull << (64 - PG_SHIFT)) /* page after the last possible page */

/* Node kinds, kept in the low bits of node->link (nodes are at least 4-byte aligned). */
enum { K_FREE = 0, K_LIVE = 1, K_CACHED = 2, K_RESERVED = 3 };
#define KIND_MASK ((uintptr_t)3)

#define HASH_MIN_BITS 6u
#define HASH_MAX_BITS (sizeof(size_t) >= 8 ? 30u : 22u)
#define SLAB_MIN_NODES 32u
#define SLAB_MAX_SHIFT 8u /* slabs grow from 32 to 32 << 8 nodes */

/* Cached ranges kept at most: a floor plus a share of the live allocations, so the
 * caches never cost more than a few bytes per live allocation. */
static uint64_t cache_limit(const struct iova_space *s)
{
	return 64 + s->hashed / 32;
}

static inline unsigned kind_of(const struct iova_node *n)
{
	return (unsigned)(n->link & KIND_MASK);
}

static inline struct iova_node *next_of(const struct iova_node *n)
{
	return (struct iova_node *)(n->link & ~KIND_MASK);
}

static inline void set_link(struct iova_node *n, struct iova_node *next, unsigned kind)
{
	n->link = (uintptr_t)next | kind;
}

static inline uint32_t sat32(uint64_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* ------------------------------------------------------------------ memory --- */

static void *mem_alloc(struct iova_space *s, size_t bytes)
{
	void *p = s->os->ops->alloc(s->os->ctx, bytes);
	if (p)
		s->memory += bytes;
	return p;
}

static void mem_free(struct iova_space *s, void *p, size_t bytes)
{
	if (!p)
		return;
	s->os->ops->free(s->os->ctx, p, bytes);
	s->memory -= bytes;
}

struct slab_header {
	void *next;
	uint64_t bytes; /* a uint64_t keeps the nodes after it 8-byte aligned */
};

static int slab_grow(struct iova_space *s)
{
	unsigned shift = s->slab_count < SLAB_MAX_SHIFT ? (unsigned)s->slab_count : SLAB_MAX_SHIFT;
	size_t count = (size_t)SLAB_MIN_NODES << shift;
	size_t bytes = sizeof(struct slab_header) + count * sizeof(struct iova_node);
	struct slab_header *h = mem_alloc(s, bytes);
	struct iova_node *nodes;

	if (!h)
		return DMAR_ENOMEM;
	h->next = s->slabs;
	h->bytes = bytes;
	s->slabs = h;
	s->slab_count++;
	nodes = (struct iova_node *)(h + 1);
	for (size_t i = count; i-- > 0;) {
		set_link(&nodes[i], s->free_nodes, K_FREE);
		s->free_nodes = &nodes[i];
	}
	return 0;
}

static struct iova_node *node_get(struct iova_space *s)
{
	struct iova_node *n;

	if (!s->free_nodes && slab_grow(s) != 0)
		return NULL;
	n = s->free_nodes;
	s->free_nodes = next_of(n);
	return n;
}

static void node_put(struct iova_space *s, struct iova_node *n)
{
	set_link(n, s->free_nodes, K_FREE);
	s->free_nodes = n;
}

/* -------------------------------------------------------------------- tree --- */

static inline uint64_t prio(const struct iova_node *n)
{
	uint64_t x = n->start + 0x9e3779b97f4a7c15ull;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static inline void update(struct iova_node *n)
{
	uint32_t m = n->gap;

	if (n->left && n->left->max_gap > m)
		m = n->left->max_gap;
	if (n->right && n->right->max_gap > m)
		m = n->right->max_gap;
	n->max_gap = m;
}

static struct iova_node *rotate_right(struct iova_node *n)
{
	struct iova_node *l = n->left;

	n->left = l->right;
	l->right = n;
	update(n);
	update(l);
	return l;
}

static struct iova_node *rotate_left(struct iova_node *n)
{
	struct iova_node *r = n->right;

	n->right = r->left;
	r->left = n;
	update(n);
	update(r);
	return r;
}

static struct iova_node *tree_insert(struct iova_node *t, struct iova_node *x)
{
	if (!t) {
		x->left = x->right = NULL;
		update(x);
		return x;
	}
	if (x->start < t->start) {
		t->left = tree_insert(t->left, x);
		if (t->left == x && prio(x) > prio(t))
			return rotate_right(t);
	} else {
		t->right = tree_insert(t->right, x);
		if (t->right == x && prio(x) > prio(t))
			return rotate_left(t);
	}
	update(t);
	return t;
}

/* Removes the node starting at key, which must be in the tree. */
static struct iova_node *tree_remove(struct iova_node *t, uint64_t key)
{
	if (key == t->start) {
		if (!t->left)
			return t->right;
		if (!t->right)
			return t->left;
		if (prio(t->left) > prio(t->right)) {
			t = rotate_right(t);
			t->right = tree_remove(t->right, key);
		} else {
			t = rotate_left(t);
			t->left = tree_remove(t->left, key);
		}
	} else if (key < t->start) {
		t->left = tree_remove(t->left, key);
	} else {
		t->right = tree_remove(t->right, key);
	}
	update(t);
	return t;
}

/* Recomputes max_gap on the path from t down to the node starting at key. */
static void fix_path(struct iova_node *t, uint64_t key)
{
	if (!t)
		return;
	if (key < t->start)
		fix_path(t->left, key);
	else if (key > t->start)
		fix_path(t->right, key);
	update(t);
}

/* The nodes just before and just after page key (key itself excluded). */
static void neighbours(const struct iova_space *s, uint64_t key, struct iova_node **pred,
		       struct iova_node **succ)
{
	struct iova_node *t = s->root;

	*pred = *succ = NULL;
	while (t) {
		if (t->start < key) {
			*pred = t;
			t = t->right;
		} else if (t->start > key) {
			*succ = t;
			t = t->left;
		} else {
			struct iova_node *c;
			for (c = t->left; c; c = c->right)
				*pred = c;
			for (c = t->right; c; c = c->left)
				*succ = c;
			return;
		}
	}
}

/* Every extent has a successor: the sentinel ends the space. */
static void insert_extent(struct iova_space *s, struct iova_node *x)
{
	struct iova_node *p, *q;

	neighbours(s, x->start, &p, &q);
	x->gap = sat32(x->start - (p ? p->end : s->first));
	q->gap = sat32(q->start - x->end);
	fix_path(s->root, q->start);
	s->root = tree_insert(s->root, x);
}

static void remove_extent(struct iova_space *s, struct iova_node *x)
{
	struct iova_node *p, *q;

	neighbours(s, x->start, &p, &q);
	s->root = tree_remove(s->root, x->start);
	q->gap = sat32(q->start - (p ? p->end : s->first));
	fix_path(s->root, q->start);
}

/* First node whose end is >= page, in address order (NULL if none). */
static struct iova_node *first_ending_at_or_after(const struct iova_space *s, uint64_t page)
{
	struct iova_node *t = s->root, *best = NULL;

	while (t) {
		if (t->end >= page) {
			best = t;
			t = t->left;
		} else {
			t = t->right;
		}
	}
	return best;
}

static struct iova_node *next_after(const struct iova_space *s, uint64_t key)
{
	struct iova_node *p, *q;

	neighbours(s, key, &p, &q);
	return q;
}

/* ------------------------------------------------------------------ search --- */

struct want {
	uint64_t pages;   /* the allocation itself */
	uint64_t extent;  /* pages + guard */
	uint64_t align;   /* pages, power of two */
	uint64_t bound;   /* pages, power of two, or 0 */
	uint64_t max_start;
	uint32_t prune;   /* skip gaps (and subtrees) with less room than this */
};

static bool fits_in_gap(const struct want *w, uint64_t gs, uint64_t ge, uint64_t *out)
{
	uint64_t a = (gs + w->align - 1) & ~(w->align - 1);

	if (w->bound && ((a ^ (a + w->pages - 1)) & ~(w->bound - 1)))
		a = (a + w->pages - 1) & ~(w->bound - 1);
	if (a > w->max_start || a > ge || ge - a < w->extent)
		return false;
	*out = a;
	return true;
}

/* Lowest fitting start in subtree t, whose nodes all come after page pe (the end of
 * the extent before the subtree). 1: found, 0: not here, -1: past max_start, stop. */
static int search(const struct want *w, const struct iova_node *t, uint64_t pe, uint64_t *out)
{
	int r;

	if (!t || t->max_gap < w->prune)
		return 0;
	if (pe > w->max_start)
		return -1;
	r = search(w, t->left, pe, out);
	if (r)
		return r;
	if (t->gap >= w->prune && t->gap != 0) {
		uint64_t gs;
		if (t->gap != UINT32_MAX) {
			gs = t->start - t->gap;
		} else if (t->left) {
			const struct iova_node *c = t->left;
			while (c->right)
				c = c->right;
			gs = c->end;
		} else {
			gs = pe;
		}
		if (gs > w->max_start)
			return -1;
		if (fits_in_gap(w, gs, t->start, out))
			return 1;
	}
	return search(w, t->right, t->end, out);
}

static bool tree_find(const struct iova_space *s, struct want *w, uint64_t *out)
{
	uint64_t slack = (w->align - 1) + (w->bound ? w->pages - 1 : 0);

	/* First only gaps that fit whatever their alignment (one root-to-leaf descent
	 * in the common case), then every gap big enough in raw size. */
	w->prune = sat32(w->extent + slack);
	if (search(w, s->root, s->first, out) > 0)
		return true;
	if (!slack)
		return false;
	w->prune = sat32(w->extent);
	return search(w, s->root, s->first, out) > 0;
}

/* -------------------------------------------------------------------- hash --- */

static inline size_t hash_index(const struct iova_space *s, uint64_t page)
{
	return (size_t)((page * 0x9e3779b97f4a7c15ull) >> (64 - s->hash_bits));
}

static void hash_grow(struct iova_space *s)
{
	unsigned bits = s->hash_bits + 1;
	size_t n = (size_t)1 << bits, old_n = (size_t)1 << s->hash_bits;
	struct iova_node **b = mem_alloc(s, n * sizeof(*b)), **old = s->buckets;

	if (!b)
		return; /* keep the smaller table: longer chains, nothing lost */
	for (size_t i = 0; i < n; i++)
		b[i] = NULL;
	s->buckets = b;
	s->hash_bits = bits;
	for (size_t i = 0; i < old_n; i++) {
		struct iova_node *c = old[i];
		while (c) {
			struct iova_node *next = next_of(c);
			size_t k = hash_index(s, c->start);
			set_link(c, b[k], K_LIVE);
			b[k] = c;
			c = next;
		}
	}
	mem_free(s, old, old_n * sizeof(*old));
}

static void hash_insert(struct iova_space *s, struct iova_node *n)
{
	size_t k = hash_index(s, n->start);

	set_link(n, s->buckets[k], K_LIVE);
	s->buckets[k] = n;
	s->hashed++;
	if ((s->hashed >> 1) > ((uint64_t)1 << s->hash_bits) && s->hash_bits < HASH_MAX_BITS)
		hash_grow(s);
}

/* Unlinks and returns the live allocation starting at page, or NULL. */
static struct iova_node *hash_take(struct iova_space *s, uint64_t page, uint64_t extent)
{
	size_t k = hash_index(s, page);
	struct iova_node *c = s->buckets[k], *prev = NULL;

	while (c && c->start != page) {
		prev = c;
		c = next_of(c);
	}
	if (!c || c->end - c->start != extent)
		return NULL;
	if (prev)
		set_link(prev, next_of(c), K_LIVE);
	else
		s->buckets[k] = next_of(c);
	s->hashed--;
	return c;
}

/* ------------------------------------------------------------------- cache --- */

static void cache_flush(struct iova_space *s)
{
	for (unsigned i = 0; s->cached && i < IOVA_CACHE_PAGES; i++) {
		struct iova_cache_class *c = &s->cache[i];
		while (c->head) {
			struct iova_node *n = c->head;
			c->head = next_of(n);
			remove_extent(s, n);
			node_put(s, n);
			s->cached--;
		}
		c->count = 0;
	}
}

/* ----------------------------------------------------------------- the API --- */

void iova_fini(struct iova_space *s)
{
	if (!s || !s->os)
		return;
	while (s->slabs) {
		struct slab_header *h = s->slabs;
		s->slabs = h->next;
		mem_free(s, h, (size_t)h->bytes);
	}
	if (s->buckets)
		mem_free(s, s->buckets, ((size_t)1 << s->hash_bits) * sizeof(*s->buckets));
	mem_free(s, s->cache, IOVA_CACHE_PAGES * sizeof(*s->cache));
	dmar_memset(s, 0, sizeof(*s));
}

int iova_init(struct iova_space *s, const struct dmar_os *os, uint64_t first, uint64_t last,
	      unsigned guard_pages)
{
	size_t nb = (size_t)1 << HASH_MIN_BITS;

	if (!s)
		return DMAR_EINVAL;
	dmar_memset(s, 0, sizeof(*s));
	if (!os || !os->ops || !os->ops->alloc || !os->ops->free || (first & PG_MASK) ||
	    first > last || (last != UINT64_MAX && ((last + 1) & PG_MASK)) ||
	    guard_pages > IOVA_MAX_GUARD)
		return DMAR_EINVAL;
	s->os = os;
	s->first = first >> PG_SHIFT;
	s->end = last == UINT64_MAX ? END_MAX : (last + 1) >> PG_SHIFT;
	s->guard = guard_pages;
	s->hash_bits = HASH_MIN_BITS; /* before the allocation: fini frees by it */
	s->buckets = mem_alloc(s, nb * sizeof(*s->buckets));
	s->cache = mem_alloc(s, IOVA_CACHE_PAGES * sizeof(*s->cache));
	if (!s->buckets || !s->cache) {
		iova_fini(s);
		return DMAR_ENOMEM;
	}
	for (size_t i = 0; i < nb; i++)
		s->buckets[i] = NULL;
	dmar_memset(s->cache, 0, IOVA_CACHE_PAGES * sizeof(*s->cache));
	s->sentinel.start = s->sentinel.end = s->end;
	set_link(&s->sentinel, NULL, K_RESERVED);
	s->sentinel.gap = sat32(s->end - s->first);
	s->root = tree_insert(NULL, &s->sentinel);
	return 0;
}

int iova_reserve(struct iova_space *s, uint64_t start, uint64_t size)
{
	uint64_t rs, re, us, ue, key = 0;
	unsigned merging = 0;
	struct iova_node *n, *keep = NULL;

	if (!s || !s->os || !size || size - 1 > UINT64_MAX - start)
		return DMAR_EINVAL;
	rs = dmar_max_u64(start >> PG_SHIFT, s->first);
	re = dmar_min_u64(((start + (size - 1)) >> PG_SHIFT) + 1, s->end);
	if (rs >= re)
		return 0;
	/* Cached ranges are free for the caller: give them back before deciding. */
	cache_flush(s);

	us = rs;
	ue = re;
	for (n = first_ending_at_or_after(s, rs); n && n != &s->sentinel && n->start <= re;
	     n = next_after(s, n->start)) {
		if (kind_of(n) == K_RESERVED) {
			merging++;
			us = dmar_min_u64(us, n->start);
			ue = dmar_max_u64(ue, n->end);
		} else if (n->start < re && n->end > rs) {
			return DMAR_EBUSY;
		}
	}
	if (!merging) {
		keep = node_get(s);
		if (!keep)
			return DMAR_ENOMEM;
	}
	/* The same walk again, now taking the reservations out. */
	for (n = first_ending_at_or_after(s, rs); n && n != &s->sentinel && n->start <= re;
	     n = next_after(s, key)) {
		key = n->start;
		if (kind_of(n) != K_RESERVED)
			continue;
		remove_extent(s, n);
		if (keep)
			node_put(s, n);
		else
			keep = n;
	}
	keep->start = us;
	keep->end = ue;
	set_link(keep, NULL, K_RESERVED);
	insert_extent(s, keep);
	return 0;
}

int iova_alloc(struct iova_space *s, const struct iova_request *req, uint64_t *addr)
{
	struct want w;
	uint64_t max_page, a;
	struct iova_node *n;

	if (!s || !s->os || !req || !addr || !req->size || (req->size & PG_MASK) ||
	    (req->align & (req->align - 1)) || (req->boundary & (req->boundary - 1)) ||
	    (req->boundary && (req->boundary < DMAR_PAGE_SIZE || req->size > req->boundary)))
		return DMAR_EINVAL;
	w.pages = req->size >> PG_SHIFT;
	w.extent = w.pages + s->guard;
	w.align = req->align > DMAR_PAGE_SIZE ? req->align >> PG_SHIFT : 1;
	w.bound = req->boundary >> PG_SHIFT;
	/* The last whole page at or below max_addr. */
	if ((req->max_addr & PG_MASK) == PG_MASK)
		max_page = req->max_addr >> PG_SHIFT;
	else if (req->max_addr >> PG_SHIFT)
		max_page = (req->max_addr >> PG_SHIFT) - 1;
	else
		return DMAR_ENOSPC;
	max_page = dmar_min_u64(max_page, s->end - 1);
	if (max_page < s->first || max_page - s->first + 1 < w.pages)
		return DMAR_ENOSPC;
	w.max_start = max_page - w.pages + 1;

	if (w.pages <= IOVA_CACHE_PAGES) {
		struct iova_cache_class *c = &s->cache[w.pages - 1];
		n = c->head;
		if (n && !(n->start & (w.align - 1)) && n->start <= w.max_start &&
		    !(w.bound && ((n->start ^ (n->start + w.pages - 1)) & ~(w.bound - 1)))) {
			c->head = next_of(n);
			c->count--;
			s->cached--;
			hash_insert(s, n);
			*addr = n->start << PG_SHIFT;
			return 0;
		}
	}

	if (!tree_find(s, &w, &a)) {
		if (!s->cached)
			return DMAR_ENOSPC;
		cache_flush(s);
		if (!tree_find(s, &w, &a))
			return DMAR_ENOSPC;
	}
	n = node_get(s);
	if (!n)
		return DMAR_ENOMEM;
	n->start = a;
	n->end = a + w.extent;
	insert_extent(s, n);
	hash_insert(s, n);
	*addr = a << PG_SHIFT;
	return 0;
}

int iova_free(struct iova_space *s, uint64_t addr, uint64_t size)
{
	uint64_t pages = size >> PG_SHIFT;
	struct iova_node *n;

	if (!s || !s->os)
		return DMAR_EINVAL;
	if (!size || ((addr | size) & PG_MASK))
		return DMAR_ENOENT;
	n = hash_take(s, addr >> PG_SHIFT, pages + s->guard);
	if (!n)
		return DMAR_ENOENT;
	if (pages <= IOVA_CACHE_PAGES && s->cached < cache_limit(s)) {
		struct iova_cache_class *c = &s->cache[pages - 1];
		set_link(n, c->head, K_CACHED);
		c->head = n;
		c->count++;
		s->cached++;
		return 0;
	}
	remove_extent(s, n);
	node_put(s, n);
	return 0;
}

uint64_t iova_live(const struct iova_space *s)
{
	return s ? s->hashed : 0;
}

size_t iova_memory(const struct iova_space *s)
{
	return s ? s->memory : 0;
}
