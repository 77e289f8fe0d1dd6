/*
 * The network interface as the shards see it. Every shard has a struct
 * netif_shard: shards 0..nqueues-1 poll their own device queue pair;
 * every received frame is steered to the shard that owns its flow
 * (flow_shard of its Toeplitz hash) and handed over by message when that
 * is another shard. Frames a shard without a queue sends go to a queue
 * owner by message. The frame handler (the IP stack, or an app that
 * works at L2) runs on the owning shard.
 */
#ifndef NET_NETIF_H
#define NET_NETIF_H
#include <stdbool.h>
#include <stdint.h>
#include "../drivers/netdev.h"
#include "../kernel/task.h"

#define NETIF_BURST 32

struct net_stack;
typedef void (*netif_rx_fn)(struct netbuf *frame, void *arg);

struct netif_stats {
    uint64_t rx_frames, tx_frames;
    uint64_t steered_out, steered_in;   /* frames handed to / from other shards */
    uint64_t tx_forwarded;              /* sent through another shard's queue */
    uint64_t rx_no_handler, tx_dropped;
};

struct netif_shard {
    struct poller poller;
    struct netdev *dev;
    unsigned shard;
    bool has_queue;
    bool device_steers;          /* RSS with our table on a queue per shard: frames arrive at their owner */
    netif_rx_fn rx;
    void *rx_arg;
    struct net_stack *stack;     /* this shard's IPv4 stack (net_kernel.c) */
    struct netif_stats stats;
};

/* Boot, BSP, after the drivers registered their devices: set up every shard. */
void netif_init(void);

/* This shard's interface, or NULL when there is no network device. */
struct netif_shard *netif_this(void);
/* Frames that land on this shard go to fn (replacing the previous handler). */
void netif_set_handler(netif_rx_fn fn, void *arg);
/* Steer received frames to their flow's owner (on by default when some shards have no queue). */
void netif_set_steering(bool on);
/* Every flow must reach its owning shard: steer in software unless the device already does
   (hashing each frame again would only find the shard it is on). */
void netif_steer_flows(void);
/* Send one frame (ownership passes); false if it had to be dropped. */
bool netif_send(struct netbuf *frame);
/* Counters of shard s (read without synchronisation: for reports). */
void netif_get_stats(unsigned shard, struct netif_stats *out);
#endif
