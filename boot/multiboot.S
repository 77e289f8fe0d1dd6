/*
 * Multiboot 1 entry. The header uses the address fields (flag bit 16):
 * QEMU's -kernel refuses an ELF64 whose Multiboot header lacks them, and
 * with them it loads the file as one flat blob, which linker.ld arranges.
 */
#include "../arch/x86_64/layout.h"

#define MB_MAGIC 0x1BADB002
#define MB_FLAGS ((1 << 0) | (1 << 1) | (1 << 16))

    .section .multiboot, "a"
    .align 4
multiboot_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
    .long multiboot_header      /* header_addr */
    .long __image_start         /* load_addr */
    .long __data_end_file       /* load_end_addr */
    .long __image_end           /* bss_end_addr */
    .long multiboot_entry       /* entry_addr */

    .section .boot.text, "ax"
    .code32
    .global multiboot_entry
multiboot_entry:
    cli
    cld
    movl %ebx, boot_info_addr
    movl $BOOT_PROTO_MULTIBOOT, boot_proto
    jmp boot32
