/*
 * PCI enumeration, capability walking, BAR decoding and resource
 * assignment over a simulated configuration space. BARs behave like
 * hardware: only their address bits above the size are writable, so writing
 * all ones reads back the size mask.
 */
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#define PCI_TEST_BACKEND
#include "check.h"
#include "../../arch/x86_64/pci.c"
#include "../../arch/x86_64/pci_assign.c"

#define FAKE_BUSES 4

struct fake_fn {
    bool present;
    uint8_t cfg[256];
    uint32_t bar_writable[6];   /* writable bits of each BAR dword */
    bool no_io_window;          /* a bridge whose I/O base/limit are read-only zero */
};

static struct fake_fn fake[FAKE_BUSES][32][8];
static unsigned bar_writes, cfg_writes;

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
    cfg_writes++;
    if (f->no_io_window && ((off >= PCI_IO_BASE && off <= PCI_IO_LIMIT) ||
                            (off >= PCI_IO_BASE_UPPER16 && off < PCI_IO_LIMIT_UPPER16 + 2)))
        return;
    /* A bridge has two BARs; its bus numbers and windows follow them. */
    unsigned nbars = (f->cfg[PCI_HEADER_TYPE] & PCI_HEADER_TYPE_MASK) == PCI_HEADER_TYPE_BRIDGE ? 2 : 6;
    if (off >= PCI_BASE_ADDRESS_0 && off < PCI_BASE_ADDRESS_0 + 4 * nbars) {
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

/* The console: klog lines are kept, one per line, for the tests to look at. */
static char log_text[8192];
static size_t log_len;

void klog(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(log_text + log_len, sizeof log_text - log_len, fmt, ap);
    va_end(ap);
    if (n > 0 && log_len + (size_t)n + 1 < sizeof log_text) {
        log_len += (size_t)n;
        log_text[log_len++] = '\n';
        log_text[log_len] = 0;
    }
}

static bool logged(const char *s) { return strstr(log_text, s) != 0; }

/* ---- building functions ---- */

static void fake_reset(void)
{
    memset(fake, 0, sizeof fake);
    log_len = 0;
    log_text[0] = 0;
}

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

/* ---- resource assignment ---- */

static const struct pci_window test_mem = { 0xC0000000, 0x10000000 };
static const struct pci_window test_io = { 0xC000, 0x4000 };

/* A function as reset leaves it (and qboot keeps it): decoding off. */
static struct fake_fn *add_bare_fn(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t header_type)
{
    struct fake_fn *f = add_fn(bus, dev, fn, 0x1AF4, header_type);
    f->cfg[PCI_COMMAND] = 0;
    return f;
}

static struct fake_fn *add_bridge(uint8_t bus, uint8_t dev, uint8_t secondary)
{
    struct fake_fn *f = add_bare_fn(bus, dev, 0, PCI_HEADER_TYPE_BRIDGE);
    f->cfg[PCI_PRIMARY_BUS] = bus;
    f->cfg[PCI_SECONDARY_BUS] = secondary;
    f->cfg[PCI_SUBORDINATE_BUS] = secondary;
    return f;
}

static uint16_t command_of(struct fake_fn *f) { return (uint16_t)(f->cfg[PCI_COMMAND] | f->cfg[PCI_COMMAND + 1] << 8); }
static uint16_t get16(struct fake_fn *f, unsigned off) { return (uint16_t)(f->cfg[off] | f->cfg[off + 1] << 8); }

/* Address of BAR i as the fake holds it (64-bit when the type bits say so). */
static uint64_t bar_base(struct fake_fn *f, unsigned i)
{
    uint32_t lo = get32(f, PCI_BASE_ADDRESS_0 + 4 * i);
    if (lo & PCI_BASE_ADDRESS_SPACE_IO)
        return lo & ~3u;
    uint64_t base = lo & ~0xFu;
    if ((lo & PCI_BASE_ADDRESS_MEM_TYPE_MASK) == PCI_BASE_ADDRESS_MEM_TYPE_64)
        base |= (uint64_t)get32(f, PCI_BASE_ADDRESS_0 + 4 * i + 4) << 32;
    return base;
}

struct placed_bar {
    uint64_t base, size;
    bool io;
};

static bool inside(uint64_t base, uint64_t size, uint64_t wbase, uint64_t wsize)
{
    return base >= wbase && base + size <= wbase + wsize;
}

/* Checks a BAR got an aligned address in its window and records it. */
static void check_bar(struct placed_bar *out, unsigned *n, struct fake_fn *f, unsigned i, uint64_t size, bool io)
{
    uint64_t base = bar_base(f, i);
    const struct pci_window *w = io ? &test_io : &test_mem;
    CHECK(base != 0);
    CHECK_EQ(base % size, 0);
    CHECK(inside(base, size, w->base, w->size));
    out[(*n)++] = (struct placed_bar){ base, size, io };
}

static bool any_overlap(const struct placed_bar *b, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        for (unsigned j = i + 1; j < n; j++)
            if (b[i].io == b[j].io && b[i].base < b[j].base + b[j].size && b[j].base < b[i].base + b[i].size)
                return true;
    return false;
}

TEST(assign_gives_unassigned_bars_aligned_disjoint_addresses)
{
    fake_reset();
    struct fake_fn *a = add_bare_fn(0, 2, 0, 0);
    set_io_bar(a, 0, 0, 0x40);
    set_mem32_bar(a, 1, 0, 0x1000);
    set_mem64_bar(a, 4, 0, 0x4000, true);
    struct fake_fn *b = add_bare_fn(0, 3, 0, 0);
    set_mem32_bar(b, 0, 0, 0x100000);
    set_io_bar(b, 1, 0, 0x100);
    set_mem32_bar(b, 2, 0, 0x10);           /* below a page: gets a page of its own */
    pci_assign_resources(&test_mem, &test_io);

    struct placed_bar bars[8];
    unsigned n = 0;
    check_bar(bars, &n, a, 0, 0x40, true);
    check_bar(bars, &n, a, 1, 0x1000, false);
    check_bar(bars, &n, a, 4, 0x4000, false);
    check_bar(bars, &n, b, 0, 0x100000, false);
    check_bar(bars, &n, b, 1, 0x100, true);
    check_bar(bars, &n, b, 2, 0x1000, false);
    CHECK(!any_overlap(bars, n));
    /* Largest first: the 1 MiB BAR takes the bottom of the window. */
    CHECK_EQ(bar_base(b, 0), test_mem.base);
    CHECK_EQ(bar_base(b, 1), test_io.base);
    /* The 64-bit BAR sits in the 32-bit window: upper dword 0, type bits intact. */
    CHECK_EQ(get32(a, PCI_BASE_ADDRESS_4 + 4), 0);
    CHECK_EQ(get32(a, PCI_BASE_ADDRESS_4) & 0xF, PCI_BASE_ADDRESS_MEM_TYPE_64 | PCI_BASE_ADDRESS_MEM_PREFETCH);
    CHECK_EQ(get32(a, PCI_BASE_ADDRESS_0) & 3, PCI_BASE_ADDRESS_SPACE_IO);
    uint16_t on = PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    CHECK_EQ(command_of(a) & on, on);
    CHECK_EQ(command_of(b) & on, on);
    CHECK(logged("pci 00:02.0: assigned BAR0 io 0x"));
    CHECK(logged(", BAR4 mem64 0x"));
    CHECK(logged("pci 00:03.0: assigned BAR0 mem 0xc0000000 size 0x100000"));
    /* pci_read_bar sees the new addresses. */
    struct pci_bar rb;
    CHECK(pci_read_bar((struct pci_addr){ 0, 2, 0 }, 4, &rb));
    CHECK(rb.is64 && rb.size == 0x4000 && rb.base == bar_base(a, 4));
}

TEST(assign_only_turns_on_what_a_function_got)
{
    fake_reset();
    struct fake_fn *a = add_bare_fn(0, 2, 0, 0);
    set_mem32_bar(a, 1, 0, 0x1000);
    struct fake_fn *none = add_bare_fn(0, 4, 0, 0);    /* no BARs: left as it is */
    pci_assign_resources(&test_mem, &test_io);
    CHECK_EQ(command_of(a), PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    CHECK_EQ(command_of(none), 0);
    CHECK(!logged("00:04.0"));
}

TEST(assign_keeps_and_avoids_firmware_bars)
{
    fake_reset();
    /* Set up by firmware (decoding on): never changed. */
    struct fake_fn *fw = add_fn(0, 1, 0, 0x8086, 0);
    set_mem32_bar(fw, 0, 0xC0000000, 0x1000);
    set_io_bar(fw, 1, 0xC000, 0x40);
    /* Decoding off, but BARs with usable addresses: kept too. */
    struct fake_fn *half = add_bare_fn(0, 2, 0, 0);
    set_mem32_bar(half, 0, 0xC0002000, 0x2000);
    set_mem32_bar(half, 1, 0, 0x1000);
    struct fake_fn *fresh = add_bare_fn(0, 3, 0, 0);
    set_mem32_bar(fresh, 0, 0, 0x1000);
    set_mem32_bar(fresh, 1, 0, 0x2000);
    set_io_bar(fresh, 2, 0, 0x40);
    uint8_t fw_before[256];
    memcpy(fw_before, fw->cfg, sizeof fw_before);
    pci_assign_resources(&test_mem, &test_io);

    CHECK(memcmp(fw_before, fw->cfg, sizeof fw_before) == 0);
    CHECK_EQ(bar_base(half, 0), 0xC0002000);
    struct placed_bar bars[8] = {
        { 0xC0000000, 0x1000, false }, { 0xC000, 0x40, true }, { 0xC0002000, 0x2000, false },
    };
    unsigned n = 3;
    check_bar(bars, &n, half, 1, 0x1000, false);
    check_bar(bars, &n, fresh, 0, 0x1000, false);
    check_bar(bars, &n, fresh, 1, 0x2000, false);
    check_bar(bars, &n, fresh, 2, 0x40, true);
    CHECK(!any_overlap(bars, n));
    /* The holes the firmware left are used: the first 8 KiB-aligned free slot is 0xC0004000. */
    CHECK_EQ(bar_base(fresh, 1), 0xC0004000);
    CHECK_EQ(bar_base(half, 1), 0xC0001000);
    CHECK(!logged("00:01.0"));
    CHECK(logged("pci 00:02.0: assigned BAR1 mem 0xc0001000 size 0x1000\n"));
}

TEST(assign_writes_nothing_when_firmware_set_everything_up)
{
    fake_reset();
    struct fake_fn *a = add_fn(0, 2, 0, 0x1AF4, 0);    /* decoding on, as SeaBIOS leaves it */
    set_mem32_bar(a, 1, 0xFEBF1000, 0x1000);
    set_mem64_bar(a, 4, 0xFE000000, 0x4000, true);
    struct fake_fn *br = add_fn(0, 3, 0, 0x1B36, PCI_HEADER_TYPE_BRIDGE);
    br->cfg[PCI_SECONDARY_BUS] = 1;
    struct fake_fn *b = add_fn(1, 0, 0, 0x1AF4, 0);
    set_mem32_bar(b, 0, 0, 0x1000);                     /* even a BAR at 0: its decoding is on */
    cfg_writes = 0;
    pci_assign_resources(&test_mem, &test_io);
    CHECK_EQ(cfg_writes, 0);
    CHECK_EQ(log_len, 0);
}

TEST(assign_reassigns_an_all_ones_bar)
{
    fake_reset();
    struct fake_fn *a = add_bare_fn(0, 2, 0, 0);
    set_mem32_bar(a, 0, 0xFFFFF000, 0x1000);           /* a sizing write nobody undid */
    set_mem64_bar(a, 2, 0xFFFFFFFFFFFFC000ULL, 0x4000, false);
    set_io_bar(a, 4, 0xFFC0, 0x40);
    pci_assign_resources(&test_mem, &test_io);
    CHECK(inside(bar_base(a, 0), 0x1000, test_mem.base, test_mem.size));
    CHECK(inside(bar_base(a, 2), 0x4000, test_mem.base, test_mem.size));
    CHECK(inside(bar_base(a, 4), 0x40, test_io.base, test_io.size));
}

TEST(assign_leaves_what_does_not_fit)
{
    fake_reset();
    struct pci_window small = { 0xC0000000, 0x1000000 };      /* 16 MiB */
    struct fake_fn *big = add_bare_fn(0, 2, 0, 0);
    set_mem64_bar(big, 0, 0, 0x10000000, true);               /* 256 MiB */
    set_mem32_bar(big, 2, 0, 0x1000);
    struct fake_fn *ok = add_bare_fn(0, 3, 0, 0);
    set_mem32_bar(ok, 0, 0, 0x800000);
    set_mem32_bar(ok, 1, 0, 0x1000);
    set_io_bar(ok, 2, 0, 0x20);
    pci_assign_resources(&small, 0);                          /* and no I/O window at all */
    CHECK_EQ(bar_base(big, 0), 0);
    CHECK(inside(bar_base(big, 2), 0x1000, small.base, small.size));
    CHECK_EQ(bar_base(ok, 0), 0xC0000000);
    CHECK(inside(bar_base(ok, 1), 0x1000, small.base, small.size));
    CHECK(bar_base(ok, 1) != bar_base(big, 2));
    CHECK_EQ(bar_base(ok, 2), 0);
    CHECK(logged("pci 00:02.0: BAR0 mem64 size 0x10000000 does not fit in 0xc0000000-0xc0ffffff, left unassigned"));
    CHECK(logged("pci 00:03.0: BAR2 io size 0x20 does not fit"));
    CHECK(logged("pci 00:02.0: assigned BAR2 mem 0x"));
    /* A BAR without an address must not decode: memory stays off for `big`, I/O for `ok`. */
    CHECK_EQ(command_of(big), 0);
    CHECK_EQ(command_of(ok), PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

/* The bridge's window registers, as ranges. */
static uint64_t mem_base_of(struct fake_fn *br)
{
    return (uint64_t)(get16(br, PCI_MEMORY_BASE) & 0xFFF0) << 16;
}

static uint64_t mem_end_of(struct fake_fn *br)
{
    return ((uint64_t)(get16(br, PCI_MEMORY_LIMIT) & 0xFFF0) << 16) + 0x100000;
}

static uint64_t io_base_of(struct fake_fn *br)
{
    return (uint64_t)(br->cfg[PCI_IO_BASE] & 0xF0) << 8 | (uint64_t)get16(br, PCI_IO_BASE_UPPER16) << 16;
}

static uint64_t io_end_of(struct fake_fn *br)
{
    return ((uint64_t)(br->cfg[PCI_IO_LIMIT] & 0xF0) << 8 | (uint64_t)get16(br, PCI_IO_LIMIT_UPPER16) << 16) + 0x1000;
}

static bool pref_closed(struct fake_fn *br)
{
    return (get16(br, PCI_PREF_MEMORY_BASE) & 0xFFF0) > (get16(br, PCI_PREF_MEMORY_LIMIT) & 0xFFF0);
}

TEST(assign_programs_bridge_windows_over_what_is_behind)
{
    fake_reset();
    struct fake_fn *d0 = add_bare_fn(0, 2, 0, 0);
    set_mem32_bar(d0, 0, 0, 0x1000);
    set_io_bar(d0, 1, 0, 0x40);
    struct fake_fn *br = add_bridge(0, 3, 1);
    struct fake_fn *d1 = add_bare_fn(1, 0, 0, 0);
    set_mem64_bar(d1, 0, 0, 0x4000, true);
    set_mem32_bar(d1, 2, 0, 0x1000);
    set_io_bar(d1, 3, 0, 0x40);
    struct fake_fn *d2 = add_bare_fn(1, 1, 0, 0);
    set_mem32_bar(d2, 0, 0, 0x200000);
    pci_assign_resources(&test_mem, &test_io);

    uint64_t mb = mem_base_of(br), me = mem_end_of(br), ib = io_base_of(br), ie = io_end_of(br);
    CHECK(mb != 0 && me > mb);
    CHECK_EQ(mb % 0x200000, 0);                 /* as aligned as its largest BAR */
    CHECK(inside(mb, me - mb, test_mem.base, test_mem.size));
    CHECK(inside(bar_base(d1, 0), 0x4000, mb, me - mb));
    CHECK(inside(bar_base(d1, 2), 0x1000, mb, me - mb));
    CHECK(inside(bar_base(d2, 0), 0x200000, mb, me - mb));
    CHECK_EQ(me - mb, 0x300000);
    CHECK(!inside(bar_base(d0, 0), 0x1000, mb, me - mb) && bar_base(d0, 0) != 0);
    CHECK(ib != 0 && inside(ib, ie - ib, test_io.base, test_io.size));
    CHECK_EQ(ie - ib, 0x1000);
    CHECK(inside(bar_base(d1, 3), 0x40, ib, ie - ib));
    CHECK(!inside(bar_base(d0, 1), 0x40, ib, ie - ib) && bar_base(d0, 1) != 0);
    CHECK(pref_closed(br));
    uint16_t on = PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
    CHECK_EQ(command_of(br) & on, on);
    CHECK_EQ(command_of(d1) & on, on);
    CHECK_EQ(command_of(d2) & on, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    CHECK(logged("pci 00:03.0: assigned window mem 0x"));
    CHECK(logged(", window io 0x"));
    CHECK(logged("pci 01:00.0: assigned"));
}

TEST(assign_nested_bridges_and_an_empty_one)
{
    fake_reset();
    struct fake_fn *outer = add_bridge(0, 3, 1);
    struct fake_fn *inner = add_bridge(1, 0, 2);
    struct fake_fn *d = add_bare_fn(2, 5, 0, 0);
    set_mem32_bar(d, 0, 0, 0x1000);
    struct fake_fn *empty = add_bridge(0, 4, 3);  /* nothing behind: its reset windows get closed */
    pci_assign_resources(&test_mem, &test_io);
    uint64_t ob = mem_base_of(outer), oe = mem_end_of(outer), ib = mem_base_of(inner), ie = mem_end_of(inner);
    CHECK(inside(bar_base(d, 0), 0x1000, ib, ie - ib));
    CHECK(inside(ib, ie - ib, ob, oe - ob));
    CHECK_EQ(oe - ob, 0x100000);
    CHECK(inside(ob, oe - ob, test_mem.base, test_mem.size));
    /* No I/O behind: the windows are closed, not left open at 0. */
    CHECK((outer->cfg[PCI_IO_BASE] & 0xF0) > (outer->cfg[PCI_IO_LIMIT] & 0xF0));
    CHECK((empty->cfg[PCI_IO_BASE] & 0xF0) > (empty->cfg[PCI_IO_LIMIT] & 0xF0));
    CHECK((get16(empty, PCI_MEMORY_BASE) & 0xFFF0) > (get16(empty, PCI_MEMORY_LIMIT) & 0xFFF0));
    CHECK(pref_closed(empty));
    CHECK_EQ(command_of(empty), 0);
    CHECK_EQ(command_of(outer), PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    CHECK(!logged("00:04.0"));
}

TEST(assign_inside_a_window_the_firmware_opened)
{
    fake_reset();
    struct fake_fn *br = add_fn(0, 3, 0, 0x1B36, PCI_HEADER_TYPE_BRIDGE);
    br->cfg[PCI_SECONDARY_BUS] = 1;
    br->cfg[PCI_MEMORY_BASE + 1] = 0xC0;                /* [0xC0000000, 0xC01FFFFF] */
    br->cfg[PCI_MEMORY_LIMIT] = 0x10;
    br->cfg[PCI_MEMORY_LIMIT + 1] = 0xC0;
    struct fake_fn *fw = add_fn(1, 0, 0, 0x1AF4, 0);
    set_mem32_bar(fw, 0, 0xC0000000, 0x1000);
    struct fake_fn *late = add_bare_fn(1, 1, 0, 0);
    set_mem32_bar(late, 0, 0, 0x1000);
    set_mem32_bar(late, 1, 0xD0000000, 0x1000);         /* outside the bridge window: unreachable */
    struct fake_fn *top = add_bare_fn(0, 4, 0, 0);
    set_mem32_bar(top, 0, 0, 0x1000);
    pci_assign_resources(&test_mem, &test_io);
    CHECK_EQ(mem_base_of(br), 0xC0000000);
    CHECK_EQ(mem_end_of(br), 0xC0200000);
    CHECK_EQ(bar_base(late, 0), 0xC0001000);
    CHECK(inside(bar_base(late, 1), 0x1000, 0xC0000000, 0x200000));
    CHECK(bar_base(late, 1) != bar_base(late, 0) && bar_base(late, 1) != 0xC0000000);
    CHECK_EQ(bar_base(top, 0), 0xC0200000);             /* around the bridge window */
}

TEST(assign_bridge_window_that_does_not_fit)
{
    fake_reset();
    struct pci_window small = { 0xC0000000, 0x400000 };       /* 4 MiB */
    struct fake_fn *br = add_bridge(0, 3, 1);
    struct fake_fn *behind = add_bare_fn(1, 0, 0, 0);
    set_mem32_bar(behind, 0, 0, 0x800000);                    /* 8 MiB: the window cannot hold it */
    set_io_bar(behind, 1, 0, 0x40);
    struct fake_fn *top = add_bare_fn(0, 4, 0, 0);
    set_mem32_bar(top, 0, 0, 0x1000);
    pci_assign_resources(&small, &test_io);
    CHECK(logged("pci 00:03.0: bridge mem window of size 0x800000 does not fit in 0xc0000000-0xc03fffff, "
                 "devices behind it get no mem"));
    CHECK_EQ(bar_base(behind, 0), 0);
    CHECK(inside(bar_base(behind, 1), 0x40, io_base_of(br), io_end_of(br) - io_base_of(br)));
    CHECK_EQ(bar_base(top, 0), 0xC0000000);
    /* The bridge forwards I/O only, its memory window is closed; the device decodes I/O only. */
    CHECK((get16(br, PCI_MEMORY_BASE) & 0xFFF0) > (get16(br, PCI_MEMORY_LIMIT) & 0xFFF0));
    CHECK_EQ(command_of(br), PCI_COMMAND_IO | PCI_COMMAND_MASTER);
    CHECK_EQ(command_of(behind), PCI_COMMAND_IO | PCI_COMMAND_MASTER);
    CHECK(!logged("pci 01:00.0: BAR0"));                    /* said once, for the bridge */
}

TEST(assign_bridge_without_io_window)
{
    fake_reset();
    struct fake_fn *br = add_bridge(0, 3, 1);
    br->no_io_window = true;
    struct fake_fn *behind = add_bare_fn(1, 0, 0, 0);
    set_mem32_bar(behind, 0, 0, 0x1000);
    set_io_bar(behind, 1, 0, 0x40);
    pci_assign_resources(&test_mem, &test_io);
    CHECK(logged("pci 00:03.0: bridge has no I/O window: I/O BARs behind it left unassigned"));
    CHECK_EQ(bar_base(behind, 1), 0);
    CHECK(inside(bar_base(behind, 0), 0x1000, mem_base_of(br), mem_end_of(br) - mem_base_of(br)));
    CHECK_EQ(command_of(br), PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    CHECK_EQ(command_of(behind), PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);   /* no I/O: its BAR has no address */
}

/* ---- the default windows ---- */

TEST(default_mem_window_is_the_largest_gap_above_ram)
{
    struct ram_range pc[] = { { 0, 0x9FC00 }, { 0x100000, 0x1FEE0000 }, { 0x100000000ULL, 0x40000000 } };
    struct pci_window w = pci_default_mem_window(pc, 3, 0);
    CHECK_EQ(w.base, 0x21000000);                       /* 16 MiB past RAM: room for ACPI tables */
    CHECK_EQ(w.base + w.size, 0xFEC00000);

    struct acpi_info q35 = { .have_mcfg = true, .mcfg_base = 0xB0000000, .mcfg_bus_start = 0, .mcfg_bus_end = 255 };
    w = pci_default_mem_window(pc, 3, &q35);
    CHECK_EQ(w.base, 0x21000000);
    CHECK_EQ(w.base + w.size, 0xB0000000);

    struct ram_range big[] = { { 0x100000, 0x7FF00000 }, { 0x100000000ULL, 0x80000000 } };
    w = pci_default_mem_window(big, 2, &q35);
    CHECK_EQ(w.base, 0xC0000000);
    CHECK_EQ(w.base + w.size, 0xFEC00000);

    /* Only the buses MCFG names are decoded, from bus 0's address on. */
    struct acpi_info few = { .have_mcfg = true, .mcfg_base = 0xF0000000, .mcfg_bus_start = 0, .mcfg_bus_end = 15 };
    w = pci_default_mem_window(big, 2, &few);
    CHECK_EQ(w.base, 0x81000000);
    CHECK_EQ(w.base + w.size, 0xF0000000);
}

TEST(default_mem_window_without_a_memory_map)
{
    struct pci_window w = pci_default_mem_window(0, 0, 0);
    CHECK_EQ(w.base, 0xC0000000);
    CHECK_EQ(w.size, 0xFEC00000 - 0xC0000000);
    struct acpi_info ecam = { .have_mcfg = true, .mcfg_base = 0xE0000000, .mcfg_bus_start = 0, .mcfg_bus_end = 255 };
    w = pci_default_mem_window(0, 0, &ecam);
    CHECK_EQ(w.base, 0xC0000000);
    CHECK_EQ(w.size, 0x20000000);
    /* RAM up to the IOAPIC leaves nothing. */
    struct ram_range full[] = { { 0x100000, 0xFEB00000 } };
    w = pci_default_mem_window(full, 1, 0);
    CHECK_EQ(w.size, 0);
    struct pci_window io = pci_default_io_window();
    CHECK_EQ(io.base, 0xC000);
    CHECK_EQ(io.base + io.size, 0x10000);
}

TEST_MAIN()
