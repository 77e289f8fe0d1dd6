/*
 * Local APIC: x2APIC through MSRs when the CPU offers it, xAPIC MMIO
 * otherwise (QEMU's TCG, older hosts). Used for the per-CPU one-shot timer
 * that wakes a halted reactor, for wake-up IPIs and for AP start-up.
 */
#include "apic.h"
#include "cpu.h"
#include "layout.h"

#define REG_ID        0x020
#define REG_TPR       0x080
#define REG_EOI       0x0B0
#define REG_SVR       0x0F0
#define REG_ICR_LO    0x300
#define REG_ICR_HI    0x310
#define REG_LVT_TIMER 0x320
#define REG_LVT_LINT0 0x350
#define REG_LVT_LINT1 0x360
#define REG_TIMER_INIT 0x380
#define REG_TIMER_CUR 0x390
#define REG_TIMER_DIV 0x3E0

#define APIC_BASE_ENABLE (1ULL << 11)
#define APIC_BASE_X2APIC (1ULL << 10)
#define LVT_MASKED    (1u << 16)
#define ICR_PENDING   (1u << 12)
#define ICR_INIT      0x4500
#define ICR_STARTUP   0x4600
#define ICR_NMI       0x0400
#define ICR_ALL_BUT_SELF (3u << 18)

/* Written once by the BSP before other CPUs start; read-only afterwards. */
static bool use_x2apic;
static uintptr_t xapic_base = 0xFEE00000;
static uint64_t timer_mult; /* ticks per ns, 24-bit fixed point */

static void apic_write(uint32_t reg, uint32_t v)
{
    if (use_x2apic)
        wrmsr(0x800 + (reg >> 4), v);
    else
        mmio_write32(xapic_base + reg, v);
}

static uint32_t apic_read(uint32_t reg)
{
    if (use_x2apic)
        return (uint32_t)rdmsr(0x800 + (reg >> 4));
    return mmio_read32(xapic_base + reg);
}

bool lapic_is_x2apic(void) { return use_x2apic; }

void lapic_init_cpu(void)
{
    uint64_t base = rdmsr(MSR_APIC_BASE);
    if (cpuid(1, 0).ecx & (1u << 21)) {
        use_x2apic = true;
        wrmsr(MSR_APIC_BASE, base | APIC_BASE_ENABLE | APIC_BASE_X2APIC);
    } else {
        xapic_base = base & ~0xFFFULL;
        wrmsr(MSR_APIC_BASE, base | APIC_BASE_ENABLE);
    }
    apic_write(REG_TPR, 0);
    apic_write(REG_SVR, 0x100 | VEC_SPURIOUS);
    apic_write(REG_LVT_TIMER, LVT_MASKED | VEC_TIMER);
    apic_write(REG_TIMER_DIV, 0x3); /* divide by 16 */
    apic_write(REG_TIMER_INIT, 0);
}

uint32_t lapic_id(void)
{
    if (use_x2apic)
        return apic_read(REG_ID);
    return apic_read(REG_ID) >> 24;
}

void lapic_eoi(void) { apic_write(REG_EOI, 0); }

static void send_icr(uint32_t dest, uint32_t low)
{
    if (use_x2apic) {
        wrmsr(0x830, ((uint64_t)dest << 32) | low);
        return;
    }
    apic_write(REG_ICR_HI, dest << 24);
    apic_write(REG_ICR_LO, low);
    for (int i = 0; i < 1000000 && (apic_read(REG_ICR_LO) & ICR_PENDING); i++)
        cpu_relax();
}

void lapic_send_ipi(uint32_t apic_id, uint8_t vector) { send_icr(apic_id, vector); }

void lapic_send_nmi_all_but_self(void) { send_icr(0, ICR_ALL_BUT_SELF | ICR_NMI); }

void lapic_start_ap(uint32_t apic_id, uint32_t trampoline_phys)
{
    /* QEMU and KVM need none of the historical 10 ms / 200 us delays. */
    send_icr(apic_id, ICR_INIT);
    send_icr(apic_id, ICR_STARTUP | (trampoline_phys >> 12));
    send_icr(apic_id, ICR_STARTUP | (trampoline_phys >> 12));
}

void lapic_timer_set_hz(uint64_t hz) { timer_mult = (hz << 24) / 1000000000u; }

void lapic_timer_start_count(uint32_t count)
{
    apic_write(REG_LVT_TIMER, LVT_MASKED | VEC_TIMER);
    apic_write(REG_TIMER_INIT, count);
}

uint32_t lapic_timer_current(void) { return apic_read(REG_TIMER_CUR); }

void lapic_timer_arm_ns(uint64_t ns)
{
    uint64_t count = (uint64_t)(((unsigned __int128)ns * timer_mult) >> 24);
    if (count == 0)
        count = 1;
    if (count > 0xFFFFFFFFu)
        count = 0xFFFFFFFFu;
    apic_write(REG_LVT_TIMER, VEC_TIMER);
    apic_write(REG_TIMER_INIT, (uint32_t)count);
}

void lapic_timer_stop(void)
{
    apic_write(REG_TIMER_INIT, 0);
    apic_write(REG_LVT_TIMER, LVT_MASKED | VEC_TIMER);
}
