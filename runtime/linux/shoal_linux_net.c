/*
 * TCP and UDP of the runtime API over Linux sockets, per shard thread.
 *
 * Listeners and UDP sockets are SO_REUSEPORT on 0.0.0.0, one per shard that
 * asks, so the kernel spreads flows over the shards. Every socket is
 * non-blocking and level-triggered in its shard's epoll.
 *
 * A connection's send buffer is the socket's own plus a pending buffer of
 * up to SEND_CAP bytes here: shoal_tcp_send() writes directly while nothing
 * is pending, keeps what the socket refused, and when it took less than
 * asked, writable() follows once the pending buffer has drained to half.
 *
 * A connection lives until closed() has returned and the loop comes round:
 * finished connections are parked on the shard's zombie list (their fd
 * already closed) and freed at the end of the loop, so any API call made on
 * a connection from inside its own callbacks is safe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/uio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "linux_rt.h"
#include "../../drivers/netdev.h"

#define SEND_CAP (256u << 10)       /* pending bytes per connection beyond the socket's buffer */
#define SEND_MIN (16u << 10)        /* first allocation of the pending buffer */
#define LX_RECV_IOV (int)(LX_RECV_BUF / 1900 + 2)  /* netbufs for one read of a recv_bufs app */
#define READS_PER_EVENT 16          /* reads of LX_RECV_BUF per readable event before the next socket's turn */
#define ACCEPTS_PER_EVENT 64
#define DATAGRAMS_PER_EVENT 64
#define LISTEN_RETRY_NS 50000000ull /* a listener out of descriptors and spares polls again after this */

struct tcp_conn {
    struct lx_source src;
    int fd;
    const struct tcp_callbacks *cb;
    void *arg;
    uint8_t *pend;                  /* pend[poff .. poff + plen): not yet taken by the socket */
    size_t poff, plen, pcap;
    uint32_t events;                /* epoll interest as registered */
    bool connecting;                /* active open in progress */
    bool paused;                    /* recv_pause */
    bool parked;                    /* removed from epoll: hung up while paused */
    bool close_req;                 /* shoal_tcp_close called */
    bool wr_shut;                   /* our FIN is queued (shutdown SHUT_WR) */
    bool peer_eof;                  /* recv(len 0) delivered */
    bool want_writable;
    bool dead;                      /* closed() called; a zombie */
    int err;                        /* an error seen where closed() could not run yet */
    struct task deferred;           /* finishes the connection from the loop (err or normal) */
    uint32_t peer_ip;
    uint16_t peer_port;
    struct tcp_conn *next_zombie;
};

struct lx_listener {
    struct lx_source src;
    int fd;
    uint16_t port;
    const struct tcp_callbacks *cb;
    void *arg;
    struct timer retry;             /* re-enables polling after accept ran out of descriptors */
    bool off;                       /* out of epoll until retry fires */
    struct lx_listener *next;
};

struct lx_udp {
    struct lx_source src;
    int fd;
    uint16_t port;
    shoal_udp_fn fn;
    void *arg;
    struct lx_udp *next;
};

/* fd + 1 of some shard's socket bound to each UDP port, for shards that send from a port they did not bind. */
static int udp_any_fd[65536];

static struct lx_shard *self(void)
{
    if (!lx_self) {
        fprintf(stderr, "shoal-linux: network call outside a shard thread\n");
        abort();
    }
    return lx_self;
}

/* ---- connections: ending ---- */

static void finish(struct tcp_conn *c, enum tcp_close_reason why)
{
    if (c->dead)
        return;
    c->dead = true;
    if (c->fd >= 0) {
        if (!c->parked)
            lx_epoll_del(c->fd);
        close(c->fd);
        c->fd = -1;
    }
    free(c->pend);
    c->pend = 0;
    c->plen = c->pcap = c->poff = 0;
    struct lx_shard *sh = self();
    c->next_zombie = sh->zombies;
    sh->zombies = c;
    if (c->cb && c->cb->closed)
        c->cb->closed(c, c->arg, why);
}

static void finish_error(struct tcp_conn *c, int err)
{
    enum tcp_close_reason why = TCP_CLOSED_RESET;
    if (err == ETIMEDOUT || err == EHOSTUNREACH || err == ENETUNREACH)
        why = TCP_CLOSED_TIMEOUT;
    else if (err == ECONNREFUSED && c->connecting)
        why = TCP_CLOSED_REFUSED;
    finish(c, why);
}

static void deferred_finish(struct task *t)
{
    struct tcp_conn *c = (struct tcp_conn *)((char *)t - offsetof(struct tcp_conn, deferred));
    if (c->err)
        finish_error(c, c->err);
    else
        finish(c, TCP_CLOSED_NORMAL);
}

void lx_net_reap(struct lx_shard *sh)
{
    struct tcp_conn **p = &sh->zombies;
    while (*p) {
        struct tcp_conn *c = *p;
        if (c->deferred.queued) {       /* its task still holds it: next time */
            p = &c->next_zombie;
            continue;
        }
        *p = c->next_zombie;
        free(c);
    }
}

static int sock_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return errno;
    return err;
}

/* ---- connections: epoll interest ---- */

static void conn_handle(struct lx_source *s, uint32_t events);

static void update_events(struct tcp_conn *c)
{
    if (c->dead || c->parked)
        return;
    uint32_t want = 0;
    if (!c->connecting && !c->paused && !c->peer_eof)
        want |= EPOLLIN;
    if (c->connecting || c->plen)
        want |= EPOLLOUT;
    if (want != c->events && lx_epoll_mod(c->fd, want, &c->src) == 0)
        c->events = want;
}

static void park(struct tcp_conn *c)
{
    if (!c->parked && !c->dead) {
        lx_epoll_del(c->fd);
        c->parked = true;
        c->events = 0;
    }
}

static struct tcp_conn *conn_new(int fd, const struct tcp_callbacks *cb, void *arg, uint32_t events)
{
    struct tcp_conn *c = calloc(1, sizeof *c);
    if (!c)
        return 0;
    c->src.handle = conn_handle;
    c->fd = fd;
    c->cb = cb;
    c->arg = arg;
    c->events = events;
    task_init(&c->deferred, deferred_finish);
    if (lx_epoll_add(fd, events, &c->src) < 0) {
        free(c);
        return 0;
    }
    return c;
}

/* ---- connections: sending ---- */

/* Hands pending bytes to the socket; 0, or an errno. */
static int flush_pending(struct tcp_conn *c)
{
    while (c->plen) {
        ssize_t n = send(c->fd, c->pend + c->poff, c->plen, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return errno;
        }
        c->poff += (size_t)n;
        c->plen -= (size_t)n;
    }
    c->poff = 0;
    if (c->pcap > SEND_MIN) {   /* a bulk sender's buffer goes back once drained */
        free(c->pend);
        c->pend = 0;
        c->pcap = 0;
    }
    return 0;
}

static bool keep_pending(struct tcp_conn *c, const uint8_t *data, size_t n)
{
    if (c->poff + c->plen + n > c->pcap) {
        if (c->poff) {
            memmove(c->pend, c->pend + c->poff, c->plen);
            c->poff = 0;
        }
        if (c->plen + n > c->pcap) {
            size_t cap = c->pcap ? c->pcap : SEND_MIN;
            while (cap < c->plen + n)
                cap *= 2;
            uint8_t *p = realloc(c->pend, cap);
            if (!p)
                return false;
            c->pend = p;
            c->pcap = cap;
        }
    }
    memcpy(c->pend + c->poff + c->plen, data, n);
    c->plen += n;
    return true;
}

/* Our FIN once everything is handed over; the connection ends here if the peer's came first. */
static void maybe_shutdown(struct tcp_conn *c)
{
    if (c->dead || !c->close_req || c->wr_shut || c->plen || c->connecting)
        return;
    c->wr_shut = true;
    if (shutdown(c->fd, SHUT_WR) < 0 && errno != ENOTCONN) {
        c->err = errno;
        task_schedule(&c->deferred);
        return;
    }
    if (c->peer_eof)
        task_schedule(&c->deferred);
}

size_t shoal_tcp_send(shoal_tcp_conn *c, const void *data, size_t len)
{
    if (c->dead || c->close_req || c->err || !len)
        return 0;
    size_t took = 0;
    if (!c->plen && !c->connecting) {
        for (;;) {
            ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n >= 0) {
                took = (size_t)n;
            } else if (errno == EINTR) {
                continue;
            } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                c->err = errno;     /* closed() from the loop, not from inside this call */
                task_schedule(&c->deferred);
                return 0;
            }
            break;
        }
    }
    size_t room = SEND_CAP - c->plen, rest = len - took;
    size_t keep = rest < room ? rest : room;
    if (keep && keep_pending(c, (const uint8_t *)data + took, keep))
        took += keep;
    if (took < len)
        c->want_writable = true;
    update_events(c);
    return took;
}

size_t shoal_tcp_send_space(const shoal_tcp_conn *c)
{
    if (c->dead || c->close_req || c->err)
        return 0;
    return SEND_CAP - c->plen;
}

static void on_writable(struct tcp_conn *c)
{
    int err = flush_pending(c);
    if (err) {
        finish_error(c, err);
        return;
    }
    maybe_shutdown(c);
    if (c->want_writable && !c->close_req && c->plen <= SEND_CAP / 2) {
        c->want_writable = false;
        if (c->cb && c->cb->writable)
            c->cb->writable(c, c->arg);
    }
}

/* ---- connections: receiving ---- */

/* A chain of netbufs for one read of up to LX_RECV_BUF bytes, and the iovec over their room. */
static struct netbuf *read_chain(struct iovec *iov, int *niov)
{
    struct netbuf *head = 0, **link = &head;
    size_t room = 0;
    *niov = 0;
    while (room < LX_RECV_BUF && *niov < LX_RECV_IOV) {
        struct netbuf *b = netbuf_alloc_frag();
        if (!b)
            break;
        iov[*niov] = (struct iovec){ b->data, netbuf_room(b) };
        room += iov[(*niov)++].iov_len;
        *link = b;
        link = &b->frag;
    }
    return head;
}

/* Trims the chain to the n bytes read into it; frees the buffers left empty. */
static void trim_chain(struct netbuf *head, size_t n)
{
    for (struct netbuf *b = head; b; b = b->frag) {
        b->len = (uint32_t)(n < netbuf_room(b) ? n : netbuf_room(b));
        n -= b->len;
        if (!n) {
            netbuf_free(b->frag);
            b->frag = 0;
            return;
        }
    }
}

/* One read, into the shard's buffer for recv apps or straight into netbufs for recv_bufs apps. */
static ssize_t read_and_deliver(struct tcp_conn *c)
{
    if (!c->cb || !c->cb->recv_bufs) {
        uint8_t *buf = self()->rbuf;
        ssize_t n = read(c->fd, buf, LX_RECV_BUF);
        if (n > 0 && c->cb && c->cb->recv)
            c->cb->recv(c, c->arg, buf, (size_t)n);
        return n;
    }
    struct iovec iov[LX_RECV_IOV];
    int niov;
    struct netbuf *bufs = read_chain(iov, &niov);
    if (!bufs) {
        errno = ENOMEM;
        return -1;
    }
    ssize_t n = readv(c->fd, iov, niov);
    if (n <= 0) {
        netbuf_free(bufs);
        return n;
    }
    trim_chain(bufs, (size_t)n);
    c->cb->recv_bufs(c, c->arg, bufs, (size_t)n);
    return n;
}

static void deliver_eof(struct tcp_conn *c)
{
    c->peer_eof = true;
    if (c->cb && c->cb->recv_bufs)
        c->cb->recv_bufs(c, c->arg, 0, 0);
    else if (c->cb && c->cb->recv)
        c->cb->recv(c, c->arg, 0, 0);
    if (!c->dead && c->wr_shut)
        finish(c, TCP_CLOSED_NORMAL);
}

static void on_readable(struct tcp_conn *c)
{
    for (int i = 0; i < READS_PER_EVENT && !c->dead && !c->paused && !c->peer_eof; i++) {
        ssize_t n = read_and_deliver(c);
        if (n > 0) {
            if ((size_t)n < LX_RECV_BUF)
                break;
        } else if (n == 0) {
            deliver_eof(c);
            break;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        } else {
            finish_error(c, errno);
            break;
        }
    }
}

static void on_connect_done(struct tcp_conn *c)
{
    int err = sock_error(c->fd);
    if (err) {
        finish_error(c, err);
        return;
    }
    c->connecting = false;
    if (c->cb && c->cb->connected)
        c->cb->connected(c, c->arg);
    if (!c->dead && c->plen)
        on_writable(c);
    if (!c->dead)
        maybe_shutdown(c);
}

static void conn_handle(struct lx_source *s, uint32_t events)
{
    struct tcp_conn *c = (struct tcp_conn *)s;
    if (c->dead)
        return;
    if (c->connecting) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            on_connect_done(c);
        update_events(c);
        return;
    }
    if (events & EPOLLERR) {
        int err = sock_error(c->fd);
        if (err) {
            finish_error(c, err);
            return;
        }
    }
    if (c->err) {
        finish_error(c, c->err);
        return;
    }
    if (events & (EPOLLOUT | EPOLLHUP))
        on_writable(c);
    if (!c->dead && (events & (EPOLLIN | EPOLLHUP)) && !c->paused && !c->peer_eof)
        on_readable(c);
    if (c->dead)
        return;
    /* Hung up (both directions shut) with nothing we may read now: level-triggered HUP would spin. */
    if ((events & EPOLLHUP) && (c->paused || c->peer_eof))
        park(c);
    update_events(c);
}

/* ---- connections: the rest of the API ---- */

void shoal_tcp_set_arg(shoal_tcp_conn *c, void *arg) { c->arg = arg; }

void shoal_tcp_close(shoal_tcp_conn *c)
{
    if (c->dead || c->close_req)
        return;
    c->close_req = true;
    c->want_writable = false;
    if (c->connecting) {            /* as the kernel's SYN-SENT: gone at once */
        finish(c, TCP_CLOSED_NORMAL);
        return;
    }
    maybe_shutdown(c);
}

void shoal_tcp_abort(shoal_tcp_conn *c)
{
    if (c->dead)
        return;
    if (c->fd >= 0 && !c->connecting) {
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);  /* close() sends RST */
    }
    finish(c, TCP_CLOSED_ABORTED);
}

void shoal_tcp_set_nodelay(shoal_tcp_conn *c, bool on)
{
    int v = on;
    if (!c->dead)
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v);
}

void shoal_tcp_recv_pause(shoal_tcp_conn *c)
{
    if (c->dead || c->paused)
        return;
    c->paused = true;
    update_events(c);
}

void shoal_tcp_recv_resume(shoal_tcp_conn *c)
{
    if (c->dead || !c->paused)
        return;
    c->paused = false;
    if (c->parked) {
        c->parked = false;
        c->events = EPOLLIN;
        if (lx_epoll_add(c->fd, c->events, &c->src) < 0) {
            c->err = errno;
            task_schedule(&c->deferred);
            return;
        }
    }
    update_events(c);
}

void shoal_tcp_peer(const shoal_tcp_conn *c, uint32_t *ip, uint16_t *port)
{
    if (ip)
        *ip = c->peer_ip;
    if (port)
        *port = c->peer_port;
}

static const char *linux_state_name(uint8_t st)
{
    static const char *const names[] = {
        [TCP_ESTABLISHED] = "ESTABLISHED", [TCP_SYN_SENT] = "SYN-SENT", [TCP_SYN_RECV] = "SYN-RECEIVED",
        [TCP_FIN_WAIT1] = "FIN-WAIT-1", [TCP_FIN_WAIT2] = "FIN-WAIT-2", [TCP_TIME_WAIT] = "TIME-WAIT",
        [TCP_CLOSE] = "CLOSED", [TCP_CLOSE_WAIT] = "CLOSE-WAIT", [TCP_LAST_ACK] = "LAST-ACK",
        [TCP_LISTEN] = "LISTEN", [TCP_CLOSING] = "CLOSING",
    };
    return st < sizeof names / sizeof names[0] && names[st] ? names[st] : "?";
}

/* Linux's own TCP_INFO, in the runtime's terms (glibc's struct tcp_info stops before the byte and segment counts). */
void shoal_tcp_info(const shoal_tcp_conn *c, struct tcp_conn_info *out)
{
    *out = (struct tcp_conn_info){ .state = "CLOSED", .remote_ip = c->peer_ip, .remote_port = c->peer_port };
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    if (c->fd < 0 || getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
        return;
    out->state = linux_state_name(ti.tcpi_state);
    out->mss = ti.tcpi_snd_mss;
    out->cwnd = ti.tcpi_snd_cwnd * ti.tcpi_snd_mss;
    uint64_t ssthresh = (uint64_t)ti.tcpi_snd_ssthresh * ti.tcpi_snd_mss;   /* "infinite" is 0x7fffffff segments */
    out->ssthresh = ssthresh > UINT32_MAX ? UINT32_MAX : (uint32_t)ssthresh;
    out->rcv_wnd = ti.tcpi_rcv_space;
    out->unacked = ti.tcpi_unacked * ti.tcpi_snd_mss;
    out->srtt_us = ti.tcpi_rtt;
    out->rttvar_us = ti.tcpi_rttvar;
    out->rto_us = ti.tcpi_rto;
    out->snd_wscale = ti.tcpi_snd_wscale;
    out->rcv_wscale = ti.tcpi_rcv_wscale;
    out->sack = ti.tcpi_options & TCPI_OPT_SACK;
    out->timestamps = ti.tcpi_options & TCPI_OPT_TIMESTAMPS;
    out->ecn = ti.tcpi_options & TCPI_OPT_ECN;
    out->ctr.retransmits = ti.tcpi_total_retrans;
}

bool shoal_tcp_stats(unsigned shard, struct tcp_stats *out)
{
    (void)shard, (void)out;
    return false;     /* Linux keeps its counters system-wide (/proc/net/snmp), not per shard */
}

static const char *cc_name(enum tcp_cc_algo algo)
{
    return algo == TCP_CC_CUBIC ? "cubic" : algo == TCP_CC_NEWRENO ? "reno" : 0;
}

static int set_cc(int fd, enum tcp_cc_algo algo)
{
    const char *name = cc_name(algo);
    if (!name || setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, name, (socklen_t)strlen(name)) < 0)
        return -1;
    return 0;
}

int shoal_tcp_set_cc(shoal_tcp_conn *c, enum tcp_cc_algo algo) { return c->dead ? -1 : set_cc(c->fd, algo); }

shoal_tcp_conn *shoal_tcp_connect(uint32_t ip, uint16_t port, const struct tcp_callbacks *cb, void *arg)
{
    self();
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(ip) };
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
        close(fd);
        return 0;
    }
    struct tcp_conn *c = conn_new(fd, cb, arg, EPOLLOUT);
    if (!c) {
        close(fd);
        return 0;
    }
    c->connecting = true;
    c->peer_ip = ip;
    c->peer_port = port;
    return c;
}

/* ---- listeners ---- */

/* One descriptor per shard held back for dropping connections when accept runs out of them. */
static __thread int spare_fd = -1;

static void listener_handle(struct lx_source *s, uint32_t events)
{
    struct lx_listener *l = (struct lx_listener *)s;
    (void)events;
    for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
        struct sockaddr_in sa;
        socklen_t len = sizeof sa;
        int fd = accept4(l->fd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                int err = errno;
                static __thread uint64_t last;
                uint64_t now = now_ns();
                if (now - last > 1000000000ull) {
                    last = now;
                    shoal_log("accept on port %u: %s; refusing connections", l->port, strerror(err));
                }
                /* Out of descriptors: take the connection with the spare one and drop it, or the
                   level-triggered listener would wake this shard in a loop. */
                if (spare_fd >= 0) {
                    close(spare_fd);
                    int drop = accept(l->fd, 0, 0);
                    if (drop >= 0)
                        close(drop);
                    spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                    continue;
                }
                /* No spare (another shard's thread took the slot it freed, so it could not be
                   reopened): stop polling this listener for a while instead of spinning on it. */
                if (!l->off) {
                    lx_epoll_del(l->fd);
                    l->off = true;
                    shoal_timer_arm(&l->retry, now + LISTEN_RETRY_NS);
                }
            }
            return;
        }
        struct tcp_conn *c = conn_new(fd, l->cb, l->arg, EPOLLIN);
        if (!c) {
            close(fd);
            continue;
        }
        c->peer_ip = ntohl(sa.sin_addr.s_addr);
        c->peer_port = ntohs(sa.sin_port);
        if (l->cb && l->cb->accepted)
            l->cb->accepted(c, l->arg);
    }
}

static void listener_retry(struct timer *t)
{
    struct lx_listener *l = (struct lx_listener *)((char *)t - offsetof(struct lx_listener, retry));
    if (spare_fd < 0)
        spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (lx_epoll_add(l->fd, EPOLLIN, &l->src) == 0)
        l->off = false;
    else
        shoal_timer_arm(&l->retry, now_ns() + LISTEN_RETRY_NS);
}

static int listen_on(uint16_t port, const struct tcp_callbacks *cb, void *arg, const enum tcp_cc_algo *algo)
{
    struct lx_shard *sh = self();
    if (port == 0 || !cb)           /* as net/tcp.c: no ephemeral listener, no callback-less one */
        return -1;
    for (struct lx_listener *l = sh->listeners; l; l = l->next)
        if (l->port == port)
            return -1;
    if (algo && !cc_name(*algo))
        return -1;
    if (spare_fd < 0)
        spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY) };
    struct lx_listener *l = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        (algo && set_cc(fd, *algo) < 0) ||   /* accepted sockets inherit it */
        bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, SOMAXCONN) < 0 ||
        !(l = calloc(1, sizeof *l)))
        goto fail;
    *l = (struct lx_listener){ .src.handle = listener_handle, .fd = fd, .port = port, .cb = cb, .arg = arg };
    shoal_timer_init(&l->retry, listener_retry);
    if (lx_epoll_add(fd, EPOLLIN, &l->src) < 0)
        goto fail;
    l->next = sh->listeners;
    sh->listeners = l;
    return 0;
fail:
    free(l);
    close(fd);
    return -1;
}

int shoal_tcp_listen(uint16_t port, const struct tcp_callbacks *cb, void *arg) { return listen_on(port, cb, arg, 0); }

int shoal_tcp_listen_cc(uint16_t port, const struct tcp_callbacks *cb, void *arg, enum tcp_cc_algo algo)
{
    return listen_on(port, cb, arg, &algo);
}

/* ---- UDP ---- */

static void udp_handle(struct lx_source *s, uint32_t events)
{
    struct lx_udp *u = (struct lx_udp *)s;
    uint8_t *buf = self()->rbuf;
    (void)events;
    for (int i = 0; i < DATAGRAMS_PER_EVENT; i++) {
        struct sockaddr_in sa;
        socklen_t len = sizeof sa;
        ssize_t n = recvfrom(u->fd, buf, LX_RECV_BUF, MSG_DONTWAIT, (struct sockaddr *)&sa, &len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;             /* EAGAIN; or an ICMP error reported on the socket, which UDP ignores */
        }
        u->fn(u->arg, ntohl(sa.sin_addr.s_addr), ntohs(sa.sin_port), u->port, buf, (size_t)n);
    }
}

int shoal_udp_bind(uint16_t port, shoal_udp_fn fn, void *arg)
{
    struct lx_shard *sh = self();
    if (port == 0 || !fn)           /* as net/udp.c; udp_handle calls fn unchecked */
        return -1;
    for (struct lx_udp *u = sh->udps; u; u = u->next)
        if (u->port == port)
            return -1;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY) };
    struct lx_udp *u = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || !(u = calloc(1, sizeof *u)))
        goto fail;
    *u = (struct lx_udp){ .src.handle = udp_handle, .fd = fd, .port = port, .fn = fn, .arg = arg };
    if (lx_epoll_add(fd, EPOLLIN, &u->src) < 0)
        goto fail;
    u->next = sh->udps;
    sh->udps = u;
    int none = 0;
    __atomic_compare_exchange_n(&udp_any_fd[port], &none, fd + 1, false, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
    return 0;
fail:
    free(u);
    close(fd);
    return -1;
}

bool shoal_udp_send(uint16_t src_port, uint32_t dst_ip, uint16_t dst_port, const void *data, size_t len)
{
    struct lx_shard *sh = self();
    int fd = -1;
    for (struct lx_udp *u = sh->udps; u; u = u->next)
        if (u->port == src_port) {
            fd = u->fd;
            break;
        }
    if (fd < 0)     /* sendto on another shard's socket is safe: sockets never close */
        fd = __atomic_load_n(&udp_any_fd[src_port], __ATOMIC_ACQUIRE) - 1;
    if (fd < 0)
        return false;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(dst_port), .sin_addr.s_addr = htonl(dst_ip) };
    ssize_t n;
    do
        n = sendto(fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa, sizeof sa);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)len;
}

/* ---- configuration ---- */

bool shoal_net_info(struct shoal_net_info *out)
{
    /* The host's stack owns addressing: sockets bind 0.0.0.0, which is what we report. */
    *out = (struct shoal_net_info){ .ip = 0, .netmask = 0, .gateway = 0, .mtu = 1500, .configured = true };
    return true;
}

bool shoal_net_stats(unsigned shard, struct shoal_net_stats *out)
{
    (void)shard, (void)out;
    return false;
}
