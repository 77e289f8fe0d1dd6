/*
 * DHCP client (RFC 2131, options from RFC 2132), without a transport: it
 * builds the BOOTP/DHCP message (the UDP payload) and hands it to ops->send;
 * the stack wraps it in UDP 68 -> 67 / IPv4 / Ethernet and feeds back the
 * payloads of datagrams from port 67 to port 68 through dhcp_input. Time is
 * the caller's monotonic nanosecond clock; nothing here reads a clock or
 * keeps a timer: the caller runs dhcp_timer at dhcp_next_deadline.
 *
 * Decisions worth knowing:
 * - The BROADCAST flag is off: before it has an address our stack accepts
 *   frames unicast to its MAC whatever their IP destination (RFC 2131 4.1
 *   lets a client that can do so leave the flag clear).
 * - Retransmission in SELECTING and REQUESTING: 4 s doubling to 64 s, each
 *   randomised by a uniform -1..+1 s (millisecond steps) from a PRNG seeded
 *   by xid_seed, which also draws the xids. DISCOVER is retransmitted for
 *   ever at 64 s; a REQUEST unanswered after DHCP_REQUEST_SENDS sends falls
 *   back to INIT and a fresh DISCOVER (RFC 2131 4.4.1).
 * - In RENEWING and REBINDING the REQUEST is retransmitted after half the
 *   time left to T2 (resp. expiry), but not sooner than a floor of 60 s
 *   (RFC 2131 4.4.5) scaled down to lease/16 for leases under 16 minutes,
 *   so short leases still get several tries before they run out.
 * - Lease times run from the first send of the REQUEST that was answered
 *   (RFC 2131 4.4.1), so retransmissions never stretch a lease. T1/T2 that
 *   are missing, zero or out of order (not T1 <= T2 < lease) fall back to
 *   0.5 and 0.875 of the lease; an infinite lease (0xFFFFFFFF) has no T1,
 *   T2 or expiry. An ACK without a lease time, or with lease 0, is ignored.
 * - A NAK sends the client back to INIT; it restarts after 1 s, doubling
 *   with each consecutive NAK up to 64 s, so a server that NAKs everything
 *   does not get a packet storm. Expiry restarts at once (RFC 2131 4.4.5).
 * - Replies are ignored unless they have op BOOTREPLY, our xid and MAC, the
 *   magic cookie, a message type and a non-zero server identifier, and
 *   every option fits the buffer. An option of the wrong length for its
 *   code is skipped; when a code repeats the last one counts. A missing END
 *   option ends at the buffer's end. Option overload (52) is not supported:
 *   options in sname/file are not read (servers use them only when options
 *   do not fit in 312 bytes, which our short parameter list never causes).
 * - In REQUESTING and RENEWING an ACK or NAK must come from the server we
 *   asked; in REBINDING any server may answer. No ARP probe of the offered
 *   address (the stack may add one and restart with dhcp_start).
 * - bound() runs on a new lease, and on a renewal only when the address
 *   configuration (ip, netmask, router, dns, mtu) changed; new lease times
 *   or a new server are not reported (see dhcp_current_lease).
 *
 * Callbacks must not call back into the same client. Not thread-safe.
 */
#ifndef NET_DHCP_H
#define NET_DHCP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DHCP_SERVER_PORT    67
#define DHCP_CLIENT_PORT    68
#define DHCP_BROADCAST      0xFFFFFFFFu
#define DHCP_LEASE_INFINITE 0xFFFFFFFFu
#define DHCP_NEVER          UINT64_MAX
/* Every message we send is this long: BOOTP's minimum, which some relays insist on (RFC 1542). */
#define DHCP_MSG_LEN        300
#define DHCP_REQUEST_SENDS  5

enum dhcp_state {
    DHCP_INIT,
    DHCP_SELECTING,
    DHCP_REQUESTING,
    DHCP_BOUND,
    DHCP_RENEWING,
    DHCP_REBINDING,
};

/* Addresses in network byte order, as memcpy'd from the wire; 0 when the server sent none. */
struct dhcp_lease {
    uint32_t ip, netmask, router, server_id, dns[2];
    uint32_t lease_s, t1_s, t2_s;   /* as applied (defaults filled in), whole seconds */
    uint16_t mtu;
};

struct dhcp_ops {
    /* Send payload[0..len) from port 68 to port 67; to_ip DHCP_BROADCAST means broadcast
       from 0.0.0.0 (or from the leased address when rebinding), else unicast to that
       server from the leased address (renewing). */
    void (*send)(void *ctx, const uint8_t *payload, size_t len, uint32_t to_ip);
    void (*bound)(void *ctx, const struct dhcp_lease *lease);   /* new lease, or renewed with changes */
    void (*lost)(void *ctx);                                     /* lease expired or NAK while bound */
};

/* Owned by the caller; fields are private to dhcp.c. */
struct dhcp_client {
    const struct dhcp_ops *ops;
    void *ctx;
    uint8_t mac[6];
    enum dhcp_state state;
    uint32_t rng;
    uint32_t xid;
    uint32_t offer_ip, offer_server;  /* the offer being requested */
    struct dhcp_lease lease;          /* valid in BOUND, RENEWING, REBINDING */
    uint64_t start_ns;                /* this exchange began: 'secs' counts from here */
    uint64_t request_ns;              /* first REQUEST of this exchange: the lease runs from here */
    uint64_t t1_ns, t2_ns, expiry_ns;
    uint64_t next_ns;                 /* next (re)transmission, or the restart in INIT */
    uint32_t backoff_s;               /* SELECTING/REQUESTING: base wait after the next send */
    uint8_t sends;                    /* sends of the current message */
    uint8_t naks;                     /* consecutive NAKs */
};

void dhcp_init(struct dhcp_client *c, const uint8_t mac[6], uint32_t xid_seed,
               const struct dhcp_ops *ops, void *ctx);
/* INIT -> SELECTING: send a DISCOVER. From a bound state, lost() runs first. */
void dhcp_start(struct dhcp_client *c, uint64_t now_ns);
/* A UDP payload received on port 68 from port 67; anything not for us is ignored. */
void dhcp_input(struct dhcp_client *c, const uint8_t *payload, size_t len, uint64_t now_ns);
/* Retransmissions, T1 renew, T2 rebind, expiry: whatever is due at now_ns. */
void dhcp_timer(struct dhcp_client *c, uint64_t now_ns);
/* When dhcp_timer must next run; DHCP_NEVER (UINT64_MAX) if never. */
uint64_t dhcp_next_deadline(const struct dhcp_client *c);
enum dhcp_state dhcp_state(const struct dhcp_client *c);
/* The lease in use, or NULL when the client has none. */
const struct dhcp_lease *dhcp_current_lease(const struct dhcp_client *c);
#endif
