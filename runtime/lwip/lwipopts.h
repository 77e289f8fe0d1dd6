/*
 * lwIP 2.1.3 options for the Shoal baseline image (runtime/lwip/): bare
 * metal (NO_SYS), raw API only, one netif, on shard 0. Values follow
 * /work/shared/notes/lwip-baseline.md §5.3: a fair, not a crippled, lwIP.
 */
#ifndef SHOAL_LWIPOPTS_H
#define SHOAL_LWIPOPTS_H

/* No threads: every lwIP call happens in shard 0's reactor, so nothing locks. */
#define NO_SYS                      1
#define SYS_LIGHTWEIGHT_PROT        0
#define LWIP_SOCKET                 0
#define LWIP_NETCONN                0
#define LWIP_TIMERS                 1

/* Memory: the heap and every pool come from Shoal's per-shard malloc, so the
   PCB, segment and pbuf counts below are soft (no fixed arrays): 1000s of
   connections fit as long as shard 0's memory does. */
#define MEM_ALIGNMENT               8
#define MEM_LIBC_MALLOC             1
#define MEMP_MEM_MALLOC             1
#define MEMP_NUM_TCP_PCB            16384
#define MEMP_NUM_TCP_PCB_LISTEN     8
#define MEMP_NUM_TCP_SEG            65535
#define MEMP_NUM_UDP_PCB            16
#define PBUF_POOL_SIZE              8192

/* Protocols: IPv4 over Ethernet with ARP, ICMP, UDP, TCP; static address only. */
#define LWIP_IPV4                   1
#define LWIP_IPV6                   0
#define LWIP_ARP                    1
#define LWIP_ETHERNET               1
#define LWIP_ICMP                   1
#define LWIP_RAW                    0
#define LWIP_UDP                    1
#define LWIP_TCP                    1
#define LWIP_DHCP                   0
#define LWIP_AUTOIP                 0
#define LWIP_IGMP                   0
#define LWIP_DNS                    0
#define IP_REASSEMBLY               1
#define IP_FRAG                     1
#define ARP_TABLE_SIZE              64
#define ARP_QUEUEING                1
#define LWIP_SINGLE_NETIF           1
#define LWIP_NETIF_LOOPBACK         0
#define LWIP_HAVE_LOOPIF            0

/* TCP: full-size segments, 128 KiB windows with scaling, receiver SACK,
   timestamps, a bounded accept backlog. lwIP's congestion control is Reno. */
#define TCP_MSS                     1460
#define LWIP_WND_SCALE              1
#define TCP_RCV_SCALE               2
#define TCP_WND                     (128 * 1024)
#define TCP_SND_BUF                 (128 * 1024)
#define TCP_SND_QUEUELEN            ((4 * (TCP_SND_BUF) + (TCP_MSS - 1)) / (TCP_MSS))
/* init.c wants the low-water mark well under 64 KiB even with window scaling. */
#define TCP_SNDLOWAT                (32 * 1024)
#define TCP_QUEUE_OOSEQ             1
#define LWIP_TCP_SACK_OUT           1
#define LWIP_TCP_TIMESTAMPS         1
#define TCP_LISTEN_BACKLOG          1
#define TCP_DEFAULT_LISTEN_BACKLOG  0xff
#define LWIP_TCP_KEEPALIVE          0
#define LWIP_CALLBACK_API           1

/* Checksums are computed and checked in software by lwIP (no virtio offload:
   lwIP cannot fill virtio's partial checksums); folded into the copy on send. */
#define CHECKSUM_GEN_IP             1
#define CHECKSUM_GEN_UDP            1
#define CHECKSUM_GEN_TCP            1
#define CHECKSUM_GEN_ICMP           1
#define CHECKSUM_CHECK_IP           1
#define CHECKSUM_CHECK_UDP          1
#define CHECKSUM_CHECK_TCP          1
#define CHECKSUM_CHECK_ICMP         1
#define LWIP_CHECKSUM_ON_COPY       1

/* No counters or debug output on the benchmark path. */
#define LWIP_STATS                  0
#define LWIP_STATS_DISPLAY          0
#define LWIP_DEBUG                  0

/* Ephemeral ports start at a random point. */
#define LWIP_RAND()                 shoal_lwip_rand()

#include "lwip_names.h"

#endif
