/*
 * demo.h - the plain-words demonstration run by `make demo` (kernel.demo=1).
 */
#ifndef KERNEL_DEMO_H
#define KERNEL_DEMO_H

/* Runs the demonstration on the machine kenv describes; 0 when every step did what it
 * says, 1 otherwise (after printing what went wrong). */
int demo_run(void);

#endif
