/* Application processors: MADT, trampoline, INIT-SIPI-SIPI, per-CPU data, mailboxes. */
#include "smp.h"

#include "acpi_find.h"
#include "clock.h"
#include "console.h"
#include "lapic.h"
#include "pmem.h"
#include "trap.h"
#include "util.h"
#include "x86.h"

#define MSR_GS_BASE 0xc0000101u
#define MADT_HEADER 44
#define MADT_LAPIC 0
#define MADT_LAPIC_ENABLED 0x1u
#define SIPI_VECTOR (SMP_TRAMPOLINE_PA >> 12)
#define INIT_DELAY_NS 10000000ull  /* SDM 8.4.4.1: 10 ms after INIT */
#define SIPI_DELAY_NS 200000ull    /* 200 us after each SIPI */

/* One CPU's data, at its GS base (self first: %gs:0 is the pointer). */
struct percpu {
	struct percpu *self;
	unsigned index;
	uint32_t apic_id;
	volatile bool online;
	/* The mailbox: a new generation carries a new (fn, arg). */
	smp_fn volatile fn;
	void *volatile arg;
	volatile uint64_t gen, done;
	uint64_t stack;
} __attribute__((aligned(64)));

static struct percpu cpus[SMP_MAX_CPUS];
static unsigned ncpus = 1, nlisted;
static bool gs_ready;

extern const char smp_trampoline_start[], smp_trampoline_end[];
extern const char smp_trampoline_cr3[], smp_trampoline_stack[], smp_trampoline_arg[];
extern const char smp_trampoline_entry[];

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

unsigned smp_cpu_index(void)
{
	if (!gs_ready)
		return 0;
	unsigned i;
	__asm__ volatile("movl %%gs:%c1, %0"
			 : "=r"(i)
			 : "i"(__builtin_offsetof(struct percpu, index)));
	return i;
}

unsigned smp_cpu_count(void) { return ncpus; }
unsigned smp_cpus_listed(void) { return nlisted; }
uint32_t smp_cpu_apic_id(unsigned index) { return index < ncpus ? cpus[index].apic_id : 0; }

/* A field of the trampoline's copy at SMP_TRAMPOLINE_PA. */
static volatile uint64_t *tramp_field(const char *sym)
{
	return (volatile uint64_t *)phys_ptr(SMP_TRAMPOLINE_PA +
					     (uint64_t)(sym - smp_trampoline_start));
}

void smp_ap_entry(struct percpu *pc);

/* An AP, in long mode on its own stack, interrupts off. */
void smp_ap_entry(struct percpu *pc)
{
	wrmsr(MSR_GS_BASE, (uint64_t)(uintptr_t)pc);
	trap_load_idt();
	lapic_init_ap();
	__atomic_store_n(&pc->online, true, __ATOMIC_RELEASE);
	for (;;) {
		uint64_t gen = __atomic_load_n(&pc->gen, __ATOMIC_ACQUIRE);
		if (gen == pc->done) {
			/* Halt until the wake-up IPI. It cannot be lost: one sent after the
			 * check above stays pending until `sti` has taken effect, which is
			 * after `hlt` has begun (the sti shadow). */
			__asm__ volatile("sti; hlt; cli" : : : "memory");
			continue;
		}
		pc->fn(pc->arg, pc->index);
		__atomic_store_n(&pc->done, gen, __ATOMIC_RELEASE);
	}
}

static bool wait_online(struct percpu *pc, uint64_t ns)
{
	uint64_t end = clock_now_ns() + ns;
	while (!__atomic_load_n(&pc->online, __ATOMIC_ACQUIRE))
		if (clock_now_ns() > end)
			return false;
		else
			cpu_relax();
	return true;
}

/* INIT, 10 ms, SIPI, 200 us, a second SIPI if it has not answered (SDM 8.4.4.1). */
static bool start_ap(struct percpu *pc)
{
	uint64_t stack = pmem_alloc(SMP_AP_STACK_PAGES, 4096, PMEM_NO_LIMIT);
	if (!stack) {
		kprintf("# smp: no memory for the stack of APIC id %u\n", pc->apic_id);
		return false;
	}
	pc->stack = stack;
	*tramp_field(smp_trampoline_stack) = stack + SMP_AP_STACK_PAGES * 4096ull;
	*tramp_field(smp_trampoline_arg) = (uint64_t)(uintptr_t)pc;
	mfence();
	if (!lapic_send_init(pc->apic_id)) {
		kprintf("# smp: INIT to APIC id %u not delivered\n", pc->apic_id);
		return false;
	}
	clock_delay_ns(INIT_DELAY_NS);
	for (unsigned sipi = 0; sipi < 2; sipi++) {
		if (!lapic_send_startup(pc->apic_id, SIPI_VECTOR)) {
			kprintf("# smp: SIPI to APIC id %u not delivered\n", pc->apic_id);
			return false;
		}
		if (wait_online(pc, SIPI_DELAY_NS))
			return true;
	}
	return wait_online(pc, SMP_AP_TIMEOUT_NS);
}

unsigned smp_init(unsigned max)
{
	cpus[0].self = &cpus[0];
	cpus[0].index = 0;
	cpus[0].apic_id = lapic_id();
	cpus[0].online = true;
	wrmsr(MSR_GS_BASE, (uint64_t)(uintptr_t)&cpus[0]);
	gs_ready = true;

	struct acpi_found f;
	if (!lapic_present() || acpi_find_table("APIC", &f) != 0 || f.length < MADT_HEADER) {
		kprintf("# smp: no local APIC or no MADT: one CPU\n");
		return ncpus;
	}
	const uint8_t *t = (const uint8_t *)phys_ptr(f.table);
	uint32_t ids[SMP_MAX_CPUS * 4];
	unsigned nids = 0;
	for (uint32_t off = MADT_HEADER; off + 2 <= f.length;) {
		const uint8_t *e = t + off;
		uint8_t type = e[0], len = e[1];
		if (len < 2 || off + len > f.length)
			break;
		if (type == MADT_LAPIC && len >= 8) {
			uint32_t flags = (uint32_t)e[4] | (uint32_t)e[5] << 8 |
					 (uint32_t)e[6] << 16 | (uint32_t)e[7] << 24;
			if ((flags & MADT_LAPIC_ENABLED) && nids < DMAR_ARRAY_SIZE(ids))
				ids[nids++] = e[3];
		}
		off += len;
	}
	nlisted = nids;
	if (nids > 1 && trap_irq_claim(SMP_WAKE_VECTOR, 0, 0) < 0) {
		kprintf("# smp: vector %u taken: one CPU\n", SMP_WAKE_VECTOR);
		return ncpus;
	}
	if (max == 0 || max > SMP_MAX_CPUS)
		max = SMP_MAX_CPUS;

	/* The trampoline page is below 1 MiB, which pmem never hands out. */
	size_t len = (size_t)(smp_trampoline_end - smp_trampoline_start);
	dmar_memcpy(phys_ptr(SMP_TRAMPOLINE_PA), smp_trampoline_start, len);
	*tramp_field(smp_trampoline_cr3) = read_cr3();
	*tramp_field(smp_trampoline_entry) = (uint64_t)(uintptr_t)smp_ap_entry;

	for (unsigned i = 0; i < nids && ncpus < max; i++) {
		if (ids[i] == cpus[0].apic_id)
			continue;
		struct percpu *pc = &cpus[ncpus];
		pc->self = pc;
		pc->index = ncpus;
		pc->apic_id = ids[i];
		uint64_t t0 = clock_now_ns();
		if (!start_ap(pc)) {
			/* A late AP would still run the trampoline: start no other. */
			kprintf("# smp: the CPU with APIC id %u did not start; no further CPU "
				"started\n", ids[i]);
			break;
		}
		kprintf("# smp: CPU %u (APIC id %u) up in %llu us\n", pc->index, pc->apic_id,
			(unsigned long long)((clock_now_ns() - t0) / 1000));
		ncpus++;
	}
	return ncpus;
}

void smp_run(smp_fn fn, void *arg)
{
	for (unsigned i = 1; i < ncpus; i++) {
		cpus[i].fn = fn;
		cpus[i].arg = arg;
		__atomic_store_n(&cpus[i].gen, cpus[i].gen + 1, __ATOMIC_RELEASE);
		(void)lapic_send_fixed(cpus[i].apic_id, SMP_WAKE_VECTOR);
	}
	fn(arg, 0);
	for (unsigned i = 1; i < ncpus; i++)
		while (__atomic_load_n(&cpus[i].done, __ATOMIC_ACQUIRE) != cpus[i].gen)
			cpu_relax();
}

void smp_barrier_init(struct smp_barrier *b, unsigned n)
{
	b->count = 0;
	b->generation = 0;
	b->n = n;
}

void smp_barrier_wait(struct smp_barrier *b)
{
	unsigned gen = __atomic_load_n(&b->generation, __ATOMIC_ACQUIRE);
	if (__atomic_add_fetch(&b->count, 1u, __ATOMIC_ACQ_REL) == b->n) {
		__atomic_store_n(&b->count, 0u, __ATOMIC_RELAXED);
		__atomic_store_n(&b->generation, gen + 1, __ATOMIC_RELEASE);
		return;
	}
	while (__atomic_load_n(&b->generation, __ATOMIC_ACQUIRE) == gen)
		cpu_relax();
}
