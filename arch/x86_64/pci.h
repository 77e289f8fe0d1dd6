/*
 * PCI configuration space (segment 0): memory-mapped ECAM when ACPI's MCFG
 * describes it, else the port mechanism at 0xCF8/0xCFC. Everything here is
 * boot-time and BSP-only: the port mechanism is a two-step access through
 * one shared address register, and BAR sizing briefly turns decoding off.
 * Drivers keep the BAR addresses they map and never return here afterwards.
 */
#ifndef ARCH_PCI_H
#define ARCH_PCI_H

#include <stdbool.h>
#include <stdint.h>

struct acpi_info;

/* The kernel identity-maps physical memory with 4-level paging: addresses
   from 2^47 on would not be canonical. */
#define PCI_PHYS_LIMIT (1ULL << 47)

struct pci_addr {
    uint8_t bus, dev, fn;
};

struct pci_bar {
    uint64_t base;              /* physical; 0 when firmware left it unassigned */
    uint64_t size;              /* 0 when the BAR is not implemented */
    bool io;                    /* port I/O rather than memory */
    bool is64;                  /* takes this BAR and the next */
    bool prefetchable;
};

/* Choose the access mechanism: ECAM from `acpi` (may be NULL), mapped uncached, else ports.
   Only the first call does anything. */
void pci_init(const struct acpi_info *acpi);
/* "ECAM" or "port CAM", for the console. */
const char *pci_mechanism(void);

/* Aligned accesses of the given width to the 256-byte standard header (4 KiB with ECAM).
   An absent function reads as all ones; writes to it are dropped. */
uint8_t pci_read8(struct pci_addr a, unsigned off);
uint16_t pci_read16(struct pci_addr a, unsigned off);
uint32_t pci_read32(struct pci_addr a, unsigned off);
void pci_write8(struct pci_addr a, unsigned off, uint8_t v);
void pci_write16(struct pci_addr a, unsigned off, uint16_t v);
void pci_write32(struct pci_addr a, unsigned off, uint32_t v);

/*
 * Call fn for every function present, bus 0 first and then the buses behind
 * bridges, depth first. Functions 1-7 are looked at only on multi-function
 * devices.
 */
void pci_scan(void (*fn)(struct pci_addr a, void *arg), void *arg);

/*
 * Offset of the next capability with ID `id` after the one at `after`
 * (0: from the start of the list), or 0 when there is none. The walk is
 * bounded, so a looping list ends it.
 */
unsigned pci_find_cap(struct pci_addr a, uint8_t id, unsigned after);

/* Decode and size BAR `index` (0-5). False for an index that does not name
   a BAR of this header type, or the upper half of a 64-bit BAR. */
bool pci_read_bar(struct pci_addr a, unsigned index, struct pci_bar *out);

/*
 * Map [offset, offset + len) of a memory BAR uncached and return its
 * address, or NULL when the BAR is I/O or unassigned, the range does not
 * fit in it, or the address is beyond what the identity map can reach.
 */
volatile void *pci_map_bar(const struct pci_bar *bar, uint64_t offset, uint64_t len);

/* Set bits in the command register (PCI_COMMAND_MEMORY, _MASTER, …). */
void pci_enable(struct pci_addr a, uint16_t command_bits);

#endif
