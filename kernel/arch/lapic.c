/* The local APIC, xAPIC mode (Intel SDM vol. 3, chapter 11). */
#include "lapic.h"

#include "clock.h"
#include "vm.h"
#include "x86.h"

#define MSR_APIC_BASE 0x1bu
#define APIC_BASE_BSP (1ull << 8)
#define APIC_BASE_X2APIC (1ull << 10)
#define APIC_BASE_ENABLE (1ull << 11)
#define APIC_BASE_ADDR 0x000ffffffffff000ull

#define LAPIC_ID 0x020
#define LAPIC_VER 0x030
#define LAPIC_TPR 0x080
#define LAPIC_EOI 0x0b0
#define LAPIC_SVR 0x0f0
#define LAPIC_ISR 0x100
#define LAPIC_IRR 0x200
#define LAPIC_ESR 0x280
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_LVT_ERROR 0x370

#define SVR_ENABLE 0x100u
#define LVT_MASKED 0x10000u
#define LVT_EXTINT 0x700u
#define LVT_LEVEL 0x8000u

#define ICR_INIT 0x500u
#define ICR_STARTUP 0x600u
#define ICR_ASSERT 0x4000u
#define ICR_LEVEL 0x8000u
#define ICR_BUSY 0x1000u /* delivery status: send pending */
#define ICR_TIMEOUT_NS 100000000ull

static volatile uint8_t *regs;
static uint64_t base_pa;

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return (uint64_t)hi << 32 | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static uint32_t rd(unsigned off) { return *(volatile uint32_t *)(regs + off); }
static void wr(unsigned off, uint32_t v) { *(volatile uint32_t *)(regs + off) = v; }

bool lapic_x2apic_capable(void)
{
	uint32_t r[4];
	cpuid(1, 0, r);
	return r[2] & (1u << 21);
}

bool lapic_init(void)
{
	uint32_t r[4];
	cpuid(1, 0, r);
	if (!(r[3] & (1u << 9)))
		return false;
	uint64_t msr = rdmsr(MSR_APIC_BASE);
	if (msr & APIC_BASE_X2APIC)
		return false;
	if (!(msr & APIC_BASE_ENABLE))
		wrmsr(MSR_APIC_BASE, msr | APIC_BASE_ENABLE);
	base_pa = msr & APIC_BASE_ADDR;
	if (vm_map_mmio(base_pa, 4096))
		return false;
	regs = (volatile uint8_t *)phys_ptr(base_pa);
	wr(LAPIC_TPR, 0);
	/* The 8259 reaches the bootstrap CPU through LINT0 in ExtINT mode (the firmware
	 * sets it so; a masked LINT0 would silence the watchdog's tick). */
	if ((msr & APIC_BASE_BSP) && (rd(LAPIC_LVT_LINT0) & LVT_MASKED))
		wr(LAPIC_LVT_LINT0, LVT_EXTINT | LVT_LEVEL);
	wr(LAPIC_LVT_ERROR, LVT_MASKED);
	wr(LAPIC_ESR, 0);
	wr(LAPIC_ESR, 0);
	wr(LAPIC_SVR, (rd(LAPIC_SVR) & ~0x3ffu) | SVR_ENABLE | LAPIC_SPURIOUS_VECTOR);
	return true;
}

bool lapic_present(void) { return regs != 0; }
uint64_t lapic_base(void) { return base_pa; }

uint32_t lapic_id(void)
{
	return regs ? rd(LAPIC_ID) >> 24 : 0;
}

void lapic_eoi(void)
{
	if (regs)
		wr(LAPIC_EOI, 0);
}

static bool vector_bit(unsigned reg, unsigned vector)
{
	if (!regs || vector > 255)
		return false;
	return rd(reg + (vector / 32) * 0x10) & (1u << (vector % 32));
}

bool lapic_in_service(unsigned vector) { return vector_bit(LAPIC_ISR, vector); }
bool lapic_requested(unsigned vector) { return vector_bit(LAPIC_IRR, vector); }

void lapic_init_ap(void)
{
	uint64_t msr = rdmsr(MSR_APIC_BASE);
	if (!(msr & APIC_BASE_ENABLE))
		wrmsr(MSR_APIC_BASE, msr | APIC_BASE_ENABLE);
	wr(LAPIC_TPR, 0);
	/* Only the bootstrap CPU takes the 8259's ExtINT. */
	wr(LAPIC_LVT_LINT0, LVT_MASKED);
	wr(LAPIC_LVT_LINT1, LVT_MASKED);
	wr(LAPIC_LVT_ERROR, LVT_MASKED);
	wr(LAPIC_ESR, 0);
	wr(LAPIC_ESR, 0);
	wr(LAPIC_SVR, (rd(LAPIC_SVR) & ~0x3ffu) | SVR_ENABLE | LAPIC_SPURIOUS_VECTOR);
}

/* Sends one IPI and waits (bounded) until the local APIC has sent it. */
static bool send_ipi(uint32_t apic_id, uint32_t lo)
{
	if (!regs)
		return false;
	wr(LAPIC_ICR_HI, apic_id << 24);
	wr(LAPIC_ICR_LO, lo);
	uint64_t end = clock_now_ns() + ICR_TIMEOUT_NS;
	while (rd(LAPIC_ICR_LO) & ICR_BUSY)
		if (clock_now_ns() > end)
			return false;
		else
			cpu_relax();
	return true;
}

bool lapic_send_init(uint32_t apic_id)
{
	return send_ipi(apic_id, ICR_INIT | ICR_ASSERT | ICR_LEVEL);
}

bool lapic_send_fixed(uint32_t apic_id, uint8_t vector)
{
	return send_ipi(apic_id, ICR_ASSERT | vector);
}

bool lapic_send_startup(uint32_t apic_id, uint8_t vector)
{
	return send_ipi(apic_id, ICR_STARTUP | ICR_ASSERT | vector);
}
