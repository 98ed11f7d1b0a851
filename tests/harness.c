#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define HARNESS_MAX 1024

static struct {
	const char *name;
	harness_fn fn;
} tests[HARNESS_MAX];
static int ntests;
static jmp_buf test_env;
static int test_failed;
static const char *test_name;
static const char *test_context;

void harness_set_context(const char *ctx)
{
	test_context = ctx;
}

void harness_register(const char *name, harness_fn fn)
{
	if (ntests == HARNESS_MAX) {
		fprintf(stderr, "harness: too many tests\n");
		exit(2);
	}
	tests[ntests].name = name;
	tests[ntests].fn = fn;
	ntests++;
}

void harness_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "  FAIL %s%s%s%s (%s:%d): ", test_name, test_context ? " [" : "",
		test_context ? test_context : "", test_context ? "]" : "", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	test_failed = 1;
}

void harness_abort_test(void)
{
	longjmp(test_env, 1);
}

void harness_skip(const char *why)
{
	printf("  skip %s: %s\n", test_name, why);
	longjmp(test_env, 2);
}


int main(int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;
	/* volatile: they live across setjmp/longjmp */
	volatile int passed = 0, failed = 0, skipped = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (volatile int i = 0; i < ntests; i++) {
		if (filter && !strstr(tests[i].name, filter))
			continue;
		test_name = tests[i].name;
		test_failed = 0;
		test_context = NULL;
		int r = setjmp(test_env);
		if (r == 0)
			tests[i].fn();
		if (r == 2) {
			skipped++;
			continue;
		}
		if (test_failed) {
			printf("not ok - %s\n", test_name);
			failed++;
		} else {
			printf("ok - %s\n", test_name);
			passed++;
		}
	}
	printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	fflush(stdout);
	if (failed)
		return 1;
	if (skipped && !passed)
		return 77;
	return 0;
}
