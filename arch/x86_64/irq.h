/*
 * Device interrupt lines: a driver claims one of VEC_IRQ_COUNT vectors at
 * boot and routes its line to it (ioapic_route); the handler runs with
 * interrupts off on whichever CPU the line targets, before the EOI.
 */
#ifndef ARCH_IRQ_H
#define ARCH_IRQ_H
#include <stdint.h>

/* Boot time, BSP only. Returns the vector, or 0 when none is left. */
unsigned irq_claim_vector(void (*handler)(void *arg), void *arg);
void irq_dispatch(unsigned vector);

/* IOAPICs: addresses in table order; gsi_bases NULL means consecutive from 0. */
void ioapic_init(const uint64_t *addrs, const uint32_t *gsi_bases, unsigned n);
/* Edge-triggered, active high, fixed delivery to one CPU; -1 if no IOAPIC has the GSI. */
int ioapic_route(uint32_t gsi, uint8_t vector, uint32_t apic_id);
#endif
