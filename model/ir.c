/*
 * ir.c - interrupt remapping (VT-d chapter 5): the interrupt remapping table latched by
 * SIRTP, the interrupt entry cache (IEC) and its invalidation (6.5.2.7), and the
 * translation of one interrupt request with its checks and fault reasons (5.1.4, 7.1.3).
 *
 * The IEC keeps every present, well-formed entry a request used until an IEC
 * invalidation covers its index (and on SIRTP only with CAP.ESIRTPS): a driver that
 * changes an entry without invalidating it sees the old vector, destination and
 * source-id check go on. Not-present and malformed entries are never cached.
 */
#include "model_impl.h"
#include "util.h"

static unsigned iec_bucket(unsigned index)
{
	return (index * 0x9e3779b1u >> 24) & (IEC_BUCKETS - 1u);
}

void dmar__mdl_ir_latch(struct model *m)
{
	uint64_t irta = reg64(m, VTD_IRTA_REG);

	m->irt_base = irta & VTD_IRTA_ADDR_MASK;
	m->irt_entries = VTD_IRT_ENTRIES(irta);
	m->irt_eime = m->cfg.eim && (irta & VTD_IRTA_EIME);
	m->stats.sirtp++;
	if (m->cfg.esirtps)
		dmar__mdl_iec_invalidate(m, true, 0, 0);
}

void dmar__mdl_iec_invalidate(struct model *m, bool global, unsigned index, unsigned im)
{
	unsigned mask = ~((1u << im) - 1u);
	unsigned b;

	if (global)
		m->stats.iec_inval_global++;
	else
		m->stats.iec_inval_index++;
	for (b = 0; b < IEC_BUCKETS; b++) {
		struct iec_entry **pp = &m->iec[b];

		while (*pp) {
			struct iec_entry *e = *pp;

			if (global || (e->index & mask) == (index & mask)) {
				*pp = e->next;
				m->ops.free(m->ctx, e, sizeof(*e));
				m->iec_count--;
			} else {
				pp = &e->next;
			}
		}
	}
}

void dmar__mdl_iec_fini(struct model *m)
{
	dmar__mdl_iec_invalidate(m, true, 0, 0);
}

unsigned dmar_model_iec_entries(const struct model *m)
{
	return m->iec_count;
}

void dmar_model_irt(const struct model *m, uint64_t *base, unsigned *entries, bool *eime)
{
	if (base)
		*base = m->irt_base;
	if (entries)
		*entries = m->irt_entries;
	if (eime)
		*eime = m->irt_eime;
}

static struct iec_entry *iec_lookup(struct model *m, unsigned index)
{
	struct iec_entry *e;

	for (e = m->iec[iec_bucket(index)]; e; e = e->next)
		if (e->index == index)
			return e;
	return NULL;
}

static void iec_insert(struct model *m, unsigned index, uint64_t lo, uint64_t hi)
{
	struct iec_entry *e = m->ops.alloc(m->ctx, sizeof(*e));

	if (!e)
		return; /* not cached: the next request reads the table again */
	e->index = (uint16_t)index;
	e->lo = lo;
	e->hi = hi;
	e->next = m->iec[iec_bucket(index)];
	m->iec[iec_bucket(index)] = e;
	m->iec_count++;
}

/* Reserved fields of a present entry (9.10), the conditionally reserved ones included:
 * posted mode (not modelled), DST bits outside the xAPIC id without EIME, the reserved
 * delivery modes 3 and 6, SVT 3. */
static bool irte_reserved(const struct model *m, uint64_t lo, uint64_t hi)
{
	unsigned dlm = (unsigned)VTD_IRTE_LO_DLM_GET(lo);

	if ((lo & (VTD_IRTE_LO_RSVD | VTD_IRTE_LO_IM)) || (hi & VTD_IRTE_HI_RSVD))
		return true;
	if (!m->irt_eime && (lo & VTD_IRTE_LO_RSVD_XAPIC))
		return true;
	return dlm == 3 || dlm == 6 || VTD_IRTE_HI_SVT_GET(hi) == 3;
}

/* Source-id verification (SVT, SQ, SID of the entry). */
static bool sid_ok(uint64_t hi, uint16_t sid)
{
	static const uint16_t sq_mask[4] = { 0xffff, 0xfffb, 0xfff9, 0xfff8 };
	uint16_t want = VTD_IRTE_HI_SID_GET(hi);
	unsigned bus = sid >> 8;

	switch (VTD_IRTE_HI_SVT_GET(hi)) {
	case VTD_SVT_NONE:
		return true;
	case VTD_SVT_SID: {
		uint16_t mask = sq_mask[VTD_IRTE_HI_SQ_GET(hi)];

		return (sid & mask) == (want & mask);
	}
	case VTD_SVT_BUS:
		return bus >= (unsigned)(want >> 8) && bus <= (unsigned)(want & 0xff);
	default:
		return false;
	}
}

static bool ir_enabled(const struct model *m)
{
	return (reg32(m, VTD_GSTS_REG) & (uint32_t)VTD_GSTS_IRES) != 0;
}

/* A compatibility-format request passes as it is (5.1.2.1). */
static int pass_compat(struct model *m, uint64_t addr, uint32_t data,
		       struct model_irq_delivery *d)
{
	m->stats.intr_compat++;
	d->remapped = false;
	d->vector = VTD_MSI_DATA_VECTOR(data);
	d->dest = VTD_MSI_ADDR_COMPAT_DEST(addr);
	d->delivery_mode = VTD_MSI_DATA_DLM(data);
	d->logical = (addr & VTD_MSI_ADDR_COMPAT_DM) != 0;
	d->level = (data & VTD_MSI_DATA_TM) != 0;
	d->redirection_hint = (addr & VTD_MSI_ADDR_COMPAT_RH) != 0;
	return 0;
}

static int fault(struct model *m, uint16_t sid, unsigned reason, unsigned index, bool fpd,
		 struct model_irq_delivery *d)
{
	m->stats.intr_faults++;
	d->index = (uint16_t)index;
	if (fpd) {
		m->stats.faults_suppressed++;
		d->recorded = false;
	} else {
		d->recorded = dmar__mdl_fault_record(m, sid, VTD_FRCD_LO_IR(index), reason, false);
	}
	return (int)reason;
}

/* The entry for `index`: from the IEC, or read and checked (then cached). Returns 0 or
 * a fault reason; *fpd says whether the entry suppresses qualified faults. */
static unsigned get_entry(struct model *m, unsigned index, uint64_t *lo, uint64_t *hi,
			  bool *fpd)
{
	struct iec_entry *e = m->cfg.null_hw ? NULL : iec_lookup(m, index);
	uint64_t irte[2];

	*fpd = false;
	if (e) {
		m->stats.iec_hits++;
		*lo = e->lo;
		*hi = e->hi;
		*fpd = (e->lo & VTD_IRTE_LO_FPD) != 0;
		return 0;
	}
	m->stats.iec_misses++;
	if (m->ops.read(m->ctx, m->irt_base + (uint64_t)index * 16u, irte, sizeof(irte),
			MODEL_MEM_TABLE) != 0)
		return VTD_FR_IR_ROOT_INVAL;
	*fpd = (irte[0] & VTD_IRTE_LO_FPD) != 0;
	if (!(irte[0] & VTD_IRTE_LO_P))
		return VTD_FR_IR_ENTRY_P;
	if (irte_reserved(m, irte[0], irte[1]))
		return VTD_FR_IR_IRTE_RSVD;
	if (!m->cfg.null_hw)
		iec_insert(m, index, irte[0], irte[1]);
	*lo = irte[0];
	*hi = irte[1];
	return 0;
}

int dmar_model_interrupt(struct model *m, uint16_t sid, uint64_t addr, uint32_t data,
			 struct model_irq_delivery *out)
{
	struct model_irq_delivery scratch, *d = out ? out : &scratch;
	uint64_t lo = 0, hi = 0;
	unsigned index, r;
	bool fpd;

	dmar_memset(d, 0, sizeof(*d));
	/* Only a write into the interrupt window is an interrupt request at all. */
	if (VTD_MSI_ADDR_HEAD((uint32_t)addr) != 0xfee)
		return MODEL_DMA_BUS_ERROR;
	m->stats.intr_requests++;
	if (!ir_enabled(m))
		return pass_compat(m, addr, data, d);
	if (addr >> 32)
		return fault(m, sid, VTD_FR_IR_REQ_RSVD, 0, false, d);
	if (!(addr & VTD_MSI_ADDR_IF)) {
		/* Blocked under EIME whatever CFIS says (5.1.2.1). */
		if (m->irt_eime || !(reg32(m, VTD_GSTS_REG) & (uint32_t)VTD_GSTS_CFIS))
			return fault(m, sid, VTD_FR_IR_REQ_COMPAT, 0, false, d);
		return pass_compat(m, addr, data, d);
	}
	index = VTD_MSI_ADDR_HANDLE_GET(addr);
	if (addr & VTD_MSI_ADDR_SHV) {
		if (data & VTD_MSI_DATA_RSVD_SHV)
			return fault(m, sid, VTD_FR_IR_REQ_RSVD, 0, false, d);
		index += VTD_MSI_DATA_SUBHANDLE(data);
	}
	if (index >= m->irt_entries)
		return fault(m, sid, VTD_FR_IR_INDEX_OVER, index & 0xffffu, false, d);
	r = get_entry(m, index, &lo, &hi, &fpd);
	if (r)
		return fault(m, sid, r, index, fpd && r != VTD_FR_IR_ROOT_INVAL, d);
	if (!sid_ok(hi, sid))
		return fault(m, sid, VTD_FR_IR_SID_ERR, index, fpd, d);
	m->stats.intr_remapped++;
	d->remapped = true;
	d->index = (uint16_t)index;
	d->vector = (uint8_t)VTD_IRTE_LO_V_GET(lo);
	d->dest = m->irt_eime ? VTD_IRTE_LO_DST_GET(lo) : VTD_IRTE_LO_DST_XAPIC_GET(lo);
	d->delivery_mode = (unsigned)VTD_IRTE_LO_DLM_GET(lo);
	d->logical = (lo & VTD_IRTE_LO_DM) != 0;
	d->level = (lo & VTD_IRTE_LO_TM) != 0;
	d->redirection_hint = (lo & VTD_IRTE_LO_RH) != 0;
	return 0;
}
