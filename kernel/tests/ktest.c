/* TAP runner and watchdog. */
#include "ktest.h"

#include "clock.h"
#include "util.h"

static volatile uint64_t deadline_ns; /* 0: no test running */
static const char *volatile current_name;
static volatile unsigned current_number;
static volatile unsigned current_budget_ms;

void ktest_fail(struct ktest *t, const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	t->failed = true;
	kprintf("# %s:%d: ", file, line);
	va_start(ap, fmt);
	kvprintf(fmt, ap);
	va_end(ap);
	kprintf("\n");
}

bool ktest_list_has(const char *list, const char *name)
{
	size_t n = dmar_strlen(name);
	for (const char *s = list; *s;) {
		const char *w = s;
		while (*s && *s != ',')
			s++;
		if ((size_t)(s - w) == n && dmar_memcmp(w, name, n) == 0)
			return true;
		if (*s == ',')
			s++;
	}
	return false;
}

static bool selected(const char *only, const struct ktest_def *def)
{
	if (!only || !*only)
		return !def->only_when_named;
	return ktest_list_has(only, def->name);
}

void ktest_watchdog(void)
{
	uint64_t d = deadline_ns;
	if (d == 0 || clock_now_ns() <= d)
		return;
	kprintf("\nnot ok %u - %s # watchdog: still running after %u ms\n", current_number,
		current_name, current_budget_ms);
	kprintf("Bail out! watchdog\n");
	qemu_exit(1);
}

unsigned ktest_run(const struct ktest_def *defs, unsigned n, const char *only)
{
	unsigned total = 0, failed = 0, skipped = 0, number = 0;
	for (unsigned i = 0; i < n; i++)
		total += selected(only, &defs[i]);
	kprintf("1..%u\n", total);
	for (unsigned i = 0; i < n; i++) {
		if (!selected(only, &defs[i]))
			continue;
		struct ktest t = { .name = defs[i].name };
		number++;
		current_name = defs[i].name;
		current_number = number;
		current_budget_ms = defs[i].budget_ms;
		uint64_t start = clock_now_ns();
		deadline_ns = start + (uint64_t)defs[i].budget_ms * 1000000ull;
		defs[i].fn(&t);
		deadline_ns = 0;
		uint64_t ms = (clock_now_ns() - start) / 1000000ull;
		kprintf("# %s took %llu ms\n", defs[i].name, (unsigned long long)ms);
		if (t.failed) {
			failed++;
			kprintf("not ok %u - %s\n", number, t.name);
		} else if (t.skip) {
			skipped++;
			kprintf("ok %u - %s # SKIP %s\n", number, t.name, t.skip);
		} else {
			kprintf("ok %u - %s\n", number, t.name);
		}
	}
	kprintf("# %u passed, %u failed, %u skipped\n", number - failed - skipped, failed,
		skipped);
	return failed;
}
