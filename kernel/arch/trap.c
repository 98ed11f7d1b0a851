/* IDT, exception reports, 8259 PIC and PIT tick. */
#include "trap.h"

#include "console.h"
#include "x86.h"

#define PIC1 0x20
#define PIC2 0xa0
#define PIT_HZ 1193182u
#define TICK_HZ 100u
#define VEC_TIMER 32
#define VEC_SPURIOUS 39 /* IRQ 7: the master PIC's spurious vector */

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

extern const uint64_t isr_table[34];

static struct idt_entry idt[256] __attribute__((aligned(16)));
static trap_tick_fn tick_fn;
static volatile uint64_t ticks;

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
	for (unsigned v = 0; v < 33; v++)
		set_gate(v, isr_table[v]);
	set_gate(VEC_SPURIOUS, isr_table[33]);
	struct idt_ptr p = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };
	__asm__ volatile("lidt %0" : : "m"(p));
	tick_fn = tick;
	pic_init();
	pit_init();
	irq_enable();
}

uint64_t trap_ticks(void) { return ticks; }

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
	if (f->vector == VEC_SPURIOUS)
		return; /* spurious IRQ 7: no EOI */
	kprintf("\n# CPU exception %llu (%s) error=%#llx rip=%#llx rsp=%#llx cr2=%#llx\n",
		(unsigned long long)f->vector, exception_names[f->vector & 31],
		(unsigned long long)f->error, (unsigned long long)f->rip,
		(unsigned long long)f->rsp, (unsigned long long)read_cr2());
	kprintf("# rax=%#llx rbx=%#llx rcx=%#llx rdx=%#llx rsi=%#llx rdi=%#llx\n",
		(unsigned long long)f->rax, (unsigned long long)f->rbx,
		(unsigned long long)f->rcx, (unsigned long long)f->rdx,
		(unsigned long long)f->rsi, (unsigned long long)f->rdi);
	kprintf("Bail out! CPU exception\n");
	qemu_exit(2);
}
