#ifndef ARCH_TRAP_H
#define ARCH_TRAP_H
#include <stdint.h>

struct trap_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector, error;
    uint64_t rip, cs, rflags, rsp, ss;
};

void idt_init(void);      /* build the shared IDT once */
void idt_load(void);      /* on every CPU */
/* Called for VEC_TIMER and VEC_WAKE after EOI: the reactor notes the wake-up. */
void reactor_irq(unsigned vector);
/* Print a register dump and a symbolised backtrace starting at rip/rbp. */
void trap_print_backtrace(uint64_t rip, uint64_t rbp);
#endif
