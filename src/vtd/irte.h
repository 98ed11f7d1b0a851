/*
 * irte.h - interrupt remapping as bits (VT-d 5.1.2, 5.1.5, 9.10): the 128-bit entry
 * (IRTE), the remappable-format MSI address and the IOAPIC redirection-table entry a
 * source must send to use it, source-id verification, and the text that describes an
 * entry. Pure: no I/O, no state, callable from any context. Not part of the public API.
 */
#ifndef DMAR_IRTE_H
#define DMAR_IRTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmar/ir.h"

/* Checks a target for `count` consecutive vectors: DMAR_EINVAL when a vector falls
 * outside 16..255, DMAR_ERANGE when the destination needs more than 8 bits and the
 * unit is not in extended interrupt mode. */
int dmar__irte_check_target(const struct dmar_irq_target *t, unsigned count, bool eim);
/* The low quadword of a present entry delivering `vector` to t's destination (DST is
 * the 32-bit id with EIME, else the 8-bit id in DST[15:8]). */
uint64_t dmar__irte_lo(const struct dmar_irq_target *t, unsigned vector, bool eim);
/* The high quadword: source-id verification type, qualifier and SID. */
uint64_t dmar__irte_hi(unsigned svt, unsigned sq, uint16_t sid);
/* Whether a request from `sid` passes the entry's source-id verification. */
bool dmar__irte_sid_ok(uint64_t hi, uint16_t sid);

/* Remappable-format MSI address for handle `handle` (SHV set: the data is the
 * sub-handle added to it). */
uint64_t dmar__ir_msi_address(unsigned handle, bool shv);
/* Remappable-format IOAPIC redirection-table entry for interrupt_index `index`. */
uint64_t dmar__ir_ioapic_rte(unsigned index, unsigned vector, bool level, bool active_low,
			     bool masked);

/* "present, vector 0x41 to APIC 0x1 (physical, fixed, edge), SVT 1 (requester id
 * 0x0010)", or "not present". Returns the length the full text would have. */
int dmar__irte_format(uint64_t lo, uint64_t hi, bool eim, char *buf, size_t len);
/* Names the reserved fields a present entry has set ("" when none). */
int dmar__irte_reserved_text(uint64_t lo, uint64_t hi, bool eim, char *buf, size_t len);
/* What the entry's source-id verification admits ("requester id 0x0010", "buses
 * 0x03-0x05", "every requester"). */
int dmar__irte_source_text(uint64_t hi, char *buf, size_t len);

#endif
