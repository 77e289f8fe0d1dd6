/* Per-shard receive polling, flow steering between shards, and batched transmit. */
#include "netif.h"
#include "toeplitz.h"
#include "../kernel/console.h"
#include "../kernel/heap.h"
#include "../kernel/percpu.h"
#include "../kernel/reactor.h"
#include "../kernel/smp_call.h"
#include "../kernel/string.h"

/* Per-shard transmit batch, flushed by a task after the loop's polling. */
struct netif_txq {
    struct task flush;
    unsigned n;
    struct netbuf *frames[NETIF_BURST];
};

struct netif_priv {
    struct netif_shard pub;
    struct netif_txq txq;
    bool steer;
};

static struct netif_priv *priv_of(struct netif_shard *n) { return (struct netif_priv *)n; }

struct netif_shard *netif_this(void) { return this_cpu()->netif; }

void netif_set_handler(netif_rx_fn fn, void *arg)
{
    struct netif_shard *n = netif_this();
    if (!n)
        return;
    n->rx = fn;
    n->rx_arg = arg;
}

void netif_set_steering(bool on)
{
    struct netif_shard *n = netif_this();
    if (n)
        priv_of(n)->steer = on;
}

void netif_steer_flows(void)
{
    struct netif_shard *n = netif_this();
    if (n)
        priv_of(n)->steer = !n->device_steers;
}

static void handle_local(struct netif_shard *n, struct netbuf *f)
{
    n->stats.rx_frames++;
    if (!n->rx) {
        n->stats.rx_no_handler++;
        netbuf_free(f);
        return;
    }
    n->rx(f, n->rx_arg);
}

static void steered_in(void *arg)
{
    struct netif_shard *n = netif_this();
    n->stats.steered_in++;
    handle_local(n, arg);
}

static void deliver(struct netif_shard *n, struct netbuf *f)
{
    uint32_t hash;
    if (priv_of(n)->steer && cpu_total > 1 && flow_hash_frame(f->data, f->len, &hash)) {
        f->hash = hash;
        unsigned target = flow_shard(hash, cpu_total);
        if (target != n->shard) {
            n->stats.steered_out++;
            smp_call(target, steered_in, f);
            return;
        }
    }
    handle_local(n, f);
}

static void tx_flush(struct netif_shard *n)
{
    struct netif_txq *q = &priv_of(n)->txq;
    if (q->n == 0)
        return;
    unsigned sent = n->dev->ops->tx_burst(n->dev, n->shard, q->frames, q->n);
    n->stats.tx_frames += sent;
    memmove(q->frames, q->frames + sent, (q->n - sent) * sizeof q->frames[0]);
    q->n -= sent;
}

static void tx_flush_task(struct task *t)
{
    (void)t;
    tx_flush(netif_this());
}

static bool tx_local(struct netif_shard *n, struct netbuf *f)
{
    struct netif_txq *q = &priv_of(n)->txq;
    if (q->n == NETIF_BURST)
        tx_flush(n);
    if (q->n == NETIF_BURST) {
        n->stats.tx_dropped++;
        netbuf_free(f);
        return false;
    }
    q->frames[q->n++] = f;
    task_schedule(&q->flush);
    return true;
}

static void tx_from_other_shard(void *arg) { tx_local(netif_this(), arg); }

bool netif_send(struct netbuf *f)
{
    struct netif_shard *n = netif_this();
    if (!n) {
        netbuf_free(f);
        return false;
    }
    if (n->has_queue)
        return tx_local(n, f);
    n->stats.tx_forwarded++;
    smp_call(n->shard % n->dev->nqueues, tx_from_other_shard, f);
    return true;
}

static unsigned netif_poll(struct poller *p)
{
    struct netif_shard *n = (struct netif_shard *)p;
    struct netdev *d = n->dev;
    d->ops->rx_wake(d, n->shard);
    struct netbuf *frames[NETIF_BURST];
    unsigned k = d->ops->rx_burst(d, n->shard, frames, NETIF_BURST);
    for (unsigned i = 0; i < k; i++)
        deliver(n, frames[i]);
    /* Frames a full ring held back go out once completions made room. */
    if (priv_of(n)->txq.n && !k)
        tx_flush(n);
    return k;
}

static bool netif_sleep(struct poller *p)
{
    struct netif_shard *n = (struct netif_shard *)p;
    /* Frames held back by a full ring go out as soon as the device completes some: keep polling. */
    if (priv_of(n)->txq.n)
        return false;
    return n->dev->ops->rx_sleep(n->dev, n->shard);
}

static void attach_shard(void *arg)
{
    struct netif_shard *n = arg;
    task_init(&priv_of(n)->txq.flush, tx_flush_task);
    if (!n->has_queue)
        return;
    if (!n->dev->ops->start(n->dev, n->shard)) {
        klog("net: %s queue %u did not start", n->dev->name, n->shard);
        return;
    }
    reactor_add_poller(&n->poller, netif_poll, netif_sleep);
}

/* True when the device now steers every flow to its owning shard itself. */
static bool program_rss(struct netdev *d)
{
    uint16_t table[FLOW_TABLE_LEN];
    unsigned len = FLOW_TABLE_LEN;
    if (d->rss_max_table < len || d->rss_max_key < FLOW_KEY_LEN)
        return false;
    /* The device can only pick queues; a flow owned by a shard without one lands anywhere and is steered. */
    for (unsigned i = 0; i < len; i++)
        table[i] = (uint16_t)(flow_table_entry(i, cpu_total) % d->nqueues);
    if (!d->ops->set_rss(d, flow_key, FLOW_KEY_LEN, table, len)) {
        klog("net: %s refused our RSS configuration; steering in software", d->name);
        return false;
    }
    return d->nqueues == cpu_total;
}

void netif_init(void)
{
    struct netdev *d = netdev_get(0);
    if (!d)
        return;
    bool device_steers = (d->offloads & NETDEV_RSS) && program_rss(d);
    for (unsigned i = 0; i < cpu_total; i++) {
        struct netif_priv *p = heap_alloc(&cpu_table[i]->heap, sizeof *p);
        if (!p) {
            klog("net: no memory for shard %u's interface", i);
            return;
        }
        memset(p, 0, sizeof *p);
        p->pub.dev = d;
        p->pub.shard = i;
        p->pub.has_queue = i < d->nqueues;
        p->pub.device_steers = device_steers;
        /* With fewer queues than shards, flows must reach their owners. */
        p->steer = d->nqueues < cpu_total;
        cpu_table[i]->netif = &p->pub;
    }
    for (unsigned i = 0; i < cpu_total; i++)
        smp_call(i, attach_shard, cpu_table[i]->netif);
    klog("net: %s mac %02x:%02x:%02x:%02x:%02x:%02x mtu %u, %u queue pair%s for %u shard%s, link %s",
         d->name, d->mac[0], d->mac[1], d->mac[2], d->mac[3], d->mac[4], d->mac[5], d->mtu, d->nqueues,
         d->nqueues == 1 ? "" : "s", cpu_total, cpu_total == 1 ? "" : "s", d->link_up ? "up" : "down");
}

void netif_get_stats(unsigned shard, struct netif_stats *out)
{
    struct netif_shard *n = shard < cpu_total ? cpu_table[shard]->netif : 0;
    if (n)
        *out = n->stats;
    else
        memset(out, 0, sizeof *out);
}
