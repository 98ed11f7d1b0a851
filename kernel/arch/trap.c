/* IDT, exception reports, 8259 PIC and PIT tick, device vectors through the local APIC. */
#include "trap.h"

#include "clock.h"
#include "console.h"
#include "lapic.h"
#include "smp.h"
#include "x86.h"

#define PIC1 0x20
#define PIC2 0xa0
#define PIT_HZ 1193182u
#define TICK_HZ 100u
#define VEC_TIMER 32
#define VEC_SPURIOUS 39 /* IRQ 7: the master PIC's spurious vector */
#define VEC_PIC_LAST 47
#define VEC_SLAVE_SPURIOUS 47 /* IRQ 15 */
#define TICK_NS (1000000000ull / TICK_HZ)

struct idt_entry {
	uint16_t off0, sel;
	uint8_t ist, type;
	uint16_t off1;
	uint32_t off2, zero;
} __attribute__((packed));

struct idt_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

extern const uint64_t isr_table[32];
extern const char isr_external[]; /* vector v's stub at + (v - 32) * 16 (isr.S) */

static struct idt_entry idt[256] __attribute__((aligned(16)));
static trap_tick_fn tick_fn;
static volatile uint64_t ticks;

struct device_vector {
	trap_irq_fn fn;
	void *ctx;
	bool claimed;
	volatile uint64_t count;
	volatile uint32_t last_cpu;
};
static struct device_vector devvec[256];
static volatile uint64_t stray;

static void set_gate(unsigned vec, uint64_t handler)
{
	struct idt_entry *e = &idt[vec];
	e->off0 = (uint16_t)handler;
	e->sel = 0x08;
	e->ist = 0;
	e->type = 0x8e; /* present, interrupt gate: IF cleared on entry */
	e->off1 = (uint16_t)(handler >> 16);
	e->off2 = (uint32_t)(handler >> 32);
	e->zero = 0;
}

static void pic_init(void)
{
	outb(PIC1, 0x11);
	outb(PIC2, 0x11);
	outb(PIC1 + 1, 0x20); /* IRQ 0-7 -> vectors 32-39 */
	outb(PIC2 + 1, 0x28);
	outb(PIC1 + 1, 0x04);
	outb(PIC2 + 1, 0x02);
	outb(PIC1 + 1, 0x01);
	outb(PIC2 + 1, 0x01);
	outb(PIC1 + 1, 0xfe); /* only IRQ 0 */
	outb(PIC2 + 1, 0xff);
}

static void pit_init(void)
{
	uint16_t div = (uint16_t)(PIT_HZ / TICK_HZ);
	outb(0x43, 0x34); /* channel 0, lo/hi byte, mode 2 (rate generator) */
	outb(0x40, (uint8_t)div);
	outb(0x40, (uint8_t)(div >> 8));
}

void trap_init(trap_tick_fn tick)
{
	for (unsigned v = 0; v < 32; v++)
		set_gate(v, isr_table[v]);
	for (unsigned v = 32; v < 256; v++)
		set_gate(v, (uint64_t)(uintptr_t)(isr_external + (v - 32) * 16));
	for (unsigned v = 0; v < 256; v++)
		devvec[v].last_cpu = 0xffffffffu;
	trap_load_idt();
	tick_fn = tick;
	pic_init();
	if (!lapic_init())
		kprintf("# no local APIC in xAPIC mode: device interrupts unavailable\n");
	pit_init();
	irq_enable();
}

void trap_load_idt(void)
{
	struct idt_ptr p = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };
	__asm__ volatile("lidt %0" : : "m"(p));
}

uint64_t trap_ticks(void) { return ticks; }

static bool interrupts_on(void)
{
	uint64_t flags;
	__asm__ volatile("pushfq; popq %0" : "=r"(flags));
	return flags & 0x200;
}

static bool device_vector(unsigned v)
{
	return v >= TRAP_VEC_DEVICE_FIRST && v <= TRAP_VEC_DEVICE_LAST;
}

int trap_irq_claim(unsigned vector, trap_irq_fn fn, void *ctx)
{
	if (vector == 0)
		for (vector = TRAP_VEC_DEVICE_FIRST;
		     vector <= TRAP_VEC_DEVICE_LAST && devvec[vector].claimed; vector++)
			;
	if (!device_vector(vector) || devvec[vector].claimed)
		return -1;
	bool on = interrupts_on();
	irq_disable();
	devvec[vector].fn = fn;
	devvec[vector].ctx = ctx;
	devvec[vector].claimed = true;
	if (on)
		irq_enable();
	return (int)vector;
}

void trap_irq_release(unsigned vector)
{
	if (!device_vector(vector))
		return;
	bool on = interrupts_on();
	irq_disable();
	devvec[vector].fn = 0;
	devvec[vector].ctx = 0;
	devvec[vector].claimed = false;
	if (on)
		irq_enable();
}

uint64_t trap_irq_count(unsigned vector)
{
	return vector < 256 ? devvec[vector].count : 0;
}

uint32_t trap_irq_last_cpu(unsigned vector)
{
	return vector < 256 ? devvec[vector].last_cpu : 0xffffffffu;
}

uint64_t trap_irq_stray(void) { return stray; }

/* Waits for the next interrupt: halts while the tick is alive (it ends the halt within
 * 10 ms), spins once it has not moved for two periods (interrupts off, or the PIT
 * stopped), so the caller's TSC bound still ends the wait. */
struct idler {
	uint64_t tick, since;
};

static void idle(struct idler *w)
{
	uint64_t now = clock_now_ns();
	if (ticks != w->tick) {
		w->tick = ticks;
		w->since = now;
	}
	if (interrupts_on() && now - w->since < 2 * TICK_NS)
		cpu_halt();
	else
		cpu_relax();
}

bool trap_irq_wait(unsigned vector, uint64_t count, unsigned n)
{
	uint64_t t0 = ticks, end = clock_now_ns() + 2 * (n + 1) * TICK_NS;
	struct idler w = { ticks, clock_now_ns() };
	for (;;) {
		if (trap_irq_count(vector) > count)
			return true;
		if (ticks - t0 >= n || clock_now_ns() > end)
			return trap_irq_count(vector) > count;
		idle(&w);
	}
}

void trap_wait_ticks(unsigned n)
{
	uint64_t t0 = ticks, end = clock_now_ns() + 2 * (n + 1) * TICK_NS;
	struct idler w = { ticks, clock_now_ns() };
	while (ticks - t0 < n && clock_now_ns() <= end)
		idle(&w);
}

/* A device vector: counted, handed over, ended at the local APIC. */
static void device_interrupt(unsigned v)
{
	struct device_vector *d = &devvec[v];
	d->count++;
	d->last_cpu = lapic_id();
	if (d->claimed && d->fn)
		d->fn(d->ctx, v);
	else if (!d->claimed)
		stray++;
	lapic_eoi();
}

static const char *const exception_names[32] = {
	"divide error", "debug", "NMI", "breakpoint", "overflow", "bound range",
	"invalid opcode", "device not available", "double fault", "coprocessor overrun",
	"invalid TSS", "segment not present", "stack fault", "general protection",
	"page fault", "reserved", "x87 error", "alignment check", "machine check",
	"SIMD error", "virtualization", "control protection", "reserved", "reserved",
	"reserved", "reserved", "reserved", "reserved", "hypervisor injection",
	"VMM communication", "security", "reserved",
};

void trap_dispatch(struct trap_frame *f)
{
	if (f->vector == VEC_TIMER) {
		ticks++;
		outb(PIC1, 0x20);
		if (tick_fn)
			tick_fn();
		return;
	}
	if (f->vector == VEC_SPURIOUS || f->vector == LAPIC_SPURIOUS_VECTOR)
		return; /* spurious IRQ 7 or spurious local APIC interrupt: no EOI */
	if (f->vector > VEC_TIMER && f->vector <= VEC_PIC_LAST) {
		/* A masked 8259 line fired anyway (or the slave's spurious IRQ 15). */
		stray++;
		if (f->vector >= 40 && f->vector != VEC_SLAVE_SPURIOUS)
			outb(PIC2, 0x20);
		outb(PIC1, 0x20);
		return;
	}
	if (f->vector >= 32) {
		device_interrupt((unsigned)f->vector);
		return;
	}
	kprintf("\n# CPU exception %llu (%s) on CPU %u: error=%#llx rip=%#llx rsp=%#llx "
		"cr2=%#llx\n", (unsigned long long)f->vector, exception_names[f->vector & 31],
		smp_cpu_index(), (unsigned long long)f->error, (unsigned long long)f->rip,
		(unsigned long long)f->rsp, (unsigned long long)read_cr2());
	kprintf("# rax=%#llx rbx=%#llx rcx=%#llx rdx=%#llx rsi=%#llx rdi=%#llx\n",
		(unsigned long long)f->rax, (unsigned long long)f->rbx,
		(unsigned long long)f->rcx, (unsigned long long)f->rdx,
		(unsigned long long)f->rsi, (unsigned long long)f->rdi);
	kprintf("Bail out! CPU exception\n");
	qemu_exit(2);
}
