/*
 * The table of block devices (filled at boot, read-only afterwards) and the
 * request checks every driver shares. Pure logic: the host unit tests
 * include this file.
 */
#include "blkdev.h"

static struct blkdev *devices[BLKDEV_MAX];
static unsigned ndevices;

void blkdev_register(struct blkdev *d)
{
    if (ndevices < BLKDEV_MAX)
        devices[ndevices++] = d;
}

struct blkdev *blkdev_get(unsigned index) { return index < ndevices ? devices[index] : 0; }
unsigned blkdev_count(void) { return ndevices; }

static bool sector_aligned(uint64_t x) { return x % BLK_SECTOR_SIZE == 0; }

/* Written so that no sum can wrap: offset may be anything a caller passed. */
static bool within(const struct blkdev *d, uint64_t offset, uint64_t len)
{
    return offset <= d->capacity && len <= d->capacity - offset;
}

static int check_range(const struct blkdev *d, const struct blk_req *r, uint64_t max_len)
{
    if (r->len == 0 || !sector_aligned(r->offset) || !sector_aligned(r->len) || r->len > max_len)
        return BLK_EINVAL;
    return within(d, r->offset, r->len) ? 0 : BLK_ERANGE;
}

int blkdev_check(const struct blkdev *d, const struct blk_req *r)
{
    switch (r->op) {
    case BLK_OP_READ:
        return r->buf ? check_range(d, r, d->max_transfer) : BLK_EINVAL;
    case BLK_OP_WRITE:
        if (d->read_only)
            return BLK_EROFS;
        return r->buf ? check_range(d, r, d->max_transfer) : BLK_EINVAL;
    case BLK_OP_FLUSH:
        return 0;
    case BLK_OP_DISCARD:
        if (d->read_only)
            return BLK_EROFS;
        if (!d->max_discard)
            return BLK_EOPNOTSUPP;
        return check_range(d, r, d->max_discard);
    case BLK_OP_GET_ID:
        return r->buf && r->len >= BLK_ID_BYTES ? 0 : BLK_EINVAL;
    default:
        return BLK_EINVAL;
    }
}

const char *blkdev_strerror(int status)
{
    switch (status) {
    case 0: return "success";
    case BLK_EIO: return "I/O error reported by the device";
    case BLK_ENODEV: return "no such block device";
    case BLK_EINVAL: return "invalid request (offset or length not a multiple of 512 bytes, empty, "
                            "longer than the device takes in one request, or no buffer)";
    case BLK_EROFS: return "the device is read-only";
    case BLK_ERANGE: return "the request reaches past the end of the device";
    case BLK_EOPNOTSUPP: return "the device does not support this operation";
    default: return "unknown block device error";
    }
}
