/*
 * Toeplitz hash against the verification vectors of Microsoft's RSS
 * specification (the key and IPv4 results published there), and frame
 * classification: which frames hash by 4-tuple, which by address pair.
 */
#include "check.h"
#include "../../net/toeplitz.c"

#include <stdbool.h>
#include <string.h>

static const uint8_t ms_key[40] = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};

struct vector { uint8_t src[4], dst[4]; uint16_t sport, dport; uint32_t ip_only, with_ports; };

static const struct vector vectors[] = {
    { { 66, 9, 149, 187 }, { 161, 142, 100, 80 }, 2794, 1766, 0x323e8fc2, 0x51ccc178 },
    { { 199, 92, 111, 2 }, { 65, 69, 140, 83 }, 14230, 4739, 0xd718262a, 0xc626b0ea },
    { { 24, 19, 198, 95 }, { 12, 22, 207, 184 }, 12898, 38024, 0xd2d0a5de, 0x5c2b394a },
    { { 38, 27, 205, 30 }, { 209, 142, 163, 6 }, 48228, 2217, 0x82989176, 0xafc7327f },
    { { 153, 39, 163, 191 }, { 202, 188, 127, 2 }, 44251, 1303, 0x5d1809c5, 0x10e828a2 },
};

static uint32_t hash_of(const struct vector *v, bool ports)
{
    uint8_t in[12];
    memcpy(in, v->src, 4);
    memcpy(in + 4, v->dst, 4);
    in[8] = (uint8_t)(v->sport >> 8), in[9] = (uint8_t)v->sport;
    in[10] = (uint8_t)(v->dport >> 8), in[11] = (uint8_t)v->dport;
    return toeplitz_hash(ms_key, sizeof ms_key, in, ports ? 12 : 8);
}

TEST(microsoft_vectors)
{
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        CHECK_EQ(hash_of(&vectors[i], false), vectors[i].ip_only);
        CHECK_EQ(hash_of(&vectors[i], true), vectors[i].with_ports);
    }
}

static size_t udp_frame(uint8_t *f, uint8_t proto, uint16_t frag, uint8_t ihl_words)
{
    memset(f, 0, 128);
    f[12] = 0x08, f[13] = 0x00;
    uint8_t *ip = f + 14;
    ip[0] = (uint8_t)(0x40 | ihl_words);
    ip[6] = (uint8_t)(frag >> 8), ip[7] = (uint8_t)frag;
    ip[9] = proto;
    memcpy(ip + 12, (uint8_t[]){ 10, 0, 0, 1 }, 4);
    memcpy(ip + 16, (uint8_t[]){ 10, 0, 0, 2 }, 4);
    uint8_t *l4 = ip + ihl_words * 4;
    l4[0] = 0x30, l4[1] = 0x39, l4[2] = 0x00, l4[3] = 0x07;
    return (size_t)(l4 - f) + 8;
}

TEST(frame_classification)
{
    uint8_t f[128];
    uint32_t h;
    uint8_t src[4] = { 10, 0, 0, 1 }, dst[4] = { 10, 0, 0, 2 }, ports[4] = { 0x30, 0x39, 0x00, 0x07 };
    size_t n = udp_frame(f, 17, 0, 5);
    CHECK(flow_hash_frame(f, (uint32_t)n, &h) && h == flow_hash_ipv4(src, dst, ports));
    n = udp_frame(f, 6, 0, 7); /* options: ports after them */
    CHECK(flow_hash_frame(f, (uint32_t)n, &h) && h == flow_hash_ipv4(src, dst, ports));
    n = udp_frame(f, 1, 0, 5); /* ICMP: address pair */
    CHECK(flow_hash_frame(f, (uint32_t)n, &h) && h == flow_hash_ipv4(src, dst, 0));
    n = udp_frame(f, 17, 0x2000, 5); /* first fragment (MF): pair, so all fragments meet */
    CHECK(flow_hash_frame(f, (uint32_t)n, &h) && h == flow_hash_ipv4(src, dst, 0));
    n = udp_frame(f, 17, 0x0010, 5); /* later fragment */
    CHECK(flow_hash_frame(f, (uint32_t)n, &h) && h == flow_hash_ipv4(src, dst, 0));
    n = udp_frame(f, 17, 0, 5);
    CHECK(!flow_hash_frame(f, 14 + 19, &h));      /* truncated IP header */
    f[14] = 0x44;                                  /* IHL below 5 */
    CHECK(!flow_hash_frame(f, (uint32_t)n, &h));
    n = udp_frame(f, 17, 0, 5);
    f[12] = 0x86, f[13] = 0xdd;                    /* not IPv4 */
    CHECK(!flow_hash_frame(f, (uint32_t)n, &h));
}

TEST(table_spreads_over_shards)
{
    for (unsigned shards = 1; shards <= 8; shards++) {
        unsigned per[8] = { 0 };
        for (unsigned i = 0; i < FLOW_TABLE_LEN; i++)
            per[flow_table_entry(i, shards)]++;
        for (unsigned s = 0; s < shards; s++)
            CHECK(per[s] >= FLOW_TABLE_LEN / shards);
    }
}

TEST_MAIN()
