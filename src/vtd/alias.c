/*
 * Requester ids: which ids DMA from a PCI function may carry when it reaches the unit
 * (bridges above it alias it; quirks declared by the embedder), and the record of the
 * functions attached by all their ids, so that functions sharing an id stay in one
 * domain and a fault from an alias can name the functions behind it.
 */
#include "dmar_internal.h"

void dmar_system_set_upstream(struct dmar_system *sys, dmar_pci_upstream_fn fn, void *ctx)
{
	sys->upstream = fn;
	sys->upstream_ctx = ctx;
}

int dmar_system_add_dma_alias(struct dmar_system *sys, uint16_t segment, uint16_t sid,
			      uint16_t alias)
{
	if (sys->naliases == DMAR_MAX_DMA_ALIASES)
		return DMAR_ENOSPC;
	sys->aliases[sys->naliases].segment = segment;
	sys->aliases[sys->naliases].sid = sid;
	sys->aliases[sys->naliases].alias = alias;
	sys->naliases++;
	return DMAR_OK;
}

static void add_id(uint16_t *ids, unsigned *n, uint16_t id)
{
	for (unsigned i = 0; i < *n; i++)
		if (ids[i] == id)
			return;
	if (*n < DMAR_MAX_REQUESTER_IDS)
		ids[(*n)++] = id;
}

unsigned dmar_device_requester_ids(struct dmar_system *sys, uint16_t segment, uint8_t bus,
				   uint8_t dev, uint8_t fn, uint16_t *out, unsigned max)
{
	uint16_t ids[DMAR_MAX_REQUESTER_IDS];
	unsigned n = 0;
	uint16_t self = VTD_SID(bus, dev, fn);
	add_id(ids, &n, self);
	for (unsigned i = 0; i < sys->naliases; i++)
		if (sys->aliases[i].segment == segment && sys->aliases[i].sid == self)
			add_id(ids, &n, sys->aliases[i].alias);
	struct dmar_pci_bridge up;
	uint8_t b = bus, d = dev, f = fn;
	/* 256 buses bound any real hierarchy; the bound also stops a looping callback. */
	for (unsigned depth = 0; sys->upstream && depth < 256; depth++) {
		if (sys->upstream(sys->upstream_ctx, segment, b, d, f, &up) != 1)
			break;
		if (up.kind == DMAR_PCI_BRIDGE_PCIE_TO_PCI)
			add_id(ids, &n, VTD_SID(up.secondary_bus, 0, 0));
		else if (up.kind == DMAR_PCI_BRIDGE_CONVENTIONAL)
			add_id(ids, &n, VTD_SID(up.bus, up.dev, up.fn));
		b = up.bus;
		d = up.dev;
		f = up.fn;
	}
	for (unsigned i = 0; i < n && i < max; i++)
		out[i] = ids[i];
	return n;
}

struct dmar_attached *dmar__attached_find(const struct dmar_unit *u, uint16_t bdf)
{
	for (struct dmar_attached *a = u->attached; a; a = a->next)
		if (a->bdf == bdf)
			return a;
	return NULL;
}

struct dmar_attached *dmar__attached_holder(const struct dmar_unit *u, uint16_t id,
				      const struct dmar_attached *except)
{
	for (struct dmar_attached *a = u->attached; a; a = a->next) {
		if (a == except)
			continue;
		for (unsigned i = 0; i < a->nids; i++)
			if (a->ids[i] == id)
				return a;
	}
	return NULL;
}

void dmar__attached_alias_note(struct dmar_unit *u, uint16_t sid, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	os_lock(&u->sys->os, u->lock);
	for (struct dmar_attached *a = u->attached; a; a = a->next) {
		if (a->bdf == sid)
			continue;
		for (unsigned i = 1; i < a->nids; i++) {
			if (a->ids[i] != sid || used >= len)
				continue;
			used += (size_t)dmar__snprintf(buf + used, len - used, "%s%02x:%02x.%x",
						      used ? " " : "; an alias of ", a->bdf >> 8,
						      (a->bdf >> 3) & 0x1f, a->bdf & 7);
		}
	}
	os_unlock(&u->sys->os, u->lock);
}

void dmar__attached_free_all(struct dmar_unit *u)
{
	while (u->attached) {
		struct dmar_attached *a = u->attached;
		u->attached = a->next;
		dmar__os_free(&u->sys->os, a, sizeof(*a));
	}
}
