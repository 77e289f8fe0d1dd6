#ifndef ARCH_SMP_H
#define ARCH_SMP_H
#include <stdint.h>
#include "layout.h"

/* Read by the AP trampoline: CPU index i has APIC ID cpu_apic_ids[i]; index 0 is the BSP. */
extern uint32_t cpu_apic_ids[MAX_CPUS];
extern uint32_t cpu_count;

/* Start every AP with INIT-SIPI-SIPI; each calls ap_main(index) on its own stack. */
void smp_start_aps(uint64_t cr3);
#endif
