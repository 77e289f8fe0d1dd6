/*
 * blkcheck: checks a block device end to end from every shard at once.
 *
 * The disk's first `blocks` 4 KiB blocks are split into one contiguous part
 * per shard. Each shard writes its part with many requests in flight, every
 * block filled from (block number, seed, writing shard) and carrying its
 * own checksum, flushes, reads everything back and verifies it. Shard 0
 * also checks that requests past the end of the device or misaligned are
 * refused, then collects the shards' counts and exits 0 when every block
 * came back intact, non-zero with a message saying what went wrong
 * otherwise (and after `timeout` seconds rather than hang).
 *
 * Arguments (after `--` on the kernel command line), in any order:
 *   check | write | verify   write, flush, read back (default); write and
 *                            flush only; read and verify only what an
 *                            earlier `write` with the same seed and
 *                            blocks left on the disk (any vCPU count)
 *   SEED                     a number (default 1)
 *   blocks=N | blocks=all    how many 4 KiB blocks to use (default: the
 *                            whole device, at most 16 MiB of it)
 *   depth=N                  requests in flight per shard (default 32)
 *   timeout=S                give up after S seconds (default 60)
 *   dev=N                    which block device (default 0)
 * Exit status: 0 passed, 1 an I/O or verification failure, 2 a usage or
 * configuration problem (no device, device too small), 3 timeout.
 */
#include "../../runtime/shoal.h"

#define BLOCK_SIZE 4096u
#define DEFAULT_BLOCKS 4096u        /* 16 MiB */
#define DEFAULT_DEPTH 32u
#define MAX_DEPTH 1024u
#define DEFAULT_TIMEOUT_S 60u
#define MAX_SHARDS 64
#define MAGIC 0x4B4C424C414F4853ULL /* "SHOALBLK" */

enum mode { MODE_CHECK, MODE_WRITE, MODE_VERIFY };
enum phase { PHASE_PROBE, PHASE_DISCARD, PHASE_WRITE, PHASE_FLUSH, PHASE_READ, PHASE_DONE };

struct config {
    enum mode mode;
    uint64_t seed;
    uint64_t blocks;
    bool all_blocks, blocks_given;
    unsigned depth;
    unsigned timeout_s;
    unsigned dev;
};

/* What every block starts with; the last 8 bytes are a checksum of the rest. */
struct block_header {
    uint64_t magic;
    uint64_t block;
    uint64_t seed;
    uint32_t shard;     /* the writer */
    uint32_t shards;    /* how many shards the writing boot had */
};

struct shard;

/* One request in flight and its buffer. */
struct slot {
    struct shoal_blk_req req;
    struct shard *s;
    uint64_t block;
    uint8_t *buf;
};

struct shard {
    unsigned id;
    struct config cfg;
    struct shoal_blk_info info;
    uint64_t first, end;            /* this shard's blocks */
    enum phase phase;
    uint64_t next;                  /* next block to submit in this phase */
    uint64_t completed;             /* blocks done in this phase */
    struct slot *slots;
    uint8_t *expected;              /* scratch block for verification */
    uint64_t written, verified;
    struct shoal_blk_req ctl;       /* flush, discard */
    struct shoal_blk_req probe[2];  /* shard 0: requests that must be refused */
    unsigned probes_left;
    uint8_t *probe_buf;
};

/* Touched only on shard 0, which collects the results. */
static struct {
    unsigned finished;
    uint64_t written, verified;
    struct timer watchdog;
    unsigned timeout_s;
} collector;

/* ---- messages ---- */

static void fail(struct shard *s, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void fail(struct shard *s, int status, const char *fmt, ...)
{
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    shoal_print("blkcheck: FAILED on shard %u: %s\n", s ? s->id : shard_id(), msg);
    shoal_exit(status);
}

static void io_failed(struct shard *s, const char *what, uint64_t block, int status)
{
    fail(s, 1, "%s of block %lu (offset %lu) failed: %s (%d)", what, (unsigned long)block,
         (unsigned long)(block * BLOCK_SIZE), shoal_blk_strerror(status), status);
}

static const char *mode_name(enum mode m) { return m == MODE_WRITE ? "write" : m == MODE_VERIFY ? "verify" : "check"; }

/* ---- block contents ---- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDULL;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53ULL;
    return x ^ (x >> 33);
}

static uint64_t checksum(const uint8_t *p, size_t n)
{
    uint64_t h = 0xCBF29CE484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001B3ULL;
    return h;
}

static unsigned writer_of(uint64_t block, uint64_t total, unsigned shards)
{
    /* Inverse of the split in app_main: the part whose range holds block. */
    unsigned w = (unsigned)(block * shards / total);
    while (w + 1 < shards && block >= total * (w + 1) / shards)
        w++;
    while (w > 0 && block < total * w / shards)
        w--;
    return w;
}

static void fill_block(uint8_t *buf, uint64_t block, uint64_t seed, unsigned shard, unsigned shards)
{
    struct block_header h = { MAGIC, block, seed, shard, shards };
    memcpy(buf, &h, sizeof h);
    uint64_t x = mix(seed ^ mix(block + 1) ^ mix(((uint64_t)shard << 32) | 0x9E37));
    for (size_t off = sizeof h; off + 8 <= BLOCK_SIZE - 8; off += 8) {
        x = mix(x + 0x9E3779B97F4A7C15ULL);
        memcpy(buf + off, &x, 8);
    }
    uint64_t sum = checksum(buf, BLOCK_SIZE - 8);
    memcpy(buf + BLOCK_SIZE - 8, &sum, 8);
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* Says what is wrong with a block that differs from what was expected. */
static void diagnose(struct shard *s, uint64_t block, const uint8_t *got, unsigned expected_shard,
                     unsigned expected_shards)
{
    struct block_header h;
    memcpy(&h, got, sizeof h);
    uint64_t sum;
    memcpy(&sum, got + BLOCK_SIZE - 8, 8);
    if (all_zero(got, BLOCK_SIZE))
        fail(s, 1, "block %lu reads back as zeros: never written, or the write was lost", (unsigned long)block);
    if (sum != checksum(got, BLOCK_SIZE - 8))
        fail(s, 1, "block %lu fails its checksum: torn or corrupted data", (unsigned long)block);
    if (h.magic != MAGIC)
        fail(s, 1, "block %lu holds data blkcheck did not write", (unsigned long)block);
    if (h.block != block)
        fail(s, 1, "block %lu holds block %lu: the write went to the wrong place", (unsigned long)block,
             (unsigned long)h.block);
    if (h.seed != s->cfg.seed)
        fail(s, 1, "block %lu was written with seed %lu, expected %lu", (unsigned long)block,
             (unsigned long)h.seed, (unsigned long)s->cfg.seed);
    if (h.shard != expected_shard || h.shards != expected_shards)
        fail(s, 1, "block %lu was written by shard %u of %u, expected shard %u of %u "
             "(verify needs the blocks= of the write)", (unsigned long)block, h.shard, h.shards,
             expected_shard, expected_shards);
    fail(s, 1, "block %lu differs from its pattern despite a valid checksum", (unsigned long)block);
}

/* How many shards wrote the disk: an earlier boot may have had another vCPU count. */
static unsigned writing_shards(const struct shard *s, const uint8_t *got)
{
    if (s->cfg.mode != MODE_VERIFY)
        return shard_count();
    struct block_header h;
    memcpy(&h, got, sizeof h);
    return h.shards >= 1 && h.shards <= MAX_SHARDS ? h.shards : shard_count();
}

static void verify_block(struct shard *s, uint64_t block, const uint8_t *got)
{
    unsigned shards = writing_shards(s, got);
    unsigned w = writer_of(block, s->cfg.blocks, shards);
    fill_block(s->expected, block, s->cfg.seed, w, shards);
    if (memcmp(got, s->expected, BLOCK_SIZE) != 0)
        diagnose(s, block, got, w, shards);
    s->verified++;
}

/* ---- the pipeline of one phase ---- */

static void next_phase(struct shard *s);
static void slot_done(struct shoal_blk_req *req);

static void submit_slot(struct slot *sl)
{
    struct shard *s = sl->s;
    sl->block = s->next++;
    uint64_t off = sl->block * BLOCK_SIZE;
    int rc;
    if (s->phase == PHASE_WRITE) {
        fill_block(sl->buf, sl->block, s->cfg.seed, s->id, shard_count());
        rc = shoal_blk_write(s->cfg.dev, &sl->req, off, sl->buf, BLOCK_SIZE, slot_done, sl);
    } else {
        rc = shoal_blk_read(s->cfg.dev, &sl->req, off, sl->buf, BLOCK_SIZE, slot_done, sl);
    }
    if (rc)
        io_failed(s, s->phase == PHASE_WRITE ? "submitting the write" : "submitting the read", sl->block, rc);
}

static void slot_done(struct shoal_blk_req *req)
{
    struct slot *sl = req->arg;
    struct shard *s = sl->s;
    if (req->status)
        io_failed(s, s->phase == PHASE_WRITE ? "write" : "read", sl->block, req->status);
    if (s->phase == PHASE_WRITE)
        s->written++;
    else
        verify_block(s, sl->block, sl->buf);
    s->completed++;
    if (s->next < s->end)
        submit_slot(sl);
    else if (s->completed == s->end - s->first)
        next_phase(s);
}

static void start_blocks(struct shard *s)
{
    s->next = s->first;
    s->completed = 0;
    if (s->first == s->end) {
        next_phase(s);
        return;
    }
    for (unsigned i = 0; i < s->cfg.depth && s->next < s->end; i++)
        submit_slot(&s->slots[i]);
}

static void ctl_done(struct shoal_blk_req *req)
{
    struct shard *s = req->arg;
    if (req->status)
        fail(s, 1, "%s failed: %s (%d)", s->phase == PHASE_FLUSH ? "flush" : "discard",
             shoal_blk_strerror(req->status), req->status);
    next_phase(s);
}

/* Trim before rewriting, as a file system would; skipped where the device cannot. */
static void start_discard(struct shard *s)
{
    uint64_t len = (s->end - s->first) * BLOCK_SIZE;
    if (!len || s->info.read_only || !s->info.max_discard || len > s->info.max_discard) {
        next_phase(s);
        return;
    }
    int rc = shoal_blk_discard(s->cfg.dev, &s->ctl, s->first * BLOCK_SIZE, len, ctl_done, s);
    if (rc)
        fail(s, 1, "submitting the discard failed: %s (%d)", shoal_blk_strerror(rc), rc);
}

static void start_flush(struct shard *s)
{
    int rc = shoal_blk_flush(s->cfg.dev, &s->ctl, ctl_done, s);
    if (rc)
        fail(s, 1, "submitting the flush failed: %s (%d)", shoal_blk_strerror(rc), rc);
}

/* ---- results ---- */

static void all_finished(void)
{
    shoal_timer_cancel(&collector.watchdog);
    unsigned n = shard_count();
    if (collector.verified && collector.written)
        shoal_print("blkcheck: %lu blocks written and verified on %u shards\n", (unsigned long)collector.verified, n);
    else if (collector.written)
        shoal_print("blkcheck: %lu blocks written and flushed on %u shards\n", (unsigned long)collector.written, n);
    else
        shoal_print("blkcheck: %lu blocks verified on %u shards\n", (unsigned long)collector.verified, n);
    shoal_exit(0);
}

static void shard_finished(void *arg)
{
    struct shard *s = arg; /* read only: its owner is done with it */
    collector.written += s->written;
    collector.verified += s->verified;
    if (++collector.finished == shard_count())
        all_finished();
}

static void report(struct shard *s)
{
    shoal_print("blkcheck: shard %u: blocks %lu-%lu, %lu written, %lu verified\n", s->id, (unsigned long)s->first,
                (unsigned long)(s->end ? s->end - 1 : 0), (unsigned long)s->written, (unsigned long)s->verified);
    smp_call(0, shard_finished, s);
}

static enum phase following(const struct shard *s)
{
    switch (s->phase) {
    case PHASE_PROBE: return s->cfg.mode == MODE_VERIFY ? PHASE_READ : PHASE_DISCARD;
    case PHASE_DISCARD: return PHASE_WRITE;
    case PHASE_WRITE: return PHASE_FLUSH;
    case PHASE_FLUSH: return s->cfg.mode == MODE_WRITE ? PHASE_DONE : PHASE_READ;
    default: return PHASE_DONE;
    }
}

static void next_phase(struct shard *s)
{
    s->phase = following(s);
    switch (s->phase) {
    case PHASE_DISCARD: start_discard(s); break;
    case PHASE_WRITE: start_blocks(s); break;
    case PHASE_FLUSH: start_flush(s); break;
    case PHASE_READ: start_blocks(s); break;
    default: report(s); break;
    }
}

/* ---- shard 0: requests the driver must refuse ---- */

static void probe_done(struct shoal_blk_req *req)
{
    struct shard *s = req->arg;
    int want = req == &s->probe[0] ? SHOAL_BLK_ERANGE : SHOAL_BLK_EINVAL;
    const char *what = req == &s->probe[0] ? "a read past the end of the device" : "a misaligned read";
    if (req->status != want)
        fail(s, 1, "%s completed with \"%s\" (%d), expected \"%s\"", what, shoal_blk_strerror(req->status),
             req->status, shoal_blk_strerror(want));
    if (--s->probes_left)
        return;
    free(s->probe_buf);
    next_phase(s);
}

static void start_probes(struct shard *s)
{
    s->phase = PHASE_PROBE;
    if (s->id != 0) {
        next_phase(s);
        return;
    }
    s->probe_buf = malloc(BLOCK_SIZE);
    if (!s->probe_buf)
        fail(s, 1, "out of memory for the probe buffer");
    s->probes_left = 2;
    /* Straddles the end: the driver must refuse it whole, not read part. */
    uint64_t last = s->info.capacity - SHOAL_BLK_SECTOR;
    int a = shoal_blk_read(s->cfg.dev, &s->probe[0], last, s->probe_buf, BLOCK_SIZE, probe_done, s);
    int b = shoal_blk_read(s->cfg.dev, &s->probe[1], 100, s->probe_buf, BLOCK_SIZE, probe_done, s);
    if (a || b)
        fail(s, 1, "submitting a probe read failed: %s", shoal_blk_strerror(a ? a : b));
}

/* ---- set-up ---- */

static bool parse_u64(const char *p, uint64_t *out)
{
    uint64_t v = 0;
    unsigned base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        base = 16, p += 2;
    if (!*p)
        return false;
    for (; *p; p++) {
        unsigned d = (*p >= '0' && *p <= '9') ? (unsigned)(*p - '0')
                   : (*p >= 'a' && *p <= 'f') ? (unsigned)(*p - 'a' + 10)
                   : (*p >= 'A' && *p <= 'F') ? (unsigned)(*p - 'A' + 10) : 99;
        if (d >= base || v > (UINT64_MAX - d) / base)
            return false;
        v = v * base + d;
    }
    *out = v;
    return true;
}

static bool starts_with(const char *s, const char *prefix, const char **rest)
{
    size_t n = strlen(prefix);
    /* A shorter s differs at its NUL. */
    for (size_t i = 0; i < n; i++)
        if (s[i] != prefix[i])
            return false;
    *rest = s + n;
    return true;
}

static bool parse_bounded(const char *v, uint64_t min, uint64_t max, unsigned *out)
{
    uint64_t n;
    if (!parse_u64(v, &n) || n < min || n > max)
        return false;
    *out = (unsigned)n;
    return true;
}

/* One argument into c; false when it means nothing. */
static bool parse_arg(const char *a, struct config *c)
{
    const char *v;
    if (!strcmp(a, "check") || !strcmp(a, "write") || !strcmp(a, "verify")) {
        c->mode = a[0] == 'c' ? MODE_CHECK : a[0] == 'w' ? MODE_WRITE : MODE_VERIFY;
        return true;
    }
    if (starts_with(a, "blocks=", &v)) {
        c->blocks_given = true;
        c->all_blocks = !strcmp(v, "all");
        return c->all_blocks || (parse_u64(v, &c->blocks) && c->blocks > 0);
    }
    if (starts_with(a, "depth=", &v))
        return parse_bounded(v, 1, MAX_DEPTH, &c->depth);
    if (starts_with(a, "timeout=", &v))
        return parse_bounded(v, 1, 86400, &c->timeout_s);
    if (starts_with(a, "dev=", &v))
        return parse_bounded(v, 0, 63, &c->dev);
    return parse_u64(a, &c->seed);
}

/* Every shard parses the same arguments and reaches the same verdict; shard 0 speaks. */
static bool configure(struct shard *s, int argc, char **argv)
{
    struct config *c = &s->cfg;
    *c = (struct config){ .mode = MODE_CHECK, .seed = 1, .depth = DEFAULT_DEPTH, .timeout_s = DEFAULT_TIMEOUT_S };
    for (int i = 1; i < argc; i++) {
        if (parse_arg(argv[i], c))
            continue;
        if (s->id == 0)
            shoal_print("blkcheck: bad argument '%s'; usage: [check|write|verify] [SEED] [blocks=N|all] "
                        "[depth=N] [timeout=S] [dev=N]\n", argv[i]);
        return false;
    }
    if (!shoal_blk_info(c->dev, &s->info)) {
        if (s->id == 0)
            shoal_print("blkcheck: no block device %u (found %u); boot with a virtio-blk disk, "
                        "e.g. scripts/run.py IMAGE --disk FILE\n", c->dev, shoal_blk_count());
        return false;
    }
    uint64_t fits = s->info.capacity / BLOCK_SIZE;
    if (!c->blocks_given)
        c->blocks = fits < DEFAULT_BLOCKS ? fits : DEFAULT_BLOCKS;
    else if (c->all_blocks)
        c->blocks = fits;
    if (c->blocks > fits || c->blocks == 0) {
        if (s->id == 0)
            shoal_print("blkcheck: device %u is too small: %lu blocks of %u bytes need %lu bytes (%lu MiB), "
                        "the device has %lu bytes (%lu MiB)\n", c->dev, (unsigned long)c->blocks, BLOCK_SIZE,
                        (unsigned long)(c->blocks * BLOCK_SIZE), (unsigned long)(c->blocks * BLOCK_SIZE >> 20),
                        (unsigned long)s->info.capacity, (unsigned long)(s->info.capacity >> 20));
        return false;
    }
    return true;
}

static bool allocate(struct shard *s)
{
    unsigned depth = s->cfg.depth;
    uint8_t *bufs = aligned_alloc(BLOCK_SIZE, (size_t)(depth + 1) * BLOCK_SIZE);
    s->slots = calloc(depth, sizeof *s->slots);
    if (!bufs || !s->slots)
        return false;
    s->expected = bufs + (size_t)depth * BLOCK_SIZE;
    for (unsigned i = 0; i < depth; i++)
        s->slots[i] = (struct slot){ .s = s, .buf = bufs + (size_t)i * BLOCK_SIZE };
    return true;
}

static void watchdog_fired(struct timer *t)
{
    (void)t;
    shoal_print("blkcheck: FAILED: timed out after %u s with %u of %u shards finished\n", collector.timeout_s,
                collector.finished, shard_count());
    shoal_exit(3);
}

static void describe(const struct shard *s)
{
    const struct shoal_blk_info *i = &s->info;
    shoal_print("blkcheck: device %u: %lu bytes (%lu MiB), block size %u, %s, write cache %s, %u queue%s, "
                "id \"%s\"\n", s->cfg.dev, (unsigned long)i->capacity, (unsigned long)(i->capacity >> 20),
                i->block_size, i->read_only ? "read-only" : "read-write", i->write_cache ? "on" : "off",
                i->queues, i->queues == 1 ? "" : "s", i->id);
    shoal_print("blkcheck: %s, seed %lu, %lu blocks of %u bytes on %u shards, %u in flight per shard\n",
                mode_name(s->cfg.mode), (unsigned long)s->cfg.seed, (unsigned long)s->cfg.blocks, BLOCK_SIZE,
                shard_count(), s->cfg.depth);
}

void app_main(int argc, char **argv)
{
    struct shard *s = calloc(1, sizeof *s);
    if (!s)
        fail(0, 1, "out of memory for shard state");
    s->id = shard_id();
    if (!configure(s, argc, argv)) {
        if (s->id == 0)
            shoal_exit(2);
        return;
    }
    if (!allocate(s))
        fail(s, 1, "out of memory for %u buffers of %u bytes", s->cfg.depth, BLOCK_SIZE);
    uint64_t total = s->cfg.blocks;
    s->first = total * s->id / shard_count();
    s->end = total * (s->id + 1) / shard_count();
    if (s->id == 0) {
        describe(s);
        collector.timeout_s = s->cfg.timeout_s;
        shoal_timer_init(&collector.watchdog, watchdog_fired);
        shoal_timer_arm(&collector.watchdog, now_ns() + (uint64_t)s->cfg.timeout_s * 1000000000ULL);
    }
    start_probes(s);
}
