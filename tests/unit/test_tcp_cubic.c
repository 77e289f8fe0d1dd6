/*
 * CUBIC's integer math (net/tcp_cubic.c) against RFC 9438's formulas worked
 * by hand: C = 0.4, beta_cubic = 0.7, windows in bytes (MSS 1000 here so
 * that segments read off directly), time in ms.
 */
#include "check.h"
#include <string.h>
#include "../../net/tcp_cc.c"
#include "../../net/tcp_cubic.c"

#define MSS 1000

TEST(cubic_cbrt_exact_and_floor)
{
    CHECK_EQ(tcp_cubic_cbrt(0), 0);
    CHECK_EQ(tcp_cubic_cbrt(1), 1);
    CHECK_EQ(tcp_cubic_cbrt(26), 2);
    CHECK_EQ(tcp_cubic_cbrt(27), 3);
    CHECK_EQ(tcp_cubic_cbrt(1000000000000000000ULL), 1000000);
    CHECK_EQ(tcp_cubic_cbrt(999999999999999999ULL), 999999);
    CHECK_EQ(tcp_cubic_cbrt(UINT64_MAX), 2642245);
}

/* K = cbrt((W_max - cwnd_epoch) / C): 30 segments -> cbrt(75) = 4.217 s; 3 -> cbrt(7.5) = 1.957 s. */
TEST(cubic_k_known_values)
{
    CHECK_EQ(tcp_cubic_k_ms(100 * MSS, 70 * MSS, MSS), 4217);
    CHECK_EQ(tcp_cubic_k_ms(10 * MSS, 7 * MSS, MSS), 1957);
    CHECK_EQ(tcp_cubic_k_ms(14600, 11680, 1460), 1709);       /* the packet script's epoch: cbrt(5) s */
    CHECK_EQ(tcp_cubic_k_ms(50 * MSS, 60 * MSS, MSS), 0);     /* already above W_max */
    CHECK(tcp_cubic_k_ms(UINT32_MAX, 0, 536) > 0);            /* no overflow at the extreme */
}

TEST(cubic_window_at_several_t)
{
    uint32_t k = tcp_cubic_k_ms(100 * MSS, 70 * MSS, MSS);
    uint32_t w0 = tcp_cubic_window(100 * MSS, k, 0, MSS);
    CHECK(w0 >= 70 * MSS - 10 && w0 <= 70 * MSS + 10);       /* starts at cwnd_epoch (K rounds down) */
    CHECK_EQ(tcp_cubic_window(100 * MSS, k, k, MSS), 100 * MSS);
    CHECK_EQ(tcp_cubic_window(100 * MSS, k, k + 1000, MSS), 100 * MSS + 400);     /* +C x 1 s^3 */
    CHECK_EQ(tcp_cubic_window(100 * MSS, k, k - 1000, MSS), 100 * MSS - 400);
    CHECK_EQ(tcp_cubic_window(100 * MSS, k, k + 10000, MSS), 500 * MSS);          /* +0.4 x 1000 */
    CHECK_EQ(tcp_cubic_window(100 * MSS, 0, 1ULL << 40, 65535), UINT32_MAX);      /* saturates */
    CHECK_EQ(tcp_cubic_window(MSS, 100000, 0, 9000), 0);                          /* floors at 0 */
}

/* Below W_max the curve flattens as it nears K (concave); beyond, it steepens (convex). */
TEST(cubic_concave_then_convex)
{
    uint32_t k = tcp_cubic_k_ms(100 * MSS, 70 * MSS, MSS), prev_step = UINT32_MAX;
    for (uint32_t t = 0; t + 500 <= k; t += 500) {
        uint32_t step = tcp_cubic_window(100 * MSS, k, t + 500, MSS) - tcp_cubic_window(100 * MSS, k, t, MSS);
        CHECK(step > 0 && step < prev_step);
        prev_step = step;
    }
    prev_step = 0;
    for (uint32_t t = k; t < k + 4000; t += 500) {
        uint32_t step = tcp_cubic_window(100 * MSS, k, t + 500, MSS) - tcp_cubic_window(100 * MSS, k, t, MSS);
        CHECK(step > prev_step);
        prev_step = step;
    }
}

/* W_est grows alpha = 9/17 segment per window acknowledged, 1 once it passes the pre-loss window. */
TEST(cubic_est_step_alpha)
{
    uint64_t credit = 0;
    uint32_t w = 70 * MSS;
    for (int i = 0; i < 17; i++)
        w = tcp_cubic_est_step(w, 100 * MSS, 70 * MSS, 70 * MSS, MSS, &credit);
    CHECK_EQ(w, 79 * MSS);                                     /* 17 windows -> 9 segments */
    credit = 0;
    CHECK_EQ(tcp_cubic_est_step(100 * MSS, 100 * MSS, 100 * MSS, 100 * MSS, MSS, &credit), 101 * MSS);
    credit = 0;
    w = 70 * MSS;
    for (int i = 0; i < 70 * 17; i++)                          /* one MSS per ACK: no rounding loss */
        w = tcp_cubic_est_step(w, 100 * MSS, 70 * MSS, MSS, MSS, &credit);
    CHECK_EQ(w, 79 * MSS);
}

/* W_est after n round trips of a full window each, from cwnd_epoch. */
static uint32_t est_after(uint32_t rtts)
{
    uint64_t credit = 0;
    uint32_t w = 70 * MSS;
    for (uint32_t i = 0; i < rtts; i++)
        w = tcp_cubic_est_step(w, 100 * MSS, w, w, MSS, &credit);
    return w;
}

/* At a 1 ms RTT Reno's per-RTT growth outpaces the cubic curve, which runs on wall time; at 100 ms not. */
TEST(cubic_friendly_region_dominates_at_small_rtt)
{
    uint32_t k = tcp_cubic_k_ms(100 * MSS, 70 * MSS, MSS);
    CHECK(est_after(200) > tcp_cubic_window(100 * MSS, k, 200 * 1, MSS));       /* 200 RTTs of 1 ms */
    CHECK(est_after(20) < tcp_cubic_window(100 * MSS, k, 20 * 100, MSS));       /* 20 RTTs of 100 ms */
}

TEST_MAIN()
