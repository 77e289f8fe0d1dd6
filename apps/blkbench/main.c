/*
 * blkbench: block read throughput, for tests/bench/virtio.py (the Linux
 * guest runs tests/bench/guest/blkread.c, which does the same reads).
 *
 * Two phases, run by every shard at once, each shard with its own
 * requests in flight on its own queue:
 *
 *   rand4k  4 KiB reads at random 4 KiB-aligned offsets of the whole
 *           device for `seconds` seconds, `depth` in flight per shard;
 *   seq1m   reads of 1 MiB (or the device's max_transfer, if smaller)
 *           for `seconds` seconds: the first seq_mb MiB of the device are
 *           split into one contiguous part per shard, which the shard
 *           reads in order, again from its start when it reaches its end,
 *           `seq_depth` reads in flight per shard.
 *
 * Shard 0 prints a line when a phase starts and when all shards have
 * finished it (the host times the phases by these lines too):
 *     blkbench: rand4k start
 *     blkbench: rand4k done reads=N seconds=T iops=X
 *     blkbench: seq1m start
 *     blkbench: seq1m done bytes=B seconds=T mbps=Y
 * then powers off with status 0; 1 on an I/O error, 2 on a usage or
 * configuration problem, 3 when the whole run exceeds `timeout` seconds.
 *
 * Arguments (after `--`): depth=N (32) seconds=S (3) seq_mb=M (256)
 * seq_depth=N (4) timeout=S (60) dev=N (0).
 */
#include "../../runtime/shoal.h"

#define RAND_SIZE 4096u
#define SEQ_SIZE (1u << 20)
#define MAX_DEPTH 256u
#define MAX_SHARDS 64

enum phase { RAND, SEQ };

struct config {
    unsigned depth, seq_depth, seconds, seq_mb, timeout_s, dev;
};

struct shard;

struct slot {
    struct shoal_blk_req req;
    struct shard *s;
    uint64_t offset;
    uint32_t len;
    uint8_t *buf;
};

struct shard {
    unsigned id;
    struct config cfg;              /* every shard parses the same arguments */
    enum phase phase;
    uint64_t rng;
    uint64_t capacity, blocks;      /* bytes, 4 KiB blocks on the device */
    uint64_t deadline;              /* stop submitting at this now_ns() */
    uint64_t first, next, end;      /* SEQ: this shard's byte range, next offset */
    uint32_t seq_size;
    unsigned inflight;
    bool stopping;
    uint64_t ops, bytes;
    struct slot slots[MAX_DEPTH];
    uint8_t *rand_bufs, *seq_bufs;
};

static struct shard *shards[MAX_SHARDS];  /* each written by its own shard at set-up */

/* Shard 0's: the phase's collection. */
static struct {
    unsigned finished;
    uint64_t ops, bytes, started_ns;
    unsigned timeout_s;
    struct timer watchdog;
} col;

static void fail(int status, const char *what, int err)
{
    shoal_print("blkbench: FAILED on shard %u: %s%s%s\n", shard_id(), what, err ? ": " : "",
                err ? shoal_blk_strerror(err) : "");
    shoal_exit(status);
}

static uint64_t next_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void start_phase_on_shard(void *arg);
static void slot_done(struct shoal_blk_req *req);

/* Submits the slot's next request; false when the phase has none left for it. */
static bool submit(struct slot *sl)
{
    struct shard *s = sl->s;
    uint32_t len;
    if (s->stopping || now_ns() >= s->deadline) {
        s->stopping = true;
        return false;
    }
    if (s->phase == RAND) {
        sl->offset = next_rand(&s->rng) % s->blocks * RAND_SIZE;
        len = RAND_SIZE;
    } else {
        if (s->next >= s->end)
            s->next = s->first;
        sl->offset = s->next;
        len = s->end - s->next < s->seq_size ? (uint32_t)(s->end - s->next) : s->seq_size;
        s->next += len;
    }
    sl->len = len;
    int rc = shoal_blk_read(s->cfg.dev, &sl->req, sl->offset, sl->buf, len, slot_done, sl);
    if (rc)
        fail(1, "submitting a read", rc);
    s->inflight++;
    return true;
}

static void phase_finished_on_shard(void *arg)
{
    struct shard *s = arg;  /* its owner is done with it until the next phase starts */
    col.ops += s->ops;
    col.bytes += s->bytes;
    if (++col.finished < shard_count())
        return;
    uint64_t ns = now_ns() - col.started_ns;
    uint64_t us = ns / 1000 ? ns / 1000 : 1;
    if (s->phase == RAND) {
        shoal_print("blkbench: rand4k done reads=%lu seconds=%lu.%06lu iops=%lu\n", (unsigned long)col.ops,
                    (unsigned long)(us / 1000000), (unsigned long)(us % 1000000),
                    (unsigned long)(col.ops * 1000000 / us));
        col.finished = 0;
        col.ops = col.bytes = 0;
        shoal_print("blkbench: seq1m start\n");
        col.started_ns = now_ns();
        for (unsigned i = 0; i < shard_count(); i++)
            smp_call(i, start_phase_on_shard, (void *)(uintptr_t)SEQ);
    } else {
        shoal_print("blkbench: seq1m done bytes=%lu seconds=%lu.%06lu mbps=%lu\n", (unsigned long)col.bytes,
                    (unsigned long)(us / 1000000), (unsigned long)(us % 1000000),
                    (unsigned long)(col.bytes / us));
        shoal_timer_cancel(&col.watchdog);
        shoal_exit(0);
    }
}

static void slot_done(struct shoal_blk_req *req)
{
    struct slot *sl = req->arg;
    struct shard *s = sl->s;
    if (req->status)
        fail(1, "read", req->status);
    s->inflight--;
    s->ops++;
    s->bytes += sl->len;
    if (!submit(sl) && s->inflight == 0)
        smp_call(0, phase_finished_on_shard, s);
}

static void start_phase_on_shard(void *arg)
{
    struct shard *s = shards[shard_id()];
    s->phase = (enum phase)(uintptr_t)arg;
    s->ops = s->bytes = 0;
    s->inflight = 0;
    s->stopping = false;
    unsigned depth;
    s->deadline = now_ns() + (uint64_t)s->cfg.seconds * 1000000000ULL;
    if (s->phase == RAND) {
        depth = s->cfg.depth;
        for (unsigned i = 0; i < depth; i++)
            s->slots[i].buf = s->rand_bufs + (size_t)i * RAND_SIZE;
    } else {
        depth = s->cfg.seq_depth;
        uint64_t total = (uint64_t)s->cfg.seq_mb << 20;
        if (total > s->capacity)
            total = s->capacity / RAND_SIZE * RAND_SIZE;
        uint64_t units = total / SEQ_SIZE, n = shard_count();
        s->first = s->next = units * s->id / n * SEQ_SIZE;
        s->end = s->id + 1 == n ? total : units * (s->id + 1) / n * SEQ_SIZE;
        for (unsigned i = 0; i < depth; i++)
            s->slots[i].buf = s->seq_bufs + (size_t)i * s->seq_size;
    }
    for (unsigned i = 0; i < depth; i++)
        if (!submit(&s->slots[i]))
            break;
    if (s->inflight == 0)
        smp_call(0, phase_finished_on_shard, s);
}

static void watchdog_fired(struct timer *t)
{
    (void)t;
    shoal_print("blkbench: FAILED: timed out after %u s\n", col.timeout_s);
    shoal_exit(3);
}

static bool parse_uint(const char *a, const char *key, unsigned min, unsigned max, unsigned *out)
{
    size_t n = strlen(key);
    if (memcmp(a, key, n) != 0 || a[n] != '=' || !a[n + 1])
        return false;
    uint64_t v = 0;
    for (const char *p = a + n + 1; *p; p++) {
        if (*p < '0' || *p > '9' || v > 100000000)
            return false;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v < min || v > max)
        return false;
    *out = (unsigned)v;
    return true;
}

void app_main(int argc, char **argv)
{
    struct config cfg = { .depth = 32, .seq_depth = 4, .seconds = 3, .seq_mb = 256, .timeout_s = 60, .dev = 0 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (parse_uint(a, "depth", 1, MAX_DEPTH, &cfg.depth) || parse_uint(a, "seq_depth", 1, 64, &cfg.seq_depth) ||
            parse_uint(a, "seconds", 1, 3600, &cfg.seconds) || parse_uint(a, "seq_mb", 1, 1 << 20, &cfg.seq_mb) ||
            parse_uint(a, "timeout", 1, 86400, &cfg.timeout_s) || parse_uint(a, "dev", 0, 63, &cfg.dev))
            continue;
        if (shard_id() == 0) {
            shoal_print("blkbench: bad argument '%s'; usage: [depth=N] [seconds=S] [seq_mb=M] [seq_depth=N] "
                        "[timeout=S] [dev=N]\n", a);
            shoal_exit(2);
        }
        return;
    }
    struct shoal_blk_info my;
    if (!shoal_blk_info(cfg.dev, &my) || my.capacity < SEQ_SIZE) {
        if (shard_id() == 0) {
            shoal_print("blkbench: no block device %u of at least 1 MiB (found %u devices); boot with --disk FILE\n",
                        cfg.dev, shoal_blk_count());
            shoal_exit(2);
        }
        return;
    }
    if (shard_count() > MAX_SHARDS)
        fail(2, "too many shards", 0);
    struct shard *s = calloc(1, sizeof *s);
    if (!s)
        fail(1, "out of memory", 0);
    s->id = shard_id();
    s->cfg = cfg;
    s->rng = 0x9E3779B97F4A7C15ULL * (s->id + 1);
    s->capacity = my.capacity;
    s->blocks = my.capacity / RAND_SIZE;
    s->seq_size = my.max_transfer < SEQ_SIZE ? my.max_transfer / RAND_SIZE * RAND_SIZE : SEQ_SIZE;
    if (!s->seq_size)
        fail(2, "device max_transfer below 4 KiB", 0);
    s->rand_bufs = aligned_alloc(4096, (size_t)cfg.depth * RAND_SIZE);
    s->seq_bufs = aligned_alloc(4096, (size_t)cfg.seq_depth * s->seq_size);
    if (!s->rand_bufs || !s->seq_bufs)
        fail(1, "out of memory for buffers", 0);
    for (unsigned i = 0; i < MAX_DEPTH; i++)
        s->slots[i].s = s;
    shards[s->id] = s;
    if (s->id != 0)
        return;
    /* Shard 0 starts the phases by message: a shard handles messages only after its own app_main. */
    shoal_print("blkbench: device %u: %lu MiB, max transfer %u KiB, %u queue%s; %u shards, depth %u (4 KiB) / %u "
                "(%u KiB)\n", cfg.dev, (unsigned long)(my.capacity >> 20), my.max_transfer >> 10, my.queues,
                my.queues == 1 ? "" : "s", shard_count(), cfg.depth, cfg.seq_depth, s->seq_size >> 10);
    col.timeout_s = cfg.timeout_s;
    shoal_timer_init(&col.watchdog, watchdog_fired);
    shoal_timer_arm(&col.watchdog, now_ns() + (uint64_t)cfg.timeout_s * 1000000000ULL);
    shoal_print("blkbench: rand4k start\n");
    col.started_ns = now_ns();
    for (unsigned i = 0; i < shard_count(); i++)
        smp_call(i, start_phase_on_shard, (void *)(uintptr_t)RAND);
}
