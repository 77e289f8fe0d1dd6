/*
 * IPv4 reassembly: datagrams in every order and size up to the largest,
 * interleaved datagrams, duplicates, overlaps (RFC 1858 / RFC 3128 attacks),
 * malformed and oversized fragments, the limits, the timeout and its ICMP
 * quote, and the header of the result. Memory goes through a counting
 * allocator, so every test also checks that nothing leaks.
 */
#include "check.h"
#include "../../net/checksum.c"
#include "../../net/ip_reass.c"

#include <stdbool.h>
#include <string.h>

/* Counting allocator: a size prefix per block. */
static size_t live_bytes, live_blocks, peak_bytes;
static long fail_after = -1; /* allocations left before alloc() fails; -1: never */

static void *count_alloc(size_t n)
{
    if (fail_after == 0)
        return NULL;
    if (fail_after > 0)
        fail_after--;
    size_t *p = malloc(sizeof(size_t) + n);
    *p = n;
    live_bytes += n, live_blocks++;
    if (live_bytes > peak_bytes)
        peak_bytes = live_bytes;
    return p + 1;
}

static void count_free(void *q)
{
    if (!q)
        return;
    size_t *p = (size_t *)q - 1;
    live_bytes -= *p, live_blocks--;
    free(p);
}

/* The datagram under test: its key and the first fragment's header options. */
struct dg {
    uint32_t src, dst;
    uint16_t id;
    uint8_t proto;
    uint8_t first_ihl;      /* IHL of the fragment at offset 0 (5 .. 15) */
    uint8_t flags;          /* extra bits of byte 6 (DF) in every fragment */
};

static const struct dg dg_default = { 0x0A000001, 0x0A000002, 0x1234, 17, 5, 0 };

static uint8_t pkt[60 + 65536];

static uint32_t rng_state = 12345;
static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 31 + i * 7 + (i >> 8));
}

/* One fragment of g: payload bytes [off, off + len) of `payload`; returns its length. */
static size_t build(const struct dg *g, const uint8_t *payload, uint32_t off, uint32_t len, bool more, uint8_t ihl)
{
    size_t hlen = ihl * 4u;
    memset(pkt, 0, hlen);
    pkt[0] = (uint8_t)(0x40 | ihl);
    pkt[2] = (uint8_t)((hlen + len) >> 8), pkt[3] = (uint8_t)(hlen + len);
    pkt[4] = (uint8_t)(g->id >> 8), pkt[5] = (uint8_t)g->id;
    uint16_t fo = (uint16_t)(off / 8);
    pkt[6] = (uint8_t)(g->flags | (more ? 0x20 : 0) | fo >> 8), pkt[7] = (uint8_t)fo;
    pkt[8] = 64;
    pkt[9] = g->proto;
    for (int i = 0; i < 4; i++)
        pkt[12 + i] = (uint8_t)(g->src >> (24 - 8 * i)), pkt[16 + i] = (uint8_t)(g->dst >> (24 - 8 * i));
    for (size_t i = 20; i < hlen; i++)
        pkt[i] = (uint8_t)(0xA0 + i); /* options: only the first fragment's must survive */
    memcpy(pkt + hlen, payload + off, len);
    uint16_t sum = csum_finish(csum_add(0, pkt, hlen));
    pkt[10] = (uint8_t)(sum >> 8), pkt[11] = (uint8_t)sum;
    return hlen + len;
}

static uint8_t *send_frag(struct ip_reass *r, const struct dg *g, const uint8_t *payload, uint32_t off, uint32_t len,
                     bool more, uint64_t now, size_t *out_len)
{
    size_t n = build(g, payload, off, len, more, off == 0 ? g->first_ihl : 5);
    return ip_reass_input(r, pkt, n, now, out_len);
}

/* The result is g's first header (normalised) and the whole payload. */
static bool result_ok(const uint8_t *out, size_t out_len, const struct dg *g, const uint8_t *payload, size_t total)
{
    size_t hlen = g->first_ihl * 4u;
    if (!out || out_len != hlen + total || (out[0] & 0xF) != g->first_ihl)
        return false;
    if (reass_be16(out + 2) != out_len || out[6] != g->flags || out[7] != 0)
        return false;
    if (csum_fold(csum_add(0, out, hlen)) != 0xFFFF)
        return false;
    for (size_t i = 20; i < hlen; i++)
        if (out[i] != (uint8_t)(0xA0 + i))
            return false;
    return reass_be16(out + 4) == g->id && out[9] == g->proto && reass_be32(out + 12) == g->src &&
           reass_be32(out + 16) == g->dst && memcmp(out + hlen, payload, total) == 0;
}

/* Fragments of `total` bytes cut at `step`, sent in the order of `order` (NULL: in order). */
static bool reassemble(struct ip_reass *r, const struct dg *g, const uint8_t *payload, uint32_t total, uint32_t step,
                       const unsigned *order)
{
    unsigned n = (total + step - 1) / step;
    uint8_t *out = NULL;
    size_t out_len = 0;
    bool early = false;
    for (unsigned k = 0; k < n; k++) {
        unsigned i = order ? order[k] : k;
        uint32_t off = i * step, len = total - off < step ? total - off : step;
        out = send_frag(r, g, payload, off, len, i + 1 < n, 1000 + k, &out_len);
        if (out && k + 1 < n)
            early = true;
    }
    bool ok = !early && result_ok(out, out_len, g, payload, total);
    count_free(out);
    return ok;
}

static void shuffle(unsigned *order, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        order[i] = i;
    for (unsigned i = n; i > 1; i--) {
        unsigned j = rng() % i, t = order[i - 1];
        order[i - 1] = order[j], order[j] = t;
    }
}

static uint8_t payload[65536], payload2[65536];

struct size_case { uint32_t total, step; };
static const struct size_case sizes[] = {
    { 16, 8 }, { 9, 8 }, { 100, 48 }, { 1480, 1000 }, { 2960, 1480 }, { 4000, 1480 },
    { 8972, 1480 }, { 65515, 1480 }, { 65515, 1032 }, { 512, 8 },
};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static void start(struct ip_reass *r)
{
    fail_after = -1;
    peak_bytes = 0;
    ip_reass_init(r, count_alloc, count_free);
}

static void finish(struct ip_reass *r)
{
    CHECK(r->bytes <= IP_REASS_MAX_BYTES);
    CHECK(live_bytes == r->bytes);
    ip_reass_clear(r);
    CHECK_EQ(live_blocks, 0);
    CHECK_EQ(r->bytes, 0);
}

static struct ip_reass R;

TEST(in_order)
{
    start(&R);
    for (unsigned s = 0; s < NSIZES; s++) {
        fill(payload, sizes[s].total, s);
        CHECK(reassemble(&R, &dg_default, payload, sizes[s].total, sizes[s].step, NULL));
    }
    CHECK_EQ(R.stats.reassembled, NSIZES);
    CHECK_EQ(R.bytes, 0);
    finish(&R);
}

TEST(reverse_order)
{
    unsigned order[IP_REASS_MAX_FRAGS];
    start(&R);
    for (unsigned s = 0; s < NSIZES; s++) {
        unsigned n = (sizes[s].total + sizes[s].step - 1) / sizes[s].step;
        for (unsigned i = 0; i < n; i++)
            order[i] = n - 1 - i;
        fill(payload, sizes[s].total, s + 100);
        CHECK(reassemble(&R, &dg_default, payload, sizes[s].total, sizes[s].step, order));
    }
    CHECK_EQ(R.stats.reassembled, NSIZES);
    finish(&R);
}

TEST(random_order)
{
    unsigned order[IP_REASS_MAX_FRAGS];
    start(&R);
    for (unsigned round = 0; round < 20; round++)
        for (unsigned s = 0; s < NSIZES; s++) {
            shuffle(order, (sizes[s].total + sizes[s].step - 1) / sizes[s].step);
            fill(payload, sizes[s].total, round * 100 + s);
            CHECK(reassemble(&R, &dg_default, payload, sizes[s].total, sizes[s].step, order));
        }
    CHECK_EQ(R.stats.reassembled, 20 * NSIZES);
    CHECK_EQ(R.stats.dropped_bad + R.stats.dropped_overlap + R.stats.dropped_limits, 0);
    finish(&R);
}

TEST(largest_datagrams)
{
    struct dg g = dg_default;
    start(&R);
    fill(payload, 65515, 7);
    /* 64 fragments of 1024 bytes (the last shorter): exactly the fragment limit. */
    CHECK(reassemble(&R, &g, payload, 65515, 1024, NULL));
    /* With 40 bytes of options in the first header the payload can be 65475 bytes. */
    g.first_ihl = 15;
    CHECK(reassemble(&R, &g, payload, 65475, 1480, NULL));
    CHECK_EQ(R.stats.reassembled, 2);
    finish(&R);
}

TEST(interleaved_datagrams)
{
    struct dg g[6];
    for (unsigned i = 0; i < 6; i++)
        g[i] = dg_default;
    g[1].id = 0x1235;            /* another id */
    g[2].src = 0x0A000009;       /* another source, same id */
    g[3].dst = 0x0A000003;       /* another destination */
    g[4].proto = 6;              /* another protocol */
    g[5].first_ihl = 8;
    g[5].id = 7;
    static uint8_t data[6][6000];
    for (unsigned i = 0; i < 6; i++)
        fill(data[i], sizeof data[i], 50 + i);
    start(&R);
    unsigned done = 0;
    /* Round robin over the six, one 1000-byte fragment each, the last fragments first. */
    for (int k = 5; k >= 0; k--)
        for (unsigned i = 0; i < 6; i++) {
            size_t out_len;
            uint8_t *out = send_frag(&R, &g[i], data[i], (uint32_t)k * 1000, 1000, k < 5, 10, &out_len);
            if (out) {
                CHECK_EQ(k, 0);
                CHECK(result_ok(out, out_len, &g[i], data[i], 6000));
                done++;
            }
            count_free(out);
        }
    CHECK_EQ(done, 6);
    finish(&R);
}

TEST(exact_duplicates_are_ignored)
{
    size_t out_len;
    uint8_t *out;
    start(&R);
    fill(payload, 4000, 3);
    /* every fragment twice, the first and the last included, the last one last */
    for (unsigned i = 0; i < 3; i++) {
        CHECK(send_frag(&R, &dg_default, payload, i * 1000, 1000, true, 5, &out_len) == NULL);
        CHECK(send_frag(&R, &dg_default, payload, i * 1000, 1000, true, 6, &out_len) == NULL);
    }
    CHECK_EQ(R.stats.duplicates, 3);
    out = send_frag(&R, &dg_default, payload, 3000, 1000, false, 7, &out_len);
    CHECK(result_ok(out, out_len, &dg_default, payload, 4000));
    count_free(out);
    CHECK_EQ(R.stats.reassembled, 1);
    /* the datagram came out with the last fragment; its duplicate now starts a new one */
    out = send_frag(&R, &dg_default, payload, 3000, 1000, false, 7, &out_len);
    CHECK(out == NULL);
    CHECK_EQ(R.bytes, 1000);
    finish(&R);

    /* Duplicates of the bytes held, cut differently (a fragment across two held ones), are duplicates too. */
    start(&R);
    fill(payload, 48, 4);
    CHECK(send_frag(&R, &dg_default, payload, 0, 16, true, 1, &out_len) == NULL);
    CHECK(send_frag(&R, &dg_default, payload, 16, 16, true, 1, &out_len) == NULL);
    CHECK(send_frag(&R, &dg_default, payload, 8, 16, true, 1, &out_len) == NULL);
    CHECK_EQ(R.stats.duplicates, 1);
    out = send_frag(&R, &dg_default, payload, 32, 16, false, 1, &out_len);
    CHECK(result_ok(out, out_len, &dg_default, payload, 48));
    count_free(out);
    finish(&R);
}

/* Sends [0,a) of payload, then a fragment of `bad` at [off, off+len), then everything: must not come out. */
static void expect_overlap_kills(uint32_t off, uint32_t len, bool more)
{
    size_t out_len;
    start(&R);
    fill(payload, 64, 9);
    memcpy(payload2, payload, 64);
    payload2[off] ^= 0xFF;       /* different data at the first byte of the overlapping fragment */
    CHECK(send_frag(&R, &dg_default, payload, 16, 16, true, 1, &out_len) == NULL);
    CHECK(send_frag(&R, &dg_default, payload2, off, len, more, 1, &out_len) == NULL);
    CHECK_EQ(R.stats.dropped_overlap, 1);
    CHECK_EQ(R.bytes, 0);
    /* The rest of the datagram, even the intact fragments, is discarded until the timeout. */
    for (uint32_t o = 0; o < 64; o += 16)
        CHECK(send_frag(&R, &dg_default, payload, o, 16, o < 48, 2, &out_len) == NULL);
    CHECK_EQ(R.stats.dropped_poisoned, 4);
    CHECK_EQ(R.stats.reassembled, 0);
    CHECK_EQ(ip_reass_expire(&R, IP_REASS_TIMEOUT_NS + 1, NULL, NULL), 0); /* silently */
    /* After that the same key reassembles afresh. */
    for (uint32_t o = 0; o < 64; o += 16) {
        uint8_t *out = send_frag(&R, &dg_default, payload, o, 16, o < 48, IP_REASS_TIMEOUT_NS + 2, &out_len);
        if (o == 48)
            CHECK(result_ok(out, out_len, &dg_default, payload, 64));
        count_free(out);
    }
    finish(&R);
}

TEST(overlaps_discard_the_datagram)
{
    expect_overlap_kills(16, 16, true);   /* same place, different bytes */
    expect_overlap_kills(8, 16, true);    /* overlaps the start */
    expect_overlap_kills(24, 16, true);   /* overlaps the end */
    expect_overlap_kills(8, 32, true);    /* contains the held fragment */
    expect_overlap_kills(16, 8, true);    /* inside it */
    expect_overlap_kills(24, 16, false);  /* a last fragment overlapping */
}

TEST(overlap_with_equal_bytes_and_new_ones_discards)
{
    size_t out_len;
    start(&R);
    fill(payload, 64, 10);
    CHECK(send_frag(&R, &dg_default, payload, 16, 16, true, 1, &out_len) == NULL);
    /* the bytes shared agree, but the fragment also brings [32, 40): still an overlap */
    CHECK(send_frag(&R, &dg_default, payload, 24, 16, true, 1, &out_len) == NULL);
    CHECK_EQ(R.stats.dropped_overlap, 1);
    CHECK_EQ(R.stats.duplicates, 0);
    finish(&R);
}

TEST(tiny_fragment_attacks)
{
    size_t out_len;
    uint8_t *out;
    struct dg tcp = dg_default;
    tcp.proto = 6;
    start(&R);
    /* RFC 1858 tiny fragment: 8 bytes of TCP header, the flags in the next one. Reassembly
       happens before anything looks at TCP, so this is just a datagram. */
    fill(payload, 40, 11);
    CHECK(send_frag(&R, &tcp, payload, 0, 8, true, 1, &out_len) == NULL);
    out = send_frag(&R, &tcp, payload, 8, 32, false, 1, &out_len);
    CHECK(result_ok(out, out_len, &tcp, payload, 40));
    count_free(out);
    /* RFC 3128: a fragment at offset 8 (FO=1) rewriting the header's flags is an overlap. */
    tcp.id++;
    memcpy(payload2, payload, 40);
    payload2[13] = 0x02;         /* SYN where the first fragment had something else */
    payload[13] = 0x10;
    CHECK(send_frag(&R, &tcp, payload, 0, 24, true, 1, &out_len) == NULL);
    CHECK(send_frag(&R, &tcp, payload2, 8, 32, false, 1, &out_len) == NULL);
    CHECK_EQ(R.stats.dropped_overlap, 1);
    finish(&R);
}

TEST(fragment_count_limit)
{
    size_t out_len;
    start(&R);
    fill(payload, 65 * 8, 12);
    /* 65 tiny fragments: the 65th discards the datagram instead of growing it */
    for (uint32_t i = 0; i < 64; i++)
        CHECK(send_frag(&R, &dg_default, payload, i * 8, 8, true, 1, &out_len) == NULL);
    CHECK_EQ(R.dgrams[0].nfrags, 64);
    CHECK(send_frag(&R, &dg_default, payload, 64 * 8, 8, false, 1, &out_len) == NULL);
    CHECK_EQ(R.stats.dropped_limits, 1);
    CHECK_EQ(R.bytes, 0);
    CHECK(R.dgrams[0].poisoned);
    finish(&R);
}

TEST(malformed_fragments_are_dropped_alone)
{
    size_t out_len, n;
    start(&R);
    fill(payload, 4000, 13);
    CHECK(send_frag(&R, &dg_default, payload, 0, 1000, true, 1, &out_len) == NULL);
    uint64_t bad = R.stats.dropped_bad;
    /* not a multiple of 8, not the last */
    CHECK(send_frag(&R, &dg_default, payload, 1000, 999, true, 1, &out_len) == NULL);
    /* empty, last or not */
    CHECK(send_frag(&R, &dg_default, payload, 1000, 0, true, 1, &out_len) == NULL);
    CHECK(send_frag(&R, &dg_default, payload, 4000, 0, false, 1, &out_len) == NULL);
    /* not a fragment at all */
    CHECK(send_frag(&R, &dg_default, payload, 0, 1000, false, 1, &out_len) == NULL);
    /* lengths that lie: total length beyond the buffer, below the header, IHL < 5, not IPv4 */
    n = build(&dg_default, payload, 1000, 1000, true, 5);
    CHECK(ip_reass_input(&R, pkt, n - 1, 1, &out_len) == NULL);
    pkt[2] = 0, pkt[3] = 19;
    CHECK(ip_reass_input(&R, pkt, n, 1, &out_len) == NULL);
    n = build(&dg_default, payload, 1000, 1000, true, 5);
    pkt[0] = 0x44;
    CHECK(ip_reass_input(&R, pkt, n, 1, &out_len) == NULL);
    pkt[0] = 0x65;
    CHECK(ip_reass_input(&R, pkt, n, 1, &out_len) == NULL);
    n = build(&dg_default, payload, 1000, 1000, true, 15);
    CHECK(ip_reass_input(&R, pkt, 59, 1, &out_len) == NULL);
    CHECK(ip_reass_input(&R, pkt, 0, 1, &out_len) == NULL);
    CHECK(ip_reass_input(&R, NULL, 0, 1, &out_len) == NULL);
    CHECK_EQ(R.stats.dropped_bad - bad, 11);
    /* none of them touched the datagram: it still completes */
    CHECK(send_frag(&R, &dg_default, payload, 2000, 1000, true, 1, &out_len) == NULL);
    CHECK(send_frag(&R, &dg_default, payload, 3000, 1000, false, 1, &out_len) == NULL);
    uint8_t *out = send_frag(&R, &dg_default, payload, 1000, 1000, true, 1, &out_len);
    CHECK(result_ok(out, out_len, &dg_default, payload, 4000));
    count_free(out);
    finish(&R);
}

TEST(ping_of_death)
{
    size_t out_len;
    start(&R);
    fill(payload, 65536, 14);
    /* offset 65528 (the largest) plus 8 bytes: past 65535 - 20 */
    CHECK(send_frag(&R, &dg_default, payload, 65528, 8, false, 1, &out_len) == NULL);
    CHECK(send_frag(&R, &dg_default, payload, 65512, 8, false, 1, &out_len) == NULL);
    CHECK_EQ(R.stats.dropped_bad, 2);
    CHECK_EQ(R.bytes, 0);
    /* ending at exactly 65515 is allowed */
    CHECK(send_frag(&R, &dg_default, payload, 65512, 3, false, 1, &out_len) == NULL);
    CHECK_EQ(R.bytes, 3);
    /* ...unless the first fragment's header is longer: 60 + 65515 > 65535 */
    struct dg g = dg_default;
    g.first_ihl = 15;
    CHECK(send_frag(&R, &g, payload, 0, 1480, true, 1, &out_len) == NULL);
    CHECK_EQ(R.stats.dropped_bad, 3);
    CHECK_EQ(R.bytes, 0);
    /* and the other way round: first fragment with options, then a fragment too far for them */
    g.id++;
    CHECK(send_frag(&R, &g, payload, 0, 1480, true, 1, &out_len) == NULL);
    CHECK(send_frag(&R, &g, payload, 65504, 8, true, 1, &out_len) == NULL);
    CHECK_EQ(R.stats.dropped_bad, 4);
    finish(&R);
}

TEST(inconsistent_ends_discard_the_datagram)
{
    size_t out_len;
    fill(payload, 4000, 15);
    /* a second last fragment with a different end */
    start(&R);
    CHECK(send_frag(&R, &dg_default, payload, 3000, 1000, false, 1, &out_len) == NULL);
    CHECK(send_frag(&R, &dg_default, payload, 2000, 1000, false, 1, &out_len) == NULL);
    CHECK_EQ(R.stats.dropped_bad, 1);
    CHECK(R.dgrams[0].poisoned);
    finish(&R);
    /* data beyond a known end */
    start(&R);
    CHECK(send_frag(&R, &dg_default, payload, 2000, 1000, false, 1, &out_len) == NULL);
    CHECK(send_frag(&R, &dg_default, payload, 3000, 8, true, 1, &out_len) == NULL);
    CHECK_EQ(R.stats.dropped_bad, 1);
    finish(&R);
    /* a last fragment ending before data held */
    start(&R);
    CHECK(send_frag(&R, &dg_default, payload, 3000, 1000, true, 1, &out_len) == NULL);
    CHECK(send_frag(&R, &dg_default, payload, 1000, 1000, false, 1, &out_len) == NULL);
    CHECK_EQ(R.stats.dropped_bad, 1);
    finish(&R);
    /* the same last fragment twice is only a duplicate */
    start(&R);
    CHECK(send_frag(&R, &dg_default, payload, 3000, 1000, false, 1, &out_len) == NULL);
    CHECK(send_frag(&R, &dg_default, payload, 3000, 1000, false, 1, &out_len) == NULL);
    CHECK_EQ(R.stats.dropped_bad, 0);
    CHECK_EQ(R.stats.duplicates, 1);
    finish(&R);
}

TEST(seventeen_datagrams_evict_the_oldest)
{
    size_t out_len;
    struct dg g = dg_default;
    start(&R);
    fill(payload, 2000, 16);
    for (unsigned i = 0; i < 17; i++) {
        g.id = (uint16_t)i;
        CHECK(send_frag(&R, &g, payload, 0, 1000, true, 100 + i, &out_len) == NULL);
    }
    CHECK_EQ(R.stats.dropped_limits, 1);
    /* the oldest (id 0) is gone; its last fragment starts a new datagram, evicting id 1 */
    g.id = 0;
    CHECK(send_frag(&R, &g, payload, 1000, 1000, false, 200, &out_len) == NULL);
    CHECK_EQ(R.stats.dropped_limits, 2);
    for (unsigned i = 2; i < 17; i++) {
        g.id = (uint16_t)i;
        uint8_t *out = send_frag(&R, &g, payload, 1000, 1000, false, 201, &out_len);
        CHECK(result_ok(out, out_len, &g, payload, 2000));
        count_free(out);
    }
    CHECK_EQ(R.stats.reassembled, 15);
    finish(&R);

    /* A poisoned datagram holds only a slot and goes first, even when younger. */
    start(&R);
    fill(payload2, 1000, 99);
    for (unsigned i = 0; i < 16; i++) {
        g.id = (uint16_t)i;
        CHECK(send_frag(&R, &g, payload, 0, 1000, true, 100 + i, &out_len) == NULL);
    }
    g.id = 9;
    CHECK(send_frag(&R, &g, payload2, 0, 1000, true, 300, &out_len) == NULL); /* different bytes */
    CHECK_EQ(R.stats.dropped_overlap, 1);
    g.id = 100;
    CHECK(send_frag(&R, &g, payload, 0, 1000, true, 301, &out_len) == NULL);
    CHECK_EQ(R.stats.dropped_limits, 0);
    g.id = 0;
    uint8_t *out = send_frag(&R, &g, payload, 1000, 1000, false, 302, &out_len);
    CHECK(result_ok(out, out_len, &g, payload, 2000));
    count_free(out);
    finish(&R);
}

TEST(byte_limit_evicts_the_oldest)
{
    size_t out_len;
    struct dg g = dg_default;
    start(&R);
    fill(payload, 65515, 17);
    /* Datagrams holding 64000 bytes each: the fifth would pass 256 KiB. */
    for (unsigned i = 0; i < 5; i++) {
        g.id = (uint16_t)i;
        for (uint32_t off = 0; off < 64000; off += 1600)
            CHECK(send_frag(&R, &g, payload, off, 1600, true, 10 + i, &out_len) == NULL);
        CHECK(R.bytes <= IP_REASS_MAX_BYTES);
        CHECK(live_bytes <= IP_REASS_MAX_BYTES);
    }
    CHECK_EQ(R.stats.dropped_limits, 1);
    CHECK_EQ(R.bytes, 4 * 64000);
    /* the survivors complete; the evicted one (id 0) does not */
    for (unsigned i = 0; i < 5; i++) {
        g.id = (uint16_t)i;
        uint8_t *out = send_frag(&R, &g, payload, 64000, 1515, false, 20, &out_len);
        CHECK(i == 0 ? out == NULL : result_ok(out, out_len, &g, payload, 65515));
        count_free(out);
    }
    CHECK(peak_bytes <= IP_REASS_MAX_BYTES + 65535);
    finish(&R);
}

static uint8_t quoted[80];
static size_t quoted_len;
static unsigned quote_calls;

static void on_timeout(void *ctx, const uint8_t *hdr, size_t len)
{
    CHECK(ctx == &quote_calls);
    CHECK(len <= sizeof quoted);
    memcpy(quoted, hdr, len);
    quoted_len = len;
    quote_calls++;
}

TEST(timeout_quotes_the_first_fragment)
{
    size_t out_len;
    struct dg g = dg_default;
    g.first_ihl = 7;
    start(&R);
    fill(payload, 3000, 18);
    fill(payload2, 3000, 81);
    uint64_t t0 = 5000000000ULL;
    CHECK(send_frag(&R, &g, payload, 1000, 1000, true, t0, &out_len) == NULL); /* timer starts here */
    size_t n = build(&g, payload, 0, 1000, true, 7);
    uint8_t first[28 + 8];
    memcpy(first, pkt, sizeof first);
    CHECK(ip_reass_input(&R, pkt, n, t0 + 10, &out_len) == NULL);
    struct dg h = dg_default;
    h.id = 99;                   /* no first fragment: times out without a quote */
    CHECK(send_frag(&R, &h, payload, 1000, 1000, true, t0, &out_len) == NULL);
    h.id = 98;                   /* poisoned: forgotten silently */
    CHECK(send_frag(&R, &h, payload, 0, 1000, true, t0, &out_len) == NULL);
    CHECK(send_frag(&R, &h, payload2, 0, 1000, true, t0, &out_len) == NULL);
    h.id = 97;                   /* younger: stays */
    CHECK(send_frag(&R, &h, payload, 0, 1000, true, t0 + 1000, &out_len) == NULL);

    CHECK_EQ(ip_reass_expire(&R, t0 + IP_REASS_TIMEOUT_NS - 1, on_timeout, &quote_calls), 0);
    CHECK_EQ(ip_reass_expire(&R, 0, on_timeout, &quote_calls), 0); /* a clock gone backwards */
    CHECK_EQ(ip_reass_expire(&R, t0 + IP_REASS_TIMEOUT_NS, on_timeout, &quote_calls), 2);
    CHECK_EQ(quote_calls, 1);
    CHECK_EQ(quoted_len, 36);
    CHECK(memcmp(quoted, first, 36) == 0);
    CHECK_EQ(R.stats.timeouts, 2);
    CHECK_EQ(R.bytes, 1000);
    CHECK_EQ(ip_reass_expire(&R, t0 + 2 * IP_REASS_TIMEOUT_NS, NULL, NULL), 1);
    CHECK_EQ(R.bytes, 0);
    /* the timer is not refreshed by later fragments */
    CHECK(send_frag(&R, &g, payload, 1000, 1000, true, t0, &out_len) == NULL);
    CHECK(send_frag(&R, &g, payload, 2000, 1000, false, t0 + IP_REASS_TIMEOUT_NS - 1, &out_len) == NULL);
    CHECK_EQ(ip_reass_expire(&R, t0 + IP_REASS_TIMEOUT_NS, on_timeout, &quote_calls), 1);
    CHECK_EQ(quote_calls, 1);
    finish(&R);
}

TEST(output_header)
{
    size_t out_len;
    struct dg g = dg_default;
    g.first_ihl = 9;             /* 16 bytes of options, only in the first fragment */
    g.flags = 0x40;              /* DF survives, MF and the offset go */
    start(&R);
    fill(payload, 3000, 19);
    CHECK(send_frag(&R, &g, payload, 1480, 1480, true, 1, &out_len) == NULL);
    CHECK(send_frag(&R, &g, payload, 2960, 40, false, 1, &out_len) == NULL);
    uint8_t *out = send_frag(&R, &g, payload, 0, 1480, true, 1, &out_len);
    CHECK(result_ok(out, out_len, &g, payload, 3000));
    CHECK_EQ(out_len, 36 + 3000);
    CHECK_EQ(out[8], 64);        /* TTL as in the first fragment */
    count_free(out);
    finish(&R);
}

TEST(allocation_failures_leak_nothing)
{
    size_t out_len;
    start(&R);
    fill(payload, 3000, 20);
    fail_after = 0;              /* a fragment that cannot be copied is lost, and holds no slot */
    CHECK(send_frag(&R, &dg_default, payload, 0, 1000, true, 1, &out_len) == NULL);
    CHECK_EQ(R.stats.dropped_nomem, 1);
    CHECK(!R.dgrams[0].used);
    fail_after = 3;              /* three fragments held, then no memory for the result */
    CHECK(send_frag(&R, &dg_default, payload, 0, 1000, true, 1, &out_len) == NULL);
    CHECK(send_frag(&R, &dg_default, payload, 1000, 1000, true, 1, &out_len) == NULL);
    CHECK(send_frag(&R, &dg_default, payload, 2000, 1000, false, 1, &out_len) == NULL);
    CHECK_EQ(R.stats.dropped_nomem, 2);
    CHECK_EQ(R.bytes, 0);
    CHECK_EQ(live_blocks, 0);
    finish(&R);
}

TEST(clear_frees_everything)
{
    size_t out_len;
    struct dg g = dg_default;
    start(&R);
    fill(payload, 8000, 21);
    for (unsigned i = 0; i < 10; i++) {
        g.id = (uint16_t)i;
        for (uint32_t off = 0; off < 8000; off += 1600)
            send_frag(&R, &g, payload, off, 1600, true, 1, &out_len);
    }
    CHECK(live_blocks > 0);
    finish(&R);
}

TEST_MAIN()
