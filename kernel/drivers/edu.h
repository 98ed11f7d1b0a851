/*
 * edu.h - driver for QEMU's "edu" teaching device (1234:11e8), used here because it does
 * DMA on command: BAR0 + 0x80 source, + 0x88 destination, + 0x90 count, + 0x98 command
 * (bit 0 start/busy, bit 1 direction: 1 = device buffer -> RAM, bit 2 raise IRQ). Its
 * buffer is at device address 0x40000..0x40fff. QEMU 7.2 aborts on a 4096-byte transfer
 * (off by one), so transfers are limited to EDU_DMA_MAX; each one takes ~100 ms of
 * virtual time. Addresses are clamped to the device's dma_mask (28 bits by default).
 */
#ifndef KERNEL_EDU_H
#define KERNEL_EDU_H

#include <stdbool.h>
#include <stdint.h>

#include "pci.h"

#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11e8
#define EDU_BUF 0x40000ull
#define EDU_DMA_MAX 4095u
#define EDU_DMA_TIMEOUT_NS 3000000000ull

struct edu {
	const struct pci_dev *pci;
	volatile uint8_t *regs;
	uint16_t sid;
};

/* Binds the n-th edu: maps BAR0, checks its identification and liveness registers,
 * enables bus mastering. Returns false if there is no such (working) device. */
bool edu_probe(unsigned n, struct edu *out);

/* DMA of `len` bytes (1..EDU_DMA_MAX) between RAM at bus address `addr` and the device
 * buffer at offset `off`. Returns 0 when the device reports completion, -1 on bad
 * arguments, -2 when it stays busy beyond the timeout. A blocked DMA still completes
 * (the device does not see the fault). */
int edu_dma_to_device(struct edu *e, uint64_t addr, uint32_t off, uint32_t len);
int edu_dma_from_device(struct edu *e, uint64_t addr, uint32_t off, uint32_t len);

#endif
