#ifndef KERNEL_CLOCK_H
#define KERNEL_CLOCK_H
#include <stdint.h>
/* tsc_hz from calibration; unix_ns is the wall clock (kvmclock or RTC) at TSC value
   tsc_at_wall, 0 when unknown (wall time then starts at 1970). */
void clock_init(uint64_t tsc_hz, uint64_t unix_ns, uint64_t tsc_at_wall);
/* Monotonic nanoseconds since the TSC was zero (VM start under QEMU/KVM). */
uint64_t now_ns(void);
uint64_t cycles_to_ns(uint64_t cycles);
uint64_t ns_to_cycles(uint64_t ns);
/* Unix time in nanoseconds. */
uint64_t wall_ns(void);
uint64_t clock_tsc_hz(void);
#endif
