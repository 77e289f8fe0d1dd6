/*
 * PVH entry (Xen HVM direct boot ABI, used by QEMU microvm/pc ELF loading
 * and Firecracker): 32-bit protected mode, paging off, %ebx points to
 * struct hvm_start_info. Announced by an ELF note of type 18.
 */
#include "../arch/x86_64/layout.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18

    .section .note.pvh, "a"
    .align 4
    .long 2f - 1f               /* namesz */
    .long 4f - 3f               /* descsz */
    .long XEN_ELFNOTE_PHYS32_ENTRY
1:  .asciz "Xen"
2:  .align 4
3:  .long pvh_entry
4:  .align 4

    .section .boot.text, "ax"
    .code32
    .global pvh_entry
pvh_entry:
    cli
    cld
    movl %ebx, boot_info_addr
    movl $BOOT_PROTO_PVH, boot_proto
    jmp boot32
