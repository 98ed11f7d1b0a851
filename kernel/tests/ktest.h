/*
 * ktest.h - the kernel's TAP test runner.
 *
 * Prints "1..N", then one line per test: "ok N - name", "not ok N - name" or
 * "ok N - name # SKIP why" (only when this machine's hardware cannot run the test), and
 * diagnostics as "# ..." lines. Every test has a time budget; a watchdog on the timer
 * tick ends the run with "not ok" for a test that overruns it. The command line word
 * kernel.tests=a,b,c runs only the named tests.
 */
#ifndef KERNEL_KTEST_H
#define KERNEL_KTEST_H

#include <stdbool.h>
#include <stdint.h>

#include "console.h"

struct ktest {
	const char *name;
	bool failed;
	const char *skip; /* set by SKIP: the reason */
};

typedef void (*ktest_fn)(struct ktest *t);

struct ktest_def {
	const char *name;
	ktest_fn fn;
	unsigned budget_ms;
	bool only_when_named; /* not part of a full run (e.g. the watchdog's self-test) */
};

/* Runs the tests in order (filtered by `only`, a comma-separated list or NULL); returns
 * the number that failed. */
unsigned ktest_run(const struct ktest_def *defs, unsigned n, const char *only);

/* Whether the comma-separated `list` has the word `name`. */
bool ktest_list_has(const char *list, const char *name);

/* Called from the timer tick: ends the run if the current test is over its budget. */
void ktest_watchdog(void);

void ktest_fail(struct ktest *t, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define CHECK(cond)                                                        \
	do {                                                               \
		if (!(cond))                                               \
			ktest_fail(t, __FILE__, __LINE__, "CHECK(%s)", #cond); \
	} while (0)
#define REQUIRE(cond)                                                        \
	do {                                                                 \
		if (!(cond)) {                                               \
			ktest_fail(t, __FILE__, __LINE__, "REQUIRE(%s)", #cond); \
			return;                                              \
		}                                                            \
	} while (0)
#define CHECK_EQ(a, b)                                                                  \
	do {                                                                            \
		unsigned long long va_ = (unsigned long long)(a);                       \
		unsigned long long vb_ = (unsigned long long)(b);                       \
		if (va_ != vb_)                                                         \
			ktest_fail(t, __FILE__, __LINE__, "CHECK_EQ(%s, %s): %#llx != %#llx", \
				   #a, #b, va_, vb_);                                   \
	} while (0)
/* For calls returning 0 or a negative error: on failure print it and end the test. */
#define REQUIRE_OK(expr)                                                                \
	do {                                                                            \
		int rc_ = (expr);                                                       \
		if (rc_ != 0) {                                                         \
			ktest_fail(t, __FILE__, __LINE__, "%s returned %d", #expr, rc_); \
			return;                                                         \
		}                                                                       \
	} while (0)
#define SKIP(why)              \
	do {                   \
		t->skip = (why); \
		return;        \
	} while (0)

#endif
