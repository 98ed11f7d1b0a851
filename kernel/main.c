/* Kernel entry: bring up the machine, find the DMAR table and the devices, run tests. */
#include "clock.h"
#include "console.h"
#include "demo.h"
#include "ehci.h"
#include "ioapic.h"
#include "kenv.h"
#include "ktest.h"
#include "lapic.h"
#include "pci.h"
#include "pmem.h"
#include "smp.h"
#include "tests.h"
#include "trap.h"
#include "uhci.h"
#include "util.h"
#include "vm.h"

struct kenv kenv;

const char *const kenv_feature_name[KENV_NFEATURES] = {
	[KENV_CM] = "cm", [KENV_SP2M] = "sp2m", [KENV_SP1G] = "sp1g",
	[KENV_PT] = "pt", [KENV_QI] = "qi", [KENV_AW48] = "aw48", [KENV_IR] = "ir",
	[KENV_EIM] = "eim",
};

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

/* kernel.expect=w1,w2,...: what the configuration offers (see kenv.h). */
static void parse_expect(void)
{
	static char words[BOOT_CMDLINE_MAX];
	if (!boot_cmdline_get(&kenv.boot, "kernel.expect", words, sizeof(words)))
		return;
	kenv.expect_given = true;
	const char *s = words;
	while (*s) {
		const char *w = s;
		while (*s && *s != ',')
			s++;
		size_t n = (size_t)(s - w);
		unsigned i = 0;
		while (i < KENV_NFEATURES && !(dmar_strlen(kenv_feature_name[i]) == n &&
					       dmar_memcmp(kenv_feature_name[i], w, n) == 0))
			i++;
		if (i < KENV_NFEATURES)
			kenv.expect[i] = true;
		else if (n > 0)
			kenv.expect_bad = true;
		if (*s == ',')
			s++;
	}
	kprintf("# the configuration offers:");
	for (unsigned i = 0; i < KENV_NFEATURES; i++)
		kprintf(" %s%s", kenv.expect[i] ? "" : "no-", kenv_feature_name[i]);
	kprintf("%s\n", kenv.expect_bad ? " (and words this kernel does not know)" : "");
}

/* kernel.domain_width=N (decimal). */
static unsigned parse_domain_width(void)
{
	char v[8] = "";
	unsigned n = 0;
	if (!boot_cmdline_get(&kenv.boot, "kernel.domain_width", v, sizeof(v)))
		return 0;
	for (const char *p = v; *p >= '0' && *p <= '9'; p++)
		n = n * 10 + (unsigned)(*p - '0');
	kprintf("# the tests' translated domains ask for %u-bit widths\n", n);
	return n;
}

static void print_memory_map(const struct boot_info *bi)
{
	for (unsigned i = 0; i < bi->nregions; i++)
		kprintf("# mem %#018llx-%#018llx type %u\n",
			(unsigned long long)bi->region[i].base,
			(unsigned long long)(bi->region[i].base + bi->region[i].len - 1),
			bi->region[i].type);
}

/* Firmware (SeaBIOS) leaves USB host controllers running their own schedules in memory
 * no domain maps: as a kernel does before it turns DMA remapping on, take them over and
 * stop them, so that none of their DMA faults later in a test that has nothing to do
 * with them. */
static void quiesce_usb_controllers(void)
{
	(void)uhci_quiesce_all();
	const struct pci_dev *d;
	for (unsigned n = 0; (d = ehci_find(n)) != 0; n++)
		(void)ehci_quiesce(d);
}

/* The interrupt controllers the tests route device interrupts through. */
static void print_interrupt_controllers(void)
{
	if (lapic_present())
		kprintf("# local APIC id %u at %#llx (xAPIC%s)\n", lapic_id(),
			(unsigned long long)lapic_base(),
			lapic_x2apic_capable() ? "; the CPU could run x2APIC" : "; no x2APIC");
	unsigned n = ioapic_init();
	for (unsigned i = 0; i < n; i++) {
		const struct ioapic *io = ioapic_at(i);
		kprintf("# IOAPIC id %u at %#llx: GSIs %u-%u, version %#x\n", io->id,
			(unsigned long long)io->base, io->gsi_base, io->gsi_base + io->pins - 1,
			io->version);
	}
	struct ioapic_isa_route r;
	ioapic_isa_route(0, &r);
	if (n)
		kprintf("# ISA IRQ 0 (PIT) -> GSI %u, active %s, %s-triggered%s\n", r.gsi,
			r.active_low ? "low" : "high", r.level ? "level" : "edge",
			r.overridden ? " (MADT override)" : "");
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
	/* The application processors, parked until a test hands them work (smp_run). */
	unsigned ncpu = smp_init(0);
	kprintf("# %u CPU%s running (%u listed in the MADT)\n", ncpu, ncpu == 1 ? "" : "s",
		smp_cpus_listed());

	dmar_config_default(&kenv.cfg);
	kenv.cfg_warnings = dmar_config_parse(&kenv.cfg, kenv.boot.cmdline, config_warning, 0);
	/* The embedder says how its local APICs run (interrupt remapping's destination
	 * format depends on it): this kernel keeps the xAPIC mode the firmware left. */
	if (kenv.cfg.x2apic)
		kprintf("# hw.dmar.x2apic=1 ignored: this kernel runs its local APIC in xAPIC "
			"mode\n");
	kenv.cfg.x2apic = false;
	char verbose[8] = "";
	boot_cmdline_get(&kenv.boot, "kernel.verbose", verbose, sizeof(verbose));
	kenv.verbose = verbose[0] == '1';
	parse_expect();
	kenv.domain_width = parse_domain_width();
	char cpus[8] = "";
	if (boot_cmdline_get(&kenv.boot, "kernel.expect_cpus", cpus, sizeof(cpus)))
		for (const char *p = cpus; *p >= '0' && *p <= '9'; p++)
			kenv.expect_cpus = kenv.expect_cpus * 10 + (unsigned)(*p - '0');
	baremetal_os_init(&kenv.os, kenv.verbose ? DMAR_LOG_DEBUG : DMAR_LOG_INFO);

	print_interrupt_controllers();
	pci_enumerate();
	print_pci();
	quiesce_usb_controllers();
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
