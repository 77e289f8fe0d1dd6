/*
 * The per-CPU block: everything a shard owns. Reached through GS
 * (this_cpu()); allocated from the shard's own memory region at boot.
 * Only its owner writes it, except `sleeping`, which other shards read to
 * decide whether a message needs an IPI.
 */
#ifndef KERNEL_PERCPU_H
#define KERNEL_PERCPU_H

#include <stdint.h>
#include <stdbool.h>
#include "../arch/x86_64/layout.h"
#include "heap.h"
#include "timer_wheel.h"
#include "task.h"

struct spsc_ring;
struct smp_backlog_msg;
struct netif_shard;

struct reactor_stats {
    uint64_t loops, tasks, messages, timers, polls_with_work;
    uint64_t halts, busy_cycles, idle_cycles;
};

struct percpu {
    struct percpu *self;            /* %gs:0 */
    uint32_t id;                    /* %gs:8, read by trap.c */
    uint32_t apic_id;

    /* reactor */
    struct task *task_head, *task_tail;
    struct poller *pollers;
    struct timer_wheel wheel;
    uint64_t idle_poll_ns;
    uint64_t max_halt_ns;           /* 0: halt until an event; else at most this long */
    uint64_t task_budget_cycles;
    struct reactor_stats stats;

    /* memory */
    uintptr_t region_base, region_end;
    struct page_alloc pages;
    struct heap heap;
    void *remote_free_head[MAX_CPUS];
    uint32_t remote_free_count[MAX_CPUS];

    /* cross-core messages: in[from] is consumed here, out[to] is produced here */
    struct spsc_ring *in[MAX_CPUS];
    struct spsc_ring *out[MAX_CPUS];
    /* Messages waiting for room in a full ring, in call order (smp_call.c). */
    struct smp_backlog_msg *backlog_head, *backlog_tail;

    /* this shard's network interface (net/netif.c), NULL without a device */
    struct netif_shard *netif;

    /* Written by the owner, read by senders: 1 while halted or about to halt. */
    int sleeping __attribute__((aligned(64)));
} __attribute__((aligned(64)));

/* Read-only after boot. */
extern struct percpu *cpu_table[MAX_CPUS];
extern unsigned cpu_total;

static inline struct percpu *this_cpu(void)
{
    struct percpu *p;
    __asm__("movq %%gs:0, %0" : "=r"(p));
    return p;
}

static inline unsigned this_cpu_id(void) { return this_cpu()->id; }

/* Usable before GS is set (early boot, crash paths): returns 0 there. */
unsigned this_cpu_id_safe(void);

/* Point GS at c on the calling CPU. */
void percpu_install(struct percpu *c);

#endif
