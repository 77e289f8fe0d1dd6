/*
 * The interface between a block device driver and its users (the runtime,
 * file systems later): asynchronous requests that complete on the shard
 * that submitted them, plus what the device is (capacity, block size,
 * read-only, write cache, serial). A test double only needs to implement
 * struct blkdev_ops.
 *
 * Requests are intrusive: the caller owns a struct blk_req, fills in what
 * to do and submits it; the driver keeps it (and its own per-request
 * state, in `driver`) until it calls r->done, so submitting allocates
 * nothing. A request is the driver's from submission until done runs and
 * must not be touched or resubmitted in between.
 *
 * Offsets and lengths are in bytes and must be multiples of
 * BLK_SECTOR_SIZE; block_size is the device's preferred unit (aligning to
 * it avoids read-modify-write inside the device), not a requirement.
 */
#ifndef DRIVERS_BLKDEV_H
#define DRIVERS_BLKDEV_H

#include <stdbool.h>
#include <stdint.h>

#define BLK_SECTOR_SIZE 512u
#define BLK_ID_BYTES    20u     /* a device serial, not necessarily NUL-terminated */

enum blk_op {
    BLK_OP_READ,
    BLK_OP_WRITE,
    BLK_OP_FLUSH,               /* make every completed write durable */
    BLK_OP_DISCARD,             /* the range's contents become undefined */
    BLK_OP_GET_ID,              /* BLK_ID_BYTES of serial into buf */
};

/*
 * Request results: 0 or one of these. The values are the negated Linux
 * errno numbers, so a Linux backend can hand its errors through unchanged.
 */
#define BLK_EIO          (-5)   /* the device reported an I/O error */
#define BLK_ENODEV       (-19)  /* no such device */
#define BLK_EINVAL       (-22)  /* malformed request: alignment, length, buffer, op */
#define BLK_EROFS        (-30)  /* write or discard on a read-only device */
#define BLK_ERANGE       (-34)  /* reaches past the end of the device */
#define BLK_EOPNOTSUPP   (-95)  /* the device does not implement the operation */

struct blkdev;

struct blk_req {
    /* Filled in by the submitter. */
    uint8_t op;                 /* enum blk_op */
    uint64_t offset;            /* bytes; READ, WRITE, DISCARD */
    uint64_t len;               /* bytes; READ, WRITE, DISCARD, GET_ID (>= BLK_ID_BYTES) */
    void *buf;                  /* READ, WRITE, GET_ID */
    void (*done)(struct blk_req *r);
    void *arg;                  /* the submitter's, untouched */
    /* Set before done runs. */
    int status;                 /* 0 or BLK_E* */
    /* The blkdev layer's and the driver's while in flight. */
    struct blkdev *dev;
    struct blk_req *next;
    uint16_t submitter;         /* shard that done runs on */
    uint64_t driver[5];         /* per-request state the device reads or writes */
};

struct blkdev_ops {
    /* Start r on the calling shard. r->done runs exactly once, later (never
       inside this call), in the reactor of the calling shard. */
    void (*submit)(struct blkdev *d, struct blk_req *r);
};

struct blkdev {
    const struct blkdev_ops *ops;
    const char *name;
    uint64_t capacity;          /* bytes, a multiple of BLK_SECTOR_SIZE */
    uint32_t block_size;        /* preferred I/O unit, bytes */
    uint32_t max_transfer;      /* largest READ/WRITE, bytes */
    uint64_t max_discard;       /* largest DISCARD, bytes; 0 when unsupported */
    uint16_t nqueues;           /* device queues serving the shards */
    bool read_only;
    bool write_cache;           /* writes are durable only after BLK_OP_FLUSH */
    char id[BLK_ID_BYTES + 1];  /* serial, NUL-terminated, possibly empty */
};

/* Devices register at boot (BSP); the table is read-only afterwards. */
#define BLKDEV_MAX 8
void blkdev_register(struct blkdev *d);
struct blkdev *blkdev_get(unsigned index);
unsigned blkdev_count(void);

static inline void blkdev_submit(struct blkdev *d, struct blk_req *r)
{
    r->dev = d;
    d->ops->submit(d, r);
}

/*
 * 0 when r is a well-formed request that d can carry out, else the error
 * it must complete with. Drivers call it on submission so that every
 * device rejects the same requests with the same codes.
 */
int blkdev_check(const struct blkdev *d, const struct blk_req *r);

/* A sentence for a BLK_E* code (or 0), for logs and users. */
const char *blkdev_strerror(int status);

#endif
