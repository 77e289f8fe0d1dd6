/*
 * The IPv4 stack of one shard. Every shard has its own struct net_stack:
 * its own configuration copy, ARP cache, UDP bindings, reassembly state
 * and counters. Nothing here is shared; changes every shard must see
 * (ARP entries learned, a DHCP lease) travel by message through the
 * environment, so the same code runs in the kernel and, with a test
 * environment, on the host (unit tests, fuzz targets).
 *
 * Addresses are host-order uint32_t (10.0.0.1 is 0x0A000001).
 */
#ifndef NET_STACK_H
#define NET_STACK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "../drivers/netdev.h"
#include "ip_reass.h"
#include "net_config.h"
#include "../kernel/timer_wheel.h"

#define ARP_CACHE_SIZE     64
#define ARP_PENDING_MAX    4          /* frames held per unresolved address */
#define UDP_MAX_BINDS      32
#define ETH_HLEN           14
#define ETHERTYPE_IPV4     0x0800
#define ETHERTYPE_ARP      0x0806
#define IPPROTO_ICMP       1
#define IPPROTO_TCP        6
#define IPPROTO_UDP        17

struct net_stack;
struct tcp_stack;

/* What the stack needs from its surroundings. */
struct net_env {
    void (*send)(struct net_stack *ns, struct netbuf *frame);     /* ownership passes */
    /* Run fn(shard's stack, arg) on every other shard; arg is copied (size bytes) per shard. */
    void (*broadcast)(struct net_stack *ns, void (*fn)(struct net_stack *, const void *), const void *arg, size_t size);
    uint64_t (*now_ns)(void);
    unsigned (*shards)(void);
    /* Timers on this shard's clock (kernel/timer_wheel.h's struct timer). */
    void (*timer_arm)(struct timer *t, uint64_t deadline_ns);
    bool (*timer_cancel)(struct timer *t);
    /* Unpredictable bytes (ISN keys); tests may give fixed ones. */
    void (*random)(void *buf, size_t n);
    void (*log)(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
};


struct arp_entry {
    uint32_t ip;
    uint8_t mac[6];
    uint8_t state;                /* ARP_FREE, ARP_PENDING, ARP_VALID */
    uint8_t tries;
    uint64_t expires_ns;          /* VALID: time to forget; PENDING: next retry */
    uint64_t used_ns;
    struct netbuf *pending[ARP_PENDING_MAX];
    uint8_t npending;
};

typedef void (*udp_recv_fn)(void *arg, uint32_t src_ip, uint16_t src_port, uint16_t dst_port,
                            const uint8_t *data, size_t len);

struct udp_bind {
    uint16_t port;
    udp_recv_fn fn;
    void *arg;
};

struct net_stats {
    uint64_t rx_frames, rx_bad_eth, rx_other_ethertype;
    uint64_t arp_rx, arp_bad, arp_requests_answered, arp_tx, arp_learned;
    uint64_t ip_rx, ip_bad_header, ip_bad_checksum, ip_not_ours, ip_fragments, ip_reassembled;
    uint64_t ip_tx, ip_tx_fragments, ip_no_route, ip_arp_dropped;
    uint64_t icmp_rx, icmp_bad, icmp_echo_replied, icmp_errors_sent, icmp_rate_limited;
    uint64_t udp_rx, udp_bad, udp_no_port, udp_tx;
    uint64_t proto_unknown, tcp_rx;
    uint64_t no_memory;
};

struct net_stack {
    const struct net_env *env;
    unsigned shard;
    uint8_t mac[6];
    struct net_config cfg;
    uint16_t next_ip_id;
    struct arp_entry arp[ARP_CACHE_SIZE];
    struct udp_bind udp[UDP_MAX_BINDS];
    unsigned nudp;
    struct ip_reass reass;
    struct tcp_stack *tcp;        /* tcp.h; NULL until tcp_init */
    bool tx_csum_offload;         /* the device fills checksums of NETBUF_CSUM_PARTIAL frames */
    bool tx_tso4;                 /* the device cuts NETBUF_GSO_TCPV4 frames (NETDEV_TX_TSO4) */
    /* ICMP error rate limit: token bucket, refilled per ms */
    uint32_t icmp_tokens;
    uint64_t icmp_refill_ns;
    struct net_stats stats;
};

/* Set up one shard's stack (mac from the device; cfg may be unconfigured until DHCP). */
void net_stack_init(struct net_stack *ns, const struct net_env *env, unsigned shard, const uint8_t mac[6],
                    const struct net_config *cfg);
/* A frame from the device (or another shard); the stack owns it from here. */
void net_input(struct net_stack *ns, struct netbuf *frame);
/* Housekeeping: ARP retries and expiry, reassembly timeouts. Call every few hundred ms. */
void net_tick(struct net_stack *ns);
/* New configuration (static at boot, DHCP lease); announces the address on shard 0. */
void net_set_config(struct net_stack *ns, const struct net_config *cfg);

/* --- layers (one file each) --- */
void arp_input(struct net_stack *ns, struct netbuf *frame);
/* Send an IPv4 frame (Ethernet header space reserved, IP header filled) to next_hop: now if known, else after ARP. */
void arp_output(struct net_stack *ns, struct netbuf *frame, uint32_t next_hop);
void arp_announce(struct net_stack *ns);
void arp_tick(struct net_stack *ns, uint64_t now);
void arp_learn_remote(struct net_stack *ns, const void *msg);
bool arp_lookup(struct net_stack *ns, uint32_t ip, uint8_t mac[6]);

struct ip_info {
    uint32_t src, dst;
    uint8_t proto, ttl, tos;      /* tos: its low two bits are the ECN field (RFC 3168), CE = 3 */
    bool broadcast;               /* sent to a broadcast address: never answer with an ICMP error */
    const uint8_t *hdr;           /* the IPv4 header, for ICMP errors */
    uint32_t hdr_len;
    uint16_t csum_flags;          /* NETBUF_CSUM_* of the frame; 0 for reassembled datagrams */
    /* The one-buffer frame the packet lies in, NULL for chains and reassembled datagrams: a protocol
       that hands the bytes on in place (TCP's zero-copy receive) takes it by setting *frame to NULL. */
    struct netbuf **frame;
    /* The frame is a chain and l4 continues past its first buffer: only TCP takes such packets, and
       reads no further than its header until it has copied the payload or handed the chain on. */
    bool chained;
};

void ipv4_input(struct net_stack *ns, struct netbuf *frame);
/*
 * Send a proto payload to dst: its header hdr[0..hlen) (checksum already
 * in place) followed by data[0..dlen), copied straight into the frames,
 * fragmenting to the MTU as needed. False if it could not.
 */
bool ipv4_send(struct net_stack *ns, uint32_t dst, uint8_t proto, const uint8_t *hdr, size_t hlen,
               const uint8_t *data, size_t dlen);
/* Same, from a netbuf whose data holds the L4 bytes and whose headroom takes the headers; no fragmentation.
   The netbuf may be a chain; a NETBUF_GSO_TCPV4 one may exceed the MTU (its pieces may not): its hdr_len
   counts the L4 header only, like csum_start, and both grow by the headers put in front. */
bool ipv4_send_netbuf(struct net_stack *ns, uint32_t dst, uint8_t proto, struct netbuf *nb);
/* Same with the ECN field (RFC 3168 §5, the low two bits of the TOS byte) set to ecn; the DSCP stays 0. */
bool ipv4_send_netbuf_ecn(struct net_stack *ns, uint32_t dst, uint8_t proto, uint8_t ecn, struct netbuf *nb);
uint32_t ipv4_source_for(const struct net_stack *ns, uint32_t dst);
bool ipv4_is_broadcast(const struct net_stack *ns, uint32_t ip);

void icmp_input(struct net_stack *ns, const struct ip_info *ip, const uint8_t *l4, size_t len);
/* Destination unreachable (type 3) with code, quoting the offending datagram's header and first 8 bytes. */
void icmp_send_unreachable(struct net_stack *ns, const struct ip_info *ip, uint8_t code, const uint8_t *l4, size_t len);
void icmp_send_time_exceeded(struct net_stack *ns, const uint8_t *hdr, size_t len);

void udp_input(struct net_stack *ns, const struct ip_info *ip, const uint8_t *l4, size_t len);
int udp_bind(struct net_stack *ns, uint16_t port, udp_recv_fn fn, void *arg);
bool udp_send(struct net_stack *ns, uint16_t src_port, uint32_t dst, uint16_t dst_port, const void *data, size_t len);

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static inline void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static inline void wr32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }
#endif
