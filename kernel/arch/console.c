/* Serial console (COM1), kprintf and the isa-debug-exit port. */
#include "console.h"

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

void console_write(const char *s)
{
	while (*s)
		console_putc(*s++);
}

int kvprintf(const char *fmt, va_list ap)
{
	char buf[512];
	int n = dmar__vsnprintf(buf, sizeof(buf), fmt, ap);
	console_write(buf);
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
	outl(DEBUG_EXIT_PORT, code);
	/* No isa-debug-exit device: nothing else can end the run, so stop here. */
	irq_disable();
	for (;;)
		cpu_halt();
}
