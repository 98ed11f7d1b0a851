/*
 * test_model_hw.c - the VT-d model against hand-made tables: root, context and
 * second-level entries are written directly into the simulated machine's memory (not
 * through the driver), then a device does DMA and the test checks what lands in memory,
 * what the fault recording registers say, and what the caches keep.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "model.h"
#include "posix_machine.h"
#include "regs.h"
#include "util.h"

#define UNIT_BASE 0xfed90000ull
#define SID_A VTD_SID(0, 3, 0)
#define SID_B VTD_SID(2, 1, 5)
#define RW (VTD_SL_R | VTD_SL_W)

struct env {
	struct posix_machine *pm;
	struct model *m;
	const struct dmar_os *os;
	uint64_t root;   /* root table */
	uint64_t slpt;   /* second-level root of domain 1 */
	unsigned levels; /* of slpt */
};

static void *va_of(struct env *e, uint64_t pa)
{
	void *va = dmar_posix_machine_phys_to_virt(e->pm, pa);

	REQUIRE(va != NULL);
	return va;
}

static uint64_t new_page(struct env *e)
{
	uint64_t pa = 0;

	REQUIRE(e->os->ops->page_alloc(e->os->ctx, &pa) != NULL);
	return pa;
}

/* Writes one table entry and flushes it, as a careful driver does with ECAP.C=0. */
static void put(struct env *e, uint64_t pa, uint64_t v)
{
	uint64_t *p = va_of(e, pa);

	*p = v;
	e->os->ops->cache_flush(e->os->ctx, p, 8);
}

static uint64_t get(struct env *e, uint64_t pa)
{
	return *(uint64_t *)va_of(e, pa);
}

static uint32_t rd32(struct env *e, uint32_t off) { return dmar_model_read32(e->m, off); }
static uint64_t rd64(struct env *e, uint32_t off) { return dmar_model_read64(e->m, off); }
static void wr32(struct env *e, uint32_t off, uint32_t v) { dmar_model_write32(e->m, off, v); }
static void wr64(struct env *e, uint32_t off, uint64_t v) { dmar_model_write64(e->m, off, v); }

static uint32_t iotlb_reg(struct env *e)
{
	return (uint32_t)VTD_ECAP_IRO(rd64(e, VTD_ECAP_REG)) * 16u + VTD_IOTLB_OFF;
}

static uint32_t frcd(struct env *e, unsigned i)
{
	return (uint32_t)VTD_CAP_FRO(rd64(e, VTD_CAP_REG)) * 16u + i * 16u;
}

/* Context entry of `sid`: root entry and context table made on first use. */
static void set_context(struct env *e, uint16_t sid, uint64_t lo, uint64_t hi)
{
	uint64_t re = e->root + VTD_SID_BUS(sid) * 16u, ctp;

	if (!(get(e, re) & VTD_ROOT_P))
		put(e, re, new_page(e) | VTD_ROOT_P);
	ctp = get(e, re) & VTD_ROOT_CTP_MASK;
	put(e, ctp + VTD_SID_DEVFN(sid) * 16u + 8, hi);
	put(e, ctp + VTD_SID_DEVFN(sid) * 16u, lo);
}

/* Translated context entry of domain `did` with tables at slpt of `levels` levels. */
static void attach(struct env *e, uint16_t sid, uint16_t did, uint64_t slpt, unsigned levels)
{
	set_context(e, sid, slpt | VTD_CTX_LO_TT(VTD_TT_SLPT) | VTD_CTX_LO_P,
		    VTD_CTX_HI_AW(levels - 2) | VTD_CTX_HI_DID(did));
}

/* Address of the entry for iova at leaf_level, making the tables above it. */
static uint64_t entry_addr(struct env *e, uint64_t slpt, unsigned levels, uint64_t iova,
			   unsigned leaf_level)
{
	uint64_t table = slpt;
	unsigned l;

	for (l = levels; l > leaf_level; l--) {
		uint64_t ea = table + ((iova >> (12 + 9 * (l - 1))) & 511) * 8;

		if (!(get(e, ea) & RW))
			put(e, ea, new_page(e) | RW);
		table = get(e, ea) & VTD_SL_ADDR_MASK;
	}
	return table + ((iova >> (12 + 9 * (leaf_level - 1))) & 511) * 8;
}

static void map(struct env *e, uint64_t iova, uint64_t pa, unsigned leaf_level, uint64_t perm)
{
	put(e, entry_addr(e, e->slpt, e->levels, iova, leaf_level),
	    pa | perm | (leaf_level > 1 ? VTD_SL_PS : 0));
}

static void enable(struct env *e)
{
	int i;

	wr64(e, VTD_RTADDR_REG, e->root);
	wr32(e, VTD_GCMD_REG, (uint32_t)VTD_GCMD_SRTP);
	for (i = 0; i < 100 && !(rd32(e, VTD_GSTS_REG) & VTD_GSTS_RTPS); i++)
		;
	REQUIRE(rd32(e, VTD_GSTS_REG) & VTD_GSTS_RTPS);
	wr32(e, VTD_GCMD_REG, (uint32_t)VTD_GCMD_TE);
	REQUIRE(rd32(e, VTD_GSTS_REG) & VTD_GSTS_TES);
}

/* A machine with one unit, a root table, domain 1 with `levels` levels attached to
 * SID_A, translation enabled. */
static void env_init(struct env *e, const struct model_config *cfg, unsigned levels)
{
	struct dmar_posix_machine_config mc = { .mem_size = 64ull << 20 };

	memset(e, 0, sizeof(*e));
	e->pm = dmar_posix_machine_create(&mc);
	REQUIRE(e->pm != NULL);
	e->m = dmar_posix_machine_add_unit(e->pm, UNIT_BASE, cfg);
	REQUIRE(e->m != NULL);
	e->os = dmar_posix_machine_os(e->pm);
	e->root = new_page(e);
	e->slpt = new_page(e);
	e->levels = levels;
	attach(e, SID_A, 1, e->slpt, levels);
	enable(e);
}

static void env_fini(struct env *e)
{
	dmar_posix_machine_destroy(e->pm);
}

static uint64_t dma_buf(struct env *e, size_t size, void **va)
{
	uint64_t pa = 0;

	*va = dmar_posix_machine_alloc_dma(e->pm, size, 4096, &pa);
	REQUIRE(*va != NULL);
	return pa;
}

static int dma(struct env *e, uint16_t sid, uint64_t iova, void *buf, size_t len,
	       enum model_dir dir, struct model_fault *f)
{
	return dmar_model_dma(e->m, sid, iova, buf, len, dir, f);
}

static int dma_write_byte(struct env *e, uint16_t sid, uint64_t iova, uint8_t v)
{
	return dma(e, sid, iova, &v, 1, MODEL_DMA_WRITE, NULL);
}

static void inval_iotlb_page(struct env *e, uint16_t did, uint64_t addr, unsigned am, bool ih)
{
	uint32_t off = iotlb_reg(e);

	wr64(e, off - 8, addr | am | (ih ? VTD_IVA_IH : 0));
	wr64(e, off, VTD_IOTLB_IVT | VTD_IOTLB_IIRG(VTD_IOTLB_PAGE) | VTD_IOTLB_DID(did));
	REQUIRE(!(rd64(e, off) & VTD_IOTLB_IVT));
}

static void inval_ctx_device(struct env *e, uint16_t did, uint16_t sid)
{
	wr64(e, VTD_CCMD_REG, VTD_CCMD_ICC | VTD_CCMD_CIRG(VTD_CC_DEVICE) | VTD_CCMD_SID(sid) |
				      VTD_CCMD_DID(did));
	REQUIRE(!(rd64(e, VTD_CCMD_REG) & VTD_CCMD_ICC));
}

/* ---- configuration ---- */

TEST(default_config_is_qemu_7_2)
{
	struct model_config cfg;
	struct env e;

	dmar_model_config_default(&cfg);
	CHECK_EQ(dmar_model_config_cap(&cfg), 0x00d2008c22260206ull);
	CHECK_EQ(dmar_model_config_ecap(&cfg), 0xf00f4aull);
	env_init(&e, &cfg, 3);
	CHECK_EQ(rd32(&e, VTD_VER_REG), 0x10);
	CHECK_EQ(rd64(&e, VTD_CAP_REG), 0x00d2008c22260206ull);
	CHECK_EQ(rd64(&e, VTD_ECAP_REG), 0xf00f4aull);
	/* Two 32-bit halves read the same as the 64-bit register. */
	CHECK_EQ(rd32(&e, VTD_CAP_REG + 4), 0x00d2008cu);
	CHECK_EQ(rd32(&e, VTD_CAP_REG), 0x22260206u);
	CHECK_EQ(iotlb_reg(&e), 0xf8);
	CHECK_EQ(frcd(&e, 0), 0x220);
	env_fini(&e);
}

TEST(config_fields_encode_into_cap_and_ecap)
{
	struct model_config cfg;
	uint64_t cap, ecap;

	dmar_model_config_default(&cfg);
	cfg.sagaw = VTD_SAGAW_39 | VTD_SAGAW_48 | VTD_SAGAW_57;
	cfg.mgaw = 57;
	cfg.nfr = 8;
	cfg.cm = true;
	cfg.rwbf = true;
	cfg.c = true;
	cfg.sc = true;
	cfg.nd = 2;
	cap = dmar_model_config_cap(&cfg);
	ecap = dmar_model_config_ecap(&cfg);
	CHECK_EQ(VTD_CAP_SAGAW(cap), 0xe);
	CHECK_EQ(VTD_CAP_MGAW(cap), 57);
	CHECK_EQ(VTD_CAP_NFR(cap), 8);
	CHECK_EQ(VTD_CAP_ND(cap), 2);
	CHECK(cap & VTD_CAP_CM);
	CHECK(cap & VTD_CAP_RWBF);
	CHECK(ecap & VTD_ECAP_C);
	CHECK(ecap & VTD_ECAP_SC);
	CHECK_EQ(VTD_ECAP_IRO(ecap), 0xf);
}

TEST(inconsistent_config_is_refused)
{
	struct model_config cfg;
	struct model_mem_ops ops = { 0 };

	dmar_model_config_default(&cfg);
	cfg.nfr = 0;
	CHECK(dmar_model_create(&cfg, &ops, NULL) == NULL);
	dmar_model_config_default(&cfg);
	cfg.fro = cfg.iro; /* fault registers on top of the IOTLB registers */
	CHECK(dmar_model_create(&cfg, &ops, NULL) == NULL);
}

/* ---- registers ---- */

TEST(read_only_and_reserved_fields_keep_their_values)
{
	struct model_config cfg;
	struct env e;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	wr64(&e, VTD_CAP_REG, 0);
	wr32(&e, VTD_VER_REG, 0x77);
	wr32(&e, VTD_GSTS_REG, 0);
	CHECK_EQ(rd64(&e, VTD_CAP_REG), 0x00d2008c22260206ull);
	CHECK_EQ(rd32(&e, VTD_VER_REG), 0x10);
	CHECK(rd32(&e, VTD_GSTS_REG) & VTD_GSTS_TES);
	/* RTADDR bits 11:0 are reserved (TTM too without scalable mode). */
	wr64(&e, VTD_RTADDR_REG, 0x12345fffull);
	CHECK_EQ(rd64(&e, VTD_RTADDR_REG), 0x12345000ull);
	/* FSTS.PPF is read-only: writing it does not set it. */
	wr32(&e, VTD_FSTS_REG, 0xffffffffu);
	CHECK_EQ(rd32(&e, VTD_FSTS_REG), 0);
	/* GCMD reads as zero; FECTL.IP is read-only; IM resets to 1. */
	CHECK_EQ(rd32(&e, VTD_GCMD_REG), 0);
	CHECK_EQ(rd32(&e, VTD_FECTL_REG), VTD_FECTL_IM);
	wr32(&e, VTD_FECTL_REG, (uint32_t)VTD_FECTL_IP);
	CHECK_EQ(rd32(&e, VTD_FECTL_REG), 0);
	/* Outside the register window: all ones. */
	CHECK_EQ(rd32(&e, 0x2000), 0xffffffffu);
	CHECK_EQ(rd32(&e, 0x21), 0xffffffffu);
	CHECK(dmar_model_stats(e.m)->reg_writes_ignored >= 3);
	env_fini(&e);
}

TEST(persistent_and_one_shot_gcmd_commands)
{
	struct model_config cfg;
	struct env e;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	/* A write without TE turns translation off: TE is persistent. */
	wr32(&e, VTD_GCMD_REG, (uint32_t)VTD_GCMD_QIE);
	CHECK(!(rd32(&e, VTD_GSTS_REG) & VTD_GSTS_TES));
	CHECK(rd32(&e, VTD_GSTS_REG) & VTD_GSTS_QIES);
	/* SRTP latches RTADDR; RTPS stays set. */
	CHECK(rd32(&e, VTD_GSTS_REG) & VTD_GSTS_RTPS);
	/* WBF is not implemented without CAP.RWBF: no status. */
	wr32(&e, VTD_GCMD_REG, (uint32_t)(VTD_GCMD_QIE | VTD_GCMD_WBF));
	CHECK(!(rd32(&e, VTD_GSTS_REG) & VTD_GSTS_WBFS));
	CHECK_EQ(dmar_model_stats(e.m)->wbf, 0);
	wr32(&e, VTD_GCMD_REG, 0);
	CHECK_EQ(rd32(&e, VTD_GSTS_REG) & (VTD_GSTS_TES | VTD_GSTS_QIES), 0);
	env_fini(&e);
}

TEST(register_access_is_counted)
{
	struct model_config cfg;
	struct env e;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	dmar_model_stats_reset(e.m);
	rd32(&e, VTD_GSTS_REG);
	rd64(&e, VTD_CAP_REG);
	wr32(&e, VTD_FEDATA_REG, 5);
	CHECK_EQ(dmar_model_stats(e.m)->reg_reads, 2);
	CHECK_EQ(dmar_model_stats(e.m)->reg_writes, 1);
	CHECK_EQ(rd32(&e, VTD_FEDATA_REG), 5);
	env_fini(&e);
}

/* ---- translation ---- */

TEST(translation_at_3_4_and_5_levels)
{
	static const unsigned levels[] = { 3, 4, 5 };
	struct model_config cfg;

	dmar_model_config_default(&cfg);
	cfg.sagaw = VTD_SAGAW_39 | VTD_SAGAW_48 | VTD_SAGAW_57;
	cfg.mgaw = 57;
	for (unsigned i = 0; i < 3; i++) {
		struct env e;
		uint8_t *mem, data[64];
		uint64_t pa, out, iova = (1ull << (11 + 9 * levels[i])) + 0x5000;

		env_init(&e, &cfg, levels[i]);
		pa = dma_buf(&e, 4096, (void **)&mem);
		map(&e, iova, pa, 1, RW);
		memset(data, 0xa5, sizeof(data));
		CHECK_EQ(dma(&e, SID_A, iova + 0x40, data, sizeof(data), MODEL_DMA_WRITE, NULL), 0);
		CHECK_EQ(mem[0x40], 0xa5);
		CHECK_EQ(mem[0x3f], 0);
		CHECK_EQ(dmar_model_translate(e.m, SID_A, iova + 0x123, MODEL_DMA_READ, &out,
					      NULL), 0);
		CHECK_EQ(out, pa + 0x123);
		/* One bit beyond the domain's width. */
		CHECK_EQ(dmar_model_translate(e.m, SID_A, 1ull << (12 + 9 * levels[i]),
					 MODEL_DMA_READ, &out, NULL),
			 VTD_FR_ADDR_BEYOND_AW);
		env_fini(&e);
	}
}

TEST(superpages_where_sllps_allows)
{
	struct model_config cfg;
	struct env e;
	uint64_t out;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	map(&e, 0x40000000ull, 0x80000000ull, 3, RW);  /* 1 GiB */
	map(&e, 0x200000ull, 0x1600000ull, 2, VTD_SL_R); /* 2 MiB */
	CHECK_EQ(dmar_model_translate(e.m, SID_A, 0x40000000ull + 0x12345678, MODEL_DMA_WRITE,
				      &out, NULL), 0);
	CHECK_EQ(out, 0x80000000ull + 0x12345678);
	CHECK_EQ(dmar_model_translate(e.m, SID_A, 0x3fffff, MODEL_DMA_READ, &out, NULL), 0);
	CHECK_EQ(out, 0x17fffffull);
	CHECK_EQ(dmar_model_translate(e.m, SID_A, 0x3fffff, MODEL_DMA_WRITE, &out, NULL),
		 VTD_FR_WRITE);
	env_fini(&e);

	/* Without 1 GiB support the PS bit at level 3 is reserved. */
	cfg.sllps = 1;
	env_init(&e, &cfg, 3);
	map(&e, 0x40000000ull, 0x80000000ull, 3, RW);
	CHECK_EQ(dmar_model_translate(e.m, SID_A, 0x40000000ull, MODEL_DMA_READ, &out, NULL),
		 VTD_FR_PAGING_RSVD);
	/* A 2 MiB entry with address bits below 2 MiB set is reserved too. */
	map(&e, 0x200000ull, 0x1601000ull, 2, RW);
	CHECK_EQ(dmar_model_translate(e.m, SID_A, 0x200000ull, MODEL_DMA_READ, &out, NULL),
		 VTD_FR_PAGING_RSVD);
	env_fini(&e);
}

TEST(pass_through_context_goes_untranslated)
{
	struct model_config cfg;
	struct env e;
	uint8_t *mem;
	uint64_t pa, out;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	pa = dma_buf(&e, 4096, (void **)&mem);
	set_context(&e, SID_B, VTD_CTX_LO_TT(VTD_TT_PASSTHROUGH) | VTD_CTX_LO_P,
		    VTD_CTX_HI_AW(1) | VTD_CTX_HI_DID(2));
	CHECK_EQ(dma_write_byte(&e, SID_B, pa + 7, 0x5a), 0);
	CHECK_EQ(mem[7], 0x5a);
	CHECK_EQ(dmar_model_translate(e.m, SID_B, pa, MODEL_DMA_READ, &out, NULL), 0);
	CHECK_EQ(out, pa);
	env_fini(&e);

	cfg.pt = false;
	env_init(&e, &cfg, 3);
	set_context(&e, SID_B, VTD_CTX_LO_TT(VTD_TT_PASSTHROUGH) | VTD_CTX_LO_P,
		    VTD_CTX_HI_AW(1) | VTD_CTX_HI_DID(2));
	CHECK_EQ(dmar_model_translate(e.m, SID_B, 0x1000, MODEL_DMA_READ, &out, NULL),
		 VTD_FR_CTX_INVALID);
	env_fini(&e);
}

TEST(translation_disabled_is_untranslated)
{
	struct model_config cfg;
	struct env e;
	uint8_t *mem;
	uint64_t pa;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	wr32(&e, VTD_GCMD_REG, 0);
	pa = dma_buf(&e, 4096, (void **)&mem);
	CHECK_EQ(dma_write_byte(&e, SID_B, pa + 9, 0x11), 0);
	CHECK_EQ(mem[9], 0x11);
	/* Outside memory: a bus error, not a remapping fault. */
	CHECK_EQ(dma_write_byte(&e, SID_B, 0x1000, 1), MODEL_DMA_BUS_ERROR);
	CHECK_EQ(dmar_model_stats(e.m)->faults_recorded, 0);
	env_fini(&e);
}

TEST(dma_crossing_pages_follows_each_page)
{
	struct model_config cfg;
	struct env e;
	uint8_t *a, *b, data[256], back[256];
	uint64_t pa, pb;
	struct model_fault f;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	pa = dma_buf(&e, 4096, (void **)&a);
	pb = dma_buf(&e, 4096, (void **)&b);
	map(&e, 0x10000, pb, 1, RW); /* pages in reverse physical order */
	map(&e, 0x11000, pa, 1, RW);
	for (int i = 0; i < 256; i++)
		data[i] = (uint8_t)i;
	CHECK_EQ(dma(&e, SID_A, 0x10f80, data, 256, MODEL_DMA_WRITE, NULL), 0);
	CHECK_EQ(b[0xf80], 0);
	CHECK_EQ(b[0xfff], 127);
	CHECK_EQ(a[0], 128);
	CHECK_EQ(a[127], 255);
	CHECK_EQ(dma(&e, SID_A, 0x10f80, back, 256, MODEL_DMA_READ, NULL), 0);
	CHECK(memcmp(back, data, 256) == 0);
	/* The first faulting page stops the transfer; bytes before it were moved. */
	memset(data, 0xee, sizeof(data));
	CHECK_EQ(dma(&e, SID_A, 0x11f80, data, 256, MODEL_DMA_WRITE, &f), VTD_FR_WRITE);
	CHECK_EQ(a[0xfff], 0xee);
	CHECK_EQ(f.addr, 0x12000);
	CHECK(f.recorded);
	CHECK(!f.is_read);
	env_fini(&e);
}

/* ---- faults ---- */

struct fault_case {
	const char *name;
	unsigned reason;
};

/* Sets up the situation of reason `r` for SID_B at iova 0x1000; returns the access. */
static enum model_dir make_fault(struct env *e, unsigned r)
{
	uint64_t slpt = new_page(e);

	switch (r) {
	case VTD_FR_ROOT_NOT_PRESENT:
		break; /* bus 2 has no root entry */
	case VTD_FR_CTX_NOT_PRESENT:
		set_context(e, SID_B, 0, 0);
		break;
	case VTD_FR_CTX_INVALID:
		set_context(e, SID_B, slpt | VTD_CTX_LO_P, VTD_CTX_HI_AW(2) | VTD_CTX_HI_DID(2));
		break; /* AW 48-bit is not in SAGAW */
	case VTD_FR_ADDR_BEYOND_AW:
		attach(e, SID_B, 2, slpt, 3);
		return MODEL_DMA_READ; /* iova set by caller */
	case VTD_FR_WRITE:
		attach(e, SID_B, 2, slpt, 3);
		put(e, entry_addr(e, slpt, 3, 0x1000, 1), 0x2000000 | VTD_SL_R);
		return MODEL_DMA_WRITE;
	case VTD_FR_READ:
		attach(e, SID_B, 2, slpt, 3);
		return MODEL_DMA_READ; /* not present */
	case VTD_FR_PAGING_ENTRY_ERR:
		attach(e, SID_B, 2, 0x7ffff000ull, 3); /* tables outside memory */
		break;
	case VTD_FR_ROOT_ACCESS_ERR:
		break; /* RTADDR moved by caller */
	case VTD_FR_CTX_ACCESS_ERR:
		put(e, e->root + VTD_SID_BUS(SID_B) * 16u, 0x7ffff000ull | VTD_ROOT_P);
		break;
	case VTD_FR_ROOT_RSVD:
		put(e, e->root + VTD_SID_BUS(SID_B) * 16u, slpt | VTD_ROOT_P | 0x10);
		break;
	case VTD_FR_CTX_RSVD:
		set_context(e, SID_B, slpt | VTD_CTX_LO_P | 0x100, VTD_CTX_HI_AW(1));
		break;
	case VTD_FR_PAGING_RSVD:
		attach(e, SID_B, 2, slpt, 3);
		put(e, entry_addr(e, slpt, 3, 0x1000, 1), 0x2000000 | RW | VTD_SL_SNP);
		break;
	}
	return MODEL_DMA_READ;
}

TEST(every_fault_reason_is_recorded_with_its_code)
{
	static const unsigned reasons[] = {
		VTD_FR_ROOT_NOT_PRESENT, VTD_FR_CTX_NOT_PRESENT, VTD_FR_CTX_INVALID,
		VTD_FR_ADDR_BEYOND_AW, VTD_FR_WRITE, VTD_FR_READ, VTD_FR_PAGING_ENTRY_ERR,
		VTD_FR_ROOT_ACCESS_ERR, VTD_FR_CTX_ACCESS_ERR, VTD_FR_ROOT_RSVD,
		VTD_FR_CTX_RSVD, VTD_FR_PAGING_RSVD,
	};
	struct model_config cfg;

	dmar_model_config_default(&cfg);
	for (unsigned i = 0; i < DMAR_ARRAY_SIZE(reasons); i++) {
		struct env e;
		struct model_fault f;
		unsigned r = reasons[i], why = 0;
		uint64_t iova = r == VTD_FR_ADDR_BEYOND_AW ? 1ull << 39 : 0x1000, hi, out;
		enum model_dir dir;
		uint8_t byte = 0;
		char name[32];

		snprintf(name, sizeof(name), "reason %#x", r);
		harness_set_context(name);
		env_init(&e, &cfg, 3);
		dir = make_fault(&e, r);
		if (r == VTD_FR_ROOT_ACCESS_ERR) {
			wr64(&e, VTD_RTADDR_REG, 0x7ffff000ull);
			wr32(&e, VTD_GCMD_REG, (uint32_t)(VTD_GCMD_TE | VTD_GCMD_SRTP));
		}
		CHECK_EQ(dmar_model_translate(e.m, SID_B, iova, dir, &out, &why), r);
		CHECK_EQ(why, r);
		CHECK_EQ(dma(&e, SID_B, iova + 0x10, &byte, 1, dir, &f), r);
		CHECK_EQ(f.reason, r);
		CHECK_EQ(f.sid, SID_B);
		CHECK_EQ(f.addr, iova);
		CHECK(f.recorded);
		hi = rd64(&e, frcd(&e, 0) + 8);
		CHECK(hi & VTD_FRCD_HI_F);
		CHECK_EQ(VTD_FRCD_HI_FR(hi), r);
		CHECK_EQ(VTD_FRCD_HI_SID(hi), SID_B);
		CHECK_EQ(!!(hi & VTD_FRCD_HI_T), dir == MODEL_DMA_READ);
		CHECK_EQ(rd64(&e, frcd(&e, 0)), iova);
		CHECK(rd32(&e, VTD_FSTS_REG) & VTD_FSTS_PPF);
		CHECK_EQ(VTD_FSTS_FRI(rd32(&e, VTD_FSTS_REG)), 0);
		env_fini(&e);
	}
	harness_set_context(NULL);
}

TEST(fpd_suppresses_recording)
{
	struct model_config cfg;
	struct env e;
	struct model_fault f;
	uint8_t byte = 0;
	uint64_t slpt;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	slpt = new_page(&e);
	set_context(&e, SID_B, slpt | VTD_CTX_LO_FPD | VTD_CTX_LO_P,
		    VTD_CTX_HI_AW(1) | VTD_CTX_HI_DID(2));
	CHECK_EQ(dma(&e, SID_B, 0x1000, &byte, 1, MODEL_DMA_READ, &f), VTD_FR_READ);
	CHECK(!f.recorded);
	CHECK_EQ(dmar_model_stats(e.m)->faults_suppressed, 1);
	CHECK_EQ(rd32(&e, VTD_FSTS_REG), 0);
	CHECK(!(rd64(&e, frcd(&e, 0) + 8) & VTD_FRCD_HI_F));
	env_fini(&e);
}

TEST(one_recording_register_overflows_until_serviced)
{
	struct model_config cfg;
	struct env e;
	struct model_fault f;
	uint8_t byte = 0;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	CHECK_EQ(dma(&e, SID_A, 0x1000, &byte, 1, MODEL_DMA_READ, &f), VTD_FR_READ);
	CHECK(f.recorded);
	CHECK_EQ(dma(&e, SID_A, 0x2000, &byte, 1, MODEL_DMA_READ, &f), VTD_FR_READ);
	CHECK(!f.recorded);
	CHECK(rd32(&e, VTD_FSTS_REG) & VTD_FSTS_PFO);
	CHECK_EQ(rd64(&e, frcd(&e, 0)), 0x1000); /* the first fault is kept */
	/* Clearing F is not enough while PFO is set. */
	wr32(&e, frcd(&e, 0) + 12, 1u << 31);
	CHECK(!(rd32(&e, VTD_FSTS_REG) & VTD_FSTS_PPF));
	CHECK_EQ(dma(&e, SID_A, 0x3000, &byte, 1, MODEL_DMA_READ, &f), VTD_FR_READ);
	CHECK(!f.recorded);
	wr32(&e, VTD_FSTS_REG, (uint32_t)VTD_FSTS_PFO);
	CHECK_EQ(dma(&e, SID_A, 0x4000, &byte, 1, MODEL_DMA_READ, &f), VTD_FR_READ);
	CHECK(f.recorded);
	CHECK_EQ(rd64(&e, frcd(&e, 0)), 0x4000);
	CHECK_EQ(dmar_model_stats(e.m)->faults_recorded, 2);
	CHECK_EQ(dmar_model_stats(e.m)->faults_overflowed, 2);
	env_fini(&e);
}

TEST(eight_recording_registers_fill_in_order)
{
	struct model_config cfg;
	struct env e;
	struct model_fault f;
	uint8_t byte = 0;
	unsigned i;

	dmar_model_config_default(&cfg);
	cfg.nfr = 8;
	env_init(&e, &cfg, 3);
	for (i = 0; i < 8; i++) {
		CHECK_EQ(dma(&e, SID_A, 0x1000 * (i + 1), &byte, 1, MODEL_DMA_WRITE, &f), VTD_FR_WRITE);
		CHECK(f.recorded);
	}
	CHECK_EQ(dma(&e, SID_A, 0x9000, &byte, 1, MODEL_DMA_WRITE, &f), VTD_FR_WRITE);
	CHECK(!f.recorded);
	CHECK(rd32(&e, VTD_FSTS_REG) & VTD_FSTS_PFO);
	for (i = 0; i < 8; i++) {
		CHECK_EQ(rd64(&e, frcd(&e, i)), 0x1000 * (i + 1));
		CHECK(!(rd64(&e, frcd(&e, i) + 8) & VTD_FRCD_HI_T));
	}
	/* Service two, clear PFO: the next fault goes to register 0 again (wrapped). */
	wr32(&e, frcd(&e, 0) + 12, 1u << 31);
	wr32(&e, frcd(&e, 1) + 12, 1u << 31);
	wr32(&e, VTD_FSTS_REG, (uint32_t)VTD_FSTS_PFO);
	CHECK(rd32(&e, VTD_FSTS_REG) & VTD_FSTS_PPF);
	CHECK_EQ(dma(&e, SID_A, 0xa000, &byte, 1, MODEL_DMA_WRITE, &f), VTD_FR_WRITE);
	CHECK(f.recorded);
	CHECK_EQ(rd64(&e, frcd(&e, 0)), 0xa000);
	env_fini(&e);
}

TEST(fault_event_honours_the_interrupt_mask)
{
	struct model_config cfg;
	struct env e;
	uint8_t byte = 0;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	/* Masked (reset state): IP is set, nothing delivered until unmasked. */
	dma(&e, SID_A, 0x1000, &byte, 1, MODEL_DMA_READ, NULL);
	CHECK(rd32(&e, VTD_FECTL_REG) & VTD_FECTL_IP);
	CHECK_EQ(dmar_posix_machine_irqs(e.pm, MODEL_IRQ_FAULT), 0);
	wr32(&e, VTD_FECTL_REG, 0);
	CHECK_EQ(dmar_posix_machine_irqs(e.pm, MODEL_IRQ_FAULT), 1);
	CHECK(!(rd32(&e, VTD_FECTL_REG) & VTD_FECTL_IP));
	/* Unmasked: a new fault after servicing is delivered at once. */
	wr32(&e, frcd(&e, 0) + 12, 1u << 31);
	dma(&e, SID_A, 0x2000, &byte, 1, MODEL_DMA_READ, NULL);
	CHECK_EQ(dmar_posix_machine_irqs(e.pm, MODEL_IRQ_FAULT), 2);
	env_fini(&e);
}

/* ---- caches ---- */

TEST(stale_iotlb_entry_until_page_selective_invalidation)
{
	struct model_config cfg;
	struct env e;
	uint8_t *a, *b;
	uint64_t pa, pb, out;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	pa = dma_buf(&e, 4096, (void **)&a);
	pb = dma_buf(&e, 4096, (void **)&b);
	map(&e, 0x5000, pa, 1, RW);
	CHECK_EQ(dma_write_byte(&e, SID_A, 0x5000, 1), 0);
	CHECK_EQ(dmar_model_stats(e.m)->iotlb_misses, 1);
	map(&e, 0x5000, pb, 1, RW); /* PTE changed, no invalidation */
	CHECK_EQ(dma_write_byte(&e, SID_A, 0x5000, 2), 0);
	CHECK_EQ(a[0], 2);
	CHECK_EQ(b[0], 0);
	CHECK_EQ(dmar_model_stats(e.m)->iotlb_hits, 1);
	/* The tables say otherwise. */
	CHECK_EQ(dmar_model_translate(e.m, SID_A, 0x5000, MODEL_DMA_WRITE, &out, NULL), 0);
	CHECK_EQ(out, pb);
	/* Invalidating another page or domain changes nothing. */
	inval_iotlb_page(&e, 1, 0x6000, 0, false);
	inval_iotlb_page(&e, 2, 0x5000, 0, false);
	CHECK_EQ(dma_write_byte(&e, SID_A, 0x5000, 3), 0);
	CHECK_EQ(a[0], 3);
	inval_iotlb_page(&e, 1, 0x5000, 0, false);
	CHECK_EQ(VTD_IOTLB_IAIG(rd64(&e, iotlb_reg(&e))), VTD_IOTLB_PAGE);
	CHECK_EQ(dma_write_byte(&e, SID_A, 0x5000, 4), 0);
	CHECK_EQ(b[0], 4);
	CHECK_EQ(a[0], 3);
	CHECK_EQ(dmar_model_stats(e.m)->iotlb_inval[VTD_IOTLB_PAGE], 3);
	CHECK_EQ(dmar_model_stats(e.m)->iotlb_inval_pages, 3);
	env_fini(&e);
}

TEST(address_mask_covers_a_range_and_mamv_limits_it)
{
	struct model_config cfg;
	struct env e;
	uint32_t off;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	for (uint64_t i = 0; i < 8; i++) {
		map(&e, 0x100000 + i * 0x1000, 0x43000000 + i * 0x1000, 1, RW);
		CHECK_EQ(dma_write_byte(&e, SID_A, 0x100000 + i * 0x1000, 1), 0);
	}
	CHECK_EQ(dmar_model_iotlb_entries(e.m), 8);
	inval_iotlb_page(&e, 1, 0x104000, 2, false); /* 4 pages from 0x104000 */
	CHECK_EQ(dmar_model_iotlb_entries(e.m), 4);
	/* AM beyond MAMV (18) is refused: IAIG reads 0. */
	off = iotlb_reg(&e);
	wr64(&e, off - 8, 0x100000 | 19);
	wr64(&e, off, VTD_IOTLB_IVT | VTD_IOTLB_IIRG(VTD_IOTLB_PAGE) | VTD_IOTLB_DID(1));
	CHECK_EQ(VTD_IOTLB_IAIG(rd64(&e, off)), 0);
	CHECK(!(rd64(&e, off) & VTD_IOTLB_IVT));
	CHECK_EQ(dmar_model_iotlb_entries(e.m), 4);
	/* Domain-selective empties the domain. */
	wr64(&e, off, VTD_IOTLB_IVT | VTD_IOTLB_IIRG(VTD_IOTLB_DOMAIN) | VTD_IOTLB_DID(1));
	CHECK_EQ(VTD_IOTLB_IAIG(rd64(&e, off)), VTD_IOTLB_DOMAIN);
	CHECK_EQ(dmar_model_iotlb_entries(e.m), 0);
	/* A wide mask (2 MiB from 0) covers them all; the 2 MiB above stays. */
	for (uint64_t i = 0; i < 8; i++)
		CHECK_EQ(dma_write_byte(&e, SID_A, 0x100000 + i * 0x1000, 1), 0);
	map(&e, 0x200000, 0x43000000, 1, RW);
	CHECK_EQ(dma_write_byte(&e, SID_A, 0x200000, 1), 0);
	CHECK_EQ(dmar_model_iotlb_entries(e.m), 9);
	inval_iotlb_page(&e, 1, 0, 9, false);
	CHECK_EQ(dmar_model_iotlb_entries(e.m), 1);
	env_fini(&e);

	/* Without PSI a page-selective request is done domain-wide, as IAIG reports. */
	cfg.psi = false;
	cfg.mamv = 0;
	env_init(&e, &cfg, 3);
	map(&e, 0x100000, 0x43000000, 1, RW);
	map(&e, 0x200000, 0x43001000, 1, RW);
	dma_write_byte(&e, SID_A, 0x100000, 1);
	dma_write_byte(&e, SID_A, 0x200000, 1);
	inval_iotlb_page(&e, 1, 0x100000, 0, false);
	CHECK_EQ(VTD_IOTLB_IAIG(rd64(&e, iotlb_reg(&e))), VTD_IOTLB_DOMAIN);
	CHECK_EQ(dmar_model_iotlb_entries(e.m), 0);
	env_fini(&e);
}

TEST(invalidation_hint_keeps_paging_structure_cache)
{
	struct model_config cfg;
	struct env e;
	uint8_t *a, *b;
	uint64_t pa, pb, pde, new_pt;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	pa = dma_buf(&e, 4096, (void **)&a);
	pb = dma_buf(&e, 4096, (void **)&b);
	map(&e, 0x200000, pa, 1, RW);
	CHECK_EQ(dma_write_byte(&e, SID_A, 0x200000, 1), 0);
	/* Replace the whole page table under the PDE. */
	new_pt = new_page(&e);
	put(&e, new_pt, pb | RW);
	pde = entry_addr(&e, e.slpt, 3, 0x200000, 2);
	put(&e, pde, new_pt | RW);
	/* Leaf-only invalidation: the cached PDE still leads to the old table. */
	inval_iotlb_page(&e, 1, 0x200000, 0, true);
	CHECK_EQ(dma_write_byte(&e, SID_A, 0x200000, 2), 0);
	CHECK_EQ(a[0], 2);
	CHECK(dmar_model_stats(e.m)->psc_hits >= 1);
	inval_iotlb_page(&e, 1, 0x200000, 0, false);
	CHECK_EQ(dma_write_byte(&e, SID_A, 0x200000, 3), 0);
	CHECK_EQ(b[0], 3);
	env_fini(&e);
}

TEST(stale_context_entry_until_device_invalidation)
{
	struct model_config cfg;
	struct env e;
	uint8_t *a;
	uint64_t pa, slpt2;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	pa = dma_buf(&e, 4096, (void **)&a);
	map(&e, 0x1000, pa, 1, RW);
	CHECK_EQ(dma_write_byte(&e, SID_A, 0x1000, 1), 0);
	CHECK_EQ(dmar_model_ctx_entries(e.m), 1);
	/* Move SID_A to an empty domain 2 without invalidating its context entry. */
	slpt2 = new_page(&e);
	attach(&e, SID_A, 2, slpt2, 3);
	CHECK_EQ(dma_write_byte(&e, SID_A, 0x1000, 2), 0);
	CHECK_EQ(a[0], 2);
	/* Device-selective for the wrong domain, or a different function: no effect. */
	inval_ctx_device(&e, 2, SID_A);
	inval_ctx_device(&e, 1, (uint16_t)(SID_A + 1));
	CHECK_EQ(dma_write_byte(&e, SID_A, 0x1000, 3), 0);
	CHECK_EQ(a[0], 3);
	/* The old domain, with the function mask covering SID_A's function. */
	wr64(&e, VTD_CCMD_REG, VTD_CCMD_ICC | VTD_CCMD_CIRG(VTD_CC_DEVICE) |
				       VTD_CCMD_SID(SID_A + 1) | VTD_CCMD_FM(3) | VTD_CCMD_DID(1));
	CHECK_EQ(VTD_CCMD_CAIG(rd64(&e, VTD_CCMD_REG)), VTD_CC_DEVICE);
	CHECK_EQ(dmar_model_ctx_entries(e.m), 0);
	CHECK_EQ(dma_write_byte(&e, SID_A, 0x1000, 4), VTD_FR_WRITE);
	CHECK_EQ(a[0], 3);
	CHECK_EQ(dmar_model_stats(e.m)->cc_inval[VTD_CC_DEVICE], 3);
	env_fini(&e);
}

TEST(caching_mode_caches_not_present_entries)
{
	struct model_config cfg;
	struct env e;
	uint8_t *a;
	uint64_t pa;

	dmar_model_config_default(&cfg);
	cfg.cm = true;
	env_init(&e, &cfg, 3);
	pa = dma_buf(&e, 4096, (void **)&a);
	CHECK_EQ(dma_write_byte(&e, SID_A, 0x1000, 1), VTD_FR_WRITE);
	map(&e, 0x1000, pa, 1, RW);
	CHECK_EQ(dma_write_byte(&e, SID_A, 0x1000, 1), VTD_FR_WRITE); /* cached "not present" */
	inval_iotlb_page(&e, 1, 0x1000, 0, false);
	CHECK_EQ(dma_write_byte(&e, SID_A, 0x1000, 7), 0);
	CHECK_EQ(a[0], 7);
	/* A not-present context entry is cached too, under domain 0. */
	CHECK_EQ(dma_write_byte(&e, SID_B, 0x1000, 1), VTD_FR_ROOT_NOT_PRESENT);
	attach(&e, SID_B, 1, e.slpt, 3);
	CHECK_EQ(dma_write_byte(&e, SID_B, 0x1000, 1), VTD_FR_ROOT_NOT_PRESENT);
	inval_ctx_device(&e, 0, SID_B);
	CHECK_EQ(dma_write_byte(&e, SID_B, 0x1000, 8), 0);
	CHECK_EQ(a[0], 8);
	env_fini(&e);

	/* Without caching mode a new mapping is seen at once. */
	cfg.cm = false;
	env_init(&e, &cfg, 3);
	pa = dma_buf(&e, 4096, (void **)&a);
	CHECK_EQ(dma_write_byte(&e, SID_A, 0x1000, 1), VTD_FR_WRITE);
	map(&e, 0x1000, pa, 1, RW);
	CHECK_EQ(dma_write_byte(&e, SID_A, 0x1000, 9), 0);
	CHECK_EQ(a[0], 9);
	env_fini(&e);
}

TEST(iotlb_capacity_empties_the_cache_when_full)
{
	struct model_config cfg;
	struct env e;

	dmar_model_config_default(&cfg);
	cfg.iotlb_capacity = 4;
	env_init(&e, &cfg, 3);
	for (uint64_t i = 0; i < 6; i++) {
		map(&e, i * 0x1000, 0x43000000 + i * 0x1000, 1, RW);
		CHECK_EQ(dma_write_byte(&e, SID_A, i * 0x1000, 1), 0);
		CHECK(dmar_model_iotlb_entries(e.m) <= 4);
	}
	CHECK_EQ(dmar_model_iotlb_entries(e.m), 2);
	env_fini(&e);
}

/* ---- queued invalidation ---- */

struct qi {
	uint64_t ring;
	uint64_t *desc;
	uint64_t status_pa;
	volatile uint32_t *status;
	unsigned tail;
};

static void qi_enable(struct env *e, struct qi *q)
{
	void *va;

	memset(q, 0, sizeof(*q));
	q->ring = dma_buf(e, 4096, &va);
	q->desc = va;
	q->status_pa = dma_buf(e, 4096, &va);
	q->status = va;
	wr64(e, VTD_IQT_REG, 0);
	wr64(e, VTD_IQA_REG, q->ring); /* QS 0: 256 descriptors */
	wr32(e, VTD_GCMD_REG, (uint32_t)(VTD_GCMD_TE | VTD_GCMD_QIE));
	REQUIRE(rd32(e, VTD_GSTS_REG) & VTD_GSTS_QIES);
}

static void qi_push(struct qi *q, uint64_t lo, uint64_t hi)
{
	q->desc[q->tail * 2] = lo;
	q->desc[q->tail * 2 + 1] = hi;
	q->tail = (q->tail + 1) % 256;
}

static void qi_push_wait(struct qi *q, uint32_t data, bool irq)
{
	qi_push(q, VTD_INV_WAIT | VTD_INV_WAIT_SW | (irq ? VTD_INV_WAIT_IF : 0) |
			   VTD_INV_WAIT_SDATA(data),
		q->status_pa);
}

static void qi_submit(struct env *e, struct qi *q)
{
	wr64(e, VTD_IQT_REG, (uint64_t)q->tail << VTD_IQ_INDEX_SHIFT);
}

TEST(queued_invalidation_processes_descriptors_in_order)
{
	struct model_config cfg;
	struct env e;
	struct qi q;
	uint8_t *a, *b;
	uint64_t pa, pb;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	pa = dma_buf(&e, 4096, (void **)&a);
	pb = dma_buf(&e, 4096, (void **)&b);
	map(&e, 0x1000, pa, 1, RW);
	CHECK_EQ(dma_write_byte(&e, SID_A, 0x1000, 1), 0);
	map(&e, 0x1000, pb, 1, RW);
	qi_enable(&e, &q);
	qi_push(&q, VTD_INV_CC | VTD_INV_G(VTD_CC_GLOBAL), 0);
	qi_push(&q, VTD_INV_IOTLB | VTD_INV_G(VTD_IOTLB_PAGE) | VTD_INV_IOTLB_DID(1), 0x1000);
	qi_push(&q, VTD_INV_IEC, 0);
	qi_push_wait(&q, 0x600d, true);
	qi_submit(&e, &q);
	CHECK_EQ(*q.status, 0x600d);
	CHECK_EQ(rd64(&e, VTD_IQH_REG), 4u << VTD_IQ_INDEX_SHIFT);
	CHECK(rd32(&e, VTD_ICS_REG) & VTD_ICS_IWC);
	CHECK(rd32(&e, VTD_IECTL_REG) & VTD_FECTL_IP); /* masked at reset */
	CHECK_EQ(dmar_model_stats(e.m)->qi_desc[VTD_INV_CC], 1);
	CHECK_EQ(dmar_model_stats(e.m)->qi_desc[VTD_INV_IOTLB], 1);
	CHECK_EQ(dmar_model_stats(e.m)->qi_desc[VTD_INV_IEC], 1);
	CHECK_EQ(dmar_model_stats(e.m)->qi_wait, 1);
	CHECK_EQ(dmar_model_stats(e.m)->cc_inval[VTD_CC_GLOBAL], 1);
	CHECK_EQ(dma_write_byte(&e, SID_A, 0x1000, 5), 0);
	CHECK_EQ(b[0], 5);
	/* Unmasking delivers the pending completion event. */
	wr32(&e, VTD_IECTL_REG, 0);
	CHECK_EQ(dmar_posix_machine_irqs(e.pm, MODEL_IRQ_INVAL), 1);
	env_fini(&e);
}

TEST(invalid_descriptor_sets_iqe_and_stops_the_queue)
{
	struct model_config cfg;
	struct env e;
	struct qi q;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	qi_enable(&e, &q);
	qi_push_wait(&q, 1, false);
	qi_push(&q, VTD_INV_IOTLB | VTD_INV_G(VTD_IOTLB_GLOBAL) | (1ull << 40), 0); /* reserved */
	qi_push_wait(&q, 2, false);
	qi_submit(&e, &q);
	CHECK_EQ(*q.status, 1);
	CHECK(rd32(&e, VTD_FSTS_REG) & VTD_FSTS_IQE);
	CHECK_EQ(rd64(&e, VTD_IQH_REG), 1u << VTD_IQ_INDEX_SHIFT);
	CHECK_EQ(dmar_model_stats(e.m)->qi_errors, 1);
	/* More work is not processed while IQE is set. */
	qi_push_wait(&q, 3, false);
	qi_submit(&e, &q);
	CHECK_EQ(*q.status, 1);
	/* Fix the descriptor, clear IQE: the queue goes on from IQH. */
	q.desc[2] = VTD_INV_IOTLB | VTD_INV_G(VTD_IOTLB_GLOBAL);
	wr32(&e, VTD_FSTS_REG, (uint32_t)VTD_FSTS_IQE);
	CHECK_EQ(*q.status, 3);
	CHECK_EQ(rd64(&e, VTD_IQH_REG), 4u << VTD_IQ_INDEX_SHIFT);
	env_fini(&e);

	/* Other invalid descriptors: unknown type, granularity 0, AM beyond MAMV, a
	 * device-TLB descriptor without ECAP.DT. */
	static const uint64_t bad[][2] = {
		{ 0x7, 0 },
		{ VTD_INV_CC, 0 },
		{ VTD_INV_IOTLB | VTD_INV_G(VTD_IOTLB_PAGE), 0x1000 | 19 },
		{ VTD_INV_DEVTLB, 0 },
	};
	for (unsigned i = 0; i < DMAR_ARRAY_SIZE(bad); i++) {
		env_init(&e, &cfg, 3);
		qi_enable(&e, &q);
		qi_push(&q, bad[i][0], bad[i][1]);
		qi_submit(&e, &q);
		CHECK(rd32(&e, VTD_FSTS_REG) & VTD_FSTS_IQE);
		CHECK_EQ(rd64(&e, VTD_IQH_REG), 0);
		env_fini(&e);
	}
}

TEST(register_invalidation_is_ignored_once_qi_is_on)
{
	struct model_config cfg;
	struct env e;
	struct qi q;
	int i;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	qi_enable(&e, &q);
	wr64(&e, VTD_CCMD_REG, VTD_CCMD_ICC | VTD_CCMD_CIRG(VTD_CC_GLOBAL));
	wr64(&e, iotlb_reg(&e), VTD_IOTLB_IVT | VTD_IOTLB_IIRG(VTD_IOTLB_GLOBAL));
	for (i = 0; i < 100; i++) {
		CHECK(rd64(&e, VTD_CCMD_REG) & VTD_CCMD_ICC);
		CHECK(rd64(&e, iotlb_reg(&e)) & VTD_IOTLB_IVT);
	}
	CHECK_EQ(dmar_model_stats(e.m)->cc_inval[VTD_CC_GLOBAL], 0);
	CHECK_EQ(dmar_model_stats(e.m)->iotlb_inval[VTD_IOTLB_GLOBAL], 0);
	/* Disabling QI resets IQH. */
	qi_push_wait(&q, 1, false);
	qi_submit(&e, &q);
	CHECK_EQ(rd64(&e, VTD_IQH_REG), 1u << VTD_IQ_INDEX_SHIFT);
	wr32(&e, VTD_GCMD_REG, (uint32_t)VTD_GCMD_TE);
	CHECK_EQ(rd64(&e, VTD_IQH_REG), 0);
	env_fini(&e);
}

/* ---- write buffer, slow hardware, null hardware ---- */

TEST(rwbf_table_writes_visible_only_after_wbf)
{
	struct model_config cfg;
	struct env e;
	uint8_t *a;
	uint64_t pa;

	dmar_model_config_default(&cfg);
	cfg.rwbf = true;
	cfg.c = true;
	env_init(&e, &cfg, 3);
	pa = dma_buf(&e, 4096, (void **)&a);
	/* Written (coherent unit: no flush needed) but still in the write buffer. */
	*(uint64_t *)va_of(&e, entry_addr(&e, e.slpt, 3, 0x1000, 1)) = pa | RW;
	CHECK_EQ(dma_write_byte(&e, SID_A, 0x1000, 1), VTD_FR_WRITE);
	wr32(&e, VTD_GCMD_REG, (uint32_t)(VTD_GCMD_TE | VTD_GCMD_WBF));
	CHECK(!(rd32(&e, VTD_GSTS_REG) & VTD_GSTS_WBFS));
	CHECK_EQ(dmar_model_stats(e.m)->wbf, 1);
	CHECK_EQ(dma_write_byte(&e, SID_A, 0x1000, 6), 0);
	CHECK_EQ(a[0], 6);
	env_fini(&e);
}

TEST(status_bits_take_n_polls_or_never_come)
{
	struct model_config cfg;
	struct env e;
	int i;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	dmar_model_set_ack_delay(e.m, MODEL_ACK_TE, 3);
	wr32(&e, VTD_GCMD_REG, 0);
	for (i = 0; i < 3; i++)
		CHECK(rd32(&e, VTD_GSTS_REG) & VTD_GSTS_TES);
	CHECK(!(rd32(&e, VTD_GSTS_REG) & VTD_GSTS_TES));

	dmar_model_set_ack_delay(e.m, MODEL_ACK_CCMD, 2);
	wr64(&e, VTD_CCMD_REG, VTD_CCMD_ICC | VTD_CCMD_CIRG(VTD_CC_GLOBAL));
	CHECK(rd64(&e, VTD_CCMD_REG) & VTD_CCMD_ICC);
	CHECK(rd64(&e, VTD_CCMD_REG) & VTD_CCMD_ICC);
	CHECK(!(rd64(&e, VTD_CCMD_REG) & VTD_CCMD_ICC));
	CHECK_EQ(VTD_CCMD_CAIG(rd64(&e, VTD_CCMD_REG)), VTD_CC_GLOBAL);

	dmar_model_set_ack_delay(e.m, MODEL_ACK_SRTP, MODEL_NEVER);
	wr32(&e, VTD_GCMD_REG, (uint32_t)VTD_GCMD_SRTP);
	for (i = 0; i < 1000; i++)
		CHECK(!(rd32(&e, VTD_GSTS_REG) & VTD_GSTS_RTPS));

	dmar_model_set_ack_delay(e.m, MODEL_ACK_IOTLB, MODEL_NEVER);
	wr64(&e, iotlb_reg(&e), VTD_IOTLB_IVT | VTD_IOTLB_IIRG(VTD_IOTLB_GLOBAL));
	for (i = 0; i < 100; i++)
		dmar_model_tick(e.m);
	CHECK(rd64(&e, iotlb_reg(&e)) & VTD_IOTLB_IVT);
	env_fini(&e);
}

TEST(wait_descriptor_status_comes_after_n_polls)
{
	struct model_config cfg;
	struct env e;
	struct qi q;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	qi_enable(&e, &q);
	dmar_model_set_ack_delay(e.m, MODEL_ACK_QI, 5);
	qi_push_wait(&q, 0x77, false);
	qi_submit(&e, &q);
	for (int i = 0; i < 5; i++) {
		CHECK_EQ(*q.status, 0);
		dmar_model_tick(e.m);
	}
	CHECK_EQ(*q.status, 0);
	dmar_model_tick(e.m);
	CHECK_EQ(*q.status, 0x77);
	env_fini(&e);
}

TEST(null_hw_acknowledges_everything_at_once)
{
	struct model_config cfg;
	struct env e;
	struct qi q;

	dmar_model_config_default(&cfg);
	cfg.null_hw = true;
	env_init(&e, &cfg, 3);
	dmar_model_set_ack_delay(e.m, MODEL_ACK_TE, MODEL_NEVER); /* ignored */
	wr32(&e, VTD_GCMD_REG, 0);
	CHECK(!(rd32(&e, VTD_GSTS_REG) & VTD_GSTS_TES));
	wr64(&e, VTD_CCMD_REG, VTD_CCMD_ICC | VTD_CCMD_CIRG(VTD_CC_DOMAIN));
	CHECK_EQ(rd64(&e, VTD_CCMD_REG) & VTD_CCMD_ICC, 0);
	CHECK_EQ(VTD_CCMD_CAIG(rd64(&e, VTD_CCMD_REG)), VTD_CC_DOMAIN);
	wr64(&e, iotlb_reg(&e), VTD_IOTLB_IVT | VTD_IOTLB_IIRG(VTD_IOTLB_GLOBAL));
	CHECK_EQ(rd64(&e, iotlb_reg(&e)) & VTD_IOTLB_IVT, 0);
	CHECK_EQ(VTD_IOTLB_IAIG(rd64(&e, iotlb_reg(&e))), VTD_IOTLB_GLOBAL);
	qi_enable(&e, &q);
	qi_push(&q, VTD_INV_IOTLB | VTD_INV_G(VTD_IOTLB_GLOBAL), 0);
	qi_push_wait(&q, 0x99, false);
	qi_submit(&e, &q);
	CHECK_EQ(*q.status, 0x99);
	CHECK_EQ(rd64(&e, VTD_IQH_REG), 2u << VTD_IQ_INDEX_SHIFT);
	CHECK_EQ(dmar_model_stats(e.m)->qi_wait, 1);
	env_fini(&e);
}

/* ---- more registers and invalidation granularities ---- */

TEST(sixty_four_bit_registers_as_two_halves)
{
	struct model_config cfg;
	struct env e;
	uint8_t *a;
	uint64_t pa;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	pa = dma_buf(&e, 4096, (void **)&a);
	map(&e, 0x1000, pa, 1, RW);
	dma_write_byte(&e, SID_A, 0x1000, 1);
	wr32(&e, VTD_RTADDR_REG, 0x12345000u);
	wr32(&e, VTD_RTADDR_REG + 4, 0x1u);
	CHECK_EQ(rd64(&e, VTD_RTADDR_REG), 0x112345000ull);
	/* CCMD: the low half alone does nothing, the high half with ICC runs it. */
	wr32(&e, VTD_CCMD_REG, 0);
	CHECK_EQ(dmar_model_ctx_entries(e.m), 1);
	wr32(&e, VTD_CCMD_REG + 4, (uint32_t)((VTD_CCMD_ICC | VTD_CCMD_CIRG(VTD_CC_GLOBAL)) >> 32));
	CHECK_EQ(dmar_model_ctx_entries(e.m), 0);
	CHECK_EQ(rd32(&e, VTD_CCMD_REG + 4) >> 27 & 3, VTD_CC_GLOBAL); /* CAIG */
	env_fini(&e);
}

TEST(domain_selective_context_invalidation_spares_other_domains)
{
	struct model_config cfg;
	struct env e;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	attach(&e, SID_B, 2, new_page(&e), 3);
	dma_write_byte(&e, SID_A, 0x1000, 1);
	dma_write_byte(&e, SID_B, 0x1000, 1);
	CHECK_EQ(dmar_model_ctx_entries(e.m), 2);
	wr64(&e, VTD_CCMD_REG, VTD_CCMD_ICC | VTD_CCMD_CIRG(VTD_CC_DOMAIN) | VTD_CCMD_DID(2));
	CHECK_EQ(VTD_CCMD_CAIG(rd64(&e, VTD_CCMD_REG)), VTD_CC_DOMAIN);
	CHECK_EQ(dmar_model_ctx_entries(e.m), 1);
	/* Granularity 0 is invalid: CAIG 0, nothing done. */
	wr64(&e, VTD_CCMD_REG, VTD_CCMD_ICC);
	CHECK_EQ(VTD_CCMD_CAIG(rd64(&e, VTD_CCMD_REG)), 0);
	CHECK(!(rd64(&e, VTD_CCMD_REG) & VTD_CCMD_ICC));
	CHECK_EQ(dmar_model_ctx_entries(e.m), 1);
	env_fini(&e);
}

TEST(queue_wraps_around_its_end)
{
	struct model_config cfg;
	struct env e;
	struct qi q;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	qi_enable(&e, &q);
	for (unsigned batch = 0; batch < 10; batch++) {
		for (unsigned i = 0; i < 39; i++)
			qi_push(&q, VTD_INV_IEC, 0);
		qi_push_wait(&q, batch + 1, false);
		qi_submit(&e, &q);
		CHECK_EQ(*q.status, batch + 1);
		CHECK_EQ(rd64(&e, VTD_IQH_REG), (uint64_t)q.tail << VTD_IQ_INDEX_SHIFT);
	}
	CHECK_EQ(dmar_model_stats(e.m)->qi_desc[VTD_INV_IEC], 390);
	/* A tail beyond a one-page ring is an error. */
	wr64(&e, VTD_IQT_REG, 300u << VTD_IQ_INDEX_SHIFT);
	CHECK(rd32(&e, VTD_FSTS_REG) & VTD_FSTS_IQE);
	env_fini(&e);
}

/* Random register writes and random table contents: every DMA ends in success, a
 * known fault reason, or a bus error, and nothing crashes (run under the sanitizers). */
TEST(garbage_registers_and_tables_never_crash)
{
	static const unsigned known[] = { 0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0x9, 0xa, 0xb, 0xc };
	struct model_config cfg;
	uint64_t seed = 0x9e3779b97f4a7c15ull;

	for (unsigned round = 0; round < 20; round++) {
		struct env e;
		uint64_t pages[8];

		dmar_model_config_default(&cfg);
		cfg.cm = round & 1;
		cfg.nfr = 1 + round % 4;
		cfg.sagaw = VTD_SAGAW_39 | VTD_SAGAW_48 | VTD_SAGAW_57;
		cfg.mgaw = 48;
		env_init(&e, &cfg, 3 + round % 3);
		for (unsigned i = 0; i < 8; i++)
			pages[i] = new_page(&e);
		for (unsigned step = 0; step < 400; step++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			uint64_t v = seed ^ (seed >> 29), iova, pte;
			uint8_t data[64];
			int rc;

			switch (step % 4) {
			case 0: /* a table entry: random, or pointing at one of our pages */
				pte = (v & 1) ? pages[(v >> 8) & 7] | (v & 0x8f) : v;
				put(&e, (v & 1 ? e.slpt : pages[(v >> 4) & 7]) + ((v >> 12) & 511) * 8, pte);
				put(&e, e.root + ((v >> 20) & 255) * 16, pages[(v >> 28) & 7] | (v >> 40 & 1));
				break;
			case 1: /* a register, avoiding the ones that only end the experiment */
				if (((v >> 32) & 0xffc) != VTD_GCMD_REG)
					wr32(&e, (uint32_t)((v >> 32) & 0xffc), (uint32_t)v);
				break;
			default:
				iova = (step & 4) ? (v & 0x3fffff000ull) : v;
				rc = dma(&e, (uint16_t)(v >> 16), iova, data, (size_t)(v >> 50) % 64 + 1,
					 (v & 2) ? MODEL_DMA_WRITE : MODEL_DMA_READ, NULL);
				if (rc > 0) {
					bool ok = false;

					for (unsigned k = 0; k < DMAR_ARRAY_SIZE(known); k++)
						ok |= (unsigned)rc == known[k];
					CHECK(ok);
				} else {
					CHECK(rc == 0 || rc == MODEL_DMA_BUS_ERROR);
				}
				break;
			}
		}
		env_fini(&e);
	}
}

/* ---- interrupt remapping ---- */

struct irt {
	uint64_t pa;
};

/* Points the unit at a fresh table of 2^(s+1) entries (EIME as asked) and turns
 * interrupt remapping on, with `more` GCMD enables (CFI) and whatever was on kept. */
static void ir_on(struct env *e, struct irt *t, unsigned s, bool eime, uint32_t more)
{
	uint32_t keep = rd32(e, VTD_GSTS_REG) & (uint32_t)(VTD_GSTS_TES | VTD_GSTS_QIES);

	t->pa = new_page(e);
	wr64(e, VTD_IRTA_REG, t->pa | VTD_IRTA_S(s) | (eime ? VTD_IRTA_EIME : 0));
	wr32(e, VTD_GCMD_REG, keep | (uint32_t)VTD_GCMD_SIRTP);
	REQUIRE(rd32(e, VTD_GSTS_REG) & VTD_GSTS_IRTPS);
	wr32(e, VTD_GCMD_REG, keep | (uint32_t)VTD_GCMD_IRE | more);
	REQUIRE(rd32(e, VTD_GSTS_REG) & VTD_GSTS_IRES);
}

static void irte_put(struct env *e, struct irt *t, unsigned i, uint64_t lo, uint64_t hi)
{
	put(e, t->pa + i * 16u + 8u, hi);
	put(e, t->pa + i * 16u, lo);
}

/* A present entry: vector to the xAPIC id `dest`, from `sid` (SVT 1, all bits). */
static uint64_t irte_lo(unsigned vector, unsigned dest)
{
	return VTD_IRTE_LO_P | VTD_IRTE_LO_V(vector) | VTD_IRTE_LO_DST_XAPIC(dest);
}

static uint64_t irte_hi(uint16_t sid)
{
	return VTD_IRTE_HI_SVT(VTD_SVT_SID) | VTD_IRTE_HI_SID(sid);
}

static uint64_t remap_addr(unsigned handle, bool shv)
{
	return VTD_MSI_ADDR_BASE | VTD_MSI_ADDR_HANDLE((uint64_t)handle) | VTD_MSI_ADDR_IF |
	       (shv ? VTD_MSI_ADDR_SHV : 0);
}

static int intr(struct env *e, uint16_t sid, unsigned index, struct model_irq_delivery *d)
{
	return dmar_model_interrupt(e->m, sid, remap_addr(index, false), 0, d);
}

static void clear_frcd(struct env *e, unsigned i)
{
	wr32(e, frcd(e, i) + 12, 1u << 31);
}

TEST(interrupt_is_remapped_through_its_entry)
{
	struct model_config cfg;
	struct env e;
	struct irt t;
	struct model_irq_delivery d;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	/* IR off: everything passes in compatibility format. */
	CHECK_EQ(dmar_model_interrupt(e.m, SID_A, 0xfee0300cull, 0x8123, &d), 0);
	CHECK(!d.remapped && d.level && d.logical && d.redirection_hint);
	CHECK_EQ(d.dest, 3);
	CHECK_EQ(d.vector, 0x23);
	CHECK_EQ(d.delivery_mode, 1);
	/* Not an interrupt at all outside 0xFEEx_xxxx. */
	CHECK_EQ(dmar_model_interrupt(e.m, SID_A, 0xfed00000ull, 0, &d), MODEL_DMA_BUS_ERROR);
	ir_on(&e, &t, 7, false, 0);
	irte_put(&e, &t, 5, irte_lo(0x41, 9) | VTD_IRTE_LO_TM | VTD_IRTE_LO_DM |
				    VTD_IRTE_LO_DLM(VTD_DLM_LOWPRI) | VTD_IRTE_LO_RH, irte_hi(SID_A));
	irte_put(&e, &t, 6, irte_lo(0x42, 10), irte_hi(SID_A));
	CHECK_EQ(intr(&e, SID_A, 5, &d), 0);
	CHECK(d.remapped && d.level && d.logical && d.redirection_hint);
	CHECK_EQ(d.index, 5);
	CHECK_EQ(d.vector, 0x41);
	CHECK_EQ(d.dest, 9);
	CHECK_EQ(d.delivery_mode, VTD_DLM_LOWPRI);
	/* SHV: handle 5 + sub-handle 1 = entry 6. */
	CHECK_EQ(dmar_model_interrupt(e.m, SID_A, remap_addr(5, true), 1, &d), 0);
	CHECK_EQ(d.index, 6);
	CHECK_EQ(d.vector, 0x42);
	/* Without SHV the data is not an index. */
	CHECK_EQ(dmar_model_interrupt(e.m, SID_A, remap_addr(5, false), 1, &d), 0);
	CHECK_EQ(d.index, 5);
	/* Handle bit 15 sits in address bit 2. */
	CHECK_EQ(VTD_MSI_ADDR_HANDLE_GET(remap_addr(0x8005, false)), 0x8005);
	CHECK(remap_addr(0x8005, false) & 4);
	CHECK_EQ(dmar_model_stats(e.m)->intr_remapped, 3);
	CHECK_EQ(rd32(&e, VTD_FSTS_REG), 0);
	env_fini(&e);
}

TEST(every_interrupt_fault_reason_is_recorded_with_the_index_in_fi)
{
	static const struct {
		unsigned reason, index;
		uint64_t addr;
		uint32_t data;
		uint64_t lo, hi; /* entry 3 */
	} cases[] = {
		/* Data bits 31:16 with SHV; an address above 4 GiB. */
		{ 0x20, 0, VTD_MSI_ADDR_BASE | 0x64 | 0x18, 0x10000, 0, 0 },
		{ 0x20, 0, (1ull << 32) | VTD_MSI_ADDR_BASE | 0x70, 0, 0, 0 },
		{ 0x21, 16, VTD_MSI_ADDR_BASE | (16 << 5) | 0x10, 0, 0, 0 },
		{ 0x21, 17, VTD_MSI_ADDR_BASE | (15 << 5) | 0x18, 2, 0, 0 },
		{ 0x22, 3, VTD_MSI_ADDR_BASE | (3 << 5) | 0x10, 0, VTD_IRTE_LO_V(0x41), 0 },
		/* Reserved: low bits, posted mode, DST outside the xAPIC id, DLM 3, SVT 3,
		 * high bits. */
		{ 0x24, 3, VTD_MSI_ADDR_BASE | (3 << 5) | 0x10, 0, VTD_IRTE_LO_P | (1ull << 13), 0 },
		{ 0x24, 3, VTD_MSI_ADDR_BASE | (3 << 5) | 0x10, 0, VTD_IRTE_LO_P | VTD_IRTE_LO_IM, 0 },
		{ 0x24, 3, VTD_MSI_ADDR_BASE | (3 << 5) | 0x10, 0, VTD_IRTE_LO_P | (1ull << 32), 0 },
		{ 0x24, 3, VTD_MSI_ADDR_BASE | (3 << 5) | 0x10, 0, VTD_IRTE_LO_P | VTD_IRTE_LO_DLM(3), 0 },
		{ 0x24, 3, VTD_MSI_ADDR_BASE | (3 << 5) | 0x10, 0, VTD_IRTE_LO_P, VTD_IRTE_HI_SVT(3) },
		{ 0x24, 3, VTD_MSI_ADDR_BASE | (3 << 5) | 0x10, 0, VTD_IRTE_LO_P, 1ull << 40 },
		{ 0x25, 0, VTD_MSI_ADDR_BASE, 0x30, 0, 0 },
		{ 0x26, 3, VTD_MSI_ADDR_BASE | (3 << 5) | 0x10, 0, VTD_IRTE_LO_P,
		  VTD_IRTE_HI_SVT(VTD_SVT_SID) | VTD_IRTE_HI_SID(SID_A) },
	};
	struct model_config cfg;

	dmar_model_config_default(&cfg);
	for (unsigned i = 0; i < DMAR_ARRAY_SIZE(cases); i++) {
		struct env e;
		struct irt t;
		struct model_irq_delivery d;
		char name[32];

		snprintf(name, sizeof(name), "case %u (reason %#x)", i, cases[i].reason);
		harness_set_context(name);
		env_init(&e, &cfg, 3);
		ir_on(&e, &t, 3, false, 0); /* 16 entries */
		irte_put(&e, &t, 3, cases[i].lo, cases[i].hi);
		CHECK_EQ(dmar_model_interrupt(e.m, SID_B, cases[i].addr, cases[i].data, &d),
			 cases[i].reason);
		CHECK(d.recorded);
		CHECK_EQ(d.index, cases[i].index);
		uint64_t hi = rd64(&e, frcd(&e, 0) + 8);
		CHECK(hi & VTD_FRCD_HI_F);
		CHECK_EQ(VTD_FRCD_HI_FR(hi), cases[i].reason);
		CHECK_EQ(VTD_FRCD_HI_SID(hi), SID_B);
		CHECK(!(hi & VTD_FRCD_HI_T)); /* an interrupt request is a write */
		CHECK_EQ(rd64(&e, frcd(&e, 0)), (uint64_t)cases[i].index << 48);
		CHECK(rd32(&e, VTD_FSTS_REG) & VTD_FSTS_PPF);
		/* Nothing malformed is cached; a good entry is, whoever asked for it. */
		CHECK_EQ(dmar_model_iec_entries(e.m), cases[i].reason == 0x26);
		env_fini(&e);
	}
	harness_set_context(NULL);
}

TEST(table_outside_memory_faults_0x23)
{
	struct model_config cfg;
	struct env e;
	struct model_irq_delivery d;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	/* IRE without SIRTP: IRTA's reset value, 2 entries at address 0 (not memory). */
	wr32(&e, VTD_GCMD_REG, (uint32_t)(VTD_GCMD_TE | VTD_GCMD_IRE));
	CHECK_EQ(intr(&e, SID_A, 1, &d), VTD_FR_IR_ROOT_INVAL);
	CHECK(d.recorded);
	CHECK_EQ(rd64(&e, frcd(&e, 0)), 1ull << 48);
	CHECK_EQ(VTD_FRCD_HI_FR(rd64(&e, frcd(&e, 0) + 8)), 0x23);
	clear_frcd(&e, 0);
	CHECK_EQ(intr(&e, SID_A, 2, &d), VTD_FR_IR_INDEX_OVER);
	env_fini(&e);
}

TEST(fpd_in_the_entry_suppresses_only_qualified_interrupt_faults)
{
	struct model_config cfg;
	struct env e;
	struct irt t;
	struct model_irq_delivery d;

	dmar_model_config_default(&cfg);
	cfg.nfr = 4;
	env_init(&e, &cfg, 3);
	ir_on(&e, &t, 3, false, 0);
	irte_put(&e, &t, 1, VTD_IRTE_LO_FPD, 0);                              /* not present */
	irte_put(&e, &t, 2, irte_lo(0x41, 0) | VTD_IRTE_LO_FPD, irte_hi(SID_A)); /* other sid */
	irte_put(&e, &t, 3, irte_lo(0x41, 0) | VTD_IRTE_LO_FPD | (1ull << 12), 0); /* reserved */
	CHECK_EQ(intr(&e, SID_B, 1, &d), VTD_FR_IR_ENTRY_P);
	CHECK(!d.recorded);
	CHECK_EQ(intr(&e, SID_B, 2, &d), VTD_FR_IR_SID_ERR);
	CHECK(!d.recorded);
	CHECK_EQ(intr(&e, SID_B, 3, &d), VTD_FR_IR_IRTE_RSVD);
	CHECK(!d.recorded);
	CHECK_EQ(dmar_model_stats(e.m)->faults_suppressed, 3);
	CHECK_EQ(rd32(&e, VTD_FSTS_REG), 0);
	/* Faults found before an entry is read are recorded whatever it says. */
	CHECK_EQ(intr(&e, SID_B, 16, &d), VTD_FR_IR_INDEX_OVER);
	CHECK(d.recorded);
	env_fini(&e);
}

TEST(compatibility_format_needs_cfis_and_no_eime)
{
	struct model_config cfg;
	struct env e;
	struct irt t;
	struct model_irq_delivery d;

	dmar_model_config_default(&cfg);
	cfg.eim = true;
	cfg.nfr = 4;
	env_init(&e, &cfg, 3);
	ir_on(&e, &t, 3, false, (uint32_t)VTD_GCMD_CFI);
	CHECK(rd32(&e, VTD_GSTS_REG) & VTD_GSTS_CFIS);
	CHECK_EQ(dmar_model_interrupt(e.m, SID_A, 0xfee00000ull, 0x30, &d), 0);
	CHECK(!d.remapped);
	/* CFI cleared (the other enables kept): blocked. */
	wr32(&e, VTD_GCMD_REG, (uint32_t)(VTD_GCMD_TE | VTD_GCMD_IRE));
	CHECK(!(rd32(&e, VTD_GSTS_REG) & VTD_GSTS_CFIS));
	CHECK(rd32(&e, VTD_GSTS_REG) & VTD_GSTS_IRES);
	CHECK_EQ(dmar_model_interrupt(e.m, SID_A, 0xfee00000ull, 0x30, &d), VTD_FR_IR_REQ_COMPAT);
	/* With EIME, blocked even with CFIS. */
	ir_on(&e, &t, 3, true, (uint32_t)VTD_GCMD_CFI);
	CHECK(rd32(&e, VTD_GSTS_REG) & VTD_GSTS_CFIS);
	CHECK_EQ(dmar_model_interrupt(e.m, SID_A, 0xfee00000ull, 0x30, &d), VTD_FR_IR_REQ_COMPAT);
	env_fini(&e);
}

TEST(eime_takes_32_bit_destinations_only_with_ecap_eim)
{
	struct model_config cfg;
	struct env e;
	struct irt t;
	struct model_irq_delivery d;
	bool eime;

	dmar_model_config_default(&cfg);
	cfg.nfr = 4;
	/* Without ECAP.EIM, IRTA.EIME does not stick and DST is an 8-bit id. */
	env_init(&e, &cfg, 3);
	ir_on(&e, &t, 3, true, 0);
	CHECK(!(rd64(&e, VTD_IRTA_REG) & VTD_IRTA_EIME));
	dmar_model_irt(e.m, NULL, NULL, &eime);
	CHECK(!eime);
	irte_put(&e, &t, 0, VTD_IRTE_LO_P | VTD_IRTE_LO_V(0x40) | VTD_IRTE_LO_DST(0x1234), 0);
	CHECK_EQ(intr(&e, SID_A, 0, &d), VTD_FR_IR_IRTE_RSVD);
	irte_put(&e, &t, 1, irte_lo(0x40, 0xfe), 0);
	CHECK_EQ(intr(&e, SID_A, 1, &d), 0);
	CHECK_EQ(d.dest, 0xfe);
	env_fini(&e);

	cfg.eim = true;
	env_init(&e, &cfg, 3);
	ir_on(&e, &t, 3, true, 0);
	CHECK(rd64(&e, VTD_IRTA_REG) & VTD_IRTA_EIME);
	irte_put(&e, &t, 0, VTD_IRTE_LO_P | VTD_IRTE_LO_V(0x40) | VTD_IRTE_LO_DST(0x12345678), 0);
	CHECK_EQ(intr(&e, SID_A, 0, &d), 0);
	CHECK_EQ(d.dest, 0x12345678);
	/* The same unit with EIME clear: xAPIC ids again. */
	ir_on(&e, &t, 3, false, 0);
	irte_put(&e, &t, 0, VTD_IRTE_LO_P | VTD_IRTE_LO_V(0x40) | VTD_IRTE_LO_DST(0x12345678), 0);
	irte_put(&e, &t, 1, irte_lo(0x40, 0x99), 0);
	CHECK_EQ(intr(&e, SID_A, 1, &d), 0);
	CHECK_EQ(d.dest, 0x99);
	env_fini(&e);
}

TEST(source_id_qualifiers_and_bus_ranges)
{
	static const struct {
		uint64_t hi;
		uint16_t sid;
		bool ok;
	} cases[] = {
		{ VTD_IRTE_HI_SVT(0) | 0x1234, 0xffff, true },
		{ VTD_IRTE_HI_SVT(1) | 0x0210, 0x0210, true },
		{ VTD_IRTE_HI_SVT(1) | 0x0210, 0x0211, false },
		{ VTD_IRTE_HI_SVT(1) | VTD_IRTE_HI_SQ(1) | 0x0210, 0x0214, true },  /* bit 2 */
		{ VTD_IRTE_HI_SVT(1) | VTD_IRTE_HI_SQ(1) | 0x0210, 0x0212, false },
		{ VTD_IRTE_HI_SVT(1) | VTD_IRTE_HI_SQ(2) | 0x0210, 0x0216, true },  /* bits 2:1 */
		{ VTD_IRTE_HI_SVT(1) | VTD_IRTE_HI_SQ(2) | 0x0210, 0x0211, false },
		{ VTD_IRTE_HI_SVT(1) | VTD_IRTE_HI_SQ(3) | 0x0210, 0x0217, true },  /* bits 2:0 */
		{ VTD_IRTE_HI_SVT(1) | VTD_IRTE_HI_SQ(3) | 0x0210, 0x0218, false },
		{ VTD_IRTE_HI_SVT(2) | 0x0305, 0x0300, true },
		{ VTD_IRTE_HI_SVT(2) | 0x0305, 0x05ff, true },
		{ VTD_IRTE_HI_SVT(2) | 0x0305, 0x02ff, false },
		{ VTD_IRTE_HI_SVT(2) | 0x0305, 0x0600, false },
	};
	struct model_config cfg;
	struct env e;
	struct irt t;

	dmar_model_config_default(&cfg);
	cfg.nfr = 16;
	env_init(&e, &cfg, 3);
	ir_on(&e, &t, 4, false, 0);
	for (unsigned i = 0; i < DMAR_ARRAY_SIZE(cases); i++) {
		irte_put(&e, &t, i, irte_lo(0x40 + i, 1), cases[i].hi);
		CHECK_EQ(intr(&e, cases[i].sid, i, NULL), cases[i].ok ? 0 : VTD_FR_IR_SID_ERR);
	}
	env_fini(&e);
}

TEST(iec_keeps_entries_until_an_invalidation_covers_them)
{
	struct model_config cfg;
	struct env e;
	struct irt t;
	struct qi q;
	struct model_irq_delivery d;

	dmar_model_config_default(&cfg);
	env_init(&e, &cfg, 3);
	qi_enable(&e, &q);
	ir_on(&e, &t, 7, false, 0);
	for (unsigned i = 8; i < 12; i++)
		irte_put(&e, &t, i, irte_lo(0x40, 1), 0);
	for (unsigned i = 8; i < 12; i++)
		CHECK_EQ(intr(&e, SID_A, i, &d), 0);
	CHECK_EQ(dmar_model_iec_entries(e.m), 4);
	CHECK_EQ(dmar_model_stats(e.m)->iec_misses, 4);
	for (unsigned i = 8; i < 12; i++)
		irte_put(&e, &t, i, irte_lo(0x50, 2), 0);
	CHECK_EQ(intr(&e, SID_A, 9, &d), 0);
	CHECK_EQ(d.vector, 0x40); /* stale */
	CHECK_EQ(d.dest, 1);
	/* Index-selective for 10 alone: 9 stays stale, 10 is read again. */
	qi_push(&q, VTD_INV_IEC | VTD_INV_IEC_G_INDEX | VTD_INV_IEC_IIDX(10), 0);
	qi_push_wait(&q, 1, false);
	qi_submit(&e, &q);
	CHECK_EQ(*q.status, 1);
	CHECK_EQ(intr(&e, SID_A, 10, &d), 0);
	CHECK_EQ(d.vector, 0x50);
	CHECK_EQ(intr(&e, SID_A, 9, &d), 0);
	CHECK_EQ(d.vector, 0x40);
	/* IM 1 over index 8: 8 and 9; 11 stays stale. */
	qi_push(&q, VTD_INV_IEC | VTD_INV_IEC_G_INDEX | VTD_INV_IEC_IM(1) | VTD_INV_IEC_IIDX(8), 0);
	qi_push_wait(&q, 2, false);
	qi_submit(&e, &q);
	CHECK_EQ(*q.status, 2);
	CHECK_EQ(intr(&e, SID_A, 9, &d), 0);
	CHECK_EQ(d.vector, 0x50);
	CHECK_EQ(intr(&e, SID_A, 11, &d), 0);
	CHECK_EQ(d.vector, 0x40);
	/* A cleared entry keeps answering from the cache too, until a global one. */
	irte_put(&e, &t, 11, 0, 0);
	CHECK_EQ(intr(&e, SID_A, 11, &d), 0);
	qi_push(&q, VTD_INV_IEC, 0);
	qi_push_wait(&q, 3, false);
	qi_submit(&e, &q);
	CHECK_EQ(*q.status, 3);
	CHECK_EQ(dmar_model_iec_entries(e.m), 0);
	CHECK_EQ(intr(&e, SID_A, 11, &d), VTD_FR_IR_ENTRY_P);
	CHECK_EQ(dmar_model_stats(e.m)->iec_inval_global, 1);
	CHECK_EQ(dmar_model_stats(e.m)->iec_inval_index, 2);
	/* A not-present entry is never cached: made present, it is used at once. */
	irte_put(&e, &t, 11, irte_lo(0x60, 3), 0);
	CHECK_EQ(intr(&e, SID_A, 11, &d), 0);
	CHECK_EQ(d.vector, 0x60);
	env_fini(&e);
}

TEST(sirtp_empties_the_iec_only_with_esirtps)
{
	struct model_config cfg;

	dmar_model_config_default(&cfg);
	CHECK(!(dmar_model_config_cap(&cfg) & VTD_CAP_ESIRTPS));
	for (int es = 0; es < 2; es++) {
		struct env e;
		struct irt t, t2;
		struct model_irq_delivery d;

		cfg.esirtps = es;
		env_init(&e, &cfg, 3);
		CHECK_EQ(!!(rd64(&e, VTD_CAP_REG) & VTD_CAP_ESIRTPS), es);
		ir_on(&e, &t, 3, false, 0);
		irte_put(&e, &t, 0, irte_lo(0x40, 1), 0);
		CHECK_EQ(intr(&e, SID_A, 0, &d), 0);
		ir_on(&e, &t2, 3, false, 0); /* a new, empty table */
		CHECK_EQ(intr(&e, SID_A, 0, &d), es ? VTD_FR_IR_ENTRY_P : 0);
		env_fini(&e);
	}
	/* Decoded from the register like the other fields. */
	struct model_config from;
	CHECK(dmar_model_config_from_regs(0x10, dmar_model_config_cap(&cfg) | VTD_CAP_ESIRTPS,
					  dmar_model_config_ecap(&cfg), &from));
	CHECK(from.esirtps);
	CHECK_EQ(from.cap_extra & VTD_CAP_ESIRTPS, 0);
}

TEST(iec_descriptor_with_a_mask_beyond_mhmv_is_invalid)
{
	struct model_config cfg;
	struct env e;
	struct qi q;

	dmar_model_config_default(&cfg);
	cfg.mhmv = 2;
	env_init(&e, &cfg, 3);
	qi_enable(&e, &q);
	qi_push(&q, VTD_INV_IEC | VTD_INV_IEC_G_INDEX | VTD_INV_IEC_IM(2), 0);
	qi_push(&q, VTD_INV_IEC | VTD_INV_IEC_G_INDEX | VTD_INV_IEC_IM(3), 0);
	qi_submit(&e, &q);
	CHECK(rd32(&e, VTD_FSTS_REG) & VTD_FSTS_IQE);
	CHECK_EQ(rd64(&e, VTD_IQH_REG), 1u << VTD_IQ_INDEX_SHIFT);
	env_fini(&e);
	/* Without ECAP.IR there is no interrupt entry cache to invalidate. */
	dmar_model_config_default(&cfg);
	cfg.ir = false;
	env_init(&e, &cfg, 3);
	qi_enable(&e, &q);
	qi_push(&q, VTD_INV_IEC, 0);
	qi_submit(&e, &q);
	CHECK(rd32(&e, VTD_FSTS_REG) & VTD_FSTS_IQE);
	env_fini(&e);
}
