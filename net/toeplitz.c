/* Toeplitz hash and frame classification for flow steering. */
#include "toeplitz.h"

/* Shoal's own key. RSS keys need no secrecy for steering; a fixed key
   keeps every shard and the device on the same function from boot. */
const uint8_t flow_key[FLOW_KEY_LEN] = {
    0x53, 0x68, 0x6f, 0x61, 0x6c, 0x2d, 0x72, 0x73, 0x73, 0x6b, 0x3c, 0x91, 0x7e, 0x05, 0xd2, 0x48,
    0xa1, 0x37, 0x6b, 0xe9, 0x14, 0xc8, 0x5f, 0x20, 0x9a, 0x73, 0x0e, 0xb6, 0x42, 0xdd, 0x81, 0x3f,
    0x66, 0x2c, 0xf4, 0x19, 0x87, 0x5a, 0xc3, 0x0b,
};

uint32_t toeplitz_hash(const uint8_t *key, size_t key_len, const uint8_t *in, size_t n)
{
    /* window: the 32 key bits aligned with the current input bit */
    uint32_t window = (uint32_t)key[0] << 24 | (uint32_t)key[1] << 16 | (uint32_t)key[2] << 8 | key[3];
    uint32_t hash = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t next = i + 4 < key_len ? key[i + 4] : 0;
        for (int bit = 7; bit >= 0; bit--) {
            if (in[i] >> bit & 1)
                hash ^= window;
            window = window << 1 | (uint32_t)(next >> bit & 1);
        }
    }
    return hash;
}

uint32_t flow_hash_ipv4(const uint8_t src[4], const uint8_t dst[4], const uint8_t *ports)
{
    uint8_t in[12];
    for (int i = 0; i < 4; i++) {
        in[i] = src[i];
        in[4 + i] = dst[i];
    }
    size_t n = 8;
    if (ports) {
        for (int i = 0; i < 4; i++)
            in[8 + i] = ports[i];
        n = 12;
    }
    return toeplitz_hash(flow_key, FLOW_KEY_LEN, in, n);
}

#define ETH_HLEN 14
#define ETHERTYPE_IPV4 0x0800
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17

int flow_hash_frame(const uint8_t *f, uint32_t len, uint32_t *hash)
{
    if (len < ETH_HLEN + 20 || (f[12] << 8 | f[13]) != ETHERTYPE_IPV4)
        return 0;
    const uint8_t *ip = f + ETH_HLEN;
    uint32_t ihl = (uint32_t)(ip[0] & 0xF) * 4;
    if ((ip[0] >> 4) != 4 || ihl < 20 || ETH_HLEN + ihl > len)
        return 0;
    /* A fragment other than the first has no ports: hash the pair, so all fragments meet. */
    int frag = (ip[6] & 0x3F) || ip[7] || (ip[6] & 0x20);
    int l4 = (ip[9] == IPPROTO_TCP_ || ip[9] == IPPROTO_UDP_) && !frag && ETH_HLEN + ihl + 4 <= len;
    *hash = flow_hash_ipv4(ip + 12, ip + 16, l4 ? ip + ihl : 0);
    return 1;
}
