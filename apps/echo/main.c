/*
 * echo: the RFC 862 echo service over TCP and UDP, on every shard.
 *
 *   -- [-p PORT] [-s STATS_PORT]
 *
 * -p: the echo port (default 7). -s: a UDP port that answers any datagram
 * with the stack's counters summed over all shards, one "name value" per
 * line (for tests: what was dropped, and why).
 */
#include "../../runtime/shoal.h"

struct echo_config {
    uint16_t port, stats_port;
};

/*
 * TCP data arrives as frames the app owns (zero-copy receive): each is
 * sent back from where it lies, and what the send buffer could not take
 * yet waits as those same frames, in order, until writable(). Past
 * ECHO_PAUSE_AT waiting bytes the connection stops taking data, so a peer
 * that sends without reading is held back by TCP's window instead of by
 * our memory; below ECHO_RESUME_AT it takes data again.
 */
#define ECHO_PAUSE_AT   (256u << 10)
#define ECHO_RESUME_AT  (64u << 10)
#define ECHO_BACKLOG_MAX (4u << 20)

struct echo_conn {
    struct netbuf *pending;     /* a chain: the first buffer's data starts at the next byte to echo */
    struct netbuf *tail;        /* its last buffer, where the next arrivals join */
    size_t len;
    bool peer_done;             /* FIN received: close once everything is echoed */
    bool paused;
};

/* Sends what waits, buffer by buffer, until the send buffer is full; echoed buffers are released. */
static void send_pending(shoal_tcp_conn *c, struct echo_conn *e)
{
    while (e->pending) {
        struct netbuf *b = e->pending;
        uint32_t blen = shoal_frame_len(b);
        size_t n = blen ? shoal_tcp_send(c, shoal_frame_data(b), blen) : 0;
        e->len -= n;
        if (n < blen) {
            shoal_frame_pull(b, (uint32_t)n);
            return;
        }
        e->pending = shoal_frame_split(b);
        shoal_frame_free(b);
    }
    e->tail = 0;
}

static void flush(shoal_tcp_conn *c, struct echo_conn *e)
{
    send_pending(c, e);
    if (e->len == 0 && e->peer_done) {
        shoal_tcp_close(c);
        return;
    }
    if (e->paused && e->len < ECHO_RESUME_AT) {
        e->paused = false;
        shoal_tcp_recv_resume(c);   /* may call tcp_recv_bufs, and so flush, again */
    }
}

static void tcp_accepted(shoal_tcp_conn *c, void *arg)
{
    (void)arg;
    struct echo_conn *e = calloc(1, sizeof *e);
    if (!e) {
        shoal_tcp_abort(c);
        return;
    }
    shoal_tcp_set_arg(c, e);
    shoal_tcp_set_nodelay(c, true);
}

static void tcp_recv_bufs(shoal_tcp_conn *c, void *arg, struct netbuf *bufs, size_t len)
{
    struct echo_conn *e = arg;
    if (!bufs) {
        e->peer_done = true;
        flush(c, e);
        return;
    }
    if (e->len + len > ECHO_BACKLOG_MAX) {
        shoal_frame_free(bufs);
        shoal_tcp_abort(c);
        return;
    }
    if (e->pending)
        shoal_frame_join(e->tail, bufs);
    else
        e->pending = bufs;
    for (e->tail = bufs; shoal_frame_next(e->tail);)
        e->tail = shoal_frame_next(e->tail);
    e->len += len;
    send_pending(c, e);
    if (!e->paused && e->len > ECHO_PAUSE_AT) {
        e->paused = true;
        shoal_tcp_recv_pause(c);
    }
}

static void tcp_writable(shoal_tcp_conn *c, void *arg) { flush(c, arg); }

static void tcp_closed(shoal_tcp_conn *c, void *arg, enum tcp_close_reason why)
{
    (void)c, (void)why;
    struct echo_conn *e = arg;
    if (!e)
        return;
    shoal_frame_free(e->pending);
    free(e);
}

static const struct tcp_callbacks echo_tcp = {
    .accepted = tcp_accepted, .recv_bufs = tcp_recv_bufs, .writable = tcp_writable, .closed = tcp_closed,
};

static void echo(void *arg, uint32_t src, uint16_t sport, uint16_t dport, const uint8_t *data, size_t len)
{
    (void)arg;
    shoal_udp_send(dport, src, sport, data, len);
}

#define COUNTERS(X) X(rx_frames) X(rx_bad_eth) X(ip_rx) X(ip_bad_header) X(ip_bad_checksum) X(ip_not_ours) \
    X(ip_fragments) X(ip_reassembled) X(icmp_rx) X(icmp_bad) X(icmp_echo_replied) X(icmp_errors_sent) \
    X(udp_rx) X(udp_bad) X(udp_no_port) X(udp_tx) X(arp_rx) X(arp_bad) X(arp_tx) X(proto_unknown) X(tcp_rx) X(no_memory)

#define TCP_COUNTERS(X) X(segs_in) X(segs_out) X(retransmits) X(bad_checksum) X(bad_header) X(rst_in) X(rst_out) \
    X(challenge_acks) X(syn_cookies_sent) X(syn_cookies_ok) X(syn_cookies_later) X(conns_opened) X(conns_closed) X(out_of_order) X(rcv_zero_copy) X(rcv_copied) \
    X(ecn_ce_in) X(ecn_reductions)

/* One "name value" line at text[*n], never past cap (a full buffer keeps what fits). */
static void line(char *text, size_t cap, size_t *n, const char *prefix, const char *name, uint64_t v)
{
    if (*n + 1 >= cap)
        return;
    int k = snprintf(text + *n, cap - *n, "%s%s %lu\n", prefix, name, (unsigned long)v);
    *n = k < 0 ? *n : *n + (size_t)k < cap ? *n + (size_t)k : cap - 1;
}

/* The stack's counters summed over shards as "name value" lines (TCP's with a tcp_ prefix); bytes written. */
static size_t format_stats(char *text, size_t cap)
{
    struct shoal_net_stats sum = { 0 }, one;
    struct tcp_stats tsum = { 0 }, tone;
    for (unsigned s = 0; s < shard_count(); s++) {
#define ADD(f) sum.f += one.f;
        if (shoal_net_stats(s, &one)) {
            COUNTERS(ADD)
        }
#undef ADD
#define ADD(f) tsum.f += tone.f;
        if (shoal_tcp_stats(s, &tone)) {
            TCP_COUNTERS(ADD)
        }
#undef ADD
    }
    size_t n = 0;
#define PRINT(f) line(text, cap, &n, "", #f, sum.f);
    COUNTERS(PRINT)
#undef PRINT
#define PRINT(f) line(text, cap, &n, "tcp_", #f, tsum.f);
    TCP_COUNTERS(PRINT)
#undef PRINT
    for (unsigned s = 0; s < shard_count(); s++) {
        char name[32];
        snprintf(name, sizeof name, "shard%u_udp_rx", s);
        if (shoal_net_stats(s, &one))
            line(text, cap, &n, "", name, one.udp_rx);
    }
    return n;
}

static void stats(void *arg, uint32_t src, uint16_t sport, uint16_t dport, const uint8_t *data, size_t len)
{
    (void)arg, (void)data, (void)len;
    char text[3072];
    size_t n = format_stats(text, sizeof text);
    shoal_udp_send(dport, src, sport, text, n);
}

static bool parse_port(const char *s, uint16_t *out)
{
    unsigned v = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || (v = v * 10 + (unsigned)(*s - '0')) > 65535)
            return false;
    }
    *out = (uint16_t)v;
    return v != 0;
}

/* Shards that listen so far: touched on shard 0 only, by message, so it needs no lock. */
static unsigned shards_serving;

/* On shard 0, once per shard: "ready" is printed when every shard serves, never before. */
static void shard_serving(void *arg)
{
    unsigned port = (unsigned)(uintptr_t)arg;
    if (++shards_serving < shard_count())
        return;
    struct shoal_net_info info;
    shoal_net_info(&info);
    shoal_print("echo: ready, TCP and UDP port %u on %u shards, address %u.%u.%u.%u%s\n", port, shard_count(),
                info.ip >> 24, info.ip >> 16 & 255, info.ip >> 8 & 255, info.ip & 255,
                info.configured ? "" : " (none yet)");
}

static bool parse_args(int argc, char **argv, struct echo_config *c)
{
    *c = (struct echo_config){ .port = 7 };
    for (int i = 1; i < argc; i++) {
        uint16_t *dst = strcmp(argv[i], "-p") == 0 ? &c->port : strcmp(argv[i], "-s") == 0 ? &c->stats_port : 0;
        if (!dst || i + 1 >= argc || !parse_port(argv[++i], dst))
            return false;
    }
    return true;
}

void app_main(int argc, char **argv)
{
    struct echo_config c;
    if (!parse_args(argc, argv, &c)) {
        if (shard_id() == 0) {
            shoal_print("echo: usage: -- [-p PORT] [-s STATS_PORT]\n");
            shoal_exit(2);
        }
        return;
    }
    struct shoal_net_info info;
    if (!shoal_net_info(&info)) {
        if (shard_id() == 0) {
            shoal_print("echo: no network device (boot with --net tap:IFNAME)\n");
            shoal_exit(1);
        }
        return;
    }
    if (shoal_udp_bind(c.port, echo, 0) < 0 || (c.stats_port && shoal_udp_bind(c.stats_port, stats, 0) < 0) ||
        shoal_tcp_listen(c.port, &echo_tcp, 0) < 0) {
        shoal_print("echo: cannot bind UDP port %u on shard %u\n", c.port, shard_id());
        shoal_exit(1);
    }
    smp_call(0, shard_serving, (void *)(uintptr_t)c.port);
}
