/*
 * The harness judged by itself: fixture tests (run only when named exactly) pass, fail a
 * CHECK, fail a REQUIRE, skip, or fail a CHECK and then skip; each runs in a child
 * process through harness_main(), and the child's exit status and summary line must be
 * what harness.h promises.
 */
#include "harness.h"

#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

TEST_NAMED_ONLY(fixture_passes)
{
	CHECK(1);
}

TEST_NAMED_ONLY(fixture_check_fails)
{
	CHECK(0);
}

TEST_NAMED_ONLY(fixture_require_fails)
{
	REQUIRE(0);
	printf("still running after REQUIRE\n");
}

TEST_NAMED_ONLY(fixture_skips)
{
	SKIP("nothing to run on");
}

TEST_NAMED_ONLY(fixture_check_fails_then_skips)
{
	CHECK(0);
	SKIP("nothing to run on");
}

struct run {
	int status;
	char out[4096];
};

/* Runs harness_main() for `filter` in a child whose stdout and stderr go to *r. */
static int run_named(const char *filter, struct run *r)
{
	int fd[2];
	if (pipe(fd) != 0)
		return -1;
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		char prog[] = "harness", arg[128];
		snprintf(arg, sizeof(arg), "%s", filter);
		char *argv[] = { prog, arg, NULL };
		dup2(fd[1], 1);
		dup2(fd[1], 2);
		close(fd[0]);
		close(fd[1]);
		int st = harness_main(2, argv);
		fflush(stdout);
		fflush(stderr);
		_exit(st);
	}
	close(fd[1]);
	size_t n = 0;
	ssize_t k;
	while (n < sizeof(r->out) - 1 && (k = read(fd[0], r->out + n, sizeof(r->out) - 1 - n)) > 0)
		n += (size_t)k;
	r->out[n] = 0;
	close(fd[0]);
	int ws;
	if (waitpid(pid, &ws, 0) != pid || !WIFEXITED(ws))
		return -1;
	r->status = WEXITSTATUS(ws);
	return 0;
}

TEST(check_failure_then_skip_counts_as_failed)
{
	struct run r;
	REQUIRE_OK(run_named("fixture_check_fails_then_skips", &r));
	CHECK_EQ(r.status, 1);
	CHECK(strstr(r.out, "not ok - fixture_check_fails_then_skips\n"));
	CHECK(strstr(r.out, "0 passed, 1 failed, 0 skipped\n"));
}

TEST(skip_alone_counts_as_skipped)
{
	struct run r;
	REQUIRE_OK(run_named("fixture_skips", &r));
	CHECK_EQ(r.status, 77);
	CHECK(strstr(r.out, "0 passed, 0 failed, 1 skipped\n"));
}

TEST(check_failure_fails)
{
	struct run r;
	REQUIRE_OK(run_named("fixture_check_fails", &r));
	CHECK_EQ(r.status, 1);
	CHECK(strstr(r.out, "not ok - fixture_check_fails\n"));
	CHECK(strstr(r.out, "0 passed, 1 failed, 0 skipped\n"));
}

TEST(require_failure_ends_the_test)
{
	struct run r;
	REQUIRE_OK(run_named("fixture_require_fails", &r));
	CHECK_EQ(r.status, 1);
	CHECK(!strstr(r.out, "still running after REQUIRE"));
	CHECK(strstr(r.out, "0 passed, 1 failed, 0 skipped\n"));
}

TEST(passing_test_passes)
{
	struct run r;
	REQUIRE_OK(run_named("fixture_passes", &r));
	CHECK_EQ(r.status, 0);
	CHECK(strstr(r.out, "ok - fixture_passes\n"));
	CHECK(strstr(r.out, "1 passed, 0 failed, 0 skipped\n"));
}

/* A filter that only contains their names runs none of the fixtures (nor do full runs,
 * or this program would fail). */
TEST(named_only_tests_need_their_exact_name)
{
	struct run r;
	REQUIRE_OK(run_named("fixture_", &r));
	CHECK_EQ(r.status, 0);
	CHECK(strstr(r.out, "0 passed, 0 failed, 0 skipped\n"));
}
