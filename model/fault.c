/*
 * fault.c - primary fault logging (VT-d 7.2.1) into the NFR fault recording registers at
 * CAP.FRO, FSTS (PPF, PFO, FRI, IQE) and the fault event (7.3).
 *
 * A fault goes to the register at the next index (wrapping); when that register still
 * holds an unserviced fault (F=1), the fault is lost and PFO is set; while PFO is set no
 * fault is recorded. The fault event is raised when a fault is recorded while none was
 * pending (PPF clear), and when IQE is set.
 */
#include "model_impl.h"

static uint32_t frcd_hi_off(const struct model *m, unsigned i)
{
	return m->frcd_off + i * VTD_FRCD_SIZE + 8u;
}

static bool any_pending(const struct model *m)
{
	unsigned i;

	for (i = 0; i < m->cfg.nfr; i++)
		if (reg64(m, frcd_hi_off(m, i)) & VTD_FRCD_HI_F)
			return true;
	return false;
}

/* Recomputes FSTS.PPF from the F bits; clears FECTL.IP once nothing is pending. */
static void fsts_update(struct model *m)
{
	uint32_t fsts = reg32(m, VTD_FSTS_REG);

	if (any_pending(m))
		fsts |= (uint32_t)VTD_FSTS_PPF;
	else
		fsts &= ~(uint32_t)VTD_FSTS_PPF;
	set_reg32(m, VTD_FSTS_REG, fsts);
	if (!(fsts & (uint32_t)(VTD_FSTS_PPF | VTD_FSTS_RW1C)))
		set_reg32(m, VTD_FECTL_REG, reg32(m, VTD_FECTL_REG) & ~(uint32_t)VTD_FECTL_IP);
}

bool dmar__mdl_fault_record(struct model *m, uint16_t sid, uint64_t addr, unsigned reason,
			    bool is_read)
{
	uint32_t fsts = reg32(m, VTD_FSTS_REG);
	unsigned slot = m->fri_next;
	uint32_t hi = frcd_hi_off(m, slot);
	uint64_t rec;

	if (fsts & (uint32_t)VTD_FSTS_PFO) {
		m->stats.faults_overflowed++;
		return false;
	}
	if (reg64(m, hi) & VTD_FRCD_HI_F) {
		set_reg32(m, VTD_FSTS_REG, fsts | (uint32_t)VTD_FSTS_PFO);
		m->stats.faults_overflowed++;
		return false;
	}
	rec = (uint64_t)sid | VTD_SET(32, 8, reason) | VTD_FRCD_HI_F;
	if (is_read)
		rec |= VTD_FRCD_HI_T;
	set_reg64(m, hi - 8u, addr & VTD_FRCD_LO_FI_MASK);
	set_reg64(m, hi, rec);
	m->fri_next = (slot + 1) % m->cfg.nfr;
	m->stats.faults_recorded++;
	if (!(fsts & (uint32_t)VTD_FSTS_PPF)) {
		fsts = (fsts & ~0xff00u) | (uint32_t)VTD_SET(8, 8, slot) | (uint32_t)VTD_FSTS_PPF;
		set_reg32(m, VTD_FSTS_REG, fsts);
		dmar__mdl_event(m, MODEL_IRQ_FAULT);
	}
	return true;
}

void dmar__mdl_fault_write_fsts(struct model *m, uint32_t val)
{
	uint32_t fsts = reg32(m, VTD_FSTS_REG);
	uint32_t rw1c = (uint32_t)(VTD_FSTS_PFO | VTD_FSTS_IQE);
	bool iqe = (fsts & (uint32_t)VTD_FSTS_IQE) != 0;

	if (m->cfg.afl)
		rw1c |= (uint32_t)(VTD_FSTS_AFO | VTD_FSTS_APF);
	if (m->cfg.dt)
		rw1c |= (uint32_t)(VTD_FSTS_ICE | VTD_FSTS_ITE);
	set_reg32(m, VTD_FSTS_REG, fsts & ~(val & rw1c));
	fsts_update(m);
	/* Clearing IQE lets the queue go on from IQH. */
	if (iqe && (val & (uint32_t)VTD_FSTS_IQE))
		dmar__mdl_qi_process(m);
}

void dmar__mdl_fault_write_frcd(struct model *m, uint32_t rel, uint32_t val)
{
	uint32_t off = m->frcd_off + rel;

	/* Only F (bit 127, i.e. bit 31 of the last dword) is writable: 1 clears it. */
	if ((rel & 15u) != 12u || !(val & (1u << 31)))
		return;
	set_reg32(m, off, reg32(m, off) & ~(1u << 31));
	fsts_update(m);
}

void dmar__mdl_fault_raise_iqe(struct model *m)
{
	uint32_t fsts = reg32(m, VTD_FSTS_REG);
	bool quiet = !(fsts & (uint32_t)(VTD_FSTS_PPF | VTD_FSTS_RW1C));

	set_reg32(m, VTD_FSTS_REG, fsts | (uint32_t)VTD_FSTS_IQE);
	m->stats.qi_errors++;
	if (quiet)
		dmar__mdl_event(m, MODEL_IRQ_FAULT);
}
