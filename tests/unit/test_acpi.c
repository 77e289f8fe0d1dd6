/*
 * ACPI and MP table parsing against tables built in a buffer that stands in
 * for low physical memory. Tables that must be rejected or truncated are
 * placed at the very end of the buffer, so that any read past their stated
 * bounds lands in AddressSanitizer's redzone.
 */
#include <stdint.h>
#include <string.h>

#define TEST_MEM_SIZE (2u << 20)
static uint8_t *test_memory;

#define ACPI_PHYS_TO_PTR(pa)    (test_memory + (pa))
#define ACPI_PHYS_LIMIT         TEST_MEM_SIZE
#define MPTABLE_PHYS_TO_PTR(pa) (test_memory + (pa))
#define MPTABLE_PHYS_LIMIT      TEST_MEM_SIZE

#include "check.h"
#include "../../arch/x86_64/acpi.c"
#include "../../arch/x86_64/mptable.c"

/* ---- buffer helpers ---- */

static void mem_reset(void)
{
    free(test_memory);
    test_memory = calloc(1, TEST_MEM_SIZE);
    if (!test_memory)
        abort();
}

static void put8(uint64_t pa, uint8_t v) { test_memory[pa] = v; }
static void put16(uint64_t pa, uint16_t v) { put8(pa, (uint8_t)v); put8(pa + 1, (uint8_t)(v >> 8)); }
static void put32(uint64_t pa, uint32_t v) { put16(pa, (uint16_t)v); put16(pa + 2, (uint16_t)(v >> 16)); }
static void put64(uint64_t pa, uint64_t v) { put32(pa, (uint32_t)v); put32(pa + 4, (uint32_t)(v >> 32)); }
static void putmem(uint64_t pa, const void *src, size_t n) { memcpy(test_memory + pa, src, n); }

/* Makes bytes [pa, pa + len) sum to zero by setting the byte at pa + at. */
static void fix_sum(uint64_t pa, uint32_t len, uint32_t at)
{
    uint8_t sum = 0;
    test_memory[pa + at] = 0;
    for (uint32_t i = 0; i < len; i++)
        sum = (uint8_t)(sum + test_memory[pa + i]);
    test_memory[pa + at] = (uint8_t)-sum;
}

/* Writes an SDT header in front of a body already at pa + 36, checksummed. */
static void sdt(uint64_t pa, const char *sig, uint32_t len, uint8_t rev)
{
    putmem(pa, sig, 4);
    put32(pa + 4, len);
    put8(pa + 8, rev);
    putmem(pa + 10, "SHOAL ", 6);
    putmem(pa + 16, "TESTTABL", 8);
    fix_sum(pa, len, 9);
}

/* Table of `body` bytes after the header (MADT, DSDT, ...). */
static uint32_t sdt_with_body(uint64_t pa, const char *sig, const void *body, uint32_t n)
{
    putmem(pa + 36, body, n);
    sdt(pa, sig, 36 + n, 1);
    return 36 + n;
}

static void rsdp(uint64_t pa, uint8_t rev, uint32_t rsdt, uint64_t xsdt)
{
    putmem(pa, "RSD PTR ", 8);
    putmem(pa + 9, "SHOAL ", 6);
    put8(pa + 15, rev);
    put32(pa + 16, rsdt);
    put32(pa + 20, 36);
    put64(pa + 24, xsdt);
    fix_sum(pa, 20, 8);
    fix_sum(pa, 36, 32);
}

static void root_table(uint64_t pa, const char *sig, const uint64_t *entries, uint32_t n)
{
    uint32_t size = sig[0] == 'X' ? 8 : 4;
    for (uint32_t i = 0; i < n; i++) {
        if (size == 8)
            put64(pa + 36 + i * 8, entries[i]);
        else
            put32(pa + 36 + i * 4, (uint32_t)entries[i]);
    }
    sdt(pa, sig, 36 + n * size, 1);
}

/* MADT: LAPIC address then the given entries. */
static uint32_t madt(uint64_t pa, uint32_t lapic, const uint8_t *entries, uint32_t n)
{
    put32(pa + 36, lapic);
    put32(pa + 40, 1); /* PCAT_COMPAT */
    putmem(pa + 44, entries, n);
    sdt(pa, "APIC", 44 + n, 5);
    return 44 + n;
}

/* ---- a q35-like ACPI set ---- */

#define BDA_EBDA      0x40E
#define BDA_BASEMEM   0x413
#define EBDA          0x9FC00
#define RSDP_GOOD     0xE0040
#define XSDT_PA       0x100000
#define RSDT_PA       0x100400
#define MADT_PA       0x101000
#define MADT_OLD_PA   0x101800
#define FADT_PA       0x102000
#define DSDT_PA       0x103000
#define MCFG_PA       0x104000
#define MCFG_BAD_PA   0x104400
#define HPET_PA       0x105000

static const uint8_t madt_entries[] = {
    0, 8, 0, 0, 1, 0, 0, 0,                                   /* LAPIC id 0, enabled */
    0, 8, 1, 1, 1, 0, 0, 0,                                   /* LAPIC id 1, enabled */
    0, 8, 2, 2, 0, 0, 0, 0,                                   /* LAPIC id 2, disabled */
    0, 8, 3, 3, 2, 0, 0, 0,                                   /* LAPIC id 3, online-capable only */
    1, 12, 0, 0, 0x00, 0x00, 0xC0, 0xFE, 0, 0, 0, 0,          /* IOAPIC 0xFEC00000, GSI 0 */
    1, 12, 1, 0, 0x00, 0x10, 0xC0, 0xFE, 24, 0, 0, 0,         /* second IOAPIC: ignored */
    2, 10, 0, 0, 2, 0, 0, 0, 0, 0,                            /* IRQ0 -> GSI2 override */
    9, 16, 0, 0, 0x00, 0x01, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0,    /* x2APIC id 0x100, enabled */
    9, 16, 0, 0, 0x01, 0x00, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0,    /* x2APIC id 1 again: dedup */
    5, 12, 0, 0, 0x00, 0x00, 0xD0, 0xFE, 0, 0, 0, 0,          /* LAPIC address override */
    4, 6, 0xFF, 0, 0, 1,                                      /* LAPIC NMI: skipped */
};

static const uint8_t madt_old_entries[] = {
    0, 8, 0, 7, 1, 0, 0, 0,                                   /* LAPIC id 7 only */
};

static const uint8_t dsdt_body[] = {
    0x0D, '_', 'S', '5', '_', 0x00,                           /* String "_S5_": not a name */
    0x08, '_', 'S', '4', '_', 0x12, 0x08, 0x04, 0x0A, 0x06, 0x0A, 0x06, 0x00, 0x00,
    0x08, '\\', '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0A, 0x05, 0x01, 0x00, 0x00,
};

static void fadt(uint64_t pa, uint32_t len, uint32_t dsdt32, uint64_t xdsdt, uint32_t flags)
{
    put32(pa + 40, dsdt32);
    put32(pa + 64, 0x604);          /* PM1a_CNT_BLK */
    put32(pa + 112, flags);
    if (len >= 184) {
        put64(pa + 140, xdsdt);
        put8(pa + 172, ACPI_GAS_IO); /* X_PM1a_CNT_BLK */
        put8(pa + 173, 16);
        put64(pa + 176, 0x604);
    }
    sdt(pa, "FACP", len, len >= 276 ? 6 : 1);
}

static void mcfg(uint64_t pa, uint64_t base, uint8_t bus_end)
{
    put64(pa + 44, base);
    put16(pa + 52, 0);
    put8(pa + 54, 0);
    put8(pa + 55, bus_end);
    sdt(pa, "MCFG", 60, 1);
}

static void build_acpi(uint8_t rsdp_rev)
{
    mem_reset();
    put16(BDA_EBDA, EBDA >> 4);
    put16(BDA_BASEMEM, 639);

    /* Bad RSDPs, searched before the good one: must be skipped. */
    rsdp(EBDA, 2, RSDT_PA, XSDT_PA);
    test_memory[EBDA + 8] ^= 0x55;
    rsdp(0xE0000, 0, RSDT_PA, 0);
    test_memory[0xE0000 + 19] ^= 0x01;

    madt(MADT_PA, 0xFEE00000, madt_entries, sizeof madt_entries);
    madt(MADT_OLD_PA, 0xFEE00000, madt_old_entries, sizeof madt_old_entries);
    sdt_with_body(DSDT_PA, "DSDT", dsdt_body, sizeof dsdt_body);
    fadt(FADT_PA, 276, 0x1F0000 /* not a table */, DSDT_PA, 0);
    mcfg(MCFG_BAD_PA, 0xC0000000, 0x7F);
    test_memory[MCFG_BAD_PA + 20] ^= 0xFF;                     /* corrupt */
    mcfg(MCFG_PA, 0xB0000000, 0xFF);
    sdt(HPET_PA, "HPET", 56, 1);

    uint64_t x[] = { FADT_PA, MCFG_BAD_PA, MADT_PA, MCFG_PA, HPET_PA, 0, 0xFFFFFFFFFFFFull };
    root_table(XSDT_PA, "XSDT", x, sizeof x / sizeof x[0]);
    uint64_t r[] = { FADT_PA, MADT_OLD_PA };
    root_table(RSDT_PA, "RSDT", r, 2);
    rsdp(RSDP_GOOD, rsdp_rev, RSDT_PA, XSDT_PA);
}

/* ---- ACPI tests ---- */

TEST(acpi_search_skips_bad_rsdp)
{
    struct acpi_info info;
    build_acpi(2);
    CHECK(acpi_init(&info, 0));
    CHECK(info.present);
    CHECK_EQ(info.rsdp_addr, RSDP_GOOD);
    /* A bad hint falls back to the search; a good one is used as is. */
    CHECK(acpi_init(&info, EBDA));
    CHECK_EQ(info.rsdp_addr, RSDP_GOOD);
    CHECK(acpi_init(&info, RSDP_GOOD));
    CHECK_EQ(info.rsdp_addr, RSDP_GOOD);
}

TEST(acpi_none)
{
    struct acpi_info info;
    mem_reset();
    CHECK(!acpi_init(&info, 0));
    CHECK(!info.present);
    CHECK(acpi_find_table(&info, "APIC") == NULL);
    /* Valid RSDP whose root tables are broken: no ACPI. */
    rsdp(RSDP_GOOD, 2, RSDT_PA, XSDT_PA);
    CHECK(!acpi_init(&info, 0));
}

TEST(acpi_madt)
{
    struct acpi_info info;
    build_acpi(2);
    CHECK(acpi_init(&info, 0));
    CHECK_EQ(info.cpu_count, 3);
    CHECK_EQ(info.apic_ids[0], 0);
    CHECK_EQ(info.apic_ids[1], 1);
    CHECK_EQ(info.apic_ids[2], 0x100);
    CHECK_EQ(info.lapic_addr, 0xFED00000);
    CHECK(info.have_ioapic);
    CHECK_EQ(info.ioapic_addr, 0xFEC00000);
    CHECK_EQ(info.ioapic_gsi_base, 0);
}

TEST(acpi_rsdt_rev0)
{
    struct acpi_info info;
    build_acpi(0);
    CHECK(acpi_init(&info, 0));
    CHECK_EQ(info.cpu_count, 1);
    CHECK_EQ(info.apic_ids[0], 7);
    CHECK_EQ(info.lapic_addr, 0xFEE00000);
    CHECK(!info.have_mcfg);
    CHECK(info.have_s5);
}

TEST(acpi_bad_xsdt_falls_back_to_rsdt)
{
    struct acpi_info info;
    build_acpi(2);
    test_memory[XSDT_PA + 40] ^= 1;
    CHECK(acpi_init(&info, 0));
    CHECK_EQ(info.cpu_count, 1);
    CHECK_EQ(info.apic_ids[0], 7);
}

TEST(acpi_fadt_s5)
{
    struct acpi_info info;
    build_acpi(2);
    CHECK(acpi_init(&info, 0));
    CHECK(!info.hw_reduced);
    CHECK_EQ(info.pm1a_cnt_port, 0x604);
    CHECK_EQ(info.pm1b_cnt_port, 0);
    CHECK_EQ(info.sleep_ctl_addr, 0);
    CHECK_EQ(info.dsdt_addr, DSDT_PA);  /* X_DSDT preferred over the bad 32-bit one */
    CHECK(info.have_s5);
    CHECK_EQ(info.s5_typa, 5);
    CHECK_EQ(info.s5_typb, 1);
}

TEST(acpi_fadt_hw_reduced)
{
    struct acpi_info info;
    build_acpi(2);
    memset(test_memory + FADT_PA, 0, 276);
    put8(FADT_PA + 244, ACPI_GAS_MEMORY);
    put8(FADT_PA + 245, 8);
    put64(FADT_PA + 248, 0xFEA00004);
    put64(FADT_PA + 140, DSDT_PA);
    put32(FADT_PA + 112, 1u << 20);
    sdt(FADT_PA, "FACP", 276, 6);
    CHECK(acpi_init(&info, 0));
    CHECK(info.hw_reduced);
    CHECK_EQ(info.pm1a_cnt_port, 0);
    CHECK_EQ(info.sleep_ctl_space, ACPI_GAS_MEMORY);
    CHECK_EQ(info.sleep_ctl_addr, 0xFEA00004);
    CHECK(info.have_s5);
}

TEST(acpi_fadt_rev1_at_buffer_end)
{
    struct acpi_info info;
    build_acpi(2);
    uint64_t f = TEST_MEM_SIZE - 116;
    fadt(f, 116, DSDT_PA, 0, 0);
    uint64_t x[] = { f, MADT_PA };
    root_table(XSDT_PA, "XSDT", x, 2);
    CHECK(acpi_init(&info, 0));
    CHECK_EQ(info.dsdt_addr, DSDT_PA);
    CHECK_EQ(info.pm1a_cnt_port, 0x604);
    CHECK_EQ(info.sleep_ctl_addr, 0);
    CHECK(info.have_s5);
}

/* Replaces the DSDT with `body` placed flush against the end of the buffer. */
static void dsdt_at_end(const uint8_t *body, uint32_t n)
{
    uint64_t d = TEST_MEM_SIZE - 36 - n;
    sdt_with_body(d, "DSDT", body, n);
    memset(test_memory + FADT_PA, 0, 276);
    put32(FADT_PA + 40, (uint32_t)d);
    sdt(FADT_PA, "FACP", 276, 6);
}

TEST(acpi_s5_variants)
{
    struct acpi_info info;

    /* One-element package, WordConst, two-byte PkgLength. */
    static const uint8_t one[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x46, 0x00, 0x01, 0x0B, 0x05, 0x07 };
    build_acpi(2);
    dsdt_at_end(one, sizeof one);
    CHECK(acpi_init(&info, 0));
    CHECK(info.have_s5);
    CHECK_EQ(info.s5_typa, 5);
    CHECK_EQ(info.s5_typb, 7);

    /* Truncated right after the name / after PackageOp / mid-element. */
    static const uint8_t t1[] = { 0x08, '_', 'S', '5', '_' };
    static const uint8_t t2[] = { 0x08, '_', 'S', '5', '_', 0x12 };
    static const uint8_t t3[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x05, 0x02, 0x0A };
    static const uint8_t t4[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x3F, 0x02, 0x00, 0x00 };
    static const uint8_t t5[] = { 0x08, '_', 'S', '5', '_', 0x12, 0xC0 };
    const uint8_t *bad[] = { t1, t2, t3, t4, t5 };
    uint32_t bad_len[] = { sizeof t1, sizeof t2, sizeof t3, sizeof t4, sizeof t5 };
    for (int i = 0; i < 5; i++) {
        build_acpi(2);
        dsdt_at_end(bad[i], bad_len[i]);
        CHECK(acpi_init(&info, 0));
        CHECK(!info.have_s5);
        CHECK_EQ(info.dsdt_addr, TEST_MEM_SIZE - 36 - bad_len[i]);
    }
}

TEST(acpi_mcfg)
{
    struct acpi_info info;
    build_acpi(2);
    CHECK(acpi_init(&info, 0));
    CHECK(info.have_mcfg);             /* the corrupt MCFG listed first is skipped */
    CHECK_EQ(info.mcfg_base, 0xB0000000);
    CHECK_EQ(info.mcfg_segment, 0);
    CHECK_EQ(info.mcfg_bus_start, 0);
    CHECK_EQ(info.mcfg_bus_end, 0xFF);
}

TEST(acpi_find_table_api)
{
    struct acpi_info info;
    build_acpi(2);
    CHECK(acpi_init(&info, 0));
    CHECK(acpi_find_table(&info, "MCFG") == test_memory + MCFG_PA);
    CHECK(acpi_find_table(&info, "HPET") == test_memory + HPET_PA);
    CHECK(acpi_find_table(&info, "FACP") == test_memory + FADT_PA);
    CHECK(acpi_find_table(&info, "DSDT") == test_memory + DSDT_PA);
    CHECK(acpi_find_table(&info, "SSDT") == NULL);
    const struct acpi_sdt_header *h = acpi_find_table(&info, "APIC");
    CHECK(h != NULL && h->length == 44 + sizeof madt_entries);
}

/* MADT flush against the end of the buffer with the given entries. */
static void madt_at_end(struct acpi_info *info, const uint8_t *entries, uint32_t n)
{
    build_acpi(2);
    uint64_t m = TEST_MEM_SIZE - 44 - n;
    madt(m, 0xFEE00000, entries, n);
    uint64_t x[] = { m };
    root_table(XSDT_PA, "XSDT", x, 1);
    CHECK(acpi_init(info, 0));
}

TEST(acpi_madt_malformed)
{
    struct acpi_info info;

    static const uint8_t zero_len[] = { 0, 8, 0, 4, 1, 0, 0, 0,  0, 0, 0, 5, 1, 0, 0, 0 };
    madt_at_end(&info, zero_len, sizeof zero_len);
    CHECK_EQ(info.cpu_count, 1);
    CHECK_EQ(info.apic_ids[0], 4);

    static const uint8_t one_len[] = { 0, 8, 0, 4, 1, 0, 0, 0,  0, 1, 0, 5 };
    madt_at_end(&info, one_len, sizeof one_len);
    CHECK_EQ(info.cpu_count, 1);

    static const uint8_t past_end[] = { 0, 8, 0, 4, 1, 0, 0, 0,  0, 8, 0, 5, 1 };
    madt_at_end(&info, past_end, sizeof past_end);
    CHECK_EQ(info.cpu_count, 1);

    static const uint8_t huge_len[] = { 0, 8, 0, 4, 1, 0, 0, 0,  9, 0xFF, 0, 0, 6, 0, 0, 0 };
    madt_at_end(&info, huge_len, sizeof huge_len);
    CHECK_EQ(info.cpu_count, 1);

    /* Entries shorter than their type needs are skipped, the walk goes on. */
    static const uint8_t short_entry[] = { 9, 8, 0, 0, 6, 0, 0, 0,  0, 8, 0, 4, 1, 0, 0, 0,  1, 2 };
    madt_at_end(&info, short_entry, sizeof short_entry);
    CHECK_EQ(info.cpu_count, 1);
    CHECK_EQ(info.apic_ids[0], 4);
    CHECK(!info.have_ioapic);

    /* A lone type byte at the very end. */
    static const uint8_t lone[] = { 0, 8, 0, 4, 1, 0, 0, 0,  0 };
    madt_at_end(&info, lone, sizeof lone);
    CHECK_EQ(info.cpu_count, 1);

    /* MADT whose length field claims more than the buffer holds. */
    build_acpi(2);
    put32(MADT_PA + 4, TEST_MEM_SIZE);
    CHECK(acpi_init(&info, 0));
    CHECK_EQ(info.cpu_count, 0);
    CHECK(acpi_find_table(&info, "APIC") == NULL);
}

TEST(acpi_madt_cpu_cap)
{
    struct acpi_info info;
    uint8_t e[70 * 16];
    memset(e, 0, sizeof e);
    for (int i = 0; i < 70; i++) {
        e[i * 16] = 9;
        e[i * 16 + 1] = 16;
        e[i * 16 + 4] = (uint8_t)(i + 10);
        e[i * 16 + 8] = 1;
    }
    madt_at_end(&info, e, sizeof e);
    CHECK_EQ(info.cpu_count, 64);
    CHECK_EQ(info.apic_ids[63], 73);
}

/* ---- MP table ---- */

static const uint8_t mp_entries[] = {
    0, 0, 0x14, 0x01, 0x63, 0x06, 0, 0, 0xFF, 0xFB, 0xEB, 0x0F, 0, 0, 0, 0, 0, 0, 0, 0, /* cpu 0 */
    0, 1, 0x14, 0x03, 0x63, 0x06, 0, 0, 0xFF, 0xFB, 0xEB, 0x0F, 0, 0, 0, 0, 0, 0, 0, 0, /* cpu 1 BSP */
    0, 2, 0x14, 0x00, 0x63, 0x06, 0, 0, 0xFF, 0xFB, 0xEB, 0x0F, 0, 0, 0, 0, 0, 0, 0, 0, /* cpu 2 off */
    0, 3, 0x14, 0x01, 0x63, 0x06, 0, 0, 0xFF, 0xFB, 0xEB, 0x0F, 0, 0, 0, 0, 0, 0, 0, 0, /* cpu 3 */
    1, 0, 'I', 'S', 'A', ' ', ' ', ' ',                                               /* bus */
    2, 4, 0x11, 0x01, 0x00, 0x00, 0xC0, 0xFE,                                          /* IOAPIC */
    3, 0, 0, 0, 0, 0, 4, 0,                                                            /* IO int */
    4, 3, 0, 0, 0, 0, 0xFF, 0,                                                         /* local int */
};

static void mp_config(uint64_t pa, const uint8_t *entries, uint32_t n, uint16_t count)
{
    putmem(pa, "PCMP", 4);
    put16(pa + 4, (uint16_t)(44 + n));
    put8(pa + 6, 4);
    putmem(pa + 8, "SHOAL   ", 8);
    putmem(pa + 16, "TEST        ", 12);
    put16(pa + 34, count);
    put32(pa + 36, 0xFEE00000);
    putmem(pa + 44, entries, n);
    fix_sum(pa, 44 + n, 7);
}

static void mp_floating(uint64_t pa, uint32_t config)
{
    putmem(pa, "_MP_", 4);
    put32(pa + 4, config);
    put8(pa + 8, 1);
    put8(pa + 9, 4);
    fix_sum(pa, 16, 10);
}

static void mp_memory(uint16_t ebda_seg, uint16_t base_kib)
{
    mem_reset();
    put16(BDA_EBDA, ebda_seg);
    put16(BDA_BASEMEM, base_kib);
}

static void check_mp_standard(const struct mptable_info *info)
{
    CHECK_EQ(info->cpu_count, 3);
    CHECK_EQ(info->apic_ids[0], 0);
    CHECK_EQ(info->apic_ids[1], 1);
    CHECK_EQ(info->apic_ids[2], 3);
    CHECK_EQ(info->bsp_apic_id, 1);
    CHECK_EQ(info->lapic_addr, 0xFEE00000);
}

/* Lays out a BIOS data area, a floating pointer and a config table, and checks the standard result. */
static void check_mp_found_at(uint16_t ebda_seg, uint16_t base_kib, uint64_t floating, uint16_t count)
{
    struct mptable_info info;
    mp_memory(ebda_seg, base_kib);
    mp_floating(floating, (uint32_t)floating + 16);
    mp_config(floating + 16, mp_entries, sizeof mp_entries, count);
    CHECK(mptable_init(&info));
    check_mp_standard(&info);
}

TEST(mptable_in_ebda) { check_mp_found_at(EBDA >> 4, 639, EBDA, 8); }

TEST(mptable_in_base_memory_top) { check_mp_found_at(0, 512, 0x7FC00, 8); }

/* qboot on QEMU microvm (acpi=off): BIOS data area left zero, table at
   0x9FC00, and an entry count of 0 in the header: the length bounds the walk. */
TEST(mptable_qboot_style) { check_mp_found_at(0, 0, 0x9FC00, 0); }

TEST(mptable_in_f_segment_after_bad_one)
{
    struct mptable_info info;
    mp_memory(EBDA >> 4, 639);
    mp_floating(EBDA, EBDA + 16);
    test_memory[EBDA + 10] ^= 1;         /* bad checksum: skipped */
    mp_floating(0xF5A30, 0xF5A40);
    mp_config(0xF5A40, mp_entries, sizeof mp_entries, 8);
    CHECK(mptable_init(&info));
    check_mp_standard(&info);
}

TEST(mptable_rejects)
{
    struct mptable_info info;

    mp_memory(EBDA >> 4, 639);
    CHECK(!mptable_init(&info));         /* nothing there */

    mp_floating(EBDA, EBDA + 16);
    mp_config(EBDA + 16, mp_entries, sizeof mp_entries, 8);
    test_memory[EBDA + 16 + 50] ^= 1;    /* config checksum */
    CHECK(!mptable_init(&info));
    CHECK_EQ(info.cpu_count, 0);

    mp_config(EBDA + 16, mp_entries, sizeof mp_entries, 8);
    put8(EBDA + 11, 5);                  /* default configuration 5 */
    fix_sum(EBDA, 16, 10);
    CHECK(!mptable_init(&info));

    mp_floating(EBDA, 0);                /* no config table */
    CHECK(!mptable_init(&info));

    mp_floating(EBDA, TEST_MEM_SIZE - 8); /* header runs off the end */
    CHECK(!mptable_init(&info));
}

TEST(mptable_malformed_entries)
{
    struct mptable_info info;

    /* Unknown type between processors: the walk stops there. */
    static const uint8_t unknown[] = {
        0, 5, 0x14, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        7, 0, 0, 0, 0, 0, 0, 0,
        0, 6, 0x14, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    };
    mp_memory(EBDA >> 4, 639);
    mp_floating(EBDA, EBDA + 16);
    mp_config(EBDA + 16, unknown, sizeof unknown, 3);
    CHECK(mptable_init(&info));
    CHECK_EQ(info.cpu_count, 1);
    CHECK_EQ(info.apic_ids[0], 5);
    CHECK_EQ(info.bsp_apic_id, 5);       /* no BP flag: first enabled */

    /* Config at the end of memory; entry count larger than the table; last
       processor entry cut short by the base table length. */
    static const uint8_t cut[] = {
        0, 9, 0x14, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 8, 0x14, 0x01, 0, 0, 0, 0,
    };
    uint64_t cfg = TEST_MEM_SIZE - 44 - sizeof cut;
    mp_memory(EBDA >> 4, 639);
    mp_floating(EBDA, (uint32_t)cfg);
    mp_config(cfg, cut, sizeof cut, 50);
    CHECK(mptable_init(&info));
    CHECK_EQ(info.cpu_count, 1);
    CHECK_EQ(info.apic_ids[0], 9);
    CHECK_EQ(info.bsp_apic_id, 9);

    /* Entry count smaller than the entries present: honoured. */
    mp_memory(EBDA >> 4, 639);
    mp_floating(EBDA, EBDA + 16);
    mp_config(EBDA + 16, mp_entries, sizeof mp_entries, 2);
    CHECK(mptable_init(&info));
    CHECK_EQ(info.cpu_count, 2);

    /* Only disabled processors: no usable table. */
    static const uint8_t off[] = { 0, 1, 0x14, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
    mp_memory(EBDA >> 4, 639);
    mp_floating(EBDA, EBDA + 16);
    mp_config(EBDA + 16, off, sizeof off, 1);
    CHECK(!mptable_init(&info));
}

TEST_MAIN()
