/* Serial console (COM1), kprintf and the isa-debug-exit port. */
#include "console.h"

#include "smp.h"
#include "spinlock.h"
#include "util.h"
#include "x86.h"

#define COM1 0x3f8
#define DEBUG_EXIT_PORT 0xf4

void console_init(void)
{
	outb(COM1 + 1, 0x00); /* no interrupts: the console is polled */
	outb(COM1 + 3, 0x80); /* DLAB */
	outb(COM1 + 0, 0x01); /* divisor 1: 115200 baud */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03); /* 8n1 */
	outb(COM1 + 2, 0xc7); /* FIFO on, cleared */
	outb(COM1 + 4, 0x03); /* DTR, RTS */
}

static void console_putc(char c)
{
	unsigned spins = 0;
	while (!(inb(COM1 + 5) & 0x20) && spins++ < 100000)
		cpu_relax();
	outb(COM1, (uint8_t)c);
}

/* Several CPUs print: each collects its output up to a newline in a line buffer of its
 * own and writes whole lines under the console lock, so lines never interleave.
 * Interrupts stay off on the printing CPU meanwhile (the watchdog prints from the
 * timer tick). */
#define LINE_MAX 512
static struct spinlock console_lock = SPINLOCK_INIT("console");
static char line[SMP_MAX_CPUS][LINE_MAX];
static unsigned line_len[SMP_MAX_CPUS];

static void flush_line(unsigned cpu)
{
	spin_lock(&console_lock);
	for (unsigned i = 0; i < line_len[cpu]; i++)
		console_putc(line[cpu][i]);
	spin_unlock(&console_lock);
	line_len[cpu] = 0;
}

static void put_locked_line(const char *s)
{
	unsigned cpu = smp_cpu_index();
	for (; *s; s++) {
		line[cpu][line_len[cpu]++] = *s;
		if (*s == '\n' || line_len[cpu] == LINE_MAX)
			flush_line(cpu);
	}
}

void console_write(const char *s)
{
	uint64_t f = irq_save();
	put_locked_line(s);
	irq_restore(f);
}

void console_emergency(const char *s)
{
	while (*s)
		console_putc(*s++);
}

int kprintf_emergency(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	int n = dmar__vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	console_emergency(buf);
	return n;
}

int kvprintf(const char *fmt, va_list ap)
{
	char buf[LINE_MAX];
	uint64_t f = irq_save();
	int n = dmar__vsnprintf(buf, sizeof(buf), fmt, ap);
	put_locked_line(buf);
	irq_restore(f);
	return n;
}

int kprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = kvprintf(fmt, ap);
	va_end(ap);
	return n;
}

_Noreturn void qemu_exit(unsigned code)
{
	/* What this CPU printed without a newline yet (the lock may be lost with it). */
	unsigned cpu = smp_cpu_index();
	for (unsigned i = 0; i < line_len[cpu]; i++)
		console_putc(line[cpu][i]);
	line_len[cpu] = 0;
	outl(DEBUG_EXIT_PORT, code);
	/* No isa-debug-exit device: nothing else can end the run, so stop here. */
	irq_disable();
	for (;;)
		cpu_halt();
}
