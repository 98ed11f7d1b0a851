/*
 * clock.h - monotonic time from the TSC, calibrated once against PIT channel 2.
 */
#ifndef KERNEL_CLOCK_H
#define KERNEL_CLOCK_H

#include <stdint.h>

/* Measures the TSC frequency; returns it in Hz (0 if the PIT never counted down, in
 * which case a 1 GHz guess is used so timeouts still end). */
uint64_t clock_init(void);
uint64_t clock_now_ns(void);
void clock_delay_ns(uint64_t ns);

#endif
