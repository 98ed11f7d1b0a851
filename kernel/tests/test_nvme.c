/*
 * The NVMe driver (kernel/drivers/nvme.c) on QEMU's nvme controller, through busdma:
 * the storage read/write/verify test, and a stale command resubmitted after its PRP
 * list and data were unloaded.
 *
 * QEMU: -drive if=none,id=n0,file=IMG,format=raw -device nvme,drive=n0,serial=dmar0
 */
#include "dmar/busdma.h"
#include "clock.h"
#include "nvme.h"
#include "storage.h"
#include "tests.h"
#include "util.h"

#define NVME_RW_LBA 0x800ull     /* storage_rw_verify's regions start here */
#define NVME_STALE_LBA 0x8000ull /* the stale-command test's blocks */

struct nvme_env {
	struct dmar_busdma *bus;
	struct dmar_busdma_dev *dev;
	struct dmar_dma_tag *tag;
	struct nvme c;
	bool bound;
	struct blockdev b;
};

static int nvme_io(struct blockdev *b, bool write, uint64_t lba, uint32_t count,
		   struct dmar_dmamap *map)
{
	return nvme_rw(b->drv, write, lba, count, map);
}

static struct dmar_pci_addr nvme_addr(const struct nvme *c)
{
	struct dmar_pci_addr a = { 0, c->pci->bus, c->pci->dev, c->pci->fn };
	return a;
}

/* busdma as test_busdma.c sets it up (with the tunables `cfg`), the driver bound, the
 * data tag made. */
static int nvme_env_up_cfg(struct ktest *t, struct fixture *f, const struct dmar_config *cfg,
			   struct nvme_env *e)
{
	int rc = dmar_busdma_create(&kenv.os, cfg, f->sys, &e->bus);
	if (!rc)
		rc = dmar_busdma_device(e->bus, nvme_addr(&e->c), pci_bridge_buses, 0, &e->dev);
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "busdma for the controller: %s", dmar_strerror(rc));
		return rc;
	}
	bool bounce = !cfg->enable || dmar_config_device_bounces(cfg, nvme_addr(&e->c));
	CHECK(dmar_busdma_device_mode(e->dev) ==
	      (bounce ? DMAR_BUSDMA_BOUNCE : DMAR_BUSDMA_TRANSLATE));
	CHECK_EQ(dmar_busdma_device_sid(e->dev), e->c.sid);
	uint64_t t0 = clock_now_ns();
	rc = nvme_init(&e->c, e->dev);
	if (rc == DMAR_ENODEV) {
		t->skip = "no namespace 1: the NVMe controller has no disk (nvme,drive=...)";
		return rc;
	}
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "nvme_init: %d (status %#x)", rc,
			   e->c.last_status);
		return rc;
	}
	e->bound = true;
	kprintf("# nvme %02x:%02x.%x (%s): \"%s\", %llu blocks of %u bytes, largest "
		"transfer %u bytes; up in %llu ms\n",
		e->c.pci->bus, e->c.pci->dev, e->c.pci->fn, bounce ? "bounced" : "translated",
		e->c.model, (unsigned long long)e->c.nsze, e->c.lba_size, e->c.mdts_bytes,
		(unsigned long long)((clock_now_ns() - t0) / 1000000));
	struct dmar_dma_tag_params p;
	nvme_data_tag_params(&e->c, &p);
	rc = dmar_dma_tag_create(e->dev, 0, &p, &e->tag);
	if (rc) {
		ktest_fail(t, __FILE__, __LINE__, "data tag: %s", dmar_strerror(rc));
		return rc;
	}
	e->b = (struct blockdev){ .name = "nvme", .tag = e->tag, .sector_size = e->c.lba_size,
				  .sectors = e->c.nsze, .max_bytes = e->c.mdts_bytes,
				  .io = nvme_io, .drv = &e->c };
	return 0;
}

static int nvme_env_up(struct ktest *t, struct fixture *f, struct nvme_env *e)
{
	return nvme_env_up_cfg(t, f, &kenv.cfg, e);
}

static void nvme_env_down(struct ktest *t, struct nvme_env *e)
{
	if (e->bound)
		nvme_detach(&e->c);
	if (e->tag)
		CHECK_EQ(dmar_dma_tag_destroy(e->tag), 0);
	if (e->dev)
		CHECK_EQ(dmar_busdma_device_destroy(e->dev), 0);
	if (e->bus)
		CHECK_EQ(dmar_busdma_destroy(e->bus), 0);
}

void test_nvme_rw_verify(struct ktest *t)
{
	struct fixture f;
	struct nvme_env e = { 0 };
	if (!nvme_probe(0, &e.c))
		SKIP("no NVMe controller (class 01:08:02) on this machine");
	if (fixture_up(t, &f, 0) != 0)
		goto out;
	if (nvme_env_up(t, &f, &e) == 0)
		storage_rw_verify(t, &f, &e.b, NVME_RW_LBA);
	expect_no_fault(t, &f);
out:
	nvme_env_down(t, &e);
	fixture_down(t, &f);
}

/* One transfer of `len` bytes at `buf` through a map loaded for it; the map is left
 * loaded when `keep` (the caller unloads it). */
/* The classic driver bug: a READ is resubmitted as it was after its PRP list and data
 * were unloaded. Translated, the controller's read of the stale PRP list IOVA faults
 * (recorded with its source id, that IOVA, a read), the old buffer is untouched, the
 * controller reports a data transfer error, the driver resets it and re-creates its
 * queues, and the next READ returns the data written before. */
void test_nvme_stale_iova_faults(struct ktest *t)
{
	struct fixture f;
	struct nvme_env e = { 0 };
	struct dmar_dmamap *map = NULL;
	if (!nvme_probe(0, &e.c))
		SKIP("no NVMe controller (class 01:08:02) on this machine");
	if (!kenv.cfg.enable)
		SKIP("hw.dmar.enable=0: DMA is not translated, a stale address is not stopped");
	if (dmar_config_device_bounces(&kenv.cfg, nvme_addr(&e.c)))
		SKIP("the bounce tunable names the controller: its DMA is not translated");
	if (fixture_up(t, &f, 0) != 0)
		goto out;
	if (nvme_env_up(t, &f, &e) != 0)
		goto out;
	/* Three pages: PRP1 and a PRP list (PRP2) naming the other two. */
	const uint64_t len = 3 * PAGE;
	const uint32_t ss = e.c.lba_size, seed = 0x57a1e;
	uint64_t wr = buffer(&f, 3, PAGE, 0), old = buffer(&f, 3, PAGE, 0);
	uint64_t fresh = buffer(&f, 3, PAGE, 0);
	ENSURE(wr && old && fresh);
	TRY(dmar_dmamap_create(e.tag, 0, &map));

	storage_fill(va(wr), len, ss, seed, NVME_STALE_LBA);
	TRY(storage_xfer(&e.b, map, true, NVME_STALE_LBA, va(wr), len, false));
	TRY(storage_xfer(&e.b, map, false, NVME_STALE_LBA, va(old), len, true));
	ENSURE(dmar_dmamap_nsegs(map) == 3);
	CHECK(storage_matches(va(old), len, ss, seed, NVME_STALE_LBA));
	TRY(dmar_dmamap_unload(e.tag, map));
	uint64_t prp1, prp2;
	nvme_last_prps(&e.c, &prp1, &prp2);
	kprintf("# stale READ: PRP1 %#llx, PRP2 (list) %#llx, both unloaded\n",
		(unsigned long long)prp1, (unsigned long long)prp2);
	ENSURE(prp2 != 0);
	expect_no_fault(t, &f);

	dmar_memset(va(old), 0xc3, (size_t)len);
	unsigned resets = e.c.resets;
	uint64_t t0 = clock_now_ns();
	int rc = nvme_resubmit_last(&e.c);
	kprintf("# resubmitted: %d, status %#x (SCT %u SC %#x), %llu ms, resets %u\n", rc,
		e.c.last_status, (e.c.last_status >> 8) & 7u, e.c.last_status & 0xffu,
		(unsigned long long)((clock_now_ns() - t0) / 1000000), e.c.resets);
	CHECK(rc == NVME_ESTATUS || rc == DMAR_ETIMEDOUT);
	CHECK_EQ(e.c.resets, resets + 1);
	CHECK(e.c.live);
	expect_fault(t, &f, e.c.sid, prp2, true);
	CHECK(all_bytes(old, (size_t)len, 0xc3));

	/* Recovered: the next READ moves the data written before. */
	TRY(storage_xfer(&e.b, map, false, NVME_STALE_LBA, va(fresh), len, false));
	CHECK(storage_matches(va(fresh), len, ss, seed, NVME_STALE_LBA));
	CHECK(all_bytes(old, (size_t)len, 0xc3));
	storage_disk_check(&e.b, NVME_STALE_LBA, len / ss, seed);
	expect_no_fault(t, &f);
out:
	if (map) {
		CHECK_EQ(dmar_dmamap_unload(e.tag, map), 0);
		CHECK_EQ(dmar_dmamap_destroy(e.tag, map), 0);
	}
	nvme_env_down(t, &e);
	fixture_down(t, &f);
}

/* The benchmark's view of the controller (storage.h): the setup of the tests above. */
static struct nvme_env nvme_bench_env;

static bool nvme_ctl_find(struct dmar_pci_addr *addr)
{
	struct nvme c;
	if (!nvme_probe(0, &c))
		return false;
	*addr = nvme_addr(&c);
	return true;
}

static int nvme_ctl_up(struct ktest *t, struct fixture *f, const struct dmar_config *cfg,
		       struct storage_ctl *c)
{
	struct nvme_env *e = &nvme_bench_env;
	*e = (struct nvme_env){ 0 };
	c->state = e;
	if (!nvme_probe(0, &e->c)) {
		t->skip = "no NVMe controller (class 01:08:02) on this machine";
		return 1;
	}
	int rc = nvme_env_up_cfg(t, f, cfg, e);
	if (rc == 0) {
		c->b = e->b;
		c->dev = e->dev;
	}
	return rc;
}

static void nvme_ctl_down(struct ktest *t, struct storage_ctl *c)
{
	if (c->state)
		nvme_env_down(t, c->state);
	c->state = 0;
}

const struct storage_ctl_ops storage_ctl_nvme = {
	.name = "nvme", .find = nvme_ctl_find, .up = nvme_ctl_up, .down = nvme_ctl_down,
};
