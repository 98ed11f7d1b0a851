/*
 * kenv.h - what the kernel found at boot, shared by the tests: memory map and command
 * line, the DMAR table, the edu devices, the tunables and the OS layer.
 */
#ifndef KERNEL_KENV_H
#define KERNEL_KENV_H

#include "acpi_find.h"
#include "baremetal.h"
#include "boot.h"
#include "dmar/config.h"
#include "edu.h"

#define KENV_MAX_EDU 4

/* What a configuration offers, named by the command line word kernel.expect=w1,w2,...
 * (the QEMU matrix derives it from QEMU's options): cm (CAP.CM), sp2m and sp1g
 * (CAP.SLLPS), pt (ECAP.PT), qi (queued invalidation in use), aw48 (SAGAW offers
 * 4-level tables), ir (ECAP.IR: interrupt remapping), eim (ECAP.EIM: extended
 * interrupt mode). Given, the list is complete: a feature it omits is absent. */
enum kenv_feature {
	KENV_CM, KENV_SP2M, KENV_SP1G, KENV_PT, KENV_QI, KENV_AW48, KENV_IR, KENV_EIM,
	KENV_NFEATURES
};
extern const char *const kenv_feature_name[KENV_NFEATURES];

struct kenv {
	struct boot_info boot;
	struct dmar_config cfg;
	int cfg_warnings;
	int verbose;             /* kernel.verbose=1 */
	bool expect_given;       /* kernel.expect= is on the command line */
	bool expect[KENV_NFEATURES];
	bool expect_bad;         /* it has a word outside kenv_feature_name */
	unsigned domain_width;   /* kernel.domain_width=N: the tests' translated domains
				    ask for N bits (0: the library's default) */
	unsigned expect_cpus;    /* kernel.expect_cpus=N: the configuration has N CPUs (QEMU's
				    -smp; 0: not given) */
	struct dmar_os os;
	int have_dmar;
	struct acpi_found dmar;  /* the DMAR table, when have_dmar */
	unsigned nedu;
	struct edu edu[KENV_MAX_EDU];
};

extern struct kenv kenv;

/* A zeroed, aligned, physically contiguous buffer below `limit`; 0 when out of memory.
 * The edu's default dma_mask is 28 bits: untranslated DMA buffers stay below 256 MiB. */
uint64_t kenv_dma_buffer(uint64_t npages, uint64_t align, uint64_t limit);
#define KENV_EDU_LIMIT 0x10000000ull

#endif
