/* kvmclock: pvclock scaling, TSC rate from mul/shift, wall clock composition, and the
   boot read against a simulated hypervisor (CPUID leaves and MSR writes stubbed). */
#include "check.h"
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* kvmclock.c uses only these from cpu.h; the stubs play the hypervisor. */
#define ARCH_CPU_H
struct cpuid_regs { uint32_t eax, ebx, ecx, edx; };
static bool fake_kvm;                /* signature present */
static uint32_t fake_kvm_base = 0x40000000u;
static uint32_t fake_features;
static uint64_t fake_tsc;
static uint32_t fake_mul = 0x80000000u;
static int8_t fake_shift;
static uint64_t fake_system_time, fake_tsc_timestamp;
static uint32_t fake_wall_sec, fake_wall_nsec;
static uint32_t last_system_time_msr;
static uint64_t last_system_time_value = 0xdead;

static inline struct cpuid_regs cpuid(uint32_t leaf, uint32_t sub)
{
    (void)sub;
    struct cpuid_regs r = { 0, 0, 0, 0 };
    if (leaf == 1)
        r.ecx = 1u << 31;
    else if (fake_kvm && leaf == fake_kvm_base)
        r = (struct cpuid_regs){ fake_kvm_base + 1, 0x4b4d564bu, 0x564b4d56u, 0x4du };
    else if (fake_kvm && leaf == fake_kvm_base + 1)
        r.eax = fake_features;
    else if (leaf == 0x40000000u)
        r = (struct cpuid_regs){ 0x40000001u, 0x54474354u, 0x43544743u, 0x47435447u }; /* "TCGTCGTCGTCG" */
    return r;
}
static inline uint64_t rdtsc(void) { return fake_tsc; }
static inline void cpu_relax(void) {}
static void wrmsr(uint32_t msr, uint64_t v);
#include "../../arch/x86_64/kvmclock.c"

static void wrmsr(uint32_t msr, uint64_t v)
{
    if (msr == MSR_KVM_SYSTEM_TIME_NEW || msr == MSR_KVM_SYSTEM_TIME) {
        last_system_time_msr = msr;
        last_system_time_value = v;
        if (v & 1) {
            struct pvclock_vcpu_time_info *t = (struct pvclock_vcpu_time_info *)(uintptr_t)(v & ~1ULL);
            t->tsc_timestamp = fake_tsc_timestamp;
            t->system_time = fake_system_time;
            t->tsc_to_system_mul = fake_mul;
            t->tsc_shift = fake_shift;
            t->version += 2;
        }
    } else if (msr == MSR_KVM_WALL_CLOCK_NEW || msr == MSR_KVM_WALL_CLOCK) {
        struct pvclock_wall_clock *w = (struct pvclock_wall_clock *)(uintptr_t)v;
        w->sec = fake_wall_sec;
        w->nsec = fake_wall_nsec;
        w->version += 2;
    }
}

/* KVM's choice of scale for a rate (kvm_get_time_scale's contract, written from the ABI):
   mul in [2^31, 2^32) and ns = ((delta << shift) * mul) >> 32. */
static void scale_for_hz(uint64_t hz, uint32_t *mul, int8_t *shift)
{
    int8_t s = 0;
    /* ns per cycle = 1e9 / hz = mul * 2^s / 2^32 */
    long double frac = 1e9L / (long double)hz;
    while (frac >= 1.0L) {
        frac /= 2;
        s++;
    }
    while (frac < 0.5L) {
        frac *= 2;
        s--;
    }
    *mul = (uint32_t)(frac * 4294967296.0L);
    *shift = s;
}

TEST(scale_shifts_both_ways)
{
    CHECK_EQ(pvclock_scale(1000, 0x80000000u, 0), 500);       /* 0.5 ns per cycle */
    CHECK_EQ(pvclock_scale(1000, 0x80000000u, 1), 1000);
    CHECK_EQ(pvclock_scale(1000, 0x80000000u, -1), 250);
    CHECK_EQ(pvclock_scale(0, 0xFFFFFFFFu, 3), 0);
    /* A day of a 4 GHz TSC does not overflow the 64x32 product. */
    uint64_t day = 86400ULL * 4000000000ULL;
    uint32_t mul;
    int8_t shift;
    scale_for_hz(4000000000ULL, &mul, &shift);
    uint64_t ns = pvclock_scale(day, mul, shift);
    CHECK(ns > 86400ULL * 1000000000ULL - 1000000ULL && ns <= 86400ULL * 1000000000ULL);
}

TEST(tsc_hz_from_mul_and_shift)
{
    static const uint64_t rates[] = { 1000000000ULL, 2445430000ULL, 2400000000ULL, 3000000000ULL,
                                      3999999000ULL, 5200000000ULL, 100000000ULL, 15000000000ULL };
    for (unsigned i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        uint32_t mul;
        int8_t shift;
        scale_for_hz(rates[i], &mul, &shift);
        uint64_t hz = pvclock_tsc_hz(mul, shift);
        int64_t err = (int64_t)hz - (int64_t)rates[i];
        /* mul has 31 significant bits: the rate comes back to well under a ppm. */
        CHECK(err < 0 ? -err * 1000000 < (int64_t)rates[i] : err * 1000000 < (int64_t)rates[i]);
    }
    CHECK_EQ(pvclock_tsc_hz(0x80000000u, 0), 2000000000ULL);
    CHECK_EQ(pvclock_tsc_hz(0x80000000u, -1), 4000000000ULL);
    CHECK_EQ(pvclock_tsc_hz(0x80000000u, 1), 1000000000ULL);
    CHECK_EQ(pvclock_tsc_hz(0, 0), 0);
    CHECK_EQ(pvclock_tsc_hz(0x80000000u, 40), 0);
}

TEST(wall_clock_is_boot_wall_plus_system_time)
{
    struct pvclock_wall_clock w = { 2, 1795440000u, 999999999u };
    struct pvclock_vcpu_time_info t = { 0 };
    t.tsc_timestamp = 1000000;
    t.system_time = 5000000001ULL;               /* 5 s and 1 ns since boot */
    t.tsc_to_system_mul = 0x80000000u;           /* 2 GHz */
    t.tsc_shift = 0;
    uint64_t ns = pvclock_unix_ns(&w, &t, 1000000 + 2000);   /* 1 us later */
    CHECK_EQ(ns, 1795440000ULL * 1000000000ULL + 999999999ULL + 5000000001ULL + 1000);
    /* A TSC read from before the timestamp adds nothing rather than wrapping. */
    CHECK_EQ(pvclock_unix_ns(&w, &t, 999000), 1795440000ULL * 1000000000ULL + 999999999ULL + 5000000001ULL);
}

static void reset_fake(void)
{
    memset(&vcpu_time, 0, sizeof vcpu_time);
    memset(&wall_clock, 0, sizeof wall_clock);
    fake_kvm = true;
    fake_kvm_base = 0x40000000u;
    fake_features = 1u << 3;
    fake_mul = 0x80000000u;
    fake_shift = 0;
    fake_tsc_timestamp = 1000;
    fake_tsc = 3000;                 /* 1 us after the timestamp at 2 GHz */
    fake_system_time = 7000000000ULL;
    fake_wall_sec = 1795440000u;
    fake_wall_nsec = 5;
    last_system_time_msr = 0;
    last_system_time_value = 0xdead;
}

TEST(boot_read_with_clocksource2)
{
    reset_fake();
    struct kvmclock_reading r;
    CHECK(kvmclock_read(&r));
    CHECK_EQ(r.tsc_hz, 2000000000ULL);
    CHECK_EQ(r.tsc, 3000);
    CHECK_EQ(r.unix_ns, 1795440000ULL * 1000000000ULL + 5 + 7000000000ULL + 1000);
    CHECK_EQ(last_system_time_msr, 0x4b564d01u);
    CHECK_EQ(last_system_time_value, 0);          /* the page is unregistered again */
}

TEST(old_msrs_and_shifted_base)
{
    reset_fake();
    fake_features = 1u << 0;
    fake_kvm_base = 0x40000100u;                  /* behind a Hyper-V interface */
    struct kvmclock_reading r;
    CHECK(kvmclock_read(&r));
    CHECK_EQ(last_system_time_msr, 0x12);
    CHECK_EQ(r.tsc_hz, 2000000000ULL);
}

TEST(absent_kvmclock)
{
    reset_fake();
    fake_kvm = false;                             /* TCG's signature only */
    struct kvmclock_reading r;
    CHECK(!kvmclock_read(&r));
    CHECK_EQ(r.tsc_hz, 0);
    CHECK_EQ(r.unix_ns, 0);
    reset_fake();
    fake_features = 1u << 4;                      /* KVM, but no clock offered */
    CHECK(!kvmclock_read(&r));
    CHECK_EQ(last_system_time_value, 0xdead);     /* no MSR touched */
}

TEST(no_wall_clock_keeps_the_rate)
{
    reset_fake();
    fake_wall_sec = 0;
    fake_wall_nsec = 0;
    struct kvmclock_reading r;
    CHECK(kvmclock_read(&r));
    CHECK_EQ(r.tsc_hz, 2000000000ULL);
    CHECK_EQ(r.unix_ns, 0);
}

TEST_MAIN()
