/* Polling a device register (mmio.h). */
#include "mmio.h"

#include "clock.h"
#include "dmar/error.h"
#include "x86.h"

int mmio_wait32(const volatile uint8_t *base, unsigned off, uint32_t mask, uint32_t want,
		uint64_t ns)
{
	uint64_t end = clock_now_ns() + ns;
	for (;;) {
		uint32_t v = *(const volatile uint32_t *)(base + off);
		if (v == ~0u)
			return DMAR_EHW;
		if ((v & mask) == want)
			return 0;
		if (clock_now_ns() > end)
			return DMAR_ETIMEDOUT;
		cpu_relax();
	}
}
