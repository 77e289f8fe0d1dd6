/*
 * Connection timers: retransmission (RFC 6298; also the TIME-WAIT
 * timer, since nothing is retransmitted then), persist (zero-window
 * probes with backoff), delayed ACK and keepalive. Each is a struct
 * timer in the connection; `armed` records which are set, so that a
 * connection is freed only once none can fire.
 */
#include "tcp_impl.h"

#define TIMER_CONN(t, which) ((struct tcp_conn *)((char *)(t) - offsetof(struct tcp_conn, timers[which])))

void tcp_timer_arm(struct tcp_conn *c, unsigned which, uint64_t after_ns)
{
    c->armed |= (uint8_t)(1u << which);
    c->ns->env->timer_arm(&c->timers[which], tcp_now(c) + after_ns);
}

void tcp_timer_cancel(struct tcp_conn *c, unsigned which)
{
    if (!(c->armed & (1u << which)))
        return;
    c->armed &= (uint8_t)~(1u << which);
    c->ns->env->timer_cancel(&c->timers[which]);
}

void tcp_timers_cancel_all(struct tcp_conn *c)
{
    for (unsigned t = 0; t < TT_COUNT; t++)
        tcp_timer_cancel(c, t);
}

static uint64_t backed_off(uint64_t base, unsigned shift)
{
    uint64_t v = shift >= 16 ? TCP_RTO_MAX_NS : base << shift;
    return v > TCP_RTO_MAX_NS ? TCP_RTO_MAX_NS : v;
}

void tcp_arm_rtx(struct tcp_conn *c)
{
    tcp_timer_arm(c, TT_RTX, c->rto_ns);
}

/*
 * RFC 6298 §5.7: when the retransmission timer expired awaiting the ACK of our SYN (or SYN,ACK), the RTO
 * is re-initialized to 3 s as data transmission begins, whatever the backoff had made it: the 1 s initial
 * RTO was evidently too short for this path, or the path loses packets. Unless the handshake gave an RTT
 * measurement: only with timestamps, whose echo dates the transmission it answers even when it was a
 * retransmission (RFC 7323 §4.1; Karn's rule, §3, stops samples without them). A measurement is better
 * knowledge than the fallback §5.7 gives for having none, and RFC 6298 §2.2 sets the RTO from it
 * (Linux too falls back to 3 s only without a handshake sample). On a passive open the final ACK's
 * sample is taken just after this and replaces the 3 s the same way.
 */
void tcp_rto_handshake_done(struct tcp_conn *c)
{
    if (c->retries && !c->rtt_valid)
        c->rto_ns = TCP_RTO_SYN_LOST_NS;
}

/* RFC 6298 §2.2–2.4 with the clock granularity G taken as 1 ms; alpha = 1/(8 es), beta = 1/(4 es). */
void tcp_rtt_sample_weighted(struct tcp_conn *c, uint64_t r, uint32_t es)
{
    if (!c->rtt_valid) {
        c->srtt_ns = r;
        c->rttvar_ns = r / 2;
        c->rtt_valid = true;
    } else {
        uint64_t err = c->srtt_ns > r ? c->srtt_ns - r : r - c->srtt_ns;
        int64_t dvar = ((int64_t)err - (int64_t)c->rttvar_ns) / (4 * (int64_t)es);
        int64_t dsrtt = ((int64_t)r - (int64_t)c->srtt_ns) / (8 * (int64_t)es);
        c->rttvar_ns = (uint64_t)((int64_t)c->rttvar_ns + dvar);
        c->srtt_ns = (uint64_t)((int64_t)c->srtt_ns + dsrtt);
    }
    uint64_t k = 4 * c->rttvar_ns;
    uint64_t rto = c->srtt_ns + (k > 1000000 ? k : 1000000);
    c->rto_ns = rto < TCP_RTO_MIN_NS ? TCP_RTO_MIN_NS : rto > TCP_RTO_MAX_NS ? TCP_RTO_MAX_NS : rto;
}

void tcp_rtt_sample(struct tcp_conn *c, uint64_t r) { tcp_rtt_sample_weighted(c, r, 1); }

static void fire_begin(struct tcp_conn *c, unsigned which)
{
    c->armed &= (uint8_t)~(1u << which);
    tcp_conn_hold(c);
}

static void fire_end(struct tcp_conn *c)
{
    if (!c->dead)
        tcp_output(c);
    tcp_conn_release(c);
}

static void give_up(struct tcp_conn *c)
{
    tcp_of(c)->stats.timeouts++;
    c->ctr.timeouts++;
    /* Like Linux, no RST: the peer is presumed unreachable. */
    tcp_conn_finish(c, TCP_CLOSED_TIMEOUT, true);
}

static void on_rto(struct tcp_conn *c)
{
    if (c->state == TCPS_TIME_WAIT) {
        tcp_conn_finish(c, TCP_CLOSED_NORMAL, false);
        return;
    }
    if (c->snd_una == c->snd_max)
        return;                   /* everything was acknowledged meanwhile */
    unsigned limit = c->state == TCPS_SYN_SENT ? TCP_SYN_RETRIES :
                     c->state == TCPS_SYN_RECEIVED ? TCP_SYNACK_RETRIES : TCP_MAX_RETRIES;
    if (c->retries >= limit) {
        give_up(c);
        return;
    }
    c->retries++;
    tcp_of(c)->stats.timeouts++;
    c->ctr.timeouts++;
    c->rto_ns = backed_off(c->rto_ns, 1);     /* RFC 6298 §5.5 */
    if (c->state == TCPS_SYN_SENT || c->state == TCPS_SYN_RECEIVED) {
        tcp_send_syn(c);
        return;
    }
    /* RFC 5681 §3.1: one segment, then slow start from the lost one (go-back-N from snd_una). */
    c->ssthresh = c->cc->ssthresh(c, true);
    c->cwnd = c->mss;
    c->in_recovery = false;
    c->dupacks = 0;
    c->nsacked = 0;               /* RFC 2018 §8: after a timeout, SACKed data may have been reneged */
    c->recover = c->snd_max;
    c->ecn_recover = c->snd_max;  /* RFC 3168 §6.1.2: no second reduction for ECEs from this window */
    c->ecn_cwr = c->ecn_ok;
    c->snd_nxt = c->snd_una;
    c->rtt_timing = false;        /* Karn */
    /* fire_end's output sends the first segment again, cwnd allowing one. */
}

static void rtx_fired(struct timer *t)
{
    struct tcp_conn *c = TIMER_CONN(t, TT_RTX);
    fire_begin(c, TT_RTX);
    on_rto(c);
    fire_end(c);
}

static void persist_fired(struct timer *t)
{
    struct tcp_conn *c = TIMER_CONN(t, TT_PERSIST);
    fire_begin(c, TT_PERSIST);
    if (c->snd_wnd == 0 && seq_lt(c->snd_una, tcp_fin_seq(c))) {
        tcp_send_probe(c, false);
        if (c->persist_backoff < 16)
            c->persist_backoff++;
        tcp_timer_arm(c, TT_PERSIST, backed_off(c->rto_ns, c->persist_backoff));
    }
    fire_end(c);
}

static void delack_fired(struct timer *t)
{
    struct tcp_conn *c = TIMER_CONN(t, TT_DELACK);
    fire_begin(c, TT_DELACK);
    if (!c->dead)
        tcp_send_ack(c);
    fire_end(c);
}

static void keepalive_fired(struct timer *t)
{
    struct tcp_conn *c = TIMER_CONN(t, TT_KEEPALIVE);
    fire_begin(c, TT_KEEPALIVE);
    uint64_t idle = tcp_now(c) - c->last_rx_ns;
    if (c->keepalive && c->state == TCPS_ESTABLISHED) {
        if (idle < c->ka_idle_ns) {
            c->ka_probes = 0;
            tcp_timer_arm(c, TT_KEEPALIVE, c->ka_idle_ns - idle);
        } else if (c->ka_probes >= TCP_KEEPALIVE_PROBES) {
            give_up(c);
        } else {
            c->ka_probes++;
            tcp_send_probe(c, true);
            tcp_timer_arm(c, TT_KEEPALIVE, c->ka_intvl_ns);
        }
    }
    fire_end(c);
}

void tcp_timers_init(struct tcp_conn *c)
{
    timer_init(&c->timers[TT_RTX], rtx_fired);
    timer_init(&c->timers[TT_PERSIST], persist_fired);
    timer_init(&c->timers[TT_DELACK], delack_fired);
    timer_init(&c->timers[TT_KEEPALIVE], keepalive_fired);
}
