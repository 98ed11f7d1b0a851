/*
 * test_posix_machine.c - the host OS layer: simulated physical memory, accounting and
 * failure injection, MMIO routing to several units and machines, the virtual clock, the
 * log, and the coherency check for non-snooping units.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "model.h"
#include "posix_machine.h"
#include "regs.h"

#define UNIT0 0xfed90000ull
#define UNIT1 0xfed91000ull

static struct posix_machine *small_machine(uint64_t base)
{
	struct dmar_posix_machine_config mc = { .mem_size = 16ull << 20, .phys_base = base };
	struct posix_machine *pm = dmar_posix_machine_create(&mc);

	REQUIRE(pm != NULL);
	return pm;
}

TEST(arena_physical_addresses_differ_from_virtual)
{
	struct posix_machine *pm = small_machine(0);
	const struct dmar_os *os = dmar_posix_machine_os(pm);
	uint64_t pa = 0;
	uint8_t *va = os->ops->page_alloc(os->ctx, &pa);
	int local;

	REQUIRE(va != NULL);
	CHECK(pa >= 0x40000000ull && pa < 0x40000000ull + (16ull << 20));
	CHECK_EQ(pa & 0xfff, 0);
	CHECK((uint64_t)(uintptr_t)va != pa);
	CHECK(os->ops->phys_to_virt(os->ctx, pa + 0x10) == va + 0x10);
	CHECK_EQ(os->ops->virt_to_phys(os->ctx, va + 0x10), pa + 0x10);
	CHECK_EQ(os->ops->virt_to_phys(os->ctx, &local), UINT64_MAX);
	CHECK(os->ops->phys_to_virt(os->ctx, 0x1000) == NULL);
	CHECK(os->ops->phys_to_virt(os->ctx, 0x40000000ull + (16ull << 20)) == NULL);
	for (int i = 0; i < 4096; i++)
		REQUIRE(va[i] == 0);
	os->ops->page_free(os->ctx, va, pa);
	CHECK_EQ(dmar_posix_machine_pages_outstanding(pm), 0);
	dmar_posix_machine_destroy(pm);
}

TEST(arena_above_4g)
{
	struct posix_machine *pm = small_machine(0x100000000ull);
	const struct dmar_os *os = dmar_posix_machine_os(pm);
	uint64_t pa = 0, dpa = 0;
	void *va = os->ops->page_alloc(os->ctx, &pa);
	void *buf = dmar_posix_machine_alloc_dma(pm, 8192, 8192, &dpa);

	REQUIRE(va && buf);
	CHECK(pa >= 0x100000000ull);
	CHECK_EQ(dpa & 0x1fff, 0);
	CHECK(dmar_posix_machine_phys_to_virt(pm, dpa) == buf);
	CHECK_EQ(dmar_posix_machine_dma_outstanding(pm), 1);
	dmar_posix_machine_free_dma(pm, buf, 8192);
	CHECK_EQ(dmar_posix_machine_dma_outstanding(pm), 0);
	os->ops->page_free(os->ctx, va, pa);
	dmar_posix_machine_destroy(pm);
}

TEST(leaked_page_and_allocation_are_caught)
{
	struct posix_machine *pm = small_machine(0);
	const struct dmar_os *os = dmar_posix_machine_os(pm);
	uint64_t pa;
	void *p = os->ops->alloc(os->ctx, 40);
	void *q = os->ops->alloc(os->ctx, 8);

	REQUIRE(p && q);
	REQUIRE(os->ops->page_alloc(os->ctx, &pa) != NULL); /* deliberately leaked */
	os->ops->free(os->ctx, p, 40);
	CHECK_EQ(dmar_posix_machine_allocs_outstanding(pm), 1); /* q is leaked too */
	CHECK_EQ(dmar_posix_machine_pages_outstanding(pm), 1);
	/* Destroy frees the leaks (no sanitizer report) and says so in the log. */
	dmar_posix_machine_destroy(pm);
}

TEST(free_mistakes_are_reported)
{
	struct posix_machine *pm = small_machine(0);
	const struct dmar_os *os = dmar_posix_machine_os(pm);
	uint64_t pa;
	void *p = os->ops->alloc(os->ctx, 16);
	uint8_t *pg = os->ops->page_alloc(os->ctx, &pa);

	REQUIRE(p && pg);
	os->ops->free(os->ctx, p, 32); /* wrong size: freed, but reported */
	CHECK_EQ(dmar_posix_machine_os_errors(pm), 1);
	CHECK_EQ(dmar_posix_machine_allocs_outstanding(pm), 0);
	os->ops->page_free(os->ctx, pg + 8, pa + 8); /* not a page start */
	os->ops->page_free(os->ctx, pg, pa + 4096);  /* phys does not match */
	CHECK_EQ(dmar_posix_machine_os_errors(pm), 3);
	CHECK_EQ(dmar_posix_machine_pages_outstanding(pm), 1);
	CHECK(strstr(dmar_posix_machine_log(pm), "page_free") != NULL);
	os->ops->page_free(os->ctx, pg, pa);
	CHECK_EQ(dmar_posix_machine_pages_outstanding(pm), 0);
	dmar_posix_machine_destroy(pm);
}

/* A scenario with five counted calls; returns how many of them succeeded and frees them. */
static unsigned scenario(const struct dmar_os *os)
{
	void *a[3] = { 0 }, *pg[2] = { 0 };
	uint64_t pa[2] = { 0 };
	unsigned ok = 0;

	a[0] = os->ops->alloc(os->ctx, 24);
	pg[0] = os->ops->page_alloc(os->ctx, &pa[0]);
	a[1] = os->ops->alloc(os->ctx, 100);
	a[2] = os->ops->lock_create(os->ctx);
	pg[1] = os->ops->page_alloc(os->ctx, &pa[1]);
	for (int i = 0; i < 2; i++)
		if (pg[i]) {
			ok++;
			os->ops->page_free(os->ctx, pg[i], pa[i]);
		}
	if (a[0])
		ok++, os->ops->free(os->ctx, a[0], 24);
	if (a[1])
		ok++, os->ops->free(os->ctx, a[1], 100);
	if (a[2])
		ok++, os->ops->lock_destroy(os->ctx, a[2]);
	return ok;
}

TEST(fail_nth_fails_each_call_once)
{
	struct posix_machine *pm = small_machine(0);
	const struct dmar_os *os = dmar_posix_machine_os(pm);
	uint64_t calls;

	dmar_posix_machine_fail_nth(pm, 0);
	CHECK_EQ(scenario(os), 5);
	calls = dmar_posix_machine_alloc_calls(pm);
	CHECK_EQ(calls, 5);
	for (unsigned n = 1; n <= calls; n++) {
		dmar_posix_machine_fail_nth(pm, n);
		CHECK_EQ(scenario(os), 4);
		CHECK(dmar_posix_machine_failed(pm));
		CHECK_EQ(dmar_posix_machine_allocs_outstanding(pm), 0);
		CHECK_EQ(dmar_posix_machine_pages_outstanding(pm), 0);
	}
	dmar_posix_machine_fail_nth(pm, (unsigned)calls + 1);
	CHECK_EQ(scenario(os), 5);
	CHECK(!dmar_posix_machine_failed(pm));
	dmar_posix_machine_destroy(pm);
}

TEST(mmio_is_routed_to_the_unit_at_its_base)
{
	struct posix_machine *pm = small_machine(0);
	const struct dmar_os *os = dmar_posix_machine_os(pm);
	struct model_config c1;

	dmar_model_config_default(&c1);
	c1.nfr = 8;
	c1.fro = 0x100; /* fault registers at 0x1000: a two-page register window */
	c1.cm = true;
	REQUIRE(dmar_posix_machine_add_unit(pm, UNIT0, NULL) != NULL);
	REQUIRE(dmar_posix_machine_add_unit(pm, 0xfed80000ull, &c1) != NULL);
	CHECK(dmar_posix_machine_add_unit(pm, 0xfed81000ull, NULL) == NULL); /* inside its window */
	CHECK(dmar_posix_machine_add_unit(pm, 0x40000000ull, NULL) == NULL); /* on the arena */
	CHECK_EQ(os->ops->mmio_read64(os->ctx, UNIT0 + VTD_CAP_REG), 0x00d2008c22260206ull);
	CHECK_EQ(os->ops->mmio_read64(os->ctx, 0xfed80000ull + VTD_CAP_REG),
		 dmar_model_config_cap(&c1));
	CHECK_EQ(os->ops->mmio_read32(os->ctx, 0xfed80000ull + 0x1000 + 8), 0); /* FRCD 0 */
	os->ops->mmio_write32(os->ctx, UNIT0 + VTD_FEDATA_REG, 0x1234);
	CHECK_EQ(dmar_model_read32(dmar_posix_machine_unit(pm, UNIT0), VTD_FEDATA_REG), 0x1234);
	CHECK_EQ(dmar_model_read32(dmar_posix_machine_unit(pm, 0xfed80000ull), VTD_FEDATA_REG), 0);
	/* Nothing at this address: all ones, and a logged error. */
	dmar_posix_machine_log_clear(pm);
	CHECK_EQ(os->ops->mmio_read32(os->ctx, 0xfee00000ull), 0xffffffffu);
	CHECK_EQ(os->ops->mmio_read64(os->ctx, 0xfee00000ull), UINT64_MAX);
	os->ops->mmio_write32(os->ctx, 0xfee00000ull, 1);
	CHECK_EQ(dmar_posix_machine_os_errors(pm), 3);
	CHECK(strstr(dmar_posix_machine_log(pm), "no unit") != NULL);
	dmar_posix_machine_destroy(pm);
}

TEST(machines_are_independent)
{
	struct posix_machine *a = small_machine(0), *b = small_machine(0);
	const struct dmar_os *oa = dmar_posix_machine_os(a), *ob = dmar_posix_machine_os(b);
	uint64_t pa, pb;
	void *va = oa->ops->page_alloc(oa->ctx, &pa);
	void *vb = ob->ops->page_alloc(ob->ctx, &pb);

	REQUIRE(va && vb);
	CHECK_EQ(pa, pb); /* same physical address, different memory */
	CHECK(va != vb);
	REQUIRE(dmar_posix_machine_add_unit(a, UNIT0, NULL));
	REQUIRE(dmar_posix_machine_add_unit(b, UNIT0, NULL));
	oa->ops->mmio_write32(oa->ctx, UNIT0 + VTD_FEDATA_REG, 7);
	CHECK_EQ(ob->ops->mmio_read32(ob->ctx, UNIT0 + VTD_FEDATA_REG), 0);
	CHECK_EQ(dmar_posix_machine_pages_outstanding(b), 1);
	oa->ops->page_free(oa->ctx, va, pa);
	CHECK_EQ(dmar_posix_machine_pages_outstanding(a), 0);
	CHECK_EQ(dmar_posix_machine_pages_outstanding(b), 1);
	ob->ops->page_free(ob->ctx, vb, pb);
	dmar_posix_machine_destroy(a);
	dmar_posix_machine_destroy(b);
}

TEST(virtual_clock_is_deterministic)
{
	struct posix_machine *pm = small_machine(0);
	const struct dmar_os *os = dmar_posix_machine_os(pm);
	uint64_t t0, t1;

	REQUIRE(dmar_posix_machine_add_unit(pm, UNIT0, NULL));
	t0 = os->ops->now_ns(os->ctx);
	os->ops->delay_ns(os->ctx, 1000000);
	t1 = os->ops->now_ns(os->ctx);
	CHECK_EQ(t1 - t0, 1000000 + 10);
	os->ops->mmio_read32(os->ctx, UNIT0);
	CHECK_EQ(os->ops->now_ns(os->ctx) - t1, 50 + 10);
	/* Delays are polls: a status held back for 3 polls shows at the 4th. */
	dmar_model_set_ack_delay(dmar_posix_machine_unit(pm, UNIT0), MODEL_ACK_TE, 3);
	os->ops->mmio_write32(os->ctx, UNIT0 + VTD_GCMD_REG, (uint32_t)VTD_GCMD_TE);
	for (int i = 0; i < 2; i++)
		os->ops->delay_ns(os->ctx, 100);
	CHECK(!(dmar_model_read32(dmar_posix_machine_unit(pm, UNIT0), VTD_GSTS_REG) & VTD_GSTS_TES));
	CHECK(os->ops->mmio_read32(os->ctx, UNIT0 + VTD_GSTS_REG) & VTD_GSTS_TES);
	dmar_posix_machine_destroy(pm);
}

TEST(log_lines_are_kept_and_cleared)
{
	struct posix_machine *pm = small_machine(0);
	const struct dmar_os *os = dmar_posix_machine_os(pm);

	os->ops->log(os->ctx, DMAR_LOG_WARN, "first line");
	os->ops->log(os->ctx, DMAR_LOG_INFO, "second");
	CHECK(strcmp(dmar_posix_machine_log(pm), "warn: first line\ninfo: second\n") == 0);
	dmar_posix_machine_log_clear(pm);
	CHECK(strcmp(dmar_posix_machine_log(pm), "") == 0);
	for (int i = 0; i < 1000; i++)
		os->ops->log(os->ctx, DMAR_LOG_DEBUG, "a line long enough to make the buffer grow");
	CHECK_EQ(strlen(dmar_posix_machine_log(pm)), 1000 * strlen("debug: a line long enough to make the buffer grow\n"));
	dmar_posix_machine_destroy(pm);
}

struct lock_arg {
	struct dmar_os os;
	void *lock;
	int counter;
};

static void *bump(void *p)
{
	struct lock_arg *arg = p;

	for (int i = 0; i < 10000; i++) {
		arg->os.ops->lock_acquire(arg->os.ctx, arg->lock);
		arg->counter++;
		arg->os.ops->lock_release(arg->os.ctx, arg->lock);
	}
	return NULL;
}

TEST(locks_exclude)
{
	struct posix_machine *pm = small_machine(0);
	struct lock_arg arg = { .counter = 0 };
	pthread_t t[2];

	arg.os = *dmar_posix_machine_os(pm);
	arg.lock = arg.os.ops->lock_create(arg.os.ctx);
	REQUIRE(arg.lock != NULL);
	for (int i = 0; i < 2; i++)
		REQUIRE(pthread_create(&t[i], NULL, bump, &arg) == 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ(arg.counter, 20000);
	arg.os.ops->lock_destroy(arg.os.ctx, arg.lock);
	CHECK_EQ(dmar_posix_machine_allocs_outstanding(pm), 0);
	dmar_posix_machine_destroy(pm);
}

/* A unit with one device whose 4 KiB page at iova 0 is mapped to `buf`; tables flushed. */
static struct model *coherency_setup(struct posix_machine *pm, bool coherent, bool rwbf,
				     uint64_t *pte_pa, uint64_t *buf_pa)
{
	const struct dmar_os *os = dmar_posix_machine_os(pm);
	struct model_config cfg;
	uint64_t root, ctx, l3, l2, l1;
	uint64_t *v;
	struct model *m;

	dmar_model_config_default(&cfg);
	cfg.c = coherent;
	cfg.rwbf = rwbf;
	m = dmar_posix_machine_add_unit(pm, UNIT0, &cfg);
	REQUIRE(m != NULL);
	REQUIRE(dmar_posix_machine_alloc_dma(pm, 4096, 4096, buf_pa));
	v = os->ops->page_alloc(os->ctx, &root);
	REQUIRE(os->ops->page_alloc(os->ctx, &ctx) && os->ops->page_alloc(os->ctx, &l3) &&
		os->ops->page_alloc(os->ctx, &l2) && os->ops->page_alloc(os->ctx, &l1));
	v[0] = ctx | VTD_ROOT_P;
	os->ops->cache_flush(os->ctx, v, 16);
	v = os->ops->phys_to_virt(os->ctx, ctx);
	v[16] = l3 | VTD_CTX_LO_P; /* devfn 8 = 00:01.0 */
	v[17] = VTD_CTX_HI_AW(1) | VTD_CTX_HI_DID(1);
	os->ops->cache_flush(os->ctx, v + 16, 16);
	v = os->ops->phys_to_virt(os->ctx, l3);
	v[0] = l2 | VTD_SL_R | VTD_SL_W;
	os->ops->cache_flush(os->ctx, v, 8);
	v = os->ops->phys_to_virt(os->ctx, l2);
	v[0] = l1 | VTD_SL_R | VTD_SL_W;
	os->ops->cache_flush(os->ctx, v, 8);
	*pte_pa = l1;
	dmar_model_write64(m, VTD_RTADDR_REG, root);
	dmar_model_write32(m, VTD_GCMD_REG, (uint32_t)VTD_GCMD_SRTP);
	if (rwbf)
		dmar_model_write32(m, VTD_GCMD_REG, (uint32_t)VTD_GCMD_WBF);
	dmar_model_write32(m, VTD_GCMD_REG, (uint32_t)VTD_GCMD_TE);
	return m;
}

TEST(unflushed_table_write_is_a_driver_error_when_not_coherent)
{
	struct posix_machine *pm = small_machine(0);
	const struct dmar_os *os = dmar_posix_machine_os(pm);
	uint64_t pte, buf;
	uint8_t byte = 1;
	struct model *m = coherency_setup(pm, false, false, &pte, &buf);
	uint64_t *p = os->ops->phys_to_virt(os->ctx, pte);

	*p = buf | VTD_SL_R | VTD_SL_W; /* written, not flushed */
	CHECK_EQ(dmar_posix_machine_dma(pm, m, VTD_SID(0, 1, 0), 0, &byte, 1, MODEL_DMA_WRITE, NULL),
		 VTD_FR_WRITE); /* the unit sees memory, where the entry is still empty */
	CHECK_EQ(dmar_posix_machine_coherency_errors(pm), 1);
	CHECK(strstr(dmar_posix_machine_log(pm), "not flushed") != NULL);
	/* dmar_model_translate peeks without counting. */
	CHECK_EQ(dmar_model_translate(m, VTD_SID(0, 1, 0), 0, MODEL_DMA_WRITE, NULL, NULL),
		 VTD_FR_WRITE);
	CHECK_EQ(dmar_posix_machine_coherency_errors(pm), 1);
	os->ops->cache_flush(os->ctx, p, 8);
	CHECK_EQ(dmar_posix_machine_dma(pm, m, VTD_SID(0, 1, 0), 0, &byte, 1, MODEL_DMA_WRITE, NULL), 0);
	CHECK_EQ(*(uint8_t *)dmar_posix_machine_phys_to_virt(pm, buf), 1);
	CHECK_EQ(dmar_posix_machine_coherency_errors(pm), 1);
	dmar_posix_machine_destroy(pm);
}

TEST(coherent_unit_reads_the_cpu_view)
{
	struct posix_machine *pm = small_machine(0);
	const struct dmar_os *os = dmar_posix_machine_os(pm);
	uint64_t pte, buf;
	uint8_t byte = 2;
	struct model *m = coherency_setup(pm, true, false, &pte, &buf);

	*(uint64_t *)os->ops->phys_to_virt(os->ctx, pte) = buf | VTD_SL_R | VTD_SL_W;
	CHECK_EQ(dmar_posix_machine_dma(pm, m, VTD_SID(0, 1, 0), 0x10, &byte, 1, MODEL_DMA_WRITE, NULL), 0);
	CHECK_EQ(((uint8_t *)dmar_posix_machine_phys_to_virt(pm, buf))[0x10], 2);
	CHECK_EQ(dmar_posix_machine_coherency_errors(pm), 0);
	dmar_posix_machine_destroy(pm);
}

TEST(rwbf_holds_flushed_lines_until_wbf_or_invalidation)
{
	struct posix_machine *pm = small_machine(0);
	const struct dmar_os *os = dmar_posix_machine_os(pm);
	uint64_t pte, buf, *p;
	uint8_t byte = 3;
	struct model *m = coherency_setup(pm, false, true, &pte, &buf);

	p = os->ops->phys_to_virt(os->ctx, pte);
	*p = buf | VTD_SL_R | VTD_SL_W;
	os->ops->cache_flush(os->ctx, p, 8);
	/* Flushed but still in the write buffer: not visible, and not a driver error. */
	CHECK_EQ(dmar_posix_machine_dma(pm, m, VTD_SID(0, 1, 0), 0, &byte, 1, MODEL_DMA_WRITE, NULL),
		 VTD_FR_WRITE);
	CHECK_EQ(dmar_posix_machine_coherency_errors(pm), 0);
	dmar_model_write32(m, VTD_GCMD_REG, (uint32_t)(VTD_GCMD_TE | VTD_GCMD_WBF));
	CHECK_EQ(dmar_posix_machine_dma(pm, m, VTD_SID(0, 1, 0), 0, &byte, 1, MODEL_DMA_WRITE, NULL), 0);
	CHECK_EQ(*(uint8_t *)dmar_posix_machine_phys_to_virt(pm, buf), 3);

	/* An invalidation drains the write buffer too. */
	p[1] = (buf + 0) | VTD_SL_R | VTD_SL_W;
	os->ops->cache_flush(os->ctx, p + 1, 8);
	CHECK_EQ(dmar_model_translate(m, VTD_SID(0, 1, 0), 0x1000, MODEL_DMA_WRITE, NULL, NULL),
		 VTD_FR_WRITE);
	dmar_model_write64(m, VTD_CCMD_REG, VTD_CCMD_ICC | VTD_CCMD_CIRG(VTD_CC_GLOBAL));
	CHECK_EQ(dmar_model_translate(m, VTD_SID(0, 1, 0), 0x1000, MODEL_DMA_WRITE, NULL, NULL), 0);
	CHECK_EQ(dmar_model_stats(m)->wbf, 2);
	dmar_posix_machine_destroy(pm);
}

TEST(freed_frames_are_reused_lowest_first)
{
	struct posix_machine *pm = small_machine(0);
	const struct dmar_os *os = dmar_posix_machine_os(pm);
	uint64_t a, b, c, d;
	void *va = os->ops->page_alloc(os->ctx, &a);
	void *vb = os->ops->page_alloc(os->ctx, &b);
	void *vd;

	REQUIRE(va && vb);
	CHECK_EQ(b, a + 4096);
	os->ops->page_free(os->ctx, va, a);
	REQUIRE(os->ops->page_alloc(os->ctx, &c) == va);
	CHECK_EQ(c, a);
	/* A DMA buffer aligned to 64 KiB skips the frames in use. */
	vd = dmar_posix_machine_alloc_dma(pm, 3 * 4096, 65536, &d);
	REQUIRE(vd != NULL);
	CHECK_EQ(d & 0xffff, 0);
	CHECK(d > b);
	/* Many alloc/free cycles stay at the bottom of the arena. */
	for (int i = 0; i < 10000; i++) {
		uint64_t p;
		void *v = os->ops->page_alloc(os->ctx, &p);

		REQUIRE(v != NULL);
		CHECK(p < d);
		os->ops->page_free(os->ctx, v, p);
	}
	dmar_posix_machine_free_dma(pm, vd, 3 * 4096);
	os->ops->page_free(os->ctx, va, a);
	os->ops->page_free(os->ctx, vb, b);
	CHECK_EQ(dmar_posix_machine_pages_outstanding(pm), 0);
	CHECK_EQ(dmar_posix_machine_os_errors(pm), 0);
	dmar_posix_machine_destroy(pm);
}
