/*
 * A system made from an ACPI DMAR table: units per DRHD, device -> unit lookup, and RMRR
 * ranges identity-mapped before translation is enabled for the device they name.
 */
#include "harness.h"
#include "dmar_table_builder.h"
#include "dmar/acpi.h"
#include "dmar/dmar.h"
#include "posix_machine.h"
#include "regs.h"

#include <string.h>

#define BASE_GFX 0xfed90000ull
#define BASE_ALL 0xfed91000ull
#define RMRR_BASE 0x40100000ull /* inside the simulated RAM */

struct machine {
	struct posix_machine *pm;
	struct dmar_acpi_table table;
	struct dtb dtb;
	struct dmar_system *sys;
};

/* DRHD 0: explicit scope 00:02.0; DRHD 1 (INCLUDE_PCI_ALL) with the IOAPIC; RMRRs for
 * 00:1d.0 (one good, one empty, one unaligned) and 00:02.0. */
static void build(struct machine *m, bool with_zero_base)
{
	struct dtb *b = &m->dtb;
	dtb_init(b, 38, DMAR_ACPI_INTR_REMAP);
	dtb_drhd(b, 0, 0, BASE_GFX);
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 2, 0, 0);
	if (with_zero_base) {
		dtb_drhd(b, 0, 0, 0);
		dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 3, 0, 0);
	}
	dtb_drhd(b, DMAR_DRHD_INCLUDE_PCI_ALL, 0, BASE_ALL);
	dtb_scope_pci(b, DMAR_SCOPE_IOAPIC, 0xf0, 0x1f, 0, 2);
	dtb_rmrr(b, 0, RMRR_BASE, RMRR_BASE + 0x1fffff);
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 0x1d, 0, 0);
	dtb_rmrr(b, 0, RMRR_BASE + 0x400000, RMRR_BASE + 0x400000 - 1); /* empty */
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 0x1d, 0, 0);
	dtb_rmrr(b, 0, RMRR_BASE + 0x600100, RMRR_BASE + 0x600eff); /* unaligned */
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 0, 0x1d, 0, 0);
	dtb_finish(b);
}

static int up(struct machine *m, bool with_zero_base)
{
	struct dmar_posix_machine_config pmc;
	struct model_config mc;
	struct dmar_config cfg;
	memset(m, 0, sizeof(*m));
	memset(&pmc, 0, sizeof(pmc));
	build(m, with_zero_base);
	REQUIRE_OK(dmar_acpi_parse(m->dtb.buf, m->dtb.len, NULL, &m->table));
	m->pm = dmar_posix_machine_create(&pmc);
	REQUIRE(m->pm);
	dmar_model_config_default(&mc);
	REQUIRE(dmar_posix_machine_add_unit(m->pm, BASE_GFX, &mc));
	REQUIRE(dmar_posix_machine_add_unit(m->pm, BASE_ALL, &mc));
	dmar_config_default(&cfg);
	cfg.timeout_ns = 10000000;
	return dmar_system_create(dmar_posix_machine_os(m->pm), &cfg, &m->table, &m->sys);
}

static void down(struct machine *m)
{
	dmar_system_destroy(m->sys);
	CHECK_EQ(dmar_posix_machine_allocs_outstanding(m->pm), 0);
	CHECK_EQ(dmar_posix_machine_pages_outstanding(m->pm), 0);
	CHECK_EQ(dmar_posix_machine_coherency_errors(m->pm), 0);
	CHECK_EQ(dmar_posix_machine_os_errors(m->pm), 0);
	dmar_posix_machine_destroy(m->pm);
}

TEST(units_come_from_the_drhds_and_cover_their_scopes)
{
	struct machine m;
	REQUIRE_OK(up(&m, false));
	REQUIRE_EQ(dmar_unit_count(m.sys), 2);
	struct dmar_unit_info a, b;
	dmar_unit_get_info(dmar_unit_at(m.sys, 0), &a);
	dmar_unit_get_info(dmar_unit_at(m.sys, 1), &b);
	CHECK_EQ(a.reg_base, BASE_GFX);
	CHECK_EQ(b.reg_base, BASE_ALL);
	CHECK_EQ(a.cap, 0x00d2008c22260206ull);
	CHECK_EQ(a.ecap, 0xf00f4aull);
	CHECK(!a.translating);
	CHECK(a.qi);
	CHECK(dmar_unit_for_device(m.sys, 0, 0, 2, 0, NULL, NULL) == dmar_unit_at(m.sys, 0));
	CHECK(dmar_unit_for_device(m.sys, 0, 0, 0x1d, 0, NULL, NULL) == dmar_unit_at(m.sys, 1));
	CHECK(dmar_unit_for_device(m.sys, 0, 5, 0, 0, NULL, NULL) == dmar_unit_at(m.sys, 1));
	CHECK(dmar_unit_for_device(m.sys, 1, 0, 2, 0, NULL, NULL) == NULL);
	down(&m);
}

TEST(drhd_with_register_base_zero_is_skipped_with_a_warning)
{
	struct machine m;
	REQUIRE_OK(up(&m, true));
	CHECK_EQ(dmar_unit_count(m.sys), 2);
	CHECK(strstr(dmar_posix_machine_log(m.pm), "register base 0x0 is unusable") != NULL);
	/* The DRHD names the device explicitly, so it has no usable unit. */
	CHECK(dmar_unit_for_device(m.sys, 0, 0, 3, 0, NULL, NULL) == NULL);
	down(&m);
}

TEST(rmrr_is_identity_mapped_before_translation_starts)
{
	struct machine m;
	REQUIRE_OK(up(&m, false));
	struct dmar_unit *u = dmar_unit_for_device(m.sys, 0, 0, 0x1d, 0, NULL, NULL);
	REQUIRE(u);
	struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED };
	struct dmar_domain *d;
	REQUIRE_OK(dmar_domain_create(u, &p, &d));
	uint16_t sid = VTD_SID(0, 0x1d, 0);
	dmar_posix_machine_log_clear(m.pm);
	REQUIRE_OK(dmar_domain_attach(d, sid));
	/* The firmware's range works at once, before any map by the driver. */
	unsigned char *ram = dmar_posix_machine_phys_to_virt(m.pm, RMRR_BASE + 0x1000);
	REQUIRE(ram);
	memset(ram, 0x5a, 64);
	unsigned char b[64];
	struct model *unit = dmar_posix_machine_unit(m.pm, BASE_ALL);
	CHECK_EQ(dmar_posix_machine_dma(m.pm, unit, sid, RMRR_BASE + 0x1000, b, 64, MODEL_DMA_READ, NULL), 0);
	CHECK_EQ(b[0], 0x5a);
	/* The unaligned RMRR is rounded outward to whole pages and mapped too. */
	CHECK_EQ(dmar_posix_machine_dma(m.pm, unit, sid, RMRR_BASE + 0x600000, b, 8, MODEL_DMA_READ, NULL), 0);
	struct dmar_range r[4];
	REQUIRE_EQ(dmar_domain_reserved_ranges(d, r, 4), 2);
	CHECK_EQ(r[0].start, RMRR_BASE);
	CHECK_EQ(r[0].end, RMRR_BASE + 0x200000);
	CHECK_EQ(r[1].start, RMRR_BASE + 0x600000);
	CHECK_EQ(r[1].end, RMRR_BASE + 0x601000);
	const char *log = dmar_posix_machine_log(m.pm);
	CHECK(strstr(log, "empty range") != NULL);
	CHECK(strstr(log, "not page-aligned") != NULL);
	/* Outside the RMRRs nothing is reachable. */
	CHECK_EQ(dmar_posix_machine_dma(m.pm, unit, sid, RMRR_BASE + 0x200000, b, 8, MODEL_DMA_READ, NULL),
		 VTD_FR_READ);
	dmar_fault_poll(m.sys);
	/* Another device of the same domain without RMRRs adds nothing. */
	CHECK_OK(dmar_domain_attach(d, VTD_SID(0, 0x1e, 0)));
	CHECK_EQ(dmar_domain_reserved_ranges(d, r, 4), 2);
	CHECK_OK(dmar_domain_detach(d, VTD_SID(0, 0x1e, 0)));
	CHECK_OK(dmar_domain_detach(d, sid));
	CHECK_OK(dmar_domain_destroy(d));
	down(&m);
}

TEST(fault_lines_name_the_unit_device_and_walk)
{
	struct machine m;
	REQUIRE_OK(up(&m, false));
	struct dmar_unit *u = dmar_unit_for_device(m.sys, 0, 0, 2, 0, NULL, NULL);
	REQUIRE(u);
	struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED };
	struct dmar_domain *d;
	REQUIRE_OK(dmar_domain_create(u, &p, &d));
	uint16_t sid = VTD_SID(0, 2, 0);
	REQUIRE_OK(dmar_domain_attach(d, sid));
	uint64_t pa;
	dmar_posix_machine_alloc_dma(m.pm, 4096, 4096, &pa);
	CHECK_OK(dmar_map(d, 0x200000, pa, 4096, DMAR_PROT_READ));
	unsigned char b[8];
	struct model *unit = dmar_posix_machine_unit(m.pm, BASE_GFX);
	CHECK_EQ(dmar_posix_machine_dma(m.pm, unit, sid, 0x200000, b, 8, MODEL_DMA_WRITE, NULL), VTD_FR_WRITE);
	dmar_posix_machine_log_clear(m.pm);
	CHECK_EQ(dmar_fault_poll(m.sys), 1);
	const char *log = dmar_posix_machine_log(m.pm);
	CHECK(strstr(log, "dmar0: DMA write fault") != NULL);
	CHECK(strstr(log, "0000:00:02.0") != NULL);
	CHECK(strstr(log, "at 0x200000") != NULL);
	CHECK(strstr(log, "reason 0x05") != NULL);
	CHECK(strstr(log, "present but not writable") != NULL);
	struct dmar_fault_record rec;
	REQUIRE_EQ(dmar_fault_read(m.sys, &rec, 1), 1);
	char line[512];
	int n = dmar_fault_format(m.sys, &rec, line, sizeof(line));
	CHECK(n > 40);
	CHECK(strstr(log, line) != NULL);
	CHECK_OK(dmar_domain_detach(d, sid));
	CHECK_OK(dmar_domain_destroy(d));
	down(&m);
}
