/* TSC clock calibrated against the 8254 PIT (channel 2, gated through port 0x61). */
#include "clock.h"

#include "x86.h"

#define PIT_HZ 1193182ull
#define CAL_MS 20ull

static uint64_t tsc_hz = 1000000000ull;
static uint64_t tsc_base;

uint64_t clock_init(void)
{
	uint64_t count = PIT_HZ * CAL_MS / 1000;
	uint8_t gate = inb(0x61);
	outb(0x61, (uint8_t)((gate & ~0x02) & ~0x01)); /* speaker off, gate low */
	outb(0x43, 0xb0);                             /* channel 2, lo/hi, mode 0 */
	outb(0x42, (uint8_t)count);
	outb(0x42, (uint8_t)(count >> 8));
	outb(0x61, (uint8_t)((gate & ~0x02) | 0x01)); /* gate high: count down */
	uint64_t t0 = rdtsc(), spins = 0;
	while (!(inb(0x61) & 0x20))
		if (++spins > 100000000ull)
			return 0;
	uint64_t t1 = rdtsc();
	outb(0x61, gate);
	tsc_hz = (t1 - t0) * 1000 / CAL_MS;
	if (tsc_hz == 0)
		tsc_hz = 1000000000ull;
	tsc_base = t0;
	return tsc_hz;
}

uint64_t clock_now_ns(void)
{
	uint64_t d = rdtsc() - tsc_base;
	return d / tsc_hz * 1000000000ull + d % tsc_hz * 1000000000ull / tsc_hz;
}

void clock_delay_ns(uint64_t ns)
{
	uint64_t end = clock_now_ns() + ns;
	while (clock_now_ns() < end)
		cpu_relax();
}
