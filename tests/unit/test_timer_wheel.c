/*
 * Timer wheel tests: a virtual nanosecond clock driven in random steps,
 * including huge jumps, checked against the guarantees in timer_wheel.h.
 */
#include "check.h"

#include "../../kernel/timer_wheel.c"

#include <stdint.h>
#include <string.h>
#include <time.h>

/* xorshift64*: deterministic, so failures reproduce. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static uint64_t rnd_below(uint64_t n)
{
    return n ? rnd() % n : 0;
}

/* Random value of random bit length: exercises every level of the wheel. */
static uint64_t rnd_span(unsigned max_bits)
{
    unsigned bits = (unsigned)rnd_below(max_bits + 1);
    return bits == 0 ? 0 : rnd() >> (64 - bits);
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Test harness state shared by callbacks (test code only). */
struct owner;

struct harness {
    struct timer_wheel wheel;
    uint64_t now;               /* `now` of the advance in progress */
    uint64_t last_deadline;     /* of the last timer fired */
    uint64_t last_seq;
    bool any_fired;
    unsigned fired;
    bool order_ok;
    bool early_ok;
};

struct owner {
    struct timer t;
    struct harness *h;
    uint64_t deadline;          /* what we armed it for */
    bool armed;
    unsigned fire_count;
    uint64_t fired_at;          /* now of the advance it fired in */
    /* optional behaviour in the callback */
    uint64_t period;            /* re-arm self at deadline + period */
    unsigned repeats;
    struct owner *cancel_other;
    struct owner *arm_other;
    uint64_t arm_other_at;
};

static struct harness H;

#define OWNER(tp) ((struct owner *)((char *)(tp) - offsetof(struct owner, t)))

static void record_fire(struct harness *h, struct owner *o)
{
    struct timer *t = &o->t;
    if (t->deadline_ns > h->now || t->deadline_ns != o->deadline)
        h->early_ok = false;
    if (h->any_fired && (t->deadline_ns < h->last_deadline ||
                         (t->deadline_ns == h->last_deadline && t->seq < h->last_seq)))
        h->order_ok = false;
    h->any_fired = true;
    h->last_deadline = t->deadline_ns;
    h->last_seq = t->seq;
    h->fired++;
    o->fire_count++;
    o->fired_at = h->now;
    o->armed = false;
}

static void on_fire(struct timer *t)
{
    struct owner *o = OWNER(t);
    struct harness *h = o->h;
    record_fire(h, o);
    if (timer_pending(t))
        h->early_ok = false;    /* must be disarmed while its callback runs */
    if (o->cancel_other && o->cancel_other->armed) {
        timer_cancel(&h->wheel, &o->cancel_other->t);
        o->cancel_other->armed = false;
    }
    if (o->arm_other) {
        o->arm_other->deadline = o->arm_other_at;
        o->arm_other->armed = true;
        timer_arm(&h->wheel, &o->arm_other->t, o->arm_other_at);
    }
    if (o->repeats) {
        o->repeats--;
        o->deadline = sat_add(o->deadline, o->period);
        o->armed = true;
        timer_arm(&h->wheel, t, o->deadline);
    }
}

static void harness_init(struct harness *h, uint64_t now, unsigned shift)
{
    memset(h, 0, sizeof(*h));
    timer_wheel_init(&h->wheel, now, shift);
    h->now = now;
    h->order_ok = true;
    h->early_ok = true;
}

static void owner_init(struct owner *o, struct harness *h)
{
    memset(o, 0, sizeof(*o));
    timer_init(&o->t, on_fire);
    o->h = h;
}

static void arm(struct harness *h, struct owner *o, uint64_t deadline)
{
    o->deadline = deadline;
    o->armed = true;
    timer_arm(&h->wheel, &o->t, deadline);
}

/* Order is checked within one advance: a timer armed later for an earlier
 * (even past) deadline legitimately fires after later deadlines did. */
static unsigned advance(struct harness *h, uint64_t now)
{
    h->now = now;
    h->any_fired = false;
    return timer_wheel_advance(&h->wheel, now);
}

/* White-box: occupancy bits match the slot lists, every linked timer
 * records its bucket, placement invariants hold, due list is sorted. */
static bool wheel_consistent(const struct timer_wheel *w, unsigned *count)
{
    unsigned n = 0;
    for (unsigned b = 0; b < LEVELS * SLOTS; b++) {
        const struct timer_link *head = &w->slots[b];
        bool bit = (w->occupied[b / SLOTS] >> (b % SLOTS)) & 1;
        if (bit == list_empty(head))
            return false;
        for (const struct timer_link *l = head->next; l != head; l = l->next) {
            const struct timer *t = link_timer((struct timer_link *)l);
            if (t->bucket != b || tick_of(w, t->deadline_ns) <= w->clk)
                return false;
            n++;
        }
    }
    const struct timer *prev = NULL;
    for (const struct timer_link *l = w->due.next; l != &w->due; l = l->next) {
        const struct timer *t = link_timer((struct timer_link *)l);
        if (t->bucket != TIMER_DUE || (prev && fires_before(t, prev)))
            return false;
        if (tick_of(w, t->deadline_ns) > w->clk)
            return false;
        prev = t;
        n++;
    }
    *count = n;
    return true;
}

static uint64_t earliest_armed(struct owner *os, unsigned n)
{
    uint64_t e = UINT64_MAX;
    bool any = false;
    for (unsigned i = 0; i < n; i++) {
        if (os[i].armed && (!any || os[i].deadline < e)) {
            e = os[i].deadline;
            any = true;
        }
    }
    return any ? e : UINT64_MAX;
}

TEST(fires_exactly_not_rounded)
{
    struct owner o;
    harness_init(&H, 1000000, 16);
    owner_init(&o, &H);
    arm(&H, &o, 1000000 + 1000);    /* well inside the current 65.5 us tick */
    CHECK(timer_pending(&o.t));
    CHECK_EQ(advance(&H, 1000000 + 999), 0);
    CHECK(timer_pending(&o.t));
    CHECK_EQ(timer_wheel_next_deadline(&H.wheel), 1000000 + 1000);
    CHECK_EQ(advance(&H, 1000000 + 1000), 1);
    CHECK(!timer_pending(&o.t));
    CHECK_EQ(o.fire_count, 1);
    CHECK_EQ(advance(&H, 1000000 + 5000000), 0);
    CHECK_EQ(timer_wheel_next_deadline(&H.wheel), UINT64_MAX);
    CHECK(H.early_ok);
}

TEST(past_deadline_fires_on_next_advance)
{
    struct owner o;
    harness_init(&H, 1u << 30, 16);
    owner_init(&o, &H);
    arm(&H, &o, 5);
    CHECK(timer_wheel_next_deadline(&H.wheel) <= 5);
    CHECK_EQ(advance(&H, 1u << 30), 1);
    CHECK_EQ(o.fire_count, 1);
    arm(&H, &o, 0);
    CHECK_EQ(advance(&H, 1u << 30), 1);
    CHECK_EQ(o.fire_count, 2);
}

TEST(next_tick_boundary)
{
    /* Deadline in the next tick and in the next 64-tick block. */
    struct owner a, b;
    harness_init(&H, 63u << 16, 16);
    owner_init(&a, &H);
    owner_init(&b, &H);
    arm(&H, &a, (64u << 16) + 7);
    arm(&H, &b, (64u << 16) - 1);
    CHECK(timer_wheel_next_deadline(&H.wheel) <= (64u << 16) - 1);
    CHECK_EQ(advance(&H, (64u << 16) - 2), 0);
    CHECK_EQ(advance(&H, (64u << 16) + 6), 1);
    CHECK_EQ(b.fire_count, 1);
    CHECK_EQ(timer_wheel_next_deadline(&H.wheel), (64u << 16) + 7);
    CHECK_EQ(advance(&H, (64u << 16) + 7), 1);
    CHECK_EQ(a.fire_count, 1);
}

TEST(cancel)
{
    struct owner o[3];
    harness_init(&H, 0, 16);
    for (int i = 0; i < 3; i++)
        owner_init(&o[i], &H);
    CHECK(!timer_cancel(&H.wheel, &o[0].t));
    arm(&H, &o[0], 100);                /* due list */
    arm(&H, &o[1], 1ull << 30);         /* low level */
    arm(&H, &o[2], 1ull << 60);         /* clamped into the top level */
    for (int i = 0; i < 3; i++) {
        CHECK(timer_pending(&o[i].t));
        CHECK(timer_cancel(&H.wheel, &o[i].t));
        CHECK(!timer_pending(&o[i].t));
        CHECK(!timer_cancel(&H.wheel, &o[i].t));
    }
    unsigned n;
    CHECK(wheel_consistent(&H.wheel, &n));
    CHECK_EQ(n, 0);
    CHECK_EQ(timer_wheel_next_deadline(&H.wheel), UINT64_MAX);
    CHECK_EQ(advance(&H, UINT64_MAX), 0);
}

TEST(rearm_moves_pending_timer)
{
    struct owner o;
    harness_init(&H, 0, 16);
    owner_init(&o, &H);
    arm(&H, &o, 1ull << 40);
    arm(&H, &o, 1000);
    CHECK_EQ(advance(&H, 1000), 1);
    CHECK_EQ(advance(&H, 1ull << 41), 0);
    arm(&H, &o, 1ull << 42);
    arm(&H, &o, 1ull << 50);
    CHECK_EQ(advance(&H, 1ull << 49), 0);
    CHECK_EQ(advance(&H, 1ull << 50), 1);
    CHECK_EQ(o.fire_count, 2);
    unsigned n;
    CHECK(wheel_consistent(&H.wheel, &n));
    CHECK_EQ(n, 0);
}

TEST(ties_fire_in_arming_order_across_levels)
{
    /* a is armed far ahead (high level), b..d later with the same deadline
     * from much closer (low level, due list). Arming order must win. */
    struct owner o[4];
    uint64_t d = (1ull << 36) + 12345;
    harness_init(&H, 0, 10);
    for (int i = 0; i < 4; i++)
        owner_init(&o[i], &H);
    arm(&H, &o[0], d);
    CHECK_EQ(advance(&H, d - 5000), 0);
    arm(&H, &o[1], d);
    CHECK_EQ(advance(&H, d - 3), 0);
    arm(&H, &o[2], d);
    arm(&H, &o[3], d - 1);
    CHECK_EQ(advance(&H, d), 4);
    CHECK(H.order_ok);
    CHECK(o[3].t.seq > o[2].t.seq);
    CHECK(H.early_ok);
}

TEST(deadline_uint64_max)
{
    struct owner o;
    harness_init(&H, 12345, 16);
    owner_init(&o, &H);
    arm(&H, &o, UINT64_MAX);
    CHECK(timer_wheel_next_deadline(&H.wheel) < UINT64_MAX);
    CHECK_EQ(advance(&H, UINT64_MAX - 1), 0);
    CHECK(timer_pending(&o.t));
    CHECK_EQ(advance(&H, UINT64_MAX), 1);
    CHECK_EQ(timer_wheel_next_deadline(&H.wheel), UINT64_MAX);
}

TEST(huge_jump_is_fast)
{
    /* 1 ns ticks, a few sparse timers, then jumps of hours and of centuries:
     * a per-tick loop would never finish. */
    static struct owner o[64];
    harness_init(&H, 0, 0);
    for (int i = 0; i < 64; i++) {
        owner_init(&o[i], &H);
        arm(&H, &o[i], (uint64_t)i * 3600ull * 1000000000ull + (uint64_t)i);
    }
    clock_t start = clock();
    CHECK_EQ(advance(&H, 10ull * 3600 * 1000000000ull), 10);
    CHECK_EQ(advance(&H, UINT64_MAX / 2), 54);
    CHECK_EQ(advance(&H, UINT64_MAX), 0);
    CHECK((double)(clock() - start) / CLOCKS_PER_SEC < 1.0);
    CHECK(H.order_ok);
    CHECK(H.early_ok);
}

TEST(callbacks_arm_and_cancel)
{
    /* p: periodic, re-arms itself 5 times every 1 ms.
     * a: at 1.5 ms cancels c (due at 3 ms) and arms d for 2.5 ms (before
     *    several pending timers, still inside this advance). */
    struct owner p, a, c, d;
    harness_init(&H, 0, 16);
    owner_init(&p, &H);
    owner_init(&a, &H);
    owner_init(&c, &H);
    owner_init(&d, &H);
    p.period = 1000000;
    p.repeats = 5;
    arm(&H, &p, 1000000);
    a.cancel_other = &c;
    a.arm_other = &d;
    a.arm_other_at = 2500000;
    arm(&H, &a, 1500000);
    arm(&H, &c, 3000000);
    CHECK_EQ(advance(&H, 100000000), 6 + 1 + 1);
    CHECK_EQ(p.fire_count, 6);
    CHECK_EQ(a.fire_count, 1);
    CHECK_EQ(c.fire_count, 0);
    CHECK_EQ(d.fire_count, 1);
    CHECK(H.order_ok);
    CHECK(H.early_ok);
    CHECK_EQ(timer_wheel_next_deadline(&H.wheel), UINT64_MAX);
}

TEST(self_rearm_into_future)
{
    /* A callback re-arming itself for later must not run again now. */
    struct owner p;
    harness_init(&H, 0, 16);
    owner_init(&p, &H);
    p.period = 1ull << 33;
    p.repeats = 1000;
    arm(&H, &p, 1ull << 33);
    for (uint64_t now = 0; now <= 10ull << 33; now += 1ull << 32)
        advance(&H, now);
    CHECK_EQ(p.fire_count, 10);
    CHECK(H.order_ok);
    CHECK(H.early_ok);
}

/* Deadlines beyond one top-level rotation (2^(36+shift) ns) are re-cascaded
 * once per rotation; keep them within 2^ROTATIONS_LOG2 rotations. */
#define ROTATIONS_LOG2 11

static unsigned max_delta_bits(unsigned shift)
{
    unsigned bits = SPAN_BITS + shift + ROTATIONS_LOG2;
    return bits < 64 ? bits : 64;
}

/* Drives the wheel only at the times next_deadline asks for: every timer
 * must then fire at exactly its deadline, with a bounded number of wakeups
 * (one per slot opening per level, plus one per rotation). */
static void drive_by_next_deadline(unsigned shift)
{
    enum { N = 2000, MAX_WAKEUPS = N * (LEVELS + 2) + (2 << ROTATIONS_LOG2) };
    static struct owner o[N];
    uint64_t start = rnd_span(60);
    harness_init(&H, start, shift);
    for (unsigned i = 0; i < N; i++) {
        owner_init(&o[i], &H);
        arm(&H, &o[i], sat_add(start, rnd_span(max_delta_bits(shift))));
    }
    unsigned wakeups = 0;
    bool exact = true, bound_ok = true;
    for (;;) {
        uint64_t next = timer_wheel_next_deadline(&H.wheel);
        if (next == UINT64_MAX && H.fired == N)
            break;
        if (next > earliest_armed(o, N))
            bound_ok = false;
        advance(&H, next);
        if (++wakeups > MAX_WAKEUPS)
            break;
    }
    for (unsigned i = 0; i < N; i++)
        exact &= o[i].fire_count == 1 && o[i].fired_at == o[i].deadline;
    CHECK(exact);
    CHECK(bound_ok);
    CHECK_EQ(H.fired, N);
    CHECK(wakeups <= MAX_WAKEUPS);
    CHECK(H.order_ok);
}

TEST(next_deadline_drives_exactly)
{
    drive_by_next_deadline(0);
    drive_by_next_deadline(10);
    drive_by_next_deadline(16);
    drive_by_next_deadline(30);
}

/* Random mix of arm, re-arm, cancel and advance with random steps, checked
 * against a model after every advance. */
static void random_workload(unsigned shift, uint64_t start)
{
    enum { N = 3000, ROUNDS = 3000 };
    static struct owner o[N];
    harness_init(&H, start, shift);
    for (unsigned i = 0; i < N; i++)
        owner_init(&o[i], &H);
    uint64_t now = start;
    bool never_early = true, on_time = true, bound_ok = true, consistent = true;
    unsigned expected = 0;
    for (unsigned round = 0; round < ROUNDS; round++) {
        for (unsigned k = rnd_below(8); k > 0; k--) {
            struct owner *x = &o[rnd_below(N)];
            unsigned op = (unsigned)rnd_below(10);
            if (op < 7) {
                /* mostly future deadlines at every scale, some in the past */
                uint64_t d = op == 0 ? now - rnd_below(now < 100000 ? now + 1 : 100000)
                                     : sat_add(now, rnd_span(op == 1 ? max_delta_bits(shift) : 44));
                arm(&H, x, d);
            } else {
                bool was = x->armed;
                CHECK_EQ(timer_cancel(&H.wheel, &x->t), was);
                x->armed = false;
            }
        }
        uint64_t next = timer_wheel_next_deadline(&H.wheel);
        uint64_t earliest = earliest_armed(o, N);
        if (next > earliest)
            bound_ok = false;
        /* steps: sub-tick, a few ticks, large, and occasionally huge */
        unsigned kind = (unsigned)rnd_below(20);
        uint64_t step = kind < 8 ? rnd_below(1ull << shift | 1)
                      : kind < 16 ? rnd_span(24)
                      : kind < 19 ? rnd_span(40)
                      : rnd_span(56);
        if (kind == 7 && next != UINT64_MAX && next > now)
            step = next - now;      /* land exactly on a deadline */
        now = sat_add(now, step);
        for (unsigned i = 0; i < N; i++)
            expected += o[i].armed && o[i].deadline <= now;
        H.fired = 0;
        unsigned ran = advance(&H, now);
        CHECK_EQ(ran, H.fired);
        for (unsigned i = 0; i < N; i++) {
            if (o[i].fire_count > 1 || (o[i].armed && o[i].deadline <= now))
                on_time = false;
            if (o[i].fire_count == 1 && o[i].fired_at != now)
                never_early = false;
            o[i].fire_count = 0;
        }
        expected -= ran;
        unsigned linked;
        unsigned armed = 0;
        for (unsigned i = 0; i < N; i++)
            armed += o[i].armed;
        if (!wheel_consistent(&H.wheel, &linked) || linked != armed)
            consistent = false;
    }
    CHECK_EQ(expected, 0);
    /* flush: everything left fires exactly once */
    advance(&H, UINT64_MAX);
    for (unsigned i = 0; i < N; i++)
        on_time &= !o[i].armed && o[i].fire_count <= 1;
    CHECK(never_early);
    CHECK(on_time);
    CHECK(bound_ok);
    CHECK(consistent);
    CHECK(H.order_ok);
    CHECK(H.early_ok);
    CHECK_EQ(timer_wheel_next_deadline(&H.wheel), UINT64_MAX);
}

TEST(random_workload_shift_16)
{
    random_workload(16, 1ull << 40);
}

TEST(random_workload_shift_0)
{
    random_workload(0, 12345);
}

TEST(random_workload_shift_20_late_clock)
{
    /* Starts late in the 64-bit range so clamped timers meet the end. */
    random_workload(20, UINT64_MAX - (1ull << 58));
}

TEST(random_workload_shift_8_block_edges)
{
    /* Start just before a top-level block boundary (2^36 ticks). */
    random_workload(8, ((1ull << 36) << 8) - 5000);
}

/* Many timers sharing a few slots with random deadlines: exercises the
 * batch sort (order is checked by the harness on every fire). */
TEST(big_batch_sorted)
{
    enum { N = 20000 };
    static struct owner o[N];
    harness_init(&H, 0, 20);
    for (unsigned i = 0; i < N; i++) {
        owner_init(&o[i], &H);
        arm(&H, &o[i], (1ull << 30) + rnd_below(4ull << 20));
    }
    CHECK_EQ(advance(&H, 1ull << 31), N);
    CHECK(H.order_ok);
    CHECK(H.early_ok);
}

TEST_MAIN()
