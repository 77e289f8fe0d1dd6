/* SMP bring-up: copy the real-mode trampoline low, then INIT-SIPI-SIPI each AP. */
#include "smp.h"
#include "apic.h"

uint32_t cpu_apic_ids[MAX_CPUS];
uint32_t cpu_count;
uint32_t ap_cr3; /* read by the trampoline in 32-bit mode, so below 4 GiB */

extern const char ap_trampoline_start[], ap_trampoline_end[];

void *memcpy(void *, const void *, __SIZE_TYPE__);

void smp_start_aps(uint64_t cr3)
{
    ap_cr3 = (uint32_t)cr3;
    memcpy((void *)AP_TRAMPOLINE_BASE, ap_trampoline_start,
           (__SIZE_TYPE__)(ap_trampoline_end - ap_trampoline_start));
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    for (uint32_t i = 1; i < cpu_count; i++)
        lapic_start_ap(cpu_apic_ids[i], AP_TRAMPOLINE_BASE);
}
