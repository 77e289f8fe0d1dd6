/*
 * lwIP as the image's network stack: the netif over Shoal's raw L2 path,
 * the timers, the boot-time configuration, and the UDP and net_info parts
 * of the runtime API. Replaces net/net_kernel.c's net_start (made weak in
 * this image by the Makefile), so the kernel's own IP stack is never set
 * up and nothing of it answers ARP, ICMP or TCP.
 *
 * lwIP runs with NO_SYS=1 on shard 0 alone: every frame, from whichever
 * queue it arrived on, is handed to shard 0, and every lwIP call happens
 * in shard 0's reactor, so nothing locks.
 */
#include "lwip_rt.h"
#include "../shoal.h"
#include "../../arch/x86_64/cpu.h"
#include "../../drivers/netdev.h"
#include "../../kernel/cmdline.h"
#include "../../kernel/console.h"
#include "../../kernel/percpu.h"
#include "../../net/net_config.h"
#include "../../net/netif.h"

/* lwIP after ours: its headers rename the functions our net/ also has (lwip_names.h). */
#include "lwip/etharp.h"
#include "lwip/init.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/timeouts.h"
#include "lwip/udp.h"
#include "netif/ethernet.h"

/* sys_check_timeouts() period: lwIP's own timers are 250 ms (TCP) and up. */
#define LWIP_TICK_NS (25ULL * 1000000ULL)

static struct shoal_net_info config;           /* written at boot, before any shard reads it */
static struct netif nif;
static struct timer tick;

static struct shoal_net_stats counters;        /* shard 0's */

bool lwip_running(void) { return config.configured; }

/* --- platform hooks lwIP calls --- */

u32_t sys_now(void) { return (u32_t)(now_ns() / 1000000u); }

uint32_t shoal_lwip_rand(void)
{
    uint64_t v;
    if (!cpu_rdrand64(&v))
        v = rdtsc() * 0x9E3779B97F4A7C15ULL;
    return (uint32_t)(v >> 17);
}

void shoal_lwip_assert(const char *msg, const char *file, int line)
{
    panic("lwIP assertion \"%s\" failed at %s:%d", msg, file, line);
}

/* lwIP's netif_find() calls atoi(), which the host's stdlib.h inlines as strtol(): decimal only is enough. */
long strtol(const char *s, char **end, int base);
long strtol(const char *s, char **end, int base)
{
    (void)base;
    long v = 0, sign = 1;
    if (*s == '-' || *s == '+')
        sign = *s++ == '-' ? -1 : 1;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (*s++ - '0');
    if (end)
        *end = (char *)(uintptr_t)s;
    return sign * v;
}

/* --- receive: Shoal frame -> contiguous pbuf -> lwIP --- */

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t sum)
{
    for (; n > 1; p += 2, n -= 2)
        sum += (uint32_t)p[0] << 8 | p[1];
    if (n)
        sum += (uint32_t)p[0] << 8;
    return sum;
}

static uint16_t fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return (uint16_t)~sum;
}

/*
 * A frame the host handed over with a partial checksum (virtio NEEDS_CSUM:
 * it came from the host's own stack, and LRO frames always do) gets its
 * full TCP/UDP checksum here, because lwIP checks every checksum itself.
 */
static void complete_checksum(uint8_t *f, size_t len)
{
    if (len < 14 + 20 || f[12] != 0x08 || f[13] != 0x00)
        return;
    uint8_t *ip = f + 14;
    size_t ihl = (size_t)(ip[0] & 15) * 4, tot = (size_t)ip[2] << 8 | ip[3];
    unsigned proto = ip[9];
    size_t at = proto == 6 ? 16 : proto == 17 ? 6 : 0;
    if (!at || ihl < 20 || tot > len - 14 || tot < ihl + at + 2)
        return;
    uint8_t *l4 = ip + ihl;
    size_t l4len = tot - ihl;
    l4[at] = l4[at + 1] = 0;
    uint32_t sum = sum16(ip + 12, 8, proto + (uint32_t)l4len);
    uint16_t c = fold(sum16(l4, l4len, sum));
    if (proto == 17 && c == 0)
        c = 0xFFFF;
    l4[at] = (uint8_t)(c >> 8);
    l4[at + 1] = (uint8_t)c;
}

static struct pbuf *frame_to_pbuf(struct netbuf *f)
{
    uint32_t total = netbuf_frame_len(f);
    struct pbuf *p = total <= 0xFFFF ? pbuf_alloc(PBUF_RAW, (u16_t)total, PBUF_RAM) : 0;
    if (!p)
        return 0;
    uint8_t *dst = p->payload;
    for (struct netbuf *b = f; b; b = b->frag) {
        memcpy(dst, b->data, b->len);
        dst += b->len;
    }
    if (f->flags & NETBUF_CSUM_PARTIAL)
        complete_checksum(p->payload, total);
    return p;
}

static void input(struct netbuf *f)
{
    counters.rx_frames++;
    struct pbuf *p = frame_to_pbuf(f);
    netbuf_free(f);
    if (!p) {
        counters.no_memory++;
        return;
    }
    if (nif.input(p, &nif) != ERR_OK)
        pbuf_free(p);
}

static void rx_on_lwip_shard(struct netbuf *f, void *arg)
{
    (void)arg;
    input(f);
}

static void forwarded_in(void *f) { input(f); }

/* Shards other than lwIP's pass every frame their queue receives over to it. */
static void rx_elsewhere(struct netbuf *f, void *arg)
{
    (void)arg;
    smp_call(LWIP_SHARD, forwarded_in, f);
}

/* --- transmit: pbuf chain -> one Shoal frame (checksums already filled by lwIP) --- */

static err_t linkoutput(struct netif *n, struct pbuf *p)
{
    (void)n;
    struct netbuf *f = netbuf_alloc();
    if (!f)
        return ERR_MEM;
    if (p->tot_len > netbuf_room(f)) {
        netbuf_free(f);
        return ERR_BUF;
    }
    pbuf_copy_partial(p, f->data, p->tot_len, 0);
    f->len = p->tot_len;
    netif_send(f);
    return ERR_OK;
}

static err_t nif_init(struct netif *n)
{
    struct netdev *d = netdev_get(0);
    n->name[0] = 's';
    n->name[1] = 'h';
    n->output = etharp_output;
    n->linkoutput = linkoutput;
    n->mtu = config.mtu;
    n->hwaddr_len = ETH_HWADDR_LEN;
    memcpy(n->hwaddr, d->mac, ETH_HWADDR_LEN);
    n->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
    return ERR_OK;
}

/* --- timers and start-up --- */

static void on_tick(struct timer *t)
{
    sys_check_timeouts();
    lwip_tcp_flush();
    shoal_timer_arm(t, now_ns() + LWIP_TICK_NS);
}

static ip4_addr_t ip4(uint32_t host_order)
{
    ip4_addr_t a;
    ip4_addr_set_u32(&a, lwip_htonl(host_order));
    return a;
}

static void attach_lwip_shard(void *arg)
{
    (void)arg;
    lwip_init();
    ip4_addr_t ip = ip4(config.ip), mask = ip4(config.netmask), gw = ip4(config.gateway);
    if (!netif_add(&nif, &ip, &mask, &gw, 0, nif_init, netif_input)) {
        klog("lwip: netif_add failed");
        return;
    }
    netif_set_default(&nif);
    netif_set_up(&nif);
    netif_set_link_up(&nif);
    /* Every frame is lwIP's: no flow steering to other shards. */
    netif_set_steering(false);
    netif_set_handler(rx_on_lwip_shard, 0);
    shoal_timer_init(&tick, on_tick);
    shoal_timer_arm(&tick, now_ns() + LWIP_TICK_NS);
}

static void attach_other_shard(void *arg)
{
    (void)arg;
    netif_set_steering(false);
    netif_set_handler(rx_elsewhere, 0);
}

/* Boot, BSP, after netif_init(): the strong definition that replaces the kernel stack's. */
void net_start(const struct cmdline *cmd)
{
    struct netdev *d = netdev_get(0);
    if (!d || !cpu_table[LWIP_SHARD]->netif)
        return;
    /* lwIP's pbufs hold a whole frame; 1500 keeps a frame inside one Shoal buffer. */
    config.mtu = d->mtu < 1500 ? d->mtu : 1500;
    struct net_config cfg = { 0 };
    if (!net_config_parse(cmd, &cfg) || !cfg.configured) {
        klog("lwip: no usable ip=A.B.C.D/N on the command line (lwIP image: static only); network off");
        return;
    }
    if (cfg.mtu && cfg.mtu < config.mtu)
        config.mtu = cfg.mtu;
    config.ip = cfg.ip;
    config.netmask = cfg.netmask;
    config.gateway = cfg.gateway;
    config.configured = true;
    for (unsigned s = 0; s < cpu_total; s++)
        smp_call(s, s == LWIP_SHARD ? attach_lwip_shard : attach_other_shard, 0);
    klog("lwip: lwIP %s on shard %u, %u.%u.%u.%u netmask 0x%08x gateway %u.%u.%u.%u mtu %u",
         LWIP_VERSION_STRING, LWIP_SHARD, config.ip >> 24, config.ip >> 16 & 255, config.ip >> 8 & 255,
         config.ip & 255, config.netmask, config.gateway >> 24, config.gateway >> 16 & 255,
         config.gateway >> 8 & 255, config.gateway & 255, config.mtu);
}

/* --- the runtime API: net info and UDP --- */

bool shoal_net_info(struct shoal_net_info *out)
{
    if (!netdev_get(0))
        return false;
    *out = config;
    return true;
}

/* Only the counters this glue keeps (frames in, allocation failures); LWIP_STATS is off. */
bool shoal_net_stats(unsigned shard, struct shoal_net_stats *out)
{
    if (shard >= cpu_total || !netdev_get(0))
        return false;
    *out = shard == LWIP_SHARD ? counters : (struct shoal_net_stats){ 0 };
    return true;
}

#define UDP_BINDINGS 16

struct udp_binding {
    struct udp_pcb *pcb;
    shoal_udp_fn fn;
    void *arg;
};
static struct udp_binding bindings[UDP_BINDINGS];

static void udp_in(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr, u16_t port)
{
    struct udp_binding *b = arg;
    counters.udp_rx++;
    if (p->len == p->tot_len) {
        b->fn(b->arg, lwip_ntohl(ip4_addr_get_u32(addr)), port, pcb->local_port, p->payload, p->len);
    } else {
        uint8_t *copy = malloc(p->tot_len);
        if (copy) {
            pbuf_copy_partial(p, copy, p->tot_len, 0);
            b->fn(b->arg, lwip_ntohl(ip4_addr_get_u32(addr)), port, pcb->local_port, copy, p->tot_len);
            free(copy);
        } else {
            counters.no_memory++;
        }
    }
    pbuf_free(p);
}

static struct udp_binding *binding_of(uint16_t port)
{
    for (unsigned i = 0; i < UDP_BINDINGS; i++)
        if (bindings[i].pcb && bindings[i].pcb->local_port == port)
            return &bindings[i];
    return 0;
}

static struct udp_binding *bind_port(uint16_t port, shoal_udp_fn fn, void *arg)
{
    struct udp_binding *b = 0;
    for (unsigned i = 0; i < UDP_BINDINGS && !b; i++)
        if (!bindings[i].pcb)
            b = &bindings[i];
    struct udp_pcb *pcb = b ? udp_new() : 0;
    if (!pcb)
        return 0;
    if (udp_bind(pcb, IP4_ADDR_ANY, port) != ERR_OK) {
        udp_remove(pcb);
        return 0;
    }
    *b = (struct udp_binding){ pcb, fn, arg };
    udp_recv(pcb, udp_in, b);
    return b;
}

static void ignore_udp(void *arg, uint32_t ip, uint16_t sport, uint16_t dport, const uint8_t *d, size_t n)
{
    (void)arg, (void)ip, (void)sport, (void)dport, (void)d, (void)n;
}

/* All datagrams arrive on lwIP's shard: binding elsewhere succeeds and does nothing. */
int shoal_udp_bind(uint16_t port, shoal_udp_fn fn, void *arg)
{
    if (!config.configured || port == 0 || !fn)     /* as net/udp.c; udp_in calls fn unchecked */
        return -1;
    if (shard_id() != LWIP_SHARD)
        return 0;
    struct udp_binding *b = binding_of(port);
    if (b) {
        if (b->fn != ignore_udp)
            return -1;
        /* A port shoal_udp_send bound for sending only (udp_send_here): the app's now. */
        b->fn = fn;
        b->arg = arg;
        return 0;
    }
    return bind_port(port, fn, arg) ? 0 : -1;
}

static bool udp_send_here(uint16_t src_port, uint32_t dst_ip, uint16_t dst_port, const void *data, size_t len)
{
    struct udp_binding *b = binding_of(src_port);
    if (!b)
        b = bind_port(src_port, ignore_udp, 0);   /* a sending-only port, kept for later datagrams */
    if (!b || len > 0xFFFF - 8 - 20)
        return false;
    struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)len, PBUF_RAM);
    if (!p)
        return false;
    pbuf_take(p, data, (u16_t)len);
    ip_addr_t to = ip4(dst_ip);
    err_t e = udp_sendto(b->pcb, p, &to, dst_port);
    pbuf_free(p);
    if (e == ERR_OK)
        counters.udp_tx++;
    return e == ERR_OK;
}

struct udp_msg {
    uint32_t dst_ip;
    uint16_t src_port, dst_port;
    size_t len;
    uint8_t data[];
};

static void udp_send_forwarded(void *arg)
{
    struct udp_msg *m = arg;
    udp_send_here(m->src_port, m->dst_ip, m->dst_port, m->data, m->len);
    free(m);
}

bool shoal_udp_send(uint16_t src_port, uint32_t dst_ip, uint16_t dst_port, const void *data, size_t len)
{
    if (!config.configured)
        return false;
    if (shard_id() == LWIP_SHARD)
        return udp_send_here(src_port, dst_ip, dst_port, data, len);
    /* Another shard (e.g. a reply built where its key lives): the datagram travels to lwIP's shard. */
    struct udp_msg *m = malloc(sizeof *m + len);
    if (!m)
        return false;
    *m = (struct udp_msg){ dst_ip, src_port, dst_port, len };
    memcpy(m->data, data, len);
    smp_call(LWIP_SHARD, udp_send_forwarded, m);
    return true;
}
