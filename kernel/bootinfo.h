#ifndef KERNEL_BOOTINFO_H
#define KERNEL_BOOTINFO_H
#include <stdint.h>
#include "../arch/x86_64/paging.h"

#define BOOTINFO_MAX_RANGES 64
#define BOOTINFO_CMDLINE_MAX 4096

struct boot_info {
    int proto;                          /* BOOT_PROTO_MULTIBOOT or BOOT_PROTO_PVH */
    uint64_t rsdp;                      /* from PVH start info, else 0 */
    int nram;                           /* usable RAM ranges, sorted, merged */
    struct ram_range ram[BOOTINFO_MAX_RANGES];
    char cmdline[BOOTINFO_CMDLINE_MAX]; /* as the boot loader gave it ("" if none) */
};

/* Copies everything out of the loader's structures, which live in memory we are about to reuse.
   Returns 0, or -1 with a reason in *why. */
int bootinfo_parse(int proto, uint32_t info_addr, struct boot_info *bi, const char **why);
/* RAM minus [0, 1 MiB) and minus the image: what memory_init may hand out. */
int bootinfo_free_ram(const struct boot_info *bi, uint64_t image_end, struct ram_range *out, int max);
#endif
