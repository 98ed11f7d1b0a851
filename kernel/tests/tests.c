/* The tests, in running order, with their time budgets (each edu DMA takes ~100 ms). */
#include "tests.h"

#include "util.h"

const struct ktest_def kernel_tests[] = {
	{ "acpi_dmar_parsed", test_acpi_dmar_parsed, 5000, false },
	{ "edu_dma_untranslated", test_edu_dma_untranslated, 10000, false },
	{ "edu_dma_roundtrip", test_edu_dma_roundtrip, 10000, false },
	{ "edu_dma_above_4g", test_edu_dma_above_4g, 10000, false },
	{ "edu_dma_48bit_iova", test_edu_dma_48bit_iova, 10000, false },
	{ "edu_unmapped_write_blocked", test_edu_unmapped_write_blocked, 10000, false },
	{ "edu_unmapped_read_faults", test_edu_unmapped_read_faults, 10000, false },
	{ "edu_unmap_then_dma_faults", test_edu_unmap_then_dma_faults, 10000, false },
	{ "edu_readonly_write_faults", test_edu_readonly_write_faults, 10000, false },
	{ "edu_superpage_2m", test_edu_superpage_2m, 20000, false },
	{ "edu_superpage_1g", test_edu_superpage_1g, 20000, false },
	{ "edu_partial_unmap_superpage", test_edu_partial_unmap_superpage, 30000, false },
	{ "edu_isolation", test_edu_isolation, 15000, false },
	{ "edu_passthrough", test_edu_passthrough, 10000, false },
	{ "fault_overflow_recovers", test_fault_overflow_recovers, 10000, false },
	{ "caching_mode_map_visible", test_caching_mode_map_visible, 15000, false },
	{ "allocation_failures_leave_no_trace", test_allocation_failures_leave_no_trace, 20000, false },
	{ "busdma_edu_28bit_mask", test_busdma_edu_28bit_mask, 10000, false },
	{ "busdma_bounce_tunable", test_busdma_bounce_tunable, 10000, false },
	{ "alias_pci_bridge", test_alias_pci_bridge, 20000, false },
	{ "alias_pcie_pci_bridge", test_alias_pcie_pci_bridge, 20000, false },
	{ "alias_shared_domain", test_alias_shared_domain, 20000, false },
	{ "ahci_rw_verify", test_ahci_rw_verify, 20000, false },
	{ "ahci_stale_iova_faults", test_ahci_stale_iova_faults, 20000, false },
	{ "ata_rw_verify", test_ata_rw_verify, 20000, false },
	{ "ata_stale_iova_faults", test_ata_stale_iova_faults, 20000, false },
	{ "megasas_rw_verify", test_megasas_rw_verify, 20000, false },
	{ "megasas_stale_iova_faults", test_megasas_stale_iova_faults, 15000, false },
	{ "nvme_rw_verify", test_nvme_rw_verify, 20000, false },
	{ "nvme_stale_iova_faults", test_nvme_stale_iova_faults, 10000, false },
	/* A benchmark (scripts/bench-qemu.sh); its length follows kernel.bench_rounds/_ms. */
	{ "storage_bench", test_storage_bench, 900000, true },
	{ "e1000_to_e1000e_frames", test_e1000_to_e1000e_frames, 20000, false },
	{ "e1000e_to_e1000_frames", test_e1000e_to_e1000_frames, 20000, false },
	{ "em_stale_rx_buffer_faults", test_em_stale_rx_buffer_faults, 10000, false },
	{ "uhci_msd_rw_verify", test_uhci_msd_rw_verify, 20000, false },
	{ "ehci_msd_rw_verify", test_ehci_msd_rw_verify, 20000, false },
	{ "xhci_msd_rw_verify", test_xhci_msd_rw_verify, 20000, false },
	{ "xhci_stale_ring_faults", test_xhci_stale_ring_faults, 15000, false },
	{ "deferred_window_closes", test_deferred_window_closes, 10000, false },
	{ "deferred_no_stale_reuse", test_deferred_no_stale_reuse, 20000, false },
	{ "deferred_pressure_flushes", test_deferred_pressure_flushes, 10000, false },
	/* Must end as "not ok ... # watchdog": the matrix runs it alone to prove that. */
	{ "watchdog_selftest", test_watchdog_selftest, 500, true },
};
const unsigned kernel_test_count = DMAR_ARRAY_SIZE(kernel_tests);
