/*
 * l2reflect: the Linux-guest counterpart of apps/l2echo, for
 * tests/bench/virtio.py. Runs inside the benchmark's Linux guest.
 *
 *     l2reflect [IFNAME]        (default eth0)
 *
 * One thread per online CPU, each pinned to its CPU with its own AF_PACKET
 * raw socket; with more than one thread the sockets form a PACKET_FANOUT
 * group split by receive queue (PACKET_FANOUT_QM), so frames that arrived
 * on queue i are reflected by thread i, whose sends leave (through XPS) on
 * its own CPU's transmit queue. Every frame received is sent back with
 * source and destination MAC swapped, in batches (recvmmsg/sendmmsg).
 *
 * The interface is put in promiscuous mode so that frames addressed to
 * another MAC reach the socket while the IP stack drops them at once
 * (PACKET_OTHERHOST).
 *
 * A frame of EtherType 0x88B5 whose payload starts with "l2echo:exit" is
 * not reflected: the thread that gets it prints every thread's count and
 * the process exits 0.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define FRAME_MAX 2048
#define MAX_THREADS 64
#define ETHERTYPE_CONTROL 0x88B5

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

struct worker {
    pthread_t thread;
    int cpu;
    int fd;
    _Atomic unsigned long reflected, send_failed;
};

static struct worker workers[MAX_THREADS];
static int nworkers;
static int ifindex;

static void die(const char *what)
{
    fprintf(stderr, "l2reflect: %s: %s\n", what, strerror(errno));
    exit(2);
}

static int is_control(const unsigned char *f, unsigned len)
{
    return len >= 14 + 11 && (f[12] << 8 | f[13]) == ETHERTYPE_CONTROL && memcmp(f + 14, "l2echo:exit", 11) == 0;
}

static void report_and_exit(void)
{
    unsigned long total = 0;
    for (int i = 0; i < nworkers; i++) {
        unsigned long n = atomic_load(&workers[i].reflected);
        printf("l2reflect: thread %d (cpu %d) reflected %lu frames, %lu send failures\n", i, workers[i].cpu, n,
               atomic_load(&workers[i].send_failed));
        total += n;
    }
    printf("l2reflect: %lu frames reflected in total\n", total);
    fflush(stdout);
    _exit(0);
}

static int open_socket(int fanout_group)
{
    int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (fd < 0)
        die("socket");
    int one = 1, rcvbuf = 8 << 20;
    if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) < 0)
        die("PACKET_IGNORE_OUTGOING");
    /* Beyond net.core.rmem_max (we are root): a default-sized buffer overflows with 256 large frames in flight. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL), .sll_ifindex = ifindex };
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0)
        die("bind");
    struct packet_mreq mr = { .mr_ifindex = ifindex, .mr_type = PACKET_MR_PROMISC };
    if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0)
        die("PACKET_MR_PROMISC");
    if (fanout_group >= 0) {
        int arg = fanout_group | (PACKET_FANOUT_QM << 16);
        if (setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) < 0)
            die("PACKET_FANOUT");
    }
    return fd;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    static _Thread_local unsigned char bufs[BATCH][FRAME_MAX];
    struct mmsghdr rx[BATCH], tx[BATCH];
    struct iovec rxv[BATCH], txv[BATCH];
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w->cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    for (int i = 0; i < BATCH; i++) {
        rxv[i] = (struct iovec){ bufs[i], FRAME_MAX };
        rx[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &rxv[i], .msg_iovlen = 1 } };
    }
    for (;;) {
        int n = recvmmsg(w->fd, rx, BATCH, MSG_WAITFORONE, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("recvmmsg");
        }
        int m = 0;
        for (int i = 0; i < n; i++) {
            unsigned char *f = bufs[i];
            unsigned len = rx[i].msg_len;
            if (len < 14 || (rx[i].msg_hdr.msg_flags & MSG_TRUNC))
                continue;
            if (is_control(f, len))
                report_and_exit();
            unsigned char tmp[6];
            memcpy(tmp, f, 6);
            memcpy(f, f + 6, 6);
            memcpy(f + 6, tmp, 6);
            txv[m] = (struct iovec){ f, len };
            tx[m] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &txv[m], .msg_iovlen = 1 } };
            m++;
        }
        int done = 0, tries = 0;
        while (done < m && tries < 100) {
            int k = sendmmsg(w->fd, tx + done, m - done, 0);
            if (k < 0) {
                if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR)
                    die("sendmmsg");
                tries++;
                sched_yield();
                continue;
            }
            done += k;
        }
        atomic_fetch_add(&w->reflected, done);
        if (done < m)
            atomic_fetch_add(&w->send_failed, m - done);
        for (int i = 0; i < n; i++)
            rx[i].msg_hdr.msg_flags = 0;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *ifname = argc > 1 ? argv[1] : "eth0";
    ifindex = if_nametoindex(ifname);
    if (!ifindex)
        die(ifname);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) < 0)
        die("sched_getaffinity");
    for (int cpu = 0; cpu < CPU_SETSIZE && nworkers < MAX_THREADS; cpu++)
        if (CPU_ISSET(cpu, &set))
            workers[nworkers++].cpu = cpu;
    int group = nworkers > 1 ? (getpid() & 0xffff) : -1;
    for (int i = 0; i < nworkers; i++)
        workers[i].fd = open_socket(group);
    printf("l2reflect: ready on %s, %d thread%s%s\n", ifname, nworkers, nworkers == 1 ? "" : "s",
           nworkers > 1 ? ", fanout by receive queue" : "");
    fflush(stdout);
    for (int i = 1; i < nworkers; i++)
        if (pthread_create(&workers[i].thread, NULL, work, &workers[i]) != 0)
            die("pthread_create");
    work(&workers[0]);
    return 0;
}
