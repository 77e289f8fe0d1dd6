/*
 * Intel MultiProcessor Specification 1.4, chapter 4: floating pointer
 * structure and MP configuration table.
 *
 * The tables are input: the floating pointer and the configuration table
 * are checksummed, every entry is checked against the base table length and
 * the entry count, and an unknown entry type ends the walk (its size is not
 * known, so nothing after it can be located).
 *
 * Physical memory is reached through MPTABLE_PHYS_TO_PTR: the identity in
 * the kernel; the host unit test defines it (and MPTABLE_PHYS_LIMIT) to
 * point into a buffer before including this file.
 */
#include "mptable.h"

#include <stddef.h>

int memcmp(const void *a, const void *b, size_t n);

#ifndef MPTABLE_PHYS_TO_PTR
static inline const void *mp_identity_ptr(uint64_t pa)
{
    uintptr_t p = (uintptr_t)pa;
    /* Hide the constant: GCC's -Warray-bounds takes a dereference of a
       fixed address in the first page (the BDA) for a null one. */
    __asm__("" : "+r"(p));
    return (const void *)p;
}
#define MPTABLE_PHYS_TO_PTR(pa) mp_identity_ptr(pa)
#endif

#ifndef MPTABLE_PHYS_LIMIT
#define MPTABLE_PHYS_LIMIT 0x100000000ull /* end of the identity map */
#endif

/* BIOS Data Area words */
#define BDA_EBDA_SEGMENT    0x40E
#define BDA_BASE_MEM_KIB    0x413

/* Floating pointer structure (§4.1) */
#define MPF_LEN             16u
#define MPF_CONFIG          4   /* physical address of the config table */
#define MPF_LENGTH          8   /* in 16-byte units: 1 */
#define MPF_FEATURE1        11  /* nonzero: default configuration, no table */

/* Configuration table header (§4.2) */
#define MPC_HDR_LEN         44u
#define MPC_BASE_LEN        4
#define MPC_ENTRY_COUNT     34
#define MPC_LAPIC_ADDR      36

/* Base table entries (§4.3) */
#define MP_PROCESSOR        0   /* 20 bytes: type, apic id, version, flags */
#define MP_BUS              1
#define MP_IOAPIC           2
#define MP_IO_INTERRUPT     3
#define MP_LOCAL_INTERRUPT  4
#define MP_CPU_APIC_ID      1
#define MP_CPU_FLAGS        3
#define MP_CPU_ENABLED      0x01
#define MP_CPU_BSP          0x02

/* [pa, pa + len) as a pointer, or NULL if pa is 0 or the range is unmapped. */
static const uint8_t *mp_map(uint64_t pa, uint64_t len)
{
    const uint64_t limit = (uint64_t)(MPTABLE_PHYS_LIMIT);
    if (pa == 0 || pa >= limit || len > limit - pa)
        return NULL;
    return (const uint8_t *)(MPTABLE_PHYS_TO_PTR(pa));
}

static uint16_t mp_rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t mp_rd32(const uint8_t *p) { return mp_rd16(p) | (uint32_t)mp_rd16(p + 2) << 16; }

static bool mp_sum_ok(const uint8_t *p, uint32_t len)
{
    uint8_t sum = 0;
    for (uint32_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + p[i]);
    return sum == 0;
}

static bool mp_floating_valid(uint64_t pa)
{
    const uint8_t *f = mp_map(pa, MPF_LEN);
    return f && memcmp(f, "_MP_", 4) == 0 && f[MPF_LENGTH] == 1 && mp_sum_ok(f, MPF_LEN);
}

/* First valid floating pointer on a 16-byte boundary in [start, start + len). */
static uint64_t mp_scan(uint64_t start, uint64_t len)
{
    for (uint64_t off = 0; off + MPF_LEN <= len; off += 16)
        if (mp_floating_valid(start + off))
            return start + off;
    return 0;
}

static uint64_t mp_find_floating(void)
{
    const uint8_t *ebda_seg = mp_map(BDA_EBDA_SEGMENT, 2);
    const uint8_t *base_kib = mp_map(BDA_BASE_MEM_KIB, 2);
    uint64_t pa = 0;
    if (ebda_seg) {
        uint64_t ebda = (uint64_t)mp_rd16(ebda_seg) << 4;
        if (ebda >= 0x500 && ebda + 1024 <= 0xA0000)
            pa = mp_scan(ebda, 1024);
    }
    if (!pa && base_kib) {
        uint64_t kib = mp_rd16(base_kib);
        if (kib >= 2 && kib <= 640)
            pa = mp_scan((kib - 1) * 1024, 1024);
    }
    /* Boot loaders that leave the BIOS data area empty (qboot on QEMU microvm,
       Firecracker) put the table in the last KiB of the default 640 KiB. */
    if (!pa)
        pa = mp_scan(0x9FC00, 1024);
    return pa ? pa : mp_scan(0xF0000, 0x10000);
}

static uint32_t mp_entry_size(uint8_t type)
{
    switch (type) {
    case MP_PROCESSOR:
        return 20;
    case MP_BUS:
    case MP_IOAPIC:
    case MP_IO_INTERRUPT:
    case MP_LOCAL_INTERRUPT:
        return 8;
    default:
        return 0;
    }
}

static void mp_add_cpu(struct mptable_info *info, const uint8_t *e, bool *have_bsp)
{
    uint8_t id = e[MP_CPU_APIC_ID], flags = e[MP_CPU_FLAGS];
    if (!(flags & MP_CPU_ENABLED))
        return;
    if ((flags & MP_CPU_BSP) && !*have_bsp) {
        info->bsp_apic_id = id;
        *have_bsp = true;
    }
    for (uint32_t i = 0; i < info->cpu_count; i++)
        if (info->apic_ids[i] == id)
            return;
    if (info->cpu_count < MPTABLE_MAX_CPUS)
        info->apic_ids[info->cpu_count++] = id;
}

/* Walks at most `count` entries of t[MPC_HDR_LEN..len). */
static void mp_parse_entries(struct mptable_info *info, const uint8_t *t, uint32_t len, uint32_t count)
{
    bool have_bsp = false;
    uint32_t off = MPC_HDR_LEN;
    for (uint32_t i = 0; i < count && off < len; i++) {
        uint32_t size = mp_entry_size(t[off]);
        if (size == 0 || size > len - off)
            break;
        if (t[off] == MP_PROCESSOR)
            mp_add_cpu(info, t + off, &have_bsp);
        else if (t[off] == MP_IOAPIC && (t[off + 3] & 1) && info->ioapic_count < MPTABLE_MAX_IOAPICS)
            info->ioapic_addrs[info->ioapic_count++] = mp_rd32(t + off + 4);
        off += size;
    }
    if (!have_bsp && info->cpu_count > 0)
        info->bsp_apic_id = info->apic_ids[0];
}

static bool mp_parse_config(struct mptable_info *info, uint64_t pa)
{
    const uint8_t *h = mp_map(pa, MPC_HDR_LEN);
    if (!h || memcmp(h, "PCMP", 4) != 0)
        return false;
    uint32_t len = mp_rd16(h + MPC_BASE_LEN);
    if (len < MPC_HDR_LEN)
        return false;
    const uint8_t *t = mp_map(pa, len);
    if (!t || !mp_sum_ok(t, len))
        return false;
    info->lapic_addr = mp_rd32(t + MPC_LAPIC_ADDR);
    /* qboot (QEMU microvm) writes an entry count of 0; the length still bounds
       the walk, so a zero count means "as many as fit", as Linux reads it. */
    uint32_t count = mp_rd16(t + MPC_ENTRY_COUNT);
    mp_parse_entries(info, t, len, count ? count : len);
    return info->cpu_count > 0;
}

bool mptable_init(struct mptable_info *info)
{
    *info = (struct mptable_info){ 0 };
    uint64_t fp = mp_find_floating();
    if (!fp)
        return false;
    const uint8_t *f = mp_map(fp, MPF_LEN);
    if (f[MPF_FEATURE1] != 0)
        return false;  /* default configuration: not supported */
    if (!mp_parse_config(info, mp_rd32(f + MPF_CONFIG))) {
        *info = (struct mptable_info){ 0 };
        return false;
    }
    return true;
}
