/*
 * The AHCI driver (ich9-ahci, q35's 00:1f.2) on busdma: read/write/verify through every
 * kind of buffer, several command slots in flight at once, and the stale-IOVA bug: a
 * command whose PRD table still names an unloaded buffer is issued again.
 * Needs a disk: -drive if=none,id=d0,file=IMG,format=raw -device ide-hd,drive=d0,bus=ide.0
 */
#include "ahci.h"
#include "dmar/busdma.h"
#include "fixture.h"
#include "pmem.h"
#include "regs.h"
#include "storage.h"
#include "tests.h"
#include "util.h"

#define AHCI_LBA_BASE 4096u   /* storage_rw_verify's regions start here */
#define AHCI_LBA_MULTI 256u   /* the multi-slot commands, below them */
#define AHCI_LBA_STALE 2048u  /* the stale-IOVA test */
#define AHCI_LBA_HIGH 3072u   /* buffers above 4 GiB */
#define MULTI 6u              /* commands in flight together */

struct ahci_env {
	struct dmar_busdma *bus;
	struct dmar_busdma_dev *dev;
	struct ahci a;
	bool attached;
};

static struct dmar_pci_addr pci_addr(const struct pci_dev *d)
{
	struct dmar_pci_addr a = { 0, d->bus, d->dev, d->fn };
	return a;
}

static int ahci_env_bind(struct ktest *t, struct fixture *f, const struct dmar_config *cfg,
			 const struct pci_dev *d, struct ahci_env *e);

/* Binds the driver under busdma. Returns 1 with t->skip set when the machine has no
 * AHCI controller or no disk on it, 0 when bound, -1 on failure. */
static int ahci_env_up(struct ktest *t, struct fixture *f, struct ahci_env *e)
{
	const struct pci_dev *d = ahci_find(0);
	if (!d) {
		t->skip = "no AHCI controller (PCI class 01:06:01) on this machine";
		return 1;
	}
	if (fixture_up(t, f, 0) != 0)
		return -1;
	return ahci_env_bind(t, f, &kenv.cfg, d, e);
}

/* busdma for f->sys with the tunables `cfg`, the driver bound to `d` under it: 0 when
 * bound, 1 with t->skip set when `d` has no disk, -1 on failure. */
static int ahci_env_bind(struct ktest *t, struct fixture *f, const struct dmar_config *cfg,
			 const struct pci_dev *d, struct ahci_env *e)
{
	int rc = dmar_busdma_create(&kenv.os, cfg, f->sys, &e->bus);
	if (!rc)
		rc = dmar_busdma_device(e->bus, pci_addr(d), pci_bridge_buses, 0, &e->dev);
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "busdma for %02x:%02x.%x: %s", d->bus, d->dev,
			   d->fn, dmar_strerror(rc));
		return -1;
	}
	rc = ahci_attach(&e->a, d, e->dev);
	if (rc == DMAR_ENODEV) {
		t->skip = "no disk on the AHCI controller (-device ide-hd,bus=ide.N)";
		return 1;
	}
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "ahci_attach: %s", dmar_strerror(rc));
		return -1;
	}
	e->attached = true;
	struct ahci *a = &e->a;
	kprintf("# ahci %02x:%02x.%x (sid %#x, %s): CAP %#x, %u slots, port %u: \"%s\", "
		"%llu sectors of %u bytes\n", d->bus, d->dev, d->fn, pci_sid(d),
		dmar_busdma_device_mode(e->dev) == DMAR_BUSDMA_TRANSLATE ? "translated" : "bounced",
		a->cap, a->nslots, a->port, a->model, (unsigned long long)a->sectors,
		a->sector_size);
	return 0;
}

/* Undoes ahci_env_bind. */
static void ahci_env_release(struct ktest *t, struct ahci_env *e)
{
	if (e->attached)
		ahci_detach(&e->a);
	if (e->dev)
		CHECK_EQ(dmar_busdma_device_destroy(e->dev), 0);
	if (e->bus)
		CHECK_EQ(dmar_busdma_destroy(e->bus), 0);
}

static void ahci_env_down(struct ktest *t, struct fixture *f, struct ahci_env *e)
{
	ahci_env_release(t, e);
	fixture_down(t, f);
}

static int ahci_io(struct blockdev *b, bool write, uint64_t lba, uint32_t count,
		   struct dmar_dmamap *map)
{
	return ahci_rw(b->drv, write, lba, count, map);
}

/* The disk as storage.h sees it. */
static struct blockdev ahci_blockdev(struct ahci *a)
{
	return (struct blockdev){ .name = "ahci", .tag = a->data_tag,
				  .sector_size = a->sector_size, .sectors = a->sectors,
				  .max_bytes = AHCI_MAX_BYTES, .io = ahci_io, .drv = a };
}

/* Buffers above 4 GiB: with CAP.S64A (64-bit PRD addresses) nothing is bounced. */
static void ahci_segs_not_bounced(struct ktest *t, const struct blockdev *b,
				  const struct dmar_dmamap *map)
{
	const struct ahci *a = b->drv;
	if (a->cap & (1u << 31))
		CHECK(!dmar_dmamap_is_bounced(map));
}

/* storage_fresh_io on the env's disk. */
static bool fresh_io(struct ktest *t, struct ahci_env *e, bool write, uint64_t lba,
		     uint64_t len, uint32_t seed, uint64_t min)
{
	struct blockdev b = ahci_blockdev(&e->a);
	return storage_fresh_io(t, &b, write, lba, len, seed, min, ahci_segs_not_bounced);
}

/* MULTI commands of different sizes, each in its own slot, issued with one PxCI write
 * and waited for together: first all writes, then all reads into fresh buffers. */
static void multi_slot(struct ktest *t, struct ahci_env *e, struct blockdev *b)
{
	struct ahci *a = &e->a;
	struct dmar_dmamap *map[MULTI] = { 0 };
	uint64_t pa[MULTI] = { 0 }, len[MULTI], lba[MULTI];
	uint32_t mask = 0;
	for (unsigned i = 0; i < MULTI; i++) {
		len[i] = (i + 1) * 2 * PAGE + (i & 1) * a->sector_size;
		lba[i] = AHCI_LBA_MULTI + i * 128;
		mask |= 1u << i;
		pa[i] = pmem_alloc(len[i] / PAGE + 1, PAGE, PMEM_NO_LIMIT);
		if (!pa[i] || dmar_dmamap_create(b->tag, 0, &map[i])) {
			ktest_fail(t, __FILE__, __LINE__, "no memory for command %u", i);
			goto out;
		}
	}
	for (int pass = 0; pass < 2; pass++) {
		bool write = pass == 0;
		for (unsigned i = 0; i < MULTI; i++) {
			if (write)
				storage_fill(va(pa[i]), len[i], a->sector_size, 0x3100 + i, lba[i]);
			else
				dmar_memset(va(pa[i]), 0xa5, (size_t)len[i]);
			int rc = dmar_dmamap_load(b->tag, map[i], va(pa[i]), len[i], 0);
			if (!rc)
				rc = dmar_dmamap_sync(b->tag, map[i], write ? DMAR_DMASYNC_PREWRITE
									    : DMAR_DMASYNC_PREREAD);
			if (!rc)
				rc = ahci_prepare(a, i, write, lba[i], (uint32_t)(len[i] / a->sector_size),
						  map[i]);
			if (rc) {
				ktest_fail(t, __FILE__, __LINE__, "command %u: %s", i, dmar_strerror(rc));
				goto out;
			}
		}
		ahci_issue(a, mask);
		int rc = ahci_wait(a, mask);
		if (rc) {
			ktest_fail(t, __FILE__, __LINE__, "%u %s commands together: %s (PxIS %#x, "
				   "PxTFD %#x)", MULTI, write ? "WRITE" : "READ", dmar_strerror(rc),
				   a->last_is, a->last_tfd);
			goto out;
		}
		for (unsigned i = 0; i < MULTI; i++) {
			CHECK_EQ(ahci_prdbc(a, i), len[i]);
			(void)dmar_dmamap_sync(b->tag, map[i], write ? DMAR_DMASYNC_POSTWRITE
								      : DMAR_DMASYNC_POSTREAD);
			CHECK_EQ(dmar_dmamap_unload(b->tag, map[i]), 0);
			if (write)
				continue;
			if (storage_matches(va(pa[i]), len[i], a->sector_size, 0x3100 + i, lba[i]))
				storage_disk_check(b, lba[i], len[i] / a->sector_size, 0x3100 + i);
			else
				ktest_fail(t, __FILE__, __LINE__, "slot %u read back differs", i);
		}
		kprintf("# ahci: %u %s commands in slots 0..%u completed together\n", MULTI,
			write ? "WRITE DMA EXT" : "READ DMA EXT", MULTI - 1);
	}
out:
	for (unsigned i = 0; i < MULTI; i++) {
		if (map[i]) {
			(void)dmar_dmamap_unload(b->tag, map[i]);
			CHECK_EQ(dmar_dmamap_destroy(b->tag, map[i]), 0);
		}
		if (pa[i])
			pmem_free(pa[i], len[i] / PAGE + 1);
	}
}

/* Binds the HBA, states its constraints in the tags (CAP.S64A decides lowaddr), runs
 * the shared read/write/verify and then MULTI commands in flight together. */
void test_ahci_rw_verify(struct ktest *t)
{
	struct fixture f;
	struct ahci_env e = { 0 };
	int up = ahci_env_up(t, &f, &e);
	if (up == 1 && !e.bus)
		return; /* no controller: nothing was set up */
	if (up != 0)
		goto out;
	struct ahci *a = &e.a;
	struct dmar_dma_tag_params p;
	dmar_dma_tag_get_params(a->data_tag, &p);
	CHECK_EQ(p.lowaddr, (a->cap >> 31) ? UINT64_MAX : 0xffffffffull);
	CHECK_EQ(p.maxsegsz, AHCI_PRD_MAX);
	CHECK_EQ(p.alignment, 2);
	CHECK(a->nslots >= MULTI);
	struct blockdev b = ahci_blockdev(a);
	storage_rw_verify(t, &f, &b, AHCI_LBA_BASE);
	/* Buffers above 4 GiB when the machine has RAM there (-m 5G). */
	if (pmem_ram_top() > SZ_4G) {
		if (fresh_io(t, &e, true, AHCI_LBA_HIGH, 16 * PAGE, 0x4100, SZ_4G) &&
		    fresh_io(t, &e, false, AHCI_LBA_HIGH, 16 * PAGE, 0x4100, SZ_4G)) {
			struct blockdev hb = { .name = "ahci", .sector_size = a->sector_size };
			storage_disk_check(&hb, AHCI_LBA_HIGH, 16 * PAGE / a->sector_size, 0x4100);
		}
	} else {
		kprintf("# ahci: no RAM above 4 GiB (-m 5G): no buffers there\n");
	}
	multi_slot(t, &e, &b);
	if (f.sys && dmar_busdma_device_mode(e.dev) == DMAR_BUSDMA_TRANSLATE)
		expect_no_fault(t, &f);
out:
	ahci_env_down(t, &f, &e);
}

/* One stale resubmission of slot 1 (prepared for `old`, which is unloaded now): the DMA
 * faults, the canary at the old buffer stays, the driver recovers the port. */
static void stale_round(struct ktest *t, struct fixture *f, struct ahci_env *e, bool write,
			uint64_t iova, uint64_t old, uint64_t len)
{
	struct ahci *a = &e->a;
	dmar_memset(va(old), STORAGE_CANARY, (size_t)len);
	ahci_issue(a, 1u << 1); /* the bug: the PRD table still names iova */
	int rc = ahci_wait(a, 1u << 1);
	kprintf("# ahci: stale %s at IOVA %#llx ended with %d (%s), PRDBC %u, PxIS %#x, "
		"PxTFD %#x\n", write ? "WRITE" : "READ", (unsigned long long)iova, rc,
		rc ? dmar_strerror(rc) : "no error reported", ahci_prdbc(a, 1), a->last_is,
		a->last_tfd);
	/* A device write to memory is a DMA write; a disk WRITE makes the device read. */
	bool faulted = storage_stale_fault(t, f, pci_sid(a->pci), iova, write);
	CHECK(all_bytes(old, len, STORAGE_CANARY));
	if (rc || faulted) {
		rc = ahci_recover(a);
		if (rc)
			ktest_fail(t, __FILE__, __LINE__, "port recovery: %s", dmar_strerror(rc));
		else
			kprintf("# ahci: port %u reset (COMRESET) and restarted\n", a->port);
	} else {
		ktest_fail(t, __FILE__, __LINE__, "the stale command went unnoticed");
	}
}

/* The classic driver bug, made visible by translation: slot 1 is prepared for a buffer,
 * runs, the buffer is unloaded, and slot 1 is issued again as it was. Once as a READ
 * (the HBA writes the stale IOVA) and once as a WRITE (it reads it). Each time the
 * unit blocks and records the DMA (the controller's sid, the IOVA, the direction), the
 * old buffer keeps its canary, the driver learns of it and resets the port, and the
 * next commands move verified data. */
void test_ahci_stale_iova_faults(struct ktest *t)
{
	struct fixture f;
	struct ahci_env e = { 0 };
	struct ahci *a = &e.a;
	struct dmar_dmamap *map = 0;
	uint64_t old = 0;
	const uint64_t len = 4 * PAGE, lba = AHCI_LBA_STALE;
	const struct pci_dev *d = ahci_find(0);
	if (d && !kenv.cfg.enable)
		SKIP("hw.dmar.enable=0: no translation, a stale bus address is not caught");
	if (d && dmar_config_device_bounces(&kenv.cfg, pci_addr(d)))
		SKIP("hw.busdma.pciD:B:S:F.bounce=1 names the AHCI controller: it is not "
		     "translated, a stale bus address is not caught");
	int up = ahci_env_up(t, &f, &e);
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
		TRY(ahci_prepare(a, 1, write, lba, count, map));
		ahci_issue(a, 1u << 1);
		TRY(ahci_wait(a, 1u << 1));
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
		struct blockdev b = ahci_blockdev(a);
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
	ahci_env_down(t, &f, &e);
}

/* The benchmark's view of the controller (storage.h): the setup of the tests above. */
static struct ahci_env ahci_bench_env;

static bool ahci_ctl_find(struct dmar_pci_addr *addr)
{
	const struct pci_dev *d = ahci_find(0);
	if (d)
		*addr = pci_addr(d);
	return d != 0;
}

static int ahci_ctl_up(struct ktest *t, struct fixture *f, const struct dmar_config *cfg,
		       struct storage_ctl *c)
{
	struct ahci_env *e = &ahci_bench_env;
	*e = (struct ahci_env){ 0 };
	c->state = e;
	const struct pci_dev *d = ahci_find(0);
	if (!d) {
		t->skip = "no AHCI controller (PCI class 01:06:01) on this machine";
		return 1;
	}
	int rc = ahci_env_bind(t, f, cfg, d, e);
	if (rc == 0) {
		c->b = ahci_blockdev(&e->a);
		c->dev = e->dev;
	}
	return rc;
}

static void ahci_ctl_down(struct ktest *t, struct storage_ctl *c)
{
	if (c->state)
		ahci_env_release(t, c->state);
	c->state = 0;
}

const struct storage_ctl_ops storage_ctl_ahci = {
	.name = "ahci", .find = ahci_ctl_find, .up = ahci_ctl_up, .down = ahci_ctl_down,
};
