/*
 * Queued invalidation (VT-d 6.5.2): a one-page ring of 256 128-bit descriptors. Requests
 * are written to the ring and handed to the unit by one IQT write at sync time, followed
 * by an invalidation wait descriptor whose status write tells that all before it are
 * done. Context-cache, IOTLB and interrupt-entry-cache descriptors go this way. An
 * invalid descriptor (FSTS.IQE) drops what was queued and fails the sync.
 *
 * Waits outside the unit lock: each wait descriptor writes its own sequence number to
 * the one status word, and the unit completes descriptors in order, so a waiter is done
 * once the word has reached its number (serial comparison). dmar__inval_sync_start queues
 * the wait descriptor and kicks the unit under the unit lock; dmar__inval_sync_wait
 * polls the word with no lock, so other CPUs queue their invalidations meanwhile. A
 * recovery from a queue error fails every wait queued before it (qi.failed_seq).
 */
#include "dmar_internal.h"

#define QI_ENTRIES 256u

static int qi_wait_head(struct dmar_unit *u, unsigned next);

static uint64_t *slot(struct dmar_unit *u, unsigned i)
{
	return (uint64_t *)u->qi.ring + 2 * i;
}

static void qi_kick(struct dmar_unit *u)
{
	u->sys->os.ops->wmb(u->sys->os.ctx);
	dmar__unit_write64(u, VTD_IQT_REG, (uint64_t)u->qi.tail << VTD_IQ_INDEX_SHIFT);
}

static int qi_recover(struct dmar_unit *u)
{
	uint64_t head = dmar__unit_read64(u, VTD_IQH_REG);
	unsigned h = (unsigned)((head & VTD_IQ_INDEX_MASK) >> VTD_IQ_INDEX_SHIFT);
	dmar__log(u->sys, DMAR_LOG_ERR,
		 "dmar%u: invalidation queue error at descriptor %u (0x%016llx 0x%016llx); "
		 "queued requests dropped", u->index, h, (unsigned long long)slot(u, h)[0],
		 (unsigned long long)slot(u, h)[1]);
	u->qi.tail = h;
	u->qi.head = h;
	/* The waits queued so far never complete now: their waiters fail. */
	__atomic_store_n(&u->qi.failed_seq, u->qi.seq, __ATOMIC_RELEASE);
	dmar__unit_write64(u, VTD_IQT_REG, (uint64_t)h << VTD_IQ_INDEX_SHIFT);
	dmar__unit_write32(u, VTD_FSTS_REG, (uint32_t)VTD_FSTS_IQE);
	return DMAR_EHW;
}

static int qi_submit(struct dmar_unit *u, uint64_t lo, uint64_t hi)
{
	unsigned next = (u->qi.tail + 1) % QI_ENTRIES;
	int rc = qi_wait_head(u, next);
	if (rc)
		return rc;
	uint64_t *d = slot(u, u->qi.tail);
	d[0] = lo;
	d[1] = hi;
	u->qi.tail = next;
	return DMAR_OK;
}

/* Makes room when the ring is full: hands the queue to the unit and waits for the head
 * to move past slot `next`. */
static int head_moved(struct dmar_unit *u, void *arg)
{
	unsigned next = *(const unsigned *)arg;
	if (dmar__unit_read32(u, VTD_FSTS_REG) & VTD_FSTS_IQE)
		return qi_recover(u);
	uint64_t head = dmar__unit_read64(u, VTD_IQH_REG);
	u->qi.head = (unsigned)((head & VTD_IQ_INDEX_MASK) >> VTD_IQ_INDEX_SHIFT);
	return next != u->qi.head;
}

static int qi_wait_head(struct dmar_unit *u, unsigned next)
{
	if (next != u->qi.head)
		return DMAR_OK; /* room, as far as the last look at IQH knows */
	qi_kick(u);
	return dmar__unit_poll(u, head_moved, &next, "room in the invalidation queue");
}

static int qi_context(struct dmar_unit *u, unsigned gran, uint16_t did, uint16_t sid,
		      unsigned fm)
{
	return qi_submit(u, VTD_INV_CC | VTD_INV_G(gran) | VTD_INV_CC_DID(did) |
				    VTD_INV_CC_SID(sid) | VTD_INV_CC_FM(fm), 0);
}

static int qi_iotlb(struct dmar_unit *u, unsigned gran, uint16_t did, uint64_t addr,
		    unsigned am, bool ih)
{
	uint64_t lo = VTD_INV_IOTLB | VTD_INV_G(gran);
	uint64_t hi = 0;
	if (gran != VTD_IOTLB_GLOBAL)
		lo |= VTD_INV_IOTLB_DID(did);
	if (u->cap & VTD_CAP_DRD)
		lo |= VTD_INV_IOTLB_DR;
	if (u->cap & VTD_CAP_DWD)
		lo |= VTD_INV_IOTLB_DW;
	if (gran == VTD_IOTLB_PAGE)
		hi = (addr & VTD_IVA_ADDR_MASK) | VTD_INV_IOTLB_HI_AM(am) |
		     (ih ? VTD_INV_IOTLB_HI_IH : 0);
	return qi_submit(u, lo, hi);
}

/* Interrupt entry cache invalidation descriptor (6.5.2.7): G (bit 4) clear for global,
 * set for index-selective over IIDX with the IM low bits masked. */
static int qi_iec(struct dmar_unit *u, bool global, unsigned index, unsigned im)
{
	uint64_t lo = VTD_INV_IEC;

	if (!global)
		lo |= VTD_INV_IEC_G_INDEX | VTD_INV_IEC_IM(im) | VTD_INV_IEC_IIDX(index);
	return qi_submit(u, lo, 0);
}

/* Serial comparison of sequence numbers: a at or past b. */
static bool seq_reached(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) >= 0;
}

struct qi_waiter {
	uint32_t seq;
	bool locked;             /* the caller holds the unit lock */
	unsigned polls;
};

/* Polls of the status word before FSTS is read too: a register read costs about as much
 * as a wait usually lasts (the polls come 0.1, 0.3, 0.7 us after the first look), and a
 * queue error only delays the answer by that much. */
#define QI_POLLS_BEFORE_FSTS 4u

static int wait_done(struct dmar_unit *u, void *arg)
{
	struct qi_waiter *w = arg;
	if (seq_reached(__atomic_load_n(u->qi.status, __ATOMIC_ACQUIRE), w->seq))
		return 1;
	if (seq_reached(__atomic_load_n(&u->qi.failed_seq, __ATOMIC_ACQUIRE), w->seq))
		return DMAR_EHW; /* dropped by a recovery (logged there) */
	if (w->polls++ < QI_POLLS_BEFORE_FSTS)
		return 0;
	if (!(dmar__unit_read32(u, VTD_FSTS_REG) & VTD_FSTS_IQE))
		return 0;
	const struct dmar_os *os = &u->sys->os;
	if (!w->locked)
		os_lock(os, u->lock);
	int rc = 0;
	/* Another waiter may have recovered already; then look at the word again. */
	if (dmar__unit_read32(u, VTD_FSTS_REG) & VTD_FSTS_IQE)
		rc = qi_recover(u);
	if (!w->locked)
		os_unlock(os, u->lock);
	if (seq_reached(__atomic_load_n(u->qi.status, __ATOMIC_ACQUIRE), w->seq))
		return 1;
	return rc ? rc : DMAR_EHW;
}

static int qi_sync_start(struct dmar_unit *u, uint32_t *ticket)
{
	uint32_t seq = ++u->qi.seq;
	/* Keep failed_seq within reach of the serial comparison: a recovery's mark never
	 * trails the live tickets by 2^31. */
	if ((int32_t)(seq - u->qi.failed_seq) > (1 << 30))
		__atomic_store_n(&u->qi.failed_seq, seq - (1u << 30), __ATOMIC_RELAXED);
	int rc = qi_submit(u, VTD_INV_WAIT | VTD_INV_WAIT_SW | VTD_INV_WAIT_FN |
				      VTD_INV_WAIT_SDATA(seq),
			   u->qi.status_phys & VTD_INV_WAIT_HI_ADDR_MASK);
	if (rc) {
		u->qi.seq--;
		return rc;
	}
	qi_kick(u);
	*ticket = seq;
	return DMAR_OK;
}

static int qi_wait(struct dmar_unit *u, uint32_t ticket, bool locked)
{
	/* Done already, the common case on a quick unit. */
	if (seq_reached(__atomic_load_n(u->qi.status, __ATOMIC_ACQUIRE), ticket))
		return DMAR_OK;
	struct qi_waiter w = { ticket, locked, 0 };
	return dmar__unit_poll(u, wait_done, &w, "the invalidation wait descriptor");
}

static int qi_sync_wait(struct dmar_unit *u, uint32_t ticket)
{
	return qi_wait(u, ticket, false);
}

static int qi_sync(struct dmar_unit *u)
{
	uint32_t ticket;
	int rc = qi_sync_start(u, &ticket);
	return rc ? rc : qi_wait(u, ticket, true);
}

int dmar__inval_qi_start(struct dmar_unit *u)
{
	const struct dmar_os *os = &u->sys->os;
	u->qi.ring = os->ops->page_alloc(os->ctx, &u->qi.ring_phys);
	if (!u->qi.ring)
		return DMAR_ENOMEM;
	u->qi.status_page = os->ops->page_alloc(os->ctx, &u->qi.status_phys);
	if (!u->qi.status_page)
		return DMAR_ENOMEM; /* dmar__unit_destroy -> dmar__inval_qi_stop frees the ring */
	u->qi.status = (volatile uint32_t *)u->qi.status_page;
	u->qi.tail = 0;
	u->qi.head = 0;
	dmar__unit_write64(u, VTD_IQT_REG, 0);
	dmar__unit_write64(u, VTD_IQA_REG, u->qi.ring_phys & VTD_IQA_ADDR_MASK); /* QS 0: 256 */
	int rc = dmar__unit_gcmd_enable(u, (uint32_t)VTD_GCMD_QIE, (uint32_t)VTD_GSTS_QIES, true,
				  "queued invalidation enable");
	if (rc)
		return rc;
	u->inval = &dmar__inval_qi_backend;
	return DMAR_OK;
}

void dmar__inval_qi_stop(struct dmar_unit *u)
{
	const struct dmar_os *os = &u->sys->os;
	if (u->inval == &dmar__inval_qi_backend) {
		/* Let the unit finish what was queued, then turn the queue off. */
		(void)qi_sync(u);
		(void)dmar__unit_gcmd_enable(u, (uint32_t)VTD_GCMD_QIE, (uint32_t)VTD_GSTS_QIES,
				       false, "queued invalidation disable");
		u->inval = &dmar__inval_reg_backend;
	}
	if (u->qi.status_page)
		os->ops->page_free(os->ctx, u->qi.status_page, u->qi.status_phys);
	if (u->qi.ring)
		os->ops->page_free(os->ctx, u->qi.ring, u->qi.ring_phys);
	u->qi.status_page = NULL;
	u->qi.ring = NULL;
}

const struct inval_backend dmar__inval_qi_backend = {
	.name = "queued",
	.context = qi_context,
	.iotlb = qi_iotlb,
	.sync = qi_sync,
	.sync_start = qi_sync_start,
	.sync_wait = qi_sync_wait,
	.iec = qi_iec,
};
