/*
 * null_port.h - an OS layer on hardware that costs nothing, for measuring the library's
 * own cost (benchmarks): one VT-d model in null_hw mode (registers acknowledge at once,
 * queued-invalidation wait descriptors complete at once, nothing is translated), table
 * pages from a pre-allocated pool, no locks, CLOCK_MONOTONIC.
 *
 * Physical addresses: pool pages get fake physical addresses (virtual address + a fixed
 * offset); any other pointer is its own physical address, so busdma can load ordinary
 * buffers. Nothing ever reads memory through them except wait-descriptor status writes.
 * Single-threaded, except a port from null_port_create_threaded: its lock ops are
 * pthread spinlocks, and its page pool and register accesses take spinlocks of their
 * own (one register access at a time, as on a bus), for measuring several threads.
 */
#ifndef DMAR_NULL_PORT_H
#define DMAR_NULL_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "dmar/dmar.h"
#include "dmar/os.h"
#include "model.h"

struct null_port;

/* A unit at reg_base with `cfg` (NULL: QEMU's CAP/ECAP), forced to null_hw, and a pool of
 * `pool_pages` table pages. NULL on failure. */
struct null_port *null_port_create(const struct model_config *cfg, uint64_t reg_base,
				   size_t pool_pages);
/* The same, safe for several threads (see above). */
struct null_port *null_port_create_threaded(const struct model_config *cfg, uint64_t reg_base,
					    size_t pool_pages);
void null_port_destroy(struct null_port *np);
const struct dmar_os *null_port_os(struct null_port *np);
struct model *null_port_model(struct null_port *np);
/* A unit whose invalidation wait descriptors complete `ns` after the IQT write that
 * handed them over (0, the default: at once), as real units take a while: each status
 * write is held back and made by the first clock read or delay after it is due;
 * delay_ns busy-waits then. Changing it delivers what is held. */
void null_port_set_wait_latency(struct null_port *np, uint64_t ns);
/* A system (config `cfg`, NULL: the defaults) with the port's one unit, brought up:
 * 0, or the error of dmar_system_create / dmar_system_add_unit (nothing left made). */
int null_port_system(struct null_port *np, const struct dmar_config *cfg,
		     struct dmar_system **sys, struct dmar_unit **unit);
/* Table pages handed out and not freed. */
size_t null_port_pages_in_use(const struct null_port *np);

#endif
