/*
 * test_model_alloc.c - the model on its own memory ops (no host machine): a flat
 * 64 KiB memory, and an allocator that counts and fails the n-th call. A failed
 * dmar_model_create leaks nothing; a failed cache allocation only means "not cached".
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "model.h"
#include "regs.h"

#define MEM_BASE 0x100000ull
#define MEM_SIZE 0x10000u

struct flat {
	uint8_t mem[MEM_SIZE];
	unsigned calls, fail_at;
	long outstanding;
	unsigned irqs;
};

static int flat_read(void *ctx, uint64_t pa, void *buf, size_t len, enum model_mem_kind kind)
{
	struct flat *f = ctx;

	(void)kind;
	if (pa < MEM_BASE || pa - MEM_BASE > MEM_SIZE || len > MEM_SIZE - (pa - MEM_BASE))
		return -1;
	memcpy(buf, f->mem + (pa - MEM_BASE), len);
	return 0;
}

static int flat_write(void *ctx, uint64_t pa, const void *buf, size_t len, enum model_mem_kind kind)
{
	struct flat *f = ctx;

	(void)kind;
	if (pa < MEM_BASE || pa - MEM_BASE > MEM_SIZE || len > MEM_SIZE - (pa - MEM_BASE))
		return -1;
	memcpy(f->mem + (pa - MEM_BASE), buf, len);
	return 0;
}

static void *flat_alloc(void *ctx, size_t size)
{
	struct flat *f = ctx;
	void *p;

	if (++f->calls == f->fail_at)
		return NULL;
	p = malloc(size);
	if (p)
		f->outstanding++;
	return p;
}

static void flat_free(void *ctx, void *ptr, size_t size)
{
	struct flat *f = ctx;

	(void)size;
	if (ptr)
		f->outstanding--;
	free(ptr);
}

static void flat_irq(void *ctx, enum model_irq which)
{
	(void)which;
	((struct flat *)ctx)->irqs++;
}

static const struct model_mem_ops flat_ops = {
	.read = flat_read,
	.write = flat_write,
	.interrupt = flat_irq,
	.alloc = flat_alloc,
	.free = flat_free,
};

static void put64(struct flat *f, uint64_t pa, uint64_t v)
{
	memcpy(f->mem + (pa - MEM_BASE), &v, 8);
}

/* Root at +0, context table at +0x1000, 3-level tables at +0x2000.., data at +0x8000:
 * iova 0..0x7fff of device 00:01.0 maps to the data pages. */
static void build_tables(struct flat *f)
{
	memset(f->mem, 0, sizeof(f->mem));
	put64(f, MEM_BASE, (MEM_BASE + 0x1000) | VTD_ROOT_P);
	put64(f, MEM_BASE + 0x1000 + 8 * 16, (MEM_BASE + 0x2000) | VTD_CTX_LO_P);
	put64(f, MEM_BASE + 0x1000 + 8 * 16 + 8, VTD_CTX_HI_AW(1) | VTD_CTX_HI_DID(3));
	put64(f, MEM_BASE + 0x2000, (MEM_BASE + 0x3000) | VTD_SL_R | VTD_SL_W);
	put64(f, MEM_BASE + 0x3000, (MEM_BASE + 0x4000) | VTD_SL_R | VTD_SL_W);
	for (unsigned i = 0; i < 8; i++)
		put64(f, MEM_BASE + 0x4000 + i * 8, (MEM_BASE + 0x8000 + i * 0x1000) | VTD_SL_R | VTD_SL_W);
}

/* Enables translation and does DMA to every mapped page; returns how many succeeded. */
static unsigned run(struct model *m, struct flat *f)
{
	unsigned ok = 0;

	dmar_model_write64(m, VTD_RTADDR_REG, MEM_BASE);
	dmar_model_write32(m, VTD_GCMD_REG, (uint32_t)VTD_GCMD_SRTP);
	dmar_model_write32(m, VTD_GCMD_REG, (uint32_t)VTD_GCMD_TE);
	for (unsigned round = 0; round < 2; round++)
		for (unsigned i = 0; i < 8; i++) {
			uint32_t v = 0xc0de0000u + i;

			if (dmar_model_dma(m, VTD_SID(0, 1, 0), i * 0x1000 + 0x10, &v, 4,
					   MODEL_DMA_WRITE, NULL) == 0 &&
			    memcmp(f->mem + 0x8000 + i * 0x1000 + 0x10, &v, 4) == 0)
				ok++;
		}
	return ok;
}

TEST(model_runs_on_its_own_memory_ops)
{
	static struct flat f;
	struct model_config cfg;
	struct model *m;

	memset(&f, 0, sizeof(f));
	build_tables(&f);
	dmar_model_config_default(&cfg);
	m = dmar_model_create(&cfg, &flat_ops, &f);
	REQUIRE(m != NULL);
	CHECK_EQ(run(m, &f), 16);
	CHECK_EQ(dmar_model_stats(m)->iotlb_hits, 8);
	CHECK_EQ(dmar_model_stats(m)->iotlb_misses, 8);
	/* A fault with the interrupt unmasked reaches the callback. */
	dmar_model_write32(m, VTD_FECTL_REG, 0);
	CHECK_EQ(dmar_model_dma(m, VTD_SID(0, 1, 0), 0x9000, &f.calls, 4, MODEL_DMA_READ, NULL),
		 VTD_FR_READ);
	CHECK_EQ(f.irqs, 1);
	dmar_model_destroy(m);
	CHECK_EQ(f.outstanding, 0);
}

TEST(every_allocation_failure_is_clean)
{
	static struct flat f;
	struct model_config cfg;
	unsigned total;

	dmar_model_config_default(&cfg);
	memset(&f, 0, sizeof(f));
	build_tables(&f);
	{
		struct model *m = dmar_model_create(&cfg, &flat_ops, &f);

		REQUIRE(m != NULL);
		REQUIRE_EQ(run(m, &f), 16);
		dmar_model_destroy(m);
		total = f.calls;
	}
	CHECK(total >= 4); /* the model, its registers, cache entries */
	for (unsigned n = 1; n <= total; n++) {
		struct model *m;

		memset(&f, 0, sizeof(f));
		build_tables(&f);
		f.fail_at = n;
		m = dmar_model_create(&cfg, &flat_ops, &f);
		if (m) {
			/* A cache entry that could not be kept costs a walk, never a result. */
			CHECK_EQ(run(m, &f), 16);
			dmar_model_destroy(m);
		} else {
			CHECK(n <= 2);
		}
		CHECK_EQ(f.outstanding, 0);
	}
}

TEST(bad_arguments_are_refused)
{
	static struct flat f;
	struct model_config cfg;
	struct model_mem_ops no_alloc = flat_ops;
	struct model *m;

	dmar_model_config_default(&cfg);
	no_alloc.alloc = NULL;
	CHECK(dmar_model_create(&cfg, &no_alloc, &f) == NULL);
	CHECK(dmar_model_create(NULL, &flat_ops, &f) == NULL);
	cfg.sagaw = 0;
	CHECK(dmar_model_create(&cfg, &flat_ops, &f) == NULL);
	dmar_model_config_default(&cfg);
	cfg.mgaw = 70;
	CHECK(dmar_model_create(&cfg, &flat_ops, &f) == NULL);
	dmar_model_config_default(&cfg);
	m = dmar_model_create(&cfg, &flat_ops, &f);
	REQUIRE(m != NULL);
	CHECK_EQ(dmar_model_dma(m, 0, 0, NULL, 16, MODEL_DMA_READ, NULL), MODEL_DMA_BUS_ERROR);
	CHECK_EQ(dmar_model_dma(m, 0, 0, NULL, 0, MODEL_DMA_READ, NULL), 0);
	dmar_model_set_ack_delay(m, MODEL_ACK_COUNT, 5); /* ignored */
	dmar_model_write64(m, 0xffc, 1);                  /* straddles the end: ignored */
	CHECK_EQ(dmar_model_read64(m, 0xffc), UINT64_MAX);
	dmar_model_destroy(m);
	dmar_model_destroy(NULL);
	CHECK_EQ(f.outstanding, 0);
}
