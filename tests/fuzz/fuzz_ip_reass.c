/*
 * IPv4 reassembly under a hostile sender. The input is a script: fragments
 * (header fields, offsets and lengths from a few bytes each, over 24 datagram
 * keys so that fragments collide and the table fills), runs of consecutive
 * fragments, floods of large fragments, clock steps, expiries, allocation
 * failures and clears. Checked at every step: each datagram returned has a
 * valid header checksum, the first fragment's options, MF and offset clear
 * and a total length equal to its length; the memory the reassembler holds
 * (counted by its allocator) never exceeds IP_REASS_MAX_BYTES, nor by more
 * than one datagram while it assembles one; nothing leaks.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../net/checksum.c"
#include "../../net/ip_reass.c"

static size_t live_bytes, live_blocks, peak_bytes;
static unsigned fail_in;     /* the fail_in-th allocation from now fails; 0: none */

static void *fz_alloc(size_t n)
{
    if (fail_in && --fail_in == 0)
        return NULL;
    size_t *p = malloc(sizeof(size_t) + n);
    if (!p)
        abort();
    *p = n;
    live_bytes += n, live_blocks++;
    if (live_bytes > peak_bytes)
        peak_bytes = live_bytes;
    return p + 1;
}

static void fz_free(void *q)
{
    size_t *p = (size_t *)q - 1;
    live_bytes -= *p, live_blocks--;
    free(p);
}

/* Input reader: zeros once the bytes run out. */
struct in { const uint8_t *p; size_t n; };
static uint8_t take(struct in *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}
static uint16_t take16(struct in *in) { return (uint16_t)(take(in) << 8 | take(in)); }

/*
 * Payload bytes: a fixed pattern, entered at a point set by key and variant, so every
 * fragment of a key agrees with the others unless their variants differ.
 */
static uint8_t pattern[4096 + 2 * 65536]; /* offsets and lengths up to 65535 each */

static const uint8_t *content(unsigned key, uint32_t off, uint8_t variant)
{
    if (!pattern[1])
        for (size_t i = 0; i < sizeof pattern; i++)
            pattern[i] = (uint8_t)(i * 13 + (i >> 9) + 1);
    return pattern + (key * 37u + variant * 11u) % 4096u + off;
}

static void check_datagram(const uint8_t *out, size_t len)
{
    if (len < 20 || len > 65535 || out[0] >> 4 != 4)
        abort();
    size_t hlen = (out[0] & 0xFu) * 4u;
    if (hlen < 20 || hlen > len || reass_be16(out + 2) != len)
        abort();
    if ((out[6] & 0x3F) || out[7])
        abort();                 /* MF or an offset left */
    for (size_t i = 20; i < hlen; i++)
        if (out[i] != (uint8_t)i)
            abort();             /* options are (uint8_t)i in every fragment built */
    if (csum_fold(csum_add(0, out, hlen)) != 0xFFFF)
        abort();
}

/* Fragment sizes per key: grids make fragments that fit together, so datagrams complete. */
static const uint32_t grids[4] = { 8, 64, 1480, 8192 };
#define KEYS 24              /* more than IP_REASS_MAX_DATAGRAMS, so the table fills */

/* What the script says about one fragment. */
struct spec {
    unsigned key;
    uint8_t ihl, variant;
    bool more, df, tcp, pad, truncate, lie;
    uint32_t off, len;
};

/* sel: padding, truncation, lying total length, DF, protocol. shape: MF, layout, options, variant. */
static struct spec spec_parse(struct in *in)
{
    uint8_t sel = take(in), shape = take(in);
    struct spec s = {
        .key = take(in) % KEYS,
        .more = shape & 1,
        .pad = sel & 0x10,
        .truncate = (sel & 0x09) == 0x09,
        .lie = (sel & 0x21) == 0x21,
        .df = sel & 0x40,
        .tcp = sel & 0x80,
    };
    s.ihl = (shape & 8) ? (uint8_t)(5 + (take(in) % 11)) : 5;
    uint32_t grid = grids[s.key & 3];
    switch (shape >> 1 & 3) {
    case 0:                  /* the key's grid, a short last fragment */
    case 1:
        s.off = take(in) % 80u * grid; /* past 64 fragments, past 65535 */
        s.len = s.more ? grid : take(in) % grid + 1;
        break;
    case 2:                  /* small, any 8-byte offset, any length */
        s.off = take(in) % 64u * 8;
        s.len = take(in) % 64u * ((shape & 0x40) ? 1 : 8);
        break;
    default:                 /* anything the fields can say */
        s.off = (take16(in) & 0x1FFFu) * 8;
        s.len = take16(in);
        break;
    }
    s.variant = (shape & 0x80) ? take(in) : 0;
    s.off &= 0xFFF8;         /* what 13 bits of 8-byte units can say */
    if (s.len > 65535 - s.ihl * 4u)
        s.len = 65535 - s.ihl * 4u;
    return s;
}

/* Builds the fragment into pkt; returns the bytes available at it. */
static size_t spec_build(const struct spec *s, struct in *in, uint8_t *pkt)
{
    size_t hlen = s->ihl * 4u, total = hlen + s->len;
    size_t ip_len = total + (s->pad ? take(in) % 8u : 0); /* link-layer padding */
    memset(pkt, 0, hlen);
    pkt[0] = (uint8_t)(0x40 | s->ihl);
    uint16_t tot = s->lie ? take16(in) : (uint16_t)total;
    pkt[2] = (uint8_t)(tot >> 8), pkt[3] = (uint8_t)tot;
    pkt[4] = 0x12, pkt[5] = (uint8_t)(s->key / 3);
    pkt[6] = (uint8_t)((s->more ? 0x20 : 0) | (s->df ? 0x40 : 0) | s->off / 8 >> 8);
    pkt[7] = (uint8_t)(s->off / 8);
    pkt[8] = 64;
    pkt[9] = s->tcp ? 6 : 17;
    pkt[12] = 10, pkt[15] = (uint8_t)(1 + s->key % 3);
    pkt[16] = 10, pkt[19] = 2;
    for (size_t i = 20; i < hlen; i++)
        pkt[i] = (uint8_t)i;
    memcpy(pkt + hlen, content(s->key, s->off, s->variant), s->len);
    memset(pkt + total, 0xEE, ip_len - total);
    uint16_t sum = csum_finish(csum_add(0, pkt, hlen));
    pkt[10] = (uint8_t)(sum >> 8), pkt[11] = (uint8_t)sum;
    return s->truncate ? take16(in) % (ip_len + 1) : ip_len;
}

/* Passes one fragment as an exact-size copy, so reading past it is caught, and checks the result. */
static void spec_send(struct ip_reass *r, const struct spec *s, struct in *in, uint64_t now)
{
    static uint8_t pkt[60 + 65535 + 8];
    size_t ip_len = spec_build(s, in, pkt);
    uint8_t *copy = malloc(ip_len ? ip_len : 1);
    memcpy(copy, pkt, ip_len);
    size_t out_len = 1;
    peak_bytes = live_bytes;
    uint8_t *out = ip_reass_input(r, copy, ip_len, now, &out_len);
    free(copy);
    if (peak_bytes > (size_t)IP_REASS_MAX_BYTES + 65535)
        abort();                 /* held data plus one datagram being assembled, at most */
    if (out) {
        check_datagram(out, out_len);
        fz_free(out);
    } else if (out_len != 0) {
        abort();
    }
}

/* A run of consecutive fragments of one datagram: reaches the byte and fragment-count limits quickly. */
static void spec_burst(struct ip_reass *r, struct in *in, uint64_t now)
{
    struct spec s = spec_parse(in);
    unsigned n = take(in) % 80u + 1;
    uint32_t step = s.len & ~7u;
    for (unsigned i = 0; i < n && s.off + step <= 0xFFF8; i++, s.off += step)
        spec_send(r, &s, in, now);
}

/* Large incomplete datagrams from several sources: the byte limit, which random scripts seldom reach. */
static void spec_flood(struct ip_reass *r, struct in *in, uint64_t now)
{
    unsigned base = take(in), count = take(in) % 4u + 3;
    for (unsigned k = 0; k < count; k++) {
        /* the largest non-last fragment: 65512 + 20 bytes */
        struct spec s = { .key = (base + k) % KEYS, .ihl = 5, .more = true, .len = 65512 };
        spec_send(r, &s, in, now);
    }
}

static void on_timeout(void *ctx, const uint8_t *hdr, size_t len)
{
    (void)ctx;
    size_t hlen = (hdr[0] & 0xFu) * 4u;
    if (hdr[0] >> 4 != 4 || hlen < 20 || len != hlen + 8 || !(hdr[6] & 0x20) || (hdr[6] & 0x1F) || hdr[7])
        abort();                 /* not the first fragment's header and 8 bytes */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct ip_reass r;
    struct in in = { data, size };
    uint64_t now = 1000;
    fail_in = 0;
    ip_reass_init(&r, fz_alloc, fz_free);
    while (in.n) {
        uint8_t op = take(&in);
        switch (op % 16) {
        case 10: spec_flood(&r, &in, now); break;
        case 11: spec_burst(&r, &in, now); break;
        case 12: now += (uint64_t)take(&in) * 250000000ULL; break; /* up to 64 s */
        case 13: ip_reass_expire(&r, now, on_timeout, NULL); break;
        case 14: fail_in = take(&in) % 4u; break;
        case 15: ip_reass_clear(&r); break;
        default: {
            struct spec s = spec_parse(&in);
            spec_send(&r, &s, &in, now);
            break;
        }
        }
        if (live_bytes > IP_REASS_MAX_BYTES || live_bytes != r.bytes)
            abort();
    }
    ip_reass_clear(&r);
    if (live_bytes || live_blocks)
        abort();
    return 0;
}
