/*
 * The IPv4 stack inside the kernel: one struct net_stack per shard, fed
 * by that shard's netif, with an environment that sends through netif,
 * reaches other shards with smp_call and keeps time with the TSC clock.
 * Configuration: ip=A.B.C.D/N gw=A.B.C.D mtu=N on the command line;
 * without ip= shard 0 runs a DHCP client and hands each lease to every shard.
 */
#include "net_kernel.h"
#include "net_config.h"
#include "dhcp.h"
#include "netif.h"
#include "stack.h"
#include "../arch/x86_64/cpu.h"
#include "../kernel/clock.h"
#include "../kernel/cmdline.h"
#include "../kernel/console.h"
#include "../kernel/heap.h"
#include "../kernel/malloc.h"
#include "../kernel/percpu.h"
#include "../kernel/reactor.h"
#include "../kernel/smp_call.h"
#include "../kernel/string.h"

#define NET_TICK_NS (250ULL * 1000000ULL)

struct shard_net {
    struct net_stack ns;
    struct timer tick;
    struct dhcp_client *dhcp;     /* shard 0 only, when no ip= was given */
};

static void env_send(struct net_stack *ns, struct netbuf *f)
{
    (void)ns;
    netif_send(f);
}

struct bcast_msg {
    void (*fn)(struct net_stack *, const void *);
    uint64_t data[];
};

static void bcast_run(void *arg)
{
    struct bcast_msg *m = arg;
    struct netif_shard *n = netif_this();
    if (n && n->stack)
        m->fn(n->stack, m->data);
    free(m);
}

static void env_broadcast(struct net_stack *ns, void (*fn)(struct net_stack *, const void *), const void *arg,
                          size_t size)
{
    for (unsigned s = 0; s < cpu_total; s++) {
        if (s == ns->shard)
            continue;
        struct bcast_msg *m = malloc(sizeof *m + size);
        if (!m) {
            ns->stats.no_memory++;
            continue;
        }
        m->fn = fn;
        memcpy(m->data, arg, size);
        smp_call(s, bcast_run, m);
    }
}

static uint64_t env_now(void) { return now_ns(); }
static unsigned env_shards(void) { return cpu_total; }
static void env_timer_arm(struct timer *t, uint64_t deadline) { reactor_timer_arm(t, deadline); }
static bool env_timer_cancel(struct timer *t) { return reactor_timer_cancel(t); }

/* RDRAND where the CPU has it; else the TSC mixed with a splitmix64 step, which is unpredictable
   enough off the network for ISN keys only when RDRAND is missing (virtio-rng is not driven yet). */
static void env_random(void *buf, size_t n)
{
    uint8_t *p = buf;
    uint64_t x = rdtsc();
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v;
        if (!cpu_rdrand64(&v)) {
            x += 0x9E3779B97F4A7C15ULL ^ rdtsc();
            v = x;
            v = (v ^ (v >> 30)) * 0xBF58476D1CE4E5B9ULL;
            v = (v ^ (v >> 27)) * 0x94D049BB133111EBULL;
            v ^= v >> 31;
        }
        memcpy(p + i, &v, n - i < 8 ? n - i : 8);
    }
}

static const struct net_env kernel_env = {
    .send = env_send,
    .broadcast = env_broadcast,
    .now_ns = env_now,
    .shards = env_shards,
    .timer_arm = env_timer_arm,
    .timer_cancel = env_timer_cancel,
    .random = env_random,
    .log = klog,
};

static void rx(struct netbuf *f, void *arg) { net_input(arg, f); }

/* --- DHCP, on shard 0 (RFC 2131 addresses in dhcp.h are in network byte order) --- */

static uint32_t from_wire(uint32_t a) { return __builtin_bswap32(a); }

static void apply_config(struct net_stack *ns, const void *arg) { net_set_config(ns, arg); }

static void set_everywhere(struct net_stack *ns, const struct net_config *cfg)
{
    net_set_config(ns, cfg);
    ns->env->broadcast(ns, apply_config, cfg, sizeof *cfg);
}

static void dhcp_send(void *ctx, const uint8_t *payload, size_t len, uint32_t to_ip)
{
    struct net_stack *ns = ctx;
    udp_send(ns, DHCP_CLIENT_PORT, to_ip == DHCP_BROADCAST ? 0xFFFFFFFFu : from_wire(to_ip), DHCP_SERVER_PORT,
             payload, len);
}

static void dhcp_bound(void *ctx, const struct dhcp_lease *l)
{
    struct net_stack *ns = ctx;
    struct net_config cfg = { .ip = from_wire(l->ip), .netmask = from_wire(l->netmask), .gateway = from_wire(l->router),
                              .mtu = l->mtu >= 576 ? l->mtu : ns->cfg.mtu, .configured = true };
    if (!cfg.netmask)
        cfg.netmask = 0xFFFFFF00u;
    set_everywhere(ns, &cfg);
    klog("net: DHCP lease %u.%u.%u.%u netmask 0x%08x gateway %u.%u.%u.%u for %u s", cfg.ip >> 24, cfg.ip >> 16 & 255,
         cfg.ip >> 8 & 255, cfg.ip & 255, cfg.netmask, cfg.gateway >> 24, cfg.gateway >> 16 & 255,
         cfg.gateway >> 8 & 255, cfg.gateway & 255, l->lease_s);
}

static void dhcp_lost(void *ctx)
{
    struct net_stack *ns = ctx;
    struct net_config cfg = { .mtu = ns->cfg.mtu };
    set_everywhere(ns, &cfg);
    klog("net: DHCP lease lost; no address until a new one");
}

static const struct dhcp_ops dhcp_ops = { dhcp_send, dhcp_bound, dhcp_lost };

struct dhcp_msg {
    size_t len;
    uint8_t data[];
};

static void dhcp_deliver(void *arg)
{
    struct dhcp_msg *m = arg;
    struct shard_net *sn = (struct shard_net *)net_this();
    if (sn && sn->dhcp) {
        dhcp_input(sn->dhcp, m->data, m->len, now_ns());
    }
    free(m);
}

/* Bound on every shard: the reply lands on whichever shard its flow hashes to; shard 0 holds the client. */
static void dhcp_udp(void *arg, uint32_t src, uint16_t sport, uint16_t dport, const uint8_t *data, size_t len)
{
    (void)arg, (void)src, (void)dport;
    if (sport != DHCP_SERVER_PORT)
        return;
    struct dhcp_msg *m = malloc(sizeof *m + len);
    if (!m)
        return;
    m->len = len;
    memcpy(m->data, data, len);
    smp_call(0, dhcp_deliver, m);
}

static void tick(struct timer *t)
{
    struct shard_net *sn = (struct shard_net *)((char *)t - __builtin_offsetof(struct shard_net, tick));
    net_tick(&sn->ns);
    if (sn->dhcp && now_ns() >= dhcp_next_deadline(sn->dhcp))
        dhcp_timer(sn->dhcp, now_ns());
    reactor_timer_arm(t, now_ns() + NET_TICK_NS);
}

static void attach(void *arg)
{
    struct shard_net *sn = arg;
    struct netif_shard *n = netif_this();
    n->stack = &sn->ns;
    netif_set_handler(rx, &sn->ns);
    /* A flow's datagrams and segments must all reach the one shard that owns it. */
    netif_steer_flows();
    timer_init(&sn->tick, tick);
    reactor_timer_arm(&sn->tick, now_ns() + NET_TICK_NS);
    if (sn->ns.shard == 0 && sn->ns.cfg.configured)
        arp_announce(&sn->ns);
    if (sn->ns.cfg.configured)
        return;
    udp_bind(&sn->ns, DHCP_CLIENT_PORT, dhcp_udp, 0);
    if (sn->ns.shard != 0)
        return;
    sn->dhcp = malloc(sizeof *sn->dhcp);
    if (!sn->dhcp) {
        klog("net: no memory for the DHCP client");
        return;
    }
    dhcp_init(sn->dhcp, sn->ns.mac, (uint32_t)rdtsc() ^ (uint32_t)sn->ns.mac[5] << 24, &dhcp_ops, &sn->ns);
    dhcp_start(sn->dhcp, now_ns());
}

static unsigned prefix_len(uint32_t mask)
{
    unsigned n = 0;
    while (mask & 0x80000000u) {
        n++;
        mask <<= 1;
    }
    return n;
}

void net_start(const struct cmdline *cmd)
{
    struct netif_shard *n0 = cpu_table[0]->netif;
    if (!n0)
        return;
    struct net_config cfg = { 0 };
    net_config_parse(cmd, &cfg);
    if (!cfg.mtu || cfg.mtu > n0->dev->mtu)
        cfg.mtu = n0->dev->mtu;
    for (unsigned s = 0; s < cpu_total; s++) {
        struct shard_net *sn = heap_alloc(&cpu_table[s]->heap, sizeof *sn);
        if (!sn) {
            klog("net: no memory for shard %u's stack", s);
            return;
        }
        net_stack_init(&sn->ns, &kernel_env, s, n0->dev->mac, &cfg);
        sn->ns.tx_csum_offload = (n0->dev->offloads & NETDEV_TX_CSUM) != 0;
        /* TSO needs the checksum offload too: the device cannot checksum pieces it cut otherwise. */
        sn->ns.tx_tso4 = sn->ns.tx_csum_offload && (n0->dev->offloads & NETDEV_TX_TSO4);
        smp_call(s, attach, sn);
    }
    if (cfg.configured)
        klog("net: %u.%u.%u.%u/%u gateway %u.%u.%u.%u mtu %u", cfg.ip >> 24, cfg.ip >> 16 & 255, cfg.ip >> 8 & 255,
             cfg.ip & 255, prefix_len(cfg.netmask), cfg.gateway >> 24, cfg.gateway >> 16 & 255,
             cfg.gateway >> 8 & 255, cfg.gateway & 255, cfg.mtu);
    else
        klog("net: no ip= on the command line: asking DHCP");
}

struct net_stack *net_this(void)
{
    struct netif_shard *n = netif_this();
    return n ? n->stack : 0;
}
