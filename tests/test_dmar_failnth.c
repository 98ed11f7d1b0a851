/*
 * Allocation failure at every point of system bring-up, attach, map and unmap: the call
 * returns an error, nothing leaks, and what was mapped before still works.
 */
#include "harness.h"
#include "dmar_table_builder.h"
#include "simsys.h"
#include "regs.h"

#include <string.h>

#define SID VTD_SID(0, 6, 0)
#define SID2 VTD_SID(7, 1, 0)
#define MIB (1ull << 20)

enum op { OP_CREATE, OP_ATTACH, OP_ATTACH_RMRR, OP_MAP, OP_UNMAP_SPLIT };

/* OP_ATTACH_RMRR: the table names SID2 in an RMRR, which attach must identity-map. */
#define RMRR_BASE 0x41000000ull
#define RMRR_SIZE (64 * 1024ull)

static struct dtb rmrr_dtb;
static struct dmar_acpi_table rmrr_table;

static const struct dmar_acpi_table *table_with_rmrr(void)
{
	struct dtb *b = &rmrr_dtb;
	dtb_init(b, 39, 0);
	dtb_drhd(b, DMAR_DRHD_INCLUDE_PCI_ALL, 0, SIMSYS_REG_BASE);
	dtb_rmrr(b, 0, RMRR_BASE, RMRR_BASE + RMRR_SIZE - 1);
	dtb_scope_pci(b, DMAR_SCOPE_ENDPOINT, 7, 1, 0, 0);
	size_t len = dtb_finish(b);
	REQUIRE_OK(dmar_acpi_parse(b->buf, len, NULL, &rmrr_table));
	return &rmrr_table;
}

/* Sets up a domain with a 2 MiB superpage at 0x40000000 and a page at 0x1000 mapped,
 * attached to SID; then runs `op` with the n-th allocation failing. Returns whether the
 * op reached the n-th allocation (so the caller goes on to n + 1). */
static bool scenario(enum op op, unsigned n)
{
	struct simsys s;
	struct dmar_posix_machine_config pmc;
	bool reached = false;
	memset(&s, 0, sizeof(s));
	memset(&pmc, 0, sizeof(pmc)); /* defaults */
	s.pm = dmar_posix_machine_create(&pmc);
	REQUIRE(s.pm);
	dmar_model_config_default(&s.mcfg);
	s.model = dmar_posix_machine_add_unit(s.pm, SIMSYS_REG_BASE, &s.mcfg);
	REQUIRE(s.model);
	dmar_config_default(&s.cfg);
	s.cfg.timeout_ns = 10000000;
	if (op == OP_CREATE) {
		dmar_posix_machine_fail_nth(s.pm, n);
		int rc = dmar_system_create(dmar_posix_machine_os(s.pm), &s.cfg, NULL, &s.sys);
		if (!rc)
			rc = dmar_system_add_unit(s.sys, 0, SIMSYS_REG_BASE, &s.unit);
		reached = dmar_posix_machine_failed(s.pm);
		dmar_posix_machine_fail_nth(s.pm, 0);
		if (reached)
			CHECK(rc == DMAR_ENOMEM);
		else
			CHECK_OK(rc);
		if (s.sys && rc) {
			dmar_system_destroy(s.sys);
			s.sys = NULL;
		}
		CHECK_EQ(simsys_down(&s), 0);
		return reached;
	}
	if (op == OP_ATTACH_RMRR) {
		REQUIRE_OK(dmar_system_create(dmar_posix_machine_os(s.pm), &s.cfg, table_with_rmrr(),
					      &s.sys));
		s.unit = dmar_unit_at(s.sys, 0);
		REQUIRE(s.unit);
	} else {
		REQUIRE_OK(dmar_system_create(dmar_posix_machine_os(s.pm), &s.cfg, NULL, &s.sys));
		REQUIRE_OK(dmar_system_add_unit(s.sys, 0, SIMSYS_REG_BASE, &s.unit));
	}
	struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED };
	struct dmar_domain *d;
	REQUIRE_OK(dmar_domain_create(s.unit, &p, &d));
	uint64_t pa;
	unsigned char *buf = simsys_buffer(&s, 6 * MIB, &pa);
	uint64_t big = (pa + 2 * MIB - 1) & ~(2 * MIB - 1);
	unsigned char *bigv = buf + (big - pa);
	REQUIRE_OK(dmar_map(d, 0x40000000, big, 2 * MIB, DMAR_PROT_RW));
	REQUIRE_OK(dmar_map(d, 0x1000, pa, 4096, DMAR_PROT_RW));
	REQUIRE_OK(dmar_domain_attach(d, SID));
	int rc;
	dmar_posix_machine_fail_nth(s.pm, n);
	switch (op) {
	case OP_ATTACH:
	case OP_ATTACH_RMRR:
		rc = dmar_domain_attach(d, SID2); /* needs a new context table */
		break;
	case OP_MAP:
		rc = dmar_map(d, 0x300003000ull, pa + 4096, 4096,
			      DMAR_PROT_RW); /* new L2 + L1 tables */
		break;
	default:
		rc = dmar_unmap(d, 0x40000000 + MIB, 4096); /* splits the superpage */
		break;
	}
	reached = dmar_posix_machine_failed(s.pm);
	dmar_posix_machine_fail_nth(s.pm, 0);
	if (reached) {
		CHECK_EQ(rc, DMAR_ENOMEM);
	} else {
		CHECK_OK(rc);
	}
	/* what was mapped before still works */
	unsigned char b[16];
	memset(bigv + MIB + 4096, 0x3c, 16);
	CHECK_EQ(simsys_dma(&s, SID, 0x40000000 + MIB + 4096, b, 16, false), 0);
	CHECK_EQ(b[0], 0x3c);
	CHECK_EQ(simsys_dma(&s, SID, 0x1000, b, 16, false), 0);
	if (rc) {
		/* and the failed call left nothing behind */
		uint64_t phys;
		unsigned prot;
		if (op == OP_MAP)
			CHECK_EQ(dmar_lookup(d, 0x300003000ull, &phys, &prot), DMAR_ENOENT);
		if (op == OP_UNMAP_SPLIT)
			CHECK_EQ(simsys_dma(&s, SID, 0x40000000 + MIB, b, 16, false), 0);
		if (op == OP_ATTACH || op == OP_ATTACH_RMRR)
			CHECK(dmar_device_domain(s.unit, SID2) == NULL);
		if (op == OP_ATTACH_RMRR) {
			CHECK_EQ(dmar_lookup(d, RMRR_BASE, &phys, &prot), DMAR_ENOENT);
			CHECK_EQ(dmar_domain_reserved_ranges(d, NULL, 0), 0);
		}
	}
	if (op == OP_ATTACH_RMRR && !rc) {
		/* Attached: the firmware's range is reachable at once, nothing else is. */
		CHECK_EQ(dmar_domain_reserved_ranges(d, NULL, 0), 1);
		CHECK_EQ(simsys_dma(&s, SID2, RMRR_BASE + RMRR_SIZE - 16, b, 16, false), 0);
		CHECK_EQ(simsys_dma(&s, SID2, RMRR_BASE + RMRR_SIZE, b, 16, false), VTD_FR_READ);
	}
	if ((op == OP_ATTACH || op == OP_ATTACH_RMRR) && !rc)
		CHECK_OK(dmar_domain_detach(d, SID2));
	dmar_fault_poll(s.sys);
	CHECK_OK(dmar_domain_detach(d, SID));
	CHECK_OK(dmar_domain_destroy(d));
	CHECK_EQ(simsys_down(&s), 0);
	return reached;
}

static void every_n(enum op op, const char *name)
{
	unsigned n = 1;
	harness_set_context(name);
	while (scenario(op, n) && n < 10000)
		n++;
	printf("  %s: failed each of %u allocations in turn\n", name, n - 1);
	CHECK(n > 1);
	harness_set_context(NULL);
}

TEST(failnth_system_bring_up)
{
	every_n(OP_CREATE, "create");
}

TEST(failnth_attach)
{
	every_n(OP_ATTACH, "attach");
}

TEST(failnth_attach_with_an_rmrr)
{
	every_n(OP_ATTACH_RMRR, "attach with an RMRR");
}

TEST(failnth_map)
{
	every_n(OP_MAP, "map");
}

TEST(failnth_unmap_splitting_a_superpage)
{
	every_n(OP_UNMAP_SPLIT, "unmap");
}
