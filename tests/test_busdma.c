/*
 * test_busdma.c - the busdma API and its bounce backend (no remapping unit needed), on
 * a fake OS layer: "physical memory" is an arena whose pages have scrambled physical
 * addresses, half of them below 16 MiB and half above 4 GiB, so a virtually contiguous
 * buffer is physically discontiguous and straddles a 32-bit device's reach. Every
 * allocation and page is counted, and the n-th allocation of either kind can fail.
 * A fake device does DMA by physical address, and checks that every byte it touches
 * is one the tag allows.
 */
#include "harness.h"
#include "busdma_test.h"
#include "dmar/busdma.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PG 4096ull
#define ARENA_PAGES 2048u
#define SCRAMBLE 1029u
#define LOW_BASE 0x100000ull     /* frames 0..1023: 1 MiB .. 5 MiB */
#define HIGH_BASE 0x100000000ull /* frames 1024..: above 4 GiB */

/* ---------------------------------------------------------------- fake OS --- */

struct fake {
	uint8_t *arena;
	bool used[ARENA_PAGES];
	uint64_t pages_live, allocs_live, bytes_live;
	uint64_t fail_at;   /* 0: never; n: the n-th allocation (alloc or page) from now fails */
	uint64_t nallocs;   /* allocations attempted since fail_at was set */
	uint64_t wmbs;
	struct dmar_os_ops ops;
	struct dmar_os os;
};

/* Page k of the arena is physical frame (k * SCRAMBLE) mod ARENA_PAGES (a bijection:
 * SCRAMBLE is odd), so neighbours alternate between low and high memory. */
static unsigned frame_of(unsigned k)
{
	return (unsigned)(((uint64_t)k * SCRAMBLE) % ARENA_PAGES);
}

static uint64_t frame_phys(unsigned k)
{
	unsigned f = frame_of(k);
	return f < ARENA_PAGES / 2 ? LOW_BASE + f * PG : HIGH_BASE + (f - ARENA_PAGES / 2) * PG;
}

static int phys_frame(uint64_t pa)
{
	static unsigned page_of[ARENA_PAGES];
	static bool ready;
	uint64_t f;
	if (!ready) {
		for (unsigned k = 0; k < ARENA_PAGES; k++)
			page_of[frame_of(k)] = k;
		ready = true;
	}
	if (pa >= LOW_BASE && pa < LOW_BASE + ARENA_PAGES / 2 * PG)
		f = (pa - LOW_BASE) / PG;
	else if (pa >= HIGH_BASE && pa < HIGH_BASE + ARENA_PAGES / 2 * PG)
		f = (pa - HIGH_BASE) / PG + ARENA_PAGES / 2;
	else
		return -1;
	return (int)page_of[f];
}

static bool fake_should_fail(struct fake *f)
{
	f->nallocs++;
	return f->fail_at && f->nallocs == f->fail_at;
}

static void *fake_alloc(void *ctx, size_t size)
{
	struct fake *f = ctx;
	if (fake_should_fail(f))
		return NULL;
	void *p = malloc(size ? size : 1);
	if (p) {
		f->allocs_live++;
		f->bytes_live += size;
	}
	return p;
}

static void fake_free(void *ctx, void *p, size_t size)
{
	struct fake *f = ctx;
	f->allocs_live--;
	f->bytes_live -= size;
	free(p);
}

/* `n` virtually contiguous arena pages (first fit), or NULL. */
static void *fake_pages(struct fake *f, unsigned n)
{
	for (unsigned k = 0; k + n <= ARENA_PAGES; k++) {
		unsigned i;
		for (i = 0; i < n && !f->used[k + i]; i++)
			;
		if (i < n) {
			k += i;
			continue;
		}
		for (i = 0; i < n; i++)
			f->used[k + i] = true;
		f->pages_live += n;
		memset(f->arena + k * PG, 0, n * PG);
		return f->arena + k * PG;
	}
	return NULL;
}

static void fake_pages_free(struct fake *f, void *va, unsigned n)
{
	unsigned k = (unsigned)(((uint8_t *)va - f->arena) / PG);
	for (unsigned i = 0; i < n; i++) {
		if (!f->used[k + i])
			harness_fail(__FILE__, __LINE__, "page %u freed twice", k + i);
		f->used[k + i] = false;
	}
	f->pages_live -= n;
}

static void *fake_page_alloc(void *ctx, uint64_t *phys)
{
	struct fake *f = ctx;
	if (fake_should_fail(f))
		return NULL;
	void *va = fake_pages(f, 1);
	if (va)
		*phys = frame_phys((unsigned)(((uint8_t *)va - f->arena) / PG));
	return va;
}

static void fake_page_free(void *ctx, void *va, uint64_t phys)
{
	struct fake *f = ctx;
	unsigned k = (unsigned)(((uint8_t *)va - f->arena) / PG);
	if (frame_phys(k) != phys)
		harness_fail(__FILE__, __LINE__, "page_free with a wrong physical address");
	fake_pages_free(f, va, 1);
}

static uint64_t fake_virt_to_phys(void *ctx, const void *va)
{
	struct fake *f = ctx;
	const uint8_t *p = va;
	if (p < f->arena || p >= f->arena + ARENA_PAGES * PG)
		return UINT64_MAX;
	uint64_t off = (uint64_t)(p - f->arena);
	return frame_phys((unsigned)(off / PG)) + off % PG;
}

static void *fake_phys_to_virt(void *ctx, uint64_t pa)
{
	struct fake *f = ctx;
	int k = phys_frame(pa & ~(PG - 1));
	return k < 0 ? NULL : f->arena + (uint64_t)k * PG + pa % PG;
}

static void fake_wmb(void *ctx)
{
	((struct fake *)ctx)->wmbs++;
}

static uint64_t fake_now(void *ctx)
{
	(void)ctx;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fake_delay(void *ctx, uint64_t ns)
{
	(void)ctx;
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
	nanosleep(&ts, NULL);
}

static void *fake_lock_create(void *ctx)
{
	pthread_mutex_t *m = fake_alloc(ctx, sizeof(*m));
	if (m)
		pthread_mutex_init(m, NULL);
	return m;
}

static void fake_lock_acquire(void *ctx, void *l)
{
	(void)ctx;
	pthread_mutex_lock(l);
}

static void fake_lock_release(void *ctx, void *l)
{
	(void)ctx;
	pthread_mutex_unlock(l);
}

static void fake_lock_destroy(void *ctx, void *l)
{
	pthread_mutex_destroy(l);
	fake_free(ctx, l, sizeof(pthread_mutex_t));
}

static struct fake *fake_new(void)
{
	struct fake *f = calloc(1, sizeof(*f));
	REQUIRE(f);
	f->arena = aligned_alloc(PG, ARENA_PAGES * PG);
	REQUIRE(f->arena);
	f->ops = (struct dmar_os_ops){
		.alloc = fake_alloc, .free = fake_free,
		.page_alloc = fake_page_alloc, .page_free = fake_page_free,
		.phys_to_virt = fake_phys_to_virt, .virt_to_phys = fake_virt_to_phys,
		.wmb = fake_wmb, .now_ns = fake_now, .delay_ns = fake_delay,
		.lock_create = fake_lock_create, .lock_acquire = fake_lock_acquire,
		.lock_release = fake_lock_release, .lock_destroy = fake_lock_destroy,
	};
	f->os.ops = &f->ops;
	f->os.ctx = f;
	return f;
}

static void fake_delete(struct fake *f)
{
	CHECK_EQ(f->pages_live, 0);
	CHECK_EQ(f->allocs_live, 0);
	free(f->arena);
	free(f);
}

/* ------------------------------------------------------------ fixtures --- */

struct env {
	struct fake *f;
	struct dmar_config cfg;
	struct dmar_busdma *bus;
	struct dmar_busdma_dev *dev;
};

static void env_up(struct env *e, const char *tunables)
{
	e->f = fake_new();
	dmar_config_default(&e->cfg);
	if (tunables)
		dmar_config_parse(&e->cfg, tunables, NULL, NULL);
	REQUIRE_OK(dmar_busdma_create(&e->f->os, &e->cfg, NULL, &e->bus));
	struct dmar_pci_addr a = { 0, 0, 3, 0 };
	REQUIRE_OK(dmar_busdma_device(e->bus, a, NULL, NULL, &e->dev));
}

static void env_down(struct env *e)
{
	CHECK_OK(dmar_busdma_device_destroy(e->dev));
	CHECK_OK(dmar_busdma_destroy(e->bus));
	fake_delete(e->f);
}

/* One device, one tag, one map and an arena buffer of `npages` pages. */
struct rig {
	struct env e;
	struct dmar_dma_tag *t;
	struct dmar_dmamap *m;
	uint8_t *buf;
	unsigned npages;
};

static void rig_up(struct rig *r, const char *tunables, unsigned npages, uint64_t lowaddr,
		   uint64_t highaddr, uint64_t maxsize, unsigned nseg, uint64_t maxsegsz,
		   uint64_t boundary, uint64_t align)
{
	env_up(&r->e, tunables);
	r->t = busdma_test_tag(r->e.dev, lowaddr, highaddr, maxsize, nseg, maxsegsz, boundary, align);
	REQUIRE_OK(dmar_dmamap_create(r->t, 0, &r->m));
	r->npages = npages;
	r->buf = npages ? fake_pages(r->e.f, npages) : NULL;
	REQUIRE(!npages || r->buf);
}

/* Unloads (if loaded) and frees everything, checking nothing is left behind. */
static void rig_down(struct rig *r)
{
	CHECK_OK(dmar_dmamap_unload(r->t, r->m));
	CHECK_OK(dmar_dmamap_destroy(r->t, r->m));
	CHECK_OK(dmar_dma_tag_destroy(r->t));
	if (r->buf)
		fake_pages_free(r->e.f, r->buf, r->npages);
	env_down(&r->e);
}

/* Every byte of every segment obeys the tag; the segments add up to `len`. */
static void check_segments(const struct dmar_dma_tag *t, const struct dmar_dmamap *m, uint64_t len)
{
	struct dmar_dma_tag_params p;
	dmar_dma_tag_get_params(t, &p);
	uint64_t total = 0;
	unsigned n = dmar_dmamap_nsegs(m);
	const struct dmar_dma_segment *s = dmar_dmamap_segs(m);
	CHECK(n >= 1 && n <= p.nsegments);
	for (unsigned i = 0; i < n; i++) {
		uint64_t last = s[i].addr + s[i].len - 1;
		CHECK(s[i].len >= 1 && s[i].len <= p.maxsegsz);
		CHECK(last <= p.lowaddr || s[i].addr > p.highaddr);
		CHECK_EQ(s[i].addr & (p.alignment - 1), 0);
		if (p.boundary)
			CHECK_EQ(s[i].addr / p.boundary, last / p.boundary);
		total += s[i].len;
	}
	CHECK_EQ(total, len);
}

/* The device reads the loaded segments in order into out (through physical memory). */
static void device_read(struct fake *f, const struct dmar_dmamap *m, uint8_t *out)
{
	const struct dmar_dma_segment *s = dmar_dmamap_segs(m);
	for (unsigned i = 0; i < dmar_dmamap_nsegs(m); i++) {
		for (uint64_t b = 0; b < s[i].len; b++)
			*out++ = *(uint8_t *)fake_phys_to_virt(f, s[i].addr + b);
	}
}

static void device_write(struct fake *f, const struct dmar_dmamap *m, const uint8_t *in)
{
	const struct dmar_dma_segment *s = dmar_dmamap_segs(m);
	for (unsigned i = 0; i < dmar_dmamap_nsegs(m); i++) {
		for (uint64_t b = 0; b < s[i].len; b++)
			*(uint8_t *)fake_phys_to_virt(f, s[i].addr + b) = *in++;
	}
}

static void fill(uint8_t *p, uint64_t n, unsigned seed)
{
	for (uint64_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + seed);
}

/* ------------------------------------------------------------------ tests --- */

TEST(bad_tag_params_are_einval)
{
	struct env e;
	env_up(&e, NULL);
	struct dmar_dma_tag_params p;
	struct dmar_dma_tag *t;
	struct { const char *what; uint64_t align, boundary, low, high, maxsize, maxsegsz; unsigned nseg; } bad[] = {
		{ "alignment 3", 3, 0, ~0ull, ~0ull, PG, PG, 1 },
		{ "boundary 0x1800", 1, 0x1800, ~0ull, ~0ull, PG, PG, 1 },
		{ "boundary below a page", 1, 2048, ~0ull, ~0ull, PG, PG, 1 },
		{ "boundary below alignment", 0x4000, 0x2000, ~0ull, ~0ull, PG, 0x4000, 1 },
		{ "lowaddr above highaddr", 1, 0, 0x2000000, 0x1000000, PG, PG, 1 },
		{ "maxsize 0", 1, 0, ~0ull, ~0ull, 0, PG, 1 },
		{ "maxsegsz 0", 1, 0, ~0ull, ~0ull, PG, 0, 1 },
		{ "maxsegsz below alignment", 256, 0, ~0ull, ~0ull, PG, 128, 1 },
		{ "nsegments 0", 1, 0, ~0ull, ~0ull, PG, PG, 0 },
		{ "nsegments too many", 1, 0, ~0ull, ~0ull, PG, PG, DMAR_DMA_MAX_SEGMENTS + 1 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		harness_set_context(bad[i].what);
		dmar_dma_tag_params_default(&p);
		p.alignment = bad[i].align;
		p.boundary = bad[i].boundary;
		p.lowaddr = bad[i].low;
		p.highaddr = bad[i].high;
		p.maxsize = bad[i].maxsize;
		p.maxsegsz = bad[i].maxsegsz;
		p.nsegments = bad[i].nseg;
		CHECK_EQ(dmar_dma_tag_create(e.dev, NULL, &p, &t), DMAR_EINVAL);
	}
	harness_set_context(NULL);
	dmar_dma_tag_params_default(&p);
	CHECK_EQ(dmar_dma_tag_create(NULL, NULL, &p, &t), DMAR_EINVAL);
	struct dmar_pci_addr a = { 0, 0, 32, 0 };
	struct dmar_busdma_dev *d;
	CHECK_EQ(dmar_busdma_device(e.bus, a, NULL, NULL, &d), DMAR_EINVAL);
	env_down(&e);
}

TEST(child_tag_narrows_every_constraint)
{
	struct env e;
	env_up(&e, NULL);
	struct dmar_dma_tag *parent = busdma_test_tag(e.dev, 0xffffffff, 0x1ffffffff, 1 << 20, 8, 0x10000, 0x100000, 16);
	struct dmar_dma_tag_params p, q;
	dmar_dma_tag_params_default(&p);
	p.alignment = 4;                 /* looser: parent's 16 wins */
	p.boundary = 0x10000;            /* stricter */
	p.lowaddr = 0xffffff;            /* stricter */
	p.highaddr = 0xffffffff;         /* looser in the other sense: parent's wins */
	p.maxsize = 1 << 30;
	p.nsegments = 4;
	p.maxsegsz = 1 << 30;
	struct dmar_dma_tag *child;
	REQUIRE_OK(dmar_dma_tag_create(NULL, parent, &p, &child));
	dmar_dma_tag_get_params(child, &q);
	CHECK_EQ(q.alignment, 16);
	CHECK_EQ(q.boundary, 0x10000);
	CHECK_EQ(q.lowaddr, 0xffffff);
	CHECK_EQ(q.highaddr, 0x1ffffffff);
	CHECK_EQ(q.maxsize, 1 << 20);
	CHECK_EQ(q.nsegments, 4);
	CHECK_EQ(q.maxsegsz, 0x10000);
	CHECK_EQ(dmar_dma_tag_destroy(parent), DMAR_EBUSY);
	CHECK_OK(dmar_dma_tag_destroy(child));
	CHECK_OK(dmar_dma_tag_destroy(parent));
	env_down(&e);
}

TEST(destroy_refused_while_children_live)
{
	struct rig r;
	rig_up(&r, NULL, 1, ~0ull, ~0ull, PG, 1, PG, 0, 1);
	struct env e = r.e;
	struct dmar_dma_tag *t = r.t;
	struct dmar_dmamap *m = r.m;
	uint8_t *buf = r.buf;
	CHECK_EQ(dmar_dma_tag_destroy(t), DMAR_EBUSY);
	CHECK_EQ(dmar_busdma_device_destroy(e.dev), DMAR_EBUSY);
	CHECK_EQ(dmar_busdma_destroy(e.bus), DMAR_EBUSY);
	REQUIRE_OK(dmar_dmamap_load(t, m, buf, 100, 0));
	CHECK_EQ(dmar_dmamap_destroy(t, m), DMAR_EBUSY);
	CHECK_EQ(dmar_dmamap_load(t, m, buf, 100, 0), DMAR_EINVAL); /* already loaded */
	CHECK_OK(dmar_dmamap_unload(t, m));
	CHECK_OK(dmar_dmamap_unload(t, m)); /* twice: harmless */
	rig_down(&r);
}

TEST(malloc_memory_cannot_be_loaded)
{
	struct rig r;
	rig_up(&r, NULL, 1, ~0ull, ~0ull, 1 << 16, 16, 1 << 16, 0, 1);
	struct dmar_dma_tag *t = r.t;
	struct dmar_dmamap *m = r.m;
	uint8_t *buf = r.buf;
	char *heap = malloc(8192);
	CHECK_EQ(dmar_dmamap_load(t, m, heap, 8192, 0), DMAR_EINVAL);
	CHECK_EQ(dmar_dmamap_nsegs(m), 0);
	CHECK_EQ(dmar_dmamap_load(t, m, buf, 0, 0), DMAR_EINVAL);
	CHECK_EQ(dmar_dmamap_load(t, m, buf, (1 << 16) + 1, 0), DMAR_EINVAL);
	CHECK_EQ(dmar_dmamap_sync(t, m, DMAR_DMASYNC_PREREAD), DMAR_EINVAL); /* not loaded */
	free(heap);
	rig_down(&r);
}

TEST(unconstrained_load_gives_physical_pieces_without_bouncing)
{
	struct rig r;
	rig_up(&r, NULL, 8, ~0ull, ~0ull, 1 << 20, 64, 1 << 20, 0, 1);
	struct env e = r.e;
	struct dmar_dma_tag *t = r.t;
	struct dmar_dmamap *m = r.m;
	uint8_t *buf = r.buf;
	REQUIRE_OK(dmar_dmamap_load(t, m, buf + 100, 7 * PG, 0));
	check_segments(t, m, 7 * PG);
	CHECK(!dmar_dmamap_is_bounced(m));
	/* Scrambled frames: every page is its own segment, at its physical address. */
	CHECK_EQ(dmar_dmamap_nsegs(m), 8);
	const struct dmar_dma_segment *s = dmar_dmamap_segs(m);
	CHECK_EQ(s[0].addr, fake_virt_to_phys(e.f, buf + 100));
	CHECK_EQ(s[0].len, PG - 100);
	CHECK_EQ(s[7].len, 100);
	struct dmar_busdma_stats st;
	dmar_busdma_get_stats(e.bus, &st);
	CHECK_EQ(st.pool_pages, 0);
	CHECK_OK(dmar_dmamap_unload(t, m));
	CHECK_EQ(dmar_dmamap_nsegs(m), 0);
	rig_down(&r);
}

/* Device writes then the CPU reads (READ), and CPU writes then device reads (WRITE),
 * through a 32-bit tag over a buffer half of whose pages are above 4 GiB. */
TEST(bounce_data_correct_in_both_directions)
{
	const uint64_t len = 16 * PG - 300;
	struct rig r;
	rig_up(&r, NULL, 17, 0xffffffff, ~0ull, 16 * PG, 32, 16 * PG, 0, 1);
	struct env e = r.e;
	struct dmar_dma_tag *t = r.t;
	struct dmar_dmamap *m = r.m;
	uint8_t *buf = r.buf;
	uint8_t *want = malloc(len), *got = malloc(len);
	fill(buf + 300, len, 1);
	memcpy(want, buf + 300, len);

	REQUIRE_OK(dmar_dmamap_load(t, m, buf + 300, len, 0));
	check_segments(t, m, len);
	CHECK(dmar_dmamap_is_bounced(m));
	/* Before PREWRITE the device would see stale bounce pages, after it the data. */
	CHECK_OK(dmar_dmamap_sync(t, m, DMAR_DMASYNC_PREWRITE));
	device_read(e.f, m, got);
	CHECK(memcmp(got, want, len) == 0);
	CHECK_OK(dmar_dmamap_sync(t, m, DMAR_DMASYNC_POSTWRITE));

	/* READ: PREREAD copies nothing; the device writes; POSTREAD brings it back. */
	fill(want, len, 99);
	CHECK_OK(dmar_dmamap_sync(t, m, DMAR_DMASYNC_PREREAD));
	device_write(e.f, m, want);
	int high_pages_stale = memcmp(buf + 300, want, len) != 0;
	CHECK(high_pages_stale); /* bounced pieces reach the buffer only at POSTREAD */
	CHECK_OK(dmar_dmamap_sync(t, m, DMAR_DMASYNC_POSTREAD));
	CHECK(memcmp(buf + 300, want, len) == 0);
	/* Neither POSTWRITE nor PREREAD copies: a buffer change stays out of the pages. */
	struct dmar_busdma_stats before, after;
	dmar_busdma_get_stats(e.bus, &before);
	CHECK_OK(dmar_dmamap_sync(t, m, DMAR_DMASYNC_POSTWRITE | DMAR_DMASYNC_PREREAD));
	dmar_busdma_get_stats(e.bus, &after);
	CHECK_EQ(after.bounce_copies, before.bounce_copies);
	CHECK(after.pool_pages > 0 && after.pool_free < after.pool_pages);
	CHECK_OK(dmar_dmamap_unload(t, m));
	dmar_busdma_get_stats(e.bus, &after);
	CHECK_EQ(after.pool_free, after.pool_pages);
	CHECK_EQ(dmar_dmamap_sync(t, m, 0x10 | DMAR_DMASYNC_PREREAD), DMAR_EINVAL);
	free(want);
	free(got);
	rig_down(&r);
}

TEST(highaddr_window_excludes_only_the_window)
{
	/* Excluded: (2 MiB, 4 GiB]: low pages above 2 MiB bounce, pages above 4 GiB do not. */
	struct rig r;
	rig_up(&r, NULL, 64, 0x1fffff, 0xffffffff, 64 * PG, 64, 64 * PG, 0, 1);
	struct env e = r.e;
	struct dmar_dma_tag *t = r.t;
	struct dmar_dmamap *m = r.m;
	uint8_t *buf = r.buf;
	unsigned in_window = 0, above = 0;
	for (unsigned i = 0; i < 64; i++) {
		uint64_t pa = fake_virt_to_phys(e.f, buf + i * PG);
		in_window += pa > 0x1fffff && pa <= 0xffffffff;
		above += pa > 0xffffffff;
	}
	REQUIRE(in_window > 0 && above > 0);
	fill(buf, 64 * PG, 5);
	REQUIRE_OK(dmar_dmamap_load(t, m, buf, 64 * PG, 0));
	check_segments(t, m, 64 * PG);
	/* Pages above the window are used in place: only the in-window ones bounce. */
	unsigned in_place = 0;
	for (unsigned i = 0; i < dmar_dmamap_nsegs(m); i++) {
		const struct dmar_dma_segment *s = &dmar_dmamap_segs(m)[i];
		for (unsigned k = 0; k < 64; k++)
			in_place += s->addr == fake_virt_to_phys(e.f, buf + k * PG);
	}
	CHECK_EQ(in_place, 64 - in_window);
	struct dmar_busdma_stats st;
	dmar_busdma_get_stats(e.bus, &st);
	CHECK_EQ(st.pool_pages - st.pool_free, in_window);
	uint8_t *got = malloc(64 * PG);
	CHECK_OK(dmar_dmamap_sync(t, m, DMAR_DMASYNC_PREWRITE));
	device_read(e.f, m, got);
	CHECK(memcmp(got, buf, 64 * PG) == 0);
	free(got);
	CHECK_OK(dmar_dmamap_unload(t, m));
	rig_down(&r);
}

/* A physically contiguous range split by boundary and maxsegsz. */
TEST(boundary_and_maxsegsz_split_segments)
{
	uint64_t pa = LOW_BASE + 0x3000 + 0x80; /* contiguous physical range below 5 MiB */
	struct rig r;
	rig_up(&r, NULL, 0, ~0ull, ~0ull, 1 << 20, 16, 0x3000, 0x4000, 1);
	struct dmar_dma_tag *t = r.t;
	struct dmar_dmamap *m = r.m;
	REQUIRE_OK(dmar_dmamap_load_phys(t, m, pa, 0xa000, 0));
	check_segments(t, m, 0xa000);
	/* 0x103080..0x104000 | 0x104000..0x107000 | 0x107000..0x108000 | 0x108000..0x10b000 |
	 * 0x10b000..0x10c000 | 0x10c000..0x10d080 */
	REQUIRE_EQ(dmar_dmamap_nsegs(m), 6);
	const struct dmar_dma_segment *s = dmar_dmamap_segs(m);
	CHECK_EQ(s[0].addr, pa);
	CHECK_EQ(s[0].len, 0xf80);
	CHECK_EQ(s[1].addr, LOW_BASE + 0x4000);
	CHECK_EQ(s[1].len, 0x3000);
	CHECK_EQ(s[2].len, 0x1000);
	CHECK_EQ(s[5].len, 0x1080);
	CHECK_OK(dmar_dmamap_unload(t, m));
	rig_down(&r);
}

TEST(too_many_segments_fail_and_hold_nothing)
{
	struct rig r;
	rig_up(&r, NULL, 8, 0xffffffff, ~0ull, 1 << 20, 3, 1 << 20, 0, 1);
	struct env e = r.e;
	struct dmar_dma_tag *t = r.t;
	struct dmar_dmamap *m = r.m;
	uint8_t *buf = r.buf;
	CHECK_EQ(dmar_dmamap_load(t, m, buf, 8 * PG, 0), DMAR_ERANGE);
	CHECK_EQ(dmar_dmamap_nsegs(m), 0);
	struct dmar_busdma_stats st;
	dmar_busdma_get_stats(e.bus, &st);
	CHECK_EQ(st.pool_free, st.pool_pages);
	CHECK_OK(dmar_dmamap_load(t, m, buf, 2 * PG, 0)); /* the map is still usable */
	CHECK_EQ(dmar_dmamap_nsegs(m), 2);
	CHECK_OK(dmar_dmamap_unload(t, m));
	rig_down(&r);
}

TEST(misaligned_start_is_bounced_to_an_aligned_page)
{
	struct rig r;
	rig_up(&r, NULL, 1, ~0ull, ~0ull, PG, 2, PG, 0, 64);
	struct env e = r.e;
	struct dmar_dma_tag *t = r.t;
	struct dmar_dmamap *m = r.m;
	uint8_t *buf = r.buf;
	fill(buf, PG, 3);
	REQUIRE_OK(dmar_dmamap_load(t, m, buf + 8, 1000, 0));
	check_segments(t, m, 1000);
	CHECK(dmar_dmamap_is_bounced(m));
	uint8_t got[1000];
	CHECK_OK(dmar_dmamap_sync(t, m, DMAR_DMASYNC_PREWRITE));
	device_read(e.f, m, got);
	CHECK(memcmp(got, buf + 8, 1000) == 0);
	CHECK_OK(dmar_dmamap_unload(t, m));
	REQUIRE_OK(dmar_dmamap_load(t, m, buf + 128, 1000, 0)); /* aligned: no bounce */
	CHECK(!dmar_dmamap_is_bounced(m));
	CHECK_EQ(dmar_dmamap_segs(m)[0].addr, fake_virt_to_phys(e.f, buf + 128));
	CHECK_OK(dmar_dmamap_unload(t, m));
	rig_down(&r);
}

TEST(page_list_and_sg_list_loads)
{
	struct rig r;
	rig_up(&r, NULL, 6, 0xffffffff, ~0ull, 1 << 20, 64, 1 << 20, 0, 1);
	struct env e = r.e;
	struct dmar_dma_tag *t = r.t;
	struct dmar_dmamap *m = r.m;
	uint8_t *buf = r.buf;
	fill(buf, 6 * PG, 11);
	uint64_t pages[6];
	for (unsigned i = 0; i < 6; i++)
		pages[5 - i] = fake_virt_to_phys(e.f, buf + i * PG); /* reversed order */
	REQUIRE_OK(dmar_dmamap_load_pages(t, m, pages, 6, 10, 5 * PG, 0));
	check_segments(t, m, 5 * PG);
	uint8_t *got = malloc(6 * PG), *want = malloc(6 * PG);
	for (unsigned i = 0; i < 6; i++)
		memcpy(want + i * PG, buf + (5 - i) * PG, PG);
	CHECK_OK(dmar_dmamap_sync(t, m, DMAR_DMASYNC_PREWRITE));
	device_read(e.f, m, got);
	CHECK(memcmp(got, want + 10, 5 * PG) == 0);
	CHECK_OK(dmar_dmamap_unload(t, m));
	uint64_t bad_pages[1] = { pages[0] + 8 };
	CHECK_EQ(dmar_dmamap_load_pages(t, m, bad_pages, 1, 0, 100, 0), DMAR_EINVAL);
	CHECK_EQ(dmar_dmamap_load_pages(t, m, pages, 1, 10, PG, 0), DMAR_EINVAL);
	CHECK_EQ(dmar_dmamap_load_pages(t, m, pages, 0, 10, 100, 0), DMAR_EINVAL);
	CHECK_EQ(dmar_dmamap_load(t, m, (void *)(UINTPTR_MAX - 100), 200, 0), DMAR_EINVAL);
	CHECK_EQ(dmar_dmamap_load_phys(t, m, UINT64_MAX - 100, 200, 0), DMAR_EINVAL);

	struct dmar_dma_segment sg[3] = {
		{ fake_virt_to_phys(e.f, buf + 5 * PG + 7), 33 },
		{ fake_virt_to_phys(e.f, buf + 2 * PG), PG + 0 },
		{ fake_virt_to_phys(e.f, buf + 40), 4 },
	};
	REQUIRE_OK(dmar_dmamap_load_sg(t, m, sg, 3, 0));
	check_segments(t, m, 33 + PG + 4);
	CHECK_OK(dmar_dmamap_sync(t, m, DMAR_DMASYNC_PREWRITE));
	device_read(e.f, m, got);
	CHECK(memcmp(got, buf + 5 * PG + 7, 33) == 0);
	CHECK(memcmp(got + 33, buf + 2 * PG, PG) == 0);
	CHECK(memcmp(got + 33 + PG, buf + 40, 4) == 0);
	CHECK_OK(dmar_dmamap_unload(t, m));
	sg[1].len = 0;
	CHECK_EQ(dmar_dmamap_load_sg(t, m, sg, 3, 0), DMAR_EINVAL);
	free(got);
	free(want);
	rig_down(&r);
}

TEST(bounce_pool_exhaustion_fails_cleanly)
{
	struct rig r;
	rig_up(&r, "hw.dmar.timeout_us=20000", 64, 0x3fffff, ~0ull, 64 * PG, 64, 64 * PG, 0, 1);
	struct env e = r.e;
	struct dmar_dma_tag *t = r.t;
	struct dmar_dmamap *m1 = r.m, *m2;
	uint8_t *buf = r.buf;
	dmar_busdma_set_bounce_limit(e.bus, 4);
	REQUIRE_OK(dmar_dmamap_create(t, 0, &m2));
	/* Pick pages the tag cannot reach, one bounce page each. */
	uint64_t far[8];
	unsigned n = 0;
	for (unsigned i = 0; i < 64 && n < 8; i++) {
		uint64_t pa = fake_virt_to_phys(e.f, buf + i * PG);
		if (pa > 0x3fffff)
			far[n++] = pa;
	}
	REQUIRE_EQ(n, 8);
	CHECK_EQ(dmar_dmamap_load_pages(t, m1, far, 8, 0, 8 * PG, 0), DMAR_ENOSPC);
	CHECK_OK(dmar_dmamap_load_pages(t, m1, far, 3, 0, 3 * PG, 0));
	CHECK_EQ(dmar_dmamap_load_pages(t, m2, far + 3, 2, 0, 2 * PG, DMAR_DMA_NOWAIT), DMAR_ENOSPC);
	uint64_t t0 = fake_now(NULL);
	CHECK_EQ(dmar_dmamap_load_pages(t, m2, far + 3, 2, 0, 2 * PG, DMAR_DMA_WAITOK), DMAR_ETIMEDOUT);
	CHECK(fake_now(NULL) - t0 >= 20000000ull);
	struct dmar_busdma_stats st;
	dmar_busdma_get_stats(e.bus, &st);
	/* Failed loads gave back what they took: only m1's three pages are held. */
	CHECK_EQ(st.pool_pages, 3);
	CHECK_EQ(st.pool_free, 0);
	CHECK_OK(dmar_dmamap_unload(t, m1));
	CHECK_OK(dmar_dmamap_load_pages(t, m2, far + 3, 2, 0, 2 * PG, 0));
	CHECK_OK(dmar_dmamap_unload(t, m2));
	CHECK_OK(dmar_dmamap_destroy(t, m2));
	rig_down(&r);
}

struct unloader {
	struct dmar_dma_tag *t;
	struct dmar_dmamap *m;
};

static void *unload_later(void *arg)
{
	struct unloader *u = arg;
	struct timespec ts = { 0, 30000000 };
	nanosleep(&ts, NULL);
	dmar_dmamap_unload(u->t, u->m);
	return NULL;
}

TEST(waitok_load_waits_for_pages_another_map_releases)
{
	struct rig r;
	rig_up(&r, "hw.dmar.timeout_us=2000000", 16, 0x3fffff, ~0ull, 8 * PG, 8, 8 * PG, 0, 1);
	struct env e = r.e;
	struct dmar_dma_tag *t = r.t;
	struct dmar_dmamap *m1 = r.m, *m2;
	uint8_t *buf = r.buf;
	dmar_busdma_set_bounce_limit(e.bus, 2);
	REQUIRE_OK(dmar_dmamap_create(t, 0, &m2));
	uint64_t far = 0;
	for (unsigned i = 0; i < 16 && !far; i++)
		if (fake_virt_to_phys(e.f, buf + i * PG) > 0x3fffff)
			far = fake_virt_to_phys(e.f, buf + i * PG);
	REQUIRE(far);
	REQUIRE_OK(dmar_dmamap_load_phys(t, m1, far, PG, 0));
	REQUIRE_OK(dmar_dmamap_load_phys(t, m2, far, PG, 0));
	struct dmar_dmamap *m3;
	REQUIRE_OK(dmar_dmamap_create(t, 0, &m3));
	struct unloader u = { t, m1 };
	pthread_t th;
	REQUIRE(pthread_create(&th, NULL, unload_later, &u) == 0);
	CHECK_OK(dmar_dmamap_load_phys(t, m3, far, PG, DMAR_DMA_WAITOK));
	pthread_join(th, NULL);
	CHECK_EQ(dmar_dmamap_nsegs(m3), 1);
	CHECK_OK(dmar_dmamap_unload(t, m2));
	CHECK_OK(dmar_dmamap_unload(t, m3));
	CHECK_OK(dmar_dmamap_destroy(t, m2));
	CHECK_OK(dmar_dmamap_destroy(t, m3));
	rig_down(&r);
}

TEST(no_page_below_lowaddr_is_enospc)
{
	/* The arena has nothing below 1 MiB. */
	struct rig r;
	rig_up(&r, NULL, 1, 0xfffff, ~0ull, PG, 1, PG, 0, 1);
	struct env e = r.e;
	struct dmar_dma_tag *t = r.t;
	struct dmar_dmamap *m = r.m;
	uint8_t *buf = r.buf;
	uint64_t pages_before = e.f->pages_live;
	CHECK_EQ(dmar_dmamap_load(t, m, buf, 512, 0), DMAR_ENOSPC);
	CHECK_EQ(e.f->pages_live, pages_before);
	void *mem;
	struct dmar_dmamap *mm;
	CHECK_EQ(dmar_dmamem_alloc(t, &mem, 0, &mm), DMAR_ENOSPC);
	CHECK_EQ(e.f->pages_live, pages_before);
	rig_down(&r);
}

TEST(dmamem_alloc_honours_lowaddr_and_loads_without_bouncing)
{
	struct env e;
	env_up(&e, NULL);
	struct dmar_dma_tag *t = busdma_test_tag(e.dev, 0x3fffff, ~0ull, PG, 1, PG, 0, PG);
	for (int i = 0; i < 20; i++) {
		void *mem;
		struct dmar_dmamap *m;
		REQUIRE_OK(dmar_dmamem_alloc(t, &mem, 0, &m));
		CHECK(fake_virt_to_phys(e.f, mem) <= 0x3fffff);
		CHECK(((uint8_t *)mem)[100] == 0);
		REQUIRE_OK(dmar_dmamap_load(t, m, mem, PG, 0));
		CHECK(!dmar_dmamap_is_bounced(m));
		CHECK_EQ(dmar_dmamem_free(t, mem, m), DMAR_EBUSY);
		CHECK_OK(dmar_dmamap_unload(t, m));
		CHECK_OK(dmar_dmamem_free(t, mem, m));
	}
	struct dmar_dma_tag *big = busdma_test_tag(e.dev, ~0ull, ~0ull, 2 * PG, 2, PG, 0, 1);
	void *mem;
	struct dmar_dmamap *m;
	CHECK_EQ(dmar_dmamem_alloc(big, &mem, 0, &m), DMAR_ENOTSUP);
	CHECK_OK(dmar_dma_tag_destroy(big));
	CHECK_OK(dmar_dma_tag_destroy(t));
	env_down(&e);
}

TEST(enable_0_or_no_unit_means_bounce)
{
	struct env e;
	env_up(&e, "hw.dmar.enable=0");
	CHECK_EQ(dmar_busdma_device_mode(e.dev), DMAR_BUSDMA_BOUNCE);
	CHECK(dmar_busdma_device_domain(e.dev) == NULL);
	CHECK_EQ(dmar_busdma_device_sid(e.dev), 3 << 3);
	env_down(&e);
}

/* The whole life of a bounced transfer with the n-th allocation failing, n = 1, 2, ...
 * until it runs through: every failure is DMAR_ENOMEM (or ENOSPC where page_alloc
 * failing looks like no fitting page), and once everything made is destroyed nothing
 * is left allocated. */
TEST(fail_nth_allocation_leaves_no_leak)
{
	struct fake *f = fake_new();
	uint8_t *buf = fake_pages(f, 9);
	fill(buf, 9 * PG, 7);
	uint64_t base_pages = f->pages_live;
	struct dmar_config cfg;
	dmar_config_default(&cfg);
	unsigned n;
	for (n = 1; n < 1000; n++) {
		struct dmar_busdma *bus = NULL;
		struct dmar_busdma_dev *dev = NULL;
		struct dmar_dma_tag *t = NULL, *child = NULL;
		struct dmar_dmamap *m = NULL;
		struct dmar_dma_tag_params p;
		bool loaded = false;
		int rc;
		f->nallocs = 0;
		f->fail_at = n;
		dmar_dma_tag_params_default(&p);
		p.lowaddr = 0xffffffff;
		p.maxsize = 9 * PG;
		p.nsegments = 16;
		if ((rc = dmar_busdma_create(&f->os, &cfg, NULL, &bus)))
			goto done;
		struct dmar_pci_addr a = { 0, 1, 0, 0 };
		if ((rc = dmar_busdma_device(bus, a, NULL, NULL, &dev)))
			goto done;
		if ((rc = dmar_dma_tag_create(dev, NULL, &p, &t)))
			goto done;
		if ((rc = dmar_dma_tag_create(NULL, t, &p, &child)))
			goto done;
		if ((rc = dmar_dmamap_create(child, 0, &m)))
			goto done;
		uint64_t pages_before = f->pages_live;
		rc = dmar_dmamap_load(child, m, buf + 1, 8 * PG, 0);
		if (rc) {
			CHECK_EQ(dmar_dmamap_nsegs(m), 0);
			CHECK_EQ(f->pages_live, pages_before); /* no bounce page kept */
			goto done;
		}
		loaded = true;
		check_segments(child, m, 8 * PG);
		uint8_t *got = malloc(8 * PG);
		CHECK_OK(dmar_dmamap_sync(child, m, DMAR_DMASYNC_PREWRITE));
		device_read(f, m, got);
		CHECK(memcmp(got, buf + 1, 8 * PG) == 0);
		free(got);
		rc = dmar_dmamap_unload(child, m);
		loaded = rc != 0;
	done:
		if (rc) {
			char what[64];
			snprintf(what, sizeof(what), "allocation %u fails", n);
			harness_set_context(what);
			CHECK(rc == DMAR_ENOMEM || rc == DMAR_ENOSPC);
		}
		f->fail_at = 0;
		if (loaded)
			CHECK_OK(dmar_dmamap_unload(child, m));
		if (m)
			CHECK_OK(dmar_dmamap_destroy(child, m));
		if (child)
			CHECK_OK(dmar_dma_tag_destroy(child));
		if (t)
			CHECK_OK(dmar_dma_tag_destroy(t));
		if (dev)
			CHECK_OK(dmar_busdma_device_destroy(dev));
		if (bus)
			CHECK_OK(dmar_busdma_destroy(bus));
		CHECK_EQ(f->allocs_live, 0);
		CHECK_EQ(f->pages_live, base_pages);
		harness_set_context(NULL);
		if (!rc)
			break;
	}
	CHECK(n > 5 && n < 1000); /* it did fail on the way, and then got through */
	fake_pages_free(f, buf, 9);
	fake_delete(f);
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(uint64_t n)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return rnd_state % n;
}

/* Random tags and random virtual or sg loads: every load either obeys every
 * constraint and moves the right bytes both ways, or fails with a load error and
 * holds nothing. */
TEST(random_tags_and_loads_obey_constraints_or_fail_cleanly)
{
	struct env e;
	env_up(&e, NULL);
	uint8_t *buf = fake_pages(e.f, 32);
	uint8_t *got = malloc(32 * PG), *want = malloc(32 * PG);
	const uint64_t aligns[] = { 1, 4, 64, PG };
	const uint64_t bounds[] = { 0, PG, 2 * PG, 16 * PG };
	const uint64_t lows[] = { UINT64_MAX, 0xffffffff, 0x3fffff };
	unsigned ok = 0, failed = 0;
	for (int it = 0; it < 300; it++) {
		struct dmar_dma_tag_params p;
		dmar_dma_tag_params_default(&p);
		p.alignment = aligns[rnd(4)];
		p.boundary = bounds[rnd(4)];
		p.lowaddr = lows[rnd(3)];
		p.highaddr = rnd(2) ? UINT64_MAX : dmar_max_u64(p.lowaddr, 0xffffffffull);
		p.maxsize = 32 * PG;
		p.nsegments = 1 + (unsigned)rnd(40);
		p.maxsegsz = p.alignment + rnd(8 * PG);
		struct dmar_dma_tag *t;
		struct dmar_dmamap *m;
		REQUIRE_OK(dmar_dma_tag_create(e.dev, NULL, &p, &t));
		REQUIRE_OK(dmar_dmamap_create(t, 0, &m));
		uint64_t len;
		int rc;
		fill(buf, 32 * PG, (unsigned)it);
		if (rnd(2)) {
			uint64_t off = rnd(4 * PG);
			len = 1 + rnd(28 * PG - 1);
			memcpy(want, buf + off, len);
			rc = dmar_dmamap_load(t, m, buf + off, len, 0);
		} else {
			struct dmar_dma_segment sg[8];
			unsigned n = 1 + (unsigned)rnd(8);
			len = 0;
			for (unsigned i = 0; i < n; i++) {
				uint64_t at = rnd(32 * PG - 1);
				sg[i].len = 1 + rnd(dmar_min_u64(32 * PG - at, 3 * PG));
				sg[i].addr = fake_virt_to_phys(e.f, buf + at);
				/* keep each piece within one arena page run: split at a page end */
				sg[i].len = dmar_min_u64(sg[i].len, PG - at % PG);
				memcpy(want + len, buf + at, sg[i].len);
				len += sg[i].len;
			}
			rc = dmar_dmamap_load_sg(t, m, sg, n, 0);
		}
		if (rc == 0) {
			ok++;
			check_segments(t, m, len);
			CHECK_OK(dmar_dmamap_sync(t, m, DMAR_DMASYNC_PREWRITE));
			device_read(e.f, m, got);
			CHECK(memcmp(got, want, len) == 0);
			CHECK_OK(dmar_dmamap_unload(t, m));
		} else {
			failed++;
			CHECK(rc == DMAR_ERANGE || rc == DMAR_ENOSPC);
			CHECK_EQ(dmar_dmamap_nsegs(m), 0);
		}
		struct dmar_busdma_stats st;
		dmar_busdma_get_stats(e.bus, &st);
		CHECK_EQ(st.pool_free, st.pool_pages);
		CHECK_OK(dmar_dmamap_destroy(t, m));
		CHECK_OK(dmar_dma_tag_destroy(t));
	}
	printf("  %u loads obeyed their tags, %u failed cleanly\n", ok, failed);
	CHECK(ok > 100 && failed > 10);
	free(got);
	free(want);
	fake_pages_free(e.f, buf, 32);
	env_down(&e);
}
