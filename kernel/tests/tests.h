/*
 * tests.h - the kernel's test list, in running order (tests.c), and the tests (test_*.c).
 */
#ifndef KERNEL_TESTS_H
#define KERNEL_TESTS_H

#include "ktest.h"

extern const struct ktest_def kernel_tests[];
extern const unsigned kernel_test_count;

void test_acpi_dmar_parsed(struct ktest *t);
void test_edu_dma_untranslated(struct ktest *t);
void test_watchdog_selftest(struct ktest *t);
void test_edu_dma_roundtrip(struct ktest *t);
void test_edu_dma_above_4g(struct ktest *t);
void test_edu_dma_48bit_iova(struct ktest *t);
void test_edu_unmapped_write_blocked(struct ktest *t);
void test_edu_unmapped_read_faults(struct ktest *t);
void test_edu_unmap_then_dma_faults(struct ktest *t);
void test_edu_readonly_write_faults(struct ktest *t);
void test_edu_superpage_2m(struct ktest *t);
void test_edu_superpage_1g(struct ktest *t);
void test_edu_partial_unmap_superpage(struct ktest *t);
void test_edu_isolation(struct ktest *t);
void test_edu_passthrough(struct ktest *t);
void test_fault_overflow_recovers(struct ktest *t);
void test_caching_mode_map_visible(struct ktest *t);
void test_allocation_failures_leave_no_trace(struct ktest *t);
void test_busdma_edu_28bit_mask(struct ktest *t);
void test_busdma_bounce_tunable(struct ktest *t);
/* Devices behind bridges (test_alias.c). */
void test_alias_pci_bridge(struct ktest *t);
void test_alias_pcie_pci_bridge(struct ktest *t);
void test_alias_shared_domain(struct ktest *t);
/* Storage controllers (test_ahci.c, test_ata.c, test_megasas.c, test_nvme.c). */
void test_ahci_rw_verify(struct ktest *t);
void test_ahci_stale_iova_faults(struct ktest *t);
void test_ata_rw_verify(struct ktest *t);
void test_ata_stale_iova_faults(struct ktest *t);
void test_megasas_rw_verify(struct ktest *t);
void test_megasas_stale_iova_faults(struct ktest *t);
void test_nvme_rw_verify(struct ktest *t);
void test_nvme_stale_iova_faults(struct ktest *t);
/* Storage throughput through busdma in three modes (bench_storage.c). */
void test_storage_bench(struct ktest *t);
/* Network (test_em.c) and USB mass storage (test_uhci.c, test_ehci.c, test_xhci.c). */
void test_e1000_to_e1000e_frames(struct ktest *t);
void test_e1000e_to_e1000_frames(struct ktest *t);
void test_em_stale_rx_buffer_faults(struct ktest *t);
void test_uhci_msd_rw_verify(struct ktest *t);
void test_ehci_msd_rw_verify(struct ktest *t);
void test_xhci_msd_rw_verify(struct ktest *t);
void test_xhci_stale_ring_faults(struct ktest *t);
/* Deferred invalidation (test_deferred.c). */
void test_deferred_window_closes(struct ktest *t);
void test_deferred_no_stale_reuse(struct ktest *t);
void test_deferred_pressure_flushes(struct ktest *t);
/* Device interrupts, compatibility format and remapped (test_ir.c). */
void test_msi_compat_delivered(struct ktest *t);
void test_ioapic_timer_compat(struct ktest *t);
void test_ir_msi_delivered(struct ktest *t);
void test_ir_entry_cleared_blocks(struct ktest *t);
void test_ir_forged_msi_blocked(struct ktest *t);
void test_ir_ioapic_timer(struct ktest *t);
/* The library on several CPUs at once (test_smp.c). */
void test_smp_cpus_started(struct ktest *t);
void test_smp_map_unmap_storm(struct ktest *t);
void test_smp_busdma_loads(struct ktest *t);
void test_smp_fault_while_mapping(struct ktest *t);
void test_smp_nvme_queue_per_cpu(struct ktest *t);

#endif
