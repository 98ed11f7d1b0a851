/*
 * console.h - serial console on COM1 (115200 8n1, polled) and the kernel's printf, which
 * formats with the library's dmar__vsnprintf.
 */
#ifndef KERNEL_CONSOLE_H
#define KERNEL_CONSOLE_H

#include <stdarg.h>

void console_init(void);
void console_write(const char *s);
int kprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int kvprintf(const char *fmt, va_list ap);

/* Ends the QEMU run through isa-debug-exit (I/O port 0xf4): QEMU exits with status
 * 2 * code + 1, so code 0 (every test passed) gives 1. Halts if the device is absent. */
_Noreturn void qemu_exit(unsigned code);

#endif
