/*
 * mc_load: memcached text-protocol load generator with exact latency
 * percentiles, for tests/bench/compare.py (runs on the host, inside the
 * benchmark's network namespace).
 *
 *     mc_load HOST PORT [conns=N] [seconds=S] [warmup=W] [value=BYTES] [keys=K]
 *                       [set_ratio=R] [seed=N] [deadline=S]
 *
 * (host=... and port=... are accepted as well.) Defaults: 32 connections,
 * 2 s measured after a 0.5 s warm-up, 1024-byte values, 10000 keys, 10%
 * sets, seed 1, overall deadline warmup + seconds + 60 s from the start.
 *
 * First every key "mc_load:<k>" (k < K) is set once (version 1), each
 * connection with one set in flight, each reply checked to be STORED. Then
 * each connection keeps exactly one request in flight: a get (1 - R) or a
 * set (R) of a uniformly random key. A value is a deterministic function of
 * (key, version): "<key>:<version>:" then pseudo-random letters, BYTES in
 * all. Sets of one key are never in flight twice at a time (another key is
 * drawn), so the server applies them in version order; a set sends the
 * key's next version. A get's reply is parsed fully (VALUE line, data, END)
 * and its value must be (key, v) byte for byte with v between the newest
 * version acknowledged (STORED) before the get was sent and the newest sent
 * since: a stale read after our own set is an error. A miss (END alone) is
 * counted, not an error (a server may evict under memory pressure).
 *
 * Each latency (send of the request to the end of its reply, CLOCK_MONOTONIC,
 * ns) of a request sent after the warm-up and answered before the end is
 * kept; p50/p99/p999/max are exact (nearest rank over the sorted samples).
 * Requests still in flight at the end are abandoned. Prints one JSON line:
 *   {"ops", "ops_per_s", "p50_us", "p99_us", "p999_us", "max_us", "errors", ...}
 * Exit status 0 when there were no errors (protocol, value, closed
 * connection, deadline) and at least one measured op, 1 otherwise (the JSON
 * line is printed either way), 2 on bad arguments. One thread, epoll,
 * non-blocking sockets; connects time out after 10 s; everything is bounded
 * by the deadline.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 4096
#define MAX_VALUE (512 * 1024)
#define MIN_VALUE 24            /* room for "<key>:<version>:" */
#define MAX_KEYS 10000000
#define KEY_FMT "mc_load:%u"

enum { IDLE, PRELOAD, GET, SET };

struct conn {
    int fd, state, want_out;
    uint32_t key, ver, floor;
    uint64_t sent_ns;
    char *out;
    size_t out_len, out_off;
    char *in;
    size_t in_len;
};

static struct sockaddr_in peer;
static size_t value_len = 1024;
static char *scratch;                   /* a value regenerated for comparison */
static uint32_t *issued, *acked;        /* per key: newest version sent / acknowledged */
static unsigned char *set_pending;
static unsigned long errors, misses;
static char first_error[256];
static uint64_t deadline_ns;

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void json_escape(char *dst, size_t n, const char *src)
{
    size_t j = 0;
    for (size_t i = 0; src[i] && j + 2 < n; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '"' || c == '\\')
            dst[j++] = '\\', dst[j++] = (char)c;
        else if (c >= 32 && c < 127)
            dst[j++] = (char)c;
        else
            dst[j++] = '?';
    }
    dst[j] = 0;
}

static void fatal(const char *fmt, const char *what)
{
    char msg[256], esc[512];
    snprintf(msg, sizeof msg, fmt, what, strerror(errno));
    json_escape(esc, sizeof esc, msg);
    fprintf(stderr, "mc_load: %s\n", msg);
    printf("{\"ops\": 0, \"errors\": 1, \"error\": \"%s\"}\n", esc);
    exit(1);
}

static void error(struct conn *c, const char *what, const char *detail)
{
    char d[96];
    size_t n = 0;
    for (; detail && detail[n] && detail[n] != '\r' && detail[n] != '\n' && n < sizeof d - 1; n++)
        d[n] = detail[n];
    d[n] = 0;
    if (!errors++)
        snprintf(first_error, sizeof first_error, "%s (key %u, version %u): %s", what, c->key, c->ver, d);
    if (errors <= 5)
        fprintf(stderr, "mc_load: %s (key %u, version %u): %s\n", what, c->key, c->ver, d);
}

static uint64_t rng = 1;

static uint64_t rnd(void)              /* xorshift64* */
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ull;
}

static void gen_value(char *dst, uint32_t key, uint32_t ver)
{
    int h = snprintf(dst, value_len + 1, "%u:%u:", key, ver);
    uint32_t x = key * 2654435761u ^ ver * 0x9e3779b9u ^ 0x5bd1e995u;
    for (size_t i = (size_t)h; i < value_len; i++) {
        x = x * 1103515245u + 12345u;
        dst[i] = (char)('a' + (x >> 16) % 26);
    }
}

/* A connected, non-blocking socket with TCP_NODELAY; connect bounded by 10 s. */
static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        fatal("%s: %s", "socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&peer, sizeof peer) < 0 && errno != EINPROGRESS)
        fatal("%s: %s", "connect");
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    if (poll(&p, 1, 10000) != 1) {
        errno = ETIMEDOUT;
        fatal("%s: %s", "connect");
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        errno = err;
        fatal("%s: %s", "connect");
    }
    return fd;
}

static void drop(int ep, struct conn *c)
{
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    if (c->state == SET || c->state == PRELOAD)
        set_pending[c->key] = 0;
    c->state = IDLE;
}

static void want_out(int ep, struct conn *c, int idx, int on)
{
    if (c->want_out == on)
        return;
    struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.u32 = (uint32_t)idx };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = on;
}

/* Sends what is left of c->out. Returns -1 when the connection failed. */
static int flush_out(int ep, struct conn *c, int idx)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                want_out(ep, c, idx, 1);
                return 0;
            }
            return -1;
        }
        c->out_off += (size_t)n;
    }
    want_out(ep, c, idx, 0);
    return 0;
}

static int start(int ep, struct conn *c, int idx, int state, uint32_t key)
{
    int h;
    c->state = state;
    c->key = key;
    c->in_len = 0;
    if (state == GET) {
        c->floor = acked[key];
        c->ver = 0;
        h = sprintf(c->out, "get " KEY_FMT "\r\n", key);
        c->out_len = (size_t)h;
    } else {
        c->ver = state == PRELOAD ? 1 : issued[key] + 1;
        issued[key] = c->ver;
        set_pending[key] = 1;
        h = sprintf(c->out, "set " KEY_FMT " 0 0 %zu\r\n", key, value_len);
        gen_value(c->out + h, key, c->ver);
        memcpy(c->out + h + value_len, "\r\n", 2);
        c->out_len = (size_t)h + value_len + 2;
    }
    c->out_off = 0;
    c->sent_ns = now_ns();
    return flush_out(ep, c, idx);
}

static char *find_crlf(char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n')
            return p + i;
    return NULL;
}

/* Parses c->in. Returns 0: incomplete, 1: complete and right, -1: error (reported). */
static int parse(struct conn *c)
{
    char *eol = find_crlf(c->in, c->in_len);
    if (!eol)
        return c->in_len > 1024 ? (error(c, "reply line too long", c->in), -1) : 0;
    size_t line = (size_t)(eol - c->in) + 2;
    if (c->state != GET) {
        if (line != 8 || memcmp(c->in, "STORED\r\n", 8) != 0)
            return error(c, "set not STORED", c->in), -1;
        if (c->in_len != line)
            return error(c, "bytes after STORED", c->in + line), -1;
        if (c->ver > acked[c->key])
            acked[c->key] = c->ver;
        set_pending[c->key] = 0;
        return 1;
    }
    if (line == 5 && memcmp(c->in, "END\r\n", 5) == 0) {
        if (c->in_len != line)
            return error(c, "bytes after END", c->in + line), -1;
        misses++;
        return 1;
    }
    char key[64];
    unsigned flags;
    size_t bytes;
    int used = 0;
    snprintf(key, sizeof key, KEY_FMT, c->key);
    size_t kl = strlen(key);
    if (line < 6 + kl + 1 || memcmp(c->in, "VALUE ", 6) != 0 || memcmp(c->in + 6, key, kl) != 0 ||
        c->in[6 + kl] != ' ' || sscanf(c->in + 6 + kl, " %u %zu%n", &flags, &bytes, &used) != 2)
        return error(c, "bad get reply", c->in), -1;
    const char *rest = c->in + 6 + kl + used;       /* optional " <cas>" */
    while (*rest == ' ' || (*rest >= '0' && *rest <= '9'))
        rest++;
    if (rest != eol)
        return error(c, "bad VALUE line", c->in), -1;
    if (bytes != value_len)
        return error(c, "wrong value length", c->in), -1;
    size_t total = line + bytes + 2 + 5;
    if (c->in_len < total)
        return 0;
    if (c->in_len > total)
        return error(c, "bytes after END", c->in + total), -1;
    char *data = c->in + line;
    if (memcmp(data + bytes, "\r\nEND\r\n", 7) != 0)
        return error(c, "no END after the value", data + bytes), -1;
    unsigned k, v;
    if (sscanf(data, "%u:%u:", &k, &v) != 2 || k != c->key)
        return error(c, "value of another key", data), -1;
    c->ver = v;
    if (v < c->floor)
        return error(c, "stale value (older than a STORED set before the get)", data), -1;
    if (v > issued[c->key])
        return error(c, "value of a version never sent", data), -1;
    gen_value(scratch, c->key, v);
    if (memcmp(scratch, data, bytes) != 0)
        return error(c, "value corrupt", data), -1;
    return 1;
}

/* Reads what is there and parses. Returns 0: in progress, 1: reply complete, -1: connection dropped. */
static int on_readable(int ep, struct conn *c, size_t cap)
{
    for (;;) {
        if (c->in_len >= cap) {
            error(c, "reply too long", c->in);
            drop(ep, c);
            return -1;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, cap - c->in_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            error(c, n == 0 ? "connection closed by the server" : "recv failed", n < 0 ? strerror(errno) : "");
            drop(ep, c);
            return -1;
        }
        c->in_len += (size_t)n;
        c->in[c->in_len] = 0;
    }
    if (c->state == IDLE) {
        error(c, "reply without a request", c->in);
        drop(ep, c);
        return -1;
    }
    int r = parse(c);
    if (r < 0) {
        drop(ep, c);
        return -1;
    }
    return r;
}

/* The next request of a connection: a set with probability set_ratio (of a key with no set in flight;
 * a get when 8 draws found none), else a get, of a uniformly random key. -1 when the send failed. */
static int next_op(int ep, struct conn *c, int idx, uint32_t nkeys, int sets, uint64_t set_cut)
{
    uint32_t key = (uint32_t)(rnd() % nkeys);
    int state = GET;
    if (sets && rnd() <= set_cut) {
        for (int tries = 0; tries < 8 && set_pending[key]; tries++)
            key = (uint32_t)(rnd() % nkeys);
        if (!set_pending[key])
            state = SET;
    }
    if (start(ep, c, idx, state, key) < 0) {
        error(c, "send failed", strerror(errno));
        drop(ep, c);
        return -1;
    }
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double rank_us(const uint64_t *s, size_t n, double q)
{
    if (!n)
        return 0;
    size_t i = (size_t)(q * (double)n);        /* nearest rank: ceil(q * n), 1-based */
    if ((double)i < q * (double)n)
        i++;
    return (double)s[i ? i - 1 : 0] / 1000.0;
}

static const char *arg_str(int argc, char **argv, const char *key)
{
    size_t k = strlen(key);
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], key, k) == 0 && argv[i][k] == '=')
            return argv[i] + k + 1;
    return NULL;
}

static double arg_num(int argc, char **argv, const char *key, double dflt)
{
    const char *v = arg_str(argc, argv, key);
    return v ? atof(v) : dflt;
}

/* One epoll event: sends what waits, then reads; the connection whose reply is now complete, or NULL
   (a connection that failed is dropped and counted out of *live). */
static struct conn *reply_ready(int ep, struct conn *cs, const struct epoll_event *ev, size_t in_cap, int *live)
{
    int i = (int)ev->data.u32;
    struct conn *c = &cs[i];
    if (c->fd < 0)
        return NULL;
    if ((ev->events & EPOLLOUT) && flush_out(ep, c, i) < 0) {
        error(c, "send failed", strerror(errno));
        drop(ep, c);
        (*live)--;
        return NULL;
    }
    if (!(ev->events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        return NULL;
    int r = on_readable(ep, c, in_cap);
    if (r < 0)
        (*live)--;
    return r > 0 ? c : NULL;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *pos[2] = { NULL, NULL };
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (strchr(argv[i], '='))
            continue;
        if (npos == 2) {
            fprintf(stderr, "mc_load: unexpected argument %s\n", argv[i]);
            return 2;
        }
        pos[npos++] = argv[i];
    }
    const char *host = arg_str(argc, argv, "host") ? arg_str(argc, argv, "host") : pos[0];
    const char *port = arg_str(argc, argv, "port") ? arg_str(argc, argv, "port") : pos[1];
    int conns = (int)arg_num(argc, argv, "conns", 32);
    double seconds = arg_num(argc, argv, "seconds", 2), warmup = arg_num(argc, argv, "warmup", 0.5);
    double vlen = arg_num(argc, argv, "value", 1024), nkeys_d = arg_num(argc, argv, "keys", 10000);
    double set_ratio = arg_num(argc, argv, "set_ratio", 0.1);
    double deadline = arg_num(argc, argv, "deadline", warmup + seconds + 60);
    rng = (uint64_t)arg_num(argc, argv, "seed", 1) * 0x9e3779b97f4a7c15ull + 1;
    if (!host || !port || conns < 1 || conns > MAX_CONNS || seconds <= 0 || seconds > 3600 || warmup < 0 ||
        vlen < MIN_VALUE || vlen > MAX_VALUE || nkeys_d < 1 || nkeys_d > MAX_KEYS || set_ratio < 0 ||
        set_ratio > 1 || deadline <= warmup + seconds) {
        fprintf(stderr, "usage: mc_load HOST PORT [conns=1..%d] [seconds=S<=3600] [warmup=W] [value=%d..%d] "
                "[keys=1..%d] [set_ratio=0..1] [seed=N] [deadline=S>warmup+seconds]\n",
                MAX_CONNS, MIN_VALUE, MAX_VALUE, MAX_KEYS);
        return 2;
    }
    value_len = (size_t)vlen;
    uint32_t nkeys = (uint32_t)nkeys_d;
    peer.sin_family = AF_INET;
    peer.sin_port = htons((unsigned short)atoi(port));
    if (inet_pton(AF_INET, host, &peer.sin_addr) != 1) {
        fprintf(stderr, "mc_load: bad address %s\n", host);
        return 2;
    }
    uint64_t t_begin = now_ns();
    deadline_ns = t_begin + (uint64_t)(deadline * 1e9);

    size_t out_cap = 64 + value_len + 2, in_cap = 128 + value_len + 7;
    struct conn *cs = calloc((size_t)conns, sizeof *cs);
    issued = calloc(nkeys, sizeof *issued);
    acked = calloc(nkeys, sizeof *acked);
    set_pending = calloc(nkeys, 1);
    scratch = malloc(value_len + 1);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (!cs || !issued || !acked || !set_pending || !scratch || ep < 0)
        fatal("%s: %s", "setup");
    for (int i = 0; i < conns; i++) {
        cs[i].out = malloc(out_cap);
        cs[i].in = malloc(in_cap + 1);
        if (!cs[i].out || !cs[i].in)
            fatal("%s: %s", "malloc");
        cs[i].fd = dial();
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) < 0)
            fatal("%s: %s", "epoll_ctl");
    }

    /* Preload: every key once, version 1, one set in flight per connection. */
    struct epoll_event evs[256];
    uint32_t next = 0, stored = 0;
    int live = conns;
    for (int i = 0; i < conns && next < nkeys; i++)
        if (start(ep, &cs[i], i, PRELOAD, next++) < 0) {
            error(&cs[i], "send failed", strerror(errno));
            drop(ep, &cs[i]);
            live--;
        }
    while (stored < nkeys && live > 0 && !errors) {
        uint64_t t = now_ns();
        if (t >= deadline_ns) {
            error(&cs[0], "deadline", "preload did not finish");
            break;
        }
        int n = epoll_wait(ep, evs, 256, 100);
        if (n < 0 && errno != EINTR)
            fatal("%s: %s", "epoll_wait");
        for (int k = 0; k < n; k++) {
            struct conn *c = reply_ready(ep, cs, &evs[k], in_cap, &live);
            if (!c)
                continue;
            int i = (int)(c - cs);
            stored++;
            c->state = IDLE;
            if (next < nkeys && start(ep, c, i, PRELOAD, next++) < 0) {
                error(c, "send failed", strerror(errno));
                drop(ep, c);
                live--;
            }
        }
    }
    uint64_t t_loaded = now_ns();
    double preload_s = (double)(t_loaded - t_begin) / 1e9;

    /* The run: one request in flight per connection. */
    size_t cap = 1 << 16, nsamp = 0;
    uint64_t *samp = malloc(cap * sizeof *samp);
    unsigned long gets = 0, sets = 0, total = 0;
    uint64_t from = t_loaded + (uint64_t)(warmup * 1e9), end = from + (uint64_t)(seconds * 1e9);
    uint64_t set_cut = set_ratio >= 1 ? UINT64_MAX : (uint64_t)(set_ratio * 18446744073709551616.0);
    if (!samp)
        fatal("%s: %s", "malloc");
    if (!errors && stored == nkeys) {
        uint64_t t = now_ns();
        for (int i = 0; i < conns; i++)
            if (cs[i].fd >= 0 && next_op(ep, &cs[i], i, nkeys, set_ratio > 0, set_cut) < 0)
                live--;
        while (t < end && live > 0) {
            if (t >= deadline_ns) {
                error(&cs[0], "deadline", "the run did not finish");
                break;
            }
            uint64_t left = (end - t) / 1000000 + 1;
            int n = epoll_wait(ep, evs, 256, left < 100 ? (int)left : 100);
            if (n < 0 && errno != EINTR)
                fatal("%s: %s", "epoll_wait");
            t = now_ns();
            for (int k = 0; k < n; k++) {
                struct conn *c = reply_ready(ep, cs, &evs[k], in_cap, &live);
                if (!c)
                    continue;
                int i = (int)(c - cs);
                uint64_t done = now_ns();
                total++;
                if (c->sent_ns >= from && done <= end) {
                    if (nsamp == cap) {
                        uint64_t *s2 = realloc(samp, 2 * cap * sizeof *samp);
                        if (!s2)
                            fatal("%s: %s", "realloc");
                        samp = s2;
                        cap *= 2;
                    }
                    samp[nsamp++] = done - c->sent_ns;
                    if (c->state == GET)
                        gets++;
                    else
                        sets++;
                }
                c->state = IDLE;
                if (done >= end)
                    continue;
                if (next_op(ep, c, i, nkeys, set_ratio > 0, set_cut) < 0)
                    live--;
            }
        }
        if (live == 0 && !errors)
            error(&cs[0], "no connection left", "");
    } else if (!errors) {
        error(&cs[0], "preload incomplete", "");
    }

    qsort(samp, nsamp, sizeof *samp, cmp_u64);
    char esc[512];
    json_escape(esc, sizeof esc, first_error);
    printf("{\"ops\": %zu, \"ops_per_s\": %.1f, \"p50_us\": %.1f, \"p99_us\": %.1f, \"p999_us\": %.1f, "
           "\"max_us\": %.1f, \"errors\": %lu, \"gets\": %lu, \"sets\": %lu, \"misses\": %lu, \"conns\": %d, "
           "\"seconds\": %g, \"warmup\": %g, \"value\": %zu, \"keys\": %u, \"preload_s\": %.3f, \"total\": %lu%s%s%s}\n",
           nsamp, (double)nsamp / seconds, rank_us(samp, nsamp, 0.5), rank_us(samp, nsamp, 0.99),
           rank_us(samp, nsamp, 0.999), nsamp ? (double)samp[nsamp - 1] / 1000.0 : 0.0, errors, gets, sets,
           misses, conns, seconds, warmup, value_len, nkeys, preload_s, total,
           errors ? ", \"error\": \"" : "", errors ? esc : "", errors ? "\"" : "");
    for (int i = 0; i < conns; i++)
        if (cs[i].fd >= 0)
            close(cs[i].fd);
    return errors || !nsamp;
}
