/*
 * nvme.h - a polled NVMe driver (bound by PCI class 01:08:02, as a real driver binds):
 * controller reset and enable bounded by CAP.TO, one admin queue pair, IDENTIFY
 * controller and namespace 1, one I/O completion + submission queue pair created by
 * admin commands (or, with nvme_init_queues, up to NVME_MAX_IOQ pairs: one per CPU,
 * after SET FEATURES Number of Queues), READ/WRITE with PRP1/PRP2 and a PRP list page
 * of the queue's own. Completions are polled by their phase tag; no interrupts.
 *
 * Concurrency: nvme_rw_queue on different queues may run on different CPUs at once (each
 * queue has its own entries, doorbells, command ids and PRP list page; the busdma tags
 * are shared, which busdma allows). Everything else, nvme_rw included, is for one CPU
 * while no nvme_rw_queue runs.
 *
 * Every byte the controller reads or writes in RAM (queues, IDENTIFY data, PRP lists,
 * data) comes from busdma: the driver creates its own tags for queues and PRP lists
 * from the busdma device the caller gives it; data buffers are the caller's, loaded on
 * a tag made from nvme_data_tag_params().
 */
#ifndef KERNEL_NVME_H
#define KERNEL_NVME_H

#include <stdbool.h>
#include <stdint.h>

#include "dmar/busdma.h"
#include "pci.h"

#define NVME_PAGE 4096u
#define NVME_QDEPTH 64u          /* entries of each queue: one 4 KiB page of SQEs */
#define NVME_PRP_ENTRIES 512u    /* 8-byte entries of one PRP list page */
#define NVME_TIMEOUT_NS 5000000000ull /* per command */
#define NVME_MAX_IOQ 8u          /* I/O queue pairs nvme_init_queues may create */

/* Errors of nvme_init / nvme_rw besides the busdma ones (negative dmar_error). */
#define NVME_ESTATUS (-1000) /* the controller completed the command with an error */

struct nvme {
	const struct pci_dev *pci;
	volatile uint8_t *regs;
	uint16_t sid;
	uint64_t cap;
	uint32_t dstrd;          /* doorbell stride, bytes */
	uint64_t to_ns;          /* CAP.TO: the bound on CSTS.RDY changes */
	struct dmar_busdma_dev *dev;
	struct dmar_dma_tag *qtag;   /* one page each: queues, IDENTIFY data, PRP lists */
	/* Admin and I/O queue pairs: index 0 admin, 1..nioq I/O (queue id = index). */
	struct nvme_queue {
		void *sq, *cq;
		struct dmar_dmamap *sqmap, *cqmap;
		uint64_t sq_addr, cq_addr; /* device addresses */
		uint16_t sq_tail, cq_head;
		uint8_t phase;
		uint16_t qid;
		uint16_t cid;            /* the last command id used on this queue */
		uint16_t status;         /* status field of its last completion */
		uint32_t dw0;            /* dword 0 of its last completion */
		void *prp;               /* its PRP list page, loaded per command */
		struct dmar_dmamap *prpmap;
	} q[1 + NVME_MAX_IOQ];
	unsigned nioq;               /* I/O queue pairs (1 unless nvme_init_queues) */
	void *idbuf;                 /* IDENTIFY data */
	struct dmar_dmamap *idmap;
	uint64_t id_addr;
	/* From IDENTIFY. */
	uint32_t mdts_bytes;         /* largest transfer (0 in MDTS: capped by the driver) */
	uint32_t lba_size;
	uint64_t nsze;               /* namespace size in logical blocks */
	char model[41];
	/* The last I/O command as submitted, for nvme_resubmit_last(). */
	uint32_t last_sqe[16];
	uint16_t last_status;        /* status field of the last completion (SCT << 8 | SC) */
	unsigned resets;             /* controller resets done to recover */
	bool live;
};

/* Finds the n-th NVMe controller (class 01:08:02), maps BAR0, reads CAP. No DMA yet.
 * Returns false when there is none. */
bool nvme_probe(unsigned n, struct nvme *c);

/* Sets up DMA through `dev` (the busdma device of the controller's function), resets
 * and enables the controller, identifies it and namespace 1, creates the I/O queues.
 * 0, DMAR_ENODEV when namespace 1 is absent (no disk), another negative dmar_error,
 * NVME_ESTATUS, or DMAR_ETIMEDOUT. On failure everything is undone (nvme_detach is not
 * needed). */
int nvme_init(struct nvme *c, struct dmar_busdma_dev *dev);
/* The same with `nioq` I/O queue pairs (1..NVME_MAX_IOQ), ids 1..nioq. DMAR_EINVAL for
 * another count; DMAR_ENOTSUP when the controller grants fewer. */
int nvme_init_queues(struct nvme *c, struct dmar_busdma_dev *dev, unsigned nioq);
/* Disables the controller (so it DMAs no more), frees the DMA memory and tags. */
void nvme_detach(struct nvme *c);

/* The data tag's constraints: each segment one PRP entry (maxsegsz and boundary the
 * controller page size), as many segments as PRP1 plus a PRP list page hold, at most
 * the IDENTIFY MDTS transfer, dword-aligned starts, 64-bit addresses. */
void nvme_data_tag_params(const struct nvme *c, struct dmar_dma_tag_params *p);

/* One READ (write = false) or WRITE of `count` blocks at `lba` through the segments of
 * `map` (loaded with count * lba_size bytes on a tag of nvme_data_tag_params). 0;
 * DMAR_EINVAL when the segments break the PRP rules; NVME_ESTATUS when the controller
 * reports an error (last_status has it); DMAR_ETIMEDOUT. After a timeout or a data
 * transfer error the driver resets the controller and re-creates its queues before
 * returning (the error is still returned). */
int nvme_rw(struct nvme *c, bool write, uint64_t lba, uint32_t count,
	    const struct dmar_dmamap *map);

/* nvme_rw on I/O queue `qid` (1..nioq), for one CPU per queue at a time: it submits on
 * that queue and polls that queue's completion queue only. Same returns as nvme_rw
 * (the status in the queue's `status`), but no recovery: a reset would take the other
 * CPUs' queues away, so the caller resets (nvme_reset) once every queue is idle. */
int nvme_rw_queue(struct nvme *c, unsigned qid, bool write, uint64_t lba, uint32_t count,
		  const struct dmar_dmamap *map);

/* Submits the last I/O command again exactly as it was, pointers included: the classic
 * retry bug (its PRP list and data may have been unloaded since). Same returns and
 * recovery as nvme_rw. Only for tests. */
int nvme_resubmit_last(struct nvme *c);
/* PRP1 and PRP2 of the last I/O command. */
void nvme_last_prps(const struct nvme *c, uint64_t *prp1, uint64_t *prp2);

/* Controller reset: CC.EN cleared, then enabled again with the admin queue, and the I/O
 * queues re-created. 0 or a negative error. */
int nvme_reset(struct nvme *c);

#endif
