/*
 * regs.c - the unit's register file (VT-d 11.4): reset values, read-only and reserved
 * fields, GCMD one-shot and persistent commands with their GSTS status, register-based
 * invalidation (CCMD, IOTLB at ECAP.IRO), the event registers (FECTL, IECTL), and the
 * slow-hardware knobs that hold a status change back for a number of polls.
 */
#include "model_impl.h"
#include "util.h"

/* GCMD bits and the status bit each one drives. */
static const struct {
	uint32_t cmd, sts;
	enum model_ack ack;
	bool persistent;
} gcmd_bits[] = {
	{ (uint32_t)VTD_GCMD_TE, (uint32_t)VTD_GSTS_TES, MODEL_ACK_TE, true },
	{ (uint32_t)VTD_GCMD_SRTP, (uint32_t)VTD_GSTS_RTPS, MODEL_ACK_SRTP, false },
	{ (uint32_t)VTD_GCMD_SFL, (uint32_t)VTD_GSTS_FLS, MODEL_ACK_SFL, false },
	{ (uint32_t)VTD_GCMD_WBF, (uint32_t)VTD_GSTS_WBFS, MODEL_ACK_WBF, false },
	{ (uint32_t)VTD_GCMD_QIE, (uint32_t)VTD_GSTS_QIES, MODEL_ACK_QIE, true },
	{ (uint32_t)VTD_GCMD_IRE, (uint32_t)VTD_GSTS_IRES, MODEL_ACK_IRE, true },
	{ (uint32_t)VTD_GCMD_SIRTP, (uint32_t)VTD_GSTS_IRTPS, MODEL_ACK_SIRTP, false },
	{ (uint32_t)VTD_GCMD_CFI, (uint32_t)VTD_GSTS_CFIS, MODEL_ACK_CFI, true },
	{ (uint32_t)VTD_GCMD_EAFL, (uint32_t)VTD_GSTS_AFLS, MODEL_ACK_AFL, true },
};

/* GCMD bits this configuration implements; writes of the others are ignored. */
static uint32_t gcmd_supported(const struct model *m)
{
	uint32_t bits = (uint32_t)(VTD_GCMD_TE | VTD_GCMD_SRTP);

	if (m->cfg.afl)
		bits |= (uint32_t)(VTD_GCMD_SFL | VTD_GCMD_EAFL);
	if (m->cfg.rwbf)
		bits |= (uint32_t)VTD_GCMD_WBF;
	if (m->cfg.qi)
		bits |= (uint32_t)VTD_GCMD_QIE;
	if (m->cfg.ir)
		bits |= (uint32_t)(VTD_GCMD_IRE | VTD_GCMD_SIRTP | VTD_GCMD_CFI);
	return bits;
}

void dmar__mdl_regs_reset(struct model *m)
{
	dmar_memset(m->regs, 0, m->reg_size);
	set_reg32(m, VTD_VER_REG, m->cfg.ver);
	set_reg64(m, VTD_CAP_REG, m->cap);
	set_reg64(m, VTD_ECAP_REG, m->ecap);
	/* Interrupts start masked (11.4.10). */
	set_reg32(m, VTD_FECTL_REG, (uint32_t)VTD_FECTL_IM);
	set_reg32(m, VTD_IECTL_REG, (uint32_t)VTD_FECTL_IM);
	m->root = 0;
	m->fri_next = 0;
	m->pend_mask = 0;
	/* What IRTA's reset value 0 would latch: 2 entries at address 0. */
	m->irt_base = 0;
	m->irt_entries = 2;
	m->irt_eime = false;
}

struct model *dmar_model_create(const struct model_config *cfg, const struct model_mem_ops *ops,
			   void *ctx)
{
	struct model *m;

	if (!cfg || !ops || !ops->read || !ops->write || !ops->alloc || !ops->free ||
	    !dmar__mdl_config_valid(cfg))
		return NULL;
	m = ops->alloc(ctx, sizeof(*m));
	if (!m)
		return NULL;
	dmar_memset(m, 0, sizeof(*m));
	m->cfg = *cfg;
	m->ops = *ops;
	m->ctx = ctx;
	m->cap = dmar_model_config_cap(cfg);
	m->ecap = dmar_model_config_ecap(cfg);
	m->reg_size = dmar_model_config_reg_size(cfg);
	m->iotlb_off = cfg->iro * 16u;
	m->frcd_off = cfg->fro * 16u;
	m->regs = ops->alloc(ctx, m->reg_size);
	if (!m->regs) {
		ops->free(ctx, m, sizeof(*m));
		return NULL;
	}
	dmar__mdl_regs_reset(m);
	dmar__mdl_cache_init(m);
	return m;
}

void dmar_model_destroy(struct model *m)
{
	if (!m)
		return;
	dmar__mdl_cache_fini(m);
	dmar__mdl_iec_fini(m);
	m->ops.free(m->ctx, m->regs, m->reg_size);
	m->ops.free(m->ctx, m, sizeof(*m));
}

const struct model_config *dmar_model_get_config(const struct model *m)
{
	return &m->cfg;
}

void dmar__mdl_event(struct model *m, enum model_irq which)
{
	uint32_t off = which == MODEL_IRQ_FAULT ? VTD_FECTL_REG : VTD_IECTL_REG;
	uint32_t ctl = reg32(m, off);

	if (ctl & (uint32_t)VTD_FECTL_IM) {
		set_reg32(m, off, ctl | (uint32_t)VTD_FECTL_IP);
		return;
	}
	set_reg32(m, off, ctl & ~(uint32_t)VTD_FECTL_IP);
	if (which == MODEL_IRQ_FAULT)
		m->stats.irq_fault++;
	else
		m->stats.irq_inval++;
	if (m->ops.interrupt)
		m->ops.interrupt(m->ctx, which);
}

/* Writes FECTL/IECTL: only IM is writable; unmasking delivers a pending interrupt. */
static void write_ectl(struct model *m, uint32_t off, uint32_t val)
{
	uint32_t ctl = (reg32(m, off) & (uint32_t)VTD_FECTL_IP) | (val & (uint32_t)VTD_FECTL_IM);

	set_reg32(m, off, ctl);
	if ((ctl & (uint32_t)VTD_FECTL_IP) && !(ctl & (uint32_t)VTD_FECTL_IM))
		dmar__mdl_event(m, off == VTD_FECTL_REG ? MODEL_IRQ_FAULT : MODEL_IRQ_INVAL);
}

static void do_ccmd(struct model *m)
{
	uint64_t v = reg64(m, VTD_CCMD_REG);
	unsigned gran = (unsigned)VTD_GET(v, 61, 2), done = 0;

	if (gran != 0)
		done = dmar__mdl_cc_invalidate(m, gran, (uint16_t)VTD_GET(v, 0, 16),
				     (uint16_t)VTD_GET(v, 16, 16), (unsigned)VTD_GET(v, 32, 2));
	v &= ~(VTD_CCMD_ICC | VTD_SET(59, 2, 3));
	set_reg64(m, VTD_CCMD_REG, v | VTD_SET(59, 2, done));
}

static void do_iotlb(struct model *m)
{
	uint32_t off = m->iotlb_off + VTD_IOTLB_OFF;
	uint64_t v = reg64(m, off), iva = reg64(m, m->iotlb_off + VTD_IVA_OFF);
	unsigned gran = (unsigned)VTD_GET(v, 60, 2), done = 0;

	if (gran != 0)
		done = dmar__mdl_iotlb_invalidate(m, gran, (uint16_t)VTD_GET(v, 32, 16),
					iva & VTD_IVA_ADDR_MASK, (unsigned)VTD_GET(iva, 0, 6),
					(iva & VTD_IVA_IH) != 0);
	v &= ~(VTD_IOTLB_IVT | VTD_SET(57, 2, 3));
	set_reg64(m, off, v | VTD_SET(57, 2, done));
}

static void set_gsts(struct model *m, uint32_t bit, bool on)
{
	uint32_t g = reg32(m, VTD_GSTS_REG);

	set_reg32(m, VTD_GSTS_REG, on ? g | bit : g & ~bit);
}

/* The effect of a command, at the moment its status changes. */
static void apply(struct model *m, enum model_ack what, uint32_t arg)
{
	switch (what) {
	case MODEL_ACK_TE:
		set_gsts(m, (uint32_t)VTD_GSTS_TES, arg != 0);
		break;
	case MODEL_ACK_SRTP:
		m->root = reg64(m, VTD_RTADDR_REG) & VTD_RTADDR_ADDR_MASK;
		set_gsts(m, (uint32_t)VTD_GSTS_RTPS, true);
		break;
	case MODEL_ACK_SFL:
		set_gsts(m, (uint32_t)VTD_GSTS_FLS, true);
		break;
	case MODEL_ACK_WBF:
		m->stats.wbf++;
		if (m->ops.flush_write_buffer)
			m->ops.flush_write_buffer(m->ctx);
		set_gsts(m, (uint32_t)VTD_GSTS_WBFS, false);
		break;
	case MODEL_ACK_QIE:
		set_gsts(m, (uint32_t)VTD_GSTS_QIES, arg != 0);
		if (arg)
			dmar__mdl_qi_process(m);
		else
			set_reg64(m, VTD_IQH_REG, 0); /* IQH resets when QI is disabled */
		break;
	case MODEL_ACK_IRE:
		set_gsts(m, (uint32_t)VTD_GSTS_IRES, arg != 0);
		break;
	case MODEL_ACK_SIRTP:
		dmar__mdl_ir_latch(m);
		set_gsts(m, (uint32_t)VTD_GSTS_IRTPS, true);
		break;
	case MODEL_ACK_CFI:
		set_gsts(m, (uint32_t)VTD_GSTS_CFIS, arg != 0);
		break;
	case MODEL_ACK_CCMD:
		do_ccmd(m);
		break;
	case MODEL_ACK_IOTLB:
		do_iotlb(m);
		break;
	case MODEL_ACK_QI:
		dmar__mdl_qi_process(m);
		break;
	case MODEL_ACK_AFL:
		set_gsts(m, (uint32_t)VTD_GSTS_AFLS, arg != 0);
		break;
	case MODEL_ACK_COUNT:
		break;
	}
}

static void schedule(struct model *m, enum model_ack what, uint32_t arg)
{
	if (m->cfg.null_hw || m->delay[what] == 0) {
		m->pend_mask &= ~(1u << what);
		apply(m, what, arg);
		return;
	}
	m->pend[what].left = m->delay[what];
	m->pend[what].arg = arg;
	m->pend_mask |= 1u << what;
}

void dmar_model_set_ack_delay(struct model *m, enum model_ack what, unsigned polls)
{
	if ((unsigned)what < MODEL_ACK_COUNT)
		m->delay[what] = polls;
}

void dmar_model_tick(struct model *m)
{
	uint32_t mask = m->pend_mask;

	while (mask) {
		unsigned i = (unsigned)dmar_ffs64(mask);
		struct pending *p = &m->pend[i];

		mask &= mask - 1;
		if (p->left == MODEL_NEVER)
			continue;
		if (p->left) {
			p->left--;
			continue;
		}
		m->pend_mask &= ~(1u << i);
		apply(m, (enum model_ack)i, p->arg);
	}
}

static void write_gcmd(struct model *m, uint32_t val)
{
	uint32_t gsts = reg32(m, VTD_GSTS_REG), ok = gcmd_supported(m);
	size_t i;

	for (i = 0; i < DMAR_ARRAY_SIZE(gcmd_bits); i++) {
		uint32_t cmd = gcmd_bits[i].cmd, sts = gcmd_bits[i].sts;
		enum model_ack ack = gcmd_bits[i].ack;

		if (!(ok & cmd))
			continue;
		if (gcmd_bits[i].persistent) {
			bool on = (val & cmd) != 0;

			if (on == ((gsts & sts) != 0))
				m->pend_mask &= ~(1u << ack); /* already there: cancel a change */
			else
				schedule(m, ack, on);
		} else if (val & cmd) {
			/* One-shot: RTPS/IRTPS/FLS clear until done, WBFS is set while busy. */
			set_gsts(m, sts, ack == MODEL_ACK_WBF);
			schedule(m, ack, 1);
		}
	}
}

/* Stores the writable bits `mask` of a dword; the others keep their value. */
static void store(struct model *m, uint32_t off, uint32_t val, uint32_t mask)
{
	set_reg32(m, off, (reg32(m, off) & ~mask) | (val & mask));
}

static bool qi_enabled(const struct model *m)
{
	return (reg32(m, VTD_GSTS_REG) & (uint32_t)VTD_GSTS_QIES) != 0;
}

/* IVA and IOTLB registers at ECAP.IRO. */
static void write_iotlb_regs(struct model *m, uint32_t rel, uint32_t val)
{
	uint32_t off = m->iotlb_off + rel;

	switch (rel) {
	case VTD_IVA_OFF:
		store(m, off, val, 0xfffff07fu);
		break;
	case VTD_IVA_OFF + 4:
		store(m, off, val, 0xffffffffu);
		break;
	case VTD_IOTLB_OFF:
		break; /* bits 31:0 reserved */
	case VTD_IOTLB_OFF + 4:
		/* IVT, IIRG, DR, DW, DID; IAIG is read-only. */
		store(m, off, val, 0xb003ffffu);
		if (!(val & (1u << 31)))
			break;
		if (qi_enabled(m)) {
			/* As QEMU: ignored once QI is on, and IVT never clears. */
			m->stats.reg_writes_ignored++;
			break;
		}
		schedule(m, MODEL_ACK_IOTLB, 0);
		break;
	default:
		m->stats.reg_writes_ignored++;
		break;
	}
}

static void write_reg(struct model *m, uint32_t off, uint32_t val)
{
	if (off >= m->iotlb_off && off < m->iotlb_off + 16u) {
		write_iotlb_regs(m, off - m->iotlb_off, val);
		return;
	}
	if (off >= m->frcd_off && off < m->frcd_off + m->cfg.nfr * VTD_FRCD_SIZE) {
		dmar__mdl_fault_write_frcd(m, off - m->frcd_off, val);
		return;
	}
	switch (off) {
	case VTD_GCMD_REG:
		write_gcmd(m, val);
		break;
	case VTD_RTADDR_REG:
		store(m, off, val, 0xfffff000u); /* TTM is reserved without scalable mode */
		break;
	case VTD_RTADDR_REG + 4:
	case VTD_IQA_REG + 4:
	case VTD_IRTA_REG + 4:
	case VTD_FEUADDR_REG:
	case VTD_IEUADDR_REG:
		if (off != VTD_IRTA_REG + 4 || m->cfg.ir)
			store(m, off, val, 0xffffffffu);
		break;
	case VTD_CCMD_REG:
		store(m, off, val, 0xffffffffu);
		break;
	case VTD_CCMD_REG + 4:
		/* ICC, CIRG, FM; CAIG is read-only. */
		store(m, off, val, 0xe0000003u);
		if (!(val & (1u << 31)))
			break;
		if (qi_enabled(m)) {
			m->stats.reg_writes_ignored++;
			break;
		}
		schedule(m, MODEL_ACK_CCMD, 0);
		break;
	case VTD_FSTS_REG:
		dmar__mdl_fault_write_fsts(m, val);
		break;
	case VTD_FECTL_REG:
	case VTD_IECTL_REG:
		write_ectl(m, off, val);
		break;
	case VTD_FEDATA_REG:
	case VTD_IEDATA_REG:
		store(m, off, val, m->cfg.eim ? 0xffffffffu : 0xffffu);
		break;
	case VTD_FEADDR_REG:
	case VTD_IEADDR_REG:
		store(m, off, val, 0xfffffffcu);
		break;
	case VTD_IQT_REG:
		store(m, off, val, (uint32_t)VTD_IQ_INDEX_MASK);
		if (qi_enabled(m))
			schedule(m, MODEL_ACK_QI, 0);
		break;
	case VTD_IQA_REG:
		if (m->cfg.qi)
			store(m, off, val, 0xfffff807u);
		break;
	case VTD_ICS_REG:
		/* Clearing IWC also clears a pending (masked) completion event. */
		if (val & (uint32_t)VTD_ICS_IWC) {
			set_reg32(m, off, 0);
			set_reg32(m, VTD_IECTL_REG,
				  reg32(m, VTD_IECTL_REG) & ~(uint32_t)VTD_FECTL_IP);
		}
		break;
	case VTD_IRTA_REG:
		/* Base, S; EIME only with ECAP.EIM; bits 10:4 reserved. */
		if (m->cfg.ir)
			store(m, off, val, 0xfffff00fu | (m->cfg.eim ? (uint32_t)VTD_IRTA_EIME : 0));
		break;
	case VTD_PMEN_REG:
		/* Protected memory regions: EPM and its status PRS (the regions themselves
		 * are not modelled: no DMA is blocked by them). */
		if (m->cfg.plmr || m->cfg.phmr)
			set_reg32(m, off, (val & (uint32_t)VTD_PMEN_EPM) |
					  ((val & (uint32_t)VTD_PMEN_EPM) ? (uint32_t)VTD_PMEN_PRS : 0));
		break;
	case VTD_AFLOG_REG:
	case VTD_AFLOG_REG + 4:
		if (m->cfg.afl)
			store(m, off, val, off == VTD_AFLOG_REG ? 0xfffff000u : 0xffffffffu);
		break;
	default:
		/* VER, CAP, ECAP, GSTS, IQH and reserved space are read-only. */
		m->stats.reg_writes_ignored++;
		break;
	}
}

/* Benchmark mode: every command completes within the write. */
static void write_null(struct model *m, uint32_t off, uint32_t val)
{
	uint32_t g;

	switch (off) {
	case VTD_GCMD_REG:
		g = val & (uint32_t)(VTD_GCMD_TE | VTD_GCMD_QIE | VTD_GCMD_IRE | VTD_GCMD_CFI);
		g |= reg32(m, VTD_GSTS_REG) & (uint32_t)(VTD_GSTS_RTPS | VTD_GSTS_IRTPS);
		if (val & (uint32_t)VTD_GCMD_SRTP)
			g |= (uint32_t)VTD_GSTS_RTPS;
		if (val & (uint32_t)VTD_GCMD_SIRTP) {
			g |= (uint32_t)VTD_GSTS_IRTPS;
			dmar__mdl_ir_latch(m);
		}
		if (val & (uint32_t)VTD_GCMD_WBF)
			m->stats.wbf++;
		set_reg32(m, VTD_GSTS_REG, g);
		break;
	case VTD_CCMD_REG + 4:
		m->stats.cc_inval[(val >> 29) & 3]++;
		set_reg32(m, off, (val & 0x67ffffffu) | ((val >> 2) & 0x18000000u));
		break;
	case VTD_IQT_REG:
		set_reg32(m, off, val & (uint32_t)VTD_IQ_INDEX_MASK);
		dmar__mdl_qi_process(m);
		break;
	default:
		if (off == m->iotlb_off + VTD_IOTLB_OFF + 4) {
			m->stats.iotlb_inval[(val >> 28) & 3]++;
			set_reg32(m, off, (val & 0x79ffffffu) |
					      ((val >> 3) & 0x06000000u));
		} else if (off != VTD_GSTS_REG && off >= 0x20) {
			set_reg32(m, off, val);
		}
		break;
	}
}

static bool reg_ok(const struct model *m, uint32_t off)
{
	return (off & 3) == 0 && off < m->reg_size;
}

uint32_t dmar_model_read32(struct model *m, uint32_t off)
{
	m->stats.reg_reads++;
	if (m->pend_mask)
		dmar_model_tick(m);
	if (!reg_ok(m, off))
		return 0xffffffffu;
	return reg32(m, off);
}

uint64_t dmar_model_read64(struct model *m, uint32_t off)
{
	m->stats.reg_reads++;
	if (m->pend_mask)
		dmar_model_tick(m);
	if (!reg_ok(m, off) || off + 8 > m->reg_size)
		return ~0ull;
	return reg64(m, off);
}

void dmar_model_write32(struct model *m, uint32_t off, uint32_t val)
{
	m->stats.reg_writes++;
	if (!reg_ok(m, off))
		return;
	if (m->cfg.null_hw)
		write_null(m, off, val);
	else
		write_reg(m, off, val);
}

void dmar_model_write64(struct model *m, uint32_t off, uint64_t val)
{
	m->stats.reg_writes++;
	if (!reg_ok(m, off) || off + 8 > m->reg_size)
		return;
	if (m->cfg.null_hw) {
		write_null(m, off, (uint32_t)val);
		write_null(m, off + 4, (uint32_t)(val >> 32));
	} else {
		write_reg(m, off, (uint32_t)val);
		write_reg(m, off + 4, (uint32_t)(val >> 32));
	}
}

const struct model_stats *dmar_model_stats(const struct model *m)
{
	return &m->stats;
}

void dmar_model_stats_reset(struct model *m)
{
	dmar_memset(&m->stats, 0, sizeof(m->stats));
}
