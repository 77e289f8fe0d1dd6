/* Intrusive run-to-completion tasks and pollers: scheduling allocates nothing. */
#ifndef KERNEL_TASK_H
#define KERNEL_TASK_H
#include <stdbool.h>

struct task {
    struct task *next;
    void (*fn)(struct task *t);
    bool queued;
};

/*
 * A source the reactor polls every loop; poll returns how much work it
 * found. Before the shard halts, sleep (if set) asks the source to wake
 * it on new work (a device re-enables its queue interrupt) and returns
 * false if work is already waiting, which cancels the halt. The next poll
 * may suppress the wake-ups again.
 */
struct poller {
    struct poller *next;
    unsigned (*poll)(struct poller *p);
    bool (*sleep)(struct poller *p);
};

static inline void task_init(struct task *t, void (*fn)(struct task *))
{
    t->next = 0;
    t->fn = fn;
    t->queued = false;
}
#endif
