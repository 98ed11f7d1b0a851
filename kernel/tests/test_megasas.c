/*
 * The MegaRAID driver (kernel/drivers/megasas.c) on QEMU's megasas / megasas-gen2
 * controllers with a SCSI disk as logical drive 0, through busdma: the storage
 * read/write/verify test, and a stale command posted again after its frame (with the
 * SGL) and its data were unloaded.
 *
 * QEMU: -drive if=none,id=m0,file=IMG,format=raw -device megasas,id=ms
 *       -device scsi-hd,drive=m0,bus=ms.0,scsi-id=0,lun=0
 */
#include "dmar/busdma.h"
#include "clock.h"
#include "megasas.h"
#include "storage.h"
#include "tests.h"
#include "util.h"

#define MEGASAS_RW_LBA 0x800ull     /* storage_rw_verify's regions start here */
#define MEGASAS_STALE_LBA 0x8000ull /* the stale-command test's blocks */

struct megasas_env {
	struct dmar_busdma *bus;
	struct dmar_busdma_dev *dev;
	struct dmar_dma_tag *tag;
	struct megasas m;
	bool bound;
	struct blockdev b;
};

static int megasas_io(struct blockdev *b, bool write, uint64_t lba, uint32_t count,
		      struct dmar_dmamap *map)
{
	return megasas_rw(b->drv, write, lba, count, map);
}

static struct dmar_pci_addr megasas_addr(const struct megasas *m)
{
	struct dmar_pci_addr a = { 0, m->pci->bus, m->pci->dev, m->pci->fn };
	return a;
}

/* busdma as test_busdma.c sets it up (with the tunables `cfg`), the driver bound, the
 * data tag made. */
static int megasas_env_up_cfg(struct ktest *t, struct fixture *f, const struct dmar_config *cfg,
			      struct megasas_env *e)
{
	int rc = dmar_busdma_create(&kenv.os, cfg, f->sys, &e->bus);
	if (!rc)
		rc = dmar_busdma_device(e->bus, megasas_addr(&e->m), pci_bridge_buses, 0, &e->dev);
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "busdma for the controller: %s", dmar_strerror(rc));
		return rc;
	}
	bool bounce = !cfg->enable || dmar_config_device_bounces(cfg, megasas_addr(&e->m));
	CHECK(dmar_busdma_device_mode(e->dev) ==
	      (bounce ? DMAR_BUSDMA_BOUNCE : DMAR_BUSDMA_TRANSLATE));
	CHECK_EQ(dmar_busdma_device_sid(e->dev), e->m.sid);
	uint64_t t0 = clock_now_ns();
	rc = megasas_init(&e->m, e->dev);
	if (rc == DMAR_ENODEV) {
		t->skip = "no disk at scsi-id 0 of the MegaRAID controller (scsi-hd)";
		return rc;
	}
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "megasas_init: %d (cmd_status %#x scsi_status %#x)",
			   rc, e->m.last_cmd_status, e->m.last_scsi_status);
		return rc;
	}
	e->bound = true;
	struct dmar_dma_tag_params p;
	megasas_data_tag_params(&e->m, &p);
	kprintf("# megasas %02x:%02x.%x %04x:%04x (%s): \"%s\", firmware %d commands %u SGEs, "
		"drive 0: %llu blocks of %u bytes; %u segments, largest transfer %llu bytes; "
		"up in %llu ms\n",
		e->m.pci->bus, e->m.pci->dev, e->m.pci->fn, e->m.pci->vendor, e->m.pci->device,
		bounce ? "bounced" : "translated", e->m.product, (int)e->m.max_cmds,
		e->m.max_sge, (unsigned long long)e->m.blocks, e->m.block_size, p.nsegments,
		(unsigned long long)p.maxsize,
		(unsigned long long)((clock_now_ns() - t0) / 1000000));
	rc = dmar_dma_tag_create(e->dev, 0, &p, &e->tag);
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "data tag: %s", dmar_strerror(rc));
		return rc;
	}
	e->b = (struct blockdev){ .name = "megasas", .tag = e->tag,
				  .sector_size = e->m.block_size, .sectors = e->m.blocks,
				  .max_bytes = p.maxsize, .io = megasas_io, .drv = &e->m };
	return 0;
}

static int megasas_env_up(struct ktest *t, struct fixture *f, struct megasas_env *e)
{
	return megasas_env_up_cfg(t, f, &kenv.cfg, e);
}

static void megasas_env_down(struct ktest *t, struct megasas_env *e)
{
	if (e->bound)
		megasas_detach(&e->m);
	if (e->tag)
		CHECK_EQ(dmar_dma_tag_destroy(e->tag), 0);
	if (e->dev)
		CHECK_EQ(dmar_busdma_device_destroy(e->dev), 0);
	if (e->bus)
		CHECK_EQ(dmar_busdma_destroy(e->bus), 0);
}

void test_megasas_rw_verify(struct ktest *t)
{
	struct fixture f;
	struct megasas_env e = { 0 };
	if (!megasas_probe(0, &e.m))
		SKIP("no MegaRAID SAS (MFI) controller on this machine");
	if (fixture_up(t, &f, 0) != 0)
		goto out;
	if (megasas_env_up(t, &f, &e) == 0)
		storage_rw_verify(t, &f, &e.b, MEGASAS_RW_LBA);
	expect_no_fault(t, &f);
out:
	megasas_env_down(t, &e);
	fixture_down(t, &f);
}

/* One transfer of `len` bytes at `buf` through a map loaded for it; the map is left
 * loaded when `keep` (the caller unloads it). */
/* The classic driver bug: an LD READ is posted again at its old frame address after the
 * frame (whose SGL names the data) and the data were unloaded. Translated, the
 * controller's fetch of the frame faults (recorded with its source id, the frame's
 * IOVA, a read), the old buffer is untouched, the command never completes, the driver
 * times out, aborts and resets the firmware and posts the init frame again, and the
 * next READ returns the data written before. */
void test_megasas_stale_iova_faults(struct ktest *t)
{
	struct fixture f;
	struct megasas_env e = { 0 };
	struct dmar_dmamap *map = NULL;
	if (!megasas_probe(0, &e.m))
		SKIP("no MegaRAID SAS (MFI) controller on this machine");
	if (!kenv.cfg.enable)
		SKIP("hw.dmar.enable=0: DMA is not translated, a stale address is not stopped");
	if (dmar_config_device_bounces(&kenv.cfg, megasas_addr(&e.m)))
		SKIP("the bounce tunable names the controller: its DMA is not translated");
	if (fixture_up(t, &f, 0) != 0)
		goto out;
	if (megasas_env_up(t, &f, &e) != 0)
		goto out;
	const uint64_t len = 3 * PAGE;
	const uint32_t ss = e.m.block_size, seed = 0x3e9a5;
	uint64_t wr = buffer(&f, 3, PAGE, 0), old = buffer(&f, 3, PAGE, 0);
	uint64_t fresh = buffer(&f, 3, PAGE, 0);
	ENSURE(wr && old && fresh);
	TRY(dmar_dmamap_create(e.tag, 0, &map));

	storage_fill(va(wr), len, ss, seed, MEGASAS_STALE_LBA);
	TRY(storage_xfer(&e.b, map, true, MEGASAS_STALE_LBA, va(wr), len, false));
	TRY(storage_xfer(&e.b, map, false, MEGASAS_STALE_LBA, va(old), len, true));
	CHECK(storage_matches(va(old), len, ss, seed, MEGASAS_STALE_LBA));
	struct dmar_dma_segment data = dmar_dmamap_segs(map)[0];
	TRY(dmar_dmamap_unload(e.tag, map));
	uint64_t frame = e.m.last_frame_addr;
	kprintf("# stale LD READ: frame %#llx, SGL[0] %#llx + %llu, all unloaded\n",
		(unsigned long long)frame, (unsigned long long)data.addr,
		(unsigned long long)data.len);
	expect_no_fault(t, &f);

	dmar_memset(va(old), 0xc3, (size_t)len);
	unsigned resets = e.m.resets;
	uint64_t t0 = clock_now_ns();
	int rc = megasas_resubmit_last(&e.m);
	kprintf("# posted again: %d, cmd_status %#x, %llu ms, resets %u\n", rc,
		e.m.last_cmd_status, (unsigned long long)((clock_now_ns() - t0) / 1000000),
		e.m.resets);
	CHECK(rc == DMAR_ETIMEDOUT || rc == MEGASAS_ESTATUS);
	if (rc == MEGASAS_ESTATUS)
		TRY(megasas_reset(&e.m)); /* an error status: the driver starts over too */
	CHECK_EQ(e.m.resets, resets + 1);
	CHECK(e.m.live);
	expect_fault(t, &f, e.m.sid, frame, true);
	CHECK(all_bytes(old, (size_t)len, 0xc3));

	/* Recovered: the next READ moves the data written before. */
	TRY(storage_xfer(&e.b, map, false, MEGASAS_STALE_LBA, va(fresh), len, false));
	CHECK(storage_matches(va(fresh), len, ss, seed, MEGASAS_STALE_LBA));
	CHECK(all_bytes(old, (size_t)len, 0xc3));
	storage_disk_check(&e.b, MEGASAS_STALE_LBA, len / ss, seed);
	expect_no_fault(t, &f);
out:
	if (map) {
		CHECK_EQ(dmar_dmamap_unload(e.tag, map), 0);
		CHECK_EQ(dmar_dmamap_destroy(e.tag, map), 0);
	}
	megasas_env_down(t, &e);
	fixture_down(t, &f);
}

/* The benchmark's view of the controller (storage.h): the setup of the tests above. */
static struct megasas_env megasas_bench_env;

static bool megasas_ctl_find(struct dmar_pci_addr *addr)
{
	struct megasas m;
	if (!megasas_probe(0, &m))
		return false;
	*addr = megasas_addr(&m);
	return true;
}

static int megasas_ctl_up(struct ktest *t, struct fixture *f, const struct dmar_config *cfg,
			  struct storage_ctl *c)
{
	struct megasas_env *e = &megasas_bench_env;
	*e = (struct megasas_env){ 0 };
	c->state = e;
	if (!megasas_probe(0, &e->m)) {
		t->skip = "no MegaRAID SAS (MFI) controller on this machine";
		return 1;
	}
	int rc = megasas_env_up_cfg(t, f, cfg, e);
	if (rc == 0) {
		c->b = e->b;
		c->dev = e->dev;
	}
	return rc;
}

static void megasas_ctl_down(struct ktest *t, struct storage_ctl *c)
{
	if (c->state)
		megasas_env_down(t, c->state);
	c->state = 0;
}

const struct storage_ctl_ops storage_ctl_megasas = {
	.name = "megasas", .find = megasas_ctl_find, .up = megasas_ctl_up,
	.down = megasas_ctl_down,
};
