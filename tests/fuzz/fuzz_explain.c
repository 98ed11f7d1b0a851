/*
 * fuzz_explain.c - libFuzzer target for the kernel-log line parser of `dmarctl explain`
 * (tools/explain_parse.c): any bytes, split at newlines (a NUL ends a line early, as it
 * would in a C string). The parser must never crash or read out of bounds, and what it
 * returns must be in range: a known kind, a request, a device address that exists
 * (device < 32, function < 8), a reason -1..255.
 */
#include "explain_parse.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check(const struct ex_line *l)
{
	if (l->kind > EX_SUPPRESSED)
		abort();
	if (l->kind == EX_FAULT || l->kind == EX_FAULT_HEAD) {
		const struct ex_fault *f = &l->fault;
		if (f->request > EX_REQ_INTR || f->format > EX_FMT_DMAR)
			abort();
		if (f->dev > 31 || f->fn > 7 || f->reason < -1 || f->reason > 255)
			abort();
		if (!explain_format_name(f->format))
			abort();
	}
	if (l->kind == EX_REASON && (l->reason < -1 || l->reason > 255))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (char *line = buf, *end; line <= buf + size; line = end + 1) {
		end = memchr(line, '\n', (size_t)(buf + size - line));
		if (!end)
			end = buf + size;
		*end = '\0';
		struct ex_line l;
		memset(&l, 0x5a, sizeof(l));
		explain_parse_line(line, &l);
		check(&l);
	}
	free(buf);
	return 0;
}
