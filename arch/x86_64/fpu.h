#ifndef ARCH_FPU_H
#define ARCH_FPU_H
/* Enable x87/SSE, and AVX (XCR0) where the CPU has it, for application code. */
void fpu_enable(void);
#endif
