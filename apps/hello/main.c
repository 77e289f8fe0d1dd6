/*
 * hello: the foundation's self-test. Every shard greets once, then shard 0
 * conducts these rounds, each across all shards:
 *   1. a token makes TOKEN_HOPS hops around the ring of shards (smp_call),
 *      then every shard floods every shard with numbered messages, far more
 *      than a ring holds, and each receiver checks none is lost or reordered;
 *   2. every shard allocates patterned blocks and sends them to the next
 *      shard, which verifies and frees them (cross-shard frees), then
 *      every shard must be back to its starting heap usage (no leak);
 *   3. every shard arms timers and checks each fires, never early, in
 *      deadline order; the worst lateness is reported, not judged.
 * Exit status 0 only if every check held.
 */
#include "../../runtime/shoal.h"

#define TOKEN_HOPS 10000
#define BLOCKS_PER_SHARD 1500
#define BLOCKS_PER_MSG 50
#define TIMERS_PER_SHARD 40
#define MAX_SHARDS 64
#define FLOOD_PER_RECEIVER 16000

struct block_msg {
    unsigned from, count;
    uint8_t *blocks[BLOCKS_PER_MSG];
    size_t sizes[BLOCKS_PER_MSG];
};

struct hello_timer {
    struct timer t;
    uint64_t deadline;
    unsigned seq;
};

struct shard {
    unsigned id;
    size_t heap_baseline;
    uint64_t rng;
    /* round 2 */
    uint32_t flood_next[MAX_SHARDS];   /* next sequence number expected from each sender */
    unsigned flood_received, flood_echoes, flood_errors;
    unsigned blocks_verified, block_errors;
    /* round 3 */
    struct hello_timer *timers;
    unsigned timers_fired;
    uint64_t last_deadline, max_late_ns;
    struct task report_task;
};

/* One pointer per shard, each written once by its own shard. */
static struct shard *shards[MAX_SHARDS];

/* Touched only on shard 0, which conducts; static so that it exists before
   any shard's app_main has run. */
static struct { unsigned acks, failures; uint64_t worst_late_ns; } conductor;

static struct shard *me(void) { return shards[shard_id()]; }
static unsigned next_shard(void) { return (shard_id() + 1) % shard_count(); }

static uint64_t rng_next(struct shard *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng;
}

static uint8_t pattern(unsigned from, size_t i, size_t off) { return (uint8_t)(from * 31 + i * 7 + off); }

static void fail(const char *what, unsigned value)
{
    shoal_print("hello: FAILED on cpu %u: %s (%u)\n", shard_id(), what, value);
    shoal_exit(1);
}

/* ---- conductor ---- */

static void start_tokens(void);
static void start_flood(void *);
static void start_blocks(void *);
static void start_flush(void *);
static void start_leak_check(void *);
static void start_timers(void *);

static void broadcast(void (*fn)(void *))
{
    for (unsigned i = 0; i < shard_count(); i++)
        smp_call(i, fn, 0);
}

static bool all_acked(void)
{
    if (++conductor.acks < shard_count())
        return false;
    conductor.acks = 0;
    return true;
}

/* A shard's report of `failures` for a round: true once every shard has
   reported and none failed; exits the VM with `what` if any did. */
static bool round_passed(unsigned failures, const char *what)
{
    conductor.failures += failures;
    if (!all_acked())
        return false;
    if (conductor.failures)
        fail(what, conductor.failures);
    return true;
}

static void greeted(void *arg)
{
    (void)arg;
    if (all_acked())
        start_tokens();
}

static void blocks_done(void *errors)
{
    if (!round_passed((unsigned)(uintptr_t)errors, "block contents corrupted"))
        return;
    shoal_print("hello: %u blocks per shard crossed shards intact\n", BLOCKS_PER_SHARD);
    broadcast(start_flush);
}

static void flushed(void *arg)
{
    (void)arg;
    if (all_acked())
        broadcast(start_leak_check);
}

static void leak_reported(void *leaked)
{
    if ((uintptr_t)leaked)
        shoal_print("hello: a shard leaked %lu bytes\n", (unsigned long)(uintptr_t)leaked);
    if (!round_passed((uintptr_t)leaked != 0, "heap not back to its starting size"))
        return;
    shoal_print("hello: every shard's heap is back to its starting size\n");
    broadcast(start_timers);
}

static void timers_reported(void *late_ns)
{
    if ((uintptr_t)late_ns > conductor.worst_late_ns)
        conductor.worst_late_ns = (uintptr_t)late_ns;
    if (!round_passed(0, "timers"))
        return;
    shoal_print("hello: %u timers per shard fired in order, none early, worst lateness %lu us\n",
                TIMERS_PER_SHARD, (unsigned long)(conductor.worst_late_ns / 1000));
    shoal_print("hello: every idle shard halted instead of spinning\n");
    shoal_print("hello: all checks passed\n");
    shoal_exit(0);
}

/* ---- round 1: token ring ---- */

static void token_hop(void *arg)
{
    uintptr_t hops = (uintptr_t)arg + 1;
    if (hops < TOKEN_HOPS) {
        smp_call(next_shard(), token_hop, (void *)hops);
        return;
    }
    shoal_print("hello: token made %u hops around %u shards\n", TOKEN_HOPS, shard_count());
    broadcast(start_flood);
}

/* ---- round 1b: a flood far beyond the rings' capacity ---- */

static unsigned flood_per_pair(void) { return FLOOD_PER_RECEIVER / shard_count(); }

static void flood_done(void *errors)
{
    if (!round_passed((unsigned)(uintptr_t)errors, "flood messages lost or out of order"))
        return;
    shoal_print("hello: %u messages from every shard to every shard arrived in order\n", flood_per_pair());
    broadcast(start_blocks);
}

/* Done when this shard has received everything sent to it and every echo of what it sent. */
static void flood_check_done(struct shard *s)
{
    unsigned expected = flood_per_pair() * shard_count();
    if (s->flood_received == expected && s->flood_echoes == expected)
        smp_call(0, flood_done, (void *)(uintptr_t)s->flood_errors);
}

static void flood_echo(void *arg)
{
    (void)arg;
    struct shard *s = me();
    s->flood_echoes++;
    flood_check_done(s);
}

/* Every message is echoed, so both directions of every pair are full at once:
   a handler's own smp_call meets a full ring. */
static void flood_receive(void *arg)
{
    struct shard *s = me();
    unsigned from = (unsigned)((uintptr_t)arg >> 32);
    uint32_t seq = (uint32_t)(uintptr_t)arg;
    s->flood_errors += seq != s->flood_next[from];
    s->flood_next[from] = seq + 1;
    s->flood_received++;
    smp_call(from, flood_echo, 0);
    flood_check_done(s);
}

static void start_flood(void *arg)
{
    (void)arg;
    for (uint32_t seq = 0; seq < flood_per_pair(); seq++)
        for (unsigned to = 0; to < shard_count(); to++)
            smp_call(to, flood_receive, (void *)(((uintptr_t)shard_id() << 32) | seq));
}

static void start_tokens(void) { smp_call(next_shard(), token_hop, (void *)(uintptr_t)0); }

/* ---- round 2: cross-shard frees ---- */

static void receive_blocks(void *arg)
{
    struct block_msg *m = arg;
    struct shard *s = me();
    for (unsigned i = 0; i < m->count; i++) {
        for (size_t off = 0; off < m->sizes[i]; off++) {
            if (m->blocks[i][off] != pattern(m->from, m->sizes[i], off)) {
                s->block_errors++;
                break;
            }
        }
        free(m->blocks[i]);
    }
    s->blocks_verified += m->count;
    free(m);
    if (s->blocks_verified == BLOCKS_PER_SHARD)
        smp_call(0, blocks_done, (void *)(uintptr_t)s->block_errors);
}

static size_t block_size(struct shard *s)
{
    uint64_t r = rng_next(s);
    switch (r % 8) {
    case 0: return (r >> 8) % 16 ? 1 + r % 300 : 65536 + r % 4096; /* rare large: whole pages */
    case 1: return r % 4096;
    default: return 1 + r % 300;
    }
}

static void start_blocks(void *arg)
{
    (void)arg;
    struct shard *s = me();
    for (unsigned sent = 0; sent < BLOCKS_PER_SHARD;) {
        struct block_msg *m = malloc(sizeof *m);
        if (!m)
            fail("out of memory for a message", sent);
        m->from = s->id;
        m->count = 0;
        for (; m->count < BLOCKS_PER_MSG && sent < BLOCKS_PER_SHARD; m->count++, sent++) {
            size_t n = block_size(s);
            uint8_t *b = malloc(n);
            if (!b)
                fail("out of memory for a block", sent);
            for (size_t off = 0; off < n; off++)
                b[off] = pattern(s->id, n, off);
            m->blocks[m->count] = b;
            m->sizes[m->count] = n;
        }
        smp_call(next_shard(), receive_blocks, m);
    }
}

static void start_flush(void *arg)
{
    (void)arg;
    shoal_flush_remote_frees();
    smp_call(0, flushed, 0);
}

/* As a task, the report runs after this reactor pass has drained every ring,
   so frees sent home before the conductor asked have all been applied. */
static void report_leak(struct task *t)
{
    (void)t;
    struct shard *s = me();
    size_t now = shoal_heap_bytes_in_use();
    smp_call(0, leak_reported, (void *)(uintptr_t)(now > s->heap_baseline ? now - s->heap_baseline : 0));
}

static void start_leak_check(void *arg)
{
    (void)arg;
    struct shard *s = me();
    task_init(&s->report_task, report_leak);
    task_schedule(&s->report_task);
}

/* ---- round 3: timers ---- */

static void timer_fired(struct timer *t)
{
    struct hello_timer *ht = (struct hello_timer *)t;
    struct shard *s = me();
    uint64_t now = now_ns();
    if (now < ht->deadline)
        fail("timer fired early, ns", (unsigned)(ht->deadline - now));
    if (ht->deadline < s->last_deadline)
        fail("timer fired out of order, seq", ht->seq);
    s->last_deadline = ht->deadline;
    if (now - ht->deadline > s->max_late_ns)
        s->max_late_ns = now - ht->deadline;
    if (++s->timers_fired < TIMERS_PER_SHARD)
        return;
    free(s->timers);
    s->timers = 0;
    /* The shard waited up to 300 ms for this timer with nothing else to do: it must have halted. */
    struct shoal_reactor_stats st;
    shoal_reactor_stats(s->id, &st);
    if (!st.halts)
        fail("an idle shard never halted", s->id);
    smp_call(0, timers_reported, (void *)(uintptr_t)s->max_late_ns);
}

static void start_timers(void *arg)
{
    (void)arg;
    struct shard *s = me();
    s->timers = calloc(TIMERS_PER_SHARD, sizeof *s->timers);
    if (!s->timers)
        fail("out of memory for timers", 0);
    uint64_t now = now_ns();
    for (unsigned i = 0; i < TIMERS_PER_SHARD; i++) {
        struct hello_timer *ht = &s->timers[i];
        /* Spread over 0-60 ms, with a few far enough to need the wheel's upper levels. */
        uint64_t delay = (rng_next(s) % 60000) * 1000;
        if (i % 10 == 9)
            delay = 100000000 + (rng_next(s) % 200) * 1000000;
        ht->deadline = now + delay;
        ht->seq = i;
        shoal_timer_init(&ht->t, timer_fired);
        shoal_timer_arm(&ht->t, ht->deadline);
    }
}

/* Application code may use SSE: the compiler is free to here, and the kernel must have enabled it. */
static void check_floating_point(unsigned id)
{
    volatile double x = id + 0.5;
    double sum = 0;
    for (int i = 1; i <= 1000; i++)
        sum += x / i;
    double harmonic = sum / x;
    if (harmonic < 7.4854 || harmonic > 7.4855)
        fail("floating point gave a wrong harmonic number, x1e6", (unsigned)(harmonic * 1e6));
}

void app_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct shard *s = calloc(1, sizeof *s);
    if (!s)
        fail("out of memory for shard state", 0);
    s->id = shard_id();
    s->rng = 0x9E3779B97F4A7C15ULL ^ (s->id + 1) * 0x100000001B3ULL;
    shards[s->id] = s;
    s->heap_baseline = shoal_heap_bytes_in_use();
    check_floating_point(s->id);
    shoal_print("hello from cpu %u of %u\n", shard_id(), shard_count());
    smp_call(0, greeted, 0);
}
