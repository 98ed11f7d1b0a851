/*
 * The library on several CPUs at once (kernel/arch/smp.h): every running CPU takes part
 * (one under -smp 1: the tests then pass trivially parallel). Each CPU records its own
 * failures in a struct ktest of its own (the per-CPU runner, run_on_cpus); the test fails
 * when any CPU's did.
 *
 * The edu DMA engine moves one transfer at a time (edu.c makes CPUs take turns): what
 * runs concurrently is the library (maps, unmaps, invalidations, loads, fault draining)
 * and each CPU's part of the edu buffer is its own (EDU_SLICE bytes at cpu * EDU_SLICE,
 * for the first EDU_SHARERS CPUs of an edu; CPUs beyond that only map and unmap).
 */
#include "dmar/busdma.h"
#include "clock.h"
#include "fixture.h"
#include "lapic.h"
#include "nvme.h"
#include "pmem.h"
#include "regs.h"
#include "smp.h"
#include "spinlock.h"
#include "storage.h"
#include "tests.h"
#include "util.h"
#include "x86.h"

#define EDU_SLICE 1000u   /* bytes of the edu buffer per CPU */
#define EDU_SHARERS 4u    /* CPUs that move data through one edu */
#define SMP_XFER 900u     /* bytes per transfer */
#define MAX_RECORDS 64u

/* ------------------------------------------------------------ the runner ---- */

struct per_cpu_run {
	struct ktest t[SMP_MAX_CPUS];
	const char *name;
};

static void runner_init(struct per_cpu_run *r, const char *name)
{
	dmar_memset(r, 0, sizeof(*r));
	r->name = name;
	for (unsigned i = 0; i < SMP_MAX_CPUS; i++)
		r->t[i].name = name;
}

/* After smp_run: the test fails with every CPU that failed named. */
static void runner_merge(struct ktest *t, struct per_cpu_run *r)
{
	for (unsigned i = 0; i < smp_cpu_count(); i++)
		if (r->t[i].failed) {
			kprintf("# %s: CPU %u failed\n", r->name, i);
			t->failed = true;
		}
}

/* The edus the tests may share: the first, and the second when the unit can tell it
 * from the first (its own requester id). */
static unsigned usable_edus(void)
{
	if (kenv.nedu >= 2 && !edus_share_requester_id(&kenv.edu[0], &kenv.edu[1]))
		return 2;
	return kenv.nedu ? 1 : 0;
}

/* CPU c's edu and its slice of that edu's buffer; false when c only maps. */
static bool edu_slot(unsigned c, unsigned nedu, struct edu **e, uint32_t *off)
{
	*e = &kenv.edu[c % nedu];
	unsigned k = c / nedu;
	*off = k * EDU_SLICE;
	return k < EDU_SHARERS;
}

/* ------------------------------------------------------- CPUs started ---- */

struct cpus_env {
	struct per_cpu_run run;
	uint32_t seen_apic[SMP_MAX_CPUS];
	unsigned seen_index[SMP_MAX_CPUS];
	volatile unsigned ran[SMP_MAX_CPUS];
	void *lock;                   /* an OS-layer lock (ports/baremetal) */
	volatile uint64_t counter;    /* incremented under it, non-atomically */
	struct smp_barrier barrier;
	uint64_t pages[SMP_MAX_CPUS];
};

#define COUNT_ROUNDS 100000u
#define PMEM_PAGES 32u

static void cpus_on_cpu(void *arg, unsigned cpu)
{
	struct cpus_env *env = arg;
	struct ktest *t = &env->run.t[cpu];
	const struct dmar_os_ops *ops = kenv.os.ops;
	env->seen_apic[cpu] = lapic_id();
	env->seen_index[cpu] = smp_cpu_index();
	env->ran[cpu]++;
	smp_barrier_wait(&env->barrier);
	/* The OS layer's lock makes a read-modify-write of another CPU's data atomic. */
	for (unsigned i = 0; i < COUNT_ROUNDS; i++) {
		ops->lock_acquire(kenv.os.ctx, env->lock);
		uint64_t v = env->counter;
		cpu_relax(); /* widens the window a broken lock would open */
		env->counter = v + 1;
		ops->lock_release(kenv.os.ctx, env->lock);
	}
	/* The page allocator hands each page to one CPU only. */
	uint64_t pa = pmem_alloc(PMEM_PAGES, PAGE, PMEM_NO_LIMIT);
	CHECK(pa != 0);
	env->pages[cpu] = pa;
	for (unsigned i = 0; pa && i < PMEM_PAGES; i++) {
		uint64_t one = pmem_alloc(1, PAGE, PMEM_NO_LIMIT);
		CHECK(one != 0);
		dmar_memset(va(pa + i * PAGE), (int)(cpu + 1), PAGE);
		if (one) {
			dmar_memset(va(one), (int)(0x80 + cpu), PAGE);
			pmem_free(one, 1);
		}
	}
	smp_barrier_wait(&env->barrier);
	for (unsigned i = 0; pa && i < PMEM_PAGES; i++)
		CHECK(all_bytes(pa + i * PAGE, PAGE, (uint8_t)(cpu + 1)));
	/* Heap allocations of the OS layer from every CPU at once. */
	void *blk[16];
	for (unsigned i = 0; i < 16; i++) {
		blk[i] = ops->alloc(kenv.os.ctx, 24 + i * 40);
		CHECK(blk[i] != 0);
		if (blk[i])
			dmar_memset(blk[i], (int)(cpu + 1), 24 + i * 40);
	}
	smp_barrier_wait(&env->barrier);
	for (unsigned i = 0; i < 16; i++)
		if (blk[i]) {
			const uint8_t *p = blk[i];
			for (unsigned j = 0; j < 24 + i * 40; j++)
				if (p[j] != (uint8_t)(cpu + 1)) {
					ktest_fail(t, __FILE__, __LINE__,
						   "CPU %u: heap block %u byte %u changed", cpu, i, j);
					break;
				}
			ops->free(kenv.os.ctx, blk[i], 24 + i * 40);
		}
}

/* Every CPU the configuration has (kernel.expect_cpus, from QEMU's -smp) came up, runs
 * the function it is handed once, with its own index and APIC id; the OS layer's locks,
 * heap and the page allocator hold up under all of them at once. */
void test_smp_cpus_started(struct ktest *t)
{
	static struct cpus_env env;
	struct baremetal_stats before, after;
	unsigned n = smp_cpu_count();
	kprintf("# %u CPUs running, %u listed in the MADT, %u expected\n", n, smp_cpus_listed(),
		kenv.expect_cpus);
	if (kenv.expect_cpus)
		CHECK_EQ(n, kenv.expect_cpus);
	CHECK_EQ(n, smp_cpus_listed() < SMP_MAX_CPUS ? smp_cpus_listed() : SMP_MAX_CPUS);
	baremetal_get_stats(&before);
	runner_init(&env.run, t->name);
	dmar_memset((void *)env.ran, 0, sizeof(env.ran));
	env.counter = 0;
	smp_barrier_init(&env.barrier, n);
	env.lock = kenv.os.ops->lock_create(kenv.os.ctx);
	REQUIRE(env.lock);
	uint64_t t0 = clock_now_ns();
	smp_run(cpus_on_cpu, &env);
	kprintf("# the CPUs' part took %llu ms\n",
		(unsigned long long)((clock_now_ns() - t0) / 1000000));
	runner_merge(t, &env.run);
	kenv.os.ops->lock_destroy(kenv.os.ctx, env.lock);
	CHECK_EQ(env.counter, (uint64_t)n * COUNT_ROUNDS);
	for (unsigned c = 0; c < n; c++) {
		kprintf("# CPU %u: APIC id %u\n", c, env.seen_apic[c]);
		CHECK_EQ(env.ran[c], 1);
		CHECK_EQ(env.seen_index[c], c);
		CHECK_EQ(env.seen_apic[c], smp_cpu_apic_id(c));
		for (unsigned d = 0; d < c; d++)
			CHECK(env.seen_apic[d] != env.seen_apic[c]);
		if (env.pages[c])
			pmem_free(env.pages[c], PMEM_PAGES);
	}
	baremetal_get_stats(&after);
	CHECK_EQ(after.heap_bytes, before.heap_bytes);
	CHECK_EQ(after.locks, before.locks);
}

/* ------------------------------------------------ the map/unmap storm ---- */

/* CPU c's IOVA slot: SLOT_PAGES pages at STORM_BASE + c * SLOT_PAGES pages. Slots are
 * adjacent, so neighbours share last-level table pages. Page 0 of a slot is the source,
 * page 1 the destination, the rest churn: single pages, and every fourth time pages 4
 * and 5 as one range. The 2 MiB boundary at 0x01200000 falls between CPU 1's pages 4
 * and 5: its two-page unmap may free the table page above (CPUs 2 and 3 map there)
 * whenever that is empty, while they map into it. */
#define STORM_BASE 0x011f3000ull
#define SLOT_PAGES 8u
#define STORM_ROUNDS 4u
#define CHURN 256u

struct storm_env {
	struct per_cpu_run run;
	struct fixture *f;
	struct dmar_domain *dom;
	unsigned nedu;
	uint64_t src[SMP_MAX_CPUS], dst[SMP_MAX_CPUS], scratch[SMP_MAX_CPUS];
	struct spinlock rec_lock;
	struct dmar_fault_record rec[MAX_RECORDS];
	unsigned nrec, lost;
	unsigned faults_made[SMP_MAX_CPUS];
	struct smp_barrier round;
};

static uint64_t slot_iova(unsigned cpu, unsigned page)
{
	return STORM_BASE + ((uint64_t)cpu * SLOT_PAGES + page) * PAGE;
}

/* Drains the unit's records into the shared list (any CPU may; they are checked at the
 * end). */
static void collect_faults(struct fixture *f, struct spinlock *lock,
			   struct dmar_fault_record *rec, unsigned *nrec, unsigned *lost)
{
	struct dmar_fault_record r[8];
	unsigned k;
	dmar_fault_poll(f->sys);
	while ((k = dmar_fault_read(f->sys, r, DMAR_ARRAY_SIZE(r))) > 0) {
		spin_lock(lock);
		for (unsigned i = 0; i < k; i++)
			if (*nrec < MAX_RECORDS)
				rec[(*nrec)++] = r[i];
			else
				(*lost)++;
		spin_unlock(lock);
	}
}

static void storm_on_cpu(void *arg, unsigned cpu)
{
	struct storm_env *env = arg;
	struct ktest *t = &env->run.t[cpu];
	struct dmar_domain *dom = env->dom;
	struct edu *e;
	uint32_t off;
	bool dma = edu_slot(cpu, env->nedu, &e, &off);
	uint64_t src = env->src[cpu], dst = env->dst[cpu];
	uint64_t s_iova = slot_iova(cpu, 0), d_iova = slot_iova(cpu, 1);
	bool failed = false;
	for (unsigned r = 0; r < STORM_ROUNDS; r++) {
		/* Every CPU starts the round's churn at once (even one that failed: the others
		 * wait for it at the barrier). */
		smp_barrier_wait(&env->round);
		if (failed)
			continue;
		/* Churn: pages of the slot mapped, looked up and unmapped while the
		 * neighbours do the same in the same table pages. */
		for (unsigned k = 0; k < CHURN; k++) {
			unsigned np = k % 4 == 3 ? 2 : 1;
			uint64_t iova = np == 2 ? slot_iova(cpu, 4)
						: slot_iova(cpu, 2 + k % (SLOT_PAGES - 2));
			uint64_t phys = 0, last = iova + (np - 1) * PAGE;
			unsigned prot = 0;
			int rc = dmar_map(dom, iova, env->scratch[cpu], np * PAGE, DMAR_PROT_RW);
			if (rc) {
				ktest_fail(t, __FILE__, __LINE__, "CPU %u: dmar_map %#llx: %d", cpu,
					   (unsigned long long)iova, rc);
				failed = true;
				break;
			}
			CHECK_EQ(dmar_lookup(dom, last, &phys, &prot), 0);
			CHECK_EQ(phys, env->scratch[cpu] + (np - 1) * PAGE);
			rc = dmar_unmap(dom, iova, np * PAGE);
			if (rc) {
				ktest_fail(t, __FILE__, __LINE__, "CPU %u: dmar_unmap %#llx: %d", cpu,
					   (unsigned long long)iova, rc);
				failed = true;
				break;
			}
		}
		if (failed)
			continue;
		/* A transfer through the shared domain: src -> edu -> dst, verified. */
		fill_pattern(src, PAGE, cpu * 16 + r);
		dmar_memset(va(dst), 0xee, PAGE);
		uint32_t in = (r * 97u) & 0x3fcu; /* the transfer's offset in the pages */
		CHECK_EQ(dmar_map(dom, s_iova, src, PAGE, DMAR_PROT_READ), 0);
		CHECK_EQ(dmar_map(dom, d_iova, dst, PAGE, DMAR_PROT_WRITE), 0);
		if (dma) {
			CHECK_EQ(edu_dma_to_device(e, s_iova + in, off, SMP_XFER), 0);
			CHECK_EQ(edu_dma_from_device(e, d_iova + in, off, SMP_XFER), 0);
			if (dmar_memcmp(va(dst + in), va(src + in), SMP_XFER) != 0 ||
			    !all_bytes(dst, in, 0xee) ||
			    !all_bytes(dst + in + SMP_XFER, PAGE - in - SMP_XFER, 0xee))
				ktest_fail(t, __FILE__, __LINE__,
					   "CPU %u round %u: the transfer through IOVA %#llx -> "
					   "%#llx did not arrive intact", cpu, r,
					   (unsigned long long)s_iova, (unsigned long long)d_iova);
		}
		CHECK_EQ(dmar_unmap(dom, s_iova, PAGE), 0);
		CHECK_EQ(dmar_unmap(dom, d_iova, PAGE), 0);
		if (dma) {
			/* Unmapped (the unit had just cached it): the device's write must be
			 * blocked and recorded, the old page keep its canary. */
			dmar_memset(va(dst), 0xc5, PAGE);
			CHECK_EQ(edu_dma_from_device(e, d_iova + in, off, SMP_XFER), 0);
			if (!all_bytes(dst, PAGE, 0xc5))
				ktest_fail(t, __FILE__, __LINE__,
					   "CPU %u round %u: a write through unmapped IOVA %#llx "
					   "reached the old page (stale translation)", cpu, r,
					   (unsigned long long)d_iova);
			env->faults_made[cpu]++;
			collect_faults(env->f, &env->rec_lock, env->rec, &env->nrec, &env->lost);
		}
	}
}

/* Every recorded fault is one a CPU provoked: its edu's id, its destination IOVA, a
 * write (reason 5), on the fixture's unit. */
static unsigned check_storm_records(struct ktest *t, struct fixture *f,
				    const struct dmar_fault_record *rec, unsigned n,
				    unsigned nedu, uint64_t (*iova_of)(unsigned cpu))
{
	unsigned good = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct dmar_fault_record *r = &rec[i];
		bool expected = false;
		for (unsigned c = 0; c < smp_cpu_count() && !expected; c++) {
			struct edu *e;
			uint32_t off;
			if (!edu_slot(c, nedu, &e, &off))
				continue;
			expected = fixture_sid_matches(f, e->sid, r->sid) &&
				   r->addr == iova_of(c) && !r->is_read &&
				   r->reason == VTD_FR_WRITE && r->unit == f->info.index;
		}
		kprintf("# fault %u: sid %02x:%02x.%x addr %#llx %s reason %u%s\n", i,
			r->sid >> 8, (r->sid >> 3) & 31, r->sid & 7, (unsigned long long)r->addr,
			r->is_read ? "read" : "write", r->reason, expected ? "" : " (UNEXPECTED)");
		if (!expected)
			ktest_fail(t, __FILE__, __LINE__, "an unexpected fault was recorded");
		good += expected;
	}
	return good;
}

static uint64_t storm_dst_iova(unsigned cpu) { return slot_iova(cpu, 1); }

/* Every CPU maps, moves data through an edu and unmaps its own IOVA slot of one shared
 * domain, neighbours sharing table pages, for STORM_ROUNDS rounds: every transfer
 * arrives intact, a write through a just-unmapped IOVA never reaches the old page, and
 * the only recorded faults are those writes. */
void test_smp_map_unmap_storm(struct ktest *t)
{
	static struct storm_env env;
	struct fixture f;
	unsigned n = smp_cpu_count();
	dmar_memset(&env, 0, sizeof(env));
	runner_init(&env.run, t->name);
	spin_init(&env.rec_lock, "storm fault records");
	if (fixture_up(t, &f, 1) != 0)
		goto out;
	env.f = &f;
	env.nedu = usable_edus();
	TRY(translated_domain(&f, 0, &kenv.edu[0], &env.dom));
	bool second = env.nedu == 2;
	if (second)
		TRY(dmar_domain_attach_device(env.dom, kenv.edu[1].pci->bus, kenv.edu[1].pci->dev,
					      kenv.edu[1].pci->fn));
	uint64_t pages = buffer(&f, 4 * n, PAGE, 0); /* per CPU: src, dst, two scratch */
	ENSURE(pages);
	for (unsigned c = 0; c < n; c++) {
		env.src[c] = pages + 4 * c * PAGE;
		env.dst[c] = env.src[c] + PAGE;
		env.scratch[c] = env.src[c] + 2 * PAGE;
	}
	kprintf("# %u CPUs, %u edu%s in one domain, %u rounds each\n", n, env.nedu,
		env.nedu == 1 ? "" : "s", STORM_ROUNDS);
	smp_barrier_init(&env.round, n);
	smp_run(storm_on_cpu, &env);
	runner_merge(t, &env.run);
	collect_faults(&f, &env.rec_lock, env.rec, &env.nrec, &env.lost);
	unsigned made = 0;
	for (unsigned c = 0; c < n; c++)
		made += env.faults_made[c];
	unsigned good = check_storm_records(t, &f, env.rec, env.nrec, env.nedu, storm_dst_iova);
	kprintf("# %u faults provoked, %u recorded (NFR=1: one pending record hides the "
		"next), %u beyond the list\n", made, good, env.lost);
	CHECK(good >= 1);
	CHECK(good <= made);
	/* One CPU drains each fault before the next: every one is recorded. */
	if (n == 1)
		CHECK_EQ(good, made);
	if (second)
		CHECK_EQ(dmar_domain_detach_device(env.dom, kenv.edu[1].pci->bus,
						   kenv.edu[1].pci->dev, kenv.edu[1].pci->fn), 0);
out:
	fixture_down(t, &f);
}

/* ------------------------------------------------------ busdma loads ---- */

#define LOAD_ROUNDS 4u
#define LOAD_CHURN 128u

struct loads_env {
	struct per_cpu_run run;
	struct dmar_busdma *bus;
	struct dmar_busdma_dev *dev[2];
	struct dmar_dma_tag *tag[2];
	unsigned ndev;
	uint64_t src[SMP_MAX_CPUS], dst[SMP_MAX_CPUS];
	uint64_t first[SMP_MAX_CPUS]; /* each CPU's first one-page load on device 0 */
	struct smp_barrier round;
};

static void loads_on_cpu(void *arg, unsigned cpu)
{
	struct loads_env *env = arg;
	struct ktest *t = &env->run.t[cpu];
	struct dmar_dmamap *sm[2] = { 0 }, *dm[2] = { 0 };
	bool made = true;
	for (unsigned d = 0; d < env->ndev; d++) {
		CHECK_EQ(dmar_dmamap_create(env->tag[d], 0, &sm[d]), 0);
		CHECK_EQ(dmar_dmamap_create(env->tag[d], 0, &dm[d]), 0);
		made = made && sm[d] && dm[d];
	}
	bool failed = !made;
	for (unsigned r = 0; r < LOAD_ROUNDS; r++) {
		/* Every CPU starts the round at once (one that failed still meets the others
		 * here), loading and unloading without DMA, then once with a transfer. */
		smp_barrier_wait(&env->round);
		if (failed)
			continue;
		failed = true; /* until the round is through */
		/* Churn: all CPUs on the same device (its IOVA space, its bounce pages). */
		unsigned d = r % env->ndev;
		for (unsigned k = 0; k < LOAD_CHURN; k++) {
			uint8_t *b = va(env->src[cpu] + 8 * (k % 64));
			TRY(dmar_dmamap_load(env->tag[d], sm[d], b, 64 + 300 * (k % 8),
					     DMAR_DMA_NOWRITE | DMAR_DMA_WAITOK));
			if (r == 0 && k == 0)
				env->first[cpu] = dmar_dmamap_segs(sm[d])[0].addr;
			TRY(dmar_dmamap_load(env->tag[d], dm[d],
					     va(env->dst[cpu] + PAGE - 8 * (k % 64)), SMP_XFER,
					     DMAR_DMA_WAITOK));
			TRY(dmar_dmamap_unload(env->tag[d], sm[d]));
			TRY(dmar_dmamap_unload(env->tag[d], dm[d]));
		}
		/* The transfer: the devices in turn, half the CPUs on each. */
		d = (cpu + r) % env->ndev;
		struct edu *e = &kenv.edu[d];
		uint32_t off = (cpu / env->ndev) * EDU_SLICE;
		bool dma = cpu / env->ndev < EDU_SHARERS;
		/* A buffer that straddles a page boundary at an offset of its own. */
		uint64_t in = 0x800 + ((cpu * 40 + r * 24) & 0x3f8);
		uint8_t *s = va(env->src[cpu] + in), *dst = va(env->dst[cpu] + in);
		fill_pattern(env->src[cpu] + in, SMP_XFER, 40 + cpu * 8 + r);
		dmar_memset(va(env->dst[cpu]), 0xee, 2 * PAGE);
		TRY(dmar_dmamap_load(env->tag[d], sm[d], s, SMP_XFER,
				     DMAR_DMA_NOWRITE | DMAR_DMA_WAITOK));
		TRY(dmar_dmamap_load(env->tag[d], dm[d], dst, SMP_XFER, DMAR_DMA_WAITOK));
		TRY(dmar_dmamap_sync(env->tag[d], sm[d], DMAR_DMASYNC_PREWRITE));
		TRY(dmar_dmamap_sync(env->tag[d], dm[d], DMAR_DMASYNC_PREREAD));
		if (dma) {
			TRY(edu_dma_map(e, sm[d], off, true));
			TRY(edu_dma_map(e, dm[d], off, false));
		}
		TRY(dmar_dmamap_sync(env->tag[d], sm[d], DMAR_DMASYNC_POSTWRITE));
		TRY(dmar_dmamap_sync(env->tag[d], dm[d], DMAR_DMASYNC_POSTREAD));
		TRY(dmar_dmamap_unload(env->tag[d], sm[d]));
		TRY(dmar_dmamap_unload(env->tag[d], dm[d]));
		if (dma && (dmar_memcmp(dst, s, SMP_XFER) != 0 ||
			    !all_bytes(env->dst[cpu], in, 0xee) ||
			    !all_bytes(env->dst[cpu] + in + SMP_XFER, 2 * PAGE - in - SMP_XFER, 0xee)))
			ktest_fail(t, __FILE__, __LINE__,
				   "CPU %u round %u: data through device %u (%s) not intact", cpu,
				   r, d,
				   dmar_busdma_device_mode(env->dev[d]) == DMAR_BUSDMA_BOUNCE
					   ? "bounced" : "translated");
		failed = false;
		continue;
out:
		/* Left loaded by the failure: unloaded so the maps can go. */
		(void)dmar_dmamap_unload(env->tag[d], sm[d]);
		(void)dmar_dmamap_unload(env->tag[d], dm[d]);
	}
	for (unsigned d = 0; d < env->ndev; d++) {
		if (sm[d])
			CHECK_EQ(dmar_dmamap_destroy(env->tag[d], sm[d]), 0);
		if (dm[d])
			CHECK_EQ(dmar_dmamap_destroy(env->tag[d], dm[d]), 0);
	}
}

/* Every CPU creates its own maps on the shared tags of the edus' busdma devices (one
 * translated and, where the configuration says so, one bounced), and loads, syncs, moves
 * data through them and unloads for LOAD_ROUNDS rounds; every transfer arrives intact,
 * nothing faults, nothing leaks. */
void test_smp_busdma_loads(struct ktest *t)
{
	static struct loads_env env;
	struct fixture f;
	unsigned n = smp_cpu_count();
	dmar_memset(&env, 0, sizeof(env));
	runner_init(&env.run, t->name);
	if (fixture_up(t, &f, 1) != 0)
		goto out;
	env.ndev = usable_edus();
	TRY(dmar_busdma_create(&kenv.os, &kenv.cfg, f.sys, &env.bus));
	struct dmar_dma_tag_params p;
	dmar_dma_tag_params_default(&p);
	p.lowaddr = 0x0fffffff; /* the edu's default dma_mask */
	p.maxsize = EDU_DMA_MAX;
	p.maxsegsz = EDU_DMA_MAX;
	p.nsegments = 4;
	for (unsigned d = 0; d < env.ndev; d++) {
		struct edu *e = &kenv.edu[d];
		struct dmar_pci_addr a = { 0, e->pci->bus, e->pci->dev, e->pci->fn };
		TRY(dmar_busdma_device(env.bus, a, pci_bridge_buses, 0, &env.dev[d]));
		TRY(dmar_dma_tag_create(env.dev[d], 0, &p, &env.tag[d]));
		kprintf("# edu %02x:%02x.%x: %s\n", e->pci->bus, e->pci->dev, e->pci->fn,
			dmar_busdma_device_mode(env.dev[d]) == DMAR_BUSDMA_BOUNCE ? "bounced"
										   : "translated");
	}
	uint64_t pages = buffer(&f, 4 * n, PAGE, 0); /* per CPU: two pages each way */
	ENSURE(pages);
	for (unsigned c = 0; c < n; c++) {
		env.src[c] = pages + 4 * c * PAGE;
		env.dst[c] = env.src[c] + 2 * PAGE;
	}
	smp_barrier_init(&env.round, n);
	smp_run(loads_on_cpu, &env);
	runner_merge(t, &env.run);
	expect_no_fault(t, &f);
	/* One-page loads of a translated device go to their CPU's own window: no two
	 * CPUs' first loads share a 2 MiB window (hw.dmar.cpu_windows). */
	if (dmar_busdma_device_mode(env.dev[0]) == DMAR_BUSDMA_TRANSLATE && kenv.cfg.cpu_windows)
		for (unsigned a = 0; a < n; a++)
			for (unsigned b = a + 1; b < n; b++)
				if (env.first[a] && env.first[b])
					CHECK((env.first[a] ^ env.first[b]) >= DMAR_WINDOW_SIZE);
out:
	for (unsigned d = 0; d < 2; d++) {
		if (env.tag[d])
			CHECK_EQ(dmar_dma_tag_destroy(env.tag[d]), 0);
		if (env.dev[d])
			CHECK_EQ(dmar_busdma_device_destroy(env.dev[d]), 0);
	}
	if (env.bus)
		CHECK_EQ(dmar_busdma_destroy(env.bus), 0);
	fixture_down(t, &f);
}

/* ------------------------------------------------ faults while mapping ---- */

#define FAULTS 6u
#define FAULT_BASE 0x02000000ull /* the faulter's IOVAs (never mapped in its domain) */
#define MAPPER_MIN_ROUNDS 2u

struct fwm_env {
	struct per_cpu_run run;
	struct fixture *f;
	struct dmar_domain *mdom, *fdom;  /* the mappers' (edu 0) and the faulter's (edu 1) */
	uint64_t src[SMP_MAX_CPUS], dst[SMP_MAX_CPUS];
	volatile bool faulter_done;
	unsigned recorded, mapper_rounds[SMP_MAX_CPUS];
	struct spinlock rec_lock;
	struct dmar_fault_record stray[MAX_RECORDS];
	unsigned nstray, lost;
};

/* The faulter: edu 1 reads from and writes to IOVAs its domain does not map, and drains
 * after each: exactly that fault is recorded (NFR=1, drained before the next). Between
 * faults it maps and unmaps in its own domain. */
static void faulter(struct fwm_env *env, struct ktest *t)
{
	struct edu *e = &kenv.edu[1];
	struct fixture *f = env->f;
	for (unsigned i = 0; i < FAULTS; i++) {
		uint64_t iova = FAULT_BASE + (uint64_t)i * 0x3000;
		bool read = i & 1;
		int rc = read ? edu_dma_to_device(e, iova, 0, 64) : edu_dma_from_device(e, iova, 0, 64);
		CHECK_EQ(rc, 0);
		dmar_fault_poll(f->sys);
		struct dmar_fault_record r[8];
		unsigned k, mine = 0;
		while ((k = dmar_fault_read(f->sys, r, DMAR_ARRAY_SIZE(r))) > 0)
			for (unsigned j = 0; j < k; j++) {
				bool ok = fixture_sid_matches(f, e->sid, r[j].sid) &&
					  r[j].addr == iova && r[j].is_read == read &&
					  r[j].reason == (read ? VTD_FR_READ : VTD_FR_WRITE) &&
					  r[j].unit == f->info.index;
				if (ok) {
					mine++;
					continue;
				}
				spin_lock(&env->rec_lock);
				if (env->nstray < MAX_RECORDS)
					env->stray[env->nstray++] = r[j];
				else
					env->lost++;
				spin_unlock(&env->rec_lock);
			}
		if (mine != 1)
			ktest_fail(t, __FILE__, __LINE__,
				   "fault %u (%s at %#llx): %u matching records", i,
				   read ? "read" : "write", (unsigned long long)iova, mine);
		env->recorded += mine;
		/* Its own domain changes too: its invalidations meet the mappers' on the
		 * unit (its invalidation queue or registers). */
		for (unsigned j = 0; j < CHURN; j++) {
			uint64_t at = FAULT_BASE + 0x100000 + (j % 8) * PAGE;
			CHECK_EQ(dmar_map(env->fdom, at, env->src[0], PAGE, DMAR_PROT_READ), 0);
			CHECK_EQ(dmar_unmap(env->fdom, at, PAGE), 0);
		}
	}
	__atomic_store_n(&env->faulter_done, true, __ATOMIC_RELEASE);
}

/* A mapper: map, move data through edu 0, verify, unmap, in its own slot of the
 * mappers' domain, until the faulter is done (at least MAPPER_MIN_ROUNDS rounds). */
static void mapper(struct fwm_env *env, struct ktest *t, unsigned cpu, unsigned slice)
{
	struct edu *e = &kenv.edu[0];
	uint64_t src = env->src[cpu], dst = env->dst[cpu];
	uint64_t s_iova = slot_iova(cpu, 0), d_iova = slot_iova(cpu, 1);
	bool dma = slice < EDU_SHARERS;
	for (unsigned r = 0; !t->failed && (r < MAPPER_MIN_ROUNDS ||
					     !__atomic_load_n(&env->faulter_done, __ATOMIC_ACQUIRE));
	     r++) {
		for (unsigned k = 0; k < CHURN; k++) {
			uint64_t iova = slot_iova(cpu, 2 + k % (SLOT_PAGES - 2));
			CHECK_EQ(dmar_map(env->mdom, iova, dst, PAGE, DMAR_PROT_READ), 0);
			CHECK_EQ(dmar_unmap(env->mdom, iova, PAGE), 0);
		}
		fill_pattern(src, PAGE, 200 + cpu * 8 + r);
		dmar_memset(va(dst), 0xee, PAGE);
		CHECK_EQ(dmar_map(env->mdom, s_iova, src, PAGE, DMAR_PROT_READ), 0);
		CHECK_EQ(dmar_map(env->mdom, d_iova, dst, PAGE, DMAR_PROT_WRITE), 0);
		if (dma) {
			CHECK_EQ(edu_dma_to_device(e, s_iova, slice * EDU_SLICE, SMP_XFER), 0);
			CHECK_EQ(edu_dma_from_device(e, d_iova, slice * EDU_SLICE, SMP_XFER), 0);
			if (dmar_memcmp(va(dst), va(src), SMP_XFER) != 0 ||
			    !all_bytes(dst + SMP_XFER, PAGE - SMP_XFER, 0xee))
				ktest_fail(t, __FILE__, __LINE__,
					   "CPU %u round %u: the mapper's transfer is not intact",
					   cpu, r);
		}
		CHECK_EQ(dmar_unmap(env->mdom, s_iova, PAGE), 0);
		CHECK_EQ(dmar_unmap(env->mdom, d_iova, PAGE), 0);
		env->mapper_rounds[cpu]++;
	}
}

static void fwm_on_cpu(void *arg, unsigned cpu)
{
	struct fwm_env *env = arg;
	struct ktest *t = &env->run.t[cpu];
	if (cpu == 0) {
		faulter(env, t);
		if (smp_cpu_count() == 1)
			mapper(env, t, 0, 0); /* one CPU: the roles one after the other */
	} else {
		mapper(env, t, cpu, cpu - 1);
	}
}

/* One CPU provokes faults with edu 1 and drains each while the others map, move data
 * through edu 0 and unmap in another domain of the same unit: every provoked fault is
 * recorded once with edu 1's id, address and access type; the mappers' transfers all
 * arrive and none of them faults. */
void test_smp_fault_while_mapping(struct ktest *t)
{
	static struct fwm_env env;
	struct fixture f;
	unsigned n = smp_cpu_count();
	dmar_memset(&env, 0, sizeof(env));
	runner_init(&env.run, t->name);
	spin_init(&env.rec_lock, "fault records");
	if (usable_edus() < 2) {
		fixture_up(t, &f, 2); /* fails or skips with its reason */
		if (!t->failed && !t->skip)
			t->skip = "needs two edu devices the unit can tell apart";
		goto out;
	}
	if (fixture_up(t, &f, 2) != 0)
		goto out;
	env.f = &f;
	TRY(translated_domain(&f, 0, &kenv.edu[0], &env.mdom));
	TRY(translated_domain(&f, 1, &kenv.edu[1], &env.fdom));
	uint64_t pages = buffer(&f, 2 * n, PAGE, 0);
	ENSURE(pages);
	for (unsigned c = 0; c < n; c++) {
		env.src[c] = pages + 2 * c * PAGE;
		env.dst[c] = env.src[c] + PAGE;
	}
	smp_run(fwm_on_cpu, &env);
	runner_merge(t, &env.run);
	collect_faults(&f, &env.rec_lock, env.stray, &env.nstray, &env.lost);
	unsigned rounds = 0;
	for (unsigned c = 0; c < n; c++)
		rounds += env.mapper_rounds[c];
	kprintf("# %u faults recorded as provoked, %u mapper rounds on %u CPU%s, %u other "
		"records\n", env.recorded, rounds, n > 1 ? n - 1 : 1, n > 2 ? "s" : "",
		env.nstray + env.lost);
	for (unsigned i = 0; i < env.nstray; i++) {
		const struct dmar_fault_record *r = &env.stray[i];
		kprintf("# unexpected fault: sid %02x:%02x.%x addr %#llx %s reason %u\n",
			r->sid >> 8, (r->sid >> 3) & 31, r->sid & 7, (unsigned long long)r->addr,
			r->is_read ? "read" : "write", r->reason);
	}
	CHECK_EQ(env.nstray + env.lost, 0);
	CHECK_EQ(env.recorded, FAULTS);
	CHECK(rounds >= MAPPER_MIN_ROUNDS);
out:
	fixture_down(t, &f);
}

/* ------------------------------------------------- NVMe queue per CPU ---- */

#define NVME_SMP_LBA 0x10000ull    /* 32 MiB into a 512-byte-sector disk */
#define NVME_SMP_REGION 0x1000ull  /* blocks per CPU */
#define NVME_SMP_ROUNDS 8u
#define NVME_SMP_BYTES (3 * 4096u) /* at a page offset: four PRP entries, a PRP list */

struct nq_env {
	struct per_cpu_run run;
	struct nvme c;
	struct dmar_busdma *bus;
	struct dmar_busdma_dev *dev;
	struct dmar_dma_tag *tag;
	unsigned nq;
	uint64_t src[SMP_MAX_CPUS], dst[SMP_MAX_CPUS];
	unsigned done[SMP_MAX_CPUS];
};

static uint32_t nq_seed(unsigned cpu, unsigned r) { return 0x5e00u + cpu * 64 + r; }

static uint64_t nq_lba(const struct nq_env *env, unsigned cpu, unsigned r)
{
	uint32_t blocks = NVME_SMP_BYTES / env->c.lba_size;
	return NVME_SMP_LBA + cpu * NVME_SMP_REGION + (uint64_t)r * blocks;
}

static void nq_on_cpu(void *arg, unsigned cpu)
{
	struct nq_env *env = arg;
	struct ktest *t = &env->run.t[cpu];
	if (cpu >= env->nq)
		return; /* more CPUs than the driver's queues */
	unsigned qid = cpu + 1;
	uint32_t bs = env->c.lba_size, blocks = NVME_SMP_BYTES / bs;
	struct dmar_dmamap *map = 0;
	TRY(dmar_dmamap_create(env->tag, 0, &map));
	for (unsigned r = 0; r < NVME_SMP_ROUNDS; r++) {
		uint64_t lba = nq_lba(env, cpu, r);
		uint32_t in = 0x200u * (1 + (r & 3)); /* sector-aligned, never page-aligned */
		uint8_t *src = va(env->src[cpu] + in), *dst = va(env->dst[cpu] + in);
		storage_fill(src, NVME_SMP_BYTES, bs, nq_seed(cpu, r), lba);
		dmar_memset(dst, 0xee, NVME_SMP_BYTES);
		TRY(dmar_dmamap_load(env->tag, map, src, NVME_SMP_BYTES,
				     DMAR_DMA_NOWRITE | DMAR_DMA_WAITOK));
		TRY(dmar_dmamap_sync(env->tag, map, DMAR_DMASYNC_PREWRITE));
		int rc = nvme_rw_queue(&env->c, qid, true, lba, blocks, map);
		TRY(dmar_dmamap_sync(env->tag, map, DMAR_DMASYNC_POSTWRITE));
		TRY(dmar_dmamap_unload(env->tag, map));
		if (rc) {
			ktest_fail(t, __FILE__, __LINE__, "CPU %u: write on queue %u: %d (status %#x)",
				   cpu, qid, rc, env->c.q[qid].status);
			goto out;
		}
		TRY(dmar_dmamap_load(env->tag, map, dst, NVME_SMP_BYTES, DMAR_DMA_WAITOK));
		TRY(dmar_dmamap_sync(env->tag, map, DMAR_DMASYNC_PREREAD));
		rc = nvme_rw_queue(&env->c, qid, false, lba, blocks, map);
		TRY(dmar_dmamap_sync(env->tag, map, DMAR_DMASYNC_POSTREAD));
		TRY(dmar_dmamap_unload(env->tag, map));
		if (rc) {
			ktest_fail(t, __FILE__, __LINE__, "CPU %u: read on queue %u: %d (status %#x)",
				   cpu, qid, rc, env->c.q[qid].status);
			goto out;
		}
		if (!storage_matches(dst, NVME_SMP_BYTES, bs, nq_seed(cpu, r), lba))
			ktest_fail(t, __FILE__, __LINE__,
				   "CPU %u round %u: queue %u read back other data", cpu, r, qid);
		env->done[cpu]++;
	}
out:
	if (map)
		CHECK_EQ(dmar_dmamap_destroy(env->tag, map), 0);
}

/* One NVMe I/O queue pair per CPU: each CPU writes patterns to its own blocks on its
 * own submission queue, polls its own completion queue and reads them back, all at
 * once, every DMA address from busdma; the data read back and (scripts/disk_check.py)
 * the disk image hold each CPU's pattern. */
void test_smp_nvme_queue_per_cpu(struct ktest *t)
{
	static struct nq_env env;
	struct fixture f;
	unsigned n = smp_cpu_count();
	dmar_memset(&env, 0, sizeof(env));
	runner_init(&env.run, t->name);
	if (!nvme_probe(0, &env.c))
		SKIP("no NVMe controller (class 01:08:02) on this machine");
	if (fixture_up(t, &f, 0) != 0)
		goto out;
	struct dmar_pci_addr a = { 0, env.c.pci->bus, env.c.pci->dev, env.c.pci->fn };
	TRY(dmar_busdma_create(&kenv.os, &kenv.cfg, f.sys, &env.bus));
	TRY(dmar_busdma_device(env.bus, a, pci_bridge_buses, 0, &env.dev));
	env.nq = n < NVME_MAX_IOQ ? n : NVME_MAX_IOQ;
	int rc = nvme_init_queues(&env.c, env.dev, env.nq);
	if (rc == DMAR_ENODEV) {
		t->skip = "no namespace 1: the NVMe controller has no disk (nvme,drive=...)";
		goto out;
	}
	TRY(rc);
	kprintf("# nvme %02x:%02x.%x (%s): %u I/O queue pairs for %u CPUs, %u-byte blocks\n",
		env.c.pci->bus, env.c.pci->dev, env.c.pci->fn,
		dmar_busdma_device_mode(env.dev) == DMAR_BUSDMA_BOUNCE ? "bounced" : "translated",
		env.nq, n, env.c.lba_size);
	ENSURE(env.c.lba_size <= 4096 && NVME_SMP_BYTES % env.c.lba_size == 0);
	ENSURE(env.c.nsze >= NVME_SMP_LBA + NVME_SMP_REGION * SMP_MAX_CPUS);
	struct dmar_dma_tag_params p;
	nvme_data_tag_params(&env.c, &p);
	TRY(dmar_dma_tag_create(env.dev, 0, &p, &env.tag));
	uint64_t pages = buffer(&f, 8 * n, PAGE, 0);
	ENSURE(pages);
	for (unsigned c = 0; c < n; c++) {
		env.src[c] = pages + 8 * c * PAGE;
		env.dst[c] = env.src[c] + 4 * PAGE;
	}
	smp_run(nq_on_cpu, &env);
	runner_merge(t, &env.run);
	struct blockdev disk = { .name = "nvme", .sector_size = env.c.lba_size };
	for (unsigned c = 0; c < env.nq; c++) {
		CHECK_EQ(env.done[c], NVME_SMP_ROUNDS);
		for (unsigned r = 0; r < env.done[c]; r++)
			storage_disk_check(&disk, nq_lba(&env, c, r), NVME_SMP_BYTES / env.c.lba_size,
					   nq_seed(c, r));
	}
	expect_no_fault(t, &f);
out:
	if (env.c.live || env.c.qtag)
		nvme_detach(&env.c);
	if (env.tag)
		CHECK_EQ(dmar_dma_tag_destroy(env.tag), 0);
	if (env.dev)
		CHECK_EQ(dmar_busdma_device_destroy(env.dev), 0);
	if (env.bus)
		CHECK_EQ(dmar_busdma_destroy(env.bus), 0);
	fixture_down(t, &f);
}
