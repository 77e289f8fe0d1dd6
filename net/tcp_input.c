/*
 * Segment arrival (RFC 9293 §3.10.7) in the RFC's order: LISTEN and
 * SYN-SENT first, then for synchronized states the sequence test, RST
 * (RFC 5961 §3), SYN (RFC 5961 §4), ACK (RFC 5961 §5, RFC 5681,
 * RFC 6582), data with the out-of-order queue, FIN. Callbacks may
 * close or abort the connection; after each one the connection's
 * `dead` flag is checked before it is touched again.
 */
#include "tcp_impl.h"
#include "checksum.h"
#include "../kernel/malloc.h"
#include "../kernel/string.h"

#define TCP_MIN_MSS 64            /* a peer's tiny MSS option must not turn one write into thousands of segments */

static void parse_options(struct tcp_seg *s, const uint8_t *o, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t kind = o[i];
        if (kind == 0)
            return;
        if (kind == 1) {
            i++;
            continue;
        }
        if (i + 1 >= n || o[i + 1] < 2 || i + o[i + 1] > n)
            return;
        uint8_t olen = o[i + 1];
        if (kind == 2 && olen == 4) {
            s->mss = rd16(o + i + 2);
            s->has_mss = true;
        } else if (kind == 3 && olen == 3) {
            s->wscale = o[i + 2] > 14 ? 14 : o[i + 2];   /* RFC 7323 §2.3 */
            s->has_wscale = true;
        } else if (kind == 4 && olen == 2) {
            s->sack_ok = true;
        } else if (kind == 8 && olen == 10) {
            s->tsval = rd32(o + i + 2);
            s->tsecr = rd32(o + i + 6);
            s->has_ts = true;
        } else if (kind == 5 && olen >= 10 && (olen - 2) % 8 == 0) {
            for (size_t b = i + 2; b < i + olen && s->nsack < TCP_SACK_BLOCKS; b += 8, s->nsack++) {
                s->sack[s->nsack][0] = rd32(o + b);
                s->sack[s->nsack][1] = rd32(o + b + 4);
            }
        }
        i += olen;
    }
}

static bool parse(const uint8_t *l4, size_t len, struct tcp_seg *s)
{
    if (len < TCP_HLEN)
        return false;
    size_t doff = (size_t)(l4[12] >> 4) * 4;
    if (doff < TCP_HLEN || doff > len)
        return false;
    memset(s, 0, sizeof *s);
    s->sport = rd16(l4);
    s->dport = rd16(l4 + 2);
    s->seq = rd32(l4 + 4);
    s->ack = rd32(l4 + 8);
    s->flags = l4[13];            /* with ECE and CWR (RFC 3168) */
    s->win = rd16(l4 + 14);
    s->data = l4 + doff;
    s->len = (uint32_t)(len - doff);
    parse_options(s, l4 + TCP_HLEN, doff - TCP_HLEN);   /* SYN options; SACK blocks and TSopt on any segment */
    return s->sport && s->dport;
}

static bool tcp_checksum_ok(const struct ip_info *ip, const uint8_t *l4, size_t len)
{
    if (ip->csum_flags & (NETBUF_CSUM_VALID | NETBUF_CSUM_PARTIAL))
        return true;
    return csum_finish(csum_add(csum_pseudo(ip->src, ip->dst, IPPROTO_TCP, (uint32_t)len), l4, len)) == 0;
}

/* --- out-of-order queue: sorted, non-overlapping, bounded --- */

void tcp_ooo_free(struct tcp_conn *c)
{
    while (c->ooo) {
        struct tcp_ooo *o = c->ooo;
        c->ooo = o->next;
        free(o);
    }
    c->ooo_bytes = c->ooo_segs = 0;
}

static void ooo_insert(struct tcp_conn *c, uint32_t seq, const uint8_t *data, uint32_t len)
{
    uint32_t end = seq + len;
    struct tcp_ooo **p = &c->ooo;
    /* Skip blocks wholly before; clip our start against one that overlaps it. */
    while (*p && seq_leq((*p)->seq + (*p)->len, seq))
        p = &(*p)->next;
    if (*p && seq_leq((*p)->seq, seq)) {
        uint32_t pend = (*p)->seq + (*p)->len;
        if (seq_geq(pend, end))
            return;               /* a duplicate */
        data += pend - seq;
        seq = pend;
        p = &(*p)->next;
    }
    /* Drop blocks we cover wholly; clip our end against one that starts inside us. */
    while (*p && seq_leq((*p)->seq + (*p)->len, end)) {
        struct tcp_ooo *dead = *p;
        *p = dead->next;
        c->ooo_bytes -= dead->len;
        c->ooo_segs--;
        free(dead);
    }
    if (*p && seq_lt((*p)->seq, end))
        end = (*p)->seq;
    len = end - seq;
    if (!len || c->ooo_segs >= TCP_OOO_MAX_SEGS || c->ooo_bytes + len > TCP_RCVBUF)
        return;
    struct tcp_ooo *n = malloc(sizeof *n + len);
    if (!n)
        return;
    n->seq = seq;
    n->len = len;
    memcpy(n->data, data, len);
    n->next = *p;
    *p = n;
    c->ooo_bytes += len;
    c->ooo_segs++;
}

/* Keep in-order data (or the FIN, len 0) for tcp_recv_resume(); the window guarantees it fits. */
static void hold(struct tcp_conn *c, const uint8_t *data, uint32_t len)
{
    if (!len) {
        c->fin_held = true;
        return;
    }
    if (!c->held && !(c->held = malloc(TCP_HELD_CAP))) {
        tcp_of(c)->stats.rcv_dropped += len;
        return;
    }
    uint32_t n = tcp_min32(len, TCP_HELD_CAP - c->held_len);
    memcpy(c->held + c->held_len, data, n);
    c->held_len += n;
    tcp_of(c)->stats.rcv_dropped += len - n;
}

/* A zero-copy app's chain waits in order, counted in held_len so that it shrinks the window. */
static void hold_bufs(struct tcp_conn *c, struct netbuf *bufs, uint32_t len)
{
    bufs->next = 0;
    if (c->held_bufs)
        c->held_bufs_tail->next = bufs;
    else
        c->held_bufs = bufs;
    c->held_bufs_tail = bufs;
    c->held_len += len;
}

/* The segment's own receive buffers, trimmed to its payload, when nothing else needs them. */
static struct netbuf *take_frame(struct tcp_seg *s)
{
    struct netbuf *f = s->frame ? *s->frame : 0;
    if (!f || s->data < f->data || s->data > f->data + f->len)
        return 0;
    *s->frame = 0;
    f->next = 0;
    f->len -= (uint32_t)(s->data - f->data);
    f->data = (uint8_t *)(uintptr_t)s->data;
    f->flags = 0;
    f->gso_type = NETBUF_GSO_NONE;
    uint32_t left = s->len;
    struct netbuf *b = f;
    while (b->len < left && b->frag) {
        left -= b->len;
        b = b->frag;
    }
    b->len = tcp_min32(b->len, left);
    netbuf_free(b->frag);         /* Ethernet padding, or what the window cut off */
    b->frag = 0;
    return f;
}

/* data[0..len) copied into a chain of fresh netbufs; NULL when memory is out. */
static struct netbuf *copy_to_bufs(const uint8_t *data, uint32_t len)
{
    struct netbuf *head = 0, **link = &head;
    while (len) {
        struct netbuf *b = netbuf_alloc_frag();
        if (!b) {
            netbuf_free(head);
            return 0;
        }
        b->len = tcp_min32(len, netbuf_room(b));
        memcpy(b->data, data, b->len);
        data += b->len;
        len -= b->len;
        *link = b;
        link = &b->frag;
    }
    return head;
}

/*
 * In-order data reaches the app (or waits while it is paused). False when a zero-copy app's buffers
 * cannot be had: nothing was taken, so the bytes stay unacknowledged and the peer sends them again.
 * s: the segment data came in, when it is that segment's whole payload (its buffer may be handed on).
 */
static bool deliver(struct tcp_conn *c, const uint8_t *data, uint32_t len, struct tcp_seg *s)
{
    if (!c->cb || !c->cb->recv_bufs || !len) {
        c->rcv_nxt += len;
        if (c->rcv_paused || c->held_len || c->fin_held)
            hold(c, data, len);
        else if (c->cb && c->cb->recv_bufs)
            c->cb->recv_bufs(c, c->arg, 0, 0);
        else if (c->cb && c->cb->recv)
            c->cb->recv(c, c->arg, data, len);
        return true;
    }
    struct netbuf *bufs = s ? take_frame(s) : 0;
    if (!bufs && s && s->chained)
        return false;             /* cannot happen (tcp_input checked): data is not contiguous */
    if (bufs) {
        tcp_of(c)->stats.rcv_zero_copy++;
        c->ctr.rcv_zero_copy++;
    } else if (!(bufs = copy_to_bufs(data, len))) {
        tcp_of(c)->ns->stats.no_memory++;
        return false;
    } else {
        tcp_of(c)->stats.rcv_copied++;
    }
    c->rcv_nxt += len;
    if (c->rcv_paused || c->held_len || c->fin_held)
        hold_bufs(c, bufs, len);
    else
        c->cb->recv_bufs(c, c->arg, bufs, len);
    return true;
}

/* After in-order data: whatever the queue now continues. */
static void ooo_drain(struct tcp_conn *c)
{
    while (c->ooo && !c->dead && seq_leq(c->ooo->seq, c->rcv_nxt)) {
        struct tcp_ooo *o = c->ooo;
        uint32_t skip = c->rcv_nxt - o->seq;
        if (skip < o->len && !deliver(c, o->data + skip, o->len - skip, 0))
            return;               /* out of memory: the block waits for the next arrival */
        c->ooo = o->next;
        c->ooo_bytes -= o->len;
        c->ooo_segs--;
        free(o);
    }
}

/* --- LISTEN --- */

static uint16_t clamp_mss(const struct net_stack *ns, const struct tcp_seg *s)
{
    uint32_t mss = s->has_mss ? s->mss : TCP_DEFAULT_MSS;
    uint32_t ours = (uint32_t)ns->cfg.mtu - 40;
    mss = mss > ours ? ours : mss;
    return (uint16_t)(mss < TCP_MIN_MSS ? TCP_MIN_MSS : mss);
}

/* RFC 3168 §6.1.1: an ECN-setup SYN has ECE and CWR, an ECN-setup SYN,ACK ECE without CWR. */
static bool ecn_setup(const struct tcp_seg *s)
{
    bool ece = s->flags & TH_ECE, cwr = s->flags & TH_CWR;
    return ece && ((s->flags & TH_ACK) ? !cwr : cwr);
}

/* What the peer's SYN tells us: its ISN, MSS, whether both sides scale windows, use SACK, timestamps
   (RFC 7323 §3.2: only when both SYNs carry TSopt) and ECN. */
static void take_syn(struct tcp_conn *c, const struct tcp_seg *s)
{
    c->irs = s->seq;
    c->rcv_nxt = s->seq + 1;
    c->last_ack_sent = c->rcv_nxt;
    c->rcv_adv = c->rcv_nxt + tcp_min32(TCP_RCVBUF, 65535);   /* what our SYN (unscaled) offered */
    c->mss = clamp_mss(c->ns, s);
    c->sack_ok = c->sack_ok && s->sack_ok;   /* RFC 2018 §2: only when both SYNs carry SACK-permitted */
    c->ts_ok = c->ts_ok && s->has_ts;
    if (c->ts_ok) {
        c->ts_recent = s->tsval;
        c->ts_recent_ns = tcp_now(c);
        c->mss = (uint16_t)(c->mss - TCP_TS_OPTLEN);   /* the MSS option counts no options (RFC 6691) */
    }
    c->ecn_ok = c->ecn_ok && ecn_setup(s);
    if (s->has_wscale && c->rcv_wscale) {
        c->snd_wscale = s->wscale;
    } else {
        c->snd_wscale = 0;
        c->rcv_wscale = 0;
    }
    c->snd_wnd = s->win;          /* never scaled in a SYN (RFC 7323 §2.2) */
    c->max_snd_wnd = s->win;
    c->snd_wl1 = s->seq;
    c->snd_wl2 = s->ack;
}

/* --- SYN cookies (the hash is in tcp_isn.c): with the backlog full, the SYN,ACK carries the state --- */

static void conn_input(struct tcp_conn *c, const struct ip_info *ip, struct tcp_seg *s);

static struct tcp_cookie_flow cookie_flow(const struct ip_info *ip, const struct tcp_seg *s, uint32_t irs)
{
    return (struct tcp_cookie_flow){ .lip = ip->dst, .rip = ip->src, .irs = irs, .lport = s->dport, .rport = s->sport };
}

/* What a cookie SYN,ACK offers besides the MSS: window scale, SACK and ECN as the SYN asked, but only
   when it offered timestamps (as Linux), since the TSval is the only place to keep them. */
static struct tcp_cookie_opts cookie_offer(const struct tcp_seg *s)
{
    bool ts = s->has_ts;
    return (struct tcp_cookie_opts){ .wscale = s->wscale, .wscale_ok = ts && s->has_wscale,
                                     .sack_ok = ts && s->sack_ok, .ecn_ok = ts && ecn_setup(s) };
}

static void send_cookie(struct tcp_stack *ts, const struct ip_info *ip, const struct tcp_seg *s)
{
    uint64_t now = ts->ns->env->now_ns();
    struct tcp_cookie_flow f = cookie_flow(ip, s, s->seq);
    struct tcp_cookie_opts o = cookie_offer(s);
    ts->cookies_until_ns = now + TCP_COOKIE_LIFE_NS;
    tcp_send_cookie_synack(ts->ns, ip, s, tcp_cookie_make(ts, &f, clamp_mss(ts->ns, s), now), &o);
}

/* What the cookie SYN,ACK offered, from the echo of its TSval (the TSecr less the 4-tuple's offset); no
   TSopt: it offered nothing beyond the MSS. False: the TSecr cannot be that echo. */
static bool cookie_options(const struct tcp_stack *ts, const struct ip_info *ip, const struct tcp_seg *s,
                           uint64_t now, struct tcp_cookie_opts *o)
{
    *o = (struct tcp_cookie_opts){ 0 };
    if (!s->has_ts)
        return true;
    uint32_t off = tcp_ts_offset(ts, ip->dst, s->dport, ip->src, s->sport);
    return tcp_cookie_ts_decode(s->tsecr - off, tcp_ts_clock(now, 0), o);
}

/* The SYN-RECEIVED connection, as if its SYN (sequence irs) had carried the cookie's MSS and options. */
static void cookie_rebuild(struct tcp_conn *c, struct tcp_listener *l, const struct tcp_seg *s, uint32_t irs,
                           uint16_t mss, const struct tcp_cookie_opts *o)
{
    c->iss = c->snd_una = c->recover = s->ack - 1;
    c->snd_nxt = c->snd_max = c->buf_seq = c->ecn_recover = s->ack;   /* as tcp_conn_new has them from its ISS */
    c->listener = l;
    l->half_open++;               /* the ACK completes it at once: notify_accepted takes it back */
    c->cb = l->cb;
    c->arg = l->arg;
    c->rcv_wscale = o->wscale_ok ? TCP_RCV_WSCALE : 0;   /* what our cookie SYN,ACK offered */
    c->sack_ok = o->sack_ok;
    c->ecn_ok = o->ecn_ok;
    /* It offered timestamps if the SYN did, and then the peer sends them on this ACK (the earliest TSval
       we can know stands in for the SYN's). */
    c->ts_ok = true;
    struct tcp_seg syn = { .seq = irs, .ack = s->ack, .win = s->win, .mss = mss, .has_mss = true,
                           .wscale = o->wscale, .has_wscale = o->wscale_ok, .sack_ok = o->sack_ok,
                           .flags = o->ecn_ok ? TH_ECE | TH_CWR : 0, .has_ts = s->has_ts, .tsval = s->tsval };
    take_syn(c, &syn);
    c->state = TCPS_SYN_RECEIVED;
    c->last_rx_ns = tcp_now(c);
}

/* Rebuilds the SYN-RECEIVED connection a valid cookie stands for, then lets the ACK (and any data or FIN
   with it) complete it as usual. False: no valid cookie, or no room for the connection; the caller resets. */
static bool cookie_accept(struct tcp_stack *ts, struct tcp_listener *l, const struct ip_info *ip,
                          const struct tcp_seg *s)
{
    uint64_t now = ts->ns->env->now_ns();
    if (now >= ts->cookies_until_ns)
        return false;             /* no cookie out: blind ACKs get no 1-in-2^28 guesses */
    struct tcp_cookie_flow f = cookie_flow(ip, s, s->seq - 1);
    uint16_t mss = tcp_cookie_check(ts, &f, s->ack - 1, now);
    struct tcp_cookie_opts o;
    if (!mss || !cookie_options(ts, ip, s, now, &o))
        return false;
    struct tcp_conn *c = tcp_conn_new(ts, ip->dst, s->dport, ip->src, s->sport);
    if (!c) {
        ts->stats.listen_overflows++;
        return false;
    }
    ts->stats.syn_cookies_ok++;
    cookie_rebuild(c, l, s, f.irs, mss, &o);
    /* The echo is the SYN,ACK's TSval, which is up to 63 ms older than its sending (the low bits are
       options): no RTT measurement. rtt_check samples no TSecr 0. */
    struct tcp_seg ack = *s;
    ack.tsecr = 0;
    conn_input(c, ip, &ack);
    return true;
}

/*
 * Data or a FIN that fails the cookie check while cookies are out may belong to a cookie connection
 * whose first segments were lost: only a segment at the peer's ISN + 1 can rebuild it, and a peer with
 * SACK probes a lost tail with its last segment (RFC 8985 TLP). A reset would kill a connection the
 * peer's next retransmission from ISN + 1 restores, so such a segment is dropped without one.
 */
static bool later_cookie_segment(const struct tcp_stack *ts, const struct tcp_seg *s)
{
    return (s->len || (s->flags & TH_FIN)) && !(s->flags & TH_RST) && ts->ns->env->now_ns() < ts->cookies_until_ns;
}

static void listen_input(struct tcp_stack *ts, struct tcp_listener *l, const struct ip_info *ip,
                         const struct tcp_seg *s)
{
    if (s->flags & TH_RST)
        return;
    if (s->flags & TH_ACK) {
        if (!(s->flags & TH_SYN) && cookie_accept(ts, l, ip, s))
            return;
        if (!(s->flags & TH_SYN) && later_cookie_segment(ts, s)) {
            ts->stats.syn_cookies_later++;
            return;
        }
        /* A bad or expired cookie gets the RST any ACK to a listener gets (RFC 9293 §3.10.7.2). */
        tcp_send_rst_for(ts->ns, ip, s);
        return;
    }
    if (!(s->flags & TH_SYN))
        return;
    if (l->half_open >= ts->backlog) {
        ts->stats.listen_overflows++;
        send_cookie(ts, ip, s);
        return;
    }
    struct tcp_conn *c = tcp_conn_new(ts, ip->dst, s->dport, ip->src, s->sport);
    if (!c) {
        ts->stats.listen_overflows++;
        tcp_send_rst_for(ts->ns, ip, s);
        return;
    }
    c->listener = l;
    l->half_open++;
    c->cb = l->cb;
    c->arg = l->arg;
    c->rcv_wscale = TCP_RCV_WSCALE;
    c->sack_ok = true;            /* answered in kind when the SYN offers it */
    c->ts_ok = true;              /* likewise timestamps and ECN */
    c->ecn_ok = true;
    take_syn(c, s);
    c->state = TCPS_SYN_RECEIVED;
    c->last_rx_ns = tcp_now(c);
    tcp_send_syn(c);
}

/* --- SYN-SENT --- */

static void established(struct tcp_conn *c, const struct tcp_seg *s)
{
    c->state = c->fin_queued ? TCPS_FIN_WAIT_1 : TCPS_ESTABLISHED;
    tcp_rto_handshake_done(c);    /* before retries, which says whether the SYN timed out, is reset */
    c->retries = 0;
    c->cc->init(c);
    c->snd_wl1 = s->seq;
    c->snd_wl2 = s->ack;
    if (c->keepalive)
        tcp_timer_arm(c, TT_KEEPALIVE, c->ka_idle_ns);
}

/*
 * An RTT sample from an ACK of new data. With timestamps (RFC 7323 §4.1) the echoed TSval dates the
 * segment that caused the ACK, even a retransmitted one, so every such ACK gives a sample and Karn's
 * rule is not needed; the gains shrink by the samples expected per round trip (Appendix G). ACKs
 * that acknowledge nothing new (duplicates, old data) are never sampled: their TSecr may be stale.
 * Without timestamps: one timed segment per round trip, never a retransmitted one (RFC 6298 §3).
 */
static void rtt_check(struct tcp_conn *c, const struct tcp_seg *s)
{
    if (c->ts_ok && s->has_ts) {
        uint32_t ms = tcp_ts_now(c) - s->tsecr;
        /* TSecr 0 is what a peer echoes before it has our TSval; a value from the future or older than
           the longest RTO is not one of ours. */
        if (s->tsecr && (int32_t)ms >= 0 && ms <= TCP_RTO_MAX_NS / 1000000) {
            uint32_t flight = c->snd_max - c->snd_una, es = (flight + 2u * c->mss - 1) / (2u * c->mss);
            tcp_rtt_sample_weighted(c, (uint64_t)ms * 1000000, es ? es : 1);
        }
        c->rtt_timing = false;
        return;
    }
    if (c->rtt_timing && seq_geq(s->ack, c->rtt_seq)) {
        c->rtt_timing = false;
        tcp_rtt_sample(c, tcp_now(c) - c->rtt_start_ns);
    }
}

static void syn_sent_input(struct tcp_conn *c, const struct ip_info *ip, const struct tcp_seg *s)
{
    bool ack = s->flags & TH_ACK;
    if (ack && (seq_leq(s->ack, c->iss) || seq_gt(s->ack, c->snd_max))) {
        tcp_send_rst_for(c->ns, ip, s);
        return;
    }
    if (s->flags & TH_RST) {
        if (ack) {
            tcp_of(c)->stats.rst_in++;
            tcp_conn_finish(c, TCP_CLOSED_REFUSED, true);
        }
        return;
    }
    if (!(s->flags & TH_SYN))
        return;
    take_syn(c, s);
    if (!ack) {
        /* Simultaneous open (RFC 9293 §3.5): answer with SYN,ACK from the same ISN. */
        c->state = TCPS_SYN_RECEIVED;
        tcp_send_syn(c);
        return;
    }
    rtt_check(c, s);
    c->snd_una = s->ack;
    tcp_timer_cancel(c, TT_RTX);
    established(c, s);
    /* Data in the SYN,ACK is not taken: ACKing only the SYN makes the peer send it again. */
    tcp_send_ack(c);
    if (c->cb && c->cb->connected)
        c->cb->connected(c, c->arg);
}

/* --- synchronized states --- */

/* What the peer may send beyond rcv_nxt: what we advertised, or more if the buffer has room now. */
static uint32_t rcv_wnd(const struct tcp_conn *c)
{
    uint32_t advertised = seq_gt(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
    uint32_t now = tcp_min32(tcp_rcv_free(c), (uint32_t)65535 << c->rcv_wscale);
    return advertised > now ? advertised : now;
}

static bool in_window(uint32_t x, uint32_t start, uint32_t wnd) { return seq_geq(x, start) && seq_lt(x, start + wnd); }

/* RFC 9293 §3.10.7.4, first check. */
static bool acceptable(const struct tcp_conn *c, const struct tcp_seg *s)
{
    uint32_t seg_len = s->len + !!(s->flags & TH_SYN) + !!(s->flags & TH_FIN);
    uint32_t wnd = rcv_wnd(c);
    if (seg_len == 0)
        return wnd ? in_window(s->seq, c->rcv_nxt, wnd) : s->seq == c->rcv_nxt;
    return wnd && (in_window(s->seq, c->rcv_nxt, wnd) || in_window(s->seq + seg_len - 1, c->rcv_nxt, wnd));
}

static void on_unacceptable(struct tcp_conn *c, const struct tcp_seg *s)
{
    if (s->flags & TH_RST)
        return;
    if (c->state == TCPS_SYN_RECEIVED && (s->flags & TH_SYN) && s->seq == c->irs) {
        tcp_send_syn(c);          /* our SYN,ACK was lost */
        return;
    }
    if (s->flags & TH_SYN) {
        tcp_send_challenge_ack(c);
        return;
    }
    if (c->state == TCPS_TIME_WAIT && (s->flags & TH_FIN))
        tcp_timer_arm(c, TT_RTX, TCP_TIME_WAIT_NS);   /* retransmitted FIN: restart 2 MSL */
    c->ack_now = true;
}

static void on_rst(struct tcp_conn *c, const struct tcp_seg *s)
{
    if (s->seq != c->rcv_nxt) {
        tcp_send_challenge_ack(c);   /* RFC 5961 §3.2: in window but not exact */
        return;
    }
    tcp_of(c)->stats.rst_in++;
    if (c->state == TCPS_SYN_RECEIVED && !c->listener) {
        tcp_conn_finish(c, TCP_CLOSED_REFUSED, true);
        return;
    }
    /* A passive SYN-RECEIVED goes back to LISTEN: the listener still stands, the app never saw it. */
    tcp_conn_finish(c, TCP_CLOSED_RESET, true);
}

static void notify_accepted(struct tcp_conn *c)
{
    struct tcp_listener *l = c->listener;
    if (l) {
        l->half_open--;
        c->listener = 0;
        if (c->cb && c->cb->accepted)
            c->cb->accepted(c, l->arg);
    } else if (c->cb && c->cb->connected) {
        c->cb->connected(c, c->arg);
    }
}

static void ring_consume(struct tcp_conn *c, uint32_t ack)
{
    if (!seq_gt(ack, c->buf_seq))
        return;
    uint32_t n = tcp_min32(ack - c->buf_seq, c->sbuf_len);
    c->sbuf_head = (c->sbuf_head + n) & (c->sbuf_cap - 1);
    c->sbuf_len -= n;
    c->buf_seq += n;
}

/* --- SACK scoreboard (RFC 6675 §3): sorted, disjoint ranges above snd_una --- */

static void scoreboard_add(struct tcp_conn *c, uint32_t a, uint32_t b)
{
    unsigned i = 0, j;
    while (i < c->nsacked && seq_lt(c->sacked[i][1], a))
        i++;
    /* Merge every range that touches [a, b) into it. */
    for (j = i; j < c->nsacked && seq_leq(c->sacked[j][0], b); j++) {
        a = seq_lt(c->sacked[j][0], a) ? c->sacked[j][0] : a;
        b = seq_max(b, c->sacked[j][1]);
    }
    if (i == j && c->nsacked == TCP_SCOREBOARD)
        return;                   /* full: the oldest knowledge stays; holes are found a bit later */
    memmove(c->sacked[i + 1], c->sacked[j], (c->nsacked - j) * sizeof c->sacked[0]);
    c->nsacked = (uint8_t)(c->nsacked - (j - i) + 1);
    c->sacked[i][0] = a, c->sacked[i][1] = b;
}

/* Drops what the cumulative ACK now covers. */
static void scoreboard_prune(struct tcp_conn *c)
{
    unsigned k = 0;
    for (unsigned i = 0; i < c->nsacked; i++) {
        if (seq_leq(c->sacked[i][1], c->snd_una))
            continue;
        c->sacked[k][0] = seq_max(c->sacked[i][0], c->snd_una);
        c->sacked[k][1] = c->sacked[i][1];
        k++;
    }
    c->nsacked = (uint8_t)k;
}

static uint32_t sacked_bytes(const struct tcp_conn *c)
{
    uint32_t n = 0;
    for (unsigned i = 0; i < c->nsacked; i++)
        n += c->sacked[i][1] - c->sacked[i][0];
    return n;
}

/* Returns whether the segment SACKed data not SACKed before. */
static bool scoreboard_update(struct tcp_conn *c, const struct tcp_seg *s)
{
    if (!c->sack_ok || !s->nsack)
        return false;
    uint32_t before = sacked_bytes(c);
    for (unsigned i = 0; i < s->nsack; i++) {
        uint32_t a = s->sack[i][0], b = s->sack[i][1];
        /* Only blocks of data we sent and the peer has not acknowledged (D-SACKs fall out here). */
        if (seq_lt(a, b) && seq_geq(a, s->ack) && seq_leq(b, c->snd_max))
            scoreboard_add(c, a, b);
    }
    return sacked_bytes(c) != before;
}

/* RFC 6582 §3.2 steps 3 (partial ACK) and 4 (full ACK); outside recovery, window growth. */
static void congestion_on_new_ack(struct tcp_conn *c, uint32_t acked)
{
    if (!c->in_recovery) {
        c->dupacks = 0;
        c->cc->on_ack(c, acked);
        return;
    }
    if (seq_geq(c->snd_una, c->recover)) {
        uint32_t flight = c->snd_max - c->snd_una;
        c->cwnd = tcp_min32(c->ssthresh, (flight > c->mss ? flight : c->mss) + c->mss);   /* RFC 6582 §3.2 (1) */
        c->in_recovery = false;
        c->dupacks = 0;
        return;
    }
    if (c->sack_ok) {
        /* RFC 6675: cwnd stays at ssthresh; the scoreboard, not the partial ACK, says what to resend. */
        if (!c->nsacked || seq_leq(c->rtx_next, c->snd_una)) {
            tcp_retransmit_first(c);
            c->rtx_next = seq_max(c->rtx_next, c->snd_una + c->mss);
        }
        tcp_sack_retransmit(c);
        return;
    }
    tcp_retransmit_first(c);
    c->cwnd = c->cwnd > acked ? c->cwnd - acked : 0;
    if (acked >= c->mss)
        c->cwnd += c->mss;
    if (c->cwnd < c->mss)
        c->cwnd = c->mss;
}

/* Fast retransmit and the start of loss recovery (RFC 6582 §3.2 step 2, RFC 6675 §5 step 4). */
static void enter_recovery(struct tcp_conn *c)
{
    tcp_of(c)->stats.fast_retransmits++;
    c->ctr.fast_retransmits++;
    c->ssthresh = c->cc->ssthresh(c, false);
    c->recover = c->snd_max;
    c->ecn_recover = c->snd_max;  /* RFC 3168 §6.1.2: this reduction also answers ECEs for this window */
    c->ecn_cwr = c->ecn_ok;
    c->in_recovery = true;
    tcp_retransmit_first(c);
    if (c->sack_ok) {
        c->cwnd = c->ssthresh;    /* RFC 6675 §5 step 4.2: the pipe, not inflation, governs sending */
        c->rtx_next = c->snd_una + c->mss;
        tcp_sack_retransmit(c);
        return;
    }
    c->cwnd = c->ssthresh + 3u * c->mss;
}

/* RFC 5681 §3.2 with the RFC 6582 guard against a second recovery for one window of losses. */
static void on_dup_ack(struct tcp_conn *c)
{
    struct tcp_stack *ts = tcp_of(c);
    ts->stats.dup_acks++;
    c->ctr.dup_acks++;
    c->dupacks++;
    if (c->in_recovery) {
        if (c->sack_ok)
            tcp_sack_retransmit(c);   /* new SACK information may show more holes */
        else
            c->cwnd += c->mss;
        return;
    }
    /* RFC 6675 §5 (C): recovery at the third duplicate, or as soon as the SACKs deem the first
       unacknowledged segment lost (IsLost(HighACK + 1): ACKs were lost or stretched). */
    bool lost = c->dupacks >= 3 || (c->sack_ok && tcp_sack_head_lost(c));
    if (lost && seq_gt(c->snd_una, c->recover))
        enter_recovery(c);
}

static void update_window(struct tcp_conn *c, const struct tcp_seg *s)
{
    if (!(seq_lt(c->snd_wl1, s->seq) || (c->snd_wl1 == s->seq && seq_leq(c->snd_wl2, s->ack))))
        return;
    c->snd_wnd = (uint32_t)s->win << c->snd_wscale;
    c->snd_wl1 = s->seq;
    c->snd_wl2 = s->ack;
    if (c->snd_wnd > c->max_snd_wnd)
        c->max_snd_wnd = c->snd_wnd;
    if (c->snd_wnd)
        tcp_timer_cancel(c, TT_PERSIST);
}

/*
 * RFC 3168 §6.1.2: ECE is congestion without a loss. cwnd drops as for a fast retransmit (through the
 * algorithm's ssthresh hook, FlightSize still counting what this ACK covers) but nothing is resent;
 * at most once per window of data, not during loss recovery, and CWR tells the receiver.
 */
static void on_ece(struct tcp_conn *c, const struct tcp_seg *s)
{
    if (!c->ecn_ok || !(s->flags & TH_ECE) || c->in_recovery || !seq_gt(s->ack, c->ecn_recover))
        return;
    tcp_of(c)->stats.ecn_reductions++;
    c->ctr.ecn_reductions++;
    c->ssthresh = c->cc->ssthresh(c, false);
    c->cwnd = c->ssthresh;
    c->bytes_acked = 0;
    c->ecn_recover = c->snd_max;
    c->ecn_cwr = true;
}

/* RFC 5681's duplicate ACK (its ack number already checked): no data, no SYN or FIN, the same window.
   A zero window is excluded: answers to window probes are not a sign of loss. With SACK, an ACK that
   SACKs new data counts too (RFC 6675 §2), whatever its window: a Linux receiver's window moves as
   out-of-order data fills its buffer. */
static bool plain_dup_ack(const struct tcp_conn *c, const struct tcp_seg *s)
{
    return s->len == 0 && !(s->flags & (TH_SYN | TH_FIN)) && ((uint32_t)s->win << c->snd_wscale) == c->snd_wnd &&
           c->snd_wnd;
}

/* Fifth check; false: drop the rest of the segment. */
static bool process_ack(struct tcp_conn *c, const struct tcp_seg *s)
{
    if (seq_gt(s->ack, c->snd_max) || seq_lt(s->ack, c->snd_una - c->max_snd_wnd)) {
        c->ack_now = true;        /* RFC 5961 §5 / RFC 9293: ACK of unsent data or far in the past */
        return false;
    }
    on_ece(c, s);
    bool sack_news = scoreboard_update(c, s);
    if (seq_gt(s->ack, c->snd_una)) {
        /* Our SYN takes a sequence number but no window: only data counts for congestion control. */
        uint32_t acked = s->ack - c->snd_una - (c->snd_una == c->iss);
        rtt_check(c, s);
        ring_consume(c, s->ack);
        c->snd_una = s->ack;
        scoreboard_prune(c);
        if (seq_lt(c->snd_nxt, c->snd_una))
            c->snd_nxt = c->snd_una;
        c->retries = 0;
        c->persist_backoff = 0;
        congestion_on_new_ack(c, acked);
        if (c->snd_una == c->snd_max)
            tcp_timer_cancel(c, TT_RTX);
        else
            tcp_arm_rtx(c);
        /* An ACK that moves but whose SACKs deem the next segment lost starts recovery too (RFC 6675
           §5: the loss is what counts, not how many duplicates showed it; ACKs on data and stretched
           ACKs rarely repeat snd_una three times). */
        if (sack_news && !c->in_recovery && tcp_sack_head_lost(c) && seq_gt(c->snd_una, c->recover))
            enter_recovery(c);
    } else if (s->ack == c->snd_una && c->snd_una != c->snd_max && (sack_news || plain_dup_ack(c, s))) {
        on_dup_ack(c);
    }
    update_window(c, s);
    return true;
}

static bool our_fin_acked(const struct tcp_conn *c) { return tcp_fin_sent(c) && c->snd_una == tcp_fin_seq(c) + 1; }

/* State changes our FIN's acknowledgement causes; false when the connection is finished. */
static bool ack_state_changes(struct tcp_conn *c)
{
    if (!our_fin_acked(c))
        return true;
    switch (c->state) {
    case TCPS_FIN_WAIT_1:
        c->state = TCPS_FIN_WAIT_2;
        return true;
    case TCPS_CLOSING:
        tcp_enter_time_wait(c);
        return false;
    case TCPS_LAST_ACK:
        tcp_conn_finish(c, TCP_CLOSED_NORMAL, true);
        return false;
    default:
        return true;
    }
}

static bool receives_data(const struct tcp_conn *c)
{
    return c->state == TCPS_ESTABLISHED || c->state == TCPS_FIN_WAIT_1 || c->state == TCPS_FIN_WAIT_2;
}

/* Seventh check; returns whether the segment's FIN (if any) is now next in sequence. */
static bool process_data(struct tcp_conn *c, struct tcp_seg *s)
{
    bool fin = s->flags & TH_FIN;
    /* Trim what we already have, and what lies beyond the window (the FIN with it). */
    if (seq_lt(s->seq, c->rcv_nxt)) {
        uint32_t dup = tcp_min32(c->rcv_nxt - s->seq, s->len);
        s->data += dup;
        s->len -= dup;
        s->seq += dup;
    }
    uint32_t room = rcv_wnd(c) - tcp_min32(s->seq - c->rcv_nxt, rcv_wnd(c));
    if (s->len > room) {
        s->len = room;
        fin = false;
    }
    if (!s->len)
        return fin && s->seq == c->rcv_nxt;
    if (!receives_data(c))
        return false;
    c->last_rx_ns = tcp_now(c);
    if (s->seq != c->rcv_nxt) {
        tcp_of(c)->stats.out_of_order++;
        c->ctr.out_of_order++;
        ooo_insert(c, s->seq, s->data, s->len);
        memmove(c->sack_recent + 1, c->sack_recent, sizeof c->sack_recent - sizeof c->sack_recent[0]);
        c->sack_recent[0] = s->seq;   /* its block goes first in our SACK option */
        c->ack_now = true;        /* a duplicate ACK tells the sender about the hole */
        return false;
    }
    bool filled_hole = c->ooo != 0;
    if (!deliver(c, s->data, s->len, s))
        return false;
    ooo_drain(c);
    if (c->dead)
        return false;
    if (filled_hole || ++c->delack_segs >= 2)
        c->ack_now = true;
    else if (!(c->armed & (1u << TT_DELACK)))
        tcp_timer_arm(c, TT_DELACK, TCP_DELACK_NS);
    return fin && s->seq + s->len == c->rcv_nxt;
}

/* Eighth check: the peer's FIN, in sequence. */
static void process_fin(struct tcp_conn *c)
{
    c->rcv_nxt++;
    c->ack_now = true;
    switch (c->state) {
    case TCPS_SYN_RECEIVED:
    case TCPS_ESTABLISHED:
        c->state = TCPS_CLOSE_WAIT;
        deliver(c, 0, 0, 0);
        return;
    case TCPS_FIN_WAIT_1:
        deliver(c, 0, 0, 0);
        if (c->dead)
            return;
        if (our_fin_acked(c))
            tcp_enter_time_wait(c);
        else
            c->state = TCPS_CLOSING;
        return;
    case TCPS_FIN_WAIT_2:
        deliver(c, 0, 0, 0);
        if (!c->dead)
            tcp_enter_time_wait(c);
        return;
    case TCPS_TIME_WAIT:
        tcp_timer_arm(c, TT_RTX, TCP_TIME_WAIT_NS);
        return;
    default:
        return;
    }
}

/*
 * RFC 7323 §5.3 R1, PAWS: a segment whose TSval is older than TS.Recent is an old duplicate; drop it
 * with an ACK. RSTs are exempt (§5.2: their sequence number alone decides). *stale: TS.Recent is over
 * 24 days old and may have wrapped (§5.5), so the segment's TSval replaces it if it is acceptable.
 */
static bool paws_ok(struct tcp_conn *c, const struct tcp_seg *s, bool *stale)
{
    *stale = false;
    if (!c->ts_ok || (s->flags & TH_RST))
        return true;
    if (!s->has_ts)
        return false;             /* §3.2: once negotiated, a non-RST segment without TSopt is dropped silently */
    if (seq_geq(s->tsval, c->ts_recent))
        return true;
    if (tcp_now(c) - c->ts_recent_ns > TCP_PAWS_IDLE_NS) {
        *stale = true;
        return true;
    }
    tcp_of(c)->stats.paws_rejected++;
    c->ack_now = true;
    return false;
}

/* RFC 7323 §4.3: TS.Recent follows the segment at the left edge of what we last acknowledged, so our
   echo dates the oldest segment our ACK answers (and a delayed ACK includes the delay). */
static void ts_recent_update(struct tcp_conn *c, const struct tcp_seg *s, bool stale)
{
    if (c->ts_ok && s->has_ts && (stale || seq_geq(s->tsval, c->ts_recent)) && seq_leq(s->seq, c->last_ack_sent)) {
        c->ts_recent = s->tsval;
        c->ts_recent_ns = tcp_now(c);
    }
}

/* RFC 3168 §6.1.3: CE on an arriving segment sets ECE on our ACKs until a segment with CWR comes;
   CE on the CWR segment itself keeps it set. The first CE is acknowledged at once, so the sender
   reacts within a round trip rather than a delayed-ACK time later. */
static void ecn_input(struct tcp_conn *c, const struct tcp_seg *s)
{
    if (!c->ecn_ok)
        return;
    if (s->flags & TH_CWR)
        c->ecn_ece = false;
    if (s->ce) {
        tcp_of(c)->stats.ecn_ce_in++;
        c->ctr.ecn_ce_in++;
        if (!c->ecn_ece)
            c->ack_now = true;
        c->ecn_ece = true;
    }
}

static void synchronized_input(struct tcp_conn *c, const struct ip_info *ip, struct tcp_seg *s)
{
    if (c->state == TCPS_TIME_WAIT && (s->flags & TH_RST))
        return;                   /* RFC 1337 */
    bool ts_stale;
    if (!paws_ok(c, s, &ts_stale))
        return;
    if (c->state == TCPS_SYN_RECEIVED && !c->listener && (s->flags & TH_SYN) && (s->flags & TH_ACK) &&
        s->seq == c->irs && s->ack == c->snd_nxt) {
        /* The peer's SYN,ACK in a simultaneous open: its SYN we have, its ACK completes ours. */
        s->flags &= (uint8_t)~TH_SYN;
        s->seq++;
    }
    if (!acceptable(c, s)) {
        on_unacceptable(c, s);
        return;
    }
    if (s->flags & TH_RST) {
        on_rst(c, s);
        return;
    }
    if (s->flags & TH_SYN) {
        if (c->state == TCPS_SYN_RECEIVED && c->listener)
            tcp_conn_finish(c, TCP_CLOSED_RESET, false);
        else
            tcp_send_challenge_ack(c);
        return;
    }
    if (!(s->flags & TH_ACK))
        return;
    c->last_rx_ns = tcp_now(c);
    c->ka_probes = 0;
    if (c->state == TCPS_SYN_RECEIVED) {
        if (!seq_gt(s->ack, c->snd_una) || seq_gt(s->ack, c->snd_max)) {
            tcp_send_rst_for(c->ns, ip, s);
            return;
        }
        established(c, s);
        c->snd_wnd = (uint32_t)s->win << c->snd_wscale;
        notify_accepted(c);
        if (c->dead)
            return;
    }
    if (!process_ack(c, s))
        return;
    ts_recent_update(c, s, ts_stale);
    ecn_input(c, s);
    if (!ack_state_changes(c))
        return;
    if (c->want_writable && tcp_send_space(c)) {
        c->want_writable = false;
        if (c->cb && c->cb->writable)
            c->cb->writable(c, c->arg);
        if (c->dead)
            return;
    }
    /* URG (sixth check) is ignored: urgent bytes are delivered inline like any others (RFC 6093). */
    if (process_data(c, s) && !c->dead)
        process_fin(c);
}

static void conn_input(struct tcp_conn *c, const struct ip_info *ip, struct tcp_seg *s)
{
    c->ctr.segs_in++;
    tcp_conn_hold(c);
    if (c->state == TCPS_SYN_SENT)
        syn_sent_input(c, ip, s);
    else
        synchronized_input(c, ip, s);
    if (!c->dead) {
        tcp_output(c);
        if (c->ack_now)
            tcp_send_ack(c);
    }
    tcp_conn_release(c);
}

/*
 * A new SYN for a 4-tuple still in TIME-WAIT starts a new connection when it cannot be taken for part
 * of the old one (RFC 6191, RFC 1122 §4.2.2.13): its timestamp is newer than the old connection's last,
 * or, without timestamps, it starts beyond the old connection's sequence space. Clients that reuse
 * ports soon (Linux does, under load) would otherwise get challenge ACKs until TIME-WAIT ends.
 */
static bool time_wait_reopens(const struct tcp_conn *c, const struct tcp_seg *s)
{
    if (c->state != TCPS_TIME_WAIT || (s->flags & (TH_SYN | TH_ACK | TH_RST)) != TH_SYN)
        return false;
    if (c->ts_ok && s->has_ts)
        return seq_gt(s->tsval, c->ts_recent);
    return seq_gt(s->seq, c->rcv_nxt);
}

/*
 * A chained segment (ip_info.chained) goes to a zero-copy app as it is when it is the next in-order data
 * that the window takes whole; anything else reads the payload, so it gets a contiguous copy.
 */
static bool in_place_ok(const struct tcp_conn *c, const struct tcp_seg *s)
{
    return c && c->cb && c->cb->recv_bufs && receives_data(c) && !(s->flags & (TH_SYN | TH_RST)) &&
           s->seq == c->rcv_nxt && s->len <= rcv_wnd(c);
}

/* The payload of a chained segment copied out; NULL when memory is out. */
static uint8_t *linearize(struct tcp_seg *s)
{
    const struct netbuf *b = *s->frame;
    uint8_t *buf = malloc(s->len ? s->len : 1);
    if (!buf)
        return 0;
    uint32_t done = tcp_min32(s->len, (uint32_t)(b->data + b->len - s->data));
    memcpy(buf, s->data, done);
    for (b = b->frag; b && done < s->len; b = b->frag) {
        uint32_t n = tcp_min32(b->len, s->len - done);
        memcpy(buf + done, b->data, n);
        done += n;
    }
    s->data = buf;
    s->len = done;
    s->frame = 0;
    s->chained = false;
    return buf;
}

static void segment_input(struct tcp_stack *ts, const struct ip_info *ip, struct tcp_seg *s)
{
    struct tcp_conn *c = tcp_lookup(ts, ip->dst, s->dport, ip->src, s->sport);
    if (c && time_wait_reopens(c, s)) {
        tcp_conn_finish(c, TCP_CLOSED_NORMAL, false);   /* the app was told when it entered TIME-WAIT */
        c = 0;
    }
    uint8_t *copy = 0;
    if (s->chained && !in_place_ok(c, s) && !(copy = linearize(s))) {
        ts->ns->stats.no_memory++;
        return;
    }
    struct tcp_listener *l = c ? 0 : tcp_find_listener(ts, s->dport);
    if (c)
        conn_input(c, ip, s);
    else if (l)
        listen_input(ts, l, ip, s);
    else
        tcp_send_rst_for(ts->ns, ip, s);
    free(copy);
}

void tcp_input(struct net_stack *ns, const struct ip_info *ip, const uint8_t *l4, size_t len)
{
    struct tcp_stack *ts = ns->tcp;
    ns->stats.tcp_rx++;
    if (!ts)
        return;
    ts->stats.segs_in++;
    struct tcp_seg s;
    if (ip->broadcast || !parse(l4, len, &s)) {
        ts->stats.bad_header++;
        return;
    }
    s.ce = (ip->tos & 3) == IP_ECN_CE;
    s.frame = ip->frame;
    s.chained = ip->chained;
    if (!tcp_checksum_ok(ip, l4, len)) {
        ts->stats.bad_checksum++;
        return;
    }
    segment_input(ts, ip, &s);
}
