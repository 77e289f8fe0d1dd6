/*
 * TSC frequency. A rate the host states is used first: the tsc_khz option
 * (or scripts/run.py's fw_cfg file), CPUID 0x15, the hypervisor timing
 * leaf, kvmclock's scaling factors. They are exact and free. QEMU's TCG
 * offers none of the CPU ones, so the fallbacks time the TSC against a
 * PIT channel-2 one-shot or, where there is no PIT (QEMU microvm under
 * TCG), the CMOS RTC's periodic flag, which costs about 10 ms of boot.
 * Once the TSC rate is known, the LAPIC timer is measured against the TSC,
 * the same way whatever the source.
 */
#include "tsc.h"
#include "apic.h"
#include "cpu.h"
#include <stdbool.h>

#define PIT_HZ          1193182u
#define PIT_WINDOW_US   1000u
#define WINDOWS         3 /* a host delay only lengthens a window: keep the shortest */

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

/*
 * TSC rate over one PIT one-shot, counted from a latched count (so the time
 * spent programming the PIT does not shorten the window); 0 without a PIT.
 */
static uint64_t pit_window_hz(void)
{
    uint32_t latch = PIT_HZ / (1000000u / PIT_WINDOW_US);
    outb(0x61, (inb(0x61) & ~0x02) | 0x01);   /* gate on, speaker off */
    outb(0x43, 0xB0);                          /* channel 2, lo/hi, mode 0 */
    outb(0x42, latch & 0xFF);
    outb(0x42, latch >> 8);
    uint64_t t0 = rdtsc();
    uint16_t remaining = pit_read_count2();
    /* A missing PIT reads back 0 or 0xFFFF, never a count in range. */
    if (remaining == 0 || remaining > latch)
        return 0;
    uint64_t polls = 0;
    for (; !(inb(0x61) & 0x20); polls++)
        if (polls > 100000000u)
            return 0;
    /* Port 0x61 of a missing PIT reads 0xFF: OUT2 "high" at once. */
    if (polls < 2)
        return 0;
    return (rdtsc() - t0) * PIT_HZ / remaining;
}

static uint64_t tsc_from_pit(void)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < WINDOWS; i++) {
        uint64_t hz = pit_window_hz();
        if (!hz)
            return 0;
        best = hz < best ? hz : best;
    }
    return best;
}

/*
 * QEMU sets the RTC's periodic flag from its main loop, which a busy host
 * delays now and then: a late edge lengthens one period and shortens the
 * next. Time RTC_PERIODS periods one by one; use the whole span (polling
 * error telescopes away) unless one period is an outlier, else the median.
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

/* TSC cycles per RTC period; 0 without an RTC. */
static uint64_t rtc_period_cycles(void)
{
    uint8_t a = cmos_read(0x0A), b = cmos_read(0x0B);
    if (a == 0xFF && b == 0xFF)
        return 0;
    cmos_write(0x0A, (a & 0xF0) | RTC_RATE_8192HZ);
    cmos_write(0x0B, b | 0x40); /* PIE: the flag runs; the IRQ line stays masked */
    cmos_read(0x0C);
    uint64_t period[RTC_PERIODS], start = 0, prev = 0;
    int n = 0;
    if (rtc_wait_period()) {
        start = prev = rdtsc();
        for (; n < RTC_PERIODS && rtc_wait_period(); n++) {
            uint64_t t = rdtsc();
            period[n] = t - prev;
            prev = t;
        }
    }
    cmos_write(0x0B, b);
    cmos_write(0x0A, a);
    cmos_read(0x0C);
    if (n < RTC_PERIODS)
        return 0;
    uint64_t longest = 0;
    for (int i = 0; i < n; i++)
        longest = period[i] > longest ? period[i] : longest;
    uint64_t med = median(period, n);
    return longest * 4 <= med * 5 ? (prev - start) / (uint64_t)n : med;
}

static uint64_t tsc_from_rtc(void) { return rtc_period_cycles() * RTC_PERIOD_HZ; }

/*
 * LAPIC timer ticks per second over short TSC-timed windows. The count runs
 * down once; each window is the ticks between two reads of it over the TSC
 * cycles between the reads' return (so the time a trapped access takes
 * does not skew the rate: a fixed nominal window read 0.5% fast under TCG,
 * and each access there costs tens of microseconds, so there are few). The
 * median of three drops a window the host stretched between a read and
 * its TSC read.
 */
#define LAPIC_WINDOWS       3
#define LAPIC_WINDOWS_PER_S 10000 /* 0.1 ms each */

static uint64_t lapic_against_tsc(uint64_t tsc_hz)
{
    uint64_t window = tsc_hz / LAPIC_WINDOWS_PER_S, rate[LAPIC_WINDOWS];
    lapic_timer_start_count(0xFFFFFFFFu);
    uint32_t c0 = lapic_timer_current();
    uint64_t t0 = rdtsc();
    for (int i = 0; i < LAPIC_WINDOWS; i++) {
        while (rdtsc() - t0 < window)
            cpu_relax();
        uint32_t c1 = lapic_timer_current();
        uint64_t t1 = rdtsc();
        /* ticks * tsc_hz / elapsed in 64 bits: ticks < 2^32, kHz < 2^25. */
        uint64_t q = (uint64_t)(c0 - c1) * (tsc_hz / 1000), elapsed = t1 - t0;
        rate[i] = q / elapsed * 1000 + q % elapsed * 1000 / elapsed;
        c0 = c1;
        t0 = t1;
    }
    lapic_timer_start_count(0);
    return median(rate, LAPIC_WINDOWS);
}

bool tsc_rate_plausible(uint64_t hz) { return hz >= TSC_MIN_HZ && hz <= TSC_MAX_HZ; }

/* Takes hz from source when it is a plausible rate. */
static bool use_rate(struct tsc_calibration *out, const char *source, uint64_t hz)
{
    if (!tsc_rate_plausible(hz))
        return false;
    out->tsc_hz = hz;
    out->source = source;
    return true;
}

/* The first source that knows the rate; measuring sources come last (and run only if needed). */
static void find_rate(struct tsc_calibration *out, const struct tsc_known *known)
{
    if (use_rate(out, known->given_source, known->given_hz) || use_rate(out, "cpuid-15h", tsc_from_cpuid15()) ||
        use_rate(out, "hypervisor", tsc_from_hypervisor()) || use_rate(out, "kvmclock", known->kvmclock_hz) ||
        use_rate(out, "pit", tsc_from_pit()) || use_rate(out, "rtc", tsc_from_rtc()))
        return;
    /* No clock to calibrate against: assume 2 GHz and say so on the console. */
    out->tsc_hz = 2000000000u;
    out->source = "guess";
}

void tsc_calibrate(struct tsc_calibration *out, const struct tsc_known *known)
{
    find_rate(out, known);
    out->lapic_hz = lapic_against_tsc(out->tsc_hz);
}
