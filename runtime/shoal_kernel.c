/* The runtime API on the Shoal kernel: thin forwarding to kernel/. */
#include "shoal.h"
#include "../kernel/console.h"
#include "../kernel/format.h"
#include "../kernel/malloc.h"
#include "../kernel/percpu.h"
#include "../kernel/reactor.h"
#include "../arch/x86_64/shutdown.h"

unsigned shard_id(void) { return this_cpu_id(); }
unsigned shard_count(void) { return cpu_total; }

void shoal_timer_init(struct timer *t, void (*fn)(struct timer *)) { timer_init(t, fn); }
void shoal_timer_arm(struct timer *t, uint64_t deadline_ns) { reactor_timer_arm(t, deadline_ns); }
bool shoal_timer_cancel(struct timer *t) { return reactor_timer_cancel(t); }

size_t shoal_heap_bytes_in_use(void) { return heap_bytes_in_use(&this_cpu()->heap); }
void shoal_flush_remote_frees(void) { malloc_flush_remote_frees(); }

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap) { return fmt_vsnprintf(buf, size, fmt, ap); }

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = fmt_vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

void shoal_print(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = fmt_vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    console_write(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

void shoal_log(const char *fmt, ...)
{
    char line[480];
    va_list ap;
    va_start(ap, fmt);
    fmt_vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    klog("%s", line);
}

void shoal_reactor_stats(unsigned shard, struct shoal_reactor_stats *out)
{
    const struct reactor_stats *s = &cpu_table[shard]->stats;
    *out = (struct shoal_reactor_stats){ s->loops, s->tasks, s->messages, s->timers,
                                         s->halts, s->busy_cycles, s->idle_cycles };
}

void shoal_exit(int status)
{
    malloc_flush_remote_frees();
    machine_exit(status);
}
