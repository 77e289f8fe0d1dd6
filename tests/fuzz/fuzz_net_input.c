/*
 * The stack's whole input path (Ethernet, ARP, IPv4 with reassembly,
 * ICMP, UDP, TCP) on arbitrary frames, in a host environment: what the stack
 * sends is checked for sanity and freed, messages to "other shards" go to
 * a second stack, and the clock moves as the input says.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../net/stack.h"
#include "../support/net_stack_host.c"

static uint64_t fake_now;
static struct net_stack stacks[2];
static uint8_t sink[256];

static void env_send(struct net_stack *ns, struct netbuf *f)
{
    /* Whatever the stack sends is a whole frame inside its buffer and within the MTU. */
    if (f->data < netbuf_base(f) || f->data + f->len > (uint8_t *)f + NETBUF_SIZE || f->len < ETH_HLEN ||
        f->len > (uint32_t)ns->cfg.mtu + ETH_HLEN)
        abort();
    memcpy(sink, f->data, f->len < sizeof sink ? f->len : sizeof sink);
    netbuf_free(f);
}

static void env_broadcast(struct net_stack *ns, void (*fn)(struct net_stack *, const void *), const void *arg, size_t size)
{
    (void)size;
    fn(&stacks[ns == &stacks[0]], arg);
}

static uint64_t env_now(void) { return fake_now; }
static unsigned env_shards(void) { return 2; }
static void env_log(const char *fmt, ...) { (void)fmt; }

static void env_timer_arm(struct timer *t, uint64_t d) { (void)t, (void)d; }
static bool env_timer_cancel(struct timer *t) { (void)t; return false; }
static void env_random(void *buf, size_t n) { memset(buf, 0x5a, n); }

static const struct net_env env = {
    .send = env_send, .broadcast = env_broadcast, .now_ns = env_now, .shards = env_shards,
    .timer_arm = env_timer_arm, .timer_cancel = env_timer_cancel, .random = env_random, .log = env_log,
};

static void on_udp(void *arg, uint32_t src, uint16_t sport, uint16_t dport, const uint8_t *d, size_t len)
{
    (void)arg;
    udp_send(&stacks[0], dport, src, sport, d, len);   /* echo, as the echo app does */
}

/* TCP apps on both stacks: port 80 takes data zero-copy and keeps the last chain a while (buffers
   outliving their segment), port 81 copies. */
static struct netbuf *kept;

static void keep(struct netbuf *b)
{
    netbuf_free(kept);
    kept = b;
}

static void on_accepted(struct tcp_conn *c, void *arg) { (void)c, (void)arg; }
static void on_recv_bufs(struct tcp_conn *c, void *arg, struct netbuf *b, size_t len)
{
    (void)c, (void)arg;
    size_t n = 0;
    for (const struct netbuf *p = b; p; p = p->frag) {
        if (p->len && (p->data < netbuf_base((struct netbuf *)p) ||
                       p->data + p->len > (const uint8_t *)p + NETBUF_SIZE))
            abort();
        n += p->len;
        memcpy(sink, p->data, p->len < sizeof sink ? p->len : sizeof sink);
    }
    if (n != len)
        abort();
    keep(b);
}
static void on_recv(struct tcp_conn *c, void *arg, const uint8_t *d, size_t len)
{
    (void)c, (void)arg;
    memcpy(sink, d, len < sizeof sink ? len : sizeof sink);
}
static const struct tcp_callbacks zc_app = { .accepted = on_accepted, .recv_bufs = on_recv_bufs };
static const struct tcp_callbacks copy_app = { .accepted = on_accepted, .recv = on_recv };

/* The frame as a device with merged receive buffers hands it over: a chain cut where cut says. */
static struct netbuf *frame_of(const uint8_t *data, size_t len, uint8_t cut)
{
    struct netbuf *f = netbuf_alloc(), *last = f;
    size_t first = cut & 2 ? (size_t)54 + cut : len;
    size_t n = len < netbuf_room(f) ? len : netbuf_room(f);
    n = n < first ? n : first;
    memcpy(f->data, data, n);
    f->len = (uint32_t)n;
    for (size_t done = n; done < len;) {
        struct netbuf *b = netbuf_alloc_frag();
        size_t k = len - done < netbuf_room(b) ? len - done : netbuf_room(b);
        memcpy(b->data, data + done, k);
        b->len = (uint32_t)k;
        last->frag = b;
        last = b;
        done += k;
    }
    return f;
}

/* Most random frames die at a checksum; fixing some lets the fuzzer reach the layers behind it. */
static void fix_checksums(uint8_t *f, size_t len)
{
    if (len < ETH_HLEN + 20 || f[12] != 0x08 || f[13] != 0x00)
        return;
    uint8_t *ip = f + ETH_HLEN;
    size_t hl = (size_t)(ip[0] & 0xF) * 4;
    if (hl < 20 || ETH_HLEN + hl > len)
        return;
    wr16(ip + 10, 0);
    wr16(ip + 10, csum_finish(csum_add(0, ip, hl)));
    size_t l4len = len - ETH_HLEN - hl;
    if (ip[9] == IPPROTO_ICMP && l4len >= 4) {
        wr16(ip + hl + 2, 0);
        wr16(ip + hl + 2, csum_finish(csum_add(0, ip + hl, l4len)));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t mac[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 };
    struct net_config cfg = { .ip = 0x0A00020F, .netmask = 0xFFFFFF00, .gateway = 0x0A000201, .mtu = 1500,
                              .configured = true };
    fake_now = 1000000000ULL;
    for (int i = 0; i < 2; i++) {
        net_stack_init(&stacks[i], &env, (unsigned)i, mac, &cfg);
        udp_bind(&stacks[i], 7, on_udp, 0);
        tcp_listen(&stacks[i], 80, &zc_app, 0);
        tcp_listen(&stacks[i], 81, &copy_app, 0);
    }
    /* Input: records of [len_hi len_lo time_step frame...]. */
    while (size >= 3) {
        size_t len = (size_t)(data[0] << 8 | data[1]) % 2000;
        fake_now += (uint64_t)data[2] * 50000000ULL;
        data += 3, size -= 3;
        if (len > size)
            len = size;
        uint8_t copy[2000];
        memcpy(copy, data, len);
        if (data[-1] & 1)
            fix_checksums(copy, len);
        struct netbuf *f = frame_of(copy, len, data[-1]);
        f->flags = len & 1 ? NETBUF_CSUM_VALID : 0;
        net_input(&stacks[len % 2], f);
        net_tick(&stacks[0]);
        data += len, size -= len;
    }
    for (int i = 0; i < 2; i++) {
        for (unsigned k = 0; k < ARP_CACHE_SIZE; k++)
            drop_pending(&stacks[i], &stacks[i].arp[k]);
        ip_reass_clear(&stacks[i].reass);
        tcp_fini(&stacks[i]);
    }
    keep(0);
    return 0;
}
