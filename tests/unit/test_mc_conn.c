/*
 * memcached's request pipeline (apps/memcached/conn.c) over four simulated
 * shards: smp_call messages are queued and delivered in an order the test
 * chooses (reversed, or shuffled), so answers from other shards come back
 * out of order, and the replies must still leave in request order. Also:
 * stats summed over shards, flush_all everywhere, a connection that goes
 * away with answers in flight (ASan checks nothing leaks or is used after
 * free), and output backpressure.
 */
#include "check.h"
#include "../../apps/memcached/outbuf.c"
#include "../../apps/memcached/store.c"
#include "../../apps/memcached/exec.c"
#include "../../apps/memcached/text.c"
#include "../../apps/memcached/binary.c"
#include "../../apps/memcached/settings.c"
#include "../../apps/memcached/shard.c"
#include "../../apps/memcached/stats.c"
#include "../../apps/memcached/conn.c"

#include <stdarg.h>
#include <string.h>

#define NSHARDS 4

/* --- the simulated runtime ------------------------------------------------ */
static unsigned cur_shard;
struct msg { unsigned to; void (*fn)(void *); void *arg; };
static struct msg queue[1 << 16];
static unsigned nqueued;
static uint64_t fake_ns = 1700000000ull * 1000000000ull;

unsigned shard_id(void) { return cur_shard; }
unsigned shard_count(void) { return NSHARDS; }
void smp_call(unsigned shard, void (*fn)(void *), void *arg)
{
    if (nqueued >= sizeof queue / sizeof *queue)
        abort();
    queue[nqueued++] = (struct msg){ shard, fn, arg };
}
bool smp_try_call(unsigned shard, void (*fn)(void *), void *arg)
{
    smp_call(shard, fn, arg);
    return true;
}
static void run_task(void *arg)
{
    struct task *t = arg;
    t->queued = false;
    t->fn(t);
}
void task_schedule(struct task *t)
{
    if (t->queued)
        return;
    t->queued = true;
    smp_call(cur_shard, run_task, t);
}
uint64_t now_ns(void) { return fake_ns; }
size_t shoal_heap_bytes_in_use(void) { return 0; }
uint64_t wall_ns(void) { return fake_ns; }
void shoal_timer_init(struct timer *t, void (*fn)(struct timer *)) { t->fn = fn; }
void shoal_timer_arm(struct timer *t, uint64_t deadline_ns) { t->deadline_ns = deadline_ns; }
bool shoal_timer_cancel(struct timer *t) { (void)t; return false; }
void shoal_reactor_stats(unsigned shard, struct shoal_reactor_stats *out) { (void)shard; *out = (struct shoal_reactor_stats){0}; }
void shoal_print(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}
void shoal_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static unsigned long long rng = 88172645463325252ull;
static unsigned next_rand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (unsigned)rng;
}

/* Delivers queued messages until none is left: FIFO per (from,to) pair is what the runtime promises, but
   across pairs any order is possible, so pick a random pair's oldest message each time. */
static void pump(void)
{
    unsigned home = cur_shard;
    while (nqueued) {
        unsigned pick = next_rand() % nqueued;
        /* the oldest message to the same target comes first (per-target FIFO is stronger than needed, still valid) */
        for (unsigned i = 0; i < pick; i++) {
            if (queue[i].to == queue[pick].to) {
                pick = i;
                break;
            }
        }
        struct msg m = queue[pick];
        memmove(queue + pick, queue + pick + 1, (nqueued - pick - 1) * sizeof *queue);
        nqueued--;
        cur_shard = m.to;
        m.fn(m.arg);
    }
    cur_shard = home;
}

/* --- a transport that records what it is given --------------------------- */
struct rec_conn {
    struct mc_conn conn;
    char out[1 << 22];
    size_t len, accept_max;         /* accept at most accept_max bytes per call (0: all) */
    bool finished, freed;
};
static size_t rec_send(struct mc_conn *c, const uint8_t *data, size_t len)
{
    struct rec_conn *r = (struct rec_conn *)c;
    size_t n = r->accept_max && len > r->accept_max ? r->accept_max : len;
    if (r->len + n > sizeof r->out)
        n = sizeof r->out - r->len;
    memcpy(r->out + r->len, data, n);
    r->len += n;
    return n;
}
static void rec_finish(struct mc_conn *c) { ((struct rec_conn *)c)->finished = true; }
static const struct mc_transport rec_tp = { .send = rec_send, .finish = rec_finish };

static void setup(void)
{
    static char a0[] = "memcached", a1[] = "-m", a2[] = "16";
    char *argv[] = { a0, a1, a2 };
    for (unsigned s = 0; s < NSHARDS; s++) {
        cur_shard = s;
        if (shards[s]) {
            mc_store_destroy(shards[s]->store);
            free(shards[s]);
            shards[s] = 0;
        }
        CHECK(mc_shard_init(3, argv));
    }
    cur_shard = 0;
}

static void teardown(void)
{
    for (unsigned s = 0; s < NSHARDS; s++) {
        if (shards[s]) {
            mc_store_destroy(shards[s]->store);
            free(shards[s]);
            shards[s] = 0;
        }
    }
}

static struct rec_conn *new_conn(void)
{
    struct rec_conn *r = calloc(1, sizeof *r);
    mc_conn_init(&r->conn, &rec_tp, r);
    return r;
}

static void send_str(struct rec_conn *r, const char *s)
{
    mc_conn_input(&r->conn, (const uint8_t *)s, strlen(s));
    pump();
}

static void free_rec(struct mc_conn *c) { free(c); }

static unsigned owner_of(const char *key) { return mc_key_shard((const uint8_t *)key, strlen(key), NSHARDS); }

/* A key shard 0 owns (its replies go straight to the connection's output), named PREFIX<n>. */
static void local_key(char *key, size_t size, const char *prefix)
{
    for (int i = 0;; i++) {
        snprintf(key, size, "%s%d", prefix, i);
        if (owner_of(key) == 0)
            return;
    }
}

/* Stores `len` bytes of 'v' under key, fed to the connection as a client would send them. */
static void store_big(struct rec_conn *r, const char *key, size_t len)
{
    static char big[1 << 20];
    char line[128];
    memset(big, 'v', len);
    snprintf(line, sizeof line, "set %s 0 0 %zu\r\n", key, len);
    send_str(r, line);
    mc_conn_input(&r->conn, (const uint8_t *)big, len);
    send_str(r, "\r\n");
}

TEST(multi_get_across_shards_in_order)
{
    setup();
    struct rec_conn *r = new_conn();
    char req[8192] = "", expect[16384] = "", key[32];
    unsigned per_shard[NSHARDS] = {0};
    for (int i = 0; i < 64; i++) {
        snprintf(key, sizeof key, "key%d", i);
        per_shard[owner_of(key)]++;
        char line[128];
        snprintf(line, sizeof line, "set %s %d 0 %zu\r\n%s\r\n", key, i, strlen(key), key);
        strcat(req, line);
    }
    send_str(r, req);
    for (unsigned s = 0; s < NSHARDS; s++)
        CHECK(per_shard[s] > 0);
    size_t stored = 0;
    for (char *p = r->out; (p = strstr(p, "STORED\r\n")); p++)
        stored++;
    CHECK_EQ(stored, 64);
    r->len = 0;
    strcpy(req, "get");
    for (int i = 63; i >= 0; i -= 3) {
        snprintf(key, sizeof key, " key%d", i);
        strcat(req, key);
        char v[96];
        snprintf(v, sizeof v, "VALUE key%d %d %zu\r\nkey%d\r\n", i, i, strlen(key) - 1, i);
        strcat(expect, v);
        if (i == 30) {
            strcat(req, " missing");
        }
    }
    strcat(req, "\r\n");
    strcat(expect, "END\r\n");
    send_str(r, req);
    CHECK_EQ(r->len, strlen(expect));
    CHECK(memcmp(r->out, expect, strlen(expect)) == 0);
    mc_conn_drop(&r->conn, free_rec);
    pump();
    teardown();
}

TEST(pipelined_mixed_commands_keep_order)
{
    setup();
    struct rec_conn *r = new_conn();
    char req[65536] = "", expect[65536] = "";
    for (int i = 0; i < 200; i++) {
        char line[256];
        snprintf(line, sizeof line, "set k%d 0 0 1\r\n%d\r\nincr k%d 5\r\nget k%d\r\ndelete k%d\r\nversion\r\n", i, i % 10,
                 i, i, i);
        strcat(req, line);
        snprintf(line, sizeof line, "STORED\r\n%d\r\nVALUE k%d 0 %d\r\n%d\r\nEND\r\nDELETED\r\nVERSION %s\r\n", i % 10 + 5,
                 i, i % 10 + 5 >= 10 ? 2 : 1, i % 10 + 5, MC_VERSION);
        strcat(expect, line);
    }
    send_str(r, req);
    CHECK_EQ(r->len, strlen(expect));
    CHECK(memcmp(r->out, expect, strlen(expect)) == 0);
    mc_conn_drop(&r->conn, free_rec);
    pump();
    teardown();
}

TEST(stats_sum_every_shard_and_flush_all_reaches_all)
{
    setup();
    struct rec_conn *r = new_conn();
    char req[16384] = "";
    for (int i = 0; i < 100; i++) {
        char line[64];
        snprintf(line, sizeof line, "set s%d 0 0 1 noreply\r\nx\r\n", i);
        strcat(req, line);
    }
    strcat(req, "stats\r\n");
    send_str(r, req);
    r->out[r->len] = 0;
    CHECK(strstr(r->out, "STAT curr_items 100\r\n") != 0);
    CHECK(strstr(r->out, "STAT cmd_set 100\r\n") != 0);
    CHECK(r->len >= 5 && memcmp(r->out + r->len - 5, "END\r\n", 5) == 0);
    r->len = 0;
    send_str(r, "flush_all\r\nget s1 s2 s3 s50 s99\r\nstats shards\r\n");
    r->out[r->len] = 0;
    CHECK(strncmp(r->out, "OK\r\nEND\r\n", 9) == 0);
    for (unsigned s = 0; s < NSHARDS; s++) {
        char line[64];
        snprintf(line, sizeof line, "STAT shard:%u:curr_items ", s);
        CHECK(strstr(r->out, line) != 0);
    }
    mc_conn_drop(&r->conn, free_rec);
    pump();
    teardown();
}

TEST(conn_gone_with_answers_in_flight)
{
    setup();
    struct rec_conn *r = new_conn();
    send_str(r, "set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\nset c 0 0 1\r\n3\r\nset d 0 0 1\r\n4\r\n");
    const char *req = "get a b c d\r\nstats\r\nget a\r\n";
    mc_conn_input(&r->conn, (const uint8_t *)req, strlen(req));
    mc_conn_drop(&r->conn, free_rec);    /* the client went away before any answer came back */
    pump();                               /* ASan: no use after free, no leak of slots or items */
    for (unsigned s = 0; s < NSHARDS; s++) {
        struct mc_store_stats st;
        cur_shard = s;
        mc_store_stats(shards[s]->store, &st);
        CHECK(st.curr_items <= 4);
    }
    cur_shard = 0;
    teardown();
}

TEST(backpressure_blocks_then_resumes)
{
    setup();
    struct rec_conn *r = new_conn();
    r->accept_max = 1000;                /* a slow reader */
    const size_t big = 400000;
    store_big(r, "big", big);
    r->len = 0;
    char req[4096] = "";
    for (int i = 0; i < 8; i++)
        strcat(req, "get big\r\n");
    send_str(r, req);
    CHECK(r->conn.blocked || r->len < 8 * big);
    for (int i = 0; i < 100000 && r->len < 8 * (big + 30); i++) {
        mc_conn_writable(&r->conn);
        pump();
    }
    char head[64];
    size_t one = (size_t)snprintf(head, sizeof head, "VALUE big 0 %zu\r\n", big) + big + 2;
    CHECK_EQ(r->len, 8 * (one + 5));
    CHECK(!r->conn.blocked);
    mc_conn_drop(&r->conn, free_rec);
    pump();
    teardown();
}

TEST(long_pipeline_runs_in_batches_and_eof_waits_for_all)
{
    setup();
    struct rec_conn *r = new_conn();
    static char req[200000];
    size_t n = 0;
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(req + n, sizeof req - n, "set b%d 0 0 1 noreply\r\nx\r\nget b%d\r\n", i, i);
    mc_conn_input(&r->conn, (const uint8_t *)req, n);
    CHECK(r->conn.yielded);                /* not all 2000 requests in one go */
    mc_conn_eof(&r->conn);
    CHECK(!r->finished);                   /* the client's last requests are still to be answered */
    pump();
    size_t values = 0;
    r->out[r->len] = 0;
    for (char *p = r->out; (p = strstr(p, "VALUE b")); p++)
        values++;
    CHECK_EQ(values, 1000);
    CHECK(r->finished);
    mc_conn_drop(&r->conn, free_rec);
    pump();
    teardown();
}

TEST(get_line_naming_a_large_value_many_times_is_cut_short)
{
    setup();
    struct rec_conn *r = new_conn();
    char key[16];
    local_key(key, sizeof key, "big");  /* its copies land in c->out at once */
    store_big(r, key, 600000);
    char req[4096] = "get";
    for (int i = 0; i < 200; i++)
        strcat(strcat(req, " "), key);
    strcat(req, "\r\n");
    send_str(r, req);
    static const char err[] = "SERVER_ERROR out of memory writing get response\r\n";
    const struct mc_out *o = &r->conn.out;
    CHECK(o->len >= sizeof err - 1 && memcmp(o->buf + o->len - (sizeof err - 1), err, sizeof err - 1) == 0);
    CHECK(o->len < (40u << 20));         /* bounded well below 200 copies (120 MB) */
    mc_conn_drop(&r->conn, free_rec);
    pump();
    teardown();
}

TEST(verbosity_reaches_every_shard)
{
    setup();
    struct rec_conn *r = new_conn();
    send_str(r, "verbosity 2\r\n");
    r->out[r->len] = 0;
    CHECK(strcmp(r->out, "OK\r\n") == 0);
    for (unsigned s = 0; s < NSHARDS; s++)
        CHECK_EQ(shards[s]->verbosity, 2);
    mc_conn_drop(&r->conn, free_rec);
    pump();
    teardown();
}

TEST(quit_finishes_after_earlier_replies)
{
    setup();
    struct rec_conn *r = new_conn();
    send_str(r, "set q 0 0 1\r\nz\r\nget q\r\nquit\r\nget q\r\n");
    r->out[r->len] = 0;
    CHECK(strcmp(r->out, "STORED\r\nVALUE q 0 1\r\nz\r\nEND\r\n") == 0);
    CHECK(r->finished);
    mc_conn_drop(&r->conn, free_rec);
    pump();
    teardown();
}

/* A big reply flushed in the middle of a batch must not end a half-closed connection while requests
   after it are still unparsed: the client's last requests are answered before the close. */
TEST(eof_does_not_cut_a_batch_short_after_a_big_reply)
{
    setup();
    struct rec_conn *r = new_conn();
    char key[16];
    local_key(key, sizeof key, "big");
    store_big(r, key, 600000);
    r->len = 0;
    static char req[4096];
    size_t n = 0;
    for (int i = 0; i < MC_BATCH; i++)
        n += (size_t)snprintf(req + n, sizeof req - n, "version\r\n");
    n += (size_t)snprintf(req + n, sizeof req - n, "get %s\r\nget %s\r\nversion\r\n", key, key);
    mc_conn_input(&r->conn, (const uint8_t *)req, n);
    CHECK(r->conn.yielded);
    mc_conn_eof(&r->conn);
    pump();
    CHECK(r->finished);
    CHECK(r->len > 0);
    const char *tail = "END\r\nVERSION " MC_VERSION "\r\n";
    CHECK(r->len >= strlen(tail) && memcmp(r->out + r->len - strlen(tail), tail, strlen(tail)) == 0);
    mc_conn_drop(&r->conn, free_rec);
    pump();
    teardown();
}

TEST_MAIN()
