/*
 * echo: the RFC 862 echo service over UDP, on every shard (TCP comes with
 * the TCP layer).
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
    if (shoal_udp_bind(c.port, echo, 0) < 0 || (c.stats_port && shoal_udp_bind(c.stats_port, stats, 0) < 0)) {
        shoal_print("echo: cannot bind UDP port %u on shard %u\n", c.port, shard_id());
        shoal_exit(1);
    }
    if (shard_id() == 0)
        shoal_print("echo: UDP port %u on %u shards, address %u.%u.%u.%u%s\n", c.port, shard_count(), info.ip >> 24,
                    info.ip >> 16 & 255, info.ip >> 8 & 255, info.ip & 255, info.configured ? "" : " (none yet)");
}
