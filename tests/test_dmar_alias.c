/*
 * Devices behind bridges on the simulated machine: the requester ids their DMA carries
 * (PCIe-to-PCI bridges alias to their secondary bus, conventional bridges to their own
 * id, declared quirks), attach by every id, functions sharing an id kept in one domain,
 * faults from an alias attributed, and busdma devices sharing a domain and IOVA space.
 */
#include "harness.h"
#include "simsys.h"
#include "dmar/busdma.h"
#include "regs.h"
#include "util.h"

#include <string.h>

/* The topology: simsys_bridged_upstream (tests/lib/simsys.h). */
static void up(struct simsys *s)
{
	REQUIRE_OK(simsys_up(s, NULL, NULL));
	dmar_system_set_upstream(s->sys, simsys_bridged_upstream, NULL);
}

static struct dmar_domain *translated(struct simsys *s)
{
	struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED };
	struct dmar_domain *d = NULL;
	REQUIRE_OK(dmar_domain_create(s->unit, &p, &d));
	return d;
}

TEST(requester_ids_follow_the_bridges_up)
{
	struct simsys s;
	up(&s);
	uint16_t ids[DMAR_MAX_REQUESTER_IDS];
	/* Conventional bridge: its own id. */
	REQUIRE_EQ(dmar_device_requester_ids(s.sys, 0, 2, 3, 0, ids, 8), 2);
	CHECK_EQ(ids[0], VTD_SID(2, 3, 0));
	CHECK_EQ(ids[1], VTD_SID(0, 0x1e, 0));
	/* PCIe-to-PCI bridge below a root port: (secondary bus, 00.0); the port adds none. */
	REQUIRE_EQ(dmar_device_requester_ids(s.sys, 0, 3, 5, 0, ids, 8), 2);
	CHECK_EQ(ids[1], VTD_SID(3, 0, 0));
	/* Both on the way: the last id is the one the unit sees. */
	REQUIRE_EQ(dmar_device_requester_ids(s.sys, 0, 5, 0, 0, ids, 8), 3);
	CHECK_EQ(ids[1], VTD_SID(4, 1, 0));
	CHECK_EQ(ids[2], VTD_SID(4, 0, 0));
	/* On the root bus: only its own. A declared quirk adds one. */
	CHECK_EQ(dmar_device_requester_ids(s.sys, 0, 0, 3, 0, ids, 8), 1);
	CHECK_OK(dmar_system_add_dma_alias(s.sys, 0, VTD_SID(0, 3, 0), VTD_SID(0, 3, 1)));
	REQUIRE_EQ(dmar_device_requester_ids(s.sys, 0, 0, 3, 0, ids, 8), 2);
	CHECK_EQ(ids[1], VTD_SID(0, 3, 1));
	CHECK_EQ(dmar_device_requester_ids(s.sys, 1, 0, 3, 0, ids, 8), 1); /* other segment */
	CHECK_EQ(simsys_down(&s), 0);
}

/* DMA that reaches the unit with any of the device's ids translates in its domain; a
 * fault from an alias names the device behind it. */
static void translated_behind(uint8_t bus, uint8_t dev, uint16_t seen)
{
	struct simsys s;
	up(&s);
	struct dmar_domain *d = translated(&s);
	uint64_t pa;
	unsigned char *buf = simsys_buffer(&s, 4096, &pa);
	CHECK_OK(dmar_map(d, 0x10000, pa, 4096, DMAR_PROT_RW));
	CHECK_OK(dmar_domain_attach_device(d, bus, dev, 0));
	memset(buf, 0x3c, 64);
	unsigned char b[64];
	CHECK_EQ(simsys_dma(&s, seen, 0x10000, b, sizeof(b), false), 0);
	CHECK_EQ(b[0], 0x3c);
	CHECK_EQ(simsys_dma(&s, VTD_SID(bus, dev, 0), 0x10000, b, sizeof(b), false), 0);
	CHECK_EQ(simsys_dma(&s, seen, 0x20000, b, sizeof(b), false), VTD_FR_READ);
	REQUIRE_EQ(dmar_fault_poll(s.sys), 1);
	struct dmar_fault_record r;
	REQUIRE_EQ(dmar_fault_read(s.sys, &r, 1), 1);
	CHECK_EQ(r.sid, seen);
	char line[512], want[64];
	dmar_fault_format(s.sys, &r, line, sizeof(line));
	snprintf(want, sizeof(want), "an alias of %02x:%02x.0", bus, dev);
	if (!strstr(line, want))
		harness_fail(__FILE__, __LINE__, "no \"%s\" in: %s", want, line);
	CHECK_EQ(dmar_domain_attach_device(d, bus, dev, 0), DMAR_EEXIST);
	CHECK_OK(dmar_domain_detach_device(d, bus, dev, 0));
	CHECK_EQ(simsys_dma(&s, seen, 0x10000, b, sizeof(b), false), VTD_FR_CTX_NOT_PRESENT);
	dmar_fault_poll(s.sys);
	CHECK_EQ(dmar_domain_detach_device(d, bus, dev, 0), DMAR_ENOENT);
	CHECK_OK(dmar_unmap(d, 0x10000, 4096));
	CHECK_OK(dmar_domain_destroy(d));
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(alias_pci_bridge)
{
	translated_behind(2, 3, VTD_SID(0, 0x1e, 0));
}

TEST(alias_pcie_pci_bridge)
{
	translated_behind(3, 5, VTD_SID(3, 0, 0));
	translated_behind(5, 0, VTD_SID(4, 0, 0));
}

/* Two functions behind one conventional bridge reach the unit with one id: they can only
 * share a domain. Splitting them is refused and changes nothing. */
TEST(alias_shared_domain)
{
	struct simsys s;
	up(&s);
	struct dmar_domain *d1 = translated(&s), *d2 = translated(&s);
	uint64_t pa;
	simsys_buffer(&s, 4096, &pa);
	CHECK_OK(dmar_map(d1, 0x10000, pa, 4096, DMAR_PROT_RW));
	const uint16_t bridge = VTD_SID(0, 0x1e, 0);
	unsigned char b[16];
	CHECK_OK(dmar_domain_attach_device(d1, 2, 3, 0));
	dmar_posix_machine_log_clear(s.pm);
	CHECK_EQ(dmar_domain_attach_device(d2, 2, 4, 0), DMAR_EBUSY);
	CHECK(strstr(dmar_posix_machine_log(s.pm), "shares requester id 00:1e.0") != NULL);
	CHECK(dmar_device_domain(s.unit, VTD_SID(2, 4, 0)) == NULL); /* nothing changed */
	CHECK(dmar_device_domain(s.unit, bridge) == d1);
	/* Raw attaches cannot split them either. */
	CHECK_EQ(dmar_domain_attach(d2, bridge), DMAR_EBUSY);
	CHECK_EQ(dmar_domain_detach(d1, bridge), DMAR_EBUSY);
	CHECK_OK(dmar_domain_attach_device(d1, 2, 4, 0));
	/* The first leaves: the shared id stays for the second. */
	CHECK_OK(dmar_domain_detach_device(d1, 2, 3, 0));
	CHECK_EQ(simsys_dma(&s, bridge, 0x10000, b, sizeof(b), false), 0);
	CHECK_EQ(simsys_dma(&s, VTD_SID(2, 3, 0), 0x10000, b, sizeof(b), false),
		 VTD_FR_CTX_NOT_PRESENT);
	CHECK_EQ(dmar_domain_destroy(d1), DMAR_EBUSY);
	CHECK_OK(dmar_domain_detach_device(d1, 2, 4, 0));
	CHECK_EQ(simsys_dma(&s, bridge, 0x10000, b, sizeof(b), false), VTD_FR_CTX_NOT_PRESENT);
	dmar_fault_poll(s.sys);
	/* Now d2 may have them. */
	CHECK_OK(dmar_domain_attach_device(d2, 2, 4, 0));
	CHECK(dmar_device_domain(s.unit, bridge) == d2);
	CHECK_OK(dmar_domain_detach_device(d2, 2, 4, 0));
	CHECK_OK(dmar_unmap(d1, 0x10000, 4096));
	CHECK_OK(dmar_domain_destroy(d1));
	CHECK_OK(dmar_domain_destroy(d2));
	CHECK_EQ(simsys_down(&s), 0);
}

/* Every allocation of an attach behind a bridge (context tables of new buses) may fail:
 * the call fails and no id of the device is left attached. */
TEST(alias_attach_allocation_failures_leave_nothing)
{
	unsigned n;
	for (n = 1; n < 100; n++) {
		struct simsys s;
		up(&s);
		struct dmar_domain *d = translated(&s);
		dmar_posix_machine_fail_nth(s.pm, n);
		int rc = dmar_domain_attach_device(d, 5, 0, 0);
		bool failed = dmar_posix_machine_failed(s.pm);
		dmar_posix_machine_fail_nth(s.pm, 0);
		if (failed) {
			CHECK_EQ(rc, DMAR_ENOMEM);
			CHECK(dmar_device_domain(s.unit, VTD_SID(5, 0, 0)) == NULL);
			CHECK(dmar_device_domain(s.unit, VTD_SID(4, 1, 0)) == NULL);
			CHECK(dmar_device_domain(s.unit, VTD_SID(4, 0, 0)) == NULL);
		} else {
			CHECK_OK(rc);
			CHECK_OK(dmar_domain_detach_device(d, 5, 0, 0));
		}
		CHECK_OK(dmar_domain_destroy(d));
		CHECK_EQ(simsys_down(&s), 0);
		if (!failed)
			break;
	}
	printf("  failed each of %u allocations in turn\n", n - 1);
	CHECK(n > 2);
}

/* busdma: the second device behind the bridge joins the first's domain and IOVA space;
 * loads of both get distinct IOVAs; each keeps working when the other goes. */
TEST(busdma_devices_sharing_an_alias_share_a_domain)
{
	struct simsys s;
	up(&s);
	struct dmar_busdma *bus;
	REQUIRE_OK(dmar_busdma_create(dmar_posix_machine_os(s.pm), &s.cfg, s.sys, &bus));
	struct dmar_busdma_dev *da, *db;
	struct dmar_pci_addr a = { 0, 2, 3, 0 }, bb = { 0, 2, 4, 0 };
	REQUIRE_OK(dmar_busdma_device(bus, a, NULL, NULL, &da));
	REQUIRE_OK(dmar_busdma_device(bus, bb, NULL, NULL, &db));
	CHECK(dmar_busdma_device_domain(da) == dmar_busdma_device_domain(db));
	CHECK_EQ(dmar_busdma_device_mode(db), DMAR_BUSDMA_TRANSLATE);
	struct dmar_dma_tag_params tp;
	dmar_dma_tag_params_default(&tp);
	tp.maxsize = 8192;
	tp.nsegments = 2;
	struct dmar_dma_tag *ta, *tb;
	REQUIRE_OK(dmar_dma_tag_create(da, NULL, &tp, &ta));
	REQUIRE_OK(dmar_dma_tag_create(db, NULL, &tp, &tb));
	struct dmar_dmamap *ma, *mb;
	REQUIRE_OK(dmar_dmamap_create(ta, 0, &ma));
	REQUIRE_OK(dmar_dmamap_create(tb, 0, &mb));
	uint64_t pa;
	unsigned char *buf = simsys_buffer(&s, 8192, &pa);
	memset(buf, 0x11, 4096);
	memset(buf + 4096, 0x22, 4096);
	REQUIRE_OK(dmar_dmamap_load(ta, ma, buf, 4096, 0));
	REQUIRE_OK(dmar_dmamap_load(tb, mb, buf + 4096, 4096, 0));
	uint64_t ia = dmar_dmamap_segs(ma)[0].addr, ib = dmar_dmamap_segs(mb)[0].addr;
	CHECK(ia != ib);
	const uint16_t bridge = VTD_SID(0, 0x1e, 0);
	unsigned char b[16];
	CHECK_EQ(simsys_dma(&s, bridge, ia, b, 16, false), 0);
	CHECK_EQ(b[0], 0x11);
	CHECK_EQ(simsys_dma(&s, bridge, ib, b, 16, false), 0);
	CHECK_EQ(b[0], 0x22);
	CHECK_OK(dmar_dmamap_unload(ta, ma));
	CHECK_OK(dmar_dmamap_destroy(ta, ma));
	CHECK_OK(dmar_dma_tag_destroy(ta));
	CHECK_OK(dmar_busdma_device_destroy(da));
	CHECK_EQ(simsys_dma(&s, bridge, ib, b, 16, false), 0); /* the second still works */
	CHECK_EQ(b[0], 0x22);
	CHECK_OK(dmar_dmamap_unload(tb, mb));
	CHECK_OK(dmar_dmamap_destroy(tb, mb));
	CHECK_OK(dmar_dma_tag_destroy(tb));
	CHECK_OK(dmar_busdma_device_destroy(db));
	CHECK_EQ(simsys_dma(&s, bridge, ib, b, 16, false), VTD_FR_CTX_NOT_PRESENT);
	dmar_fault_poll(s.sys);
	CHECK_OK(dmar_busdma_destroy(bus));
	CHECK_EQ(simsys_down(&s), 0);
}
