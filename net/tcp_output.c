/*
 * Segment output: building headers and options, the send decision
 * (window, congestion window, Nagle, sender SWS avoidance), ACKs, RSTs.
 * Every segment is built in a fresh netbuf from the send ring; nothing
 * sent is kept, so retransmission rebuilds from the ring. With a device
 * that segments (TSO), new data leaves as one segment of many MSS in a
 * netbuf chain, which the device cuts into MSS pieces; to the rest of TCP
 * it is just a longer sequence range (retransmissions stay one MSS).
 */
#include "tcp_impl.h"
#include "checksum.h"
#include "../kernel/string.h"

uint32_t tcp_flight(const struct tcp_conn *c) { return c->snd_nxt - c->snd_una; }
#define TCP_DUPTHRESH 3            /* RFC 6675's DupThresh, as RFC 5681's three duplicate ACKs */

/*
 * RFC 6675 §4 IsLost for the unSACKed octets of the hole below scoreboard range i (i == nsacked: the data
 * above the highest SACK): the SACKed data above them is DupThresh separate ranges, or more than
 * DupThresh - 1 segments. It is the same for every octet of a hole, so holes are lost or not as a whole,
 * and a lower hole is lost whenever a higher one is. Data above the highest SACK never is.
 */
static bool hole_lost(const struct tcp_conn *c, unsigned i)
{
    uint32_t above = 0;
    for (unsigned j = i; j < c->nsacked; j++)
        above += c->sacked[j][1] - c->sacked[j][0];
    return c->nsacked - i >= TCP_DUPTHRESH || above > (TCP_DUPTHRESH - 1) * (uint32_t)c->mss;
}

bool tcp_sack_head_lost(const struct tcp_conn *c) { return c->nsacked && hole_lost(c, 0); }

/* What hole [a, b) below scoreboard range i adds to the pipe (RFC 6675 §4 SetPipe): its octets once
   unless deemed lost, and once more those retransmitted (below HighRxt, which is rtx_next here). */
static uint32_t hole_pipe(const struct tcp_conn *c, uint32_t a, uint32_t b, unsigned i)
{
    uint32_t n = hole_lost(c, i) ? 0 : b - a;
    if (seq_gt(c->rtx_next, a))
        n += (seq_lt(c->rtx_next, b) ? c->rtx_next : b) - a;
    return n;
}

/* The pipe: in SACK recovery RFC 6675's SetPipe over the holes between snd_una and snd_nxt (SACKed data
   is not in the network, lost data no longer, retransmitted data again); otherwise all in flight. */
uint32_t tcp_pipe(const struct tcp_conn *c)
{
    if (!c->in_recovery || !c->sack_ok || !c->nsacked)
        return tcp_flight(c);
    uint32_t pipe = 0, from = c->snd_una;
    for (unsigned i = 0; i <= c->nsacked; i++) {
        uint32_t end = i < c->nsacked ? c->sacked[i][0] : c->snd_nxt;
        if (seq_lt(from, end))
            pipe += hole_pipe(c, from, end, i);
        if (i < c->nsacked)
            from = seq_max(from, c->sacked[i][1]);
    }
    return pipe;
}

uint32_t tcp_fin_seq(const struct tcp_conn *c) { return c->buf_seq + c->sbuf_len; }
bool tcp_fin_sent(const struct tcp_conn *c) { return c->fin_queued && seq_gt(c->snd_max, tcp_fin_seq(c)); }

/* Our MSS option: what fits in one IPv4 packet on our link. */
static uint16_t our_mss(const struct net_stack *ns) { return (uint16_t)(ns->cfg.mtu - 40); }

uint32_t tcp_rcv_free(const struct tcp_conn *c) { return TCP_RCVBUF - tcp_min32(c->held_len, TCP_RCVBUF); }

/*
 * The window field: the free buffer space, which only data the app holds
 * back (tcp_recv_pause) reduces. The right edge never moves left (RFC 9293
 * §3.8.6.2.2), so it rounds up to the scale unit; and it moves right only by
 * at least min(MSS, half the buffer), receiver SWS avoidance (RFC 1122 §4.2.3.3).
 */
static uint16_t window_field(struct tcp_conn *c, bool syn)
{
    if (syn) {
        /* The SYN's window is never scaled (RFC 7323 §2.2); it is also the first right edge. */
        uint32_t w = tcp_min32(TCP_RCVBUF, 65535);
        c->rcv_adv = c->rcv_nxt + w;
        return (uint16_t)w;
    }
    uint32_t unit = 1u << c->rcv_wscale;
    uint32_t edge = c->rcv_nxt + tcp_rcv_free(c);
    uint32_t step = tcp_min32(c->mss, TCP_RCVBUF / 2);
    if (seq_lt(edge, c->rcv_adv) || (seq_gt(edge, c->rcv_adv) && edge - c->rcv_adv < step && c->held_len))
        edge = c->rcv_adv;
    uint32_t w = tcp_min32((edge - c->rcv_nxt + unit - 1) >> c->rcv_wscale, 65535);
    if (seq_gt(c->rcv_nxt + (w << c->rcv_wscale), c->rcv_adv))
        c->rcv_adv = c->rcv_nxt + (w << c->rcv_wscale);
    return (uint16_t)w;
}

/* Sum over a chain: every buffer but the last holds an even number of bytes (see fill_payload), so the
   16-bit words line up across buffers. */
static uint32_t csum_chain(uint32_t sum, const struct netbuf *nb)
{
    for (; nb; nb = nb->frag)
        sum = csum_add(sum, nb->data, nb->len);
    return sum;
}

/* Returns the segments it makes on the wire (a TSO frame's pieces). */
static uint32_t checksum_and_send(struct net_stack *ns, uint32_t src, uint32_t dst, struct netbuf *nb, uint8_t ecn)
{
    uint32_t len = netbuf_frame_len(nb);
    /* A GSO frame's pseudo-header counts the whole length: the device (Linux's GSO) adjusts it per piece. */
    uint32_t pseudo = csum_pseudo(src, dst, IPPROTO_TCP, len);
    if (ns->tx_csum_offload) {
        nb->flags |= NETBUF_CSUM_PARTIAL;
        nb->csum_start = 0;
        nb->csum_offset = 16;
        wr16(nb->data + 16, csum_fold(pseudo));
    } else {
        wr16(nb->data + 16, csum_finish(csum_chain(pseudo, nb)));
    }
    /* Counted as the segments on the wire. */
    uint32_t pieces = nb->gso_type == NETBUF_GSO_TCPV4 ? (len - nb->hdr_len + nb->gso_size - 1) / nb->gso_size : 1;
    ns->tcp->stats.segs_out += pieces;
    ipv4_send_netbuf_ecn(ns, dst, IPPROTO_TCP, ecn, nb);
    return pieces;
}

static void put_tcp_header(uint8_t *h, uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags,
                       uint16_t win, unsigned optlen)
{
    wr16(h, sport);
    wr16(h + 2, dport);
    wr32(h + 4, seq);
    wr32(h + 8, ack);
    h[12] = (uint8_t)(((TCP_HLEN + optlen) / 4) << 4);
    h[13] = flags;
    wr16(h + 14, win);
    wr16(h + 16, 0);
    wr16(h + 18, 0);
}

/* NOP, NOP, TSopt: the layout RFC 7323 Appendix A recommends, so the values stay 4-byte aligned. */
static unsigned put_ts_option(uint8_t *o, uint32_t tsval, uint32_t tsecr)
{
    o[0] = 1, o[1] = 1, o[2] = 8, o[3] = 10;
    wr32(o + 4, tsval);
    wr32(o + 8, tsecr);
    return TCP_TS_OPTLEN;
}

/* Whether our segments carry TSopt: negotiated (in SYN-SENT ts_ok only means we offer it). */
static bool ts_on(const struct tcp_conn *c) { return c->ts_ok && c->state != TCPS_SYN_SENT; }

/* A SYN's options: MSS, then window scale when wscale is not 0, then SACK-permitted, then TSopt when ts.
   Cookie SYN,ACKs use the same layout as connections' SYNs. */
static unsigned put_syn_layout(uint8_t *o, uint16_t mss, uint8_t wscale, bool sack, bool ts, uint32_t tsval,
                               uint32_t tsecr)
{
    unsigned n = 4;
    o[0] = 2, o[1] = 4;
    wr16(o + 2, mss);
    if (wscale) {
        o[n] = 1, o[n + 1] = 3, o[n + 2] = 3, o[n + 3] = wscale;
        n += 4;
    }
    if (sack) {
        o[n] = 1, o[n + 1] = 1, o[n + 2] = 4, o[n + 3] = 2;
        n += 4;
    }
    if (ts)
        n += put_ts_option(o + n, tsval, tsecr);
    return n;
}

/* Window scale when we use it, SACK-permitted when we offer or accept it, timestamps when we offer them
   or the peer's SYN did (TSecr 0 in a SYN: nothing to echo yet, RFC 7323 §3.2). */
static unsigned put_syn_options(const struct tcp_conn *c, uint8_t *o)
{
    return put_syn_layout(o, our_mss(c->ns), c->rcv_wscale, c->sack_ok, c->ts_ok, tcp_ts_now(c),
                          c->state == TCPS_SYN_SENT ? 0 : c->ts_recent);
}

/* The out-of-order range (adjacent queue entries merged) that holds seq; false when none does. */
static bool ooo_range(const struct tcp_conn *c, uint32_t seq, uint32_t r[2])
{
    for (const struct tcp_ooo *o = c->ooo; o;) {
        uint32_t start = o->seq, end = o->seq + o->len;
        for (o = o->next; o && o->seq == end; o = o->next)
            end += o->len;
        if (seq_geq(seq, start) && seq_lt(seq, end)) {
            r[0] = start, r[1] = end;
            return true;
        }
    }
    return false;
}

static bool have_block(uint32_t (*b)[2], unsigned n, uint32_t start)
{
    for (unsigned i = 0; i < n; i++)
        if (b[i][0] == start)
            return true;
    return false;
}

/* RFC 2018 §4: the block of the latest arrival first, then those of the next most recent, then the rest. */
static unsigned sack_blocks(const struct tcp_conn *c, uint32_t b[TCP_SACK_BLOCKS][2])
{
    unsigned n = 0;
    uint32_t r[2];
    for (unsigned i = 0; i < TCP_SACK_BLOCKS && n < TCP_SACK_BLOCKS; i++)
        if (ooo_range(c, c->sack_recent[i], r) && !have_block(b, n, r[0]))
            b[n][0] = r[0], b[n][1] = r[1], n++;
    for (const struct tcp_ooo *o = c->ooo; o && n < TCP_SACK_BLOCKS; o = o->next)
        if (ooo_range(c, o->seq, r) && !have_block(b, n, r[0]))
            b[n][0] = r[0], b[n][1] = r[1], n++;
    return n;
}

/* SACK option for an ACK of len payload bytes after `used` option bytes: as many blocks as fit in the
   40 option bytes and in the MSS (which c->mss already reduced by the timestamps, when used). Returns its
   length; *all: every block went in (otherwise a bare ACK must follow with them). */
static unsigned put_sack_option(const struct tcp_conn *c, uint8_t *o, uint32_t len, unsigned used, bool *all)
{
    uint32_t b[TCP_SACK_BLOCKS][2];
    unsigned n = c->sack_ok && c->ooo ? sack_blocks(c, b) : 0, want = n;
    while (n && (len + 4 + 8 * n > c->mss || used + 4 + 8 * n > 40))
        n--;
    *all = n == want;
    if (!n)
        return 0;
    o[0] = 1, o[1] = 1, o[2] = 5, o[3] = (uint8_t)(2 + 8 * n);
    for (unsigned i = 0; i < n; i++) {
        wr32(o + 4 + 8 * i, b[i][0]);
        wr32(o + 8 + 8 * i, b[i][1]);
    }
    return 4 + 8 * n;
}

/* Copies len bytes of the send ring starting at sequence seq. */
static void copy_from_ring(const struct tcp_conn *c, uint8_t *dst, uint32_t seq, uint32_t len)
{
    uint32_t pos = (c->sbuf_head + (seq - c->buf_seq)) & (c->sbuf_cap - 1);
    uint32_t first = tcp_min32(len, c->sbuf_cap - pos);
    memcpy(dst, c->sbuf + pos, first);
    memcpy(dst + first, c->sbuf, len - first);
}

/*
 * Appends [seq, seq+len) of the ring after the header already in nb,
 * spilling into a chain of further buffers when one is not enough (a TSO
 * segment, or an MSS larger than a buffer). Every buffer but the last is
 * filled to an even length, so a software checksum can sum them in turn.
 * False when memory ran out (nb is still the caller's).
 */
static bool fill_payload(const struct tcp_conn *c, struct netbuf *nb, uint32_t seq, uint32_t len)
{
    struct netbuf *b = nb;
    for (;;) {
        uint32_t room = netbuf_room(b) - b->len;
        uint32_t n = len <= room ? len : room & ~1u;
        copy_from_ring(c, b->data + b->len, seq, n);
        b->len += n, seq += n, len -= n;
        if (!len)
            return true;
        if (!(b->frag = netbuf_alloc_frag()))
            return false;
        b = b->frag;
    }
}

/* Every segment of a synchronized connection carries the latest ACK, so a pending delayed ACK is moot. */
static void ack_sent(struct tcp_conn *c)
{
    c->delack_segs = 0;
    c->ack_now = false;
    tcp_timer_cancel(c, TT_DELACK);
}

/* Options of a segment other than a SYN: TSopt on every one once negotiated (RFC 7323 §3.2, RSTs
   included, as it recommends), then SACK blocks on ACKs. */
static unsigned put_options(struct tcp_conn *c, uint8_t *o, uint8_t flags, uint32_t len, bool *all_sacks)
{
    unsigned n = ts_on(c) ? put_ts_option(o, tcp_ts_now(c), c->ts_recent) : 0;
    if ((flags & TH_ACK) && !(flags & TH_RST))
        n += put_sack_option(c, o + n, len, n, all_sacks);
    return n;
}

/* A segment longer than one MSS is cut by the device into MSS pieces, each with these headers. */
static void mark_gso(const struct tcp_conn *c, struct netbuf *nb, unsigned optlen)
{
    nb->gso_type = NETBUF_GSO_TCPV4;
    nb->gso_size = c->mss;
    nb->hdr_len = (uint16_t)(TCP_HLEN + optlen);
}

/* ect: the segment is new data and may carry ECT(0) (RFC 3168 §6.1.5: never retransmissions, pure
   ACKs, SYNs, RSTs or window probes). len may exceed the MSS only when tcp_output chose TSO. */
static void send_segment(struct tcp_conn *c, uint32_t seq, uint8_t flags, uint32_t len, bool ect)
{
    struct netbuf *nb = netbuf_alloc();
    if (!nb) {
        c->ns->stats.no_memory++;
        return;
    }
    bool syn = flags & TH_SYN, all_sacks = true;
    /* RFC 3168 §6.1.3: ECE on every ACK from a CE mark until the peer's CWR. */
    if (c->ecn_ok && c->ecn_ece && (flags & TH_ACK) && !(flags & (TH_SYN | TH_RST)))
        flags |= TH_ECE;
    /* Every piece of a TSO segment repeats the options: SACK blocks must fit beside a full MSS piece. */
    unsigned optlen = syn ? put_syn_options(c, nb->data + TCP_HLEN) :
                      put_options(c, nb->data + TCP_HLEN, flags, tcp_min32(len, c->mss), &all_sacks);
    uint32_t ack = (flags & TH_ACK) ? c->rcv_nxt : 0;
    put_tcp_header(nb->data, c->lport, c->rport, seq, ack, flags, window_field(c, syn), optlen);
    nb->len = TCP_HLEN + optlen;
    if (len && !fill_payload(c, nb, seq, len)) {
        c->ns->stats.no_memory++;
        netbuf_free(nb);
        return;
    }
    if (len > c->mss)
        mark_gso(c, nb, optlen);
    if (flags & TH_ACK)
        c->last_ack_sent = ack;   /* RFC 7323 §4.3's Last.ACK.sent */
    if ((flags & TH_ACK) && all_sacks)
        ack_sent(c);
    c->ctr.segs_out += checksum_and_send(c->ns, c->lip, c->rip, nb, ect && c->ecn_ok ? IP_ECN_ECT0 : IP_ECN_NOT_ECT);
}

void tcp_send_syn(struct tcp_conn *c)
{
    bool first = c->snd_max == c->iss;
    uint8_t flags = TH_SYN | (c->state == TCPS_SYN_RECEIVED ? TH_ACK : 0);
    /* RFC 3168 §6.1.1: ECE|CWR in an ECN-setup SYN, ECE alone in the SYN,ACK. A SYN that went unanswered
       is sent again without them (§6.1.1.1): a path that drops ECN-setup SYNs must not stop the open. */
    if (c->state == TCPS_SYN_SENT && !first)
        c->ecn_ok = false;
    if (c->ecn_ok)
        flags |= c->state == TCPS_SYN_SENT ? TH_ECE | TH_CWR : TH_ECE;
    send_segment(c, c->iss, flags, 0, false);
    c->snd_nxt = c->snd_max = c->iss + 1;
    if (first) {
        c->rtt_timing = true;
        c->rtt_seq = c->iss + 1;
        c->rtt_start_ns = tcp_now(c);
    } else {
        c->rtt_timing = false;    /* Karn: no sample from a retransmitted SYN */
        tcp_of(c)->stats.retransmits++;
        c->ctr.retransmits++;
    }
    tcp_arm_rtx(c);
}

void tcp_send_ack(struct tcp_conn *c)
{
    send_segment(c, c->snd_nxt, TH_ACK, 0, false);
}

void tcp_send_challenge_ack(struct tcp_conn *c)
{
    struct tcp_stack *ts = tcp_of(c);
    uint64_t now = tcp_now(c);
    if (now - ts->challenge_epoch_ns >= 1000000000ULL) {
        ts->challenge_epoch_ns = now;
        ts->challenge_count = 0;
    }
    if (ts->challenge_count >= TCP_CHALLENGE_ACKS_PER_SEC)
        return;
    ts->challenge_count++;
    ts->stats.challenge_acks++;
    tcp_send_ack(c);
}

void tcp_send_rst_conn(struct tcp_conn *c)
{
    tcp_of(c)->stats.rst_out++;
    send_segment(c, c->snd_nxt, TH_RST | TH_ACK, 0, false);
}

/* RFC 9293 §3.10.7.1: a reset that the peer will accept for a segment that has no connection. */
void tcp_send_rst_for(struct net_stack *ns, const struct ip_info *ip, const struct tcp_seg *s)
{
    if (s->flags & TH_RST)
        return;
    struct netbuf *nb = netbuf_alloc();
    if (!nb) {
        ns->stats.no_memory++;
        return;
    }
    if (s->flags & TH_ACK) {
        put_tcp_header(nb->data, s->dport, s->sport, s->ack, 0, TH_RST, 0, 0);
    } else {
        uint32_t end = s->seq + s->len + !!(s->flags & TH_SYN) + !!(s->flags & TH_FIN);
        put_tcp_header(nb->data, s->dport, s->sport, 0, end, TH_RST | TH_ACK, 0, 0);
    }
    nb->len = TCP_HLEN;
    ns->tcp->stats.rst_out++;
    checksum_and_send(ns, ip->dst, ip->src, nb, IP_ECN_NOT_ECT);
}

/*
 * A stateless SYN,ACK whose ISN is a SYN cookie: the MSS, and when the SYN offered timestamps, TSopt
 * and what opts says (window scale, SACK-permitted, ECE for ECN), which the low bits of TSval encode
 * (tcp_cookie_ts_encode) for the final ACK's TSecr to bring back. The TSval clock's offset is a hash of
 * the 4-tuple, so the connection recomputes it; TSopt on the final ACK shows that the SYN offered them.
 * Without timestamps nothing else is offered: there is nowhere to keep it (neither side then uses it).
 */
void tcp_send_cookie_synack(struct net_stack *ns, const struct ip_info *ip, const struct tcp_seg *s, uint32_t cookie,
                            const struct tcp_cookie_opts *opts)
{
    struct netbuf *nb = netbuf_alloc();
    if (!nb) {
        ns->stats.no_memory++;
        return;
    }
    bool ts = s->has_ts;
    uint32_t tsval = 0;
    if (ts) {
        uint32_t off = tcp_ts_offset(ns->tcp, ip->dst, s->dport, ip->src, s->sport);
        tsval = tcp_cookie_ts_encode(tcp_ts_clock(ns->env->now_ns(), 0), opts) + off;
    }
    unsigned optlen = put_syn_layout(nb->data + TCP_HLEN, our_mss(ns), ts && opts->wscale_ok ? TCP_RCV_WSCALE : 0,
                                     ts && opts->sack_ok, ts, tsval, s->tsval);
    uint8_t flags = TH_SYN | TH_ACK | (ts && opts->ecn_ok ? TH_ECE : 0);   /* RFC 3168 §6.1.1 */
    /* The same unscaled window a SYN,ACK from a connection offers (window_field). */
    put_tcp_header(nb->data, s->dport, s->sport, cookie, s->seq + 1, flags, (uint16_t)tcp_min32(TCP_RCVBUF, 65535),
                   optlen);
    nb->len = TCP_HLEN + optlen;
    ns->tcp->stats.syn_cookies_sent++;
    checksum_and_send(ns, ip->dst, ip->src, nb, IP_ECN_NOT_ECT);
}

/* Sends [seq, seq+len) from the ring, with FIN when it ends where the FIN goes and we mean to send it. */
static void send_data(struct tcp_conn *c, uint32_t seq, uint32_t len, bool fin)
{
    bool rtx = seq_lt(seq, c->snd_max);
    if (rtx) {
        tcp_of(c)->stats.retransmits++;
        c->ctr.retransmits++;
    }
    uint8_t flags = TH_ACK | (fin ? TH_FIN : 0) | (len && seq + len == tcp_fin_seq(c) ? TH_PSH : 0);
    /* RFC 3168 §6.1.2: CWR on the first new data segment after the window was reduced for an ECE. */
    if (c->ecn_cwr && !rtx && len) {
        flags |= TH_CWR;
        c->ecn_cwr = false;
    }
    send_segment(c, seq, flags, len, !rtx && len);
}

void tcp_retransmit_first(struct tcp_conn *c)
{
    if (c->snd_una == c->iss) {
        tcp_send_syn(c);
        return;
    }
    uint32_t data_end = tcp_fin_seq(c);
    uint32_t len = seq_lt(c->snd_una, data_end) ? tcp_min32(data_end - c->snd_una, c->mss) : 0;
    bool fin = tcp_fin_sent(c) && c->snd_una + len == data_end;
    if (len || fin)
        send_data(c, c->snd_una, len, fin);
    c->rtt_timing = false;
    tcp_arm_rtx(c);
}

/*
 * RFC 6675 §4 NextSeg rules 1 and 3: the lowest unSACKed octet above HighRxt (rtx_next) and below the
 * highest SACK, and how far its hole goes; with lost_only (rule 1), only if IsLost. False: none.
 */
static bool next_hole(const struct tcp_conn *c, bool lost_only, uint32_t *start, uint32_t *len)
{
    uint32_t from = seq_max(c->rtx_next, c->snd_una);
    for (unsigned i = 0; i < c->nsacked; i++) {
        if (seq_lt(from, c->sacked[i][0]) && (!lost_only || hole_lost(c, i))) {
            *start = from, *len = c->sacked[i][0] - from;
            return true;
        }
        from = seq_max(from, c->sacked[i][1]);
    }
    return false;
}

/* Retransmits one MSS of a hole's data (a hole never holds the FIN: SACKs cover data only) when the
   pipe leaves room; false when it does not or there is nothing to send. */
static bool send_hole(struct tcp_conn *c, bool lost_only)
{
    uint32_t data_end = tcp_fin_seq(c), start, len;
    if (tcp_pipe(c) + c->mss > c->cwnd || !next_hole(c, lost_only, &start, &len) || !seq_lt(start, data_end))
        return false;
    len = tcp_min32(tcp_min32(len, c->mss), data_end - start);
    send_data(c, start, len, false);
    c->rtx_next = start + len;
    return true;
}

/* NextSeg rule 1, before any new data (rule 2, tcp_output): the holes deemed lost, while the pipe
   leaves room. */
void tcp_sack_retransmit(struct tcp_conn *c)
{
    while (send_hole(c, true))
        ;
}

/*
 * NextSeg rule 4, the rescue retransmission: once per recovery (until snd_una passes the RecoveryPoint
 * it was sent in), one segment that ends with the highest unSACKed octet, so that a loss at the tail,
 * which no SACK can show, is repaired in this round trip rather than after a partial ACK or the RTO.
 * HighRxt stays. Unlike the RFC's rule we never rescue what was already retransmitted (an octet below
 * rtx_next): resending it again so soon would most likely duplicate it.
 */
static void sack_rescue(struct tcp_conn *c)
{
    if (c->rescue_sent && !seq_gt(c->snd_una, c->rescue_rxt))
        return;
    unsigned n = c->nsacked;
    uint32_t top = c->snd_nxt, bottom = c->sacked[n - 1][1];
    if (bottom == top) {          /* the highest SACK reaches HighData: the hole below it */
        top = c->sacked[n - 1][0];
        bottom = n > 1 ? c->sacked[n - 2][1] : c->snd_una;
    }
    uint32_t data_end = tcp_fin_seq(c);
    bool fin = tcp_fin_sent(c) && top == data_end + 1;
    uint32_t end = fin ? data_end : top;
    uint32_t start = seq_max(seq_max(bottom, c->rtx_next), end - tcp_min32(end - bottom, c->mss));
    if (!seq_lt(seq_max(bottom, c->rtx_next), top) || (!seq_lt(start, end) && !fin))
        return;
    send_data(c, start, seq_lt(start, end) ? end - start : 0, fin);
    c->rescue_sent = true;
    c->rescue_rxt = c->recover;
}

/* Rule 2 can send: unsent data (or the FIN) and a peer's window that takes some of it. */
static bool new_data_sendable(const struct tcp_conn *c)
{
    uint32_t data_end = tcp_fin_seq(c) + (c->fin_queued ? 1 : 0);
    return seq_lt(c->snd_nxt, data_end) && c->snd_wnd > tcp_flight(c);
}

/* NextSeg rules 3 and 4, when rule 2 has nothing to send: holes not (yet) deemed lost, then the rescue,
   while the pipe leaves room. */
static void sack_fill(struct tcp_conn *c)
{
    if (!c->in_recovery || !c->sack_ok || !c->nsacked || new_data_sendable(c))
        return;
    while (send_hole(c, false))
        ;
    if (tcp_pipe(c) + c->mss <= c->cwnd)
        sack_rescue(c);
}

/* Zero-window probe (one byte beyond the window, RFC 9293 §3.8.6.1) or keepalive (one old byte's sequence). */
void tcp_send_probe(struct tcp_conn *c, bool keepalive)
{
    if (keepalive) {
        send_segment(c, c->snd_una - 1, TH_ACK, 0, false);
        return;
    }
    if (c->sbuf_len == 0 || seq_lt(c->snd_una, c->buf_seq))
        return;
    send_segment(c, c->snd_una, TH_ACK, 1, false);
    c->snd_max = seq_max(c->snd_max, c->snd_una + 1);
}

static bool synchronized(const struct tcp_conn *c)
{
    switch (c->state) {
    case TCPS_ESTABLISHED:
    case TCPS_FIN_WAIT_1:
    case TCPS_CLOSE_WAIT:
    case TCPS_CLOSING:
    case TCPS_LAST_ACK:
        return true;
    default:
        return false;
    }
}

/* Nagle (RFC 896) and sender SWS avoidance (RFC 1122 §4.2.3.4) in one decision; idle: nothing in flight. */
static bool worth_sending(const struct tcp_conn *c, uint32_t len, uint32_t avail, bool fin, bool idle)
{
    if (len >= c->mss || fin)
        return len > 0 || fin;
    if (len == 0)
        return false;
    if (idle)
        return true;
    if (c->nodelay && len == avail)
        return true;
    return c->max_snd_wnd && len >= c->max_snd_wnd / 2;
}

/* RFC 3042 limited transmit: the first and second duplicate ACKs each let one more segment of new data
   out beyond cwnd (cwnd itself unchanged), so a small window still gets the three duplicates that
   trigger fast retransmit instead of waiting for a timeout. */
static uint32_t send_cwnd(const struct tcp_conn *c)
{
    return !c->in_recovery && c->dupacks <= 2 ? c->cwnd + c->dupacks * c->mss : c->cwnd;
}

/* TSO for the next segment: the device cuts, it is new data (retransmissions stay one MSS), and it
   need not carry CWR (a device that copies flags to every piece would repeat it). */
static bool tso_usable(const struct tcp_conn *c)
{
    return c->ns->tx_tso4 && c->ns->tx_csum_offload && !c->ecn_cwr && seq_geq(c->snd_nxt, c->snd_max);
}

/* The longest segment the next send may build: one MSS, or with TSO the whole MSS pieces that fit one
   64 KiB IPv4 packet (room for the largest TCP header). */
static uint32_t seg_limit(const struct tcp_conn *c)
{
    if (!tso_usable(c))
        return c->mss;
    return (65535u - 20 - TCP_HLEN - 40) / c->mss * c->mss;
}

/* A TSO segment of len > MSS bytes is whole MSS pieces, and a shorter last piece only when that piece
   would have gone out on its own right after the others (Nagle and SWS avoidance, data in flight). */
static uint32_t tso_trim(const struct tcp_conn *c, uint32_t len, uint32_t avail)
{
    uint32_t whole = len / c->mss * c->mss, tail = len - whole;
    bool fin = c->fin_queued && len == avail;
    return tail && worth_sending(c, tail, avail - whole, fin, false) ? len : whole;
}

void tcp_output(struct tcp_conn *c)
{
    if (c->dead || !synchronized(c))
        return;
    uint32_t cwnd = send_cwnd(c);
    for (;;) {
        uint32_t data_end = tcp_fin_seq(c);
        uint32_t avail = seq_lt(c->snd_nxt, data_end) ? data_end - c->snd_nxt : 0;
        /* The peer's window limits all we sent; cwnd only what the network still holds (the pipe). */
        uint32_t flight = tcp_flight(c), pipe = tcp_pipe(c);
        uint32_t usable = tcp_min32(c->snd_wnd > flight ? c->snd_wnd - flight : 0, cwnd > pipe ? cwnd - pipe : 0);
        uint32_t len = tcp_min32(tcp_min32(avail, seg_limit(c)), usable);
        if (len > c->mss)
            len = tso_trim(c, len, avail);
        bool fin = c->fin_queued && len == avail && c->snd_nxt + len == data_end;
        if (!worth_sending(c, len, avail, fin, flight == 0))
            break;
        bool new_data = seq_geq(c->snd_nxt, c->snd_max);
        send_data(c, c->snd_nxt, len, fin);
        if (new_data && !c->rtt_timing && len) {
            c->rtt_timing = true;
            c->rtt_seq = c->snd_nxt + len;
            c->rtt_start_ns = tcp_now(c);
        }
        c->snd_nxt += len + fin;
        c->snd_max = seq_max(c->snd_max, c->snd_nxt);
        tcp_timer_cancel(c, TT_PERSIST);
        if (!(c->armed & (1u << TT_RTX)))
            tcp_arm_rtx(c);
        if (fin)
            break;
    }
    sack_fill(c);
    /* Data waits, the peer's window is shut and nothing is in flight to bring an update: probe. */
    bool waiting = seq_lt(c->snd_nxt, tcp_fin_seq(c));
    if (waiting && c->snd_wnd == 0 && c->snd_una == c->snd_max && !(c->armed & (1u << TT_PERSIST))) {
        c->persist_backoff = 0;
        tcp_timer_cancel(c, TT_RTX);
        tcp_timer_arm(c, TT_PERSIST, c->rto_ns);
    }
}
