/*
 * fuzz_iova.c - libFuzzer target for the IOVA allocator: the input is a script of
 * allocations (any size up to 300 pages, alignments, boundaries, limits), frees (right,
 * wrong and double), reservations and memory failures, run against a space of up to a
 * few thousand pages, with or without chunks of slots, and a brute-force page model
 * (tests/lib/iova_model.c).
 *
 * Checked after every step: an allocation obeys its request and lies on pages the model
 * has free, with its guard pages, and its extent is at most a quarter larger; ENOSPC
 * only when the model has no placement; a wrong or repeated free is DMAR_ENOENT and
 * changes nothing; a reservation is refused exactly when it touches a live extent; a
 * failed allocation of memory changes nothing visible; nothing leaks.
 */
#include "iova.h"
#include "iova_model.h"
#include "dmar/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG 4096ull
#define MAX_LIVE 1024

static long fail_countdown; /* > 0: the allocation that brings it to 0 fails */
static long blocks;

static void *f_alloc(void *ctx, size_t size)
{
	(void)ctx;
	if (fail_countdown > 0 && --fail_countdown == 0)
		return NULL;
	void *p = malloc(size);
	if (p)
		blocks++;
	return p;
}

static void f_free(void *ctx, void *p, size_t size)
{
	(void)ctx;
	(void)size;
	if (p)
		blocks--;
	free(p);
}

static const struct dmar_os_ops f_ops = {.alloc = f_alloc, .free = f_free};
static const struct dmar_os f_os = {&f_ops, NULL};

#define FAIL(...)                                       \
	do {                                            \
		fprintf(stderr, "fuzz_iova: " __VA_ARGS__); \
		fputc('\n', stderr);                    \
		abort();                                \
	} while (0)

struct live {
	uint64_t addr, size, extent; /* extent in pages */
};

static uint64_t pow2_at_least(uint64_t v)
{
	uint64_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	static struct live live[MAX_LIVE];
	struct iova_space s;
	struct iova_model m;
	unsigned n = 0;

	if (len < 3)
		return 0;
	unsigned guard = data[0] % 4, shift_pick = (data[0] >> 2) % 4;
	/* from up to 2040 pages before the edge between two leaves of marks */
	uint64_t first = IOVA_MARKS_LEAF_PAGES - 2048 + (uint64_t)data[1] * 8;
	uint64_t end = first + 64 + (uint64_t)data[2] * 16; /* up to 4144 pages */
	data += 3;
	len -= 3;
	fail_countdown = 0;
	blocks = 0;
	if (dmar__iova_init(&s, &f_os, first * PG, end * PG - 1, guard))
		FAIL("init");
	/* chunks: as dmar__iova_init sets them (none below 1024 pages), none, or windows of 64
	 * or 128 pages */
	static const unsigned shifts[] = {1, 0, 6, 7};
	unsigned shift = shifts[shift_pick];
	if (shift != 1 && dmar__iova_set_chunk_shift(&s, shift))
		FAIL("chunk shift %u refused", shift);
	if (iova_model_init(&m, first, end, guard))
		abort();

	for (; len >= 6; data += 6, len -= 6) {
		const uint8_t *op = data;
		switch (op[0] % 8) {
		case 0: case 1: case 2: case 3: { /* allocate */
			uint64_t np = 1 + ((uint64_t)op[1] | (uint64_t)op[2] << 8) % 300, a = 1;
			struct iova_request r = {np * PG, 0, 0, UINT64_MAX};
			if (op[3] & 0x80)
				r.align = PG << (op[3] % 8);
			if (op[4] & 1)
				r.boundary = pow2_at_least(np) * PG << ((op[4] >> 1) % 3);
			if (op[5] & 1)
				r.max_addr = (first + (uint64_t)(op[5] >> 1) * (end - first) / 127) * PG - 1 +
					     (op[5] & 2 ? 0 : PG / 2);
			if (op[0] & 0x80)
				fail_countdown = 1 + op[0] % 3;
			uint64_t live_before = dmar__iova_live(&s);
			int rc = dmar__iova_alloc(&s, &r, &a);
			fail_countdown = 0;
			if (rc == DMAR_ENOMEM) {
				/* no allocation changed; memory may have grown (pools) or
				 * shrunk (chunks given back to the tree before the failure) */
				if (dmar__iova_live(&s) != live_before || a != 1)
					FAIL("ENOMEM changed something: live %llu -> %llu, addr %llx",
					     (unsigned long long)live_before,
					     (unsigned long long)dmar__iova_live(&s),
					     (unsigned long long)a);
				break;
			}
			if (rc == DMAR_ENOSPC) {
				if (iova_model_fits(&m, &r))
					FAIL("ENOSPC for %llu pages, but it fits", (unsigned long long)np);
				if (a != 1)
					FAIL("ENOSPC wrote the address");
				break;
			}
			if (rc)
				FAIL("alloc: %s", dmar_strerror(rc));
			uint64_t ext;
			if (dmar__iova_extent(&s, a, r.size, &ext))
				FAIL("no extent for a live allocation");
			ext /= PG;
			if (a % PG || a / PG < first || a / PG + ext > end)
				FAIL("outside the space");
			if (ext < np + guard || (ext - guard - np) * 4 > np)
				FAIL("extent %llu for %llu pages", (unsigned long long)ext, (unsigned long long)np);
			if (r.align && a % r.align)
				FAIL("misaligned");
			if (r.boundary && a / r.boundary != (a + r.size - 1) / r.boundary)
				FAIL("crosses its boundary");
			if (a + r.size - 1 > r.max_addr)
				FAIL("above max_addr");
			if (iova_model_any(&m, a / PG, ext, IOVA_MODEL_LIVE) ||
			    iova_model_any(&m, a / PG, ext, IOVA_MODEL_RESERVED))
				FAIL("overlaps a live extent or a reservation");
			iova_model_set(&m, a / PG, ext, IOVA_MODEL_LIVE);
			if (n == MAX_LIVE)
				FAIL("too many live allocations for the script");
			live[n++] = (struct live){a, r.size, ext};
			break;
		}
		case 4: case 5: { /* free one */
			if (!n)
				break;
			unsigned k = op[1] % n;
			struct live l = live[k];
			if (dmar__iova_free(&s, l.addr, l.size))
				FAIL("free of a live allocation refused");
			iova_model_set(&m, l.addr / PG, l.extent, IOVA_MODEL_FREE);
			live[k] = live[--n];
			if (op[2] & 1 && dmar__iova_free(&s, l.addr, l.size) != DMAR_ENOENT)
				FAIL("double free accepted");
			break;
		}
		case 6: { /* a wrong free: never accepted, nothing changes */
			uint64_t addr, size;
			if (n) {
				struct live l = live[op[1] % n];
				int64_t d = (int8_t)op[2];
				addr = l.addr + (op[3] & 1 ? (uint64_t)(d * (int64_t)PG) : 0);
				size = l.size + (op[3] & 1 ? 0 : (uint64_t)(d * (int64_t)PG));
				if (addr == l.addr && size == l.size)
					size += PG;
			} else {
				addr = (first + op[1]) * PG;
				size = (1 + op[2]) * PG;
			}
			/* wrong unless it names another live allocation exactly */
			int names_live = 0;
			for (unsigned i = 0; i < n; i++)
				names_live |= live[i].addr == addr && live[i].size == size;
			if (names_live)
				break;
			uint64_t before = dmar__iova_live(&s);
			if (dmar__iova_free(&s, addr,
					    size) != DMAR_ENOENT || dmar__iova_live(&s) != before)
				FAIL("wrong free accepted");
			break;
		}
		case 7: { /* reserve a few pages */
			uint64_t p = first + ((uint64_t)op[1] | (uint64_t)op[2] << 8) % (end - first);
			uint64_t np = 1 + op[3] % 8;
			bool busy = iova_model_any(&m, p, np, IOVA_MODEL_LIVE);
			int rc = dmar__iova_reserve(&s, p * PG, np * PG);
			if (rc == DMAR_ENOMEM)
				break;
			if (rc != (busy ? DMAR_EBUSY : 0))
				FAIL("reserve: %s, busy %d", dmar_strerror(rc), busy);
			if (!rc)
				iova_model_set(&m, p, np, IOVA_MODEL_RESERVED);
			break;
		}
		}
		if (dmar__iova_live(&s) != n)
			FAIL("live count %llu, model %u", (unsigned long long)dmar__iova_live(&s),
			     n);
	}
	while (n) {
		n--;
		if (dmar__iova_free(&s, live[n].addr, live[n].size))
			FAIL("final free refused");
	}
	dmar__iova_fini(&s);
	iova_model_fini(&m);
	if (blocks)
		FAIL("%ld blocks leaked", blocks);
	return 0;
}
