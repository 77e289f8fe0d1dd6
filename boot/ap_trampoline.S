/*
 * Application-processor start-up. The BSP copies [ap_trampoline_start,
 * ap_trampoline_end) to AP_TRAMPOLINE_BASE and sends INIT-SIPI-SIPI; every
 * AP starts here in real mode at CS:IP = (BASE>>4):0, all of them possibly
 * at once, so nothing here writes shared memory before the AP knows which
 * CPU it is. It switches to long mode on the kernel's final page tables
 * (ap_cr3), finds its CPU index by APIC ID in cpu_apic_ids[], and calls
 * ap_main(index) on that CPU's stack.
 */
#include "../arch/x86_64/layout.h"

#define TR(x) ((x) - ap_trampoline_start + AP_TRAMPOLINE_BASE)

    .section .rodata
    .code16
    .global ap_trampoline_start, ap_trampoline_end
ap_trampoline_start:
    cli
    cld
    xorw %ax, %ax
    movw %ax, %ds
    lgdtl TR(tramp_gdt_ptr)
    movl %cr0, %eax
    orl  $1, %eax
    movl %eax, %cr0
    ljmpl $0x18, $TR(tramp32)

    .code32
tramp32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl %cr4, %eax
    orl  $(1 << 5), %eax
    movl %eax, %cr4
    movl ap_cr3, %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx
    rdmsr
    orl  $((1 << 8) | (1 << 11)), %eax
    wrmsr
    movl %cr0, %eax
    orl  $(1 << 31), %eax
    andl $~((1 << 30) | (1 << 29)), %eax
    movl %eax, %cr0
    ljmp $0x08, $ap_long_entry

    .align 16
tramp_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF        /* 0x08: 64-bit code */
    .quad 0x00CF92000000FFFF        /* 0x10: data */
    .quad 0x00CF9A000000FFFF        /* 0x18: 32-bit code */
tramp_gdt_end:
tramp_gdt_ptr:
    .word tramp_gdt_end - tramp_gdt - 1
    .long TR(tramp_gdt)
ap_trampoline_end:

    .section .text
    .code64
ap_long_entry:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorl %eax, %eax
    movw %ax, %fs
    movw %ax, %gs
    /* Own APIC ID: CPUID.0BH:EDX (x2APIC id) when leaf 0xB exists, else CPUID.1:EBX[31:24]. */
    xorl %eax, %eax
    cpuid
    cmpl $0xB, %eax
    jb 1f
    movl $0xB, %eax
    xorl %ecx, %ecx
    cpuid
    testw %bx, %bx          /* an unimplemented leaf 0xB reads as zeros */
    jz 1f
    movl %edx, %r8d
    jmp 2f
1:  movl $1, %eax
    cpuid
    shrl $24, %ebx
    movl %ebx, %r8d
2:  xorl %edi, %edi
    movl cpu_count, %r9d
3:  cmpl %edi, %r9d
    je 5f
    cmpl cpu_apic_ids(,%rdi,4), %r8d
    je 4f
    incl %edi
    jmp 3b
4:  movq %rdi, %rax
    imulq $STACK_BLOCK_SIZE, %rax
    addq $(cpu_stacks + STACK_KERNEL_TOP), %rax
    movq %rax, %rsp
    xorl %ebp, %ebp
    call ap_main
5:  cli
    hlt
    jmp 5b
