/*
 * ACPI table discovery: RSDP → XSDT/RSDT → MADT (CPUs, LAPIC, IOAPIC),
 * FADT (+ \_S5_ from the DSDT, for poweroff) and MCFG (PCIe ECAM).
 * Every table is checksummed and every length bounded before use.
 */
#ifndef ARCH_ACPI_H
#define ARCH_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACPI_MAX_CPUS 64
#define ACPI_MAX_IOAPICS 8

/* Generic Address Structure space IDs. */
#define ACPI_GAS_MEMORY 0
#define ACPI_GAS_IO     1

/* The header every System Description Table starts with (ACPI 6.5 §5.2.6). */
struct acpi_sdt_header {
    char signature[4];
    uint32_t length;            /* whole table, header included */
    uint8_t revision;
    uint8_t checksum;           /* all `length` bytes sum to 0 */
    char oem_id[6];
    char oem_table_id[8];
    uint32_t oem_revision;
    uint32_t creator_id;
    uint32_t creator_revision;
} __attribute__((packed));

struct acpi_info {
    bool present;
    uint64_t rsdp_addr;
    /* Enabled processors from MADT type 0 (LAPIC) and type 9 (x2APIC), in
       table order, deduplicated, at most ACPI_MAX_CPUS. */
    uint32_t cpu_count;
    uint32_t apic_ids[ACPI_MAX_CPUS];
    uint64_t lapic_addr;        /* MADT, type 5 override honoured */
    uint64_t ioapic_addr;       /* first IOAPIC */
    uint32_t ioapic_gsi_base;
    bool have_ioapic;
    /* Every IOAPIC, in table order (microvm has a second one for virtio-mmio). */
    uint32_t ioapic_count;
    uint64_t ioapic_addrs[ACPI_MAX_IOAPICS];
    uint32_t ioapic_gsi_bases[ACPI_MAX_IOAPICS];
    /* FADT, for ACPI poweroff. */
    bool hw_reduced;
    uint16_t pm1a_cnt_port, pm1b_cnt_port;   /* 0 when absent */
    uint8_t sleep_ctl_space;                 /* ACPI_GAS_* */
    uint64_t sleep_ctl_addr;                 /* 0 when absent */
    bool have_s5;
    uint8_t s5_typa, s5_typb;                /* \_S5_ SLP_TYPa / SLP_TYPb */
    /* First MCFG allocation, for PCIe ECAM. */
    uint64_t mcfg_base;
    uint16_t mcfg_segment;
    uint8_t mcfg_bus_start, mcfg_bus_end;
    bool have_mcfg;
    uint64_t dsdt_addr;
};

/*
 * rsdp_hint: physical address of the RSDP if the boot protocol gave one
 * (PVH start info), else 0. Without a valid hint, searches the first KiB of
 * the EBDA and 0xE0000-0xFFFFF. Prefers the XSDT (RSDP revision >= 2) over
 * the RSDT. Returns false (info->present false) when there is no valid RSDP
 * with a valid root table.
 */
bool acpi_init(struct acpi_info *info, uint64_t rsdp_hint);

/*
 * First table with signature `sig` whose length and checksum are valid, or
 * NULL. "DSDT" is found through the FADT. The result points at the table's
 * struct acpi_sdt_header; its length has been checked against the address
 * space, so [result, result + header->length) may be read.
 */
const void *acpi_find_table(const struct acpi_info *info, const char sig[4]);

#endif
