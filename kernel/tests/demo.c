/*
 * The demonstration (kernel.demo=1, `make demo`): one pass through what the driver does,
 * told in plain words on the console, each step checked for real: the DMAR table, the
 * unit's capabilities, a device attached to a domain, a DMA through the IOMMU, a wild
 * DMA blocked and explained, a forged interrupt refused by interrupt remapping, and a
 * device bounced by the hw.busdma tunable.
 */
#include "demo.h"

#include "console.h"
#include "dmar/acpi.h"
#include "dmar/busdma.h"
#include "dmar/caps.h"
#include "dmar/dmar.h"
#include "dmar/ir.h"
#include "kenv.h"
#include "lapic.h"
#include "pci.h"
#include "pmem.h"
#include "regs.h"
#include "trap.h"
#include "util.h"

#define PAGE 4096ull
#define LEN 256u
#define WAIT_TICKS 5u /* 50 ms for an interrupt to arrive */

static inline uint8_t *va_of(uint64_t pa)
{
	return (uint8_t *)(uintptr_t)pa;
}

static struct dmar_os_ops demo_ops;
static struct dmar_os demo_os;

/* The driver's own log lines, indented under the story. */
static void demo_log(void *ctx, enum dmar_log_level level, const char *line)
{
	(void)ctx;
	if (level <= DMAR_LOG_WARN)
		kprintf("      driver: %s\n", line);
}

static int failed(const char *what, int rc)
{
	kprintf("\nDEMO FAILED: %s: %s\n", what, dmar_strerror(rc));
	return 1;
}

static const char *yes(bool b)
{
	return b ? "yes" : "no";
}

static void say_table(const struct dmar_acpi_table *t)
{
	kprintf("1. The firmware's ACPI DMAR table is at physical 0x%llx, %u bytes.\n",
		(unsigned long long)kenv.dmar.table, kenv.dmar.length);
	unsigned n = dmar_acpi_count(t, DMAR_ACPI_DRHD);
	for (unsigned i = 0; i < n; i++) {
		struct dmar_acpi_drhd d;
		if (dmar_acpi_drhd_get(t, i, &d))
			continue;
		unsigned nscope = 0;
		struct dmar_acpi_scope_iter it;
		struct dmar_acpi_scope s;
		if (dmar_acpi_scope_begin(t, d.offset, &it) == 0)
			while (dmar_acpi_scope_next(&it, &s))
				nscope++;
		kprintf("   It describes a remapping unit with registers at 0x%llx on PCI segment %u,\n"
			"   covering %s (%u device scope entries).\n",
			(unsigned long long)d.base, d.segment,
			(d.flags & DMAR_DRHD_INCLUDE_PCI_ALL) ? "every PCI device of the segment"
							      : "the devices it lists",
			nscope);
	}
	kprintf("   RMRRs (memory firmware keeps using for DMA): %u.\n",
		dmar_acpi_count(t, DMAR_ACPI_RMRR));
}

static void say_unit(struct dmar_unit *u)
{
	struct dmar_unit_info ui;
	struct dmar_caps c;
	dmar_unit_get_info(u, &ui);
	dmar_caps_decode(ui.cap, ui.ecap, &c);
	kprintf("2. The unit is VT-d version %u.%u (CAP 0x%016llx, ECAP 0x%016llx):\n",
		ui.ver >> 4, ui.ver & 15, (unsigned long long)ui.cap, (unsigned long long)ui.ecap);
	kprintf("   I/O addresses up to %u bits with %s-level page tables, %u domains,\n",
		ui.max_width, ui.max_width > 48 ? "5" : ui.max_width > 39 ? "4" : "3", ui.domains);
	kprintf("   superpages: 2 MiB %s, 1 GiB %s; page-selective invalidation %s (up to 2^%u pages);\n",
		yes(c.sp_2m), yes(c.sp_1g), yes(c.psi), c.mamv);
	kprintf("   %u fault recording register(s) at 0x%x; queued invalidation %s (the driver uses %s);\n",
		ui.nfr, c.frcd_offset, yes(c.qi), ui.qi ? "it" : "registers");
	kprintf("   pass-through %s; caching mode %s; page walks snoop the CPU caches: %s.\n",
		yes(ui.passthrough), yes(ui.caching_mode), yes(ui.coherent));
}

/* Raises the edu's interrupt once; whether `vector` saw it within WAIT_TICKS. */
static bool interrupt_arrives(struct edu *e, unsigned vector)
{
	uint64_t before = trap_irq_count(vector);
	edu_irq_raise(e, EDU_IRQ_FACT);
	bool arrived = trap_irq_wait(vector, before, WAIT_TICKS);
	edu_irq_ack(e, EDU_IRQ_FACT);
	return arrived;
}

/* 6. Interrupt remapping: the second edu's MSI through an entry that admits only it,
 * then the first edu sending the same message. */
static int say_forged_interrupt(struct dmar_system *sys, struct dmar_unit *u, struct edu *a,
				struct edu *b)
{
	struct dmar_irq *irq = 0;
	int rc = dmar_ir_enable(u);
	if (rc)
		return failed("turning interrupt remapping on", rc);
	int vec = trap_irq_claim(0, 0, 0);
	if (vec < 0)
		return failed("finding a free interrupt vector", DMAR_ENOSPC);
	struct dmar_irq_target tg = { .dest = lapic_id(), .vector = (uint8_t)vec };
	rc = dmar_ir_alloc_msi(sys, 0, b->pci->bus, b->pci->dev, b->pci->fn, 1, &tg, &irq);
	if (rc)
		return failed("allocating an interrupt remapping entry", rc);
	uint64_t addr, lo = 0, hi = 0;
	uint32_t data;
	unsigned index = dmar_ir_index(irq);
	dmar_ir_msi_message(irq, 0, &addr, &data);
	dmar_ir_entry(u, index, &lo, &hi);
	uint16_t admits = VTD_IRTE_HI_SID_GET(hi);
	if (edu_msi_enable(b, addr, (uint16_t)data))
		return failed("the second edu has no MSI capability", DMAR_ENODEV);
	bool own = interrupt_arrives(b, (unsigned)vec);
	kprintf("6. Interrupts: the driver turns interrupt remapping on and gives the second edu\n"
		"   (%02x:%02x.%x) entry %u of the interrupt remapping table: vector 0x%x to the CPU\n"
		"   with APIC id %u, from source id 0x%04x only. The edu's MSI now names only the\n"
		"   entry (address 0x%llx, data 0x%x); raised, it %s on vector 0x%x.\n",
		b->pci->bus, b->pci->dev, b->pci->fn, index, vec, tg.dest, admits,
		(unsigned long long)addr, data, own ? "arrived" : "DID NOT ARRIVE", vec);
	if (!own)
		return failed("the second edu's remapped interrupt", DMAR_EFAULT);

	/* A device can write any address, 0xFEEx_xxxx included: the first edu's MSI logic
	 * is told to send the second edu's message. */
	if (edu_msi_enable(a, addr, (uint16_t)data))
		return failed("the first edu has no MSI capability", DMAR_ENODEV);
	bool forged = interrupt_arrives(a, (unsigned)vec);
	edu_msi_disable(a);
	kprintf("   Now the first edu (%02x:%02x.%x, source id 0x%04x) sends that same message: a\n"
		"   forged interrupt naming entry %u, which admits only %02x:%02x.%x (source id 0x%04x).\n",
		a->pci->bus, a->pci->dev, a->pci->fn, a->sid, index, admits >> 8,
		(admits >> 3) & 0x1f, admits & 7, admits);
	bool own_again = interrupt_arrives(b, (unsigned)vec);
	kprintf("   %s: vector 0x%x %s within %u ms (QEMU 7.2 records no\n"
		"   fault for a refused interrupt). The second edu's own interrupt %s.\n",
		forged ? "The unit DID NOT refuse it" : "The unit refused it", vec,
		forged ? "ARRIVED" : "never came", WAIT_TICKS * 10,
		own_again ? "still arrives" : "DID NOT ARRIVE");
	edu_msi_disable(b);
	rc = dmar_ir_free(irq);
	if (!rc)
		rc = dmar_ir_disable(u);
	trap_irq_release((unsigned)vec);
	if (rc)
		return failed("turning interrupt remapping off", rc);
	if (forged || !own_again)
		return failed("the forged interrupt was not refused as expected", DMAR_EFAULT);
	return 0;
}

int demo_run(void)
{
	struct dmar_acpi_table table;
	struct dmar_system *sys = 0;
	struct dmar_domain *dom = 0;
	struct dmar_busdma *bus = 0;
	struct dmar_busdma_dev *bdev = 0;
	struct dmar_dma_tag *tag = 0;
	struct dmar_dmamap *map = 0;
	int rc;

	demo_ops = *kenv.os.ops;
	demo_ops.log = demo_log;
	demo_os.ops = &demo_ops;
	demo_os.ctx = kenv.os.ctx;

	kprintf("\n=== dmar: an Intel VT-d DMA-remapping driver, running on QEMU's intel-iommu ===\n\n");
	if (!kenv.have_dmar)
		return failed("no ACPI DMAR table (start QEMU with -device intel-iommu)", DMAR_ENODEV);
	if (kenv.nedu < 2)
		return failed("the demo needs two edu devices (-device edu -device edu)", DMAR_ENODEV);
	rc = dmar_acpi_parse(va_of(kenv.dmar.table), kenv.dmar.length, 0, &table);
	if (rc)
		return failed("parsing the DMAR table", rc);
	say_table(&table);
	rc = dmar_system_create(&demo_os, &kenv.cfg, &table, &sys);
	if (rc)
		return failed("bringing up the remapping units", rc);
	dmar_system_set_topology(sys, pci_bridge_buses, 0);

	struct edu *e = &kenv.edu[0];
	struct dmar_unit *u = dmar_unit_for_device(sys, 0, e->pci->bus, e->pci->dev, e->pci->fn, 0, 0);
	if (!u)
		return failed("finding the unit that covers the edu device", DMAR_ENODEV);
	say_unit(u);

	/* 3. A device in its own translated domain. */
	struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED, .width = 39 };
	rc = dmar_domain_create(u, &p, &dom);
	if (!rc)
		rc = dmar_domain_attach(dom, e->sid);
	if (rc)
		return failed("attaching the edu to a domain", rc);
	struct dmar_domain_info di;
	dmar_domain_get_info(dom, &di);
	kprintf("3. The edu device %02x:%02x.%x (source id 0x%04x) is attached to domain %u\n"
		"   (%u-level page table, %u-bit addresses); translation is on. It can reach only\n"
		"   what is mapped in that domain.\n",
		e->pci->bus, e->pci->dev, e->pci->fn, e->sid, di.did, di.levels, di.width);

	/* 4. A DMA through the IOMMU. */
	uint64_t src = pmem_alloc(1, PAGE, KENV_EDU_LIMIT), dst = pmem_alloc(1, PAGE, KENV_EDU_LIMIT);
	if (!src || !dst)
		return failed("allocating buffers", DMAR_ENOMEM);
	uint8_t *s = va_of(src), *d = va_of(dst);
	for (unsigned i = 0; i < LEN; i++)
		s[i] = (uint8_t)(i * 7 + 1);
	dmar_memset(d, 0, LEN);
	const uint64_t iova_src = 0x7000000, iova_dst = 0x7001000;
	rc = dmar_map(dom, iova_src, src, PAGE, DMAR_PROT_READ);
	if (!rc)
		rc = dmar_map(dom, iova_dst, dst, PAGE, DMAR_PROT_READ | DMAR_PROT_WRITE);
	if (rc)
		return failed("mapping the buffers", rc);
	kprintf("4. Mapped IOVA 0x%llx -> physical 0x%llx (read-only) and IOVA 0x%llx -> 0x%llx.\n",
		(unsigned long long)iova_src, (unsigned long long)src,
		(unsigned long long)iova_dst, (unsigned long long)dst);
	if (edu_dma_to_device(e, iova_src, 0, LEN) || edu_dma_from_device(e, iova_dst, 0, LEN))
		return failed("the edu's DMA did not complete", DMAR_ETIMEDOUT);
	bool same = dmar_memcmp(s, d, LEN) == 0;
	kprintf("   The device read %u bytes at IOVA 0x%llx and wrote them to IOVA 0x%llx:\n"
		"   the destination buffer now %s the source.\n",
		LEN, (unsigned long long)iova_src, (unsigned long long)iova_dst,
		same ? "equals" : "DIFFERS FROM");
	if (!same)
		return failed("DMA through the IOMMU", DMAR_EFAULT);

	/* 5. A wild DMA: at the physical address of a page of kernel memory, which an
	 * untranslated device would overwrite. */
	uint64_t wild = pmem_alloc(1, PAGE, KENV_EDU_LIMIT);
	if (!wild)
		return failed("allocating the victim page", DMAR_ENOMEM);
	uint8_t *victim = va_of(wild);
	dmar_memset(victim, 0x5a, LEN);
	kprintf("5. Now the device is told to write %u bytes to address 0x%llx, where a page of the\n"
		"   kernel's memory sits but which nobody mapped for the device (a wild DMA: a\n"
		"   driver bug or a malicious device).\n", LEN, (unsigned long long)wild);
	if (edu_dma_from_device(e, wild, 0, LEN))
		return failed("the edu's DMA did not complete", DMAR_ETIMEDOUT);
	bool untouched = true;
	for (unsigned i = 0; i < LEN; i++)
		untouched = untouched && victim[i] == 0x5a;
	kprintf("   The unit blocked it: the memory at physical 0x%llx is %s.\n",
		(unsigned long long)wild, untouched ? "unchanged" : "CHANGED");
	kprintf("   The driver drains the fault recording registers and prints the record, with\n"
		"   where the page walk for that address stops in the device's domain:\n");
	int nf = dmar_fault_poll(sys);
	struct dmar_fault_record rec;
	bool got = dmar_fault_read(sys, &rec, 1) == 1;
	if (!untouched || nf < 1 || !got || rec.sid != e->sid || rec.addr != wild || rec.is_read)
		return failed("the wild DMA was not blocked and recorded as expected", DMAR_EFAULT);
	kprintf("   Record: source 0x%04x, address 0x%llx, %s, reason %u.\n", rec.sid,
		(unsigned long long)rec.addr, rec.is_read ? "read" : "write", rec.reason);

	rc = dmar_unmap(dom, iova_src, PAGE);
	if (!rc)
		rc = dmar_unmap(dom, iova_dst, PAGE);
	if (!rc)
		rc = dmar_domain_detach(dom, e->sid);
	if (!rc)
		rc = dmar_domain_destroy(dom);
	if (rc)
		return failed("tearing the domain down", rc);

	struct edu *b = &kenv.edu[1];
	if (say_forged_interrupt(sys, u, e, b))
		return 1;

	/* 7. A device left untranslated by the tunable, with busdma bouncing for it. */
	struct dmar_pci_addr ba = { 0, b->pci->bus, b->pci->dev, b->pci->fn };
	kprintf("7. The command line says \"%s\".\n", kenv.boot.cmdline);
	if (!dmar_config_device_bounces(&kenv.cfg, ba)) {
		kprintf("   It does not name the second edu (%02x:%02x.%x); add\n"
			"   hw.busdma.pci0:%u:%u:%u.bounce=1 to see it bounced.\n", ba.bus, ba.dev,
			ba.fn, ba.bus, ba.dev, ba.fn);
	} else {
		struct dmar_dma_tag_params tp;
		rc = dmar_busdma_create(&demo_os, &kenv.cfg, sys, &bus);
		if (!rc)
			rc = dmar_busdma_device(bus, ba, pci_bridge_buses, 0, &bdev);
		dmar_dma_tag_params_default(&tp);
		tp.lowaddr = 0x0fffffff;
		tp.maxsize = LEN;
		tp.nsegments = 1;
		if (!rc)
			rc = dmar_dma_tag_create(bdev, 0, &tp, &tag);
		if (!rc)
			rc = dmar_dmamap_create(tag, 0, &map);
		if (rc)
			return failed("setting up busdma for the bounced device", rc);
		struct dmar_domain *bd = dmar_busdma_device_domain(bdev);
		struct dmar_domain_info bi;
		dmar_domain_get_info(bd, &bi);
		kprintf("   So the second edu (%02x:%02x.%x) is not translated: its domain is %s,\n"
			"   and busdma gives its driver bounce buffers instead of IOVAs.\n",
			ba.bus, ba.dev, ba.fn,
			bi.passthrough_tt ? "pass-through (context entry TT=2)"
					  : "an identity page table (the unit has no pass-through)");
		/* A buffer above 256 MiB, out of reach of the edu's 28-bit DMA: busdma
		 * bounces it through a page below the tag's lowaddr. */
		uint64_t high = pmem_alloc_in(1, PAGE, KENV_EDU_LIMIT, PMEM_NO_LIMIT);
		if (!high)
			return failed("the bounce demo needs RAM above 256 MiB (-m 512M)", DMAR_ENOMEM);
		uint8_t *buf = va_of(high) + 0x30;
		dmar_memset(buf, 0, LEN);
		rc = dmar_dmamap_load(tag, map, buf, LEN, 0);
		if (rc)
			return failed("loading the buffer", rc);
		const struct dmar_dma_segment *seg = dmar_dmamap_segs(map);
		rc = dmar_dmamap_sync(tag, map, DMAR_DMASYNC_PREREAD);
		/* Untranslated, the device reaches physical memory directly: it fetches the
		 * source bytes into its own buffer, then writes them to the loaded segment. */
		if (!rc && edu_dma_to_device(b, src, 0, LEN))
			rc = DMAR_ETIMEDOUT;
		if (!rc && edu_dma_from_device(b, seg[0].addr, 0, LEN))
			rc = DMAR_ETIMEDOUT;
		bool before = dmar_memcmp(buf, s, LEN) == 0;
		if (!rc)
			rc = dmar_dmamap_sync(tag, map, DMAR_DMASYNC_POSTREAD);
		bool after = dmar_memcmp(buf, s, LEN) == 0;
		if (rc)
			return failed("bounced DMA", rc);
		kprintf("   The driver loaded a buffer at 0x%llx, above the device's 28-bit reach; the\n"
			"   device wrote %u bytes to bus address 0x%llx, %s below 256 MiB, and the\n"
			"   driver's buffer received them at sync time: before the POSTREAD sync it %s\n"
			"   them, after it it %s them.\n",
			(unsigned long long)high + 0x30, LEN, (unsigned long long)seg[0].addr,
			dmar_dmamap_is_bounced(map) ? "a bounce page" : "NOT a bounce page",
			before ? "already had" : "did not have", after ? "has" : "still DOES NOT have");
		if (!dmar_dmamap_is_bounced(map) || before || !after)
			return failed("bounce buffering", DMAR_EFAULT);
		dmar_dmamap_unload(tag, map);
		dmar_dmamap_destroy(tag, map);
		dmar_dma_tag_destroy(tag);
		dmar_busdma_device_destroy(bdev);
		dmar_busdma_destroy(bus);
		pmem_free(high, 1);
	}
	dmar_system_destroy(sys);
	pmem_free(src, 1);
	pmem_free(dst, 1);
	pmem_free(wild, 1);
	kprintf("\nDemo complete: the device reached only what was mapped for it, the wild\n"
		"DMA was stopped, recorded and explained, and the forged interrupt was refused.\n");
	return 0;
}
