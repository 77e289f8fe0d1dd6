#ifndef ARCH_PIC_H
#define ARCH_PIC_H
/* Move the legacy 8259 PICs off the exception vectors and mask them: Shoal uses the LAPIC only. */
void pic_disable(void);
#endif
