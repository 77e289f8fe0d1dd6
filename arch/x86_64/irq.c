/* The table of device-line handlers, filled at boot and read-only afterwards. */
#include "irq.h"
#include "layout.h"

static struct {
    void (*fn)(void *);
    void *arg;
} handlers[VEC_IRQ_COUNT];

unsigned irq_claim_vector(void (*handler)(void *arg), void *arg)
{
    for (unsigned i = 0; i < VEC_IRQ_COUNT; i++) {
        if (!handlers[i].fn) {
            handlers[i].fn = handler;
            handlers[i].arg = arg;
            return VEC_IRQ_BASE + i;
        }
    }
    return 0;
}

void irq_dispatch(unsigned vector)
{
    unsigned i = vector - VEC_IRQ_BASE;
    if (i < VEC_IRQ_COUNT && handlers[i].fn)
        handlers[i].fn(handlers[i].arg);
}
