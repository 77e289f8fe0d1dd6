/*
 * Shared 32-bit → 64-bit switch for the BSP. Builds a throw-away identity
 * map of the first 4 GiB with 2 MiB pages (the kernel replaces it with its
 * final, permission-checked tables before starting other CPUs), enables
 * PAE, long mode and NX, and calls boot_main(proto, info) on CPU 0's stack.
 */
#include "../arch/x86_64/layout.h"

    .section .boot.text, "ax"
    .code32
    .global boot32
boot32:
    /* PD entries: 2048 x 2 MiB, present | writable | huge. */
    movl $boot_pd, %edi
    xorl %ecx, %ecx
1:  movl %ecx, %eax
    shll $21, %eax
    orl  $0x83, %eax
    movl %eax, (%edi,%ecx,8)
    movl %ecx, %eax
    shrl $11, %eax
    movl %eax, 4(%edi,%ecx,8)
    incl %ecx
    cmpl $2048, %ecx
    jne 1b
    /* PDPT[0..3] → the four PDs. */
    movl $boot_pdpt, %edi
    xorl %ecx, %ecx
2:  movl %ecx, %eax
    shll $12, %eax
    addl $boot_pd, %eax
    orl  $0x3, %eax
    movl %eax, (%edi,%ecx,8)
    movl $0, 4(%edi,%ecx,8)
    incl %ecx
    cmpl $4, %ecx
    jne 2b
    /* PML4[0] → PDPT, the rest empty. */
    movl $boot_pml4, %edi
    xorl %eax, %eax
    movl $1024, %ecx
    rep stosl
    movl $boot_pdpt, %eax
    orl  $0x3, %eax
    movl %eax, boot_pml4

    movl %cr4, %eax
    orl  $(1 << 5), %eax            /* PAE */
    movl %eax, %cr4
    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx          /* EFER */
    rdmsr
    orl  $((1 << 8) | (1 << 11)), %eax  /* LME | NXE */
    wrmsr
    movl %cr0, %eax
    orl  $((1 << 31) | (1 << 0)), %eax  /* PG | PE */
    andl $~((1 << 30) | (1 << 29)), %eax /* caches on */
    movl %eax, %cr0
    lgdt boot_gdt_ptr
    ljmp $GDT_KERNEL_CODE, $long_entry

    .code64
long_entry:
    movw $GDT_KERNEL_DATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorl %eax, %eax
    movw %ax, %fs
    movw %ax, %gs
    /* Zero .bss; .stacks stays as the loader left it. */
    movq $__bss_start, %rdi
    movq $__bss_end, %rcx
    subq %rdi, %rcx
    shrq $3, %rcx
    rep stosq
    movq $(cpu_stacks + STACK_KERNEL_TOP), %rsp
    xorl %ebp, %ebp
    movl boot_proto, %edi
    movl boot_info_addr, %esi
    call boot_main
3:  cli
    hlt
    jmp 3b

    .section .rodata
    .align 16
    .global boot_gdt
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF        /* 0x08: 64-bit code */
    .quad 0x00CF92000000FFFF        /* 0x10: data */
boot_gdt_end:
    .global boot_gdt_ptr
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .quad boot_gdt

    .section .data
    .global boot_proto, boot_info_addr
boot_proto:     .long 0
boot_info_addr: .long 0

    .section .stacks, "aw", @nobits
    .align 4096
boot_pml4: .skip 4096
boot_pdpt: .skip 4096
boot_pd:   .skip 4096 * 4
    .global cpu_stacks, paging_pool
    .align 4096
cpu_stacks:  .skip MAX_CPUS * STACK_BLOCK_SIZE
paging_pool: .skip PAGING_POOL_PAGES * 4096
