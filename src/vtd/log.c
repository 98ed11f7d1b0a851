/* Log lines and OS-layer conveniences shared by the core. */
#include "dmar_internal.h"

void dmar__log(const struct dmar_system *sys, enum dmar_log_level level, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	if (!sys->os.ops->log)
		return;
	va_start(ap, fmt);
	dmar__vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	sys->os.ops->log(sys->os.ctx, level, line);
}

void *dmar__os_alloc(const struct dmar_os *os, size_t size)
{
	void *p = os->ops->alloc(os->ctx, size);
	if (p)
		dmar_memset(p, 0, size);
	return p;
}

void dmar__os_free(const struct dmar_os *os, void *p, size_t size)
{
	if (p)
		os->ops->free(os->ctx, p, size);
}

void *dmar__os_lock_create(const struct dmar_os *os, bool *failed)
{
	*failed = false;
	if (!os->ops->lock_create)
		return NULL;
	void *l = os->ops->lock_create(os->ctx);
	if (!l)
		*failed = true;
	return l;
}

void dmar__os_lock_destroy(const struct dmar_os *os, void *lock)
{
	if (lock)
		os->ops->lock_destroy(os->ctx, lock);
}
