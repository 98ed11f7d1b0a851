/*
 * posix_machine.c - the simulated host machine: arena of physical memory with a CPU view
 * and a memory view of table pages, units routed by register base, accounting and
 * failure injection, a virtual clock, and the OS layer over all of it.
 */
#include "posix_machine.h"
#include "../thread_cpu.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "util.h"

#define PM_MAX_UNITS 16
#define PM_LINE 64u
#define PM_MAGIC 0x646d6172616c6c63ull /* "dmarallc" */
#define FRAME_FREE 0
#define FRAME_TABLE 1
#define FRAME_DMA_HEAD 2
#define FRAME_DMA 3

struct pm_unit {
	struct posix_machine *pm;
	struct model *model;
	uint64_t base;
	uint32_t size;
	bool coherent; /* ECAP.C */
	bool rwbf;     /* CAP.RWBF */
};

/* Header of every small allocation: lets destroy free what the driver leaked and lets
 * free check the size it is given. */
struct pm_alloc {
	uint64_t magic;
	size_t size;
	struct pm_alloc *prev, *next;
};

struct posix_machine {
	pthread_mutex_t lock; /* recursive: model callbacks may log */
	uint8_t *arena;
	uint64_t base, size;
	uint32_t nframes;
	uint32_t low_free;    /* no free frame below this one */
	uint8_t *frame_kind;
	uint8_t **shadow;     /* memory view of each table page */
	uint64_t *held;       /* per table page: lines flushed, waiting for WBF */
	bool hold_flushes;    /* a C=0 unit with RWBF: flushes wait for WBF */
	uint32_t held_frames; /* table pages with held lines */

	struct pm_unit units[PM_MAX_UNITS];
	unsigned nunits;

	struct dmar_os_ops ops;
	struct dmar_os os;

	struct pm_alloc allocs; /* list head */
	uint64_t allocs_out, pages_out, dma_out;
	uint64_t calls, fail_at;
	bool failed;
	uint64_t coherency_errors, os_errors;
	uint64_t irqs[2];

	char *log;
	size_t log_len, log_cap;
	bool verbose;
	uint64_t clock;
	/* Library locks held now, by any thread (atomic, relaxed: counting them must not
	 * order the threads' other accesses, or ThreadSanitizer would see less). */
	unsigned locks_held;
};

static void pm_lock(struct posix_machine *pm) { pthread_mutex_lock(&pm->lock); }
static void pm_unlock(struct posix_machine *pm) { pthread_mutex_unlock(&pm->lock); }

/* ---- log ---- */

static void log_line(struct posix_machine *pm, enum dmar_log_level level, const char *line)
{
	static const char *const tag[] = { "error", "warn", "info", "debug" };
	const char *t = (unsigned)level < 4 ? tag[level] : "?";
	size_t need = strlen(t) + strlen(line) + 4;

	pm_lock(pm);
	if (pm->log_len + need >= pm->log_cap) {
		size_t cap = (pm->log_cap ? pm->log_cap * 2 : 4096) + need;
		char *p = realloc(pm->log, cap);

		if (!p) {
			pm_unlock(pm);
			return;
		}
		pm->log = p;
		pm->log_cap = cap;
	}
	pm->log_len += (size_t)snprintf(pm->log + pm->log_len, pm->log_cap - pm->log_len,
					"%s: %s\n", t, line);
	if (pm->verbose)
		fprintf(stderr, "dmar %s: %s\n", t, line);
	pm_unlock(pm);
}

static void pm_logf(struct posix_machine *pm, enum dmar_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void pm_logf(struct posix_machine *pm, enum dmar_log_level level, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_line(pm, level, buf);
}

static void os_error(struct posix_machine *pm, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void os_error(struct posix_machine *pm, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	pm->os_errors++;
	log_line(pm, DMAR_LOG_ERR, buf);
}

const char *dmar_posix_machine_log(struct posix_machine *pm)
{
	return pm->log ? pm->log : "";
}

void dmar_posix_machine_log_clear(struct posix_machine *pm)
{
	pm_lock(pm);
	pm->log_len = 0;
	if (pm->log)
		pm->log[0] = 0;
	pm_unlock(pm);
}

/* ---- arena ---- */

static bool in_arena(const struct posix_machine *pm, uint64_t pa, uint64_t len)
{
	return pa >= pm->base && len <= pm->size && pa - pm->base <= pm->size - len;
}

void *dmar_posix_machine_phys_to_virt(struct posix_machine *pm, uint64_t pa)
{
	return in_arena(pm, pa, 1) ? pm->arena + (pa - pm->base) : NULL;
}

uint64_t dmar_posix_machine_virt_to_phys(struct posix_machine *pm, const void *va)
{
	uintptr_t p = (uintptr_t)va, a = (uintptr_t)pm->arena;

	if (p < a || p - a >= pm->size)
		return UINT64_MAX;
	return pm->base + (p - a);
}

/* Whether the n-th counted call fails now. Caller holds the lock. */
static bool inject_failure(struct posix_machine *pm)
{
	pm->calls++;
	if (pm->fail_at && pm->calls == pm->fail_at) {
		pm->failed = true;
		return true;
	}
	return false;
}

/* First (lowest) run of `n` free frames aligned to `align` frames, or UINT32_MAX.
 * Lowest first keeps the arena's touched part, and so the process, small. */
static uint32_t find_frames(struct posix_machine *pm, uint32_t n, uint32_t align)
{
	uint32_t start = (pm->low_free + align - 1) / align * align;

	while (start + n <= pm->nframes && start + n > start) {
		uint32_t i;

		for (i = 0; i < n && pm->frame_kind[start + i] == FRAME_FREE; i++)
			;
		if (i == n)
			return start;
		start = (start + i + 1 + align - 1) / align * align;
	}
	return UINT32_MAX;
}

/* Frames [f, f+n) were just taken or released: keeps low_free a lower bound. */
static void frames_taken(struct posix_machine *pm, uint32_t f, uint32_t n)
{
	if (f == pm->low_free)
		pm->low_free = f + n;
}

static void frames_released(struct posix_machine *pm, uint32_t f)
{
	if (f < pm->low_free)
		pm->low_free = f;
}

void *dmar_posix_machine_alloc_dma(struct posix_machine *pm, size_t size, size_t align, uint64_t *pa)
{
	uint32_t n, f, i, a;
	void *va;

	if (size == 0 || (align & (align - 1)) != 0)
		return NULL;
	n = (uint32_t)((size + DMAR_PAGE_SIZE - 1) / DMAR_PAGE_SIZE);
	a = align > DMAR_PAGE_SIZE ? (uint32_t)(align / DMAR_PAGE_SIZE) : 1;
	pm_lock(pm);
	f = (uint64_t)size / DMAR_PAGE_SIZE < pm->nframes ? find_frames(pm, n, a) : UINT32_MAX;
	if (f == UINT32_MAX) {
		pm_unlock(pm);
		return NULL;
	}
	for (i = 0; i < n; i++)
		pm->frame_kind[f + i] = i ? FRAME_DMA : FRAME_DMA_HEAD;
	frames_taken(pm, f, n);
	pm->dma_out++;
	pm_unlock(pm);
	va = pm->arena + (uint64_t)f * DMAR_PAGE_SIZE;
	memset(va, 0, (size_t)n * DMAR_PAGE_SIZE);
	if (pa)
		*pa = pm->base + (uint64_t)f * DMAR_PAGE_SIZE;
	return va;
}

void dmar_posix_machine_free_dma(struct posix_machine *pm, void *va, size_t size)
{
	uint64_t pa = dmar_posix_machine_virt_to_phys(pm, va);
	uint32_t f, n, i;

	if (!va)
		return;
	pm_lock(pm);
	f = pa == UINT64_MAX ? 0 : (uint32_t)((pa - pm->base) / DMAR_PAGE_SIZE);
	n = (uint32_t)((size + DMAR_PAGE_SIZE - 1) / DMAR_PAGE_SIZE);
	if (pa == UINT64_MAX || (pa & (DMAR_PAGE_SIZE - 1)) || pm->frame_kind[f] != FRAME_DMA_HEAD ||
	    n == 0 || f + n > pm->nframes) {
		os_error(pm, "free_dma of %p (size %zu): not a DMA buffer", va, size);
		pm_unlock(pm);
		return;
	}
	for (i = 0; i < n; i++)
		pm->frame_kind[f + i] = FRAME_FREE;
	frames_released(pm, f);
	pm->dma_out--;
	pm_unlock(pm);
}

/* ---- OS layer: memory ---- */

/* Contiguous DMA memory for busdma's dmamem (an allocation fail_nth counts). */
static void *os_contig_alloc(void *ctx, size_t npages, uint64_t align, uint64_t max_addr,
			     uint64_t *phys)
{
	struct posix_machine *pm = ctx;
	uint32_t f, a = align > DMAR_PAGE_SIZE ? (uint32_t)(align / DMAR_PAGE_SIZE) : 1;
	pm_lock(pm);
	if (inject_failure(pm) || npages == 0 || npages >= pm->nframes) {
		pm_unlock(pm);
		return NULL;
	}
	f = find_frames(pm, (uint32_t)npages, a);
	if (f == UINT32_MAX ||
	    pm->base + ((uint64_t)f + npages) * DMAR_PAGE_SIZE - 1 > max_addr) {
		pm_unlock(pm);
		return NULL;
	}
	for (uint32_t i = 0; i < npages; i++)
		pm->frame_kind[f + i] = i ? FRAME_DMA : FRAME_DMA_HEAD;
	frames_taken(pm, f, (uint32_t)npages);
	pm->dma_out++;
	pm_unlock(pm);
	memset(pm->arena + (uint64_t)f * DMAR_PAGE_SIZE, 0, npages * DMAR_PAGE_SIZE);
	*phys = pm->base + (uint64_t)f * DMAR_PAGE_SIZE;
	return pm->arena + (uint64_t)f * DMAR_PAGE_SIZE;
}

static void os_contig_free(void *ctx, void *va, uint64_t phys, size_t npages)
{
	(void)phys;
	dmar_posix_machine_free_dma(ctx, va, npages * DMAR_PAGE_SIZE);
}

static void *os_alloc(void *ctx, size_t size)
{
	struct posix_machine *pm = ctx;
	struct pm_alloc *h;

	pm_lock(pm);
	if (inject_failure(pm) || size > SIZE_MAX - sizeof(*h)) {
		pm_unlock(pm);
		return NULL;
	}
	h = malloc(sizeof(*h) + size);
	if (!h) {
		pm_unlock(pm);
		return NULL;
	}
	h->magic = PM_MAGIC;
	h->size = size;
	h->prev = &pm->allocs;
	h->next = pm->allocs.next;
	pm->allocs.next->prev = h;
	pm->allocs.next = h;
	pm->allocs_out++;
	pm_unlock(pm);
	return h + 1;
}

static void os_free(void *ctx, void *ptr, size_t size)
{
	struct posix_machine *pm = ctx;
	struct pm_alloc *h;

	if (!ptr)
		return;
	h = (struct pm_alloc *)ptr - 1;
	pm_lock(pm);
	if (h->magic != PM_MAGIC) {
		os_error(pm, "free of %p: not allocated by alloc (or freed twice)", ptr);
		pm_unlock(pm);
		return;
	}
	if (h->size != size)
		os_error(pm, "free of %p with size %zu, allocated with %zu", ptr, size, h->size);
	h->magic = 0;
	h->prev->next = h->next;
	h->next->prev = h->prev;
	pm->allocs_out--;
	pm_unlock(pm);
	free(h);
}

static void *os_page_alloc(void *ctx, uint64_t *phys)
{
	struct posix_machine *pm = ctx;
	uint8_t *shadow;
	uint32_t f;

	pm_lock(pm);
	if (inject_failure(pm)) {
		pm_unlock(pm);
		return NULL;
	}
	f = find_frames(pm, 1, 1);
	shadow = f == UINT32_MAX ? NULL : calloc(1, DMAR_PAGE_SIZE);
	if (!shadow) {
		pm_unlock(pm);
		return NULL;
	}
	pm->frame_kind[f] = FRAME_TABLE;
	pm->shadow[f] = shadow;
	pm->held[f] = 0;
	frames_taken(pm, f, 1);
	pm->pages_out++;
	memset(pm->arena + (uint64_t)f * DMAR_PAGE_SIZE, 0, DMAR_PAGE_SIZE);
	pm_unlock(pm);
	if (phys)
		*phys = pm->base + (uint64_t)f * DMAR_PAGE_SIZE;
	return pm->arena + (uint64_t)f * DMAR_PAGE_SIZE;
}

static void os_page_free(void *ctx, void *va, uint64_t phys)
{
	struct posix_machine *pm = ctx;
	uint64_t pa = dmar_posix_machine_virt_to_phys(pm, va);
	uint32_t f;

	if (!va)
		return;
	pm_lock(pm);
	f = pa == UINT64_MAX ? 0 : (uint32_t)((pa - pm->base) / DMAR_PAGE_SIZE);
	if (pa == UINT64_MAX || pa != phys || (pa & (DMAR_PAGE_SIZE - 1)) ||
	    pm->frame_kind[f] != FRAME_TABLE) {
		os_error(pm, "page_free of %p (phys 0x%llx): not a table page", va,
			 (unsigned long long)phys);
		pm_unlock(pm);
		return;
	}
	free(pm->shadow[f]);
	pm->shadow[f] = NULL;
	if (pm->held[f])
		pm->held_frames--;
	pm->held[f] = 0;
	pm->frame_kind[f] = FRAME_FREE;
	frames_released(pm, f);
	pm->pages_out--;
	pm_unlock(pm);
}

static void *os_phys_to_virt(void *ctx, uint64_t phys)
{
	return dmar_posix_machine_phys_to_virt(ctx, phys);
}

static uint64_t os_virt_to_phys(void *ctx, const void *va)
{
	return dmar_posix_machine_virt_to_phys(ctx, va);
}

/* ---- coherency: CPU view (the arena) and memory view (shadow) of table pages ---- */

/* Copies lines first..last of table page f from the CPU view to the memory view. */
static void sync_lines(struct posix_machine *pm, uint32_t f, unsigned first, unsigned last)
{
	memcpy(pm->shadow[f] + first * PM_LINE, pm->arena + (uint64_t)f * DMAR_PAGE_SIZE + first * PM_LINE,
	       (size_t)(last - first + 1) * PM_LINE);
}

static void os_cache_flush(void *ctx, const void *va, size_t len)
{
	struct posix_machine *pm = ctx;
	uint64_t pa = dmar_posix_machine_virt_to_phys(pm, va), end;

	if (pa == UINT64_MAX || len == 0)
		return;
	end = pa + len - 1;
	if (!in_arena(pm, end, 1))
		end = pm->base + pm->size - 1;
	pm_lock(pm);
	while (pa <= end) {
		uint32_t f = (uint32_t)((pa - pm->base) / DMAR_PAGE_SIZE);
		uint64_t page_end = pm->base + (uint64_t)f * DMAR_PAGE_SIZE + DMAR_PAGE_SIZE - 1;
		uint64_t stop = end < page_end ? end : page_end;
		unsigned first = (unsigned)((pa & (DMAR_PAGE_SIZE - 1)) / PM_LINE);
		unsigned last = (unsigned)((stop & (DMAR_PAGE_SIZE - 1)) / PM_LINE);

		if (pm->shadow[f]) {
			if (pm->hold_flushes) {
				if (!pm->held[f])
					pm->held_frames++;
				for (unsigned l = first; l <= last; l++)
					pm->held[f] |= 1ull << l;
			} else {
				sync_lines(pm, f, first, last);
			}
		}
		pa = stop + 1;
	}
	pm_unlock(pm);
}

/* GCMD.WBF completed on `u`: writes waiting in the write buffer reach memory. */
static void unit_wbf(void *ctx)
{
	struct pm_unit *u = ctx;
	struct posix_machine *pm = u->pm;
	uint32_t f;

	if (!u->coherent && pm->held_frames == 0)
		return;
	for (f = 0; f < pm->nframes; f++) {
		if (!pm->shadow[f])
			continue;
		if (u->coherent) {
			sync_lines(pm, f, 0, DMAR_PAGE_SIZE / PM_LINE - 1);
			continue;
		}
		for (unsigned l = 0; l < DMAR_PAGE_SIZE / PM_LINE; l++)
			if (pm->held[f] & (1ull << l))
				sync_lines(pm, f, l, l);
		pm->held[f] = 0;
	}
	pm->held_frames = 0;
}

static void os_wmb(void *ctx)
{
	(void)ctx;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/* ---- model memory ops (per unit) ---- */

/* Reads the CPU view of table memory as the unit would: whole aligned 64-bit words,
 * each read at once. Another thread of the driver may be storing entries of the same
 * page meanwhile, under its own lock, not the machine's (atomic stores: page-table
 * entries whole, root and context entries by 32-bit halves); acquire, because the
 * driver publishes a new table with a release store of the entry pointing at it, and
 * the walk then reads that table's entries. */
static void cpu_view_read(void *buf, const uint8_t *cpu, size_t len)
{
	if (((uintptr_t)cpu | len) & 7u) {
		memcpy(buf, cpu, len);
		return;
	}
	for (size_t i = 0; i < len; i += 8) {
		uint64_t w = __atomic_load_n((const uint64_t *)(const void *)(cpu + i),
					     __ATOMIC_ACQUIRE);
		memcpy((uint8_t *)buf + i, &w, 8);
	}
}

/* A table read by unit `u`: memory view for non-snooping (or RWBF) units, with the
 * check that the driver flushed what it wrote. While some library lock is held the
 * driver may be between writing an entry and flushing it (another thread's map or
 * unmap, say): a unit that reads the old value then is no error of the driver's (a
 * real unit may do the same), so the check only counts reads made while no library
 * lock is held, which is always the case in a single-threaded test. */
static void table_read(struct pm_unit *u, uint64_t pa, void *buf, size_t len, bool check)
{
	struct posix_machine *pm = u->pm;
	uint32_t f = (uint32_t)((pa - pm->base) / DMAR_PAGE_SIZE);
	const uint8_t *cpu = pm->arena + (pa - pm->base);
	bool same_page = ((pa & (DMAR_PAGE_SIZE - 1)) + len) <= DMAR_PAGE_SIZE;
	unsigned first, last;
	uint8_t now[64];

	if ((u->coherent && !u->rwbf) || !pm->shadow[f] || !same_page) {
		cpu_view_read(buf, cpu, len);
		return;
	}
	memcpy(buf, pm->shadow[f] + (pa & (DMAR_PAGE_SIZE - 1)), len);
	/* Lines flushed but held in the write buffer (RWBF) are not the driver's error. */
	first = (unsigned)((pa & (DMAR_PAGE_SIZE - 1)) / PM_LINE);
	last = (unsigned)(((pa & (DMAR_PAGE_SIZE - 1)) + len - 1) / PM_LINE);
	for (unsigned l = first; l <= last; l++)
		if (pm->held[f] & (1ull << l))
			check = false;
	if (!check || u->coherent || len > sizeof(now))
		return;
	cpu_view_read(now, cpu, len);
	/* Read after the CPU view (acquire): a write seen there was made under a lock
	 * taken before it, whose release cannot come before its flush, which waits for
	 * the machine lock held here. */
	if (memcmp(buf, now, len) != 0 && __atomic_load_n(&pm->locks_held, __ATOMIC_RELAXED) == 0) {
		uint64_t c = 0, mv = 0;

		memcpy(&c, now, len < 8 ? len : 8);
		memcpy(&mv, buf, len < 8 ? len : 8);
		pm->coherency_errors++;
		pm_logf(pm, DMAR_LOG_ERR,
			"driver error: unit 0x%llx read table entry at 0x%llx that was written "
			"but not flushed (cpu 0x%016llx, memory 0x%016llx)",
			(unsigned long long)u->base, (unsigned long long)pa,
			(unsigned long long)c, (unsigned long long)mv);
	}
}

static int unit_read(void *ctx, uint64_t pa, void *buf, size_t len, enum model_mem_kind kind)
{
	struct pm_unit *u = ctx;

	if (!in_arena(u->pm, pa, len))
		return -1;
	if (kind == MODEL_MEM_TABLE || kind == MODEL_MEM_PEEK)
		table_read(u, pa, buf, len, kind == MODEL_MEM_TABLE);
	else
		memcpy(buf, u->pm->arena + (pa - u->pm->base), len);
	return 0;
}

static int unit_write(void *ctx, uint64_t pa, const void *buf, size_t len, enum model_mem_kind kind)
{
	struct pm_unit *u = ctx;
	uint8_t *to;

	if (!in_arena(u->pm, pa, len))
		return -1;
	to = u->pm->arena + (pa - u->pm->base);
	if (kind == MODEL_MEM_STATUS && len == 4 && !(pa & 3)) {
		/* An aligned dword the unit writes at once, which a CPU may be polling with
		 * no lock (a waiter outside the unit lock). */
		uint32_t v;
		memcpy(&v, buf, 4);
		__atomic_store_n((uint32_t *)(void *)to, v, __ATOMIC_RELEASE);
		return 0;
	}
	memcpy(to, buf, len);
	return 0;
}

static void unit_interrupt(void *ctx, enum model_irq which)
{
	struct pm_unit *u = ctx;

	u->pm->irqs[which == MODEL_IRQ_FAULT ? 0 : 1]++;
}

static void *unit_alloc(void *ctx, size_t size)
{
	(void)ctx;
	return malloc(size);
}

static void unit_free(void *ctx, void *ptr, size_t size)
{
	(void)ctx;
	(void)size;
	free(ptr);
}

static const struct model_mem_ops unit_mem_ops = {
	.read = unit_read,
	.write = unit_write,
	.interrupt = unit_interrupt,
	.alloc = unit_alloc,
	.free = unit_free,
	.flush_write_buffer = unit_wbf,
};

/* ---- OS layer: MMIO, time ---- */

static struct pm_unit *route(struct posix_machine *pm, uint64_t pa, unsigned width)
{
	unsigned i;

	for (i = 0; i < pm->nunits; i++) {
		struct pm_unit *u = &pm->units[i];

		if (pa >= u->base && pa - u->base + width <= u->size)
			return u;
	}
	os_error(pm, "MMIO %u-bit access at 0x%llx: no unit there", width * 8,
		 (unsigned long long)pa);
	return NULL;
}

/* Takes the machine lock for one register access: advances the clock and finds the
 * unit (NULL: unrouted, logged). The caller releases the lock. */
static struct pm_unit *mmio_begin(struct posix_machine *pm, uint64_t pa, unsigned width)
{
	pm_lock(pm);
	pm->clock += 50;
	return route(pm, pa, width);
}

static uint32_t os_mmio_read32(void *ctx, uint64_t pa)
{
	struct pm_unit *u = mmio_begin(ctx, pa, 4);
	uint32_t v = u ? dmar_model_read32(u->model, (uint32_t)(pa - u->base)) : 0xffffffffu;

	pm_unlock(ctx);
	return v;
}

static uint64_t os_mmio_read64(void *ctx, uint64_t pa)
{
	struct pm_unit *u = mmio_begin(ctx, pa, 8);
	uint64_t v = u ? dmar_model_read64(u->model, (uint32_t)(pa - u->base)) : ~0ull;

	pm_unlock(ctx);
	return v;
}

static void os_mmio_write32(void *ctx, uint64_t pa, uint32_t val)
{
	struct pm_unit *u = mmio_begin(ctx, pa, 4);

	if (u)
		dmar_model_write32(u->model, (uint32_t)(pa - u->base), val);
	pm_unlock(ctx);
}

static void os_mmio_write64(void *ctx, uint64_t pa, uint64_t val)
{
	struct pm_unit *u = mmio_begin(ctx, pa, 8);

	if (u)
		dmar_model_write64(u->model, (uint32_t)(pa - u->base), val);
	pm_unlock(ctx);
}

static uint64_t advance(struct posix_machine *pm, uint64_t ns)
{
	uint64_t now;
	unsigned i;

	pm_lock(pm);
	pm->clock += ns;
	for (i = 0; i < pm->nunits; i++)
		dmar_model_tick(pm->units[i].model);
	now = pm->clock;
	pm_unlock(pm);
	return now;
}

static uint64_t os_now_ns(void *ctx)
{
	return advance(ctx, 10);
}

static void os_delay_ns(void *ctx, uint64_t ns)
{
	advance(ctx, ns);
}

/* ---- OS layer: locks, log ---- */

static void *os_lock_create(void *ctx)
{
	pthread_mutex_t *mu = os_alloc(ctx, sizeof(*mu));

	if (mu && pthread_mutex_init(mu, NULL) != 0) {
		os_free(ctx, mu, sizeof(*mu));
		return NULL;
	}
	return mu;
}

static void os_lock_acquire(void *ctx, void *lock)
{
	struct posix_machine *pm = ctx;

	pthread_mutex_lock(lock);
	__atomic_fetch_add(&pm->locks_held, 1, __ATOMIC_RELAXED);
}

static void os_lock_release(void *ctx, void *lock)
{
	struct posix_machine *pm = ctx;

	__atomic_fetch_sub(&pm->locks_held, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(lock);
}

static void os_lock_destroy(void *ctx, void *lock)
{
	if (!lock)
		return;
	pthread_mutex_destroy(lock);
	os_free(ctx, lock, sizeof(pthread_mutex_t));
}

static void os_log(void *ctx, enum dmar_log_level level, const char *line)
{
	log_line(ctx, level, line);
}

static unsigned os_cpu_index(void *ctx)
{
	(void)ctx;
	return dmar_port_thread_cpu_index();
}

static const struct dmar_os_ops posix_os_ops = {
	.alloc = os_alloc,
	.free = os_free,
	.page_alloc = os_page_alloc,
	.page_free = os_page_free,
	.phys_to_virt = os_phys_to_virt,
	.virt_to_phys = os_virt_to_phys,
	.mmio_read32 = os_mmio_read32,
	.mmio_read64 = os_mmio_read64,
	.mmio_write32 = os_mmio_write32,
	.mmio_write64 = os_mmio_write64,
	.cache_flush = os_cache_flush,
	.wmb = os_wmb,
	.now_ns = os_now_ns,
	.delay_ns = os_delay_ns,
	.lock_create = os_lock_create,
	.lock_acquire = os_lock_acquire,
	.lock_release = os_lock_release,
	.lock_destroy = os_lock_destroy,
	.log = os_log,
	.contig_alloc = os_contig_alloc,
	.contig_free = os_contig_free,
	.cpu_index = os_cpu_index,
};

/* ---- the machine ---- */

struct posix_machine *dmar_posix_machine_create(const struct dmar_posix_machine_config *cfg)
{
	struct posix_machine *pm;
	pthread_mutexattr_t attr;
	const char *env = getenv("DMAR_LOG");
	uint64_t size = cfg && cfg->mem_size ? cfg->mem_size : 256ull << 20;
	uint64_t base = cfg && cfg->phys_base ? cfg->phys_base : 0x40000000ull;

	if ((size & (DMAR_PAGE_SIZE - 1)) || (base & (DMAR_PAGE_SIZE - 1)) ||
	    size / DMAR_PAGE_SIZE > UINT32_MAX / 2 || base + size < base || size > SIZE_MAX)
		return NULL;
	pm = calloc(1, sizeof(*pm));
	if (!pm)
		return NULL;
	pm->base = base;
	pm->size = size;
	pm->nframes = (uint32_t)(size / DMAR_PAGE_SIZE);
	pm->verbose = (cfg && cfg->verbose) || (env && strcmp(env, "1") == 0);
	pm->allocs.next = pm->allocs.prev = &pm->allocs;
	pm->arena = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (pm->arena == MAP_FAILED) {
		free(pm);
		return NULL;
	}
	pm->frame_kind = calloc(pm->nframes, 1);
	pm->shadow = calloc(pm->nframes, sizeof(*pm->shadow));
	pm->held = calloc(pm->nframes, sizeof(*pm->held));
	if (!pm->frame_kind || !pm->shadow || !pm->held) {
		free(pm->frame_kind);
		free(pm->shadow);
		free(pm->held);
		munmap(pm->arena, (size_t)size);
		free(pm);
		return NULL;
	}
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&pm->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	pm->ops = posix_os_ops;
	pm->os.ops = &pm->ops;
	pm->os.ctx = pm;
	return pm;
}

void dmar_posix_machine_destroy(struct posix_machine *pm)
{
	unsigned i;
	uint32_t f;

	if (!pm)
		return;
	if (pm->allocs_out || pm->pages_out)
		pm_logf(pm, DMAR_LOG_ERR, "machine destroyed with %llu allocations and %llu "
			"table pages outstanding", (unsigned long long)pm->allocs_out,
			(unsigned long long)pm->pages_out);
	for (i = 0; i < pm->nunits; i++)
		dmar_model_destroy(pm->units[i].model);
	while (pm->allocs.next != &pm->allocs) {
		struct pm_alloc *h = pm->allocs.next;

		pm->allocs.next = h->next;
		free(h);
	}
	for (f = 0; f < pm->nframes; f++)
		free(pm->shadow[f]);
	free(pm->shadow);
	free(pm->held);
	free(pm->frame_kind);
	munmap(pm->arena, (size_t)pm->size);
	pthread_mutex_destroy(&pm->lock);
	free(pm->log);
	free(pm);
}

struct model *dmar_posix_machine_add_unit(struct posix_machine *pm, uint64_t reg_base,
				     const struct model_config *cfg)
{
	struct model_config def;
	struct pm_unit *u;
	uint32_t size;
	unsigned i;

	if (!cfg) {
		dmar_model_config_default(&def);
		cfg = &def;
	}
	size = dmar_model_config_reg_size(cfg);
	if (pm->nunits == PM_MAX_UNITS || (reg_base & (DMAR_PAGE_SIZE - 1)) ||
	    reg_base + size < reg_base ||
	    (reg_base < pm->base + pm->size && reg_base + size > pm->base))
		return NULL;
	for (i = 0; i < pm->nunits; i++)
		if (reg_base < pm->units[i].base + pm->units[i].size &&
		    reg_base + size > pm->units[i].base)
			return NULL;
	pm_lock(pm);
	u = &pm->units[pm->nunits];
	u->pm = pm;
	u->base = reg_base;
	u->size = size;
	u->coherent = cfg->c;
	u->rwbf = cfg->rwbf;
	u->model = dmar_model_create(cfg, &unit_mem_ops, u);
	if (u->model) {
		pm->nunits++;
		if (!cfg->c && cfg->rwbf)
			pm->hold_flushes = true;
	}
	pm_unlock(pm);
	return u->model;
}

struct model *dmar_posix_machine_unit(struct posix_machine *pm, uint64_t reg_base)
{
	unsigned i;

	for (i = 0; i < pm->nunits; i++)
		if (pm->units[i].base == reg_base)
			return pm->units[i].model;
	return NULL;
}

const struct dmar_os *dmar_posix_machine_os(struct posix_machine *pm)
{
	return &pm->os;
}

int dmar_posix_machine_dma(struct posix_machine *pm, struct model *unit, uint16_t sid,
		      uint64_t iova, void *buf, size_t len, enum model_dir dir,
		      struct model_fault *fault)
{
	int rc;

	pm_lock(pm);
	rc = dmar_model_dma(unit, sid, iova, buf, len, dir, fault);
	pm_unlock(pm);
	return rc;
}

int dmar_posix_machine_interrupt(struct posix_machine *pm, struct model *unit, uint16_t sid,
				 uint64_t addr, uint32_t data, struct model_irq_delivery *out)
{
	int rc;

	pm_lock(pm);
	rc = dmar_model_interrupt(unit, sid, addr, data, out);
	pm_unlock(pm);
	return rc;
}

/* The counters change under the machine lock from any thread (a test may watch the
 * clock while another thread polls the unit), so they are read under it too. */
static uint64_t pm_read(const struct posix_machine *cpm, const uint64_t *field)
{
	struct posix_machine *pm = (struct posix_machine *)cpm;
	uint64_t v;

	pm_lock(pm);
	v = *field;
	pm_unlock(pm);
	return v;
}

uint64_t dmar_posix_machine_allocs_outstanding(const struct posix_machine *pm) { return pm_read(pm, &pm->allocs_out); }
uint64_t dmar_posix_machine_pages_outstanding(const struct posix_machine *pm) { return pm_read(pm, &pm->pages_out); }
uint64_t dmar_posix_machine_dma_outstanding(const struct posix_machine *pm) { return pm_read(pm, &pm->dma_out); }
uint64_t dmar_posix_machine_alloc_calls(const struct posix_machine *pm) { return pm_read(pm, &pm->calls); }
uint64_t dmar_posix_machine_coherency_errors(const struct posix_machine *pm) { return pm_read(pm, &pm->coherency_errors); }
uint64_t dmar_posix_machine_os_errors(const struct posix_machine *pm) { return pm_read(pm, &pm->os_errors); }
uint64_t dmar_posix_machine_now(const struct posix_machine *pm) { return pm_read(pm, &pm->clock); }

bool dmar_posix_machine_failed(const struct posix_machine *cpm)
{
	struct posix_machine *pm = (struct posix_machine *)cpm;
	bool v;

	pm_lock(pm);
	v = pm->failed;
	pm_unlock(pm);
	return v;
}

void dmar_posix_machine_fail_nth(struct posix_machine *pm, unsigned n)
{
	pm_lock(pm);
	pm->fail_at = n;
	pm->calls = 0;
	pm->failed = false;
	pm_unlock(pm);
}

uint64_t dmar_posix_machine_irqs(const struct posix_machine *pm, enum model_irq which)
{
	return pm_read(pm, &pm->irqs[which == MODEL_IRQ_FAULT ? 0 : 1]);
}
