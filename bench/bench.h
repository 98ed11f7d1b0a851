/*
 * bench.h - timing helpers shared by the benchmarks (host only).
 *
 * bench_now_ns() reads CLOCK_MONOTONIC; bench_median() sorts a sample array in place and
 * returns its median. A benchmark measures each case in several rounds and reports the
 * median of the per-operation times, with the comparison loop measured in the same run.
 */
#ifndef DMAR_BENCH_H
#define DMAR_BENCH_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static inline double bench_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Keeps the compiler from discarding a computed value. */
static inline void bench_keep(uint64_t v)
{
	__asm__ volatile("" : : "r"(v) : "memory");
}

#endif
