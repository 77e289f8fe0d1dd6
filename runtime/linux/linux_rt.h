/*
 * Internal to the Linux backend of the runtime (runtime/linux/): what the
 * reactor (shoal_linux.c) and the sockets (shoal_linux_net.c) share.
 * Applications never see this; they include runtime/shoal.h only.
 */
#ifndef SHOAL_LINUX_RT_H
#define SHOAL_LINUX_RT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../shoal.h"

/* Something registered with a shard's epoll: event.data.ptr points at it. */
struct lx_source {
    void (*handle)(struct lx_source *s, uint32_t events);
};

#define LX_RECV_BUF (64u << 10)

struct lx_msg {
    void (*fn)(void *);
    void *arg;
};

/* A queue of cross-shard calls: the producers append under the lock, the owner swaps it out. */
struct lx_msgq {
    struct lx_msg *v;
    size_t len, cap;
};

struct lx_shard {
    unsigned id;
    int cpu;                        /* the CPU it is pinned to, -1 if none */
    pthread_t thread;
    int epfd;

    /* Cross-shard calls to this shard. */
    pthread_mutex_t mq_lock;
    struct lx_msgq incoming;        /* under mq_lock */
    struct lx_msgq running;         /* the owner's */
    size_t mq_len;                  /* incoming.len, read without the lock (atomics) */
    int sleeping;                   /* in epoll_wait with a timeout: producers write the eventfd */
    int evfd;
    struct lx_source ev_src;

    /* Owner-only state. */
    struct task *task_head, *task_tail;
    struct timer_wheel wheel;
    uint8_t *rbuf;                  /* LX_RECV_BUF bytes for read()/recvfrom() */
    struct tcp_conn *zombies;       /* finished connections, freed at the end of the loop */
    void *listeners;                /* struct lx_listener list (net) */
    void *udps;                     /* struct lx_udp list (net) */

    /* Counters, written by the owner only, read by anyone (relaxed). */
    struct shoal_reactor_stats stats;
} __attribute__((aligned(64)));

extern struct lx_shard *lx_shards;
extern unsigned lx_nshards;
extern __thread struct lx_shard *lx_self;

#define LX_STAT_ADD(sh, field, n) \
    __atomic_store_n(&(sh)->stats.field, (sh)->stats.field + (uint64_t)(n), __ATOMIC_RELAXED)

/* Register / change / remove an fd in this shard's epoll; 0 or -1. */
int lx_epoll_add(int fd, uint32_t events, struct lx_source *src);
int lx_epoll_mod(int fd, uint32_t events, struct lx_source *src);
void lx_epoll_del(int fd);

/* Net side: free the connections that finished during this loop. */
void lx_net_reap(struct lx_shard *sh);

#endif
