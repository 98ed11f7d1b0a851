/* The tests, in running order, with their time budgets (each edu DMA takes ~100 ms). */
#include "tests.h"

#include "util.h"

const struct ktest_def kernel_tests[] = {
	{ "acpi_dmar_parsed", test_acpi_dmar_parsed, 5000 },
	{ "edu_dma_untranslated", test_edu_dma_untranslated, 10000 },
	{ "edu_dma_roundtrip", test_edu_dma_roundtrip, 10000 },
	{ "edu_dma_above_4g", test_edu_dma_above_4g, 10000 },
	{ "edu_unmapped_write_blocked", test_edu_unmapped_write_blocked, 10000 },
	{ "edu_unmapped_read_faults", test_edu_unmapped_read_faults, 10000 },
	{ "edu_unmap_then_dma_faults", test_edu_unmap_then_dma_faults, 10000 },
	{ "edu_readonly_write_faults", test_edu_readonly_write_faults, 10000 },
	{ "edu_superpage_2m", test_edu_superpage_2m, 20000 },
	{ "edu_superpage_1g", test_edu_superpage_1g, 20000 },
	{ "edu_partial_unmap_superpage", test_edu_partial_unmap_superpage, 30000 },
	{ "edu_isolation", test_edu_isolation, 15000 },
	{ "edu_passthrough", test_edu_passthrough, 10000 },
	{ "fault_overflow_recovers", test_fault_overflow_recovers, 10000 },
	{ "caching_mode_map_visible", test_caching_mode_map_visible, 15000 },
	{ "allocation_failures_leave_no_trace", test_allocation_failures_leave_no_trace, 20000 },
};
const unsigned kernel_test_count = DMAR_ARRAY_SIZE(kernel_tests);
