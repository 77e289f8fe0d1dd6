/*
 * The IPv4 stack's layers on the host, against a recording environment:
 * ARP (answers, held frames, gratuitous announcement, sharing with other
 * shards), IPv4 (validation, fragmentation on output), ICMP (echo, errors,
 * rate limit), UDP (checksums, port unreachable).
 */
#include "check.h"
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "../../net/stack.h"
#include "../support/net_stack_host.c"

#define MAX_SENT 128
static struct netbuf *sent[MAX_SENT];
static unsigned nsent;
static uint64_t fake_now = 1000000000ULL;
static struct net_stack other;          /* the "other shard" broadcasts reach */
static unsigned broadcasts;

static void env_send(struct net_stack *ns, struct netbuf *f)
{
    (void)ns;
    if (nsent < MAX_SENT)
        sent[nsent++] = f;
    else
        netbuf_free(f);
}

static void env_broadcast(struct net_stack *ns, void (*fn)(struct net_stack *, const void *), const void *arg, size_t n)
{
    (void)ns, (void)n;
    broadcasts++;
    fn(&other, arg);
}

static uint64_t env_now(void) { return fake_now; }
static unsigned env_shards(void) { return 2; }
static void env_timer_arm(struct timer *t, uint64_t d) { (void)t, (void)d; }
static bool env_timer_cancel(struct timer *t) { (void)t; return false; }
static void env_random(void *b, size_t n) { memset(b, 7, n); }
static void env_log(const char *fmt, ...) { (void)fmt; }

static const struct net_env env = {
    .send = env_send, .broadcast = env_broadcast, .now_ns = env_now, .shards = env_shards,
    .timer_arm = env_timer_arm, .timer_cancel = env_timer_cancel, .random = env_random, .log = env_log,
};

static const uint8_t our_mac[6] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56 };
static const uint8_t peer_mac[6] = { 0x02, 0x56, 0xaa, 0xbb, 0xcc, 0x01 };
#define OUR_IP  0x0A00020Fu   /* 10.0.2.15 */
#define PEER_IP 0x0A000201u   /* 10.0.2.1 */

static struct net_stack ns;

static void clear_sent(void)
{
    for (unsigned i = 0; i < nsent; i++)
        netbuf_free(sent[i]);
    memset(sent, 0, sizeof sent);
    nsent = 0;
}

/* Frees what the last test left, so LeakSanitizer (which checks at exit) sees only real leaks. */
static void teardown(void)
{
    clear_sent();
    for (unsigned k = 0; k < ARP_CACHE_SIZE; k++) {
        drop_pending(&ns, &ns.arp[k]);
        drop_pending(&other, &other.arp[k]);
    }
    ip_reass_clear(&ns.reass);
    ip_reass_clear(&other.reass);
    tcp_fini(&ns);
    tcp_fini(&other);
}

static void reset(void)
{
    static bool registered;
    if (!registered)
        registered = atexit(teardown) == 0;
    teardown();
    broadcasts = 0;
    struct net_config cfg = { .ip = OUR_IP, .netmask = 0xFFFFFF00, .gateway = PEER_IP, .mtu = 1500, .configured = true };
    net_stack_init(&ns, &env, 0, our_mac, &cfg);
    net_stack_init(&other, &env, 1, our_mac, &cfg);
}

static struct netbuf *frame(const uint8_t *dst_mac, uint16_t type, const void *payload, size_t len)
{
    struct netbuf *f = netbuf_alloc();
    memcpy(f->data, dst_mac, 6);
    memcpy(f->data + 6, peer_mac, 6);
    wr16(f->data + 12, type);
    memcpy(f->data + 14, payload, len);
    f->len = (uint32_t)(14 + len);
    return f;
}

static size_t arp_packet(uint8_t *a, uint16_t op, uint32_t spa, uint32_t tpa)
{
    wr16(a, 1), wr16(a + 2, 0x0800), a[4] = 6, a[5] = 4, wr16(a + 6, op);
    memcpy(a + 8, peer_mac, 6), wr32(a + 14, spa);
    memset(a + 18, 0, 6), wr32(a + 24, tpa);
    return 28;
}

static size_t ip_packet(uint8_t *p, uint8_t proto, const void *l4, size_t len, uint16_t frag, uint16_t id)
{
    p[0] = 0x45, p[1] = 0, wr16(p + 2, (uint16_t)(20 + len)), wr16(p + 4, id), wr16(p + 6, frag);
    p[8] = 64, p[9] = proto, wr16(p + 10, 0), wr32(p + 12, PEER_IP), wr32(p + 16, OUR_IP);
    wr16(p + 10, csum_finish(csum_add(0, p, 20)));
    memcpy(p + 20, l4, len);
    return 20 + len;
}

static size_t icmp_echo(uint8_t *m, size_t payload)
{
    m[0] = 8, m[1] = 0, wr16(m + 2, 0), wr16(m + 4, 0x1234), wr16(m + 6, 1);
    for (size_t i = 0; i < payload; i++)
        m[8 + i] = (uint8_t)i;
    wr16(m + 2, csum_finish(csum_add(0, m, 8 + payload)));
    return 8 + payload;
}

static void learn_peer(void)
{
    uint8_t a[28];
    net_input(&ns, frame(our_mac, ETHERTYPE_ARP, a, arp_packet(a, 1, PEER_IP, OUR_IP)));
}

TEST(arp_request_answered_and_shared)
{
    reset();
    uint8_t a[28];
    net_input(&ns, frame((const uint8_t[6]){ 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, ETHERTYPE_ARP, a,
                         arp_packet(a, 1, PEER_IP, OUR_IP)));
    CHECK_EQ(nsent, 1u);
    const uint8_t *r = sent[0]->data;
    CHECK(memcmp(r, peer_mac, 6) == 0 && rd16(r + 12) == ETHERTYPE_ARP);
    CHECK_EQ(rd16(r + 14 + 6), 2);                          /* reply */
    CHECK(memcmp(r + 14 + 8, our_mac, 6) == 0 && rd32(r + 14 + 14) == OUR_IP);
    CHECK(rd32(r + 14 + 24) == PEER_IP);
    uint8_t mac[6];
    CHECK(arp_lookup(&ns, PEER_IP, mac) && memcmp(mac, peer_mac, 6) == 0);
    CHECK(broadcasts == 1 && arp_lookup(&other, PEER_IP, mac));   /* the other shard learned it too */
}

TEST(arp_not_for_us_is_not_learned)
{
    reset();
    uint8_t a[28];
    net_input(&ns, frame(our_mac, ETHERTYPE_ARP, a, arp_packet(a, 1, PEER_IP, 0x0A000299)));
    uint8_t mac[6];
    CHECK_EQ(nsent, 0u);
    CHECK(!arp_lookup(&ns, PEER_IP, mac));
}

TEST(arp_holds_frames_until_resolved_then_retries_and_gives_up)
{
    reset();
    CHECK(udp_send(&ns, 1000, PEER_IP, 2000, "abc", 3));
    CHECK_EQ(nsent, 1u);                                    /* the ARP request, not the datagram */
    CHECK_EQ(rd16(sent[0]->data + 12), ETHERTYPE_ARP);
    CHECK_EQ(rd16(sent[0]->data + 14 + 6), 1);
    CHECK(rd32(sent[0]->data + 14 + 24) == PEER_IP);
    uint8_t a[28];
    net_input(&ns, frame(our_mac, ETHERTYPE_ARP, a, arp_packet(a, 2, PEER_IP, OUR_IP)));
    CHECK_EQ(nsent, 2u);                                    /* the held datagram went out */
    CHECK(memcmp(sent[1]->data, peer_mac, 6) == 0 && rd16(sent[1]->data + 12) == ETHERTYPE_IPV4);
    /* an unanswered address: 3 requests a second apart, then the frame is dropped */
    reset();
    CHECK(udp_send(&ns, 1000, 0x0A000277, 2000, "abc", 3));
    for (int i = 0; i < 5; i++) {
        fake_now += 1100000000ULL;
        net_tick(&ns);
    }
    CHECK_EQ(nsent, 3u);
    CHECK_EQ(ns.stats.ip_arp_dropped, 1u);
}

TEST(unanswered_requests_never_evict_resolved_neighbours)
{
    reset();
    learn_peer();
    clear_sent();
    /* replies to 200 spoofed on-link sources: each needs ARP, none will answer */
    for (uint32_t i = 0; i < 200; i++)
        udp_send(&ns, 7, 0x0A000200u + 20 + i, 5000, "x", 1);
    uint8_t mac[6];
    CHECK(arp_lookup(&ns, PEER_IP, mac) && memcmp(mac, peer_mac, 6) == 0);
    unsigned pending = 0;
    for (unsigned k = 0; k < ARP_CACHE_SIZE; k++)
        pending += ns.arp[k].state == ARP_PENDING;
    CHECK(pending <= ARP_CACHE_SIZE / 4);
    clear_sent();
    CHECK(udp_send(&ns, 7, PEER_IP, 5000, "y", 1));
    CHECK_EQ(nsent, 1u);                                    /* straight out, no ARP needed */
    CHECK_EQ(rd16(sent[0]->data + 12), ETHERTYPE_IPV4);
}

TEST(gratuitous_arp_on_configuration)
{
    reset();
    struct net_config cfg = ns.cfg;
    net_set_config(&ns, &cfg);
    CHECK_EQ(nsent, 1u);
    const uint8_t *a = sent[0]->data + 14;
    CHECK(rd16(a + 6) == 1 && rd32(a + 14) == OUR_IP && rd32(a + 24) == OUR_IP);
}

TEST(ping_answered_byte_for_byte)
{
    reset();
    learn_peer();
    clear_sent();
    uint8_t p[1500], m[1400];
    size_t n = icmp_echo(m, 1000);
    net_input(&ns, frame(our_mac, ETHERTYPE_IPV4, p, ip_packet(p, IPPROTO_ICMP, m, n, 0, 1)));
    CHECK_EQ(ns.stats.icmp_echo_replied, 1u);
    CHECK_EQ(nsent, 1u);
    const uint8_t *ip = sent[0]->data + 14;
    CHECK(rd32(ip + 12) == OUR_IP && rd32(ip + 16) == PEER_IP && ip[9] == IPPROTO_ICMP);
    CHECK_EQ(csum_finish(csum_add(0, ip, 20)), 0);
    CHECK(ip[20] == 0 && memcmp(ip + 24, m + 4, n - 4) == 0);
    CHECK_EQ(csum_finish(csum_add(0, ip + 20, n)), 0);
}

TEST(bad_headers_dropped_and_counted)
{
    reset();
    uint8_t p[200], m[64];
    size_t n = icmp_echo(m, 16);
    size_t len = ip_packet(p, IPPROTO_ICMP, m, n, 0, 1);
    p[10] ^= 1;                                             /* header checksum */
    net_input(&ns, frame(our_mac, ETHERTYPE_IPV4, p, len));
    CHECK_EQ(ns.stats.ip_bad_checksum, 1u);
    ip_packet(p, IPPROTO_ICMP, m, n, 0, 1);
    wr16(p + 2, 400);                                       /* total length beyond the frame */
    net_input(&ns, frame(our_mac, ETHERTYPE_IPV4, p, len));
    ip_packet(p, IPPROTO_ICMP, m, n, 0, 1);
    p[0] = 0x44;                                            /* IHL 4 */
    net_input(&ns, frame(our_mac, ETHERTYPE_IPV4, p, len));
    net_input(&ns, frame(our_mac, ETHERTYPE_IPV4, p, 10));  /* truncated */
    CHECK_EQ(ns.stats.ip_bad_header, 3u);
    CHECK_EQ(nsent, 0u);
}

static uint8_t got[2000];
static size_t got_len;
static void on_udp(void *arg, uint32_t src, uint16_t sport, uint16_t dport, const uint8_t *d, size_t len)
{
    (void)arg, (void)src, (void)sport, (void)dport;
    memcpy(got, d, len);
    got_len = len;
}

static size_t udp_packet(uint8_t *u, uint16_t dport, const char *data, bool with_csum)
{
    size_t n = strlen(data);
    wr16(u, 5000), wr16(u + 2, dport), wr16(u + 4, (uint16_t)(8 + n)), wr16(u + 6, 0);
    memcpy(u + 8, data, n);
    if (with_csum)
        wr16(u + 6, csum_finish(csum_add(csum_pseudo(PEER_IP, OUR_IP, IPPROTO_UDP, (uint32_t)(8 + n)), u, 8 + n)));
    return 8 + n;
}

TEST(udp_checksums_and_ports)
{
    reset();
    learn_peer();
    clear_sent();
    CHECK_EQ(udp_bind(&ns, 7, on_udp, 0), 0);
    CHECK_EQ(udp_bind(&ns, 7, on_udp, 0), -1);
    uint8_t p[200], u[100];
    net_input(&ns, frame(our_mac, ETHERTYPE_IPV4, p, ip_packet(p, IPPROTO_UDP, u, udp_packet(u, 7, "hello", true), 0, 2)));
    CHECK(got_len == 5 && memcmp(got, "hello", 5) == 0);
    got_len = 0;
    net_input(&ns, frame(our_mac, ETHERTYPE_IPV4, p, ip_packet(p, IPPROTO_UDP, u, udp_packet(u, 7, "nocsum", false), 0, 3)));
    CHECK_EQ(got_len, 6u);                                  /* checksum 0: none computed, accepted */
    size_t n = udp_packet(u, 7, "broken", true);
    u[9] ^= 0x40;
    got_len = 0;
    net_input(&ns, frame(our_mac, ETHERTYPE_IPV4, p, ip_packet(p, IPPROTO_UDP, u, n, 0, 4)));
    CHECK(got_len == 0 && ns.stats.udp_bad == 1);
    /* an unbound port: ICMP port unreachable quoting the datagram */
    n = udp_packet(u, 9, "x", true);
    net_input(&ns, frame(our_mac, ETHERTYPE_IPV4, p, ip_packet(p, IPPROTO_UDP, u, n, 0, 5)));
    CHECK_EQ(nsent, 1u);
    const uint8_t *ip = sent[0]->data + 14;
    CHECK(ip[9] == IPPROTO_ICMP && ip[20] == 3 && ip[21] == 3);
    CHECK(rd32(ip + 28 + 12) == PEER_IP && rd16(ip + 28 + 20 + 2) == 9);
}

TEST(icmp_errors_rate_limited)
{
    reset();
    learn_peer();
    clear_sent();
    uint8_t p[200], u[100];
    for (int i = 0; i < 200; i++)
        net_input(&ns, frame(our_mac, ETHERTYPE_IPV4, p,
                             ip_packet(p, IPPROTO_UDP, u, udp_packet(u, 9, "x", true), 0, (uint16_t)i)));
    CHECK_EQ(ns.stats.icmp_errors_sent, 50u);               /* the burst */
    CHECK_EQ(ns.stats.icmp_rate_limited, 150u);
    fake_now += 10000000ULL;                                /* 10 ms: 10 more tokens */
    for (int i = 0; i < 20; i++)
        net_input(&ns, frame(our_mac, ETHERTYPE_IPV4, p,
                             ip_packet(p, IPPROTO_UDP, u, udp_packet(u, 9, "x", true), 0, (uint16_t)i)));
    CHECK_EQ(ns.stats.icmp_errors_sent, 60u);
}

TEST(large_datagram_fragmented_on_output)
{
    reset();
    learn_peer();
    clear_sent();
    static uint8_t big[4000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    CHECK(udp_send(&ns, 7, PEER_IP, 5000, big, sizeof big));
    CHECK_EQ(nsent, 3u);                                    /* 4008 bytes of UDP in 1480-byte pieces */
    size_t total = 0;
    uint16_t id = rd16(sent[0]->data + 14 + 4);
    for (unsigned i = 0; i < nsent; i++) {
        const uint8_t *ip = sent[i]->data + 14;
        uint16_t frag = rd16(ip + 6);
        CHECK_EQ(rd16(ip + 4), id);
        CHECK_EQ((size_t)(frag & 0x1FFF) * 8, total);
        CHECK_EQ(!!(frag & 0x2000), i + 1 < nsent);
        CHECK(sent[i]->len <= 1514);
        total += rd16(ip + 2) - 20u;
    }
    CHECK_EQ(total, sizeof big + 8);
    /* and a small one goes out whole with DF */
    clear_sent();
    CHECK(udp_send(&ns, 7, PEER_IP, 5000, "hi", 2));
    CHECK(rd16(sent[0]->data + 14 + 6) == 0x4000);
}

TEST(fragmented_ping_reassembled_and_answered)
{
    reset();
    learn_peer();
    clear_sent();
    static uint8_t m[3000], p[1600];
    size_t n = icmp_echo(m, 2900);
    for (size_t off = 0; off < n; off += 1480) {
        size_t chunk = n - off < 1480 ? n - off : 1480;
        uint16_t frag = (uint16_t)(off / 8) | (off + chunk < n ? 0x2000 : 0);
        uint8_t *ip = p;
        ip[0] = 0x45, ip[1] = 0, wr16(ip + 2, (uint16_t)(20 + chunk)), wr16(ip + 4, 77), wr16(ip + 6, frag);
        ip[8] = 64, ip[9] = IPPROTO_ICMP, wr16(ip + 10, 0), wr32(ip + 12, PEER_IP), wr32(ip + 16, OUR_IP);
        wr16(ip + 10, csum_finish(csum_add(0, ip, 20)));
        memcpy(ip + 20, m + off, chunk);
        net_input(&ns, frame(our_mac, ETHERTYPE_IPV4, p, 20 + chunk));
    }
    CHECK_EQ(ns.stats.ip_reassembled, 1u);
    CHECK_EQ(ns.stats.icmp_echo_replied, 1u);
    CHECK_EQ(nsent, 2u);                                    /* the 2908-byte reply, fragmented again */
}

TEST_MAIN()
