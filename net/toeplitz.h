/*
 * Flow hashing: the Toeplitz hash (as in Microsoft's RSS specification,
 * which virtio-net RSS follows) of an IPv4 flow, and the indirection table
 * that turns a hash into the owning shard. The same key and table program
 * the device's RSS, so software steering and the device agree.
 */
#ifndef NET_TOEPLITZ_H
#define NET_TOEPLITZ_H
#include <stddef.h>
#include <stdint.h>

#define FLOW_KEY_LEN   40
#define FLOW_TABLE_LEN 128   /* power of two */

extern const uint8_t flow_key[FLOW_KEY_LEN];

uint32_t toeplitz_hash(const uint8_t *key, size_t key_len, const uint8_t *in, size_t n);

/* Hash of (src, dst, sport, dst port), all in network byte order as on the wire. */
uint32_t flow_hash_ipv4(const uint8_t src[4], const uint8_t dst[4], const uint8_t *ports);

/* Flow hash of an Ethernet frame: TCP/UDP 4-tuple, else the IPv4 pair; false for other frames. */
int flow_hash_frame(const uint8_t *frame, uint32_t len, uint32_t *hash);

/* Entry i of the indirection table for nshards shards. */
static inline unsigned flow_table_entry(unsigned i, unsigned nshards) { return i % nshards; }
static inline unsigned flow_shard(uint32_t hash, unsigned nshards)
{
    return flow_table_entry(hash & (FLOW_TABLE_LEN - 1), nshards);
}
#endif
