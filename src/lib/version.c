/* version.c - dmar_version(). */
#include <dmar/version.h>

#define DMAR_STR_(x) #x
#define DMAR_STR(x) DMAR_STR_(x)

const char *dmar_version(void)
{
	return DMAR_STR(DMAR_VERSION_MAJOR) "." DMAR_STR(DMAR_VERSION_MINOR) "." DMAR_STR(
		DMAR_VERSION_PATCH);
}
