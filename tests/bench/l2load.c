/*
 * l2load: the load generator of tests/bench/virtio.py. Sends Ethernet
 * frames into a tap device from an AF_PACKET socket and counts the frames
 * a guest reflects (source and destination MAC swapped), keeping a fixed
 * number of frames in flight. Built on the host by virtio.py:
 *     gcc -O2 -o build/bench/l2load tests/bench/l2load.c
 *
 *     l2load IFNAME [size=60] [window=256] [flows=256] [warmup=0.5]
 *            [seconds=3] [max_frames=20000000] [exit]
 *
 * Frames are IPv4/UDP from `flows` flows (source address and port vary, so
 * the tap and the device's RSS spread them over queues), each carrying its
 * sequence number; size is the frame without FCS (60 = a 64-byte frame on
 * the wire, 1514 = a 1500-byte IP packet). The destination MAC is a unicast
 * address that belongs to nobody (02:56:aa:bb:cc:02): a guest in
 * promiscuous mode gets the frames and its IP stack ignores them.
 *
 * After `warmup` seconds of load, the reflected frames of the next `seconds`
 * seconds are counted. A frame not back after 250 ms of silence is counted
 * lost and its window slot reused. Everything is bounded: at most
 * max_frames frames, warmup + seconds + 0.3 s of wall time. With
 * `exit`, finally sends the l2echo control frame that stops the guest.
 *
 * Prints one JSON line: {"size":..,"sent":..,"received":..,"lost":..,
 * "lost_measured":.. (of those, lost while measuring), "bad":..,
 * "measured":.. (frames back while measuring),"seconds":..,"fps":..}
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define BATCH 64
#define RING (1u << 16)           /* sequence numbers tracked; > window */
#define FRAME_MAX 1514
#define SEQ_OFF (14 + 20 + 8)

static const uint8_t MY_MAC[6] = { 0x02, 0x56, 0xaa, 0xbb, 0xcc, 0x01 };
static const uint8_t DST_MAC[6] = { 0x02, 0x56, 0xaa, 0xbb, 0xcc, 0x02 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint16_t ip_checksum(const uint8_t *h, int n)
{
    uint32_t s = 0;
    for (int i = 0; i < n; i += 2)
        s += h[i] << 8 | h[i + 1];
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return ~s & 0xffff;
}

static void build(uint8_t *f, unsigned size, unsigned flow)
{
    memset(f, 0, size);
    memcpy(f, DST_MAC, 6);
    memcpy(f + 6, MY_MAC, 6);
    f[12] = 0x08;
    f[13] = 0x00;
    uint8_t *ip = f + 14;
    unsigned ip_len = size - 14, udp_len = ip_len - 20;
    ip[0] = 0x45;
    ip[2] = ip_len >> 8;
    ip[3] = ip_len & 0xff;
    ip[8] = 64;
    ip[9] = 17;
    ip[12] = 10; ip[13] = 77; ip[14] = flow >> 8; ip[15] = flow & 0xff;
    ip[16] = 10; ip[17] = 77; ip[18] = 255; ip[19] = 1;
    uint16_t c = ip_checksum(ip, 20);
    ip[10] = c >> 8;
    ip[11] = c & 0xff;
    uint8_t *udp = ip + 20;
    unsigned sport = 10000 + flow;
    udp[0] = sport >> 8; udp[1] = sport & 0xff;
    udp[2] = 0; udp[3] = 7;
    udp[4] = udp_len >> 8; udp[5] = udp_len & 0xff;
    for (unsigned i = SEQ_OFF + 8; i < size; i++)
        f[i] = i & 0xff;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: l2load IFNAME [size=60] [window=256] [flows=256] [warmup=S] [seconds=S] [max_frames=N] [exit]\n");
        return 2;
    }
    const char *ifname = argv[1];
    unsigned size = 60, window = 256, flows = 256;
    double warmup = 0.5, seconds = 3;
    unsigned long max_frames = 20000000;
    int do_exit = 0;
    for (int i = 2; i < argc; i++) {
        char *a = argv[i];
        if (!strncmp(a, "size=", 5)) size = atoi(a + 5);
        else if (!strncmp(a, "window=", 7)) window = atoi(a + 7);
        else if (!strncmp(a, "flows=", 6)) flows = atoi(a + 6);
        else if (!strncmp(a, "warmup=", 7)) warmup = atof(a + 7);
        else if (!strncmp(a, "seconds=", 8)) seconds = atof(a + 8);
        else if (!strncmp(a, "max_frames=", 11)) max_frames = strtoul(a + 11, NULL, 0);
        else if (!strcmp(a, "exit")) do_exit = 1;
        else { fprintf(stderr, "l2load: unknown argument %s\n", a); return 2; }
    }
    if (size < SEQ_OFF + 8 || size > FRAME_MAX || window < 1 || window >= RING / 2 || flows < 1 || flows > 65535) {
        fprintf(stderr, "l2load: size must be %d..%d, window < %u, flows 1..65535\n", SEQ_OFF + 8, FRAME_MAX, RING / 2);
        return 2;
    }

    int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (fd < 0) { perror("l2load: socket"); return 2; }
    int one = 1, buf = 8 << 20;
    setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
    /* Beyond net.core.rmem_max where we may (root), so that a full window of large frames fits. */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof buf) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof buf) < 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                               .sll_ifindex = (int)if_nametoindex(ifname) };
    if (!sll.sll_ifindex || bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
        perror("l2load: bind");
        return 2;
    }

    uint8_t *templates = malloc((size_t)flows * size);
    for (unsigned fl = 0; fl < flows; fl++)
        build(templates + (size_t)fl * size, size, fl);
    uint64_t *inflight_seq = calloc(RING, sizeof *inflight_seq);    /* seq+1 while in flight */
    static uint8_t txbuf[BATCH][FRAME_MAX], rxbuf[BATCH][FRAME_MAX + 64];
    struct mmsghdr tx[BATCH], rx[BATCH];
    struct iovec txv[BATCH], rxv[BATCH];
    for (int i = 0; i < BATCH; i++) {
        rxv[i] = (struct iovec){ rxbuf[i], sizeof rxbuf[i] };
        rx[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &rxv[i], .msg_iovlen = 1 } };
    }

    uint64_t next_seq = 0, sent = 0, received = 0, lost = 0, lost_measured = 0, bad = 0, measured = 0;
    unsigned inflight = 0;
    double t0 = now(), t_measure = t0 + warmup, t_end = t_measure + seconds;
    double last_rx = t0, measured_from = 0, measured_to = 0;
    int measuring = 0;

    for (;;) {
        double t = now();
        if (!measuring && t >= t_measure) {
            measuring = 1;
            measured_from = t;
        }
        if (t >= t_end)
            break;
        /* fill the window */
        unsigned n = 0;
        while (inflight + n < window && n < BATCH && sent + n < max_frames) {
            uint64_t seq = next_seq++;
            unsigned fl = seq % flows;
            memcpy(txbuf[n], templates + (size_t)fl * size, size);
            memcpy(txbuf[n] + SEQ_OFF, &seq, 8);
            inflight_seq[seq & (RING - 1)] = seq + 1;
            txv[n] = (struct iovec){ txbuf[n], size };
            tx[n] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &txv[n], .msg_iovlen = 1 } };
            n++;
        }
        if (n) {
            int k = sendmmsg(fd, tx, n, MSG_DONTWAIT);
            if (k < 0)
                k = 0;
            /* frames that did not go out are not in flight */
            for (unsigned i = k; i < n; i++) {
                uint64_t seq;
                memcpy(&seq, txbuf[i] + SEQ_OFF, 8);
                inflight_seq[seq & (RING - 1)] = 0;
            }
            sent += k;
            inflight += k;
        }
        if (sent >= max_frames && inflight == 0)
            break;
        /* collect what came back */
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, inflight >= window || n == 0 ? 10 : 0) <= 0) {
            if (inflight && now() - last_rx > 0.25) {
                lost += inflight;
                if (measuring)
                    lost_measured += inflight;
                inflight = 0;
                memset(inflight_seq, 0, RING * sizeof *inflight_seq);
                last_rx = now();
            }
            continue;
        }
        int r = recvmmsg(fd, rx, BATCH, MSG_DONTWAIT, NULL);
        if (r <= 0)
            continue;
        for (int i = 0; i < r; i++) {
            uint8_t *f = rxbuf[i];
            unsigned len = rx[i].msg_len;
            if (len < SEQ_OFF + 8 || memcmp(f, MY_MAC, 6) != 0 || f[12] != 0x08 || f[13] != 0x00)
                continue;
            uint64_t seq;
            memcpy(&seq, f + SEQ_OFF, 8);
            uint64_t *slot = &inflight_seq[seq & (RING - 1)];
            if (*slot != seq + 1)
                continue;       /* a frame declared lost that came back late, or a stranger */
            *slot = 0;
            inflight--;
            received++;
            if (len != size || memcmp(f + 6, DST_MAC, 6) != 0)
                bad++;
            if (measuring)
                measured++;
        }
        last_rx = now();
    }
    measured_to = now();
    if (!measuring)
        measured_from = measured_to;
    /* let the last frames come back, briefly, so the guest is quiet before it is stopped */
    double drain_end = now() + 0.3;
    while (inflight && now() < drain_end) {
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, 20) <= 0)
            continue;
        int r = recvmmsg(fd, rx, BATCH, MSG_DONTWAIT, NULL);
        for (int i = 0; i < r; i++) {
            uint64_t seq;
            if (rx[i].msg_len < SEQ_OFF + 8 || memcmp(rxbuf[i], MY_MAC, 6) != 0)
                continue;
            memcpy(&seq, rxbuf[i] + SEQ_OFF, 8);
            if (inflight_seq[seq & (RING - 1)] == seq + 1) {
                inflight_seq[seq & (RING - 1)] = 0;
                inflight--;
                received++;
            }
        }
    }
    lost += inflight;
    if (do_exit) {
        uint8_t f[60] = { 0 };
        memcpy(f, DST_MAC, 6);
        memcpy(f + 6, MY_MAC, 6);
        f[12] = 0x88;
        f[13] = 0xB5;
        memcpy(f + 14, "l2echo:exit", 11);
        send(fd, f, sizeof f, 0);
    }
    double span = measured_to - measured_from;
    printf("{\"size\": %u, \"sent\": %llu, \"received\": %llu, \"lost\": %llu, \"lost_measured\": %llu, "
           "\"bad\": %llu, \"measured\": %llu, \"seconds\": %.3f, \"fps\": %.0f}\n",
           size, (unsigned long long)sent, (unsigned long long)received, (unsigned long long)lost,
           (unsigned long long)lost_measured,
           (unsigned long long)bad, (unsigned long long)measured, span, span > 0 ? measured / span : 0.0);
    return 0;
}
