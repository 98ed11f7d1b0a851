/* PCI configuration mechanism #1 and bus enumeration. */
#include "pci.h"

#include "vm.h"
#include "x86.h"

#define PCI_ADDR 0xcf8
#define PCI_DATA 0xcfc
#define PCI_CMD 0x04
#define PCI_CMD_MEM 0x2
#define PCI_CMD_MASTER 0x4
#define PCI_CMD_INTX_DISABLE 0x400

/* MSI capability registers (offsets from the capability). */
#define MSI_CTRL 0x02
#define MSI_CTRL_ENABLE 0x0001u
#define MSI_CTRL_MMC(c) (((c) >> 1) & 7u)   /* vectors requested: 2^MMC */
#define MSI_CTRL_MME_SHIFT 4                 /* vectors granted: 2^MME */
#define MSI_CTRL_MME_MASK 0x0070u
#define MSI_CTRL_64BIT 0x0080u
#define MSI_CTRL_MASKBIT 0x0100u
#define MSI_ADDR_LO 0x04
#define MSI_ADDR_HI 0x08                     /* 64-bit form only */
#define MSI_DATA(is64) ((is64) ? 0x0c : 0x08)
#define MSI_MASK(is64) ((is64) ? 0x10 : 0x0c)

static struct pci_dev devs[PCI_MAX_DEVICES];
static unsigned ndevs;
static uint8_t bus_seen[256 / 8];

static void select_reg(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
	outl(PCI_ADDR, 0x80000000u | (uint32_t)bus << 16 | (uint32_t)dev << 11 |
			       (uint32_t)fn << 8 | (off & 0xfcu));
}

uint32_t pci_read32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
	select_reg(bus, dev, fn, off);
	return inl(PCI_DATA);
}

void pci_write32(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint32_t v)
{
	select_reg(bus, dev, fn, off);
	outl(PCI_DATA, v);
}

uint16_t pci_read16(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off)
{
	select_reg(bus, dev, fn, off);
	return inw((uint16_t)(PCI_DATA + (off & 2)));
}

void pci_write16(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t off, uint16_t v)
{
	select_reg(bus, dev, fn, off);
	outw((uint16_t)(PCI_DATA + (off & 2)), v);
}

static void scan_bus(uint8_t bus, int parent);

static void scan_function(uint8_t bus, uint8_t dev, uint8_t fn, int parent)
{
	uint32_t id = pci_read32(bus, dev, fn, 0);
	if ((id & 0xffff) == 0xffff || ndevs == PCI_MAX_DEVICES)
		return;
	struct pci_dev *d = &devs[ndevs];
	int self = (int)ndevs++;
	d->bus = bus;
	d->dev = dev;
	d->fn = fn;
	d->vendor = (uint16_t)id;
	d->device = (uint16_t)(id >> 16);
	d->class_rev = pci_read32(bus, dev, fn, 0x08);
	d->header_type = (uint8_t)(pci_read32(bus, dev, fn, 0x0c) >> 16) & 0x7f;
	d->parent = parent;
	if (d->header_type == 1) {
		uint32_t buses = pci_read32(bus, dev, fn, 0x18);
		d->secondary_bus = (uint8_t)(buses >> 8);
		d->subordinate_bus = (uint8_t)(buses >> 16);
		if (d->secondary_bus > bus)
			scan_bus(d->secondary_bus, self);
	}
}

static void scan_bus(uint8_t bus, int parent)
{
	if (bus_seen[bus / 8] & (1u << (bus % 8)))
		return;
	bus_seen[bus / 8] |= (uint8_t)(1u << (bus % 8));
	for (uint8_t dev = 0; dev < 32; dev++) {
		if ((pci_read32(bus, dev, 0, 0) & 0xffff) == 0xffff)
			continue;
		bool multi = (pci_read32(bus, dev, 0, 0x0c) >> 16) & 0x80;
		for (uint8_t fn = 0; fn < (multi ? 8 : 1); fn++)
			scan_function(bus, dev, fn, parent);
	}
}

unsigned pci_enumerate(void)
{
	ndevs = 0;
	for (unsigned i = 0; i < sizeof(bus_seen); i++)
		bus_seen[i] = 0;
	scan_bus(0, -1);
	/* Root buses not below bus 0 (e.g. pxb-pcie expander buses). */
	for (unsigned bus = 1; bus < 256; bus++)
		if (!(bus_seen[bus / 8] & (1u << (bus % 8))))
			for (uint8_t dev = 0; dev < 32; dev++)
				if ((pci_read32((uint8_t)bus, dev, 0, 0) & 0xffff) != 0xffff) {
					scan_bus((uint8_t)bus, -1);
					break;
				}
	return ndevs;
}

unsigned pci_count(void) { return ndevs; }
const struct pci_dev *pci_device_at(unsigned i) { return i < ndevs ? &devs[i] : 0; }

const struct pci_dev *pci_find(uint16_t vendor, uint16_t device, unsigned n)
{
	for (unsigned i = 0; i < ndevs; i++)
		if (devs[i].vendor == vendor && devs[i].device == device && n-- == 0)
			return &devs[i];
	return 0;
}

bool pci_bar_map(const struct pci_dev *d, unsigned bar, uint64_t *base, uint64_t *size)
{
	if (d->header_type != 0 || bar > 5)
		return false;
	uint8_t off = (uint8_t)(0x10 + bar * 4);
	uint32_t lo = pci_read32(d->bus, d->dev, d->fn, off);
	if (lo & 1)
		return false;
	bool is64 = ((lo >> 1) & 3) == 2;
	if (is64 && bar == 5)
		return false;
	uint32_t hi = is64 ? pci_read32(d->bus, d->dev, d->fn, (uint8_t)(off + 4)) : 0;

	/* Size the BAR with decoding off so the probe never decodes a stray address. */
	uint16_t cmd = pci_read16(d->bus, d->dev, d->fn, PCI_CMD);
	pci_write16(d->bus, d->dev, d->fn, PCI_CMD, (uint16_t)(cmd & ~PCI_CMD_MEM));
	pci_write32(d->bus, d->dev, d->fn, off, 0xffffffffu);
	uint64_t mask = pci_read32(d->bus, d->dev, d->fn, off) & ~0xfull;
	pci_write32(d->bus, d->dev, d->fn, off, lo);
	if (is64) {
		pci_write32(d->bus, d->dev, d->fn, (uint8_t)(off + 4), 0xffffffffu);
		mask |= (uint64_t)pci_read32(d->bus, d->dev, d->fn, (uint8_t)(off + 4)) << 32;
		pci_write32(d->bus, d->dev, d->fn, (uint8_t)(off + 4), hi);
	} else {
		mask |= 0xffffffff00000000ull;
	}
	pci_write16(d->bus, d->dev, d->fn, PCI_CMD, cmd);

	uint64_t addr = ((uint64_t)hi << 32) | (lo & ~0xfu);
	uint64_t sz = ~mask + 1;
	if (addr == 0 || mask == 0)
		return false;
	if (vm_map_mmio(addr, sz))
		return false;
	*base = addr;
	*size = sz;
	return true;
}

void pci_enable(const struct pci_dev *d, bool bus_master)
{
	uint16_t cmd = pci_read16(d->bus, d->dev, d->fn, PCI_CMD);
	cmd |= PCI_CMD_MEM;
	if (bus_master)
		cmd |= PCI_CMD_MASTER;
	pci_write16(d->bus, d->dev, d->fn, PCI_CMD, cmd);
}

static const struct pci_dev *find_bridge(uint16_t seg, uint8_t bus, uint8_t dev, uint8_t fn)
{
	if (seg != 0)
		return 0;
	for (unsigned i = 0; i < ndevs; i++)
		if (devs[i].bus == bus && devs[i].dev == dev && devs[i].fn == fn)
			return devs[i].header_type == 1 ? &devs[i] : 0;
	return 0;
}

int pci_bridge_buses(void *ctx, uint16_t seg, uint8_t bus, uint8_t dev, uint8_t fn,
		     uint8_t *subordinate)
{
	const struct pci_dev *b = find_bridge(seg, bus, dev, fn);
	(void)ctx;
	if (!b)
		return -1;
	if (subordinate)
		*subordinate = b->subordinate_bus;
	return b->secondary_bus;
}

uint8_t pci_find_capability(const struct pci_dev *d, uint8_t id)
{
	if (!(pci_read16(d->bus, d->dev, d->fn, 0x06) & (1u << 4))) /* status: cap list */
		return 0;
	uint8_t off = (uint8_t)(pci_read32(d->bus, d->dev, d->fn, 0x34) & 0xfc);
	/* 48 entries fit in the 192 bytes of capability space: a bound on a looping list. */
	for (unsigned n = 0; off && n < 48; n++) {
		uint32_t v = pci_read32(d->bus, d->dev, d->fn, off);
		if ((v & 0xff) == id)
			return off;
		off = (uint8_t)((v >> 8) & 0xfc);
	}
	return 0;
}

int pci_pcie_type(const struct pci_dev *d)
{
	uint8_t cap = pci_find_capability(d, PCI_CAP_ID_EXP);
	if (!cap)
		return -1;
	return (pci_read16(d->bus, d->dev, d->fn, (uint8_t)(cap + 2)) >> 4) & 0xf;
}

int pci_upstream(void *ctx, uint16_t seg, uint8_t bus, uint8_t dev, uint8_t fn,
		 struct dmar_pci_bridge *up)
{
	(void)ctx;
	if (seg != 0)
		return 0;
	for (unsigned i = 0; i < ndevs; i++) {
		const struct pci_dev *d = &devs[i];
		if (d->bus != bus || d->dev != dev || d->fn != fn)
			continue;
		if (d->parent < 0)
			return 0;
		const struct pci_dev *b = &devs[d->parent];
		up->bus = b->bus;
		up->dev = b->dev;
		up->fn = b->fn;
		up->secondary_bus = b->secondary_bus;
		int type = pci_pcie_type(b);
		if (type == PCI_EXP_TYPE_PCI_BRIDGE)
			up->kind = DMAR_PCI_BRIDGE_PCIE_TO_PCI;
		else if (type < 0 || type == PCI_EXP_TYPE_PCIE_BRIDGE)
			up->kind = DMAR_PCI_BRIDGE_CONVENTIONAL;
		else
			up->kind = DMAR_PCI_BRIDGE_PCIE_PORT;
		return 1;
	}
	return 0;
}

bool pci_msi_probe(const struct pci_dev *d, struct pci_msi *out)
{
	uint8_t cap = pci_find_capability(d, PCI_CAP_ID_MSI);
	if (!cap)
		return false;
	uint16_t ctrl = pci_read16(d->bus, d->dev, d->fn, (uint8_t)(cap + MSI_CTRL));
	out->cap = cap;
	out->addr64 = ctrl & MSI_CTRL_64BIT;
	out->maskable = ctrl & MSI_CTRL_MASKBIT;
	unsigned mmc = MSI_CTRL_MMC(ctrl);
	out->vectors = mmc > 5 ? 32 : 1u << mmc; /* 6 and 7 are reserved encodings */
	return true;
}

static void set_command(const struct pci_dev *d, uint16_t set, uint16_t clear)
{
	uint16_t cmd = pci_read16(d->bus, d->dev, d->fn, PCI_CMD);
	pci_write16(d->bus, d->dev, d->fn, PCI_CMD, (uint16_t)((cmd | set) & ~clear));
}

int pci_msi_enable(const struct pci_dev *d, uint64_t addr, uint16_t data, unsigned count)
{
	struct pci_msi m;
	if (!pci_msi_probe(d, &m) || count == 0 || count > m.vectors || (count & (count - 1)) ||
	    (!m.addr64 && addr >> 32))
		return -1;
	unsigned mme = 0;
	while ((1u << mme) < count)
		mme++;
	uint8_t b = d->bus, dv = d->dev, fn = d->fn, cap = m.cap;
	uint16_t ctrl = pci_read16(b, dv, fn, (uint8_t)(cap + MSI_CTRL));
	/* Disabled while the message changes: the function never sends half of one. */
	ctrl &= (uint16_t)~(MSI_CTRL_ENABLE | MSI_CTRL_MME_MASK);
	pci_write16(b, dv, fn, (uint8_t)(cap + MSI_CTRL), ctrl);
	pci_write32(b, dv, fn, (uint8_t)(cap + MSI_ADDR_LO), (uint32_t)addr);
	if (m.addr64)
		pci_write32(b, dv, fn, (uint8_t)(cap + MSI_ADDR_HI), (uint32_t)(addr >> 32));
	pci_write16(b, dv, fn, (uint8_t)(cap + MSI_DATA(m.addr64)), data);
	if (m.maskable)
		pci_write32(b, dv, fn, (uint8_t)(cap + MSI_MASK(m.addr64)), 0);
	set_command(d, PCI_CMD_INTX_DISABLE, 0);
	ctrl |= (uint16_t)(mme << MSI_CTRL_MME_SHIFT | MSI_CTRL_ENABLE);
	pci_write16(b, dv, fn, (uint8_t)(cap + MSI_CTRL), ctrl);
	return 0;
}

void pci_msi_disable(const struct pci_dev *d)
{
	struct pci_msi m;
	if (!pci_msi_probe(d, &m))
		return;
	uint16_t ctrl = pci_read16(d->bus, d->dev, d->fn, (uint8_t)(m.cap + MSI_CTRL));
	pci_write16(d->bus, d->dev, d->fn, (uint8_t)(m.cap + MSI_CTRL),
		    (uint16_t)(ctrl & ~MSI_CTRL_ENABLE));
	set_command(d, 0, PCI_CMD_INTX_DISABLE);
}

bool pci_msi_set_mask(const struct pci_dev *d, uint32_t mask)
{
	struct pci_msi m;
	if (!pci_msi_probe(d, &m) || !m.maskable)
		return false;
	pci_write32(d->bus, d->dev, d->fn, (uint8_t)(m.cap + MSI_MASK(m.addr64)), mask);
	return true;
}

bool pci_msi_read(const struct pci_dev *d, bool *enabled, uint64_t *addr, uint16_t *data)
{
	struct pci_msi m;
	if (!pci_msi_probe(d, &m))
		return false;
	uint8_t b = d->bus, dv = d->dev, fn = d->fn;
	*enabled = pci_read16(b, dv, fn, (uint8_t)(m.cap + MSI_CTRL)) & MSI_CTRL_ENABLE;
	*addr = pci_read32(b, dv, fn, (uint8_t)(m.cap + MSI_ADDR_LO));
	if (m.addr64)
		*addr |= (uint64_t)pci_read32(b, dv, fn, (uint8_t)(m.cap + MSI_ADDR_HI)) << 32;
	*data = pci_read16(b, dv, fn, (uint8_t)(m.cap + MSI_DATA(m.addr64)));
	return true;
}
