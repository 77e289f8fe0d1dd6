/*
 * PCI resource assignment for firmware that leaves BARs unassigned (qboot
 * assigns none; SeaBIOS and OVMF assign all, and then nothing here writes
 * anything). Boot-time and BSP-only, like the rest of the PCI code: run it
 * after pci_init() and before any driver looks at a BAR.
 */
#ifndef ARCH_PCI_ASSIGN_H
#define ARCH_PCI_ASSIGN_H

#include <stdint.h>

struct acpi_info;
struct ram_range;

/* [base, base + size) of one address space; size 0: no window. */
struct pci_window {
    uint64_t base, size;
};

/* Default I/O window: where SeaBIOS puts I/O BARs on pc, above the legacy
   ISA ports and the ACPI PM block (0x600 on QEMU's pc and q35). */
#define PCI_IO_WINDOW_BASE 0xC000u
#define PCI_IO_WINDOW_END  0x10000u

/* The default memory window ends where the IOAPIC (0xFEC00000), HPET
   (0xFED00000), LAPIC (0xFEE00000) and the firmware flash begin. */
#define PCI_MEM_WINDOW_END     0xFEC00000u
/* Its start when the memory map is unknown: QEMU's q35 hole starts here. */
#define PCI_MEM_FALLBACK_BASE  0xC0000000u

/*
 * The default memory window: the largest gap below PCI_MEM_WINDOW_END above
 * the end of the RAM below 4 GiB (`ram`: the usable RAM ranges from the boot
 * memory map, sorted or not), never overlapping the ECAM region of `acpi`'s
 * MCFG (acpi may be NULL). With no RAM ranges it is the largest part of
 * [PCI_MEM_FALLBACK_BASE, PCI_MEM_WINDOW_END) outside ECAM.
 *
 * The authoritative windows are in the _CRS of the host bridge's ACPI
 * device (PNP0A03 / PNP0A08), which is AML; we have no AML interpreter,
 * so we take the hole the memory map leaves instead. On QEMU every address
 * no RAM or chipset device claims is routed to PCI, so that hole works.
 */
struct pci_window pci_default_mem_window(const struct ram_range *ram, int nram, const struct acpi_info *acpi);
struct pci_window pci_default_io_window(void);

/*
 * Give every implemented BAR that has no usable address one from `mem`
 * (memory BARs, 64-bit ones included; the window is clamped to 4 GiB) or
 * `io` (either may be NULL: no window), program the windows of PCI-PCI
 * bridges to cover what is behind them, and turn on decoding and bus
 * mastering for the functions that got resources. BARs the firmware
 * assigned stay where they are and are avoided. Functions whose decoding
 * the firmware already turned on are never changed. One console line per
 * function that got resources and one per BAR or window that did not fit.
 */
void pci_assign_resources(const struct pci_window *mem, const struct pci_window *io);

#endif
