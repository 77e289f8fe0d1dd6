#ifndef ARCH_TSC_H
#define ARCH_TSC_H
#include <stdint.h>
struct tsc_calibration {
    uint64_t tsc_hz;
    uint64_t lapic_hz;        /* 0 if not measured */
    const char *source;       /* "cpuid-15h", "hypervisor", "pit", "guess" */
};
/* Find the TSC frequency (CPUID 0x15, hypervisor leaf 0x40000010, else the PIT) and
   measure the LAPIC timer against it. Call on the BSP after lapic_init_cpu(). */
void tsc_calibrate(struct tsc_calibration *out);
#endif
