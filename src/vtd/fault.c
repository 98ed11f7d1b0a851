/*
 * Fault recording (VT-d 7.2.1, 11.4.9, 11.4.14): drain the primary fault recording
 * registers starting at FSTS.FRI while their F bit is set (wrapping around NFR), clear
 * each F bit and the overflow status, and keep the records in a ring. DMA faults are
 * explained by a walk of the device's domain, interrupt-remapping faults (reasons
 * 0x20-0x27: FI[63:48] is the interrupt index) by the IRT entry (ir.c).
 */
#include "dmar/fault_reason.h"
#include "dmar_internal.h"

int dmar__fault_ring_init(struct dmar_system *sys)
{
	bool failed;
	sys->ring_size = sys->cfg.fault_log_size ? sys->cfg.fault_log_size : 1;
	sys->ring = dmar__os_alloc(&sys->os, sys->ring_size * sizeof(*sys->ring));
	if (!sys->ring)
		return DMAR_ENOMEM;
	sys->fault_lock = dmar__os_lock_create(&sys->os, &failed);
	return failed ? DMAR_ENOMEM : DMAR_OK;
}

void dmar__fault_ring_fini(struct dmar_system *sys)
{
	dmar__os_free(&sys->os, sys->ring, sys->ring_size * sizeof(*sys->ring));
	dmar__os_lock_destroy(&sys->os, sys->fault_lock);
	sys->ring = NULL;
	sys->fault_lock = NULL;
}

static void ring_push(struct dmar_system *sys, struct dmar_fault_record *rec)
{
	os_lock(&sys->os, sys->fault_lock);
	rec->seq = ++sys->fault_seq;
	sys->fault_counters.recorded++;
	if (sys->ring_count == sys->ring_size) {
		sys->ring_head = (sys->ring_head + 1) % sys->ring_size;
		sys->ring_count--;
		sys->fault_counters.dropped++;
	}
	sys->ring[(sys->ring_head + sys->ring_count) % sys->ring_size] = *rec;
	sys->ring_count++;
	os_unlock(&sys->os, sys->fault_lock);
}

static int fault_format_record(const struct dmar_fault_record *rec, char *buf, size_t len);

static void report(struct dmar_system *sys, const struct dmar_fault_record *rec, bool explain)
{
	char line[512];
	if (explain)
		dmar_fault_format(sys, rec, line, sizeof(line));
	else
		fault_format_record(rec, line, sizeof(line));
	dmar__log(sys, DMAR_LOG_ERR, "%s", line);
	dmar_fault_fn cb;
	void *cb_ctx;
	os_lock(&sys->os, sys->fault_lock);
	cb = sys->fault_cb;
	cb_ctx = sys->fault_cb_ctx;
	os_unlock(&sys->os, sys->fault_lock);
	if (cb)
		cb(cb_ctx, rec);
}

/* Records taken from the registers in one go, reported after the register lock is let
 * go (reporting may log at length and, when explaining, take other locks). */
#define FAULT_BATCH 16u
/* Records drained per call, in recording registers: a device that keeps faulting must
 * not hold the caller (an interrupt handler) for ever; the next call goes on. */
#define FAULT_MAX_ROUNDS 4u

/* Takes up to `max` pending records off the registers in one scan of all of them from
 * FSTS.FRI round. (FRI is only updated when PPF goes from clear to set: under a stream
 * of faults it points at a slot drained long ago, so a scan that stopped at the first
 * clear slot would find nothing, for good.) Fault register lock held. */
static unsigned take_records(struct dmar_unit *u, struct dmar_fault_record *out, unsigned max)
{
	uint32_t fsts = dmar__unit_read32(u, VTD_FSTS_REG);
	unsigned n = 0;
	if (!(fsts & VTD_FSTS_PPF))
		return 0;
	unsigned i = (unsigned)VTD_FSTS_FRI(fsts);
	if (i >= u->nfr)
		i = 0;
	for (unsigned k = 0; k < u->nfr && n < max; k++, i = (i + 1) % u->nfr) {
		unsigned off = u->frcd_off + i * VTD_FRCD_SIZE;
		uint64_t hi = dmar__unit_read64(u, off + 8);
		if (!(hi & VTD_FRCD_HI_F))
			continue;
		uint64_t lo = dmar__unit_read64(u, off);
		uint16_t sid = (uint16_t)VTD_FRCD_HI_SID(hi);
		uint8_t reason = (uint8_t)VTD_FRCD_HI_FR(hi);
		bool intr = VTD_FR_IS_IR(reason);
		out[n++] = (struct dmar_fault_record){
			.unit = u->index,
			.segment = u->segment,
			.sid = sid,
			.addr = lo & VTD_FRCD_LO_FI_MASK,
			.reason = reason,
			.is_read = !intr && (hi & VTD_FRCD_HI_T) != 0,
			.has_pasid = (hi & VTD_FRCD_HI_PP) != 0,
			.pasid = (uint32_t)VTD_FRCD_HI_PV(hi),
			.did = intr ? -1 : dmar__context_did_peek(u, sid),
			.is_intr = intr,
			.intr_index = intr ? VTD_FRCD_LO_IR_INDEX(lo) : 0,
		};
		/* F is write-1-to-clear in the upper dword. */
		dmar__unit_write32(u, off + 12, (uint32_t)(VTD_FRCD_HI_F >> 32));
	}
	return n;
}

int dmar__fault_drain_unit(struct dmar_unit *u, bool explain)
{
	struct dmar_system *sys = u->sys;
	struct dmar_fault_record batch[FAULT_BATCH];
	unsigned budget = FAULT_MAX_ROUNDS * u->nfr, n;
	int drained = 0;
	/* Scan again while PPF stays set: the unit may record while we drain. */
	while (budget) {
		os_lock(&sys->os, u->fault_lock);
		n = take_records(u, batch, budget < FAULT_BATCH ? budget : FAULT_BATCH);
		os_unlock(&sys->os, u->fault_lock);
		if (!n)
			break;
		for (unsigned k = 0; k < n; k++) {
			ring_push(sys, &batch[k]);
			report(sys, &batch[k], explain);
		}
		drained += (int)n;
		budget -= n;
	}
	/* Clear the write-1-to-clear status bits acted on (not IQE: QI owns it). */
	os_lock(&sys->os, u->fault_lock);
	uint32_t fsts = dmar__unit_read32(u, VTD_FSTS_REG) &
			(uint32_t)(VTD_FSTS_PFO | VTD_FSTS_AFO | VTD_FSTS_APF);
	if (fsts)
		dmar__unit_write32(u, VTD_FSTS_REG, fsts);
	os_unlock(&sys->os, u->fault_lock);
	if (fsts & VTD_FSTS_PFO) {
		os_lock(&sys->os, sys->fault_lock);
		sys->fault_counters.overflows++;
		os_unlock(&sys->os, sys->fault_lock);
		dmar__log(sys, DMAR_LOG_WARN,
			 "dmar%u: fault overflow: the unit dropped faults it could not record",
			 u->index);
	}
	return drained;
}

int dmar_unit_set_fault_interrupt(struct dmar_unit *u, uint32_t data, uint64_t addr,
				  bool enable)
{
	const struct dmar_os *os = &u->sys->os;
	if (enable && (addr >> 20) != 0xfee)
		return DMAR_EINVAL;
	os_lock(os, u->lock);
	/* Mask first so no interrupt is sent half-programmed; unmask last (10.4.6). */
	dmar__unit_write32(u, VTD_FECTL_REG, (uint32_t)VTD_FECTL_IM);
	if (enable) {
		dmar__unit_write32(u, VTD_FEDATA_REG, data);
		dmar__unit_write32(u, VTD_FEADDR_REG, (uint32_t)addr);
		dmar__unit_write32(u, VTD_FEUADDR_REG, (uint32_t)(addr >> 32));
		dmar__unit_write32(u, VTD_FECTL_REG, 0);
	}
	os_unlock(os, u->lock);
	return DMAR_OK;
}

int dmar_fault_poll(struct dmar_system *sys)
{
	int total = 0;
	for (unsigned i = 0; i < sys->nunits; i++)
		total += dmar__fault_drain_unit(sys->units[i], true);
	return total;
}

int dmar_fault_poll_irq(struct dmar_system *sys)
{
	int total = 0;
	for (unsigned i = 0; i < sys->nunits; i++)
		total += dmar__fault_drain_unit(sys->units[i], false);
	return total;
}

unsigned dmar_fault_read(struct dmar_system *sys, struct dmar_fault_record *out, unsigned max)
{
	unsigned n = 0;
	os_lock(&sys->os, sys->fault_lock);
	while (n < max && sys->ring_count) {
		out[n++] = sys->ring[sys->ring_head];
		sys->ring_head = (sys->ring_head + 1) % sys->ring_size;
		sys->ring_count--;
	}
	os_unlock(&sys->os, sys->fault_lock);
	return n;
}

void dmar_fault_get_counters(const struct dmar_system *sys, struct dmar_fault_counters *c)
{
	os_lock(&sys->os, sys->fault_lock);
	*c = sys->fault_counters;
	os_unlock(&sys->os, sys->fault_lock);
}

void dmar_fault_set_callback(struct dmar_system *sys, dmar_fault_fn fn, void *ctx)
{
	os_lock(&sys->os, sys->fault_lock);
	sys->fault_cb = fn;
	sys->fault_cb_ctx = ctx;
	os_unlock(&sys->os, sys->fault_lock);
}

static int explain_walk(struct dmar_system *sys, const struct dmar_fault_record *rec,
			char *buf, size_t len)
{
	if (rec->unit >= sys->nunits)
		return dmar__snprintf(buf, len, "no such unit");
	if (rec->did < 0)
		return dmar__snprintf(buf, len, "device was attached to no domain "
					       "(context entry not present)");
	struct dmar_unit *u = sys->units[rec->unit];
	/* The domain the device was in when the fault was drained, pinned while walked. */
	struct dmar_domain *dom = dmar__domain_pin(u, rec->did);
	int n;
	if (!dom)
		return dmar__snprintf(buf, len, "domain %d (the device's when drained) no longer "
					       "exists", rec->did);
	if (dom->passthrough_tt) {
		n = dmar__snprintf(buf, len, "domain %u is pass-through", dom->did);
	} else if (dom->width < 64 && rec->addr >= (1ull << dom->width)) {
		n = dmar__snprintf(buf, len, "domain %u: address beyond its %u-bit width",
				  dom->did, dom->width);
	} else {
		struct pgtable_walk w;
		os_lock(&sys->os, dom->lock);
		int rc = dmar__pgtable_explain(&dom->pt, rec->addr, &w);
		os_unlock(&sys->os, dom->lock);
		if (rc) {
			n = dmar__snprintf(buf, len, "domain %u: walk failed (%s)", dom->did,
					  dmar_strerror(rc));
		} else {
			char what[128];
			dmar__pgtable_walk_format(&w, what, sizeof(what));
			n = dmar__snprintf(buf, len, "domain %u (%u-level): %s", dom->did,
					  dom->pt.levels, what);
		}
	}
	dmar__domain_unpin(dom);
	return n;
}

/* The record alone, as dmar_fault_format prints it before "; walk: " (or "; IRT: "). */
static int fault_format_record(const struct dmar_fault_record *rec, char *buf, size_t len)
{
	if (rec->is_intr)
		return dmar__snprintf(buf, len,
				      "dmar%u: interrupt fault #%llu from %04x:%02x:%02x.%x (sid "
				      "0x%04x), IRT index %u: reason 0x%02x (%s)",
				      rec->unit, (unsigned long long)rec->seq, rec->segment,
				      rec->sid >> 8, (rec->sid >> 3) & 0x1f, rec->sid & 7,
				      rec->sid, rec->intr_index, rec->reason,
				      dmar_fault_reason_text(rec->reason));
	return dmar__snprintf(buf, len,
			     "dmar%u: DMA %s fault #%llu from %04x:%02x:%02x.%x (sid 0x%04x) at "
			     "0x%llx: reason 0x%02x (%s)",
			     rec->unit, rec->is_read ? "read" : "write",
			     (unsigned long long)rec->seq, rec->segment, rec->sid >> 8,
			     (rec->sid >> 3) & 0x1f, rec->sid & 7, rec->sid,
			     (unsigned long long)rec->addr, rec->reason,
			     dmar_fault_reason_text(rec->reason));
}

int dmar_fault_format(struct dmar_system *sys, const struct dmar_fault_record *rec,
		      char *buf, size_t len)
{
	char head[320], walk[160], alias[96] = "";
	fault_format_record(rec, head, sizeof(head));
	if (rec->is_intr) {
		char irt[384];
		dmar__ir_explain(sys, rec, irt, sizeof(irt));
		return dmar__snprintf(buf, len, "%s; IRT: %s", head, irt);
	}
	if (rec->unit < sys->nunits)
		dmar__attached_alias_note(sys->units[rec->unit], rec->sid, alias, sizeof(alias));
	explain_walk(sys, rec, walk, sizeof(walk));
	return dmar__snprintf(buf, len, "%s%s; walk: %s", head, alias, walk);
}
