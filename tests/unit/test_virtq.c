/*
 * Split virtqueue tests (virtio 1.2 §2.7), driver side, against a simulated
 * device written here from the spec rather than from virtq.c: it finds the
 * rings and the event fields by their byte offsets, walks descriptor chains
 * (indirect tables included) and rejects what a strict device would reject,
 * writes into device-writable buffers, completes in any order, and raises
 * an interrupt only when the spec lets it.
 */
#include "check.h"

#include "../../drivers/virtio/virtq.c"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- deterministic randomness ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return (uint32_t)(x >> 16);
}

static uint32_t rnd_below(uint32_t n) { return n ? rnd() % n : 0; }

/* ---- queue memory ---- */

struct q {
    struct virtq vq;
    void *mem;
};

static void q_init(struct q *q, uint16_t size, bool indirect, bool event_idx)
{
    size_t bytes = virtq_mem_size(size, indirect);
    size_t rounded = (bytes + 4095) & ~(size_t)4095;
    q->mem = aligned_alloc(4096, rounded);
    memset(q->mem, 0, rounded);
    virtq_init(&q->vq, size, q->mem, indirect, event_idx);
}

static void q_free(struct q *q) { free(q->mem); }

/* ---- the simulated device ---- */

#define SIM_MAX_PARTS 32

struct sim_part {
    uint8_t *addr;
    uint32_t len;
    bool writable;
};

struct sim_req {
    struct sim_part part[SIM_MAX_PARTS];
    unsigned nparts;
    const struct vring_desc *table;  /* indirect table, or NULL */
    unsigned table_n;
    bool in_flight;
};

struct sim_log {
    uint32_t seq, len;
};

struct sim {
    uint16_t size;
    bool indirect, event_idx;
    struct vring_desc *desc;
    struct vring_avail *avail;
    struct vring_used *used;
    volatile uint16_t *used_event;   /* driver -> device, after avail ring */
    volatile uint16_t *avail_event;  /* device -> driver, after used ring */
    uint16_t last_avail;             /* next avail entry to read */
    uint16_t used_idx;               /* our copy of used->idx */
    uint16_t signalled_used;         /* used idx at the last interrupt decision */
    unsigned errors, irqs, fetched, completed;
    uint16_t *owner;                 /* descriptor -> head + 1 while in flight */
    uint32_t *visit;                 /* loop detection, by generation */
    uint32_t gen;
    struct sim_req *req;             /* by head */
    uint16_t *pending;               /* heads fetched, not yet used */
    unsigned npending;
    struct sim_log log[4096];        /* completions the driver has yet to see */
    unsigned log_head, log_tail;
};

#define SIM_FAIL(s, ...)                                                        \
    do {                                                                        \
        (s)->errors++;                                                          \
        check_failures++;                                                       \
        fprintf(stderr, "%s:%d: device: ", __FILE__, __LINE__);                 \
        fprintf(stderr, __VA_ARGS__);                                           \
        fputc('\n', stderr);                                                    \
    } while (0)

static void sim_init(struct sim *s, struct virtq *vq, bool indirect, bool event_idx)
{
    memset(s, 0, sizeof(*s));
    s->size = vq->size;
    s->indirect = indirect;
    s->event_idx = event_idx;
    /* What the transport would write to the queue address registers. */
    s->desc = (struct vring_desc *)(uintptr_t)virtq_desc_addr(vq);
    s->avail = (struct vring_avail *)(uintptr_t)virtq_avail_addr(vq);
    s->used = (struct vring_used *)(uintptr_t)virtq_used_addr(vq);
    /* §2.7.6 and §2.7.8: the event fields follow the rings. */
    s->used_event = (volatile uint16_t *)((uint8_t *)s->avail + 4 + 2 * (size_t)s->size);
    s->avail_event = (volatile uint16_t *)((uint8_t *)s->used + 4 + 8 * (size_t)s->size);
    s->owner = calloc(s->size, sizeof(*s->owner));
    s->visit = calloc(s->size, sizeof(*s->visit));
    s->req = calloc(s->size, sizeof(*s->req));
    s->pending = calloc(s->size, sizeof(*s->pending));
}

static void sim_free(struct sim *s)
{
    free(s->owner);
    free(s->visit);
    free(s->req);
    free(s->pending);
}

static bool sim_buffer(struct sim *s, struct sim_req *r, const struct vring_desc *d, bool *seen_write)
{
    bool w = d->flags & VRING_DESC_F_WRITE;
    if (!d->addr || !d->len) {
        SIM_FAIL(s, "empty buffer");
        return false;
    }
    if (w)
        *seen_write = true;
    else if (*seen_write) {
        SIM_FAIL(s, "device-readable descriptor after a device-writable one");
        return false;
    }
    if (r->nparts == SIM_MAX_PARTS) {
        SIM_FAIL(s, "more parts than the model holds");
        return false;
    }
    r->part[r->nparts++] = (struct sim_part){ (uint8_t *)(uintptr_t)d->addr, d->len, w };
    return true;
}

/* Walk the chain at head as §2.7.5 describes; false when it is malformed. */
static bool sim_walk(struct sim *s, uint16_t head, struct sim_req *r)
{
    r->nparts = 0;
    r->table = NULL;
    bool seen_write = false;
    unsigned chain_len = 0;
    uint16_t i = head;
    s->gen++;
    for (;;) {
        if (i >= s->size) {
            SIM_FAIL(s, "descriptor %u out of range", i);
            return false;
        }
        if (s->visit[i] == s->gen) {
            SIM_FAIL(s, "loop in chain at descriptor %u", i);
            return false;
        }
        s->visit[i] = s->gen;
        if (s->owner[i]) {
            SIM_FAIL(s, "descriptor %u already in flight (head %u)", i, s->owner[i] - 1);
            return false;
        }
        s->owner[i] = (uint16_t)(head + 1);
        const struct vring_desc *d = &s->desc[i];
        if (d->flags & ~(VRING_DESC_F_NEXT | VRING_DESC_F_WRITE | VRING_DESC_F_INDIRECT)) {
            SIM_FAIL(s, "unknown flags %#x", d->flags);
            return false;
        }
        if (d->flags & VRING_DESC_F_INDIRECT) {
            if (!s->indirect) {
                SIM_FAIL(s, "INDIRECT without VIRTIO_RING_F_INDIRECT_DESC");
                return false;
            }
            if (d->flags & VRING_DESC_F_NEXT) {
                SIM_FAIL(s, "INDIRECT and NEXT together");
                return false;
            }
            if (d->len == 0 || d->len % sizeof(struct vring_desc)) {
                SIM_FAIL(s, "indirect table length %u", d->len);
                return false;
            }
            const struct vring_desc *t = (const struct vring_desc *)(uintptr_t)d->addr;
            unsigned n = d->len / sizeof(struct vring_desc);
            if ((uintptr_t)t % 16) {
                SIM_FAIL(s, "indirect table misaligned");
                return false;
            }
            /* An indirect table is not shared with another buffer in flight. */
            for (unsigned k = 0; k < s->npending; k++) {
                const struct sim_req *o = &s->req[s->pending[k]];
                if (o->table && o->table < t + n && t < o->table + o->table_n) {
                    SIM_FAIL(s, "indirect table overlaps one in flight");
                    return false;
                }
            }
            r->table = t;
            r->table_n = n;
            uint8_t seen[SIM_MAX_PARTS] = { 0 };
            if (n > SIM_MAX_PARTS) {
                SIM_FAIL(s, "indirect table of %u entries", n);
                return false;
            }
            unsigned j = 0, used_entries = 0;
            for (;;) {
                if (j >= n) {
                    SIM_FAIL(s, "indirect next %u outside table of %u", j, n);
                    return false;
                }
                if (seen[j]) {
                    SIM_FAIL(s, "loop in indirect table");
                    return false;
                }
                seen[j] = 1;
                used_entries++;
                const struct vring_desc *td = &t[j];
                if (td->flags & VRING_DESC_F_INDIRECT) {
                    SIM_FAIL(s, "INDIRECT inside an indirect table");
                    return false;
                }
                if (++chain_len > s->size) {
                    SIM_FAIL(s, "chain longer than the queue size %u", s->size);
                    return false;
                }
                if (!sim_buffer(s, r, td, &seen_write))
                    return false;
                if (!(td->flags & VRING_DESC_F_NEXT))
                    break;
                j = td->next;
            }
            /* Not a spec rule, but this driver sizes its tables exactly. */
            if (used_entries != n)
                SIM_FAIL(s, "indirect table of %u entries, chain of %u", n, used_entries);
            return true;
        }
        if (++chain_len > s->size) {
            SIM_FAIL(s, "chain longer than the queue size %u", s->size);
            return false;
        }
        if (!sim_buffer(s, r, d, &seen_write))
            return false;
        if (!(d->flags & VRING_DESC_F_NEXT))
            return true;
        i = d->next;
    }
}

/* Read every newly available buffer. Returns how many. */
static unsigned sim_fetch(struct sim *s)
{
    uint16_t idx = __atomic_load_n(&s->avail->idx, __ATOMIC_ACQUIRE);
    if ((uint16_t)(idx - s->last_avail) > s->size) {
        SIM_FAIL(s, "avail idx %u is more than a queue ahead of %u", idx, s->last_avail);
        return 0;
    }
    if (s->event_idx && s->avail->flags != 0)
        SIM_FAIL(s, "avail->flags %#x with VIRTIO_F_EVENT_IDX (must be 0)", s->avail->flags);
    unsigned n = 0;
    while (s->last_avail != idx) {
        uint16_t head = s->avail->ring[s->last_avail & (s->size - 1)];
        s->last_avail++;
        n++;
        if (head >= s->size) {
            SIM_FAIL(s, "avail head %u out of range", head);
            continue;
        }
        struct sim_req *r = &s->req[head];
        if (r->in_flight) {
            SIM_FAIL(s, "head %u made available twice", head);
            continue;
        }
        if (!sim_walk(s, head, r)) {
            for (uint16_t i = 0; i < s->size; i++)
                if (s->owner[i] == head + 1)
                    s->owner[i] = 0;
            continue;
        }
        r->in_flight = true;
        s->pending[s->npending++] = head;
    }
    s->fetched += n;
    return n;
}

static void sim_push_used(struct sim *s, uint32_t id, uint32_t len)
{
    struct vring_used_elem *e = &s->used->ring[s->used_idx & (s->size - 1)];
    e->id = id;
    e->len = len;
    s->used_idx++;
    __atomic_store_n(&s->used->idx, s->used_idx, __ATOMIC_RELEASE);
}

/*
 * Complete pending[k]: the first 4 readable bytes are a sequence number
 * (0xffffffff without them); every writable byte o (counted across parts)
 * becomes seq * 7 + o; the used length is the writable total.
 */
static void sim_complete(struct sim *s, unsigned k)
{
    uint16_t head = s->pending[k];
    s->pending[k] = s->pending[--s->npending];
    struct sim_req *r = &s->req[head];
    uint32_t seq = 0xffffffffu, written = 0;
    if (r->nparts && !r->part[0].writable && r->part[0].len >= 4)
        memcpy(&seq, r->part[0].addr, 4);
    for (unsigned p = 0; p < r->nparts; p++) {
        if (!r->part[p].writable)
            continue;
        for (uint32_t b = 0; b < r->part[p].len; b++)
            r->part[p].addr[b] = (uint8_t)(seq * 7 + written + b);
        written += r->part[p].len;
    }
    r->in_flight = false;
    for (uint16_t i = 0; i < s->size; i++)
        if (s->owner[i] == head + 1)
            s->owner[i] = 0;
    s->log[s->log_tail++ % 4096] = (struct sim_log){ seq, written };
    s->completed++;
    sim_push_used(s, head, written);
}

static void sim_complete_random(struct sim *s, unsigned count)
{
    while (count-- && s->npending)
        sim_complete(s, rnd_below(s->npending));
}

/* §2.7.10: after using buffers, does the device interrupt? */
static bool sim_signal(struct sim *s)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    uint16_t old = s->signalled_used, new_idx = s->used_idx;
    s->signalled_used = new_idx;
    if (old == new_idx)
        return false;
    bool irq;
    if (s->event_idx) {
        /* Interrupt when the used index moved past used_event: event in [old, new). */
        uint16_t ev = *s->used_event;
        irq = (uint16_t)(ev - old) < (uint16_t)(new_idx - old);
    } else {
        irq = !(__atomic_load_n(&s->avail->flags, __ATOMIC_RELAXED) & VRING_AVAIL_F_NO_INTERRUPT);
    }
    s->irqs += irq;
    return irq;
}

static void sim_set_avail_event(struct sim *s, uint16_t v) { *s->avail_event = v; }

static void sim_set_no_notify(struct sim *s, bool on)
{
    s->used->flags = on ? VRING_USED_F_NO_NOTIFY : 0;
}

/* ---- the driver side of the tests ---- */

#define SLOT_PARTS 12
#define PART_BYTES 32

struct slot {
    uint32_t seq;
    unsigned out, in, cost;
    uint32_t len[SLOT_PARTS];
    uint32_t in_bytes;
    bool busy;
    uint8_t buf[SLOT_PARTS][PART_BYTES];
};

struct driver {
    struct q q;
    struct sim sim;
    struct slot *slot;
    unsigned *free_slot, nfree_slot;
    unsigned nslots;
    uint32_t next_seq;
    unsigned in_flight, consumed, kicks, publishes;
};

static void drv_init(struct driver *d, uint16_t size, bool indirect, bool event_idx)
{
    memset(d, 0, sizeof(*d));
    q_init(&d->q, size, indirect, event_idx);
    sim_init(&d->sim, &d->q.vq, indirect, event_idx);
    /* More slots than descriptors, so a full queue is the queue's verdict. */
    d->nslots = size + 4u;
    d->slot = calloc(d->nslots, sizeof(*d->slot));
    d->free_slot = calloc(d->nslots, sizeof(*d->free_slot));
    for (unsigned i = 0; i < d->nslots; i++)
        d->free_slot[d->nfree_slot++] = d->nslots - 1 - i;
}

static void drv_free(struct driver *d)
{
    sim_free(&d->sim);
    q_free(&d->q);
    free(d->slot);
    free(d->free_slot);
}

/* Add one buffer of out + in parts; false if it did not fit (checked against virtq_cost). */
static bool drv_add(struct driver *d, unsigned out, unsigned in)
{
    struct virtq *vq = &d->q.vq;
    unsigned n = out + in, cost = virtq_cost(vq, n);
    unsigned before = virtq_free_slots(vq);
    uint16_t avail_before = vq->avail_idx;
    if (!d->nfree_slot)
        return false;
    unsigned si = d->free_slot[d->nfree_slot - 1];
    struct slot *sl = &d->slot[si];
    struct virtq_sg sg[SLOT_PARTS];
    sl->seq = d->next_seq;
    sl->out = out;
    sl->in = in;
    sl->cost = cost;
    sl->in_bytes = 0;
    for (unsigned p = 0; p < n; p++) {
        uint32_t len = 4 + rnd_below(PART_BYTES - 3);
        sl->len[p] = len;
        memset(sl->buf[p], 0xEE, PART_BYTES);
        if (p == 0 && out)
            memcpy(sl->buf[p], &sl->seq, 4);
        if (p >= out)
            sl->in_bytes += len;
        sg[p] = (struct virtq_sg){ sl->buf[p], len };
    }
    bool ok = virtq_add(vq, sg, out, in, sl);
    CHECK_EQ(ok, cost <= before);
    if (!ok) {
        CHECK_EQ(virtq_free_slots(vq), before);
        CHECK_EQ(vq->avail_idx, avail_before);
        return false;
    }
    CHECK_EQ(virtq_free_slots(vq), before - cost);
    d->nfree_slot--;
    sl->busy = true;
    d->next_seq++;
    d->in_flight++;
    return true;
}

static bool drv_kick(struct driver *d)
{
    uint16_t before = d->q.vq.kicked_idx;
    bool k = virtq_kick_prepare(&d->q.vq);
    d->publishes += before != d->q.vq.avail_idx;
    d->kicks += k;
    CHECK_EQ(d->sim.avail->idx, d->q.vq.avail_idx);
    return k;
}

/* Take one completion and check it against the device's log. */
static bool drv_reap_one(struct driver *d)
{
    struct virtq *vq = &d->q.vq;
    unsigned before = virtq_free_slots(vq);
    uint32_t len = 0xdeadbeef;
    struct slot *sl = virtq_get_used(vq, &len);
    if (!sl)
        return false;
    CHECK(sl >= d->slot && sl < d->slot + d->nslots);
    CHECK(sl->busy);
    CHECK(d->sim.log_head != d->sim.log_tail);
    struct sim_log lg = d->sim.log[d->sim.log_head++ % 4096];
    uint32_t seq = sl->out ? sl->seq : 0xffffffffu;
    CHECK_EQ(seq, lg.seq);           /* completion order is the device's */
    CHECK_EQ(len, lg.len);
    CHECK_EQ(len, sl->in_bytes);
    uint32_t o = 0;
    for (unsigned p = sl->out; p < sl->out + sl->in; p++) {
        for (uint32_t b = 0; b < sl->len[p]; b++)
            if (sl->buf[p][b] != (uint8_t)(seq * 7 + o + b)) {
                CHECK_EQ(sl->buf[p][b], (uint8_t)(seq * 7 + o + b));
                break;
            }
        o += sl->len[p];
    }
    CHECK_EQ(virtq_free_slots(vq), before + sl->cost);
    sl->busy = false;
    d->free_slot[d->nfree_slot++] = (unsigned)(sl - d->slot);
    d->in_flight--;
    d->consumed++;
    return true;
}

static unsigned drv_reap(struct driver *d, unsigned max)
{
    unsigned n = 0;
    while (n < max && drv_reap_one(d))
        n++;
    return n;
}

/* Random shape: 0..3 readable then 0..3 writable parts, at least one, at most max. */
static void random_shape(unsigned max, unsigned *out, unsigned *in)
{
    for (;;) {
        *out = rnd_below(4);
        *in = rnd_below(4);
        if (rnd_below(16) == 0) {  /* the largest shape allowed */
            *out = 1 + rnd_below(3);
            if (*out > max)
                continue;
            *in = max - *out;
        }
        if (*out + *in != 0 && *out + *in <= max)
            return;
    }
}

/* ---- tests ---- */

TEST(layout)
{
    for (unsigned size = 1; size <= 32768; size *= 2) {
        for (int ind = 0; ind < 2; ind++) {
            struct q q;
            q_init(&q, (uint16_t)size, ind, true);
            struct virtq *vq = &q.vq;
            uintptr_t base = (uintptr_t)q.mem, end = base + virtq_mem_size((uint16_t)size, ind);
            CHECK_EQ(vq->size, size);
            CHECK_EQ(virtq_free_slots(vq), size);
            CHECK_EQ(virtq_desc_addr(vq), base);
            CHECK_EQ(virtq_desc_addr(vq) % 16, 0);
            CHECK_EQ(virtq_avail_addr(vq), base + 16 * size);
            CHECK_EQ(virtq_used_addr(vq) % 4096, 0);
            /* used_event fits before the used ring, avail_event and the rest inside mem */
            CHECK(virtq_avail_addr(vq) + 6 + 2 * size <= virtq_used_addr(vq));
            CHECK(virtq_used_addr(vq) + 6 + 8 * size <= end);
            if (ind) {
                CHECK((uintptr_t)vq->indir >= virtq_used_addr(vq) + 6 + 8 * size);
                CHECK_EQ((uintptr_t)vq->indir % 16, 0);
                CHECK((uintptr_t)(vq->indir + size * VIRTQ_MAX_INDIRECT) <= end);
            }
            CHECK(!virtq_has_used(vq));
            CHECK(!virtq_kick_prepare(vq));
            q_free(&q);
        }
    }
}

/*
 * A legacy device (virtio-mmio version 1 with QueueAlign 4096, legacy
 * virtio-pci) is told only the ring's page frame and finds the rest by the
 * legacy layout rules (virtio 1.2 §2.7.2 legacy interfaces): the available
 * ring right after the descriptors, the used ring at the next 4096 boundary.
 * The oracle is Linux's vring_init()/vring_size() from the uapi header.
 */
TEST(legacy_layout)
{
    for (unsigned size = 1; size <= 32768; size *= 2) {
        for (int ind = 0; ind < 2; ind++) {
            struct q q;
            q_init(&q, (uint16_t)size, ind, true);
            struct vring ref;
            vring_init(&ref, size, q.mem, 4096);
            CHECK_EQ(virtq_desc_addr(&q.vq), (uintptr_t)ref.desc);
            CHECK_EQ(virtq_avail_addr(&q.vq), (uintptr_t)ref.avail);
            CHECK_EQ(virtq_used_addr(&q.vq), (uintptr_t)ref.used);
            CHECK(vring_size(size, 4096) <= virtq_mem_size((uint16_t)size, ind));
            CHECK_EQ((uintptr_t)q.mem % 4096, 0);
            q_free(&q);
        }
    }
}

/* What the device still holds: published and not yet returned, whatever the driver has not reaped. */
TEST(device_holds)
{
    struct driver d;
    drv_init(&d, 8, false, true);
    CHECK_EQ(virtq_device_holds(&d.q.vq), 0);
    for (int i = 0; i < 5; i++)
        CHECK(drv_add(&d, 0, 1));
    CHECK_EQ(virtq_device_holds(&d.q.vq), 0);     /* added, not yet published */
    drv_kick(&d);
    CHECK_EQ(virtq_device_holds(&d.q.vq), 5);
    sim_fetch(&d.sim);
    sim_complete_random(&d.sim, 3);
    CHECK_EQ(virtq_device_holds(&d.q.vq), 5 - (int)d.sim.completed);
    drv_reap(&d, ~0u);                             /* reaping does not change what the device holds */
    CHECK_EQ(virtq_device_holds(&d.q.vq), 5 - (int)d.sim.completed);
    drv_free(&d);
}

TEST(need_event_reference)
{
    /* event in [old, new), counted the slow way. */
#define REF(e, n, o) ({ bool r_ = false; for (uint16_t i_ = (o); i_ != (uint16_t)(n); i_++) if (i_ == (e)) { r_ = true; break; } r_; })
    static const uint16_t olds[] = { 0, 1, 2, 100, 32767, 32768, 65520, 65530, 65533, 65534, 65535 };
    long mismatches = 0, checked = 0;
    for (unsigned a = 0; a < sizeof(olds) / sizeof(olds[0]); a++) {
        uint16_t old = olds[a];
        for (unsigned dist = 0; dist <= 20; dist++) {
            uint16_t nw = (uint16_t)(old + dist);
            for (int de = -40; de <= 40; de++) {
                uint16_t ev = (uint16_t)(old + de);
                mismatches += virtq_need_event(ev, nw, old) != REF(ev, nw, old);
                checked++;
            }
        }
    }
    /* Every event value for a few moves across the wrap. */
    static const uint16_t pairs[][2] = { { 65530, 6 }, { 65535, 0 }, { 0, 0 }, { 65000, 500 }, { 7, 6 } };
    for (unsigned p = 0; p < sizeof(pairs) / sizeof(pairs[0]); p++)
        for (uint32_t ev = 0; ev < 65536; ev++) {
            mismatches += virtq_need_event((uint16_t)ev, pairs[p][1], pairs[p][0]) !=
                          REF((uint16_t)ev, pairs[p][1], pairs[p][0]);
            checked++;
        }
    /* Random triples, short moves and a few long ones. */
    for (int i = 0; i < 300000; i++) {
        uint16_t old = (uint16_t)rnd(), nw = (uint16_t)(old + rnd_below(64)), ev = (uint16_t)(old + rnd_below(128) - 32);
        if (i % 4 == 0)
            ev = (uint16_t)rnd();
        mismatches += virtq_need_event(ev, nw, old) != REF(ev, nw, old);
        checked++;
    }
    for (int i = 0; i < 1000; i++) {
        uint16_t old = (uint16_t)rnd(), nw = (uint16_t)rnd(), ev = (uint16_t)rnd();
        mismatches += virtq_need_event(ev, nw, old) != REF(ev, nw, old);
        checked++;
    }
    CHECK_EQ(mismatches, 0);
    CHECK(checked > 400000);
    /* The spec's own examples. */
    CHECK(virtq_need_event(0, 1, 0));
    CHECK(!virtq_need_event(1, 1, 0));
    CHECK(!virtq_need_event(5, 5, 5));
    CHECK(virtq_need_event(65535, 0, 65535));
    CHECK(virtq_need_event(65535, 3, 65530));
    CHECK(!virtq_need_event(3, 3, 65530));
#undef REF
}

TEST(alloc_free_direct)
{
    struct driver d;
    drv_init(&d, 8, false, true);
    struct virtq *vq = &d.q.vq;
    for (unsigned n = 1; n <= 12; n++)
        CHECK_EQ(virtq_cost(vq, n), n);
    for (int round = 0; round < 3; round++) {
        /* Fill with single parts, get false when full. */
        for (int i = 0; i < 8; i++)
            CHECK(drv_add(&d, 1, 0));
        CHECK_EQ(virtq_free_slots(vq), 0);
        CHECK(!drv_add(&d, 0, 1));
        drv_kick(&d);
        CHECK_EQ(sim_fetch(&d.sim), 8);
        /* Free one, reuse it, full again. */
        sim_complete(&d.sim, 3);
        sim_signal(&d.sim);
        CHECK_EQ(drv_reap(&d, 100), 1);
        CHECK_EQ(virtq_free_slots(vq), 1);
        CHECK(!drv_add(&d, 1, 1));
        CHECK(drv_add(&d, 0, 1));
        CHECK_EQ(virtq_free_slots(vq), 0);
        drv_kick(&d);
        CHECK_EQ(sim_fetch(&d.sim), 1);
        sim_complete_random(&d.sim, 100);
        CHECK_EQ(drv_reap(&d, 100), 8);
        CHECK_EQ(virtq_free_slots(vq), 8);

        /* Chains of 3 cost 3: two fit, a third does not, a chain of 2 does. */
        CHECK(drv_add(&d, 1, 2));
        CHECK(drv_add(&d, 2, 1));
        CHECK_EQ(virtq_free_slots(vq), 2);
        CHECK(!drv_add(&d, 3, 0));
        CHECK(drv_add(&d, 1, 1));
        CHECK_EQ(virtq_free_slots(vq), 0);
        drv_kick(&d);
        CHECK_EQ(sim_fetch(&d.sim), 3);
        sim_complete(&d.sim, 1);
        CHECK_EQ(drv_reap(&d, 100), 1);
        /* A whole-queue chain once everything is back. */
        sim_complete_random(&d.sim, 100);
        CHECK_EQ(drv_reap(&d, 100), 2);
        CHECK_EQ(virtq_free_slots(vq), 8);
        CHECK(!drv_add(&d, 5, 4));
        CHECK(drv_add(&d, 4, 4));
        CHECK_EQ(virtq_free_slots(vq), 0);
        drv_kick(&d);
        CHECK_EQ(sim_fetch(&d.sim), 1);
        sim_complete(&d.sim, 0);
        CHECK_EQ(drv_reap(&d, 100), 1);
        CHECK_EQ(virtq_free_slots(vq), 8);
    }
    CHECK_EQ(d.sim.errors, 0);
    drv_free(&d);
}

TEST(alloc_free_indirect)
{
    struct driver d;
    drv_init(&d, 16, true, true);
    struct virtq *vq = &d.q.vq;
    CHECK_EQ(virtq_cost(vq, 1), 1);
    for (unsigned n = 2; n <= VIRTQ_MAX_INDIRECT; n++)
        CHECK_EQ(virtq_cost(vq, n), 1);
    CHECK_EQ(virtq_cost(vq, VIRTQ_MAX_INDIRECT + 1), VIRTQ_MAX_INDIRECT + 1);
    CHECK_EQ(virtq_cost(vq, VIRTQ_MAX_INDIRECT + 3), VIRTQ_MAX_INDIRECT + 3);
    for (int round = 0; round < 3; round++) {
        /* Sixteen requests of up to eight parts each fit in sixteen descriptors. */
        for (unsigned i = 0; i < 16; i++)
            CHECK(drv_add(&d, 1 + i % 4, VIRTQ_MAX_INDIRECT - 1 - i % 4));
        CHECK_EQ(virtq_free_slots(vq), 0);
        CHECK(!drv_add(&d, 1, 1));
        CHECK(!drv_add(&d, 1, 0));
        drv_kick(&d);
        CHECK_EQ(sim_fetch(&d.sim), 16);
        for (unsigned i = 0; i < 16; i++)
            CHECK(d.sim.req[d.sim.pending[i]].table != NULL);
        sim_complete_random(&d.sim, 5);
        CHECK_EQ(drv_reap(&d, 100), 5);
        CHECK_EQ(virtq_free_slots(vq), 5);
        /* More than VIRTQ_MAX_INDIRECT parts: a direct chain of that many. */
        CHECK(!drv_add(&d, 3, VIRTQ_MAX_INDIRECT - 2));
        sim_complete_random(&d.sim, 6);
        CHECK_EQ(drv_reap(&d, 100), 6);
        CHECK_EQ(virtq_free_slots(vq), 11);
        CHECK(drv_add(&d, 3, VIRTQ_MAX_INDIRECT - 2));
        CHECK_EQ(virtq_free_slots(vq), 11 - (VIRTQ_MAX_INDIRECT + 1));
        CHECK(drv_add(&d, 0, 1));  /* one part: one direct descriptor */
        CHECK(drv_add(&d, 2, 2));  /* indirect again */
        CHECK_EQ(virtq_free_slots(vq), 11 - (VIRTQ_MAX_INDIRECT + 1) - 2);
        drv_kick(&d);
        CHECK_EQ(sim_fetch(&d.sim), 3);
        bool saw_direct_chain = false;
        for (unsigned i = 0; i < d.sim.npending; i++) {
            const struct sim_req *r = &d.sim.req[d.sim.pending[i]];
            if (r->nparts == VIRTQ_MAX_INDIRECT + 1) {
                saw_direct_chain = true;
                CHECK(r->table == NULL);
            }
        }
        CHECK(saw_direct_chain);
        sim_complete_random(&d.sim, 100);
        CHECK_EQ(drv_reap(&d, 100), 8);
        CHECK_EQ(virtq_free_slots(vq), 16);
        CHECK_EQ(d.in_flight, 0);
    }
    CHECK_EQ(d.sim.errors, 0);
    drv_free(&d);
}

TEST(indirect_small_queue_chain_limit)
{
    /* §2.7.5.3.1: no chain longer than the queue size, indirect ones included. */
    for (unsigned size = 1; size <= 16; size *= 2) {
        struct driver d;
        drv_init(&d, (uint16_t)size, true, false);
        struct virtq *vq = &d.q.vq;
        for (unsigned n = 1; n <= VIRTQ_MAX_INDIRECT + 2; n++) {
            unsigned cost = virtq_cost(vq, n);
            bool ok = drv_add(&d, 1, n - 1);
            CHECK_EQ(ok, n <= size);
            if (ok) {
                CHECK(cost == 1 || n == 1 || n > VIRTQ_MAX_INDIRECT);
                drv_kick(&d);
                CHECK_EQ(sim_fetch(&d.sim), 1);
                if (d.sim.npending != 1)
                    break;  /* the device refused it: stop here */
                sim_complete(&d.sim, 0);
                CHECK_EQ(drv_reap(&d, 10), 1);
            }
            CHECK_EQ(virtq_free_slots(vq), size);
        }
        CHECK_EQ(d.sim.errors, 0);
        drv_free(&d);
    }
}

TEST(reject_empty_and_null_cookie)
{
    for (int ind = 0; ind < 2; ind++) {
        struct q q;
        q_init(&q, 8, ind, true);
        struct virtq *vq = &q.vq;
        uint8_t buf[16];
        struct virtq_sg sg[2] = { { buf, 8 }, { buf + 8, 8 } };
        int cookie;
        CHECK(!virtq_add(vq, sg, 0, 0, &cookie));
        CHECK(!virtq_add(vq, sg, 1, 0, NULL));
        CHECK(!virtq_add(vq, sg, 1, 1, NULL));
        CHECK(!virtq_add(vq, sg, 0, 1, NULL));
        CHECK_EQ(virtq_free_slots(vq), 8);
        CHECK_EQ(vq->avail_idx, 0);
        CHECK(!virtq_kick_prepare(vq));
        CHECK_EQ(vq->avail->idx, 0);
        CHECK(virtq_add(vq, sg, 1, 1, &cookie));
        CHECK_EQ(vq->avail_idx, 1);
        q_free(&q);
    }
}

TEST(nothing_visible_before_kick_prepare)
{
    struct driver d;
    drv_init(&d, 8, true, true);
    CHECK(drv_add(&d, 1, 1));
    CHECK(drv_add(&d, 1, 0));
    CHECK_EQ(sim_fetch(&d.sim), 0);
    CHECK(drv_kick(&d));          /* avail_event 0 is in [0, 2) */
    CHECK_EQ(sim_fetch(&d.sim), 2);
    CHECK(!drv_kick(&d));         /* nothing new */
    sim_complete_random(&d.sim, 2);
    CHECK_EQ(drv_reap(&d, 10), 2);
    CHECK_EQ(d.sim.errors, 0);
    drv_free(&d);
}

/*
 * Traffic through the queue until the 16-bit indices have wrapped: the
 * driver adds random shapes in random batches, the device completes a
 * random subset in random order, and the driver sometimes lags behind.
 */
static void run_traffic(uint16_t size, bool indirect, bool event_idx, unsigned total)
{
    struct driver d;
    drv_init(&d, size, indirect, event_idx);
    unsigned max_parts = indirect && size >= 16 ? VIRTQ_MAX_INDIRECT + 2 : (size < 6 ? size : 6);
    unsigned guard = 0;
    while (d.consumed < total && guard++ < total * 4) {
        unsigned want = rnd_below(size + 1u);
        for (unsigned i = 0; i < want && d.next_seq < total; i++) {
            unsigned out, in;
            random_shape(max_parts, &out, &in);
            if (!drv_add(&d, out, in))
                break;
        }
        drv_kick(&d);
        sim_fetch(&d.sim);
        unsigned c = rnd_below(8) == 0 ? d.sim.npending : rnd_below(d.sim.npending + 1);
        sim_complete_random(&d.sim, c);
        sim_signal(&d.sim);
        drv_reap(&d, rnd_below(4) == 0 ? rnd_below(size) : ~0u);
    }
    CHECK_EQ(d.consumed, total);
    CHECK_EQ(d.sim.completed, total);
    CHECK_EQ(d.in_flight, 0);
    CHECK_EQ(virtq_free_slots(&d.q.vq), size);
    CHECK(!virtq_has_used(&d.q.vq));
    CHECK_EQ(d.sim.log_head, d.sim.log_tail);
    CHECK_EQ(d.sim.used->idx, (uint16_t)total);
    CHECK_EQ(d.sim.avail->idx, (uint16_t)total);
    CHECK_EQ(d.sim.errors, 0);
    /* Every descriptor is free again: a full queue of single parts fits. */
    for (unsigned i = 0; i < size; i++)
        CHECK(drv_add(&d, 1, 0));
    CHECK(!drv_add(&d, 1, 0));
    drv_kick(&d);
    CHECK_EQ(sim_fetch(&d.sim), size);
    sim_complete_random(&d.sim, size);
    CHECK_EQ(drv_reap(&d, ~0u), size);
    CHECK_EQ(d.sim.errors, 0);
    drv_free(&d);
}

TEST(wrap_size8_direct) { run_traffic(8, false, true, 70001); }
TEST(wrap_size8_indirect) { run_traffic(8, true, true, 70001); }
TEST(wrap_size8_no_event_idx) { run_traffic(8, true, false, 70001); }
TEST(wrap_size256_direct) { run_traffic(256, false, true, 140003); }
TEST(wrap_size256_indirect) { run_traffic(256, true, true, 140003); }
TEST(wrap_size2_indirect) { run_traffic(2, true, false, 70001); }

TEST(kick_suppression_event_idx)
{
    struct driver d;
    drv_init(&d, 16, true, true);
    uint16_t old = 0;
    unsigned mismatches = 0, kicked = 0, quiet = 0;
    for (int it = 0; it < 80000; it++) {
        unsigned k = rnd_below(4);
        for (unsigned i = 0; i < k; i++)
            CHECK(drv_add(&d, 1, 1));
        uint16_t nw = (uint16_t)(old + k), ev;
        switch (rnd_below(5)) {
        case 0: ev = old; break;                                   /* device caught up */
        case 1: ev = (uint16_t)(old + rnd_below(5)); break;        /* inside or just past */
        case 2: ev = (uint16_t)(old - 1 - rnd_below(20)); break;   /* device behind */
        case 3: ev = (uint16_t)(nw); break;                        /* just beyond */
        default: ev = (uint16_t)rnd(); break;
        }
        sim_set_avail_event(&d.sim, ev);
        /* Without event idx the flag would matter; here it must be ignored. */
        sim_set_no_notify(&d.sim, rnd_below(2));
        bool expect = (uint16_t)(ev - old) < (uint16_t)(nw - old);
        bool got = drv_kick(&d);
        mismatches += got != expect;
        kicked += got;
        quiet += !got && k;
        old = nw;
        sim_fetch(&d.sim);
        sim_complete_random(&d.sim, d.sim.npending);
        drv_reap(&d, ~0u);
    }
    CHECK_EQ(mismatches, 0);
    CHECK(kicked > 1000 && quiet > 1000);
    CHECK((uint32_t)d.next_seq > 65536);  /* avail idx wrapped */
    CHECK_EQ(d.sim.errors, 0);
    drv_free(&d);
}

TEST(kick_suppression_no_event_idx)
{
    struct driver d;
    drv_init(&d, 16, true, false);
    unsigned mismatches = 0;
    for (int it = 0; it < 20000; it++) {
        unsigned k = rnd_below(3);
        for (unsigned i = 0; i < k; i++)
            CHECK(drv_add(&d, 1, 1));
        bool no_notify = rnd_below(2);
        sim_set_no_notify(&d.sim, no_notify);
        sim_set_avail_event(&d.sim, (uint16_t)rnd());  /* must be ignored */
        mismatches += drv_kick(&d) != (k && !no_notify);
        sim_fetch(&d.sim);
        sim_complete_random(&d.sim, d.sim.npending);
        drv_reap(&d, ~0u);
    }
    CHECK_EQ(mismatches, 0);
    CHECK_EQ(d.sim.errors, 0);
    drv_free(&d);
}

/*
 * A device thread that sleeps until notified: before sleeping it asks to be
 * told of the next buffer (avail_event = last seen, or clearing NO_NOTIFY),
 * then looks once more. While it is awake and polling it asks for nothing.
 * The driver kicks only when kick_prepare says so; no buffer may be left
 * unseen, and kicks must be rarer than publishes.
 */
static void run_sleeping_device(bool event_idx)
{
    struct driver d;
    drv_init(&d, 64, true, event_idx);
    bool asleep = false;
    const unsigned total = 70000;
    if (event_idx)
        sim_set_avail_event(&d.sim, 0);
    unsigned wrong = 0, guard = 0;
    while (d.consumed < total && guard++ < total * 8) {
        unsigned k = d.next_seq < total ? rnd_below(4) : 0;
        for (unsigned i = 0; i < k && d.next_seq < total; i++)
            if (!drv_add(&d, 1, rnd_below(3)))
                break;
        bool published = d.q.vq.kicked_idx != d.q.vq.avail_idx;
        bool kick = drv_kick(&d);
        /* A sleeping device must be woken by any new buffer; an awake one need not be. */
        if (asleep && published && !kick)
            wrong++;
        if (kick)
            asleep = false;
        if (!asleep) {
            sim_fetch(&d.sim);
            sim_complete_random(&d.sim, d.sim.npending);
            if (rnd_below(3) == 0) {
                if (event_idx)
                    sim_set_avail_event(&d.sim, d.sim.last_avail);
                else
                    sim_set_no_notify(&d.sim, false);
                __atomic_thread_fence(__ATOMIC_SEQ_CST);
                if (__atomic_load_n(&d.sim.avail->idx, __ATOMIC_ACQUIRE) == d.sim.last_avail)
                    asleep = true;
            } else if (!event_idx) {
                sim_set_no_notify(&d.sim, true);
            }
        }
        drv_reap(&d, ~0u);
    }
    CHECK_EQ(wrong, 0);
    CHECK_EQ(d.consumed, total);
    CHECK(d.kicks < d.publishes);
    CHECK(d.kicks > 0);
    CHECK_EQ(d.sim.errors, 0);
    drv_free(&d);
}

TEST(kick_sleeping_device_event_idx) { run_sleeping_device(true); }
TEST(kick_sleeping_device_no_event_idx) { run_sleeping_device(false); }

/* One request through the queue, the driver polling; returns the device's interrupt decision. */
static bool one_round_trip(struct driver *d, bool reap)
{
    CHECK(drv_add(d, 1, 1));
    drv_kick(d);
    CHECK_EQ(sim_fetch(&d->sim), 1);
    sim_complete(&d->sim, 0);
    bool irq = sim_signal(&d->sim);
    if (reap)
        CHECK_EQ(drv_reap(d, 1), 1);
    return irq;
}

static void run_irq_suppression(bool event_idx)
{
    struct driver d;
    drv_init(&d, 8, false, event_idx);
    struct virtq *vq = &d.q.vq;
    /* A new queue polls: no interrupts. */
    for (int i = 0; i < 65000; i++)
        one_round_trip(&d, true);
    CHECK_EQ(d.sim.irqs, 0);

    /* Enable with nothing pending: true, and the next completion interrupts once. */
    CHECK(virtq_enable_irq(vq));
    CHECK(one_round_trip(&d, false));
    CHECK_EQ(d.sim.irqs, 1);
    /* The shard wakes and polls again. */
    virtq_disable_irq(vq);
    CHECK_EQ(drv_reap(&d, 10), 1);
    for (int i = 0; i < 65000; i++)
        one_round_trip(&d, true);
    CHECK_EQ(d.sim.irqs, 1);

    /* Batched completions after enable: still exactly one interrupt. */
    CHECK(virtq_enable_irq(vq));
    for (int i = 0; i < 3; i++)
        CHECK(drv_add(&d, 1, 0));
    drv_kick(&d);
    CHECK_EQ(sim_fetch(&d.sim), 3);
    sim_complete(&d.sim, 0);
    sim_complete(&d.sim, 0);
    CHECK(sim_signal(&d.sim));
    CHECK_EQ(d.sim.irqs, 2);
    if (event_idx) {
        /* Nothing consumed, nothing re-armed: the next one stays quiet. */
        sim_complete(&d.sim, 0);
        CHECK(!sim_signal(&d.sim));
        CHECK_EQ(d.sim.irqs, 2);
    } else {
        sim_complete(&d.sim, 0);
        sim_signal(&d.sim);  /* flag-only suppression cannot stop this one */
    }
    /* Completions already waiting: enable_irq says do not sleep. */
    CHECK(virtq_has_used(vq));
    CHECK(!virtq_enable_irq(vq));
    CHECK_EQ(drv_reap(&d, 10), 3);
    virtq_disable_irq(vq);
    unsigned before = d.sim.irqs;
    for (int i = 0; i < 1000; i++)
        one_round_trip(&d, true);
    CHECK_EQ(d.sim.irqs, before);

    /* Enable, then a completion lands before the shard looks again. */
    CHECK(drv_add(&d, 1, 0));
    drv_kick(&d);
    sim_fetch(&d.sim);
    sim_complete(&d.sim, 0);
    sim_signal(&d.sim);
    CHECK(!virtq_enable_irq(vq));
    CHECK_EQ(drv_reap(&d, 10), 1);
    CHECK(virtq_enable_irq(vq));
    CHECK(one_round_trip(&d, true));
    virtq_disable_irq(vq);
    virtq_disable_irq(vq);  /* twice is harmless */
    before = d.sim.irqs;
    for (int i = 0; i < 1000; i++)
        one_round_trip(&d, true);
    CHECK_EQ(d.sim.irqs, before);
    CHECK_EQ(d.sim.errors, 0);
    drv_free(&d);
}

TEST(irq_suppression_event_idx) { run_irq_suppression(true); }
TEST(irq_suppression_no_event_idx) { run_irq_suppression(false); }

/*
 * A reactor that polls while there is work and sleeps (enable_irq) when
 * idle, against a device that completes at random times: a shard asleep
 * with completions outstanding must get an interrupt.
 */
static void run_reactor(bool event_idx)
{
    struct driver d;
    drv_init(&d, 32, true, event_idx);
    struct virtq *vq = &d.q.vq;
    bool sleeping = false;
    unsigned lost = 0, sleeps = 0, wakeups = 0, guard = 0;
    const unsigned total = 70000;
    while (d.consumed < total && guard++ < total * 20) {
        if (!sleeping) {
            unsigned k = d.next_seq < total ? rnd_below(3) : 0;
            for (unsigned i = 0; i < k && d.next_seq < total; i++)
                if (!drv_add(&d, 1, 1))
                    break;
            drv_kick(&d);
            if (!drv_reap(&d, ~0u) && d.in_flight && rnd_below(2)) {
                /* Idle: arm the interrupt, sleep unless something is already there. */
                if (virtq_enable_irq(vq)) {
                    sleeping = true;
                    sleeps++;
                } else {
                    virtq_disable_irq(vq);
                }
            }
        }
        sim_fetch(&d.sim);
        sim_complete_random(&d.sim, rnd_below(3));
        if (sim_signal(&d.sim) && sleeping) {
            sleeping = false;
            wakeups++;
            virtq_disable_irq(vq);
        }
        if (sleeping && d.sim.npending == 0) {
            /* Everything we gave is done and no interrupt came: we would sleep forever. */
            lost++;
            sleeping = false;
            virtq_disable_irq(vq);
        }
    }
    CHECK_EQ(lost, 0);
    CHECK_EQ(d.consumed, total);
    CHECK(sleeps > 100);
    CHECK_EQ(wakeups, sleeps);
    CHECK_EQ(d.sim.errors, 0);
    drv_free(&d);
}

TEST(reactor_no_lost_interrupt_event_idx) { run_reactor(true); }
TEST(reactor_no_lost_interrupt_no_event_idx) { run_reactor(false); }

TEST(bogus_used_ids)
{
    struct driver d;
    drv_init(&d, 8, false, true);
    struct virtq *vq = &d.q.vq;
    /* Every descriptor has been a head once, so stale cookies would show. */
    for (int i = 0; i < 8; i++)
        CHECK(drv_add(&d, 1, 0));
    drv_kick(&d);
    sim_fetch(&d.sim);
    sim_complete_random(&d.sim, 8);
    CHECK_EQ(drv_reap(&d, 100), 8);

    CHECK(drv_add(&d, 1, 2));  /* A: three descriptors */
    CHECK(drv_add(&d, 1, 0));  /* B */
    CHECK(drv_add(&d, 1, 1));  /* C: two */
    CHECK_EQ(virtq_free_slots(vq), 2);
    drv_kick(&d);
    CHECK_EQ(sim_fetch(&d.sim), 3);
    uint16_t head_a = 0, head_b = 0, head_c = 0;
    for (unsigned i = 0; i < 3; i++) {
        uint16_t h = d.sim.pending[i];
        unsigned np = d.sim.req[h].nparts;
        if (np == 3) head_a = h;
        else if (np == 1) head_b = h;
        else head_c = h;
    }
    uint16_t non_head = 0xffff, free_desc = 0xffff;
    for (uint16_t i = 0; i < 8; i++) {
        if (d.sim.owner[i] == head_a + 1 && i != head_a)
            non_head = i;
        if (!d.sim.owner[i])
            free_desc = i;
    }
    CHECK(non_head != 0xffff && free_desc != 0xffff);

    /* Ids out of range, a chain's middle, a free descriptor: all ignored. */
    sim_push_used(&d.sim, 8, 4);
    sim_push_used(&d.sim, 1000, 4);
    sim_push_used(&d.sim, 0xffffffffu, 4);
    sim_push_used(&d.sim, non_head, 4);
    sim_push_used(&d.sim, free_desc, 4);
    uint32_t len;
    CHECK(virtq_get_used(vq, &len) == NULL);
    CHECK(!virtq_has_used(vq));
    CHECK_EQ(virtq_free_slots(vq), 2);

    /* B for real, sandwiched between bogus ones. */
    sim_push_used(&d.sim, 9, 0);
    unsigned kb = 0;
    for (unsigned i = 0; i < d.sim.npending; i++)
        if (d.sim.pending[i] == head_b)
            kb = i;
    sim_complete(&d.sim, kb);
    sim_push_used(&d.sim, non_head, 0);
    CHECK_EQ(drv_reap(&d, 100), 1);
    CHECK_EQ(virtq_free_slots(vq), 3);
    /* B again: already completed, ignored. */
    sim_push_used(&d.sim, head_b, 4);
    CHECK(virtq_get_used(vq, &len) == NULL);
    CHECK_EQ(virtq_free_slots(vq), 3);

    /* Reuse B's descriptor while A and C are in flight; then A twice. */
    CHECK(drv_add(&d, 1, 0));
    drv_kick(&d);
    CHECK_EQ(sim_fetch(&d.sim), 1);
    for (unsigned i = 0; i < d.sim.npending; i++)
        if (d.sim.pending[i] == head_a) {
            sim_complete(&d.sim, i);
            break;
        }
    sim_push_used(&d.sim, head_a, 4);
    CHECK_EQ(drv_reap(&d, 100), 1);
    CHECK_EQ(virtq_free_slots(vq), 5);
    sim_complete_random(&d.sim, 100);
    CHECK_EQ(drv_reap(&d, 100), 2);
    CHECK_EQ(virtq_free_slots(vq), 8);
    (void)head_c;

    /* The free list is intact: a full queue of every shape still works. */
    for (int round = 0; round < 50; round++) {
        while (drv_add(&d, 1 + rnd_below(2), rnd_below(3)))
            ;
        drv_kick(&d);
        sim_fetch(&d.sim);
        if (round % 5 == 0)
            sim_push_used(&d.sim, 8 + rnd_below(8), 1);
        sim_complete_random(&d.sim, 100);
        drv_reap(&d, ~0u);
        CHECK_EQ(virtq_free_slots(vq), 8);
    }
    CHECK_EQ(d.in_flight, 0);
    CHECK_EQ(d.sim.errors, 0);
    drv_free(&d);
}

TEST_MAIN()
