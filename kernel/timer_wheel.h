/*
 * Per-CPU hierarchical timing wheel on a nanosecond clock.
 *
 * The wheel never reads a clock: the owner passes `now` in nanoseconds to
 * timer_wheel_advance(). Time is quantised into ticks of 1 << tick_shift ns
 * only to choose a slot; firing itself is exact, a timer never runs before
 * its deadline and runs at the first advance whose `now` reaches it.
 *
 * Timers are intrusive: a struct timer is embedded in its owner and linked
 * into the wheel, so arming allocates nothing. A wheel is used by one CPU
 * only; nothing here is thread-safe.
 *
 * 6 levels of 64 slots cover 2^36 ticks (52 days at tick_shift 16). A timer
 * further away is parked in the top level and re-cascaded once per such
 * rotation, so tick_shift should keep the rotation long.
 */
#ifndef KERNEL_TIMER_WHEEL_H
#define KERNEL_TIMER_WHEEL_H

#include <stdbool.h>
#include <stdint.h>

#define TIMER_WHEEL_LEVELS 6
#define TIMER_WHEEL_SLOT_BITS 6
#define TIMER_WHEEL_SLOTS (1u << TIMER_WHEEL_SLOT_BITS)

struct timer_link {
    struct timer_link *next, *prev;
};

struct timer {
    struct timer_link link;       /* in a wheel slot or the due list */
    uint64_t deadline_ns;
    void (*fn)(struct timer *t);  /* runs with the timer already disarmed */
    uint64_t seq;                 /* arming order, breaks deadline ties */
    uint16_t bucket;              /* where it is linked; TIMER_IDLE if not */
};

struct timer_wheel {
    uint64_t clk;                 /* current tick: all slot starts <= clk are processed */
    uint64_t seq;                 /* next arming sequence number */
    unsigned shift;               /* tick = 1 << shift ns */
    uint64_t occupied[TIMER_WHEEL_LEVELS];   /* bit s set: slot s non-empty */
    struct timer_link due;        /* tick <= clk, sorted by (deadline, seq) */
    struct timer_link slots[TIMER_WHEEL_LEVELS * TIMER_WHEEL_SLOTS];
};

void timer_wheel_init(struct timer_wheel *w, uint64_t now_ns, unsigned tick_shift);
void timer_init(struct timer *t, void (*fn)(struct timer *));

/* Arms t for deadline_ns; a pending t is moved. A deadline in the past
 * fires on the next advance. */
void timer_arm(struct timer_wheel *w, struct timer *t, uint64_t deadline_ns);

/* Disarms t in O(1); true if it was pending. */
bool timer_cancel(struct timer_wheel *w, struct timer *t);

bool timer_pending(const struct timer *t);

/* Runs every timer with deadline <= now_ns in deadline order (ties in arming
 * order) and returns how many ran. Callbacks may arm and cancel any timer,
 * themselves included, but must not call advance recursively. A timer armed
 * by a callback with a deadline <= now_ns runs in this same call. */
unsigned timer_wheel_advance(struct timer_wheel *w, uint64_t now_ns);

/* Earliest time advance must be called again: never later than the earliest
 * deadline, possibly earlier (a cascade boundary). UINT64_MAX when empty. */
uint64_t timer_wheel_next_deadline(const struct timer_wheel *w);

#endif
