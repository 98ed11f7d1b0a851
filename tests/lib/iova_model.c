/*
 * iova_model.c - a brute-force reference for the IOVA allocator (see iova_model.h).
 */
#include "iova_model.h"

#include <stdlib.h>

#define PG 4096ull

int iova_model_init(struct iova_model *m, uint64_t first, uint64_t end, unsigned guard)
{
	m->first = first;
	m->end = end;
	m->guard = guard;
	m->page = calloc(end + 1, 1);
	m->run = calloc(end + 1, sizeof(*m->run));
	if (!m->page || !m->run) {
		iova_model_fini(m);
		return -1;
	}
	return 0;
}

void iova_model_fini(struct iova_model *m)
{
	free(m->page);
	free(m->run);
	m->page = NULL;
	m->run = NULL;
}

void iova_model_set(struct iova_model *m, uint64_t p, uint64_t n, uint8_t v)
{
	for (uint64_t q = p; q < p + n && q < m->end; q++)
		m->page[q] = v;
}

bool iova_model_any(const struct iova_model *m, uint64_t p, uint64_t n, uint8_t v)
{
	for (uint64_t q = p; q < p + n && q < m->end; q++)
		if (m->page[q] == v)
			return true;
	return false;
}

bool iova_model_fits(struct iova_model *m, const struct iova_request *r)
{
	uint64_t np = r->size / PG, align = r->align > PG ? r->align / PG : 1;

	m->run[m->end] = 0;
	for (uint64_t i = m->end; i-- > 0;)
		m->run[i] = (i >= m->first && m->page[i] == IOVA_MODEL_FREE) ? m->run[i + 1] + 1 : 0;
	for (uint64_t a = m->first; a < m->end; a++) {
		if (a % align)
			continue;
		if (r->boundary && a * PG / r->boundary != ((a + np) * PG - 1) / r->boundary)
			continue;
		if ((a + np) * PG - 1 > r->max_addr)
			break;
		if (m->run[a] >= np + m->guard)
			return true;
	}
	return false;
}
