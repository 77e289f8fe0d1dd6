/*
 * virtio-blk (virtio 1.2 §5.2) behind the blkdev interface.
 *
 * Request queue i belongs to shard i (VIRTIO_BLK_F_MQ). When the device
 * has fewer queues than there are shards, shard s is served by queue
 * s % nqueues: it hands the request to that queue's owner by message and
 * gets the completion back the same way, so a queue is only ever touched
 * by its owner and every callback runs on the shard that submitted.
 *
 * A request is a header (device-readable), the data, and a status byte
 * (device-writable). With indirect descriptors it costs one ring slot
 * whatever its shape. When the ring is full, requests wait in the owner's
 * FIFO and go in as completions free slots: nothing is dropped and
 * nothing blocks. Requests added during a reactor pass are published with
 * one notification at the end of the owner's poll.
 */
#include <stddef.h>
#include <linux/virtio_blk.h>
#include "virtio.h"
#include "../blkdev.h"
#include "../../kernel/clock.h"
#include "../../kernel/console.h"
#include "../../kernel/malloc.h"
#include "../../kernel/percpu.h"
#include "../../kernel/reactor.h"
#include "../../kernel/smp_call.h"
#include "../../kernel/string.h"

#define WANTED_FEATURES                                                                   \
    ((1ULL << VIRTIO_BLK_F_SIZE_MAX) | (1ULL << VIRTIO_BLK_F_SEG_MAX) |                   \
     (1ULL << VIRTIO_BLK_F_RO) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |                        \
     (1ULL << VIRTIO_BLK_F_FLUSH) | (1ULL << VIRTIO_BLK_F_CONFIG_WCE) |                   \
     (1ULL << VIRTIO_BLK_F_MQ) | (1ULL << VIRTIO_BLK_F_DISCARD) |                         \
     (1ULL << VIRTIO_RING_F_INDIRECT_DESC) | (1ULL << VIRTIO_RING_F_EVENT_IDX))

/* Header and status around the data leave this many parts for data in one indirect table. */
#define MAX_DATA_SEGS (VIRTQ_MAX_INDIRECT - 2)
#define MAX_PARTS VIRTQ_MAX_INDIRECT
/* A data segment's length when the device states no limit: far inside 32 bits. */
#define DEFAULT_SEG_SIZE (4u << 20)
/* GET_ID is answered at once by any working device; this only bounds a broken one. */
#define ID_TIMEOUT_NS 2000000000ULL
/* Not a VIRTIO_BLK_S_* value: a request the device never completed properly reads as EIO. */
#define STATUS_UNSET 0xFF

/* The driver's part of struct blk_req: what the device reads and writes besides the data. */
struct req_state {
    struct virtio_blk_outhdr hdr;
    struct virtio_blk_discard_write_zeroes range;
    uint8_t status;
};
_Static_assert(sizeof(struct req_state) <= sizeof(((struct blk_req *)0)->driver),
               "struct blk_req.driver must hold virtio-blk's per-request state");

struct req_fifo {
    struct blk_req *head, *tail;
};

struct vblk;

/* One per (device, shard), in that shard's memory; only that shard touches it once running. */
struct vblk_shard {
    struct poller poller;           /* first: the reactor hands it back */
    struct vblk *dev;
    struct virtq *vq;               /* this shard's own queue, or NULL */
    unsigned owner;                 /* shard whose queue carries this shard's requests */
    struct req_fifo waiting;        /* for ring slots (owners only) */
    struct req_fifo finished;       /* completed here without the device */
    unsigned in_flight;             /* on vq */
    bool kick_pending;
};

/* Written on the BSP at attach, read-only afterwards. */
struct vblk {
    struct blkdev bd;               /* first: blkdev ops get the device back */
    struct virtio_dev *vdev;
    unsigned nqueues;
    uint32_t seg_size;              /* largest data segment, bytes */
    bool can_flush;
    struct vblk_shard *shard[MAX_CPUS];
    /* GET_ID at attach, kept for a device that answers after we gave up. */
    struct blk_req id_req;
    char id_buf[BLK_ID_BYTES];
    bool id_done;
};

static struct req_state *state(struct blk_req *r) { return (struct req_state *)(void *)r->driver; }

static void fifo_push(struct req_fifo *f, struct blk_req *r)
{
    r->next = 0;
    if (f->tail)
        f->tail->next = r;
    else
        f->head = r;
    f->tail = r;
}

static struct blk_req *fifo_pop(struct req_fifo *f)
{
    struct blk_req *r = f->head;
    if (r && !(f->head = r->next))
        f->tail = 0;
    return r;
}

/* ---- building requests ---- */

static uint32_t request_type(uint8_t op)
{
    switch (op) {
    case BLK_OP_READ: return VIRTIO_BLK_T_IN;
    case BLK_OP_WRITE: return VIRTIO_BLK_T_OUT;
    case BLK_OP_FLUSH: return VIRTIO_BLK_T_FLUSH;
    case BLK_OP_DISCARD: return VIRTIO_BLK_T_DISCARD;
    default: return VIRTIO_BLK_T_GET_ID;
    }
}

static void fill_header(struct blk_req *r)
{
    struct req_state *s = state(r);
    bool addressed = r->op == BLK_OP_READ || r->op == BLK_OP_WRITE;
    s->hdr.type = request_type(r->op);
    s->hdr.ioprio = 0;
    s->hdr.sector = addressed ? r->offset / BLK_SECTOR_SIZE : 0;
    if (r->op == BLK_OP_DISCARD)
        s->range = (struct virtio_blk_discard_write_zeroes){
            .sector = r->offset / BLK_SECTOR_SIZE,
            .num_sectors = (uint32_t)(r->len / BLK_SECTOR_SIZE),
        };
    s->status = STATUS_UNSET;
}

/* The data as segments of at most seg_size bytes (blkdev_check bounded len by max_transfer). */
static unsigned add_data(const struct vblk *v, struct virtq_sg *sg, unsigned n, uint8_t *buf, uint64_t len)
{
    while (len) {
        uint32_t part = len < v->seg_size ? (uint32_t)len : v->seg_size;
        sg[n++] = (struct virtq_sg){ buf, part };
        buf += part;
        len -= part;
    }
    return n;
}

/* Fills sg; returns the number of parts, *out of them device-readable. */
static unsigned build_sg(const struct vblk *v, struct blk_req *r, struct virtq_sg *sg, unsigned *out)
{
    struct req_state *s = state(r);
    unsigned n = 0;
    sg[n++] = (struct virtq_sg){ &s->hdr, sizeof s->hdr };
    switch (r->op) {
    case BLK_OP_WRITE:
        n = add_data(v, sg, n, r->buf, r->len);
        *out = n;
        break;
    case BLK_OP_DISCARD:
        sg[n++] = (struct virtq_sg){ &s->range, sizeof s->range };
        *out = n;
        break;
    case BLK_OP_READ:
        *out = n;
        n = add_data(v, sg, n, r->buf, r->len);
        break;
    case BLK_OP_GET_ID:
        *out = n;
        n = add_data(v, sg, n, r->buf, BLK_ID_BYTES);
        break;
    default: /* FLUSH: header and status only */
        *out = n;
        break;
    }
    sg[n++] = (struct virtq_sg){ &s->status, sizeof s->status };
    return n;
}

static bool add_to_ring(struct vblk_shard *sh, struct blk_req *r)
{
    struct virtq_sg sg[MAX_PARTS];
    unsigned out;
    unsigned n = build_sg(sh->dev, r, sg, &out);
    if (!virtq_add(sh->vq, sg, out, n - out, r))
        return false;
    sh->in_flight++;
    sh->kick_pending = true;
    return true;
}

/* ---- the queue owner's side ---- */

/* Waiting requests keep their order: a new one never overtakes them. */
static void queue_request(struct vblk_shard *sh, struct blk_req *r)
{
    fill_header(r);
    if (sh->waiting.head || !add_to_ring(sh, r))
        fifo_push(&sh->waiting, r);
}

static void run_done(void *arg)
{
    struct blk_req *r = arg;
    r->done(r);
}

/* Hand a finished request back to the shard that submitted it. */
static void complete(struct blk_req *r)
{
    if (r->submitter == this_cpu_id())
        r->done(r);
    else
        smp_call(r->submitter, run_done, r);
}

static int status_to_error(uint8_t status)
{
    switch (status) {
    case VIRTIO_BLK_S_OK: return 0;
    case VIRTIO_BLK_S_UNSUPP: return BLK_EOPNOTSUPP;
    default: return BLK_EIO;
    }
}

static unsigned reap(struct vblk_shard *sh)
{
    struct virtq *vq = sh->vq;
    virtq_disable_irq(vq);
    unsigned n = 0;
    struct blk_req *r;
    /* Bounded: completions may keep arriving while callbacks submit more. */
    while (n < vq->size && (r = virtq_get_used(vq, 0))) {
        sh->in_flight--;
        r->status = status_to_error(state(r)->status);
        n++;
        complete(r);
    }
    return n;
}

static unsigned refill(struct vblk_shard *sh)
{
    unsigned n = 0;
    while (sh->waiting.head && add_to_ring(sh, sh->waiting.head)) {
        fifo_pop(&sh->waiting);
        n++;
    }
    return n;
}

static void submit_on_owner(void *arg)
{
    struct blk_req *r = arg;
    struct vblk *v = (struct vblk *)r->dev;
    queue_request(v->shard[this_cpu_id()], r);
}

/* ---- every shard ---- */

/* Requests finished at submission (errors, flush on a write-through device). */
static unsigned run_finished(struct vblk_shard *sh)
{
    struct blk_req *r = sh->finished.head;
    sh->finished.head = sh->finished.tail = 0;
    unsigned n = 0;
    while (r) {
        struct blk_req *next = r->next; /* done may resubmit r */
        r->done(r);
        r = next;
        n++;
    }
    return n;
}

static void vblk_submit(struct blkdev *bd, struct blk_req *r)
{
    struct vblk *v = (struct vblk *)bd;
    unsigned me = this_cpu_id();
    struct vblk_shard *sh = v->shard[me];
    r->submitter = (uint16_t)me;
    r->status = blkdev_check(bd, r);
    /* Without VIRTIO_BLK_F_FLUSH the device writes through: nothing to flush. */
    bool nothing_to_do = r->op == BLK_OP_FLUSH && !v->can_flush;
    if (r->status || nothing_to_do) {
        fifo_push(&sh->finished, r);
        return;
    }
    if (sh->vq)
        queue_request(sh, r);
    else
        smp_call(sh->owner, submit_on_owner, r);
}

static unsigned vblk_poll(struct poller *p)
{
    struct vblk_shard *sh = (struct vblk_shard *)p;
    unsigned work = run_finished(sh);
    if (!sh->vq)
        return work;
    work += reap(sh);
    work += refill(sh);
    if (sh->kick_pending) {
        sh->kick_pending = false;
        virtio_kick(sh->dev->vdev, sh->vq);
    }
    return work;
}

/* Only a queue with requests on it needs to wake its shard. */
static bool vblk_sleep(struct poller *p)
{
    struct vblk_shard *sh = (struct vblk_shard *)p;
    if (sh->finished.head || sh->kick_pending)
        return false;
    if (!sh->vq || !sh->in_flight)
        return true;
    return virtq_enable_irq(sh->vq);
}

static void attach_shard(void *arg)
{
    struct vblk_shard *sh = arg;
    if (sh->vq)
        virtio_queue_owner_attach(sh->vq);
    reactor_add_poller(&sh->poller, vblk_poll, vblk_sleep);
}

static const struct blkdev_ops vblk_ops = { .submit = vblk_submit };

/* ---- attach, on the BSP at boot ---- */

#define CONFIG(field) offsetof(struct virtio_blk_config, field)

static uint32_t config32(struct vblk *v, size_t off) { return virtio_config_read(v->vdev, (unsigned)off, 4); }

static void read_capacity(struct vblk *v)
{
    uint64_t sectors = virtio_config_read64(v->vdev, CONFIG(capacity));
    if (sectors > UINT64_MAX / BLK_SECTOR_SIZE)
        sectors = UINT64_MAX / BLK_SECTOR_SIZE;
    v->bd.capacity = sectors * BLK_SECTOR_SIZE;
    uint32_t bs = virtio_has(v->vdev, VIRTIO_BLK_F_BLK_SIZE) ? config32(v, CONFIG(blk_size)) : BLK_SECTOR_SIZE;
    /* A block size that is not a power-of-two multiple of a sector says nothing useful. */
    v->bd.block_size = (bs >= BLK_SECTOR_SIZE && !(bs & (bs - 1))) ? bs : BLK_SECTOR_SIZE;
}

static void read_modes(struct vblk *v)
{
    struct virtio_dev *d = v->vdev;
    v->bd.read_only = virtio_has(d, VIRTIO_BLK_F_RO);
    v->can_flush = virtio_has(d, VIRTIO_BLK_F_FLUSH);
    /* Without CONFIG_WCE the spec ties the cache mode to FLUSH. */
    v->bd.write_cache = virtio_has(d, VIRTIO_BLK_F_CONFIG_WCE) ? virtio_config_read(d, CONFIG(wce), 1) != 0
                                                               : v->can_flush;
    uint64_t discard = virtio_has(d, VIRTIO_BLK_F_DISCARD) ? config32(v, CONFIG(max_discard_sectors)) : 0;
    v->bd.max_discard = discard * BLK_SECTOR_SIZE;
}

static unsigned device_queues(struct vblk *v)
{
    if (!virtio_has(v->vdev, VIRTIO_BLK_F_MQ))
        return 1;
    unsigned n = virtio_config_read(v->vdev, CONFIG(num_queues), 2);
    return n ? n : 1;
}

static bool alloc_shards(struct vblk *v)
{
    for (unsigned s = 0; s < cpu_total; s++) {
        struct vblk_shard *sh = heap_alloc(&cpu_table[s]->heap, sizeof *sh);
        if (!sh)
            return false;
        memset(sh, 0, sizeof *sh);
        sh->dev = v;
        v->shard[s] = sh;
    }
    return true;
}

/* Queue i for shard i, as many as both sides have; NULL or why not. */
static const char *create_queues(struct vblk *v)
{
    unsigned want = device_queues(v);
    if (want > cpu_total)
        want = cpu_total;
    if (want > VIRTIO_MAX_QUEUES)
        want = VIRTIO_MAX_QUEUES;
    unsigned n = 0;
    for (; n < want; n++) {
        struct virtq *vq = virtio_queue_create(v->vdev, n, n, 0);
        if (!vq)
            break;
        v->shard[n]->vq = vq;
    }
    if (n == 0)
        return "cannot set up request queue 0";
    v->nqueues = n;
    for (unsigned s = 0; s < cpu_total; s++)
        v->shard[s]->owner = s % n;
    return 0;
}

static unsigned smallest_queue(const struct vblk *v)
{
    unsigned size = v->shard[0]->vq->size;
    for (unsigned i = 1; i < v->nqueues; i++)
        if (v->shard[i]->vq->size < size)
            size = v->shard[i]->vq->size;
    return size;
}

/* How a request's data is cut into descriptors; NULL or why the device is unusable. */
static const char *set_limits(struct vblk *v)
{
    struct virtio_dev *d = v->vdev;
    unsigned segs = MAX_DATA_SEGS;
    if (virtio_has(d, VIRTIO_BLK_F_SEG_MAX)) {
        uint32_t seg_max = config32(v, CONFIG(seg_max));
        if (seg_max && seg_max < segs)
            segs = seg_max;
    }
    /* Without indirect descriptors every part takes a ring slot. */
    if (!virtio_has(d, VIRTIO_RING_F_INDIRECT_DESC)) {
        unsigned size = smallest_queue(v);
        if (size < 3)
            return "request queues too small for header, data and status";
        if (size - 2 < segs)
            segs = size - 2;
    }
    uint32_t seg_size = DEFAULT_SEG_SIZE;
    if (virtio_has(d, VIRTIO_BLK_F_SIZE_MAX)) {
        uint32_t size_max = config32(v, CONFIG(size_max));
        if (size_max && size_max < seg_size)
            seg_size = size_max;
    }
    uint64_t max = (uint64_t)segs * seg_size / BLK_SECTOR_SIZE * BLK_SECTOR_SIZE;
    if (max == 0)
        return "segment limits leave no room for one sector";
    v->seg_size = seg_size;
    v->bd.max_transfer = (uint32_t)(max < UINT32_MAX ? max : UINT32_MAX / BLK_SECTOR_SIZE * BLK_SECTOR_SIZE);
    return 0;
}

static void id_done(struct blk_req *r)
{
    struct vblk *v = r->arg;
    v->id_done = true;
}

/* The serial as printable text: it comes from the host and goes to consoles. */
static void copy_id(char *dst, const char *src)
{
    unsigned i = 0;
    for (; i < BLK_ID_BYTES && src[i]; i++)
        dst[i] = (src[i] >= 0x20 && src[i] < 0x7F) ? src[i] : '?';
    dst[i] = 0;
}

/* Runs before the shards start, so shard 0 (this CPU) polls its queue by hand. */
static void read_id(struct vblk *v)
{
    struct blk_req *r = &v->id_req;
    *r = (struct blk_req){ .op = BLK_OP_GET_ID, .buf = v->id_buf, .len = BLK_ID_BYTES, .done = id_done, .arg = v };
    blkdev_submit(&v->bd, r);
    uint64_t deadline = now_ns() + ID_TIMEOUT_NS;
    while (!v->id_done && now_ns() < deadline)
        vblk_poll(&v->shard[0]->poller);
    if (!v->id_done)
        klog("%s: no answer to GET_ID within 2 s, going on without a serial", v->vdev->name);
    else if (r->status == 0)
        copy_id(v->bd.id, v->id_buf);
}

static void report(const struct vblk *v)
{
    const struct blkdev *b = &v->bd;
    klog("%s: virtio-blk (%s) %lu bytes (%lu MiB), block size %u, %s, write cache %s, "
         "%u queue%s for %u shard%s, up to %u KiB per request%s%s%s%s, id \"%s\"",
         b->name, virtio_interface(v->vdev), (unsigned long)b->capacity, (unsigned long)(b->capacity >> 20), (unsigned)b->block_size,
         b->read_only ? "read-only" : "read-write", b->write_cache ? "on" : "off",
         v->nqueues, v->nqueues == 1 ? "" : "s", cpu_total, cpu_total == 1 ? "" : "s",
         (unsigned)(b->max_transfer >> 10), v->can_flush ? ", flush" : "", b->max_discard ? ", discard" : "",
         virtio_has(v->vdev, VIRTIO_RING_F_INDIRECT_DESC) ? ", indirect" : "",
         virtio_has(v->vdev, VIRTIO_RING_F_EVENT_IDX) ? ", event-idx" : "", b->id);
}

static bool setup(struct vblk *v)
{
    const char *why = 0;
    if (!alloc_shards(v))
        why = "out of memory for per-shard state";
    else if (!(why = create_queues(v)))
        why = set_limits(v);
    if (why)
        virtio_fail(v->vdev, why);
    return !why;
}

void virtio_blk_attach(struct virtio_dev *d)
{
    if (!virtio_negotiate(d, WANTED_FEATURES))
        return;
    struct vblk *v = calloc(1, sizeof *v);
    if (!v) {
        virtio_fail(d, "out of memory for the driver");
        return;
    }
    v->vdev = d;
    v->bd.ops = &vblk_ops;
    v->bd.name = d->name;
    read_capacity(v);
    read_modes(v);
    if (!setup(v))
        return; /* what was allocated stays: the failed device may still hold queue addresses */
    v->bd.nqueues = (uint16_t)v->nqueues;
    virtio_ready(d);
    read_id(v);
    blkdev_register(&v->bd);
    /* Each shard registers its poller itself, before the application starts there. */
    for (unsigned s = 0; s < cpu_total; s++)
        smp_call(s, attach_shard, v->shard[s]);
    report(v);
}
