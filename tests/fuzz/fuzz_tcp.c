/*
 * TCP input on arbitrary segments, against a listener and an established
 * connection, with the clock and app calls (send, close, abort) driven by
 * the input too. Segments are made to reach TCP (checksums fixed, ports
 * aimed) and, when the input asks, their numbers are made relative to the
 * connection's, so that they land in the window and get past the first
 * checks. Whatever the stack sends must be a well-formed frame.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../support/net_stack_host.c"

#define LOCAL  0x0A000001u
#define REMOTE 0x0A000002u

static uint64_t vnow;
static struct timer_wheel wheel;
static struct net_stack ns;
static uint32_t last_seq, last_ack;   /* of the last segment we sent */
static struct tcp_conn *conn;

static void env_send(struct net_stack *s, struct netbuf *f)
{
    if (f->data < netbuf_base(f) || f->data + f->len > (uint8_t *)f + NETBUF_SIZE || f->len < ETH_HLEN ||
        f->len > (uint32_t)s->cfg.mtu + ETH_HLEN)
        abort();
    if (rd16(f->data + 12) != ETHERTYPE_IPV4) {     /* ARP, once the entry has aged out */
        netbuf_free(f);
        return;
    }
    if (f->len < ETH_HLEN + 40)
        abort();
    const uint8_t *ip = f->data + ETH_HLEN, *t = ip + 20;
    uint32_t l4 = rd16(ip + 2) - 20u;
    if (ip[9] == IPPROTO_TCP) {
        if ((t[12] >> 4) * 4u > l4 || csum_finish(csum_add(csum_pseudo(LOCAL, REMOTE, IPPROTO_TCP, l4), t, l4)))
            abort();
        last_seq = rd32(t + 4);
        last_ack = rd32(t + 8);
    }
    netbuf_free(f);
}

static void env_broadcast(struct net_stack *s, void (*fn)(struct net_stack *, const void *), const void *a, size_t n)
{
    (void)s, (void)fn, (void)a, (void)n;
}
static uint64_t env_now(void) { return vnow; }
static unsigned env_shards(void) { return 1; }
static void env_log(const char *fmt, ...) { (void)fmt; }
static void env_timer_arm(struct timer *t, uint64_t d) { timer_arm(&wheel, t, d); }
static bool env_timer_cancel(struct timer *t) { return timer_cancel(&wheel, t); }
static void env_random(void *buf, size_t n) { memset(buf, 0x3c, n); }

static const struct net_env env = {
    .send = env_send, .broadcast = env_broadcast, .now_ns = env_now, .shards = env_shards,
    .timer_arm = env_timer_arm, .timer_cancel = env_timer_cancel, .random = env_random, .log = env_log,
};

static void on_accepted(struct tcp_conn *c, void *arg) { (void)arg; conn = c; }
static void on_recv(struct tcp_conn *c, void *arg, const uint8_t *d, size_t len)
{
    (void)arg;
    /* An echo app, which exercises sending from inside a callback. */
    if (len)
        tcp_send(c, d, len);
    else
        tcp_close(c);
}
static void on_closed(struct tcp_conn *c, void *arg, enum tcp_close_reason why)
{
    (void)arg, (void)why;
    if (c == conn)
        conn = 0;
}
static const struct tcp_callbacks cb = { .accepted = on_accepted, .recv = on_recv, .closed = on_closed };

/* Zero-copy mode (odd-length inputs): the app echoes each chain and keeps it until the next one comes, so
   buffers outlive their segments; segments arrive in receive buffers, some as chains. */
static bool zc_mode;
static struct netbuf *kept;
static void on_recv_bufs(struct tcp_conn *c, void *arg, struct netbuf *b, size_t len)
{
    (void)arg;
    size_t n = 0;
    for (struct netbuf *p = b; p; p = p->frag) {
        if (p->len && (p->data < netbuf_base(p) || p->data + p->len > (uint8_t *)p + NETBUF_SIZE))
            abort();
        n += p->len;
        tcp_send(c, p->data, p->len);
    }
    if (n != len)
        abort();
    netbuf_free(kept);
    kept = b;
    if (!b)
        tcp_close(c);
}
static const struct tcp_callbacks zc_cb = { .accepted = on_accepted, .recv_bufs = on_recv_bufs, .closed = on_closed };

/* l4 in a receive buffer, or (split) in a chain whose first buffer ends split bytes past the header. */
static struct netbuf *receive_buffer(const uint8_t *l4, size_t len, size_t split)
{
    struct netbuf *f = netbuf_alloc(), *last = f;
    size_t doff = (size_t)(l4[12] >> 4) * 4;
    size_t first = (doff > TCP_HLEN ? doff : TCP_HLEN) + split;   /* IP guarantees the header in the first */
    first = first < netbuf_room(f) ? first : netbuf_room(f);
    f->len = (uint32_t)(len < first ? len : first);
    memcpy(f->data, l4, f->len);
    for (size_t done = f->len; done < len;) {
        struct netbuf *b = netbuf_alloc_frag();
        b->len = (uint32_t)(len - done < 700 ? len - done : 700);
        memcpy(b->data, l4 + done, b->len);
        last->frag = b;
        last = b;
        done += b->len;
    }
    return f;
}

static void inject_split(uint8_t *l4, size_t len, size_t split)
{
    wr16(l4 + 16, 0);
    wr16(l4 + 16, csum_finish(csum_add(csum_pseudo(REMOTE, LOCAL, IPPROTO_TCP, (uint32_t)len), l4, len)));
    uint8_t iph[20] = { 0x45 };
    struct ip_info ip = { .src = REMOTE, .dst = LOCAL, .proto = IPPROTO_TCP, .hdr = iph, .hdr_len = 20 };
    if (!zc_mode) {
        tcp_input(&ns, &ip, l4, len);
        return;
    }
    struct netbuf *f = receive_buffer(l4, len, split);
    ip.frame = &f;
    ip.chained = f->frag != 0;
    ip.csum_flags = NETBUF_CSUM_VALID;    /* as a device that checked it (a chained frame needs that) */
    tcp_input(&ns, &ip, f->data, len);
    netbuf_free(f);
}

static void inject(uint8_t *l4, size_t len) { inject_split(l4, len, 2048); }

static void advance(uint64_t dt)
{
    vnow += dt;
    for (uint64_t next; (next = timer_wheel_next_deadline(&wheel)) <= vnow;)
        timer_wheel_advance(&wheel, next);
    timer_wheel_advance(&wheel, vnow);
}

/* A handshake from port 40000, so that the input starts with an established connection. */
static void establish(void)
{
    uint8_t syn[24] = { 0x9c, 0x40, 0, 80, 0, 0, 1, 0, 0, 0, 0, 0, 0x60, TH_SYN, 0xff, 0xff, 0, 0, 0, 0, 2, 4, 5, 0xb4 };
    inject(syn, sizeof syn);
    uint8_t ack[20] = { 0x9c, 0x40, 0, 80, 0, 0, 1, 1, 0, 0, 0, 0, 0x50, TH_ACK, 0x10, 0 };
    wr32(ack + 8, last_seq + 1);
    inject(ack, sizeof ack);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t mac[6] = { 0x52, 0x54, 0, 0, 0, 1 };
    struct net_config cfg = { .ip = LOCAL, .netmask = 0xFFFFFF00, .mtu = 1500, .configured = true };
    vnow = 1000000000ULL;
    timer_wheel_init(&wheel, vnow, 16);
    conn = 0;
    net_stack_init(&ns, &env, 0, mac, &cfg);
    struct arp_update u = { .ip = REMOTE, .mac = { 0x52, 0x54, 0, 0, 0, 2 }, .create = true };
    arp_learn_remote(&ns, &u);
    tcp_set_limits(&ns, 8, 4);
    zc_mode = size & 1;
    tcp_listen(&ns, 80, zc_mode ? &zc_cb : &cb, 0);
    establish();
    /* Records: [op, time step, len, bytes...]. */
    static uint8_t payload[255 * 64];
    while (size >= 3) {
        uint8_t op = data[0];
        size_t len = data[2] * 8u;
        advance((uint64_t)data[1] * 10000000ULL);
        data += 3, size -= 3;
        if (len > size)
            len = size;
        switch (op & 7) {
        case 0:
        case 1:
        case 2: {
            uint8_t l4[2048];
            if (len < TCP_HLEN)
                break;
            memcpy(l4, data, len);
            wr16(l4 + 2, 80);
            if (op & 8)
                wr16(l4, 40000);              /* the established flow */
            if (op & 16) {                    /* numbers near the connection's */
                wr32(l4 + 4, last_ack + (uint32_t)(int8_t)l4[4]);
                wr32(l4 + 8, last_seq + (uint32_t)(int8_t)l4[8]);
            }
            if ((l4[12] >> 4) * 4u > len)
                l4[12] = 0x50;
            inject_split(l4, len, op & 32 ? (size_t)(op >> 6) * 300 : 2048);
            break;
        }
        case 3:
            if (conn)
                tcp_send(conn, payload, (size_t)data[-1] * 64);
            break;
        case 4:
            if (conn && (op & 0x80))
                tcp_close(conn);
            else if (conn)
                (op & 0x40 ? tcp_recv_pause : tcp_recv_resume)(conn);
            break;
        case 5:
            if (conn && (op & 0xC0) == 0xC0)
                tcp_abort(conn);
            break;
        case 6:
            if (conn)
                tcp_set_nodelay(conn, op & 8);
            break;
        default:
            advance((uint64_t)data[-2] * 1000000000ULL);
        }
        data += len, size -= len;
    }
    advance(200ULL * 1000000000ULL);  /* timers run out: retransmissions give up, TIME-WAIT ends */
    tcp_fini(&ns);
    netbuf_free(kept);
    kept = 0;
    for (unsigned k = 0; k < ARP_CACHE_SIZE; k++)
        drop_pending(&ns, &ns.arp[k]);
    ip_reass_clear(&ns.reass);
    return 0;
}
