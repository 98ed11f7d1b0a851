/*
 * storage_bench: throughput of the four storage controllers (storage.h) through busdma,
 * in three modes switched within one boot (QEMU under TCG drifts by tens of percent
 * between runs, so modes are only compared inside one):
 *   translated    the controller's own translated domain, strict unloads (each waits
 *                 for its IOTLB invalidation);
 *   untranslated  its context pass-through and busdma handing out physical addresses
 *                 (what hw.dmar.enable=0 gives), buffers below 4 GiB: nothing copied;
 *   deferred      translated, unloads deferred (hw.dmar.strict=0 for the controller)
 *   bounce        the same pass-through, but the data buffers above 4 GiB and a data
 *                 tag stating a 32-bit device (lowaddr 0xffffffff): every transfer is
 *                 copied through bounce pages.
 * Each round binds every controller once per mode (busdma and the driver set up anew,
 * the mode order rotating from round to round) and runs four workloads for a fixed time
 * each over a 64 MiB region of its disk: sequential reads and writes of 128 KiB (or the
 * controller's largest transfer if smaller) and random 4 KiB reads and writes (one
 * fixed pseudo-random sequence of blocks). One line per measurement:
 *   # bench: ctl=C mode=M work=W round=R xfer=BYTES ios=N bytes=B ns=T mibps=X iops=Y
 *            ns_per_io=Z drv_ns_per_io=D
 * where D is the time spent in dmar_dmamap_load, dmar_dmamap_sync and
 * dmar_dmamap_unload of the data buffer (the drivers' own loads of frames and PRP lists
 * are in Z only). scripts/bench-qemu.sh makes the table. Not in a full test run:
 * kernel.tests=storage_bench, with kernel.bench_rounds=N (5), kernel.bench_ms=MS per
 * measurement (300) and kernel.bench_ctl=a,b (every controller) on the command line.
 */
#include "clock.h"
#include "dmar/busdma.h"
#include "fixture.h"
#include "pmem.h"
#include "storage.h"
#include "tests.h"
#include "util.h"
#include "x86.h"

#define BENCH_REGION (64ull << 20)  /* bytes of each disk the workloads cover */
#define BENCH_SEQ (128u << 10)      /* sequential transfer, unless the controller's
				     * largest is smaller */
#define BENCH_RAND 4096u
#define BENCH_WARMUP 4u             /* untimed I/Os before each measurement */
#define BENCH_MIN_IOS 8u

/* premapped: translated and strict, but the data buffer is loaded once per workload and
 * kept (only the syncs run per I/O): what remains over untranslated is the emulated
 * unit's own cost, translating every DMA access of the device, not the driver's. */
enum bench_mode { MODE_TRANSLATED, MODE_UNTRANSLATED, MODE_BOUNCE, MODE_DEFERRED,
		  MODE_PREMAPPED, NMODES };
static const char *const mode_name[NMODES] = { "translated", "untranslated", "bounce",
					       "deferred", "premapped" };

enum bench_work { SEQ_WRITE, SEQ_READ, RAND_WRITE, RAND_READ, NWORKS };
static const char *const work_name[NWORKS] = { "seqwrite", "seqread", "randwrite", "randread" };

static const struct storage_ctl_ops *const bench_ctls[] = {
	&storage_ctl_ahci, &storage_ctl_ata, &storage_ctl_megasas, &storage_ctl_nvme,
};

/* Two buffers of BENCH_SEQ bytes: below 4 GiB, or above it for the bounce mode. */
struct bench_bufs {
	uint64_t wr, rd;
};

static uint64_t tsc_khz;

/* TSC ticks per millisecond, measured against the kernel clock. */
static void calibrate_tsc(void)
{
	uint64_t n0 = clock_now_ns(), c0 = rdtsc();
	clock_delay_ns(50000000ull);
	uint64_t n1 = clock_now_ns(), c1 = rdtsc();
	tsc_khz = (c1 - c0) * 1000000ull / (n1 - n0 ? n1 - n0 : 1);
	if (!tsc_khz)
		tsc_khz = 1000000ull;
}

static uint64_t tsc_to_ns(uint64_t ticks)
{
	return ticks / tsc_khz * 1000000ull + ticks % tsc_khz * 1000000ull / tsc_khz;
}

static unsigned cmdline_uint(const char *key, unsigned dflt)
{
	char v[16] = "";
	unsigned n = 0;
	if (!boot_cmdline_get(&kenv.boot, key, v, sizeof(v)) || v[0] < '0' || v[0] > '9')
		return dflt;
	for (const char *p = v; *p >= '0' && *p <= '9'; p++)
		n = n * 10 + (unsigned)(*p - '0');
	return n ? n : dflt;
}

/* Whether kernel.bench_ctl (absent: every controller) names `name`. */
static bool ctl_wanted(const char *name)
{
	static char only[BOOT_CMDLINE_MAX];
	if (!boot_cmdline_get(&kenv.boot, "kernel.bench_ctl", only, sizeof(only)))
		return true;
	return ktest_list_has(only, name);
}

/* The tunables of a mode: the controller translated, or named by a bounce tunable
 * (pass-through context, physical addresses). */
static bool mode_config(struct dmar_config *cfg, enum bench_mode mode, struct dmar_pci_addr a)
{
	*cfg = kenv.cfg;
	cfg->nbounce = 0;
	for (unsigned i = 0; i < kenv.cfg.nbounce; i++) {
		struct dmar_pci_addr b = kenv.cfg.bounce[i];
		if (b.segment != a.segment || b.bus != a.bus || b.dev != a.dev || b.fn != a.fn)
			cfg->bounce[cfg->nbounce++] = b;
	}
	cfg->strict = mode != MODE_DEFERRED; /* deferred: translated, unloads deferred */
	if (mode == MODE_TRANSLATED || mode == MODE_DEFERRED || mode == MODE_PREMAPPED)
		return true;
	if (cfg->nbounce == DMAR_CONFIG_MAX_BOUNCE)
		return false;
	cfg->bounce[cfg->nbounce++] = a;
	return true;
}

/* A controller bound in one mode, with the tag and buffers its transfers use. */
struct bench_run {
	const struct storage_ctl_ops *ops;
	struct storage_ctl c;
	struct dmar_dma_tag *tag;  /* c.b.tag, or its 32-bit child in the bounce mode */
	struct dmar_dma_tag *child;
	struct dmar_dmamap *map;
	enum bench_mode mode;
	uint64_t wr, rd;           /* the mode's buffers */
	uint64_t held_buf;         /* premapped: what the map holds loaded (0: nothing) */
	uint32_t held_len;
	uint32_t seq;              /* bytes of a sequential transfer */
	uint64_t first, blocks;    /* the region: first lba, sectors */
};

/* One transfer as a driver does it, timing the busdma calls apart from the command. */
static int bench_io(struct bench_run *r, bool write, uint64_t lba, uint32_t len, uint64_t buf,
		    uint64_t *drv_ticks, bool check)
{
	struct blockdev *b = &r->c.b;
	const bool keep = r->mode == MODE_PREMAPPED;
	int rc;
	if (keep && (r->held_buf != buf || r->held_len != len)) {
		/* (loaded outside the timed part: once per workload) */
		if (r->held_buf && (rc = dmar_dmamap_unload(r->tag, r->map)) != 0)
			return rc;
		r->held_buf = 0;
		if ((rc = dmar_dmamap_load(r->tag, r->map, va(buf), len, 0)) != 0)
			return rc;
		r->held_buf = buf;
		r->held_len = len;
	}
	uint64_t t0 = rdtsc();
	if (!keep && (rc = dmar_dmamap_load(r->tag, r->map, va(buf), len, 0)) != 0)
		return rc;
	(void)dmar_dmamap_sync(r->tag, r->map, write ? DMAR_DMASYNC_PREWRITE : DMAR_DMASYNC_PREREAD);
	uint64_t t1 = rdtsc();
	/* The mode must be what it claims (not counted as the driver's time). */
	bool bounced = check ? dmar_dmamap_is_bounced(r->map) : r->mode == MODE_BOUNCE;
	int io = b->io(b, write, lba, len / b->sector_size, r->map);
	uint64_t t2 = rdtsc();
	(void)dmar_dmamap_sync(r->tag, r->map, write ? DMAR_DMASYNC_POSTWRITE : DMAR_DMASYNC_POSTREAD);
	rc = keep ? 0 : dmar_dmamap_unload(r->tag, r->map);
	uint64_t t3 = rdtsc();
	*drv_ticks += (t1 - t0) + (t3 - t2);
	if (bounced != (r->mode == MODE_BOUNCE)) {
		kprintf("# %s %s: a load was %sbounced\n", b->name, mode_name[r->mode],
			bounced ? "" : "not ");
		return DMAR_EINVAL;
	}
	return io ? io : rc;
}

/* The n-th block of the fixed random sequence (the same in every mode and round). */
static uint64_t rand_lba(const struct bench_run *r, uint64_t *state)
{
	uint64_t x = *state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	uint64_t per = BENCH_RAND / r->c.b.sector_size;
	return r->first + x % (r->blocks / per) * per;
}

/* One measurement: `work` for ms milliseconds (at least BENCH_MIN_IOS I/Os). */
static bool bench_work(struct ktest *t, struct bench_run *r, enum bench_work work,
		       unsigned round, unsigned ms)
{
	const bool write = work == SEQ_WRITE || work == RAND_WRITE;
	const bool seq = work == SEQ_WRITE || work == SEQ_READ;
	const uint32_t len = seq ? r->seq : BENCH_RAND;
	const uint64_t step = len / r->c.b.sector_size;
	const uint64_t buf = write ? r->wr : r->rd;
	uint64_t lba = r->first, rs = 0x9e3779b97f4a7c15ull, drv = 0, ios = 0;
	for (unsigned i = 0; i < BENCH_WARMUP + 1; i++) {
		uint64_t l = seq ? r->first : rand_lba(r, &rs), ignore = 0;
		int rc = bench_io(r, write, l, len, buf, &ignore, true);
		if (rc) {
			ktest_fail(t, __FILE__, __LINE__, "%s %s %s: warm-up I/O at lba %llu: %d",
				   r->c.b.name, mode_name[r->mode], work_name[work],
				   (unsigned long long)l, rc);
			return false;
		}
	}
	rs = 0x9e3779b97f4a7c15ull;
	const uint64_t end_ticks = (uint64_t)ms * tsc_khz;
	const uint64_t n0 = clock_now_ns(), c0 = rdtsc();
	uint64_t c = c0;
	while (ios < BENCH_MIN_IOS || c - c0 < end_ticks) {
		uint64_t l = lba;
		if (seq) {
			lba += step;
			if (lba + step > r->first + r->blocks)
				lba = r->first;
		} else {
			l = rand_lba(r, &rs);
		}
		int rc = bench_io(r, write, l, len, buf, &drv, false);
		if (rc) {
			ktest_fail(t, __FILE__, __LINE__, "%s %s %s: I/O %llu at lba %llu: %d",
				   r->c.b.name, mode_name[r->mode], work_name[work],
				   (unsigned long long)ios, (unsigned long long)l, rc);
			return false;
		}
		ios++;
		c = rdtsc();
	}
	uint64_t ns = clock_now_ns() - n0;
	uint64_t bytes = ios * len;
	uint64_t mibps_x10 = bytes * 1000000000ull / ns * 10 / 1048576;
	kprintf("# bench: ctl=%s mode=%s work=%s round=%u xfer=%u ios=%llu bytes=%llu ns=%llu "
		"mibps=%llu.%llu iops=%llu ns_per_io=%llu drv_ns_per_io=%llu\n",
		r->c.b.name, mode_name[r->mode], work_name[work], round, len,
		(unsigned long long)ios, (unsigned long long)bytes, (unsigned long long)ns,
		(unsigned long long)(mibps_x10 / 10), (unsigned long long)(mibps_x10 % 10),
		(unsigned long long)(ios * 1000000000ull / ns), (unsigned long long)(ns / ios),
		(unsigned long long)(tsc_to_ns(drv) / ios));
	return true;
}

/* A pattern written and read back through the mode: the data really moves. */
static bool bench_verify(struct ktest *t, struct bench_run *r)
{
	struct blockdev *b = &r->c.b;
	uint64_t ignore = 0;
	uint32_t seed = 0xbe4c0000u + r->mode;
	storage_fill(va(r->wr), r->seq, b->sector_size, seed, r->first);
	dmar_memset(va(r->rd), 0xa5, r->seq);
	int rc = bench_io(r, true, r->first, r->seq, r->wr, &ignore, true);
	if (!rc)
		rc = bench_io(r, false, r->first, r->seq, r->rd, &ignore, true);
	if (rc)
		ktest_fail(t, __FILE__, __LINE__, "%s %s: verify I/O: %d", b->name,
			   mode_name[r->mode], rc);
	else if (!storage_matches(va(r->rd), r->seq, b->sector_size, seed, r->first))
		ktest_fail(t, __FILE__, __LINE__, "%s %s: read back differs", b->name,
			   mode_name[r->mode]);
	return rc == 0 && !t->failed;
}

static void bench_down(struct ktest *t, struct bench_run *r)
{
	if (r->map && r->held_buf)
		CHECK_EQ(dmar_dmamap_unload(r->tag, r->map), 0);
	if (r->map)
		CHECK_EQ(dmar_dmamap_destroy(r->tag, r->map), 0);
	if (r->child)
		CHECK_EQ(dmar_dma_tag_destroy(r->child), 0);
	r->ops->down(t, &r->c);
}

/* Binds the controller in `mode` and checks that busdma gave it that mode. */
static bool bench_up(struct ktest *t, struct fixture *f, struct bench_run *r,
		     const struct bench_bufs *low, const struct bench_bufs *high)
{
	struct dmar_pci_addr a;
	struct dmar_config cfg;
	if (!r->ops->find(&a) || !mode_config(&cfg, r->mode, a)) {
		ktest_fail(t, __FILE__, __LINE__, "%s: no controller, or no room for its tunable",
			   r->ops->name);
		return false;
	}
	if (r->ops->up(t, f, &cfg, &r->c) != 0) {
		if (t->skip) /* a benchmark of a missing disk is a failure, not a skip */
			ktest_fail(t, __FILE__, __LINE__, "%s: %s", r->ops->name, t->skip);
		t->skip = 0;
		return false;
	}
	struct blockdev *b = &r->c.b;
	bool translated = r->mode == MODE_TRANSLATED || r->mode == MODE_DEFERRED ||
			  r->mode == MODE_PREMAPPED;
	enum dmar_busdma_mode want = translated ? DMAR_BUSDMA_TRANSLATE : DMAR_BUSDMA_BOUNCE;
	if (dmar_busdma_device_mode(r->c.dev) != want) {
		ktest_fail(t, __FILE__, __LINE__, "%s %s: busdma chose the other backend",
			   b->name, mode_name[r->mode]);
		return false;
	}
	struct dmar_domain *dom = dmar_busdma_device_domain(r->c.dev);
	struct dmar_domain_info info = { 0 };
	if (dom)
		dmar_domain_get_info(dom, &info);
	if (!dom || info.kind != (translated ? DMAR_DOMAIN_TRANSLATED : DMAR_DOMAIN_PASSTHROUGH)) {
		ktest_fail(t, __FILE__, __LINE__, "%s %s: the controller is in no domain of "
			   "that kind", b->name, mode_name[r->mode]);
		return false;
	}
	r->tag = b->tag;
	if (r->mode == MODE_BOUNCE) {
		struct dmar_dma_tag_params p;
		dmar_dma_tag_get_params(b->tag, &p);
		p.lowaddr = 0xffffffffull; /* a 32-bit device */
		p.highaddr = UINT64_MAX;
		int rc = dmar_dma_tag_create(0, b->tag, &p, &r->child);
		if (rc) {
			ktest_fail(t, __FILE__, __LINE__, "32-bit tag: %s", dmar_strerror(rc));
			return false;
		}
		r->tag = r->child;
	}
	int rc = dmar_dmamap_create(r->tag, 0, &r->map);
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "dmamap_create: %s", dmar_strerror(rc));
		return false;
	}
	const struct bench_bufs *bufs = r->mode == MODE_BOUNCE ? high : low;
	r->wr = bufs->wr;
	r->rd = bufs->rd;
	r->seq = b->max_bytes < BENCH_SEQ ? (uint32_t)(b->max_bytes / PAGE * PAGE) : BENCH_SEQ;
	/* The region: the last 64 MiB of the disk, above what the tests use (the whole
	 * disk when it is smaller). */
	uint64_t want_blocks = BENCH_REGION / b->sector_size;
	r->blocks = b->sectors < want_blocks ? b->sectors : want_blocks;
	r->blocks -= r->blocks % (BENCH_SEQ / b->sector_size);
	r->first = b->sectors - r->blocks;
	r->first -= r->first % (PAGE / b->sector_size);
	if (r->blocks < BENCH_SEQ / b->sector_size) {
		ktest_fail(t, __FILE__, __LINE__, "%s: a disk of %llu sectors is too small",
			   b->name, (unsigned long long)b->sectors);
		return false;
	}
	return true;
}

static bool bufs_alloc(struct bench_bufs *bb, bool high)
{
	uint64_t n = BENCH_SEQ / PAGE;
	bb->wr = high ? pmem_alloc_in(n, PAGE, SZ_4G, PMEM_NO_LIMIT) : pmem_alloc(n, PAGE, SZ_4G);
	bb->rd = high ? pmem_alloc_in(n, PAGE, SZ_4G, PMEM_NO_LIMIT) : pmem_alloc(n, PAGE, SZ_4G);
	return bb->wr && bb->rd;
}

static void bufs_free(struct bench_bufs *bb)
{
	if (bb->wr)
		pmem_free(bb->wr, BENCH_SEQ / PAGE);
	if (bb->rd)
		pmem_free(bb->rd, BENCH_SEQ / PAGE);
}

void test_storage_bench(struct ktest *t)
{
	struct fixture f;
	struct bench_bufs low = { 0 }, high = { 0 };
	const unsigned rounds = cmdline_uint("kernel.bench_rounds", 5);
	const unsigned ms = cmdline_uint("kernel.bench_ms", 300);
	if (!kenv.cfg.enable)
		SKIP("hw.dmar.enable=0: the translated mode needs remapping");
	if (fixture_up(t, &f, 0) != 0)
		return;
	calibrate_tsc();
	if (!bufs_alloc(&low, false)) {
		ktest_fail(t, __FILE__, __LINE__, "no memory below 4 GiB");
		goto out;
	}
	if (pmem_ram_top() <= SZ_4G || !bufs_alloc(&high, true)) {
		ktest_fail(t, __FILE__, __LINE__, "the bounce mode needs RAM above 4 GiB (-m 5G)");
		goto out;
	}
	kprintf("# bench: rounds=%u ms=%u region=%llu seq=%u rand=%u tsc_khz=%llu\n", rounds,
		ms, (unsigned long long)BENCH_REGION, BENCH_SEQ, BENCH_RAND,
		(unsigned long long)tsc_khz);
	for (unsigned round = 1; round <= rounds && !t->failed; round++) {
		for (unsigned k = 0; k < DMAR_ARRAY_SIZE(bench_ctls) && !t->failed; k++) {
			if (!ctl_wanted(bench_ctls[k]->name))
				continue;
			for (unsigned m = 0; m < NMODES && !t->failed; m++) {
				/* Each round starts with another mode: none always goes first. */
				struct bench_run r = { .ops = bench_ctls[k],
						       .mode = (enum bench_mode)((m + round) % NMODES) };
				if (bench_up(t, &f, &r, &low, &high) && bench_verify(t, &r)) {
					if (round == 1 && m == 0)
						kprintf("# bench: ctl=%s largest=%llu seq=%u "
							"region_lba=%llu region_sectors=%llu\n",
							r.c.b.name,
							(unsigned long long)r.c.b.max_bytes, r.seq,
							(unsigned long long)r.first,
							(unsigned long long)r.blocks);
					for (unsigned w = 0; w < NWORKS && !t->failed; w++)
						bench_work(t, &r, (enum bench_work)w, round, ms);
				}
				bench_down(t, &r);
				expect_no_fault(t, &f);
			}
		}
	}
out:
	bufs_free(&low);
	bufs_free(&high);
	fixture_down(t, &f);
}
