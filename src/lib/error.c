#include "dmar/error.h"

const char *dmar_strerror(int err)
{
	switch (err) {
	case DMAR_OK: return "success";
	case DMAR_ENOMEM: return "out of memory";
	case DMAR_EINVAL: return "invalid argument";
	case DMAR_ETIMEDOUT: return "hardware did not respond in time";
	case DMAR_ENODEV: return "no such unit or device";
	case DMAR_EBUSY: return "object is in use";
	case DMAR_EEXIST: return "already mapped or attached";
	case DMAR_ENOENT: return "not mapped or attached";
	case DMAR_ENOTSUP: return "not supported by the hardware or configuration";
	case DMAR_ERANGE: return "address or size out of range";
	case DMAR_EBADTABLE: return "malformed DMAR table";
	case DMAR_ETRUNC: return "truncated DMAR table";
	case DMAR_ECHECKSUM: return "DMAR table checksum mismatch";
	case DMAR_EHW: return "hardware reported an error";
	case DMAR_ENOSPC: return "address space exhausted";
	case DMAR_EFAULT: return "DMA fault";
	default: return "unknown error";
	}
}
