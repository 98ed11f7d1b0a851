/*
 * iova.c - the IOVA allocator (see iova.h for the contract).
 *
 * Four structures:
 *  - chunks of slots (iova_chunk.h), one class each, found by (window, class) in a
 *    hash (iova_dir.h): the common request takes a slot and the common free clears its
 *    bit. A freed slot stays pending in a small ring per class and is the next one its
 *    class gets, so the common alloc/free pair touches the ring, the hash slot and one
 *    word of live bits, not the chunk's header;
 *  - a treap of every extent (chunk, live allocation with its guard pages, cached
 *    range, reservation, and a sentinel at the end of the space), ordered by start
 *    page; each node knows the free gap before it and the largest gap in its subtree,
 *    so a search skips every subtree without room (in the spirit of FreeBSD's
 *    free_down augmentation). Priorities are a hash of the start page, so nothing is
 *    stored;
 *  - per-page marks of the allocations the tree holds (iova_marks.c): the first page
 *    of each, and the last one of each of up to IOVA_CACHE_PAGES pages, so dmar__iova_free
 *    checks what it is given in O(1) there too;
 *  - per-size-class stacks of the start pages of freed ranges of the tree that stay in
 *    it (Linux keeps freed IOVAs in per-size caches for the same reason).
 */
#include "iova.h"

#include "dmar/error.h"
#include "lib/util.h"

#include <stdbool.h>

#define PG_SHIFT DMAR_PAGE_SHIFT
#define PG_MASK ((uint64_t)DMAR_PAGE_SIZE - 1)
#define END_MAX (1ull << (64 - PG_SHIFT)) /* page after the last possible page */

#define SLAB_NODES (1u << IOVA_SLAB_SHIFT)
#define SLAB_MASK (SLAB_NODES - 1)
#define MAX_SLABS (1u << (32 - IOVA_SLAB_SHIFT))

#define GOLDEN 0x9e3779b97f4a7c15ull

static inline struct iova_node *N(const struct iova_space *s, uint32_t i)
{
	return &s->slabs[i >> IOVA_SLAB_SHIFT][i & SLAB_MASK];
}

static inline uint32_t sat32(uint64_t v)
{
	return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* Size classes: 1..16 pages each their own; above, four per power of two (20, 24,
 * 28, 32, 40, ... 256 pages). Looked up, not computed: mixed sizes would make the
 * branches of a computation unpredictable. */
#define R4(k) k, k, k, k
#define R8(k) R4(k), R4(k)
#define R16(k) R8(k), R8(k)
#define R32(k) R16(k), R16(k)
static const uint8_t class_by_pages[IOVA_CACHE_PAGES + 1] = {
	0, /* 0 pages: never asked */
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
	R4(16), R4(17), R4(18), R4(19),   /* 17..32 */
	R8(20), R8(21), R8(22), R8(23),   /* 33..64 */
	R16(24), R16(25), R16(26), R16(27), /* 65..128 */
	R32(28), R32(29), R32(30), R32(31), /* 129..256 */
};
#undef R4
#undef R8
#undef R16
#undef R32

static const uint16_t pages_of_class[IOVA_CLASSES] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
	20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256,
};

/* The class of 1..IOVA_CACHE_PAGES pages, and the size of a class. */
static inline unsigned class_of(uint64_t pages)
{
	return class_by_pages[pages];
}

static inline uint64_t class_pages(unsigned k)
{
	return pages_of_class[k];
}

/* Whether class k rounds its requests up (above 16 pages): its chunks keep slack bytes. */
static inline bool class_rounded(unsigned k)
{
	return k >= 16;
}

/* How many freed ranges a class may keep: a few, plus a quarter of its live
 * allocations. A class's stack overflows (a tree release) or runs dry (a tree search)
 * about twice per `cap` uses of it, so rarely used classes get a fixed minimum rather
 * than a share that would be near zero. */
static uint32_t cache_cap(const struct iova_cache_class *c)
{
	return sat32(12 + c->live / 4);
}

/* ------------------------------------------------------------------ memory --- */

static inline void *mem_alloc(struct iova_space *s, size_t bytes)
{
	return dmar__iova_mem_alloc(s->os, &s->memory, bytes);
}

static inline void mem_free(struct iova_space *s, void *p, size_t bytes)
{
	dmar__iova_mem_free(s->os, &s->memory, p, bytes);
}

/* Adds a slab of nodes to the free list; node 0 (the first of slab 0) stays unused so
 * that index 0 can mean "none". Nothing changes on failure. */
static int slab_grow(struct iova_space *s)
{
	struct iova_node *slab;

	if (s->slab_count == MAX_SLABS)
		return DMAR_ENOMEM;
	slab = mem_alloc(s, SLAB_NODES * sizeof(*slab));
	if (!slab)
		return DMAR_ENOMEM;
	if (s->slab_count == s->slab_cap) {
		uint32_t cap = s->slab_cap ? s->slab_cap * 2 : 8;
		struct iova_node **dir = mem_alloc(s, cap * sizeof(*dir));
		if (!dir) {
			mem_free(s, slab, SLAB_NODES * sizeof(*slab));
			return DMAR_ENOMEM;
		}
		for (uint32_t i = 0; i < s->slab_count; i++)
			dir[i] = s->slabs[i];
		mem_free(s, s->slabs, s->slab_cap * sizeof(*dir));
		s->slabs = dir;
		s->slab_cap = cap;
	}
	s->slabs[s->slab_count] = slab;
	for (uint32_t k = SLAB_NODES; k-- > (s->slab_count ? 0u : 1u);) {
		slab[k].left = s->free_nodes;
		s->free_nodes = (s->slab_count << IOVA_SLAB_SHIFT) | k;
		s->free_count++;
	}
	s->slab_count++;
	return 0;
}

static uint32_t node_get(struct iova_space *s)
{
	uint32_t i;

	if (!s->free_nodes && slab_grow(s) != 0)
		return 0;
	i = s->free_nodes;
	s->free_nodes = N(s, i)->left;
	s->free_count--;
	return i;
}

static void node_put(struct iova_space *s, uint32_t i)
{
	N(s, i)->left = s->free_nodes;
	s->free_nodes = i;
	s->free_count++;
}

/* -------------------------------------------------------------------- tree --- */

static inline uint64_t prio(const struct iova_space *s, uint32_t i)
{
	uint64_t x = N(s, i)->start + GOLDEN;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static inline void update(const struct iova_space *s, uint32_t i)
{
	struct iova_node *n = N(s, i);
	uint32_t m = n->gap;

	if (n->left && N(s, n->left)->max_gap > m)
		m = N(s, n->left)->max_gap;
	if (n->right && N(s, n->right)->max_gap > m)
		m = N(s, n->right)->max_gap;
	n->max_gap = m;
}

static uint32_t rotate_right(const struct iova_space *s, uint32_t i)
{
	struct iova_node *n = N(s, i);
	uint32_t l = n->left;

	n->left = N(s, l)->right;
	N(s, l)->right = i;
	update(s, i);
	update(s, l);
	return l;
}

static uint32_t rotate_left(const struct iova_space *s, uint32_t i)
{
	struct iova_node *n = N(s, i);
	uint32_t r = n->right;

	n->right = N(s, r)->left;
	N(s, r)->left = i;
	update(s, i);
	update(s, r);
	return r;
}

/* Inserts x below t. pred and succ are the nearest nodes before and after x among t's
 * ancestors: at the leaf they are x's neighbours, whose gaps change there, and the
 * unwinding recomputes max_gap along the whole path, succ included. */
static uint32_t tree_insert(struct iova_space *s, uint32_t t, uint32_t x, uint32_t pred,
			    uint32_t succ)
{
	struct iova_node *n, *nx = N(s, x);

	if (!t) {
		nx->gap = sat32(nx->start - (pred ? N(s, pred)->end : s->first));
		if (succ)
			N(s, succ)->gap = sat32(N(s, succ)->start - nx->end);
		nx->left = nx->right = 0;
		update(s, x);
		return x;
	}
	n = N(s, t);
	if (nx->start < n->start) {
		n->left = tree_insert(s, n->left, x, pred, t);
		if (n->left == x && prio(s, x) > prio(s, t))
			return rotate_right(s, t);
	} else {
		n->right = tree_insert(s, n->right, x, t, succ);
		if (n->right == x && prio(s, x) > prio(s, t))
			return rotate_left(s, t);
	}
	update(s, t);
	return t;
}

static void fix_left_spine(const struct iova_space *s, uint32_t t)
{
	if (!t)
		return;
	fix_left_spine(s, N(s, t)->left);
	update(s, t);
}

/* Removes t itself by rotating it down to a leaf; returns the subtree's new root. */
static uint32_t remove_root(const struct iova_space *s, uint32_t t)
{
	struct iova_node *n = N(s, t);
	uint32_t r;

	if (!n->left)
		return n->right;
	if (!n->right)
		return n->left;
	if (prio(s, n->left) > prio(s, n->right)) {
		r = rotate_right(s, t);
		N(s, r)->right = remove_root(s, t);
	} else {
		r = rotate_left(s, t);
		N(s, r)->left = remove_root(s, t);
	}
	update(s, r);
	return r;
}

/* Removes the node starting at key (it must be below t) and stores it in *out. pred and
 * succ as for tree_insert. Its successor's gap grows by its extent and gap: that
 * successor is either on the path (updated while unwinding) or the leftmost node of
 * its right subtree (updated along that subtree's left spine first). */
static uint32_t tree_remove(struct iova_space *s, uint32_t t, uint64_t key, uint32_t pred,
			    uint32_t succ, uint32_t *out)
{
	struct iova_node *n = N(s, t);
	uint64_t pe;
	uint32_t c;

	if (key < n->start) {
		n->left = tree_remove(s, n->left, key, pred, t, out);
	} else if (key > n->start) {
		n->right = tree_remove(s, n->right, key, t, succ, out);
	} else {
		*out = t;
		if (n->left) {
			for (c = n->left; N(s, c)->right; c = N(s, c)->right)
				;
			pe = N(s, c)->end;
		} else {
			pe = pred ? N(s, pred)->end : s->first;
		}
		if (n->right) {
			for (c = n->right; N(s, c)->left; c = N(s, c)->left)
				;
			N(s, c)->gap = sat32(N(s, c)->start - pe);
			fix_left_spine(s, n->right);
		} else {
			N(s, succ)->gap = sat32(N(s, succ)->start - pe);
		}
		return remove_root(s, t);
	}
	update(s, t);
	return t;
}

static uint32_t tree_find(const struct iova_space *s, uint64_t key)
{
	uint32_t t = s->root;

	while (t && N(s, t)->start != key)
		t = key < N(s, t)->start ? N(s, t)->left : N(s, t)->right;
	return t;
}

/* The nodes just before and just after page key (key itself excluded); 0: none. */
static void neighbours(const struct iova_space *s, uint64_t key, uint32_t *pred, uint32_t *succ)
{
	uint32_t t = s->root;

	*pred = *succ = 0;
	while (t) {
		struct iova_node *n = N(s, t);
		if (n->start < key) {
			*pred = t;
			t = n->right;
		} else if (n->start > key) {
			*succ = t;
			t = n->left;
		} else {
			for (uint32_t c = n->left; c; c = N(s, c)->right)
				*pred = c;
			for (uint32_t c = n->right; c; c = N(s, c)->left)
				*succ = c;
			return;
		}
	}
}

static void insert_extent(struct iova_space *s, uint32_t x)
{
	s->root = tree_insert(s, s->root, x, 0, 0);
}

/* Takes the extent starting at page (never the sentinel) out of the tree. */
static uint32_t remove_extent(struct iova_space *s, uint64_t page)
{
	uint32_t x = 0;

	s->root = tree_remove(s, s->root, page, 0, 0, &x);
	return x;
}

/* Gives the range starting at page (in the tree, no longer live) back to the tree. */
static void release(struct iova_space *s, uint64_t page)
{
	node_put(s, remove_extent(s, page));
}

/* First node whose end is >= page, in address order (0 if none). */
static uint32_t first_ending_at_or_after(const struct iova_space *s, uint64_t page)
{
	uint32_t t = s->root, best = 0;

	while (t) {
		if (N(s, t)->end >= page) {
			best = t;
			t = N(s, t)->left;
		} else {
			t = N(s, t)->right;
		}
	}
	return best;
}

static uint32_t next_after(const struct iova_space *s, uint64_t key)
{
	uint32_t p, q;

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
static int search(const struct iova_space *s, const struct want *w, uint32_t t, uint64_t pe,
		  uint64_t *out)
{
	const struct iova_node *n;
	int r;

	if (!t)
		return 0;
	n = N(s, t);
	if (n->max_gap < w->prune)
		return 0;
	if (pe > w->max_start)
		return -1;
	r = search(s, w, n->left, pe, out);
	if (r)
		return r;
	if (n->gap >= w->prune) {
		uint64_t gs;
		if (n->gap != UINT32_MAX) {
			gs = n->start - n->gap;
		} else if (n->left) {
			uint32_t c = n->left;
			while (N(s, c)->right)
				c = N(s, c)->right;
			gs = N(s, c)->end;
		} else {
			gs = pe;
		}
		if (gs > w->max_start)
			return -1;
		if (fits_in_gap(w, gs, n->start, out))
			return 1;
	}
	return search(s, w, n->right, n->end, out);
}

static bool tree_search(const struct iova_space *s, struct want *w, uint64_t *out)
{
	uint64_t slack = (w->align - 1) + (w->bound ? w->pages - 1 : 0);

	/* First only gaps that fit whatever their alignment (one root-to-leaf descent
	 * in the common case), then every gap big enough in raw size. */
	w->prune = sat32(w->extent + slack);
	if (search(s, w, s->root, s->first, out) > 0)
		return true;
	if (!slack)
		return false;
	w->prune = sat32(w->extent);
	return search(s, w, s->root, s->first, out) > 0;
}

/* Whether a range at a (a cached range, or a chunk's slot: its extent is the
 * class's) suits the request. */
static inline bool suits(const struct want *w, uint64_t a)
{
	return !(a & (w->align - 1)) && a <= w->max_start &&
	       !(w->bound && ((a ^ (a + w->pages - 1)) & ~(w->bound - 1)));
}

/* ------------------------------------------------------------------- cache --- */

/* Keeps the freed range at `page` of class k for reuse; false when the class's cache
 * is full (or cannot grow). */
static bool cache_push(struct iova_space *s, unsigned k, uint64_t page)
{
	struct iova_cache_class *c = &s->cache[k];
	uint32_t limit = cache_cap(c);

	if (c->count >= limit) /* also when the live count has shrunk since */
		return false;
	if (c->count == c->cap) {
		uint32_t cap = c->cap ? c->cap * 2 : 4;
		uint64_t *p;
		if (cap > limit)
			cap = limit;
		p = mem_alloc(s, cap * sizeof(*p));
		if (!p)
			return false;
		for (uint32_t i = 0; i < c->count; i++)
			p[i] = c->pages[i];
		mem_free(s, c->pages, c->cap * sizeof(*p));
		c->pages = p;
		c->cap = cap;
	}
	c->pages[c->count++] = page;
	s->cached++;
	return true;
}

/* Gives every cached range back to the tree (the stacks keep their storage). */
static void cache_flush(struct iova_space *s)
{
	for (unsigned k = 0; s->cached && k < IOVA_CLASSES; k++) {
		struct iova_cache_class *c = &s->cache[k];
		while (c->count) {
			release(s, c->pages[--c->count]);
			s->cached--;
		}
	}
}

/* ------------------------------------------------------------------ chunks --- */

_Static_assert(IOVA_CHUNK_MAX_SHIFT <= IOVA_MARKS_LEAF_SHIFT,
	       "a chunk's window lies in one leaf of marks");

static inline uint64_t chunk_pages(const struct iova_space *s)
{
	return 1ull << s->chunk_shift;
}

static inline uint32_t chunk_slots(const struct iova_space *s, unsigned k)
{
	return s->cache[k].slots;
}

/* The slack byte of slot i of chunk c (of class k): how many of the class's pages its
 * allocation leaves unused. Exact classes (up to 16 pages) have none: they share a
 * byte of the space that only ever holds 0. Neither reads the chunk's header, and
 * there is no branch on the class (mixed sizes would make it unpredictable). */
static inline uint8_t *slack_ref(struct iova_space *s, const struct iova_chunk *c, unsigned k,
				 uint32_t i)
{
	/* in integers: a select the compiler keeps free of branches, and no pointer
	 * past a chunk that has no slack bytes */
	uintptr_t in_chunk = (uintptr_t)c + offsetof(struct iova_chunk, bits) +
			     iova_chunk_words(s->cache[k].slots) * sizeof(uint64_t) + i;
	uintptr_t rounded = (uintptr_t)0 - (uintptr_t)class_rounded(k);

	return (uint8_t *)((in_chunk & rounded) | ((uintptr_t)&s->slack_sink & ~rounded));
}

/* The slot of a chunk of class k that starts at page (a slot start). */
static inline uint32_t slot_of(const struct iova_space *s, unsigned k, uint64_t page)
{
	return (uint32_t)iova_chunk_div(page & (chunk_pages(s) - 1), s->cache[k].magic);
}

/* The chunk dir's key of a window and a class. */
static inline uint64_t chunk_key(const struct iova_space *s, uint64_t page, unsigned k)
{
	return (page >> s->chunk_shift) * IOVA_CLASSES + k;
}

/* The chunk of class k whose window holds page, or NULL. */
static inline struct iova_chunk *chunk_find(struct iova_space *s, uint64_t page, unsigned k)
{
	return s->chunks ? iova_dir_find(&s->chunk_dir, chunk_key(s, page, k)) : NULL;
}

/* The chunk, of any class, whose window holds page, or NULL (a lookup per class). */
static struct iova_chunk *chunk_of(struct iova_space *s, uint64_t page)
{
	for (unsigned k = 0; s->chunks && k < IOVA_CLASSES; k++) {
		struct iova_chunk *c = chunk_slots(s, k) ? chunk_find(s, page, k) : NULL;
		if (c)
			return c;
	}
	return NULL;
}

static void chunk_list(struct iova_space *s, struct iova_chunk *c)
{
	struct iova_cache_class *k = &s->cache[c->klass];

	c->prev = NULL;
	c->next = k->avail;
	if (k->avail)
		k->avail->prev = c;
	k->avail = c;
	c->listed = 1;
}

static void chunk_unlist(struct iova_space *s, struct iova_chunk *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		s->cache[c->klass].avail = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->listed = 0;
}

/* A new chunk of class k in the lowest free window that starts at or below max_start:
 * 1 (*out set, the chunk listed), 0 when there is no such window, DMAR_ENOMEM (nothing
 * changed but the pools). */
static int chunk_carve(struct iova_space *s, unsigned k, uint64_t max_start,
		       struct iova_chunk **out)
{
	uint32_t slots = chunk_slots(s, k), x;
	bool rounded = class_rounded(k);
	struct iova_chunk *c;
	struct want w;
	uint64_t a;

	w.pages = w.extent = w.align = chunk_pages(s);
	w.bound = 0;
	w.max_start = max_start;
	if (!tree_search(s, &w, &a))
		return 0;
	if (dmar__iova_dir_reserve(&s->chunk_dir) || !(x = node_get(s)))
		return DMAR_ENOMEM;
	c = mem_alloc(s, iova_chunk_size(slots, rounded));
	if (!c) {
		node_put(s, x);
		return DMAR_ENOMEM;
	}
	dmar__iova_chunk_init(c, a, (uint32_t)(class_pages(k) + s->guard), slots, k, rounded);
	N(s, x)->start = a;
	N(s, x)->end = a + chunk_pages(s);
	insert_extent(s, x);
	dmar__iova_dir_put(&s->chunk_dir, chunk_key(s, a, k), c);
	s->chunks++;
	chunk_list(s, c);
	*out = c;
	return 1;
}

/* Drops the entries of chunk c, keeping the others in order. */
static void recent_forget(struct iova_cache_class *cc, const struct iova_chunk *c)
{
	struct iova_recent keep[IOVA_RECENT];
	uint32_t n = 0;

	for (uint32_t j = cc->nrecent; j > 0; j--) {
		struct iova_recent *e = &cc->recent[(cc->top - j) % IOVA_RECENT];
		if (e->chunk != c)
			keep[n++] = *e;
	}
	for (uint32_t j = 0; j < n; j++)
		cc->recent[j] = keep[j];
	cc->top = cc->nrecent = n;
}

/* Forgets chunk c (its extent stays in the tree). */
static void chunk_drop(struct iova_space *s, struct iova_chunk *c)
{
	recent_forget(&s->cache[c->klass], c);
	if (c->listed)
		chunk_unlist(s, c);
	dmar__iova_dir_del(&s->chunk_dir, chunk_key(s, c->base, c->klass));
	s->chunks--;
	mem_free(s, c, iova_chunk_size(c->slots, c->rounded));
}

/* Pending slot i of chunk c becomes free. A chunk that had no free slot goes first in
 * its class's list; one left empty goes back to the tree unless it is its class's
 * only one. */
static void chunk_settle(struct iova_space *s, struct iova_chunk *c, uint32_t i)
{
	iova_chunk_settle(c, i);
	if (!c->listed) {
		chunk_list(s, c);
	} else if (!c->live && (c->next || c->prev)) {
		uint64_t base = c->base;
		chunk_drop(s, c);
		release(s, base);
	}
}

/* Keeps the slot of chunk c (of class k) at page, just made pending, for the next allocation of
 * its class; the oldest entry, when the ring is full, becomes free. */
static inline void recent_push(struct iova_space *s, struct iova_chunk *c, unsigned k,
			       uint64_t page)
{
	struct iova_cache_class *cc = &s->cache[k];
	struct iova_recent *e;

	if (cc->nrecent == IOVA_RECENT) {
		struct iova_recent old = cc->recent[cc->top % IOVA_RECENT];
		cc->nrecent--;
		/* c keeps slot i: never dropped here */
		chunk_settle(s, old.chunk, slot_of(s, k, old.page));
	}
	e = &cc->recent[cc->top++ % IOVA_RECENT];
	e->chunk = c;
	e->page = page;
	cc->nrecent++;
}

/* The newest pending slot of class k (there is one) becomes live for a request of
 * `pages` pages: its first page. Reads no chunk header. */
static inline uint64_t recent_take(struct iova_space *s, unsigned k, uint64_t pages)
{
	struct iova_cache_class *cc = &s->cache[k];
	const struct iova_recent *e = &cc->recent[(cc->top - 1) % IOVA_RECENT];
	uint32_t i = slot_of(s, k, e->page);

	iova_chunk_mark(e->chunk, i);
	*slack_ref(s, e->chunk, k, i) = (uint8_t)(class_pages(k) - pages);
	cc->top--;
	cc->nrecent--;
	return e->page;
}

/* Obtains what dissolving chunk c needs beside what `*nodes` counts already: its leaf of
 * marks, and (in *nodes) a tree node per live or pending slot. DMAR_ENOMEM (the pools
 * keep what they got). */
static int dissolve_prepare(struct iova_space *s, const struct iova_chunk *c, uint64_t *nodes)
{
	*nodes += c->live;
	if (c->live && iova_marks_prepare(&s->marks, c->base))
		return DMAR_ENOMEM;
	while (s->free_count < *nodes)
		if (slab_grow(s))
			return DMAR_ENOMEM;
	return DMAR_OK;
}

/* Gives chunk c back to the tree: its live slots become allocations of the tree (with
 * their marks and their slot's extent), the rest of its window is free. Cannot fail
 * once dissolve_prepare has succeeded for it (and for every chunk dissolved with it). */
static void chunk_dissolve(struct iova_space *s, struct iova_chunk *c)
{
	uint64_t base = c->base, cp = class_pages(c->klass);
	struct iova_cache_class *cc = &s->cache[c->klass];

	release(s, base);
	/* the live slots, a word of bits at a time (the bits past the last slot are set:
	 * they are left out) */
	for (uint32_t wd = 0, words = iova_chunk_words(c->slots); wd < words; wd++) {
		uint64_t live = c->bits[wd];
		if (wd == words - 1 && c->slots % 64)
			live &= ~(~0ull << (c->slots % 64));
		for (; live; live &= live - 1) {
			uint32_t i = wd * 64 + (uint32_t)dmar_ffs64(live), x;
			uint64_t a = base + (uint64_t)i * c->stride;
			uint64_t pages = cp - *slack_ref(s, c, c->klass, i);
			x = node_get(s);
			N(s, x)->start = a;
			N(s, x)->end = a + c->stride;
			insert_extent(s, x);
			iova_marks_alloc(&s->marks, a, a + pages - 1, true, true);
			cc->live++;
		}
	}
	chunk_drop(s, c);
}

/* Dissolves every chunk whose window starts below page `limit` (when the tree has no
 * room left for an extent that would end there at the latest: the others cannot make
 * room for it). DMAR_ENOMEM with nothing changed: what all of them need is obtained
 * first. */
static int chunks_dissolve_below(struct iova_space *s, uint64_t limit)
{
	struct iova_chunk *c;
	uint64_t nodes = 0;

	IOVA_DIR_FOREACH(&s->chunk_dir, i, c)
		if (c->base < limit && dissolve_prepare(s, c, &nodes))
			return DMAR_ENOMEM;
	for (size_t i = 0; s->chunks && i < iova_dir_capacity(&s->chunk_dir);) {
		c = iova_dir_value_at(&s->chunk_dir, i);
		if (c && c->base < limit)
			chunk_dissolve(s, c); /* another entry may move to slot i */
		else
			i++;
	}
	return DMAR_OK;
}

/* Takes a slot of class k for w: 1 (*out set), 0 when the class's chunks cannot serve
 * it (the tree will), DMAR_ENOMEM. */
static int chunk_alloc(struct iova_space *s, unsigned k, const struct want *w, uint64_t *out)
{
	struct iova_cache_class *cc = &s->cache[k];
	struct iova_chunk *c;
	uint64_t a;
	uint32_t i;

	/* The slot freed last: its bits are in the CPU caches, and its chunk's header
	 * need not be read. While the class has pending slots, the lowest free slot
	 * could be one of them: a request the last one does not suit goes to the tree. */
	if (cc->nrecent) {
		if (!suits(w, cc->recent[(cc->top - 1) % IOVA_RECENT].page))
			return 0;
		*out = recent_take(s, k, w->pages);
		return 1;
	}
	c = cc->avail;
	if (!c) {
		int rc = chunk_carve(s, k, w->max_start, &c);
		if (rc <= 0)
			return rc;
	}
	i = iova_chunk_first_free(c);
	a = c->base + (uint64_t)i * c->stride;
	if (!suits(w, a))
		return 0;
	iova_chunk_take(c, i);
	*slack_ref(s, c, k, i) = (uint8_t)(class_pages(k) - w->pages);
	if (c->live == c->slots)
		chunk_unlist(s, c);
	*out = a;
	return 1;
}

/* The live slot of chunk c (of class k) that (page, pages) names exactly, or -1. */
static inline int64_t chunk_live_slot(struct iova_space *s, const struct iova_chunk *c,
				      unsigned k, uint64_t page, uint64_t pages)
{
	const struct iova_cache_class *cc = &s->cache[k];
	uint32_t stride = (uint32_t)(class_pages(k) + s->guard);
	int64_t i = iova_chunk_slot_at(page & (chunk_pages(s) - 1), stride, cc->magic, cc->slots);

	if (i < 0 || !iova_chunk_live(c, (uint32_t)i))
		return -1;
	if (*slack_ref(s, c, k, (uint32_t)i) != class_pages(k) - pages)
		return -1;
	return i;
}

/* ----------------------------------------------------------------- the API --- */

void dmar__iova_fini(struct iova_space *s)
{
	if (!s || !s->os)
		return;
	for (uint32_t i = 0; i < s->slab_count; i++)
		mem_free(s, s->slabs[i], SLAB_NODES * sizeof(struct iova_node));
	mem_free(s, s->slabs, s->slab_cap * sizeof(*s->slabs));
	dmar__iova_marks_fini(&s->marks);
	if (s->chunks) {
		struct iova_chunk *c;
		IOVA_DIR_FOREACH(&s->chunk_dir, i, c)
			mem_free(s, c, iova_chunk_size(c->slots, c->rounded));
	}
	dmar__iova_dir_fini(&s->chunk_dir);
	if (s->cache) {
		for (unsigned k = 0; k < IOVA_CLASSES; k++)
			mem_free(s, s->cache[k].pages, s->cache[k].cap * sizeof(uint64_t));
		mem_free(s, s->cache, IOVA_CLASSES * sizeof(*s->cache));
	}
	dmar_memset(s, 0, sizeof(*s));
}

/* Windows of a sixteenth of the space or less, between 64 pages and 2^14 (64 MiB). */
static unsigned default_chunk_shift(uint64_t span)
{
	int b = dmar_fls64(span) - 4;

	return b < 6 ? 0 : b > (int)IOVA_CHUNK_MAX_SHIFT ? IOVA_CHUNK_MAX_SHIFT : (unsigned)b;
}

int dmar__iova_set_chunk_shift(struct iova_space *s, unsigned shift)
{
	if (!s || !s->os || (shift && (shift < 6 || shift > IOVA_CHUNK_MAX_SHIFT)) || s->chunks)
		return DMAR_EINVAL;
	s->chunk_shift = shift;
	for (unsigned k = 0; k < IOVA_CLASSES; k++) {
		uint32_t stride = (uint32_t)(class_pages(k) + s->guard);
		uint64_t n = shift ? ((uint64_t)1 << shift) / stride : 0;
		s->cache[k].slots = n >= IOVA_CHUNK_MIN_SLOTS ? (uint32_t)n : 0;
		s->cache[k].magic = iova_chunk_magic(stride);
	}
	return DMAR_OK;
}

int dmar__iova_init(struct iova_space *s, const struct dmar_os *os, uint64_t first, uint64_t last,
	      unsigned guard_pages)
{
	struct iova_node *n;

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
	dmar__iova_marks_init(&s->marks, os);
	dmar__iova_dir_init(&s->chunk_dir, os, &s->memory);
	s->cache = mem_alloc(s, IOVA_CLASSES * sizeof(*s->cache));
	if (s->cache)
		dmar_memset(s->cache, 0, IOVA_CLASSES * sizeof(*s->cache));
	if (!s->cache || !(s->sentinel = node_get(s))) {
		dmar__iova_fini(s);
		return DMAR_ENOMEM;
	}
	dmar__iova_set_chunk_shift(s, default_chunk_shift(s->end - s->first));
	n = N(s, s->sentinel);
	n->start = n->end = s->end;
	n->gap = sat32(s->end - s->first);
	s->root = tree_insert(s, 0, s->sentinel, 0, 0);
	return 0;
}

/* Whether node n (not the sentinel, no range cached) is a reservation. */
static bool is_reservation(struct iova_space *s, const struct iova_node *n)
{
	return !chunk_of(s, n->start) && !iova_marks_test(&s->marks, IOVA_MARK_START, n->start);
}

int dmar__iova_reserve(struct iova_space *s, uint64_t start, uint64_t size)
{
	uint64_t rs, re, us, ue, key = 0;
	unsigned merging = 0;
	uint32_t t, keep = 0;

	if (!s || !s->os || !size || size - 1 > UINT64_MAX - start)
		return DMAR_EINVAL;
	rs = dmar_max_u64(start >> PG_SHIFT, s->first);
	re = dmar_min_u64(((start + (size - 1)) >> PG_SHIFT) + 1, s->end);
	if (rs >= re)
		return 0;
	/* Cached ranges are free for the caller: give them back first, and the chunks
	 * over the range (their live slots become the tree's). Then every node there is
	 * the sentinel, a live allocation (marked) or a reservation; chunks may touch it. */
	cache_flush(s);
	for (int pass = 0; pass < 2; pass++) {
		uint64_t nodes = 0; /* pass 0 obtains what pass 1 needs: then nothing fails */
		for (t = first_ending_at_or_after(s, rs); t != s->sentinel && N(s, t)->start < re;) {
			struct iova_chunk *c = chunk_of(s, N(s, t)->start);
			if (c && N(s, t)->end > rs && pass) {
				chunk_dissolve(s, c);
				t = first_ending_at_or_after(s, rs);
				continue;
			}
			if (c && N(s, t)->end > rs && dissolve_prepare(s, c, &nodes))
				return DMAR_ENOMEM;
			t = next_after(s, N(s, t)->start);
		}
	}

	us = rs;
	ue = re;
	for (t = first_ending_at_or_after(s, rs); t != s->sentinel && N(s, t)->start <= re;
	     t = next_after(s, N(s, t)->start)) {
		struct iova_node *n = N(s, t);
		if (is_reservation(s, n)) {
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
	for (t = first_ending_at_or_after(s, rs); t != s->sentinel && N(s, t)->start <= re;
	     t = next_after(s, key)) {
		key = N(s, t)->start;
		if (!is_reservation(s, N(s, t)))
			continue;
		remove_extent(s, key);
		if (keep)
			node_put(s, t);
		else
			keep = t;
	}
	N(s, keep)->start = us;
	N(s, keep)->end = ue;
	insert_extent(s, keep);
	return 0;
}

/* A tree placement: the class's extent if one fits, else an exact one. */
static bool tree_place(struct iova_space *s, struct want *w, uint64_t exact, uint64_t *out)
{
	if (tree_search(s, w, out))
		return true;
	if (w->extent == exact)
		return false;
	w->extent = exact;
	return tree_search(s, w, out);
}

/* dmar__iova_alloc for any request (s, req and addr already checked). */
static DMAR_NOINLINE int alloc_any(struct iova_space *s, const struct iova_request *req,
				   uint64_t *addr)
{
	struct want w;
	uint64_t max_page, a, rounded, exact;
	unsigned k = 0;
	bool small;
	uint32_t x;

	if (!req->size || (req->size & PG_MASK) ||
	    (req->align & (req->align - 1)) || (req->boundary & (req->boundary - 1)) ||
	    (req->boundary && (req->boundary < DMAR_PAGE_SIZE || req->size > req->boundary)))
		return DMAR_EINVAL;
	w.pages = req->size >> PG_SHIFT;
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
	small = w.pages <= IOVA_CACHE_PAGES;
	exact = w.pages + s->guard;
	rounded = exact;
	if (small) {
		struct iova_cache_class *c;

		k = class_of(w.pages);
		c = &s->cache[k];
		rounded = class_pages(k) + s->guard;
		if (chunk_slots(s, k)) {
			int rc = chunk_alloc(s, k, &w, &a);
			if (rc < 0)
				return rc;
			if (rc)
				goto counted;
		}
		if (c->count && suits(&w, a = c->pages[c->count - 1])) {
			if (iova_marks_prepare(&s->marks, a) ||
			    iova_marks_prepare(&s->marks, a + w.pages - 1))
				return DMAR_ENOMEM;
			c->count--;
			s->cached--;
			goto found;
		}
	}

	w.extent = rounded;
	if (!tree_place(s, &w, exact, &a)) {
		int rc;
		if (!s->cached && !s->chunks)
			return DMAR_ENOSPC;
		/* Room held for reuse goes back to the tree: cached ranges, and the
		 * chunks where the extent could lie (their live slots become
		 * allocations of the tree). */
		cache_flush(s);
		if ((rc = chunks_dissolve_below(s, w.max_start + rounded)) != 0)
			return rc;
		w.extent = rounded;
		if (!tree_place(s, &w, exact, &a))
			return DMAR_ENOSPC;
	}
	/* What the pools gain here stays for later calls: nothing else changes. */
	if (iova_marks_prepare(&s->marks, a) ||
	    (small && iova_marks_prepare(&s->marks, a + w.pages - 1)) || !(x = node_get(s)))
		return DMAR_ENOMEM;
	N(s, x)->start = a;
	N(s, x)->end = a + w.extent;
	insert_extent(s, x);
	if (w.extent != rounded)
		iova_marks_set(&s->marks, IOVA_MARK_EXACT, a);
found:
	iova_marks_alloc(&s->marks, a, a + w.pages - 1, small, true);
	if (small)
		s->cache[k].live++;
counted:
	s->live++;
	*addr = a << PG_SHIFT;
	return 0;
}

int dmar__iova_alloc(struct iova_space *s, const struct iova_request *req, uint64_t *addr)
{
	uint64_t size, pages;

	if (!s || !s->os || !req || !addr)
		return DMAR_EINVAL;
	size = req->size;
	pages = size >> PG_SHIFT;
	/* The common request (whole pages of a size class, no alignment beyond a page,
	 * no boundary) and a pending slot of its class below max_addr: that slot, for
	 * the price of its live bit. */
	if (size && !(size & PG_MASK) && pages <= IOVA_CACHE_PAGES && req->align <= DMAR_PAGE_SIZE &&
	    !(req->align & (req->align - 1)) && !req->boundary) {
		unsigned k = class_of(pages);
		struct iova_cache_class *cc = &s->cache[k];
		const struct iova_recent *e = &cc->recent[(cc->top - 1) % IOVA_RECENT];

		/* (the end can wrap to 0 only at the top of 64 bits: then max_addr must
		 * be UINT64_MAX) */
		if (cc->nrecent && ((e->page + pages) << PG_SHIFT) - 1 <= req->max_addr) {
			*addr = recent_take(s, k, pages) << PG_SHIFT;
			s->live++;
			return 0;
		}
	}
	return alloc_any(s, req, addr);
}

/* Whether a live allocation of exactly `pages` pages starts at page. */
static bool is_live(struct iova_space *s, uint64_t page, uint64_t pages)
{
	/* Small: marked as one span (a large allocation has no end mark). */
	if (pages <= IOVA_CACHE_PAGES)
		return iova_marks_span(&s->marks, page, page + pages - 1);
	/* Large: never rounded, so its extent tells its size. */
	return iova_marks_test(&s->marks, IOVA_MARK_START, page) &&
	       N(s, tree_find(s, page))->end - page == pages + s->guard;
}

enum { LIVE_NONE, LIVE_CHUNK, LIVE_TREE };

/* Whether (page, pages) names a live allocation of the tree exactly. */
static DMAR_NOINLINE bool tree_live(struct iova_space *s, uint64_t page, uint64_t pages)
{
	return page + pages >= page && page + pages <= s->end && is_live(s, page, pages);
}

/* Where (addr, size), in bytes, names a live allocation exactly: in slot *slot of chunk
 * *c (of class *k), in the tree, or nowhere. A chunk's window holds nothing but its
 * slots. The chunk case, the common one, reads a hash slot and a word of live bits. */
static DMAR_ALWAYS_INLINE int find_live(struct iova_space *s, uint64_t addr, uint64_t size,
					struct iova_chunk **c, unsigned *k, uint32_t *slot)
{
	uint64_t page = addr >> PG_SHIFT, pages = size >> PG_SHIFT;

	if (!size || ((addr | size) & PG_MASK))
		return LIVE_NONE;
	if (pages <= IOVA_CACHE_PAGES) {
		*k = class_of(pages);
		if ((*c = chunk_find(s, page, *k)) != NULL) {
			int64_t i = chunk_live_slot(s, *c, *k, page, pages);
			if (i < 0)
				return LIVE_NONE;
			*slot = (uint32_t)i;
			return LIVE_CHUNK;
		}
	}
	return tree_live(s, page, pages) ? LIVE_TREE : LIVE_NONE;
}

/* dmar__iova_free of a live allocation of the tree. */
static DMAR_NOINLINE void free_tree(struct iova_space *s, uint64_t page, uint64_t pages)
{
	bool exact;
	unsigned k;

	iova_marks_alloc(&s->marks, page, page + pages - 1, pages <= IOVA_CACHE_PAGES, false);
	s->live--;
	if (pages > IOVA_CACHE_PAGES) {
		release(s, page);
		return;
	}
	k = class_of(pages);
	/* Only a size below its class's may have an exact extent. */
	exact = class_pages(k) != pages && iova_marks_test(&s->marks, IOVA_MARK_EXACT, page);
	s->cache[k].live--;
	if (exact)
		iova_marks_clear(&s->marks, IOVA_MARK_EXACT, page);
	else if (cache_push(s, k, page))
		return;
	release(s, page);
}

int dmar__iova_free(struct iova_space *s, uint64_t addr, uint64_t size)
{
	struct iova_chunk *c = NULL;
	uint32_t slot = 0;
	unsigned k = 0;

	if (!s || !s->os)
		return DMAR_EINVAL;
	switch (find_live(s, addr, size, &c, &k, &slot)) {
	case LIVE_NONE:
		return DMAR_ENOENT;
	case LIVE_CHUNK: /* its live bit is the whole check */
		iova_chunk_unmark(c, slot);
		recent_push(s, c, k, addr >> PG_SHIFT);
		s->live--;
		return 0;
	}
	free_tree(s, addr >> PG_SHIFT, size >> PG_SHIFT);
	return 0;
}

int dmar__iova_extent(struct iova_space *s, uint64_t addr, uint64_t size, uint64_t *extent)
{
	uint64_t page = addr >> PG_SHIFT;
	struct iova_chunk *c = NULL;
	uint32_t slot = 0;
	unsigned k = 0;

	if (!s || !s->os || !extent)
		return DMAR_EINVAL;
	switch (find_live(s, addr, size, &c, &k, &slot)) {
	case LIVE_NONE:
		return DMAR_ENOENT;
	case LIVE_CHUNK:
		*extent = (uint64_t)c->stride << PG_SHIFT;
		return 0;
	}
	*extent = (N(s, tree_find(s, page))->end - page) << PG_SHIFT;
	return 0;
}

uint64_t dmar__iova_live(const struct iova_space *s)
{
	return s ? s->live : 0;
}

uint64_t dmar__iova_chunk_count(const struct iova_space *s)
{
	return s ? s->chunks : 0;
}

size_t dmar__iova_memory(const struct iova_space *s)
{
	return s ? s->memory + s->marks.memory : 0;
}
