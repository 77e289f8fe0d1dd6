/*
 * The interface between a network device and net/: per-queue bursts of
 * packet buffers, plus what the device offloads. Queue i belongs to shard
 * i; only that shard calls rx_burst/tx_burst on it. A test double only
 * needs to implement struct netdev_ops.
 *
 * A netbuf is one 2 KiB heap object: this header, headroom (where a
 * driver puts its own header, e.g. virtio_net_hdr, and where net/ may
 * prepend), then data. A frame larger than one buffer (mergeable receive,
 * GSO) is a chain through `frag`; only the first buffer carries headers and
 * offload information. Whoever holds a netbuf frees it with netbuf_free(),
 * from any shard.
 *
 * Transmit GSO (NETDEV_TX_TSO4): a TCPv4 frame longer than the MTU with
 * gso_type NETBUF_GSO_TCPV4, gso_size the payload bytes per piece, hdr_len
 * the Ethernet + IP + TCP header bytes every piece repeats, and the TCP
 * checksum offloaded (NETBUF_CSUM_PARTIAL, pseudo-header over the whole
 * frame's length, as Linux's GSO expects). The device cuts it; the IP
 * header's length and ID, and FIN/PSH on all but the last piece, are its to fix.
 */
#ifndef DRIVERS_NETDEV_H
#define DRIVERS_NETDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NETBUF_SIZE      2048
#define NETBUF_META      64     /* struct netbuf */
/* Room for a driver header (12), Ethernet (14), IPv4 (20..60) and TCP (20..60) before data. */
#define NETBUF_HEADROOM  128

/* netbuf.flags */
#define NETBUF_CSUM_PARTIAL 1   /* checksum to fill: 16-bit sum from csum_start, stored at csum_start + csum_offset */
#define NETBUF_CSUM_VALID   2   /* the device checked the L4 checksum */

/* netbuf.gso_type (as virtio_net_hdr's) */
#define NETBUF_GSO_NONE  0
#define NETBUF_GSO_TCPV4 1

struct netbuf {
    struct netbuf *next;        /* next frame in a list */
    struct netbuf *frag;        /* next buffer of this frame */
    uint8_t *data;
    uint32_t len;               /* bytes at data in this buffer */
    uint16_t flags;
    uint8_t gso_type;
    uint8_t pad;
    uint16_t gso_size, hdr_len;
    uint16_t csum_start, csum_offset;
    uint16_t queue;             /* the queue it arrived on */
    uint16_t pad2;
    uint32_t hash;              /* flow hash, when the device or net/ computed one */
    uint8_t _reserved[8];
};

_Static_assert(sizeof(struct netbuf) <= NETBUF_META, "struct netbuf must fit in NETBUF_META");

/* First byte after the header, and the room from there to the end. */
static inline uint8_t *netbuf_base(struct netbuf *b) { return (uint8_t *)b + NETBUF_META; }
static inline uint32_t netbuf_room(const struct netbuf *b)
{
    return (uint32_t)((const uint8_t *)b + NETBUF_SIZE - b->data);
}

/* A buffer with data at base + NETBUF_HEADROOM, len 0; NULL when memory is out. */
struct netbuf *netbuf_alloc(void);
/* The same over NETBUF_SIZE bytes the caller allocated (mem may be NULL: then NULL). */
struct netbuf *netbuf_init(void *mem);
/* A buffer for the second and later parts of a chain: data at base (nothing is ever prepended there), len 0. */
struct netbuf *netbuf_alloc_frag(void);
/* Frees the whole chain (frag) of b. */
void netbuf_free(struct netbuf *b);
/* Total frame length over the chain. */
uint32_t netbuf_frame_len(const struct netbuf *b);

/* netdev.offloads */
#define NETDEV_TX_CSUM  (1u << 0)   /* device fills NETBUF_CSUM_PARTIAL checksums */
#define NETDEV_RX_CSUM  (1u << 1)   /* device may hand over CSUM_PARTIAL / CSUM_VALID frames */
#define NETDEV_TX_TSO4  (1u << 2)   /* device segments NETBUF_GSO_TCPV4 frames */
#define NETDEV_RX_LRO4  (1u << 3)   /* device may hand over coalesced TCPv4 frames */
#define NETDEV_RSS      (1u << 4)   /* device steers by our Toeplitz key and table */

struct netdev;

struct netdev_ops {
    /* On shard q, once, before any burst: fill queue q's receive ring from this shard's memory. */
    bool (*start)(struct netdev *d, unsigned q);
    /* Up to max received frames of queue q; the queue is refilled as they are taken. */
    unsigned (*rx_burst)(struct netdev *d, unsigned q, struct netbuf **frames, unsigned max);
    /* Queue frames[0..n) for sending; returns how many were taken (the device owns those). */
    unsigned (*tx_burst)(struct netdev *d, unsigned q, struct netbuf **frames, unsigned n);
    /* Ask queue q to wake its shard on new frames; false when some already wait. */
    bool (*rx_sleep)(struct netdev *d, unsigned q);
    /* Stop the wake-ups rx_sleep asked for (the shard polls again). */
    void (*rx_wake)(struct netdev *d, unsigned q);
    /* Program receive-side scaling; false when the device cannot. Boot time. */
    bool (*set_rss)(struct netdev *d, const uint8_t *key, unsigned key_len, const uint16_t *table, unsigned n);
};

struct netdev {
    const struct netdev_ops *ops;
    const char *name;
    uint8_t mac[6];
    uint16_t mtu;
    uint16_t nqueues;           /* queue pairs: shards 0..nqueues-1 own one each */
    uint32_t offloads;          /* NETDEV_* */
    bool link_up;
    /* RSS limits when NETDEV_RSS */
    uint16_t rss_max_table;
    uint8_t rss_max_key;
};

/* Devices register at boot (BSP); net/ takes them from here. */
#define NETDEV_MAX 4
void netdev_register(struct netdev *d);
struct netdev *netdev_get(unsigned index);
unsigned netdev_count(void);

#endif
