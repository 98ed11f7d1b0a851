/*
 * Property test of the remapping core: random map/unmap through the public API, checked
 * after every step against a reference map, against the model's page walk (no caches),
 * and against DMA through the model's caches (a missing invalidation shows as a stale
 * translation). Seeded; DMAR_SEED overrides; DMAR_STEPS sets the number of steps.
 */
#include "harness.h"
#include "simsys.h"
#include "regs.h"

#include <stdlib.h>
#include <string.h>

#define WINDOW_PAGES 16384u /* 64 MiB of IOVA */
#define NONE UINT64_MAX
#define SID VTD_SID(0, 5, 0)

static uint64_t rng_state;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static uint64_t ref[WINDOW_PAGES]; /* phys of each IOVA page, or NONE */
static unsigned char refprot[WINDOW_PAGES];

static bool translate_ok(struct simsys *s, unsigned page)
{
	uint64_t pa = 0;
	unsigned reason = 0;
	int rc = dmar_model_translate(s->model, SID, (uint64_t)page * 4096 + 8, MODEL_DMA_READ,
				      &pa, &reason);
	if (ref[page] == NONE)
		return rc != 0;
	if (rc != 0 || pa != ref[page] + 8)
		return false;
	rc = dmar_model_translate(s->model, SID, (uint64_t)page * 4096, MODEL_DMA_WRITE, &pa,
				  &reason);
	return (refprot[page] & DMAR_PROT_WRITE) ? rc == 0 : rc != 0;
}

static void check_pages(struct simsys *s, unsigned first, unsigned n, uint64_t step)
{
	for (unsigned p = first; p < first + n && p < WINDOW_PAGES; p++) {
		if (!translate_ok(s, p)) {
			harness_fail(__FILE__, __LINE__, "step %llu: page 0x%x: tables disagree with the reference",
				     (unsigned long long)step, p);
			harness_abort_test();
		}
	}
}

static void run(int qi, bool cm, unsigned long steps, uint64_t seed)
{
	struct simsys s;
	struct model_config m = simsys_keep_everything(); /* stale entries must be invalidated */
	struct dmar_config c;
	m.cm = cm;
	dmar_config_default(&c);
	c.qi = qi;
	c.timeout_ns = 10000000;
	REQUIRE_OK(simsys_up(&s, &m, &c));
	struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED };
	struct dmar_domain *d;
	REQUIRE_OK(dmar_domain_create(s.unit, &p, &d));
	REQUIRE_OK(dmar_domain_attach(d, SID));
	uint64_t arena_pa;
	simsys_buffer(&s, 128 << 20, &arena_pa);
	arena_pa = (arena_pa + (2u << 20) - 1) & ~(uint64_t)((2u << 20) - 1);
	for (unsigned i = 0; i < WINDOW_PAGES; i++)
		ref[i] = NONE;
	rng_state = seed;
	unsigned long maps = 0, unmaps = 0, rejected = 0;
	for (uint64_t step = 0; step < steps; step++) {
		uint64_t r = rnd();
		unsigned kind = r % 100;
		if (kind < 50) {
			/* map: 60% one page, 30% 2-16 pages, 10% a 2 MiB-aligned 2 MiB block */
			unsigned npages, first;
			uint64_t pa;
			unsigned cls = (unsigned)(r >> 8) % 10;
			if (cls < 6) {
				npages = 1;
			} else if (cls < 9) {
				npages = 2 + (unsigned)(rnd() % 15);
			} else {
				npages = 512;
			}
			if (npages == 512) {
				first = (unsigned)(rnd() % (WINDOW_PAGES / 512)) * 512;
				pa = arena_pa + (rnd() % 32) * (2u << 20);
			} else {
				first = (unsigned)(rnd() % (WINDOW_PAGES - npages));
				pa = arena_pa + (rnd() % (32768 - npages)) * 4096;
			}
			unsigned prot = (rnd() & 1) ? DMAR_PROT_RW : DMAR_PROT_READ;
			bool free = true;
			for (unsigned i = 0; i < npages; i++)
				free = free && ref[first + i] == NONE;
			int rc = dmar_map(d, (uint64_t)first * 4096, pa, (uint64_t)npages * 4096,
					  prot);
			if (free) {
				if (rc) {
					harness_fail(__FILE__, __LINE__, "step %llu: map failed: %s",
						     (unsigned long long)step, dmar_strerror(rc));
					harness_abort_test();
				}
				for (unsigned i = 0; i < npages; i++) {
					ref[first + i] = pa + i * 4096ull;
					refprot[first + i] = (unsigned char)prot;
				}
				maps++;
			} else {
				if (rc != DMAR_EEXIST) {
					harness_fail(__FILE__, __LINE__, "step %llu: overlapping map gave %d",
						     (unsigned long long)step, rc);
					harness_abort_test();
				}
				rejected++;
			}
			check_pages(&s, first ? first - 1 : 0, npages + 2, step);
		} else {
			/* unmap a random sub-run of mapped pages around a random mapped page */
			unsigned at = (unsigned)(rnd() % WINDOW_PAGES);
			unsigned tries = 0;
			while (ref[at] == NONE && tries++ < 64)
				at = (at + 97) % WINDOW_PAGES;
			if (ref[at] == NONE)
				continue;
			unsigned lo = at, hi = at;
			unsigned want = 1 + (unsigned)(rnd() % ((rnd() & 7) ? 8 : 700));
			while (hi + 1 < WINDOW_PAGES && ref[hi + 1] != NONE && hi - lo + 1 < want)
				hi++;
			unsigned char b[8];
			/* warm the IOTLB for the pages about to go */
			simsys_dma(&s, SID, (uint64_t)lo * 4096, b, 8, false);
			simsys_dma(&s, SID, (uint64_t)hi * 4096, b, 8, false);
			int rc = dmar_unmap(d, (uint64_t)lo * 4096, (uint64_t)(hi - lo + 1) * 4096);
			if (rc) {
				harness_fail(__FILE__, __LINE__, "step %llu: unmap failed: %s",
					     (unsigned long long)step, dmar_strerror(rc));
				harness_abort_test();
			}
			for (unsigned i = lo; i <= hi; i++)
				ref[i] = NONE;
			unmaps++;
			/* through the caches: the unmapped pages fault now */
			if (simsys_dma(&s, SID, (uint64_t)lo * 4096, b, 8, false) == 0 ||
			    simsys_dma(&s, SID, (uint64_t)hi * 4096, b, 8, false) == 0) {
				harness_fail(__FILE__, __LINE__, "step %llu: stale translation after unmap",
					     (unsigned long long)step);
				harness_abort_test();
			}
			check_pages(&s, lo ? lo - 1 : 0, hi - lo + 3, step);
			dmar_fault_poll(s.sys);
			struct dmar_fault_record recs[8];
			while (dmar_fault_read(s.sys, recs, 8))
				;
		}
		if (step % 10000 == 9999)
			check_pages(&s, 0, WINDOW_PAGES, step);
	}
	check_pages(&s, 0, WINDOW_PAGES, steps);
	printf("  qi=%d cm=%d seed=0x%llx: %lu maps, %lu overlapping maps refused, %lu unmaps\n",
	       qi, cm, (unsigned long long)seed, maps, rejected, unmaps);
	CHECK(maps > steps / 5);
	CHECK(unmaps > steps / 5);
	CHECK_OK(dmar_domain_detach(d, SID));
	CHECK_OK(dmar_domain_destroy(d));
	CHECK_EQ(simsys_down(&s), 0);
}

static uint64_t seed_from_env(void)
{
	const char *e = getenv("DMAR_SEED");
	return e ? strtoull(e, NULL, 0) : 0x5eed0fd3a11ull;
}

static unsigned long steps_from_env(unsigned long dflt)
{
	const char *e = getenv("DMAR_STEPS");
	return e ? strtoul(e, NULL, 0) : dflt;
}

TEST(random_map_unmap_matches_reference_qi)
{
	run(1, false, steps_from_env(100000), seed_from_env());
}

TEST(random_map_unmap_matches_reference_registers_caching_mode)
{
	run(0, true, steps_from_env(30000), seed_from_env() + 1);
}
