/*
 * test_window.c - windows (dmar/dmar.h dmar_window_*): 2 MiB of a domain whose pages one
 * user maps without the domain lock. What is checked is what a device sees through the
 * unit model: a mapped page is reached, an unmapped one still is until the
 * invalidation (the model's IOTLB keeps it), then faults; and on units that need more
 * than an entry written (no snooping, caching mode, write-buffer flushing), the window
 * does what they need. The rest of the domain must not disturb a window's table.
 */
#include "harness.h"
#include "simsys.h"
#include "regs.h"
#include "pgtable.h"

#include <string.h>

#define PG 4096ull
#define MIB (1ull << 20)
#define SID VTD_SID(0, 5, 0)
#define WBASE (64 * MIB)

static struct dmar_domain *attached(struct simsys *s)
{
	struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED };
	struct dmar_domain *d = NULL;
	REQUIRE_OK(dmar_domain_create(s->unit, &p, &d));
	REQUIRE_OK(dmar_domain_attach(d, SID));
	return d;
}

/* A device reads 8 bytes at iova: 0 and *v, or the fault reason. */
static int reach(struct simsys *s, uint64_t iova, uint64_t *v)
{
	*v = 0;
	return simsys_dma(s, SID, iova, v, 8, false);
}

/* Two pages of simulated RAM, the first 8 bytes of each its own tag. */
static uint64_t tagged(struct simsys *s)
{
	uint64_t pa;
	uint8_t *va = simsys_buffer(s, 2 * PG, &pa);
	uint64_t t0 = 0x1111, t1 = 0x2222;
	memcpy(va, &t0, 8);
	memcpy(va + PG, &t1, 8);
	return pa;
}

/* Unmaps the window's one mapped page, invalidates it and destroys the window. */
static void window_done(struct dmar_window *w, unsigned page)
{
	CHECK_OK(dmar_window_unmap(w, page));
	CHECK_OK(dmar_window_invalidate(w, page, 1));
	CHECK_OK(dmar_window_destroy(w));
}

static void down(struct simsys *s, struct dmar_domain *d)
{
	dmar_fault_poll(s->sys);
	CHECK_OK(dmar_domain_detach(d, SID));
	CHECK_OK(dmar_domain_destroy(d));
	CHECK_EQ(simsys_down(s), 0);
}

TEST(a_window_page_is_reached_and_faults_once_invalidated)
{
	struct simsys s;
	struct model_config m = simsys_keep_everything();
	REQUIRE_OK(simsys_up(&s, &m, NULL));
	struct dmar_domain *d = attached(&s);
	uint64_t pa = tagged(&s), v;
	struct dmar_window *w;
	REQUIRE_OK(dmar_window_create(d, WBASE, &w));
	CHECK_EQ(dmar_window_base(w), WBASE);
	CHECK_OK(dmar_window_map(w, 3, pa, DMAR_PROT_READ));
	CHECK_OK(dmar_window_map(w, 511, pa + PG, DMAR_PROT_RW));
	CHECK_EQ(reach(&s, WBASE + 3 * PG, &v), 0);
	CHECK_EQ(v, 0x1111);
	CHECK_EQ(reach(&s, WBASE + 511 * PG, &v), 0);
	CHECK_EQ(v, 0x2222);
	uint64_t got;
	unsigned prot;
	CHECK_OK(dmar_lookup(d, WBASE + 3 * PG, &got, &prot));
	CHECK_EQ(got, pa);
	CHECK_EQ(prot, DMAR_PROT_READ);
	CHECK_EQ(simsys_dma(&s, SID, WBASE + 3 * PG, &v, 8, true), VTD_FR_WRITE);
	CHECK_EQ(reach(&s, WBASE + 4 * PG, &v), VTD_FR_READ); /* not mapped */
	/* Unmapped: the IOTLB still holds it until the invalidation. */
	CHECK_OK(dmar_window_unmap(w, 3));
	CHECK_EQ(dmar_lookup(d, WBASE + 3 * PG, &got, &prot), DMAR_ENOENT);
	CHECK_EQ(reach(&s, WBASE + 3 * PG, &v), 0);
	CHECK_OK(dmar_window_invalidate(w, 3, 1));
	CHECK_EQ(reach(&s, WBASE + 3 * PG, &v), VTD_FR_READ);
	CHECK_EQ(reach(&s, WBASE + 511 * PG, &v), 0); /* the other page stays */
	CHECK_OK(dmar_window_unmap(w, 511));
	CHECK_OK(dmar_window_invalidate(w, 0, DMAR_WINDOW_PAGES));
	CHECK_EQ(reach(&s, WBASE + 511 * PG, &v), VTD_FR_READ);
	CHECK_OK(dmar_window_destroy(w));
	down(&s, d);
}

TEST(a_window_refuses_what_would_break_it)
{
	struct simsys s;
	REQUIRE_OK(simsys_up(&s, NULL, NULL));
	struct dmar_domain *d = attached(&s);
	uint64_t pa = tagged(&s);
	struct dmar_window *w, *w2;
	CHECK_EQ(dmar_window_create(d, WBASE + PG, &w2), DMAR_EINVAL);
	CHECK_EQ(dmar_window_create(d, 1ull << 39, &w2), DMAR_ERANGE);
	/* Over a mapping, or a superpage, the range is not free. */
	CHECK_OK(dmar_map(d, WBASE + 5 * PG, pa, PG, DMAR_PROT_RW));
	CHECK_EQ(dmar_window_create(d, WBASE, &w2), DMAR_EEXIST);
	CHECK_OK(dmar_unmap(d, WBASE + 5 * PG, PG));
	CHECK_OK(dmar_map(d, 8 * MIB, 0x40000000, 2 * MIB, DMAR_PROT_RW));
	CHECK_EQ(dmar_window_create(d, 8 * MIB, &w2), DMAR_EEXIST);
	CHECK_OK(dmar_unmap(d, 8 * MIB, 2 * MIB));
	REQUIRE_OK(dmar_window_create(d, WBASE, &w));
	CHECK_EQ(dmar_window_create(d, WBASE, &w2), DMAR_EEXIST);
	/* The domain's own calls keep out of it. */
	CHECK_EQ(dmar_map(d, WBASE - PG, pa, 2 * PG, DMAR_PROT_RW), DMAR_EBUSY);
	CHECK_EQ(dmar_map(d, WBASE + 2 * MIB - PG, pa, PG, DMAR_PROT_RW), DMAR_EBUSY);
	CHECK_OK(dmar_map(d, WBASE + 2 * MIB, pa, PG, DMAR_PROT_RW)); /* just after */
	CHECK_OK(dmar_map(d, WBASE - PG, pa, PG, DMAR_PROT_RW));      /* just before */
	CHECK_OK(dmar_window_map(w, 0, pa, DMAR_PROT_RW));
	CHECK_EQ(dmar_unmap(d, WBASE, PG), DMAR_EBUSY);
	CHECK_EQ(dmar_unmap_deferred(d, WBASE, PG), DMAR_EBUSY);
	/* Its own arguments. */
	CHECK_EQ(dmar_window_map(w, 0, pa, DMAR_PROT_RW), DMAR_EEXIST);
	CHECK_EQ(dmar_window_map(w, 512, pa, DMAR_PROT_RW), DMAR_EINVAL);
	CHECK_EQ(dmar_window_map(w, 1, pa + 8, DMAR_PROT_RW), DMAR_EINVAL);
	CHECK_EQ(dmar_window_map(w, 1, pa, 0), DMAR_EINVAL);
	CHECK_EQ(dmar_window_unmap(w, 1), DMAR_ENOENT);
	CHECK_EQ(dmar_window_unmap(w, 512), DMAR_EINVAL);
	CHECK_EQ(dmar_window_invalidate(w, 0, 0), DMAR_EINVAL);
	CHECK_EQ(dmar_window_invalidate(w, 511, 2), DMAR_EINVAL);
	CHECK_EQ(dmar_window_destroy(w), DMAR_EBUSY); /* a page is mapped */
	CHECK_OK(dmar_window_unmap(w, 0));
	CHECK_OK(dmar_window_invalidate(w, 0, 1));
	CHECK_OK(dmar_window_destroy(w));
	/* Ordinary space again. */
	CHECK_OK(dmar_map(d, WBASE, pa, PG, DMAR_PROT_RW));
	CHECK_OK(dmar_unmap(d, WBASE, PG));
	CHECK_OK(dmar_unmap(d, WBASE + 2 * MIB, PG));
	CHECK_OK(dmar_unmap(d, WBASE - PG, PG));
	/* Not a translated domain. */
	struct dmar_domain_params pp = { .kind = DMAR_DOMAIN_PASSTHROUGH };
	struct dmar_domain *pt;
	if (dmar_domain_create(s.unit, &pp, &pt) == 0) {
		CHECK_EQ(dmar_window_create(pt, WBASE, &w2), DMAR_EINVAL);
		CHECK_OK(dmar_domain_destroy(pt));
	}
	down(&s, d);
}

/* A leaf table an unmap left empty and kept becomes the window's; emptying more tables
 * than the domain keeps must not take it away from the window. */
TEST(a_window_keeps_its_table_when_the_domain_lets_empty_tables_go)
{
	struct simsys s;
	struct model_config m = simsys_keep_everything();
	REQUIRE_OK(simsys_up(&s, &m, NULL));
	struct dmar_domain *d = attached(&s);
	uint64_t pa = tagged(&s), v;
	CHECK_OK(dmar_map(d, WBASE, pa, PG, DMAR_PROT_RW));
	CHECK_OK(dmar_unmap(d, WBASE, PG)); /* its leaf table: empty, kept */
	struct dmar_window *w;
	REQUIRE_OK(dmar_window_create(d, WBASE, &w));
	for (unsigned i = 1; i <= PGTABLE_KEPT + 1; i++) {
		uint64_t at = WBASE + (uint64_t)i * 4 * MIB;
		CHECK_OK(dmar_map(d, at, pa, PG, DMAR_PROT_RW));
		CHECK_OK(dmar_unmap(d, at, PG));
	}
	CHECK_OK(dmar_window_map(w, 7, pa + PG, DMAR_PROT_RW));
	CHECK_EQ(reach(&s, WBASE + 7 * PG, &v), 0);
	CHECK_EQ(v, 0x2222);
	window_done(w, 7);
	down(&s, d);
}

/* A unit that does not snoop (ECAP.C=0) reads its tables from memory: each entry a
 * window writes is flushed from the CPU cache (the machine counts reads of stale
 * lines as coherency errors, and simsys_down fails on them). */
TEST(a_window_on_a_non_coherent_unit_flushes_its_entries)
{
	struct simsys s;
	struct model_config m = simsys_keep_everything();
	m.c = false;
	REQUIRE_OK(simsys_up(&s, &m, NULL));
	struct dmar_domain *d = attached(&s);
	uint64_t pa = tagged(&s), v;
	struct dmar_window *w;
	REQUIRE_OK(dmar_window_create(d, WBASE, &w));
	CHECK_OK(dmar_window_map(w, 1, pa, DMAR_PROT_RW));
	CHECK_EQ(reach(&s, WBASE + PG, &v), 0);
	CHECK_EQ(v, 0x1111);
	CHECK_OK(dmar_window_unmap(w, 1));
	CHECK_OK(dmar_window_invalidate(w, 1, 1));
	CHECK_EQ(reach(&s, WBASE + PG, &v), VTD_FR_READ);
	CHECK_OK(dmar_window_destroy(w));
	down(&s, d);
}

/* Caching mode (CAP.CM): the unit may cache a not-present entry, so a window map must
 * invalidate it; with CAP.RWBF the write buffer is flushed after each map. */
TEST(a_window_on_a_caching_mode_or_rwbf_unit_tells_it_of_each_map)
{
	for (int rwbf = 0; rwbf < 2; rwbf++) {
		struct simsys s;
		struct model_config m = simsys_keep_everything();
		m.cm = !rwbf;
		m.rwbf = rwbf;
		REQUIRE_OK(simsys_up(&s, &m, NULL));
		struct dmar_domain *d = attached(&s);
		uint64_t pa = tagged(&s), v;
		struct dmar_window *w;
		REQUIRE_OK(dmar_window_create(d, WBASE, &w));
		CHECK_EQ(reach(&s, WBASE + 2 * PG, &v), VTD_FR_READ); /* not present: cached */
		dmar_fault_poll(s.sys);
		struct dmar_unit_stats st0, st1;
		dmar_unit_get_stats(s.unit, &st0);
		CHECK_OK(dmar_window_map(w, 2, pa, DMAR_PROT_RW));
		dmar_unit_get_stats(s.unit, &st1);
		CHECK_EQ(reach(&s, WBASE + 2 * PG, &v), 0);
		CHECK_EQ(v, 0x1111);
		if (rwbf)
			CHECK_EQ(st1.wbf, st0.wbf + 1);
		else
			CHECK_EQ(st1.iotlb_page, st0.iotlb_page + 1);
		window_done(w, 2);
		down(&s, d);
	}
}

/* Out of table pages: the window is not made and nothing stays allocated. */
TEST(a_window_fails_cleanly_without_memory)
{
	struct simsys s;
	REQUIRE_OK(simsys_up(&s, NULL, NULL));
	struct dmar_domain *d = attached(&s);
	uint64_t pages0 = dmar_posix_machine_pages_outstanding(s.pm);
	uint64_t allocs0 = dmar_posix_machine_allocs_outstanding(s.pm);
	unsigned n;
	for (n = 1; n < 50; n++) {
		struct dmar_window *w = NULL;
		dmar_posix_machine_fail_nth(s.pm, n);
		int rc = dmar_window_create(d, WBASE, &w);
		bool failed = dmar_posix_machine_failed(s.pm);
		dmar_posix_machine_fail_nth(s.pm, 0);
		if (rc) {
			CHECK_EQ(rc, DMAR_ENOMEM);
			CHECK_EQ(dmar_posix_machine_pages_outstanding(s.pm), pages0);
			CHECK_EQ(dmar_posix_machine_allocs_outstanding(s.pm), allocs0);
			continue;
		}
		CHECK_OK(dmar_window_destroy(w));
		if (!failed)
			break;
	}
	CHECK(n > 2 && n < 50);
	down(&s, d);
}
