/*
 * SSE/AVX for application code. The kernel itself is compiled with
 * -mgeneral-regs-only and interrupts never touch vector registers, so no
 * FP state is saved on interrupt entry: there is one thread per CPU.
 */
#include "fpu.h"
#include "cpu.h"

void fpu_enable(void)
{
    uint64_t cr0 = read_cr0();
    cr0 &= ~(1ULL << 2);  /* EM off */
    cr0 |= (1ULL << 1);   /* MP */
    cr0 |= (1ULL << 5);   /* NE: native FP errors */
    cr0 |= (1ULL << 16);  /* WP: the kernel honours read-only pages too */
    write_cr0(cr0);
    uint64_t cr4 = read_cr4();
    cr4 |= (1ULL << 9) | (1ULL << 10); /* OSFXSR, OSXMMEXCPT */
    struct cpuid_regs r = cpuid(1, 0);
    int has_xsave = (r.ecx >> 26) & 1;
    int has_avx = (r.ecx >> 28) & 1;
    if (has_xsave)
        cr4 |= (1ULL << 18); /* OSXSAVE */
    write_cr4(cr4);
    __asm__ volatile("fninit");
    uint32_t mxcsr = 0x1F80;
    __asm__ volatile("ldmxcsr %0" ::"m"(mxcsr));
    if (!has_xsave)
        return;
    uint64_t xcr0 = 0x3; /* x87 | SSE */
    if (has_avx)
        xcr0 |= 0x4;
    struct cpuid_regs d = cpuid(0xD, 0);
    xcr0 &= ((uint64_t)d.edx << 32) | d.eax;
    __asm__ volatile("xsetbv" ::"c"(0), "a"((uint32_t)xcr0), "d"((uint32_t)(xcr0 >> 32)));
}
