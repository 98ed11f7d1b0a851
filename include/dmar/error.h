/*
 * dmar/error.h - error codes shared by every part of the library.
 *
 * Every fallible call returns 0 (DMAR_OK) or one of these negative codes; a failed call
 * leaves no half-done state behind. dmar_strerror() never returns NULL.
 */
#ifndef DMAR_ERROR_H
#define DMAR_ERROR_H

enum dmar_error {
	DMAR_OK = 0,
	DMAR_ENOMEM = -1,     /* an allocation failed */
	DMAR_EINVAL = -2,     /* an argument is out of range or inconsistent */
	DMAR_ETIMEDOUT = -3,  /* the hardware did not acknowledge within the timeout */
	DMAR_ENODEV = -4,     /* no unit or device matches */
	DMAR_EBUSY = -5,      /* the object is in use (attached devices, live maps) */
	DMAR_EEXIST = -6,     /* a mapping or attachment already exists there */
	DMAR_ENOENT = -7,     /* nothing is mapped or attached there */
	DMAR_ENOTSUP = -8,    /* the hardware or configuration cannot do this */
	DMAR_ERANGE = -9,     /* an address or size exceeds what the domain supports */
	DMAR_EBADTABLE = -10, /* the ACPI table is malformed */
	DMAR_ETRUNC = -11,    /* the ACPI table or a structure in it is truncated */
	DMAR_ECHECKSUM = -12, /* the ACPI table checksum does not match */
	DMAR_EHW = -13,       /* the hardware reported an error (e.g. FSTS.IQE) */
	DMAR_ENOSPC = -14,    /* an address space or pool is exhausted */
	DMAR_EFAULT = -15,    /* a DMA or translation faulted */
};

/* Text for an error code (English, one short phrase). */
const char *dmar_strerror(int err);

#endif
