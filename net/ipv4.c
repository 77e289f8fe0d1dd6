/*
 * IPv4 (RFC 791, RFC 1122 §3.2) for a host that does not forward:
 * every length is checked against the bytes that arrived, the header
 * checksum is verified, options are skipped, fragments go to
 * reassembly; output picks the next hop (on-link or the gateway),
 * fragments to the MTU, and leaves Ethernet to ARP.
 */
#include "stack.h"
#include "checksum.h"
#include "tcp.h"
#include "../kernel/malloc.h"
#include "../kernel/string.h"

#define IP_HLEN 20
#define IP_DF   0x4000
#define IP_MF   0x2000
#define IP_OFFSET_MASK 0x1FFF
#define IP_TTL  64

bool ipv4_is_broadcast(const struct net_stack *ns, uint32_t ip)
{
    if (ip == 0xFFFFFFFFu)
        return true;
    uint32_t mask = ns->cfg.netmask;
    return ns->cfg.configured && mask && mask != 0xFFFFFFFFu && (ip & ~mask) == ~mask && (ip & mask) == (ns->cfg.ip & mask);
}

static bool martian_source(const struct net_stack *ns, uint32_t src)
{
    /* Multicast, class E, limited broadcast, 0.x (except 0.0.0.0, used by DHCP clients), loopback. */
    return src >= 0xE0000000u || (src >> 24) == 127 || ((src >> 24) == 0 && src != 0) || src == ns->cfg.ip ||
           ipv4_is_broadcast(ns, src);
}

static void dispatch(struct net_stack *ns, const struct ip_info *ip, const uint8_t *l4, size_t len)
{
    switch (ip->proto) {
    case IPPROTO_ICMP:
        icmp_input(ns, ip, l4, len);
        return;
    case IPPROTO_UDP:
        udp_input(ns, ip, l4, len);
        return;
    case IPPROTO_TCP:
        tcp_input(ns, ip, l4, len);
        return;
    default:
        ns->stats.proto_unknown++;
        icmp_send_unreachable(ns, ip, 2, l4, len);
    }
}

static void input_reassembled(struct net_stack *ns, struct ip_info *info, const uint8_t *ip, size_t tot)
{
    size_t out_len;
    uint8_t *d = ip_reass_input(&ns->reass, ip, tot, ns->env->now_ns(), &out_len);
    ns->stats.ip_fragments++;
    if (!d)
        return;
    ns->stats.ip_reassembled++;
    uint32_t hl = (uint32_t)(d[0] & 0xF) * 4;
    info->hdr = d;
    info->hdr_len = hl;
    info->csum_flags = 0;
    info->frame = 0;
    dispatch(ns, info, d + hl, out_len - hl);
    free(d);
}

/* One IPv4 packet at ip[0..avail), contiguous unless chained; csum_flags as the device reported them;
   frame and chained as in ip_info. */
static void input_packet(struct net_stack *ns, const uint8_t *ip, uint32_t avail, uint16_t csum_flags,
                         struct netbuf **frame, bool chained)
{
    ns->stats.ip_rx++;
    uint32_t hl = avail >= IP_HLEN ? (uint32_t)(ip[0] & 0xF) * 4 : 0;
    uint32_t tot = avail >= IP_HLEN ? rd16(ip + 2) : 0;
    if (avail < IP_HLEN || (ip[0] >> 4) != 4 || hl < IP_HLEN || hl > avail || tot < hl || tot > avail) {
        ns->stats.ip_bad_header++;
        return;
    }
    if (csum_finish(csum_add(0, ip, hl)) != 0) {
        ns->stats.ip_bad_checksum++;
        return;
    }
    struct ip_info info = {
        .src = rd32(ip + 12), .dst = rd32(ip + 16), .proto = ip[9], .ttl = ip[8], .tos = ip[1],
        .hdr = ip, .hdr_len = hl, .csum_flags = csum_flags, .frame = frame, .chained = chained,
    };
    info.broadcast = ipv4_is_broadcast(ns, info.dst) || info.dst >= 0xE0000000u;
    /* Until an address is configured (DHCP), anything that reached our MAC may be the offer. */
    bool ours = !ns->cfg.configured || info.dst == ns->cfg.ip || info.broadcast;
    if (!ours || martian_source(ns, info.src)) {
        ns->stats.ip_not_ours++;
        return;
    }
    uint16_t frag = rd16(ip + 6);
    if (frag & (IP_MF | IP_OFFSET_MASK))
        input_reassembled(ns, &info, ip, tot);
    else
        dispatch(ns, &info, ip + hl, tot - hl);
}

/*
 * A coalesced TCP segment whose headers lie in its first buffer and whose checksum the device vouched
 * for goes up in place (ip_info.chained): TCP hands the chain to a zero-copy app, or copies the
 * payload itself when it must.
 */
static bool input_in_place(struct net_stack *ns, struct netbuf **fp)
{
    struct netbuf *f = *fp;
    const uint8_t *ip = f->data + ETH_HLEN;
    if (!(f->flags & (NETBUF_CSUM_VALID | NETBUF_CSUM_PARTIAL)) || f->len < ETH_HLEN + IP_HLEN + 20)
        return false;
    uint32_t hl = (uint32_t)(ip[0] & 0xF) * 4;
    if ((ip[0] >> 4) != 4 || ip[9] != IPPROTO_TCP || (rd16(ip + 6) & (IP_MF | IP_OFFSET_MASK)) ||
        hl < IP_HLEN || f->len < ETH_HLEN + hl + 20 || f->len < ETH_HLEN + hl + (uint32_t)(ip[hl + 12] >> 4) * 4)
        return false;
    input_packet(ns, ip, netbuf_frame_len(f) - ETH_HLEN, f->flags, fp, true);
    return true;
}

/*
 * A frame in several buffers is a coalesced TCP stream (the device's LRO,
 * VIRTIO_NET_F_GUEST_TSO4, up to 64 KiB): one copy into a contiguous
 * buffer costs far less than the dozens of segments it replaces.
 */
static void input_chain(struct net_stack *ns, struct netbuf **fp)
{
    if (input_in_place(ns, fp))
        return;
    const struct netbuf *f = *fp;
    uint32_t total = netbuf_frame_len(f);
    if (total > ETH_HLEN + 65535u) {
        ns->stats.ip_bad_header++;
        return;
    }
    uint8_t *buf = malloc(total);
    if (!buf) {
        ns->stats.no_memory++;
        return;
    }
    uint32_t off = 0;
    for (const struct netbuf *b = f; b; b = b->frag) {
        memcpy(buf + off, b->data, b->len);
        off += b->len;
    }
    input_packet(ns, buf + ETH_HLEN, total - ETH_HLEN, f->flags, 0, false);
    free(buf);
}

void ipv4_input(struct net_stack *ns, struct netbuf *f)
{
    if (f->frag)
        input_chain(ns, &f);
    else
        input_packet(ns, f->data + ETH_HLEN, f->len - ETH_HLEN, f->flags, &f, false);
    netbuf_free(f);             /* NULL when a protocol kept it */
}

uint32_t ipv4_source_for(const struct net_stack *ns, uint32_t dst)
{
    (void)dst;
    return ns->cfg.configured ? ns->cfg.ip : 0;
}

static bool next_hop(const struct net_stack *ns, uint32_t dst, uint32_t *hop)
{
    if (dst == 0xFFFFFFFFu) {
        *hop = dst;
        return true;
    }
    if (!ns->cfg.configured)
        return false;
    bool on_link = ((dst ^ ns->cfg.ip) & ns->cfg.netmask) == 0;
    if (on_link || !ns->cfg.gateway) {
        *hop = dst;
        return on_link;
    }
    *hop = ns->cfg.gateway;
    return true;
}

static void put_header(struct net_stack *ns, uint8_t *h, uint32_t dst, uint8_t proto, size_t tot, uint16_t id,
                       uint16_t frag, uint8_t tos)
{
    h[0] = 0x45;
    h[1] = tos;
    wr16(h + 2, (uint16_t)tot);
    wr16(h + 4, id);
    wr16(h + 6, frag);
    h[8] = IP_TTL;
    h[9] = proto;
    wr16(h + 10, 0);
    wr32(h + 12, ipv4_source_for(ns, dst));
    wr32(h + 16, dst);
    wr16(h + 10, csum_finish(csum_add(0, h, IP_HLEN)));
}

/* IDs step by the shard count from the shard number, so shards never reuse each other's. */
static uint16_t next_id(struct net_stack *ns, unsigned shards)
{
    uint16_t id = ns->next_ip_id;
    ns->next_ip_id = (uint16_t)(ns->next_ip_id + (shards ? shards : 1));
    return id;
}


/* Bytes [off, off + n) of the payload hdr[0..hlen) followed by data. */
static void copy_span(uint8_t *to, const uint8_t *hdr, size_t hlen, const uint8_t *data, size_t off, size_t n)
{
    if (off < hlen) {
        size_t k = hlen - off < n ? hlen - off : n;
        memcpy(to, hdr + off, k);
        to += k, off += k, n -= k;
    }
    memcpy(to, data + (off - hlen), n);
}

bool ipv4_send(struct net_stack *ns, uint32_t dst, uint8_t proto, const uint8_t *hdr, size_t hlen,
               const uint8_t *data, size_t dlen)
{
    uint32_t hop;
    size_t len = hlen + dlen;
    if (!next_hop(ns, dst, &hop)) {
        ns->stats.ip_no_route++;
        return false;
    }
    if (len > 65535 - IP_HLEN)
        return false;
    size_t room = ns->cfg.mtu - IP_HLEN;
    bool fragment = len > room;
    size_t chunk = fragment ? room & ~(size_t)7 : len;
    uint16_t id = next_id(ns, ns->env->shards());
    size_t off = 0;
    do {
        size_t n = len - off < chunk ? len - off : chunk;
        struct netbuf *f = netbuf_alloc();
        if (!f) {
            ns->stats.no_memory++;
            return false;
        }
        f->data -= IP_HLEN;
        uint16_t flags = fragment ? (uint16_t)((off >> 3) | (off + n < len ? IP_MF : 0)) : IP_DF;
        put_header(ns, f->data, dst, proto, IP_HLEN + n, id, flags, 0);
        copy_span(f->data + IP_HLEN, hdr, hlen, data, off, n);
        f->len = (uint32_t)(IP_HLEN + n);
        ns->stats.ip_tx++;
        ns->stats.ip_tx_fragments += fragment;
        arp_output(ns, f, hop);
        off += n;
    } while (off < len);
    return true;
}

bool ipv4_send_netbuf(struct net_stack *ns, uint32_t dst, uint8_t proto, struct netbuf *nb)
{
    return ipv4_send_netbuf_ecn(ns, dst, proto, 0, nb);
}

/* Whether nb fits one IPv4 packet on our link: by the MTU, or for a GSO frame each of its pieces. */
static bool fits_link(const struct net_stack *ns, const struct netbuf *nb, uint32_t len)
{
    uint32_t room = (uint32_t)ns->cfg.mtu - IP_HLEN;
    if (nb->gso_type != NETBUF_GSO_TCPV4)
        return len <= room;
    return len <= 65535u - IP_HLEN && (uint32_t)nb->hdr_len + nb->gso_size <= room;
}

bool ipv4_send_netbuf_ecn(struct net_stack *ns, uint32_t dst, uint8_t proto, uint8_t ecn, struct netbuf *nb)
{
    uint32_t hop, len = netbuf_frame_len(nb);
    if (!next_hop(ns, dst, &hop) || !fits_link(ns, nb, len)) {
        ns->stats.ip_no_route++;
        netbuf_free(nb);
        return false;
    }
    nb->data -= IP_HLEN;
    nb->len += IP_HLEN;
    put_header(ns, nb->data, dst, proto, IP_HLEN + len, next_id(ns, ns->env->shards()), IP_DF, ecn & 3);
    if (nb->flags & NETBUF_CSUM_PARTIAL)
        nb->csum_start = (uint16_t)(nb->csum_start + IP_HLEN + ETH_HLEN);
    if (nb->gso_type != NETBUF_GSO_NONE)
        nb->hdr_len = (uint16_t)(nb->hdr_len + IP_HLEN + ETH_HLEN);
    ns->stats.ip_tx++;
    arp_output(ns, nb, hop);
    return true;
}
