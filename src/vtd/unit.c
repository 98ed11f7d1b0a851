/*
 * One remapping unit: register access, GCMD/GSTS handshakes (VT-d 10.4.4-10.4.5), the
 * root table, and bring-up/tear-down. Every wait is bounded by cfg.timeout_ns.
 * Interrupt remapping is brought up later, on the embedder's request (ir.c).
 */
#include "dmar_internal.h"

uint32_t dmar__unit_read32(const struct dmar_unit *u, unsigned off)
{
	const struct dmar_os *os = &u->sys->os;
	return os->ops->mmio_read32(os->ctx, u->base + off);
}

uint64_t dmar__unit_read64(const struct dmar_unit *u, unsigned off)
{
	const struct dmar_os *os = &u->sys->os;
	return os->ops->mmio_read64(os->ctx, u->base + off);
}

void dmar__unit_write32(const struct dmar_unit *u, unsigned off, uint32_t v)
{
	const struct dmar_os *os = &u->sys->os;
	os->ops->mmio_write32(os->ctx, u->base + off, v);
}

void dmar__unit_write64(const struct dmar_unit *u, unsigned off, uint64_t v)
{
	const struct dmar_os *os = &u->sys->os;
	os->ops->mmio_write64(os->ctx, u->base + off, v);
}

int dmar__unit_poll(struct dmar_unit *u, unit_poll_fn done, void *arg, const char *what)
{
	const struct dmar_os *os = &u->sys->os;
	int rc = done(u, arg);
	if (rc)
		return rc < 0 ? rc : DMAR_OK;
	uint64_t start = os->ops->now_ns(os->ctx);
	uint64_t pause = 100;
	for (;;) {
		os->ops->delay_ns(os->ctx, pause);
		if (pause < 10000)
			pause *= 2;
		rc = done(u, arg);
		if (rc)
			return rc < 0 ? rc : DMAR_OK;
		if (os->ops->now_ns(os->ctx) - start > u->sys->cfg.timeout_ns) {
			dmar__log(u->sys, DMAR_LOG_ERR, "dmar%u: timeout waiting for %s", u->index,
				 what);
			return DMAR_ETIMEDOUT;
		}
	}
}

struct reg_wait {
	unsigned off;
	bool is64;
	uint64_t mask, want;
};

static int reg_reached(struct dmar_unit *u, void *arg)
{
	const struct reg_wait *w = arg;
	uint64_t v = w->is64 ? dmar__unit_read64(u, w->off) : dmar__unit_read32(u, w->off);
	return (v & w->mask) == w->want;
}

int dmar__unit_wait(struct dmar_unit *u, unsigned off, bool is64, uint64_t mask, uint64_t want,
	      const char *what)
{
	struct reg_wait w = { off, is64, mask, want };
	return dmar__unit_poll(u, reg_reached, &w, what);
}

/* GCMD takes the persistent enables from GSTS plus the one command changed (11.4.4). */
static void gcmd_write(struct dmar_unit *u, uint32_t set, uint32_t clear)
{
	uint32_t sts = dmar__unit_read32(u, VTD_GSTS_REG);
	uint32_t cmd = (uint32_t)(sts & VTD_GSTS_PERSISTENT);
	cmd = (cmd | set) & ~clear;
	dmar__unit_write32(u, VTD_GCMD_REG, cmd);
}

int dmar__unit_gcmd_enable(struct dmar_unit *u, uint32_t cmd, uint32_t sts, bool on,
			   const char *what)
{
	if (on)
		gcmd_write(u, cmd, 0);
	else
		gcmd_write(u, 0, cmd);
	return dmar__unit_wait(u, VTD_GSTS_REG, false, sts, on ? sts : 0, what);
}

int dmar__unit_gcmd_oneshot(struct dmar_unit *u, uint32_t cmd, uint32_t sts, const char *what)
{
	gcmd_write(u, cmd, 0);
	return dmar__unit_wait(u, VTD_GSTS_REG, false, sts, sts, what);
}

int dmar__unit_flush_write_buffer(struct dmar_unit *u)
{
	if (!u->rwbf)
		return DMAR_OK;
	u->stats.wbf++;
	gcmd_write(u, (uint32_t)VTD_GCMD_WBF, 0);
	return dmar__unit_wait(u, VTD_GSTS_REG, false, VTD_GSTS_WBFS, 0, "write buffer flush");
}

static int set_root_table(struct dmar_unit *u)
{
	dmar__unit_write64(u, VTD_RTADDR_REG, u->root_phys);
	return dmar__unit_gcmd_oneshot(u, (uint32_t)VTD_GCMD_SRTP, (uint32_t)VTD_GSTS_RTPS,
				       "root table pointer");
}

/* Chooses what the driver can use from CAP/ECAP; DMAR_ENOTSUP with the reason logged. */
static int check_caps(struct dmar_unit *u)
{
	if (u->cap == 0 || u->cap == UINT64_MAX || u->ver == UINT32_MAX) {
		dmar__log(u->sys, DMAR_LOG_ERR, "dmar%u: no registers at 0x%llx (CAP 0x%llx)",
			 u->index, (unsigned long long)u->base, (unsigned long long)u->cap);
		return DMAR_ENOTSUP;
	}
	u->sagaw = (unsigned)VTD_CAP_SAGAW(u->cap) & (VTD_SAGAW_39 | VTD_SAGAW_48 | VTD_SAGAW_57);
	u->mgaw = (unsigned)VTD_CAP_MGAW(u->cap);
	if (!u->sagaw) {
		dmar__log(u->sys, DMAR_LOG_ERR,
			 "dmar%u: unusable: SAGAW 0x%llx offers no 3-, 4- or 5-level table",
			 u->index, (unsigned long long)VTD_CAP_SAGAW(u->cap));
		return DMAR_ENOTSUP;
	}
	if (u->mgaw < 32) {
		dmar__log(u->sys, DMAR_LOG_ERR, "dmar%u: unusable: MGAW %u below 32 bits",
			 u->index, u->mgaw);
		return DMAR_ENOTSUP;
	}
	u->iotlb_off = (unsigned)VTD_ECAP_IRO(u->ecap) * 16u;
	u->frcd_off = (unsigned)VTD_CAP_FRO(u->cap) * 16u;
	u->nfr = (unsigned)VTD_CAP_NFR(u->cap);
	/* Offset 0 would alias VER/CAP; real units put these at 0x100 and above, QEMU's
	 * IOTLB registers at 0xf0, after the architectural registers (up to 0xe8). */
	if (u->iotlb_off < 0xf0 || u->frcd_off < 0xf0) {
		dmar__log(u->sys, DMAR_LOG_ERR,
			 "dmar%u: unusable: IOTLB (0x%x) or fault (0x%x) registers overlap the "
			 "architectural ones", u->index, u->iotlb_off, u->frcd_off);
		return DMAR_ENOTSUP;
	}
	unsigned nd = (unsigned)VTD_CAP_ND(u->cap);
	if (nd > 6) {
		dmar__log(u->sys, DMAR_LOG_ERR, "dmar%u: unusable: CAP.ND %u is reserved",
			 u->index, nd);
		return DMAR_ENOTSUP;
	}
	u->ndomains = 1u << (4 + 2 * nd);
	u->coherent = (u->ecap & VTD_ECAP_C) != 0;
	u->cm = (u->cap & VTD_CAP_CM) != 0;
	u->rwbf = (u->cap & VTD_CAP_RWBF) != 0;
	return DMAR_OK;
}

/* Brings the unit to a known state: translation, interrupt remapping and QI off, our
 * root table set. */
static int unit_bring_up(struct dmar_unit *u)
{
	uint32_t sts = dmar__unit_read32(u, VTD_GSTS_REG);
	int rc;
	if (sts & VTD_GSTS_IRES) {
		/* Firmware's table: not ours to keep. It also has to go before QI does
		 * (interrupt remapping relies on queued invalidation). */
		dmar__log(u->sys, DMAR_LOG_WARN,
			 "dmar%u: interrupt remapping was left enabled by firmware; disabling it "
			 "until dmar_ir_enable installs the driver's table", u->index);
		rc = dmar__unit_gcmd_enable(u, (uint32_t)VTD_GCMD_IRE, (uint32_t)VTD_GSTS_IRES,
					    false, "interrupt remapping disable");
		if (rc)
			return rc;
	}
	if (sts & VTD_GSTS_TES) {
		dmar__log(u->sys, DMAR_LOG_WARN,
			 "dmar%u: translation was left enabled by firmware; disabling it to "
			 "install the driver's tables", u->index);
		rc = dmar__unit_gcmd_enable(u, (uint32_t)VTD_GCMD_TE, (uint32_t)VTD_GSTS_TES, false,
				      "translation disable");
		if (rc)
			return rc;
	}
	if (sts & VTD_GSTS_QIES) {
		rc = dmar__unit_gcmd_enable(u, (uint32_t)VTD_GCMD_QIE, (uint32_t)VTD_GSTS_QIES,
					    false,
				      "queued invalidation disable");
		if (rc)
			return rc;
	}
	rc = set_root_table(u);
	if (rc)
		return rc;
	int want_qi = u->sys->cfg.qi;
	bool has_qi = (u->ecap & VTD_ECAP_QI) != 0;
	if (want_qi == 1 && !has_qi) {
		dmar__log(u->sys, DMAR_LOG_ERR,
			 "dmar%u: hw.dmar.qi=1 but the unit has no queued invalidation", u->index);
		return DMAR_ENOTSUP;
	}
	u->inval = &dmar__inval_reg_backend;
	if (has_qi && want_qi != 0) {
		rc = dmar__inval_qi_start(u);
		if (rc)
			return rc;
	}
	/* The caches may hold anything from before: flush them all (6.5). */
	rc = dmar__inval_context(u, VTD_CC_GLOBAL, 0, 0);
	if (!rc)
		rc = dmar__inval_iotlb(u, VTD_IOTLB_GLOBAL, 0, 0, 0, false);
	if (!rc)
		rc = dmar__inval_sync(u);
	if (!rc)
		rc = dmar__unit_flush_write_buffer(u);
	return rc;
}

int dmar__unit_create(struct dmar_system *sys, uint16_t segment, uint64_t base,
		      struct dmar_unit **out)
{
	const struct dmar_os *os = &sys->os;
	struct dmar_unit *u = dmar__os_alloc(os, sizeof(*u));
	bool lock_failed;
	int rc = DMAR_ENOMEM;
	*out = NULL;
	if (!u)
		return DMAR_ENOMEM;
	u->sys = sys;
	u->index = sys->nunits;
	u->segment = segment;
	u->base = base;
	u->ver = dmar__unit_read32(u, VTD_VER_REG);
	u->cap = dmar__unit_read64(u, VTD_CAP_REG);
	u->ecap = dmar__unit_read64(u, VTD_ECAP_REG);
	rc = check_caps(u);
	if (rc)
		goto fail;
	rc = DMAR_ENOMEM;
	u->lock = dmar__os_lock_create(os, &lock_failed);
	if (lock_failed)
		goto fail;
	u->fault_lock = dmar__os_lock_create(os, &lock_failed);
	if (lock_failed)
		goto fail;
	u->ir_lock = dmar__os_lock_create(os, &lock_failed);
	if (lock_failed)
		goto fail;
	u->did_map = dmar__os_alloc(os, did_map_words(u) * sizeof(uint64_t));
	if (!u->did_map)
		goto fail;
	/* With caching mode, domain id 0 tags cached not-present entries (6.1). */
	if (u->cm)
		u->did_map[0] |= 1;
	u->root = os->ops->page_alloc(os->ctx, &u->root_phys);
	if (!u->root)
		goto fail;
	unit_flush_table(u, u->root, DMAR_PAGE_SIZE);
	rc = unit_bring_up(u);
	if (rc)
		goto fail;
	dmar__log(sys, DMAR_LOG_INFO,
		 "dmar%u: unit at 0x%llx segment %u: VER %u.%u CAP 0x%016llx ECAP 0x%016llx, "
		 "%u domains, %s invalidation", u->index, (unsigned long long)base, segment,
		 (unsigned)VTD_VER_MAJOR(u->ver), (unsigned)VTD_VER_MINOR(u->ver),
		 (unsigned long long)u->cap, (unsigned long long)u->ecap, u->ndomains,
		 u->inval->name);
	*out = u;
	return DMAR_OK;
fail:
	dmar__unit_destroy(u);
	return rc;
}

void dmar__unit_destroy(struct dmar_unit *u)
{
	const struct dmar_os *os = &u->sys->os;
	if (u->root) {
		/* Stop translating before the tables go away; ignore timeouts here: there
		 * is nothing better to do on a dead unit than to free our memory. */
		if (dmar__unit_read32(u, VTD_GSTS_REG) & VTD_GSTS_TES)
			(void)dmar__unit_gcmd_enable(u, (uint32_t)VTD_GCMD_TE,
						     (uint32_t)VTD_GSTS_TES,
					       false, "translation disable");
	}
	dmar__attached_free_all(u);
	while (u->domains)
		dmar__domain_free(u->domains);
	/* Interrupt remapping off before queued invalidation, which it relies on. */
	dmar__ir_teardown(u);
	dmar__inval_qi_stop(u);
	dmar__context_free_tables(u);
	if (u->root)
		os->ops->page_free(os->ctx, u->root, u->root_phys);
	if (u->did_map)
		dmar__os_free(os, u->did_map, did_map_words(u) * sizeof(uint64_t));
	dmar__os_lock_destroy(os, u->lock);
	dmar__os_lock_destroy(os, u->fault_lock);
	dmar__os_lock_destroy(os, u->ir_lock);
	dmar__os_free(os, u, sizeof(*u));
}

int dmar__unit_translation_on(struct dmar_unit *u)
{
	int rc = DMAR_OK;
	if (!(dmar__unit_read32(u, VTD_GSTS_REG) & VTD_GSTS_TES))
		rc = dmar__unit_gcmd_enable(u, (uint32_t)VTD_GCMD_TE, (uint32_t)VTD_GSTS_TES, true,
				      "translation enable");
	if (rc || !(u->cap & (VTD_CAP_PLMR | VTD_CAP_PHMR)) ||
	    !(dmar__unit_read32(u, VTD_PMEN_REG) & VTD_PMEN_PRS))
		return rc;
	/* Firmware (or a pre-boot DMA protection) left the protected memory regions on:
	 * their checks still apply to translated DMA and would block buffers the driver
	 * maps there. Translation protects memory now; switch them off (as Linux does). */
	dmar__log(u->sys, DMAR_LOG_INFO,
		 "dmar%u: disabling the protected memory regions left enabled by firmware",
		 u->index);
	dmar__unit_write32(u, VTD_PMEN_REG, 0);
	return dmar__unit_wait(u, VTD_PMEN_REG, false, VTD_PMEN_PRS, 0,
			 "protected memory regions disable");
}

int dmar_unit_enable_translation(struct dmar_unit *u)
{
	os_lock(&u->sys->os, u->lock);
	int rc = dmar__unit_translation_on(u);
	os_unlock(&u->sys->os, u->lock);
	return rc;
}

int dmar_unit_disable_translation(struct dmar_unit *u)
{
	os_lock(&u->sys->os, u->lock);
	int rc = dmar__unit_gcmd_enable(u, (uint32_t)VTD_GCMD_TE, (uint32_t)VTD_GSTS_TES, false,
				  "translation disable");
	os_unlock(&u->sys->os, u->lock);
	return rc;
}

unsigned dmar__unit_widest_agaw(const struct dmar_unit *u)
{
	return (u->sagaw & VTD_SAGAW_57) ? 57 : (u->sagaw & VTD_SAGAW_48) ? 48 : 39;
}

void dmar_unit_get_info(const struct dmar_unit *u, struct dmar_unit_info *info)
{
	dmar_memset(info, 0, sizeof(*info));
	info->index = u->index;
	info->segment = u->segment;
	info->reg_base = u->base;
	info->ver = u->ver;
	info->cap = u->cap;
	info->ecap = u->ecap;
	info->max_width = dmar_min_u64(dmar__unit_widest_agaw(u), u->mgaw);
	info->domains = u->ndomains;
	info->nfr = u->nfr;
	info->qi = u->inval == &dmar__inval_qi_backend;
	info->translating = (dmar__unit_read32(u, VTD_GSTS_REG) & VTD_GSTS_TES) != 0;
	info->coherent = u->coherent;
	info->caching_mode = u->cm;
	info->passthrough = (u->ecap & VTD_ECAP_PT) != 0;
	info->superpages = (unsigned)VTD_CAP_SLLPS(u->cap) & 3u;
}

void dmar_unit_get_stats(const struct dmar_unit *u, struct dmar_unit_stats *st)
{
	/* Under the unit lock, which every update of the counters holds: a consistent
	 * snapshot, and no torn 64-bit counter on a 32-bit build. */
	const struct dmar_os *os = &u->sys->os;
	os_lock(os, u->lock);
	*st = u->stats;
	os_unlock(os, u->lock);
}
