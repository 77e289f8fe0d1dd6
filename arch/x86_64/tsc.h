#ifndef ARCH_TSC_H
#define ARCH_TSC_H
#include <stdbool.h>
#include <stdint.h>

/* Rates outside this range are taken for a mistake (kHz for Hz, a typo). */
#define TSC_MIN_HZ 100000000ULL     /* 100 MHz */
#define TSC_MAX_HZ 20000000000ULL   /* 20 GHz */

struct tsc_calibration {
    uint64_t tsc_hz;
    uint64_t lapic_hz;        /* 0 if not measured */
    const char *source;       /* given_source, "cpuid-15h", "hypervisor", "kvmclock", "pit", "rtc", "guess" */
};

/* Rates known before calibration; 0 where unknown. */
struct tsc_known {
    uint64_t given_hz;        /* from the host: tsc_khz= option or fw_cfg; wins when plausible */
    const char *given_source;
    uint64_t kvmclock_hz;     /* kvmclock's scaling factors, after CPUID 0x15 and the hypervisor leaf */
};

/* Find the TSC frequency (a plausible given rate, CPUID 0x15, hypervisor leaf 0x40000010,
   kvmclock, else measured against the PIT or the RTC) and measure the LAPIC timer against it.
   Call on the BSP after lapic_init_cpu(). */
void tsc_calibrate(struct tsc_calibration *out, const struct tsc_known *known);
bool tsc_rate_plausible(uint64_t hz);
#endif
