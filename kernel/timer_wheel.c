/*
 * Hierarchical timing wheel.
 *
 * Placement. A timer due at tick `t` (t > clk) lives at the level given by the
 * highest bit in which t differs from clk: level L holds the timers that
 * agree with clk above bit 6(L+1), in slot (t >> 6L) & 63. Every timer of
 * level L therefore expires before every timer of level L+1, and the slot's
 * start tick is <= t. When the clock reaches a slot's start, the slot is
 * cascaded: each timer is placed again relative to the new clk and lands on
 * a lower level, or, once its tick is reached, on the due list.
 *
 * The top level is a ring: a timer further away than one rotation (2^36
 * ticks) is clamped into the slot whose next start lies just within the
 * rotation, and is re-placed, still with its true deadline, when that slot
 * is cascaded. The current top slot thus stands for the next rotation.
 *
 * Exactness. Timers whose tick has been reached sit on the due list, sorted
 * by (deadline, arming sequence), and run only once `now` reaches their
 * deadline in nanoseconds; so a timer in the current tick whose deadline is
 * still ahead of `now` waits for a later advance.
 *
 * Ordering. Slots are unsorted, which keeps arm and cancel O(1). A slot only
 * becomes due as a whole when its tick is reached, and the batch is then
 * merge-sorted. Batches are produced in tick order and each is fired before
 * the next slot is opened, so firing is globally in deadline order, even for
 * timers armed by callbacks during the advance.
 */
#include "timer_wheel.h"

#include <stddef.h>

#define LEVELS TIMER_WHEEL_LEVELS
#define BITS TIMER_WHEEL_SLOT_BITS
#define SLOTS TIMER_WHEEL_SLOTS
#define TOP (LEVELS - 1)
#define SPAN_BITS (LEVELS * BITS)
#define SPAN ((uint64_t)1 << SPAN_BITS)    /* ticks in one top-level rotation */

#define TIMER_DUE ((uint16_t)(LEVELS * SLOTS))
#define TIMER_IDLE ((uint16_t)0xffff)

static struct timer *link_timer(struct timer_link *l)
{
    return (struct timer *)((char *)l - offsetof(struct timer, link));
}

static void list_init(struct timer_link *head)
{
    head->next = head;
    head->prev = head;
}

static bool list_empty(const struct timer_link *head)
{
    return head->next == head;
}

static void list_insert_after(struct timer_link *pos, struct timer_link *l)
{
    l->prev = pos;
    l->next = pos->next;
    pos->next->prev = l;
    pos->next = l;
}

static void list_unlink(struct timer_link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->next = l->prev = l;
}

/* Strict "fires before": earlier deadline, or same deadline armed earlier. */
static bool fires_before(const struct timer *a, const struct timer *b)
{
    if (a->deadline_ns != b->deadline_ns)
        return a->deadline_ns < b->deadline_ns;
    return a->seq < b->seq;
}

static uint64_t tick_of(const struct timer_wheel *w, uint64_t ns)
{
    return ns >> w->shift;
}

void timer_wheel_init(struct timer_wheel *w, uint64_t now_ns, unsigned tick_shift)
{
    w->shift = tick_shift < 63 ? tick_shift : 63;
    w->clk = now_ns >> w->shift;
    w->seq = 0;
    list_init(&w->due);
    for (unsigned i = 0; i < LEVELS; i++)
        w->occupied[i] = 0;
    for (unsigned i = 0; i < LEVELS * SLOTS; i++)
        list_init(&w->slots[i]);
}

void timer_init(struct timer *t, void (*fn)(struct timer *))
{
    list_init(&t->link);
    t->deadline_ns = 0;
    t->fn = fn;
    t->seq = 0;
    t->bucket = TIMER_IDLE;
}

bool timer_pending(const struct timer *t)
{
    return t->bucket != TIMER_IDLE;
}

/* Bucket (level * SLOTS + slot) for a timer due at tick > clk. */
static unsigned pick_bucket(const struct timer_wheel *w, uint64_t tick)
{
    /* Beyond one rotation: aim at the last tick of the rotation instead; its
     * slot starts no later than the true tick and is re-cascaded. */
    if (tick - w->clk >= SPAN)
        tick = w->clk + SPAN - 1;
    unsigned level = (unsigned)(63 - __builtin_clzll(tick ^ w->clk)) / BITS;
    if (level > TOP)
        level = TOP;
    unsigned slot = (unsigned)(tick >> (level * BITS)) & (SLOTS - 1);
    return level * SLOTS + slot;
}

static void wheel_insert(struct timer_wheel *w, struct timer *t, uint64_t tick)
{
    unsigned bucket = pick_bucket(w, tick);
    list_insert_after(w->slots[bucket].prev, &t->link);
    w->occupied[bucket / SLOTS] |= (uint64_t)1 << (bucket % SLOTS);
    t->bucket = (uint16_t)bucket;
}

/* Sorted insert into the due list. Scans from the tail, since a new timer
 * has the highest sequence number and usually the latest deadline; a
 * deadline before the head (an overdue timer) goes straight to the front. */
static void due_insert(struct timer_wheel *w, struct timer *t)
{
    struct timer_link *pos = w->due.prev;
    if (!list_empty(&w->due) && fires_before(t, link_timer(w->due.next)))
        pos = &w->due;
    while (pos != &w->due && fires_before(t, link_timer(pos)))
        pos = pos->prev;
    list_insert_after(pos, &t->link);
    t->bucket = TIMER_DUE;
}

void timer_arm(struct timer_wheel *w, struct timer *t, uint64_t deadline_ns)
{
    timer_cancel(w, t);
    t->deadline_ns = deadline_ns;
    t->seq = w->seq++;
    uint64_t tick = tick_of(w, deadline_ns);
    if (tick <= w->clk)
        due_insert(w, t);
    else
        wheel_insert(w, t, tick);
}

bool timer_cancel(struct timer_wheel *w, struct timer *t)
{
    if (t->bucket == TIMER_IDLE)
        return false;
    unsigned bucket = t->bucket;
    list_unlink(&t->link);
    t->bucket = TIMER_IDLE;
    if (bucket < TIMER_DUE && list_empty(&w->slots[bucket]))
        w->occupied[bucket / SLOTS] &= ~((uint64_t)1 << (bucket % SLOTS));
    return true;
}

static uint64_t rotr64(uint64_t x, unsigned r)
{
    r &= 63;
    return (x >> r) | (x << ((64 - r) & 63));
}

/* Next occupied slot of the top-level ring, in the order its starts come:
 * slots after the current one, then the current one (next rotation). */
static unsigned top_next_slot(const struct timer_wheel *w)
{
    unsigned cur = (unsigned)(w->clk >> (TOP * BITS)) & (SLOTS - 1);
    unsigned first = (cur + 1) & (SLOTS - 1);
    unsigned skip = (unsigned)__builtin_ctzll(rotr64(w->occupied[TOP], first));
    return (first + skip) & (SLOTS - 1);
}

/* Start tick of the next slot to open: the first occupied one on the lowest
 * non-empty level, since each level expires entirely before the next. */
static bool next_slot(const struct timer_wheel *w, unsigned *bucket, uint64_t *start)
{
    for (unsigned level = 0; level < TOP; level++) {
        if (!w->occupied[level])
            continue;
        /* Occupied slots below the top are all after clk's slot in the
         * current block, so the lowest set bit is the next one. */
        unsigned slot = (unsigned)__builtin_ctzll(w->occupied[level]);
        uint64_t block = w->clk & ~(((uint64_t)1 << ((level + 1) * BITS)) - 1);
        *bucket = level * SLOTS + slot;
        *start = block + ((uint64_t)slot << (level * BITS));
        return true;
    }
    if (!w->occupied[TOP])
        return false;
    unsigned slot = top_next_slot(w);
    uint64_t s = (w->clk & ~(SPAN - 1)) + ((uint64_t)slot << (TOP * BITS));
    if (s <= w->clk)
        s += SPAN;
    *bucket = TOP * SLOTS + slot;
    *start = s;
    return true;
}

/* Merges two NULL-terminated chains (linked through next) in firing order. */
static struct timer_link *chain_merge(struct timer_link *a, struct timer_link *b)
{
    struct timer_link head, *tail = &head;
    while (a && b) {
        if (fires_before(link_timer(b), link_timer(a))) {
            tail->next = b;
            b = b->next;
        } else {
            tail->next = a;
            a = a->next;
        }
        tail = tail->next;
    }
    tail->next = a ? a : b;
    return head.next;
}

/* Bottom-up merge sort of a chain: bins[i] holds a sorted run of 2^i
 * timers, carried upward like a binary counter. O(n log n), no recursion. */
static struct timer_link *chain_sort(struct timer_link *list)
{
    struct timer_link *bins[64] = { 0 };
    unsigned top = 0;
    while (list) {
        struct timer_link *run = list;
        list = list->next;
        run->next = NULL;
        unsigned i = 0;
        for (; bins[i]; i++) {
            run = chain_merge(bins[i], run);
            bins[i] = NULL;
        }
        bins[i] = run;
        if (i > top)
            top = i;
    }
    struct timer_link *out = NULL;
    for (unsigned i = 0; i <= top; i++)
        out = chain_merge(bins[i], out);
    return out;
}

/* Detaches the due list as a NULL-terminated chain. */
static struct timer_link *due_take_chain(struct timer_wheel *w)
{
    if (list_empty(&w->due))
        return NULL;
    w->due.prev->next = NULL;
    struct timer_link *chain = w->due.next;
    list_init(&w->due);
    return chain;
}

/* Adds a chain of due timers. The due list is normally empty when a slot
 * opens (it was fired first), but merging keeps this correct regardless. */
static void due_add_chain(struct timer_wheel *w, struct timer_link *chain)
{
    chain = chain_merge(due_take_chain(w), chain_sort(chain));
    struct timer_link *prev = &w->due;
    for (struct timer_link *l = chain; l; l = l->next) {
        l->prev = prev;
        prev->next = l;
        link_timer(l)->bucket = TIMER_DUE;
        prev = l;
    }
    prev->next = &w->due;
    w->due.prev = prev;
}

/* Opens a slot whose start is the new clk: its timers move down a level or,
 * once their tick is reached, onto the due list. */
static void cascade(struct timer_wheel *w, unsigned bucket)
{
    struct timer_link *head = &w->slots[bucket];
    struct timer_link *chain = NULL;
    w->occupied[bucket / SLOTS] &= ~((uint64_t)1 << (bucket % SLOTS));
    /* Detach first: re-placement must never see the slot being emptied. */
    head->prev->next = NULL;
    struct timer_link *l = head->next;
    list_init(head);
    while (l) {
        struct timer_link *next = l->next;
        struct timer *t = link_timer(l);
        uint64_t tick = tick_of(w, t->deadline_ns);
        if (tick <= w->clk) {
            l->next = chain;
            chain = l;
        } else {
            wheel_insert(w, t, tick);
        }
        l = next;
    }
    if (chain)
        due_add_chain(w, chain);
}

/* Runs due timers whose deadline has passed. Each is disarmed before its
 * callback so that the callback may re-arm it; the head is re-read every
 * time since a callback may cancel or add due timers. */
static unsigned fire_due(struct timer_wheel *w, uint64_t now_ns)
{
    unsigned fired = 0;
    while (!list_empty(&w->due)) {
        struct timer *t = link_timer(w->due.next);
        if (t->deadline_ns > now_ns)
            break;
        list_unlink(&t->link);
        t->bucket = TIMER_IDLE;
        t->fn(t);
        fired++;
    }
    return fired;
}

unsigned timer_wheel_advance(struct timer_wheel *w, uint64_t now_ns)
{
    uint64_t target = tick_of(w, now_ns);
    unsigned fired = 0;
    /* One iteration per occupied slot, not per tick: empty stretches of any
     * length are skipped through the bitmaps. */
    for (;;) {
        fired += fire_due(w, now_ns);
        unsigned bucket;
        uint64_t start;
        if (!next_slot(w, &bucket, &start) || start > target)
            break;
        w->clk = start;
        cascade(w, bucket);
    }
    if (target > w->clk)
        w->clk = target;
    return fired;
}

uint64_t timer_wheel_next_deadline(const struct timer_wheel *w)
{
    /* Due timers precede everything in the wheel, whose ticks are > clk. */
    if (!list_empty(&w->due))
        return link_timer(w->due.next)->deadline_ns;
    unsigned bucket;
    uint64_t start;
    if (!next_slot(w, &bucket, &start))
        return UINT64_MAX;
    /* start <= some timer's tick, so this cannot overflow. */
    return start << w->shift;
}
