#ifndef KERNEL_REACTOR_H
#define KERNEL_REACTOR_H
#include <stdint.h>
#include "task.h"
#include "timer_wheel.h"

struct percpu;

/* Defaults; idle_poll_us= and task_budget_us= on the command line override them. */
#define REACTOR_IDLE_POLL_NS     50000ULL
#define REACTOR_TASK_BUDGET_NS  500000ULL

void reactor_init(struct percpu *c, uint64_t idle_poll_ns, uint64_t task_budget_ns);
/* Queue t on this shard (no-op if already queued). */
void task_schedule(struct task *t);
/* sleep may be NULL: see struct poller. */
void reactor_add_poller(struct poller *p, unsigned (*poll)(struct poller *), bool (*sleep)(struct poller *));
/* This shard never halts longer than ns (for sources that cannot interrupt); the smallest limit wins. */
void reactor_limit_halt(uint64_t ns);
/* Wake shard cpu if it is halted (an IPI only when it announced sleep). */
void reactor_wake(unsigned cpu);
/* Per-shard timers on the TSC clock. */
void reactor_timer_arm(struct timer *t, uint64_t deadline_ns);
bool reactor_timer_cancel(struct timer *t);
/* The shard's main loop: never returns. */
__attribute__((noreturn)) void reactor_run(void);
#endif
