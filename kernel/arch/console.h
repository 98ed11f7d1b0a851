/*
 * console.h - serial console on COM1 (115200 8n1, polled) and the kernel's printf, which
 * formats with the library's dmar__vsnprintf. Safe from several CPUs and from interrupts.
 */
#ifndef KERNEL_CONSOLE_H
#define KERNEL_CONSOLE_H

#include <stdarg.h>

void console_init(void);
/* Whole lines from several CPUs never interleave (each CPU's text is kept until its
 * newline). */
void console_write(const char *s);
/* Straight to the port, without the console lock: for a CPU that is about to end the
 * run (a deadlock report, an exception) and may hold that lock. */
void console_emergency(const char *s);
int kprintf_emergency(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int kvprintf(const char *fmt, va_list ap);

/* Ends the QEMU run through isa-debug-exit (I/O port 0xf4): QEMU exits with status
 * 2 * code + 1, so code 0 (every test passed) gives 1. Halts if the device is absent. */
_Noreturn void qemu_exit(unsigned code);

#endif
