/* The NVMe controller: registers, queues, PRPs (names as in the NVM Express base
 * specification). */
#include "nvme.h"
#include "dmamem.h"

#include "clock.h"
#include "x86.h"

/* Controller registers. */
#define NVME_REG_CAP 0x00
#define NVME_REG_INTMS 0x0c
#define NVME_REG_CC 0x14
#define NVME_REG_CSTS 0x1c
#define NVME_REG_AQA 0x24
#define NVME_REG_ASQ 0x28
#define NVME_REG_ACQ 0x30
#define NVME_REG_SQ0TDBL 0x1000

#define NVME_CAP_MQES(c) ((uint32_t)((c) & 0xffff))
#define NVME_CAP_TO(c) ((uint32_t)(((c) >> 24) & 0xff))
#define NVME_CAP_DSTRD(c) ((uint32_t)(((c) >> 32) & 0xf))
#define NVME_CAP_CSS_NVM (1ull << 37)
#define NVME_CAP_MPSMIN(c) ((uint32_t)(((c) >> 48) & 0xf))

#define NVME_CC_EN 0x1u
#define NVME_CC_IOSQES (6u << 16) /* 64-byte SQ entries */
#define NVME_CC_IOCQES (4u << 20) /* 16-byte CQ entries */
#define NVME_CC_SHN_NORMAL (1u << 14)
#define NVME_CSTS_RDY 0x1u
#define NVME_CSTS_CFS 0x2u
#define NVME_CSTS_SHST_MASK (3u << 2)
#define NVME_CSTS_SHST_DONE (2u << 2)

/* Opcodes. */
#define NVME_ADM_CREATE_IOSQ 0x01
#define NVME_ADM_CREATE_IOCQ 0x05
#define NVME_ADM_IDENTIFY 0x06
#define NVME_ADM_SET_FEATURES 0x09
#define NVME_FEAT_NUM_QUEUES 0x07
#define NVME_CMD_WRITE 0x01
#define NVME_CMD_READ 0x02

#define NVME_CNS_NS 0x00
#define NVME_CNS_CTRL 0x01

/* Status field (completion dword 3 bits 31:17): SCT and SC. */
#define NVME_SCT(s) (((s) >> 8) & 0x7)
#define NVME_SC(s) ((s) & 0xff)
#define NVME_SC_DATA_XFER_ERROR 0x04

#define NVME_SHUTDOWN_NS 2000000000ull

struct nvme_sqe {
	uint32_t cdw0;   /* opcode 7:0, PSDT 15:14 (0: PRPs), CID 31:16 */
	uint32_t nsid;
	uint32_t cdw2, cdw3;
	uint64_t mptr;
	uint64_t prp1, prp2;
	uint32_t cdw10, cdw11, cdw12, cdw13, cdw14, cdw15;
};
_Static_assert(sizeof(struct nvme_sqe) == 64, "SQ entry");

struct nvme_cqe {
	uint32_t dw0, dw1;
	uint16_t sqhd, sqid;
	uint16_t cid;
	uint16_t status; /* bit 0 phase tag, 15:1 status field */
};
_Static_assert(sizeof(struct nvme_cqe) == 16, "CQ entry");

static uint32_t rd32(struct nvme *c, unsigned off) { return *(volatile uint32_t *)(c->regs + off); }
static void wr32(struct nvme *c, unsigned off, uint32_t v) { *(volatile uint32_t *)(c->regs + off) = v; }
static uint64_t rd64(struct nvme *c, unsigned off)
{
	/* Two dword reads: 64-bit MMIO accesses are optional for the host. */
	uint64_t lo = rd32(c, off), hi = rd32(c, off + 4);
	return hi << 32 | lo;
}
static void wr64(struct nvme *c, unsigned off, uint64_t v)
{
	wr32(c, off, (uint32_t)v);
	wr32(c, off + 4, (uint32_t)(v >> 32));
}

bool nvme_probe(unsigned n, struct nvme *c)
{
	for (unsigned i = 0; i < pci_count(); i++) {
		const struct pci_dev *d = pci_device_at(i);
		uint64_t base, size;
		if ((d->class_rev >> 8) != 0x010802 || n-- != 0)
			continue;
		__builtin_memset(c, 0, sizeof(*c));
		if (!pci_bar_map(d, 0, &base, &size) || size < 0x2000)
			return false;
		pci_enable(d, false);
		c->pci = d;
		c->regs = (volatile uint8_t *)(uintptr_t)base;
		c->sid = pci_sid(d);
		c->cap = rd64(c, NVME_REG_CAP);
		c->dstrd = 4u << NVME_CAP_DSTRD(c->cap);
		/* CAP.TO is in 500 ms units; 0 would be a broken controller: allow 1 s. */
		c->to_ns = (NVME_CAP_TO(c->cap) ? NVME_CAP_TO(c->cap) : 2) * 500000000ull;
		return c->cap != ~0ull && (c->cap & NVME_CAP_CSS_NVM);
	}
	return false;
}

/* One page of DMA memory, loaded: its device address in *addr. */
static int page_alloc(struct nvme *c, void **va, struct dmar_dmamap **map, uint64_t *addr)
{
	return dmamem_get(c->qtag, NVME_PAGE, va, map, addr);
}

static void page_release(struct nvme *c, void *va, struct dmar_dmamap **map)
{
	dmamem_put(c->qtag, va, map);
}

static int wait_csts(struct nvme *c, uint32_t mask, uint32_t want, uint64_t ns)
{
	uint64_t end = clock_now_ns() + ns;
	for (;;) {
		uint32_t s = rd32(c, NVME_REG_CSTS);
		if (s == ~0u)
			return DMAR_EHW;
		if ((s & mask) == want)
			return 0;
		if ((s & NVME_CSTS_CFS) && mask == NVME_CSTS_RDY && want)
			return DMAR_EHW; /* fatal status while enabling */
		if (clock_now_ns() > end)
			return DMAR_ETIMEDOUT;
		cpu_relax();
	}
}

static int disable(struct nvme *c)
{
	uint32_t cc = rd32(c, NVME_REG_CC);
	if (cc & NVME_CC_EN)
		wr32(c, NVME_REG_CC, cc & ~NVME_CC_EN);
	return wait_csts(c, NVME_CSTS_RDY, 0, c->to_ns);
}

/* A new queue starts at slot 0 and expects phase tag 1 (the memory holds 0s). */
static void queue_clear(struct nvme_queue *q)
{
	__builtin_memset(q->sq, 0, NVME_PAGE);
	__builtin_memset(q->cq, 0, NVME_PAGE);
	q->sq_tail = q->cq_head = 0;
	q->phase = 1;
}

/* Places `sqe` in queue q, rings its doorbell and polls for its completion. */
static int submit(struct nvme *c, struct nvme_queue *q, struct nvme_sqe *sqe)
{
	uint16_t cid = ++q->cid;
	sqe->cdw0 = (sqe->cdw0 & 0xffffu) | (uint32_t)cid << 16;
	__builtin_memcpy((uint8_t *)q->sq + (size_t)q->sq_tail * sizeof(*sqe), sqe, sizeof(*sqe));
	q->sq_tail = (uint16_t)((q->sq_tail + 1) % NVME_QDEPTH);
	dmar_dmamap_sync(c->qtag, q->sqmap, DMAR_DMASYNC_PREWRITE);
	dmar_dmamap_sync(c->qtag, q->cqmap, DMAR_DMASYNC_PREREAD);
	mfence(); /* the entry is in memory before the doorbell */
	wr32(c, NVME_REG_SQ0TDBL + (2u * q->qid) * c->dstrd, q->sq_tail);

	volatile struct nvme_cqe *cqe = (volatile struct nvme_cqe *)q->cq + q->cq_head;
	uint64_t end = clock_now_ns() + NVME_TIMEOUT_NS;
	for (;;) {
		dmar_dmamap_sync(c->qtag, q->cqmap, DMAR_DMASYNC_POSTREAD);
		if ((cqe->status & 1u) == q->phase)
			break;
		if (clock_now_ns() > end)
			return DMAR_ETIMEDOUT;
		cpu_relax();
	}
	uint16_t status = (uint16_t)(cqe->status >> 1);
	uint16_t got = cqe->cid;
	q->dw0 = cqe->dw0;
	if (++q->cq_head == NVME_QDEPTH) {
		q->cq_head = 0;
		q->phase ^= 1u;
	}
	wr32(c, NVME_REG_SQ0TDBL + (2u * q->qid + 1u) * c->dstrd, q->cq_head);
	q->status = status;
	if (got != cid)
		return DMAR_EHW; /* one command at a time: any other CID is a stray */
	return status ? NVME_ESTATUS : 0;
}

static int admin(struct nvme *c, uint8_t opc, uint32_t nsid, uint64_t prp1, uint32_t cdw10,
		 uint32_t cdw11)
{
	struct nvme_sqe e = { .cdw0 = opc, .nsid = nsid, .prp1 = prp1, .cdw10 = cdw10,
			      .cdw11 = cdw11 };
	int rc = submit(c, &c->q[0], &e);
	c->last_status = c->q[0].status;
	return rc;
}

/* Enables the controller on the admin queue and (re)creates the I/O queue pair. */
static int bring_up(struct nvme *c)
{
	int rc = disable(c);
	if (rc)
		return rc;
	for (unsigned i = 0; i <= c->nioq; i++)
		queue_clear(&c->q[i]);
	wr32(c, NVME_REG_INTMS, ~0u); /* polled: no interrupts */
	wr32(c, NVME_REG_AQA, (NVME_QDEPTH - 1) << 16 | (NVME_QDEPTH - 1));
	wr64(c, NVME_REG_ASQ, c->q[0].sq_addr);
	wr64(c, NVME_REG_ACQ, c->q[0].cq_addr);
	/* MPS 0: 4 KiB pages; CSS 0: NVM command set; AMS 0: round robin. */
	wr32(c, NVME_REG_CC, NVME_CC_IOSQES | NVME_CC_IOCQES | NVME_CC_EN);
	rc = wait_csts(c, NVME_CSTS_RDY, NVME_CSTS_RDY, c->to_ns);
	if (rc)
		return rc;
	if (c->nioq > 1) {
		/* Number of Queues (0-based counts); the answer is what was allocated. */
		uint32_t want = (c->nioq - 1) << 16 | (c->nioq - 1);
		rc = admin(c, NVME_ADM_SET_FEATURES, 0, 0, NVME_FEAT_NUM_QUEUES, want);
		if (rc)
			return rc;
		uint32_t got = c->q[0].dw0;
		if ((got & 0xffff) < c->nioq - 1 || (got >> 16) < c->nioq - 1)
			return DMAR_ENOTSUP;
	}
	/* Physically contiguous queues (PC = 1), no interrupt vector. */
	for (unsigned i = 1; i <= c->nioq && !rc; i++) {
		struct nvme_queue *q = &c->q[i];
		rc = admin(c, NVME_ADM_CREATE_IOCQ, 0, q->cq_addr,
			   (NVME_QDEPTH - 1) << 16 | q->qid, 0x1);
		if (!rc)
			rc = admin(c, NVME_ADM_CREATE_IOSQ, 0, q->sq_addr,
				   (NVME_QDEPTH - 1) << 16 | q->qid, (uint32_t)q->qid << 16 | 0x1);
	}
	c->live = rc == 0;
	return rc;
}

static int identify(struct nvme *c)
{
	const uint8_t *id = c->idbuf;
	dmar_dmamap_sync(c->qtag, c->idmap, DMAR_DMASYNC_PREREAD);
	int rc = admin(c, NVME_ADM_IDENTIFY, 0, c->id_addr, NVME_CNS_CTRL, 0);
	if (rc)
		return rc;
	dmar_dmamap_sync(c->qtag, c->idmap, DMAR_DMASYNC_POSTREAD);
	for (unsigned i = 0; i < 40; i++)
		c->model[i] = (char)(id[24 + i] >= 0x20 && id[24 + i] < 0x7f ? id[24 + i] : ' ');
	c->model[40] = 0;
	/* MDTS: a power of two of the minimum page size; 0 means no limit. The PRP list
	 * page bounds the transfer too (PRP1 plus its entries, first page partial). */
	uint64_t max = (uint64_t)NVME_PRP_ENTRIES * NVME_PAGE;
	unsigned mdts = id[77];
	if (mdts && mdts < 20) {
		uint64_t m = (uint64_t)(NVME_PAGE << NVME_CAP_MPSMIN(c->cap)) << mdts;
		if (m < max)
			max = m;
	}
	c->mdts_bytes = (uint32_t)max;

	dmar_dmamap_sync(c->qtag, c->idmap, DMAR_DMASYNC_PREREAD);
	rc = admin(c, NVME_ADM_IDENTIFY, 1, c->id_addr, NVME_CNS_NS, 0);
	if (rc == NVME_ESTATUS)
		return DMAR_ENODEV; /* no namespace 1 (an invalid namespace status) */
	if (rc)
		return rc;
	dmar_dmamap_sync(c->qtag, c->idmap, DMAR_DMASYNC_POSTREAD);
	__builtin_memcpy(&c->nsze, id, 8);
	if (c->nsze == 0)
		return DMAR_ENODEV; /* namespace 1 is not active */
	unsigned fmt = id[26] & 0xf;
	unsigned lbads = id[128 + 4 * fmt + 2];
	if (lbads < 9 || lbads > 12)
		return DMAR_ENOTSUP; /* blocks this driver does not handle */
	c->lba_size = 1u << lbads;
	return 0;
}

void nvme_detach(struct nvme *c)
{
	if (c->regs && (rd32(c, NVME_REG_CC) & NVME_CC_EN)) {
		/* Normal shutdown first: the controller flushes what it cached. */
		wr32(c, NVME_REG_CC, rd32(c, NVME_REG_CC) | NVME_CC_SHN_NORMAL);
		(void)wait_csts(c, NVME_CSTS_SHST_MASK, NVME_CSTS_SHST_DONE, NVME_SHUTDOWN_NS);
		(void)disable(c);
	}
	c->live = false;
	if (c->pci) {
		/* No more DMA from it, whatever state it is in. */
		uint16_t cmd = pci_read16(c->pci->bus, c->pci->dev, c->pci->fn, 0x04);
		pci_write16(c->pci->bus, c->pci->dev, c->pci->fn, 0x04, (uint16_t)(cmd & ~0x4u));
	}
	if (!c->qtag)
		return;
	for (unsigned i = 0; i <= c->nioq; i++) {
		struct nvme_queue *q = &c->q[i];
		page_release(c, q->sq, &q->sqmap);
		page_release(c, q->cq, &q->cqmap);
		if (q->prpmap) {
			dmar_dmamap_unload(c->qtag, q->prpmap);
			dmar_dmamem_free(c->qtag, q->prp, q->prpmap);
			q->prpmap = 0;
		}
	}
	page_release(c, c->idbuf, &c->idmap);
	dmar_dma_tag_destroy(c->qtag);
	c->qtag = 0;
}

int nvme_init(struct nvme *c, struct dmar_busdma_dev *dev)
{
	return nvme_init_queues(c, dev, 1);
}

int nvme_init_queues(struct nvme *c, struct dmar_busdma_dev *dev, unsigned nioq)
{
	if (nioq < 1 || nioq > NVME_MAX_IOQ)
		return DMAR_EINVAL;
	struct dmar_dma_tag_params p;
	dmar_dma_tag_params_default(&p);
	p.alignment = NVME_PAGE; /* queues and PRP lists: page-aligned, one page */
	p.maxsize = NVME_PAGE;
	p.maxsegsz = NVME_PAGE;
	p.nsegments = 1;
	c->dev = dev;
	c->nioq = nioq;
	for (unsigned i = 0; i <= nioq; i++)
		c->q[i].qid = (uint16_t)i;
	if (NVME_CAP_MQES(c->cap) + 1u < NVME_QDEPTH)
		return DMAR_ENOTSUP;
	int rc = dmar_dma_tag_create(dev, 0, &p, &c->qtag);
	for (unsigned i = 0; i <= nioq && !rc; i++) {
		struct nvme_queue *q = &c->q[i];
		rc = page_alloc(c, &q->sq, &q->sqmap, &q->sq_addr);
		if (!rc)
			rc = page_alloc(c, &q->cq, &q->cqmap, &q->cq_addr);
		if (!rc && i > 0)
			rc = dmar_dmamem_alloc(c->qtag, &q->prp, 0, &q->prpmap);
	}
	if (!rc)
		rc = page_alloc(c, &c->idbuf, &c->idmap, &c->id_addr);
	if (!rc) {
		pci_enable(c->pci, true);
		rc = bring_up(c);
	}
	if (!rc)
		rc = identify(c);
	if (rc)
		nvme_detach(c);
	return rc;
}

void nvme_data_tag_params(const struct nvme *c, struct dmar_dma_tag_params *p)
{
	dmar_dma_tag_params_default(p);
	p->alignment = 4;          /* PRP1's offset must be dword-aligned */
	p->boundary = NVME_PAGE;   /* every PRP entry describes one memory page */
	p->maxsegsz = NVME_PAGE;
	p->maxsize = c->mdts_bytes;
	p->nsegments = 1 + NVME_PRP_ENTRIES; /* PRP1, then one list page */
}

int nvme_reset(struct nvme *c)
{
	c->resets++;
	c->live = false;
	return bring_up(c);
}

/* After a timeout or a DMA error the controller's state is unknown: reset it. */
static int finish_io(struct nvme *c, int rc)
{
	bool xfer_error = rc == NVME_ESTATUS && NVME_SCT(c->last_status) == 0 &&
			  NVME_SC(c->last_status) == NVME_SC_DATA_XFER_ERROR;
	if (rc == DMAR_ETIMEDOUT || rc == DMAR_EHW || xfer_error) {
		uint16_t status = c->last_status; /* the reset's commands overwrite it */
		(void)nvme_reset(c);
		c->last_status = status;
	}
	return rc;
}

/* Builds the READ/WRITE command for the map's segments (its PRP list, when one is
 * needed, in queue q's page, loaded until release_prp) into *e. */
static int build_rw(struct nvme *c, struct nvme_queue *q, bool write, uint64_t lba,
		    uint32_t count, const struct dmar_dmamap *map, struct nvme_sqe *e,
		    bool *list)
{
	const struct dmar_dma_segment *s = dmar_dmamap_segs(map);
	unsigned n = dmar_dmamap_nsegs(map);
	uint64_t total = 0;
	*list = false;
	if (!c->live || count == 0 || n == 0 || n > 1 + NVME_PRP_ENTRIES ||
	    lba + count > c->nsze || (s[0].addr & 3))
		return DMAR_EINVAL;
	/* Every entry after PRP1 starts a page; every one before the last ends one. */
	for (unsigned i = 0; i < n; i++) {
		if (i > 0 && (s[i].addr & (NVME_PAGE - 1)))
			return DMAR_EINVAL;
		if (i + 1 < n && ((s[i].addr + s[i].len) & (NVME_PAGE - 1)))
			return DMAR_EINVAL;
		total += s[i].len;
	}
	if (total != (uint64_t)count * c->lba_size || total > c->mdts_bytes)
		return DMAR_EINVAL;

	*e = (struct nvme_sqe){ .cdw0 = write ? NVME_CMD_WRITE : NVME_CMD_READ, .nsid = 1,
				.prp1 = s[0].addr, .cdw10 = (uint32_t)lba,
				.cdw11 = (uint32_t)(lba >> 32), .cdw12 = count - 1 };
	if (n == 2) {
		e->prp2 = s[1].addr;
	} else if (n > 2) {
		/* The list page is loaded for this command only, as its data are. */
		int rc = dmar_dmamap_load(c->qtag, q->prpmap, q->prp, NVME_PAGE, DMAR_DMA_NOWRITE);
		if (rc)
			return rc;
		*list = true;
		uint64_t *ent = q->prp;
		for (unsigned i = 1; i < n; i++)
			ent[i - 1] = s[i].addr;
		dmar_dmamap_sync(c->qtag, q->prpmap, DMAR_DMASYNC_PREWRITE);
		e->prp2 = dmar_dmamap_segs(q->prpmap)[0].addr;
	}
	return 0;
}

static void release_prp(struct nvme *c, struct nvme_queue *q, bool list)
{
	if (list) {
		dmar_dmamap_sync(c->qtag, q->prpmap, DMAR_DMASYNC_POSTWRITE);
		dmar_dmamap_unload(c->qtag, q->prpmap);
	}
}

int nvme_rw(struct nvme *c, bool write, uint64_t lba, uint32_t count,
	    const struct dmar_dmamap *map)
{
	struct nvme_queue *q = &c->q[1];
	struct nvme_sqe e;
	bool list;
	int rc = build_rw(c, q, write, lba, count, map, &e, &list);
	if (rc)
		return rc;
	__builtin_memcpy(c->last_sqe, &e, sizeof(e));
	rc = submit(c, q, &e);
	c->last_status = q->status;
	release_prp(c, q, list);
	return finish_io(c, rc);
}

int nvme_rw_queue(struct nvme *c, unsigned qid, bool write, uint64_t lba, uint32_t count,
		  const struct dmar_dmamap *map)
{
	if (qid < 1 || qid > c->nioq)
		return DMAR_EINVAL;
	struct nvme_queue *q = &c->q[qid];
	struct nvme_sqe e;
	bool list;
	int rc = build_rw(c, q, write, lba, count, map, &e, &list);
	if (rc)
		return rc;
	rc = submit(c, q, &e);
	release_prp(c, q, list);
	return rc;
}

int nvme_resubmit_last(struct nvme *c)
{
	struct nvme_sqe e;
	if (!c->live)
		return DMAR_EINVAL;
	__builtin_memcpy(&e, c->last_sqe, sizeof(e));
	int rc = submit(c, &c->q[1], &e);
	c->last_status = c->q[1].status;
	return finish_io(c, rc);
}

void nvme_last_prps(const struct nvme *c, uint64_t *prp1, uint64_t *prp2)
{
	struct nvme_sqe e;
	__builtin_memcpy(&e, c->last_sqe, sizeof(e));
	*prp1 = e.prp1;
	*prp2 = e.prp2;
}
