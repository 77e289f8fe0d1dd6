/*
 * tcp_load: TCP load generator for tests/bench/tcp.py (runs on the host,
 * inside the benchmark's network namespace, against an echo server).
 *
 *     tcp_load rr   HOST PORT [conns=N] [size=B] [warmup=S] [seconds=S]
 *     tcp_load bulk HOST PORT [bytes=B] [timeout=S]
 *     tcp_load exit HOST PORT
 *
 * rr: N connections (default 1), each with one request of B bytes (default
 * 64) in flight: send it, wait until all B bytes have come back, check
 * them, send the next. Counts transactions completed in the measured
 * window (after the warm-up) on the host's monotonic clock; one thread,
 * epoll. Prints {"tps", "transactions", "p50_us", "p99_us", ...}; the
 * latencies are those of the measured transactions.
 *
 * bulk: one connection; sends B bytes (default 16 MiB) of a fixed pattern
 * while reading the echo back and checking it, then half-closes. The time
 * runs from the connect to the last echoed byte; "MBps" is B / time (each
 * way: B bytes went out and B came back in that time).
 *
 * exit: sends the UDP datagram "tcp_echo:exit" to HOST:PORT (stops the
 * Linux guest's tcp_echo; Shoal's echo just echoes it).
 *
 * Every loop is bounded: rr by warmup + seconds, bulk by the timeout
 * (default 60 s); connects time out after 10 s. Exit status 0 when every
 * byte came back right, 1 otherwise (the JSON line is printed either way).
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

#define MAX_CONNS 1024
#define MAX_SIZE 65536
#define HIST_US 200000          /* latency histogram: 1 us buckets up to 200 ms, the rest in the last */
#define PATTERN_PERIOD 65521    /* prime, so the pattern does not line up with buffer sizes */

static struct sockaddr_in peer;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    fprintf(stderr, "tcp_load: %s: %s\n", what, strerror(errno));
    printf("{\"error\": \"%s: %s\"}\n", what, strerror(errno));
    exit(1);
}

static double arg_num(int argc, char **argv, const char *key, double dflt)
{
    size_t k = strlen(key);
    for (int i = 4; i < argc; i++)
        if (strncmp(argv[i], key, k) == 0 && argv[i][k] == '=')
            return atof(argv[i] + k + 1);
    return dflt;
}

/* A connected, non-blocking socket with TCP_NODELAY; connect bounded by 10 s. */
static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&peer, sizeof peer) < 0 && errno != EINPROGRESS)
        die("connect");
    struct pollfd p = { .fd = fd, .events = POLLOUT };
    if (poll(&p, 1, 10000) != 1) {
        errno = ETIMEDOUT;
        die("connect");
    }
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        errno = err;
        die("connect");
    }
    return fd;
}

struct rr_conn {
    int fd;
    uint32_t seq;
    size_t got;
    double sent_at;
    unsigned char req[MAX_SIZE], resp[MAX_SIZE];
};

static void fill_request(struct rr_conn *c, size_t size, int index)
{
    for (size_t i = 0; i < size; i++)
        c->req[i] = (unsigned char)(c->seq * 7 + (uint32_t)index * 13 + i);
}

static int send_request(struct rr_conn *c, size_t size, int index)
{
    fill_request(c, size, index);
    c->got = 0;
    c->sent_at = now();
    ssize_t n = send(c->fd, c->req, size, MSG_NOSIGNAL);
    return n == (ssize_t)size ? 0 : -1;    /* one small request into an empty send buffer: all or error */
}

static int rr(int argc, char **argv)
{
    int conns = (int)arg_num(argc, argv, "conns", 1);
    size_t size = (size_t)arg_num(argc, argv, "size", 64);
    double warmup = arg_num(argc, argv, "warmup", 0.5), seconds = arg_num(argc, argv, "seconds", 2);
    if (conns < 1 || conns > MAX_CONNS || size < 1 || size > MAX_SIZE || seconds <= 0 || seconds > 600) {
        fprintf(stderr, "tcp_load: rr: conns 1..%d, size 1..%d, seconds up to 600\n", MAX_CONNS, MAX_SIZE);
        return 2;
    }
    static unsigned hist[HIST_US + 1];
    struct rr_conn *cs = calloc((size_t)conns, sizeof *cs);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (!cs || ep < 0)
        die("setup");
    for (int i = 0; i < conns; i++) {
        cs[i].fd = dial();
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) < 0)
            die("epoll_ctl");
    }
    double t0 = now(), start = t0 + warmup, end = start + seconds;
    for (int i = 0; i < conns; i++)
        if (send_request(&cs[i], size, i) < 0)
            die("send");
    unsigned long measured = 0, total = 0, bad = 0, closed = 0;
    double t = t0;
    struct epoll_event evs[256];
    while (t < end) {
        int n = epoll_wait(ep, evs, 256, 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        t = now();
        for (int k = 0; k < n; k++) {
            int i = (int)evs[k].data.u32;
            struct rr_conn *c = &cs[i];
            ssize_t r = recv(c->fd, c->resp + c->got, size - c->got, 0);
            if (r <= 0) {
                if (r < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                closed++;
                continue;
            }
            c->got += (size_t)r;
            if (c->got < size)
                continue;
            if (memcmp(c->req, c->resp, size) != 0)
                bad++;
            total++;
            if (c->sent_at >= start && t <= end) {
                double us = (t - c->sent_at) * 1e6;
                hist[us < HIST_US ? (unsigned)us : HIST_US]++;
                measured++;
            }
            c->seq++;
            if (t < end && send_request(c, size, i) < 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                closed++;
            }
        }
        if (closed == (unsigned long)conns)
            break;
    }
    double elapsed = (t < end ? t : end) - start;
    unsigned p50 = 0, p99 = 0;
    unsigned long acc = 0;
    for (unsigned us = 0; us <= HIST_US && measured; us++) {
        acc += hist[us];
        if (!p50 && acc * 2 >= measured)
            p50 = us ? us : 1;
        if (!p99 && acc * 100 >= measured * 99) {
            p99 = us ? us : 1;
            break;
        }
    }
    printf("{\"mode\": \"rr\", \"conns\": %d, \"size\": %zu, \"seconds\": %.3f, \"transactions\": %lu, "
           "\"tps\": %.1f, \"p50_us\": %u, \"p99_us\": %u, \"total\": %lu, \"bad\": %lu, \"closed\": %lu}\n",
           conns, size, elapsed, measured, elapsed > 0 ? (double)measured / elapsed : 0.0, p50, p99, total, bad, closed);
    for (int i = 0; i < conns; i++)
        close(cs[i].fd);
    return bad || closed || !measured;
}

static int bulk(int argc, char **argv)
{
    size_t bytes = (size_t)arg_num(argc, argv, "bytes", 16 << 20);
    double timeout = arg_num(argc, argv, "timeout", 60);
    static unsigned char pattern[PATTERN_PERIOD + MAX_SIZE], buf[1 << 18];
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (unsigned char)(((i % PATTERN_PERIOD) * 2654435761u) >> 13);
    double t0 = now(), deadline = t0 + timeout;
    int fd = dial();
    size_t out = 0, in = 0;
    unsigned long bad = 0;
    int eof = 0;
    while (in < bytes && !eof) {
        double t = now();
        if (t >= deadline)
            break;
        struct pollfd p = { .fd = fd, .events = POLLIN | (out < bytes ? POLLOUT : 0) };
        if (poll(&p, 1, 100) < 0 && errno != EINTR)
            die("poll");
        if (p.revents & POLLOUT && out < bytes) {
            size_t len = bytes - out < MAX_SIZE ? bytes - out : MAX_SIZE;
            ssize_t n = send(fd, pattern + out % PATTERN_PERIOD, len, MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                die("send");
            if (n > 0 && (out += (size_t)n) == bytes)
                shutdown(fd, SHUT_WR);
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n == 0)
                eof = 1;
            else if (n < 0 && errno != EAGAIN && errno != EINTR)
                die("recv");
            for (ssize_t done = 0; n > 0 && done < n;) {
                size_t off = (in + (size_t)done) % PATTERN_PERIOD;
                size_t len = (size_t)(n - done) < PATTERN_PERIOD - off ? (size_t)(n - done) : PATTERN_PERIOD - off;
                bad += memcmp(buf + done, pattern + off, len) != 0;
                done += (ssize_t)len;
            }
            if (n > 0)
                in += (size_t)n;
        }
    }
    double el = now() - t0;
    close(fd);
    printf("{\"mode\": \"bulk\", \"bytes\": %zu, \"sent\": %zu, \"echoed\": %zu, \"seconds\": %.3f, \"MBps\": %.2f, "
           "\"bad\": %lu, \"timed_out\": %s}\n",
           bytes, out, in, el, el > 0 ? (double)in / el / 1e6 : 0.0, bad, in < bytes ? "true" : "false");
    return bad || in != bytes;
}

static int send_exit(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    static const char msg[] = "tcp_echo:exit";
    if (fd < 0 || sendto(fd, msg, sizeof msg - 1, 0, (struct sockaddr *)&peer, sizeof peer) < 0)
        die("sendto");
    close(fd);
    printf("{\"mode\": \"exit\"}\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: tcp_load rr|bulk|exit HOST PORT [key=value...]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    peer.sin_family = AF_INET;
    peer.sin_port = htons((unsigned short)atoi(argv[3]));
    if (inet_pton(AF_INET, argv[2], &peer.sin_addr) != 1) {
        fprintf(stderr, "tcp_load: bad address %s\n", argv[2]);
        return 2;
    }
    if (strcmp(argv[1], "rr") == 0)
        return rr(argc, argv);
    if (strcmp(argv[1], "bulk") == 0)
        return bulk(argc, argv);
    if (strcmp(argv[1], "exit") == 0)
        return send_exit();
    fprintf(stderr, "tcp_load: unknown mode %s\n", argv[1]);
    return 2;
}
