/* Intrusive run-to-completion tasks and pollers: scheduling allocates nothing. */
#ifndef KERNEL_TASK_H
#define KERNEL_TASK_H
#include <stdbool.h>

struct task {
    struct task *next;
    void (*fn)(struct task *t);
    bool queued;
};

/* A source the reactor polls every loop; returns how much work it found. */
struct poller {
    struct poller *next;
    unsigned (*poll)(struct poller *p);
};

static inline void task_init(struct task *t, void (*fn)(struct task *))
{
    t->next = 0;
    t->fn = fn;
    t->queued = false;
}
#endif
