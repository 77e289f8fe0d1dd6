/*
 * tcp_echo: the Linux-guest counterpart of apps/echo (TCP side), for
 * tests/bench/tcp.py. Runs inside the benchmark's Linux guest.
 *
 *     tcp_echo [PORT [MAX_SECONDS [cpu]]]     (default 7 and 300)
 *
 * One thread per online CPU, pinned to it, each with its own epoll set and
 * its own listening socket on PORT (SO_REUSEPORT); the kernel's reuseport
 * hash spreads connections over the threads. With "cpu", a classic-BPF
 * reuseport program picks the listener of the CPU that took the SYN
 * instead, so a connection is served where its receive queue is handled (as
 * Shoal's shards do). That is not the default because on virtio-mmio
 * (QEMU microvm) the device has a single interrupt: every SYN arrives on
 * one CPU and all connections would land on one thread.
 * Every accepted connection gets TCP_NODELAY and has its bytes written back
 * as they come; while a write is incomplete the connection stops reading,
 * so a peer that does not read is held back by TCP's window.
 *
 * A UDP datagram to PORT that starts with "tcp_echo:exit" makes the process
 * print each thread's counts and exit 0; so do SIGTERM and SIGINT. After
 * MAX_SECONDS it exits 2 on its own, so the guest always powers off.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_THREADS 64
#define BUF_SIZE 65536
#define EXIT_MAGIC "tcp_echo:exit"

struct conn {
    int fd;
    size_t off, len;            /* bytes of buf still to be written back */
    int waiting_out;            /* registered for EPOLLOUT instead of EPOLLIN */
    char buf[BUF_SIZE];
};

struct worker {
    pthread_t thread;
    int cpu, listen_fd, ep;
    atomic_ulong accepted, bytes;
};

static struct worker workers[MAX_THREADS];
static int nworkers;
static unsigned short port = 7;

static void die(const char *what)
{
    fprintf(stderr, "tcp_echo: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void report_and_exit(int status, const char *why)
{
    char line[4096];
    int n = snprintf(line, sizeof line, "tcp_echo: %s;", why);
    for (int i = 0; i < nworkers && n < (int)sizeof line; i++)
        n += snprintf(line + n, sizeof line - (size_t)n, " cpu%d accepted=%lu bytes=%lu", workers[i].cpu,
                      atomic_load(&workers[i].accepted), atomic_load(&workers[i].bytes));
    printf("%s\n", line);
    fflush(stdout);
    _exit(status);
}

static void close_conn(struct worker *w, struct conn *c)
{
    epoll_ctl(w->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

/* Write back what is pending; returns -1 if the connection was closed. */
static int flush(struct worker *w, struct conn *c)
{
    while (c->len) {
        ssize_t n = write(c->fd, c->buf + c->off, c->len);
        if (n < 0) {
            if (errno == EAGAIN)
                break;
            if (errno == EINTR)
                continue;
            close_conn(w, c);
            return -1;
        }
        c->off += (size_t)n;
        c->len -= (size_t)n;
        atomic_fetch_add_explicit(&w->bytes, (unsigned long)n, memory_order_relaxed);
    }
    int want_out = c->len != 0;
    if (want_out != c->waiting_out) {
        struct epoll_event ev = { .events = want_out ? EPOLLOUT : EPOLLIN, .data.ptr = c };
        epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->waiting_out = want_out;
    }
    return 0;
}

static void on_readable(struct worker *w, struct conn *c)
{
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t n = read(c->fd, c->buf, BUF_SIZE);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            close_conn(w, c);
            return;
        }
        if (n < 0)
            return;
        c->off = 0;
        c->len = (size_t)n;
        if (flush(w, c) < 0 || c->len)
            return;
        if (n < BUF_SIZE)
            return;
    }
}

static void on_accept(struct worker *w)
{
    for (;;) {
        int fd = accept4(w->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = malloc(sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->off = c->len = 0;
        c->waiting_out = 0;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(c);
            continue;
        }
        atomic_fetch_add_explicit(&w->accepted, 1, memory_order_relaxed);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w->cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->listen_fd, &ev) < 0)
        die("epoll_ctl");
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(w->ep, evs, 64, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c)
                on_accept(w);
            else if (c->len)
                flush(w, c);
            else
                on_readable(w, c);
        }
    }
    return NULL;
}

static int listener(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        die("SO_REUSEPORT");
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY) };
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0)
        die("bind");
    if (listen(fd, 1024) < 0)
        die("listen");
    return fd;
}

int main(int argc, char **argv)
{
    unsigned max_seconds = 300;
    if (argc > 1)
        port = (unsigned short)atoi(argv[1]);
    if (argc > 2)
        max_seconds = (unsigned)atoi(argv[2]);
    int steer_by_cpu = argc > 3 && strcmp(argv[3], "cpu") == 0;
    setvbuf(stdout, NULL, _IOLBF, 0);

    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) < 0)
        die("sched_getaffinity");
    for (int cpu = 0; cpu < CPU_SETSIZE && nworkers < MAX_THREADS; cpu++)
        if (CPU_ISSET(cpu, &set))
            workers[nworkers++].cpu = cpu;

    /* Listeners join the reuseport group in CPU order, so group index = CPU number (CPUs 0..n-1 online). */
    for (int i = 0; i < nworkers; i++) {
        workers[i].listen_fd = listener();
        if ((workers[i].ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
            die("epoll_create1");
    }
    const char *steer = "kernel hash";
    if (steer_by_cpu && nworkers > 1 && workers[nworkers - 1].cpu == nworkers - 1) {
        struct sock_filter code[] = {
            { BPF_LD | BPF_W | BPF_ABS, 0, 0, (unsigned)(SKF_AD_OFF + SKF_AD_CPU) },
            { BPF_RET | BPF_A, 0, 0, 0 },
        };
        struct sock_fprog prog = { .len = 2, .filter = code };
        if (setsockopt(workers[0].listen_fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) == 0)
            steer = "CPU that took the SYN";
        else
            fprintf(stderr, "tcp_echo: SO_ATTACH_REUSEPORT_CBPF: %s (kernel hash instead)\n", strerror(errno));
    }

    int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY) };
    if (udp < 0 || bind(udp, (struct sockaddr *)&a, sizeof a) < 0)
        die("udp bind");

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);    /* inherited by the workers; the signal thread takes them */

    for (int i = 0; i < nworkers; i++)
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0)
            die("pthread_create");

    printf("tcp_echo: ready, TCP port %u, %d threads, connections go to the %s\n", port, nworkers, steer);
    alarm(max_seconds);

    /* The main thread waits for the exit datagram; signals are taken here too (polled with sigtimedwait between datagrams). */
    struct timeval rcv = { .tv_sec = 0, .tv_usec = 100 * 1000 };
    setsockopt(udp, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof rcv);
    for (;;) {
        char buf[256];
        ssize_t n = recv(udp, buf, sizeof buf, 0);
        if (n >= (ssize_t)strlen(EXIT_MAGIC) && memcmp(buf, EXIT_MAGIC, strlen(EXIT_MAGIC)) == 0)
            report_and_exit(0, "exit requested");
        int sig = sigtimedwait(&sigs, NULL, &(struct timespec){ 0 });
        if (sig == SIGALRM)
            report_and_exit(2, "time limit reached");
        if (sig == SIGTERM || sig == SIGINT)
            report_and_exit(0, "signal");
    }
}
