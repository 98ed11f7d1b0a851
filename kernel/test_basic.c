/* Tests that need no remapping: the DMAR table is there, and the edu driver works. */
#include "kenv.h"
#include "pmem.h"
#include "tests.h"
#include "util.h"

void test_acpi_dmar_parsed(struct ktest *t)
{
	REQUIRE(kenv.have_dmar);
	const uint8_t *tbl = (const uint8_t *)(uintptr_t)kenv.dmar.table;
	kprintf("# DMAR at %#llx, %u bytes, via %s at %#llx\n",
		(unsigned long long)kenv.dmar.table, kenv.dmar.length,
		kenv.dmar.xsdt ? "XSDT" : "RSDT", (unsigned long long)kenv.dmar.root);
	CHECK(dmar_memcmp(tbl, "DMAR", 4) == 0);
	CHECK(kenv.dmar.length >= 48);
	CHECK_EQ(acpi_sum(tbl, kenv.dmar.length), 0);
	for (unsigned i = 0; kenv.verbose && i < kenv.dmar.length; i += 16) {
		kprintf("# %04x:", i);
		for (unsigned j = i; j < i + 16 && j < kenv.dmar.length; j++)
			kprintf(" %02x", tbl[j]);
		kprintf("\n");
	}
}

/* Bytes the CPU wrote go RAM -> edu -> other RAM with translation off. */
void test_edu_dma_untranslated(struct ktest *t)
{
	if (kenv.nedu == 0)
		SKIP("no edu device (-device edu)");
	struct edu *e = &kenv.edu[0];
	uint64_t a = kenv_dma_buffer(1, 4096, KENV_EDU_LIMIT);
	uint64_t b = kenv_dma_buffer(1, 4096, KENV_EDU_LIMIT);
	REQUIRE(a && b);
	uint8_t *pa = (uint8_t *)(uintptr_t)a, *pb = (uint8_t *)(uintptr_t)b;
	for (unsigned i = 0; i < 4096; i++) {
		pa[i] = (uint8_t)(i * 7 + 3);
		pb[i] = 0xee;
	}
	unsigned len = 3000;
	REQUIRE_OK(edu_dma_to_device(e, a, 0, len));
	REQUIRE_OK(edu_dma_from_device(e, b, 0, len));
	CHECK(dmar_memcmp(pa, pb, len) == 0);
	CHECK(pb[len] == 0xee); /* nothing beyond the count was written */
	pmem_free(a, 1);
	pmem_free(b, 1);
}
