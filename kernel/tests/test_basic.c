/* Tests that need no remapping: the edu driver and the watchdog work. */
#include "kenv.h"
#include "pmem.h"
#include "tests.h"
#include "util.h"

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

/* Hangs on purpose (only run when named): the watchdog must end the run. */
void test_watchdog_selftest(struct ktest *t)
{
	volatile unsigned long spins = 0;
	(void)t;
	for (;;)
		spins++;
}
