/*
 * thread_cpu.h - the OS layer's cpu_index for host ports (posix, null): a thread of the
 * host stands for a CPU; threads get 0, 1, 2, ... as they first ask.
 */
#ifndef DMAR_PORTS_THREAD_CPU_H
#define DMAR_PORTS_THREAD_CPU_H

static inline unsigned dmar_port_thread_cpu_index(void)
{
	static unsigned next;
	static _Thread_local unsigned mine; /* index + 1; 0: not asked yet */
	if (!mine)
		mine = __atomic_add_fetch(&next, 1, __ATOMIC_RELAXED);
	return mine - 1;
}

#endif
