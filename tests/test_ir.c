/*
 * Interrupt remapping on the simulated machine (include/dmar/ir.h): the handshakes and
 * their refusals, entries delivered with their vector and destination, every fault
 * reason the model gives recorded and explained, the interrupt entry cache kept stale
 * until the library invalidates, source-id checks through bridges, IOAPIC and HPET
 * entries from the DMAR table, extended interrupt mode, allocation failures.
 */
#include "harness.h"
#include "dmar_table_builder.h"
#include "simsys.h"
#include "dmar/fault_reason.h"
#include "dmar/ir.h"
#include "regs.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define DEV_BUS 0
#define DEV_DEV 2
#define DEV_SID VTD_SID(0, 2, 0)
#define OTHER_SID VTD_SID(0, 3, 0)

static const struct dmar_irq_target T41 = { .dest = 3, .vector = 0x41 };

static void up_with(struct simsys *s, const struct model_config *mc, const struct dmar_config *c)
{
	REQUIRE_OK(simsys_up(s, mc, c));
}

static struct dmar_config config(void)
{
	struct dmar_config c;
	dmar_config_default(&c);
	c.timeout_ns = 10000000ull;
	return c;
}

/* A machine with QEMU's unit and interrupt remapping on. */
static void up_ir(struct simsys *s)
{
	up_with(s, NULL, NULL);
	REQUIRE_OK(dmar_ir_enable(s->unit));
}

static bool logged(struct simsys *s, const char *text)
{
	return strstr(dmar_posix_machine_log(s->pm), text) != NULL;
}

static uint32_t gsts(struct simsys *s)
{
	return dmar_model_read32(s->model, VTD_GSTS_REG);
}

/* Entry `sub` of the handle sends its message from `sid`. */
static int send(struct simsys *s, const struct dmar_irq *irq, unsigned sub, uint16_t sid,
		struct model_irq_delivery *d)
{
	uint64_t addr;
	uint32_t data;
	dmar_ir_msi_message(irq, sub, &addr, &data);
	return simsys_interrupt(s, sid, addr, data, d);
}

/* A remappable request for interrupt_index `index` without a sub-handle. */
static int send_index(struct simsys *s, unsigned index, uint16_t sid,
		      struct model_irq_delivery *d)
{
	uint64_t addr = VTD_MSI_ADDR_BASE | VTD_MSI_ADDR_HANDLE((uint64_t)index) | VTD_MSI_ADDR_IF;
	return simsys_interrupt(s, sid, addr, 0, d);
}

static struct dmar_irq *alloc_dev(struct simsys *s, unsigned count,
				  const struct dmar_irq_target *t)
{
	struct dmar_irq *irq = NULL;
	REQUIRE_OK(dmar_ir_alloc_msi(s->sys, 0, DEV_BUS, DEV_DEV, 0, count, t, &irq));
	REQUIRE(irq != NULL);
	return irq;
}

/* Drains the one fault the unit recorded and formats it. */
static struct dmar_fault_record one_fault(struct simsys *s, char *text, size_t len)
{
	struct dmar_fault_record rec;
	memset(&rec, 0, sizeof(rec));
	CHECK_EQ(dmar_fault_poll(s->sys), 1);
	REQUIRE_EQ(dmar_fault_read(s->sys, &rec, 1), 1);
	dmar_fault_format(s->sys, &rec, text, len);
	return rec;
}

static unsigned present_entries(struct simsys *s)
{
	struct dmar_ir_info info;
	unsigned n = 0;
	dmar_ir_get_info(s->unit, &info);
	for (unsigned i = 0; i < info.entries; i++) {
		uint64_t lo, hi;
		REQUIRE_OK(dmar_ir_entry(s->unit, i, &lo, &hi));
		if (lo & VTD_IRTE_LO_P)
			n++;
	}
	return n;
}

/* ---- handshakes ---- */

TEST(system_create_leaves_ir_off)
{
	struct simsys s;
	struct model_irq_delivery d;
	up_with(&s, NULL, NULL);
	CHECK(!dmar_ir_enabled(s.unit));
	CHECK(!(gsts(&s) & VTD_GSTS_IRES));
	/* IR off: an interrupt passes as it is (compatibility format). */
	CHECK_EQ(simsys_interrupt(&s, DEV_SID, 0xfee05000ull, 0x8031, &d), 0);
	CHECK(!d.remapped);
	CHECK_EQ(d.vector, 0x31);
	CHECK_EQ(d.dest, 5);
	CHECK(d.level);
	struct dmar_irq *irq;
	CHECK_EQ(dmar_ir_alloc_msi(s.sys, 0, 0, 2, 0, 1, &T41, &irq), DMAR_ENOENT);
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(enable_points_irta_at_the_table_then_sets_ire)
{
	struct simsys s;
	struct dmar_ir_info info;
	uint64_t base;
	unsigned entries;
	bool eime;
	up_with(&s, NULL, NULL);
	dmar_model_stats_reset(s.model);
	REQUIRE_OK(dmar_ir_enable(s.unit));
	CHECK(dmar_ir_enabled(s.unit));
	CHECK(!dmar_ir_eim(s.unit));
	CHECK_EQ(gsts(&s) & (VTD_GSTS_IRES | VTD_GSTS_IRTPS | VTD_GSTS_CFIS),
		 VTD_GSTS_IRES | VTD_GSTS_IRTPS);
	/* The other enables were carried along. */
	CHECK(gsts(&s) & VTD_GSTS_QIES);
	dmar_ir_get_info(s.unit, &info);
	dmar_model_irt(s.model, &base, &entries, &eime);
	CHECK(info.enabled);
	CHECK_EQ(info.entries, 256);
	CHECK_EQ(entries, 256);
	CHECK_EQ(base, info.table_phys);
	CHECK(!eime);
	CHECK_EQ(dmar_model_stats(s.model)->sirtp, 1);
	/* The cache may hold entries of another table: invalidated whole, waited for. */
	CHECK_EQ(dmar_model_stats(s.model)->iec_inval_global, 1);
	CHECK_EQ(info.iec_global, 1);
	CHECK(logged(&s, "interrupt remapping on: 256 entries"));
	/* Again: nothing to do. */
	CHECK_OK(dmar_ir_enable(s.unit));
	CHECK_EQ(dmar_model_stats(s.model)->sirtp, 1);
	CHECK_OK(dmar_ir_disable(s.unit));
	CHECK(!dmar_ir_enabled(s.unit));
	CHECK(!(gsts(&s) & VTD_GSTS_IRES));
	CHECK(gsts(&s) & VTD_GSTS_QIES);
	dmar_ir_get_info(s.unit, &info);
	CHECK_EQ(info.entries, 0);
	CHECK_EQ(dmar_ir_entry(s.unit, 0, &base, &base), DMAR_ERANGE);
	CHECK_OK(dmar_ir_disable(s.unit));
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(enable_waits_for_slow_status_bits)
{
	struct simsys s;
	up_with(&s, NULL, NULL);
	dmar_model_set_ack_delay(s.model, MODEL_ACK_SIRTP, 20);
	dmar_model_set_ack_delay(s.model, MODEL_ACK_IRE, 20);
	dmar_model_set_ack_delay(s.model, MODEL_ACK_CFI, 20);
	CHECK_OK(dmar_ir_enable(s.unit));
	CHECK(gsts(&s) & VTD_GSTS_IRES);
	CHECK_OK(dmar_ir_disable(s.unit));
	CHECK(!(gsts(&s) & VTD_GSTS_IRES));
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(a_status_bit_that_never_comes_times_out_and_leaves_ir_off)
{
	static const struct {
		enum model_ack ack;
		const char *what;
	} cases[] = {
		{ MODEL_ACK_SIRTP, "timeout waiting for interrupt remapping table pointer" },
		{ MODEL_ACK_IRE, "timeout waiting for interrupt remapping enable" },
	};
	for (size_t i = 0; i < DMAR_ARRAY_SIZE(cases); i++) {
		struct simsys s;
		up_with(&s, NULL, NULL);
		dmar_model_set_ack_delay(s.model, cases[i].ack, MODEL_NEVER);
		CHECK_EQ(dmar_ir_enable(s.unit), DMAR_ETIMEDOUT);
		CHECK(logged(&s, cases[i].what));
		CHECK(!dmar_ir_enabled(s.unit));
		CHECK(!(gsts(&s) & VTD_GSTS_IRES));
		/* Once the unit answers, enabling works. */
		dmar_model_set_ack_delay(s.model, cases[i].ack, 0);
		CHECK_OK(dmar_ir_enable(s.unit));
		CHECK(gsts(&s) & VTD_GSTS_IRES);
		CHECK_EQ(simsys_down(&s), 0);
	}
}

TEST(disable_that_times_out_keeps_the_table)
{
	struct simsys s;
	up_ir(&s);
	struct dmar_irq *irq = alloc_dev(&s, 1, &T41);
	(void)irq;
	dmar_model_set_ack_delay(s.model, MODEL_ACK_IRE, MODEL_NEVER);
	CHECK_EQ(dmar_ir_disable(s.unit), DMAR_ETIMEDOUT);
	/* The unit may still read it: still there, still delivering. */
	CHECK(dmar_ir_enabled(s.unit));
	CHECK_EQ(send(&s, irq, 0, DEV_SID, NULL), 0);
	/* Teardown frees it anyway. */
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(refused_without_queued_invalidation)
{
	struct simsys s;
	struct dmar_config c = config();
	c.qi = 0;
	up_with(&s, NULL, &c);
	CHECK_EQ(dmar_ir_enable(s.unit), DMAR_ENOTSUP);
	CHECK(logged(&s, "interrupt remapping not enabled: it needs queued invalidation, which "
			 "this unit does not use (hw.dmar.qi=0)"));
	CHECK(!dmar_ir_enabled(s.unit));
	CHECK(!(gsts(&s) & VTD_GSTS_IRES));
	CHECK_EQ(simsys_down(&s), 0);

	struct model_config mc;
	dmar_model_config_default(&mc);
	mc.qi = false;
	up_with(&s, &mc, NULL);
	CHECK_EQ(dmar_ir_enable(s.unit), DMAR_ENOTSUP);
	CHECK(logged(&s, "(no ECAP.QI)"));
	CHECK_EQ(dmar_model_stats(s.model)->sirtp, 0);
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(refused_without_ecap_ir)
{
	struct simsys s;
	struct model_config mc;
	dmar_model_config_default(&mc);
	mc.ir = false;
	up_with(&s, &mc, NULL);
	CHECK_EQ(dmar_ir_enable(s.unit), DMAR_ENOTSUP);
	CHECK(logged(&s, "dmar0: interrupt remapping not enabled: the unit has none (ECAP.IR=0)"));
	CHECK(!dmar_ir_enabled(s.unit));
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(refused_with_hw_dmar_ir_0)
{
	struct simsys s;
	struct dmar_config c = config();
	CHECK_EQ(dmar_config_parse(&c, "hw.dmar.ir=0", NULL, NULL), 0);
	up_with(&s, NULL, &c);
	CHECK_EQ(dmar_ir_enable(s.unit), DMAR_ENOTSUP);
	CHECK(logged(&s, "interrupt remapping not enabled: turned off by hw.dmar.ir=0"));
	CHECK_EQ(dmar_model_stats(s.model)->sirtp, 0);
	CHECK(!dmar_ir_enabled(s.unit));
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(ir_entries_must_be_a_power_of_two_in_range)
{
	static const unsigned bad[] = { 0, 8, 100, 131072 };
	for (size_t i = 0; i < DMAR_ARRAY_SIZE(bad); i++) {
		struct simsys s;
		struct dmar_config c = config();
		c.ir_entries = bad[i];
		up_with(&s, NULL, &c);
		CHECK_EQ(dmar_ir_enable(s.unit), DMAR_EINVAL);
		CHECK(logged(&s, "is not a power of two in 16..65536"));
		CHECK_EQ(simsys_down(&s), 0);
	}
	static const unsigned good[] = { 16, 512, 65536 };
	for (size_t i = 0; i < DMAR_ARRAY_SIZE(good); i++) {
		struct simsys s;
		struct dmar_config c = config();
		struct dmar_ir_info info;
		unsigned entries;
		c.ir_entries = good[i];
		up_with(&s, NULL, &c);
		REQUIRE_OK(dmar_ir_enable(s.unit));
		dmar_ir_get_info(s.unit, &info);
		dmar_model_irt(s.model, NULL, &entries, NULL);
		CHECK_EQ(info.entries, good[i]);
		CHECK_EQ(entries, good[i]);
		CHECK_EQ(present_entries(&s), 0);
		/* IRTA.S: 2^(S+1) entries. */
		CHECK_EQ(VTD_IRTA_S_GET(dmar_model_read64(s.model, VTD_IRTA_REG)),
			 (unsigned)dmar_fls64(good[i]) - 1);
		/* The last entry is inside the table (not present), one past it is not. */
		struct model_irq_delivery d;
		CHECK_EQ(send_index(&s, good[i] - 1, DEV_SID, &d), VTD_FR_IR_ENTRY_P);
		CHECK_EQ(dmar_fault_poll(s.sys), 1);
		/* (handle + sub-handle: 65536 itself has no 16-bit handle.) */
		uint64_t past = VTD_MSI_ADDR_BASE | VTD_MSI_ADDR_HANDLE((uint64_t)good[i] - 1) |
				VTD_MSI_ADDR_IF | VTD_MSI_ADDR_SHV;
		CHECK_EQ(simsys_interrupt(&s, DEV_SID, past, 1, &d), VTD_FR_IR_INDEX_OVER);
		CHECK_EQ(dmar_fault_poll(s.sys), 1);
		/* The last block of 16 can be handed out. */
		struct dmar_irq *irq = NULL;
		for (unsigned k = 0; k < good[i] / 16; k++)
			REQUIRE_OK(dmar_ir_alloc_msi(s.sys, 0, 0, 2, 0, 16, &T41, &irq));
		CHECK_EQ(dmar_ir_index(irq), good[i] - 16);
		CHECK_EQ(send(&s, irq, 15, DEV_SID, &d), 0);
		CHECK_EQ(d.index, good[i] - 1);
		CHECK_EQ(d.vector, 0x41 + 15);
		CHECK_EQ(dmar_ir_alloc_msi(s.sys, 0, 0, 2, 0, 1, &T41, &irq), DMAR_ENOSPC);
		CHECK_EQ(simsys_down(&s), 0);
	}
}

TEST(refused_when_the_table_does_not_declare_it)
{
	static struct dtb b;
	struct dmar_acpi_table t;
	struct simsys s;
	dtb_init(&b, 39, 0);
	dtb_drhd(&b, DMAR_DRHD_INCLUDE_PCI_ALL, 0, SIMSYS_REG_BASE);
	REQUIRE_OK(dmar_acpi_parse(b.buf, dtb_finish(&b), NULL, &t));
	REQUIRE_OK(simsys_up_table(&s, NULL, NULL, &t));
	CHECK_EQ(dmar_ir_enable(s.unit), DMAR_ENOTSUP);
	CHECK(logged(&s, "the DMAR table does not declare it (INTR_REMAP flag clear)"));
	CHECK_EQ(simsys_down(&s), 0);
}

static void firmware_ir_on(struct model *m)
{
	/* A boot loader left QI and IR on with its own table at address 0x1000. */
	dmar_model_write64(m, VTD_IRTA_REG, 0x1000 | 7);
	dmar_model_write32(m, VTD_GCMD_REG, (uint32_t)VTD_GCMD_SIRTP);
	dmar_model_write32(m, VTD_GCMD_REG, (uint32_t)(VTD_GCMD_QIE | VTD_GCMD_IRE));
}

TEST(ir_left_on_by_firmware_is_turned_off_before_qi)
{
	struct simsys s;
	REQUIRE_OK(simsys_up_after(&s, NULL, NULL, firmware_ir_on));
	CHECK(logged(&s, "interrupt remapping was left enabled by firmware"));
	CHECK(!(gsts(&s) & VTD_GSTS_IRES));
	CHECK(!dmar_ir_enabled(s.unit));
	CHECK_OK(dmar_ir_enable(s.unit));
	CHECK(gsts(&s) & VTD_GSTS_IRES);
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(system_destroy_turns_ir_off_and_frees_everything)
{
	struct simsys s;
	up_ir(&s);
	alloc_dev(&s, 4, &T41);
	alloc_dev(&s, 1, &T41);
	dmar_system_destroy(s.sys);
	s.sys = NULL;
	CHECK(!(gsts(&s) & VTD_GSTS_IRES));
	CHECK(!(gsts(&s) & VTD_GSTS_QIES));
	CHECK_EQ(simsys_down(&s), 0);
}

/* ---- delivery ---- */

TEST(msi_is_delivered_with_the_entry_vector_and_destination)
{
	struct simsys s;
	struct model_irq_delivery d;
	uint64_t lo, hi, addr;
	uint32_t data;
	up_ir(&s);
	struct dmar_irq *irq = alloc_dev(&s, 1, &T41);
	CHECK_EQ(dmar_ir_count(irq), 1);
	CHECK(dmar_ir_unit(irq) == s.unit);
	dmar_ir_msi_message(irq, 0, &addr, &data);
	CHECK_EQ(addr >> 20, 0xfee);
	CHECK(addr & VTD_MSI_ADDR_IF);
	CHECK_EQ(VTD_MSI_ADDR_HANDLE_GET(addr), dmar_ir_index(irq));
	REQUIRE_OK(dmar_ir_entry(s.unit, dmar_ir_index(irq), &lo, &hi));
	CHECK(lo & VTD_IRTE_LO_P);
	CHECK_EQ(VTD_IRTE_LO_V_GET(lo), 0x41);
	CHECK_EQ(VTD_IRTE_LO_DST_XAPIC_GET(lo), 3);
	CHECK_EQ(VTD_IRTE_HI_SVT_GET(hi), VTD_SVT_SID);
	CHECK_EQ(VTD_IRTE_HI_SID_GET(hi), DEV_SID);
	CHECK_EQ(VTD_IRTE_HI_SQ_GET(hi), 0);
	CHECK_EQ(send(&s, irq, 0, DEV_SID, &d), 0);
	CHECK(d.remapped);
	CHECK_EQ(d.index, dmar_ir_index(irq));
	CHECK_EQ(d.vector, 0x41);
	CHECK_EQ(d.dest, 3);
	CHECK(!d.logical && !d.level);
	CHECK_EQ(d.delivery_mode, VTD_DLM_FIXED);
	/* Another target: logical, lowest priority, level. */
	struct dmar_irq_target t = { .dest = 0x80, .vector = 0xee, .logical = true,
				     .lowest_priority = true, .level = true };
	struct dmar_irq *irq2 = alloc_dev(&s, 1, &t);
	CHECK(dmar_ir_index(irq2) != dmar_ir_index(irq));
	CHECK_EQ(send(&s, irq2, 0, DEV_SID, &d), 0);
	CHECK_EQ(d.vector, 0xee);
	CHECK_EQ(d.dest, 0x80);
	CHECK(d.logical && d.level);
	CHECK_EQ(d.delivery_mode, VTD_DLM_LOWPRI);
	struct dmar_ir_info info;
	dmar_ir_get_info(s.unit, &info);
	CHECK_EQ(info.used, 2);
	CHECK_EQ(dmar_fault_poll(s.sys), 0);
	CHECK_OK(dmar_ir_free(irq));
	CHECK_OK(dmar_ir_free(irq2));
	dmar_ir_get_info(s.unit, &info);
	CHECK_EQ(info.used, 0);
	CHECK_EQ(present_entries(&s), 0);
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(targets_out_of_range_are_refused)
{
	struct simsys s;
	struct dmar_irq *irq;
	up_ir(&s);
	struct dmar_irq_target t = T41;
	t.vector = 15;
	CHECK_EQ(dmar_ir_alloc_msi(s.sys, 0, 0, 2, 0, 1, &t, &irq), DMAR_EINVAL);
	t.vector = 250;
	CHECK_EQ(dmar_ir_alloc_msi(s.sys, 0, 0, 2, 0, 8, &t, &irq), DMAR_EINVAL);
	CHECK_EQ(dmar_ir_alloc_msi(s.sys, 0, 0, 2, 0, 3, &T41, &irq), DMAR_EINVAL);
	CHECK_EQ(dmar_ir_alloc_msi(s.sys, 0, 0, 2, 0, 0, &T41, &irq), DMAR_EINVAL);
	CHECK(irq == NULL);
	irq = alloc_dev(&s, 2, &T41);
	t.vector = 255;
	CHECK_EQ(dmar_ir_set_target(irq, &t), DMAR_EINVAL); /* 255 + 1 */
	struct model_irq_delivery d;
	CHECK_EQ(send(&s, irq, 1, DEV_SID, &d), 0);
	CHECK_EQ(d.vector, 0x42); /* unchanged */
	CHECK_EQ(present_entries(&s), 2);
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(multi_message_msi_blocks_are_aligned_and_subhandles_select_entries)
{
	struct simsys s;
	struct model_irq_delivery d;
	up_ir(&s);
	struct dmar_irq *one = alloc_dev(&s, 1, &T41);
	struct dmar_irq *four = alloc_dev(&s, 4, &(struct dmar_irq_target){ .vector = 0x50 });
	struct dmar_irq *two = alloc_dev(&s, 2, &(struct dmar_irq_target){ .vector = 0x60 });
	struct dmar_irq *eight = alloc_dev(&s, 8, &(struct dmar_irq_target){ .vector = 0x70 });
	CHECK_EQ(dmar_ir_index(one), 0);
	CHECK_EQ(dmar_ir_index(four), 4);
	CHECK_EQ(dmar_ir_index(two), 2);
	CHECK_EQ(dmar_ir_index(eight), 8);
	for (unsigned i = 0; i < 8; i++) {
		uint64_t addr;
		uint32_t data;
		dmar_ir_msi_message(eight, i, &addr, &data);
		/* One address for the block; the function puts the message number in the
		 * data's low bits (the sub-handle). */
		CHECK_EQ(VTD_MSI_ADDR_HANDLE_GET(addr), 8);
		CHECK(addr & VTD_MSI_ADDR_SHV);
		CHECK_EQ(data, i);
		CHECK_EQ(send(&s, eight, i, DEV_SID, &d), 0);
		CHECK_EQ(d.index, 8 + i);
		CHECK_EQ(d.vector, 0x70 + i);
	}
	/* Freeing the block of four makes its aligned room usable again. */
	CHECK_OK(dmar_ir_free(four));
	struct dmar_irq *four2 = alloc_dev(&s, 4, &T41);
	CHECK_EQ(dmar_ir_index(four2), 4);
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(a_full_table_refuses_with_enospc)
{
	struct simsys s;
	struct dmar_config c = config();
	struct dmar_irq *irq;
	c.ir_entries = 16;
	up_with(&s, NULL, &c);
	REQUIRE_OK(dmar_ir_enable(s.unit));
	CHECK_EQ(dmar_ir_alloc_msi(s.sys, 0, 0, 2, 0, 32, &T41, &irq), DMAR_ENOSPC);
	alloc_dev(&s, 1, &T41);
	CHECK_EQ(dmar_ir_alloc_msi(s.sys, 0, 0, 2, 0, 16, &T41, &irq), DMAR_ENOSPC);
	alloc_dev(&s, 8, &T41);
	alloc_dev(&s, 4, &T41);
	alloc_dev(&s, 2, &T41);
	alloc_dev(&s, 1, &T41);
	CHECK_EQ(dmar_ir_alloc_msi(s.sys, 0, 0, 2, 0, 1, &T41, &irq), DMAR_ENOSPC);
	CHECK_EQ(present_entries(&s), 16);
	CHECK_EQ(simsys_down(&s), 0);
}

/* ---- faults ---- */

TEST(compatibility_format_is_blocked_unless_ir_compat)
{
	struct simsys s;
	struct model_irq_delivery d;
	char text[512];
	up_ir(&s);
	CHECK(!(gsts(&s) & VTD_GSTS_CFIS));
	CHECK_EQ(simsys_interrupt(&s, DEV_SID, 0xfee01000ull, 0x31, &d), VTD_FR_IR_REQ_COMPAT);
	struct dmar_fault_record rec = one_fault(&s, text, sizeof(text));
	CHECK(rec.is_intr);
	CHECK_EQ(rec.reason, VTD_FR_IR_REQ_COMPAT);
	CHECK_EQ(rec.intr_index, 0);
	CHECK_EQ(rec.sid, DEV_SID);
	CHECK_EQ(rec.did, -1);
	CHECK(!rec.is_read);
	CHECK(strstr(text, "interrupt fault") != NULL);
	CHECK(strstr(text, "reason 0x25") != NULL);
	CHECK(strstr(text, "blocked by hw.dmar.ir_compat=0") != NULL);
	CHECK_EQ(simsys_down(&s), 0);

	struct dmar_config c = config();
	CHECK_EQ(dmar_config_parse(&c, "hw.dmar.ir_compat=1", NULL, NULL), 0);
	up_with(&s, NULL, &c);
	REQUIRE_OK(dmar_ir_enable(s.unit));
	CHECK(gsts(&s) & VTD_GSTS_CFIS);
	CHECK(logged(&s, "compatibility format passes"));
	CHECK_EQ(simsys_interrupt(&s, DEV_SID, 0xfee01000ull, 0x31, &d), 0);
	CHECK(!d.remapped);
	CHECK_EQ(d.vector, 0x31);
	CHECK_EQ(d.dest, 1);
	CHECK_EQ(dmar_fault_poll(s.sys), 0);
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(cfi_never_acknowledged_is_not_fatal)
{
	/* As on QEMU 7.2, which does not implement CFI: CFIS never comes. */
	struct simsys s;
	struct dmar_config c = config();
	struct dmar_ir_info info;
	c.ir_compat = true;
	up_with(&s, NULL, &c);
	dmar_model_set_ack_delay(s.model, MODEL_ACK_CFI, MODEL_NEVER);
	CHECK_OK(dmar_ir_enable(s.unit));
	CHECK(logged(&s, "did not acknowledge GCMD.CFI"));
	CHECK(gsts(&s) & VTD_GSTS_IRES);
	dmar_ir_get_info(s.unit, &info);
	CHECK(!info.compat);
	CHECK_EQ(simsys_interrupt(&s, DEV_SID, 0xfee01000ull, 0x31, NULL), VTD_FR_IR_REQ_COMPAT);
	CHECK_EQ(dmar_fault_poll(s.sys), 1);
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(reserved_request_bits_fault_0x20)
{
	struct simsys s;
	char text[512];
	up_ir(&s);
	struct dmar_irq *irq = alloc_dev(&s, 1, &T41);
	uint64_t addr;
	uint32_t data;
	dmar_ir_msi_message(irq, 0, &addr, &data);
	CHECK_EQ(simsys_interrupt(&s, DEV_SID, addr, data | 0x10000u, NULL), VTD_FR_IR_REQ_RSVD);
	struct dmar_fault_record rec = one_fault(&s, text, sizeof(text));
	CHECK(rec.is_intr);
	CHECK_EQ(rec.reason, 0x20);
	CHECK(strstr(text, "reason 0x20") != NULL);
	CHECK(strstr(text, "refused: the request had reserved bits set") != NULL);
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(index_beyond_the_table_faults_0x21)
{
	struct simsys s;
	char text[512];
	up_ir(&s);
	CHECK_EQ(send_index(&s, 300, DEV_SID, NULL), VTD_FR_IR_INDEX_OVER);
	struct dmar_fault_record rec = one_fault(&s, text, sizeof(text));
	CHECK_EQ(rec.reason, 0x21);
	CHECK_EQ(rec.intr_index, 300);
	CHECK(strstr(text, "IRT index 300") != NULL);
	CHECK(strstr(text, "index 300 is beyond the table's 256 entries") != NULL);
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(entry_not_present_faults_0x22)
{
	struct simsys s;
	char text[512];
	up_ir(&s);
	alloc_dev(&s, 1, &T41); /* index 0 */
	CHECK_EQ(send_index(&s, 7, DEV_SID, NULL), VTD_FR_IR_ENTRY_P);
	struct dmar_fault_record rec = one_fault(&s, text, sizeof(text));
	CHECK_EQ(rec.reason, 0x22);
	CHECK_EQ(rec.intr_index, 7);
	CHECK_EQ(rec.sid, DEV_SID);
	CHECK(strstr(text, "IRT index 7") != NULL);
	CHECK(strstr(text, "entry 7: not present; refused: the entry was not present") != NULL);
	CHECK_EQ(simsys_down(&s), 0);
}

/* Sets bits of an entry behind the library's back, as a stray write would. */
static void corrupt(struct simsys *s, unsigned index, uint64_t lo_bits)
{
	struct dmar_ir_info info;
	dmar_ir_get_info(s->unit, &info);
	uint64_t *e = dmar_posix_machine_phys_to_virt(s->pm, info.table_phys + index * 16u);
	REQUIRE(e != NULL);
	e[0] |= lo_bits;
	dmar_posix_machine_os(s->pm)->ops->cache_flush(dmar_posix_machine_os(s->pm)->ctx, e, 16);
}

TEST(reserved_entry_bits_fault_0x24)
{
	struct simsys s;
	char text[512];
	up_ir(&s);
	struct dmar_irq *a = alloc_dev(&s, 1, &T41);
	struct dmar_irq *b = alloc_dev(&s, 1, &T41);
	corrupt(&s, dmar_ir_index(a), 1ull << 12);
	corrupt(&s, dmar_ir_index(b), 1ull << 33); /* a DST bit outside the xAPIC id */
	CHECK_EQ(send(&s, a, 0, DEV_SID, NULL), VTD_FR_IR_IRTE_RSVD);
	struct dmar_fault_record rec = one_fault(&s, text, sizeof(text));
	CHECK_EQ(rec.reason, 0x24);
	CHECK_EQ(rec.intr_index, dmar_ir_index(a));
	CHECK(strstr(text, "IRT index 0") != NULL);
	CHECK(strstr(text, "refused: reserved fields set in the entry: reserved low bits") != NULL);
	CHECK_EQ(send(&s, b, 0, DEV_SID, NULL), VTD_FR_IR_IRTE_RSVD);
	rec = one_fault(&s, text, sizeof(text));
	CHECK_EQ(rec.intr_index, dmar_ir_index(b));
	CHECK(strstr(text, "destination bits outside the xAPIC id") != NULL);
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(source_id_mismatch_faults_0x26)
{
	struct simsys s;
	char text[512];
	up_ir(&s);
	struct dmar_irq *irq = alloc_dev(&s, 1, &T41);
	alloc_dev(&s, 1, &T41);
	struct dmar_irq *third = alloc_dev(&s, 1, &T41);
	CHECK_EQ(send(&s, third, 0, OTHER_SID, NULL), VTD_FR_IR_SID_ERR);
	struct dmar_fault_record rec = one_fault(&s, text, sizeof(text));
	CHECK_EQ(rec.reason, 0x26);
	CHECK_EQ(rec.sid, OTHER_SID);
	CHECK_EQ(rec.intr_index, 2);
	CHECK(strstr(text, "from 0000:00:03.0 (sid 0x0018), IRT index 2: reason 0x26") != NULL);
	CHECK(strstr(text, "admits requester id 0x0010 (SVT 1)") != NULL);
	CHECK(strstr(text, "refused: the request's source id 0x0018 is not one the entry admits") !=
	      NULL);
	/* The right device still gets through. */
	CHECK_EQ(send(&s, irq, 0, DEV_SID, NULL), 0);
	CHECK_EQ(simsys_down(&s), 0);
}

/* The attack the source-id check exists for: device B's DMA engine writes device A's
 * remappable MSI (a DWORD write to 0xFEEx_xxxx is an interrupt request, whatever DMA
 * remapping says). The entry admits only A: B's write is refused and recorded; A's own
 * write of the same message is delivered. (QEMU 7.2 gives DMA-engine writes no
 * requester id and lets them through; see kernel/tests/test_ir.c.) */
TEST(a_dma_written_msi_of_another_device_is_refused)
{
	struct simsys s;
	char text[512];
	up_ir(&s);
	struct dmar_irq *irq = alloc_dev(&s, 1, &T41);
	uint64_t addr;
	uint32_t data;
	dmar_ir_msi_message(irq, 0, &addr, &data);
	uint64_t before = dmar_model_stats(s.model)->intr_remapped;
	CHECK_EQ(dmar_posix_machine_dma(s.pm, s.model, OTHER_SID, addr, &data, sizeof(data),
					MODEL_DMA_WRITE, NULL), VTD_FR_IR_SID_ERR);
	struct dmar_fault_record rec = one_fault(&s, text, sizeof(text));
	CHECK_EQ(rec.reason, 0x26);
	CHECK_EQ(rec.sid, OTHER_SID);
	CHECK_EQ(rec.intr_index, dmar_ir_index(irq));
	CHECK_EQ(dmar_model_stats(s.model)->intr_remapped, before);
	CHECK_EQ(dmar_posix_machine_dma(s.pm, s.model, DEV_SID, addr, &data, sizeof(data),
					MODEL_DMA_WRITE, NULL), 0);
	CHECK_EQ(dmar_model_stats(s.model)->intr_remapped, before + 1);
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(table_the_unit_cannot_read_faults_0x23)
{
	/* Only a unit pointed elsewhere behind the library's back gets there: IRTA at
	 * an address that is not memory. */
	struct simsys s;
	char text[512];
	up_ir(&s);
	dmar_model_write64(s.model, VTD_IRTA_REG, 0x1000 | VTD_IRTA_S(7));
	dmar_model_write32(s.model, VTD_GCMD_REG,
			   (gsts(&s) & (uint32_t)VTD_GSTS_PERSISTENT) | (uint32_t)VTD_GCMD_SIRTP);
	CHECK(gsts(&s) & VTD_GSTS_IRES);
	CHECK_EQ(send_index(&s, 4, DEV_SID, NULL), VTD_FR_IR_ROOT_INVAL);
	struct dmar_fault_record rec = one_fault(&s, text, sizeof(text));
	CHECK_EQ(rec.reason, 0x23);
	CHECK_EQ(rec.intr_index, 4);
	CHECK(strstr(text, "IRT index 4: reason 0x23") != NULL);
	CHECK(strstr(text, "refused: the unit could not read the table") != NULL);
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(poll_irq_records_interrupt_faults_without_explaining)
{
	struct simsys s;
	struct dmar_fault_record rec;
	up_ir(&s);
	CHECK_EQ(send_index(&s, 9, DEV_SID, NULL), VTD_FR_IR_ENTRY_P);
	dmar_posix_machine_log_clear(s.pm);
	CHECK_EQ(dmar_fault_poll_irq(s.sys), 1);
	CHECK(logged(&s, "interrupt fault #1 from 0000:00:02.0 (sid 0x0010), IRT index 9: "
			 "reason 0x22"));
	CHECK(!logged(&s, "IRT: "));
	REQUIRE_EQ(dmar_fault_read(s.sys, &rec, 1), 1);
	CHECK(rec.is_intr);
	CHECK_EQ(rec.intr_index, 9);
	CHECK_EQ(dmar_fault_reason_kind(rec.reason), DMAR_FAULT_KIND_INTR);
	CHECK_EQ(simsys_down(&s), 0);
}

/* ---- the interrupt entry cache ---- */

TEST(set_target_invalidates_the_entry_cache)
{
	struct simsys s;
	struct model_irq_delivery d;
	up_ir(&s);
	struct dmar_irq *irq = alloc_dev(&s, 2, &T41);
	CHECK_EQ(send(&s, irq, 0, DEV_SID, &d), 0);
	CHECK_EQ(send(&s, irq, 1, DEV_SID, &d), 0);
	CHECK_EQ(dmar_model_iec_entries(s.model), 2); /* both cached now */
	struct dmar_irq_target t = { .dest = 7, .vector = 0x90 };
	CHECK_OK(dmar_ir_set_target(irq, &t));
	CHECK_EQ(send(&s, irq, 0, DEV_SID, &d), 0);
	CHECK_EQ(d.vector, 0x90);
	CHECK_EQ(d.dest, 7);
	CHECK_EQ(send(&s, irq, 1, DEV_SID, &d), 0);
	CHECK_EQ(d.vector, 0x91);
	CHECK_EQ(d.dest, 7);
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(free_invalidates_so_the_old_entry_stops)
{
	struct simsys s;
	struct model_irq_delivery d;
	char text[512];
	up_ir(&s);
	struct dmar_irq *irq = alloc_dev(&s, 1, &T41);
	unsigned index = dmar_ir_index(irq);
	uint64_t addr;
	uint32_t data;
	dmar_ir_msi_message(irq, 0, &addr, &data);
	CHECK_EQ(simsys_interrupt(&s, DEV_SID, addr, data, &d), 0);
	CHECK_OK(dmar_ir_free(irq));
	CHECK_EQ(simsys_interrupt(&s, DEV_SID, addr, data, &d), VTD_FR_IR_ENTRY_P);
	struct dmar_fault_record rec = one_fault(&s, text, sizeof(text));
	CHECK_EQ(rec.intr_index, index);
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(the_model_keeps_a_stale_entry_until_the_library_invalidates)
{
	struct simsys s;
	struct model_irq_delivery d;
	up_ir(&s);
	struct dmar_irq *irq = alloc_dev(&s, 1, &T41);
	CHECK_EQ(send(&s, irq, 0, DEV_SID, &d), 0);
	/* Changed behind the library's back: the unit keeps using the cached entry. */
	corrupt(&s, dmar_ir_index(irq), VTD_IRTE_LO_V(0x7f));
	CHECK_EQ(send(&s, irq, 0, DEV_SID, &d), 0);
	CHECK_EQ(d.vector, 0x41);
	/* A set_target of the same target rewrites and invalidates it. */
	CHECK_OK(dmar_ir_set_target(irq, &T41));
	CHECK_EQ(send(&s, irq, 0, DEV_SID, &d), 0);
	CHECK_EQ(d.vector, 0x41);
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(a_new_table_is_not_served_from_the_old_tables_cache)
{
	struct simsys s;
	struct model_irq_delivery d;
	up_ir(&s);
	struct dmar_irq *irq = alloc_dev(&s, 1, &T41);
	CHECK_EQ(send(&s, irq, 0, DEV_SID, &d), 0);
	CHECK_EQ(dmar_model_iec_entries(s.model), 1);
	CHECK_OK(dmar_ir_disable(s.unit));
	CHECK_OK(dmar_ir_enable(s.unit));
	/* Index 0 is free in the new table: the old cached entry must not answer. */
	CHECK_EQ(send_index(&s, 0, DEV_SID, &d), VTD_FR_IR_ENTRY_P);
	CHECK_EQ(dmar_fault_poll(s.sys), 1);
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(mhmv_bounds_index_selective_invalidation)
{
	struct simsys s;
	struct model_config mc;
	struct dmar_ir_info a, b;
	struct model_irq_delivery d;
	dmar_model_config_default(&mc);
	mc.mhmv = 1; /* at most 2 entries per index-selective invalidation */
	up_with(&s, &mc, NULL);
	REQUIRE_OK(dmar_ir_enable(s.unit));
	dmar_ir_get_info(s.unit, &a);
	struct dmar_irq *two = alloc_dev(&s, 2, &T41);
	dmar_ir_get_info(s.unit, &b);
	CHECK_EQ(b.iec_index - a.iec_index, 1);
	CHECK_EQ(b.iec_global - a.iec_global, 0);
	struct dmar_irq *four = alloc_dev(&s, 4, &T41);
	dmar_ir_get_info(s.unit, &a);
	CHECK_EQ(a.iec_global - b.iec_global, 1);
	CHECK_EQ(a.iec_index - b.iec_index, 0);
	CHECK_EQ(dmar_model_stats(s.model)->qi_errors, 0);
	for (unsigned i = 0; i < 4; i++)
		CHECK_EQ(send(&s, four, i, DEV_SID, &d), 0);
	CHECK_OK(dmar_ir_set_target(four, &(struct dmar_irq_target){ .vector = 0x80 }));
	CHECK_EQ(send(&s, four, 3, DEV_SID, &d), 0);
	CHECK_EQ(d.vector, 0x83);
	CHECK_OK(dmar_ir_free(two));
	CHECK_EQ(simsys_down(&s), 0);
}

/* ---- bridges ---- */

static struct dmar_irq *alloc_at(struct simsys *s, uint8_t bus, uint8_t dev, uint8_t fn)
{
	struct dmar_irq *irq = NULL;
	REQUIRE_OK(dmar_ir_alloc_msi(s->sys, 0, bus, dev, fn, 1, &T41, &irq));
	return irq;
}

TEST(behind_a_pcie_to_pci_bridge_the_bus_range_is_checked)
{
	struct simsys s;
	uint64_t lo, hi;
	up_ir(&s);
	dmar_system_set_upstream(s.sys, simsys_bridged_upstream, NULL);
	struct dmar_irq *irq = alloc_at(&s, 3, 5, 0);
	REQUIRE_OK(dmar_ir_entry(s.unit, dmar_ir_index(irq), &lo, &hi));
	CHECK_EQ(VTD_IRTE_HI_SVT_GET(hi), VTD_SVT_BUS);
	CHECK_EQ(VTD_IRTE_HI_SID_GET(hi), 0x0303);
	/* As the bridge forwards it (secondary bus, 00.0), and with the device's own id
	 * (a PCI-X requester keeps it). */
	CHECK_EQ(send(&s, irq, 0, VTD_SID(3, 0, 0), NULL), 0);
	CHECK_EQ(send(&s, irq, 0, VTD_SID(3, 5, 0), NULL), 0);
	CHECK_EQ(send(&s, irq, 0, VTD_SID(2, 5, 0), NULL), VTD_FR_IR_SID_ERR);
	CHECK_EQ(send(&s, irq, 0, VTD_SID(4, 0, 0), NULL), VTD_FR_IR_SID_ERR);
	char text[512];
	one_fault(&s, text, sizeof(text));
	CHECK(strstr(text, "admits buses 0x03-0x03 (SVT 2)") != NULL);
	/* Deeper: a conventional bridge below a PCIe-to-PCI one: buses [4, 5]. */
	struct dmar_irq *deep = alloc_at(&s, 5, 0, 0);
	REQUIRE_OK(dmar_ir_entry(s.unit, dmar_ir_index(deep), &lo, &hi));
	CHECK_EQ(VTD_IRTE_HI_SVT_GET(hi), VTD_SVT_BUS);
	CHECK_EQ(VTD_IRTE_HI_SID_GET(hi), 0x0405);
	CHECK_EQ(send(&s, deep, 0, VTD_SID(4, 0, 0), NULL), 0);
	CHECK_EQ(send(&s, deep, 0, VTD_SID(6, 0, 0), NULL), VTD_FR_IR_SID_ERR);
	CHECK_EQ(dmar_fault_poll(s.sys), 1);
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(behind_a_conventional_bridge_the_bridge_id_is_checked)
{
	struct simsys s;
	uint64_t lo, hi;
	up_ir(&s);
	dmar_system_set_upstream(s.sys, simsys_bridged_upstream, NULL);
	struct dmar_irq *irq = alloc_at(&s, 2, 3, 0);
	REQUIRE_OK(dmar_ir_entry(s.unit, dmar_ir_index(irq), &lo, &hi));
	CHECK_EQ(VTD_IRTE_HI_SVT_GET(hi), VTD_SVT_SID);
	CHECK_EQ(VTD_IRTE_HI_SID_GET(hi), VTD_SID(0, 0x1e, 0));
	CHECK_EQ(send(&s, irq, 0, VTD_SID(0, 0x1e, 0), NULL), 0);
	CHECK_EQ(send(&s, irq, 0, VTD_SID(2, 3, 0), NULL), VTD_FR_IR_SID_ERR);
	CHECK_EQ(dmar_fault_poll(s.sys), 1);
	/* A DMA-alias quirk is not taken for MSIs: the function's own id stays. */
	CHECK_OK(dmar_system_add_dma_alias(s.sys, 0, VTD_SID(0, 4, 0), VTD_SID(0, 4, 1)));
	struct dmar_irq *q = alloc_at(&s, 0, 4, 0);
	REQUIRE_OK(dmar_ir_entry(s.unit, dmar_ir_index(q), &lo, &hi));
	CHECK_EQ(VTD_IRTE_HI_SVT_GET(hi), VTD_SVT_SID);
	CHECK_EQ(VTD_IRTE_HI_SID_GET(hi), VTD_SID(0, 4, 0));
	CHECK_EQ(simsys_down(&s), 0);
}

/* ---- IOAPIC and HPET ---- */

#define IOAPIC_SID VTD_SID(0xf0, 0x1f, 0)
#define IOAPIC2_SID VTD_SID(7, 0, 0)
#define HPET_SID VTD_SID(0xf0, 0x0f, 0)

static int secondary(void *ctx, uint16_t seg, uint8_t bus, uint8_t dev, uint8_t fn,
		     uint8_t *subordinate)
{
	(void)ctx;
	(void)seg;
	(void)subordinate;
	return bus == 0 && dev == 0x1c && fn == 0 ? 7 : -1;
}

static struct dtb scope_dtb;
static struct dmar_acpi_table scope_table;

/* One DRHD (INCLUDE_PCI_ALL) at the simulated unit with IOAPIC 2 at f0:1f.0, IOAPIC 3
 * behind the bridge 00:1c.0 (secondary bus 7) at 07:00.0, HPET 0 at f0:0f.0. */
static const struct dmar_acpi_table *scope_table_with(uint8_t flags)
{
	struct dtb *b = &scope_dtb;
	dtb_init(b, 39, flags);
	dtb_drhd(b, DMAR_DRHD_INCLUDE_PCI_ALL, 0, SIMSYS_REG_BASE);
	dtb_scope_pci(b, DMAR_SCOPE_IOAPIC, 0xf0, 0x1f, 0, 2);
	dtb_scope(b, DMAR_SCOPE_IOAPIC, 3, 0, (const uint8_t[]){ 0x1c, 0, 0, 0 }, 2);
	dtb_scope_pci(b, DMAR_SCOPE_HPET, 0xf0, 0x0f, 0, 0);
	REQUIRE_OK(dmar_acpi_parse(b->buf, dtb_finish(b), NULL, &scope_table));
	return &scope_table;
}

TEST(ioapic_and_hpet_entries_take_their_source_ids_from_the_table)
{
	struct simsys s;
	struct model_irq_delivery d;
	uint64_t lo, hi;
	REQUIRE_OK(simsys_up_table(&s, NULL, NULL, scope_table_with(DMAR_ACPI_INTR_REMAP)));
	dmar_system_set_topology(s.sys, secondary, NULL);
	REQUIRE_OK(dmar_ir_enable(s.unit));
	struct dmar_irq_target t = { .dest = 1, .vector = 0x33, .level = true };
	struct dmar_irq *io = NULL, *io3 = NULL, *hpet = NULL;
	REQUIRE_OK(dmar_ir_alloc_ioapic(s.sys, 2, 9, &t, &io));
	REQUIRE_OK(dmar_ir_entry(s.unit, dmar_ir_index(io), &lo, &hi));
	CHECK_EQ(hi, VTD_IRTE_HI_SVT(VTD_SVT_SID) | IOAPIC_SID);
	CHECK(lo & VTD_IRTE_LO_TM);
	/* The redirection entry: remappable format, the index, the vector for EOIs. */
	uint64_t rte = dmar_ir_ioapic_rte(io, true, false);
	CHECK(rte & VTD_RTE_FORMAT_REMAP);
	CHECK_EQ(rte >> 49, dmar_ir_index(io));
	CHECK(!(rte & VTD_RTE_INDEX15));
	CHECK_EQ(rte & 0xff, 0x33);
	CHECK(rte & VTD_RTE_TRIGGER_LEVEL);
	CHECK(rte & VTD_RTE_POLARITY_LOW);
	CHECK(!(rte & VTD_RTE_MASK));
	CHECK(dmar_ir_ioapic_rte(io, false, true) & VTD_RTE_MASK);
	CHECK(!(dmar_ir_ioapic_rte(io, false, true) & VTD_RTE_POLARITY_LOW));
	/* What the IOAPIC sends for that RTE: the handle, no sub-handle, the vector. */
	uint64_t addr = VTD_MSI_ADDR_BASE | VTD_MSI_ADDR_HANDLE(rte >> 49) | VTD_MSI_ADDR_IF;
	CHECK_EQ(simsys_interrupt(&s, IOAPIC_SID, addr, 0x33, &d), 0);
	CHECK_EQ(d.vector, 0x33);
	CHECK(d.level);
	CHECK_EQ(simsys_interrupt(&s, VTD_SID(0xf0, 0x1f, 1), addr, 0x33, &d), VTD_FR_IR_SID_ERR);
	CHECK_EQ(dmar_fault_poll(s.sys), 1);
	/* Through a bridge of the scope's path. */
	REQUIRE_OK(dmar_ir_alloc_ioapic(s.sys, 3, 0, &t, &io3));
	REQUIRE_OK(dmar_ir_entry(s.unit, dmar_ir_index(io3), &lo, &hi));
	CHECK_EQ(VTD_IRTE_HI_SID_GET(hi), IOAPIC2_SID);
	/* The HPET: its function number is not checked. */
	REQUIRE_OK(dmar_ir_alloc_hpet(s.sys, 0, 1, &T41, &hpet));
	CHECK_EQ(send(&s, hpet, 0, HPET_SID, &d), 0);
	CHECK_EQ(d.vector, 0x41);
	CHECK_EQ(send(&s, hpet, 0, HPET_SID | 3, &d), 0);
	CHECK_EQ(send(&s, hpet, 0, VTD_SID(0xf0, 0x10, 0), &d), VTD_FR_IR_SID_ERR);
	/* Ids no scope names. */
	struct dmar_irq *none = NULL;
	CHECK_EQ(dmar_ir_alloc_ioapic(s.sys, 9, 0, &t, &none), DMAR_ENOENT);
	CHECK_EQ(dmar_ir_alloc_hpet(s.sys, 1, 0, &t, &none), DMAR_ENOENT);
	CHECK(none == NULL);
	CHECK_EQ(dmar_fault_poll(s.sys), 1);
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(ioapic_rte_carries_index_bit_15)
{
	struct simsys s;
	struct dmar_config c = config();
	c.ir_entries = 65536;
	REQUIRE_OK(simsys_up_table(&s, NULL, &c, scope_table_with(DMAR_ACPI_INTR_REMAP)));
	REQUIRE_OK(dmar_ir_enable(s.unit));
	struct dmar_irq *big, *io;
	/* Fill the lower half so the IOAPIC's entry lands at 0x8000. */
	for (unsigned k = 0; k < 32768 / 128; k++)
		REQUIRE_OK(dmar_ir_alloc_msi(s.sys, 0, 0, 2, 0, 128,
					     &(struct dmar_irq_target){ .vector = 16 }, &big));
	/* A block's vectors are vector + i: they cannot pass 255. */
	CHECK_EQ(dmar_ir_alloc_msi(s.sys, 0, 0, 2, 0, 256, &T41, &big), DMAR_EINVAL);
	REQUIRE_OK(dmar_ir_alloc_ioapic(s.sys, 2, 0, &T41, &io));
	CHECK_EQ(dmar_ir_index(io), 0x8000);
	uint64_t rte = dmar_ir_ioapic_rte(io, false, false);
	CHECK(rte & VTD_RTE_INDEX15);
	CHECK_EQ(rte >> 49, 0);
	uint64_t addr;
	uint32_t data;
	dmar_ir_msi_message(io, 0, &addr, &data);
	CHECK(addr & (1u << 2)); /* handle[15] */
	struct model_irq_delivery d;
	CHECK_EQ(simsys_interrupt(&s, IOAPIC_SID, addr, data, &d), 0);
	CHECK_EQ(d.index, 0x8000);
	CHECK_EQ(simsys_down(&s), 0);
}

/* ---- extended interrupt mode ---- */

static void up_eim(struct simsys *s, bool unit_eim, bool x2apic,
		   const struct dmar_acpi_table *table)
{
	struct model_config mc;
	struct dmar_config c = config();
	dmar_model_config_default(&mc);
	mc.eim = unit_eim;
	c.x2apic = x2apic;
	c.ir_compat = true;
	if (table)
		REQUIRE_OK(simsys_up_table(s, &mc, &c, table));
	else
		REQUIRE_OK(simsys_up(s, &mc, &c));
	REQUIRE_OK(dmar_ir_enable(s->unit));
}

TEST(eim_gives_32_bit_destinations)
{
	struct simsys s;
	struct model_irq_delivery d;
	bool eime;
	up_eim(&s, true, true, NULL);
	CHECK(dmar_ir_eim(s.unit));
	dmar_model_irt(s.model, NULL, NULL, &eime);
	CHECK(eime);
	CHECK(dmar_model_read64(s.model, VTD_IRTA_REG) & VTD_IRTA_EIME);
	CHECK(logged(&s, "extended interrupt mode (32-bit destinations)"));
	struct dmar_irq_target t = { .dest = 0x12345, .vector = 0x40 };
	struct dmar_irq *irq = alloc_dev(&s, 1, &t);
	uint64_t lo, hi;
	REQUIRE_OK(dmar_ir_entry(s.unit, dmar_ir_index(irq), &lo, &hi));
	CHECK_EQ(VTD_IRTE_LO_DST_GET(lo), 0x12345);
	CHECK_EQ(send(&s, irq, 0, DEV_SID, &d), 0);
	CHECK_EQ(d.dest, 0x12345);
	t.dest = 0xfffffffe;
	CHECK_OK(dmar_ir_set_target(irq, &t));
	CHECK_EQ(send(&s, irq, 0, DEV_SID, &d), 0);
	CHECK_EQ(d.dest, 0xfffffffe);
	/* Compatibility format is blocked in extended interrupt mode, even with
	 * hw.dmar.ir_compat=1. */
	CHECK(logged(&s, "extended interrupt mode blocks compatibility-format interrupts"));
	CHECK_EQ(simsys_interrupt(&s, DEV_SID, 0xfee00000ull, 0x30, &d), VTD_FR_IR_REQ_COMPAT);
	char text[512];
	one_fault(&s, text, sizeof(text));
	CHECK(strstr(text, "blocked in extended interrupt mode") != NULL);
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(without_eim_destinations_above_255_are_refused)
{
	/* The unit has EIM, the APICs are not in x2APIC mode. */
	struct simsys s;
	struct dmar_irq *irq = NULL;
	struct model_irq_delivery d;
	struct dmar_ir_info info;
	bool eime = true;
	up_eim(&s, true, false, NULL);
	CHECK(!dmar_ir_eim(s.unit));
	dmar_model_irt(s.model, NULL, NULL, &eime);
	CHECK(!eime);
	struct dmar_irq_target t = { .dest = 256, .vector = 0x40 };
	CHECK_EQ(dmar_ir_alloc_msi(s.sys, 0, 0, 2, 0, 1, &t, &irq), DMAR_ERANGE);
	CHECK(irq == NULL);
	dmar_ir_get_info(s.unit, &info);
	CHECK_EQ(info.used, 0);
	CHECK_EQ(present_entries(&s), 0);
	t.dest = 255;
	irq = alloc_dev(&s, 1, &t);
	CHECK_EQ(send(&s, irq, 0, DEV_SID, &d), 0);
	CHECK_EQ(d.dest, 255);
	t.dest = 0x100;
	CHECK_EQ(dmar_ir_set_target(irq, &t), DMAR_ERANGE);
	CHECK_EQ(send(&s, irq, 0, DEV_SID, &d), 0);
	CHECK_EQ(d.dest, 255);
	CHECK_EQ(simsys_down(&s), 0);

	/* x2APIC mode on a unit without EIM: said so, and refused the same way. */
	up_eim(&s, false, true, NULL);
	CHECK(!dmar_ir_eim(s.unit));
	CHECK(logged(&s, "has no extended interrupt mode (ECAP.EIM=0): destinations above 255 "
			 "are refused"));
	CHECK_EQ(dmar_ir_alloc_msi(s.sys, 0, 0, 2, 0, 1, &t, &irq), DMAR_ERANGE);
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(x2apic_opt_out_in_the_table_is_honoured)
{
	struct simsys s;
	struct dmar_irq *irq = NULL;
	up_eim(&s, true, true,
	       scope_table_with(DMAR_ACPI_INTR_REMAP | DMAR_ACPI_X2APIC_OPT_OUT));
	CHECK(!dmar_ir_eim(s.unit));
	CHECK(logged(&s, "opts out of x2APIC (X2APIC_OPT_OUT): extended interrupt mode off"));
	CHECK(!(dmar_model_read64(s.model, VTD_IRTA_REG) & VTD_IRTA_EIME));
	struct dmar_irq_target t = { .dest = 300, .vector = 0x40 };
	CHECK_EQ(dmar_ir_alloc_msi(s.sys, 0, 0, 2, 0, 1, &t, &irq), DMAR_ERANGE);
	/* And compatibility format passes as hw.dmar.ir_compat=1 asks (no EIM). */
	CHECK(gsts(&s) & VTD_GSTS_CFIS);
	CHECK_EQ(simsys_interrupt(&s, DEV_SID, 0xfee00000ull, 0x30, NULL), 0);
	CHECK_EQ(simsys_down(&s), 0);
}

/* ---- failures ---- */

TEST(enable_allocation_failures_leave_ir_off_and_nothing_leaked)
{
	unsigned n;
	for (n = 1; n < 50; n++) {
		struct simsys s;
		struct dmar_config c = config();
		c.ir_entries = 1024; /* a contiguous table */
		up_with(&s, NULL, &c);
		dmar_posix_machine_fail_nth(s.pm, n);
		int rc = dmar_ir_enable(s.unit);
		bool reached = dmar_posix_machine_failed(s.pm);
		dmar_posix_machine_fail_nth(s.pm, 0);
		if (reached) {
			CHECK_EQ(rc, DMAR_ENOMEM);
			CHECK(!dmar_ir_enabled(s.unit));
			CHECK(!(gsts(&s) & VTD_GSTS_IRES));
		} else {
			CHECK_OK(rc);
		}
		CHECK_EQ(simsys_down(&s), 0);
		if (!reached)
			break;
	}
	CHECK(n > 2); /* the state, the bitmap and the table at least */
}

TEST(alloc_failures_leave_no_present_entry_and_nothing_leaked)
{
	unsigned n;
	for (n = 1; n < 50; n++) {
		struct simsys s;
		struct dmar_irq *irq = NULL;
		up_ir(&s);
		alloc_dev(&s, 2, &T41);
		dmar_posix_machine_fail_nth(s.pm, n);
		int rc = dmar_ir_alloc_msi(s.sys, 0, 0, 2, 0, 4, &T41, &irq);
		bool reached = dmar_posix_machine_failed(s.pm);
		dmar_posix_machine_fail_nth(s.pm, 0);
		struct dmar_ir_info info;
		dmar_ir_get_info(s.unit, &info);
		if (reached) {
			CHECK_EQ(rc, DMAR_ENOMEM);
			CHECK(irq == NULL);
			CHECK_EQ(present_entries(&s), 2);
			CHECK_EQ(info.used, 2);
		} else {
			CHECK_OK(rc);
			CHECK_EQ(present_entries(&s), 6);
		}
		CHECK_EQ(simsys_down(&s), 0);
		if (!reached)
			break;
	}
	CHECK(n > 1);
}

TEST(an_invalidation_that_fails_leaves_no_half_programmed_entry)
{
	struct simsys s;
	struct dmar_irq *irq = NULL;
	struct dmar_ir_info info;
	up_ir(&s);
	alloc_dev(&s, 1, &T41);
	dmar_model_set_ack_delay(s.model, MODEL_ACK_QI, MODEL_NEVER);
	CHECK_EQ(dmar_ir_alloc_msi(s.sys, 0, 0, 2, 0, 2, &T41, &irq), DMAR_ETIMEDOUT);
	CHECK(irq == NULL);
	CHECK_EQ(present_entries(&s), 1);
	dmar_ir_get_info(s.unit, &info);
	CHECK_EQ(info.used, 1);
	CHECK(logged(&s, "timeout waiting for the invalidation wait descriptor"));
	/* The unit recovers; the entries are there to take. */
	dmar_model_set_ack_delay(s.model, MODEL_ACK_QI, 0);
	CHECK_OK(dmar_ir_alloc_msi(s.sys, 0, 0, 2, 0, 2, &T41, &irq));
	CHECK_EQ(dmar_ir_index(irq), 2);
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(disable_drops_the_handles_and_frees_the_table)
{
	struct simsys s;
	up_ir(&s);
	alloc_dev(&s, 1, &T41);
	alloc_dev(&s, 8, &T41);
	CHECK_OK(dmar_ir_disable(s.unit));
	/* IR off: the unit passes interrupts untranslated again. */
	struct model_irq_delivery d;
	CHECK_EQ(simsys_interrupt(&s, DEV_SID, 0xfee02000ull, 0x45, &d), 0);
	CHECK(!d.remapped);
	CHECK_EQ(simsys_down(&s), 0);
}

TEST(non_coherent_unit_sees_every_entry_flushed)
{
	/* QEMU's unit is not coherent (ECAP.C=0): simsys_down counts a table line the
	 * unit read before it was flushed. A coherent unit too, for contrast. */
	for (int c = 0; c < 2; c++) {
		struct simsys s;
		struct model_config mc;
		dmar_model_config_default(&mc);
		mc.c = c;
		up_with(&s, &mc, NULL);
		REQUIRE_OK(dmar_ir_enable(s.unit));
		struct dmar_irq *irq = alloc_dev(&s, 4, &T41);
		for (unsigned i = 0; i < 4; i++)
			CHECK_EQ(send(&s, irq, i, DEV_SID, NULL), 0);
		CHECK_OK(dmar_ir_set_target(irq, &(struct dmar_irq_target){ .vector = 0x99 }));
		CHECK_EQ(send(&s, irq, 0, DEV_SID, NULL), 0);
		uint64_t addr;
		uint32_t data;
		dmar_ir_msi_message(irq, 0, &addr, &data);
		CHECK_OK(dmar_ir_free(irq));
		CHECK_EQ(simsys_interrupt(&s, DEV_SID, addr, data, NULL), VTD_FR_IR_ENTRY_P);
		CHECK_EQ(dmar_posix_machine_coherency_errors(s.pm), 0);
		CHECK_EQ(simsys_down(&s), 0);
	}
}
