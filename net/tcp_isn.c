/*
 * Initial sequence numbers (RFC 6528): ISN = M + F(4-tuple, secret),
 * M a clock ticking every 4 µs (RFC 9293 §3.4.1), F SipHash-2-4 keyed
 * with bytes from the environment at tcp_init. An off-path attacker who
 * cannot guess the key cannot predict another flow's ISN, and a reused
 * 4-tuple still sees ISNs move forward with time.
 */
#include "tcp_impl.h"

static inline uint64_t rotl(uint64_t x, unsigned b) { return (x << b) | (x >> (64 - b)); }

static inline uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

struct sip { uint64_t v0, v1, v2, v3; };

static void sip_round(struct sip *s)
{
    s->v0 += s->v1; s->v1 = rotl(s->v1, 13); s->v1 ^= s->v0; s->v0 = rotl(s->v0, 32);
    s->v2 += s->v3; s->v3 = rotl(s->v3, 16); s->v3 ^= s->v2;
    s->v0 += s->v3; s->v3 = rotl(s->v3, 21); s->v3 ^= s->v0;
    s->v2 += s->v1; s->v1 = rotl(s->v1, 17); s->v1 ^= s->v2; s->v2 = rotl(s->v2, 32);
}

static void sip_block(struct sip *s, uint64_t m)
{
    s->v3 ^= m;
    sip_round(s);
    sip_round(s);
    s->v0 ^= m;
}

/* SipHash-2-4 (Aumasson and Bernstein, 2012). */
uint64_t tcp_siphash(const uint8_t key[16], const uint8_t *in, size_t n)
{
    uint64_t k0 = le64(key), k1 = le64(key + 8);
    struct sip s = { k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL, k0 ^ 0x6c7967656e657261ULL,
                     k1 ^ 0x7465646279746573ULL };
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        sip_block(&s, le64(in + i));
    uint64_t last = (uint64_t)(n & 0xff) << 56;
    for (size_t j = 0; i + j < n; j++)
        last |= (uint64_t)in[i + j] << (8 * j);
    sip_block(&s, last);
    s.v2 ^= 0xff;
    for (int r = 0; r < 4; r++)
        sip_round(&s);
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

uint32_t tcp_isn(const struct tcp_stack *ts, uint32_t lip, uint16_t lport, uint32_t rip, uint16_t rport,
                 uint64_t now_ns)
{
    uint8_t t[12];
    wr32(t, lip);
    wr32(t + 4, rip);
    wr16(t + 8, lport);
    wr16(t + 10, rport);
    return (uint32_t)tcp_siphash(ts->key, t, sizeof t) + (uint32_t)(now_ns / 4000);
}

/*
 * SYN cookies (Bernstein's scheme): when a listener's SYN backlog is full,
 * the SYN,ACK's ISN carries what we would otherwise keep. Its low 3 bits
 * index the MSS table; the other 29 are a keyed hash of the 4-tuple, the
 * peer's ISN (so a cookie answers one SYN only), a 64 s time slot and the
 * index. The final ACK proves the peer saw our SYN,ACK: ack - 1 must hash
 * the same in the current or the previous slot. The hash input is longer
 * than the ISN's and carries a tag, so the two never share a value.
 */
#define COOKIE_SLOT_NS (TCP_COOKIE_LIFE_NS / 2)    /* 64 s */

/* Sorted; the largest entry not above the peer's (clamped) MSS is sent. */
static const uint16_t cookie_mss[8] = { 64, 536, 1024, 1220, 1300, 1400, 1440, 1460 };

static uint32_t cookie_hash(const struct tcp_stack *ts, const struct tcp_cookie_flow *f, uint64_t slot, unsigned idx)
{
    uint8_t t[22];
    wr32(t, f->lip);
    wr32(t + 4, f->rip);
    wr16(t + 8, f->lport);
    wr16(t + 10, f->rport);
    wr32(t + 12, f->irs);
    wr32(t + 16, (uint32_t)slot);
    t[20] = (uint8_t)idx;
    t[21] = 'C';                  /* domain separator from tcp_isn() and the table hash */
    return (uint32_t)tcp_siphash(ts->key, t, sizeof t) & ~7u;
}

uint32_t tcp_cookie_make(const struct tcp_stack *ts, const struct tcp_cookie_flow *f, uint16_t mss, uint64_t now_ns)
{
    unsigned idx = 7;
    while (idx && cookie_mss[idx] > mss)
        idx--;
    return cookie_hash(ts, f, now_ns / COOKIE_SLOT_NS, idx) | idx;
}

uint16_t tcp_cookie_check(const struct tcp_stack *ts, const struct tcp_cookie_flow *f, uint32_t cookie,
                          uint64_t now_ns)
{
    unsigned idx = cookie & 7;
    uint64_t slot = now_ns / COOKIE_SLOT_NS;
    for (uint64_t age = 0; age < 2 && age <= slot; age++)
        if (cookie_hash(ts, f, slot - age, idx) == (cookie & ~7u))
            return cookie_mss[idx];
    return 0;
}

/*
 * What else a cookie SYN,ACK offered (Linux's scheme): when the SYN offered timestamps, the low
 * TCP_COOKIE_TS_BITS bits of the SYN,ACK's TSval (before the connection's offset) carry the peer's
 * window scale (4 bits, 15 for none), SACK-permitted and ECN, and the final ACK's TSecr brings them
 * back. The bits are not in the cookie's hash: only the peer's own connection depends on them, and
 * they are read only once the cookie has checked out. The rest of the TSval is the clock, moved back
 * a step when the bits would put it ahead: the connection's later TSvals come from the clock itself,
 * so they never go backwards from the SYN,ACK's (the peer's PAWS sees time move forward).
 */
#define COOKIE_TS_WSCALE_NONE 15u
#define COOKIE_TS_SACK        (1u << 4)
#define COOKIE_TS_ECN         (1u << 5)
#define COOKIE_TS_MASK        ((1u << TCP_COOKIE_TS_BITS) - 1)

uint32_t tcp_cookie_ts_encode(uint32_t now_ms, const struct tcp_cookie_opts *o)
{
    uint32_t bits = o->wscale_ok ? o->wscale : COOKIE_TS_WSCALE_NONE;
    bits |= (o->sack_ok ? COOKIE_TS_SACK : 0) | (o->ecn_ok ? COOKIE_TS_ECN : 0);
    uint32_t ts = (now_ms & ~COOKIE_TS_MASK) | bits;
    return seq_gt(ts, now_ms) ? ts - (COOKIE_TS_MASK + 1) : ts;
}

bool tcp_cookie_ts_decode(uint32_t echo_ms, uint32_t now_ms, struct tcp_cookie_opts *o)
{
    /* An echo from the future, or older than any cookie we would still take (plus the step back), is
       not our SYN,ACK's TSval: its bits would be noise. */
    uint32_t age = now_ms - echo_ms;
    if ((int32_t)age < 0 || age > TCP_COOKIE_LIFE_NS / 1000000 + COOKIE_TS_MASK + 1)
        return false;
    uint32_t ws = echo_ms & 15u;
    o->wscale_ok = ws != COOKIE_TS_WSCALE_NONE;
    o->wscale = o->wscale_ok ? (uint8_t)ws : 0;
    o->sack_ok = echo_ms & COOKIE_TS_SACK;
    o->ecn_ok = echo_ms & COOKIE_TS_ECN;
    return true;
}

uint32_t tcp_ts_offset(const struct tcp_stack *ts, uint32_t lip, uint16_t lport, uint32_t rip, uint16_t rport)
{
    uint8_t t[13];
    wr32(t, lip);
    wr32(t + 4, rip);
    wr16(t + 8, lport);
    wr16(t + 10, rport);
    t[12] = 'T';                  /* domain separator from the ISN, cookie and table hashes */
    return (uint32_t)tcp_siphash(ts->key, t, sizeof t);
}
