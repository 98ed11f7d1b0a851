/* The tests, in running order, with their time budgets (each edu DMA takes ~100 ms). */
#include "tests.h"

#include "util.h"

const struct ktest_def kernel_tests[] = {
	{ "acpi_dmar_parsed", test_acpi_dmar_parsed, 5000 },
	{ "edu_dma_untranslated", test_edu_dma_untranslated, 10000 },
};
const unsigned kernel_test_count = DMAR_ARRAY_SIZE(kernel_tests);
