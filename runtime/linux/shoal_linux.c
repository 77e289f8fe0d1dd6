/*
 * The runtime API as an ordinary Linux program: one thread per shard, each
 * pinned to one CPU of the process's affinity mask and running a reactor
 * (epoll_pwait2 on its sockets and an eventfd, its task queue, its timer
 * wheel). SHOAL_SHARDS overrides the shard count. main() starts the shards
 * and then waits for SIGINT/SIGTERM; app_main(argc, argv) runs once on
 * every shard thread after all of them are up, with argv as given.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "linux_rt.h"
#include "../../drivers/blkdev.h"
#include "../../drivers/netdev.h"

#define TIMER_TICK_SHIFT 16                 /* 65.5 us, as in the kernel */
#define TASK_BUDGET_NS 500000ull            /* as REACTOR_TASK_BUDGET_NS */
#define MSGQ_TRY_MAX 65536u                 /* smp_try_call refuses past this many waiting */
#define MAX_EVENTS 256

struct lx_shard *lx_shards;
unsigned lx_nshards;
__thread struct lx_shard *lx_self;

static int app_argc;
static char **app_argv;
static pthread_barrier_t start_barrier;
static uint64_t start_ns;

static void die(const char *what)
{
    fprintf(stderr, "shoal-linux: %s: %s\n", what, strerror(errno));
    _exit(1);
}

/* ---- time ---- */

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }
uint64_t wall_ns(void) { return clock_ns(CLOCK_REALTIME); }

static inline uint64_t cycles(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __builtin_ia32_rdtsc();
#else
    return now_ns();
#endif
}

/* ---- shards ---- */

unsigned shard_id(void) { return lx_self ? lx_self->id : 0; }
unsigned shard_count(void) { return lx_nshards; }

static struct lx_shard *self_or_die(const char *fn)
{
    if (!lx_self) {
        fprintf(stderr, "shoal-linux: %s called outside a shard thread\n", fn);
        abort();
    }
    return lx_self;
}

int lx_epoll_add(int fd, uint32_t events, struct lx_source *src)
{
    struct epoll_event ev = { .events = events, .data.ptr = src };
    return epoll_ctl(self_or_die("epoll")->epfd, EPOLL_CTL_ADD, fd, &ev);
}

int lx_epoll_mod(int fd, uint32_t events, struct lx_source *src)
{
    struct epoll_event ev = { .events = events, .data.ptr = src };
    return epoll_ctl(lx_self->epfd, EPOLL_CTL_MOD, fd, &ev);
}

void lx_epoll_del(int fd) { epoll_ctl(lx_self->epfd, EPOLL_CTL_DEL, fd, 0); }

/* ---- tasks ---- */

void task_schedule(struct task *t)
{
    struct lx_shard *sh = self_or_die("task_schedule");
    if (t->queued)
        return;
    t->queued = true;
    t->next = 0;
    if (sh->task_tail)
        sh->task_tail->next = t;
    else
        sh->task_head = t;
    sh->task_tail = t;
}

/* Runs the tasks queued before this call until the budget is spent; later ones wait a loop. */
static unsigned run_tasks(struct lx_shard *sh)
{
    struct task *last = sh->task_tail;
    if (!last)
        return 0;
    uint64_t start = now_ns();
    unsigned n = 0;
    for (;;) {
        struct task *t = sh->task_head;
        sh->task_head = t->next;
        if (!sh->task_head)
            sh->task_tail = 0;
        t->queued = false;
        t->fn(t);
        n++;
        if (t == last || !sh->task_head || now_ns() - start > TASK_BUDGET_NS)
            break;
    }
    LX_STAT_ADD(sh, tasks, n);
    return n;
}

/* ---- timers ---- */

void shoal_timer_init(struct timer *t, void (*fn)(struct timer *)) { timer_init(t, fn); }
void shoal_timer_arm(struct timer *t, uint64_t deadline_ns)
{
    timer_arm(&self_or_die("shoal_timer_arm")->wheel, t, deadline_ns);
}
bool shoal_timer_cancel(struct timer *t) { return timer_cancel(&self_or_die("shoal_timer_cancel")->wheel, t); }

/* ---- cross-shard calls ---- */

static bool msgq_push(struct lx_msgq *q, void (*fn)(void *), void *arg, bool may_grow)
{
    if (q->len == q->cap) {
        if (!may_grow && q->cap >= MSGQ_TRY_MAX)
            return false;
        size_t cap = q->cap ? q->cap * 2 : 256;
        struct lx_msg *v = realloc(q->v, cap * sizeof *v);
        if (!v)
            return false;
        q->v = v;
        q->cap = cap;
    }
    q->v[q->len++] = (struct lx_msg){ fn, arg };
    return true;
}

static bool call(unsigned shard, void (*fn)(void *), void *arg, bool may_grow)
{
    if (shard >= lx_nshards) {
        fprintf(stderr, "shoal-linux: smp_call to shard %u of %u\n", shard, lx_nshards);
        abort();
    }
    struct lx_shard *t = &lx_shards[shard];
    pthread_mutex_lock(&t->mq_lock);
    bool ok = msgq_push(&t->incoming, fn, arg, may_grow);
    if (ok)
        __atomic_store_n(&t->mq_len, t->incoming.len, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&t->mq_lock);
    if (!ok)
        return false;
    /* Pairs with the owner's store to sleeping and load of mq_len before it waits. */
    if (__atomic_load_n(&t->sleeping, __ATOMIC_SEQ_CST)) {
        uint64_t one = 1;
        while (write(t->evfd, &one, sizeof one) < 0 && errno == EINTR)
            ;
    }
    return true;
}

void smp_call(unsigned shard, void (*fn)(void *), void *arg)
{
    if (!call(shard, fn, arg, true)) {
        fprintf(stderr, "shoal-linux: smp_call: out of memory\n");
        abort();
    }
}

bool smp_try_call(unsigned shard, void (*fn)(void *), void *arg) { return call(shard, fn, arg, false); }

/* Runs the calls that were waiting when called; ones they queue wait for the next loop. */
static unsigned run_messages(struct lx_shard *sh)
{
    if (!__atomic_load_n(&sh->mq_len, __ATOMIC_SEQ_CST))
        return 0;
    pthread_mutex_lock(&sh->mq_lock);
    struct lx_msgq q = sh->incoming;
    sh->incoming = sh->running;
    sh->incoming.len = 0;
    __atomic_store_n(&sh->mq_len, 0, __ATOMIC_SEQ_CST);
    pthread_mutex_unlock(&sh->mq_lock);
    for (size_t i = 0; i < q.len; i++)
        q.v[i].fn(q.v[i].arg);
    unsigned n = (unsigned)q.len;
    q.len = 0;
    sh->running = q;
    LX_STAT_ADD(sh, messages, n);
    return n;
}

static void eventfd_drain(struct lx_source *s, uint32_t events)
{
    (void)events;
    struct lx_shard *sh = (struct lx_shard *)((char *)s - offsetof(struct lx_shard, ev_src));
    uint64_t v;
    while (read(sh->evfd, &v, sizeof v) < 0 && errno == EINTR)
        ;
}

/* ---- the reactor ---- */

static int wait_events(struct lx_shard *sh, struct epoll_event *ev, uint64_t timeout_ns)
{
    struct timespec ts, *tsp = 0;
    if (timeout_ns != UINT64_MAX) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000ull);
        ts.tv_nsec = (long)(timeout_ns % 1000000000ull);
        tsp = &ts;
    }
    int n = epoll_pwait2(sh->epfd, ev, MAX_EVENTS, tsp, 0);
    if (n < 0 && errno != EINTR)
        die("epoll_pwait2");
    return n < 0 ? 0 : n;
}

static __attribute__((noreturn)) void reactor_run(struct lx_shard *sh)
{
    struct epoll_event ev[MAX_EVENTS];
    for (;;) {
        uint64_t t0 = cycles();
        LX_STAT_ADD(sh, loops, 1);
        unsigned work = run_messages(sh);
        unsigned timers = timer_wheel_advance(&sh->wheel, now_ns());
        LX_STAT_ADD(sh, timers, timers);
        work += timers + run_tasks(sh);
        lx_net_reap(sh);

        /* Poll without waiting while there is work; otherwise sleep until the next deadline. */
        uint64_t timeout = 0;
        if (!sh->task_head && !__atomic_load_n(&sh->mq_len, __ATOMIC_RELAXED)) {
            uint64_t deadline = timer_wheel_next_deadline(&sh->wheel), now = now_ns();
            timeout = deadline == UINT64_MAX ? UINT64_MAX : deadline > now ? deadline - now : 0;
        }
        int n;
        if (timeout) {
            __atomic_store_n(&sh->sleeping, 1, __ATOMIC_SEQ_CST);
            if (__atomic_load_n(&sh->mq_len, __ATOMIC_SEQ_CST))
                timeout = 0;
            uint64_t w0 = cycles();
            LX_STAT_ADD(sh, busy_cycles, w0 - t0);
            n = wait_events(sh, ev, timeout);
            __atomic_store_n(&sh->sleeping, 0, __ATOMIC_RELAXED);
            if (timeout) {
                LX_STAT_ADD(sh, halts, 1);
                LX_STAT_ADD(sh, idle_cycles, cycles() - w0);
            }
            t0 = cycles();
        } else {
            n = wait_events(sh, ev, 0);
        }
        for (int i = 0; i < n; i++) {
            struct lx_source *s = ev[i].data.ptr;
            s->handle(s, ev[i].events);
        }
        lx_net_reap(sh);
        (void)work;
        LX_STAT_ADD(sh, busy_cycles, cycles() - t0);
    }
}

static void *shard_main(void *p)
{
    struct lx_shard *sh = p;
    lx_self = sh;
    if (sh->cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(sh->cpu, &set);
        if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
            fprintf(stderr, "shoal-linux: cannot pin shard %u to cpu %d\n", sh->id, sh->cpu);
    }
    sh->epfd = epoll_create1(EPOLL_CLOEXEC);
    sh->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    sh->rbuf = malloc(LX_RECV_BUF);
    if (sh->epfd < 0 || sh->evfd < 0 || !sh->rbuf)
        die("shard setup");
    sh->ev_src.handle = eventfd_drain;
    if (lx_epoll_add(sh->evfd, EPOLLIN, &sh->ev_src) < 0)
        die("epoll_ctl");
    timer_wheel_init(&sh->wheel, now_ns(), TIMER_TICK_SHIFT);
    pthread_barrier_wait(&start_barrier);
    app_main(app_argc, app_argv);
    reactor_run(sh);
}

static unsigned shards_from_env(unsigned dflt)
{
    const char *s = getenv("SHOAL_SHARDS");
    if (!s || !*s)
        return dflt;
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < 1 || v > 4096) {
        fprintf(stderr, "shoal-linux: SHOAL_SHARDS=%s is not a shard count (1..4096)\n", s);
        exit(2);
    }
    return (unsigned)v;
}

int main(int argc, char **argv)
{
    start_ns = now_ns();
    app_argc = argc;
    app_argv = argv;
    signal(SIGPIPE, SIG_IGN);

    cpu_set_t mask;
    int cpus[CPU_SETSIZE], ncpus = 0;
    if (sched_getaffinity(0, sizeof mask, &mask) == 0)
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &mask))
                cpus[ncpus++] = c;
    lx_nshards = shards_from_env(ncpus > 0 ? (unsigned)ncpus : 1);

    /* Shard threads inherit this mask; the main thread takes the signals. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, 0);

    if (posix_memalign((void **)&lx_shards, 64, lx_nshards * sizeof *lx_shards))
        die("shards");
    memset(lx_shards, 0, lx_nshards * sizeof *lx_shards);
    pthread_barrier_init(&start_barrier, 0, lx_nshards);
    for (unsigned i = 0; i < lx_nshards; i++) {
        struct lx_shard *sh = &lx_shards[i];
        sh->id = i;
        sh->cpu = ncpus > 0 ? cpus[i % (unsigned)ncpus] : -1;
        sh->epfd = sh->evfd = -1;
        pthread_mutex_init(&sh->mq_lock, 0);
    }
    for (unsigned i = 0; i < lx_nshards; i++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, 8u << 20);
        errno = pthread_create(&lx_shards[i].thread, &attr, shard_main, &lx_shards[i]);
        if (errno)
            die("pthread_create");
        pthread_attr_destroy(&attr);
    }
    for (;;) {
        int sig;
        if (sigwait(&sigs, &sig) == 0 && (sig == SIGINT || sig == SIGTERM))
            exit(0);
    }
}

void shoal_exit(int status)
{
    fflush(0);
    _exit(status);
}

/* ---- memory ---- */

size_t shoal_heap_bytes_in_use(void)
{
    /* glibc's heap is shared by the threads: this is the process's figure. */
    return mallinfo2().uordblks;
}

void shoal_flush_remote_frees(void) {}

/* ---- console ---- */

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Formats into buf, or into a heap buffer when it does not fit; returns the text and its length. */
static char *format(char *buf, size_t size, size_t reserve, size_t *len, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(buf, size - reserve, fmt, ap);
    char *out = buf;
    if (n >= 0 && (size_t)n >= size - reserve) {
        char *big = malloc((size_t)n + 1 + reserve);
        if (big) {
            vsnprintf(big, (size_t)n + 1, fmt, ap2);
            out = big;
        } else {
            n = (int)(size - reserve - 1);
        }
    }
    va_end(ap2);
    *len = n < 0 ? 0 : (size_t)n;
    return out;
}

void shoal_print(const char *fmt, ...)
{
    char line[1024];
    size_t n;
    va_list ap;
    va_start(ap, fmt);
    char *text = format(line, sizeof line, 0, &n, fmt, ap);
    va_end(ap);
    write_all(1, text, n);
    if (text != line)
        free(text);
}

/* "[shard seconds.micro] text\n" like the kernel's klog, one write per line. */
void shoal_log(const char *fmt, ...)
{
    char line[1024];
    uint64_t ns = now_ns() - start_ns;
    int p = snprintf(line, sizeof line, "[%u %lu.%06lu] ", shard_id(), (unsigned long)(ns / 1000000000u),
                     (unsigned long)(ns / 1000u % 1000000u));
    size_t n;
    va_list ap;
    va_start(ap, fmt);
    char *text = format(line + p, sizeof line - (size_t)p, 1, &n, fmt, ap);
    va_end(ap);
    if (text == line + p) {
        line[p + n] = '\n';
        write_all(2, line, (size_t)p + n + 1);
    } else {
        /* Too long for the stack buffer: the prefix, then the heap copy with its newline. */
        char *all = malloc((size_t)p + n + 1);
        if (all) {
            memcpy(all, line, (size_t)p);
            memcpy(all + p, text, n);
            all[p + n] = '\n';
            write_all(2, all, (size_t)p + n + 1);
            free(all);
        }
        free(text);
    }
}

void shoal_reactor_stats(unsigned shard, struct shoal_reactor_stats *out)
{
    if (shard >= lx_nshards) {
        *out = (struct shoal_reactor_stats){ 0 };
        return;
    }
    const struct shoal_reactor_stats *s = &lx_shards[shard].stats;
    *out = (struct shoal_reactor_stats){
        __atomic_load_n(&s->loops, __ATOMIC_RELAXED),       __atomic_load_n(&s->tasks, __ATOMIC_RELAXED),
        __atomic_load_n(&s->messages, __ATOMIC_RELAXED),    __atomic_load_n(&s->timers, __ATOMIC_RELAXED),
        __atomic_load_n(&s->halts, __ATOMIC_RELAXED),       __atomic_load_n(&s->busy_cycles, __ATOMIC_RELAXED),
        __atomic_load_n(&s->idle_cycles, __ATOMIC_RELAXED),
    };
}

/* ---- raw Ethernet: there is no device of our own on Linux ---- */

bool shoal_l2_info(struct shoal_l2_info *out)
{
    (void)out;
    return false;
}
void shoal_l2_set_handler(void (*fn)(struct netbuf *, void *), void *arg) { (void)fn, (void)arg; }
void shoal_l2_set_steering(bool on) { (void)on; }
bool shoal_l2_send(struct netbuf *frame)
{
    netbuf_free(frame);     /* nowhere to send it: the frame is consumed, as on a device that dropped it */
    return false;
}
void shoal_l2_stats(unsigned shard, struct shoal_l2_stats *out)
{
    (void)shard;
    *out = (struct shoal_l2_stats){ 0 };
}

/* ---- block devices: none ---- */

unsigned shoal_blk_count(void) { return 0; }
bool shoal_blk_info(unsigned dev, struct shoal_blk_info *out)
{
    (void)dev, (void)out;
    return false;
}
int shoal_blk_read(unsigned dev, struct shoal_blk_req *req, uint64_t offset, void *buf, uint32_t len,
                   shoal_blk_done_fn done, void *arg)
{
    (void)dev, (void)req, (void)offset, (void)buf, (void)len, (void)done, (void)arg;
    return SHOAL_BLK_ENODEV;
}
int shoal_blk_write(unsigned dev, struct shoal_blk_req *req, uint64_t offset, const void *buf, uint32_t len,
                    shoal_blk_done_fn done, void *arg)
{
    (void)dev, (void)req, (void)offset, (void)buf, (void)len, (void)done, (void)arg;
    return SHOAL_BLK_ENODEV;
}
int shoal_blk_flush(unsigned dev, struct shoal_blk_req *req, shoal_blk_done_fn done, void *arg)
{
    (void)dev, (void)req, (void)done, (void)arg;
    return SHOAL_BLK_ENODEV;
}
int shoal_blk_discard(unsigned dev, struct shoal_blk_req *req, uint64_t offset, uint64_t len,
                      shoal_blk_done_fn done, void *arg)
{
    (void)dev, (void)req, (void)offset, (void)len, (void)done, (void)arg;
    return SHOAL_BLK_ENODEV;
}

/* The same sentences as the kernel's (drivers/blkdev.c is host code too). */
const char *shoal_blk_strerror(int status) { return blkdev_strerror(status); }
