/* Kernel entry: bring up the machine, find the DMAR table and the devices, run tests. */
#include "clock.h"
#include "console.h"
#include "demo.h"
#include "kenv.h"
#include "ktest.h"
#include "pci.h"
#include "pmem.h"
#include "tests.h"
#include "trap.h"
#include "util.h"
#include "vm.h"

struct kenv kenv;

void kmain(uint32_t magic, uint32_t info);

uint64_t kenv_dma_buffer(uint64_t npages, uint64_t align, uint64_t limit)
{
	return pmem_alloc(npages, align, limit);
}

static void config_warning(void *ctx, const char *msg)
{
	(void)ctx;
	kprintf("# tunables: %s\n", msg);
}

static void print_memory_map(const struct boot_info *bi)
{
	for (unsigned i = 0; i < bi->nregions; i++)
		kprintf("# mem %#018llx-%#018llx type %u\n",
			(unsigned long long)bi->region[i].base,
			(unsigned long long)(bi->region[i].base + bi->region[i].len - 1),
			bi->region[i].type);
}

static void print_pci(void)
{
	for (unsigned i = 0; i < pci_count(); i++) {
		const struct pci_dev *d = pci_device_at(i);
		kprintf("# pci %02x:%02x.%x %04x:%04x class %06x%s\n", d->bus, d->dev, d->fn,
			d->vendor, d->device, (unsigned)(d->class_rev >> 8),
			d->header_type == 1 ? " (bridge)" : "");
	}
}

void kmain(uint32_t magic, uint32_t info)
{
	console_init();
	kprintf("# dmar test kernel\n");
	if (!boot_info_parse(magic, info, &kenv.boot)) {
		kprintf("Bail out! not started by a multiboot loader with a memory map\n");
		qemu_exit(2);
	}
	/* Everything the loader gave us is copied: its memory may now be reused. */
	pmem_init(&kenv.boot);
	if (vm_init(&kenv.boot)) {
		kprintf("Bail out! cannot build the identity mapping\n");
		qemu_exit(2);
	}
	print_memory_map(&kenv.boot);
	kprintf("# command line: \"%s\"\n", kenv.boot.cmdline);
	kprintf("# %llu MiB usable\n", (unsigned long long)(pmem_pages_total() / 256));

	uint64_t hz = clock_init();
	kprintf("# TSC %llu kHz%s\n", (unsigned long long)(hz / 1000),
		hz ? "" : " (PIT calibration failed, guessing)");
	trap_init(ktest_watchdog);

	dmar_config_default(&kenv.cfg);
	kenv.cfg_warnings = dmar_config_parse(&kenv.cfg, kenv.boot.cmdline, config_warning, 0);
	char verbose[8] = "";
	boot_cmdline_get(&kenv.boot, "kernel.verbose", verbose, sizeof(verbose));
	kenv.verbose = verbose[0] == '1';
	baremetal_os_init(&kenv.os, kenv.verbose ? DMAR_LOG_DEBUG : DMAR_LOG_INFO);

	pci_enumerate();
	print_pci();
	while (kenv.nedu < KENV_MAX_EDU && edu_probe(kenv.nedu, &kenv.edu[kenv.nedu]))
		kenv.nedu++;
	kenv.have_dmar = acpi_find_table("DMAR", &kenv.dmar) == 0;

	char demo[8] = "";
	if (boot_cmdline_get(&kenv.boot, "kernel.demo", demo, sizeof(demo)) && demo[0] == '1')
		qemu_exit(demo_run() ? 1 : 0);

	static char only[BOOT_CMDLINE_MAX];
	bool filtered = boot_cmdline_get(&kenv.boot, "kernel.tests", only, sizeof(only));
	unsigned failed = ktest_run(kernel_tests, kernel_test_count, filtered ? only : 0);
	qemu_exit(failed ? 1 : 0);
}
