#ifndef ARCH_PAGING_H
#define ARCH_PAGING_H
#include <stdint.h>

struct ram_range { uint64_t base, len; };

/* Build the final identity map once on the BSP and switch to it:
   page 0 absent (NULL faults), text RX, rodata R, data NX, guard pages
   under every stack absent, RAM NX, LAPIC/IOAPIC MMIO uncached. */
void paging_init(const struct ram_range *ram, int n);
uint64_t paging_root(void);
/* Map device memory uncached (boot-time only: before other CPUs run or
   with them not yet using the range). */
void paging_map_mmio(uint64_t phys, uint64_t size);
/* Let APs start from the trampoline page; paging_seal_trampoline() makes it NX again. */
void paging_seal_trampoline(void);
#endif
