/*
 * KVM's paravirtual clock, read once at boot. Where it exists it gives two
 * things for free that otherwise cost time or precision: the TSC's rate
 * (KVM's own tsc_to_system_mul/tsc_shift scaling, so no calibration) and
 * the wall clock to the nanosecond (the CMOS RTC has whole seconds).
 *
 * The BSP registers a time page (MSR_KVM_SYSTEM_TIME[_NEW]) and asks for
 * the wall clock at system time zero (MSR_KVM_WALL_CLOCK[_NEW]); wall time
 * now is that plus the page's system time advanced by the TSC. The page is
 * unregistered afterwards: from then on the TSC alone is the clock, so the
 * hypervisor has no reason to keep writing into the image.
 */
#include "kvmclock.h"
#include "cpu.h"

#define CPUID_HYPERVISOR_BIT     (1u << 31)
#define KVM_SIGNATURE_EBX        0x4b4d564bu /* "KVMKVMKVM\0\0\0" */
#define KVM_SIGNATURE_ECX        0x564b4d56u
#define KVM_SIGNATURE_EDX        0x0000004du
#define KVM_FEATURE_CLOCKSOURCE  (1u << 0)   /* the old MSR numbers */
#define KVM_FEATURE_CLOCKSOURCE2 (1u << 3)   /* the 0x4b564d0x ones */
#define MSR_KVM_WALL_CLOCK       0x11
#define MSR_KVM_SYSTEM_TIME      0x12
#define MSR_KVM_WALL_CLOCK_NEW   0x4b564d00
#define MSR_KVM_SYSTEM_TIME_NEW  0x4b564d01
#define SYSTEM_TIME_ENABLE       1u
#define SNAPSHOT_TRIES           1000

/* Written by the hypervisor. The kernel runs identity-mapped at boot, so a
   static's address is its physical address; 64-byte alignment keeps the
   page structure within one page as the ABI requires. */
static struct pvclock_vcpu_time_info vcpu_time __attribute__((aligned(64)));
static struct pvclock_wall_clock wall_clock __attribute__((aligned(64)));

uint64_t pvclock_scale(uint64_t tsc_delta, uint32_t mul, int8_t shift)
{
    if (shift >= 0)
        tsc_delta <<= shift;
    else
        tsc_delta >>= -shift;
    return (uint64_t)(((unsigned __int128)tsc_delta * mul) >> 32);
}

/* ns per cycle is mul * 2^shift / 2^32, so Hz is its inverse. */
uint64_t pvclock_tsc_hz(uint32_t mul, int8_t shift)
{
    if (mul == 0 || shift > 31 || shift < -31)
        return 0;
    uint64_t hz = (1000000000ULL << 32) / mul;
    return shift >= 0 ? hz >> shift : hz << -shift;
}

uint64_t pvclock_unix_ns(const struct pvclock_wall_clock *wall, const struct pvclock_vcpu_time_info *t,
                         uint64_t tsc)
{
    /* A TSC read just before the hypervisor's timestamp counts as no time passed. */
    uint64_t delta = tsc > t->tsc_timestamp ? tsc - t->tsc_timestamp : 0;
    uint64_t system_ns = t->system_time + pvclock_scale(delta, t->tsc_to_system_mul, t->tsc_shift);
    return (uint64_t)wall->sec * 1000000000ULL + wall->nsec + system_ns;
}

/* KVM's CPUID base: 0x40000000, or a multiple of 0x100 above it when another
   interface (Hyper-V's) comes first. */
static uint32_t kvm_cpuid_base(void)
{
    if (!(cpuid(1, 0).ecx & CPUID_HYPERVISOR_BIT))
        return 0;
    for (uint32_t base = 0x40000000u; base < 0x40001000u; base += 0x100) {
        struct cpuid_regs r = cpuid(base, 0);
        if (r.ebx == KVM_SIGNATURE_EBX && r.ecx == KVM_SIGNATURE_ECX && r.edx == KVM_SIGNATURE_EDX)
            return base;
    }
    return 0;
}

/* The MSR pair to use; false when KVM offers no clock. */
static bool kvm_clock_msrs(uint32_t *system_time, uint32_t *wall)
{
    uint32_t base = kvm_cpuid_base();
    if (!base)
        return false;
    uint32_t features = cpuid(base + 1, 0).eax;
    if (features & KVM_FEATURE_CLOCKSOURCE2) {
        *system_time = MSR_KVM_SYSTEM_TIME_NEW;
        *wall = MSR_KVM_WALL_CLOCK_NEW;
        return true;
    }
    if (features & KVM_FEATURE_CLOCKSOURCE) {
        *system_time = MSR_KVM_SYSTEM_TIME;
        *wall = MSR_KVM_WALL_CLOCK;
        return true;
    }
    return false;
}

/* A copy taken between two equal, even versions; version 0 means never written. */
static bool snapshot_time(struct pvclock_vcpu_time_info *out, uint64_t *tsc)
{
    const volatile struct pvclock_vcpu_time_info *p = &vcpu_time;
    for (int i = 0; i < SNAPSHOT_TRIES; i++) {
        uint32_t v = p->version;
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        out->tsc_timestamp = p->tsc_timestamp;
        out->system_time = p->system_time;
        out->tsc_to_system_mul = p->tsc_to_system_mul;
        out->tsc_shift = p->tsc_shift;
        out->flags = p->flags;
        *tsc = rdtsc();
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (v && !(v & 1) && v == p->version)
            return true;
        cpu_relax();
    }
    return false;
}

static bool snapshot_wall(struct pvclock_wall_clock *out)
{
    const volatile struct pvclock_wall_clock *p = &wall_clock;
    for (int i = 0; i < SNAPSHOT_TRIES; i++) {
        uint32_t v = p->version;
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        out->sec = p->sec;
        out->nsec = p->nsec;
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (v && !(v & 1) && v == p->version)
            return true;
        cpu_relax();
    }
    return false;
}

bool kvmclock_read(struct kvmclock_reading *out)
{
    *out = (struct kvmclock_reading){ 0 };
    uint32_t system_time_msr, wall_msr;
    if (!kvm_clock_msrs(&system_time_msr, &wall_msr))
        return false;
    wrmsr(system_time_msr, (uintptr_t)&vcpu_time | SYSTEM_TIME_ENABLE);
    wrmsr(wall_msr, (uintptr_t)&wall_clock);
    struct pvclock_vcpu_time_info t;
    struct pvclock_wall_clock w;
    uint64_t tsc;
    bool have_time = snapshot_time(&t, &tsc);
    bool have_wall = have_time && snapshot_wall(&w) && (w.sec || w.nsec);
    wrmsr(system_time_msr, 0);
    if (!have_time)
        return false;
    out->tsc_hz = pvclock_tsc_hz(t.tsc_to_system_mul, t.tsc_shift);
    out->tsc = tsc;
    out->unix_ns = have_wall ? pvclock_unix_ns(&w, &t, tsc) : 0;
    return out->tsc_hz != 0;
}
