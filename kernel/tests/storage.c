/*
 * The read/write/verify test every storage controller runs (storage.h).
 */
#include "storage.h"

#include "pmem.h"
#include "regs.h"
#include "util.h"

void storage_fill(uint8_t *p, uint64_t len, uint32_t sector_size, uint32_t seed, uint64_t lba)
{
	for (uint64_t i = 0; i < len; i++)
		p[i] = storage_pattern(seed, lba + i / sector_size, (uint32_t)(i % sector_size));
}

bool storage_matches(const uint8_t *p, uint64_t len, uint32_t sector_size, uint32_t seed,
		     uint64_t lba)
{
	for (uint64_t i = 0; i < len; i++) {
		uint8_t want = storage_pattern(seed, lba + i / sector_size,
					       (uint32_t)(i % sector_size));
		if (p[i] != want) {
			kprintf("# first difference at byte %llu: %#x, expected %#x\n",
				(unsigned long long)i, p[i], want);
			return false;
		}
	}
	return true;
}

void storage_disk_check(const struct blockdev *b, uint64_t lba, uint64_t sectors, uint32_t seed)
{
	kprintf("# disk-check: %s lba=%llu sectors=%llu seed=%u sector=%u\n", b->name,
		(unsigned long long)lba, (unsigned long long)sectors, seed, b->sector_size);
}

int storage_io(struct blockdev *b, struct dmar_dmamap *map, bool write, uint64_t lba,
	       uint64_t len)
{
	(void)dmar_dmamap_sync(b->tag, map, write ? DMAR_DMASYNC_PREWRITE : DMAR_DMASYNC_PREREAD);
	int rc = b->io(b, write, lba, (uint32_t)(len / b->sector_size), map);
	(void)dmar_dmamap_sync(b->tag, map, write ? DMAR_DMASYNC_POSTWRITE : DMAR_DMASYNC_POSTREAD);
	return rc;
}

int storage_xfer(struct blockdev *b, struct dmar_dmamap *map, bool write, uint64_t lba,
		 uint8_t *buf, uint64_t len, bool keep)
{
	int rc = dmar_dmamap_load(b->tag, map, buf, len, 0);
	if (rc)
		return rc;
	rc = storage_io(b, map, write, lba, len);
	if (!keep) {
		int urc = dmar_dmamap_unload(b->tag, map);
		rc = rc ? rc : urc;
	}
	return rc;
}

bool storage_fresh_io(struct ktest *t, struct blockdev *b, bool write, uint64_t lba,
		      uint64_t len, uint32_t seed, uint64_t min,
		      void (*check_segs)(struct ktest *t, const struct blockdev *b,
					 const struct dmar_dmamap *map))
{
	const uint32_t ss = b->sector_size;
	struct dmar_dmamap *map = 0;
	uint64_t pa = min ? pmem_alloc_in(len / PAGE + 1, PAGE, min, PMEM_NO_LIMIT)
			  : pmem_alloc(len / PAGE + 1, PAGE, PMEM_NO_LIMIT);
	bool ok = false;
	if (!pa || dmar_dmamap_create(b->tag, 0, &map)) {
		ktest_fail(t, __FILE__, __LINE__, "no memory");
		goto out;
	}
	if (write)
		storage_fill(va(pa), len, ss, seed, lba);
	else
		dmar_memset(va(pa), 0xa5, (size_t)len);
	int rc = dmar_dmamap_load(b->tag, map, va(pa), len, 0);
	if (!rc && min) {
		const struct dmar_dma_segment *s = dmar_dmamap_segs(map);
		kprintf("# %s: buffer at %#llx: first PRD entry %#llx + %llu%s\n", b->name,
			(unsigned long long)pa, (unsigned long long)s[0].addr,
			(unsigned long long)s[0].len, dmar_dmamap_is_bounced(map) ? " (bounced)" : "");
		if (check_segs)
			check_segs(t, b, map);
	}
	if (!rc) {
		rc = storage_io(b, map, write, lba, len);
		CHECK_EQ(dmar_dmamap_unload(b->tag, map), 0);
	}
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "%s at lba %llu: %s", write ? "WRITE" : "READ",
			   (unsigned long long)lba, dmar_strerror(rc));
		goto out;
	}
	if (!write && seed == STORAGE_CANARY_SEED) {
		ok = true;
		for (uint64_t off = 0; off < len; off += ss)
			ok = ok && !all_bytes(pa + off, ss, STORAGE_CANARY);
		if (!ok)
			ktest_fail(t, __FILE__, __LINE__, "the disk got the unloaded buffer's bytes");
		goto out;
	}
	ok = write || storage_matches(va(pa), len, ss, seed, lba);
	if (!ok)
		ktest_fail(t, __FILE__, __LINE__, "read back at lba %llu differs",
			   (unsigned long long)lba);
out:
	if (map)
		CHECK_EQ(dmar_dmamap_destroy(b->tag, map), 0);
	if (pa)
		pmem_free(pa, len / PAGE + 1);
	return ok;
}

bool storage_stale_fault(struct ktest *t, struct fixture *f, uint16_t sid, uint64_t iova,
			 bool is_read)
{
	struct dmar_fault_record r;
	bool found;
	drain_faults(f, sid, &r, &found);
	CHECK(found);
	if (!found)
		return false;
	CHECK_EQ(r.addr, iova & ~(PAGE - 1));
	CHECK_EQ(r.is_read, is_read);
	CHECK_EQ(r.reason, is_read ? VTD_FR_READ : VTD_FR_WRITE);
	CHECK_EQ(r.unit, f->info.index);
	return true;
}

/* One buffer of a case: contiguous (pa, offset) or discontiguous pages. */
struct sbuf {
	uint64_t pages[8];    /* physical pages: one run (npages[0] pages), or single pages */
	uint64_t runs[8];     /* pages per entry */
	unsigned n;
	uint64_t offset;      /* where the data starts in the first page */
	bool discontiguous;   /* single pages, loaded as a page list */
};

static void sbuf_free(struct sbuf *s)
{
	for (unsigned i = 0; i < s->n; i++)
		pmem_free(s->pages[i], s->runs[i]);
	s->n = 0;
}

/* Contiguous pages for `offset + len` bytes, or `len / 4096` single pages with a page
 * kept free between them (so they are not adjacent). */
static bool sbuf_alloc(struct sbuf *s, uint64_t len, uint64_t offset, bool discontiguous)
{
	dmar_memset(s, 0, sizeof(*s));
	s->offset = offset;
	s->discontiguous = discontiguous;
	if (!discontiguous) {
		uint64_t n = (offset + len + PAGE - 1) / PAGE;
		s->pages[0] = pmem_alloc(n, PAGE, PMEM_NO_LIMIT);
		s->runs[0] = n;
		s->n = s->pages[0] ? 1 : 0;
		return s->n == 1;
	}
	for (uint64_t i = 0; i < len / PAGE && i < 8; i++) {
		uint64_t gap = pmem_alloc(1, PAGE, PMEM_NO_LIMIT);
		uint64_t pa = pmem_alloc(1, PAGE, PMEM_NO_LIMIT);
		if (gap)
			pmem_free(gap, 1);
		if (!pa) {
			sbuf_free(s);
			return false;
		}
		s->pages[s->n] = pa;
		s->runs[s->n++] = 1;
	}
	/* Reverse the order, so that consecutive buffer pages are never ascending
	 * neighbours even if the allocator handed out adjacent pages. */
	for (unsigned i = 0; i < s->n / 2; i++) {
		uint64_t x = s->pages[i];
		s->pages[i] = s->pages[s->n - 1 - i];
		s->pages[s->n - 1 - i] = x;
	}
	return true;
}

static void sbuf_copy(struct sbuf *s, uint64_t len, uint8_t *tmp, bool to_buffer)
{
	if (!s->discontiguous) {
		uint8_t *p = va(s->pages[0]) + s->offset;
		if (to_buffer)
			dmar_memcpy(p, tmp, len);
		else
			dmar_memcpy(tmp, p, len);
		return;
	}
	for (unsigned i = 0; i < s->n; i++) {
		if (to_buffer)
			dmar_memcpy(va(s->pages[i]), tmp + i * PAGE, PAGE);
		else
			dmar_memcpy(tmp + i * PAGE, va(s->pages[i]), PAGE);
	}
}

static int sbuf_load(struct blockdev *b, struct dmar_dmamap *map, struct sbuf *s, uint64_t len)
{
	if (!s->discontiguous)
		return dmar_dmamap_load(b->tag, map, va(s->pages[0]) + s->offset, len, 0);
	return dmar_dmamap_load_pages(b->tag, map, s->pages, s->n, 0, len, 0);
}

/* One transfer through a freshly loaded map, with the syncs a driver does. */
static int transfer(struct ktest *t, struct blockdev *b, bool write, uint64_t lba,
		    uint64_t len, struct sbuf *s)
{
	struct dmar_dmamap *map = NULL;
	int rc = dmar_dmamap_create(b->tag, 0, &map);
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "dmamap_create: %s", dmar_strerror(rc));
		return rc;
	}
	rc = sbuf_load(b, map, s, len);
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "load of %llu bytes: %s",
			   (unsigned long long)len, dmar_strerror(rc));
		goto out;
	}
	rc = storage_io(b, map, write, lba, len);
	if (rc)
		ktest_fail(t, __FILE__, __LINE__, "%s %s of %llu sectors at lba %llu: %d", b->name,
			   write ? "WRITE" : "READ", (unsigned long long)(len / b->sector_size),
			   (unsigned long long)lba, rc);
	int urc = dmar_dmamap_unload(b->tag, map);
	if (urc) {
		ktest_fail(t, __FILE__, __LINE__, "unload: %s", dmar_strerror(urc));
		rc = rc ? rc : urc;
	}
out:
	(void)dmar_dmamap_destroy(b->tag, map);
	return rc;
}

void storage_rw_verify(struct ktest *t, struct fixture *f, struct blockdev *b, uint64_t lba_base)
{
	(void)f;
	const uint32_t ss = b->sector_size;
	const struct {
		const char *what;
		uint64_t len, offset;
		bool discontiguous;
	} cases[] = {
		{ "one sector", ss, 0, false },
		{ "several pages", 5 * PAGE, 0, false },
		{ "a buffer starting mid-page", 2 * PAGE, 512 > ss ? 512 : ss, false },
		{ "physically discontiguous pages", 4 * PAGE, 0, true },
		{ "the largest transfer", b->max_bytes, 0, false },
	};
	uint64_t region = b->max_bytes / ss + 16;
	uint64_t tmp_pages = (b->max_bytes + PAGE - 1) / PAGE + 1;
	uint64_t tmp_pa = pmem_alloc(tmp_pages, PAGE, PMEM_NO_LIMIT);
	if (!tmp_pa) {
		ktest_fail(t, __FILE__, __LINE__, "no memory for %llu pages",
			   (unsigned long long)tmp_pages);
		return;
	}
	uint8_t *tmp = va(tmp_pa);
	for (unsigned k = 0; k < DMAR_ARRAY_SIZE(cases); k++) {
		uint64_t len = cases[k].len, lba = lba_base + k * region;
		uint32_t seed = 0x5eed0000u + k;
		struct sbuf wr, rd;
		if (len % ss || lba + len / ss > b->sectors) {
			ktest_fail(t, __FILE__, __LINE__, "%s: %llu bytes at lba %llu do not fit",
				   cases[k].what, (unsigned long long)len, (unsigned long long)lba);
			continue;
		}
		if (!sbuf_alloc(&wr, len, cases[k].offset, cases[k].discontiguous)) {
			ktest_fail(t, __FILE__, __LINE__, "%s: no memory", cases[k].what);
			continue;
		}
		if (!sbuf_alloc(&rd, len, cases[k].offset, cases[k].discontiguous)) {
			sbuf_free(&wr);
			ktest_fail(t, __FILE__, __LINE__, "%s: no memory", cases[k].what);
			continue;
		}
		storage_fill(tmp, len, ss, seed, lba);
		sbuf_copy(&wr, len, tmp, true);
		kprintf("# %s: %s, %llu bytes at lba %llu\n", b->name, cases[k].what,
			(unsigned long long)len, (unsigned long long)lba);
		if (transfer(t, b, true, lba, len, &wr) == 0) {
			dmar_memset(tmp, 0xa5, len);
			sbuf_copy(&rd, len, tmp, true); /* the read must overwrite all of it */
			if (transfer(t, b, false, lba, len, &rd) == 0) {
				sbuf_copy(&rd, len, tmp, false);
				if (storage_matches(tmp, len, ss, seed, lba))
					storage_disk_check(b, lba, len / ss, seed);
				else
					ktest_fail(t, __FILE__, __LINE__, "%s: read back differs",
						   cases[k].what);
			}
		}
		sbuf_free(&wr);
		sbuf_free(&rd);
	}
	pmem_free(tmp_pa, tmp_pages);
}
