/*
 * IOAPIC redirection (82093AA datasheet): every pin masked at boot, then
 * lines routed one by one to the CPU that should wake. Only virtio-mmio
 * devices use lines; PCI devices use MSI-X.
 */
#include <stdbool.h>
#include "irq.h"
#include "paging.h"

#define MAX_IOAPICS   8
#define REG_VERSION   0x01
#define REG_REDIR     0x10
#define REDIR_MASKED  (1u << 16)

static struct {
    volatile uint32_t *base;
    uint32_t gsi_base, pins;
} ioapics[MAX_IOAPICS];
static unsigned nioapics;

static uint32_t rd(volatile uint32_t *b, uint32_t reg)
{
    b[0] = reg;
    return b[4];
}

static void wr(volatile uint32_t *b, uint32_t reg, uint32_t v)
{
    b[0] = reg;
    b[4] = v;
}

void ioapic_init(const uint64_t *addrs, const uint32_t *gsi_bases, unsigned n)
{
    uint32_t next_gsi = 0;
    for (unsigned i = 0; i < n && nioapics < MAX_IOAPICS; i++) {
        paging_map_mmio(addrs[i] & ~0xFFFULL, 0x1000);
        volatile uint32_t *b = (volatile uint32_t *)(uintptr_t)addrs[i];
        uint32_t pins = ((rd(b, REG_VERSION) >> 16) & 0xFF) + 1;
        uint32_t base = gsi_bases ? gsi_bases[i] : next_gsi;
        for (uint32_t p = 0; p < pins; p++)
            wr(b, REG_REDIR + 2 * p, REDIR_MASKED);
        ioapics[nioapics].base = b;
        ioapics[nioapics].gsi_base = base;
        ioapics[nioapics++].pins = pins;
        next_gsi = base + pins;
    }
}

int ioapic_route(uint32_t gsi, uint8_t vector, uint32_t apic_id)
{
    for (unsigned i = 0; i < nioapics; i++) {
        if (gsi < ioapics[i].gsi_base || gsi - ioapics[i].gsi_base >= ioapics[i].pins)
            continue;
        uint32_t pin = gsi - ioapics[i].gsi_base;
        wr(ioapics[i].base, REG_REDIR + 2 * pin + 1, apic_id << 24);
        wr(ioapics[i].base, REG_REDIR + 2 * pin, vector); /* fixed, physical, high, edge, unmasked */
        return 0;
    }
    return -1;
}
