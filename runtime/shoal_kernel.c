/* The runtime API on the Shoal kernel: thin forwarding to kernel/. */
#include "shoal.h"
#include "../kernel/console.h"
#include "../kernel/format.h"
#include "../kernel/malloc.h"
#include "../kernel/percpu.h"
#include "../kernel/reactor.h"
#include "../arch/x86_64/shutdown.h"
#include "../net/net_kernel.h"
#include "../net/netif.h"
#include "../net/stack.h"

unsigned shard_id(void) { return this_cpu_id(); }
unsigned shard_count(void) { return cpu_total; }

void shoal_timer_init(struct timer *t, void (*fn)(struct timer *)) { timer_init(t, fn); }
void shoal_timer_arm(struct timer *t, uint64_t deadline_ns) { reactor_timer_arm(t, deadline_ns); }
bool shoal_timer_cancel(struct timer *t) { return reactor_timer_cancel(t); }

size_t shoal_heap_bytes_in_use(void) { return heap_bytes_in_use(&this_cpu()->heap); }
void shoal_flush_remote_frees(void) { malloc_flush_remote_frees(); }

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap) { return fmt_vsnprintf(buf, size, fmt, ap); }

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = fmt_vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

void shoal_print(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = fmt_vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    console_write(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

void shoal_log(const char *fmt, ...)
{
    char line[480];
    va_list ap;
    va_start(ap, fmt);
    fmt_vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    klog("%s", line);
}

void shoal_reactor_stats(unsigned shard, struct shoal_reactor_stats *out)
{
    const struct reactor_stats *s = &cpu_table[shard]->stats;
    *out = (struct shoal_reactor_stats){ s->loops, s->tasks, s->messages, s->timers,
                                         s->halts, s->busy_cycles, s->idle_cycles };
}

void shoal_exit(int status)
{
    malloc_flush_remote_frees();
    machine_exit(status);
}

/* --- raw Ethernet --- */

bool shoal_l2_info(struct shoal_l2_info *out)
{
    struct netif_shard *n = netif_this();
    if (!n)
        return false;
    memcpy(out->mac, n->dev->mac, 6);
    out->mtu = n->dev->mtu;
    out->queues = n->dev->nqueues;
    out->link_up = n->dev->link_up;
    out->has_queue = n->has_queue;
    return true;
}

void shoal_l2_set_handler(void (*fn)(struct netbuf *, void *), void *arg) { netif_set_handler(fn, arg); }
void shoal_l2_set_steering(bool on) { netif_set_steering(on); }
bool shoal_l2_send(struct netbuf *frame) { return netif_send(frame); }

void shoal_l2_stats(unsigned shard, struct shoal_l2_stats *out)
{
    struct netif_stats s;
    netif_get_stats(shard, &s);
    *out = (struct shoal_l2_stats){ s.rx_frames, s.tx_frames, s.steered_in, s.steered_out,
                                    s.tx_forwarded, s.rx_no_handler, s.tx_dropped };
}

/* ---- Block devices: struct shoal_blk_req carries a struct blk_req in _kernel. ---- */
#include "../drivers/blkdev.h"

_Static_assert(sizeof(struct blk_req) <= sizeof(((struct shoal_blk_req *)0)->_kernel),
               "shoal_blk_req._kernel must hold a struct blk_req");
_Static_assert(_Alignof(struct blk_req) <= _Alignof(uint64_t), "blk_req alignment");
_Static_assert(SHOAL_BLK_EIO == BLK_EIO && SHOAL_BLK_ENODEV == BLK_ENODEV && SHOAL_BLK_EINVAL == BLK_EINVAL &&
               SHOAL_BLK_EROFS == BLK_EROFS && SHOAL_BLK_ERANGE == BLK_ERANGE &&
               SHOAL_BLK_EOPNOTSUPP == BLK_EOPNOTSUPP, "runtime and blkdev error codes must agree");
_Static_assert(sizeof(((struct shoal_blk_info *)0)->id) == sizeof(((struct blkdev *)0)->id), "id size");

unsigned shoal_blk_count(void) { return blkdev_count(); }

bool shoal_blk_info(unsigned dev, struct shoal_blk_info *out)
{
    const struct blkdev *d = blkdev_get(dev);
    if (!d)
        return false;
    *out = (struct shoal_blk_info){
        .capacity = d->capacity, .block_size = d->block_size, .max_transfer = d->max_transfer,
        .max_discard = d->max_discard, .queues = d->nqueues, .read_only = d->read_only,
        .write_cache = d->write_cache,
    };
    memcpy(out->id, d->id, sizeof out->id);
    return true;
}

static void blk_done(struct blk_req *k)
{
    struct shoal_blk_req *req = k->arg;
    req->status = k->status;
    req->done(req);
}

static int blk_submit(unsigned dev, struct shoal_blk_req *req, enum blk_op op, uint64_t offset, void *buf,
                      uint64_t len, shoal_blk_done_fn done, void *arg)
{
    struct blkdev *d = blkdev_get(dev);
    if (!d)
        return SHOAL_BLK_ENODEV;
    if (!req || !done)
        return SHOAL_BLK_EINVAL;
    req->done = done;
    req->arg = arg;
    req->status = 0;
    struct blk_req *k = (struct blk_req *)(void *)req->_kernel;
    *k = (struct blk_req){ .op = (uint8_t)op, .offset = offset, .len = len, .buf = buf, .done = blk_done, .arg = req };
    blkdev_submit(d, k);
    return 0;
}

int shoal_blk_read(unsigned dev, struct shoal_blk_req *req, uint64_t offset, void *buf, uint32_t len,
                   shoal_blk_done_fn done, void *arg)
{
    return blk_submit(dev, req, BLK_OP_READ, offset, buf, len, done, arg);
}

int shoal_blk_write(unsigned dev, struct shoal_blk_req *req, uint64_t offset, const void *buf, uint32_t len,
                    shoal_blk_done_fn done, void *arg)
{
    /* The device only reads a write's buffer. */
    return blk_submit(dev, req, BLK_OP_WRITE, offset, (void *)(uintptr_t)buf, len, done, arg);
}

int shoal_blk_flush(unsigned dev, struct shoal_blk_req *req, shoal_blk_done_fn done, void *arg)
{
    return blk_submit(dev, req, BLK_OP_FLUSH, 0, 0, 0, done, arg);
}

int shoal_blk_discard(unsigned dev, struct shoal_blk_req *req, uint64_t offset, uint64_t len,
                      shoal_blk_done_fn done, void *arg)
{
    return blk_submit(dev, req, BLK_OP_DISCARD, offset, 0, len, done, arg);
}

const char *shoal_blk_strerror(int status) { return blkdev_strerror(status); }

/* --- IPv4 and UDP --- */

bool shoal_net_info(struct shoal_net_info *out)
{
    struct net_stack *ns = net_this();
    if (!ns)
        return false;
    *out = (struct shoal_net_info){ ns->cfg.ip, ns->cfg.netmask, ns->cfg.gateway, ns->cfg.mtu, ns->cfg.configured };
    return true;
}

bool shoal_net_stats(unsigned shard, struct shoal_net_stats *out)
{
    struct netif_shard *n = shard < cpu_total ? cpu_table[shard]->netif : 0;
    if (!n || !n->stack)
        return false;
    const struct net_stats *s = &n->stack->stats;
    *out = (struct shoal_net_stats){
        .rx_frames = s->rx_frames, .ip_rx = s->ip_rx, .ip_bad_header = s->ip_bad_header,
        .ip_bad_checksum = s->ip_bad_checksum, .ip_not_ours = s->ip_not_ours, .ip_fragments = s->ip_fragments,
        .ip_reassembled = s->ip_reassembled, .icmp_rx = s->icmp_rx, .icmp_bad = s->icmp_bad,
        .icmp_echo_replied = s->icmp_echo_replied, .icmp_errors_sent = s->icmp_errors_sent, .udp_rx = s->udp_rx,
        .udp_bad = s->udp_bad, .udp_no_port = s->udp_no_port, .udp_tx = s->udp_tx, .arp_rx = s->arp_rx,
        .arp_bad = s->arp_bad, .arp_tx = s->arp_tx, .rx_bad_eth = s->rx_bad_eth, .proto_unknown = s->proto_unknown,
        .tcp_rx = s->tcp_rx, .no_memory = s->no_memory,
    };
    return true;
}

/* Read from another shard without a message: counters only grow, a torn read is a moment's error. */
bool shoal_tcp_stats(unsigned shard, struct tcp_stats *out)
{
    struct netif_shard *n = shard < cpu_total ? cpu_table[shard]->netif : 0;
    if (!n || !n->stack || !n->stack->tcp)
        return false;
    *out = *tcp_get_stats(n->stack);
    return true;
}

int shoal_udp_bind(uint16_t port, shoal_udp_fn fn, void *arg)
{
    struct net_stack *ns = net_this();
    return ns ? udp_bind(ns, port, fn, arg) : -1;
}

bool shoal_udp_send(uint16_t src_port, uint32_t dst_ip, uint16_t dst_port, const void *data, size_t len)
{
    struct net_stack *ns = net_this();
    return ns && udp_send(ns, src_port, dst_ip, dst_port, data, len);
}
