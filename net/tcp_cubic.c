/*
 * CUBIC window growth (RFC 9438), the alternative to NewReno (tcp_cc.c).
 * Slow start and the fast-retransmit/recovery bookkeeping are shared with
 * NewReno; CUBIC replaces growth in congestion avoidance and the reduction
 * on loss. The kernel has no floating point, so the constants are
 * fractions (beta_cubic = 7/10, C = 4/10), time is in milliseconds and
 * windows in bytes: W_cubic(t) = C * (t - K)^3 * MSS + W_max.
 */
#include "tcp_impl.h"

#define CUBIC_BETA_NUM        7        /* beta_cubic = 0.7 (RFC 9438 §4.6) */
#define CUBIC_BETA_DEN        10
/* Fast convergence (RFC 9438 §4.7) releases bandwidth: W_max = cwnd * (1 + beta_cubic) / 2 = 0.85. */
#define CUBIC_FC_NUM          17
#define CUBIC_FC_DEN          20
/* alpha_cubic = 3 * (1 - beta) / (1 + beta) = 9/17 (RFC 9438 §4.3): Reno's average rate at beta 0.7. */
#define CUBIC_ALPHA_NUM       9
#define CUBIC_ALPHA_DEN       17
/* C = 0.4 segments/s^3; with t in ms, C * t^3 segments = t^3 / 2.5e9. */
#define CUBIC_MS3_PER_SEG     2500000000ULL
/* |t - K| beyond ~17 min saturates: the cube still fits 64 bits and the target is capped at 1.5 cwnd. */
#define CUBIC_MAX_DT_MS       (1ULL << 20)
#define CUBIC_CBRT_MAX        2642245u /* floor(cbrt(2^64 - 1)) */

/* floor(cbrt(x)) by bisection: ~22 steps of integer multiplies, no FPU. */
uint32_t tcp_cubic_cbrt(uint64_t x)
{
    uint32_t lo = 0, hi = CUBIC_CBRT_MAX;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1) / 2;
        if ((uint64_t)mid * mid * mid <= x)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* K = cbrt((W_max - cwnd_epoch) / C) (RFC 9438 eq. 2), in ms: the time the curve takes back to W_max. */
uint32_t tcp_cubic_k_ms(uint32_t w_max, uint32_t cwnd_epoch, uint16_t mss)
{
    if (cwnd_epoch >= w_max || !mss)
        return 0;
    /* diff < 2^32 bytes, so diff * 2.5e9 < 1.1e19 stays below 2^64. */
    return tcp_cubic_cbrt((uint64_t)(w_max - cwnd_epoch) * CUBIC_MS3_PER_SEG / mss);
}

/* C * d^3 segments in bytes, split so that neither product overflows for d <= CUBIC_MAX_DT_MS. */
static uint64_t cubic_offset_bytes(uint64_t d_ms, uint16_t mss)
{
    if (d_ms > CUBIC_MAX_DT_MS)
        d_ms = CUBIC_MAX_DT_MS;
    uint64_t cube = d_ms * d_ms * d_ms;
    return cube / CUBIC_MS3_PER_SEG * mss + cube % CUBIC_MS3_PER_SEG * mss / CUBIC_MS3_PER_SEG;
}

/* W_cubic(t) = C * (t - K)^3 + W_max (RFC 9438 eq. 1), bytes, saturating at 0 and UINT32_MAX. */
uint32_t tcp_cubic_window(uint32_t w_max, uint32_t k_ms, uint64_t t_ms, uint16_t mss)
{
    if (t_ms < k_ms) {                                  /* concave: approaching W_max from below */
        uint64_t off = cubic_offset_bytes(k_ms - t_ms, mss);
        return off >= w_max ? 0 : (uint32_t)(w_max - off);
    }
    uint64_t w = w_max + cubic_offset_bytes(t_ms - k_ms, mss);      /* convex: probing beyond W_max */
    return w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
}

/*
 * The Reno-friendly estimate (RFC 9438 §4.3): W_est += alpha * acked / cwnd segments,
 * with alpha = 1 once W_est reaches the window before the loss. *credit keeps the
 * remainder in (alpha-numerator x bytes) so that small ACKs are not rounded away.
 */
uint32_t tcp_cubic_est_step(uint32_t w_est, uint32_t cwnd_prior, uint32_t cwnd, uint32_t acked, uint16_t mss,
                            uint64_t *credit)
{
    uint64_t num = w_est >= cwnd_prior ? 1 : CUBIC_ALPHA_NUM;
    uint64_t den = w_est >= cwnd_prior ? 1 : CUBIC_ALPHA_DEN;
    uint64_t per_mss = (uint64_t)(cwnd ? cwnd : 1) * den;
    *credit += (uint64_t)acked * num;
    uint64_t n = *credit / per_mss;
    *credit -= n * per_mss;
    uint64_t w = w_est + n * mss;
    return w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
}

static void cubic_init(struct tcp_conn *c)
{
    tcp_newreno.init(c);
    c->cubic = (struct tcp_cubic){ 0 };
}

/* The first ACK of a congestion-avoidance stage starts the curve from the current window. */
static void epoch_begin(struct tcp_conn *c, uint64_t now)
{
    struct tcp_cubic *cu = &c->cubic;
    cu->epoch_ns = now;
    cu->in_epoch = true;
    cu->w_est = c->cwnd;
    cu->est_credit = cu->grow_credit = 0;
    /* RFC 9438 §4.8: after a timeout the curve restarts flat at this window (K = 0); likewise
       when the window already reached W_max (no loss yet, or the app held it back). */
    if (cu->after_timeout || c->cwnd >= cu->w_max) {
        cu->w_max = c->cwnd;
        cu->k_ms = 0;
    } else {
        cu->k_ms = tcp_cubic_k_ms(cu->w_max, c->cwnd, c->mss);
    }
    cu->after_timeout = false;
}

/* RFC 9438 §4.4/4.5: per ACK, close (target - cwnd) / cwnd of the gap to W_cubic(t + RTT). */
static void grow_toward(struct tcp_conn *c, uint32_t target, uint32_t acked)
{
    struct tcp_cubic *cu = &c->cubic;
    uint32_t cwnd = c->cwnd;
    uint64_t cap = (uint64_t)cwnd * 3 / 2;             /* no more than 1.5x per RTT, even after idle */
    if (target > cap)
        target = (uint32_t)cap;
    if (target <= cwnd)
        return;
    cu->grow_credit += (uint64_t)(target - cwnd) * acked;
    uint64_t inc = cu->grow_credit / cwnd;
    cu->grow_credit -= inc * cwnd;
    c->cwnd = inc > UINT32_MAX - cwnd ? UINT32_MAX : cwnd + (uint32_t)inc;
}

static void cubic_on_ack(struct tcp_conn *c, uint32_t acked)
{
    struct tcp_cubic *cu = &c->cubic;
    if (c->cwnd < c->ssthresh) {
        tcp_slow_start(c, acked);
        return;
    }
    uint64_t now = tcp_now(c);
    if (!cu->in_epoch)
        epoch_begin(c, now);
    uint64_t t_ms = (now - cu->epoch_ns) / 1000000;
    uint64_t rtt_ms = c->rtt_valid ? c->srtt_ns / 1000000 : 0;
    cu->w_est = tcp_cubic_est_step(cu->w_est, cu->cwnd_prior, c->cwnd, acked, c->mss, &cu->est_credit);
    if (tcp_cubic_window(cu->w_max, cu->k_ms, t_ms, c->mss) < cu->w_est) {
        if (cu->w_est > c->cwnd)
            c->cwnd = cu->w_est;                        /* Reno-friendly region (RFC 9438 §4.3) */
        return;
    }
    grow_toward(c, tcp_cubic_window(cu->w_max, cu->k_ms, t_ms + rtt_ms, c->mss), acked);
}

/* RFC 9438 §4.6-4.8: remember W_max (with fast convergence), ssthresh = beta_cubic x flight;
   a timeout keeps W_max and restarts the curve flat (§4.8). */
static uint32_t cubic_ssthresh(struct tcp_conn *c, bool timeout)
{
    struct tcp_cubic *cu = &c->cubic;
    cu->in_epoch = false;
    if (!timeout) {
        cu->cwnd_prior = c->cwnd;
        /* A loss below the last W_max means competition grew: give some of it up. */
        cu->w_max = c->cwnd < cu->w_max ? (uint32_t)((uint64_t)c->cwnd * CUBIC_FC_NUM / CUBIC_FC_DEN) : c->cwnd;
    } else {
        cu->after_timeout = true;
    }
    /* Bytes in flight, as NewReno's hook uses (RFC 5681 eq. 4): cwnd may not have been used in full. */
    uint32_t flight = c->snd_max - c->snd_una;
    uint32_t ss = (uint32_t)((uint64_t)flight * CUBIC_BETA_NUM / CUBIC_BETA_DEN);
    return ss > 2u * c->mss ? ss : 2u * c->mss;
}

const struct tcp_cc_ops tcp_cubic = {
    .name = "cubic", .init = cubic_init, .on_ack = cubic_on_ack, .ssthresh = cubic_ssthresh,
};
