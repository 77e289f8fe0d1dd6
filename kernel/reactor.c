/*
 * One reactor per CPU. Each loop drains the incoming message rings, fires
 * due timers, polls the registered sources and runs queued tasks until a
 * TSC budget is spent. After idle_poll_ns without work it announces that it
 * is going to sleep, re-checks its sources (a sender that saw `sleeping`
 * sends an IPI; one that did not will be seen by the re-check), arms the
 * LAPIC timer for the next deadline and halts.
 */
#include "reactor.h"
#include "percpu.h"
#include "clock.h"
#include "smp_call.h"
#include "malloc.h"
#include "../arch/x86_64/apic.h"
#include "../arch/x86_64/cpu.h"
#include "../arch/x86_64/trap.h"

#define TIMER_TICK_SHIFT 16 /* 65.5 us */

void reactor_init(struct percpu *c, uint64_t idle_poll_ns, uint64_t task_budget_ns)
{
    c->task_head = c->task_tail = 0;
    c->pollers = 0;
    c->max_halt_ns = 0;
    c->idle_poll_ns = idle_poll_ns;
    c->task_budget_cycles = ns_to_cycles(task_budget_ns);
    timer_wheel_init(&c->wheel, now_ns(), TIMER_TICK_SHIFT);
}

void task_schedule(struct task *t)
{
    struct percpu *c = this_cpu();
    if (t->queued)
        return;
    t->queued = true;
    t->next = 0;
    if (c->task_tail)
        c->task_tail->next = t;
    else
        c->task_head = t;
    c->task_tail = t;
}

void reactor_add_poller(struct poller *p, unsigned (*poll)(struct poller *), bool (*sleep)(struct poller *))
{
    struct percpu *c = this_cpu();
    p->poll = poll;
    p->sleep = sleep;
    p->next = c->pollers;
    c->pollers = p;
}

void reactor_limit_halt(uint64_t ns)
{
    struct percpu *c = this_cpu();
    if (ns && (!c->max_halt_ns || ns < c->max_halt_ns))
        c->max_halt_ns = ns;
}

void reactor_timer_arm(struct timer *t, uint64_t deadline_ns)
{
    timer_arm(&this_cpu()->wheel, t, deadline_ns);
}

bool reactor_timer_cancel(struct timer *t) { return timer_cancel(&this_cpu()->wheel, t); }

/* Runs tasks queued before this call until the budget is spent; later ones wait a loop. */
static unsigned run_tasks(struct percpu *c)
{
    struct task *last = c->task_tail;
    if (!last)
        return 0;
    uint64_t start = rdtsc();
    unsigned n = 0;
    for (;;) {
        struct task *t = c->task_head;
        c->task_head = t->next;
        if (!c->task_head)
            c->task_tail = 0;
        t->queued = false;
        t->fn(t);
        n++;
        if (t == last || !c->task_head || rdtsc() - start > c->task_budget_cycles)
            break;
    }
    c->stats.tasks += n;
    return n;
}

static unsigned poll_sources(struct percpu *c)
{
    unsigned work = 0;
    for (struct poller *p = c->pollers; p; p = p->next)
        work += p->poll(p);
    return work;
}

static unsigned run_once(struct percpu *c)
{
    unsigned msgs = smp_flush_backlog() + smp_poll();
    unsigned timers = timer_wheel_advance(&c->wheel, now_ns());
    unsigned polled = poll_sources(c);
    unsigned tasks = run_tasks(c);
    c->stats.messages += msgs;
    c->stats.timers += timers;
    c->stats.polls_with_work += polled != 0;
    return msgs + timers + polled + tasks;
}

/* Every source agrees to wake us; false when one already has work. */
static bool sources_may_sleep(struct percpu *c)
{
    for (struct poller *p = c->pollers; p; p = p->next)
        if (p->sleep && !p->sleep(p))
            return false;
    return true;
}

static void halt_until_event(struct percpu *c)
{
    malloc_flush_remote_frees();
    /* Waiting for room in another shard's ring is not idleness: keep polling. */
    if (smp_backlogged())
        return;
    __atomic_store_n(&c->sleeping, 1, __ATOMIC_SEQ_CST);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (smp_pending() || c->task_head || !sources_may_sleep(c)) {
        __atomic_store_n(&c->sleeping, 0, __ATOMIC_RELAXED);
        return;
    }
    uint64_t deadline = timer_wheel_next_deadline(&c->wheel);
    uint64_t now = now_ns();
    if (deadline <= now) {
        __atomic_store_n(&c->sleeping, 0, __ATOMIC_RELAXED);
        return;
    }
    if (c->max_halt_ns && deadline - now > c->max_halt_ns)
        deadline = now + c->max_halt_ns;
    if (deadline != UINT64_MAX)
        lapic_timer_arm_ns(deadline - now);
    uint64_t t0 = rdtsc();
    irq_enable_and_halt();
    irq_disable();
    c->stats.idle_cycles += rdtsc() - t0;
    c->stats.halts++;
    lapic_timer_stop();
    __atomic_store_n(&c->sleeping, 0, __ATOMIC_RELAXED);
}

void reactor_wake(unsigned cpu)
{
    struct percpu *t = cpu_table[cpu];
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&t->sleeping, __ATOMIC_RELAXED))
        lapic_send_ipi(t->apic_id, VEC_WAKE);
}

void reactor_irq(unsigned vector)
{
    (void)vector; /* the wake-up itself is the event: the loop re-polls everything */
}

void reactor_run(void)
{
    struct percpu *c = this_cpu();
    uint64_t last_work = rdtsc();
    uint64_t idle_cycles = ns_to_cycles(c->idle_poll_ns);
    for (;;) {
        /*
         * The loop runs with interrupts off and takes them only when it
         * halts, but some interrupts are for other shards: a virtio-mmio
         * device has one line, routed here, whose handler wakes the shards
         * that own its queues. A shard busy for a long time would hold
         * that wake-up back, so every loop opens a one-instruction window.
         */
        irq_window();
        uint64_t t0 = rdtsc();
        c->stats.loops++;
        if (run_once(c)) {
            last_work = rdtsc();
            c->stats.busy_cycles += last_work - t0;
            continue;
        }
        if (t0 - last_work < idle_cycles) {
            cpu_relax();
            continue;
        }
        halt_until_event(c);
        last_work = rdtsc();
    }
}
