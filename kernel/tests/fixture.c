/* Shared scaffolding of the driver tests (see fixture.h). */
#include "fixture.h"

#include "dmar/busdma.h"

#include "pmem.h"
#include "regs.h"
#include "util.h"

/* A DMA buffer of n pages in RAM ranges starting at or above `min`, aligned, filled
 * with `fill`; 0 when out of memory. Given back by fixture_down. */
uint64_t buffer_in(struct fixture *f, uint64_t n, uint64_t align, uint64_t min, uint8_t fill)
{
	if (f->nbuf == DMAR_ARRAY_SIZE(f->pages))
		return 0;
	uint64_t pa = min ? pmem_alloc_in(n, align, min, PMEM_NO_LIMIT)
			  : kenv_dma_buffer(n, align, KENV_EDU_LIMIT);
	if (!pa)
		return 0;
	f->pages[f->nbuf] = pa;
	f->npages[f->nbuf++] = n;
	dmar_memset(va(pa), fill, (size_t)(n * PAGE));
	return pa;
}

uint64_t buffer(struct fixture *f, uint64_t n, uint64_t align, uint8_t fill)
{
	return buffer_in(f, n, align, 0, fill);
}

void fill_pattern(uint64_t pa, size_t len, unsigned seed)
{
	uint8_t *p = va(pa);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 13 + seed * 101 + 1);
}

bool all_bytes(uint64_t pa, size_t len, uint8_t v)
{
	const uint8_t *p = va(pa);
	for (size_t i = 0; i < len; i++)
		if (p[i] != v)
			return false;
	return true;
}

static void print_fault(struct fixture *f, const struct dmar_fault_record *r)
{
	char line[480]; /* the console prints at most 512 bytes a line */
	dmar_fault_format(f->sys, r, line, sizeof(line));
	kprintf("# fault: %s\n", line);
}

/* Drains the unit and returns how many records it had; they are printed and the one
 * matching sid (or the first) copied to *rec. */
int drain_faults(struct fixture *f, uint16_t sid, struct dmar_fault_record *rec, bool *found)
{
	int n = dmar_fault_poll(f->sys);
	struct dmar_fault_record r[8];
	unsigned k;
	*found = false;
	while ((k = dmar_fault_read(f->sys, r, DMAR_ARRAY_SIZE(r))) > 0)
		for (unsigned i = 0; i < k; i++) {
			print_fault(f, &r[i]);
			if (!*found && fixture_sid_matches(f, sid, r[i].sid)) {
				*rec = r[i];
				*found = true;
			}
		}
	return n;
}

bool fixture_sid_matches(struct fixture *f, uint16_t device, uint16_t seen)
{
	uint16_t ids[DMAR_MAX_REQUESTER_IDS];
	unsigned n = dmar_device_requester_ids(f->sys, 0, (uint8_t)(device >> 8),
					       (uint8_t)((device >> 3) & 0x1f),
					       (uint8_t)(device & 7), ids, DMAR_MAX_REQUESTER_IDS);
	for (unsigned i = 0; i < n; i++)
		if (ids[i] == seen)
			return true;
	return false;
}

/* Checks that exactly the expected fault was recorded for `sid`. */
void expect_fault(struct ktest *t, struct fixture *f, uint16_t sid, uint64_t addr, bool is_read)
{
	struct dmar_fault_record r;
	bool found;
	int n = drain_faults(f, sid, &r, &found);
	CHECK(n >= 1);
	CHECK(found);
	if (!found)
		return;
	/* The id the unit saw: the device's own, or the alias of the bridge above it. */
	uint16_t ids[DMAR_MAX_REQUESTER_IDS];
	unsigned n_ids = dmar_device_requester_ids(f->sys, 0, (uint8_t)(sid >> 8),
						   (uint8_t)((sid >> 3) & 0x1f), (uint8_t)(sid & 7),
						   ids, DMAR_MAX_REQUESTER_IDS);
	CHECK_EQ(r.sid, ids[n_ids - 1]);
	CHECK_EQ(r.addr, addr & ~(PAGE - 1));
	CHECK_EQ(r.is_read, is_read);
	CHECK_EQ(r.reason, is_read ? VTD_FR_READ : VTD_FR_WRITE);
	CHECK_EQ(r.unit, f->info.index);
}

void expect_no_fault(struct ktest *t, struct fixture *f)
{
	struct dmar_fault_record r;
	bool found;
	CHECK_EQ(drain_faults(f, 0, &r, &found), 0);
}

int fixture_up(struct ktest *t, struct fixture *f, unsigned nedu)
{
	dmar_memset(f, 0, sizeof(*f));
	baremetal_get_stats(&f->before);
	if (!kenv.have_dmar) {
		ktest_fail(t, __FILE__, __LINE__, "no DMAR table (run with -device intel-iommu)");
		return -1;
	}
	if (kenv.nedu < nedu) {
		t->skip = nedu > 1 ? "needs two edu devices" : "needs an edu device";
		return -1;
	}
	struct dmar_acpi_options opt = { .checksum_fatal = kenv.cfg.checksum_fatal };
	int rc = dmar_acpi_parse(va(kenv.dmar.table), kenv.dmar.length, &opt, &f->table);
	if (rc == 0)
		rc = dmar_system_create(&kenv.os, &kenv.cfg, &f->table, &f->sys);
	if (rc != 0) {
		ktest_fail(t, __FILE__, __LINE__, "system from the DMAR table: %s",
			   dmar_strerror(rc));
		return -1;
	}
	dmar_system_set_topology(f->sys, pci_bridge_buses, 0);
	dmar_system_set_upstream(f->sys, pci_upstream, 0);
	if (nedu == 0)
		f->unit = dmar_unit_at(f->sys, 0);
	else
		f->unit = dmar_unit_for_device(f->sys, 0, kenv.edu[0].pci->bus,
					       kenv.edu[0].pci->dev, kenv.edu[0].pci->fn,
					       pci_bridge_buses, 0);
	if (!f->unit) {
		ktest_fail(t, __FILE__, __LINE__, "no unit covers the edu");
		return -1;
	}
	dmar_unit_get_info(f->unit, &f->info);
	/* Records a previous test's system left in the hardware are not ours. */
	dmar_fault_poll(f->sys);
	struct dmar_fault_record r[8];
	while (dmar_fault_read(f->sys, r, DMAR_ARRAY_SIZE(r)) > 0)
		;
	return 0;
}

/* Destroys everything and checks the OS layer got every allocation back. */
void fixture_down(struct ktest *t, struct fixture *f)
{
	for (unsigned i = 0; i < DMAR_ARRAY_SIZE(f->dom); i++) {
		if (f->sid[i])
			CHECK_EQ(dmar_domain_detach_device(f->dom[i], (uint8_t)(f->sid[i] >> 8),
							   (uint8_t)((f->sid[i] >> 3) & 0x1f),
							   (uint8_t)(f->sid[i] & 7)), 0);
		if (f->dom[i])
			CHECK_EQ(dmar_domain_destroy(f->dom[i]), 0);
	}
	if (f->sys)
		dmar_system_destroy(f->sys);
	for (unsigned i = 0; i < f->nbuf; i++)
		pmem_free(f->pages[i], f->npages[i]);
	struct baremetal_stats after;
	baremetal_get_stats(&after);
	CHECK_EQ(after.heap_bytes, f->before.heap_bytes);
	CHECK_EQ(after.pages, f->before.pages);
	CHECK_EQ(after.locks, f->before.locks);
}

/* Creates domain slot i of the fixture and attaches `e` to it (when not NULL). */
int fixture_domain(struct fixture *f, unsigned i, const struct dmar_domain_params *p,
		   struct edu *e, struct dmar_domain **out)
{
	int rc = dmar_domain_create(f->unit, p, &f->dom[i]);
	if (rc == 0 && e) {
		/* By every requester id: behind a bridge the unit sees an alias. */
		rc = dmar_domain_attach_device(f->dom[i], e->pci->bus, e->pci->dev, e->pci->fn);
		if (rc == 0)
			f->sid[i] = e->sid;
	}
	*out = f->dom[i];
	return rc;
}

unsigned domain_levels(unsigned width)
{
	return width <= 39 ? 3 : width <= 48 ? 4 : 5;
}

/* With kernel.domain_width the domain must have the levels that width needs: the
 * tests then prove DMA through tables of that depth, not through the library's
 * default. */
int translated_domain(struct fixture *f, unsigned i, struct edu *e, struct dmar_domain **out)
{
	struct dmar_domain_params p = { .kind = DMAR_DOMAIN_TRANSLATED,
					.width = kenv.domain_width };
	int rc = fixture_domain(f, i, &p, e, out);
	if (rc == 0 && kenv.domain_width) {
		struct dmar_domain_info info;
		dmar_domain_get_info(*out, &info);
		if (info.levels != domain_levels(kenv.domain_width)) {
			kprintf("# %s:%d: a %u-bit domain (kernel.domain_width=%u) has %u levels\n",
				__FILE__, __LINE__, info.width, kenv.domain_width, info.levels);
			rc = DMAR_EINVAL;
		}
	}
	return rc;
}

bool unit_has(struct ktest *t, enum kenv_feature feature, bool reported)
{
	if (!kenv.expect_given)
		return reported;
	bool offered = kenv.expect[feature];
	if (offered != reported)
		ktest_fail(t, __FILE__, __LINE__,
			   "the driver reports %s%s, the configuration (kernel.expect) %s",
			   reported ? "" : "no ", kenv_feature_name[feature],
			   offered ? "offers it" : "does not offer it");
	return offered;
}


/* PCIe root and switch ports (types 4, 5, 6) pass requester ids through. */
static int aliasing_parent(int i)
{
	while (i >= 0) {
		int type = pci_pcie_type(pci_device_at((unsigned)i));
		if (type < 4 || type > 6)
			return i;
		i = pci_device_at((unsigned)i)->parent;
	}
	return -1;
}

bool edus_share_requester_id(const struct edu *a, const struct edu *b)
{
	/* From the PCI topology alone: the nearest bridge above each that aliases. */
	int ia = aliasing_parent(a->pci->parent), ib = aliasing_parent(b->pci->parent);
	return ia >= 0 && ia == ib;
}

int edu_dma_map(struct edu *e, const struct dmar_dmamap *map, uint32_t off, bool to_device)
{
	const struct dmar_dma_segment *s = dmar_dmamap_segs(map);
	for (unsigned i = 0; i < dmar_dmamap_nsegs(map); i++) {
		int rc = to_device ? edu_dma_to_device(e, s[i].addr, off, (uint32_t)s[i].len)
				   : edu_dma_from_device(e, s[i].addr, off, (uint32_t)s[i].len);
		if (rc)
			return DMAR_ETIMEDOUT;
		off += (uint32_t)s[i].len;
	}
	return 0;
}
