/*
 * Devices behind bridges against QEMU's unit: an edu behind a conventional PCI bridge
 * (QEMU's pci-bridge: its DMA arrives with the bridge's own id) or behind a
 * PCIe-to-PCI bridge (pcie-pci-bridge: with (secondary bus, 00.0)) DMAs through its
 * domain, translated and bounced, and two edus behind one conventional bridge share a
 * domain. Which edu sits where comes from the PCI topology the kernel enumerated,
 * not from the library.
 */
#include "dmar/busdma.h"
#include "dmar/config.h"
#include "fixture.h"
#include "pmem.h"
#include "tests.h"
#include "util.h"

static bool contains(const char *s, const char *part)
{
	for (; *s; s++) {
		size_t i = 0;
		while (part[i] && s[i] == part[i])
			i++;
		if (!part[i])
			return true;
	}
	return false;
}

/* The first edu whose parent bridge is of this PCIe type (-1: none, a conventional
 * bridge), or NULL. */
static struct edu *edu_behind(int pcie_type)
{
	for (unsigned i = 0; i < kenv.nedu; i++) {
		const struct pci_dev *d = kenv.edu[i].pci;
		if (d->parent < 0)
			continue;
		if (pci_pcie_type(pci_device_at((unsigned)d->parent)) == pcie_type)
			return &kenv.edu[i];
	}
	return 0;
}

/* One edu DMA round trip through busdma (translated or bounced, as the configuration
 * decides): the device reads a buffer and writes it back into another. */
static void busdma_roundtrip(struct ktest *t, struct fixture *f, struct edu *e, bool bounce)
{
	struct dmar_config cfg = kenv.cfg;
	char words[64];
	if (bounce) {
		dmar__snprintf(words, sizeof(words), "hw.busdma.pci0:%u:%u:%u.bounce=1",
			      e->pci->bus, e->pci->dev, e->pci->fn);
		CHECK_EQ(dmar_config_parse(&cfg, words, 0, 0), 0);
	}
	struct dmar_busdma *bus = 0;
	struct dmar_busdma_dev *dev = 0;
	struct dmar_dma_tag *tag = 0;
	struct dmar_dmamap *m[2] = { 0, 0 };
	struct dmar_dma_tag_params p;
	dmar_dma_tag_params_default(&p);
	p.lowaddr = 0x0fffffff; /* the edu's default 28-bit dma_mask */
	p.maxsize = XFER;
	struct dmar_pci_addr a = { 0, e->pci->bus, e->pci->dev, e->pci->fn };
	uint64_t src = buffer(f, 1, PAGE, 0), dst = buffer(f, 1, PAGE, 0);
	ENSURE(src && dst);
	TRY(dmar_busdma_create(&kenv.os, &cfg, f->sys, &bus));
	TRY(dmar_busdma_device(bus, a, pci_bridge_buses, 0, &dev));
	CHECK_EQ(dmar_busdma_device_mode(dev), bounce ? DMAR_BUSDMA_BOUNCE : DMAR_BUSDMA_TRANSLATE);
	TRY(dmar_dma_tag_create(dev, 0, &p, &tag));
	TRY(dmar_dmamap_create(tag, 0, &m[0]));
	TRY(dmar_dmamap_create(tag, 0, &m[1]));
	fill_pattern(src, XFER, 7);
	TRY(dmar_dmamap_load(tag, m[0], va(src), XFER, 0));
	TRY(dmar_dmamap_load(tag, m[1], va(dst), XFER, 0));
	CHECK_EQ(dmar_dmamap_sync(tag, m[0], DMAR_DMASYNC_PREWRITE), 0);
	CHECK_EQ(dmar_dmamap_sync(tag, m[1], DMAR_DMASYNC_PREREAD), 0);
	CHECK_EQ(edu_dma_to_device(e, dmar_dmamap_segs(m[0])[0].addr, 0, XFER), 0);
	CHECK_EQ(edu_dma_from_device(e, dmar_dmamap_segs(m[1])[0].addr, 0, XFER), 0);
	CHECK_EQ(dmar_dmamap_sync(tag, m[1], DMAR_DMASYNC_POSTREAD), 0);
	CHECK(dmar_memcmp(va(src), va(dst), XFER) == 0);
	expect_no_fault(t, f);
	kprintf("# %s: %02x:%02x.%x %s, device addresses %#llx and %#llx\n",
		bounce ? "bounced" : "translated", e->pci->bus, e->pci->dev, e->pci->fn,
		bounce ? "through bounce pages" : "through its domain",
		(unsigned long long)dmar_dmamap_segs(m[0])[0].addr,
		(unsigned long long)dmar_dmamap_segs(m[1])[0].addr);
out:
	for (unsigned i = 0; i < 2; i++)
		if (m[i]) {
			CHECK_EQ(dmar_dmamap_unload(tag, m[i]), 0);
			CHECK_EQ(dmar_dmamap_destroy(tag, m[i]), 0);
		}
	if (tag)
		CHECK_EQ(dmar_dma_tag_destroy(tag), 0);
	if (dev)
		CHECK_EQ(dmar_busdma_device_destroy(dev), 0);
	if (bus)
		CHECK_EQ(dmar_busdma_destroy(bus), 0);
}

/* The edu behind the bridge: the unit sees `seen`; translated DMA works through its
 * domain and a wild one faults with that id, named as an alias of the edu; bounced
 * DMA works too. */
static void behind_bridge(struct ktest *t, int pcie_type, const char *none)
{
	struct edu *e = edu_behind(pcie_type);
	if (!e)
		SKIP(none);
	struct fixture f;
	struct dmar_domain *d;
	if (fixture_up(t, &f, 1))
		return;
	const struct pci_dev *br = pci_device_at((unsigned)e->pci->parent);
	uint16_t seen = pcie_type == PCI_EXP_TYPE_PCI_BRIDGE
				? (uint16_t)(br->secondary_bus << 8)
				: (uint16_t)(br->bus << 8 | br->dev << 3 | br->fn);
	uint16_t ids[DMAR_MAX_REQUESTER_IDS];
	unsigned n = dmar_device_requester_ids(f.sys, 0, e->pci->bus, e->pci->dev, e->pci->fn,
					       ids, DMAR_MAX_REQUESTER_IDS);
	ENSURE(n >= 2);
	CHECK_EQ(ids[0], e->sid);
	CHECK_EQ(ids[n - 1], seen);
	uint64_t src = buffer(&f, 1, PAGE, 0), dst = buffer(&f, 1, PAGE, 0);
	ENSURE(src && dst);
	TRY(translated_domain(&f, 0, e, &d));
	const uint64_t iova = 0x5000000;
	TRY(dmar_map(d, iova, src, PAGE, DMAR_PROT_READ));
	TRY(dmar_map(d, iova + PAGE, dst, PAGE, DMAR_PROT_RW));
	fill_pattern(src, XFER, 3);
	CHECK_EQ(edu_dma_to_device(e, iova, 0, XFER), 0);
	CHECK_EQ(edu_dma_from_device(e, iova + PAGE, 0, XFER), 0);
	CHECK(dmar_memcmp(va(src), va(dst), XFER) == 0);
	expect_no_fault(t, &f);
	/* A wild write: blocked, recorded with the bridge's id, explained as the edu's. */
	uint64_t canary = buffer(&f, 1, PAGE, 0x77);
	ENSURE(canary);
	CHECK_EQ(edu_dma_from_device(e, canary, 0, 64), 0);
	CHECK(all_bytes(canary, PAGE, 0x77));
	dmar_fault_poll(f.sys);
	struct dmar_fault_record r;
	CHECK_EQ(dmar_fault_read(f.sys, &r, 1), 1);
	CHECK_EQ(r.sid, seen);
	char line[512], want[48];
	dmar_fault_format(f.sys, &r, line, sizeof(line));
	kprintf("# %s\n", line);
	dmar__snprintf(want, sizeof(want), "an alias of %02x:%02x.%x", e->pci->bus, e->pci->dev,
		      e->pci->fn);
	CHECK(contains(line, want));
	TRY(dmar_unmap(d, iova, 2 * PAGE));
	TRY(dmar_domain_detach_device(d, e->pci->bus, e->pci->dev, e->pci->fn));
	f.sid[0] = 0;
	busdma_roundtrip(t, &f, e, false);
	busdma_roundtrip(t, &f, e, true);
out:
	fixture_down(t, &f);
}

void test_alias_pci_bridge(struct ktest *t)
{
	behind_bridge(t, -1, "no edu behind a conventional PCI bridge on this machine");
}

void test_alias_pcie_pci_bridge(struct ktest *t)
{
	behind_bridge(t, PCI_EXP_TYPE_PCI_BRIDGE, "no edu behind a PCIe-to-PCI bridge on this machine");
}

/* Two edus behind one conventional bridge reach the unit with one id: splitting them
 * into two domains is refused, one domain serves both, and busdma puts them in one. */
void test_alias_shared_domain(struct ktest *t)
{
	struct edu *e0 = 0, *e1 = 0;
	for (unsigned i = 0; i < kenv.nedu && !e1; i++)
		for (unsigned j = i + 1; j < kenv.nedu && !e1; j++) {
			const struct pci_dev *a = kenv.edu[i].pci, *b = kenv.edu[j].pci;
			if (a->parent >= 0 && a->parent == b->parent &&
			    pci_pcie_type(pci_device_at((unsigned)a->parent)) < 0) {
				e0 = &kenv.edu[i];
				e1 = &kenv.edu[j];
			}
		}
	if (!e1)
		SKIP("no two edus behind one conventional PCI bridge on this machine");
	struct fixture f;
	struct dmar_domain *d0, *d1;
	struct dmar_busdma *bus = 0;
	struct dmar_busdma_dev *b0 = 0, *b1 = 0;
	if (fixture_up(t, &f, 2))
		return;
	uint64_t src = buffer(&f, 1, PAGE, 0), dst = buffer(&f, 1, PAGE, 0);
	ENSURE(src && dst);
	struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED };
	TRY(fixture_domain(&f, 0, &p, e0, &d0));
	TRY(fixture_domain(&f, 1, &p, 0, &d1));
	CHECK_EQ(dmar_domain_attach_device(d1, e1->pci->bus, e1->pci->dev, e1->pci->fn),
		 DMAR_EBUSY);
	TRY(dmar_domain_attach_device(d0, e1->pci->bus, e1->pci->dev, e1->pci->fn));
	TRY(dmar_map(d0, 0x6000000, src, PAGE, DMAR_PROT_READ));
	TRY(dmar_map(d0, 0x6001000, dst, PAGE, DMAR_PROT_RW));
	fill_pattern(src, XFER, 9);
	CHECK_EQ(edu_dma_to_device(e1, 0x6000000, 0, XFER), 0);
	CHECK_EQ(edu_dma_from_device(e1, 0x6001000, 0, XFER), 0);
	CHECK(dmar_memcmp(va(src), va(dst), XFER) == 0);
	expect_no_fault(t, &f);
	TRY(dmar_domain_detach_device(d0, e1->pci->bus, e1->pci->dev, e1->pci->fn));
	TRY(dmar_unmap(d0, 0x6000000, 2 * PAGE));
	TRY(dmar_domain_detach_device(d0, e0->pci->bus, e0->pci->dev, e0->pci->fn));
	f.sid[0] = 0;
	/* busdma: the second device joins the first's domain. */
	struct dmar_pci_addr a0 = { 0, e0->pci->bus, e0->pci->dev, e0->pci->fn };
	struct dmar_pci_addr a1 = { 0, e1->pci->bus, e1->pci->dev, e1->pci->fn };
	TRY(dmar_busdma_create(&kenv.os, &kenv.cfg, f.sys, &bus));
	TRY(dmar_busdma_device(bus, a0, pci_bridge_buses, 0, &b0));
	TRY(dmar_busdma_device(bus, a1, pci_bridge_buses, 0, &b1));
	CHECK(dmar_busdma_device_domain(b0) == dmar_busdma_device_domain(b1));
out:
	if (b1)
		CHECK_EQ(dmar_busdma_device_destroy(b1), 0);
	if (b0)
		CHECK_EQ(dmar_busdma_device_destroy(b0), 0);
	if (bus)
		CHECK_EQ(dmar_busdma_destroy(bus), 0);
	fixture_down(t, &f);
}
