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
 * A TCP connection's bytes that the send buffer could not take yet wait
 * here, in order, until writable(). Past ECHO_PAUSE_AT the connection stops
 * taking data, so a peer that sends without reading is held back by TCP's
 * window instead of by our memory; below ECHO_RESUME_AT it takes data again.
 */
#define ECHO_PAUSE_AT   (256u << 10)
#define ECHO_RESUME_AT  (64u << 10)
#define ECHO_BACKLOG_MAX (4u << 20)

struct echo_conn {
    uint8_t *pending;
    size_t len, cap;
    bool peer_done;             /* FIN received: close once everything is echoed */
    bool paused;
};

static bool keep(struct echo_conn *e, const uint8_t *data, size_t len)
{
    if (e->len + len > ECHO_BACKLOG_MAX)
        return false;
    if (e->len + len > e->cap) {
        size_t cap = e->cap ? e->cap : 16384;
        while (cap < e->len + len)
            cap *= 2;
        uint8_t *p = realloc(e->pending, cap);
        if (!p)
            return false;
        e->pending = p;
        e->cap = cap;
    }
    memcpy(e->pending + e->len, data, len);
    e->len += len;
    return true;
}

static void flush(shoal_tcp_conn *c, struct echo_conn *e)
{
    size_t n = e->len ? shoal_tcp_send(c, e->pending, e->len) : 0;
    if (n)
        memmove(e->pending, e->pending + n, e->len - n);
    e->len -= n;
    if (e->len == 0 && e->peer_done) {
        shoal_tcp_close(c);
        return;
    }
    if (e->paused && e->len < ECHO_RESUME_AT) {
        e->paused = false;
        shoal_tcp_recv_resume(c);   /* may call tcp_recv, and so flush, again */
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

static void tcp_recv(shoal_tcp_conn *c, void *arg, const uint8_t *data, size_t len)
{
    struct echo_conn *e = arg;
    if (len == 0) {
        e->peer_done = true;
        flush(c, e);
        return;
    }
    size_t n = e->len ? 0 : shoal_tcp_send(c, data, len);
    if (n < len && !keep(e, data + n, len - n)) {
        shoal_tcp_abort(c);
        return;
    }
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
    free(e->pending);
    free(e);
}

static const struct tcp_callbacks echo_tcp = {
    .accepted = tcp_accepted, .recv = tcp_recv, .writable = tcp_writable, .closed = tcp_closed,
};

static void echo(void *arg, uint32_t src, uint16_t sport, uint16_t dport, const uint8_t *data, size_t len)
{
    (void)arg;
    shoal_udp_send(dport, src, sport, data, len);
}

#define COUNTERS(X) X(rx_frames) X(rx_bad_eth) X(ip_rx) X(ip_bad_header) X(ip_bad_checksum) X(ip_not_ours) \
    X(ip_fragments) X(ip_reassembled) X(icmp_rx) X(icmp_bad) X(icmp_echo_replied) X(icmp_errors_sent) \
    X(udp_rx) X(udp_bad) X(udp_no_port) X(udp_tx) X(arp_rx) X(arp_bad) X(arp_tx) X(proto_unknown) X(tcp_rx) X(no_memory)

static void stats(void *arg, uint32_t src, uint16_t sport, uint16_t dport, const uint8_t *data, size_t len)
{
    (void)arg, (void)data, (void)len;
    struct shoal_net_stats sum = { 0 }, one;
    for (unsigned s = 0; s < shard_count(); s++) {
        if (!shoal_net_stats(s, &one))
            continue;
#define ADD(f) sum.f += one.f;
        COUNTERS(ADD)
#undef ADD
    }
    char text[2048];
    int n = 0;
#define PRINT(f) n += snprintf(text + n, sizeof text - (size_t)n, "%s %lu\n", #f, (unsigned long)sum.f);
    COUNTERS(PRINT)
#undef PRINT
    for (unsigned s = 0; s < shard_count() && n < (int)sizeof text; s++)
        if (shoal_net_stats(s, &one))
            n += snprintf(text + n, sizeof text - (size_t)n, "shard%u_udp_rx %lu\n", s, (unsigned long)one.udp_rx);
    shoal_udp_send(dport, src, sport, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
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
    if (shard_id() == 0)
        shoal_print("echo: TCP and UDP port %u on %u shards, address %u.%u.%u.%u%s\n", c.port, shard_count(), info.ip >> 24,
                    info.ip >> 16 & 255, info.ip >> 8 & 255, info.ip & 255, info.configured ? "" : " (none yet)");
}
