#include "harness.h"
#include "dmar/config.h"

#include <string.h>

static char warned[1024];

static void collect(void *ctx, const char *msg)
{
	(void)ctx;
	strncat(warned, msg, sizeof(warned) - strlen(warned) - 2);
	strcat(warned, "\n");
}

TEST(defaults_are_the_documented_ones)
{
	struct dmar_config c;
	dmar_config_default(&c);
	CHECK(c.enable);
	CHECK_EQ(c.qi, -1);
	CHECK_EQ(c.timeout_ns, 1000000000ull);
	CHECK_EQ(c.fault_log_size, 64);
	CHECK_EQ(c.guard_pages, 1);
	CHECK_EQ(c.nbounce, 0);
}

TEST(tunables_from_a_command_line)
{
	struct dmar_config c;
	dmar_config_default(&c);
	warned[0] = 0;
	int n = dmar_config_parse(&c,
		"console=ttyS0 hw.dmar.enable=0 hw.dmar.qi=0  hw.dmar.timeout_us=2500\t"
		"hw.busdma.pci0:0:3:0.bounce=1 hw.busdma.pci1:255:31:7.bounce=1 hw.dmar.fault_log_size=0x10",
		collect, NULL);
	CHECK_EQ(n, 0);
	CHECK(!c.enable);
	CHECK_EQ(c.qi, 0);
	CHECK_EQ(c.timeout_ns, 2500000ull);
	CHECK_EQ(c.fault_log_size, 16);
	REQUIRE_EQ(c.nbounce, 2);
	CHECK(dmar_config_device_bounces(&c, (struct dmar_pci_addr){ 0, 0, 3, 0 }));
	CHECK(dmar_config_device_bounces(&c, (struct dmar_pci_addr){ 1, 255, 31, 7 }));
	CHECK(!dmar_config_device_bounces(&c, (struct dmar_pci_addr){ 0, 0, 3, 1 }));
	CHECK_EQ(warned[0], 0);
	/* bounce=0 takes a device back out */
	CHECK_EQ(dmar_config_parse(&c, "hw.busdma.pci0:0:3:0.bounce=0", collect, NULL), 0);
	CHECK(!dmar_config_device_bounces(&c, (struct dmar_pci_addr){ 0, 0, 3, 0 }));
}

TEST(unknown_keys_and_bad_values_are_named_and_ignored)
{
	struct dmar_config c;
	dmar_config_default(&c);
	warned[0] = 0;
	int n = dmar_config_parse(&c,
		"hw.dmar.enabel=1 hw.dmar.qi=7 hw.dmar.timeout_us=abc hw.busdma.pci0:0:40:0.bounce=1 "
		"hw.dmar.enable hw.busdma.pci0:0:2:0.bouncy=1 quiet",
		collect, NULL);
	CHECK_EQ(n, 6);
	CHECK(strstr(warned, "hw.dmar.enabel=1: unknown key") != NULL);
	CHECK(strstr(warned, "hw.dmar.qi=7: bad value") != NULL);
	CHECK(strstr(warned, "hw.dmar.timeout_us=abc: bad value") != NULL);
	CHECK(strstr(warned, "hw.busdma.pci0:0:40:0.bounce=1") != NULL);
	CHECK(strstr(warned, "hw.dmar.enable=: missing value") != NULL);
	CHECK(strstr(warned, "bouncy") != NULL);
	CHECK(strstr(warned, "quiet") == NULL);
	/* nothing changed */
	CHECK(c.enable);
	CHECK_EQ(c.qi, -1);
	CHECK_EQ(c.timeout_ns, 1000000000ull);
	CHECK_EQ(c.nbounce, 0);
}

TEST(interrupt_remapping_tunables)
{
	struct dmar_config c;
	dmar_config_default(&c);
	CHECK(c.ir);
	CHECK_EQ(c.ir_entries, 256);
	CHECK(!c.ir_compat);
	CHECK(!c.x2apic);
	warned[0] = 0;
	CHECK_EQ(dmar_config_parse(&c, "hw.dmar.ir=0 hw.dmar.ir_entries=65536 hw.dmar.ir_compat=1 "
				       "hw.dmar.x2apic=1", collect, NULL), 0);
	CHECK(!c.ir);
	CHECK_EQ(c.ir_entries, 65536);
	CHECK(c.ir_compat);
	CHECK(c.x2apic);
	CHECK_EQ(dmar_config_parse(&c, "hw.dmar.ir_entries=16 hw.dmar.ir_entries=0x1000", collect,
				   NULL), 0);
	CHECK_EQ(c.ir_entries, 4096);
	CHECK_EQ(warned[0], 0);
	/* A power of two in 16..65536 (IRTA.S), booleans 0 or 1. */
	CHECK_EQ(dmar_config_parse(&c, "hw.dmar.ir_entries=8 hw.dmar.ir_entries=100 "
				       "hw.dmar.ir_entries=131072 hw.dmar.ir_entries=0 "
				       "hw.dmar.ir=2 hw.dmar.x2apic=yes hw.dmar.ir_compat=",
				   collect, NULL), 7);
	CHECK(strstr(warned, "hw.dmar.ir_entries=8: bad value") != NULL);
	CHECK(strstr(warned, "hw.dmar.ir_entries=100: bad value") != NULL);
	CHECK(strstr(warned, "hw.dmar.ir_entries=131072: bad value") != NULL);
	CHECK(strstr(warned, "hw.dmar.x2apic=yes: bad value") != NULL);
	CHECK_EQ(c.ir_entries, 4096);
	CHECK(!c.ir);
	CHECK(c.x2apic);
	CHECK(c.ir_compat);
}

TEST(cpu_windows_tunable)
{
	struct dmar_config c;
	dmar_config_default(&c);
	CHECK_EQ(c.cpu_windows, 16);
	warned[0] = 0;
	CHECK_EQ(dmar_config_parse(&c, "hw.dmar.cpu_windows=0", collect, NULL), 0);
	CHECK_EQ(c.cpu_windows, 0);
	CHECK_EQ(dmar_config_parse(&c, "hw.dmar.cpu_windows=64 hw.dmar.cpu_windows=65 "
				       "hw.dmar.cpu_windows=many", collect, NULL), 2);
	CHECK(strstr(warned, "hw.dmar.cpu_windows=65: bad value") != NULL);
	CHECK(strstr(warned, "hw.dmar.cpu_windows=many: bad value") != NULL);
	CHECK_EQ(c.cpu_windows, 64);
}
