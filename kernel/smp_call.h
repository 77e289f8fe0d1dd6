#ifndef KERNEL_SMP_CALL_H
#define KERNEL_SMP_CALL_H
#include <stdbool.h>

/* BSP, before other CPUs run: one SPSC ring per (from, to) pair, each in the receiver's memory. */
void smp_call_init(unsigned ncpus);
/* Enqueue fn(arg) to run on `cpu`; false if that ring is full (or messages wait ahead of it). */
bool smp_try_call(unsigned cpu, void (*fn)(void *), void *arg);
/* Enqueue; if the target's ring is full the message waits, in order, in this
   CPU's backlog. Never blocks and never runs other handlers. */
void smp_call(unsigned cpu, void (*fn)(void *), void *arg);
/* Move backlogged messages into rings that have room; returns how many moved. */
unsigned smp_flush_backlog(void);
bool smp_backlogged(void);
/* Run the messages that were waiting for this CPU when called. */
unsigned smp_poll(void);
bool smp_pending(void);
#endif
