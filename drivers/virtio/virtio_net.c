/*
 * virtio-net (virtio 1.2 §5.1): queue pair i (receiveq 2i, transmitq 2i+1)
 * belongs to shard i. Receive buffers are 2 KiB netbufs with the device's
 * header in their headroom, so a frame is received and sent back without
 * copying. The header is virtio_net_hdr_v1 (12 bytes); a legacy device
 * without mergeable buffers has the 10-byte virtio_net_hdr, and one without
 * VIRTIO_F_ANY_LAYOUT wants it in a descriptor of its own (§5.1.6.6).
 * The control queue is used only at boot, by the BSP.
 */
#include <stddef.h>
#include <linux/virtio_net.h>
#include "virtio.h"
#include "../netdev.h"
#include "../../arch/x86_64/cpu.h"
#include "../../kernel/clock.h"
#include "../../kernel/console.h"
#include "../../kernel/heap.h"
#include "../../kernel/malloc.h"
#include "../../kernel/percpu.h"
#include "../../kernel/string.h"

#define HDR_LEN ((uint32_t)sizeof(struct virtio_net_hdr_v1))
#define LEGACY_HDR_LEN ((uint32_t)sizeof(struct virtio_net_hdr))
#define RX_RING_MAX 256
#define TX_RING_MAX 256
/* A 64 KiB GSO frame in 2 KiB buffers, plus the header's; longer chains go as direct descriptors. */
#define TX_MAX_PARTS 40
#define CTRL_TIMEOUT_NS 1000000000ULL

/* One per shard, each on its own cache lines: the counters are written by their shard only. */
struct vnet_queue {
    struct virtq *rx, *tx;
    uint64_t rx_bad, tx_dropped;
} __attribute__((aligned(64)));

struct vnet {
    struct netdev nd;           /* first: a struct netdev * is a struct vnet * */
    struct virtio_dev *vd;
    struct virtq *ctrl;
    bool mrg_rxbuf;
    bool split_hdr;             /* header in its own descriptor (legacy, no ANY_LAYOUT) */
    uint32_t hdr_len;           /* HDR_LEN or LEGACY_HDR_LEN */
    struct vnet_queue q[MAX_CPUS];
};

static struct vnet *to_vnet(struct netdev *d) { return (struct vnet *)d; }
/* The first 10 bytes are the same in both header layouts; num_buffers exists only in the 12-byte one. */
static struct virtio_net_hdr_v1 *hdr_of(const struct vnet *v, struct netbuf *b)
{
    return (struct virtio_net_hdr_v1 *)(b->data - v->hdr_len);
}

/* --- receive --- */

/*
 * A receive buffer from the heap of `cpu`, the queue's owner. At boot the
 * BSP fills every shard's queue (see fill_all_rx) before that shard runs,
 * so the buffers are the owner's and its frees stay local.
 */
static struct netbuf *rx_buf_new(unsigned cpu)
{
    if (cpu == this_cpu_id())
        return netbuf_alloc();
    return netbuf_init(heap_alloc(&cpu_table[cpu]->heap, NETBUF_SIZE));
}

static bool rx_post(const struct vnet *v, struct virtq *rx, unsigned cpu)
{
    struct netbuf *b = rx_buf_new(cpu);
    if (!b)
        return false;
    struct virtq_sg sg[2] = { { b->data - v->hdr_len, netbuf_room(b) + v->hdr_len } };
    unsigned parts = 1;
    if (v->split_hdr) {
        sg[0].len = v->hdr_len;
        sg[1] = (struct virtq_sg){ b->data, netbuf_room(b) };
        parts = 2;
    }
    if (virtq_cost(rx, parts) > virtq_free_slots(rx) || !virtq_add(rx, sg, 0, parts, b)) {
        netbuf_free(b);
        return false;
    }
    return true;
}

static unsigned rx_fill(const struct vnet *v, struct virtq *rx, unsigned cpu)
{
    unsigned posted = 0;
    while (virtq_free_slots(rx) && rx_post(v, rx, cpu))
        posted++;
    return posted;
}

/*
 * A queue the device found short of buffers can stall other queues. QEMU's
 * software RSS takes a frame from the backend queue it came in on (tap
 * queue k) and redirects it to the queue of its flow; when that queue has
 * no room for it, QEMU parks the frame on queue k's side, stops reading tap
 * queue k and releases it only on a receive kick of queue k (or a status
 * change). Queue k's own ring may be full, so its owner never kicks it, and
 * every flow the host hashes onto tap queue k is dead for good: the dead
 * shard of the boot storm, whose queue ran short under traffic before its
 * shard first polled it.
 *
 * So a refill that finds the device holding fewer than RX_SHORT buffers
 * (it may have refused a frame since the last refill: a frame takes at most
 * RX_SHORT / 2 of them, and the device only loses buffers between refills)
 * rings every receive queue's doorbell once the new buffers are published.
 * Ringing another shard's doorbell touches only the transport's notify
 * register, never that queue's ring. Otherwise only this queue is notified,
 * and only when the device asked.
 */
#define RX_SHORT (2 * (65536 / NETBUF_SIZE))

static void rx_kick(struct vnet *v, struct virtq *rx, bool was_short)
{
    bool asked = virtq_kick_prepare(rx);
    if (asked || was_short)
        virtio_notify(v->vd, rx);
    if (!was_short)
        return;
    for (unsigned q = 0; q < v->nd.nqueues; q++)
        if (v->q[q].rx && v->q[q].rx != rx)
            virtio_notify(v->vd, v->q[q].rx);
}

static void rx_refill(struct vnet *v, struct virtq *rx)
{
    bool was_short = virtq_device_holds(rx) < RX_SHORT;
    if (rx_fill(v, rx, this_cpu_id()))
        rx_kick(v, rx, was_short);
}

/*
 * Every receive queue is full of buffers before DRIVER_OK (virtio 1.2
 * §5.1.5): the device may deliver to any queue from the moment it is live,
 * and RSS or the host may pick a queue whose shard has not started yet. The
 * buffers are published, not notified: no notification before DRIVER_OK.
 */
static bool fill_all_rx(struct vnet *v)
{
    for (unsigned q = 0; q < v->nd.nqueues; q++) {
        if (!rx_fill(v, v->q[q].rx, q))
            return false;
        (void)virtq_kick_prepare(v->q[q].rx);
    }
    return true;
}

static bool start(struct netdev *d, unsigned q)
{
    struct vnet *v = to_vnet(d);
    if (q >= d->nqueues || !v->q[q].rx)
        return false;
    virtio_queue_owner_attach(v->q[q].rx);
    rx_refill(v, v->q[q].rx);
    return virtq_free_slots(v->q[q].rx) < v->q[q].rx->size;
}

static void take_offload_info(struct netbuf *b, const struct virtio_net_hdr_v1 *h)
{
    if (h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        b->flags |= NETBUF_CSUM_PARTIAL;
        b->csum_start = h->csum_start;
        b->csum_offset = h->csum_offset;
    }
    if (h->flags & VIRTIO_NET_HDR_F_DATA_VALID)
        b->flags |= NETBUF_CSUM_VALID;
    if ((h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN) == VIRTIO_NET_HDR_GSO_TCPV4) {
        b->gso_type = NETBUF_GSO_TCPV4;
        b->gso_size = h->gso_size;
        b->hdr_len = h->hdr_len;
    }
}

/* The rest of a mergeable frame; NULL (and the pieces freed) if the device did not deliver them. */
static struct netbuf *rx_merge(const struct vnet *v, struct virtq *rx, struct netbuf *first, unsigned more)
{
    struct netbuf *last = first;
    while (more--) {
        uint32_t len;
        struct netbuf *b = virtq_get_used(rx, &len);
        if (!b) {
            netbuf_free(first);
            return 0;
        }
        b->data -= v->hdr_len; /* only the first buffer carries a header */
        b->len = len <= netbuf_room(b) ? len : 0;
        last->frag = b;
        last = b;
    }
    return first;
}

static struct netbuf *rx_one(struct vnet *v, struct vnet_queue *vq, unsigned q)
{
    for (;;) {
        uint32_t len;
        struct netbuf *b = virtq_get_used(vq->rx, &len);
        if (!b)
            return 0;
        struct virtio_net_hdr_v1 *h = hdr_of(v, b);
        if (len < v->hdr_len + 14 || len > netbuf_room(b) + v->hdr_len) {
            vq->rx_bad++;
            netbuf_free(b);
            continue;
        }
        b->len = len - v->hdr_len;
        b->queue = (uint16_t)q;
        take_offload_info(b, h);
        unsigned nbuf = v->mrg_rxbuf ? h->num_buffers : 1;
        if (nbuf > 1 && !(b = rx_merge(v, vq->rx, b, nbuf - 1))) {
            vq->rx_bad++;
            continue;
        }
        return b;
    }
}

static void tx_reclaim(struct virtq *tx)
{
    struct netbuf *b;
    while ((b = virtq_get_used(tx, 0)))
        netbuf_free(b);
}

static unsigned rx_burst(struct netdev *d, unsigned q, struct netbuf **frames, unsigned max)
{
    struct vnet *v = to_vnet(d);
    struct vnet_queue *vq = &v->q[q];
    tx_reclaim(vq->tx);
    unsigned n = 0;
    while (n < max && (frames[n] = rx_one(v, vq, q)))
        n++;
    if (n)
        rx_refill(v, vq->rx);
    return n;
}

static bool rx_sleep(struct netdev *d, unsigned q) { return virtq_enable_irq(to_vnet(d)->q[q].rx); }
static void rx_wake(struct netdev *d, unsigned q) { virtq_disable_irq(to_vnet(d)->q[q].rx); }

/* --- transmit --- */

/* The one's-complement sum the device would have written, for devices without VIRTIO_NET_F_CSUM. */
static bool finish_checksum(struct netbuf *b)
{
    if (b->frag || (uint32_t)b->csum_start + b->csum_offset + 2 > b->len)
        return false;
    uint32_t sum = 0;
    const uint8_t *p = b->data + b->csum_start;
    uint32_t n = b->len - b->csum_start;
    for (uint32_t i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (n & 1)
        sum += (uint32_t)p[n - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    uint16_t c = (uint16_t)~sum;
    b->data[b->csum_start + b->csum_offset] = (uint8_t)(c >> 8);
    b->data[b->csum_start + b->csum_offset + 1] = (uint8_t)c;
    b->flags &= (uint16_t)~NETBUF_CSUM_PARTIAL;
    return true;
}

static bool tx_header(struct vnet *v, struct netbuf *b)
{
    if (b->data - (uint8_t *)b < (long)(sizeof *b + v->hdr_len))
        return false;
    struct virtio_net_hdr_v1 *h = hdr_of(v, b);
    memset(h, 0, v->hdr_len);
    if (b->flags & NETBUF_CSUM_PARTIAL) {
        if (!virtio_has(v->vd, VIRTIO_NET_F_CSUM))
            return finish_checksum(b);
        h->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
        h->csum_start = b->csum_start;
        h->csum_offset = b->csum_offset;
    }
    if (b->gso_type == NETBUF_GSO_TCPV4) {
        if (!virtio_has(v->vd, VIRTIO_NET_F_HOST_TSO4))
            return false;
        h->gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
        h->gso_size = b->gso_size;
        h->hdr_len = b->hdr_len;
    }
    return true;
}

/* The frame's parts behind its header: in the header's descriptor, or after it (split_hdr). */
static unsigned tx_parts(const struct vnet *v, struct netbuf *b, struct virtq_sg *sg)
{
    unsigned n = 0;
    if (v->split_hdr)
        sg[n++] = (struct virtq_sg){ b->data - v->hdr_len, v->hdr_len };
    for (struct netbuf *f = b; f; f = f->frag, n++)
        if (n < TX_MAX_PARTS + 1)
            sg[n] = (struct virtq_sg){ f->data, f->len };
    if (!v->split_hdr) {
        sg[0].addr = b->data - v->hdr_len;
        sg[0].len = b->len + v->hdr_len;
    }
    return n;
}

static unsigned tx_burst(struct netdev *d, unsigned q, struct netbuf **frames, unsigned n)
{
    struct vnet *v = to_vnet(d);
    struct virtq *tx = v->q[q].tx;
    unsigned max_parts = TX_MAX_PARTS + (v->split_hdr ? 1 : 0);
    tx_reclaim(tx);
    unsigned taken = 0;
    for (; taken < n; taken++) {
        struct netbuf *b = frames[taken];
        struct virtq_sg sg[TX_MAX_PARTS + 1];
        unsigned parts = tx_parts(v, b, sg);
        if (parts <= max_parts && virtq_cost(tx, parts) > virtq_free_slots(tx))
            break;
        /* A frame the device cannot take as it is: dropped, never sent wrong. */
        if (parts > max_parts || !tx_header(v, b)) {
            v->q[q].tx_dropped++;
            netbuf_free(b);
            continue;
        }
        virtq_add(tx, sg, parts, 0, b);
    }
    virtio_kick(v->vd, tx);
    return taken;
}

/* --- control queue (boot only) --- */

static bool ctrl_command(struct vnet *v, uint8_t cls, uint8_t cmd, const void *data, uint32_t len)
{
    if (!v->ctrl)
        return false;
    struct { struct virtio_net_ctrl_hdr h; uint8_t ack; } *m = malloc(sizeof *m);
    void *copy = malloc(len);
    if (!m || !copy)
        return false;
    m->h.class = cls;
    m->h.cmd = cmd;
    m->ack = 0xFF;
    memcpy(copy, data, len);
    struct virtq_sg sg[3] = { { &m->h, sizeof m->h }, { copy, len }, { &m->ack, 1 } };
    bool ok = virtq_add(v->ctrl, sg, 2, 1, m);
    virtio_kick(v->vd, v->ctrl);
    uint64_t deadline = now_ns() + CTRL_TIMEOUT_NS;
    while (ok && !virtq_get_used(v->ctrl, 0)) {
        if (now_ns() > deadline) {
            klog("%s: control command %u.%u timed out", v->vd->name, cls, cmd);
            return false;   /* the buffers stay with the device */
        }
        cpu_relax();
    }
    ok = ok && m->ack == VIRTIO_NET_OK;
    free(m);
    free(copy);
    return ok;
}

static bool set_rss(struct netdev *d, const uint8_t *key, unsigned key_len, const uint16_t *table, unsigned n)
{
    struct vnet *v = to_vnet(d);
    if (!virtio_has(v->vd, VIRTIO_NET_F_RSS) || (n & (n - 1)))
        return false;
    uint32_t types = virtio_config_read(v->vd, offsetof(struct virtio_net_config, supported_hash_types), 4) &
                     (VIRTIO_NET_RSS_HASH_TYPE_IPv4 | VIRTIO_NET_RSS_HASH_TYPE_TCPv4 | VIRTIO_NET_RSS_HASH_TYPE_UDPv4);
    /* Anything less than the three hashes our steering uses would send flows to the wrong shard. */
    if (types != (VIRTIO_NET_RSS_HASH_TYPE_IPv4 | VIRTIO_NET_RSS_HASH_TYPE_TCPv4 | VIRTIO_NET_RSS_HASH_TYPE_UDPv4))
        return false;
    /* le32 types, le16 mask, le16 unclassified, le16 table[n], le16 max_tx_vq, u8 key_len, key */
    uint32_t len = 8 + 2 * n + 3 + key_len;
    uint8_t *buf = malloc(len);
    if (!buf)
        return false;
    memcpy(buf, &types, 4);
    uint16_t mask = (uint16_t)(n - 1), unclassified = 0, max_tx = d->nqueues;
    memcpy(buf + 4, &mask, 2);
    memcpy(buf + 6, &unclassified, 2);
    memcpy(buf + 8, table, 2 * n);
    memcpy(buf + 8 + 2 * n, &max_tx, 2);
    buf[10 + 2 * n] = (uint8_t)key_len;
    memcpy(buf + 11 + 2 * n, key, key_len);
    bool ok = ctrl_command(v, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_RSS_CONFIG, buf, len);
    free(buf);
    if (ok)
        klog("%s: RSS on, Toeplitz over IPv4/TCP/UDP (types 0x%x), %u-entry table", v->vd->name, types, n);
    return ok;
}

static const struct netdev_ops vnet_ops = {
    .start = start,
    .rx_burst = rx_burst,
    .tx_burst = tx_burst,
    .rx_sleep = rx_sleep,
    .rx_wake = rx_wake,
    .set_rss = set_rss,
};

/* --- attach --- */

#define F(x) (1ULL << (x))
static const uint64_t wanted =
    F(VIRTIO_NET_F_MAC) | F(VIRTIO_NET_F_MTU) | F(VIRTIO_NET_F_STATUS) | F(VIRTIO_NET_F_CTRL_VQ) |
    F(VIRTIO_NET_F_MQ) | F(VIRTIO_NET_F_RSS) | F(VIRTIO_NET_F_CSUM) | F(VIRTIO_NET_F_GUEST_CSUM) |
    F(VIRTIO_NET_F_HOST_TSO4) | F(VIRTIO_NET_F_MRG_RXBUF) | F(VIRTIO_RING_F_EVENT_IDX) |
    F(VIRTIO_RING_F_INDIRECT_DESC);

static uint64_t choose_features(const struct virtio_dev *d, uint64_t offered)
{
    uint64_t f = wanted;
    /* A legacy device that lays out buffers as it likes takes header and data in one descriptor. */
    if (d->legacy)
        f |= F(VIRTIO_F_ANY_LAYOUT);
    /* Coalesced (LRO) frames need mergeable buffers: 2 KiB buffers cannot hold 64 KiB otherwise. */
    if (offered & F(VIRTIO_NET_F_MRG_RXBUF))
        f |= F(VIRTIO_NET_F_GUEST_TSO4);
    /* RSS and MQ are configured through the control queue. */
    if (!(offered & F(VIRTIO_NET_F_CTRL_VQ)))
        f &= ~(F(VIRTIO_NET_F_MQ) | F(VIRTIO_NET_F_RSS));
    if (!(offered & F(VIRTIO_NET_F_CSUM)))
        f &= ~F(VIRTIO_NET_F_HOST_TSO4);
    if (!(offered & F(VIRTIO_NET_F_GUEST_CSUM)))
        f &= ~F(VIRTIO_NET_F_GUEST_TSO4);
    return f;
}

/* A device without a MAC of its own: a random locally administered unicast one, so two images differ. */
static void random_mac(uint8_t mac[6])
{
    uint64_t r;
    if (!cpu_rdrand64(&r))
        r = rdtsc() * 0x9E3779B97F4A7C15ULL;
    memcpy(mac, &r, 6);
    mac[0] = (uint8_t)((mac[0] & 0xFE) | 0x02);
}

static void read_config(struct vnet *v)
{
    struct virtio_dev *d = v->vd;
    if (virtio_has(d, VIRTIO_NET_F_MAC))
        for (unsigned i = 0; i < 6; i++)
            v->nd.mac[i] = (uint8_t)virtio_config_read(d, offsetof(struct virtio_net_config, mac) + i, 1);
    else
        random_mac(v->nd.mac);
    v->nd.mtu = virtio_has(d, VIRTIO_NET_F_MTU) ? (uint16_t)virtio_config_read(d, offsetof(struct virtio_net_config, mtu), 2) : 1500;
    if (!virtio_has(d, VIRTIO_NET_F_MRG_RXBUF) && v->nd.mtu > NETBUF_SIZE - NETBUF_META - NETBUF_HEADROOM - 18)
        v->nd.mtu = NETBUF_SIZE - NETBUF_META - NETBUF_HEADROOM - 18;
    v->nd.link_up = !virtio_has(d, VIRTIO_NET_F_STATUS) ||
                    (virtio_config_read(d, offsetof(struct virtio_net_config, status), 2) & VIRTIO_NET_S_LINK_UP);
    if (virtio_has(d, VIRTIO_NET_F_RSS)) {
        v->nd.rss_max_key = (uint8_t)virtio_config_read(d, offsetof(struct virtio_net_config, rss_max_key_size), 1);
        v->nd.rss_max_table = (uint16_t)virtio_config_read(d, offsetof(struct virtio_net_config, rss_max_indirection_table_length), 2);
    }
}

static uint32_t offload_flags(struct virtio_dev *d)
{
    uint32_t o = 0;
    if (virtio_has(d, VIRTIO_NET_F_CSUM))
        o |= NETDEV_TX_CSUM;
    if (virtio_has(d, VIRTIO_NET_F_GUEST_CSUM))
        o |= NETDEV_RX_CSUM;
    if (virtio_has(d, VIRTIO_NET_F_HOST_TSO4))
        o |= NETDEV_TX_TSO4;
    if (virtio_has(d, VIRTIO_NET_F_GUEST_TSO4))
        o |= NETDEV_RX_LRO4;
    if (virtio_has(d, VIRTIO_NET_F_RSS))
        o |= NETDEV_RSS;
    return o;
}

static bool create_queues(struct vnet *v, unsigned max_pairs)
{
    unsigned pairs = max_pairs < cpu_total ? max_pairs : cpu_total;
    for (unsigned i = 0; i < pairs; i++) {
        v->q[i].rx = virtio_queue_create(v->vd, 2 * i, i, RX_RING_MAX);
        v->q[i].tx = virtio_queue_create(v->vd, 2 * i + 1, i, TX_RING_MAX);
        if (!v->q[i].rx || !v->q[i].tx) {
            if (i == 0)
                return false;
            pairs = i;
            break;
        }
    }
    v->nd.nqueues = (uint16_t)pairs;
    if (virtio_has(v->vd, VIRTIO_NET_F_CTRL_VQ))
        v->ctrl = virtio_queue_create(v->vd, 2 * max_pairs, 0, 64);
    return true;
}

void virtio_net_attach(struct virtio_dev *d)
{
    if (!virtio_negotiate(d, choose_features(d, d->t->get_features(d))))
        return;
    struct vnet *v = aligned_alloc(64, sizeof *v);
    if (!v) {
        virtio_fail(d, "no memory for the driver");
        return;
    }
    memset(v, 0, sizeof *v);
    v->vd = d;
    v->nd.ops = &vnet_ops;
    v->nd.name = d->name;
    v->mrg_rxbuf = virtio_has(d, VIRTIO_NET_F_MRG_RXBUF);
    /* §5.1.6.1: without VERSION_1, num_buffers is there only with mergeable buffers. */
    v->hdr_len = virtio_has(d, VIRTIO_F_VERSION_1) || v->mrg_rxbuf ? HDR_LEN : LEGACY_HDR_LEN;
    v->split_hdr = !virtio_has(d, VIRTIO_F_VERSION_1) && !virtio_has(d, VIRTIO_F_ANY_LAYOUT);
    read_config(v);
    unsigned max_pairs = virtio_has(d, VIRTIO_NET_F_MQ)
        ? virtio_config_read(d, offsetof(struct virtio_net_config, max_virtqueue_pairs), 2) : 1;
    if (max_pairs == 0 || max_pairs > 0x8000)
        max_pairs = 1;
    if (!create_queues(v, max_pairs)) {
        virtio_fail(d, "cannot set up its queues");
        return;
    }
    v->nd.offloads = offload_flags(d);
    if (!fill_all_rx(v)) {
        virtio_fail(d, "no memory for receive buffers");
        return;
    }
    virtio_ready(d);
    if (virtio_has(d, VIRTIO_NET_F_MQ)) {
        uint16_t pairs = v->nd.nqueues;
        if (!ctrl_command(v, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs, 2)) {
            klog("%s: device refused %u queue pairs; using one", d->name, pairs);
            v->nd.nqueues = 1;
        }
    }
    klog("%s: virtio-net (%s), features 0x%lx, %u of %u queue pairs", d->name, virtio_interface(d),
         (unsigned long)d->features, v->nd.nqueues, max_pairs);
    netdev_register(&v->nd);
}
