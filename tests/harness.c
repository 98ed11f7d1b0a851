#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define HARNESS_MAX 1024

static struct {
	const char *name;
	harness_fn fn;
	int only_when_named;
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

static void add_test(const char *name, harness_fn fn, int only_when_named)
{
	if (ntests == HARNESS_MAX) {
		fprintf(stderr, "harness: too many tests\n");
		exit(2);
	}
	tests[ntests].name = name;
	tests[ntests].fn = fn;
	tests[ntests].only_when_named = only_when_named;
	ntests++;
}

void harness_register(const char *name, harness_fn fn)
{
	add_test(name, fn, 0);
}

void harness_register_named_only(const char *name, harness_fn fn)
{
	add_test(name, fn, 1);
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
	/* A skip must not hide a CHECK that already failed: the test then counts as failed. */
	if (test_failed) {
		printf("  skip %s: %s (not counted: a check had already failed)\n", test_name, why);
		longjmp(test_env, 1);
	}
	printf("  skip %s: %s\n", test_name, why);
	longjmp(test_env, 2);
}


int harness_main(int argc, char **argv)
{
	const char *filter = argc > 1 ? argv[1] : NULL;
	/* volatile: they live across setjmp/longjmp */
	volatile int passed = 0, failed = 0, skipped = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (volatile int i = 0; i < ntests; i++) {
		if (tests[i].only_when_named ? !filter || strcmp(tests[i].name, filter) != 0
					     : filter && !strstr(tests[i].name, filter))
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

int main(int argc, char **argv)
{
	return harness_main(argc, argv);
}
