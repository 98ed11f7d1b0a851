/*
 * Invalidation interface: what to invalidate (6.5), chosen here; how, by the register
 * backend (inval_reg.c) or the queued backend (inval_qi.c). The interrupt entry cache
 * has only the queued interface (6.5.2.7).
 */
#include "dmar_internal.h"

int dmar__inval_context(struct dmar_unit *u, unsigned gran, uint16_t did, uint16_t sid)
{
	u->stats.ctx_invalidations++;
	return u->inval->context(u, gran, did, sid, 0);
}

int dmar__inval_iotlb(struct dmar_unit *u, unsigned gran, uint16_t did, uint64_t addr, unsigned am,
		bool ih)
{
	if (gran == VTD_IOTLB_GLOBAL)
		u->stats.iotlb_global++;
	else if (gran == VTD_IOTLB_DOMAIN)
		u->stats.iotlb_domain++;
	else
		u->stats.iotlb_page++;
	return u->inval->iotlb(u, gran, did, addr, am, ih);
}

int dmar__inval_iotlb_range(struct dmar_unit *u, uint16_t did, uint64_t start, uint64_t end,
			    bool ih)
{
	if (end <= start)
		return DMAR_OK;
	start &= ~(uint64_t)(DMAR_PAGE_SIZE - 1);
	unsigned am = 0;
	/* Smallest naturally aligned block of 2^am pages holding [start, end). */
	while (am < 52 && (start >> (DMAR_PAGE_SHIFT + am)) != ((end - 1) >> (DMAR_PAGE_SHIFT + am)))
		am++;
	if (!(u->cap & VTD_CAP_PSI) || am > VTD_CAP_MAMV(u->cap))
		return dmar__inval_iotlb(u, VTD_IOTLB_DOMAIN, did, 0, 0, false);
	uint64_t addr = start & ~((1ull << (DMAR_PAGE_SHIFT + am)) - 1);
	return dmar__inval_iotlb(u, VTD_IOTLB_PAGE, did, addr, am, ih);
}

int dmar__inval_sync(struct dmar_unit *u)
{
	int rc = u->inval->sync(u);
	if (!rc)
		u->stats.waits++;
	return rc;
}

int dmar__inval_sync_start(struct dmar_unit *u, uint32_t *ticket)
{
	*ticket = 0;
	if (!u->inval->sync_start)
		return dmar__inval_sync(u); /* complete already */
	int rc = u->inval->sync_start(u, ticket);
	if (!rc)
		u->stats.waits++;
	return rc;
}

int dmar__inval_sync_wait(struct dmar_unit *u, uint32_t ticket)
{
	if (!u->inval->sync_wait)
		return DMAR_OK;
	int rc = u->inval->sync_wait(u, ticket);
	if (rc) {
		/* Counted when started: a wait that failed is no wait done. */
		const struct dmar_os *os = &u->sys->os;
		os_lock(os, u->lock);
		u->stats.waits--;
		os_unlock(os, u->lock);
	}
	return rc;
}

int dmar__inval_iec(struct dmar_unit *u, bool global, unsigned index, unsigned im)
{
	if (!u->inval->iec)
		return DMAR_ENOTSUP;
	if (global)
		u->iec_global++;
	else
		u->iec_index++;
	return u->inval->iec(u, global, index, im);
}
