/*
 * blkread: the Linux-guest counterpart of apps/blkbench, for
 * tests/bench/virtio.py. Runs inside the benchmark's Linux guest.
 *
 *     blkread [DEV] [depth=N] [seconds=S] [seq_mb=M] [seq_depth=N]
 *
 * Two phases, each run by one thread per online CPU (pinned), every
 * thread with its own Linux AIO context (io_submit/io_getevents, the
 * kernel's native asynchronous O_DIRECT path) and N requests in flight:
 *
 *   rand4k  4 KiB reads at random 4 KiB-aligned offsets of the whole
 *           device, for S seconds (default 3), depth 32 per thread;
 *   seq1m   1 MiB reads for S seconds: the first M MiB of the device
 *           (default 256, at most the device) are split into one
 *           contiguous part per thread, which the thread reads in order,
 *           again from its start when it reaches its end, seq_depth
 *           (default 4) in flight per thread.
 *
 * Each phase prints a line when it starts and one when it ends, so the
 * host can time it by the console as well:
 *     blkread: rand4k start
 *     blkread: rand4k done reads=N seconds=T iops=X
 *     blkread: seq1m start
 *     blkread: seq1m done bytes=B seconds=T mbps=Y
 * Exits 0, or 1 with a message on any I/O error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/fs.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define MAX_DEPTH 256
#define RAND_SIZE 4096u
#define SEQ_SIZE (1u << 20)

enum phase { RAND, SEQ };

struct worker {
    pthread_t thread;
    int cpu;
    enum phase phase;
    uint64_t ops, bytes;
    uint64_t seq_first, seq_end;   /* byte range for SEQ */
};

static const char *dev = "/dev/vda";
static int fd;
static uint64_t dev_bytes;
static unsigned depth = 32, seq_depth = 4;
static double seconds = 3;
static uint64_t seq_mb = 256;
static struct worker workers[MAX_THREADS];
static int nworkers;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void fail(const char *what, long err)
{
    fprintf(stdout, "blkread: FAILED: %s: %s\n", what, strerror(err < 0 ? (int)-err : errno));
    fflush(stdout);
    exit(1);
}

static uint64_t next_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w->cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);

    unsigned d = w->phase == RAND ? depth : seq_depth;
    uint32_t size = w->phase == RAND ? RAND_SIZE : SEQ_SIZE;
    aio_context_t ctx = 0;
    long r = syscall(SYS_io_setup, d, &ctx);
    if (r < 0)
        fail("io_setup", -errno);
    static _Thread_local struct iocb cbs[MAX_DEPTH];
    static _Thread_local struct iocb *ptrs[MAX_DEPTH];
    static _Thread_local struct io_event events[MAX_DEPTH];
    uint8_t *buf;
    if (posix_memalign((void **)&buf, 4096, (size_t)d * size))
        fail("posix_memalign", -ENOMEM);

    uint64_t seed = 0x9E3779B97F4A7C15ULL * (w->cpu + 1);
    uint64_t blocks = dev_bytes / RAND_SIZE;
    uint64_t next = w->seq_first;
    double deadline = now() + seconds;
    unsigned inflight = 0;
    int stop = 0;

    /* Slots (cbs[k], buffer k) are free while their aio_data is 0. */
    for (;;) {
        unsigned n = 0;
        while (!stop && inflight + n < d) {
            uint64_t off;
            if (w->phase == RAND) {
                off = (next_rand(&seed) % blocks) * RAND_SIZE;
            } else {
                if (next >= w->seq_end)
                    next = w->seq_first;
                off = next;
                next += size;
            }
            struct iocb *cb = NULL;
            for (unsigned k = 0; k < d; k++)
                if (cbs[k].aio_data == 0) {
                    cb = &cbs[k];
                    memset(cb, 0, sizeof *cb);
                    cb->aio_data = k + 1;
                    cb->aio_fildes = fd;
                    cb->aio_lio_opcode = IOCB_CMD_PREAD;
                    cb->aio_buf = (uint64_t)(uintptr_t)(buf + (size_t)k * size);
                    cb->aio_nbytes = w->phase == SEQ && off + size > w->seq_end ? w->seq_end - off : size;
                    cb->aio_offset = off;
                    break;
                }
            if (!cb)
                break;
            ptrs[n++] = cb;
        }
        if (n) {
            unsigned sent = 0;
            while (sent < n) {
                r = syscall(SYS_io_submit, ctx, n - sent, ptrs + sent);
                if (r < 0) {
                    if (errno == EAGAIN || errno == EINTR)
                        continue;
                    fail("io_submit", -errno);
                }
                sent += r;
            }
            inflight += n;
        }
        if (!inflight)
            break;
        r = syscall(SYS_io_getevents, ctx, 1, d, events, NULL);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            fail("io_getevents", -errno);
        }
        for (long e = 0; e < r; e++) {
            struct iocb *cb = (struct iocb *)(uintptr_t)events[e].obj;
            if ((long long)events[e].res < 0)
                fail("read", (long)events[e].res);
            w->ops++;
            w->bytes += events[e].res;
            cb->aio_data = 0;
            inflight--;
        }
        if (!stop && now() >= deadline)
            stop = 1;
    }
    syscall(SYS_io_destroy, ctx);
    free(buf);
    return NULL;
}

static void run_phase(enum phase p)
{
    uint64_t seq_bytes = seq_mb << 20;
    if (seq_bytes > dev_bytes)
        seq_bytes = dev_bytes & ~(uint64_t)(RAND_SIZE - 1);
    for (int i = 0; i < nworkers; i++) {
        workers[i].phase = p;
        workers[i].ops = workers[i].bytes = 0;
        /* contiguous parts, boundaries on 1 MiB */
        workers[i].seq_first = (seq_bytes / SEQ_SIZE * i / nworkers) * SEQ_SIZE;
        workers[i].seq_end = i + 1 == nworkers ? seq_bytes : (seq_bytes / SEQ_SIZE * (i + 1) / nworkers) * SEQ_SIZE;
    }
    printf("blkread: %s start\n", p == RAND ? "rand4k" : "seq1m");
    fflush(stdout);
    double t0 = now();
    for (int i = 0; i < nworkers; i++)
        if (pthread_create(&workers[i].thread, NULL, work, &workers[i]) != 0)
            fail("pthread_create", -errno);
    uint64_t ops = 0, bytes = 0;
    for (int i = 0; i < nworkers; i++) {
        pthread_join(workers[i].thread, NULL);
        ops += workers[i].ops;
        bytes += workers[i].bytes;
    }
    double t = now() - t0;
    if (p == RAND)
        printf("blkread: rand4k done reads=%llu seconds=%.3f iops=%.0f\n", (unsigned long long)ops, t, ops / t);
    else
        printf("blkread: seq1m done bytes=%llu seconds=%.3f mbps=%.1f\n", (unsigned long long)bytes, t,
               bytes / t / 1e6);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "depth=", 6))
            depth = atoi(argv[i] + 6);
        else if (!strncmp(argv[i], "seconds=", 8))
            seconds = atof(argv[i] + 8);
        else if (!strncmp(argv[i], "seq_mb=", 7))
            seq_mb = strtoull(argv[i] + 7, NULL, 0);
        else if (!strncmp(argv[i], "seq_depth=", 10))
            seq_depth = atoi(argv[i] + 10);
        else
            dev = argv[i];
    }
    if (depth < 1 || depth > MAX_DEPTH || seq_depth < 1 || seq_depth > MAX_DEPTH)
        fail("depth out of range", -EINVAL);
    fd = open(dev, O_RDONLY | O_DIRECT);
    if (fd < 0)
        fail(dev, -errno);
    if (ioctl(fd, BLKGETSIZE64, &dev_bytes) < 0)
        fail("BLKGETSIZE64", -errno);
    if (dev_bytes < SEQ_SIZE)
        fail("device smaller than 1 MiB", -EINVAL);
    cpu_set_t set;
    sched_getaffinity(0, sizeof set, &set);
    for (int cpu = 0; cpu < CPU_SETSIZE && nworkers < MAX_THREADS; cpu++)
        if (CPU_ISSET(cpu, &set))
            workers[nworkers++].cpu = cpu;
    printf("blkread: %s, %llu bytes, %d thread%s, depth %u (4 KiB) / %u (1 MiB)\n", dev,
           (unsigned long long)dev_bytes, nworkers, nworkers == 1 ? "" : "s", depth, seq_depth);
    run_phase(RAND);
    run_phase(SEQ);
    return 0;
}
