/*
 * Fault recording (VT-d 7.2.1, 11.4.9, 11.4.14): drain the primary fault recording
 * registers starting at FSTS.FRI while their F bit is set (wrapping around NFR), clear
 * each F bit and the overflow status, and keep the records in a ring.
 */
#include "dmar/fault_reason.h"
#include "dmar_internal.h"

int fault_ring_init(struct dmar_system *sys)
{
	bool failed;
	sys->ring_size = sys->cfg.fault_log_size ? sys->cfg.fault_log_size : 1;
	sys->ring = os_alloc(&sys->os, sys->ring_size * sizeof(*sys->ring));
	if (!sys->ring)
		return DMAR_ENOMEM;
	sys->fault_lock = os_lock_create(&sys->os, &failed);
	return failed ? DMAR_ENOMEM : DMAR_OK;
}

void fault_ring_fini(struct dmar_system *sys)
{
	os_free(&sys->os, sys->ring, sys->ring_size * sizeof(*sys->ring));
	os_lock_destroy(&sys->os, sys->fault_lock);
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

static void report(struct dmar_system *sys, const struct dmar_fault_record *rec)
{
	char line[512];
	dmar_fault_format(sys, rec, line, sizeof(line));
	dmar_log(sys, DMAR_LOG_ERR, "%s", line);
	if (sys->fault_cb)
		sys->fault_cb(sys->fault_cb_ctx, rec);
}

int fault_drain_unit(struct dmar_unit *u)
{
	uint32_t fsts = unit_read32(u, VTD_FSTS_REG);
	int drained = 0;
	if (fsts & VTD_FSTS_PPF) {
		unsigned i = (unsigned)VTD_FSTS_FRI(fsts);
		if (i >= u->nfr)
			i = 0;
		/* At most NFR records can be pending; never loop on a stuck F bit. */
		for (unsigned n = 0; n < u->nfr; n++) {
			unsigned off = u->frcd_off + i * VTD_FRCD_SIZE;
			uint64_t hi = unit_read64(u, off + 8);
			if (!(hi & VTD_FRCD_HI_F))
				break;
			uint64_t lo = unit_read64(u, off);
			struct dmar_fault_record rec = {
				.unit = u->index,
				.segment = u->segment,
				.sid = (uint16_t)VTD_FRCD_HI_SID(hi),
				.addr = lo & VTD_FRCD_LO_FI_MASK,
				.reason = (uint8_t)VTD_FRCD_HI_FR(hi),
				.is_read = (hi & VTD_FRCD_HI_T) != 0,
				.has_pasid = (hi & VTD_FRCD_HI_PP) != 0,
				.pasid = (uint32_t)VTD_FRCD_HI_PV(hi),
			};
			/* F is write-1-to-clear in the upper dword. */
			unit_write32(u, off + 12, (uint32_t)(VTD_FRCD_HI_F >> 32));
			ring_push(u->sys, &rec);
			report(u->sys, &rec);
			drained++;
			i = (i + 1) % u->nfr;
		}
	}
	if (fsts & VTD_FSTS_PFO) {
		os_lock(&u->sys->os, u->sys->fault_lock);
		u->sys->fault_counters.overflows++;
		os_unlock(&u->sys->os, u->sys->fault_lock);
		dmar_log(u->sys, DMAR_LOG_WARN,
			 "dmar%u: fault overflow: the unit dropped faults it could not record",
			 u->index);
	}
	/* Clear the write-1-to-clear fault status bits we acted on (not IQE: QI owns it). */
	if (fsts & (VTD_FSTS_PFO | VTD_FSTS_AFO | VTD_FSTS_APF))
		unit_write32(u, VTD_FSTS_REG,
			     fsts & (uint32_t)(VTD_FSTS_PFO | VTD_FSTS_AFO | VTD_FSTS_APF));
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
	unit_write32(u, VTD_FECTL_REG, (uint32_t)VTD_FECTL_IM);
	if (enable) {
		unit_write32(u, VTD_FEDATA_REG, data);
		unit_write32(u, VTD_FEADDR_REG, (uint32_t)addr);
		unit_write32(u, VTD_FEUADDR_REG, (uint32_t)(addr >> 32));
		unit_write32(u, VTD_FECTL_REG, 0);
	}
	os_unlock(os, u->lock);
	return DMAR_OK;
}

int dmar_fault_poll(struct dmar_system *sys)
{
	int total = 0;
	for (unsigned i = 0; i < sys->nunits; i++)
		total += fault_drain_unit(sys->units[i]);
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
		return dmar_snprintf(buf, len, "no such unit");
	struct dmar_unit *u = sys->units[rec->unit];
	struct dmar_domain *dom = dmar_device_domain(u, rec->sid);
	if (!dom)
		return dmar_snprintf(buf, len, "device is attached to no domain "
					       "(context entry not present)");
	if (dom->passthrough_tt)
		return dmar_snprintf(buf, len, "domain %u is pass-through", dom->did);
	if (dom->width < 64 && rec->addr >= (1ull << dom->width))
		return dmar_snprintf(buf, len, "domain %u: address beyond its %u-bit width",
				     dom->did, dom->width);
	struct pgtable_walk w;
	os_lock(&sys->os, dom->lock);
	int rc = pgtable_explain(&dom->pt, rec->addr, &w);
	os_unlock(&sys->os, dom->lock);
	if (rc)
		return dmar_snprintf(buf, len, "domain %u: walk failed (%s)", dom->did,
				     dmar_strerror(rc));
	char what[128];
	pgtable_walk_format(&w, what, sizeof(what));
	return dmar_snprintf(buf, len, "domain %u (%u-level): %s", dom->did, dom->pt.levels,
			     what);
}

int dmar_fault_format(struct dmar_system *sys, const struct dmar_fault_record *rec,
		      char *buf, size_t len)
{
	char walk[160];
	explain_walk(sys, rec, walk, sizeof(walk));
	return dmar_snprintf(buf, len,
			     "dmar%u: DMA %s fault #%llu from %04x:%02x:%02x.%x (sid 0x%04x) at "
			     "0x%llx: reason 0x%02x (%s); walk: %s",
			     rec->unit, rec->is_read ? "read" : "write",
			     (unsigned long long)rec->seq, rec->segment, rec->sid >> 8,
			     (rec->sid >> 3) & 0x1f, rec->sid & 7, rec->sid,
			     (unsigned long long)rec->addr, rec->reason,
			     dmar_fault_reason_text(rec->reason), walk);
}
