/*
 * Intel MultiProcessor Specification 1.4 tables: the CPU enumeration of
 * last resort, for machines without ACPI (QEMU -M microvm,acpi=off,
 * Firecracker).
 */
#ifndef ARCH_MPTABLE_H
#define ARCH_MPTABLE_H

#include <stdbool.h>
#include <stdint.h>

#define MPTABLE_MAX_CPUS 64
#define MPTABLE_MAX_IOAPICS 8

struct mptable_info {
    uint32_t cpu_count;
    uint32_t apic_ids[MPTABLE_MAX_CPUS]; /* enabled processors, table order, deduplicated */
    uint32_t bsp_apic_id;                /* flagged BP, else the first enabled processor */
    uint64_t lapic_addr;
    /* Enabled IOAPICs in table order; their GSI bases follow from that order. */
    uint32_t ioapic_count;
    uint64_t ioapic_addrs[MPTABLE_MAX_IOAPICS];
};

/*
 * Finds the "_MP_" floating pointer (first KiB of the EBDA, last KiB of
 * base memory, 0xF0000-0xFFFFF), validates it and its "PCMP" configuration
 * table, and collects the enabled processors. Returns false (and a zeroed
 * info) when there is no valid table, when it names no enabled processor,
 * or for an MP "default configuration" (no configuration table).
 */
bool mptable_init(struct mptable_info *info);

#endif
