/*
 * What happens when the hardware does not cooperate or the caches hold on, checked on
 * the model with its sticky caches: a failed invalidation keeps what the unit may still
 * walk and can be retried; fault draining never stops for good; firmware's enables
 * survive the driver's GCMD writes; caching mode and the invalidation hint are honoured
 * where a missing invalidation would leave a stale translation.
 */
#include "harness.h"
#include "simsys.h"
#include "busdma_test.h"
#include "dmar_table_builder.h"
#include "dmar/busdma.h"
#include "regs.h"
#include "pgtable.h"

#include <pthread.h>
#include <sched.h>
#include <string.h>

#define SID VTD_SID(0, 3, 0)
#define MIB (1ull << 20)

static struct dmar_domain *translated(struct simsys *s, unsigned width)
{
	struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED, .width = width };
	struct dmar_domain *d = NULL;
	REQUIRE_OK(dmar_domain_create(s->unit, &p, &d));
	return d;
}

static uint64_t table_pages(const struct dmar_domain *d)
{
	struct dmar_domain_info di;
	dmar_domain_get_info(d, &di);
	return di.table_pages;
}

/* A failed unmap (the invalidation never completes) leaves the entries cleared but the
 * unit may still translate through its IOTLB and walk the detached table: the table
 * page stays allocated, and retrying the unmap completes the invalidation. */
static void failed_unmap_case(bool registers)
{
	struct simsys s;
	struct dmar_config c;
	dmar_config_default(&c);
	c.qi = registers ? 0 : -1;
	c.timeout_ns = 5000000;
	REQUIRE_OK(simsys_up(&s, NULL, &c));
	enum model_ack dead = registers ? MODEL_ACK_IOTLB : MODEL_ACK_QI;
	struct dmar_domain *d = translated(&s, 0);
	uint64_t pa;
	unsigned char *buf = simsys_buffer(&s, 2 * 4096, &pa);
	unsigned char b[32];
	const uint64_t x = 0x40000000ull, y = 0x80000000ull;
	CHECK_OK(dmar_domain_attach(d, SID));
	/* Leaf tables at x and above are left empty and kept, PGTABLE_KEPT of them;
	 * unmapping y then detaches the nearest (x + 28 MiB) to keep y's. */
	for (unsigned i = 0; i < PGTABLE_KEPT; i++) {
		CHECK_OK(dmar_map(d, x + i * (4ull << 20), pa, 4096, DMAR_PROT_RW));
		CHECK_OK(dmar_unmap(d, x + i * (4ull << 20), 4096));
	}
	CHECK_OK(dmar_map(d, y, pa + 4096, 4096, DMAR_PROT_RW));
	memset(buf + 4096, 0x7e, 32);
	CHECK_EQ(simsys_dma(&s, SID, y, b, sizeof(b), false), 0); /* into the IOTLB */
	uint64_t pages = table_pages(d);
	dmar_model_set_ack_delay(s.model, dead, MODEL_NEVER);
	CHECK_EQ(dmar_unmap(d, y, 4096), DMAR_ETIMEDOUT);
	/* Nothing the unit may still walk was freed. */
	CHECK_EQ(table_pages(d), pages);
	uint64_t phys;
	unsigned prot;
	CHECK_EQ(dmar_lookup(d, y, &phys, &prot), DMAR_ENOENT);
	/* The IOTLB still holds y: the stale translation the unmap owes an invalidation. */
	memset(b, 0, sizeof(b));
	CHECK_EQ(simsys_dma(&s, SID, y, b, sizeof(b), false), 0);
	CHECK_EQ(b[0], 0x7e);
	/* While the unit stays dead, a retry fails the same way and frees nothing. */
	CHECK_EQ(dmar_unmap(d, y, 4096), DMAR_ETIMEDOUT);
	CHECK_EQ(table_pages(d), pages);
	dmar_model_set_ack_delay(s.model, dead, 0);
	CHECK_OK(dmar_unmap(d, y, 4096));
	CHECK(table_pages(d) < pages); /* the detached tables freed at last */
	CHECK_EQ(simsys_dma(&s, SID, y, b, sizeof(b), false), VTD_FR_READ);
	CHECK_EQ(simsys_dma(&s, SID, x, b, sizeof(b), false), VTD_FR_READ);
	/* Once retried, the range is an ordinary unmapped one again. */
	CHECK_EQ(dmar_unmap(d, y, 4096), DMAR_ENOENT);
	dmar_fault_poll(s.sys);
	CHECK_OK(dmar_domain_detach(d, SID));
	CHECK_OK(dmar_domain_destroy(d));
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(failed_unmap_keeps_tables_and_retry_completes_it_queued)
{
	failed_unmap_case(false);
}

TEST(failed_unmap_keeps_tables_and_retry_completes_it_registers)
{
	failed_unmap_case(true);
}

TEST(map_after_a_failed_unmap_first_completes_the_owed_invalidation)
{
	struct simsys s;
	REQUIRE_OK(simsys_up(&s, NULL, NULL));
	struct dmar_domain *d = translated(&s, 0);
	uint64_t pa;
	unsigned char *buf = simsys_buffer(&s, 2 * 4096, &pa);
	unsigned char b[32];
	const uint64_t y = 0x80000000ull;
	CHECK_OK(dmar_domain_attach(d, SID));
	CHECK_OK(dmar_map(d, y, pa, 4096, DMAR_PROT_RW));
	CHECK_EQ(simsys_dma(&s, SID, y, b, sizeof(b), false), 0);
	dmar_model_set_ack_delay(s.model, MODEL_ACK_QI, MODEL_NEVER);
	CHECK_EQ(dmar_unmap(d, y, 4096), DMAR_ETIMEDOUT);
	/* A map while the unit is still dead fails too: it cannot confirm the flush. */
	CHECK_EQ(dmar_map(d, y, pa + 4096, 4096, DMAR_PROT_RW), DMAR_ETIMEDOUT);
	dmar_model_set_ack_delay(s.model, MODEL_ACK_QI, 0);
	/* The same IOVA mapped to another page: the device must see the new page. */
	CHECK_OK(dmar_map(d, y, pa + 4096, 4096, DMAR_PROT_RW));
	memset(buf, 0x11, 32);
	memset(buf + 4096, 0x22, 32);
	CHECK_EQ(simsys_dma(&s, SID, y, b, sizeof(b), false), 0);
	CHECK_EQ(b[0], 0x22);
	CHECK_OK(dmar_unmap(d, y, 4096));
	CHECK_OK(dmar_domain_detach(d, SID));
	CHECK_OK(dmar_domain_destroy(d));
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(busdma_unload_after_a_failed_invalidation_can_be_retried)
{
	struct simsys s;
	REQUIRE_OK(simsys_up(&s, NULL, NULL));
	struct dmar_busdma *bus;
	REQUIRE_OK(dmar_busdma_create(dmar_posix_machine_os(s.pm), &s.cfg, s.sys, &bus));
	struct dmar_busdma_dev *dev;
	struct dmar_pci_addr a = { 0, 0, 3, 0 };
	REQUIRE_OK(dmar_busdma_device(bus, a, NULL, NULL, &dev));
	struct dmar_dma_tag *tag = busdma_test_tag(dev, UINT64_MAX, UINT64_MAX, 65536, 16,
						   65536, 0, 1);
	struct dmar_dmamap *map;
	REQUIRE_OK(dmar_dmamap_create(tag, 0, &map));
	uint64_t pa;
	unsigned char *buf = simsys_buffer(&s, 8192, &pa);
	REQUIRE_OK(dmar_dmamap_load(tag, map, buf, 8192, 0));
	unsigned nseg = dmar_dmamap_nsegs(map);
	REQUIRE(nseg >= 1);
	uint64_t bus_addr = dmar_dmamap_segs(map)[0].addr;
	unsigned char b[16];
	CHECK_EQ(simsys_dma(&s, SID, bus_addr, b, sizeof(b), false), 0);
	dmar_model_set_ack_delay(s.model, MODEL_ACK_QI, MODEL_NEVER);
	CHECK_EQ(dmar_dmamap_unload(tag, map), DMAR_ETIMEDOUT);
	CHECK_EQ(dmar_dmamap_nsegs(map), nseg); /* still loaded */
	dmar_model_set_ack_delay(s.model, MODEL_ACK_QI, 0);
	CHECK_OK(dmar_dmamap_unload(tag, map));
	CHECK_EQ(dmar_dmamap_nsegs(map), 0);
	CHECK_EQ(simsys_dma(&s, SID, bus_addr, b, sizeof(b), false), VTD_FR_READ);
	dmar_fault_poll(s.sys);
	CHECK_OK(dmar_dmamap_destroy(tag, map));
	CHECK_OK(dmar_dma_tag_destroy(tag));
	CHECK_OK(dmar_busdma_device_destroy(dev));
	CHECK_OK(dmar_busdma_destroy(bus));
	CHECK_EQ(simsys_down(&s), 0);
}

static struct model_config nfr8(void)
{
	struct model_config m;
	dmar_model_config_default(&m);
	m.nfr = 8;
	return m;
}

/* FSTS.FRI is set only when PPF goes from clear to set. A drain that was cut short (or
 * raced with the unit) leaves PPF set with FRI at a slot already cleared: the driver
 * must still find the records in the other slots. */
TEST(fault_drain_finds_records_past_a_stale_fri)
{
	struct simsys s;
	struct model_config m = nfr8();
	REQUIRE_OK(simsys_up(&s, &m, NULL));
	struct dmar_domain *d = translated(&s, 0);
	CHECK_OK(dmar_domain_attach(d, SID));
	unsigned char b[8];
	CHECK_EQ(simsys_dma(&s, SID, 0x10000, b, sizeof(b), false), VTD_FR_READ);   /* slot 0 */
	CHECK_EQ(simsys_dma(&s, SID, 0x20000, b, sizeof(b), true), VTD_FR_WRITE);   /* slot 1 */
	unsigned frcd = (unsigned)VTD_CAP_FRO(dmar_model_read64(s.model, VTD_CAP_REG)) * 16u;
	dmar_model_write32(s.model, frcd + 12,
			   (uint32_t)(VTD_FRCD_HI_F >> 32)); /* slot 0 cleared */
	uint32_t fsts = dmar_model_read32(s.model, VTD_FSTS_REG);
	REQUIRE(fsts & VTD_FSTS_PPF);
	REQUIRE_EQ(VTD_FSTS_FRI(fsts), 0);
	CHECK_EQ(dmar_fault_poll(s.sys), 1);
	struct dmar_fault_record r;
	REQUIRE_EQ(dmar_fault_read(s.sys, &r, 1), 1);
	CHECK_EQ(r.addr, 0x20000);
	CHECK(!r.is_read);
	CHECK(!(dmar_model_read32(s.model, VTD_FSTS_REG) & VTD_FSTS_PPF));
	/* And recording goes on normally afterwards. */
	CHECK_EQ(simsys_dma(&s, SID, 0x30000, b, sizeof(b), false), VTD_FR_READ);
	CHECK_EQ(dmar_fault_poll(s.sys), 1);
	CHECK_OK(dmar_domain_detach(d, SID));
	CHECK_OK(dmar_domain_destroy(d));
	CHECK_EQ(simsys_down(&s), 0);
}

struct storm {
	struct simsys *s;
	unsigned n;
	int done; /* atomic: read by the draining thread */
};

static void *storm_device(void *arg)
{
	struct storm *st = arg;
	unsigned char b[8];
	for (unsigned i = 0; i < st->n; i++) {
		(void)simsys_dma(st->s, SID, 0x100000 + (uint64_t)(i % 512) * 4096, b, sizeof(b),
				 i & 1);
		sched_yield(); /* let the driver's thread at the unit (mutexes are unfair) */
	}
	__atomic_store_n(&st->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* A device faulting continuously while the driver drains: every fault the unit records
 * is drained (none is left pending for good), the rest is counted as overflow. */
TEST(fault_storm_is_drained_to_the_end)
{
	struct simsys s;
	struct model_config m = nfr8();
	REQUIRE_OK(simsys_up(&s, &m, NULL));
	struct dmar_domain *d = translated(&s, 0);
	CHECK_OK(dmar_domain_attach(d, SID));
	struct storm st = { &s, 20000, 0 };
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, storm_device, &st) == 0);
	unsigned long drained = 0;
	struct dmar_fault_record recs[64];
	while (!__atomic_load_n(&st.done, __ATOMIC_ACQUIRE)) {
		drained += (unsigned long)dmar_fault_poll_irq(s.sys);
		while (dmar_fault_read(s.sys, recs, 64))
			;
	}
	pthread_join(t, NULL);
	for (int i = 0; i < 8; i++)
		drained += (unsigned long)dmar_fault_poll_irq(s.sys);
	const struct model_stats *ms = dmar_model_stats(s.model);
	printf("  %llu faults recorded by the unit, %lu drained, %llu overflowed\n",
	       (unsigned long long)ms->faults_recorded, drained,
	       (unsigned long long)ms->faults_overflowed);
	CHECK_EQ(drained, ms->faults_recorded);
	CHECK_EQ(ms->faults_recorded + ms->faults_overflowed, st.n);
	CHECK(!(dmar_model_read32(s.model, VTD_FSTS_REG) & VTD_FSTS_PPF));
	struct dmar_fault_counters fc;
	dmar_fault_get_counters(s.sys, &fc);
	CHECK_EQ(fc.recorded, drained);
	CHECK_OK(dmar_domain_detach(d, SID));
	CHECK_OK(dmar_domain_destroy(d));
	CHECK_EQ(simsys_down(&s), 0);
}

/* The explanation is about the domain the device faulted in, even after it moved, and
 * says so when that domain is gone. */
TEST(fault_explanation_names_the_domain_the_device_faulted_in)
{
	struct simsys s;
	REQUIRE_OK(simsys_up(&s, NULL, NULL));
	struct dmar_domain *d1 = translated(&s, 0), *d2 = translated(&s, 0);
	struct dmar_domain_info i1, i2;
	dmar_domain_get_info(d1, &i1);
	dmar_domain_get_info(d2, &i2);
	uint64_t pa;
	simsys_buffer(&s, 4096, &pa);
	CHECK_OK(dmar_map(d2, 0x5000, pa, 4096, DMAR_PROT_READ));
	CHECK_OK(dmar_domain_attach(d1, SID));
	unsigned char b[8];
	CHECK_EQ(simsys_dma(&s, SID, 0x5000, b, sizeof(b), false), VTD_FR_READ);
	CHECK_EQ(dmar_fault_poll_irq(s.sys), 1);
	CHECK_OK(dmar_domain_attach(d2, SID)); /* moved: 0x5000 is mapped there */
	struct dmar_fault_record r;
	REQUIRE_EQ(dmar_fault_read(s.sys, &r, 1), 1);
	CHECK_EQ(r.did, i1.did);
	char line[512], want[64];
	dmar_fault_format(s.sys, &r, line, sizeof(line));
	snprintf(want, sizeof(want), "walk: domain %u (3-level): ", i1.did);
	if (!strstr(line, want))
		harness_fail(__FILE__, __LINE__, "no \"%s\" in: %s", want, line);
	CHECK(strstr(line, "not present") != NULL);
	CHECK_OK(dmar_domain_destroy(d1));
	dmar_fault_format(s.sys, &r, line, sizeof(line));
	CHECK(strstr(line, "no longer exists") != NULL);
	/* A device attached nowhere. */
	CHECK_OK(dmar_domain_detach(d2, SID));
	CHECK_EQ(simsys_dma(&s, SID, 0x5000, b, sizeof(b), false), VTD_FR_CTX_NOT_PRESENT);
	CHECK_EQ(dmar_fault_poll(s.sys), 1);
	REQUIRE_EQ(dmar_fault_read(s.sys, &r, 1), 1);
	CHECK_EQ(r.did, -1);
	CHECK_OK(dmar_unmap(d2, 0x5000, 4096));
	CHECK_OK(dmar_domain_destroy(d2));
	CHECK_EQ(simsys_down(&s), 0);
}

struct churn {
	struct simsys *s;
	int stop; /* atomic: read by the formatting thread */
	unsigned rounds;
};

static void *churn_domains(void *arg)
{
	struct churn *c = arg;
	uint64_t pa;
	simsys_buffer(c->s, 4096, &pa);
	for (unsigned i = 0; i < c->rounds; i++) {
		struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED };
		struct dmar_domain *d;
		if (dmar_domain_create(c->s->unit, &p, &d))
			continue;
		(void)dmar_map(d, 0x7000, pa, 4096, DMAR_PROT_RW);
		(void)dmar_domain_attach(d, SID);
		(void)dmar_domain_detach(d, SID);
		(void)dmar_unmap(d, 0x7000, 4096);
		(void)dmar_domain_destroy(d);
	}
	__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Explaining walks a domain that another thread may detach and destroy meanwhile: the
 * explanation pins it (run under AddressSanitizer, a walk of a freed domain shows). */
TEST(fault_explanation_races_domain_destroy_safely)
{
	struct simsys s;
	REQUIRE_OK(simsys_up(&s, NULL, NULL));
	struct dmar_domain *d = translated(&s, 0);
	struct dmar_domain_info di;
	dmar_domain_get_info(d, &di);
	struct churn c = { &s, 0, 3000 };
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, churn_domains, &c) == 0);
	unsigned formatted = 0;
	char line[512];
	while (!__atomic_load_n(&c.stop, __ATOMIC_ACQUIRE)) {
		/* Records naming the domain ids the other thread's domains get. */
		for (int did = 0; did < 4; did++) {
			struct dmar_fault_record r = { .sid = SID, .addr = 0x7000, .reason = 6,
						       .is_read = true, .did = did };
			dmar_fault_format(s.sys, &r, line, sizeof(line));
			formatted++;
		}
	}
	pthread_join(t, NULL);
	CHECK(formatted > 0);
	CHECK_OK(dmar_domain_destroy(d));
	CHECK_EQ(simsys_down(&s), 0);
}

/* Advanced fault logging left enabled by firmware stays enabled: GCMD writes carry
 * every persistent enable forward (11.4.4: GSTS & 0x96FFFFFF), EAFL included. */
static void firmware_enables_afl(struct model *unit)
{
	dmar_model_write32(unit, VTD_GCMD_REG, (uint32_t)VTD_GCMD_EAFL);
}

TEST(gcmd_writes_keep_advanced_fault_logging_enabled)
{
	struct simsys s;
	struct model_config m;
	dmar_model_config_default(&m);
	m.afl = true;
	REQUIRE_OK(simsys_up_after(&s, &m, NULL, firmware_enables_afl));
	struct dmar_domain *d = translated(&s, 0);
	CHECK_OK(dmar_domain_attach(d, SID)); /* SRTP, QIE, TE writes behind us */
	uint32_t gsts = dmar_model_read32(s.model, VTD_GSTS_REG);
	CHECK(gsts & VTD_GSTS_TES);
	CHECK(gsts & VTD_GSTS_AFLS);
	CHECK_OK(dmar_domain_detach(d, SID));
	CHECK_OK(dmar_domain_destroy(d));
	CHECK_EQ(simsys_down(&s), 0);
}

/* Caching mode (CAP.CM=1, as under a hypervisor): the unit caches not-present entries,
 * so a map must be followed by an invalidation, or a DMA that faulted before the map
 * keeps faulting through the cached not-present entry. */
TEST(caching_mode_map_is_visible_through_the_caches)
{
	struct simsys s;
	struct model_config m;
	dmar_model_config_default(&m);
	m.cm = true;
	REQUIRE_OK(simsys_up(&s, &m, NULL));
	struct dmar_domain *d = translated(&s, 0);
	uint64_t pa;
	unsigned char *buf = simsys_buffer(&s, 4096, &pa);
	const uint64_t iova = 0x9000;
	CHECK_OK(dmar_map(d, 0x200000, pa, 4096, DMAR_PROT_RW)); /* tables exist around */
	CHECK_OK(dmar_domain_attach(d, SID));
	unsigned char b[16];
	CHECK_EQ(simsys_dma(&s, SID, iova, b, sizeof(b), false), VTD_FR_READ);
	dmar_fault_poll(s.sys);
	CHECK_OK(dmar_map(d, iova, pa, 4096, DMAR_PROT_RW));
	memset(buf, 0x42, 16);
	CHECK_EQ(simsys_dma(&s, SID, iova, b, sizeof(b), false), 0);
	CHECK_EQ(b[0], 0x42);
	CHECK_OK(dmar_unmap(d, iova, 4096));
	CHECK_OK(dmar_unmap(d, 0x200000, 4096));
	CHECK_OK(dmar_domain_detach(d, SID));
	CHECK_OK(dmar_domain_destroy(d));
	CHECK_EQ(simsys_down(&s), 0);
}

/* An unmap that frees leaf tables must invalidate the paging-structure caches too
 * (IH=0): map 2 MiB + 4 KiB as 4 KiB pages, use them, unmap all, map elsewhere so the
 * freed table pages are reused, and a DMA to the old IOVA must fault. */
TEST(unmap_freeing_tables_drops_paging_structure_caches)
{
	struct simsys s;
	REQUIRE_OK(simsys_up(&s, NULL, NULL));
	struct dmar_domain *d = translated(&s, 0);
	uint64_t pa;
	unsigned char *buf = simsys_buffer(&s, 2 * MIB + 8192, &pa);
	uint64_t odd = pa | 4096; /* not 2 MiB aligned: 4 KiB leaves */
	if ((pa & (2 * MIB - 1)) == 4096)
		odd = pa;
	(void)buf;
	const uint64_t old = 0x40000000ull, fresh = 0xc0000000ull;
	CHECK_OK(dmar_domain_attach(d, SID));
	CHECK_OK(dmar_map(d, old, odd, 2 * MIB + 4096, DMAR_PROT_RW));
	unsigned char b[8];
	for (uint64_t off = 0; off < 2 * MIB + 4096; off += 4096)
		CHECK_EQ(simsys_dma(&s, SID, old + off, b, sizeof(b), false), 0);
	CHECK_OK(dmar_unmap(d, old, 2 * MIB + 4096));
	CHECK_OK(dmar_map(d, fresh, odd, 2 * MIB + 4096, DMAR_PROT_RW));
	for (uint64_t off = 0; off < 2 * MIB + 4096; off += 4096)
		CHECK_EQ(simsys_dma(&s, SID, fresh + off, b, sizeof(b), false), 0);
	unsigned faulted = 0;
	for (uint64_t off = 0; off < 2 * MIB + 4096; off += 4096) {
		faulted += simsys_dma(&s, SID, old + off, b, sizeof(b), false) == VTD_FR_READ;
		dmar_fault_poll_irq(s.sys);
		while (dmar_fault_read(s.sys, &(struct dmar_fault_record){ 0 }, 1))
			;
	}
	CHECK_EQ(faulted, (2 * MIB + 4096) / 4096);
	CHECK_OK(dmar_unmap(d, fresh, 2 * MIB + 4096));
	CHECK_OK(dmar_domain_detach(d, SID));
	CHECK_OK(dmar_domain_destroy(d));
	CHECK_EQ(simsys_down(&s), 0);
}

/* Two devices named by one RMRR attach to one domain at the same time: the range is
 * mapped once, listed once, and neither attach sees the other's half-done bookkeeping
 * (no "skipped" collision, no lost or doubled entry). */
#define RMRR_BASE 0x41000000ull
struct attacher {
	struct dmar_domain *d;
	uint16_t sid;
	pthread_barrier_t *go;
	int rc;
};

static void *attach_one(void *arg)
{
	struct attacher *a = arg;
	pthread_barrier_wait(a->go);
	a->rc = dmar_domain_attach(a->d, a->sid);
	return NULL;
}

TEST(concurrent_attaches_share_an_rmrr_cleanly)
{
	static struct dtb b;
	struct dmar_acpi_table table;
	dtb_init(&b, 39, 0);
	dtb_drhd(&b, DMAR_DRHD_INCLUDE_PCI_ALL, 0, SIMSYS_REG_BASE);
	dtb_rmrr(&b, 0, RMRR_BASE, RMRR_BASE + 0xffff);
	dtb_scope_pci(&b, DMAR_SCOPE_ENDPOINT, 0, 0x14, 0, 0);
	dtb_scope_pci(&b, DMAR_SCOPE_ENDPOINT, 0, 0x1a, 0, 0);
	size_t len = dtb_finish(&b);
	REQUIRE_OK(dmar_acpi_parse(b.buf, len, NULL, &table));
	struct simsys s;
	memset(&s, 0, sizeof(s));
	struct dmar_posix_machine_config pmc;
	memset(&pmc, 0, sizeof(pmc));
	s.pm = dmar_posix_machine_create(&pmc);
	REQUIRE(s.pm);
	REQUIRE(dmar_posix_machine_add_unit(s.pm, SIMSYS_REG_BASE, NULL));
	dmar_config_default(&s.cfg);
	s.cfg.timeout_ns = 10000000;
	REQUIRE_OK(dmar_system_create(dmar_posix_machine_os(s.pm), &s.cfg, &table, &s.sys));
	s.unit = dmar_unit_at(s.sys, 0);
	s.model = dmar_posix_machine_unit(s.pm, SIMSYS_REG_BASE);
	REQUIRE(s.unit);
	const uint16_t x = VTD_SID(0, 0x14, 0), y = VTD_SID(0, 0x1a, 0);
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, 2);
	unsigned bad = 0;
	for (int round = 0; round < 300 && !bad; round++) {
		struct dmar_domain *d = translated(&s, 0);
		struct attacher ax = { d, x, &go, -1 }, ay = { d, y, &go, -1 };
		pthread_t tx, ty;
		dmar_posix_machine_log_clear(s.pm);
		REQUIRE(pthread_create(&tx, NULL, attach_one, &ax) == 0);
		REQUIRE(pthread_create(&ty, NULL, attach_one, &ay) == 0);
		pthread_join(tx, NULL);
		pthread_join(ty, NULL);
		CHECK_OK(ax.rc);
		CHECK_OK(ay.rc);
		struct dmar_range r[4];
		unsigned n = dmar_domain_reserved_ranges(d, r, 4);
		if (n != 1 || strstr(dmar_posix_machine_log(s.pm), "skipped")) {
			harness_fail(__FILE__, __LINE__, "round %d: %u ranges; log: %s", round, n,
				     dmar_posix_machine_log(s.pm));
			bad++;
		}
		unsigned char buf[16];
		CHECK_EQ(simsys_dma(&s, x, RMRR_BASE, buf, 16, false), 0);
		CHECK_EQ(simsys_dma(&s, y, RMRR_BASE + 0xfff0, buf, 16, false), 0);
		CHECK_OK(dmar_domain_detach(d, x));
		CHECK_OK(dmar_domain_detach(d, y));
		CHECK_OK(dmar_domain_destroy(d));
	}
	pthread_barrier_destroy(&go);
	CHECK_EQ(simsys_down(&s), 0);
}

struct stuck_unmap {
	struct dmar_domain *d;
	uint64_t iova;
	int entered, done; /* atomic: watched by the main thread */
	int rc;
};

static void *unmap_on_dead_unit(void *arg)
{
	struct stuck_unmap *u = arg;
	__atomic_store_n(&u->entered, 1, __ATOMIC_RELEASE);
	u->rc = dmar_unmap(u->d, u->iova, 4096); /* waits for the queue until the timeout */
	__atomic_store_n(&u->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* An interrupt handler may run while the thread it interrupted holds the domain and unit
 * locks in a wait for the hardware: dmar_fault_poll_irq takes only leaf locks, so it
 * drains at once instead of waiting for (or, on one CPU, deadlocking with) that thread. */
TEST(fault_poll_irq_does_not_wait_for_a_thread_inside_a_hardware_wait)
{
	struct simsys s;
	struct dmar_config c;
	dmar_config_default(&c);
	c.timeout_ns = 1000000000000ull; /* the queue answers long before this */
	REQUIRE_OK(simsys_up(&s, NULL, &c));
	struct dmar_domain *d = translated(&s, 0);
	uint64_t pa;
	simsys_buffer(&s, 4096, &pa);
	CHECK_OK(dmar_map(d, 0x8000, pa, 4096, DMAR_PROT_RW));
	CHECK_OK(dmar_domain_attach(d, SID));
	unsigned char b[8];
	CHECK_EQ(simsys_dma(&s, SID, 0x20000, b, sizeof(b), false), VTD_FR_READ);
	/* The queue answers only after millions of polls: the unmap sits in its wait, with
	 * the domain and unit locks held, for a long while (a good part of a second). */
	dmar_model_set_ack_delay(s.model, MODEL_ACK_QI, 50000000);
	struct stuck_unmap u = { d, 0x8000, 0, 0, 0 };
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, unmap_on_dead_unit, &u) == 0);
	while (!__atomic_load_n(&u.entered, __ATOMIC_ACQUIRE))
		sched_yield();
	/* Inside the wait once the machine's clock has run on (it advances as the waiting
	 * thread polls); the wait lasts 50 million polls. */
	uint64_t t0 = dmar_posix_machine_now(s.pm);
	while (dmar_posix_machine_now(s.pm) - t0 < 100000000ull)
		sched_yield();
	int n = dmar_fault_poll_irq(s.sys);
	CHECK(!__atomic_load_n(&u.done, __ATOMIC_ACQUIRE)); /* drained while the other thread still waits */
	CHECK_EQ(n, 1);
	pthread_join(t, NULL);
	CHECK_OK(u.rc);
	dmar_model_set_ack_delay(s.model, MODEL_ACK_QI, 0);
	CHECK_OK(dmar_domain_detach(d, SID));
	CHECK_OK(dmar_domain_destroy(d));
	CHECK_EQ(simsys_down(&s), 0);
}

/* Protected memory regions firmware left enabled (PMEN.EPM; every client and server unit
 * of real_units.tsv has PLMR/PHMR) would keep blocking DMA into them: once translation
 * is on, the driver switches them off and says so. */
static void firmware_enables_pmrs(struct model *unit)
{
	dmar_model_write32(unit, VTD_PMEN_REG, (uint32_t)VTD_PMEN_EPM);
}

TEST(protected_memory_regions_left_on_by_firmware_are_switched_off)
{
	struct simsys s;
	struct model_config m;
	REQUIRE(dmar_model_config_from_regs(0x10, 0xd2008c40660462ull, 0xf050daull, &m));
	REQUIRE(m.plmr && m.phmr);
	REQUIRE_OK(simsys_up_after(&s, &m, NULL, firmware_enables_pmrs));
	CHECK(dmar_model_read32(s.model, VTD_PMEN_REG) & VTD_PMEN_PRS); /* still on */
	struct dmar_domain *d = translated(&s, 0);
	CHECK_OK(dmar_domain_attach(d, SID));
	CHECK(dmar_model_read32(s.model, VTD_GSTS_REG) & VTD_GSTS_TES);
	CHECK(!(dmar_model_read32(s.model, VTD_PMEN_REG) & VTD_PMEN_PRS));
	CHECK(strstr(dmar_posix_machine_log(s.pm), "protected memory regions") != NULL);
	CHECK_OK(dmar_domain_detach(d, SID));
	CHECK_OK(dmar_domain_destroy(d));
	CHECK_EQ(simsys_down(&s), 0);
}

/* Core: a deferred unmap leaves the IOTLB entry until a flush; mapping the same IOVA
 * again (to another page) flushes first, so the device reaches the new page. */
TEST(map_over_a_deferred_unmap_flushes_first)
{
	struct simsys s;
	REQUIRE_OK(simsys_up(&s, NULL, NULL));
	struct dmar_domain *d = translated(&s, 0);
	uint64_t pa;
	unsigned char *buf = simsys_buffer(&s, 2 * 4096, &pa);
	memset(buf, 0x11, 4096);
	memset(buf + 4096, 0x22, 4096);
	unsigned char b[16];
	CHECK_OK(dmar_domain_attach(d, SID));
	CHECK_OK(dmar_map(d, 0x9000, pa, 4096, DMAR_PROT_RW));
	CHECK_EQ(simsys_dma(&s, SID, 0x9000, b, sizeof(b), false), 0);
	CHECK_OK(dmar_unmap_deferred(d, 0x9000, 4096));
	CHECK_EQ(dmar_domain_deferred(d), 1);
	CHECK_EQ(simsys_dma(&s, SID, 0x9000, b, sizeof(b), false), 0); /* the window */
	CHECK_EQ(b[0], 0x11);
	CHECK_OK(dmar_map(d, 0x9000, pa + 4096, 4096, DMAR_PROT_RW));
	CHECK_EQ(dmar_domain_deferred(d), 0);
	CHECK_EQ(simsys_dma(&s, SID, 0x9000, b, sizeof(b), false), 0);
	CHECK_EQ(b[0], 0x22);
	/* A map elsewhere does not flush; a strict unmap takes the deferred ones along. */
	CHECK_OK(dmar_unmap_deferred(d, 0x9000, 4096));
	CHECK_OK(dmar_map(d, 0x40000, pa, 4096, DMAR_PROT_RW));
	CHECK_EQ(dmar_domain_deferred(d), 1);
	CHECK_OK(dmar_unmap(d, 0x40000, 4096));
	CHECK_EQ(dmar_domain_deferred(d), 0);
	CHECK_EQ(simsys_dma(&s, SID, 0x9000, b, sizeof(b), false), VTD_FR_READ);
	dmar_fault_poll(s.sys);
	CHECK_OK(dmar_domain_detach(d, SID));
	CHECK_OK(dmar_domain_destroy(d));
	CHECK_EQ(simsys_down(&s), 0);
}
