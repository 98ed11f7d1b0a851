#include "harness.h"
#include "util.h"
#include "dmar/error.h"

#include <string.h>

static void expect(const char *want, const char *fmt, ...)
{
	char mine[256], libc[256];
	va_list ap;
	va_start(ap, fmt);
	dmar__vsnprintf(mine, sizeof(mine), fmt, ap);
	va_end(ap);
	va_start(ap, fmt);
	vsnprintf(libc, sizeof(libc), fmt, ap);
	va_end(ap);
	if (strcmp(mine, want) != 0 || strcmp(libc, want) != 0)
		harness_fail(__FILE__, __LINE__, "format \"%s\": got \"%s\", libc \"%s\", want \"%s\"",
			     fmt, mine, libc, want);
}

TEST(fmt_matches_libc_for_the_subset)
{
	expect("x=42 y=-7", "x=%d y=%i", 42, -7);
	expect("0x00000000fed90000", "0x%016llx", 0xfed90000ull);
	expect("[  ab] [ab  ] [00ab]", "[%4x] [%-4x] [%04x]", 0xab, 0xab, 0xab);
	expect("0xff 0XFF 017", "%#x %#X %#o", 255, 255, 15);
	expect("18446744073709551615", "%llu", ~0ull);
	expect("-9223372036854775808", "%lld", (long long)(-9223372036854775807ll - 1));
	expect("abc|  abc|ab", "%s|%5s|%.2s", "abc", "abc", "abc");
	expect("+5 -5  5", "%+d %+d % d", 5, -5, 5);
	expect("c 100%", "%c %d%%", 'c', 100);
	expect("00:1f.7", "%02x:%02x.%x", 0, 0x1f, 7);
	expect("  007", "%5.3d", 7);
	expect("4096 65535 255", "%zu %hu %hhu", (size_t)4096, 65535, 255);
}

TEST(fmt_truncates_and_terminates)
{
	char buf[8];
	int n = dmar__snprintf(buf, sizeof(buf), "%s", "0123456789");
	CHECK_EQ(n, 10);
	CHECK(strcmp(buf, "0123456") == 0);
	CHECK_EQ(dmar__snprintf(NULL, 0, "%d", 12345), 5);
}

TEST(every_error_has_text)
{
	for (int e = 0; e >= -15; e--)
		CHECK(strcmp(dmar_strerror(e), "unknown error") != 0);
	CHECK(strcmp(dmar_strerror(-999), "unknown error") == 0);
}
