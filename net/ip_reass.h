/*
 * IPv4 fragment reassembly (RFC 791 §3.2, RFC 815), one instance per shard.
 *
 * Policies, and why:
 *
 * - Overlap (RFC 1858, RFC 3128; RFC 5722 with erratum 3089 for IPv6): any
 *   fragment that overlaps data already held and is not a duplicate (below)
 *   discards the whole datagram, and the datagram stays "poisoned" until its
 *   timeout so that its remaining fragments (those not yet received) are
 *   discarded too rather than starting a fresh reassembly. Overlaps are never
 *   produced by a correct sender or router; accepting them lets an attacker
 *   choose which copy of a byte wins (the tiny/overlapping fragment attacks on
 *   packet filters), so there is no right answer to pick. Linux has discarded
 *   the whole queue on IPv4 overlap since 2018 (ReasmOverlaps), but forgets
 *   it, so the rest of the datagram starts a new queue that can only time out
 *   or be completed by whoever sent the overlap.
 *
 * - Duplicates: a fragment that brings no new bytes and whose bytes all equal
 *   the bytes already held is ignored and the datagram kept. Networks do
 *   duplicate packets, and killing the datagram for that would turn one
 *   duplicated frame into the loss of the whole datagram. Linux also ignores
 *   a fragment lying wholly inside data it holds (IPFRAG_DUP), but without
 *   comparing bytes; comparing costs one read of the fragment and means a
 *   "duplicate" with different contents is treated as the overlap it is.
 *
 * - Malformed fragments (a non-last fragment whose length is zero or not a
 *   multiple of 8, an empty last fragment, an end beyond 65535 minus the
 *   header, a length field that lies) are dropped on their own and touch no
 *   datagram: they are wrong whatever else arrives. Fragments inconsistent
 *   with what is held (a second last fragment with a different end, data
 *   beyond the known end, a total that with the first fragment's header would
 *   exceed 65535) poison the datagram like an overlap: one side is wrong and
 *   nothing tells which.
 *
 * - Limits: at most IP_REASS_MAX_DATAGRAMS pending, IP_REASS_MAX_BYTES of
 *   fragment payload held (all this module allocates between calls, in at
 *   most 16 x 64 blocks) and IP_REASS_MAX_FRAGS fragments per datagram, so
 *   every fragment costs O(IP_REASS_MAX_FRAGS + its length) work. A fragment
 *   beyond the count poisons its datagram. A new datagram when the table is
 *   full, or a fragment that does not fit in the byte budget, evicts the
 *   oldest other datagram (poisoned ones first: they hold nothing worth
 *   keeping). Fragments of one datagram arrive back to back, so the oldest
 *   pending one is the likeliest to have lost a fragment already, while
 *   refusing new datagrams would let anyone who sends 16 lone fragments per
 *   timeout period shut reassembly off for the shard.
 *
 * - Timeout: IP_REASS_TIMEOUT_NS from the datagram's first fragment, not
 *   refreshed by later ones (so a trickle cannot keep a datagram alive). Only
 *   ip_reass_expire() times datagrams out; the stack calls it from a timer.
 *
 * - Unfragmented packets (MF clear, offset 0) are the caller's to handle:
 *   passed in anyway, they are counted in dropped_bad and NULL is returned.
 *
 * Nothing here is shared between shards and nothing is global: all state is
 * in the struct ip_reass the caller owns (about 18 KiB, fixed) plus the
 * fragment copies counted in `bytes`. Not reentrant from on_timeout.
 */
#ifndef NET_IP_REASS_H
#define NET_IP_REASS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IP_REASS_MAX_DATAGRAMS 16     /* pending datagrams per shard */
#define IP_REASS_MAX_BYTES (256 * 1024) /* all pending fragment data per shard */
#define IP_REASS_TIMEOUT_NS (30ULL * 1000000000ULL)
/* 64 fragments carry a 65515-byte payload over any path with an MTU of 1044 or more. */
#define IP_REASS_MAX_FRAGS 64
#define IP_REASS_MAX_HLEN 60
#define IP_REASS_ICMP_DATA 8          /* payload bytes quoted in Time Exceeded (RFC 792) */

struct ip_reass_stats {
    uint64_t fragments, reassembled, timeouts, dropped_overlap, dropped_limits, dropped_bad;
    uint64_t duplicates;      /* exact duplicates ignored */
    uint64_t dropped_poisoned; /* fragments of a datagram already discarded */
    uint64_t dropped_nomem;   /* alloc() failed: the fragment or the datagram is lost */
};

struct ip_reass_frag {
    uint8_t *data;            /* from alloc(), len bytes */
    uint16_t off, len;        /* payload bytes [off, off + len) of the datagram */
};

struct ip_reass_dgram {
    bool used;
    bool poisoned;            /* discarded: absorbs its fragments until the timeout */
    bool have_first, have_last;
    uint8_t proto;
    uint16_t id;
    uint32_t src, dst;        /* as on the wire; only compared */
    uint64_t created_ns;
    uint32_t total;           /* payload length, known once have_last */
    uint32_t max_end;         /* highest payload end seen */
    uint32_t held;            /* payload bytes held */
    uint8_t hdr_len;          /* of the first fragment's header */
    uint8_t hdr[IP_REASS_MAX_HLEN + IP_REASS_ICMP_DATA]; /* first fragment's header + 8 bytes */
    uint8_t nfrags;
    struct ip_reass_frag frags[IP_REASS_MAX_FRAGS]; /* sorted by off, never overlapping */
};

struct ip_reass {
    void *(*alloc)(size_t);
    void (*release)(void *);
    size_t bytes;             /* fragment payload held, <= IP_REASS_MAX_BYTES */
    struct ip_reass_dgram dgrams[IP_REASS_MAX_DATAGRAMS];
    struct ip_reass_stats stats;
};

/* Memory: the caller passes alloc/free functions (the kernel's malloc/free; the host's in tests). */
void ip_reass_init(struct ip_reass *r, void *(*alloc)(size_t), void (*release)(void *));
/*
 * One fragment: `ip` points at a validated IPv4 header (version 4, IHL >= 5, header checksum verified,
 * total length <= ip_len and >= IHL*4) followed by its payload; ip_len = bytes available at ip.
 * Returns NULL while the datagram is incomplete (or if the fragment was dropped), or a complete
 * datagram in one contiguous buffer from alloc(): the first fragment's IPv4 header (options kept as
 * in the first fragment) with MF and fragment offset cleared, total length set, header checksum
 * recomputed, followed by the whole payload; *out_len = its length (<= 65535). The caller frees it
 * with the release function. The lengths are checked again all the same.
 */
uint8_t *ip_reass_input(struct ip_reass *r, const uint8_t *ip, size_t ip_len, uint64_t now_ns, size_t *out_len);
/* Drop datagrams older than IP_REASS_TIMEOUT_NS; returns how many were dropped. For each dropped one whose
 * first fragment (offset 0) had arrived, calls on_timeout(ctx, first_fragment_header_and_8_bytes, len) if
 * non-NULL so the stack can send ICMP Time Exceeded (code 1, RFC 792) — pass the first fragment's IP header plus
 * the first 8 bytes of its payload. Poisoned datagrams are forgotten silently and not counted. */
unsigned ip_reass_expire(struct ip_reass *r, uint64_t now_ns, void (*on_timeout)(void *ctx, const uint8_t *hdr, size_t len), void *ctx);
/* Free everything. */
void ip_reass_clear(struct ip_reass *r);
#endif
