/*
 * mmio.h - polling a device register.
 */
#ifndef KERNEL_MMIO_H
#define KERNEL_MMIO_H

#include <stdint.h>

/* Polls the 32-bit register at base + off until (value & mask) == want: 0, or
 * DMAR_ETIMEDOUT after `ns`, or DMAR_EHW when it reads all ones (the function is gone). */
int mmio_wait32(const volatile uint8_t *base, unsigned off, uint32_t mask, uint32_t want,
		uint64_t ns);

#endif
