/*
 * SPSC ring tests: single-threaded edge cases, then a producer and a
 * consumer thread exchanging 10 million messages in order.
 */
#include "check.h"

#include "../../kernel/spsc_ring.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

static void fn_a(void *arg) { (void)arg; }
static void fn_b(void *arg) { if (!arg) abort(); }

static struct spsc_ring *ring_new(uint32_t capacity)
{
    size_t bytes = spsc_ring_bytes(capacity);
    bytes = (bytes + SPSC_CACHE_LINE - 1) & ~(size_t)(SPSC_CACHE_LINE - 1);
    struct spsc_ring *r = aligned_alloc(SPSC_CACHE_LINE, bytes);
    spsc_ring_init(r, capacity);
    return r;
}

TEST(layout)
{
    CHECK(offsetof(struct spsc_ring, cons) - offsetof(struct spsc_ring, prod) >= 64);
    CHECK(offsetof(struct spsc_ring, entries) - offsetof(struct spsc_ring, cons) >= 64);
    CHECK_EQ(offsetof(struct spsc_ring, entries) % 64, 0);
    CHECK_EQ(spsc_ring_bytes(8), sizeof(struct spsc_ring) + 8 * sizeof(struct spsc_msg));
}

TEST(empty_and_full)
{
    struct spsc_ring *r = ring_new(4);
    struct spsc_msg m = { 0 };
    CHECK(spsc_ring_empty(r));
    CHECK_EQ(spsc_ring_count(r), 0);
    CHECK(!spsc_ring_pop(r, &m));
    for (uintptr_t i = 0; i < 4; i++)
        CHECK(spsc_ring_push(r, fn_a, (void *)i));
    CHECK(!spsc_ring_empty(r));
    CHECK_EQ(spsc_ring_count(r), 4);
    CHECK(!spsc_ring_push(r, fn_b, (void *)99));
    CHECK_EQ(spsc_ring_count(r), 4);
    CHECK(spsc_ring_pop(r, &m));
    CHECK(m.fn == fn_a && m.arg == (void *)0);
    CHECK(spsc_ring_push(r, fn_b, (void *)4));
    CHECK(!spsc_ring_push(r, fn_b, (void *)5));
    for (uintptr_t i = 1; i <= 4; i++) {
        CHECK(spsc_ring_pop(r, &m));
        CHECK(m.arg == (void *)i);
        CHECK(m.fn == (i == 4 ? fn_b : fn_a));
    }
    CHECK(!spsc_ring_pop(r, &m));
    CHECK(spsc_ring_empty(r));
    free(r);
}

TEST(capacity_one)
{
    struct spsc_ring *r = ring_new(1);
    struct spsc_msg m = { 0 };
    for (uintptr_t i = 0; i < 10; i++) {
        CHECK(spsc_ring_push(r, fn_a, (void *)i));
        CHECK(!spsc_ring_push(r, fn_a, (void *)i));
        CHECK(spsc_ring_pop(r, &m));
        CHECK(m.arg == (void *)i);
        CHECK(!spsc_ring_pop(r, &m));
    }
    free(r);
}

TEST(wrap_around_indices)
{
    /* Many laps, and counters started near 2^32 to cross their overflow. */
    struct spsc_ring *r = ring_new(8);
    struct spsc_msg m = { 0 };
    r->prod.head = r->prod.tail_cache = UINT32_MAX - 20;
    r->cons.tail = r->cons.head_cache = UINT32_MAX - 20;
    uintptr_t next_in = 0, next_out = 0;
    bool ok = true;
    for (int round = 0; round < 1000; round++) {
        int pushes = round % 9, pops = (round * 7) % 9;
        for (int i = 0; i < pushes; i++) {
            bool full = spsc_ring_count(r) == 8;
            bool pushed = spsc_ring_push(r, fn_a, (void *)next_in);
            ok &= pushed != full;
            next_in += pushed;
        }
        for (int i = 0; i < pops; i++) {
            bool empty = spsc_ring_empty(r);
            bool popped = spsc_ring_pop(r, &m);
            ok &= popped != empty;
            if (popped)
                ok &= m.arg == (void *)next_out++;
        }
        ok &= spsc_ring_count(r) == next_in - next_out;
    }
    CHECK(ok);
    CHECK(next_out > 1000);
    free(r);
}

/* A handler may pop again: the entry it runs from is already released. */
struct reentry {
    struct spsc_ring *r;
    int depth;
    uintptr_t seen[4];
    int nseen;
};

static void reentrant(void *arg)
{
    struct reentry *e = arg;
    struct spsc_msg m = { 0 };
    e->seen[e->nseen++] = (uintptr_t)e->depth;
    if (e->depth++ < 2 && spsc_ring_pop(e->r, &m))
        m.fn(m.arg);
}

TEST(pop_reentry)
{
    struct spsc_ring *r = ring_new(2);
    struct reentry e = { r, 0, { 0 }, 0 };
    struct spsc_msg m = { 0 };
    CHECK(spsc_ring_push(r, reentrant, &e));
    CHECK(spsc_ring_push(r, reentrant, &e));
    CHECK(spsc_ring_pop(r, &m));
    /* the popped slot is free already, before the handler runs */
    CHECK(spsc_ring_push(r, reentrant, &e));
    m.fn(m.arg);
    CHECK_EQ(e.nseen, 3);
    CHECK(spsc_ring_empty(r));
    free(r);
}

#define MESSAGES 10000000u

struct pc {
    struct spsc_ring *r;
    uintptr_t received;
    bool in_order;
};

/* A body distinct from fn_a's, so the two never share an address. */
static void consume(void *arg)
{
    if ((uintptr_t)arg == 0)
        abort();
}

static void *producer(void *arg)
{
    struct pc *pc = arg;
    for (uintptr_t i = 1; i <= MESSAGES; i++) {
        void (*fn)(void *) = (i & 1) ? fn_a : consume;
        while (!spsc_ring_push(pc->r, fn, (void *)i))
            ;
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct pc *pc = arg;
    struct spsc_msg m = { 0 };
    uintptr_t expect = 1;
    while (expect <= MESSAGES) {
        if (!spsc_ring_pop(pc->r, &m))
            continue;
        void (*fn)(void *) = (expect & 1) ? fn_a : consume;
        if (m.arg != (void *)expect || m.fn != fn)
            pc->in_order = false;
        m.fn(m.arg);
        expect++;
    }
    pc->received = expect - 1;
    return NULL;
}

TEST(two_threads_ten_million)
{
    struct pc pc = { ring_new(256), 0, true };
    pthread_t p, c;
    CHECK_EQ(pthread_create(&c, NULL, consumer, &pc), 0);
    CHECK_EQ(pthread_create(&p, NULL, producer, &pc), 0);
    pthread_join(p, NULL);
    pthread_join(c, NULL);
    CHECK_EQ(pc.received, MESSAGES);
    CHECK(pc.in_order);
    CHECK(spsc_ring_empty(pc.r));
    free(pc.r);
}

TEST_MAIN()
