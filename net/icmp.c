/*
 * ICMP (RFC 792, RFC 1122 §3.2.2): echo replies, and the errors a host
 * sends (destination unreachable, reassembly time exceeded), never in
 * answer to an error, a broadcast or a datagram from a non-unicast
 * source, and no more than a token bucket allows (as Linux's icmp_ratelimit).
 */
#include "stack.h"
#include "checksum.h"
#include "../kernel/string.h"

#define ICMP_ECHO_REPLY    0
#define ICMP_UNREACHABLE   3
#define ICMP_ECHO_REQUEST  8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_HLEN          8
/* Quote at most this much of the offending datagram: the reply stays within 576 bytes (RFC 1812 §4.3.2.3). */
#define ICMP_QUOTE_MAX     (576 - 20 - ICMP_HLEN)
#define ICMP_BURST         50
#define ICMP_REFILL_NS     1000000ULL   /* one token per ms: 1000 errors/s sustained */

static bool is_error_type(uint8_t type)
{
    return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

static bool take_token(struct net_stack *ns)
{
    uint64_t now = ns->env->now_ns();
    if (now > ns->icmp_refill_ns) {
        uint64_t add = (now - ns->icmp_refill_ns) / ICMP_REFILL_NS;
        if (add) {
            ns->icmp_tokens = (uint32_t)(ns->icmp_tokens + add > ICMP_BURST ? ICMP_BURST : ns->icmp_tokens + add);
            ns->icmp_refill_ns += add * ICMP_REFILL_NS;
        }
    }
    if (ns->icmp_tokens == 0) {
        ns->stats.icmp_rate_limited++;
        return false;
    }
    ns->icmp_tokens--;
    return true;
}

/* hdr: the 8-byte ICMP header (its checksum field is filled here), then body. */
static void send_message(struct net_stack *ns, uint32_t dst, uint8_t *hdr, const uint8_t *body, size_t blen)
{
    wr16(hdr + 2, 0);
    wr16(hdr + 2, csum_finish(csum_add(csum_add(0, hdr, ICMP_HLEN), body, blen)));
    ipv4_send(ns, dst, IPPROTO_ICMP, hdr, ICMP_HLEN, body, blen);
}

static void echo_reply(struct net_stack *ns, const struct ip_info *ip, const uint8_t *req, size_t len)
{
    uint8_t hdr[ICMP_HLEN];
    memcpy(hdr, req, ICMP_HLEN);
    hdr[0] = ICMP_ECHO_REPLY;
    hdr[1] = 0;
    send_message(ns, ip->src, hdr, req + ICMP_HLEN, len - ICMP_HLEN);
    ns->stats.icmp_echo_replied++;
}

void icmp_input(struct net_stack *ns, const struct ip_info *ip, const uint8_t *l4, size_t len)
{
    ns->stats.icmp_rx++;
    if (len < ICMP_HLEN || csum_finish(csum_add(0, l4, len)) != 0) {
        ns->stats.icmp_bad++;
        return;
    }
    /* Echo to a broadcast address is ignored, as Linux does by default (smurf amplification). */
    if (l4[0] == ICMP_ECHO_REQUEST && l4[1] == 0 && !ip->broadcast)
        echo_reply(ns, ip, l4, len);
}

static void send_error(struct net_stack *ns, uint32_t dst, uint8_t type, uint8_t code, const uint8_t *quote,
                       size_t qlen)
{
    if (!take_token(ns))
        return;
    if (qlen > ICMP_QUOTE_MAX)
        qlen = ICMP_QUOTE_MAX;
    uint8_t hdr[ICMP_HLEN] = { type, code };
    ns->stats.icmp_errors_sent++;
    send_message(ns, dst, hdr, quote, qlen);
}

/* RFC 1122 §3.2.2: no error about an error, a broadcast, or a non-unicast source. */
static bool may_answer(const struct net_stack *ns, const struct ip_info *ip, const uint8_t *l4, size_t len)
{
    if (ip->broadcast || ip->src == 0 || ip->src >= 0xE0000000u || ipv4_is_broadcast(ns, ip->src))
        return false;
    return !(ip->proto == IPPROTO_ICMP && (len < 1 || is_error_type(l4[0])));
}

void icmp_send_unreachable(struct net_stack *ns, const struct ip_info *ip, uint8_t code, const uint8_t *l4, size_t len)
{
    if (!may_answer(ns, ip, l4, len))
        return;
    uint8_t quote[ICMP_QUOTE_MAX];
    size_t hl = ip->hdr_len < sizeof quote ? ip->hdr_len : sizeof quote;
    memcpy(quote, ip->hdr, hl);
    size_t body = len < sizeof quote - hl ? len : sizeof quote - hl;
    memcpy(quote + hl, l4, body);
    send_error(ns, ip->src, ICMP_UNREACHABLE, code, quote, hl + body);
}

void icmp_send_time_exceeded(struct net_stack *ns, const uint8_t *hdr, size_t len)
{
    if (len < 20)
        return;
    struct ip_info ip = { .src = rd32(hdr + 12), .dst = rd32(hdr + 16), .proto = hdr[9] };
    uint32_t hl = (uint32_t)(hdr[0] & 0xF) * 4;
    if (hl > len || !may_answer(ns, &ip, hdr + hl, len - hl))
        return;
    send_error(ns, ip.src, ICMP_TIME_EXCEEDED, 1, hdr, len);
}
