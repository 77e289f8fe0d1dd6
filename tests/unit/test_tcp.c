/*
 * TCP tests: unit tests of the pieces (sequence arithmetic, SipHash,
 * ISNs) and an interpreter for packet scripts, the .pkt files in tests/unit/tcp/,
 * each of which is reported as its own test (tcp_pkt_<name>).
 *
 * The stack runs on the host with a virtual clock (script time 0 is
 * 1 s after boot), kernel/timer_wheel.c as its timers, ARP pre-filled.
 * We are 10.0.0.1, the scripted peer 10.0.0.2.
 *
 * Script syntax, one event per line, `#` starts a comment:
 *
 *   TIME < FLAGS SEQ:END(LEN) [ack N] [win N] [<OPTIONS>]   inject a segment from the peer
 *   TIME > FLAGS SEQ:END(LEN) [ack N] [win N] [<OPTIONS>]   expect the stack's next segment
 *   TIME COMMAND ARGS...                                    app action or expected callback
 *
 * TIME is seconds, absolute ("0.200") or relative to the previous line
 * ("+0.040"). An expected segment must leave within TOLERANCE_NS of its
 * time, and in order; before any other line runs, every segment sent so
 * far must have been matched (so unexpected output fails the script).
 *
 * FLAGS: any of S F R P, E (ECE), W (CWR), and "." for ACK ("S." is SYN,ACK; "." a bare ACK).
 * Sequence numbers are relative: the peer's to its ISN (PEER_ISN, close to
 * 2^32 so that every data script crosses the wrap), ours to the ISN of our
 * SYN on that flow (0 before we sent one, e.g. for RSTs to closed ports).
 * END and LEN must agree. `ack` is required for "." segments. `win` is the
 * raw window field; injected segments default to 65535, expected ones are
 * checked only when it is given. `[ect0]`, `[ect1]`, `[ce]` or `[noecn]` is
 * the IP header's ECN field: injected segments default to not-ECT, expected
 * ones are checked only when it is given. `[gso N]` on an expected segment:
 * it leaves as one TSO frame the device cuts into N-byte pieces (without
 * it, an expected segment must not be a TSO frame). OPTIONS: comma-separated `mss N`,
 * `wscale N`, `sackOK`, `nop`, `sack A:B C:D...` (blocks relative to the acknowledged side's ISN,
 * like `ack`), `TS val V ecr E`; an expected segment without <...> must
 * carry no options. Our TSvals are written as script milliseconds: the
 * interpreter learns a flow's TSval offset from our first SYN with TSopt,
 * as if that SYN's TSval were its send time in ms; so `val` of our
 * segments and `ecr` of the peer's are relative to it, the peer's own
 * `val` (and our `ecr`) raw. Payload bytes follow a pattern of their stream offset,
 * checked in both directions.
 *
 * Commands:
 *   listen PORT            tcp_listen (and the flow's local port)
 *   connect PORT           tcp_connect to the peer's PORT
 *   local PORT             later segments go to our port PORT (without a listener there)
 *   peer PORT              later segments come from (and are expected to) peer port PORT
 *   send N [TAKEN]         tcp_send of N bytes; checks it took TAKEN (default N)
 *   close | abort          tcp_close / tcp_abort on the current connection
 *   nodelay on|off         tcp_set_nodelay
 *   limits CONNS BACKLOG   tcp_set_limits
 *   expect EVENT           the next callback: accepted, connected, writable, "recv N" (consecutive
 *                          data callbacks add up), "recv fin", "closed normal|reset|timeout|aborted|refused"
 *   stat NAME N            a tcp_stats counter has value N
 *   close_in_recv          the app calls tcp_close from its next FIN callback
 *   abort_in_recv          the app calls tcp_abort from its next recv callback
 *   zero_copy on|off       later listen/connect use recv_bufs (zero-copy receive) instead of recv, and
 *                          injected segments arrive in a receive buffer the stack may hand to the app;
 *                          the app keeps every chain until "release" (frees them all)
 *   pause | resume         tcp_recv_pause / tcp_recv_resume on the current connection
 *   info NAME VALUE        a field of tcp_get_info() on the current connection ("info state ESTABLISHED",
 *                          "info bytes_received 1000", counters such as segs_in, retransmits)
 *   keepalive IDLE INTVL   tcp_set_keepalive (seconds)
 *   listen PORT cubic      as listen, with tcp_listen_set_cc(TCP_CC_CUBIC); "connect PORT cubic" likewise
 *   cc CWND SSTHRESH       the current connection's cwnd and ssthresh are these (bytes; "-" skips one)
 *   rto MS                 the current connection's retransmission timeout is MS milliseconds (±1 ms)
 *   tso on|off             the device claims TCP segmentation (and checksum) offload; the
 *                          interpreter then fills checksums as the device would
 * At the end, every callback must have been expected and every segment matched.
 */
#include "check.h"
#include <dirent.h>
#include <stdarg.h>
#include <string.h>

#include "../support/net_stack_host.c"

#define LOCAL_IP   0x0A000001u
#define REMOTE_IP  0x0A000002u
#define PEER_ISN   0xFFFFFF00u
#define T0_NS      1000000000ULL
#define TOLERANCE_NS 2000000ULL
#define MAX_FRAMES 256
#define MAX_FLOWS  64

/* --- host environment --- */

/* A frame as the device got it: a TSO frame whole (up to 64 KiB of IP), with its piece size and headers. */
struct frame { uint64_t t; uint32_t len; uint16_t gso_size, hdr_len; uint8_t d[ETH_HLEN + 65536]; };

static struct timer_wheel wheel;
static uint64_t vnow;
static struct frame frames[MAX_FRAMES];
static unsigned nframes, frame_head;

/* What a device with checksum offload does: the sum from csum_start (its field holds the pseudo-header's). */
static void device_checksum(struct frame *fr, const struct netbuf *f)
{
    uint32_t at = f->csum_start + f->csum_offset;
    if (at + 2 > fr->len)
        return;
    wr16(fr->d + at, csum_finish(csum_add(0, fr->d + f->csum_start, fr->len - f->csum_start)));
}

static void env_send(struct net_stack *ns, struct netbuf *f)
{
    (void)ns;
    if (nframes - frame_head < MAX_FRAMES && netbuf_frame_len(f) <= sizeof frames[0].d) {
        struct frame *fr = &frames[nframes++ % MAX_FRAMES];
        fr->t = vnow;
        fr->len = 0;
        for (const struct netbuf *b = f; b; b = b->frag) {
            memcpy(fr->d + fr->len, b->data, b->len);
            fr->len += b->len;
        }
        fr->gso_size = f->gso_type == NETBUF_GSO_TCPV4 ? f->gso_size : 0;
        fr->hdr_len = f->hdr_len;
        if (f->flags & NETBUF_CSUM_PARTIAL)
            device_checksum(fr, f);
    }
    netbuf_free(f);
}

static void env_broadcast(struct net_stack *ns, void (*fn)(struct net_stack *, const void *), const void *a, size_t n)
{
    (void)ns, (void)fn, (void)a, (void)n;
}
static uint64_t env_now(void) { return vnow; }
static unsigned env_shards(void) { return 1; }
static void env_log(const char *fmt, ...) { (void)fmt; }
static void env_timer_arm(struct timer *t, uint64_t d) { timer_arm(&wheel, t, d); }
static bool env_timer_cancel(struct timer *t) { return timer_cancel(&wheel, t); }
static uint8_t random_seed;
static void env_random(void *buf, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ((uint8_t *)buf)[i] = (uint8_t)(random_seed + i * 37);
}

static const struct net_env env = {
    .send = env_send, .broadcast = env_broadcast, .now_ns = env_now, .shards = env_shards,
    .timer_arm = env_timer_arm, .timer_cancel = env_timer_cancel, .random = env_random, .log = env_log,
};

static void refresh_arp(void);

static void advance_to(uint64_t t)
{
    refresh_arp();
    for (;;) {
        uint64_t next = timer_wheel_next_deadline(&wheel);
        if (next > t)
            break;
        if (next > vnow)
            vnow = next;
        timer_wheel_advance(&wheel, vnow);
    }
    if (t > vnow)
        vnow = t;
    timer_wheel_advance(&wheel, vnow);
}

/* --- the interpreter's state --- */

static const char *script_name;
static int script_line;
static int script_failed;
static struct net_stack ns;
static struct tcp_conn *cur;
static uint16_t lport, rport = 40000;
static struct { uint16_t rport; uint32_t isn, ts_base; } flows[MAX_FLOWS];
static unsigned nflows;
static char events[64][48];
static unsigned nevents;
static uint32_t rx_off, tx_off;
static bool close_in_recv, abort_in_recv;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%d: ", script_name, script_line);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    script_failed = 1;
}

static uint8_t pattern(uint32_t off) { return (uint8_t)(off * 7 + (off >> 8)); }

static uint32_t our_isn(uint16_t port)
{
    for (unsigned i = 0; i < nflows; i++)
        if (flows[i].rport == port)
            return flows[i].isn;
    return 0;
}

static unsigned flow_of(uint16_t port)
{
    for (unsigned i = 0; i < nflows; i++)
        if (flows[i].rport == port)
            return i;
    if (nflows < MAX_FLOWS)
        flows[nflows++] = (typeof(flows[0])){ port, 0, 0 };
    return nflows - 1;
}

static void learn_isn(uint16_t port, uint32_t isn) { flows[flow_of(port)].isn = isn; }

/* Our TSval offset on the flow: what we send minus script milliseconds. */
static uint32_t our_ts_base(uint16_t port)
{
    for (unsigned i = 0; i < nflows; i++)
        if (flows[i].rport == port)
            return flows[i].ts_base;
    return 0;
}

static void event(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void event(const char *fmt, ...)
{
    if (nevents == 64)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(events[nevents++], sizeof events[0], fmt, ap);
    va_end(ap);
}

static void app_accepted(struct tcp_conn *c, void *arg)
{
    (void)arg;
    cur = c;
    rx_off = tx_off = 0;
    event("accepted");
}

static void app_connected(struct tcp_conn *c, void *arg)
{
    (void)arg;
    cur = c;
    event("connected");
}

/* Data the app got: checked against the pattern; consecutive data callbacks add up to one event. */
static void app_data(const uint8_t *d, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (d[i] != pattern(rx_off + (uint32_t)i)) {
            fail("received byte %u is wrong", (unsigned)(rx_off + i));
            break;
        }
    rx_off += (uint32_t)len;
}

static void data_event(size_t len)
{
    unsigned prev;
    if (nevents && sscanf(events[nevents - 1], "recv %u", &prev) == 1) {
        snprintf(events[nevents - 1], sizeof events[0], "recv %u", prev + (unsigned)len);
        return;
    }
    event("recv %u", (unsigned)len);
}

/* FIN or abort_in_recv handled; false when the call carries data to check. */
static bool app_recv_special(struct tcp_conn *c, size_t len)
{
    if (len == 0) {
        event("recv fin");
        if (close_in_recv) {
            close_in_recv = false;
            tcp_close(c);
        }
        return true;
    }
    if (abort_in_recv) {
        abort_in_recv = false;
        event("recv %u", (unsigned)len);
        tcp_abort(c);             /* the stack must not touch c after this */
        return true;
    }
    return false;
}

static void app_recv(struct tcp_conn *c, void *arg, const uint8_t *d, size_t len)
{
    (void)arg;
    if (app_recv_special(c, len))
        return;
    app_data(d, len);
    data_event(len);
}

/* Zero-copy receive: the app keeps every chain until "release". */
static struct netbuf *app_bufs[256];
static unsigned napp_bufs;

static void release_bufs(void)
{
    while (napp_bufs)
        netbuf_free(app_bufs[--napp_bufs]);
}

static void app_recv_bufs(struct tcp_conn *c, void *arg, struct netbuf *bufs, size_t len)
{
    (void)arg;
    size_t total = 0;
    for (const struct netbuf *b = bufs; b; b = b->frag) {
        app_data(b->data, b->len);
        total += b->len;
    }
    if (total != len)
        fail("recv_bufs: chain holds %zu bytes, len says %zu", total, len);
    if (bufs && napp_bufs < sizeof app_bufs / sizeof app_bufs[0])
        app_bufs[napp_bufs++] = bufs;
    else
        netbuf_free(bufs);
    if (app_recv_special(c, len))
        return;
    data_event(len);
}

static void app_writable(struct tcp_conn *c, void *arg) { (void)c, (void)arg; event("writable"); }

static void app_closed(struct tcp_conn *c, void *arg, enum tcp_close_reason why)
{
    (void)arg;
    static const char *names[] = { "normal", "reset", "timeout", "aborted", "refused" };
    if (c == cur)
        cur = 0;
    event("closed %s", names[why]);
}

static const struct tcp_callbacks app_cb = {
    .accepted = app_accepted, .connected = app_connected, .recv = app_recv, .writable = app_writable,
    .closed = app_closed,
};
static const struct tcp_callbacks app_zc_cb = {
    .accepted = app_accepted, .connected = app_connected, .recv_bufs = app_recv_bufs, .writable = app_writable,
    .closed = app_closed,
};
static bool zero_copy;
static const struct tcp_callbacks *app_callbacks(void) { return zero_copy ? &app_zc_cb : &app_cb; }

/* --- segments --- */

struct seg {
    uint8_t flags;
    uint32_t seq, len, ack;
    bool has_win, has_opts, has_ecn;
    uint8_t ecn;
    uint16_t win, gso;
    uint8_t opts[40];
    unsigned optlen;
};

/* Parses up to '>'; returns what follows it, 0 on an error. */
static const char *parse_options_text(const char *s, struct seg *g)
{
    g->has_opts = true;
    const char *p = s;
    while (*p && *p != '>') {
        unsigned v, e;
        while (*p == ' ' || *p == ',')
            p++;
        if (sscanf(p, "mss %u", &v) == 1) {
            g->opts[g->optlen++] = 2, g->opts[g->optlen++] = 4;
            wr16(g->opts + g->optlen, (uint16_t)v);
            g->optlen += 2;
        } else if (sscanf(p, "wscale %u", &v) == 1) {
            g->opts[g->optlen++] = 3, g->opts[g->optlen++] = 3, g->opts[g->optlen++] = (uint8_t)v;
        } else if (!strncmp(p, "sackOK", 6)) {
            g->opts[g->optlen++] = 4, g->opts[g->optlen++] = 2;
        } else if (!strncmp(p, "sack ", 5)) {
            unsigned a, b, at = g->optlen, k;
            g->opts[g->optlen++] = 5, g->opts[g->optlen++] = 2;
            for (p += 5; g->optlen + 8 <= sizeof g->opts && sscanf(p, " %u:%u%n", &a, &b, (int *)&k) == 2; p += k) {
                wr32(g->opts + g->optlen, a);
                wr32(g->opts + g->optlen + 4, b);
                g->optlen += 8, g->opts[at + 1] += 8;
            }
        } else if (sscanf(p, "TS val %u ecr %u", &v, &e) == 2 && g->optlen + 10 <= sizeof g->opts) {
            g->opts[g->optlen++] = 8, g->opts[g->optlen++] = 10;
            wr32(g->opts + g->optlen, v);
            wr32(g->opts + g->optlen + 4, e);
            g->optlen += 8;
        } else if (!strncmp(p, "nop", 3)) {
            g->opts[g->optlen++] = 1;
        } else {
            return 0;
        }
        while (*p && *p != ',' && *p != '>')
            p++;
    }
    return *p ? p + 1 : 0;
}

static bool parse_ecn(const char *p, struct seg *g)
{
    static const char *names[] = { "[noecn]", "[ect1]", "[ect0]", "[ce]" };
    for (uint8_t i = 0; i < 4; i++)
        if (!strncmp(p, names[i], strlen(names[i]))) {
            g->has_ecn = true;
            g->ecn = i;
            return true;
        }
    return false;
}

static bool parse_seg(char *s, struct seg *g)
{
    memset(g, 0, sizeof *g);
    char flags[8];
    unsigned seq, end, len;
    int n;
    if (sscanf(s, "%7s %u:%u(%u)%n", flags, &seq, &end, &len, &n) != 4 || end - seq != len)
        return false;
    for (char *f = flags; *f; f++)
        g->flags |= *f == 'S' ? TH_SYN : *f == 'F' ? TH_FIN : *f == 'R' ? TH_RST : *f == 'P' ? TH_PSH :
                    *f == '.' ? TH_ACK : *f == 'E' ? TH_ECE : *f == 'W' ? TH_CWR : 0;
    g->seq = seq, g->len = len;
    for (char *p = s + n; *p;) {
        unsigned v;
        while (*p == ' ')
            p++;
        if (sscanf(p, "ack %u", &v) == 1)
            g->ack = v;
        else if (sscanf(p, "win %u", &v) == 1)
            g->has_win = true, g->win = (uint16_t)v;
        else if (*p == '<') {
            const char *rest = parse_options_text(p + 1, g);
            if (!rest)
                return false;
            p = (char *)rest;
            continue;
        } else if (sscanf(p, "[gso %u]", &v) == 1) {
            g->gso = (uint16_t)v;
        } else if (*p == '[') {
            if (!parse_ecn(p, g))
                return false;
        } else if (*p)
            return false;
        while (*p && *p != ' ')
            p++;
        if (sscanf(p, " %u", &v) == 1) {
            while (*p == ' ')
                p++;
            while (*p && *p != ' ')
                p++;
        }
    }
    return true;
}

/* As if the peer's frames kept its ARP entry fresh. */
static void refresh_arp(void)
{
    struct arp_update u = { .ip = REMOTE_IP, .mac = { 0x52, 0x54, 0, 0, 0, 2 }, .create = true };
    arp_learn_remote(&ns, &u);
}

/* TSopt in options o: add dval to TSval and decr to TSecr (scripts write ours relative). */
static void ts_rebase(uint8_t *o, unsigned n, uint32_t dval, uint32_t decr)
{
    for (unsigned i = 0; i < n && o[i];) {
        if (o[i] == 1) {
            i++;
            continue;
        }
        if (o[i] == 8 && o[i + 1] == 10 && i + 10 <= n) {
            wr32(o + i + 2, rd32(o + i + 2) + dval);
            wr32(o + i + 6, rd32(o + i + 6) + decr);
        }
        i += o[i + 1] < 2 ? 2 : o[i + 1];
    }
}

/* SACK blocks in options o: add base to each edge (scripts write them relative). */
static void sack_rebase(uint8_t *o, unsigned n, uint32_t base)
{
    for (unsigned i = 0; i < n && o[i];) {
        if (o[i] == 1) {
            i++;
            continue;
        }
        if (o[i] == 5)
            for (unsigned j = i + 2; j + 8 <= i + o[i + 1]; j += 8) {
                wr32(o + j, rd32(o + j) + base);
                wr32(o + j + 4, rd32(o + j + 4) + base);
            }
        i += o[i + 1] < 2 ? 2 : o[i + 1];
    }
}

static void inject(const struct seg *g)
{
    uint8_t l4[4096];
    if (g->len > sizeof l4 - 60) {
        fail("segment too long for the interpreter");
        return;
    }
    refresh_arp();
    unsigned hl = TCP_HLEN + ((g->optlen + 3) & ~3u);
    memset(l4, 0, hl);
    wr16(l4, rport);
    wr16(l4 + 2, lport);
    wr32(l4 + 4, PEER_ISN + g->seq);
    wr32(l4 + 8, (g->flags & TH_ACK) ? our_isn(rport) + g->ack : 0);
    l4[12] = (uint8_t)(hl / 4 << 4);
    l4[13] = g->flags;
    wr16(l4 + 14, g->has_win ? g->win : 65535);
    memcpy(l4 + TCP_HLEN, g->opts, g->optlen);
    sack_rebase(l4 + TCP_HLEN, g->optlen, our_isn(rport));
    ts_rebase(l4 + TCP_HLEN, g->optlen, 0, our_ts_base(rport));
    for (uint32_t i = 0; i < g->len && hl + i < sizeof l4; i++)
        l4[hl + i] = pattern(g->seq - 1 + i);
    uint32_t len = hl + g->len;
    wr16(l4 + 16, csum_finish(csum_add(csum_pseudo(REMOTE_IP, LOCAL_IP, IPPROTO_TCP, len), l4, len)));
    uint8_t iph[20] = { 0x45, g->ecn };
    struct ip_info ip = { .src = REMOTE_IP, .dst = LOCAL_IP, .proto = IPPROTO_TCP, .ttl = 64, .tos = g->ecn,
                          .hdr = iph, .hdr_len = 20 };
    /* In zero-copy mode the segment lies in a receive buffer, as a device hands it over. */
    struct netbuf *frame = 0;
    if (zero_copy && (frame = netbuf_alloc()) && len <= netbuf_room(frame)) {
        memcpy(frame->data, l4, len);
        frame->len = len;
        ip.frame = &frame;
        tcp_input(&ns, &ip, frame->data, len);
        netbuf_free(frame);       /* NULL when the stack handed it to the app */
        return;
    }
    netbuf_free(frame);
    tcp_input(&ns, &ip, l4, len);
}

static void flags_str(uint8_t f, char *out)
{
    char *p = out;
    if (f & TH_SYN) *p++ = 'S';
    if (f & TH_FIN) *p++ = 'F';
    if (f & TH_RST) *p++ = 'R';
    if (f & TH_PSH) *p++ = 'P';
    if (f & TH_ECE) *p++ = 'E';
    if (f & TH_CWR) *p++ = 'W';
    if (f & TH_ACK) *p++ = '.';
    *p = 0;
}

/* From our SYN's TSopt, if any: the offset of our TSval clock from script milliseconds. */
static void learn_ts_base(const uint8_t *t, uint32_t hl, uint64_t sent_ns)
{
    for (unsigned i = TCP_HLEN; i + 1 < hl && t[i];) {
        if (t[i] == 1) {
            i++;
            continue;
        }
        if (t[i] == 8 && t[i + 1] == 10 && i + 10 <= hl)
            flows[flow_of(rport)].ts_base = rd32(t + i + 2) - (uint32_t)((sent_ns - T0_NS) / 1000000);
        i += t[i + 1] < 2 ? 2 : t[i + 1];
    }
}

/* Compares an expected segment with the next frame; PSH is not compared. */
static void match(const struct seg *g, const struct frame *fr, uint64_t want_t)
{
    const uint8_t *ip = fr->d + ETH_HLEN;
    if (fr->len < ETH_HLEN + 40 || rd16(fr->d + 12) != ETHERTYPE_IPV4 || ip[9] != IPPROTO_TCP) {
        fail("sent a frame that is not TCP/IPv4");
        return;
    }
    uint32_t tot = rd16(ip + 2);
    const uint8_t *t = ip + 20;
    uint32_t l4len = tot - 20, hl = (uint32_t)(t[12] >> 4) * 4;
    if (csum_finish(csum_add(csum_pseudo(rd32(ip + 12), rd32(ip + 16), IPPROTO_TCP, l4len), t, l4len)) != 0)
        fail("bad TCP checksum");
    if (rd32(ip + 16) != REMOTE_IP || rd16(t + 2) != rport)
        fail("sent to port %u, expected %u", rd16(t + 2), rport);
    uint8_t flags = t[13];
    if ((flags & TH_SYN) && !(flags & TH_RST))
        learn_isn(rport, rd32(t + 4));
    if ((flags & TH_SYN) && !(flags & TH_RST))
        learn_ts_base(t, hl, fr->t);
    if (g->has_ecn && (ip[1] & 3) != g->ecn)
        fail("IP ECN field is %u, expected %u", ip[1] & 3, g->ecn);
    if (flags & TH_SYN)
        lport = rd16(t);
    uint32_t seq = rd32(t + 4) - our_isn(rport), ack = rd32(t + 8) - PEER_ISN, len = l4len - hl;
    uint16_t win = rd16(t + 14);
    char fs[8], gs[8];
    flags_str(flags & ~TH_PSH, fs);
    flags_str(g->flags & ~TH_PSH, gs);
    if (strcmp(fs, gs) || seq != g->seq || len != g->len || ((flags & TH_ACK) && ack != g->ack) ||
        (g->has_win && win != g->win))
        fail("expected %s %u:%u(%u) ack %u win %u, got %s %u:%u(%u) ack %u win %u", gs, g->seq, g->seq + g->len,
             g->len, g->ack, g->win, fs, seq, seq + len, len, ack, win);
    if (fr->gso_size != g->gso)
        fail("TSO piece size %u, expected %u (0: no TSO)", fr->gso_size, g->gso);
    if (fr->gso_size && fr->hdr_len != ETH_HLEN + 20 + hl)
        fail("TSO header length %u, expected %u", fr->hdr_len, ETH_HLEN + 20 + hl);
    if (fr->t + TOLERANCE_NS < want_t || fr->t > want_t + TOLERANCE_NS)
        fail("segment sent at %.4f, expected at %.4f", (fr->t - T0_NS) / 1e9, (want_t - T0_NS) / 1e9);
    uint8_t opts[40];
    unsigned optlen = 0;
    for (unsigned i = TCP_HLEN; i < hl;) {
        if (t[i] == 0)
            break;
        if (t[i] == 1) {
            i++;
            continue;             /* padding: not compared */
        }
        memcpy(opts + optlen, t + i, t[i + 1]);
        optlen += t[i + 1];
        i += t[i + 1];
    }
    uint8_t want[40];
    unsigned wantlen = 0;
    for (unsigned i = 0; i < g->optlen;) {
        if (g->opts[i] == 1) {
            i++;
            continue;
        }
        memcpy(want + wantlen, g->opts + i, g->opts[i + 1]);
        wantlen += g->opts[i + 1];
        i += g->opts[i + 1];
    }
    sack_rebase(opts, optlen, 0u - PEER_ISN);
    ts_rebase(opts, optlen, 0u - our_ts_base(rport), 0);
    if (optlen != wantlen || memcmp(opts, want, optlen))
        fail("options differ (%u bytes sent, %u expected)", optlen, wantlen);
    for (uint32_t i = 0; i < len; i++)
        if (t[hl + i] != pattern(seq - 1 + i)) {
            fail("sent payload byte %u is wrong", seq - 1 + i);
            break;
        }
}

static void expect_segment(const struct seg *g, uint64_t want_t)
{
    uint64_t limit = want_t + TOLERANCE_NS;
    while (frame_head == nframes) {
        uint64_t next = timer_wheel_next_deadline(&wheel);
        if (next > limit || next == UINT64_MAX)
            break;
        advance_to(next > vnow ? next : vnow);
    }
    if (frame_head == nframes) {
        advance_to(limit);
        fail("expected a segment, none was sent");
        return;
    }
    match(g, &frames[frame_head++ % MAX_FRAMES], want_t);
}

/* --- commands --- */

static const uint64_t *stat_field(const char *name)
{
    const struct tcp_stats *s = tcp_get_stats(&ns);
    static const struct { const char *n; size_t off; } f[] = {
#define F(x) { #x, offsetof(struct tcp_stats, x) }
        F(segs_in), F(segs_out), F(retransmits), F(bad_checksum), F(bad_header), F(rst_in), F(rst_out),
        F(challenge_acks), F(listen_overflows), F(conns_opened), F(conns_closed), F(out_of_order), F(dup_acks),
        F(fast_retransmits), F(timeouts), F(time_wait), F(syn_cookies_sent), F(syn_cookies_ok),
        F(paws_rejected), F(ecn_ce_in), F(ecn_reductions), F(rcv_zero_copy), F(rcv_copied), F(syn_cookies_later),
#undef F
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (!strcmp(f[i].n, name))
            return (const uint64_t *)((const char *)s + f[i].off);
    return 0;
}

static void expect_event(const char *want)
{
    if (!nevents) {
        fail("expected callback \"%s\", none came", want);
        return;
    }
    if (strcmp(events[0], want))
        fail("expected callback \"%s\", got \"%s\"", want, events[0]);
    memmove(events, events + 1, --nevents * sizeof events[0]);
}

static void app_send(unsigned n, unsigned taken)
{
    static uint8_t buf[256 * 1024];
    if (!cur) {
        fail("send: no connection");
        return;
    }
    for (unsigned i = 0; i < n && i < sizeof buf; i++)
        buf[i] = pattern(tx_off + i);
    size_t got = tcp_send(cur, buf, n);
    if (got != taken)
        fail("tcp_send took %zu, expected %u", got, taken);
    tx_off += (uint32_t)got;
}

/* "cc CWND SSTHRESH": the congestion state the script has reasoned out, "-" for either to skip it. */
static void check_cc(const char *args)
{
    char w[2][32];
    if (sscanf(args, "%31s %31s", w[0], w[1]) != 2 || !cur) {
        fail("cc: needs CWND SSTHRESH and a connection");
        return;
    }
    const uint32_t got[2] = { cur->cwnd, cur->ssthresh };
    for (unsigned i = 0; i < 2; i++)
        if (strcmp(w[i], "-") && strtoul(w[i], 0, 10) != got[i])
            fail("%s is %u, expected %s", i ? "ssthresh" : "cwnd", got[i], w[i]);
}

/* "info NAME VALUE": a field of tcp_get_info() for the current connection. */
static void check_info(const char *args)
{
    char name[32], want[32];
    if (sscanf(args, "%31s %31s", name, want) != 2 || !cur) {
        fail("info: needs NAME VALUE and a connection");
        return;
    }
    struct tcp_conn_info in;
    tcp_get_info(cur, &in);
    if (!strcmp(name, "state")) {
        if (strcmp(in.state, want))
            fail("state is %s, expected %s", in.state, want);
        return;
    }
    const struct { const char *n; uint64_t v; } f[] = {
        { "bytes_received", in.bytes_received }, { "bytes_acked", in.bytes_acked }, { "segs_in", in.ctr.segs_in },
        { "segs_out", in.ctr.segs_out }, { "retransmits", in.ctr.retransmits }, { "out_of_order", in.ctr.out_of_order },
        { "rcv_zero_copy", in.ctr.rcv_zero_copy }, { "rcv_held", in.rcv_held }, { "mss", in.mss },
        { "snd_wscale", in.snd_wscale }, { "rcv_wscale", in.rcv_wscale }, { "sack", in.sack },
        { "timestamps", in.timestamps },
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (!strcmp(f[i].n, name)) {
            if (f[i].v != strtoull(want, 0, 10))
                fail("info %s is %llu, expected %s", name, (unsigned long long)f[i].v, want);
            return;
        }
    fail("info: no field %s", name);
}

static void command(char *s)
{
    unsigned a, b;
    double x, y;
    char word[32];
    if (sscanf(s, "listen %u", &a) == 1) {
        lport = (uint16_t)a;
        if (tcp_listen(&ns, lport, app_callbacks(), 0))
            fail("tcp_listen failed");
        else if (strstr(s, " cubic") && tcp_listen_set_cc(&ns, lport, TCP_CC_CUBIC))
            fail("tcp_listen_set_cc failed");
    } else if (sscanf(s, "connect %u", &a) == 1) {
        rport = (uint16_t)a;
        rx_off = tx_off = 0;
        cur = tcp_connect(&ns, REMOTE_IP, rport, app_callbacks(), 0);
        if (!cur)
            fail("tcp_connect failed");
        else if (strstr(s, " cubic") && tcp_set_cc(cur, TCP_CC_CUBIC))
            fail("tcp_set_cc failed");
    } else if (!strncmp(s, "cc ", 3)) {
        check_cc(s + 3);
    } else if (sscanf(s, "rto %lf", &x) == 1) {
        uint64_t want = (uint64_t)(x * 1e6);
        if (!cur)
            fail("rto: no connection");
        else if (cur->rto_ns + 1000000 < want || cur->rto_ns > want + 1000000)
            fail("rto is %.3f ms, expected %.3f", cur->rto_ns / 1e6, x);
    } else if (sscanf(s, "local %u", &a) == 1) {
        lport = (uint16_t)a;
    } else if (sscanf(s, "peer %u", &a) == 1) {
        rport = (uint16_t)a;
    } else if (sscanf(s, "send %u %u", &a, &b) == 2) {
        app_send(a, b);
    } else if (sscanf(s, "send %u", &a) == 1) {
        app_send(a, a);
    } else if (!strcmp(s, "close") || !strcmp(s, "abort")) {
        if (!cur)
            fail("%s: no connection", s);
        else if (s[0] == 'c')
            tcp_close(cur);
        else
            tcp_abort(cur);
    } else if (sscanf(s, "tso %31s", word) == 1) {
        ns.tx_tso4 = ns.tx_csum_offload = !strcmp(word, "on");
    } else if (sscanf(s, "nodelay %31s", word) == 1 && cur) {
        tcp_set_nodelay(cur, !strcmp(word, "on"));
    } else if (sscanf(s, "limits %u %u", &a, &b) == 2) {
        tcp_set_limits(&ns, a, b);
    } else if (!strncmp(s, "expect ", 7)) {
        expect_event(s + 7);
    } else if (sscanf(s, "stat %31s %u", word, &a) == 2) {
        const uint64_t *v = stat_field(word);
        if (!v)
            fail("no counter %s", word);
        else if (*v != a)
            fail("counter %s is %llu, expected %u", word, (unsigned long long)*v, a);
    } else if (sscanf(s, "keepalive %lf %lf", &x, &y) == 2 && cur) {
        tcp_set_keepalive(cur, true, (uint64_t)(x * 1e9), (uint64_t)(y * 1e9));
    } else if (sscanf(s, "zero_copy %31s", word) == 1) {
        zero_copy = !strcmp(word, "on");
    } else if (!strcmp(s, "pause") || !strcmp(s, "resume")) {
        if (!cur)
            fail("%s: no connection", s);
        else if (s[0] == 'p')
            tcp_recv_pause(cur);
        else
            tcp_recv_resume(cur);
    } else if (!strncmp(s, "info ", 5)) {
        check_info(s + 5);
    } else if (!strcmp(s, "release")) {
        release_bufs();
    } else if (!strcmp(s, "abort_in_recv")) {
        abort_in_recv = true;
    } else if (!strcmp(s, "close_in_recv")) {
        close_in_recv = true;
    } else {
        fail("cannot parse \"%s\"", s);
    }
}

static void setup(void)
{
    static const uint8_t mac[6] = { 0x52, 0x54, 0, 0, 0, 1 };
    struct net_config cfg = { .ip = LOCAL_IP, .netmask = 0xFFFFFF00, .mtu = 1500, .configured = true };
    vnow = T0_NS;
    timer_wheel_init(&wheel, vnow, 16);
    nframes = frame_head = nflows = nevents = 0;
    cur = 0;
    lport = 0;
    rport = 40000;
    rx_off = tx_off = 0;
    close_in_recv = abort_in_recv = zero_copy = false;
    script_failed = 0;
    random_seed = 1;
    net_stack_init(&ns, &env, 0, mac, &cfg);
    refresh_arp();
}

static void teardown(void)
{
    release_bufs();
    tcp_fini(&ns);
    for (unsigned k = 0; k < ARP_CACHE_SIZE; k++)
        drop_pending(&ns, &ns.arp[k]);
    ip_reass_clear(&ns.reass);
}

static void run_line(char *line, double *last_t)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = 0;
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == ' ' || line[n - 1] == '\r'))
        line[--n] = 0;
    char *p = line;
    while (*p == ' ')
        p++;
    if (!*p)
        return;
    double t;
    int used;
    if (sscanf(p, "%lf%n", &t, &used) != 1) {
        fail("no time");
        return;
    }
    if (*p == '+')
        t += *last_t;
    *last_t = t;
    p += used;
    while (*p == ' ')
        p++;
    uint64_t when = T0_NS + (uint64_t)(t * 1e9 + 0.5);
    struct seg g;
    if (*p == '>') {
        if (!parse_seg(p + 1 + strspn(p + 1, " "), &g))
            fail("cannot parse segment");
        else
            expect_segment(&g, when);
        return;
    }
    advance_to(when);
    if (frame_head != nframes) {
        struct frame *fr = &frames[frame_head++ % MAX_FRAMES];
        const uint8_t *tcp = fr->d + ETH_HLEN + 20;
        char fs[8];
        flags_str(tcp[13], fs);
        fail("unexpected segment %s seq %u sent at %.4f", fs, rd32(tcp + 4) - our_isn(rport), (fr->t - T0_NS) / 1e9);
        frame_head = nframes;
    }
    if (*p == '<') {
        if (!parse_seg(p + 1 + strspn(p + 1, " "), &g))
            fail("cannot parse segment");
        else
            inject(&g);
        return;
    }
    command(p);
}

static bool run_script(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    setup();
    char line[512];
    double last_t = 0;
    script_line = 0;
    while (fgets(line, sizeof line, f)) {
        script_line++;
        run_line(line, &last_t);
    }
    fclose(f);
    script_line++;
    if (frame_head != nframes)
        fail("%u segments sent but not expected at the end", nframes - frame_head);
    for (unsigned i = 0; i < nevents; i++)
        fail("callback \"%s\" not expected", events[i]);
    teardown();
    return !script_failed;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

TEST(tcp_scripts)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s", __FILE__);
    char *slash = strrchr(dir, '/');
    snprintf(slash ? slash + 1 : dir, sizeof dir - (size_t)(slash ? slash + 1 - dir : 0), "tcp");
    DIR *d = opendir(dir);
    CHECK(d != 0);
    if (!d)
        return;
    char *names[128];
    unsigned n = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 128;) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".pkt"))
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_names);
    CHECK(n > 0);
    for (unsigned i = 0; i < n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        script_name = names[i];
        bool ok = run_script(path);
        CHECK(ok);
        names[i][strlen(names[i]) - 4] = 0;
        printf("%s tcp_pkt_%s\n", ok ? "PASS" : "FAIL", names[i]);
        free(names[i]);
    }
}

/* --- unit tests of the pieces --- */

TEST(tcp_seq_compare_across_wrap)
{
    CHECK(seq_lt(0xFFFFFFF0u, 0x10));
    CHECK(seq_gt(0x10, 0xFFFFFFF0u));
    CHECK(seq_leq(5, 5) && seq_geq(5, 5));
    CHECK(!seq_lt(5, 5));
    CHECK(seq_lt(0x7FFFFFFEu, 0x80000001u));
    CHECK(seq_max(0xFFFFFFFFu, 2) == 2);
    CHECK(seq_lt(0, 0x7FFFFFFFu) && seq_gt(0, 0x80000001u));
}

TEST(tcp_siphash_reference_vector)
{
    /* The SipHash paper's test vector: key 00..0f, message 00..0e. */
    uint8_t key[16], msg[15];
    for (int i = 0; i < 16; i++)
        key[i] = (uint8_t)i;
    for (int i = 0; i < 15; i++)
        msg[i] = (uint8_t)i;
    CHECK(tcp_siphash(key, msg, sizeof msg) == 0xa129ca6149be45e5ULL);
}

TEST(tcp_isn_keyed_and_clocked)
{
    struct tcp_stack ts = { 0 };
    for (int i = 0; i < 16; i++)
        ts.key[i] = (uint8_t)(i * 11 + 3);
    uint32_t a = tcp_isn(&ts, LOCAL_IP, 80, REMOTE_IP, 40000, 0);
    CHECK(a != tcp_isn(&ts, LOCAL_IP, 80, REMOTE_IP, 40001, 0));
    CHECK(a != tcp_isn(&ts, LOCAL_IP, 81, REMOTE_IP, 40000, 0));
    CHECK(a != tcp_isn(&ts, LOCAL_IP, 80, REMOTE_IP + 1, 40000, 0));
    CHECK_EQ(tcp_isn(&ts, LOCAL_IP, 80, REMOTE_IP, 40000, 4000) - a, 1);          /* one tick per 4 µs */
    CHECK_EQ(tcp_isn(&ts, LOCAL_IP, 80, REMOTE_IP, 40000, 1000000000ULL) - a, 250000);
    CHECK(seq_gt(tcp_isn(&ts, LOCAL_IP, 80, REMOTE_IP, 40000, 1000000ULL), a));
    ts.key[0] ^= 1;
    CHECK(a != tcp_isn(&ts, LOCAL_IP, 80, REMOTE_IP, 40000, 0));
}

TEST_MAIN()
