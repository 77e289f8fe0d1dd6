#ifndef KERNEL_SMP_CALL_H
#define KERNEL_SMP_CALL_H
#include <stdbool.h>

/* BSP, before other CPUs run: one SPSC ring per (from, to) pair, each in the receiver's memory. */
void smp_call_init(unsigned ncpus);
/* Enqueue fn(arg) to run on `cpu`; false if that ring is full. */
bool smp_try_call(unsigned cpu, void (*fn)(void *), void *arg);
/* Enqueue, draining this CPU's own incoming rings while the target's ring is full
   (so two CPUs calling each other cannot deadlock). */
void smp_call(unsigned cpu, void (*fn)(void *), void *arg);
/* Run every message waiting for this CPU; safe to call from inside a handler. */
unsigned smp_poll(void);
bool smp_pending(void);
#endif
