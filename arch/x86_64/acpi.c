/*
 * ACPI table discovery (ACPI 6.5, chapter 5).
 *
 * Firmware tables are input: every table's length is bounded (against the
 * mapped address space and ACPI_MAX_TABLE_LEN) and its checksum verified
 * before any field is read, every sub-structure is checked against the end
 * of its table, and every loop advances by a positive step toward a bound.
 * Fields are read byte-wise (little-endian), so nothing needs alignment.
 *
 * Physical memory is reached through ACPI_PHYS_TO_PTR: the identity in the
 * kernel (all memory below 4 GiB is identity-mapped); the host unit test
 * defines it (and ACPI_PHYS_LIMIT) to point into a buffer before including
 * this file.
 */
#include "acpi.h"

int memcmp(const void *a, const void *b, size_t n);

#ifndef ACPI_PHYS_TO_PTR
static inline const void *acpi_identity_ptr(uint64_t pa)
{
    uintptr_t p = (uintptr_t)pa;
    /* Hide the constant: GCC's -Warray-bounds takes a dereference of a
       fixed address in the first page (the BDA at 0x40E) for a null one. */
    __asm__("" : "+r"(p));
    return (const void *)p;
}
#define ACPI_PHYS_TO_PTR(pa) acpi_identity_ptr(pa)
#endif

#ifndef ACPI_PHYS_LIMIT
#define ACPI_PHYS_LIMIT 0x100000000ull /* end of the identity map */
#endif

#define ACPI_HDR_LEN        36u
#define ACPI_MAX_TABLE_LEN  (16u << 20)  /* larger than any real DSDT */

/* RSDP (§5.2.5.3) */
#define RSDP_V1_LEN         20u
#define RSDP_V2_LEN         36u
#define RSDP_REVISION       15
#define RSDP_RSDT           16
#define RSDP_LENGTH         20
#define RSDP_XSDT           24

/* MADT (§5.2.12) */
#define MADT_LAPIC_ADDR     36
#define MADT_ENTRIES        44u
#define MADT_LAPIC          0   /* len 8: uid, apic id, flags@4 */
#define MADT_IOAPIC         1   /* len 12: id, -, addr@4, gsi base@8 */
#define MADT_LAPIC_OVERRIDE 5   /* len 12: -, -, addr@4 (64-bit) */
#define MADT_X2APIC         9   /* len 16: -, -, x2apic id@4, flags@8, uid@12 */
#define MADT_ENABLED        1u
/*
 * Only Enabled processors are collected. Online Capable (bit 1) means
 * "absent now, may be hot-added": QEMU >= 8.1 marks every not-yet-plugged
 * CPU of -smp N,maxcpus=M that way, and we neither wait for nor start them.
 */
#define MADT_CPU_USABLE     MADT_ENABLED

/* FADT (§5.2.9) */
#define FADT_DSDT           40
#define FADT_PM1A_CNT       64
#define FADT_PM1B_CNT       68
#define FADT_FLAGS          112
#define FADT_X_DSDT         140
#define FADT_X_PM1A_CNT     172
#define FADT_X_PM1B_CNT     184
#define FADT_SLEEP_CTL      244
#define FADT_HW_REDUCED     (1u << 20)
#define GAS_LEN             12u
#define GAS_ADDRESS         4

/* MCFG (PCI Firmware Spec 3.2, §4.1.2) */
#define MCFG_ENTRIES        44u
#define MCFG_ENTRY_LEN      16u

/* AML opcodes (§20.3) used to find \_S5_ */
#define AML_ZERO_OP         0x00
#define AML_ONE_OP          0x01
#define AML_NAME_OP         0x08
#define AML_BYTE_PREFIX     0x0A
#define AML_WORD_PREFIX     0x0B
#define AML_DWORD_PREFIX    0x0C
#define AML_PACKAGE_OP      0x12
#define AML_ROOT_CHAR       '\\'

/* A table that passed acpi_table(): p[0..len) is readable and checksummed. */
struct acpi_tab {
    const uint8_t *p;
    uint32_t len;
};

/* The root table (XSDT or RSDT) and the width of its entries. */
struct acpi_root {
    struct acpi_tab t;
    uint32_t entry_size;
};

/* [pa, pa + len) as a pointer, or NULL if pa is 0 or the range is unmapped. */
static const uint8_t *acpi_map(uint64_t pa, uint64_t len)
{
    const uint64_t limit = (uint64_t)(ACPI_PHYS_LIMIT);
    if (pa == 0 || pa >= limit || len > limit - pa)
        return NULL;
    return (const uint8_t *)(ACPI_PHYS_TO_PTR(pa));
}

static uint16_t acpi_rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t acpi_rd32(const uint8_t *p) { return acpi_rd16(p) | (uint32_t)acpi_rd16(p + 2) << 16; }
static uint64_t acpi_rd64(const uint8_t *p) { return acpi_rd32(p) | (uint64_t)acpi_rd32(p + 4) << 32; }

static bool acpi_sum_ok(const uint8_t *p, uint32_t len)
{
    uint8_t sum = 0;
    for (uint32_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + p[i]);
    return sum == 0;
}

/* The table at pa with signature sig, if its length and checksum are sound. */
static struct acpi_tab acpi_table(uint64_t pa, const char sig[4])
{
    struct acpi_tab none = { NULL, 0 };
    const uint8_t *hdr = acpi_map(pa, ACPI_HDR_LEN);
    if (!hdr || memcmp(hdr, sig, 4) != 0)
        return none;
    uint32_t len = acpi_rd32(hdr + 4);
    if (len < ACPI_HDR_LEN || len > ACPI_MAX_TABLE_LEN)
        return none;
    const uint8_t *p = acpi_map(pa, len);
    if (!p || !acpi_sum_ok(p, len))
        return none;
    return (struct acpi_tab){ p, len };
}

/* ---- RSDP ---- */

static bool acpi_rsdp_valid(uint64_t pa)
{
    const uint8_t *r = acpi_map(pa, RSDP_V1_LEN);
    if (!r || memcmp(r, "RSD PTR ", 8) != 0 || !acpi_sum_ok(r, RSDP_V1_LEN))
        return false;
    if (r[RSDP_REVISION] < 2)
        return true;
    r = acpi_map(pa, RSDP_V2_LEN);
    return r && acpi_rd32(r + RSDP_LENGTH) >= RSDP_V2_LEN && acpi_sum_ok(r, RSDP_V2_LEN);
}

/* First valid RSDP on a 16-byte boundary in [start, start + len), or 0.
   Thousands of candidates: two bytes reject nearly all before a full check
   (about half a millisecond of boot under TCG otherwise). */
static uint64_t acpi_scan_rsdp(uint64_t start, uint64_t len)
{
    const uint8_t *area = acpi_map(start, len);
    if (!area)
        return 0;
    for (uint64_t off = 0; off + RSDP_V1_LEN <= len; off += 16)
        if (area[off] == 'R' && area[off + 1] == 'S' && acpi_rsdp_valid(start + off))
            return start + off;
    return 0;
}

/* EBDA base from the BIOS Data Area word at 0x40E, or 0 if implausible. */
static uint64_t acpi_ebda(void)
{
    const uint8_t *bda = acpi_map(0x40E, 2);
    if (!bda)
        return 0;
    uint64_t ebda = (uint64_t)acpi_rd16(bda) << 4;
    return ebda >= 0x500 && ebda + 1024 <= 0xA0000 ? ebda : 0;
}

static uint64_t acpi_find_rsdp(uint64_t hint)
{
    if (hint && acpi_rsdp_valid(hint))
        return hint;
    uint64_t ebda = acpi_ebda();
    uint64_t pa = ebda ? acpi_scan_rsdp(ebda, 1024) : 0;
    return pa ? pa : acpi_scan_rsdp(0xE0000, 0x20000);
}

/* XSDT when the RSDP has one and it is valid, else the RSDT. */
static struct acpi_root acpi_root(uint64_t rsdp_addr)
{
    struct acpi_root root = { { NULL, 0 }, 0 };
    const uint8_t *r = acpi_map(rsdp_addr, RSDP_V1_LEN);
    if (!r)
        return root;
    if (r[RSDP_REVISION] >= 2 && (r = acpi_map(rsdp_addr, RSDP_V2_LEN)) != NULL) {
        root.t = acpi_table(acpi_rd64(r + RSDP_XSDT), "XSDT");
        root.entry_size = 8;
        if (root.t.p)
            return root;
    }
    root.t = acpi_table(acpi_rd32(r + RSDP_RSDT), "RSDT");
    root.entry_size = 4;
    return root;
}

/* First valid table with signature sig listed in the root table. */
static struct acpi_tab acpi_find_in_root(uint64_t rsdp_addr, const char sig[4])
{
    struct acpi_tab none = { NULL, 0 };
    struct acpi_root root = acpi_root(rsdp_addr);
    if (!root.t.p)
        return none;
    uint32_t count = (root.t.len - ACPI_HDR_LEN) / root.entry_size;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *e = root.t.p + ACPI_HDR_LEN + i * root.entry_size;
        uint64_t pa = root.entry_size == 8 ? acpi_rd64(e) : acpi_rd32(e);
        struct acpi_tab t = acpi_table(pa, sig);
        if (t.p)
            return t;
    }
    return none;
}

/* ---- MADT ---- */

static void acpi_add_cpu(struct acpi_info *info, uint32_t apic_id)
{
    for (uint32_t i = 0; i < info->cpu_count; i++)
        if (info->apic_ids[i] == apic_id)
            return;
    if (info->cpu_count < ACPI_MAX_CPUS)
        info->apic_ids[info->cpu_count++] = apic_id;
}

/* One MADT entry e[0..len), len already checked against the table end. */
static void acpi_madt_entry(struct acpi_info *info, const uint8_t *e, uint32_t len)
{
    switch (e[0]) {
    case MADT_LAPIC:
        if (len >= 8 && (acpi_rd32(e + 4) & MADT_CPU_USABLE) && e[3] != 0xFF)
            acpi_add_cpu(info, e[3]);
        break;
    case MADT_X2APIC:
        if (len >= 16 && (acpi_rd32(e + 8) & MADT_CPU_USABLE) && acpi_rd32(e + 4) != 0xFFFFFFFFu)
            acpi_add_cpu(info, acpi_rd32(e + 4));
        break;
    case MADT_IOAPIC:
        if (len >= 12 && !info->have_ioapic) {
            info->ioapic_addr = acpi_rd32(e + 4);
            info->ioapic_gsi_base = acpi_rd32(e + 8);
            info->have_ioapic = true;
        }
        if (len >= 12 && info->ioapic_count < ACPI_MAX_IOAPICS) {
            info->ioapic_addrs[info->ioapic_count] = acpi_rd32(e + 4);
            info->ioapic_gsi_bases[info->ioapic_count++] = acpi_rd32(e + 8);
        }
        break;
    case MADT_LAPIC_OVERRIDE:
        if (len >= 12 && acpi_rd64(e + 4) != 0)
            info->lapic_addr = acpi_rd64(e + 4);
        break;
    default:
        break;
    }
}

static void acpi_parse_madt(struct acpi_info *info, struct acpi_tab madt)
{
    if (madt.len < MADT_ENTRIES)
        return;
    info->lapic_addr = acpi_rd32(madt.p + MADT_LAPIC_ADDR);
    uint32_t off = MADT_ENTRIES;
    while (madt.len - off >= 2) {
        uint32_t len = madt.p[off + 1];
        if (len < 2 || len > madt.len - off)
            return;  /* malformed: stop rather than guess */
        acpi_madt_entry(info, madt.p + off, len);
        off += len;
    }
}

/* ---- DSDT: \_S5_ ---- */

/* One AML integer constant at p[0..avail) into *v; bytes used, 0 if none. */
static uint32_t acpi_aml_int(const uint8_t *p, uint32_t avail, uint64_t *v)
{
    if (avail == 0)
        return 0;
    switch (p[0]) {
    case AML_ZERO_OP:
        *v = 0;
        return 1;
    case AML_ONE_OP:
        *v = 1;
        return 1;
    case AML_BYTE_PREFIX:
        if (avail < 2)
            return 0;
        *v = p[1];
        return 2;
    case AML_WORD_PREFIX:
        if (avail < 3)
            return 0;
        *v = acpi_rd16(p + 1);
        return 3;
    case AML_DWORD_PREFIX:
        if (avail < 5)
            return 0;
        *v = acpi_rd32(p + 1);
        return 5;
    default:
        return 0;
    }
}

/* A PkgLength (§20.2.4) at p[0..avail) into *len; bytes used, 0 if truncated. */
static uint32_t acpi_aml_pkglen(const uint8_t *p, uint32_t avail, uint32_t *len)
{
    if (avail == 0)
        return 0;
    uint32_t follow = p[0] >> 6;
    if (follow + 1 > avail)
        return 0;
    if (follow == 0) {
        *len = p[0] & 0x3F;
        return 1;
    }
    uint32_t v = p[0] & 0x0F;
    for (uint32_t i = 0; i < follow; i++)
        v |= (uint32_t)p[1 + i] << (4 + 8 * i);
    *len = v;
    return follow + 1;
}

/*
 * `Package (n) { SLP_TYPa, SLP_TYPb, ... }` at p[0..avail), p[0] being
 * PackageOp. A one-element package holds both types in one integer, as
 * ACPICA reads it (a = bits 0-7, b = bits 8-15).
 */
static bool acpi_s5_package(const uint8_t *p, uint32_t avail, uint8_t *typa, uint8_t *typb)
{
    uint32_t pkglen;
    if (avail < 2 || p[0] != AML_PACKAGE_OP)
        return false;
    uint32_t n = acpi_aml_pkglen(p + 1, avail - 1, &pkglen);
    if (n == 0 || pkglen <= n || pkglen > avail - 1)
        return false;
    const uint8_t *q = p + 1 + n;          /* NumElements */
    uint32_t left = pkglen - n - 1;        /* bytes of elements */
    uint8_t count = q[0];
    uint64_t a, b;
    uint32_t used = acpi_aml_int(q + 1, left, &a);
    if (count == 0 || used == 0)
        return false;
    if (count == 1)
        b = a >> 8;
    else if (acpi_aml_int(q + 1 + used, left - used, &b) == 0)
        return false;
    *typa = (uint8_t)a;
    *typb = (uint8_t)b;
    return true;
}

/* First `Name (_S5_, Package ...)` (or `\_S5_`) in the DSDT's AML. */
static void acpi_parse_s5(struct acpi_info *info, struct acpi_tab dsdt)
{
    for (uint32_t i = ACPI_HDR_LEN + 1; i < dsdt.len && dsdt.len - i > 4; i++) {
        const uint8_t *p = dsdt.p + i;
        if (p[0] != '_' || memcmp(p, "_S5_", 4) != 0)
            continue;
        bool named = p[-1] == AML_NAME_OP ||
                     (p[-1] == AML_ROOT_CHAR && i >= ACPI_HDR_LEN + 2 && p[-2] == AML_NAME_OP);
        uint8_t a, b;
        if (named && acpi_s5_package(p + 4, dsdt.len - i - 4, &a, &b)) {
            info->s5_typa = a;
            info->s5_typb = b;
            info->have_s5 = true;
            return;
        }
    }
}

/* ---- FADT ---- */

/* X_DSDT when present and valid, else the 32-bit DSDT field. */
static struct acpi_tab acpi_fadt_dsdt(struct acpi_tab f, uint64_t *pa)
{
    struct acpi_tab t = { NULL, 0 };
    if (f.len >= FADT_X_DSDT + 8) {
        *pa = acpi_rd64(f.p + FADT_X_DSDT);
        t = acpi_table(*pa, "DSDT");
    }
    if (!t.p && f.len >= FADT_DSDT + 4) {
        *pa = acpi_rd32(f.p + FADT_DSDT);
        t = acpi_table(*pa, "DSDT");
    }
    if (!t.p)
        *pa = 0;
    return t;
}

/* A PM1x_CNT port: the X_ GAS when the table holds it in I/O space, else
   the legacy 32-bit block address; 0 when absent. */
static uint16_t acpi_fadt_port(struct acpi_tab f, uint32_t legacy_off, uint32_t gas_off)
{
    if (f.len >= gas_off + GAS_LEN && f.p[gas_off] == ACPI_GAS_IO) {
        uint64_t a = acpi_rd64(f.p + gas_off + GAS_ADDRESS);
        if (a != 0 && a <= 0xFFFF)
            return (uint16_t)a;
    }
    if (f.len < legacy_off + 4)
        return 0;
    uint32_t a = acpi_rd32(f.p + legacy_off);
    return a <= 0xFFFF ? (uint16_t)a : 0;
}

static void acpi_parse_fadt(struct acpi_info *info, struct acpi_tab f)
{
    if (!f.p)
        return;
    if (f.len >= FADT_FLAGS + 4)
        info->hw_reduced = (acpi_rd32(f.p + FADT_FLAGS) & FADT_HW_REDUCED) != 0;
    info->pm1a_cnt_port = acpi_fadt_port(f, FADT_PM1A_CNT, FADT_X_PM1A_CNT);
    info->pm1b_cnt_port = acpi_fadt_port(f, FADT_PM1B_CNT, FADT_X_PM1B_CNT);
    if (f.len >= FADT_SLEEP_CTL + GAS_LEN && acpi_rd64(f.p + FADT_SLEEP_CTL + GAS_ADDRESS) != 0) {
        info->sleep_ctl_space = f.p[FADT_SLEEP_CTL];
        info->sleep_ctl_addr = acpi_rd64(f.p + FADT_SLEEP_CTL + GAS_ADDRESS);
    }
    struct acpi_tab dsdt = acpi_fadt_dsdt(f, &info->dsdt_addr);
    if (dsdt.p)
        acpi_parse_s5(info, dsdt);
}

/* ---- MCFG ---- */

static void acpi_parse_mcfg(struct acpi_info *info, struct acpi_tab t)
{
    if (t.len < MCFG_ENTRIES + MCFG_ENTRY_LEN)
        return;
    const uint8_t *e = t.p + MCFG_ENTRIES;
    uint64_t base = acpi_rd64(e);
    if (base == 0 || e[10] > e[11])
        return;
    info->mcfg_base = base;
    info->mcfg_segment = acpi_rd16(e + 8);
    info->mcfg_bus_start = e[10];
    info->mcfg_bus_end = e[11];
    info->have_mcfg = true;
}

/* ---- interface ---- */

bool acpi_init(struct acpi_info *info, uint64_t rsdp_hint)
{
    *info = (struct acpi_info){ 0 };
    uint64_t rsdp = acpi_find_rsdp(rsdp_hint);
    if (!rsdp || !acpi_root(rsdp).t.p)
        return false;
    info->rsdp_addr = rsdp;
    info->present = true;
    acpi_parse_madt(info, acpi_find_in_root(rsdp, "APIC"));
    acpi_parse_fadt(info, acpi_find_in_root(rsdp, "FACP"));
    acpi_parse_mcfg(info, acpi_find_in_root(rsdp, "MCFG"));
    return true;
}

const void *acpi_find_table(const struct acpi_info *info, const char sig[4])
{
    if (!info || !info->present)
        return NULL;
    if (memcmp(sig, "DSDT", 4) == 0)
        return acpi_table(info->dsdt_addr, "DSDT").p;
    return acpi_find_in_root(info->rsdp_addr, sig).p;
}
