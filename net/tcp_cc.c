/*
 * NewReno window growth (RFC 5681 §3.1): slow start below ssthresh,
 * then about one MSS per round trip, counted in acknowledged bytes
 * (appropriate byte counting, RFC 3465, with L = 2 MSS in slow start).
 * Fast retransmit and the RFC 6582 recovery bookkeeping live in
 * tcp_input.c, so another algorithm (CUBIC) only replaces these.
 */
#include "tcp_impl.h"

static void reno_init(struct tcp_conn *c)
{
    c->cwnd = TCP_INIT_CWND_SEGS * c->mss;
    c->ssthresh = 0xFFFFFFFFu;
    c->bytes_acked = 0;
}

void tcp_slow_start(struct tcp_conn *c, uint32_t acked)
{
    c->cwnd += acked < 2u * c->mss ? acked : 2u * c->mss;
}

static void reno_on_ack(struct tcp_conn *c, uint32_t acked)
{
    if (c->cwnd < c->ssthresh) {
        tcp_slow_start(c, acked);
        return;
    }
    c->bytes_acked += acked;
    if (c->bytes_acked >= c->cwnd) {
        c->bytes_acked -= c->cwnd;
        c->cwnd += c->mss;
    }
}

/* RFC 5681 equation (4). */
static uint32_t reno_ssthresh(struct tcp_conn *c, bool timeout)
{
    (void)timeout;
    uint32_t half = (c->snd_max - c->snd_una) / 2;
    return half > 2u * c->mss ? half : 2u * c->mss;
}

const struct tcp_cc_ops tcp_newreno = {
    .name = "newreno", .init = reno_init, .on_ack = reno_on_ack, .ssthresh = reno_ssthresh,
};

extern const struct tcp_cc_ops tcp_cubic;

const struct tcp_cc_ops *tcp_cc_ops_of(enum tcp_cc_algo algo)
{
    switch (algo) {
    case TCP_CC_NEWRENO:
        return &tcp_newreno;
    case TCP_CC_CUBIC:
        return &tcp_cubic;
    }
    return 0;
}
