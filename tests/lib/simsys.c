#include "simsys.h"

#include "regs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct model_config simsys_keep_everything(void)
{
	struct model_config m;
	dmar_model_config_default(&m);
	m.iotlb_capacity = 0; /* nothing evicted */
	return m;
}

int simsys_up(struct simsys *s, const struct model_config *mcfg, const struct dmar_config *cfg)
{
	return simsys_up_after(s, mcfg, cfg, NULL);
}

static int up(struct simsys *s, const struct model_config *mcfg, const struct dmar_config *cfg,
	      void (*firmware)(struct model *unit), const struct dmar_acpi_table *table)
{
	struct dmar_posix_machine_config pmc;
	memset(s, 0, sizeof(*s));
	memset(&pmc, 0, sizeof(pmc)); /* defaults */
	s->pm = dmar_posix_machine_create(&pmc);
	if (!s->pm)
		return DMAR_ENOMEM;
	if (mcfg)
		s->mcfg = *mcfg;
	else
		dmar_model_config_default(&s->mcfg);
	s->model = dmar_posix_machine_add_unit(s->pm, SIMSYS_REG_BASE, &s->mcfg);
	if (!s->model)
		return DMAR_ENOMEM;
	if (cfg) {
		s->cfg = *cfg;
	} else {
		dmar_config_default(&s->cfg);
		s->cfg.timeout_ns = 10000000ull;
	}
	if (firmware)
		firmware(s->model);
	int rc = dmar_system_create(dmar_posix_machine_os(s->pm), &s->cfg, table, &s->sys);
	if (rc)
		return rc;
	if (table) {
		s->unit = dmar_unit_at(s->sys, 0);
		return s->unit ? DMAR_OK : DMAR_ENODEV;
	}
	return dmar_system_add_unit(s->sys, 0, SIMSYS_REG_BASE, &s->unit);
}

int simsys_up_after(struct simsys *s, const struct model_config *mcfg,
		    const struct dmar_config *cfg, void (*firmware)(struct model *unit))
{
	return up(s, mcfg, cfg, firmware, NULL);
}

int simsys_up_table(struct simsys *s, const struct model_config *mcfg,
		    const struct dmar_config *cfg, const struct dmar_acpi_table *table)
{
	return up(s, mcfg, cfg, NULL, table);
}

unsigned long simsys_down(struct simsys *s)
{
	unsigned long bad = 0;
	if (s->sys)
		dmar_system_destroy(s->sys);
	s->sys = NULL;
	if (s->pm) {
		unsigned long allocs = dmar_posix_machine_allocs_outstanding(s->pm);
		unsigned long pages = dmar_posix_machine_pages_outstanding(s->pm);
		unsigned long coh = dmar_posix_machine_coherency_errors(s->pm);
		unsigned long oserr = dmar_posix_machine_os_errors(s->pm);
		if (allocs || pages || coh || oserr)
			fprintf(stderr, "  simsys: %lu allocations, %lu table pages outstanding, "
				"%lu coherency errors, %lu OS-layer misuses\n", allocs, pages, coh, oserr);
		bad = allocs + pages + coh + oserr;
		dmar_posix_machine_destroy(s->pm);
	}
	s->pm = NULL;
	return bad;
}

void *simsys_buffer(struct simsys *s, size_t size, uint64_t *pa)
{
	void *p = dmar_posix_machine_alloc_dma(s->pm, size, 4096, pa);
	if (!p) {
		fprintf(stderr, "simsys: out of DMA memory\n");
		abort();
	}
	return p;
}

int simsys_dma(struct simsys *s, uint16_t sid, uint64_t iova, void *buf, size_t len, bool write_to_memory)
{
	return dmar_posix_machine_dma(s->pm, s->model, sid, iova, buf, len,
				 write_to_memory ? MODEL_DMA_WRITE : MODEL_DMA_READ, NULL);
}

int simsys_add_unit(struct simsys *s, uint64_t reg_base, const struct model_config *mcfg,
		    struct dmar_unit **unit, struct model **model)
{
	*model = dmar_posix_machine_add_unit(s->pm, reg_base, mcfg);
	if (!*model)
		return DMAR_ENOMEM;
	return dmar_system_add_unit(s->sys, 0, reg_base, unit);
}

int simsys_dma_via(struct simsys *s, struct model *unit, uint16_t sid, uint64_t iova, void *buf,
		   size_t len, bool write_to_memory)
{
	return dmar_posix_machine_dma(s->pm, unit, sid, iova, buf, len,
				      write_to_memory ? MODEL_DMA_WRITE : MODEL_DMA_READ, NULL);
}

int simsys_interrupt(struct simsys *s, uint16_t sid, uint64_t addr, uint32_t data,
		     struct model_irq_delivery *out)
{
	return dmar_posix_machine_interrupt(s->pm, s->model, sid, addr, data, out);
}

static const struct {
	uint16_t child;
	struct dmar_pci_bridge up;
} bridged_links[] = {
	{ VTD_SID(2, 3, 0), { 0, 0x1e, 0, 2, DMAR_PCI_BRIDGE_CONVENTIONAL } },
	{ VTD_SID(2, 4, 0), { 0, 0x1e, 0, 2, DMAR_PCI_BRIDGE_CONVENTIONAL } },
	{ VTD_SID(3, 5, 0), { 1, 0, 0, 3, DMAR_PCI_BRIDGE_PCIE_TO_PCI } },
	{ VTD_SID(1, 0, 0), { 0, 0x1c, 0, 1, DMAR_PCI_BRIDGE_PCIE_PORT } },
	{ VTD_SID(5, 0, 0), { 4, 1, 0, 5, DMAR_PCI_BRIDGE_CONVENTIONAL } },
	{ VTD_SID(4, 1, 0), { 0, 0x1d, 0, 4, DMAR_PCI_BRIDGE_PCIE_TO_PCI } },
};

int simsys_bridged_upstream(void *ctx, uint16_t segment, uint8_t bus, uint8_t dev, uint8_t fn,
			    struct dmar_pci_bridge *up)
{
	(void)ctx;
	(void)segment;
	for (size_t i = 0; i < sizeof(bridged_links) / sizeof(bridged_links[0]); i++) {
		if (bridged_links[i].child == VTD_SID(bus, dev, fn)) {
			*up = bridged_links[i].up;
			return 1;
		}
	}
	return 0;
}
