/*
 * PCI configuration space: enumeration, capability lists and BARs over one
 * raw accessor, cfg_read/cfg_write. The hardware accessor (ECAM or port
 * CAM) is chosen once at boot; the host unit tests define PCI_TEST_BACKEND
 * and supply their own accessor over a simulated configuration space.
 */
#include <linux/pci_regs.h>
#include "pci.h"
#include "acpi.h"
#include "paging.h"

/* 256 bytes of header, 64 of them before the first capability, 4 per capability at least. */
#define PCI_MAX_CAPS 48

static uint32_t cfg_read(struct pci_addr a, unsigned off, unsigned width);
static void cfg_write(struct pci_addr a, unsigned off, uint32_t v, unsigned width);

#ifndef PCI_TEST_BACKEND
#include "cpu.h"

#define CAM_ADDRESS 0xCF8
#define CAM_DATA    0xCFC

/* Set once by pci_init() on the BSP, read-only afterwards. */
static bool initialized;
static uint64_t ecam_base;
static uint8_t ecam_bus_start, ecam_bus_end;
static bool use_ecam;

static uint32_t cam_select(struct pci_addr a, unsigned off)
{
    return 0x80000000u | (uint32_t)a.bus << 16 | (uint32_t)(a.dev & 31) << 11 | (uint32_t)(a.fn & 7) << 8 |
           (off & 0xFC);
}

static uint32_t cam_read(struct pci_addr a, unsigned off, unsigned width)
{
    if (off >= 256)
        return 0xFFFFFFFFu;
    outl(CAM_ADDRESS, cam_select(a, off));
    switch (width) {
    case 1: return inb((uint16_t)(CAM_DATA + (off & 3)));
    case 2: return inw((uint16_t)(CAM_DATA + (off & 2)));
    default: return inl(CAM_DATA);
    }
}

static void cam_write(struct pci_addr a, unsigned off, uint32_t v, unsigned width)
{
    if (off >= 256)
        return;
    outl(CAM_ADDRESS, cam_select(a, off));
    switch (width) {
    case 1: outb((uint16_t)(CAM_DATA + (off & 3)), (uint8_t)v); break;
    case 2: outw((uint16_t)(CAM_DATA + (off & 2)), (uint16_t)v); break;
    default: outl(CAM_DATA, v); break;
    }
}

/* MCFG's base address is that of bus 0, even when its range starts later. */
static volatile uint8_t *ecam_ptr(struct pci_addr a, unsigned off)
{
    if (a.bus < ecam_bus_start || a.bus > ecam_bus_end || off >= 4096)
        return 0;
    uint64_t pa = ecam_base + ((uint64_t)a.bus << 20 | (uint64_t)(a.dev & 31) << 15 | (uint64_t)(a.fn & 7) << 12 | off);
    return (volatile uint8_t *)(uintptr_t)pa;
}

static uint32_t ecam_read(struct pci_addr a, unsigned off, unsigned width)
{
    volatile uint8_t *p = ecam_ptr(a, off);
    if (!p)
        return 0xFFFFFFFFu;
    switch (width) {
    case 1: return *p;
    case 2: return *(volatile uint16_t *)p;
    default: return *(volatile uint32_t *)p;
    }
}

static void ecam_write(struct pci_addr a, unsigned off, uint32_t v, unsigned width)
{
    volatile uint8_t *p = ecam_ptr(a, off);
    if (!p)
        return;
    switch (width) {
    case 1: *p = (uint8_t)v; break;
    case 2: *(volatile uint16_t *)p = (uint16_t)v; break;
    default: *(volatile uint32_t *)p = v; break;
    }
}

static uint32_t cfg_read(struct pci_addr a, unsigned off, unsigned width)
{
    return use_ecam ? ecam_read(a, off, width) : cam_read(a, off, width);
}

static void cfg_write(struct pci_addr a, unsigned off, uint32_t v, unsigned width)
{
    if (use_ecam)
        ecam_write(a, off, v, width);
    else
        cam_write(a, off, v, width);
}

static bool mcfg_usable(const struct acpi_info *acpi)
{
    if (!acpi || !acpi->have_mcfg || acpi->mcfg_segment != 0 || acpi->mcfg_bus_start > acpi->mcfg_bus_end)
        return false;
    return acpi->mcfg_base && acpi->mcfg_base + (((uint64_t)acpi->mcfg_bus_end + 1) << 20) <= PCI_PHYS_LIMIT;
}

void pci_init(const struct acpi_info *acpi)
{
    /* Both resource assignment and the virtio-pci probe call it; the first call decides. */
    if (initialized)
        return;
    initialized = true;
    if (!mcfg_usable(acpi))
        return;
    ecam_base = acpi->mcfg_base;
    ecam_bus_start = acpi->mcfg_bus_start;
    ecam_bus_end = acpi->mcfg_bus_end;
    uint64_t first = ecam_base + ((uint64_t)ecam_bus_start << 20);
    paging_map_mmio(first, (uint64_t)(ecam_bus_end - ecam_bus_start + 1) << 20);
    /* A table that points at nothing would hide every device: trust it only
       if it sees the host bridge that the port mechanism sees. */
    struct pci_addr host = { 0, 0, 0 };
    use_ecam = ecam_read(host, PCI_VENDOR_ID, 2) != 0xFFFF || cam_read(host, PCI_VENDOR_ID, 2) == 0xFFFF;
}

const char *pci_mechanism(void) { return use_ecam ? "ECAM" : "port CAM"; }
#endif /* PCI_TEST_BACKEND */

uint8_t pci_read8(struct pci_addr a, unsigned off) { return (uint8_t)cfg_read(a, off, 1); }
uint16_t pci_read16(struct pci_addr a, unsigned off) { return (uint16_t)cfg_read(a, off & ~1u, 2); }
uint32_t pci_read32(struct pci_addr a, unsigned off) { return cfg_read(a, off & ~3u, 4); }
void pci_write8(struct pci_addr a, unsigned off, uint8_t v) { cfg_write(a, off, v, 1); }
void pci_write16(struct pci_addr a, unsigned off, uint16_t v) { cfg_write(a, off & ~1u, v, 2); }
void pci_write32(struct pci_addr a, unsigned off, uint32_t v) { cfg_write(a, off & ~3u, v, 4); }

void pci_enable(struct pci_addr a, uint16_t command_bits)
{
    pci_write16(a, PCI_COMMAND, pci_read16(a, PCI_COMMAND) | command_bits);
}

/* ---- enumeration ---- */

struct scan {
    void (*fn)(struct pci_addr a, void *arg);
    void *arg;
    uint8_t seen[32];           /* bitmap of buses already scanned: a bad bridge cannot loop us */
};

static void scan_bus(struct scan *s, uint8_t bus);

/* Absent functions read as all ones; some hypervisors without PCI answer zero. */
static bool present(struct pci_addr a)
{
    uint16_t vendor = pci_read16(a, PCI_VENDOR_ID);
    return vendor != 0xFFFF && vendor != 0;
}

static void visit(struct scan *s, struct pci_addr a)
{
    s->fn(a, s->arg);
    if ((pci_read8(a, PCI_HEADER_TYPE) & PCI_HEADER_TYPE_MASK) != PCI_HEADER_TYPE_BRIDGE)
        return;
    uint8_t secondary = pci_read8(a, PCI_SECONDARY_BUS);
    if (secondary != 0 && secondary != 0xFF)
        scan_bus(s, secondary);
}

static void scan_bus(struct scan *s, uint8_t bus)
{
    if (s->seen[bus >> 3] & (1u << (bus & 7)))
        return;
    s->seen[bus >> 3] |= (uint8_t)(1u << (bus & 7));
    for (uint8_t dev = 0; dev < 32; dev++) {
        struct pci_addr a = { bus, dev, 0 };
        if (!present(a))
            continue;
        uint8_t nfn = (pci_read8(a, PCI_HEADER_TYPE) & 0x80) ? 8 : 1;
        for (a.fn = 0; a.fn < nfn; a.fn++)
            if (present(a))
                visit(s, a);
    }
}

void pci_scan(void (*fn)(struct pci_addr a, void *arg), void *arg)
{
    struct scan s = { .fn = fn, .arg = arg, .seen = { 0 } };
    scan_bus(&s, 0);
}

/* ---- capabilities ---- */

unsigned pci_find_cap(struct pci_addr a, uint8_t id, unsigned after)
{
    if (!(pci_read16(a, PCI_STATUS) & PCI_STATUS_CAP_LIST))
        return 0;
    unsigned ptr = pci_read8(a, after ? after + PCI_CAP_LIST_NEXT : PCI_CAPABILITY_LIST) & 0xFC;
    for (unsigned n = 0; n < PCI_MAX_CAPS && ptr >= 0x40; n++) {
        if (pci_read8(a, ptr + PCI_CAP_LIST_ID) == id)
            return ptr;
        ptr = pci_read8(a, ptr + PCI_CAP_LIST_NEXT) & 0xFC;
    }
    return 0;
}

/* ---- BARs ---- */

static unsigned bar_count(struct pci_addr a)
{
    switch (pci_read8(a, PCI_HEADER_TYPE) & PCI_HEADER_TYPE_MASK) {
    case PCI_HEADER_TYPE_NORMAL: return 6;
    case PCI_HEADER_TYPE_BRIDGE: return 2;
    default: return 0;
    }
}

static bool bar_is_mem64(uint32_t raw)
{
    return !(raw & PCI_BASE_ADDRESS_SPACE_IO) &&
           (raw & PCI_BASE_ADDRESS_MEM_TYPE_MASK) == PCI_BASE_ADDRESS_MEM_TYPE_64;
}

/* The value a BAR reads back after all ones were written: its size mask.
   Decoding is off meanwhile so that the device never answers at ~0. */
static uint32_t bar_probe(struct pci_addr a, unsigned off, uint32_t orig)
{
    pci_write32(a, off, 0xFFFFFFFFu);
    uint32_t mask = pci_read32(a, off);
    pci_write32(a, off, orig);
    return mask;
}

/* The size is the lowest writable address bit; a 32-bit BAR's mask is widened to 64 bits first. */
static uint64_t size_from_mask(uint64_t mask, bool is64)
{
    if (!mask)
        return 0;
    if (!is64)
        mask |= 0xFFFFFFFF00000000ULL;
    return ~mask + 1;
}

bool pci_read_bar(struct pci_addr a, unsigned index, struct pci_bar *out)
{
    unsigned n = bar_count(a), i = 0;
    /* Walk from BAR 0: the upper half of a 64-bit BAR holds address bits
       that may look like anything. */
    while (i < index && i < n)
        i += bar_is_mem64(pci_read32(a, PCI_BASE_ADDRESS_0 + 4 * i)) ? 2 : 1;
    if (i != index || index >= n)
        return false;
    unsigned off = PCI_BASE_ADDRESS_0 + 4 * index;
    uint32_t lo = pci_read32(a, off);
    *out = (struct pci_bar){ 0 };
    out->io = lo & PCI_BASE_ADDRESS_SPACE_IO;
    out->is64 = bar_is_mem64(lo) && index + 1 < n;
    out->prefetchable = !out->io && (lo & PCI_BASE_ADDRESS_MEM_PREFETCH);
    uint16_t cmd = pci_read16(a, PCI_COMMAND);
    pci_write16(a, PCI_COMMAND, cmd & ~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY));
    uint64_t mask = bar_probe(a, off, lo);
    uint64_t hi = 0;
    if (out->is64) {
        hi = pci_read32(a, off + 4);
        mask |= (uint64_t)bar_probe(a, off + 4, (uint32_t)hi) << 32;
    }
    pci_write16(a, PCI_COMMAND, cmd);
    if (out->io) {
        mask &= PCI_BASE_ADDRESS_IO_MASK;
        /* Ports are 16 bits; the upper half of an I/O BAR may read as zero. */
        if (mask && !(mask & 0xFFFF0000u))
            mask |= 0xFFFF0000u;
        out->base = lo & PCI_BASE_ADDRESS_IO_MASK;
    } else {
        mask &= ~0xFULL;
        out->base = hi << 32 | (lo & PCI_BASE_ADDRESS_MEM_MASK);
    }
    /* Zero size-mask bits: the BAR is not implemented. */
    out->size = size_from_mask(mask, out->is64);
    return true;
}

volatile void *pci_map_bar(const struct pci_bar *bar, uint64_t offset, uint64_t len)
{
    if (bar->io || !bar->base || !bar->size || offset > bar->size || len > bar->size - offset)
        return 0;
    uint64_t pa = bar->base + offset;
    if (bar->base >= PCI_PHYS_LIMIT || pa + len > PCI_PHYS_LIMIT)
        return 0;
    uint64_t page = pa & ~0xFFFULL;
    paging_map_mmio(page, ((pa + len + 0xFFF) & ~0xFFFULL) - page);
    return (volatile void *)(uintptr_t)pa;
}
