/*
 * TCP internals shared by the net/tcp_*.c files: the per-shard table,
 * the connection control block, sequence arithmetic. Not for apps.
 */
#ifndef NET_TCP_IMPL_H
#define NET_TCP_IMPL_H
#include "tcp.h"
#include "stack.h"

#define TCP_HLEN            20
#define TCP_MSL_NS          (30ULL * 1000000000ULL)     /* RFC 9293 suggests 2 min; Linux's TIME-WAIT is 60 s total */
#define TCP_TIME_WAIT_NS    (2 * TCP_MSL_NS)
#define TCP_SNDBUF          (64u * 1024)                 /* initial ring; a power of two: the ring masks with it */
/* A bulk sender's ring doubles up to this while the peer's window is larger than the ring. */
#define TCP_SNDBUF_MAX      (1024u * 1024)
#define TCP_RCVBUF          (256u * 1024)
#define TCP_RCV_WSCALE      7                            /* lets the window grow to 8 MiB later */
#define TCP_DEFAULT_MSS     536                          /* RFC 9293 §3.7.1 when the peer sends none */
#define TCP_INIT_CWND_SEGS  10                           /* RFC 6928 */
#define TCP_RTO_INIT_NS     (1000ULL * 1000000ULL)       /* RFC 6298 §2.1 */
#define TCP_RTO_SYN_LOST_NS (3000ULL * 1000000ULL)       /* RFC 6298 §5.7: after a SYN or SYN,ACK timed out */
/* Linux's floor rather than RFC 6298's 1 s: our peers are mostly on the same LAN or DC, where 1 s stalls
   dominate tail latency, and Linux has shown 200 ms to be safe in practice. */
#define TCP_RTO_MIN_NS      (200ULL * 1000000ULL)
#define TCP_RTO_MAX_NS      (60ULL * 1000000000ULL)
#define TCP_DELACK_NS       (40ULL * 1000000ULL)
#define TCP_MAX_RETRIES     15
#define TCP_SYN_RETRIES     6
#define TCP_SYNACK_RETRIES  5
/* Out-of-order segments held: enough for a whole advertised window of 536-byte segments, so that
   nothing the window invited is dropped (dropping beyond a cap of 64 cost a retransmission per drop,
   mostly after RTOs with Linux backing off). The byte count stays bounded by TCP_RCVBUF. */
#define TCP_OOO_MAX_SEGS    (TCP_RCVBUF / 512)
#define TCP_SACK_BLOCKS     4                            /* fits 40 option bytes without timestamps (3 with) */
#define TCP_TS_OPTLEN       12                           /* NOP, NOP, kind 8 length 10 (RFC 7323 Appendix A) */
/* RFC 7323 §5.5: a TS.Recent older than this may have wrapped (1 ms clock); PAWS then trusts the segment. */
#define TCP_PAWS_IDLE_NS    (24ULL * 86400ULL * 1000000000ULL)
#define TCP_SCOREBOARD      16                           /* SACKed ranges the sender remembers */
#define TCP_CHALLENGE_ACKS_PER_SEC 10                   /* RFC 5961 §7; Linux's old default was 100 */
#define TCP_HASH_BUCKETS    1024
#define TCP_MAX_LISTENERS   16
#define TCP_DEFAULT_MAX_CONNS 16384
#define TCP_DEFAULT_BACKLOG 128
#define TCP_KEEPALIVE_IDLE_NS (7200ULL * 1000000000ULL) /* RFC 1122 §4.2.3.6: at least two hours */
#define TCP_KEEPALIVE_INTVL_NS (75ULL * 1000000000ULL)
#define TCP_KEEPALIVE_PROBES 9

/* Header flags */
#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10
#define TH_URG 0x20
#define TH_ECE 0x40               /* RFC 3168: ECN-Echo */
#define TH_CWR 0x80               /* RFC 3168: Congestion Window Reduced */

/* IPv4 ECN field (RFC 3168 §5) */
#define IP_ECN_NOT_ECT 0
#define IP_ECN_ECT0    2
#define IP_ECN_CE      3

enum tcp_state {
    TCPS_CLOSED, TCPS_LISTEN, TCPS_SYN_SENT, TCPS_SYN_RECEIVED, TCPS_ESTABLISHED, TCPS_FIN_WAIT_1,
    TCPS_FIN_WAIT_2, TCPS_CLOSE_WAIT, TCPS_CLOSING, TCPS_LAST_ACK, TCPS_TIME_WAIT,
};

/* Sequence-space comparisons, valid across wrap for distances below 2^31. */
static inline bool seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline bool seq_leq(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }
static inline bool seq_gt(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }
static inline bool seq_geq(uint32_t a, uint32_t b) { return (int32_t)(a - b) >= 0; }
static inline uint32_t tcp_min32(uint32_t a, uint32_t b) { return a < b ? a : b; }
static inline uint32_t seq_max(uint32_t a, uint32_t b) { return seq_gt(a, b) ? a : b; }

struct tcp_conn;

/* Congestion control: window growth and reaction to loss. Recovery bookkeeping stays in tcp_input.c. */
struct tcp_cc_ops {
    const char *name;
    void (*init)(struct tcp_conn *c);
    void (*on_ack)(struct tcp_conn *c, uint32_t acked);      /* new data acknowledged, outside recovery */
    /* On loss: a retransmission timeout, or (timeout false) the third duplicate ACK. */
    uint32_t (*ssthresh)(struct tcp_conn *c, bool timeout);
};
extern const struct tcp_cc_ops tcp_newreno;
/* tcp_cc.c: RFC 5681 slow start, shared by the algorithms; the ops for an algorithm, 0 if not built in. */
void tcp_slow_start(struct tcp_conn *c, uint32_t acked);
const struct tcp_cc_ops *tcp_cc_ops_of(enum tcp_cc_algo algo);

/* CUBIC's per-connection state (tcp_cubic.c), bytes; NewReno leaves it alone. */
struct tcp_cubic {
    uint32_t w_max;               /* window the curve plateaus at (after fast convergence) */
    uint32_t cwnd_prior;          /* cwnd at the last fast retransmit: alpha_cubic becomes 1 there */
    uint32_t w_est;               /* Reno-friendly estimate */
    uint32_t k_ms;                /* time from the epoch's start to W_max */
    uint64_t epoch_ns;            /* start of the congestion-avoidance stage, when in_epoch */
    uint64_t est_credit, grow_credit; /* sub-byte remainders of the per-ACK increments */
    bool in_epoch, after_timeout;
};
/* tcp_cubic.c: the integer math, exposed for tests. Time in ms, windows in bytes. */
uint32_t tcp_cubic_cbrt(uint64_t x);
uint32_t tcp_cubic_k_ms(uint32_t w_max, uint32_t cwnd_epoch, uint16_t mss);
uint32_t tcp_cubic_window(uint32_t w_max, uint32_t k_ms, uint64_t t_ms, uint16_t mss);
uint32_t tcp_cubic_est_step(uint32_t w_est, uint32_t cwnd_prior, uint32_t cwnd, uint32_t acked, uint16_t mss,
                            uint64_t *credit);

/* A parsed segment. */
struct tcp_seg {
    uint32_t seq, ack, len;       /* len: payload bytes (SYN/FIN not counted) */
    uint16_t sport, dport, win;
    uint8_t flags;
    const uint8_t *data;
    /* options (SYN only matters) */
    uint16_t mss;
    uint8_t wscale;
    bool has_mss, has_wscale, sack_ok;
    bool has_ts;                  /* RFC 7323 TSopt, any segment */
    uint32_t tsval, tsecr;
    bool ce;                      /* the IP header carried CE (RFC 3168) */
    struct netbuf **frame;        /* ip_info.frame: the buffer data lies in, when it may be handed on */
    bool chained;                 /* data continues past frame's first buffer (see ip_info.chained) */
    uint8_t nsack;                /* SACK blocks (RFC 2018), any segment */
    uint32_t sack[TCP_SACK_BLOCKS][2];
};

struct tcp_ooo {
    struct tcp_ooo *next;
    uint32_t seq, len;
    uint8_t data[];
};

struct tcp_listener {
    uint16_t port;
    bool used;
    unsigned half_open;           /* SYN-RECEIVED connections born here */
    const struct tcp_callbacks *cb;
    void *arg;
    const struct tcp_cc_ops *cc;  /* for the connections it accepts */
};

enum { TT_RTX, TT_PERSIST, TT_DELACK, TT_KEEPALIVE, TT_COUNT };

struct tcp_conn {
    struct tcp_conn *hnext;       /* hash chain */
    struct net_stack *ns;
    struct tcp_listener *listener; /* SYN-RECEIVED from a passive open; NULL afterwards */
    enum tcp_state state;
    uint32_t lip, rip;
    uint16_t lport, rport;
    const struct tcp_callbacks *cb;
    void *arg;

    /* send side (RFC 9293 §3.3.1 names) */
    uint32_t iss, snd_una, snd_nxt, snd_max, snd_wl1, snd_wl2;
    uint32_t snd_wnd, max_snd_wnd;
    uint8_t snd_wscale, rcv_wscale;
    uint16_t mss;                 /* effective send MSS */
    uint8_t *sbuf;                /* ring: byte at sequence buf_seq is at sbuf[sbuf_head] */
    uint32_t sbuf_cap;            /* ring size, a power of two */
    uint32_t sbuf_head, sbuf_len, buf_seq;
    bool fin_queued;              /* the app closed: FIN follows the buffered data */
    bool nodelay, want_writable;

    /* receive side */
    uint32_t irs, rcv_nxt, rcv_adv;  /* rcv_adv: right edge last advertised */
    struct tcp_ooo *ooo;
    uint32_t ooo_bytes, ooo_segs;
    uint32_t sack_recent[TCP_SACK_BLOCKS]; /* latest out-of-order arrivals, newest first (RFC 2018 §4) */
    uint8_t delack_segs;          /* data segments received since our last ACK */
    /* In-order data the app has not taken (tcp_recv_pause): it shrinks the window we advertise.
       Copying apps' bytes wait in held; zero-copy apps' buffers in held_bufs (chains linked by next). */
    uint8_t *held;
    struct netbuf *held_bufs, *held_bufs_tail;
    uint32_t held_len;
    bool rcv_paused, fin_held;
    bool ack_now;                 /* an ACK must go out before this input returns */

    /* RTT and retransmission (RFC 6298) */
    uint64_t srtt_ns, rttvar_ns, rto_ns;
    bool rtt_valid, rtt_timing;
    uint32_t rtt_seq;
    uint64_t rtt_start_ns;
    uint8_t retries, persist_backoff, ka_probes;

    /* congestion control (RFC 5681, RFC 6582) */
    const struct tcp_cc_ops *cc;
    uint32_t cwnd, ssthresh, recover, dupacks, bytes_acked;
    bool in_recovery;
    struct tcp_cubic cubic;
    /* SACK (RFC 2018, RFC 6675): negotiated; the peer's SACKed ranges, sorted, above snd_una; in recovery,
       holes below rtx_next have been retransmitted. */
    bool sack_ok;
    uint8_t nsacked;
    uint32_t sacked[TCP_SCOREBOARD][2];
    uint32_t rtx_next;
    /* RFC 6675 §4 NextSeg rule 4: a rescue retransmission was sent in the recovery whose RecoveryPoint
       was rescue_rxt (one per recovery). */
    bool rescue_sent;
    uint32_t rescue_rxt;

    /* Timestamps (RFC 7323): ts_ok is "offered" until the handshake decides, then "negotiated". */
    bool ts_ok;
    uint32_t ts_offset;           /* added to the ms clock: per connection, from a keyed hash (RFC 7323 §5.4) */
    uint32_t ts_recent, last_ack_sent;
    uint64_t ts_recent_ns;        /* when ts_recent was set: the 24-day rule */

    /* ECN (RFC 3168): ecn_ok is "offered" until the handshake decides, then "negotiated". */
    bool ecn_ok;
    bool ecn_ece;                 /* a CE arrived: ECE on our ACKs until the peer's CWR */
    bool ecn_cwr;                 /* we reduced cwnd for an ECE: CWR on the next new data segment */
    uint32_t ecn_recover;         /* react to ECE once per window: not again until this is acknowledged */

    bool keepalive;
    uint64_t ka_idle_ns, ka_intvl_ns, last_rx_ns;

    struct tcp_conn_counters ctr;  /* tcp_get_info() */

    struct timer timers[TT_COUNT];
    uint8_t armed;                /* bit per TT_*: armed by us and not yet fired or cancelled */
    unsigned busy;                /* nesting depth of stack frames using c */
    bool dead;                    /* closed; freed when busy drops to zero */
};

struct tcp_stack {
    struct net_stack *ns;
    uint8_t key[16];              /* SipHash key: ISNs and the table's hash */
    struct tcp_conn *buckets[TCP_HASH_BUCKETS];
    struct tcp_listener listeners[TCP_MAX_LISTENERS];
    unsigned nconns, max_conns, backlog;
    uint16_t next_port;
    /* RFC 5961 §7 challenge ACK limit: a per-second budget for the shard */
    uint64_t challenge_epoch_ns;
    unsigned challenge_count;
    uint64_t cookies_until_ns;    /* cookie ACKs are checked only until two slots after the last cookie */
    struct tcp_stats stats;
};

/* tcp_isn.c */
uint64_t tcp_siphash(const uint8_t key[16], const uint8_t *in, size_t n);
uint32_t tcp_isn(const struct tcp_stack *ts, uint32_t lip, uint16_t lport, uint32_t rip, uint16_t rport,
                 uint64_t now_ns);
/* SYN cookies: the flow, and the peer's ISN (the SYN's sequence number). */
struct tcp_cookie_flow { uint32_t lip, rip, irs; uint16_t lport, rport; };
#define TCP_COOKIE_LIFE_NS (128ULL * 1000000000ULL)   /* two 64 s slots */
uint32_t tcp_cookie_make(const struct tcp_stack *ts, const struct tcp_cookie_flow *f, uint16_t mss, uint64_t now_ns);
/* The MSS the cookie encodes, or 0 when it is not one we sent in the current or previous slot. */
uint16_t tcp_cookie_check(const struct tcp_stack *ts, const struct tcp_cookie_flow *f, uint32_t cookie,
                          uint64_t now_ns);

/* Options a cookie SYN,ACK offered besides the MSS (only with timestamps): the peer's window scale
   (wscale_ok: both sides scale), SACK-permitted and ECN. */
struct tcp_cookie_opts { uint8_t wscale; bool wscale_ok, sack_ok, ecn_ok; };
#define TCP_COOKIE_TS_BITS 6
/* The cookie SYN,ACK's TSval clock part (ms, before the connection's offset): not above now_ms, its low
   TCP_COOKIE_TS_BITS bits the options. */
uint32_t tcp_cookie_ts_encode(uint32_t now_ms, const struct tcp_cookie_opts *o);
/* The options from a final ACK's TSecr less the offset; false when it cannot echo a cookie SYN,ACK. */
bool tcp_cookie_ts_decode(uint32_t echo_ms, uint32_t now_ms, struct tcp_cookie_opts *o);

/* Per-connection offset of the TSval clock (a keyed hash of the 4-tuple, so SYN cookies can recompute it). */
uint32_t tcp_ts_offset(const struct tcp_stack *ts, uint32_t lip, uint16_t lport, uint32_t rip, uint16_t rport);

/* tcp_conn.c */
struct tcp_conn *tcp_lookup(struct tcp_stack *ts, uint32_t lip, uint16_t lport, uint32_t rip, uint16_t rport);
struct tcp_listener *tcp_find_listener(struct tcp_stack *ts, uint16_t port);
struct tcp_conn *tcp_conn_new(struct tcp_stack *ts, uint32_t lip, uint16_t lport, uint32_t rip, uint16_t rport);
void tcp_conn_hold(struct tcp_conn *c);
void tcp_conn_release(struct tcp_conn *c);
/* Ends the connection: timers off, out of the table, closed(why) if the app still has it. */
void tcp_conn_finish(struct tcp_conn *c, enum tcp_close_reason why, bool tell_app);
void tcp_enter_time_wait(struct tcp_conn *c);
void tcp_deliver_closed(struct tcp_conn *c, enum tcp_close_reason why);

/* tcp_output.c */
void tcp_output(struct tcp_conn *c);
void tcp_send_ack(struct tcp_conn *c);
void tcp_send_syn(struct tcp_conn *c);
void tcp_send_rst_for(struct net_stack *ns, const struct ip_info *ip, const struct tcp_seg *s);
void tcp_send_cookie_synack(struct net_stack *ns, const struct ip_info *ip, const struct tcp_seg *s, uint32_t cookie,
                            const struct tcp_cookie_opts *opts);
void tcp_send_rst_conn(struct tcp_conn *c);
void tcp_send_challenge_ack(struct tcp_conn *c);
void tcp_retransmit_first(struct tcp_conn *c);
void tcp_send_probe(struct tcp_conn *c, bool keepalive);
uint32_t tcp_flight(const struct tcp_conn *c);
uint32_t tcp_pipe(const struct tcp_conn *c);
void tcp_sack_retransmit(struct tcp_conn *c);
/* RFC 6675 IsLost(snd_una): enough is SACKed above the first unacknowledged octet to deem it lost. */
bool tcp_sack_head_lost(const struct tcp_conn *c);
uint32_t tcp_fin_seq(const struct tcp_conn *c);
bool tcp_fin_sent(const struct tcp_conn *c);

/* tcp_timer.c */
void tcp_timer_arm(struct tcp_conn *c, unsigned which, uint64_t after_ns);
void tcp_timer_cancel(struct tcp_conn *c, unsigned which);
void tcp_timers_init(struct tcp_conn *c);
void tcp_timers_cancel_all(struct tcp_conn *c);
void tcp_rtt_sample(struct tcp_conn *c, uint64_t rtt_ns);
/* The same with the gains divided by the samples expected per round trip (RFC 7323 Appendix G). */
void tcp_rtt_sample_weighted(struct tcp_conn *c, uint64_t rtt_ns, uint32_t expected);
void tcp_arm_rtx(struct tcp_conn *c);
/* RFC 6298 §5.7 as the handshake completes (while c->retries still counts the SYN's timeouts). */
void tcp_rto_handshake_done(struct tcp_conn *c);

/* tcp_input.c */
void tcp_ooo_free(struct tcp_conn *c);

static inline struct tcp_stack *tcp_of(const struct tcp_conn *c) { return c->ns->tcp; }
static inline uint64_t tcp_now(const struct tcp_conn *c) { return c->ns->env->now_ns(); }
/* Our TSval clock: milliseconds (RFC 7323 §5.4 asks for 1 ms to 1 s per tick) plus the connection's offset. */
static inline uint32_t tcp_ts_clock(uint64_t now_ns, uint32_t offset) { return (uint32_t)(now_ns / 1000000) + offset; }
static inline uint32_t tcp_ts_now(const struct tcp_conn *c) { return tcp_ts_clock(tcp_now(c), c->ts_offset); }
/* Held data may exceed TCP_RCVBUF by less than one window-scale unit (the window field rounds up). */
#define TCP_HELD_CAP (TCP_RCVBUF + (1u << 14))
uint32_t tcp_rcv_free(const struct tcp_conn *c);
#endif
