/*
 * dmar/version.h - the library's version. The API of the headers under include/dmar/
 * (except os.h's "internal" notes) follows semantic versioning from 1.0 on; while the
 * major version is 0, a minor release may change it, and the release notes say how.
 */
#ifndef DMAR_VERSION_H
#define DMAR_VERSION_H

#define DMAR_VERSION_MAJOR 0
#define DMAR_VERSION_MINOR 2
#define DMAR_VERSION_PATCH 0
/* One number for #if: 0x00MMmmpp. */
#define DMAR_VERSION_NUMBER \
	((DMAR_VERSION_MAJOR << 16) | (DMAR_VERSION_MINOR << 8) | DMAR_VERSION_PATCH)

/* The version the linked library was built as, "MAJOR.MINOR.PATCH": compare it with the
 * macros above to catch a header/library mismatch. Never NULL. */
const char *dmar_version(void);

#endif
