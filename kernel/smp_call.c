/*
 * Cross-core calls over a matrix of single-producer single-consumer rings.
 * A sender pushes, then reads the target's `sleeping` flag after a full
 * fence; the target sets `sleeping` and fences before its last look at the
 * rings. One of the two always sees the other, so a message never waits for
 * an unrelated wake-up, and an IPI is sent only to a sleeping target.
 * A sender never waits for a full ring: the message waits, in call order,
 * in the sender's backlog, which its reactor flushes every loop.
 */
#include "smp_call.h"
#include "percpu.h"
#include "spsc_ring.h"
#include "console.h"
#include "malloc.h"
#include "../arch/x86_64/apic.h"
#include "../arch/x86_64/cpu.h"

static uint32_t ring_capacity(unsigned ncpus)
{
    /* Keep the whole matrix small with many CPUs: 256 slots at <= 8, down to 64. */
    return ncpus <= 8 ? 256 : ncpus <= 32 ? 128 : 64;
}

void smp_call_init(unsigned ncpus)
{
    uint32_t cap = ring_capacity(ncpus);
    for (unsigned to = 0; to < ncpus; to++) {
        struct percpu *dst = cpu_table[to];
        for (unsigned from = 0; from < ncpus; from++) {
            struct spsc_ring *r = heap_alloc_aligned(&dst->heap, 64, spsc_ring_bytes(cap));
            if (!r)
                panic("smp: no memory for message rings");
            spsc_ring_init(r, cap);
            dst->in[from] = r;
            cpu_table[from]->out[to] = r;
        }
    }
}

static void wake(struct percpu *target)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&target->sleeping, __ATOMIC_RELAXED))
        lapic_send_ipi(target->apic_id, VEC_WAKE);
}

struct smp_backlog_msg {
    struct smp_backlog_msg *next;
    unsigned cpu;
    void (*fn)(void *);
    void *arg;
};

static bool push(struct percpu *c, unsigned cpu, void (*fn)(void *), void *arg)
{
    if (!spsc_ring_push(c->out[cpu], fn, arg))
        return false;
    if (cpu != c->id)
        wake(cpu_table[cpu]);
    return true;
}

bool smp_try_call(unsigned cpu, void (*fn)(void *), void *arg)
{
    struct percpu *c = this_cpu();
    if (cpu >= cpu_total)
        panic("smp_call to cpu %u of %u", cpu, cpu_total);
    /* Anything already waiting goes first, whatever its target: a shard's
       messages take effect in the order it sent them, as if each call had
       waited for room. */
    if (c->backlog_head)
        return false;
    return push(c, cpu, fn, arg);
}

void smp_call(unsigned cpu, void (*fn)(void *), void *arg)
{
    if (smp_try_call(cpu, fn, arg))
        return;
    /* Wait in the backlog rather than run other handlers inside this call
       (that nested without bound under a two-way flood). */
    struct percpu *c = this_cpu();
    struct smp_backlog_msg *m = malloc(sizeof *m);
    if (!m)
        panic("smp_call: no memory to queue a message for cpu %u", cpu);
    *m = (struct smp_backlog_msg){ NULL, cpu, fn, arg };
    if (c->backlog_tail)
        c->backlog_tail->next = m;
    else
        c->backlog_head = m;
    c->backlog_tail = m;
}

unsigned smp_flush_backlog(void)
{
    struct percpu *c = this_cpu();
    unsigned n = 0;
    struct smp_backlog_msg *m;
    while ((m = c->backlog_head) && push(c, m->cpu, m->fn, m->arg)) {
        c->backlog_head = m->next;
        free(m);
        n++;
    }
    if (!c->backlog_head)
        c->backlog_tail = NULL;
    return n;
}

bool smp_backlogged(void) { return this_cpu()->backlog_head != NULL; }

unsigned smp_poll(void)
{
    struct percpu *c = this_cpu();
    unsigned n = 0;
    for (unsigned from = 0; from < cpu_total; from++) {
        /* Only what was there on arrival: a producer that keeps pushing cannot
           keep this shard from its timers and pollers. */
        uint32_t budget = spsc_ring_count(c->in[from]);
        struct spsc_msg m;
        while (budget-- && spsc_ring_pop(c->in[from], &m)) {
            m.fn(m.arg);
            n++;
        }
    }
    return n;
}

bool smp_pending(void)
{
    struct percpu *c = this_cpu();
    for (unsigned from = 0; from < cpu_total; from++)
        if (!spsc_ring_empty(c->in[from]))
            return true;
    return false;
}
