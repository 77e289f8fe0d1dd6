/*
 * The shard's connection table and the application-facing calls:
 * listen, connect, send, close, abort. A connection is freed only when
 * no stack frame is using it (busy) and none of its timers is armed, so
 * a callback may close or abort the connection it was called for.
 */
#include "tcp_impl.h"
#include "toeplitz.h"
#include "../kernel/malloc.h"
#include "../kernel/string.h"

bool tcp_init(struct net_stack *ns)
{
    struct tcp_stack *ts = calloc(1, sizeof *ts);
    if (!ts)
        return false;
    ts->ns = ns;
    ns->env->random(ts->key, sizeof ts->key);
    ts->max_conns = TCP_DEFAULT_MAX_CONNS;
    ts->backlog = TCP_DEFAULT_BACKLOG;
    ts->next_port = (uint16_t)(49152 + (ts->key[0] | ts->key[1] << 8) % 16384);
    ns->tcp = ts;
    return true;
}

static void conn_free(struct tcp_conn *c)
{
    tcp_ooo_free(c);
    free(c->held);
    while (c->held_bufs) {
        struct netbuf *b = c->held_bufs;
        c->held_bufs = b->next;
        netbuf_free(b);
    }
    free(c->sbuf);
    free(c);
}

void tcp_fini(struct net_stack *ns)
{
    struct tcp_stack *ts = ns->tcp;
    if (!ts)
        return;
    for (unsigned b = 0; b < TCP_HASH_BUCKETS; b++) {
        while (ts->buckets[b]) {
            struct tcp_conn *c = ts->buckets[b];
            ts->buckets[b] = c->hnext;
            tcp_timers_cancel_all(c);
            conn_free(c);
        }
    }
    free(ts);
    ns->tcp = 0;
}

void tcp_set_limits(struct net_stack *ns, unsigned max_conns, unsigned syn_backlog)
{
    ns->tcp->max_conns = max_conns;
    ns->tcp->backlog = syn_backlog;
}

static unsigned bucket_of(const struct tcp_stack *ts, uint32_t lip, uint16_t lport, uint32_t rip, uint16_t rport)
{
    uint8_t t[12];
    wr32(t, lip);
    wr32(t + 4, rip);
    wr16(t + 8, lport);
    wr16(t + 10, rport);
    /* Keyed, so that a peer cannot aim all its flows at one chain. */
    return (unsigned)tcp_siphash(ts->key, t, sizeof t) & (TCP_HASH_BUCKETS - 1);
}

struct tcp_conn *tcp_lookup(struct tcp_stack *ts, uint32_t lip, uint16_t lport, uint32_t rip, uint16_t rport)
{
    for (struct tcp_conn *c = ts->buckets[bucket_of(ts, lip, lport, rip, rport)]; c; c = c->hnext)
        if (c->lport == lport && c->rport == rport && c->rip == rip && c->lip == lip)
            return c;
    return 0;
}

struct tcp_listener *tcp_find_listener(struct tcp_stack *ts, uint16_t port)
{
    for (unsigned i = 0; i < TCP_MAX_LISTENERS; i++)
        if (ts->listeners[i].used && ts->listeners[i].port == port)
            return &ts->listeners[i];
    return 0;
}

static void unhash(struct tcp_conn *c)
{
    struct tcp_stack *ts = tcp_of(c);
    struct tcp_conn **p = &ts->buckets[bucket_of(ts, c->lip, c->lport, c->rip, c->rport)];
    for (; *p; p = &(*p)->hnext) {
        if (*p == c) {
            *p = c->hnext;
            ts->nconns--;
            return;
        }
    }
}

struct tcp_conn *tcp_conn_new(struct tcp_stack *ts, uint32_t lip, uint16_t lport, uint32_t rip, uint16_t rport)
{
    if (ts->nconns >= ts->max_conns)
        return 0;
    struct tcp_conn *c = calloc(1, sizeof *c);
    uint8_t *sbuf = malloc(TCP_SNDBUF);
    if (!c || !sbuf) {
        free(c);
        free(sbuf);
        ts->ns->stats.no_memory++;
        return 0;
    }
    c->ns = ts->ns;
    c->sbuf = sbuf;
    c->sbuf_cap = TCP_SNDBUF;
    c->lip = lip, c->lport = lport, c->rip = rip, c->rport = rport;
    c->mss = TCP_DEFAULT_MSS;
    c->rto_ns = TCP_RTO_INIT_NS;
    /* A passive open's local port is its listener's; active opens never use a listening port (pick_port). */
    struct tcp_listener *l = tcp_find_listener(ts, lport);
    c->cc = l ? l->cc : &tcp_newreno;
    c->ka_idle_ns = TCP_KEEPALIVE_IDLE_NS;
    c->ka_intvl_ns = TCP_KEEPALIVE_INTVL_NS;
    c->iss = tcp_isn(ts, lip, lport, rip, rport, ts->ns->env->now_ns());
    c->snd_una = c->snd_nxt = c->snd_max = c->iss;
    c->buf_seq = c->iss + 1;
    c->recover = c->iss;
    c->ecn_recover = c->iss + 1;  /* ECE on the ACK of our SYN (a simultaneous open) is no congestion */
    c->ts_offset = tcp_ts_offset(ts, lip, lport, rip, rport);
    tcp_timers_init(c);
    unsigned b = bucket_of(ts, lip, lport, rip, rport);
    c->hnext = ts->buckets[b];
    ts->buckets[b] = c;
    ts->nconns++;
    ts->stats.conns_opened++;
    return c;
}

void tcp_conn_hold(struct tcp_conn *c) { c->busy++; }

void tcp_conn_release(struct tcp_conn *c)
{
    if (--c->busy == 0 && c->dead && !c->armed)
        conn_free(c);
}

/* The app hears closed() once; after it, no callback of this connection runs again. */
void tcp_deliver_closed(struct tcp_conn *c, enum tcp_close_reason why)
{
    const struct tcp_callbacks *cb = c->cb;
    c->cb = 0;
    if (cb && cb->closed)
        cb->closed(c, c->arg, why);
}

void tcp_conn_finish(struct tcp_conn *c, enum tcp_close_reason why, bool tell_app)
{
    if (c->dead)
        return;
    if (c->listener) {
        c->listener->half_open--;
        c->listener = 0;
        tell_app = false;         /* the app never saw it */
    }
    c->state = TCPS_CLOSED;
    c->dead = true;
    tcp_timers_cancel_all(c);
    unhash(c);
    tcp_of(c)->stats.conns_closed++;
    tcp_conn_hold(c);
    if (tell_app)
        tcp_deliver_closed(c, why);
    c->cb = 0;
    tcp_conn_release(c);
}

/* The app is done with the connection; it lingers to absorb old duplicates (RFC 9293 §3.6.1). */
void tcp_enter_time_wait(struct tcp_conn *c)
{
    c->state = TCPS_TIME_WAIT;
    tcp_of(c)->stats.time_wait++;
    for (unsigned t = 0; t < TT_COUNT; t++)
        tcp_timer_cancel(c, t);
    tcp_timer_arm(c, TT_RTX, TCP_TIME_WAIT_NS);
    tcp_ooo_free(c);
    tcp_deliver_closed(c, TCP_CLOSED_NORMAL);
}

int tcp_listen(struct net_stack *ns, uint16_t port, const struct tcp_callbacks *cb, void *arg)
{
    struct tcp_stack *ts = ns->tcp;
    if (!ts || port == 0 || !cb || tcp_find_listener(ts, port))
        return -1;
    for (unsigned i = 0; i < TCP_MAX_LISTENERS; i++) {
        struct tcp_listener *l = &ts->listeners[i];
        if (!l->used) {
            *l = (struct tcp_listener){ .port = port, .used = true, .cb = cb, .arg = arg, .cc = &tcp_newreno };
            return 0;
        }
    }
    return -1;
}

int tcp_listen_set_cc(struct net_stack *ns, uint16_t port, enum tcp_cc_algo algo)
{
    struct tcp_listener *l = ns->tcp ? tcp_find_listener(ns->tcp, port) : 0;
    const struct tcp_cc_ops *ops = tcp_cc_ops_of(algo);
    if (!l || !ops)
        return -1;
    l->cc = ops;
    return 0;
}

/* An ephemeral port whose return traffic the flow hash steers to this shard, not in use with this peer. */
static uint16_t pick_port(struct tcp_stack *ts, uint32_t lip, uint32_t dst, uint16_t dport)
{
    unsigned shards = ts->ns->env->shards ? ts->ns->env->shards() : 1;
    uint8_t src[4], dstb[4], ports[4];
    wr32(src, dst);
    wr32(dstb, lip);
    wr16(ports, dport);
    for (unsigned tries = 0; tries < 16384; tries++) {
        uint16_t p = ts->next_port;
        ts->next_port = (uint16_t)(p == 65535 ? 49152 : p + 1);
        wr16(ports + 2, p);
        if (shards > 1 && flow_shard(flow_hash_ipv4(src, dstb, ports), shards) != ts->ns->shard)
            continue;
        if (!tcp_lookup(ts, lip, p, dst, dport) && !tcp_find_listener(ts, p))
            return p;
    }
    return 0;
}

struct tcp_conn *tcp_connect(struct net_stack *ns, uint32_t dst, uint16_t port, const struct tcp_callbacks *cb,
                             void *arg)
{
    struct tcp_stack *ts = ns->tcp;
    if (!ts || !ns->cfg.configured || port == 0)
        return 0;
    uint32_t lip = ns->cfg.ip;
    uint16_t lport = pick_port(ts, lip, dst, port);
    struct tcp_conn *c = lport ? tcp_conn_new(ts, lip, lport, dst, port) : 0;
    if (!c)
        return 0;
    c->cb = cb;
    c->arg = arg;
    c->state = TCPS_SYN_SENT;
    c->rcv_wscale = TCP_RCV_WSCALE;
    c->sack_ok = true;            /* offered in our SYN; the SYN,ACK decides; likewise timestamps and ECN */
    c->ts_ok = true;
    c->ecn_ok = true;
    tcp_send_syn(c);
    return c;
}

void tcp_set_arg(struct tcp_conn *c, void *arg) { c->arg = arg; }

/* Only before cc->init runs (on reaching ESTABLISHED): a switch later would restart the window. */
int tcp_set_cc(struct tcp_conn *c, enum tcp_cc_algo algo)
{
    const struct tcp_cc_ops *ops = tcp_cc_ops_of(algo);
    if (!ops || c->state != TCPS_SYN_SENT)
        return -1;
    c->cc = ops;
    return 0;
}
void tcp_recv_pause(struct tcp_conn *c) { c->rcv_paused = true; }

/* Held bytes to the app until it pauses again or none is left; how many were handed over. */
static uint32_t hand_over_bytes(struct tcp_conn *c)
{
    uint32_t done = 0;
    while (done < c->held_len && !c->rcv_paused && !c->dead) {
        uint32_t n = tcp_min32(c->held_len - done, 16384);
        done += n;
        if (c->cb && c->cb->recv)
            c->cb->recv(c, c->arg, c->held + done - n, n);
    }
    if (!c->dead && done)
        memmove(c->held, c->held + done, c->held_len - done);
    return done;
}

/* A zero-copy app's held chains, likewise; held_len drops as each one goes. */
static void hand_over_bufs(struct tcp_conn *c)
{
    while (c->held_bufs && !c->rcv_paused && !c->dead) {
        struct netbuf *b = c->held_bufs;
        c->held_bufs = b->next;
        b->next = 0;
        uint32_t len = netbuf_frame_len(b);
        c->held_len -= len;
        c->cb->recv_bufs(c, c->arg, b, len);
    }
}

/* Hands held data to the app until it pauses again or none is left, then reopens the window. */
void tcp_recv_resume(struct tcp_conn *c)
{
    c->rcv_paused = false;
    tcp_conn_hold(c);
    uint32_t before = tcp_rcv_free(c);
    if (c->held_bufs)
        hand_over_bufs(c);
    else
        c->held_len -= hand_over_bytes(c);
    if (!c->dead && !c->held_len && c->fin_held && !c->rcv_paused) {
        c->fin_held = false;
        if (c->cb && c->cb->recv_bufs)
            c->cb->recv_bufs(c, c->arg, 0, 0);
        else if (c->cb && c->cb->recv)
            c->cb->recv(c, c->arg, 0, 0);
    }
    /* A window that opened by a useful amount is worth telling the sender about now. */
    if (!c->dead && tcp_rcv_free(c) - before >= tcp_min32(c->mss, TCP_RCVBUF / 2))
        tcp_send_ack(c);
    tcp_conn_release(c);
}

void tcp_set_nodelay(struct tcp_conn *c, bool on)
{
    c->nodelay = on;
    if (on && !c->busy)
        tcp_output(c);
}

void tcp_set_keepalive(struct tcp_conn *c, bool on, uint64_t idle_ns, uint64_t intvl_ns)
{
    c->keepalive = on;
    if (idle_ns)
        c->ka_idle_ns = idle_ns;
    if (intvl_ns)
        c->ka_intvl_ns = intvl_ns;
    c->ka_probes = 0;
    c->last_rx_ns = tcp_now(c);
    if (!on)
        tcp_timer_cancel(c, TT_KEEPALIVE);
    else if (c->state == TCPS_ESTABLISHED)
        tcp_timer_arm(c, TT_KEEPALIVE, c->ka_idle_ns);
}

void tcp_peer(const struct tcp_conn *c, uint32_t *ip, uint16_t *port)
{
    *ip = c->rip;
    *port = c->rport;
}

const struct tcp_stats *tcp_get_stats(const struct net_stack *ns) { return &ns->tcp->stats; }

static const char *state_name(enum tcp_state st)
{
    static const char *const names[] = {
        [TCPS_CLOSED] = "CLOSED", [TCPS_LISTEN] = "LISTEN", [TCPS_SYN_SENT] = "SYN-SENT",
        [TCPS_SYN_RECEIVED] = "SYN-RECEIVED", [TCPS_ESTABLISHED] = "ESTABLISHED", [TCPS_FIN_WAIT_1] = "FIN-WAIT-1",
        [TCPS_FIN_WAIT_2] = "FIN-WAIT-2", [TCPS_CLOSE_WAIT] = "CLOSE-WAIT", [TCPS_CLOSING] = "CLOSING",
        [TCPS_LAST_ACK] = "LAST-ACK", [TCPS_TIME_WAIT] = "TIME-WAIT",
    };
    return (unsigned)st < sizeof names / sizeof names[0] && names[st] ? names[st] : "?";
}

/* States reached through the peer's FIN: it took one sequence number beyond the data. */
static bool peer_fin_in(enum tcp_state st)
{
    return st == TCPS_CLOSE_WAIT || st == TCPS_LAST_ACK || st == TCPS_CLOSING || st == TCPS_TIME_WAIT;
}

void tcp_get_info(const struct tcp_conn *c, struct tcp_conn_info *out)
{
    bool synced = c->state != TCPS_SYN_SENT && c->state != TCPS_CLOSED;
    uint32_t our_fin = tcp_fin_sent(c) && seq_gt(c->snd_una, tcp_fin_seq(c)) ? 1 : 0;
    *out = (struct tcp_conn_info){
        .state = state_name(c->state),
        .local_ip = c->lip, .remote_ip = c->rip, .local_port = c->lport, .remote_port = c->rport,
        .mss = c->mss, .cwnd = c->cwnd, .ssthresh = c->ssthresh,
        .snd_wnd = c->snd_wnd, .rcv_wnd = seq_gt(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0,
        .unacked = c->snd_max - c->snd_una, .send_queued = c->sbuf_len, .rcv_held = c->held_len,
        .srtt_us = c->srtt_ns / 1000, .rttvar_us = c->rttvar_ns / 1000, .rto_us = c->rto_ns / 1000,
        .bytes_received = synced ? c->rcv_nxt - c->irs - 1 - (peer_fin_in(c->state) ? 1 : 0) : 0,
        .bytes_acked = seq_gt(c->snd_una, c->iss) ? c->snd_una - c->iss - 1 - our_fin : 0,
        .snd_wscale = c->snd_wscale, .rcv_wscale = c->rcv_wscale,
        .sack = c->sack_ok, .timestamps = c->ts_ok && synced, .ecn = c->ecn_ok && synced,
        .nodelay = c->nodelay, .cubic = c->cc == tcp_cc_ops_of(TCP_CC_CUBIC),
        .ctr = c->ctr,
    };
}

static bool can_send(const struct tcp_conn *c)
{
    return !c->fin_queued && (c->state == TCPS_ESTABLISHED || c->state == TCPS_CLOSE_WAIT ||
                              c->state == TCPS_SYN_SENT || c->state == TCPS_SYN_RECEIVED);
}

size_t tcp_send_space(const struct tcp_conn *c)
{
    return can_send(c) ? c->sbuf_cap - c->sbuf_len : 0;
}

/*
 * The ring is what limits a bulk sender once the peer's window outgrows it
 * (64 KiB of ring over a 10 ms round trip is 6 MB/s): double it, keeping
 * the bytes in sequence order from index 0. Connections that only trade
 * small messages never grow, so a thousand of them stay cheap.
 */
static void grow_ring(struct tcp_conn *c)
{
    uint32_t cap = c->sbuf_cap * 2;
    uint8_t *ring = malloc(cap);
    if (!ring)
        return;
    uint32_t first = tcp_min32(c->sbuf_len, c->sbuf_cap - c->sbuf_head);
    memcpy(ring, c->sbuf + c->sbuf_head, first);
    memcpy(ring + first, c->sbuf, c->sbuf_len - first);
    free(c->sbuf);
    c->sbuf = ring;
    c->sbuf_head = 0;
    c->sbuf_cap = cap;
}

size_t tcp_send(struct tcp_conn *c, const void *data, size_t len)
{
    size_t n = tcp_send_space(c);
    if (n < len && can_send(c) && c->sbuf_cap < TCP_SNDBUF_MAX && c->snd_wnd > c->sbuf_cap) {
        grow_ring(c);
        n = tcp_send_space(c);
    }
    if (n > len)
        n = len;
    if (n < len)
        c->want_writable = true;
    uint32_t tail = (c->sbuf_head + c->sbuf_len) & (c->sbuf_cap - 1);
    size_t first = c->sbuf_cap - tail < n ? c->sbuf_cap - tail : n;
    memcpy(c->sbuf + tail, data, first);
    memcpy(c->sbuf, (const uint8_t *)data + first, n - first);
    c->sbuf_len += (uint32_t)n;
    /* Inside one of our callbacks the caller's frame sends when it unwinds, once per batch. */
    if (n && !c->busy)
        tcp_output(c);
    return n;
}

void tcp_close(struct tcp_conn *c)
{
    switch (c->state) {
    case TCPS_SYN_SENT:
        tcp_conn_finish(c, TCP_CLOSED_NORMAL, true);
        return;
    case TCPS_SYN_RECEIVED:
        c->fin_queued = true;     /* FIN-WAIT-1 once our SYN is acknowledged (RFC 9293 §3.10.4) */
        return;
    case TCPS_ESTABLISHED:
        c->state = TCPS_FIN_WAIT_1;
        break;
    case TCPS_CLOSE_WAIT:
        c->state = TCPS_LAST_ACK;
        break;
    default:
        return;                   /* already closing */
    }
    c->fin_queued = true;
    if (!c->busy)
        tcp_output(c);
}

void tcp_abort(struct tcp_conn *c)
{
    if (c->dead)
        return;
    if (c->state != TCPS_SYN_SENT && c->state != TCPS_TIME_WAIT)
        tcp_send_rst_conn(c);
    tcp_conn_finish(c, TCP_CLOSED_ABORTED, true);
}
