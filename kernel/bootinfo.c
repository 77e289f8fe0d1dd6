/*
 * Boot protocols: the PVH start info (hvm_start_info, version >= 1 carries
 * the memory map) and the Multiboot 1 information structure (mmap_* fields).
 * Both are read once and copied, never trusted beyond their stated sizes.
 */
#include <stddef.h>
#include "bootinfo.h"
#include "../arch/x86_64/layout.h"

#define PVH_MAGIC 0x336ec578u
#define MB_FLAG_CMDLINE (1u << 2)
#define MB_FLAG_MMAP    (1u << 6)
#define E820_RAM 1

struct hvm_start_info {
    uint32_t magic, version, flags, nr_modules;
    uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
    uint32_t memmap_entries, reserved;
} __attribute__((packed));

struct hvm_memmap_entry { uint64_t addr, size; uint32_t type, reserved; } __attribute__((packed));

struct multiboot_info {
    uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
    uint32_t syms[4];
    uint32_t mmap_length, mmap_addr;
} __attribute__((packed));

struct multiboot_mmap { uint32_t size; uint64_t addr, len; uint32_t type; } __attribute__((packed));

static void copy_cmdline(struct boot_info *bi, uint64_t addr)
{
    bi->cmdline[0] = 0;
    if (!addr)
        return;
    const char *s = (const char *)addr;
    size_t i = 0;
    for (; i + 1 < sizeof bi->cmdline && s[i]; i++)
        bi->cmdline[i] = s[i];
    bi->cmdline[i] = 0;
}

static void add_ram(struct boot_info *bi, uint64_t base, uint64_t len)
{
    if (!len || bi->nram >= BOOTINFO_MAX_RANGES)
        return;
    /* Insertion keeps the list sorted; neighbours that touch are merged. */
    int i = bi->nram;
    while (i > 0 && bi->ram[i - 1].base > base) {
        bi->ram[i] = bi->ram[i - 1];
        i--;
    }
    bi->ram[i] = (struct ram_range){ base, len };
    bi->nram++;
    for (int j = 0; j + 1 < bi->nram;) {
        struct ram_range *a = &bi->ram[j], *b = &bi->ram[j + 1];
        if (a->base + a->len >= b->base) {
            uint64_t end = b->base + b->len > a->base + a->len ? b->base + b->len : a->base + a->len;
            a->len = end - a->base;
            for (int k = j + 1; k + 1 < bi->nram; k++)
                bi->ram[k] = bi->ram[k + 1];
            bi->nram--;
        } else {
            j++;
        }
    }
}

static int parse_pvh(uint32_t addr, struct boot_info *bi, const char **why)
{
    const struct hvm_start_info *si = (const void *)(uintptr_t)addr;
    if (si->magic != PVH_MAGIC) {
        *why = "PVH start info has a bad magic";
        return -1;
    }
    copy_cmdline(bi, si->cmdline_paddr);
    bi->rsdp = si->rsdp_paddr;
    if (si->version < 1 || !si->memmap_paddr) {
        *why = "PVH start info has no memory map (version 0)";
        return -1;
    }
    const struct hvm_memmap_entry *e = (const void *)(uintptr_t)si->memmap_paddr;
    for (uint32_t i = 0; i < si->memmap_entries && i < 128; i++)
        if (e[i].type == E820_RAM)
            add_ram(bi, e[i].addr, e[i].size);
    return 0;
}

static int parse_multiboot(uint32_t addr, struct boot_info *bi, const char **why)
{
    const struct multiboot_info *mb = (const void *)(uintptr_t)addr;
    if (mb->flags & MB_FLAG_CMDLINE)
        copy_cmdline(bi, mb->cmdline);
    if (!(mb->flags & MB_FLAG_MMAP)) {
        /* Only the two legacy sizes: low memory and memory above 1 MiB. */
        add_ram(bi, 0, (uint64_t)mb->mem_lower << 10);
        add_ram(bi, 0x100000, (uint64_t)mb->mem_upper << 10);
        return 0;
    }
    uint32_t off = 0;
    while (off + sizeof(struct multiboot_mmap) <= mb->mmap_length) {
        const struct multiboot_mmap *m = (const void *)(uintptr_t)(mb->mmap_addr + off);
        if (m->size < 20) {
            *why = "Multiboot memory map entry too short";
            return -1;
        }
        if (m->type == E820_RAM)
            add_ram(bi, m->addr, m->len);
        off += m->size + 4;
    }
    return 0;
}

int bootinfo_parse(int proto, uint32_t info_addr, struct boot_info *bi, const char **why)
{
    bi->proto = proto;
    bi->nram = 0;
    bi->rsdp = 0;
    bi->cmdline[0] = 0;
    int rc;
    if (proto == BOOT_PROTO_PVH)
        rc = parse_pvh(info_addr, bi, why);
    else
        rc = parse_multiboot(info_addr, bi, why);
    if (rc == 0 && bi->nram == 0) {
        *why = "no usable RAM in the boot memory map";
        return -1;
    }
    return rc;
}

int bootinfo_free_ram(const struct boot_info *bi, uint64_t image_end, struct ram_range *out, int max)
{
    int n = 0;
    for (int i = 0; i < bi->nram && n < max; i++) {
        uint64_t b = bi->ram[i].base, e = b + bi->ram[i].len;
        if (b < image_end)
            b = image_end;
        if (e > b)
            out[n++] = (struct ram_range){ b, e - b };
    }
    return n;
}
