/*
 * Interrupt remapping (VT-d chapter 5): a unit's interrupt remapping table (IRT), the
 * IRTA/SIRTP, CFI and IRE handshakes, entries handed out per source with source-id
 * verification, and their interrupt entry cache (IEC) invalidation through the
 * invalidation queue. The entry bits are irte.c's.
 *
 * Locks: the unit lock serialises the GCMD handshakes and the invalidations (as for
 * DMA remapping); the unit's IR lock, taken inside it and never held across a wait or
 * an allocation, guards the table, its bitmap and the handle list, so that fault
 * explanations (dmar__ir_explain) read entries without the unit lock.
 */
#include "dmar/acpi.h"
#include "dmar_internal.h"
#include "irte.h"

/* ---- the table ---- */

static size_t ir_table_bytes(unsigned entries)
{
	return (size_t)entries * 16u;
}

static size_t ir_bitmap_bytes(unsigned entries)
{
	return (size_t)((entries + 63u) / 64u) * sizeof(uint64_t);
}

static void ir_free(struct dmar_unit *u, struct dmar_ir *ir)
{
	const struct dmar_os *os = &u->sys->os;
	while (ir->irqs) {
		struct dmar_irq *q = ir->irqs;
		ir->irqs = q->next;
		dmar__os_free(os, q, sizeof(*q));
	}
	if (ir->irt) {
		void *va = (void *)(uintptr_t)ir->irt;
		if (ir->contig)
			os->ops->contig_free(os->ctx, va, ir->irt_phys,
					     ir_table_bytes(ir->entries) / DMAR_PAGE_SIZE);
		else
			os->ops->page_free(os->ctx, va, ir->irt_phys);
	}
	dmar__os_free(os, ir->used, ir_bitmap_bytes(ir->entries));
	dmar__os_free(os, ir, sizeof(*ir));
}

/* A zeroed table of `entries` entries (one page, or contiguous pages from the OS
 * layer's contig_alloc), its bitmap and state; NULL with *rc set on failure. */
static struct dmar_ir *ir_alloc(struct dmar_unit *u, unsigned entries, int *rc)
{
	const struct dmar_os *os = &u->sys->os;
	size_t bytes = ir_table_bytes(entries);
	struct dmar_ir *ir;
	void *va;

	*rc = DMAR_ENOMEM;
	if (bytes > DMAR_PAGE_SIZE && !os->ops->contig_alloc) {
		dmar__log(u->sys, DMAR_LOG_ERR,
			 "dmar%u: hw.dmar.ir_entries=%u needs %u contiguous pages, and the OS "
			 "layer has no contig_alloc", u->index, entries,
			 (unsigned)(bytes / DMAR_PAGE_SIZE));
		*rc = DMAR_ENOTSUP;
		return NULL;
	}
	ir = dmar__os_alloc(os, sizeof(*ir));
	if (!ir)
		return NULL;
	ir->entries = entries;
	ir->used = dmar__os_alloc(os, ir_bitmap_bytes(entries));
	if (!ir->used) {
		ir_free(u, ir);
		return NULL;
	}
	if (bytes > DMAR_PAGE_SIZE) {
		va = os->ops->contig_alloc(os->ctx, bytes / DMAR_PAGE_SIZE, DMAR_PAGE_SIZE,
					   UINT64_MAX, &ir->irt_phys);
		ir->contig = true;
	} else {
		va = os->ops->page_alloc(os->ctx, &ir->irt_phys);
	}
	if (!va) {
		ir_free(u, ir);
		return NULL;
	}
	/* contig_alloc's pages are zeroed as page_alloc's are; the unit must see it so. */
	ir->irt = va;
	unit_flush_table(u, va, bytes);
	*rc = DMAR_OK;
	return ir;
}

/* IRTA.S: the table holds 2^(S+1) entries. */
static unsigned irta_s(unsigned entries)
{
	return (unsigned)dmar_ffs64(entries) - 1u;
}

static bool block_free(const uint64_t *used, unsigned start, unsigned count)
{
	if (count >= 64) {
		for (unsigned w = start / 64; w < (start + count) / 64; w++)
			if (used[w])
				return false;
		return true;
	}
	uint64_t mask = ((1ull << count) - 1) << (start % 64);
	return !(used[start / 64] & mask);
}

static void block_mark(struct dmar_ir *ir, unsigned start, unsigned count, bool on)
{
	for (unsigned i = start; i < start + count; i++) {
		if (on)
			ir->used[i / 64] |= 1ull << (i % 64);
		else
			ir->used[i / 64] &= ~(1ull << (i % 64));
	}
	if (on)
		ir->nused += count;
	else
		ir->nused -= count;
}

/* The lowest free block of `count` entries aligned to `count` (a multi-message MSI's
 * sub-handles are added to its base; an aligned block also lets one index-selective
 * invalidation cover it). */
static int block_find(const struct dmar_ir *ir, unsigned count, unsigned *start)
{
	for (unsigned i = 0; i + count <= ir->entries; i += count) {
		if (block_free(ir->used, i, count)) {
			*start = i;
			return DMAR_OK;
		}
	}
	return DMAR_ENOSPC;
}

/* Writes a whole entry of a not-present slot: the high half first, the low half (with
 * the present bit) last, so the unit never sees a present entry with a stale source
 * check. IR lock held. */
static void entry_install(struct dmar_unit *u, struct dmar_ir *ir, unsigned index,
			  uint64_t lo, uint64_t hi)
{
	volatile uint64_t *e = ir->irt + 2u * index;
	e[1] = hi;
	u->sys->os.ops->wmb(u->sys->os.ctx);
	e[0] = lo;
	unit_flush_table(u, (const void *)(uintptr_t)e, 16);
}

/* Clears an entry: the present bit first. IR lock held. */
static void entry_clear(struct dmar_unit *u, struct dmar_ir *ir, unsigned index)
{
	volatile uint64_t *e = ir->irt + 2u * index;
	e[0] = 0;
	u->sys->os.ops->wmb(u->sys->os.ctx);
	e[1] = 0;
	unit_flush_table(u, (const void *)(uintptr_t)e, 16);
}

/* Invalidates the interrupt entry cache for the aligned block [index, index+count) and
 * waits: one index-selective invalidation when its mask fits ECAP.MHMV, else a global
 * one. Unit lock held. */
static int iec_flush(struct dmar_unit *u, unsigned index, unsigned count)
{
	unsigned im = (unsigned)dmar_ffs64(count);
	bool global = im > VTD_ECAP_MHMV(u->ecap);
	int rc = dmar__inval_iec(u, global, global ? 0 : index, global ? 0 : im);
	if (!rc)
		rc = dmar__inval_sync(u);
	return rc;
}

/* ---- enable / disable ---- */

/* Whether the unit may remap interrupts; DMAR_ENOTSUP with the reason logged. */
static int ir_allowed(struct dmar_unit *u)
{
	struct dmar_system *sys = u->sys;
	unsigned n = sys->cfg.ir_entries;
	if (!sys->cfg.ir) {
		dmar__log(sys, DMAR_LOG_INFO, "dmar%u: interrupt remapping not enabled: turned "
					     "off by hw.dmar.ir=0", u->index);
		return DMAR_ENOTSUP;
	}
	if (!(u->ecap & VTD_ECAP_IR)) {
		dmar__log(sys, DMAR_LOG_ERR, "dmar%u: interrupt remapping not enabled: the unit "
					    "has none (ECAP.IR=0)", u->index);
		return DMAR_ENOTSUP;
	}
	if (sys->table && !(sys->table->flags & DMAR_ACPI_INTR_REMAP)) {
		dmar__log(sys, DMAR_LOG_ERR, "dmar%u: interrupt remapping not enabled: the DMAR "
					    "table does not declare it (INTR_REMAP flag clear)",
			 u->index);
		return DMAR_ENOTSUP;
	}
	if (u->inval != &dmar__inval_qi_backend) {
		dmar__log(sys, DMAR_LOG_ERR,
			 "dmar%u: interrupt remapping not enabled: it needs queued invalidation, "
			 "which this unit does not use (%s)", u->index,
			 (u->ecap & VTD_ECAP_QI) ? "hw.dmar.qi=0" : "no ECAP.QI");
		return DMAR_ENOTSUP;
	}
	if (n < 16 || n > 65536 || (n & (n - 1))) {
		dmar__log(sys, DMAR_LOG_ERR, "dmar%u: interrupt remapping not enabled: "
					    "hw.dmar.ir_entries=%u is not a power of two in "
					    "16..65536", u->index, n);
		return DMAR_EINVAL;
	}
	return DMAR_OK;
}

/* Extended interrupt mode: the unit offers it, the embedder's APICs are in x2APIC mode,
 * and the firmware did not opt out. */
static bool ir_want_eim(struct dmar_unit *u)
{
	struct dmar_system *sys = u->sys;
	if (!sys->cfg.x2apic)
		return false;
	if (!(u->ecap & VTD_ECAP_EIM)) {
		dmar__log(sys, DMAR_LOG_WARN,
			 "dmar%u: the local APICs run in x2APIC mode but the unit has no extended "
			 "interrupt mode (ECAP.EIM=0): destinations above 255 are refused",
			 u->index);
		return false;
	}
	if (sys->table && (sys->table->flags & DMAR_ACPI_X2APIC_OPT_OUT)) {
		dmar__log(sys, DMAR_LOG_INFO,
			 "dmar%u: the DMAR table opts out of x2APIC (X2APIC_OPT_OUT): extended "
			 "interrupt mode off, destinations above 255 are refused", u->index);
		return false;
	}
	return true;
}

/* Points the unit at the table and turns remapping on. Unit lock held. */
static int ir_program(struct dmar_unit *u, struct dmar_ir *ir)
{
	uint64_t irta = (ir->irt_phys & VTD_IRTA_ADDR_MASK) | VTD_IRTA_S(irta_s(ir->entries)) |
			(ir->eim ? VTD_IRTA_EIME : 0);
	int rc;
	dmar__unit_write64(u, VTD_IRTA_REG, irta);
	rc = dmar__unit_gcmd_oneshot(u, (uint32_t)VTD_GCMD_SIRTP, (uint32_t)VTD_GSTS_IRTPS,
				     "interrupt remapping table pointer");
	/* Whatever the cache holds came from another table: units with CAP.ESIRTPS empty
	 * it on SIRTP, the others need a global invalidation (done on both). */
	if (!rc)
		rc = dmar__inval_iec(u, true, 0, 0);
	if (!rc)
		rc = dmar__inval_sync(u);
	/* CFI takes effect with IRE: set it first so no interrupt sees the other state. */
	if (!rc) {
		rc = dmar__unit_gcmd_enable(u, (uint32_t)VTD_GCMD_CFI, (uint32_t)VTD_GSTS_CFIS,
					    ir->compat, "compatibility format interrupts");
		if (rc == DMAR_ETIMEDOUT && ir->compat) {
			/* Not worth failing for: the unit blocks them, as it should by
			 * default, or ignores CFI altogether. */
			dmar__log(u->sys, DMAR_LOG_WARN,
				 "dmar%u: the unit did not acknowledge GCMD.CFI (GSTS.CFIS stays "
				 "clear): hw.dmar.ir_compat=1 not in effect (QEMU 7.2 does not "
				 "implement CFI and lets compatibility-format interrupts pass "
				 "anyway)", u->index);
			ir->compat = false;
			rc = DMAR_OK;
		}
	}
	if (!rc)
		rc = dmar__unit_gcmd_enable(u, (uint32_t)VTD_GCMD_IRE, (uint32_t)VTD_GSTS_IRES,
					    true, "interrupt remapping enable");
	return rc;
}

int dmar_ir_enable(struct dmar_unit *u)
{
	struct dmar_system *sys = u->sys;
	const struct dmar_os *os = &sys->os;
	struct dmar_ir *ir;
	int rc;

	os_lock(os, u->lock);
	if (u->ir) {
		/* On, or kept after an enable the unit did not answer (see below). */
		rc = (dmar__unit_read32(u, VTD_GSTS_REG) & VTD_GSTS_IRES) ? DMAR_OK : DMAR_EHW;
		if (rc)
			dmar__log(sys, DMAR_LOG_ERR, "dmar%u: interrupt remapping is half set up "
						    "after a failed enable: dmar_ir_disable it "
						    "first", u->index);
		os_unlock(os, u->lock);
		return rc;
	}
	rc = ir_allowed(u);
	if (rc)
		goto out;
	ir = ir_alloc(u, sys->cfg.ir_entries, &rc);
	if (!ir)
		goto out;
	ir->eim = ir_want_eim(u);
	ir->compat = sys->cfg.ir_compat;
	if (ir->compat && ir->eim)
		dmar__log(sys, DMAR_LOG_INFO,
			 "dmar%u: hw.dmar.ir_compat=1, but extended interrupt mode blocks "
			 "compatibility-format interrupts anyway", u->index);
	rc = ir_program(u, ir);
	if (rc) {
		/* Leave the unit as it was; the table may go only once the unit let go. */
		int off = dmar__unit_gcmd_enable(u, (uint32_t)VTD_GCMD_IRE,
						 (uint32_t)VTD_GSTS_IRES, false,
						 "interrupt remapping disable");
		if (!off)
			off = dmar__unit_gcmd_enable(u, (uint32_t)VTD_GCMD_CFI,
						     (uint32_t)VTD_GSTS_CFIS, false,
						     "compatibility format interrupts");
		if (off) {
			/* The unit may still use it: keep it (unit teardown frees it). */
			os_lock(os, u->ir_lock);
			u->ir = ir;
			os_unlock(os, u->ir_lock);
		} else {
			ir_free(u, ir);
		}
		goto out;
	}
	os_lock(os, u->ir_lock);
	u->ir = ir;
	os_unlock(os, u->ir_lock);
	dmar__log(sys, DMAR_LOG_INFO,
		 "dmar%u: interrupt remapping on: %u entries at 0x%llx, %s, compatibility "
		 "format %s", u->index, ir->entries, (unsigned long long)ir->irt_phys,
		 ir->eim ? "extended interrupt mode (32-bit destinations)"
			 : "xAPIC mode (8-bit destinations)",
		 ir->compat && !ir->eim ? "passes (hw.dmar.ir_compat=1)" : "blocked");
out:
	os_unlock(os, u->lock);
	return rc;
}

/* Takes the state off the unit (both locks held by the caller, or none needed). */
static struct dmar_ir *ir_detach(struct dmar_unit *u)
{
	const struct dmar_os *os = &u->sys->os;
	os_lock(os, u->ir_lock);
	struct dmar_ir *ir = u->ir;
	u->ir = NULL;
	os_unlock(os, u->ir_lock);
	return ir;
}

int dmar_ir_disable(struct dmar_unit *u)
{
	const struct dmar_os *os = &u->sys->os;
	int rc = DMAR_OK;

	os_lock(os, u->lock);
	if (u->ir) {
		rc = dmar__unit_gcmd_enable(u, (uint32_t)VTD_GCMD_IRE, (uint32_t)VTD_GSTS_IRES,
					    false, "interrupt remapping disable");
		/* On a timeout the unit may still read the table: keep it. */
		if (!rc) {
			ir_free(u, ir_detach(u));
			dmar__log(u->sys, DMAR_LOG_INFO, "dmar%u: interrupt remapping off",
				 u->index);
		}
	}
	os_unlock(os, u->lock);
	return rc;
}

void dmar__ir_teardown(struct dmar_unit *u)
{
	if (!u->ir)
		return;
	/* A dead unit gets its memory back anyway: nothing better can be done. */
	if (dmar__unit_read32(u, VTD_GSTS_REG) & VTD_GSTS_IRES)
		(void)dmar__unit_gcmd_enable(u, (uint32_t)VTD_GCMD_IRE, (uint32_t)VTD_GSTS_IRES,
					     false, "interrupt remapping disable");
	ir_free(u, ir_detach(u));
}

bool dmar_ir_enabled(const struct dmar_unit *u)
{
	const struct dmar_os *os = &u->sys->os;
	os_lock(os, u->ir_lock);
	bool on = u->ir != NULL;
	os_unlock(os, u->ir_lock);
	return on;
}

bool dmar_ir_eim(const struct dmar_unit *u)
{
	const struct dmar_os *os = &u->sys->os;
	os_lock(os, u->ir_lock);
	bool eim = u->ir && u->ir->eim;
	os_unlock(os, u->ir_lock);
	return eim;
}

void dmar_ir_get_info(const struct dmar_unit *u, struct dmar_ir_info *info)
{
	const struct dmar_os *os = &u->sys->os;
	dmar_memset(info, 0, sizeof(*info));
	os_lock(os, u->ir_lock);
	if (u->ir) {
		info->enabled = true;
		info->eim = u->ir->eim;
		info->compat = u->ir->compat && !u->ir->eim;
		info->entries = u->ir->entries;
		info->used = u->ir->nused;
		info->table_phys = u->ir->irt_phys;
	}
	info->iec_global = u->iec_global;
	info->iec_index = u->iec_index;
	os_unlock(os, u->ir_lock);
}

int dmar_ir_entry(struct dmar_unit *u, unsigned index, uint64_t *lo, uint64_t *hi)
{
	const struct dmar_os *os = &u->sys->os;
	int rc = DMAR_ERANGE;
	os_lock(os, u->ir_lock);
	if (u->ir && index < u->ir->entries) {
		*lo = u->ir->irt[2u * index];
		*hi = u->ir->irt[2u * index + 1u];
		rc = DMAR_OK;
	}
	os_unlock(os, u->ir_lock);
	return rc;
}

/* ---- entries ---- */

/* Takes `count` aligned entries on the unit, programs them for `t` with source check
 * `hi`, invalidates them and hands out the handle. Nothing is left programmed or held
 * when it fails. */
static int irq_alloc(struct dmar_unit *u, unsigned count, const struct dmar_irq_target *t,
		     enum dmar_irq_kind kind, uint64_t hi, struct dmar_irq **out)
{
	const struct dmar_os *os = &u->sys->os;
	struct dmar_irq *irq = dmar__os_alloc(os, sizeof(*irq));
	struct dmar_ir *ir;
	unsigned index = 0;
	int rc;

	if (!irq)
		return DMAR_ENOMEM;
	os_lock(os, u->lock);
	ir = u->ir;
	if (!ir) {
		rc = DMAR_ENOENT;
		goto fail;
	}
	rc = dmar__irte_check_target(t, count, ir->eim);
	if (rc)
		goto fail;
	os_lock(os, u->ir_lock);
	rc = count > ir->entries ? DMAR_ENOSPC : block_find(ir, count, &index);
	if (!rc) {
		block_mark(ir, index, count, true);
		for (unsigned i = 0; i < count; i++)
			entry_install(u, ir, index + i, dmar__irte_lo(t, t->vector + i, ir->eim),
				      hi);
	}
	os_unlock(os, u->ir_lock);
	if (rc)
		goto fail;
	rc = iec_flush(u, index, count);
	os_lock(os, u->ir_lock);
	if (rc) {
		for (unsigned i = 0; i < count; i++)
			entry_clear(u, ir, index + i);
		block_mark(ir, index, count, false);
	} else {
		irq->unit = u;
		irq->index = index;
		irq->count = count;
		irq->kind = kind;
		irq->hi = hi;
		irq->target = *t;
		irq->next = ir->irqs;
		if (ir->irqs)
			ir->irqs->prev = irq;
		ir->irqs = irq;
	}
	os_unlock(os, u->ir_lock);
	if (rc) {
		/* Whatever the cache may have taken of them goes too (best effort: the
		 * next allocation of these entries invalidates them again). */
		(void)iec_flush(u, index, count);
		goto fail;
	}
	os_unlock(os, u->lock);
	*out = irq;
	return DMAR_OK;
fail:
	os_unlock(os, u->lock);
	dmar__os_free(os, irq, sizeof(*irq));
	return rc;
}

/* How the unit sees MSIs from a PCI function: the id of the highest bridge that
 * aliases it (a PCIe-to-PCI bridge forwards as its secondary bus: only the bus can be
 * checked, over [that bus, the function's bus]; a conventional bridge as its own id),
 * else the function's own id. DMA-alias quirks are left out: they describe DMA, and a
 * function's MSIs need not carry them (Linux's set_msi_sid makes the same choice). */
static uint64_t msi_source(struct dmar_system *sys, uint16_t segment, uint8_t bus,
			   uint8_t dev, uint8_t fn)
{
	uint64_t hi = dmar__irte_hi(VTD_SVT_SID, VTD_SQ_ALL, VTD_SID(bus, dev, fn));
	struct dmar_pci_bridge up;
	uint8_t b = bus, d = dev, f = fn;
	/* 256 buses bound any real hierarchy, and a looping callback. */
	for (unsigned depth = 0; sys->upstream && depth < 256; depth++) {
		if (sys->upstream(sys->upstream_ctx, segment, b, d, f, &up) != 1)
			break;
		if (up.kind == DMAR_PCI_BRIDGE_PCIE_TO_PCI) {
			unsigned lo = dmar_min_u64(up.secondary_bus, bus);
			unsigned hi_bus = dmar_max_u64(up.secondary_bus, bus);
			hi = dmar__irte_hi(VTD_SVT_BUS, 0, (uint16_t)(lo << 8 | hi_bus));
		} else if (up.kind == DMAR_PCI_BRIDGE_CONVENTIONAL) {
			hi = dmar__irte_hi(VTD_SVT_SID, VTD_SQ_ALL, VTD_SID(up.bus, up.dev, up.fn));
		}
		b = up.bus;
		d = up.dev;
		f = up.fn;
	}
	return hi;
}

int dmar_ir_alloc_msi(struct dmar_system *sys, uint16_t segment, uint8_t bus, uint8_t dev,
		      uint8_t fn, unsigned count, const struct dmar_irq_target *t,
		      struct dmar_irq **out)
{
	*out = NULL;
	if (!t || count == 0 || (count & (count - 1)) || count > 65536 || dev > 31 || fn > 7)
		return DMAR_EINVAL;
	struct dmar_unit *u = dmar_unit_for_device(sys, segment, bus, dev, fn, NULL, NULL);
	if (!u)
		return DMAR_ENOENT;
	return irq_alloc(u, count, t, DMAR_IRQ_MSI, msi_source(sys, segment, bus, dev, fn), out);
}

/* The source id a device scope names: start bus and path, walked through the bridges
 * with the topology callback (8.3.1). */
static bool scope_sid(struct dmar_system *sys, uint16_t segment, const struct dmar_acpi_scope *s,
		      uint16_t *sid)
{
	unsigned bus = s->start_bus;
	if (s->npath == 0)
		return false;
	for (unsigned i = 0; i + 1 < s->npath; i++) {
		uint8_t sub = 0;
		if (!sys->topology)
			return false;
		int sec = sys->topology(sys->topology_ctx, segment, (uint8_t)bus, s->path[i].dev,
					s->path[i].fn, &sub);
		if (sec < 0 || sec > 255)
			return false;
		bus = (unsigned)sec;
	}
	*sid = VTD_SID(bus, s->path[s->npath - 1].dev, s->path[s->npath - 1].fn);
	return true;
}

/* The unit and source id of the IOAPIC or HPET scope with that enumeration id. */
static int scope_source(struct dmar_system *sys, uint8_t type, uint8_t id,
			struct dmar_unit **unit, uint16_t *sid)
{
	const char *what = type == DMAR_SCOPE_IOAPIC ? "IOAPIC" : "HPET";
	if (!sys->table)
		return DMAR_ENOENT;
	unsigned n = dmar_acpi_count(sys->table, DMAR_ACPI_DRHD);
	for (unsigned i = 0; i < n; i++) {
		struct dmar_acpi_drhd d;
		struct dmar_acpi_scope_iter it;
		struct dmar_acpi_scope s;
		if (dmar_acpi_drhd_get(sys->table, i, &d) != DMAR_OK ||
		    dmar_acpi_scope_begin(sys->table, d.offset, &it) != DMAR_OK)
			continue;
		while (dmar_acpi_scope_next(&it, &s)) {
			if (s.type != type || s.enum_id != id)
				continue;
			*unit = NULL;
			for (unsigned k = 0; k < sys->nunits; k++)
				if (sys->units[k]->base == d.base)
					*unit = sys->units[k];
			if (!*unit) {
				dmar__log(sys, DMAR_LOG_ERR, "%s %u: its DRHD's unit at 0x%llx is "
							    "not in use", what, id,
					 (unsigned long long)d.base);
				return DMAR_ENOENT;
			}
			if (!scope_sid(sys, d.segment, &s, sid)) {
				dmar__log(sys, DMAR_LOG_ERR, "%s %u: its scope's path cannot be "
							    "resolved to a source id (bridges "
							    "without a topology callback?)", what,
					 id);
				return DMAR_ENOENT;
			}
			return DMAR_OK;
		}
	}
	return DMAR_ENOENT;
}

int dmar_ir_alloc_ioapic(struct dmar_system *sys, uint8_t ioapic_id, unsigned pin,
			 const struct dmar_irq_target *t, struct dmar_irq **out)
{
	struct dmar_unit *u;
	uint16_t sid;
	(void)pin; /* every pin has its own entry; the unit cannot tell pins apart */
	*out = NULL;
	if (!t)
		return DMAR_EINVAL;
	int rc = scope_source(sys, DMAR_SCOPE_IOAPIC, ioapic_id, &u, &sid);
	if (rc)
		return rc;
	return irq_alloc(u, 1, t, DMAR_IRQ_IOAPIC, dmar__irte_hi(VTD_SVT_SID, VTD_SQ_ALL, sid),
			 out);
}

int dmar_ir_alloc_hpet(struct dmar_system *sys, uint8_t hpet_id, unsigned timer,
		       const struct dmar_irq_target *t, struct dmar_irq **out)
{
	struct dmar_unit *u;
	uint16_t sid;
	(void)timer;
	*out = NULL;
	if (!t)
		return DMAR_EINVAL;
	int rc = scope_source(sys, DMAR_SCOPE_HPET, hpet_id, &u, &sid);
	if (rc)
		return rc;
	/* The function number is left unchecked (SQ 3): HPET blocks on real platforms
	 * send with other function numbers than their scope names (Linux does the same). */
	return irq_alloc(u, 1, t, DMAR_IRQ_HPET,
			 dmar__irte_hi(VTD_SVT_SID, VTD_SQ_IGNORE_FN, sid), out);
}

int dmar_ir_set_target(struct dmar_irq *irq, const struct dmar_irq_target *t)
{
	struct dmar_unit *u = irq->unit;
	const struct dmar_os *os = &u->sys->os;
	struct dmar_ir *ir;
	int rc;

	os_lock(os, u->lock);
	ir = u->ir;
	rc = ir ? dmar__irte_check_target(t, irq->count, ir->eim) : DMAR_ENOENT;
	if (!rc) {
		os_lock(os, u->ir_lock);
		for (unsigned i = 0; i < irq->count; i++) {
			volatile uint64_t *e = ir->irt + 2u * (irq->index + i);
			/* Only the low half changes (the source check stays): one store. */
			e[0] = dmar__irte_lo(t, t->vector + i, ir->eim);
			unit_flush_table(u, (const void *)(uintptr_t)e, 16);
		}
		irq->target = *t;
		os_unlock(os, u->ir_lock);
		rc = iec_flush(u, irq->index, irq->count);
	}
	os_unlock(os, u->lock);
	return rc;
}

int dmar_ir_free(struct dmar_irq *irq)
{
	struct dmar_unit *u = irq->unit;
	const struct dmar_os *os = &u->sys->os;
	struct dmar_ir *ir;
	int rc = DMAR_OK;

	os_lock(os, u->lock);
	ir = u->ir;
	if (ir) {
		os_lock(os, u->ir_lock);
		for (unsigned i = 0; i < irq->count; i++)
			entry_clear(u, ir, irq->index + i);
		block_mark(ir, irq->index, irq->count, false);
		if (irq->prev)
			irq->prev->next = irq->next;
		else
			ir->irqs = irq->next;
		if (irq->next)
			irq->next->prev = irq->prev;
		os_unlock(os, u->ir_lock);
		rc = iec_flush(u, irq->index, irq->count);
	}
	os_unlock(os, u->lock);
	dmar__os_free(os, irq, sizeof(*irq));
	return rc;
}

unsigned dmar_ir_index(const struct dmar_irq *irq)
{
	return irq->index;
}

unsigned dmar_ir_count(const struct dmar_irq *irq)
{
	return irq->count;
}

struct dmar_unit *dmar_ir_unit(const struct dmar_irq *irq)
{
	return irq->unit;
}

void dmar_ir_msi_message(const struct dmar_irq *irq, unsigned sub, uint64_t *addr,
			 uint32_t *data)
{
	/* SHV set, the sub-handle in the data: a multi-message MSI function puts its
	 * message number in the data's low bits, which selects entry index + sub. */
	*addr = dmar__ir_msi_address(irq->index, true);
	*data = sub < irq->count ? sub : 0;
}

uint64_t dmar_ir_ioapic_rte(const struct dmar_irq *irq, bool active_low, bool masked)
{
	return dmar__ir_ioapic_rte(irq->index, irq->target.vector, irq->target.level, active_low,
				   masked);
}

/* ---- fault explanations ---- */

/* Why the unit refused, from the reason and what entry `index` holds now. IR lock held. */
static int explain_entry(const struct dmar_ir *ir, const struct dmar_fault_record *rec,
			 char *buf, size_t len)
{
	unsigned index = rec->intr_index;
	char what[192], extra[128];
	if (index >= ir->entries)
		return dmar__snprintf(buf, len, "index %u is beyond the table's %u entries%s",
				      index, ir->entries,
				      rec->reason == VTD_FR_IR_INDEX_OVER
					      ? " (the source sent a handle nobody gave it)"
					      : "");
	uint64_t lo = ir->irt[2u * index], hi = ir->irt[2u * index + 1u];
	dmar__irte_format(lo, hi, ir->eim, what, sizeof(what));
	switch (rec->reason) {
	case VTD_FR_IR_INDEX_OVER:
		return dmar__snprintf(buf, len, "entry %u: %s; refused: the index was beyond the "
					       "table when the unit saw it", index, what);
	case VTD_FR_IR_ENTRY_P:
		return dmar__snprintf(buf, len, "entry %u: %s; refused: the entry was not present "
					       "(never allocated, or freed)%s", index, what,
				      (lo & VTD_IRTE_LO_P) ? "; it is present now" : "");
	case VTD_FR_IR_IRTE_RSVD:
		dmar__irte_reserved_text(lo, hi, ir->eim, extra, sizeof(extra));
		return dmar__snprintf(buf, len, "entry %u: %s; refused: reserved fields set in "
					       "the entry: %s", index, what,
				      extra[0] ? extra : "none now (the entry changed since)");
	case VTD_FR_IR_SID_ERR:
		return dmar__snprintf(buf, len, "entry %u: %s; refused: the request's source id "
					       "0x%04x is not one the entry admits%s", index, what,
				      rec->sid,
				      dmar__irte_sid_ok(hi, rec->sid)
					      ? " (it admits it now: the entry changed since)"
					      : "");
	default:
		return dmar__snprintf(buf, len, "entry %u: %s", index, what);
	}
}

int dmar__ir_explain(struct dmar_system *sys, const struct dmar_fault_record *rec, char *buf,
		     size_t len)
{
	if (rec->unit >= sys->nunits)
		return dmar__snprintf(buf, len, "no such unit");
	struct dmar_unit *u = sys->units[rec->unit];
	const struct dmar_os *os = &sys->os;
	int n;
	os_lock(os, u->ir_lock);
	const struct dmar_ir *ir = u->ir;
	switch (rec->reason) {
	case VTD_FR_IR_REQ_RSVD:
		n = dmar__snprintf(buf, len, "refused: the request had reserved bits set (address "
					    "above 4 GiB, or data bits 31:16 with SHV): not a "
					    "message dmar_ir_msi_message gave");
		break;
	case VTD_FR_IR_REQ_COMPAT:
		n = dmar__snprintf(buf, len, "refused: a compatibility-format interrupt, blocked "
					    "%s", !ir ? "(interrupt remapping is off now)"
					    : ir->eim ? "in extended interrupt mode"
					    : ir->compat ? "(they pass now: hw.dmar.ir_compat=1)"
							 : "by hw.dmar.ir_compat=0; the source "
							   "must use an IRT entry");
		break;
	case VTD_FR_IR_ROOT_INVAL:
		n = dmar__snprintf(buf, len, "refused: the unit could not read the table (IRTA "
					    "0x%llx)", ir ? (unsigned long long)ir->irt_phys : 0ull);
		break;
	case VTD_FR_IR_PID_ERR:
		n = dmar__snprintf(buf, len, "refused: a posted-interrupt descriptor could not be "
					    "read (this driver programs no posted entries)");
		break;
	default:
		if (!ir)
			n = dmar__snprintf(buf, len, "index %u; interrupt remapping is off now",
					   rec->intr_index);
		else
			n = explain_entry(ir, rec, buf, len);
		break;
	}
	os_unlock(os, u->ir_lock);
	return n;
}
