/*
 * megasas.h - a polled driver for LSI MegaRAID SAS controllers of the MFI family
 * (SAS 1078, 1000:0060; gen2 SAS 2108, 1000:0078/0079): the hardware FreeBSD's mfi(4)
 * drives. Firmware state handshake through the outbound scratch pad (FW state READY),
 * the MFI init frame naming the reply queue and its producer/consumer indexes, DCMD
 * CTRL_GET_INFO, READ CAPACITY(10) through LD SCSI pass-through, and LD READ/WRITE
 * frames with a 64-bit SGL for logical drive 0. Completion is polled in the frame's
 * cmd_status: the interrupt stays masked, and QEMU's firmware advances the reply
 * queue's producer index only while it is unmasked.
 *
 * All DMA memory comes from busdma: frames, the reply queue and the DCMD data buffer
 * from the driver's own tag (one page each, below 4 GiB because the inbound queue port
 * takes a 32-bit frame address); the frame is loaded for each command and unloaded when
 * it completes, as its data are. Data buffers are the caller's, on a tag made from
 * megasas_data_tag_params().
 */
#ifndef KERNEL_MEGASAS_H
#define KERNEL_MEGASAS_H

#include <stdbool.h>
#include <stdint.h>

#include "dmar/busdma.h"
#include "pci.h"

#define MEGASAS_PAGE 4096u
#define MEGASAS_RQ_ENTRIES 64u     /* reply queue entries (32-bit contexts) */
#define MEGASAS_MAX_FRAMES 16u     /* 64-byte frames one command may span: the inbound
				    * queue port counts 15 extra ones at most */
#define MEGASAS_TIMEOUT_NS 3000000000ull   /* per command */
#define MEGASAS_FW_READY_NS 10000000000ull /* firmware state transitions */

/* Errors besides the busdma ones (negative dmar_error). */
#define MEGASAS_ESTATUS (-1100) /* cmd_status or scsi_status reported an error */

struct megasas {
	const struct pci_dev *pci;
	volatile uint8_t *regs;
	uint16_t sid;
	bool gen2;
	uint32_t fw_status;          /* the scratch pad at probe */
	uint32_t max_cmds, max_sge;  /* from the firmware status */
	struct dmar_busdma_dev *dev;
	struct dmar_dma_tag *ftag;   /* one page each: frame, reply queue, DCMD data */
	void *frame;                 /* the command frame (and the init queue info) */
	struct dmar_dmamap *fmap;    /* loaded for each command */
	void *rq;                    /* reply queue; producer/consumer indexes follow */
	struct dmar_dmamap *rqmap;
	uint64_t rq_addr;
	void *buf;                   /* DCMD and pass-through data */
	struct dmar_dmamap *bufmap;
	uint64_t buf_addr;
	uint32_t context;
	/* From the firmware. */
	char product[81];
	uint32_t max_request_sectors;
	uint32_t block_size;
	uint64_t blocks;
	unsigned nsge;               /* SGL entries of a command (<= max_sge) */
	/* The last command as posted, for megasas_resubmit_last(). */
	uint8_t last_frame[MEGASAS_MAX_FRAMES * 64];
	unsigned last_len;
	uint64_t last_frame_addr;
	uint32_t last_iqp;
	uint8_t last_cmd_status, last_scsi_status;
	unsigned resets;
	bool live;
};

/* Finds the n-th MFI controller (1078 or gen2 by id), maps its register BAR, reads the
 * firmware status. No DMA yet. */
bool megasas_probe(unsigned n, struct megasas *m);

/* Brings the firmware to READY, posts the init frame with the reply queue (firmware
 * OPERATIONAL), reads the controller information and the capacity of logical drive
 * 0. 0, DMAR_ENODEV when there is no logical drive 0 (no disk), or another negative
 * error; on failure everything is undone. */
int megasas_init(struct megasas *m, struct dmar_busdma_dev *dev);
/* Aborts and resets the firmware (it then forgets the reply queue), frees the DMA
 * memory and the tag. */
void megasas_detach(struct megasas *m);

/* The data tag's constraints: a 64-bit SGL (no address limit), as many segments as the
 * firmware allows and the frames of one command hold, at most (segments - 1) pages so
 * any buffer of that size fits, and the firmware's largest request. */
void megasas_data_tag_params(const struct megasas *m, struct dmar_dma_tag_params *p);

/* LD READ (write = false) or WRITE of `count` blocks at `lba` of logical drive 0
 * through the segments of `map`. 0; DMAR_EINVAL; MEGASAS_ESTATUS (last_cmd_status /
 * last_scsi_status tell); DMAR_ETIMEDOUT, after which the driver has aborted, reset and
 * re-initialised the firmware. */
int megasas_rw(struct megasas *m, bool write, uint64_t lba, uint32_t count,
	       const struct dmar_dmamap *map);

/* Posts the last command again exactly as it was, at the frame address it had: the
 * classic retry bug (the frame, whose SGL names the data, and the data may have been
 * unloaded since). Same returns and recovery as megasas_rw. Only for tests. */
int megasas_resubmit_last(struct megasas *m);

/* Abort everything, firmware back to READY, init frame again. */
int megasas_reset(struct megasas *m);

#endif
