/*
 * util.h - freestanding helpers for the library (it calls no libc).
 */
#ifndef DMAR_UTIL_H
#define DMAR_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* The compiler may turn these into calls to memset/memcpy/memcmp, which a freestanding
 * C environment must provide (as GCC and Clang require); nothing else is needed. */
static inline void dmar_memset(void *dst, int c, size_t n) { __builtin_memset(dst, c, n); }
static inline void dmar_memcpy(void *dst, const void *src, size_t n) { __builtin_memcpy(dst, src, n); }
static inline int dmar_memcmp(const void *a, const void *b, size_t n) { return __builtin_memcmp(a, b, n); }
static inline size_t dmar_strlen(const char *s) { size_t n = 0; while (s[n]) n++; return n; }

/* printf subset into a buffer, always NUL-terminated when size > 0; returns the
 * length the full output would have. Conversions: %d %i %u %x %X %o %c %s %p %%, flags
 * '-' '0' ' ' '+' '#', width and precision (also '*'), length modifiers hh h l ll z j t. */
int dmar__vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int dmar__snprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline int dmar_ffs64(uint64_t v) { return v ? __builtin_ctzll(v) : -1; }
static inline int dmar_fls64(uint64_t v) { return v ? 63 - __builtin_clzll(v) : -1; }
static inline uint64_t dmar_min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static inline uint64_t dmar_max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

/* Keeps a rarely taken path out of its caller, so that the common path stays short
 * (no spill of registers it does not use). */
#define DMAR_NOINLINE __attribute__((noinline))
/* And the reverse: a small common path the compiler must not call out of line. */
#define DMAR_ALWAYS_INLINE inline __attribute__((always_inline))

#define DMAR_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
