/* Time from the TSC: invariant on every host we target, read without a lock. */
#include "clock.h"
#include "../arch/x86_64/cpu.h"

/* Written once by the BSP before other CPUs start; read-only afterwards. */
static uint64_t ns_mult;      /* ns per cycle, 32.32 fixed point */
static uint64_t cyc_mult;     /* cycles per ns, 32.32 fixed point */
static uint64_t hz;
static uint64_t wall_base_ns; /* unix ns at TSC 0 */

void clock_init(uint64_t tsc_hz, uint64_t unix_ns, uint64_t tsc_at_wall)
{
    hz = tsc_hz;
    ns_mult = (1000000000ULL << 32) / tsc_hz;
    /* In two parts: tsc_hz << 32 would overflow above 4.29 GHz. */
    cyc_mult = ((tsc_hz / 1000000000ULL) << 32) + ((tsc_hz % 1000000000ULL) << 32) / 1000000000ULL;
    uint64_t since_zero = cycles_to_ns(tsc_at_wall);
    wall_base_ns = unix_ns ? unix_ns - since_zero : 0;
}

uint64_t cycles_to_ns(uint64_t cycles)
{
    return (uint64_t)(((unsigned __int128)cycles * ns_mult) >> 32);
}

uint64_t ns_to_cycles(uint64_t ns)
{
    return (uint64_t)(((unsigned __int128)ns * cyc_mult) >> 32);
}

uint64_t now_ns(void) { return cycles_to_ns(rdtsc()); }

uint64_t wall_ns(void) { return wall_base_ns + now_ns(); }

uint64_t clock_tsc_hz(void) { return hz; }
