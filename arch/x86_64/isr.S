/*
 * Interrupt entry stubs. Every vector pushes (error code or 0, vector) and
 * jumps to a common path that saves the general registers into a struct
 * trap_frame and calls trap_dispatch(frame). No FP/SSE state is touched:
 * the kernel is built with -mgeneral-regs-only, so application SSE/AVX
 * registers survive interrupts without a save.
 */
#include "layout.h"

.macro STUB_NOERR vec
    .align 16
isr_\vec:
    pushq $0
    pushq $\vec
    jmp isr_common
.endm

.macro STUB_ERR vec
    .align 16
isr_\vec:
    pushq $\vec
    jmp isr_common
.endm

    .text
STUB_NOERR 0
STUB_NOERR 1
STUB_NOERR 2
STUB_NOERR 3
STUB_NOERR 4
STUB_NOERR 5
STUB_NOERR 6
STUB_NOERR 7
STUB_ERR   8
STUB_NOERR 9
STUB_ERR   10
STUB_ERR   11
STUB_ERR   12
STUB_ERR   13
STUB_ERR   14
STUB_NOERR 15
STUB_NOERR 16
STUB_ERR   17
STUB_NOERR 18
STUB_NOERR 19
STUB_NOERR 20
STUB_ERR   21
STUB_NOERR 22
STUB_NOERR 23
STUB_NOERR 24
STUB_NOERR 25
STUB_NOERR 26
STUB_NOERR 27
STUB_NOERR 28
STUB_ERR   29
STUB_ERR   30
STUB_NOERR 31
STUB_NOERR 208
STUB_NOERR 209
STUB_NOERR 210
STUB_NOERR 211
STUB_NOERR 212
STUB_NOERR 213
STUB_NOERR 214
STUB_NOERR 215
STUB_NOERR 216
STUB_NOERR 217
STUB_NOERR 218
STUB_NOERR 219
STUB_NOERR 220
STUB_NOERR 221
STUB_NOERR 222
STUB_NOERR 223
STUB_NOERR 224
STUB_NOERR 225
STUB_NOERR 226
STUB_NOERR 255

/* Unassigned vectors (a spurious 8259 IRQ 7/15 arrives even when masked): ignore. */
    .align 16
isr_ignore:
    iretq

isr_common:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    cld
    movq %rsp, %rdi
    /* Align the stack for the C ABI; the frame pointer links the trap to the interrupted code. */
    movq %rsp, %rbx
    andq $~15, %rsp
    call trap_dispatch
    movq %rbx, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp
    iretq

    .section .rodata
    .align 8
    .global isr_table
isr_table:
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    .quad isr_\v
    .endr
    .global isr_irq_table
isr_irq_table:
    .irp v, 208,209,210,211,212,213,214,215,216,217,218,219,220,221,222,223
    .quad isr_\v
    .endr
    .global isr_timer, isr_wake, isr_queue, isr_spurious, isr_ignore_addr
isr_ignore_addr: .quad isr_ignore
isr_timer:    .quad isr_224
isr_wake:     .quad isr_225
isr_queue:    .quad isr_226
isr_spurious: .quad isr_255
