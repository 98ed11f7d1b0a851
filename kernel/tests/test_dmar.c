/*
 * End-to-end tests of the library against QEMU's VT-d model: edu devices do real DMA
 * through domains the library builds, and the tests look at what lands in RAM and at the
 * fault records the unit wrote.
 *
 * Each test builds its own dmar_system from the firmware's DMAR table and destroys it at
 * the end, and checks that the OS layer got back every byte and page it lent.
 * Canary pages: where a test needs an IOVA that must not reach memory, it uses the
 * physical address of a page filled with a known pattern, so a DMA that bypassed
 * translation would visibly land there.
 */
#include "fixture.h"
#include "pmem.h"
#include "regs.h"
#include "tests.h"
#include "util.h"

/* The firmware's DMAR table, through the library's parser: one DRHD at 0xfed90000 whose
 * scopes cover every edu, host address width as the unit reports it. */
static void check_dmar_table(struct ktest *t, struct dmar_acpi_table *tbl)
{
	const uint8_t *bytes = (const uint8_t *)(uintptr_t)kenv.dmar.table;
	kprintf("# DMAR at %#llx, %u bytes, via %s at %#llx\n",
		(unsigned long long)kenv.dmar.table, kenv.dmar.length,
		kenv.dmar.xsdt ? "XSDT" : "RSDT", (unsigned long long)kenv.dmar.root);
	for (unsigned i = 0; kenv.verbose && i < kenv.dmar.length; i += 16) {
		kprintf("# %04x:", i);
		for (unsigned j = i; j < i + 16 && j < kenv.dmar.length; j++)
			kprintf(" %02x", bytes[j]);
		kprintf("\n");
	}
	struct dmar_acpi_options opt = { .checksum_fatal = kenv.cfg.checksum_fatal };
	REQUIRE_OK(dmar_acpi_parse(bytes, kenv.dmar.length, &opt, tbl));
	kprintf("# DMAR rev %u oem \"%s\" \"%s\" haw %u flags %#x, %u structures\n",
		tbl->revision, tbl->oem_id, tbl->oem_table_id, tbl->haw, tbl->flags,
		tbl->nstructs);
	CHECK(tbl->checksum_ok);
	for (unsigned i = 0; i < tbl->nfindings && i < DMAR_ACPI_MAX_FINDINGS; i++) {
		char line[160];
		dmar_acpi_finding_format(&tbl->findings[i], line, sizeof(line));
		kprintf("# finding: %s\n", line);
	}
	CHECK_EQ(tbl->nfindings, 0);
	REQUIRE(dmar_acpi_count(tbl, DMAR_ACPI_DRHD) == 1);
	struct dmar_acpi_drhd drhd;
	REQUIRE_OK(dmar_acpi_drhd_get(tbl, 0, &drhd));
	kprintf("# DRHD base %#llx segment %u flags %#x\n", (unsigned long long)drhd.base,
		drhd.segment, drhd.flags);
	CHECK_EQ(drhd.base, 0xfed90000ull);
	CHECK_EQ(drhd.segment, 0);
	/* QEMU builds HAW from the same aw-bits as CAP.MGAW. */
	uint64_t cap = *(volatile uint64_t *)(uintptr_t)(drhd.base + VTD_CAP_REG);
	CHECK_EQ(tbl->haw, VTD_CAP_MGAW(cap));
	for (unsigned i = 0; i < kenv.nedu; i++) {
		const struct pci_dev *d = kenv.edu[i].pci;
		unsigned idx = 99;
		CHECK_EQ(dmar_acpi_device_unit(tbl, 0, d->bus, d->dev, d->fn, pci_bridge_buses, 0,
					       &idx), 0);
		CHECK_EQ(idx, 0);
	}
}

void test_acpi_dmar_parsed(struct ktest *t)
{
	struct fixture f;
	struct dmar_acpi_table tbl;
	REQUIRE(kenv.have_dmar);
	check_dmar_table(t, &tbl);
	if (fixture_up(t, &f, 0) != 0)
		goto out;
	CHECK_EQ(dmar_unit_count(f.sys), 1);
	CHECK_EQ(f.info.reg_base, 0xfed90000ull);
	CHECK_EQ(f.info.segment, 0);
	kprintf("# unit %u at %#llx: ver %#x cap %#llx ecap %#llx, %u-bit, %u domains, "
		"nfr %u, %s invalidation, coherent %d, caching mode %d, pt %d, superpages %#x\n",
		f.info.index, (unsigned long long)f.info.reg_base, f.info.ver,
		(unsigned long long)f.info.cap, (unsigned long long)f.info.ecap,
		f.info.max_width, f.info.domains, f.info.nfr, f.info.qi ? "queued" : "register",
		f.info.coherent, f.info.caching_mode, f.info.passthrough, f.info.superpages);
	/* What the library reports is what the registers hold. */
	volatile uint8_t *regs = va(f.info.reg_base);
	uint64_t cap = *(volatile uint64_t *)(regs + VTD_CAP_REG);
	uint64_t ecap = *(volatile uint64_t *)(regs + VTD_ECAP_REG);
	uint32_t gsts = *(volatile uint32_t *)(regs + VTD_GSTS_REG);
	CHECK_EQ(f.info.cap, cap);
	CHECK_EQ(f.info.ecap, ecap);
	CHECK_EQ(f.info.nfr, VTD_CAP_NFR(cap));
	/* What tests decide to run or skip from: the registers' fields ... */
	unsigned sagaw = (unsigned)VTD_CAP_SAGAW(cap);
	unsigned widest = sagaw & VTD_SAGAW_57 ? 57 : sagaw & VTD_SAGAW_48 ? 48 : 39;
	CHECK_EQ(f.info.max_width, widest < VTD_CAP_MGAW(cap) ? widest : VTD_CAP_MGAW(cap));
	CHECK_EQ(f.info.caching_mode, !!(cap & VTD_CAP_CM));
	CHECK_EQ(f.info.superpages, VTD_CAP_SLLPS(cap) & 3);
	CHECK_EQ(f.info.passthrough, !!(ecap & VTD_ECAP_PT));
	/* ... and what the configuration offers (kernel.expect, from QEMU's options). */
	if (kenv.expect_given) {
		CHECK(!kenv.expect_bad);
		unit_has(t, KENV_CM, f.info.caching_mode);
		unit_has(t, KENV_SP2M, f.info.superpages & 1);
		unit_has(t, KENV_SP1G, f.info.superpages & 2);
		unit_has(t, KENV_PT, f.info.passthrough);
		unit_has(t, KENV_QI, f.info.qi);
		unit_has(t, KENV_AW48, f.info.max_width >= 48);
	}
	/* Brought up: root table pointer set; queued invalidation as configured. */
	CHECK(gsts & VTD_GSTS_RTPS);
	CHECK_EQ(!!(gsts & VTD_GSTS_QIES), f.info.qi);
	if (kenv.cfg.qi == 0)
		CHECK(!f.info.qi);
	else if (ecap & VTD_ECAP_QI)
		CHECK(f.info.qi);
	/* Every edu is covered by this unit. */
	for (unsigned i = 0; i < kenv.nedu; i++) {
		const struct pci_dev *d = kenv.edu[i].pci;
		CHECK(dmar_unit_for_device(f.sys, 0, d->bus, d->dev, d->fn, pci_bridge_buses,
					   0) == f.unit);
	}
out:
	fixture_down(t, &f);
}

/* RAM -> edu -> RAM through 4 KiB mappings whose IOVAs are other pages' addresses: a DMA
 * that ignored the mapping would read or hit those canary pages instead. */
void test_edu_dma_roundtrip(struct ktest *t)
{
	struct fixture f;
	struct dmar_domain *dom = 0;
	struct edu *e = &kenv.edu[0];
	if (fixture_up(t, &f, 1) != 0)
		goto out;
	uint64_t src = buffer(&f, 1, PAGE, 0), dst = buffer(&f, 1, PAGE, 0xee);
	uint64_t csrc = buffer(&f, 1, PAGE, 0x11), cdst = buffer(&f, 1, PAGE, 0x22);
	ENSURE(src && dst && csrc && cdst);
	fill_pattern(src, PAGE, 1);
	TRY(translated_domain(&f, 0, e, &dom));
	TRY(dmar_map(dom, csrc, src, PAGE, DMAR_PROT_READ));
	TRY(dmar_map(dom, cdst, dst, PAGE, DMAR_PROT_WRITE));
	struct dmar_unit_info info;
	dmar_unit_get_info(f.unit, &info);
	CHECK(info.translating);

	TRY(edu_dma_to_device(e, csrc + 0x10, 0, XFER));
	TRY(edu_dma_from_device(e, cdst + 0x20, 0, XFER));
	CHECK(dmar_memcmp(va(dst) + 0x20, va(src) + 0x10, XFER) == 0);
	CHECK(all_bytes(dst, 0x20, 0xee));                 /* nothing before ... */
	CHECK(all_bytes(dst + 0x20 + XFER, PAGE - 0x20 - XFER, 0xee)); /* ... or after */
	CHECK(all_bytes(csrc, PAGE, 0x11));
	CHECK(all_bytes(cdst, PAGE, 0x22));
	expect_no_fault(t, &f);
	TRY(dmar_unmap(dom, csrc, PAGE));
	TRY(dmar_unmap(dom, cdst, PAGE));
out:
	fixture_down(t, &f);
}

/* RAM above 4 GiB (physical addresses wider than 32 bits in the leaf entries) reached
 * through low IOVAs. */
void test_edu_dma_above_4g(struct ktest *t)
{
	struct fixture f;
	struct dmar_domain *dom;
	struct edu *e = &kenv.edu[0];
	if (fixture_up(t, &f, 1) != 0)
		goto out;
	if (pmem_ram_top() <= SZ_4G) {
		t->skip = "no RAM above 4 GiB in this machine (-m 5G)";
		goto out;
	}
	uint64_t src = buffer_in(&f, 1, PAGE, SZ_4G, 0), dst = buffer_in(&f, 1, PAGE, SZ_4G, 0xee);
	ENSURE(src >= SZ_4G && dst >= SZ_4G);
	kprintf("# buffers at %#llx and %#llx\n", (unsigned long long)src,
		(unsigned long long)dst);
	uint64_t iova_src = 0x04000000, iova_dst = 0x04001000;
	TRY(translated_domain(&f, 0, e, &dom));
	TRY(dmar_map(dom, iova_src, src, PAGE, DMAR_PROT_READ));
	TRY(dmar_map(dom, iova_dst, dst, PAGE, DMAR_PROT_WRITE));
	fill_pattern(src, PAGE, 60);
	TRY(edu_dma_to_device(e, iova_src, 0, XFER));
	TRY(edu_dma_from_device(e, iova_dst, 0, XFER));
	CHECK(dmar_memcmp(va(dst), va(src), XFER) == 0);
	CHECK(all_bytes(dst + XFER, PAGE - XFER, 0xee));
	uint64_t phys;
	unsigned prot;
	TRY(dmar_lookup(dom, iova_dst + 0x10, &phys, &prot));
	CHECK_EQ(phys, dst + 0x10);
	expect_no_fault(t, &f);
out:
	fixture_down(t, &f);
}

/* A 48-bit domain on a unit whose SAGAW offers it has a 4-level table, through which
 * IOVAs above 2^39 (out of any 3-level table's reach) lead to their pages, up to the last
 * page below 2^48; an unmapped IOVA there faults with its full address; a 39-bit domain
 * refuses such IOVAs. Each high IOVA's low 39 bits are a canary page's address, so a
 * walk that dropped the high bits would show there. */
void test_edu_dma_48bit_iova(struct ktest *t)
{
	struct fixture f;
	struct dmar_domain *dom = 0, *narrow = 0;
	struct edu *e = &kenv.edu[0];
	if (fixture_up(t, &f, 1) != 0)
		goto out;
	if (!unit_has(t, KENV_AW48, f.info.max_width >= 48)) {
		t->skip = "the unit offers no 4-level tables (intel-iommu,aw-bits=48)";
		goto out;
	}
	uint64_t src = buffer(&f, 1, PAGE, 0), dst = buffer(&f, 1, PAGE, 0xee);
	uint64_t csrc = buffer(&f, 1, PAGE, 0x11), cdst = buffer(&f, 1, PAGE, 0x22);
	ENSURE(src && dst && csrc && cdst);
	fill_pattern(src, PAGE, 90);
	uint64_t iova_src = (1ull << 39) | csrc;            /* level-4 index 1 */
	uint64_t iova_dst = (1ull << 48) - PAGE;            /* the last index at each level */
	uint64_t iova_hole = (1ull << 40) | cdst;           /* level-4 index 2: unmapped */
	struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED, .width = 48 };
	TRY(fixture_domain(&f, 0, &p, e, &dom));
	struct dmar_domain_info info;
	dmar_domain_get_info(dom, &info);
	CHECK_EQ(info.width, 48);
	CHECK_EQ(info.levels, 4);
	TRY(dmar_map(dom, iova_src, src, PAGE, DMAR_PROT_READ));
	TRY(dmar_map(dom, iova_dst, dst, PAGE, DMAR_PROT_WRITE));
	CHECK_EQ(dmar_map(dom, 1ull << 48, src, PAGE, DMAR_PROT_READ), DMAR_ERANGE);

	TRY(edu_dma_to_device(e, iova_src + 0x40, 0, XFER));
	TRY(edu_dma_from_device(e, iova_dst + 0x80, 0, XFER));
	CHECK(dmar_memcmp(va(dst) + 0x80, va(src) + 0x40, XFER) == 0);
	CHECK(all_bytes(dst, 0x80, 0xee));
	CHECK(all_bytes(csrc, PAGE, 0x11));
	uint64_t phys;
	unsigned prot;
	TRY(dmar_lookup(dom, iova_dst + 0x80, &phys, &prot));
	CHECK_EQ(phys, dst + 0x80);
	expect_no_fault(t, &f);

	TRY(edu_dma_from_device(e, iova_hole, 0, XFER));
	CHECK(all_bytes(cdst, PAGE, 0x22));
	expect_fault(t, &f, e->sid, iova_hole, false);
	TRY(dmar_unmap(dom, iova_src, PAGE));
	TRY(dmar_unmap(dom, iova_dst, PAGE));

	struct dmar_domain_params p39 = { .kind = DMAR_DOMAIN_TRANSLATED, .width = 39 };
	TRY(fixture_domain(&f, 1, &p39, NULL, &narrow));
	dmar_domain_get_info(narrow, &info);
	CHECK_EQ(info.levels, 3);
	CHECK_EQ(dmar_map(narrow, iova_src, src, PAGE, DMAR_PROT_READ), DMAR_ERANGE);
out:
	fixture_down(t, &f);
}

/* Loads the edu's buffer with a pattern through a temporary mapping. */
static int load_device(struct fixture *f, struct dmar_domain *dom, struct edu *e,
		       unsigned seed)
{
	uint64_t pa = buffer(f, 1, PAGE, 0);
	if (!pa)
		return DMAR_ENOMEM;
	fill_pattern(pa, PAGE, seed);
	uint64_t iova = 0x0e000000; /* a scratch IOVA no test uses otherwise */
	int rc = dmar_map(dom, iova, pa, PAGE, DMAR_PROT_READ);
	if (rc)
		return rc;
	rc = edu_dma_to_device(e, iova, 0, XFER) ? DMAR_ETIMEDOUT : 0;
	int rc2 = dmar_unmap(dom, iova, PAGE);
	return rc ? rc : rc2;
}

/* The device writes to an IOVA never mapped: the write is blocked and recorded. */
void test_edu_unmapped_write_blocked(struct ktest *t)
{
	struct fixture f;
	struct dmar_domain *dom = 0;
	struct edu *e = &kenv.edu[0];
	if (fixture_up(t, &f, 1) != 0)
		goto out;
	uint64_t canary = buffer(&f, 1, PAGE, 0x33);
	ENSURE(canary);
	TRY(translated_domain(&f, 0, e, &dom));
	TRY(load_device(&f, dom, e, 2));
	expect_no_fault(t, &f);
	TRY(edu_dma_from_device(e, canary + 0x100, 0, XFER));
	CHECK(all_bytes(canary, PAGE, 0x33));
	expect_fault(t, &f, e->sid, canary + 0x100, false);
out:
	fixture_down(t, &f);
}

/* The device reads from an IOVA never mapped: it gets nothing of that page (QEMU fills
 * its buffer with zeros) and the read is recorded. */
void test_edu_unmapped_read_faults(struct ktest *t)
{
	struct fixture f;
	struct dmar_domain *dom = 0;
	struct edu *e = &kenv.edu[0];
	if (fixture_up(t, &f, 1) != 0)
		goto out;
	uint64_t canary = buffer(&f, 1, PAGE, 0x44), io = buffer(&f, 1, PAGE, 0x99);
	ENSURE(canary && io);
	uint64_t iova = 0x0d000000;
	TRY(translated_domain(&f, 0, e, &dom));
	/* The device buffer starts out holding 0x99 bytes. */
	TRY(dmar_map(dom, iova, io, PAGE, DMAR_PROT_RW));
	TRY(edu_dma_to_device(e, iova, 0, XFER));
	TRY(edu_dma_to_device(e, canary, 0, XFER));
	expect_fault(t, &f, e->sid, canary, true);
	CHECK(all_bytes(canary, PAGE, 0x44));
	/* What the device holds now: its old bytes, or zeros (QEMU 7.2 fills the buffer of
	 * a failed read with zeros), but none of the canary's. */
	dmar_memset(va(io), 0xee, PAGE);
	TRY(edu_dma_from_device(e, iova, 0, XFER));
	const uint8_t *p = va(io);
	unsigned leaked = 0, zeros = 0;
	for (unsigned i = 0; i < XFER; i++) {
		leaked += p[i] != 0x99 && p[i] != 0;
		zeros += p[i] == 0;
	}
	kprintf("# after the blocked read the device holds %u zero bytes of %u\n", zeros, XFER);
	CHECK_EQ(leaked, 0);
	expect_no_fault(t, &f);
	TRY(dmar_unmap(dom, iova, PAGE));
out:
	fixture_down(t, &f);
}

/* After dmar_unmap returns, the old IOVA faults even though QEMU had cached it. */
void test_edu_unmap_then_dma_faults(struct ktest *t)
{
	struct fixture f;
	struct dmar_domain *dom = 0;
	struct edu *e = &kenv.edu[0];
	if (fixture_up(t, &f, 1) != 0)
		goto out;
	uint64_t pa = buffer(&f, 1, PAGE, 0x55);
	ENSURE(pa);
	uint64_t iova = 0x0c000000;
	TRY(translated_domain(&f, 0, e, &dom));
	TRY(load_device(&f, dom, e, 3));
	TRY(dmar_map(dom, iova, pa, PAGE, DMAR_PROT_RW));
	/* Use the translation once so the unit caches it. */
	TRY(edu_dma_from_device(e, iova, 0, 16));
	CHECK(!all_bytes(pa, 16, 0x55));
	dmar_memset(va(pa), 0x55, PAGE);
	TRY(dmar_unmap(dom, iova, PAGE));
	uint64_t phys;
	unsigned prot;
	CHECK_EQ(dmar_lookup(dom, iova, &phys, &prot), DMAR_ENOENT);
	TRY(edu_dma_from_device(e, iova, 0, XFER));
	CHECK(all_bytes(pa, PAGE, 0x55));
	expect_fault(t, &f, e->sid, iova, false);
out:
	fixture_down(t, &f);
}

/* A read-only mapping: the device may read it, its write faults and changes nothing. */
void test_edu_readonly_write_faults(struct ktest *t)
{
	struct fixture f;
	struct dmar_domain *dom = 0;
	struct edu *e = &kenv.edu[0];
	if (fixture_up(t, &f, 1) != 0)
		goto out;
	uint64_t ro = buffer(&f, 1, PAGE, 0), back = buffer(&f, 1, PAGE, 0);
	ENSURE(ro && back);
	fill_pattern(ro, PAGE, 4);
	uint64_t iova = 0x0b000000, iova_back = 0x0b001000;
	TRY(translated_domain(&f, 0, e, &dom));
	TRY(dmar_map(dom, iova, ro, PAGE, DMAR_PROT_READ));
	TRY(dmar_map(dom, iova_back, back, PAGE, DMAR_PROT_WRITE));
	TRY(load_device(&f, dom, e, 5));
	/* The write comes before any read of the page: QEMU 7.2 records a permission fault
	 * only when it walks the tables; a write that hits a read-only translation already
	 * in its IOTLB is blocked without a record. */
	TRY(edu_dma_from_device(e, iova + 0x200, 0, XFER)); /* not allowed */
	fill_pattern(back, PAGE, 4);                          /* what ro must still hold */
	CHECK(dmar_memcmp(va(ro), va(back), PAGE) == 0);
	expect_fault(t, &f, e->sid, iova + 0x200, false);
	/* Reading it is allowed. */
	dmar_memset(va(back), 0, PAGE);
	TRY(edu_dma_to_device(e, iova, 0, XFER));
	TRY(edu_dma_from_device(e, iova_back, 0, XFER));
	CHECK(dmar_memcmp(va(back), va(ro), XFER) == 0);
	expect_no_fault(t, &f);
out:
	fixture_down(t, &f);
}

/* DMA write then read at `iova` (mapped to phys `pa`) and check the bytes landed at pa:
 * the device writes a fresh pattern there and reads it back into `check`. */
static void dma_through(struct ktest *t, struct edu *e, uint64_t iova, uint64_t pa,
			uint64_t check_iova, uint64_t check_pa, unsigned seed)
{
	fill_pattern(check_pa, XFER, seed);
	/* check page -> device -> pa */
	if (edu_dma_to_device(e, check_iova, 0, XFER) || edu_dma_from_device(e, iova, 0, XFER)) {
		ktest_fail(t, __FILE__, __LINE__, "edu DMA did not complete");
		return;
	}
	CHECK(dmar_memcmp(va(pa), va(check_pa), XFER) == 0);
	/* pa -> device -> check page, after changing pa */
	fill_pattern(pa, XFER, seed + 1);
	dmar_memset(va(check_pa), 0, XFER);
	if (edu_dma_to_device(e, iova, 0, XFER) || edu_dma_from_device(e, check_iova, 0, XFER)) {
		ktest_fail(t, __FILE__, __LINE__, "edu DMA did not complete");
		return;
	}
	CHECK(dmar_memcmp(va(pa), va(check_pa), XFER) == 0);
}

static void superpage_test(struct ktest *t, unsigned bit, uint64_t size)
{
	struct fixture f;
	struct dmar_domain *dom = 0;
	struct edu *e = &kenv.edu[0];
	if (fixture_up(t, &f, 1) != 0)
		goto out;
	if (!unit_has(t, size == SZ_2M ? KENV_SP2M : KENV_SP1G, f.info.superpages & bit)) {
		t->skip = size == SZ_2M ? "the unit has no 2 MiB pages" : "the unit has no 1 GiB pages";
		goto out;
	}
	uint64_t check = buffer(&f, 1, PAGE, 0);
	ENSURE(check);
	uint64_t check_iova = 0x0a000000;
	uint64_t phys, iova;
	if (size == SZ_2M) {
		phys = buffer(&f, 512, SZ_2M, 0);
		ENSURE(phys);
		iova = 0x08000000;
	} else {
		/* No 1 GiB of free RAM to spare: map IOVA [3 GiB, 4 GiB) onto physical
		 * [0, 1 GiB) and touch only our own buffers inside it. */
		phys = 0;
		iova = 3 * SZ_1G;
	}
	ENSURE(iova != phys);
	TRY(translated_domain(&f, 0, e, &dom));
	struct dmar_domain_info before, after;
	TRY(dmar_map(dom, check_iova, check, PAGE, DMAR_PROT_RW));
	dmar_domain_get_info(dom, &before);
	TRY(dmar_map(dom, iova, phys, size, DMAR_PROT_RW));
	dmar_domain_get_info(dom, &after);
	kprintf("# %s mapped: %llu table pages, %llu before\n",
		size == SZ_2M ? "2 MiB" : "1 GiB", (unsigned long long)after.table_pages,
		(unsigned long long)before.table_pages);
	/* A superpage is one entry in a table that exists already (check_iova's mapping
	 * built the tables above it: same 1 GiB region for the 2 MiB page, same 512 GiB
	 * region for the 1 GiB page); 4 KiB pages would have needed new tables. */
	CHECK_EQ(after.table_pages, before.table_pages);
	uint64_t got;
	unsigned prot;
	if (size == SZ_2M) {
		uint64_t offs[] = { 0, 0x1000 + 0x80, 0x100000, SZ_2M - PAGE };
		for (unsigned i = 0; i < DMAR_ARRAY_SIZE(offs); i++) {
			uint64_t off = offs[i];
			uint64_t len_ok = off + XFER <= SZ_2M;
			ENSURE(len_ok);
			dma_through(t, e, iova + off, phys + off, check_iova, check, i);
			TRY(dmar_lookup(dom, iova + off, &got, &prot));
			CHECK_EQ(got, phys + off);
		}
	} else {
		uint64_t bufs[3];
		bufs[0] = buffer(&f, 1, PAGE, 0);
		bufs[1] = buffer(&f, 2, PAGE, 0) + 0x800; /* crosses a page */
		bufs[2] = buffer(&f, 1, PAGE, 0) + 0x10;
		ENSURE(bufs[0] && bufs[1] > 0x800 && bufs[2] > 0x10);
		for (unsigned i = 0; i < 3; i++) {
			dma_through(t, e, iova + bufs[i], bufs[i], check_iova, check, i);
			TRY(dmar_lookup(dom, iova + bufs[i], &got, &prot));
			CHECK_EQ(got, bufs[i]);
		}
	}
	expect_no_fault(t, &f);
	TRY(dmar_unmap(dom, iova, size));
	TRY(dmar_unmap(dom, check_iova, PAGE));
out:
	fixture_down(t, &f);
}

void test_edu_superpage_2m(struct ktest *t) { superpage_test(t, 1, SZ_2M); }
void test_edu_superpage_1g(struct ktest *t) { superpage_test(t, 2, SZ_1G); }

/* Unmapping one 4 KiB page out of a 2 MiB superpage: that page faults, the rest of the
 * superpage still reaches the same memory. */
void test_edu_partial_unmap_superpage(struct ktest *t)
{
	struct fixture f;
	struct dmar_domain *dom = 0;
	struct edu *e = &kenv.edu[0];
	if (fixture_up(t, &f, 1) != 0)
		goto out;
	uint64_t check = buffer(&f, 1, PAGE, 0), phys = buffer(&f, 512, SZ_2M, 0);
	ENSURE(check && phys);
	uint64_t check_iova = 0x0a000000, iova = 0x06000000, hole = 0x5000;
	TRY(translated_domain(&f, 0, e, &dom));
	TRY(dmar_map(dom, check_iova, check, PAGE, DMAR_PROT_RW));
	TRY(dmar_map(dom, iova, phys, SZ_2M, DMAR_PROT_RW));
	dma_through(t, e, iova + hole, phys + hole, check_iova, check, 7); /* cache it */
	TRY(dmar_unmap(dom, iova + hole, PAGE));
	uint64_t got;
	unsigned prot;
	CHECK_EQ(dmar_lookup(dom, iova + hole, &got, &prot), DMAR_ENOENT);
	/* The hole faults and its memory does not change. */
	dmar_memset(va(phys + hole), 0x66, PAGE);
	fill_pattern(check, PAGE, 8);
	TRY(edu_dma_to_device(e, check_iova, 0, XFER));
	TRY(edu_dma_from_device(e, iova + hole, 0, XFER));
	CHECK(all_bytes(phys + hole, PAGE, 0x66));
	expect_fault(t, &f, e->sid, iova + hole, false);
	/* Its neighbours and the far end still work. */
	uint64_t offs[] = { hole - PAGE, hole + PAGE, 0, SZ_2M - PAGE };
	for (unsigned i = 0; i < DMAR_ARRAY_SIZE(offs); i++) {
		dma_through(t, e, iova + offs[i], phys + offs[i], check_iova, check, 9 + i);
		TRY(dmar_lookup(dom, iova + offs[i], &got, &prot));
		CHECK_EQ(got, phys + offs[i]);
	}
	expect_no_fault(t, &f);
	/* The rest can still be unmapped around the hole, the hole itself cannot. */
	CHECK_EQ(dmar_unmap(dom, iova, SZ_2M), DMAR_ENOENT);
	TRY(dmar_unmap(dom, iova, hole));
	TRY(dmar_unmap(dom, iova + hole + PAGE, SZ_2M - hole - PAGE));
	TRY(dmar_unmap(dom, check_iova, PAGE));
out:
	fixture_down(t, &f);
}

/* Two devices in two domains: the same IOVA leads each to its own page, and what only
 * one domain maps faults for the other. */
void test_edu_isolation(struct ktest *t)
{
	struct fixture f;
	struct dmar_domain *d0, *d1;
	struct edu *e0 = &kenv.edu[0], *e1 = &kenv.edu[1];
	if (fixture_up(t, &f, 2) != 0)
		goto out;
	if (dmar_unit_for_device(f.sys, 0, e1->pci->bus, e1->pci->dev, e1->pci->fn,
				 pci_bridge_buses, 0) != f.unit) {
		t->skip = "the two edu devices are on different units";
		goto out;
	}
	if (edus_share_requester_id(e0, e1)) {
		t->skip = "the two edu devices share a requester id (one conventional bridge "
			  "above both): the unit cannot isolate them (alias_shared_domain)";
		goto out;
	}
	uint64_t p0 = buffer(&f, 1, PAGE, 0xa0), p1 = buffer(&f, 1, PAGE, 0xa1);
	uint64_t only0 = buffer(&f, 1, PAGE, 0xb0), src = buffer(&f, 1, PAGE, 0);
	ENSURE(p0 && p1 && only0 && src);
	uint64_t shared = 0x09000000, private0 = 0x09001000, src_iova = 0x09002000;
	TRY(translated_domain(&f, 0, e0, &d0));
	TRY(translated_domain(&f, 1, e1, &d1));
	struct dmar_domain_info i0, i1;
	dmar_domain_get_info(d0, &i0);
	dmar_domain_get_info(d1, &i1);
	CHECK(i0.did != i1.did);
	CHECK(dmar_device_domain(f.unit, e0->sid) == d0);
	CHECK(dmar_device_domain(f.unit, e1->sid) == d1);
	TRY(dmar_map(d0, shared, p0, PAGE, DMAR_PROT_RW));
	TRY(dmar_map(d1, shared, p1, PAGE, DMAR_PROT_RW));
	TRY(dmar_map(d0, private0, only0, PAGE, DMAR_PROT_RW));
	TRY(dmar_map(d0, src_iova, src, PAGE, DMAR_PROT_READ));
	TRY(dmar_map(d1, src_iova, src, PAGE, DMAR_PROT_READ));

	fill_pattern(src, PAGE, 20);
	TRY(edu_dma_to_device(e0, src_iova, 0, XFER));
	TRY(edu_dma_from_device(e0, shared, 0, XFER));
	CHECK(dmar_memcmp(va(p0), va(src), XFER) == 0);
	CHECK(all_bytes(p1, PAGE, 0xa1));

	fill_pattern(src, PAGE, 21);
	TRY(edu_dma_to_device(e1, src_iova, 0, XFER));
	TRY(edu_dma_from_device(e1, shared, 0, XFER));
	CHECK(dmar_memcmp(va(p1), va(src), XFER) == 0);
	CHECK(!(dmar_memcmp(va(p0), va(src), XFER) == 0));
	expect_no_fault(t, &f);

	/* e1 reaching for d0's private page: blocked, recorded with e1's source id. */
	TRY(edu_dma_from_device(e1, private0, 0, XFER));
	CHECK(all_bytes(only0, PAGE, 0xb0));
	expect_fault(t, &f, e1->sid, private0, false);
	/* e0 can. */
	TRY(edu_dma_from_device(e0, private0, 0, XFER));
	CHECK(!all_bytes(only0, PAGE, 0xb0));
	expect_no_fault(t, &f);
out:
	fixture_down(t, &f);
}

/* A pass-through device (TT=2, or an identity table when ECAP.PT=0) reaches physical
 * addresses while translation is on for another device that maps nothing. */
void test_edu_passthrough(struct ktest *t)
{
	struct fixture f;
	struct dmar_domain *pt, *blk;
	struct edu *e0 = &kenv.edu[0];
	struct edu *e1 = kenv.nedu > 1 ? &kenv.edu[1] : 0;
	if (fixture_up(t, &f, 1) != 0)
		goto out;
	/* The second edu shows translation is on, unless it shares e0's requester id. */
	if (e1 && edus_share_requester_id(e0, e1))
		e1 = 0;
	uint64_t a = buffer(&f, 1, PAGE, 0), b = buffer(&f, 1, PAGE, 0xee);
	ENSURE(a && b);
	fill_pattern(a, PAGE, 30);
	struct dmar_domain_params p = { .kind = DMAR_DOMAIN_PASSTHROUGH,
					.identity_limit = pmem_ram_top() };
	TRY(fixture_domain(&f, 0, &p, e0, &pt));
	struct dmar_domain_info info;
	dmar_domain_get_info(pt, &info);
	kprintf("# pass-through as %s (ECAP.PT=%d)\n",
		info.passthrough_tt ? "TT=2" : "an identity table", f.info.passthrough);
	CHECK_EQ(info.passthrough_tt, unit_has(t, KENV_PT, f.info.passthrough));
	if (e1) /* proves translation is on: e1 maps nothing */
		TRY(translated_domain(&f, 1, e1, &blk));
	struct dmar_unit_info ui;
	dmar_unit_get_info(f.unit, &ui);
	CHECK(ui.translating);
	TRY(edu_dma_to_device(e0, a + 0x40, 0, XFER));
	TRY(edu_dma_from_device(e0, b + 0x80, 0, XFER));
	CHECK(dmar_memcmp(va(b) + 0x80, va(a) + 0x40, XFER) == 0);
	expect_no_fault(t, &f);
	if (e1) {
		dmar_memset(va(b), 0xee, PAGE);
		TRY(edu_dma_from_device(e1, b, 0, XFER));
		CHECK(all_bytes(b, PAGE, 0xee));
		expect_fault(t, &f, e1->sid, b, false);
	}
out:
	fixture_down(t, &f);
}

/* More faults than recording registers, from different devices (QEMU folds a second
 * fault of the same source into the pending one): the unit reports overflow, the driver
 * counts it, and after draining a new fault is recorded again. */
void test_fault_overflow_recovers(struct ktest *t)
{
	struct fixture f;
	struct dmar_domain *d0, *d1;
	if (fixture_up(t, &f, 2) != 0)
		goto out;
	if (f.info.nfr + 1 > kenv.nedu) {
		t->skip = "needs more edu devices than fault recording registers";
		goto out;
	}
	struct edu *e0 = &kenv.edu[0], *e1 = &kenv.edu[1];
	if (edus_share_requester_id(e0, e1)) {
		t->skip = "the two edu devices share a requester id (one conventional bridge "
			  "above both): their faults cannot be told apart";
		goto out;
	}
	uint64_t canary = buffer(&f, 1, PAGE, 0x77);
	ENSURE(canary);
	TRY(translated_domain(&f, 0, e0, &d0));
	TRY(translated_domain(&f, 1, e1, &d1));
	struct dmar_fault_counters c0, c1, c2;
	dmar_fault_get_counters(f.sys, &c0);
	/* nfr + 1 faults (nfr is 1 on QEMU) from alternating devices, without draining. */
	for (unsigned i = 0; i <= f.info.nfr; i++) {
		struct edu *e = (i & 1) ? e1 : e0;
		TRY(edu_dma_from_device(e, canary + i * 0x100, 0, 64));
	}
	volatile uint8_t *regs = va(f.info.reg_base);
	uint32_t fsts = *(volatile uint32_t *)(regs + VTD_FSTS_REG);
	kprintf("# FSTS %#x after %u faults\n", fsts, f.info.nfr + 1);
	CHECK(fsts & VTD_FSTS_PFO);
	CHECK(fsts & VTD_FSTS_PPF);
	struct dmar_fault_record r;
	bool found;
	int n = drain_faults(&f, e0->sid, &r, &found);
	CHECK_EQ((unsigned)n, f.info.nfr);
	CHECK(found);
	dmar_fault_get_counters(f.sys, &c1);
	CHECK(c1.overflows > c0.overflows);
	CHECK_EQ(c1.recorded - c0.recorded, f.info.nfr);
	fsts = *(volatile uint32_t *)(regs + VTD_FSTS_REG);
	CHECK(!(fsts & (VTD_FSTS_PFO | VTD_FSTS_PPF))); /* drained and cleared */
	/* The unit records again, from either device. */
	TRY(edu_dma_from_device(e1, canary + 0x800, 0, 64));
	expect_fault(t, &f, e1->sid, canary + 0x800, false);
	dmar_fault_get_counters(f.sys, &c2);
	CHECK_EQ(c2.recorded, c1.recorded + 1);
	CHECK_EQ(c2.overflows, c1.overflows);
	CHECK(all_bytes(canary, PAGE, 0x77));
out:
	fixture_down(t, &f);
}

/* With CAP.CM=1 the unit may cache not-present entries: a page mapped after a fault at
 * the same IOVA must still be usable at once. */
void test_caching_mode_map_visible(struct ktest *t)
{
	struct fixture f;
	struct dmar_domain *dom = 0;
	struct edu *e = &kenv.edu[0];
	if (fixture_up(t, &f, 1) != 0)
		goto out;
	if (!unit_has(t, KENV_CM, f.info.caching_mode)) {
		t->skip = "the unit has no caching mode (intel-iommu,caching-mode=on)";
		goto out;
	}
	uint64_t pa = buffer(&f, 1, PAGE, 0x88), src = buffer(&f, 1, PAGE, 0);
	ENSURE(pa && src);
	uint64_t iova = 0x07000000, src_iova = 0x07001000;
	TRY(translated_domain(&f, 0, e, &dom));
	TRY(load_device(&f, dom, e, 40));
	TRY(edu_dma_from_device(e, iova, 0, XFER)); /* not present yet: faults */
	expect_fault(t, &f, e->sid, iova, false);
	CHECK(all_bytes(pa, PAGE, 0x88));
	for (unsigned round = 0; round < 2; round++) {
		/* Fresh mappings, used right away. */
		fill_pattern(src, PAGE, 41 + round);
		TRY(dmar_map(dom, iova, pa, PAGE, DMAR_PROT_WRITE));
		TRY(dmar_map(dom, src_iova, src, PAGE, DMAR_PROT_READ));
		TRY(edu_dma_to_device(e, src_iova, 0, XFER));
		TRY(edu_dma_from_device(e, iova, 0, XFER));
		CHECK(dmar_memcmp(va(pa), va(src), XFER) == 0);
		TRY(dmar_unmap(dom, iova, PAGE));
		TRY(dmar_unmap(dom, src_iova, PAGE));
	}
	expect_no_fault(t, &f);
out:
	fixture_down(t, &f);
}

static bool same_usage(const struct baremetal_stats *a, const struct baremetal_stats *b)
{
	return a->heap_bytes == b->heap_bytes && a->pages == b->pages && a->locks == b->locks;
}

/* Every allocation the library makes while bringing up the real unit, attaching a device
 * and mapping can fail: each failure is DMAR_ENOMEM and leaves nothing allocated, no
 * translation half-enabled and nothing mapped; the next try succeeds and DMA works. */
void test_allocation_failures_leave_no_trace(struct ktest *t)
{
	struct fixture f;
	struct dmar_domain *dom = 0;
	struct edu *e = &kenv.edu[0];
	struct baremetal_stats base, now;
	unsigned n, failures = 0;
	if (fixture_up(t, &f, 1) != 0)
		goto out;
	/* The fixture's system is not used: this test builds its own under failures. */
	dmar_system_destroy(f.sys);
	f.sys = 0;
	volatile uint32_t *gsts = (volatile uint32_t *)va(f.info.reg_base + VTD_GSTS_REG);
	struct dmar_system *sys = 0;
	baremetal_get_stats(&base);
	for (n = 1; n < 200; n++) {
		baremetal_fail_alloc_after(n);
		int rc = dmar_system_create(&kenv.os, &kenv.cfg, &f.table, &sys);
		baremetal_fail_alloc_after(0);
		if (rc == 0)
			break;
		failures++;
		CHECK_EQ(rc, DMAR_ENOMEM);
		baremetal_get_stats(&now);
		CHECK(same_usage(&now, &base));
		CHECK(!(*gsts & VTD_GSTS_TES));
		sys = 0;
	}
	ENSURE(sys);
	f.sys = sys;
	dmar_system_set_topology(sys, pci_bridge_buses, 0);
	dmar_system_set_upstream(sys, pci_upstream, 0);
	f.unit = dmar_unit_for_device(sys, 0, e->pci->bus, e->pci->dev, e->pci->fn, 0, 0);
	ENSURE(f.unit);
	kprintf("# system create: %u allocation failures refused cleanly\n", failures);

	struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED,
					.width = kenv.domain_width };
	unsigned attach_failures = 0;
	for (n = 1; n < 200; n++) {
		baremetal_get_stats(&base);
		baremetal_fail_alloc_after(n);
		int rc = fixture_domain(&f, 0, &p, e, &dom);
		baremetal_fail_alloc_after(0);
		if (rc == 0)
			break;
		attach_failures++;
		CHECK_EQ(rc, DMAR_ENOMEM);
		if (f.dom[0])
			CHECK_EQ(dmar_domain_destroy(f.dom[0]), 0);
		f.dom[0] = 0;
		baremetal_get_stats(&now);
		CHECK(same_usage(&now, &base));
		CHECK(dmar_device_domain(f.unit, e->sid) == 0);
	}
	ENSURE(f.sid[0]);
	if (kenv.domain_width) {
		struct dmar_domain_info di;
		dmar_domain_get_info(dom, &di);
		CHECK_EQ(di.levels, domain_levels(kenv.domain_width));
	}
	kprintf("# domain create + attach: %u allocation failures refused cleanly\n",
		attach_failures);

	uint64_t src = buffer(&f, 1, PAGE, 0), dst = buffer(&f, 1, PAGE, 0);
	ENSURE(src && dst);
	/* Two pages far apart: each needs fresh table pages. */
	uint64_t iova_src = 0x05000000, iova_dst = 0x40000000ull * 5 + 0x3000;
	unsigned map_failures = 0;
	for (n = 1; n < 50; n++) {
		baremetal_get_stats(&base);
		baremetal_fail_alloc_after(n);
		int rc = dmar_map(dom, iova_src, src, PAGE, DMAR_PROT_READ);
		if (rc == 0)
			rc = dmar_map(dom, iova_dst, dst, PAGE, DMAR_PROT_WRITE);
		baremetal_fail_alloc_after(0);
		if (rc == 0)
			break;
		map_failures++;
		CHECK_EQ(rc, DMAR_ENOMEM);
		uint64_t phys;
		unsigned prot;
		CHECK_EQ(dmar_lookup(dom, iova_dst, &phys, &prot), DMAR_ENOENT);
		if (dmar_lookup(dom, iova_src, &phys, &prot) == 0)
			TRY(dmar_unmap(dom, iova_src, PAGE));
		baremetal_get_stats(&now);
		CHECK(now.heap_bytes == base.heap_bytes);
	}
	kprintf("# map: %u allocation failures refused cleanly\n", map_failures);
	CHECK(map_failures > 0); /* the first map of a fresh domain needs table pages */
	fill_pattern(src, PAGE, 50);
	TRY(edu_dma_to_device(e, iova_src, 0, XFER));
	TRY(edu_dma_from_device(e, iova_dst, 0, XFER));
	CHECK(dmar_memcmp(va(dst), va(src), XFER) == 0);
	expect_no_fault(t, &f);
	CHECK(failures > 0 && attach_failures > 0);
out:
	baremetal_fail_alloc_after(0);
	fixture_down(t, &f);
}
