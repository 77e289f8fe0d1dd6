/*
 * tsc_khz: prints the host's TSC rate in kHz, measured against
 * CLOCK_MONOTONIC_RAW over 200 ms. TCG guests read the host TSC, and
 * tests/bench/virtio.py tells the Linux guest this rate (tsc_early_khz=),
 * because on microvm Linux has no timer to calibrate the TSC against.
 */
#include <stdio.h>
#include <time.h>
#include <x86intrin.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC_RAW, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(void)
{
    double a = now();
    unsigned long long x = __rdtsc();
    while (now() - a < 0.2)
        ;
    double b = now();
    unsigned long long y = __rdtsc();
    printf("%.0f\n", (y - x) / (b - a) / 1e3);
    return 0;
}
