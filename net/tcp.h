/*
 * TCP (RFC 9293) for one shard's stack. Connections belong to the shard
 * whose flow hash they have; everything here runs on that shard, so
 * nothing locks. Callback style: the application gets accepted/recv/
 * writable/closed calls on the connection's shard and never blocks.
 *
 * Output goes through ipv4_send_netbuf_ecn(); time and timers come from the
 * stack's environment (struct net_env), so the same code runs in the
 * kernel and under the host test interpreter with a virtual clock.
 */
#ifndef NET_TCP_H
#define NET_TCP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct net_stack;
struct ip_info;
struct tcp_conn;
struct netbuf;

/* Why a connection ended (closed callback). */
enum tcp_close_reason {
    TCP_CLOSED_NORMAL,      /* both sides finished (FIN exchange), or the app closed after the peer */
    TCP_CLOSED_RESET,       /* the peer sent RST */
    TCP_CLOSED_TIMEOUT,     /* retransmissions or keepalives gave up */
    TCP_CLOSED_ABORTED,     /* tcp_abort() */
    TCP_CLOSED_REFUSED,     /* active open answered by RST */
};

struct tcp_callbacks {
    /* Passive open completed (listener's arg); set the connection's own arg with tcp_set_arg. */
    void (*accepted)(struct tcp_conn *c, void *listener_arg);
    /* Active open completed. */
    void (*connected)(struct tcp_conn *c, void *arg);
    /* In-order data; valid during the call only. len == 0: the peer sent FIN (no more data). */
    void (*recv)(struct tcp_conn *c, void *arg, const uint8_t *data, size_t len);
    /*
     * Zero-copy receive, instead of recv when set: in-order data as netbufs the app now owns, a chain
     * through frag whose buffers' data/len are payload only, len bytes in all. netbuf_free(bufs)
     * releases the chain, on any shard and at any time (set a buffer's frag to NULL first to keep the
     * rest). A segment that arrived in order in one receive buffer is that buffer, not a copy
     * (tcp_stats.rcv_zero_copy); data from the reassembly queue or a coalesced frame is copied into
     * fresh netbufs. Buffers the app keeps are its memory, not the window's: to hold the sender back,
     * pause. bufs NULL, len 0: the peer sent FIN.
     */
    void (*recv_bufs)(struct tcp_conn *c, void *arg, struct netbuf *bufs, size_t len);
    /* The send buffer has room again after tcp_send() took less than asked. */
    void (*writable)(struct tcp_conn *c, void *arg);
    /* The connection is gone after this returns; c must not be used again. */
    void (*closed)(struct tcp_conn *c, void *arg, enum tcp_close_reason why);
};

/* Congestion control, per connection: NewReno (RFC 5681/6582) unless chosen otherwise. */
enum tcp_cc_algo {
    TCP_CC_NEWRENO,
    TCP_CC_CUBIC,           /* RFC 9438: regains a large window faster on long fat paths */
};

struct tcp_stats {
    uint64_t segs_in, segs_out, retransmits, bad_checksum, bad_header, rst_in, rst_out;
    uint64_t challenge_acks, listen_overflows, syn_cookies_sent, syn_cookies_ok, conns_opened, conns_closed;
    uint64_t syn_cookies_later;  /* data failing the cookie while cookies are out: dropped, not reset */
    uint64_t out_of_order, dup_acks, fast_retransmits, timeouts, time_wait;
    uint64_t rcv_dropped;        /* bytes beyond a held buffer (should stay 0: the window prevents it) */
    uint64_t paws_rejected;      /* segments with an old timestamp dropped (RFC 7323 §5) */
    uint64_t ecn_ce_in, ecn_reductions; /* CE-marked segments received; cwnd reductions for ECE (RFC 3168) */
    uint64_t rcv_zero_copy;      /* segments handed to a recv_bufs app in their own receive buffers */
    uint64_t rcv_copied;         /* deliveries to a recv_bufs app that had to copy (reassembly queue, no memory) */
};

/* One connection's counters (tcp_get_info). */
struct tcp_conn_counters {
    uint64_t segs_in, segs_out;  /* segments on the wire (a TSO frame counts its pieces) */
    uint64_t retransmits, out_of_order, dup_acks, fast_retransmits, timeouts;
    uint64_t rcv_zero_copy;      /* segments handed over in their own receive buffer */
    uint64_t ecn_ce_in, ecn_reductions;
};

/* A connection as it stands, like Linux's TCP_INFO. */
struct tcp_conn_info {
    const char *state;            /* RFC 9293 name: "ESTABLISHED", "CLOSE-WAIT", ... */
    uint32_t local_ip, remote_ip;
    uint16_t local_port, remote_port;
    uint32_t mss, cwnd, ssthresh;   /* bytes */
    uint32_t snd_wnd, rcv_wnd;      /* the peer's window and the one we advertise, bytes */
    uint32_t unacked, send_queued;  /* bytes in flight; bytes in the send buffer */
    uint32_t rcv_held;              /* in-order bytes waiting for a paused app */
    uint64_t srtt_us, rttvar_us, rto_us;
    uint64_t bytes_received, bytes_acked;  /* in-order bytes from the peer; our bytes it acknowledged */
    uint8_t snd_wscale, rcv_wscale;
    bool sack, timestamps, ecn, nodelay, cubic;
    struct tcp_conn_counters ctr;
};

/* Set up / tear down the TCP part of a shard's stack (called by net_stack_init and tests). */
bool tcp_init(struct net_stack *ns);
void tcp_fini(struct net_stack *ns);

/* A segment for this shard; l4 = TCP header + payload, len bytes, checksum not yet verified unless
   ip->csum_flags says so. */
void tcp_input(struct net_stack *ns, const struct ip_info *ip, const uint8_t *l4, size_t len);

/* Listen on port on this shard (an app listens on every shard, like SO_REUSEPORT). 0 or -1. */
int tcp_listen(struct net_stack *ns, uint16_t port, const struct tcp_callbacks *cb, void *arg);
/* Congestion control for the connections the listener on port accepts from now on. 0 or -1. */
int tcp_listen_set_cc(struct net_stack *ns, uint16_t port, enum tcp_cc_algo algo);
/* Active open from this shard (the ephemeral port is chosen so the flow hashes to this shard). */
struct tcp_conn *tcp_connect(struct net_stack *ns, uint32_t dst, uint16_t port, const struct tcp_callbacks *cb,
                             void *arg);
void tcp_set_arg(struct tcp_conn *c, void *arg);
/* Congestion control of an active open, before it is connected (right after tcp_connect). 0 or -1. */
int tcp_set_cc(struct tcp_conn *c, enum tcp_cc_algo algo);
/* Copies up to len bytes into the send buffer; returns how many it took (writable() follows when it took less). */
size_t tcp_send(struct tcp_conn *c, const void *data, size_t len);
size_t tcp_send_space(const struct tcp_conn *c);
/* Graceful close: FIN after everything buffered has been sent. Data may still arrive until the peer's FIN. */
void tcp_close(struct tcp_conn *c);
/* Send RST and forget the connection; closed(TCP_CLOSED_ABORTED) runs before this returns. */
void tcp_abort(struct tcp_conn *c);
void tcp_set_nodelay(struct tcp_conn *c, bool on);
/*
 * Receive flow control: while paused, in-order data stays in the
 * connection's buffer and the advertised window shrinks, so a fast sender
 * is held back instead of the app buffering without bound. Resume hands
 * the held data over (recv calls, possibly several) and reopens the window.
 */
void tcp_recv_pause(struct tcp_conn *c);
void tcp_recv_resume(struct tcp_conn *c);
/* RFC 1122 §4.2.3.6 keep-alive, off by default; 0 keeps the current idle time / probe interval. */
void tcp_set_keepalive(struct tcp_conn *c, bool on, uint64_t idle_ns, uint64_t intvl_ns);
/* Per-shard limits: connections in the table (beyond it, SYNs are refused with RST) and half-open
   connections per listener (beyond it, SYNs are dropped). */
void tcp_set_limits(struct net_stack *ns, unsigned max_conns, unsigned syn_backlog);
void tcp_get_info(const struct tcp_conn *c, struct tcp_conn_info *out);
/* Peer address of the connection. */
void tcp_peer(const struct tcp_conn *c, uint32_t *ip, uint16_t *port);
const struct tcp_stats *tcp_get_stats(const struct net_stack *ns);
#endif
