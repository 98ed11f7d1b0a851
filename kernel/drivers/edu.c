/* The edu device's DMA engine. */
#include "edu.h"

#include "clock.h"
#include "x86.h"

#define EDU_ID 0x00
#define EDU_LIVENESS 0x04
#define EDU_IRQ_STATUS 0x24
#define EDU_IRQ_RAISE 0x60
#define EDU_IRQ_ACK 0x64
#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_DMA_CNT 0x90
#define EDU_DMA_CMD 0x98
#define EDU_CMD_RUN 0x1u
#define EDU_CMD_TO_RAM 0x2u

static uint32_t rd32(struct edu *e, unsigned off) { return *(volatile uint32_t *)(e->regs + off); }
static void wr32(struct edu *e, unsigned off, uint32_t v) { *(volatile uint32_t *)(e->regs + off) = v; }
static void wr64(struct edu *e, unsigned off, uint64_t v) { *(volatile uint64_t *)(e->regs + off) = v; }
static uint64_t rd64(struct edu *e, unsigned off) { return *(volatile uint64_t *)(e->regs + off); }

bool edu_probe(unsigned n, struct edu *out)
{
	const struct pci_dev *d = pci_find(EDU_VENDOR, EDU_DEVICE, n);
	uint64_t base, size;
	if (!d || !pci_bar_map(d, 0, &base, &size))
		return false;
	pci_enable(d, true);
	out->pci = d;
	out->regs = (volatile uint8_t *)(uintptr_t)base;
	out->sid = pci_sid(d);
	if ((rd32(out, EDU_ID) & 0xff) != 0xed)
		return false;
	wr32(out, EDU_LIVENESS, 0x5a5aa5a5u);
	return rd32(out, EDU_LIVENESS) == ~0x5a5aa5a5u;
}

static int wait_idle(struct edu *e)
{
	uint64_t end = clock_now_ns() + EDU_DMA_TIMEOUT_NS;
	while (rd64(e, EDU_DMA_CMD) & EDU_CMD_RUN) {
		if (clock_now_ns() > end)
			return -2;
		cpu_relax();
	}
	return 0;
}

static int dma(struct edu *e, uint64_t src, uint64_t dst, uint32_t len, uint32_t cmd)
{
	if (len == 0 || len > EDU_DMA_MAX)
		return -1;
	spin_lock(&e->dma_lock);
	int rc = wait_idle(e);
	if (rc == 0) {
		mfence(); /* the CPU's writes to the buffer are visible before it starts */
		wr64(e, EDU_DMA_SRC, src);
		wr64(e, EDU_DMA_DST, dst);
		wr64(e, EDU_DMA_CNT, len);
		wr64(e, EDU_DMA_CMD, cmd | EDU_CMD_RUN);
		rc = wait_idle(e);
		mfence();
	}
	spin_unlock(&e->dma_lock);
	return rc;
}

int edu_dma_to_device(struct edu *e, uint64_t addr, uint32_t off, uint32_t len)
{
	if ((uint64_t)off + len > EDU_DMA_MAX)
		return -1;
	return dma(e, addr, EDU_BUF + off, len, 0);
}

int edu_dma_from_device(struct edu *e, uint64_t addr, uint32_t off, uint32_t len)
{
	if ((uint64_t)off + len > EDU_DMA_MAX)
		return -1;
	return dma(e, EDU_BUF + off, addr, len, EDU_CMD_TO_RAM);
}

int edu_msi_enable(struct edu *e, uint64_t addr, uint16_t data)
{
	return pci_msi_enable(e->pci, addr, data, 1);
}

void edu_msi_disable(struct edu *e)
{
	pci_msi_disable(e->pci);
}

void edu_irq_raise(struct edu *e, uint32_t status)
{
	wr32(e, EDU_IRQ_RAISE, status);
}

uint32_t edu_irq_status(struct edu *e)
{
	return rd32(e, EDU_IRQ_STATUS);
}

void edu_irq_ack(struct edu *e, uint32_t status)
{
	wr32(e, EDU_IRQ_ACK, status);
}
