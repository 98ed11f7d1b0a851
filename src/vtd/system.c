/*
 * The system: units made from the ACPI DMAR table, the fault ring, and the mapping from a
 * PCI device to the unit that covers it.
 */
#include "dmar/acpi.h"
#include "dmar_internal.h"

int dmar_system_add_unit(struct dmar_system *sys, uint16_t segment, uint64_t reg_base,
			 struct dmar_unit **out)
{
	struct dmar_unit *u;
	if (out)
		*out = NULL;
	if (sys->nunits == DMAR_MAX_UNITS)
		return DMAR_ENOSPC;
	if (reg_base == 0 || (reg_base & (DMAR_PAGE_SIZE - 1)))
		return DMAR_EINVAL;
	for (unsigned i = 0; i < sys->nunits; i++)
		if (sys->units[i]->base == reg_base)
			return DMAR_EEXIST;
	int rc = dmar__unit_create(sys, segment, reg_base, &u);
	if (rc)
		return rc;
	sys->units[sys->nunits++] = u;
	if (out)
		*out = u;
	return DMAR_OK;
}

int dmar_system_create(const struct dmar_os *os, const struct dmar_config *cfg,
		       const struct dmar_acpi_table *table, struct dmar_system **out)
{
	struct dmar_system *sys;
	int rc;
	*out = NULL;
	if (!os || !os->ops || !cfg)
		return DMAR_EINVAL;
	sys = dmar__os_alloc(os, sizeof(*sys));
	if (!sys)
		return DMAR_ENOMEM;
	sys->os = *os;
	sys->cfg = *cfg;
	sys->table = table;
	rc = dmar__fault_ring_init(sys);
	if (rc)
		goto fail;
	if (table) {
		unsigned n = dmar_acpi_count(table, DMAR_ACPI_DRHD);
		for (unsigned i = 0; i < n; i++) {
			struct dmar_acpi_drhd d;
			if (dmar_acpi_drhd_get(table, i, &d) != DMAR_OK)
				continue;
			if (d.base == 0 || (d.base & (DMAR_PAGE_SIZE - 1))) {
				dmar__log(sys, DMAR_LOG_WARN,
					 "DRHD %u: register base 0x%llx is unusable; unit skipped",
					 i, (unsigned long long)d.base);
				continue;
			}
			rc = dmar_system_add_unit(sys, d.segment, d.base, NULL);
			if (rc == DMAR_EEXIST) {
				dmar__log(sys, DMAR_LOG_WARN,
					 "DRHD %u: register base 0x%llx repeated; ignored", i,
					 (unsigned long long)d.base);
				continue;
			}
			if (rc)
				goto fail;
		}
	}
	*out = sys;
	return DMAR_OK;
fail:
	dmar_system_destroy(sys);
	return rc;
}

void dmar_system_destroy(struct dmar_system *sys)
{
	if (!sys)
		return;
	while (sys->nunits)
		dmar__unit_destroy(sys->units[--sys->nunits]);
	dmar__fault_ring_fini(sys);
	dmar__os_free(&sys->os, sys, sizeof(*sys));
}

void dmar_system_set_topology(struct dmar_system *sys, dmar_secondary_bus_fn fn, void *ctx)
{
	sys->topology = fn;
	sys->topology_ctx = ctx;
}

const struct dmar_config *dmar_system_config(const struct dmar_system *sys)
{
	return &sys->cfg;
}

unsigned dmar_unit_count(const struct dmar_system *sys)
{
	return sys->nunits;
}

struct dmar_unit *dmar_unit_at(struct dmar_system *sys, unsigned index)
{
	return index < sys->nunits ? sys->units[index] : NULL;
}

struct dmar_unit *dmar_unit_for_device(struct dmar_system *sys, uint16_t segment,
				       uint8_t bus, uint8_t dev, uint8_t fn,
				       dmar_secondary_bus_fn secondary_bus, void *ctx)
{
	if (!secondary_bus) {
		secondary_bus = sys->topology;
		ctx = sys->topology_ctx;
	}
	if (sys->table) {
		unsigned idx;
		struct dmar_acpi_drhd d;
		if (dmar_acpi_device_unit(sys->table, segment, bus, dev, fn, secondary_bus, ctx,
					  &idx) != DMAR_OK ||
		    dmar_acpi_drhd_get(sys->table, idx, &d) != DMAR_OK)
			return NULL;
		for (unsigned i = 0; i < sys->nunits; i++)
			if (sys->units[i]->base == d.base)
				return sys->units[i];
		return NULL;
	}
	/* Units added by hand: the first unit of the segment covers everything on it. */
	for (unsigned i = 0; i < sys->nunits; i++)
		if (sys->units[i]->segment == segment)
			return sys->units[i];
	return NULL;
}
