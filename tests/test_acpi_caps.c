/*
 * test_acpi_caps.c - CAP/ECAP decoding and fault reason texts.
 */
#include <dmar/caps.h>
#include <dmar/fault_reason.h>

#include <string.h>

#include "harness.h"
#include "regs.h"

TEST(qemu_default_caps_decode_to_the_documented_facts)
{
	struct dmar_caps c;
	dmar_caps_decode(0x00d2008c22260206ull, 0xf00f4aull, &c);
	CHECK_EQ(c.sagaw, VTD_SAGAW_39);
	CHECK_EQ(c.mgaw, 39);
	CHECK(c.sp_2m && c.sp_1g);
	CHECK(c.psi);
	CHECK_EQ(c.mamv, 18);
	CHECK_EQ(c.domains, 65536);
	CHECK_EQ(c.nfr, 1);
	CHECK_EQ(c.frcd_offset, 0x220);
	CHECK_EQ(c.iva_offset, 0xf0);
	CHECK_EQ(c.iotlb_offset, 0xf8);
	CHECK(c.qi && c.pt && c.ir);
	CHECK(!c.c && !c.cm && !c.rwbf && !c.eim && !c.dt);
}

TEST(aw48_and_caching_mode_variants)
{
	struct dmar_caps c;
	/* SAGAW 39+48, MGAW 48, CM and RWBF set, ND=2, NFR=4 at 0x400, no superpages. */
	uint64_t cap = VTD_SET(8, 5, VTD_SAGAW_39 | VTD_SAGAW_48) | VTD_SET(16, 6, 47) |
		       VTD_CAP_CM | VTD_CAP_RWBF | 2u | VTD_SET(24, 10, 0x40) | VTD_SET(40, 8, 3);
	dmar_caps_decode(cap, VTD_ECAP_C, &c);
	CHECK_EQ(c.sagaw, VTD_SAGAW_39 | VTD_SAGAW_48);
	CHECK_EQ(c.mgaw, 48);
	CHECK(c.cm && c.rwbf && c.c);
	CHECK_EQ(c.domains, 256);
	CHECK_EQ(c.nfr, 4);
	CHECK_EQ(c.frcd_offset, 0x400);
	CHECK(!c.sp_2m && !c.sp_1g && !c.psi);
	char text[8192];
	int n = dmar_caps_format(cap, VTD_ECAP_C, text, sizeof(text));
	REQUIRE(n > 0 && (size_t)n < sizeof(text));
	CHECK(strstr(text, "39-bit(3-level) 48-bit(4-level)") != NULL);
	CHECK(strstr(text, "superpages: none") != NULL);
	CHECK(strstr(text, "CAP.CM      1") != NULL);
	CHECK(strstr(text, "ECAP.C      1") != NULL);
	/* Truncated output keeps the full length and a terminated prefix. */
	char small[16];
	CHECK_EQ(dmar_caps_format(cap, VTD_ECAP_C, small, sizeof(small)), n);
	CHECK_EQ(strlen(small), sizeof(small) - 1);
}

TEST(fault_reasons_cover_dma_and_interrupt_codes)
{
	for (unsigned code = 1; code <= 0xd; code++) {
		CHECK_EQ(dmar_fault_reason_kind(code), DMAR_FAULT_KIND_DMA);
		CHECK(strcmp(dmar_fault_reason_text(code), "reserved/unknown") != 0);
	}
	for (unsigned code = 0x20; code <= 0x27; code++) {
		CHECK_EQ(dmar_fault_reason_kind(code), DMAR_FAULT_KIND_INTR);
		CHECK(strcmp(dmar_fault_reason_text(code), "reserved/unknown") != 0);
	}
	CHECK(strstr(dmar_fault_reason_text(VTD_FR_WRITE), "write") != NULL);
	CHECK(strstr(dmar_fault_reason_text(VTD_FR_READ), "read") != NULL);
	CHECK_EQ(dmar_fault_reason_kind(0x59), DMAR_FAULT_KIND_SCALABLE);
	CHECK(strcmp(dmar_fault_reason_text(0), "reserved/unknown") == 0);
	CHECK(strcmp(dmar_fault_reason_text(0xf), "reserved/unknown") == 0);
	CHECK(strstr(dmar_fault_reason_text(0xe), "interrupt address range") != NULL);
	CHECK(strcmp(dmar_fault_reason_text(0xff), "reserved/unknown") == 0);
	CHECK(strcmp(dmar_fault_kind_name(DMAR_FAULT_KIND_UNKNOWN), "unknown") == 0);
}
