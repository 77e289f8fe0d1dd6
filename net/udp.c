/*
 * UDP (RFC 768, RFC 1122 §4.1). Each shard keeps its own bindings; an
 * application binds a port on every shard, and a datagram is handled by
 * the shard its flow hashes to. The checksum is verified unless the
 * device vouched for it, and always sent.
 */
#include "stack.h"
#include "checksum.h"
#include "../kernel/string.h"

#define UDP_HLEN 8

int udp_bind(struct net_stack *ns, uint16_t port, udp_recv_fn fn, void *arg)
{
    if (port == 0 || !fn)
        return -1;
    for (unsigned i = 0; i < ns->nudp; i++)
        if (ns->udp[i].port == port)
            return -1;
    if (ns->nudp == UDP_MAX_BINDS)
        return -1;
    ns->udp[ns->nudp++] = (struct udp_bind){ port, fn, arg };
    return 0;
}

static const struct udp_bind *bound(const struct net_stack *ns, uint16_t port)
{
    for (unsigned i = 0; i < ns->nudp; i++)
        if (ns->udp[i].port == port)
            return &ns->udp[i];
    return 0;
}

static bool checksum_ok(const struct ip_info *ip, const uint8_t *l4, size_t len)
{
    /* 0: the sender computed none (allowed over IPv4). CSUM_PARTIAL: the host
       left it to hardware after building it itself, so the data is intact. */
    if (rd16(l4 + 6) == 0 || (ip->csum_flags & (NETBUF_CSUM_VALID | NETBUF_CSUM_PARTIAL)))
        return true;
    return csum_finish(csum_add(csum_pseudo(ip->src, ip->dst, IPPROTO_UDP, (uint32_t)len), l4, len)) == 0;
}

void udp_input(struct net_stack *ns, const struct ip_info *ip, const uint8_t *l4, size_t len)
{
    ns->stats.udp_rx++;
    size_t ulen = len >= UDP_HLEN ? rd16(l4 + 4) : 0;
    if (len < UDP_HLEN || ulen < UDP_HLEN || ulen > len || !checksum_ok(ip, l4, ulen)) {
        ns->stats.udp_bad++;
        return;
    }
    uint16_t dport = rd16(l4 + 2);
    const struct udp_bind *b = bound(ns, dport);
    if (!b) {
        ns->stats.udp_no_port++;
        icmp_send_unreachable(ns, ip, 3, l4, len);
        return;
    }
    b->fn(b->arg, ip->src, rd16(l4), dport, l4 + UDP_HLEN, ulen - UDP_HLEN);
}

bool udp_send(struct net_stack *ns, uint16_t src_port, uint32_t dst, uint16_t dst_port, const void *data, size_t len)
{
    if (len > 65507)
        return false;
    uint8_t h[UDP_HLEN];
    wr16(h, src_port);
    wr16(h + 2, dst_port);
    wr16(h + 4, (uint16_t)(UDP_HLEN + len));
    wr16(h + 6, 0);
    uint32_t sum = csum_pseudo(ipv4_source_for(ns, dst), dst, IPPROTO_UDP, (uint32_t)(UDP_HLEN + len));
    uint16_t c = csum_finish(csum_add(csum_add(sum, h, UDP_HLEN), data, len));
    wr16(h + 6, c ? c : 0xFFFF);
    bool ok = ipv4_send(ns, dst, IPPROTO_UDP, h, UDP_HLEN, data, len);
    ns->stats.udp_tx += ok;
    return ok;
}
