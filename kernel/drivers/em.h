/*
 * em.h - a polled driver for Intel's 8254x/8257x gigabit controllers (FreeBSD's em),
 * bound by PCI id: 82540EM (8086:100e, QEMU's e1000) and 82574L (8086:10d3, QEMU's
 * e1000e). Reset, MAC address from the EEPROM (EERD), link from STATUS.LU, one TX and
 * one RX ring of legacy 16-byte descriptors, 2048-byte receive buffers each loaded on
 * its own map and reloaded for every frame. No interrupts: completions are the DD bits
 * of the descriptors; every wait on the hardware is bounded.
 *
 * Every byte the NIC reads or writes in RAM comes from busdma: the rings and receive
 * buffers from the driver's own tags, transmitted frames from the caller's buffers
 * loaded on the driver's TX maps. One thread per NIC (no locking).
 */
#ifndef KERNEL_EM_H
#define KERNEL_EM_H

#include <stdbool.h>
#include <stdint.h>

#include "dmar/busdma.h"
#include "pci.h"

#define EM_VENDOR_INTEL 0x8086
#define EM_DEV_82540EM 0x100e
#define EM_DEV_82574L 0x10d3

#define EM_NDESC 128u          /* descriptors per ring: 2 KiB, a multiple of 128 bytes */
#define EM_RXBUF 2048u         /* RCTL.BSIZE 00b: 2048-byte receive buffers */
#define EM_MAX_FRAME 1514u     /* without FCS; no jumbo frames (RCTL.LPE clear) */
#define EM_MIN_FRAME 60u       /* shorter frames are padded by the NIC (TCTL.PSP) */
#define EM_TX_MAXSEGS 8u       /* descriptors one transmitted frame may take */
#define EM_TIMEOUT_NS 1000000000ull /* reset, EEPROM reads, link, ring drains */

/* Errors besides the busdma ones (negative dmar_error). */
#define EM_ESTALE (-1100) /* a receive descriptor completed on a buffer that was not
			     loaded: the frame's DMA went to a stale address; the RX ring
			     was reset */

enum em_kind { EM_82540EM, EM_82574L };

struct em_rxslot {
	void *va;                /* EM_RXBUF bytes of dmamem */
	struct dmar_dmamap *map; /* loaded while the descriptor owns the buffer */
	uint64_t addr;           /* device address the descriptor was given */
	bool loaded;
};

struct em_txslot {
	struct dmar_dmamap *map; /* loaded from em_tx until the EOP descriptor is done */
	unsigned eop;            /* the frame's last descriptor (RS set there) */
	bool busy;
};

struct em {
	const struct pci_dev *pci;
	volatile uint8_t *regs;
	uint16_t sid;
	enum em_kind kind;
	const char *name;        /* "82540EM" or "82574L" */
	uint8_t mac[6];          /* from the EEPROM, programmed in RAL0/RAH0 */
	struct dmar_busdma_dev *dev;
	struct dmar_dma_tag *ring_tag, *rx_tag, *tx_tag;
	void *txr, *rxr;         /* descriptor rings */
	struct dmar_dmamap *txr_map, *rxr_map;
	uint64_t txr_addr, rxr_addr;
	struct em_rxslot rx[EM_NDESC];
	struct em_txslot tx[EM_NDESC];
	unsigned rx_next;        /* next RX descriptor to complete */
	unsigned tx_head;        /* oldest TX descriptor not reclaimed */
	unsigned tx_tail;        /* next free TX descriptor (TDT) */
	uint64_t rx_frames, tx_frames, rx_errors;
	uint64_t rx_loads;       /* receive buffer loads (one per frame, plus ring fills) */
	unsigned rx_resets;      /* RX ring resets done to recover */
	bool live;
};

/* Finds the n-th supported NIC with PCI device id `device` (EM_DEV_*), maps BAR0 and
 * enables memory decoding. No DMA yet. False when there is none. */
bool em_probe(uint16_t device, unsigned n, struct em *c);

/* Sets up DMA through `dev` (the busdma device of the NIC's function): resets the NIC,
 * reads the MAC address, waits for link, builds and enables both rings. 0, or a
 * negative error (DMAR_ETIMEDOUT when reset, EEPROM or link do not answer in time). On
 * failure everything is undone. */
int em_init(struct em *c, struct dmar_busdma_dev *dev);
/* Resets the NIC (no more DMA), unloads and frees every buffer, ring and tag. */
void em_detach(struct em *c);

/* The transmit tag's constraints, for callers that want to size their buffers. */
void em_tx_tag_params(struct dmar_dma_tag_params *p);

/* Queues one frame of `len` bytes (14..EM_MAX_FRAME, destination MAC first; the NIC
 * pads it to EM_MIN_FRAME)
 * at `buf`, loaded on a TX map until the NIC has read it; the caller keeps the buffer
 * unchanged until em_tx_reclaim reports it done (or the peer received it). Reclaims
 * finished frames first. 0; DMAR_ENOSPC when the ring is full; DMAR_EINVAL; or the
 * load's error. */
int em_tx(struct em *c, const void *buf, uint32_t len);
/* Unloads the maps of transmitted frames; returns how many frames are still queued. */
unsigned em_tx_reclaim(struct em *c);

/* Called for each received frame, with the buffer's bytes (valid during the call). */
typedef void (*em_rx_fn)(void *arg, const uint8_t *frame, uint32_t len);

/* Takes up to `max` completed frames: each buffer is synced and unloaded, handed to
 * `fn`, then loaded again and given back to the NIC. Returns the number of frames
 * delivered, or EM_ESTALE (after resetting the RX ring) when a descriptor completed on
 * a buffer that was not loaded, or a load's error (the RX ring was reset). Frames with
 * receive errors are dropped and counted in rx_errors. */
int em_rx(struct em *c, em_rx_fn fn, void *arg, unsigned max);

/* RX ring reset: receiver disabled, every buffer unloaded and loaded again, the
 * descriptors rewritten, RDH/RDT restarted, receiver enabled. 0 or a load's error. */
int em_rx_reset(struct em *c);

/* Only for tests: the classic driver bug. Unloads the buffer of the next descriptor to
 * complete but leaves the descriptor pointing at it. *addr gets the stale device
 * address, *va the buffer (still allocated, no longer loaded). DMAR_EINVAL if not live. */
int em_rx_break_next(struct em *c, uint64_t *addr, void **va);

#endif
