/*
 * edu.h - driver for QEMU's "edu" teaching device (1234:11e8), used here because it does
 * DMA on command: BAR0 + 0x80 source, + 0x88 destination, + 0x90 count, + 0x98 command
 * (bit 0 start/busy, bit 1 direction: 1 = device buffer -> RAM, bit 2 raise IRQ). Its
 * buffer is at device address 0x40000..0x40fff. QEMU 7.2 aborts on a 4096-byte transfer
 * (off by one), so transfers are limited to EDU_DMA_MAX; each one takes ~100 ms of
 * virtual time. Addresses are clamped to the device's dma_mask (28 bits by default).
 *
 * Interrupts: writing a value to BAR0 + 0x60 raises the device's interrupt with that
 * value ORed into its status (+ 0x24); + 0x64 acknowledges (clears) status bits. With
 * MSI enabled (one vector, 64-bit address, no mask bits) every raise sends the
 * message, as a memory write carrying the edu's requester id; without it the device
 * asserts INTx while the status is not zero. A DMA whose command has bit 2 raises
 * status 0x100 when it completes.
 */
#ifndef KERNEL_EDU_H
#define KERNEL_EDU_H

#include <stdbool.h>
#include <stdint.h>

#include "pci.h"
#include "spinlock.h"

#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11e8
#define EDU_BUF 0x40000ull
#define EDU_DMA_MAX 4095u
#define EDU_DMA_TIMEOUT_NS 3000000000ull

struct edu {
	const struct pci_dev *pci;
	volatile uint8_t *regs;
	uint16_t sid;
	/* The DMA engine does one transfer at a time: edu_dma_* hold this from programming
	 * the engine to its completion, so CPUs sharing the device take turns. */
	struct spinlock dma_lock;
};

/* Binds the n-th edu: maps BAR0, checks its identification and liveness registers,
 * enables bus mastering. Returns false if there is no such (working) device. */
bool edu_probe(unsigned n, struct edu *out);

/* DMA of `len` bytes (1..EDU_DMA_MAX) between RAM at bus address `addr` and the device
 * buffer at offset `off`. Returns 0 when the device reports completion, -1 on bad
 * arguments, -2 when it stays busy beyond the timeout. A blocked DMA still completes
 * (the device does not see the fault). Any CPU may call them at once: they take turns
 * on the engine (the device buffer is shared, so a caller that moves data through it
 * must keep to its own offsets). */
int edu_dma_to_device(struct edu *e, uint64_t addr, uint32_t off, uint32_t len);
int edu_dma_from_device(struct edu *e, uint64_t addr, uint32_t off, uint32_t len);

#define EDU_IRQ_FACT 0x1u   /* status bit of the factorial unit */
#define EDU_IRQ_DMA 0x100u  /* status bit of a DMA with the raise-IRQ command bit */

/* Routes the device's interrupt to an MSI: the message (address, data) the device will
 * write on each raise. -1 when it has no MSI capability or cannot take the address. */
int edu_msi_enable(struct edu *e, uint64_t addr, uint16_t data);
/* Back to INTx: a raise then asserts the device's interrupt pin instead (this kernel
 * keeps the 8259 lines and IOAPIC pins it does not use masked). */
void edu_msi_disable(struct edu *e);
/* Raises the interrupt with these status bits (each raise sends the MSI once). */
void edu_irq_raise(struct edu *e, uint32_t status);
uint32_t edu_irq_status(struct edu *e);
void edu_irq_ack(struct edu *e, uint32_t status);

#endif
