/*
 * harness.h - the project's minimal unit-test harness.
 *
 * TEST(name) { ... } defines a test; CHECK* record a failure and go on, REQUIRE* end
 * the test. SKIP("why") ends it as skipped, or as failed when a CHECK already failed.
 * main() (harness.c) runs every test, or those whose names contain argv[1], and ends
 * with the line "N passed, N failed, N skipped". Exit status: 0 all passed, 1 a
 * failure, 77 everything skipped (CTest: skipped). TEST_NAMED_ONLY(name) defines a test
 * run only when argv[1] is exactly its name (the harness's self-test uses it for tests
 * that must fail).
 */
#ifndef DMAR_TEST_HARNESS_H
#define DMAR_TEST_HARNESS_H

#include <stdint.h>
#include <stdio.h>

typedef void (*harness_fn)(void);
void harness_register(const char *name, harness_fn fn);
void harness_register_named_only(const char *name, harness_fn fn);
/* What main() does: runs the tests argv selects, prints the summary, returns the exit
 * status. */
int harness_main(int argc, char **argv);
void harness_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
_Noreturn void harness_abort_test(void);
_Noreturn void harness_skip(const char *why);
/* Names a sub-case (e.g. a configuration) in failure messages until reset with NULL. */
void harness_set_context(const char *ctx);

#define TEST(name)                                                            \
	static void name(void);                                               \
	__attribute__((constructor)) static void harness_reg_##name(void)     \
	{                                                                     \
		harness_register(#name, name);                                \
	}                                                                     \
	static void name(void)

#define TEST_NAMED_ONLY(name)                                                 \
	static void name(void);                                               \
	__attribute__((constructor)) static void harness_reg_##name(void)     \
	{                                                                     \
		harness_register_named_only(#name, name);                     \
	}                                                                     \
	static void name(void)

#define CHECK(cond)                                                           \
	do {                                                                  \
		if (!(cond))                                                  \
			harness_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); \
	} while (0)

#define REQUIRE(cond)                                                           \
	do {                                                                    \
		if (!(cond)) {                                                  \
			harness_fail(__FILE__, __LINE__, "REQUIRE(%s)", #cond); \
			harness_abort_test();                                   \
		}                                                               \
	} while (0)

#define CHECK_EQ(a, b)                                                                \
	do {                                                                          \
		unsigned long long va_ = (unsigned long long)(a);                     \
		unsigned long long vb_ = (unsigned long long)(b);                     \
		if (va_ != vb_)                                                       \
			harness_fail(__FILE__, __LINE__, "CHECK_EQ(%s, %s): 0x%llx != 0x%llx", \
				     #a, #b, va_, vb_);                               \
	} while (0)

#define REQUIRE_EQ(a, b)                                                              \
	do {                                                                          \
		unsigned long long va_ = (unsigned long long)(a);                     \
		unsigned long long vb_ = (unsigned long long)(b);                     \
		if (va_ != vb_) {                                                     \
			harness_fail(__FILE__, __LINE__, "REQUIRE_EQ(%s, %s): 0x%llx != 0x%llx", \
				     #a, #b, va_, vb_);                               \
			harness_abort_test();                                         \
		}                                                                     \
	} while (0)

/* For calls returning a dmar error code: prints its text on failure. */
#define CHECK_OK(expr)                                                                  \
	do {                                                                            \
		int rc_ = (expr);                                                       \
		if (rc_ != 0)                                                           \
			harness_fail(__FILE__, __LINE__, "%s returned %d", #expr, rc_); \
	} while (0)
#define REQUIRE_OK(expr)                                                                \
	do {                                                                            \
		int rc_ = (expr);                                                       \
		if (rc_ != 0) {                                                         \
			harness_fail(__FILE__, __LINE__, "%s returned %d", #expr, rc_); \
			harness_abort_test();                                           \
		}                                                                       \
	} while (0)

#define SKIP(why) harness_skip(why)

#endif
