/*
 * The bus-master IDE driver (piix3-ide, 8086:7010) on busdma: read/write/verify through
 * every kind of buffer with the PRD rules stated in the tags (64 KiB entries that never
 * cross a 64 KiB boundary, 32-bit addresses), and the stale-IOVA bug: a command is
 * started again on a PRD table that still names an unloaded buffer.
 * Needs: -device piix3-ide,id=pi -drive if=none,id=d1,file=IMG,format=raw
 *        -device ide-hd,drive=d1,bus=pi.0
 */
#include "ata.h"
#include "dmar/busdma.h"
#include "fixture.h"
#include "pmem.h"
#include "regs.h"
#include "storage.h"
#include "tests.h"
#include "util.h"

#define ATA_LBA_BASE 4096u   /* storage_rw_verify's regions start here */
#define ATA_LBA_STALE 2048u  /* the stale-IOVA test */
#define ATA_LBA_HIGH 3072u   /* buffers above 4 GiB */

struct ata_env {
	struct dmar_busdma *bus;
	struct dmar_busdma_dev *dev;
	struct ata a;
	bool attached;
};

static struct dmar_pci_addr pci_addr(const struct pci_dev *d)
{
	struct dmar_pci_addr a = { 0, d->bus, d->dev, d->fn };
	return a;
}

static int ata_env_bind(struct ktest *t, struct fixture *f, const struct dmar_config *cfg,
			const struct pci_dev *d, struct ata_env *e);

/* Binds the driver under busdma. Returns 1 with t->skip set when the machine has no
 * bus-master IDE controller or no disk on it, 0 when bound, -1 on failure. */
static int ata_env_up(struct ktest *t, struct fixture *f, struct ata_env *e)
{
	const struct pci_dev *d = ata_find(0);
	if (!d) {
		t->skip = "no bus-master IDE controller (PCI class 01:01, e.g. -device piix3-ide)";
		return 1;
	}
	if (fixture_up(t, f, 0) != 0)
		return -1;
	return ata_env_bind(t, f, &kenv.cfg, d, e);
}

/* busdma for f->sys with the tunables `cfg`, the driver bound to `d` under it: 0 when
 * bound, 1 with t->skip set when `d` has no disk, -1 on failure. */
static int ata_env_bind(struct ktest *t, struct fixture *f, const struct dmar_config *cfg,
			const struct pci_dev *d, struct ata_env *e)
{
	int rc = dmar_busdma_create(&kenv.os, cfg, f->sys, &e->bus);
	if (!rc)
		rc = dmar_busdma_device(e->bus, pci_addr(d), pci_bridge_buses, 0, &e->dev);
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "busdma for %02x:%02x.%x: %s", d->bus, d->dev,
			   d->fn, dmar_strerror(rc));
		return -1;
	}
	rc = ata_attach(&e->a, d, e->dev);
	if (rc == DMAR_ENODEV) {
		t->skip = "no ATA disk on the IDE controller (-device ide-hd,bus=pi.0)";
		return 1;
	}
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "ata_attach: %s", dmar_strerror(rc));
		return -1;
	}
	e->attached = true;
	struct ata *a = &e->a;
	kprintf("# ata %02x:%02x.%x (sid %#x, %s): channel %u drive %u (task file %#x, "
		"bus master %#x): \"%s\", %llu sectors of %u bytes%s\n", d->bus, d->dev, d->fn,
		pci_sid(d),
		dmar_busdma_device_mode(e->dev) == DMAR_BUSDMA_TRANSLATE ? "translated" : "bounced",
		a->channel, a->drive, a->cmd, a->bm, a->model, (unsigned long long)a->sectors,
		a->sector_size, a->lba48 ? ", 48-bit LBA" : "");
	return 0;
}

/* Undoes ata_env_bind. */
static void ata_env_release(struct ktest *t, struct ata_env *e)
{
	if (e->attached)
		ata_detach(&e->a);
	if (e->dev)
		CHECK_EQ(dmar_busdma_device_destroy(e->dev), 0);
	if (e->bus)
		CHECK_EQ(dmar_busdma_destroy(e->bus), 0);
}

static void ata_env_down(struct ktest *t, struct fixture *f, struct ata_env *e)
{
	ata_env_release(t, e);
	fixture_down(t, f);
}

static int ata_io(struct blockdev *b, bool write, uint64_t lba, uint32_t count,
		  struct dmar_dmamap *map)
{
	return ata_rw(b->drv, write, lba, count, map);
}

/* The disk as storage.h sees it. */
static struct blockdev ata_blockdev(struct ata *a)
{
	return (struct blockdev){ .name = "ata", .tag = a->data_tag,
				  .sector_size = a->sector_size, .sectors = a->sectors,
				  .max_bytes = ATA_MAX_BYTES, .io = ata_io, .drv = a };
}

/* Buffers above 4 GiB: the bus master's PRD entries are 32 bits, so every entry
 * stays below 4 GiB (bounced there when translation is off). */
static void ata_segs_below_4g(struct ktest *t, const struct blockdev *b,
			      const struct dmar_dmamap *map)
{
	(void)b;
	const struct dmar_dma_segment *s = dmar_dmamap_segs(map);
	for (unsigned i = 0; i < dmar_dmamap_nsegs(map); i++)
		CHECK(s[i].addr + s[i].len - 1 <= 0xffffffffull);
}

/* storage_fresh_io on the env's disk. */
static bool fresh_io(struct ktest *t, struct ata_env *e, bool write, uint64_t lba,
		     uint64_t len, uint32_t seed, uint64_t min)
{
	struct blockdev b = ata_blockdev(&e->a);
	return storage_fresh_io(t, &b, write, lba, len, seed, min, ata_segs_below_4g);
}

/* A load that straddles 64 KiB boundaries is cut there, into entries of at most 64 KiB,
 * all below 4 GiB. */
static void check_segments(struct ktest *t, struct ata *a)
{
	struct dmar_dmamap *map = 0;
	uint64_t len = 3 * ATA_PRD_MAX;
	uint64_t pa = pmem_alloc(len / PAGE + 1, PAGE, PMEM_NO_LIMIT);
	if (!pa || dmar_dmamap_create(a->data_tag, 0, &map)) {
		ktest_fail(t, __FILE__, __LINE__, "no memory");
		goto out;
	}
	int rc = dmar_dmamap_load(a->data_tag, map, va(pa) + 0x200, len, 0);
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "load: %s", dmar_strerror(rc));
		goto out;
	}
	const struct dmar_dma_segment *s = dmar_dmamap_segs(map);
	uint64_t total = 0;
	for (unsigned i = 0; i < dmar_dmamap_nsegs(map); i++) {
		CHECK(s[i].len <= ATA_PRD_MAX);
		CHECK((s[i].addr & (ATA_PRD_MAX - 1)) + s[i].len <= ATA_PRD_MAX);
		CHECK(s[i].addr + s[i].len - 1 <= 0xffffffffull);
		CHECK_EQ(s[i].addr & 1, 0);
		total += s[i].len;
	}
	CHECK_EQ(total, len);
	CHECK(dmar_dmamap_nsegs(map) >= 4); /* 192 KiB from an unaligned start */
	kprintf("# ata: 192 KiB from offset 0x200: %u PRD entries\n", dmar_dmamap_nsegs(map));
	CHECK_EQ(dmar_dmamap_unload(a->data_tag, map), 0);
out:
	if (map)
		CHECK_EQ(dmar_dmamap_destroy(a->data_tag, map), 0);
	if (pa)
		pmem_free(pa, len / PAGE + 1);
}

/* Binds the controller, states the bus master's PRD rules in the tags, checks how a
 * load is cut, and runs the shared read/write/verify (28-bit commands, and the EXT
 * forms for the largest transfer). */
void test_ata_rw_verify(struct ktest *t)
{
	struct fixture f;
	struct ata_env e = { 0 };
	struct ata *a = &e.a;
	int up = ata_env_up(t, &f, &e);
	if (up == 1 && !e.bus)
		return; /* no controller: nothing was set up */
	if (up != 0)
		goto out;
	struct dmar_dma_tag_params p;
	dmar_dma_tag_get_params(a->data_tag, &p);
	CHECK_EQ(p.boundary, 65536);
	CHECK_EQ(p.maxsegsz, 65536);
	CHECK_EQ(p.lowaddr, 0xffffffffull);
	dmar_dma_tag_get_params(a->prd_tag, &p);
	CHECK_EQ(p.boundary, 65536);
	CHECK_EQ(a->prdt_bus & 3, 0);
	CHECK((a->prdt_bus & 0xffff) + 8 * ATA_PRDS <= 0x10000);
	check_segments(t, a);
	struct blockdev b = ata_blockdev(a);
	storage_rw_verify(t, &f, &b, ATA_LBA_BASE);
	/* Buffers above 4 GiB when the machine has RAM there (-m 5G). */
	if (pmem_ram_top() > SZ_4G) {
		if (fresh_io(t, &e, true, ATA_LBA_HIGH, 16 * PAGE, 0x4100, SZ_4G) &&
		    fresh_io(t, &e, false, ATA_LBA_HIGH, 16 * PAGE, 0x4100, SZ_4G)) {
			struct blockdev hb = { .name = "ata", .sector_size = a->sector_size };
			storage_disk_check(&hb, ATA_LBA_HIGH, 16 * PAGE / a->sector_size, 0x4100);
		}
	} else {
		kprintf("# ata: no RAM above 4 GiB (-m 5G): no buffers there\n");
	}
	if (f.sys && dmar_busdma_device_mode(e.dev) == DMAR_BUSDMA_TRANSLATE)
		expect_no_fault(t, &f);
out:
	ata_env_down(t, &f, &e);
}

/* One stale restart of the command (its PRD table was prepared for `old`, which is
 * unloaded now): the DMA faults, the canary at the old buffer stays, the driver
 * recovers the channel. */
static void stale_round(struct ktest *t, struct fixture *f, struct ata_env *e, bool write,
			uint64_t iova, uint64_t old, uint64_t len)
{
	struct ata *a = &e->a;
	dmar_memset(va(old), STORAGE_CANARY, (size_t)len);
	/* The bug: the PRD table still names iova. */
	int rc = ata_start(a, write, ATA_LBA_STALE, (uint32_t)(len / a->sector_size));
	if (!rc)
		rc = ata_wait(a);
	kprintf("# ata: stale %s at IOVA %#llx ended with %d (%s), status %#x, error %#x, "
		"BMISX %#x\n", write ? "WRITE" : "READ", (unsigned long long)iova, rc,
		rc ? dmar_strerror(rc) : "no error reported", a->last_status, a->last_error,
		a->last_bmisx);
	/* A device write to memory is a DMA write; a disk WRITE makes the device read. */
	bool faulted = storage_stale_fault(t, f, pci_sid(a->pci), iova, write);
	CHECK(all_bytes(old, len, STORAGE_CANARY));
	if (rc || faulted) {
		rc = ata_recover(a);
		if (rc)
			ktest_fail(t, __FILE__, __LINE__, "channel recovery: %s", dmar_strerror(rc));
		else
			kprintf("# ata: bus master stopped, channel %u soft reset (SRST)\n",
				a->channel);
	} else {
		ktest_fail(t, __FILE__, __LINE__, "the stale command went unnoticed");
	}
}

/* The classic driver bug, made visible by translation: the PRD table is written for a
 * buffer, the command runs, the buffer is unloaded, and the command is started again on
 * the same PRD table. Once as a READ (the bus master writes the stale IOVA) and once as
 * a WRITE (it reads it). Each time the unit blocks and records the DMA (the
 * controller's sid, the IOVA, the direction), the old buffer keeps its canary, the
 * driver learns of it and resets the channel, and the next commands move verified
 * data. */
void test_ata_stale_iova_faults(struct ktest *t)
{
	struct fixture f;
	struct ata_env e = { 0 };
	struct ata *a = &e.a;
	struct dmar_dmamap *map = 0;
	uint64_t old = 0;
	const uint64_t len = 4 * PAGE, lba = ATA_LBA_STALE;
	const struct pci_dev *d = ata_find(0);
	if (d && !kenv.cfg.enable)
		SKIP("hw.dmar.enable=0: no translation, a stale bus address is not caught");
	if (d && dmar_config_device_bounces(&kenv.cfg, pci_addr(d)))
		SKIP("hw.busdma.pciD:B:S:F.bounce=1 names the IDE controller: it is not "
		     "translated, a stale bus address is not caught");
	int up = ata_env_up(t, &f, &e);
	if (up == 1 && !e.bus)
		return;
	if (up != 0)
		goto out;
	const uint32_t count = (uint32_t)(len / a->sector_size);
	ENSURE(dmar_busdma_device_mode(e.dev) == DMAR_BUSDMA_TRANSLATE);
	old = pmem_alloc(len / PAGE, PAGE, PMEM_NO_LIMIT);
	ENSURE(old);
	ENSURE(fresh_io(t, &e, true, lba, len, 0x57a1e, 0));

	for (int round = 0; round < 2; round++) {
		bool write = round == 1;
		if (write)
			storage_fill(va(old), len, a->sector_size, 0x57a1e, lba);
		TRY(dmar_dmamap_create(a->data_tag, 0, &map));
		TRY(dmar_dmamap_load(a->data_tag, map, va(old), len, 0));
		ENSURE(dmar_dmamap_nsegs(map) >= 1);
		uint64_t iova = dmar_dmamap_segs(map)[0].addr;
		(void)dmar_dmamap_sync(a->data_tag, map,
				       write ? DMAR_DMASYNC_PREWRITE : DMAR_DMASYNC_PREREAD);
		TRY(ata_rw(a, write, lba, count, map));
		(void)dmar_dmamap_sync(a->data_tag, map,
				       write ? DMAR_DMASYNC_POSTWRITE : DMAR_DMASYNC_POSTREAD);
		CHECK(storage_matches(va(old), len, a->sector_size, 0x57a1e, lba));
		TRY(dmar_dmamap_unload(a->data_tag, map));
		TRY(dmar_dmamap_destroy(a->data_tag, map));
		map = 0;
		expect_no_fault(t, &f);

		stale_round(t, &f, &e, write, iova, old, len);
		/* After recovery: a READ gets the data back intact. A stale WRITE put
		 * whatever the blocked reads returned on the disk, never the unloaded
		 * buffer's bytes; the data is written again. */
		if (write) {
			CHECK(fresh_io(t, &e, false, lba, len, STORAGE_CANARY_SEED, 0));
			CHECK(fresh_io(t, &e, true, lba, len, 0x57a1e, 0));
		}
		CHECK(fresh_io(t, &e, false, lba, len, 0x57a1e, 0));
	}
	CHECK(fresh_io(t, &e, true, lba, len, 0x57a1f, 0));
	if (fresh_io(t, &e, false, lba, len, 0x57a1f, 0)) {
		struct blockdev b = ata_blockdev(a);
		storage_disk_check(&b, lba, count, 0x57a1f);
	}
	expect_no_fault(t, &f);
out:
	if (map) {
		(void)dmar_dmamap_unload(a->data_tag, map);
		(void)dmar_dmamap_destroy(a->data_tag, map);
	}
	if (old)
		pmem_free(old, len / PAGE);
	ata_env_down(t, &f, &e);
}

/* The benchmark's view of the controller (storage.h): the setup of the tests above. */
static struct ata_env ata_bench_env;

static bool ata_ctl_find(struct dmar_pci_addr *addr)
{
	const struct pci_dev *d = ata_find(0);
	if (d)
		*addr = pci_addr(d);
	return d != 0;
}

static int ata_ctl_up(struct ktest *t, struct fixture *f, const struct dmar_config *cfg,
		      struct storage_ctl *c)
{
	struct ata_env *e = &ata_bench_env;
	*e = (struct ata_env){ 0 };
	c->state = e;
	const struct pci_dev *d = ata_find(0);
	if (!d) {
		t->skip = "no bus-master IDE controller (PCI class 01:01, e.g. -device piix3-ide)";
		return 1;
	}
	int rc = ata_env_bind(t, f, cfg, d, e);
	if (rc == 0) {
		c->b = ata_blockdev(&e->a);
		c->dev = e->dev;
	}
	return rc;
}

static void ata_ctl_down(struct ktest *t, struct storage_ctl *c)
{
	if (c->state)
		ata_env_release(t, c->state);
	c->state = 0;
}

const struct storage_ctl_ops storage_ctl_ata = {
	.name = "ata", .find = ata_ctl_find, .up = ata_ctl_up, .down = ata_ctl_down,
};
