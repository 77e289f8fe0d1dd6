/*
 * TSC frequency. CPUID 0x15 and the hypervisor timing leaf are exact and
 * free; QEMU's TCG offers neither, so the fallback counts TSC cycles across
 * a short PIT channel-2 one-shot. The LAPIC timer's rate is measured over
 * the same window so that boot pays for one calibration, not two.
 */
#include "tsc.h"
#include "apic.h"
#include "cpu.h"
#include <stdbool.h>

#define PIT_HZ          1193182u
#define PIT_WINDOW_US   1000u
#define WINDOWS         3 /* a delay only lengthens a window: keep the shortest */

static uint64_t tsc_from_cpuid15(void)
{
    if (cpuid(0, 0).eax < 0x15)
        return 0;
    struct cpuid_regs r = cpuid(0x15, 0);
    if (!r.eax || !r.ebx || !r.ecx)
        return 0;
    return (uint64_t)r.ecx * r.ebx / r.eax;
}

static uint64_t tsc_from_hypervisor(void)
{
    if (!(cpuid(1, 0).ecx & (1u << 31)))
        return 0;
    if (cpuid(0x40000000, 0).eax < 0x40000010)
        return 0;
    return (uint64_t)cpuid(0x40000010, 0).eax * 1000;
}

static uint16_t pit_read_count2(void)
{
    outb(0x43, 0x80); /* latch channel 2 */
    uint8_t lo = inb(0x42);
    return (uint16_t)(lo | (inb(0x42) << 8));
}

/* Returns TSC cycles across the window (0 if there is no PIT) and the LAPIC ticks. */
static uint64_t pit_window(uint32_t *lapic_ticks)
{
    uint32_t latch = PIT_HZ / (1000000u / PIT_WINDOW_US);
    outb(0x61, (inb(0x61) & ~0x02) | 0x01);   /* gate on, speaker off */
    outb(0x43, 0xB0);                          /* channel 2, lo/hi, mode 0 */
    outb(0x42, latch & 0xFF);
    outb(0x42, latch >> 8);
    /* A missing PIT (QEMU microvm under TCG) reads back 0 or 0xFFFF, never a count in range. */
    uint16_t first = pit_read_count2();
    if (first == 0 || first > latch)
        return 0;
    lapic_timer_start_count(0xFFFFFFFFu);
    uint64_t t0 = rdtsc();
    uint64_t polls = 0;
    while (!(inb(0x61) & 0x20)) {
        if (++polls > 100000000u)
            return 0;
    }
    uint64_t t1 = rdtsc();
    *lapic_ticks = 0xFFFFFFFFu - lapic_timer_current();
    lapic_timer_start_count(0);
    /* A missing PIT reads as 0xFF: OUT2 "high" at once. */
    return polls < 2 ? 0 : t1 - t0;
}

static uint64_t lapic_against_tsc(uint64_t tsc_hz)
{
    uint64_t window = tsc_hz / 2000; /* 0.5 ms */
    uint32_t best = 0xFFFFFFFFu;
    for (int i = 0; i < WINDOWS; i++) {
        lapic_timer_start_count(0xFFFFFFFFu);
        uint64_t t0 = rdtsc();
        while (rdtsc() - t0 < window)
            cpu_relax();
        uint32_t ticks = 0xFFFFFFFFu - lapic_timer_current();
        lapic_timer_start_count(0);
        best = ticks < best ? ticks : best;
    }
    return (uint64_t)best * 2000;
}

static uint64_t pit_best_window(uint32_t *lapic_ticks)
{
    uint64_t best = 0;
    for (int i = 0; i < WINDOWS; i++) {
        uint32_t ticks = 0;
        uint64_t cycles = pit_window(&ticks);
        if (!cycles)
            return 0;
        if (!best || cycles < best) {
            best = cycles;
            *lapic_ticks = ticks;
        }
    }
    return best;
}

/*
 * Without a PIT, the CMOS RTC's periodic flag is the only other fixed-rate
 * clock every PC-like machine has. QEMU sets the flag from its main loop,
 * which a busy host delays now and then, so single periods are noisy: time
 * RTC_PERIODS periods one by one and take the median.
 */
#define RTC_RATE_8192HZ 3
#define RTC_PERIOD_HZ   8192
#define RTC_PERIODS     31

static uint8_t cmos_read(uint8_t reg) { outb(0x70, reg); return inb(0x71); }
static void cmos_write(uint8_t reg, uint8_t v) { outb(0x70, reg); outb(0x71, v); }

static bool rtc_wait_period(void)
{
    for (uint32_t i = 0; i < 2000000u; i++)
        if (cmos_read(0x0C) & 0x40)
            return true;
    return false;
}

static uint64_t median(uint64_t *v, int n)
{
    for (int i = 1; i < n; i++) {
        uint64_t x = v[i];
        int j = i - 1;
        for (; j >= 0 && v[j] > x; j--)
            v[j + 1] = v[j];
        v[j + 1] = x;
    }
    return v[n / 2];
}

/* Returns TSC cycles per RTC period (0 without an RTC) and LAPIC ticks per period. */
static uint64_t rtc_periodic_window(uint32_t *lapic_ticks)
{
    uint8_t a = cmos_read(0x0A), b = cmos_read(0x0B);
    if (a == 0xFF && b == 0xFF)
        return 0;
    cmos_write(0x0A, (a & 0xF0) | RTC_RATE_8192HZ);
    cmos_write(0x0B, b | 0x40); /* PIE: the flag runs; the IRQ line stays masked */
    cmos_read(0x0C);
    uint64_t tsc[RTC_PERIODS], apic[RTC_PERIODS];
    int n = 0;
    if (rtc_wait_period()) {
        lapic_timer_start_count(0xFFFFFFFFu);
        uint64_t t_prev = rdtsc();
        uint32_t a_prev = lapic_timer_current();
        for (; n < RTC_PERIODS && rtc_wait_period(); n++) {
            uint64_t t = rdtsc();
            uint32_t c = lapic_timer_current();
            tsc[n] = t - t_prev;
            apic[n] = a_prev - c;
            t_prev = t;
            a_prev = c;
        }
        lapic_timer_start_count(0);
    }
    cmos_write(0x0B, b);
    cmos_write(0x0A, a);
    cmos_read(0x0C);
    if (n < RTC_PERIODS)
        return 0;
    /* Polling quantises each edge; over the whole span that error telescopes
       away, so use the span unless one period was stretched by a late flag. */
    uint64_t tsc_sum = 0, apic_sum = 0, longest = 0;
    for (int i = 0; i < n; i++) {
        tsc_sum += tsc[i];
        apic_sum += apic[i];
        longest = tsc[i] > longest ? tsc[i] : longest;
    }
    uint64_t med = median(tsc, n);
    if (longest * 4 <= med * 5) {
        *lapic_ticks = (uint32_t)(apic_sum / (uint64_t)n);
        return tsc_sum / (uint64_t)n;
    }
    *lapic_ticks = (uint32_t)median(apic, n);
    return med;
}

void tsc_calibrate(struct tsc_calibration *out)
{
    out->lapic_hz = 0;
    out->tsc_hz = tsc_from_cpuid15();
    out->source = "cpuid-15h";
    if (!out->tsc_hz) {
        out->tsc_hz = tsc_from_hypervisor();
        out->source = "hypervisor";
    }
    if (out->tsc_hz) {
        out->lapic_hz = lapic_against_tsc(out->tsc_hz);
        return;
    }
    uint32_t lapic_ticks = 0;
    uint64_t cycles = pit_best_window(&lapic_ticks);
    if (cycles) {
        out->tsc_hz = cycles * (1000000u / PIT_WINDOW_US);
        out->lapic_hz = (uint64_t)lapic_ticks * (1000000u / PIT_WINDOW_US);
        out->source = "pit";
        return;
    }
    cycles = rtc_periodic_window(&lapic_ticks);
    if (cycles) {
        out->tsc_hz = cycles * RTC_PERIOD_HZ;
        out->lapic_hz = (uint64_t)lapic_ticks * RTC_PERIOD_HZ;
        out->source = "rtc";
        return;
    }
    /* No clock to calibrate against: assume 2 GHz and say so on the console. */
    out->tsc_hz = 2000000000u;
    out->lapic_hz = lapic_against_tsc(out->tsc_hz);
    out->source = "guess";
}
