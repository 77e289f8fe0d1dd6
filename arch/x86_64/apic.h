#ifndef ARCH_APIC_H
#define ARCH_APIC_H
#include <stdint.h>
#include <stdbool.h>

void lapic_init_cpu(void);          /* every CPU: x2APIC when offered, else xAPIC MMIO */
bool lapic_is_x2apic(void);
uint32_t lapic_id(void);
void lapic_eoi(void);
void lapic_send_ipi(uint32_t apic_id, uint8_t vector);
void lapic_send_nmi_all_but_self(void);
void lapic_start_ap(uint32_t apic_id, uint32_t trampoline_phys);
/* One-shot timer. lapic_timer_hz comes from calibration against the TSC. */
void lapic_timer_set_hz(uint64_t hz);
void lapic_timer_start_count(uint32_t count);
uint32_t lapic_timer_current(void);
void lapic_timer_arm_ns(uint64_t ns);
void lapic_timer_stop(void);
#endif
