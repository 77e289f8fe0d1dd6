/*
 * PCI enumeration, capability walking and BAR decoding over a simulated
 * configuration space. BARs behave like hardware: only their address bits
 * above the size are writable, so writing all ones reads back the size mask.
 */
#include <stdint.h>
#include <string.h>

#define PCI_TEST_BACKEND
#include "check.h"
#include "../../arch/x86_64/pci.c"

#define FAKE_BUSES 4

struct fake_fn {
    bool present;
    uint8_t cfg[256];
    uint32_t bar_writable[6];   /* writable bits of each BAR dword */
};

static struct fake_fn fake[FAKE_BUSES][32][8];
static unsigned bar_writes;

static struct fake_fn *fake_at(struct pci_addr a)
{
    if (a.bus >= FAKE_BUSES || a.dev >= 32 || a.fn >= 8 || !fake[a.bus][a.dev][a.fn].present)
        return 0;
    return &fake[a.bus][a.dev][a.fn];
}

static uint32_t cfg_read(struct pci_addr a, unsigned off, unsigned width)
{
    struct fake_fn *f = fake_at(a);
    if (!f || off + width > 256)
        return 0xFFFFFFFFu;
    uint32_t v = 0;
    for (unsigned i = 0; i < width; i++)
        v |= (uint32_t)f->cfg[off + i] << (8 * i);
    return v;
}

static uint32_t get32(struct fake_fn *f, unsigned off)
{
    return (uint32_t)f->cfg[off] | (uint32_t)f->cfg[off + 1] << 8 | (uint32_t)f->cfg[off + 2] << 16 |
           (uint32_t)f->cfg[off + 3] << 24;
}

static void put32(struct fake_fn *f, unsigned off, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        f->cfg[off + i] = (uint8_t)(v >> (8 * i));
}

static void cfg_write(struct pci_addr a, unsigned off, uint32_t v, unsigned width)
{
    struct fake_fn *f = fake_at(a);
    if (!f || off + width > 256)
        return;
    if (off >= PCI_BASE_ADDRESS_0 && off < PCI_BASE_ADDRESS_0 + 24) {
        CHECK_EQ(width, 4);
        CHECK_EQ(f->cfg[PCI_COMMAND] & (PCI_COMMAND_IO | PCI_COMMAND_MEMORY), 0); /* decoding off while sizing */
        unsigned i = (off - PCI_BASE_ADDRESS_0) / 4;
        put32(f, off, (get32(f, off) & ~f->bar_writable[i]) | (v & f->bar_writable[i]));
        bar_writes++;
        return;
    }
    for (unsigned i = 0; i < width; i++)
        f->cfg[off + i] = (uint8_t)(v >> (8 * i));
}

static uint64_t mapped_phys, mapped_size;
void paging_map_mmio(uint64_t phys, uint64_t size)
{
    mapped_phys = phys;
    mapped_size = size;
}

/* ---- building functions ---- */

static void fake_reset(void) { memset(fake, 0, sizeof fake); }

static struct fake_fn *add_fn(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t vendor, uint8_t header_type)
{
    struct fake_fn *f = &fake[bus][dev][fn];
    f->present = true;
    f->cfg[PCI_VENDOR_ID] = (uint8_t)vendor;
    f->cfg[PCI_VENDOR_ID + 1] = (uint8_t)(vendor >> 8);
    f->cfg[PCI_HEADER_TYPE] = header_type;
    f->cfg[PCI_COMMAND] = PCI_COMMAND_IO | PCI_COMMAND_MEMORY;
    return f;
}

static void add_cap(struct fake_fn *f, uint8_t at, uint8_t id, uint8_t next)
{
    f->cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
    if (!f->cfg[PCI_CAPABILITY_LIST])
        f->cfg[PCI_CAPABILITY_LIST] = at;
    f->cfg[at] = id;
    f->cfg[at + 1] = next;
}

static void set_io_bar(struct fake_fn *f, unsigned i, uint32_t base, uint32_t size)
{
    put32(f, PCI_BASE_ADDRESS_0 + 4 * i, base | PCI_BASE_ADDRESS_SPACE_IO);
    f->bar_writable[i] = ~(size - 1) & 0xFFFCu; /* 16-bit decoder: the upper half reads as zero */
}

static void set_mem32_bar(struct fake_fn *f, unsigned i, uint32_t base, uint32_t size)
{
    put32(f, PCI_BASE_ADDRESS_0 + 4 * i, base);
    f->bar_writable[i] = ~(size - 1) & ~0xFu;
}

static void set_mem64_bar(struct fake_fn *f, unsigned i, uint64_t base, uint64_t size, bool prefetch)
{
    uint32_t flags = PCI_BASE_ADDRESS_MEM_TYPE_64 | (prefetch ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
    put32(f, PCI_BASE_ADDRESS_0 + 4 * i, (uint32_t)base | flags);
    put32(f, PCI_BASE_ADDRESS_0 + 4 * i + 4, (uint32_t)(base >> 32));
    uint64_t mask = ~(size - 1);
    f->bar_writable[i] = (uint32_t)mask & ~0xFu;
    f->bar_writable[i + 1] = (uint32_t)(mask >> 32);
}

/* ---- capabilities ---- */

TEST(caps_found_in_list_order)
{
    fake_reset();
    struct fake_fn *f = add_fn(0, 3, 0, 0x1AF4, 0);
    add_cap(f, 0x98, PCI_CAP_ID_MSIX, 0x84);
    add_cap(f, 0x84, PCI_CAP_ID_VNDR, 0x70);
    add_cap(f, 0x70, PCI_CAP_ID_VNDR, 0x40 | 3); /* low two bits are reserved: ignored */
    add_cap(f, 0x40, PCI_CAP_ID_VNDR, 0);
    struct pci_addr a = { 0, 3, 0 };
    CHECK_EQ(pci_find_cap(a, PCI_CAP_ID_MSIX, 0), 0x98);
    unsigned c = pci_find_cap(a, PCI_CAP_ID_VNDR, 0);
    CHECK_EQ(c, 0x84);
    c = pci_find_cap(a, PCI_CAP_ID_VNDR, c);
    CHECK_EQ(c, 0x70);
    c = pci_find_cap(a, PCI_CAP_ID_VNDR, c);
    CHECK_EQ(c, 0x40);
    CHECK_EQ(pci_find_cap(a, PCI_CAP_ID_VNDR, c), 0);
    CHECK_EQ(pci_find_cap(a, PCI_CAP_ID_MSI, 0), 0);
}

TEST(caps_absent_without_status_bit)
{
    fake_reset();
    struct fake_fn *f = add_fn(0, 3, 0, 0x1AF4, 0);
    add_cap(f, 0x40, PCI_CAP_ID_MSIX, 0);
    f->cfg[PCI_STATUS] &= (uint8_t)~PCI_STATUS_CAP_LIST;
    CHECK_EQ(pci_find_cap((struct pci_addr){ 0, 3, 0 }, PCI_CAP_ID_MSIX, 0), 0);
}

TEST(caps_loop_and_bad_pointers_end_the_walk)
{
    fake_reset();
    struct fake_fn *f = add_fn(0, 3, 0, 0x1AF4, 0);
    add_cap(f, 0x40, PCI_CAP_ID_VNDR, 0x50);
    add_cap(f, 0x50, PCI_CAP_ID_VNDR, 0x40);
    struct pci_addr a = { 0, 3, 0 };
    CHECK_EQ(pci_find_cap(a, PCI_CAP_ID_MSIX, 0), 0);
    /* A pointer into the standard header ends the list. */
    f->cfg[0x51] = 0x10;
    CHECK_EQ(pci_find_cap(a, PCI_CAP_ID_MSIX, 0), 0);
    /* An absent function has no list. */
    CHECK_EQ(pci_find_cap((struct pci_addr){ 0, 4, 0 }, PCI_CAP_ID_VNDR, 0), 0);
}

/* ---- BARs ---- */

TEST(bars_decoded_and_sized)
{
    fake_reset();
    struct fake_fn *f = add_fn(0, 4, 0, 0x1AF4, 0);
    set_io_bar(f, 0, 0xC040, 0x40);
    set_mem32_bar(f, 1, 0xFEBF1000, 0x1000);
    set_mem64_bar(f, 2, 0x200004000ULL, 0x4000, true);
    /* BAR 4 unimplemented: reads 0, nothing writable. */
    set_mem32_bar(f, 5, 0xFE000000, 0x1000000);
    uint8_t before[256];
    memcpy(before, f->cfg, sizeof before);
    struct pci_addr a = { 0, 4, 0 };
    struct pci_bar b;

    CHECK(pci_read_bar(a, 0, &b));
    CHECK(b.io);
    CHECK_EQ(b.base, 0xC040);
    CHECK_EQ(b.size, 0x40);

    CHECK(pci_read_bar(a, 1, &b));
    CHECK(!b.io && !b.is64 && !b.prefetchable);
    CHECK_EQ(b.base, 0xFEBF1000);
    CHECK_EQ(b.size, 0x1000);

    CHECK(pci_read_bar(a, 2, &b));
    CHECK(!b.io && b.is64 && b.prefetchable);
    CHECK_EQ(b.base, 0x200004000ULL);
    CHECK_EQ(b.size, 0x4000);

    CHECK(!pci_read_bar(a, 3, &b)); /* upper half of BAR 2 */

    CHECK(pci_read_bar(a, 4, &b));
    CHECK_EQ(b.size, 0);

    CHECK(pci_read_bar(a, 5, &b));
    CHECK_EQ(b.base, 0xFE000000);
    CHECK_EQ(b.size, 0x1000000);

    CHECK(!pci_read_bar(a, 6, &b));
    CHECK(bar_writes > 0);
    /* Sizing leaves the BARs and the command register as they were. */
    CHECK(memcmp(before, f->cfg, sizeof before) == 0);
}

TEST(bar_upper_half_that_looks_like_a_64bit_bar)
{
    fake_reset();
    struct fake_fn *f = add_fn(0, 4, 0, 0x1AF4, 0);
    /* The upper dword of BAR 0 reads 4: type bits "64-bit" if taken for a BAR. */
    set_mem64_bar(f, 0, 0x400000000ULL, 0x1000, false);
    set_mem32_bar(f, 2, 0xFEB00000, 0x1000);
    struct pci_addr a = { 0, 4, 0 };
    struct pci_bar b;
    CHECK(!pci_read_bar(a, 1, &b));
    CHECK(pci_read_bar(a, 2, &b));
    CHECK(!b.is64);
    CHECK_EQ(b.base, 0xFEB00000);
    CHECK_EQ(b.size, 0x1000);
}

TEST(bar_of_several_gib)
{
    fake_reset();
    struct fake_fn *f = add_fn(0, 4, 0, 0x1AF4, 0);
    set_mem64_bar(f, 0, 0x800000000ULL, 8ULL << 30, true);
    struct pci_bar b;
    CHECK(pci_read_bar((struct pci_addr){ 0, 4, 0 }, 0, &b));
    CHECK_EQ(b.base, 0x800000000ULL);
    CHECK_EQ(b.size, 8ULL << 30);
}

TEST(bridge_has_two_bars)
{
    fake_reset();
    struct fake_fn *f = add_fn(0, 5, 0, 0x8086, PCI_HEADER_TYPE_BRIDGE);
    set_mem32_bar(f, 1, 0xFEA00000, 0x1000);
    struct pci_bar b;
    CHECK(pci_read_bar((struct pci_addr){ 0, 5, 0 }, 1, &b));
    CHECK_EQ(b.size, 0x1000);
    CHECK(!pci_read_bar((struct pci_addr){ 0, 5, 0 }, 2, &b));
}

TEST(map_bar_bounds)
{
    struct pci_bar io = { .base = 0xC000, .size = 0x40, .io = true };
    struct pci_bar none = { .base = 0, .size = 0x1000 };
    struct pci_bar high = { .base = 0x200000000ULL, .size = 0x4000, .is64 = true };
    struct pci_bar far = { .base = 1ULL << 47, .size = 0x4000, .is64 = true };
    CHECK(pci_map_bar(&io, 0, 4) == 0);
    CHECK(pci_map_bar(&none, 0, 4) == 0);
    CHECK(pci_map_bar(&far, 0, 4) == 0);
    CHECK(pci_map_bar(&high, 0x3000, 0x1001) == 0);
    CHECK(pci_map_bar(&high, 0x5000, 0) == 0);
    CHECK(pci_map_bar(&high, 0x3000, 0x1000) == (volatile void *)(uintptr_t)0x200003000ULL);
    CHECK_EQ(mapped_phys, 0x200003000ULL);
    CHECK_EQ(mapped_size, 0x1000);
    CHECK(pci_map_bar(&high, 0x1ffc, 8) == (volatile void *)(uintptr_t)0x200001ffcULL);
    CHECK_EQ(mapped_phys, 0x200001000ULL);
    CHECK_EQ(mapped_size, 0x2000);
}

/* ---- enumeration ---- */

static struct pci_addr seen[64];
static unsigned nseen;

static void record(struct pci_addr a, void *arg)
{
    (void)arg;
    if (nseen < 64)
        seen[nseen++] = a;
}

static bool was_seen(uint8_t bus, uint8_t dev, uint8_t fn)
{
    for (unsigned i = 0; i < nseen; i++)
        if (seen[i].bus == bus && seen[i].dev == dev && seen[i].fn == fn)
            return true;
    return false;
}

TEST(scan_follows_bridges_and_multifunction_devices)
{
    fake_reset();
    nseen = 0;
    add_fn(0, 0, 0, 0x8086, 0);
    add_fn(0, 1, 0, 0x8086, 0x80);              /* multi-function */
    add_fn(0, 1, 3, 0x8086, 0);
    add_fn(0, 2, 0, 0x1AF4, 0);                 /* single-function: its fn 1 is an alias */
    add_fn(0, 2, 1, 0x1AF4, 0);
    struct fake_fn *br = add_fn(0, 3, 0, 0x1B36, PCI_HEADER_TYPE_BRIDGE);
    br->cfg[PCI_SECONDARY_BUS] = 2;
    add_fn(2, 0, 0, 0x1AF4, 0);
    struct fake_fn *loop = add_fn(2, 1, 0, 0x1B36, PCI_HEADER_TYPE_BRIDGE);
    loop->cfg[PCI_SECONDARY_BUS] = 0;            /* misconfigured: must not rescan */
    struct fake_fn *back = add_fn(2, 2, 0, 0x1B36, PCI_HEADER_TYPE_BRIDGE);
    back->cfg[PCI_SECONDARY_BUS] = 2;            /* points at its own bus */
    add_fn(1, 0, 0, 0x1AF4, 0);                 /* behind no bridge: not reached */
    pci_scan(record, 0);
    CHECK_EQ(nseen, 8);
    CHECK(was_seen(0, 0, 0));
    CHECK(was_seen(0, 1, 0));
    CHECK(was_seen(0, 1, 3));
    CHECK(was_seen(0, 2, 0));
    CHECK(!was_seen(0, 2, 1));
    CHECK(was_seen(0, 3, 0));
    CHECK(was_seen(2, 0, 0));
    CHECK(was_seen(2, 1, 0));
    CHECK(was_seen(2, 2, 0));
    CHECK(!was_seen(1, 0, 0));
}

TEST(scan_treats_zero_vendor_as_absent)
{
    fake_reset();
    nseen = 0;
    add_fn(0, 0, 0, 0x0000, 0);
    add_fn(0, 7, 0, 0x1AF4, 0);
    pci_scan(record, 0);
    CHECK_EQ(nseen, 1);
    CHECK(was_seen(0, 7, 0));
}

TEST_MAIN()
