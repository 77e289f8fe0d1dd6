/*
 * The Shoal runtime API: what applications program against. Everything is
 * per shard (one shard per vCPU); callbacks run to completion on the shard
 * that owns the object and never block. An application provides
 *     void app_main(int argc, char **argv);
 * which runs once on every shard after all shards are up.
 */
#ifndef SHOAL_H
#define SHOAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../kernel/task.h"
#include "../kernel/timer_wheel.h"

void app_main(int argc, char **argv);

/* Shards */
unsigned shard_id(void);
unsigned shard_count(void);

/* Cross-shard calls: fn(arg) runs on `shard` soon, in its reactor. */
void smp_call(unsigned shard, void (*fn)(void *), void *arg);
bool smp_try_call(unsigned shard, void (*fn)(void *), void *arg);

/* Tasks: intrusive, scheduling allocates nothing. */
void task_schedule(struct task *t);

/* Timers on this shard. Deadlines are absolute now_ns() values. */
uint64_t now_ns(void);       /* monotonic */
uint64_t wall_ns(void);      /* Unix time */
void shoal_timer_init(struct timer *t, void (*fn)(struct timer *));
void shoal_timer_arm(struct timer *t, uint64_t deadline_ns);
bool shoal_timer_cancel(struct timer *t);

/* Memory: per-shard heaps; freeing another shard's memory is allowed. */
void *malloc(size_t size);
void free(void *p);
void *calloc(size_t n, size_t size);
void *realloc(void *p, size_t size);
void *aligned_alloc(size_t align, size_t size);
int posix_memalign(void **out, size_t align, size_t size);
size_t shoal_heap_bytes_in_use(void);        /* this shard */
void shoal_flush_remote_frees(void);

/* Strings */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);
void *memchr(const void *s, int c, size_t n);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

/* Console */
void shoal_print(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  /* raw text */
void shoal_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));    /* "[cpu t] ..." line */

/* Counters of this shard's reactor (for benchmarks and tests). */
struct shoal_reactor_stats { uint64_t loops, tasks, messages, timers, halts, busy_cycles, idle_cycles; };
void shoal_reactor_stats(unsigned shard, struct shoal_reactor_stats *out);

/*
 * Raw Ethernet, for applications that bring their own L2 handling (the
 * l2echo test app); the IP stack sits on the same path. A frame is a
 * struct netbuf the holder owns: the receive handler owns what it is
 * given, shoal_l2_send() takes ownership, shoal_frame_free() releases.
 * A frame may be a chain of buffers (shoal_frame_next) when the device
 * merged several; offload flags (checksum/GSO) travel with the frame.
 */
struct netbuf;
struct shoal_l2_info {
    uint8_t mac[6];
    uint16_t mtu;
    unsigned queues;            /* queue pairs; shards >= queues have none */
    bool link_up;
    bool has_queue;             /* this shard polls a queue of its own */
};
struct shoal_l2_stats {
    uint64_t rx_frames, tx_frames, steered_in, steered_out, tx_forwarded, rx_no_handler, tx_dropped;
};
/* False when the image has no network device. */
bool shoal_l2_info(struct shoal_l2_info *out);
/* Frames received on this shard (or steered to it) go to fn. */
void shoal_l2_set_handler(void (*fn)(struct netbuf *frame, void *arg), void *arg);
/* Steer each IPv4 frame to the shard that owns its flow (Toeplitz hash) instead of handling it where it arrived. */
void shoal_l2_set_steering(bool on);
bool shoal_l2_send(struct netbuf *frame);
void shoal_l2_stats(unsigned shard, struct shoal_l2_stats *out);
struct netbuf *shoal_frame_alloc(void);
void shoal_frame_free(struct netbuf *frame);
uint8_t *shoal_frame_data(struct netbuf *frame);
uint32_t shoal_frame_len(const struct netbuf *frame);           /* this buffer */
void shoal_frame_set_len(struct netbuf *frame, uint32_t len);   /* at most shoal_frame_room() */
uint32_t shoal_frame_room(const struct netbuf *frame);
struct netbuf *shoal_frame_next(struct netbuf *frame);         /* next buffer of the frame, or NULL */
unsigned shoal_frame_queue(const struct netbuf *frame);          /* queue it arrived on */
void shoal_frame_pull(struct netbuf *frame, uint32_t n);        /* drop n bytes from the buffer's front */
struct netbuf *shoal_frame_split(struct netbuf *frame);        /* detach and return the buffers after it */
void shoal_frame_join(struct netbuf *frame, struct netbuf *more); /* append the chain more at the end */

/*
 * IPv4 and UDP. Addresses are host-order integers (10.0.0.1 is 0x0A000001).
 * An application binds a UDP port on every shard it wants to serve from
 * (app_main runs on each); a datagram is handled on the shard that owns its
 * flow. Receive callbacks see data valid for the duration of the call.
 */
struct shoal_net_info {
    uint32_t ip, netmask, gateway;
    uint16_t mtu;
    bool configured;
};
struct shoal_net_stats {
    uint64_t rx_frames, ip_rx, ip_bad_header, ip_bad_checksum, ip_not_ours, ip_fragments, ip_reassembled;
    uint64_t icmp_rx, icmp_bad, icmp_echo_replied, icmp_errors_sent, udp_rx, udp_bad, udp_no_port, udp_tx;
    uint64_t arp_rx, arp_bad, arp_tx, rx_bad_eth, proto_unknown, tcp_rx, no_memory;
};
typedef void (*shoal_udp_fn)(void *arg, uint32_t src_ip, uint16_t src_port, uint16_t dst_port,
                             const uint8_t *data, size_t len);
bool shoal_net_info(struct shoal_net_info *out);
/* Counters of one shard's stack; false without a network device. */
bool shoal_net_stats(unsigned shard, struct shoal_net_stats *out);
/* 0, or -1 when the port is taken on this shard, out of bindings, or there is no network. */
int shoal_udp_bind(uint16_t port, shoal_udp_fn fn, void *arg);
bool shoal_udp_send(uint16_t src_port, uint32_t dst_ip, uint16_t dst_port, const void *data, size_t len);

/*
 * TCP. Listen on every shard that should serve (app_main runs on each):
 * connections are spread over shards by flow hash, and each runs its
 * callbacks on its own shard. See net/tcp.h for the callback contract:
 * recv data is valid during the call; len 0 means the peer finished
 * sending; closed() is the last call for a connection. An app that sets
 * recv_bufs instead gets its data as frames it owns (zero-copy receive on
 * Shoal's stack): read them with shoal_frame_data/len/next, release them
 * with shoal_frame_free whenever it is done, on any shard.
 */
#include "../net/tcp.h"
typedef struct tcp_conn shoal_tcp_conn;
int shoal_tcp_listen(uint16_t port, const struct tcp_callbacks *cb, void *arg);
/* shoal_tcp_listen with the congestion control its connections use (TCP_CC_CUBIC or TCP_CC_NEWRENO). */
int shoal_tcp_listen_cc(uint16_t port, const struct tcp_callbacks *cb, void *arg, enum tcp_cc_algo algo);
shoal_tcp_conn *shoal_tcp_connect(uint32_t ip, uint16_t port, const struct tcp_callbacks *cb, void *arg);
void shoal_tcp_set_arg(shoal_tcp_conn *c, void *arg);
/* Congestion control of a connection from shoal_tcp_connect, called right after it. 0 or -1. */
int shoal_tcp_set_cc(shoal_tcp_conn *c, enum tcp_cc_algo algo);
size_t shoal_tcp_send(shoal_tcp_conn *c, const void *data, size_t len);
size_t shoal_tcp_send_space(const shoal_tcp_conn *c);
void shoal_tcp_close(shoal_tcp_conn *c);
void shoal_tcp_abort(shoal_tcp_conn *c);
void shoal_tcp_set_nodelay(shoal_tcp_conn *c, bool on);
/* Stop / restart taking data: while paused the window closes and the peer waits (see tcp.h). */
void shoal_tcp_recv_pause(shoal_tcp_conn *c);
void shoal_tcp_recv_resume(shoal_tcp_conn *c);
void shoal_tcp_peer(const shoal_tcp_conn *c, uint32_t *ip, uint16_t *port);
/* A connection's state and counters, like Linux's TCP_INFO (a backend fills what it knows, 0 elsewhere). */
void shoal_tcp_info(const shoal_tcp_conn *c, struct tcp_conn_info *out);
/* A shard's TCP counters (Shoal's stack); false where there are none of ours (Linux, lwIP). */
bool shoal_tcp_stats(unsigned shard, struct tcp_stats *out);

/* Power off the VM with this exit status (from any shard). */
__attribute__((noreturn)) void shoal_exit(int status);

/*
 * Block devices. Devices are numbered from 0 in the order the kernel found
 * them. Requests are asynchronous and intrusive: the caller owns a struct
 * shoal_blk_req and keeps it, untouched, from a successful submit until its
 * done callback runs; submitting allocates nothing. done runs exactly once,
 * later (never inside the submit call), in the reactor of the shard that
 * submitted, with req->status set; it may submit req again.
 *
 * Offsets and lengths are bytes and must be multiples of SHOAL_BLK_SECTOR;
 * aligning them to block_size avoids read-modify-write in the device. A
 * read or write moves at most max_transfer bytes, buf must stay valid and
 * untouched until done. Writes are durable once a flush submitted after
 * they completed has completed (nothing to do when write_cache is false).
 *
 * The submit calls return 0 when done will run, or SHOAL_BLK_ENODEV (no
 * such device) or SHOAL_BLK_EINVAL (req or done is NULL) when it will not.
 * Every other problem with a request reaches done as req->status.
 */
#define SHOAL_BLK_SECTOR 512u

/* req->status: 0 or one of these (negated Linux errno values). */
#define SHOAL_BLK_EIO         (-5)    /* the device reported an I/O error */
#define SHOAL_BLK_ENODEV      (-19)   /* no such device */
#define SHOAL_BLK_EINVAL      (-22)   /* misaligned, empty or too long, or no buffer */
#define SHOAL_BLK_EROFS       (-30)   /* write or discard on a read-only device */
#define SHOAL_BLK_ERANGE      (-34)   /* reaches past the end of the device */
#define SHOAL_BLK_EOPNOTSUPP  (-95)   /* the device cannot do this (e.g. discard) */

struct shoal_blk_info {
    uint64_t capacity;      /* bytes */
    uint32_t block_size;    /* preferred unit of I/O, bytes */
    uint32_t max_transfer;  /* largest read or write, bytes */
    uint64_t max_discard;   /* largest discard, bytes; 0 when discard is unsupported */
    unsigned queues;        /* device queues serving the shards */
    bool read_only;
    bool write_cache;       /* writes are durable only after a flush */
    char id[21];            /* the device's serial, NUL-terminated, possibly empty */
};

struct shoal_blk_req;
typedef void (*shoal_blk_done_fn)(struct shoal_blk_req *req);

struct shoal_blk_req {
    shoal_blk_done_fn done; /* set by the submit call */
    void *arg;              /* the caller's, set by the submit call */
    int status;             /* when done runs: 0 or SHOAL_BLK_E* */
    uint64_t _kernel[16];   /* the kernel's while in flight */
};

unsigned shoal_blk_count(void);
/* false when there is no device dev. */
bool shoal_blk_info(unsigned dev, struct shoal_blk_info *out);
int shoal_blk_read(unsigned dev, struct shoal_blk_req *req, uint64_t offset, void *buf, uint32_t len,
                   shoal_blk_done_fn done, void *arg);
int shoal_blk_write(unsigned dev, struct shoal_blk_req *req, uint64_t offset, const void *buf, uint32_t len,
                    shoal_blk_done_fn done, void *arg);
/* Makes every write that completed before this call durable. */
int shoal_blk_flush(unsigned dev, struct shoal_blk_req *req, shoal_blk_done_fn done, void *arg);
/* The range's contents become undefined; the device may release its storage. */
int shoal_blk_discard(unsigned dev, struct shoal_blk_req *req, uint64_t offset, uint64_t len,
                      shoal_blk_done_fn done, void *arg);
/* A sentence for a status (0 included), for messages to users. */
const char *shoal_blk_strerror(int status);

#endif
