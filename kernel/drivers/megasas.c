/* The MFI firmware interface of LSI MegaRAID SAS controllers (register and frame names
 * as the MFI interface and FreeBSD's mfi(4) name them). */
#include "megasas.h"
#include "dmamem.h"

#include "clock.h"
#include "x86.h"

#define MFI_VENDOR 0x1000
#define MFI_DEV_1078 0x0060
#define MFI_DEV_GEN2 0x0078
#define MFI_DEV_GEN2_QEMU 0x0079

/* Registers (32-bit). */
#define MFI_IDB 0x20   /* inbound doorbell */
#define MFI_OMSK 0x34  /* outbound interrupt mask */
#define MFI_IQP 0x40   /* inbound queue port */
#define MFI_ODCR0 0xa0 /* outbound doorbell clear */
#define MFI_OSP0 0xb0  /* outbound scratch pad 0: firmware status */

#define MFI_FWSTATE_MASK 0xf0000000u
#define MFI_FWSTATE_WAIT_HANDSHAKE 0x60000000u
#define MFI_FWSTATE_BOOT_MSG_PENDING 0x90000000u
#define MFI_FWSTATE_READY 0xb0000000u
#define MFI_FWSTATE_OPERATIONAL 0xc0000000u
#define MFI_FWSTATE_FAULT 0xf0000000u
#define MFI_FWSTATE_MAXSGL(s) (((s) >> 16) & 0xffu)
#define MFI_FWSTATE_MAXCMD(s) ((s) & 0xffffu)

#define MFI_FWINIT_ABORT 0x01u
#define MFI_FWINIT_READY 0x02u
#define MFI_FWINIT_CLEAR_HANDSHAKE 0x08u
#define MFI_FWINIT_HOTPLUG 0x10u

/* Frame commands. */
#define MFI_CMD_INIT 0x00
#define MFI_CMD_LD_READ 0x01
#define MFI_CMD_LD_WRITE 0x02
#define MFI_CMD_LD_SCSI_IO 0x03
#define MFI_CMD_DCMD 0x05

#define MFI_DCMD_CTRL_GET_INFO 0x01010000u

#define MFI_FRAME_SGL64 0x0002u
#define MFI_FRAME_DIR_WRITE 0x0008u
#define MFI_FRAME_DIR_READ 0x0010u

#define MFI_STAT_OK 0x00
#define MFI_STAT_DEVICE_NOT_FOUND 0x0c
#define MFI_STAT_PENDING 0xff /* what the driver leaves in cmd_status before posting */

#define MFI_FRAME_SIZE 64u
/* Header fields (all frames). */
#define HDR_CMD 0
#define HDR_SENSE_LEN 1
#define HDR_CMD_STATUS 2
#define HDR_SCSI_STATUS 3
#define HDR_TARGET_ID 4
#define HDR_LUN_ID 5
#define HDR_CDB_LEN 6
#define HDR_SGE_COUNT 7
#define HDR_CONTEXT 8
#define HDR_FLAGS 16
#define HDR_TIMEOUT 18
#define HDR_DATA_LEN 20
/* Init frame. */
#define INIT_QINFO_NEW_LO 24
#define INIT_QINFO_NEW_HI 28
/* LD I/O frame. */
#define IO_LBA_LO 32
#define IO_LBA_HI 36
#define IO_SGL 40
/* Pass-through frame. */
#define PASS_CDB 32
#define PASS_SGL 48
/* DCMD frame. */
#define DCMD_OPCODE 24
#define DCMD_SGL 40

#define SG64_SIZE 12u /* addr 8, len 4, packed */

/* Where things sit in the driver's pages. */
#define QINFO_OFF 64       /* the init queue info, after the init frame */
#define RQ_PI_OFF 0x800    /* producer index, in the reply queue's page */
#define RQ_CI_OFF 0x804    /* consumer index */

/* CTRL_GET_INFO data (struct mfi_ctrl_info). */
#define INFO_SIZE 0x800u
#define INFO_PRODUCT_NAME 1344
#define INFO_MAX_REQUEST_SIZE 1468

static uint32_t rd32(struct megasas *m, unsigned off) { return *(volatile uint32_t *)(m->regs + off); }
static void wr32(struct megasas *m, unsigned off, uint32_t v) { *(volatile uint32_t *)(m->regs + off) = v; }

static void put8(void *f, unsigned off, uint8_t v) { ((uint8_t *)f)[off] = v; }
static void put16(void *f, unsigned off, uint16_t v) { __builtin_memcpy((uint8_t *)f + off, &v, 2); }
static void put32(void *f, unsigned off, uint32_t v) { __builtin_memcpy((uint8_t *)f + off, &v, 4); }
static void put64(void *f, unsigned off, uint64_t v) { __builtin_memcpy((uint8_t *)f + off, &v, 8); }
static uint32_t get32(const void *p, unsigned off)
{
	uint32_t v;
	__builtin_memcpy(&v, (const uint8_t *)p + off, 4);
	return v;
}
static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t fw_status(struct megasas *m) { return rd32(m, MFI_OSP0); }

bool megasas_probe(unsigned n, struct megasas *m)
{
	for (unsigned i = 0; i < pci_count(); i++) {
		const struct pci_dev *d = pci_device_at(i);
		if (d->vendor != MFI_VENDOR || (d->device != MFI_DEV_1078 &&
						 d->device != MFI_DEV_GEN2 &&
						 d->device != MFI_DEV_GEN2_QEMU))
			continue;
		if (n-- != 0)
			continue;
		__builtin_memset(m, 0, sizeof(*m));
		m->gen2 = d->device != MFI_DEV_1078;
		uint64_t base, size;
		/* The 1078 has its registers at BAR0, gen2 parts at BAR1 (BAR0 is I/O). */
		if (!pci_bar_map(d, m->gen2 ? 1 : 0, &base, &size) || size < 0x100)
			return false;
		pci_enable(d, false);
		m->pci = d;
		m->regs = (volatile uint8_t *)(uintptr_t)base;
		m->sid = pci_sid(d);
		m->fw_status = fw_status(m);
		return m->fw_status != ~0u;
	}
	return false;
}

/* Drives the firmware to READY (the handshake of the MFI interface), bounded. */
static int fw_ready(struct megasas *m)
{
	uint64_t end = clock_now_ns() + MEGASAS_FW_READY_NS;
	uint32_t prev = 0;
	for (;;) {
		uint32_t st = fw_status(m) & MFI_FWSTATE_MASK;
		if (st == MFI_FWSTATE_READY)
			break;
		if (st == MFI_FWSTATE_FAULT)
			return DMAR_EHW;
		if (st != prev) {
			/* Each state is told to move on once. */
			if (st == MFI_FWSTATE_WAIT_HANDSHAKE)
				wr32(m, MFI_IDB, MFI_FWINIT_CLEAR_HANDSHAKE);
			else if (st == MFI_FWSTATE_BOOT_MSG_PENDING)
				wr32(m, MFI_IDB, MFI_FWINIT_HOTPLUG);
			else if (st == MFI_FWSTATE_OPERATIONAL)
				wr32(m, MFI_IDB, MFI_FWINIT_READY);
			prev = st;
		}
		if (clock_now_ns() > end)
			return DMAR_ETIMEDOUT;
		cpu_relax();
	}
	uint32_t s = fw_status(m);
	m->max_cmds = MFI_FWSTATE_MAXCMD(s);
	m->max_sge = MFI_FWSTATE_MAXSGL(s);
	return m->max_cmds && m->max_sge ? 0 : DMAR_EHW;
}

/* Frames of one command of `len` bytes, as the inbound queue port counts them. */
static uint32_t extra_frames(unsigned len)
{
	unsigned n = (len + MFI_FRAME_SIZE - 1) / MFI_FRAME_SIZE;
	return n ? n - 1 : 0;
}

/* Posts the frame at device address `addr` and polls its cmd_status in `frame`. */
static int post(struct megasas *m, uint32_t iqp)
{
	volatile uint8_t *st = (volatile uint8_t *)m->frame + HDR_CMD_STATUS;
	m->last_iqp = iqp;
	dmar_dmamap_sync(m->ftag, m->fmap, DMAR_DMASYNC_PREWRITE | DMAR_DMASYNC_PREREAD);
	mfence(); /* the frame is in memory before the controller is told */
	wr32(m, MFI_IQP, iqp);
	uint64_t end = clock_now_ns() + MEGASAS_TIMEOUT_NS;
	for (;;) {
		dmar_dmamap_sync(m->ftag, m->fmap, DMAR_DMASYNC_POSTREAD);
		if (*st != MFI_STAT_PENDING)
			break;
		if (clock_now_ns() > end) {
			m->last_cmd_status = MFI_STAT_PENDING;
			m->last_scsi_status = 0;
			return DMAR_ETIMEDOUT;
		}
		cpu_relax();
	}
	m->last_cmd_status = *st;
	m->last_scsi_status = ((volatile uint8_t *)m->frame)[HDR_SCSI_STATUS];
	return m->last_cmd_status == MFI_STAT_OK && m->last_scsi_status == 0 ? 0
									     : MEGASAS_ESTATUS;
}

/* Loads the frame page for one command, posts the `len` bytes built in it, unloads it
 * when the command is over. */
static int command(struct megasas *m, unsigned len)
{
	int rc = dmar_dmamap_load(m->ftag, m->fmap, m->frame, MEGASAS_PAGE, 0);
	if (rc)
		return rc;
	uint64_t addr = dmar_dmamap_segs(m->fmap)[0].addr;
	put64(m->frame, HDR_CONTEXT, ++m->context);
	put8(m->frame, HDR_CMD_STATUS, MFI_STAT_PENDING);
	if (((uint8_t *)m->frame)[HDR_CMD] == MFI_CMD_INIT) {
		put32(m->frame, INIT_QINFO_NEW_LO, (uint32_t)(addr + QINFO_OFF));
		put32(m->frame, INIT_QINFO_NEW_HI, (uint32_t)((addr + QINFO_OFF) >> 32));
	}
	__builtin_memcpy(m->last_frame, m->frame, len);
	m->last_len = len;
	m->last_frame_addr = addr;
	/* Bit 0 says the address is an MFI frame; bits 4:1 count the extra frames. */
	rc = post(m, (uint32_t)addr | extra_frames(len) << 1 | 1u);
	dmar_dmamap_unload(m->ftag, m->fmap);
	return rc;
}

static int init_frame(struct megasas *m)
{
	uint8_t *f = m->frame;
	uint8_t *q = f + QINFO_OFF;
	__builtin_memset(f, 0, MEGASAS_PAGE);
	__builtin_memset(m->rq, 0, MEGASAS_PAGE);
	dmar_dmamap_sync(m->ftag, m->rqmap, DMAR_DMASYNC_PREWRITE | DMAR_DMASYNC_PREREAD);
	put8(f, HDR_CMD, MFI_CMD_INIT);
	put32(f, HDR_DATA_LEN, 32); /* the queue info */
	put32(q, 0, 0);             /* flags: 32-bit contexts */
	put32(q, 4, MEGASAS_RQ_ENTRIES);
	put64(q, 8, m->rq_addr);
	put64(q, 16, m->rq_addr + RQ_PI_OFF);
	put64(q, 24, m->rq_addr + RQ_CI_OFF);
	int rc = command(m, QINFO_OFF + 32);
	if (rc)
		return rc;
	return (fw_status(m) & MFI_FWSTATE_MASK) == MFI_FWSTATE_OPERATIONAL ? 0 : DMAR_EHW;
}

static void sg64(uint8_t *f, unsigned off, uint64_t addr, uint32_t len)
{
	put64(f, off, addr);
	put32(f, off + 8, len);
}

static int get_info(struct megasas *m)
{
	uint8_t *f = m->frame;
	__builtin_memset(f, 0, MEGASAS_PAGE);
	put8(f, HDR_CMD, MFI_CMD_DCMD);
	put8(f, HDR_SGE_COUNT, 1);
	put16(f, HDR_FLAGS, MFI_FRAME_SGL64 | MFI_FRAME_DIR_READ);
	put32(f, HDR_DATA_LEN, INFO_SIZE);
	put32(f, DCMD_OPCODE, MFI_DCMD_CTRL_GET_INFO);
	sg64(f, DCMD_SGL, m->buf_addr, INFO_SIZE);
	dmar_dmamap_sync(m->ftag, m->bufmap, DMAR_DMASYNC_PREREAD);
	int rc = command(m, DCMD_SGL + SG64_SIZE);
	dmar_dmamap_sync(m->ftag, m->bufmap, DMAR_DMASYNC_POSTREAD);
	if (rc)
		return rc;
	const char *name = (const char *)m->buf + INFO_PRODUCT_NAME;
	for (unsigned i = 0; i < 80; i++)
		m->product[i] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : 0;
	m->product[80] = 0;
	m->max_request_sectors = get32(m->buf, INFO_MAX_REQUEST_SIZE);
	return 0;
}

/* READ CAPACITY(10) of logical drive 0 through SCSI pass-through. */
static int read_capacity(struct megasas *m)
{
	int rc = 0;
	/* The first command after a reset may report a unit attention: ask again. */
	for (unsigned tries = 0; tries < 3; tries++) {
		uint8_t *f = m->frame;
		__builtin_memset(f, 0, MEGASAS_PAGE);
		__builtin_memset(m->buf, 0, 8);
		put8(f, HDR_CMD, MFI_CMD_LD_SCSI_IO);
		put8(f, HDR_CDB_LEN, 10);
		put8(f, HDR_SGE_COUNT, 1);
		put16(f, HDR_FLAGS, MFI_FRAME_SGL64 | MFI_FRAME_DIR_READ);
		put32(f, HDR_DATA_LEN, 8);
		put8(f, PASS_CDB, 0x25); /* READ CAPACITY(10) */
		sg64(f, PASS_SGL, m->buf_addr, 8);
		dmar_dmamap_sync(m->ftag, m->bufmap, DMAR_DMASYNC_PREREAD);
		rc = command(m, PASS_SGL + SG64_SIZE);
		dmar_dmamap_sync(m->ftag, m->bufmap, DMAR_DMASYNC_POSTREAD);
		if (rc != MEGASAS_ESTATUS)
			break;
		if (m->last_cmd_status == MFI_STAT_DEVICE_NOT_FOUND)
			return DMAR_ENODEV;
	}
	if (rc)
		return rc;
	const uint8_t *d = m->buf;
	m->blocks = (uint64_t)be32(d) + 1;
	m->block_size = be32(d + 4);
	return m->block_size >= 512 && m->block_size <= 4096 ? 0 : DMAR_EHW;
}

void megasas_detach(struct megasas *m)
{
	if (m->regs && (fw_status(m) & MFI_FWSTATE_MASK) != MFI_FWSTATE_READY) {
		/* Abort and back to READY: the firmware forgets the reply queue. */
		wr32(m, MFI_IDB, MFI_FWINIT_ABORT | MFI_FWINIT_READY);
		(void)fw_ready(m);
	}
	m->live = false;
	if (m->pci) {
		uint16_t cmd = pci_read16(m->pci->bus, m->pci->dev, m->pci->fn, 0x04);
		pci_write16(m->pci->bus, m->pci->dev, m->pci->fn, 0x04, (uint16_t)(cmd & ~0x4u));
	}
	if (!m->ftag)
		return;
	dmamem_put(m->ftag, m->frame, &m->fmap);
	dmamem_put(m->ftag, m->rq, &m->rqmap);
	dmamem_put(m->ftag, m->buf, &m->bufmap);
	dmar_dma_tag_destroy(m->ftag);
	m->ftag = 0;
}

static int persistent_page(struct megasas *m, void **va, struct dmar_dmamap **map,
			   uint64_t *addr)
{
	return dmamem_get(m->ftag, MEGASAS_PAGE, va, map, addr);
}

int megasas_init(struct megasas *m, struct dmar_busdma_dev *dev)
{
	struct dmar_dma_tag_params p;
	dmar_dma_tag_params_default(&p);
	p.alignment = MEGASAS_PAGE; /* frames: 32-byte aligned at least; one page each */
	p.lowaddr = 0xffffffffu;    /* the inbound queue port takes 32-bit addresses */
	p.maxsize = MEGASAS_PAGE;
	p.maxsegsz = MEGASAS_PAGE;
	p.nsegments = 1;
	m->dev = dev;
	int rc = dmar_dma_tag_create(dev, 0, &p, &m->ftag);
	if (!rc)
		rc = dmar_dmamem_alloc(m->ftag, &m->frame, 0, &m->fmap);
	if (!rc)
		rc = persistent_page(m, &m->rq, &m->rqmap, &m->rq_addr);
	if (!rc)
		rc = persistent_page(m, &m->buf, &m->bufmap, &m->buf_addr);
	if (!rc) {
		pci_enable(m->pci, true);
		rc = megasas_reset(m);
		m->resets = 0;
	}
	if (!rc)
		rc = get_info(m);
	if (!rc)
		rc = read_capacity(m);
	if (!rc) {
		/* The SGL of an LD I/O frame within the frames one command may span. */
		unsigned fit = (MEGASAS_MAX_FRAMES * MFI_FRAME_SIZE - IO_SGL) / SG64_SIZE;
		m->nsge = m->max_sge < fit ? m->max_sge : fit;
	}
	if (rc)
		megasas_detach(m);
	return rc;
}

int megasas_reset(struct megasas *m)
{
	m->resets++;
	m->live = false;
	/* Abort whatever is pending; READY also drops the old reply queue. */
	if ((fw_status(m) & MFI_FWSTATE_MASK) != MFI_FWSTATE_READY)
		wr32(m, MFI_IDB, MFI_FWINIT_ABORT | MFI_FWINIT_READY);
	int rc = fw_ready(m);
	if (!rc)
		rc = init_frame(m);
	m->live = rc == 0;
	return rc;
}

void megasas_data_tag_params(const struct megasas *m, struct dmar_dma_tag_params *p)
{
	dmar_dma_tag_params_default(p);
	/* 64-bit SGL entries: any address, 32-bit lengths (the default segment size
	 * fits). Segments: what the firmware and the frames of one command take. */
	p->nsegments = m->nsge;
	p->maxsize = (uint64_t)(m->nsge - 1) * MEGASAS_PAGE;
	if (m->max_request_sectors &&
	    (uint64_t)m->max_request_sectors * m->block_size < p->maxsize)
		p->maxsize = (uint64_t)m->max_request_sectors * m->block_size;
}

static int finish(struct megasas *m, int rc)
{
	if (rc == DMAR_ETIMEDOUT) {
		/* The frame is lost in the firmware: start over. */
		uint8_t cs = m->last_cmd_status, ss = m->last_scsi_status;
		(void)megasas_reset(m);
		m->last_cmd_status = cs; /* the init frame's status would hide it */
		m->last_scsi_status = ss;
	}
	return rc;
}

int megasas_rw(struct megasas *m, bool write, uint64_t lba, uint32_t count,
	       const struct dmar_dmamap *map)
{
	const struct dmar_dma_segment *s = dmar_dmamap_segs(map);
	unsigned n = dmar_dmamap_nsegs(map);
	uint64_t total = 0;
	if (!m->live || count == 0 || n == 0 || n > m->nsge || lba + count > m->blocks)
		return DMAR_EINVAL;
	uint8_t *f = m->frame;
	__builtin_memset(f, 0, MEGASAS_MAX_FRAMES * MFI_FRAME_SIZE);
	for (unsigned i = 0; i < n; i++) {
		if (s[i].len > 0xffffffffu)
			return DMAR_EINVAL;
		sg64(f, IO_SGL + i * SG64_SIZE, s[i].addr, (uint32_t)s[i].len);
		total += s[i].len;
	}
	if (total != (uint64_t)count * m->block_size)
		return DMAR_EINVAL;
	put8(f, HDR_CMD, write ? MFI_CMD_LD_WRITE : MFI_CMD_LD_READ);
	put8(f, HDR_TARGET_ID, 0);
	put8(f, HDR_SGE_COUNT, (uint8_t)n);
	put16(f, HDR_FLAGS, MFI_FRAME_SGL64 | (write ? MFI_FRAME_DIR_WRITE : MFI_FRAME_DIR_READ));
	put32(f, HDR_DATA_LEN, count); /* LD I/O frames count blocks */
	put32(f, IO_LBA_LO, (uint32_t)lba);
	put32(f, IO_LBA_HI, (uint32_t)(lba >> 32));
	return finish(m, command(m, IO_SGL + n * SG64_SIZE));
}

int megasas_resubmit_last(struct megasas *m)
{
	if (!m->live || !m->last_len)
		return DMAR_EINVAL;
	/* The bug being reproduced: the old frame address is posted again without the
	 * frame being loaded. */
	__builtin_memcpy(m->frame, m->last_frame, m->last_len);
	put8(m->frame, HDR_CMD_STATUS, MFI_STAT_PENDING);
	return finish(m, post(m, m->last_iqp));
}
