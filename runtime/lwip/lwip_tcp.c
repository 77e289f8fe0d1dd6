/*
 * The TCP part of the runtime API over lwIP's raw API, with the callback
 * contract of net/tcp.h: accepted/connected/recv/writable/closed, recv
 * data valid during the call, len 0 for the peer's FIN, closed() last.
 *
 * Every connection lives on shard 0 (lwip_rt.h): shoal_tcp_listen on
 * another shard succeeds and does nothing, and connect works on shard 0
 * only. Received pbufs stay with the connection until the app has seen
 * them, and tcp_recved() reopens the window as they are handed over, so a
 * paused connection closes its window like ours does. Sends copy into
 * lwIP (TCP_WRITE_FLAG_COPY); segments leave from a task after the
 * reactor's polling, so replies to one burst of requests share segments.
 */
/* Ours first: lwIP's headers rename the functions whose names net/tcp.h also declares (lwip_names.h). */
#include "../shoal.h"
#include "lwip_rt.h"

#include "lwip/tcp.h"
#include "lwip/priv/tcp_priv.h"     /* TCP_SLOW_INTERVAL: the unit of rto, sa and sv */

struct tcp_conn {
    struct tcp_pcb *pcb;            /* NULL once lwIP freed it or we let go */
    const struct tcp_callbacks *cb;
    void *arg;
    struct pbuf *held, *held_tail;  /* received, not yet handed to the app (see hold) */
    struct tcp_conn *next;          /* on the flush or the reap list */
    uint32_t peer_ip;
    uint16_t peer_port;
    bool connected;                 /* the handshake completed */
    bool paused, delivering, fin_in, fin_delivered;
    bool closing;                   /* the app closed: FIN queued after the data */
    bool aborting;                  /* the app aborted */
    bool pcb_gone;                  /* lwIP freed the pcb inside an lwIP callback of ours */
    bool finished;                  /* closed() ran; freed by the next flush */
    bool dirty, want_writable;
};

struct listener {
    const struct tcp_callbacks *cb;
    void *arg;
};

static struct tcp_conn *dirty_list, *reap_list;
static struct task flush_task;
static bool flush_ready;

static void flush_run(struct task *t)
{
    (void)t;
    lwip_tcp_flush();
}

static void schedule_flush(void)
{
    if (!flush_ready) {
        task_init(&flush_task, flush_run);
        flush_ready = true;
    }
    task_schedule(&flush_task);
}

void lwip_tcp_flush(void)
{
    while (dirty_list) {
        struct tcp_conn *c = dirty_list;
        dirty_list = c->next;
        c->dirty = false;
        if (c->pcb)
            tcp_output(c->pcb);
    }
    while (reap_list) {
        struct tcp_conn *c = reap_list;
        reap_list = c->next;
        if (c->held)
            pbuf_free(c->held);
        free(c);
    }
}

static void mark_dirty(struct tcp_conn *c)
{
    if (c->dirty || c->finished)
        return;
    c->dirty = true;
    c->next = dirty_list;
    dirty_list = c;
    schedule_flush();
}

/* Stop lwIP from calling us about this pcb again. */
static void detach(struct tcp_conn *c)
{
    if (!c->pcb)
        return;
    tcp_arg(c->pcb, 0);
    tcp_recv(c->pcb, 0);
    tcp_sent(c->pcb, 0);
    tcp_err(c->pcb, 0);
    c->pcb = 0;
}

static void unlink_dirty(struct tcp_conn *c)
{
    for (struct tcp_conn **p = &dirty_list; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            c->dirty = false;
            return;
        }
}

/* closed() runs once; the memory (and any held data) goes at the next flush, since callers up the
   stack may still look at c. */
static void finish(struct tcp_conn *c, enum tcp_close_reason why)
{
    if (c->finished)
        return;
    c->finished = true;
    unlink_dirty(c);
    c->next = reap_list;
    reap_list = c;
    schedule_flush();
    if (c->cb->closed)
        c->cb->closed(c, c->arg, why);
}

/* --- receive --- */

/* The rest of the chain after its first pbuf, which is freed. */
static struct pbuf *pop_head(struct pbuf *q)
{
    struct pbuf *rest = q->next;
    if (rest)
        pbuf_ref(rest);
    pbuf_free(q);
    return rest;
}

static void deliver_fin(struct tcp_conn *c)
{
    c->fin_delivered = true;
    if (c->cb->recv_bufs)
        c->cb->recv_bufs(c, c->arg, 0, 0);
    else if (c->cb->recv)
        c->cb->recv(c, c->arg, 0, 0);
    if (c->finished || !c->closing)
        return;
    /* Both sides are done: lwIP keeps the pcb (TIME_WAIT) without us. */
    struct tcp_pcb *pcb = c->pcb;
    detach(c);
    if (pcb)
        tcp_close(pcb);
    finish(c, TCP_CLOSED_NORMAL);
}

/* A pbuf's bytes copied into a chain of netbufs for a recv_bufs app (lwIP's pbufs stay lwIP's). */
static struct netbuf *copy_to_bufs(const uint8_t *data, uint32_t len)
{
    struct netbuf *head = 0, *last = 0;
    while (len) {
        struct netbuf *b = shoal_frame_alloc();
        if (!b) {
            shoal_frame_free(head);
            return 0;
        }
        uint32_t n = len < shoal_frame_room(b) ? len : shoal_frame_room(b);
        memcpy(shoal_frame_data(b), data, n);
        shoal_frame_set_len(b, n);
        data += n;
        len -= n;
        if (last)
            shoal_frame_join(last, b);
        else
            head = b;
        last = b;
    }
    return head;
}

/* One held pbuf's bytes to the app; false when a recv_bufs app's buffers cannot be had (retried later). */
static bool hand_over(struct tcp_conn *c, struct pbuf *q)
{
    if (!c->cb->recv_bufs) {
        if (c->cb->recv)
            c->cb->recv(c, c->arg, q->payload, q->len);
        return true;
    }
    struct netbuf *bufs = copy_to_bufs(q->payload, q->len);
    if (!bufs)
        return false;
    c->cb->recv_bufs(c, c->arg, bufs, q->len);
    return true;
}

/* Hands held data to the app until it pauses, or the connection ends. */
static void deliver(struct tcp_conn *c)
{
    if (c->delivering)
        return;     /* resumed from inside recv: the outer loop carries on */
    c->delivering = true;
    while (!c->finished && !c->paused && c->held) {
        struct pbuf *q = c->held;
        if (q->len) {
            uint16_t len = q->len;
            if (!hand_over(c, q))
                break;            /* out of memory: the pbuf waits for the next arrival */
            if (c->pcb)
                tcp_recved(c->pcb, len);
            if (c->finished)
                break;
        }
        c->held = pop_head(q);
    }
    if (!c->finished && !c->paused && !c->held && c->fin_in && !c->fin_delivered)
        deliver_fin(c);
    c->delivering = false;
}

/* Appends p to the held data. Linked by hand, not pbuf_cat: a paused connection may hold more than
   the 64 KiB a pbuf's u16 tot_len can count, and nothing here reads tot_len. */
static void hold(struct tcp_conn *c, struct pbuf *p)
{
    if (c->held)
        c->held_tail->next = p;     /* our reference to p becomes the chain's */
    else
        c->held = p;
    while (p->next)
        p = p->next;
    c->held_tail = p;
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
    struct tcp_conn *c = arg;
    (void)err;
    if (!c || c->finished) {
        if (p) {
            tcp_recved(pcb, p->tot_len);
            pbuf_free(p);
        }
        return ERR_OK;
    }
    if (!p) {
        c->fin_in = true;
        /* Both FINs are out: lwIP takes the pcb on to TIME_WAIT, which it frees later without telling
           us (no err callback), so let go of it now; held data (a paused app) still reaches the app,
           and closed() follows its recv(0) in deliver_fin. */
        if (c->closing)
            detach(c);
    } else {
        hold(c, p);
    }
    deliver(c);
    return c->pcb_gone ? ERR_ABRT : ERR_OK;
}

/* --- send --- */

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
    struct tcp_conn *c = arg;
    (void)len;
    if (!c || c->finished || c->closing || !c->want_writable)
        return ERR_OK;
    /* Like ours: wake the writer once a good part of the buffer is free again, not per ACK. */
    if (tcp_sndbuf(pcb) < TCP_SND_BUF / 2 && pcb->unacked)
        return ERR_OK;
    c->want_writable = false;
    if (c->cb->writable)
        c->cb->writable(c, c->arg);
    return c->pcb_gone ? ERR_ABRT : ERR_OK;
}

static size_t send_room(const struct tcp_pcb *pcb)
{
    /* tcp_write refuses a write that would overflow the segment queue. */
    if (tcp_sndqueuelen(pcb) >= TCP_SND_QUEUELEN - 1)
        return 0;
    return tcp_sndbuf(pcb);
}

size_t shoal_tcp_send(shoal_tcp_conn *c, const void *data, size_t len)
{
    if (!c->pcb || c->closing || c->finished)
        return 0;
    size_t done = 0;
    while (done < len) {
        size_t room = send_room(c->pcb), n = len - done;
        if (n > room)
            n = room;
        if (n > 0xFFFF)
            n = 0xFFFF;
        if (!n)
            break;
        u8_t more = done + n < len ? TCP_WRITE_FLAG_MORE : 0;
        if (tcp_write(c->pcb, (const uint8_t *)data + done, (u16_t)n, TCP_WRITE_FLAG_COPY | more) != ERR_OK)
            break;
        done += n;
    }
    if (done < len)
        c->want_writable = true;
    if (done)
        mark_dirty(c);
    return done;
}

size_t shoal_tcp_send_space(const shoal_tcp_conn *c)
{
    return c->pcb && !c->closing && !c->finished ? send_room(c->pcb) : 0;
}

/* --- end of a connection --- */

static void on_err(void *arg, err_t err)
{
    struct tcp_conn *c = arg;
    if (!c)
        return;
    c->pcb = 0;     /* lwIP has freed it */
    c->pcb_gone = true;
    enum tcp_close_reason why = TCP_CLOSED_TIMEOUT;
    if (c->aborting)
        why = TCP_CLOSED_ABORTED;
    else if (err == ERR_RST)
        why = c->connected ? TCP_CLOSED_RESET : TCP_CLOSED_REFUSED;
    else if (err == ERR_CLSD)
        why = TCP_CLOSED_NORMAL;     /* our FIN was acknowledged after the peer's */
    finish(c, why);
}

void shoal_tcp_close(shoal_tcp_conn *c)
{
    if (c->closing || c->finished)
        return;
    c->closing = true;
    c->want_writable = false;       /* no writable() after close, as in net/tcp.c */
    if (!c->pcb)
        return;
    if (!c->connected) {
        /* SYN-SENT: gone at once with NORMAL, as net/tcp.c does (tcp_shutdown refuses this state, and
           aborting would report ABORTED). tcp_close frees a SYN-SENT pcb; no lwIP callback of this pcb
           is on the stack here (on_connected sets connected first). */
        struct tcp_pcb *pcb = c->pcb;
        detach(c);
        tcp_close(pcb);
        finish(c, TCP_CLOSED_NORMAL);
        return;
    }
    /* FIN after the queued data. Before the peer's FIN, data may still come (closed() follows it,
       deliver_fin); after it, closed() follows the ACK of ours (on_err, ERR_CLSD). */
    if (tcp_shutdown(c->pcb, 0, 1) != ERR_OK) {
        shoal_tcp_abort(c);
        return;
    }
    mark_dirty(c);
}

void shoal_tcp_abort(shoal_tcp_conn *c)
{
    if (c->finished)
        return;
    c->aborting = true;
    if (c->pcb)
        tcp_abort(c->pcb);  /* lwIP calls on_err(ERR_ABRT) before it returns */
    else
        finish(c, TCP_CLOSED_ABORTED);
}

/* --- open --- */

static struct tcp_conn *conn_new(struct tcp_pcb *pcb, const struct tcp_callbacks *cb, void *arg)
{
    struct tcp_conn *c = calloc(1, sizeof *c);
    if (!c)
        return 0;
    c->pcb = pcb;
    c->cb = cb;
    c->arg = arg;
    tcp_arg(pcb, c);
    tcp_recv(pcb, on_recv);
    tcp_sent(pcb, on_sent);
    tcp_err(pcb, on_err);
    return c;
}

static void note_peer(struct tcp_conn *c, const struct tcp_pcb *pcb)
{
    c->peer_ip = lwip_ntohl(ip4_addr_get_u32(&pcb->remote_ip));
    c->peer_port = pcb->remote_port;
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
    struct listener *l = arg;
    if (err != ERR_OK || !pcb)
        return ERR_VAL;
    struct tcp_conn *c = conn_new(pcb, l->cb, l->arg);
    if (!c) {
        tcp_abort(pcb);
        return ERR_ABRT;
    }
    c->connected = true;
    note_peer(c, pcb);
    if (l->cb->accepted)
        l->cb->accepted(c, l->arg);
    return c->pcb_gone ? ERR_ABRT : ERR_OK;
}

int shoal_tcp_listen(uint16_t port, const struct tcp_callbacks *cb, void *arg)
{
    if (!lwip_running() || port == 0 || !cb)        /* as net/tcp.c; on_accept uses cb unchecked */
        return -1;
    if (shard_id() != LWIP_SHARD)
        return 0;   /* every connection arrives on lwIP's shard */
    struct listener *l = malloc(sizeof *l);
    struct tcp_pcb *pcb = l ? tcp_new() : 0, *lpcb = 0;
    if (pcb && tcp_bind(pcb, IP4_ADDR_ANY, port) == ERR_OK)
        lpcb = tcp_listen_with_backlog(pcb, TCP_DEFAULT_LISTEN_BACKLOG);
    if (!lpcb) {
        if (pcb)
            tcp_close(pcb);
        free(l);
        return -1;
    }
    *l = (struct listener){ cb, arg };
    tcp_arg(lpcb, l);
    tcp_accept(lpcb, on_accept);
    return 0;
}

/* lwIP has one congestion control (Reno): the choice is checked, then ignored. */
int shoal_tcp_listen_cc(uint16_t port, const struct tcp_callbacks *cb, void *arg, enum tcp_cc_algo algo)
{
    if (algo != TCP_CC_NEWRENO && algo != TCP_CC_CUBIC)
        return -1;
    return shoal_tcp_listen(port, cb, arg);
}

int shoal_tcp_set_cc(shoal_tcp_conn *c, enum tcp_cc_algo algo)
{
    (void)c;
    return algo == TCP_CC_NEWRENO || algo == TCP_CC_CUBIC ? 0 : -1;
}

static err_t on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
    struct tcp_conn *c = arg;
    (void)err;
    if (!c)
        return ERR_OK;
    c->connected = true;
    note_peer(c, pcb);
    if (c->cb->connected)
        c->cb->connected(c, c->arg);
    return c->pcb_gone ? ERR_ABRT : ERR_OK;
}

/* Active opens work on lwIP's shard only (connections cannot move between shards). */
shoal_tcp_conn *shoal_tcp_connect(uint32_t ip, uint16_t port, const struct tcp_callbacks *cb, void *arg)
{
    if (!lwip_running() || shard_id() != LWIP_SHARD)
        return 0;
    struct tcp_pcb *pcb = tcp_new();
    struct tcp_conn *c = pcb ? conn_new(pcb, cb, arg) : 0;
    if (!c) {
        if (pcb)
            tcp_close(pcb);
        return 0;
    }
    ip_addr_t to;
    ip4_addr_set_u32(&to, lwip_htonl(ip));
    c->peer_ip = ip;
    c->peer_port = port;
    if (tcp_connect(pcb, &to, port, on_connected) != ERR_OK) {
        detach(c);
        tcp_close(pcb);
        free(c);
        return 0;
    }
    return c;
}

/* --- the rest --- */

void shoal_tcp_set_arg(shoal_tcp_conn *c, void *arg) { c->arg = arg; }

void shoal_tcp_set_nodelay(shoal_tcp_conn *c, bool on)
{
    if (!c->pcb)
        return;
    if (on)
        tcp_nagle_disable(c->pcb);
    else
        tcp_nagle_enable(c->pcb);
}

void shoal_tcp_recv_pause(shoal_tcp_conn *c) { c->paused = true; }

void shoal_tcp_recv_resume(shoal_tcp_conn *c)
{
    if (!c->paused || c->finished)
        return;
    c->paused = false;
    deliver(c);
}

void shoal_tcp_peer(const shoal_tcp_conn *c, uint32_t *ip, uint16_t *port)
{
    *ip = c->peer_ip;
    *port = c->peer_port;
}

/* What lwIP's pcb tells; lwIP keeps no per-connection counters. */
void shoal_tcp_info(const shoal_tcp_conn *c, struct tcp_conn_info *out)
{
    *out = (struct tcp_conn_info){ .remote_ip = c->peer_ip, .remote_port = c->peer_port };
    const struct tcp_pcb *pcb = c->pcb;
    if (!pcb) {
        out->state = "CLOSED";
        return;
    }
    out->state = tcp_debug_state_str(pcb->state);
    out->local_port = pcb->local_port;
    out->mss = pcb->mss;
    out->cwnd = pcb->cwnd;
    out->ssthresh = pcb->ssthresh;
    out->snd_wnd = pcb->snd_wnd;
    out->rcv_wnd = pcb->rcv_ann_wnd;
    out->unacked = pcb->snd_nxt - pcb->lastack;
    /* sa and sv count slow-timer ticks, scaled by 8 and 4 (Jacobson's fixed point). */
    out->srtt_us = (uint64_t)(pcb->sa >> 3) * TCP_SLOW_INTERVAL * 1000;
    out->rttvar_us = (uint64_t)(pcb->sv >> 2) * TCP_SLOW_INTERVAL * 1000;
    out->rto_us = (uint64_t)pcb->rto * TCP_SLOW_INTERVAL * 1000;
}
