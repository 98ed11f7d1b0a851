/*
 * dmar/prot.h - access rights of a mapping, as the device sees them.
 */
#ifndef DMAR_PROT_H
#define DMAR_PROT_H

#define DMAR_PROT_READ 1u  /* the device may read memory through the mapping */
#define DMAR_PROT_WRITE 2u /* the device may write memory through the mapping */
#define DMAR_PROT_RW (DMAR_PROT_READ | DMAR_PROT_WRITE)

#endif
