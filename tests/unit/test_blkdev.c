/*
 * blkdev request checks: what every driver refuses, and with which code,
 * before a request reaches a device (alignment, length limits, the end of
 * the device without wrap-around, read-only, missing discard), plus the
 * registry and error texts.
 */
#include "check.h"

#include "../../drivers/blkdev.c"

#include <string.h>

#define MIB (1024ULL * 1024)

static struct blkdev disk(void)
{
    return (struct blkdev){ .capacity = 8 * MIB, .block_size = 4096, .max_transfer = 64 * 1024,
                            .max_discard = 4 * MIB };
}

static char buf[128 * 1024];

static int check(const struct blkdev *d, uint8_t op, uint64_t offset, uint64_t len)
{
    struct blk_req r = { .op = op, .offset = offset, .len = len, .buf = buf };
    return blkdev_check(d, &r);
}

TEST(reads_and_writes_in_range)
{
    struct blkdev d = disk();
    CHECK_EQ(check(&d, BLK_OP_READ, 0, 4096), 0);
    CHECK_EQ(check(&d, BLK_OP_WRITE, 512, 512), 0);
    CHECK_EQ(check(&d, BLK_OP_READ, 8 * MIB - 64 * 1024, 64 * 1024), 0);
    CHECK_EQ(check(&d, BLK_OP_WRITE, 8 * MIB - 512, 512), 0);
}

TEST(alignment_and_length)
{
    struct blkdev d = disk();
    CHECK_EQ(check(&d, BLK_OP_READ, 100, 4096), BLK_EINVAL);
    CHECK_EQ(check(&d, BLK_OP_READ, 0, 4000), BLK_EINVAL);
    CHECK_EQ(check(&d, BLK_OP_READ, 0, 0), BLK_EINVAL);
    CHECK_EQ(check(&d, BLK_OP_WRITE, 0, 64 * 1024 + 512), BLK_EINVAL);
    struct blk_req r = { .op = BLK_OP_READ, .offset = 0, .len = 512, .buf = 0 };
    CHECK_EQ(blkdev_check(&d, &r), BLK_EINVAL);
    r.op = 77;
    r.buf = buf;
    CHECK_EQ(blkdev_check(&d, &r), BLK_EINVAL);
}

TEST(end_of_device)
{
    struct blkdev d = disk();
    CHECK_EQ(check(&d, BLK_OP_READ, 8 * MIB, 512), BLK_ERANGE);
    CHECK_EQ(check(&d, BLK_OP_READ, 8 * MIB - 512, 4096), BLK_ERANGE);
    CHECK_EQ(check(&d, BLK_OP_WRITE, 16 * MIB, 512), BLK_ERANGE);
    /* offset + len would wrap to a small number. */
    CHECK_EQ(check(&d, BLK_OP_READ, UINT64_MAX - 511, 1024), BLK_ERANGE);
    CHECK_EQ(check(&d, BLK_OP_DISCARD, UINT64_MAX / 512 * 512, 4 * MIB), BLK_ERANGE);
}

TEST(read_only)
{
    struct blkdev d = disk();
    d.read_only = true;
    CHECK_EQ(check(&d, BLK_OP_READ, 0, 4096), 0);
    CHECK_EQ(check(&d, BLK_OP_WRITE, 0, 4096), BLK_EROFS);
    CHECK_EQ(check(&d, BLK_OP_DISCARD, 0, 4096), BLK_EROFS);
    CHECK_EQ(check(&d, BLK_OP_FLUSH, 0, 0), 0);
    /* Read-only wins over a malformed write: it is the more useful message. */
    CHECK_EQ(check(&d, BLK_OP_WRITE, 3, 5), BLK_EROFS);
}

TEST(discard)
{
    struct blkdev d = disk();
    CHECK_EQ(check(&d, BLK_OP_DISCARD, 0, 4 * MIB), 0);
    CHECK_EQ(check(&d, BLK_OP_DISCARD, 0, 4 * MIB + 512), BLK_EINVAL);
    CHECK_EQ(check(&d, BLK_OP_DISCARD, 6 * MIB, 4 * MIB), BLK_ERANGE);
    d.max_discard = 0;
    CHECK_EQ(check(&d, BLK_OP_DISCARD, 0, 4096), BLK_EOPNOTSUPP);
}

TEST(get_id)
{
    struct blkdev d = disk();
    CHECK_EQ(check(&d, BLK_OP_GET_ID, 0, BLK_ID_BYTES), 0);
    CHECK_EQ(check(&d, BLK_OP_GET_ID, 0, BLK_ID_BYTES - 1), BLK_EINVAL);
}

TEST(registry)
{
    static struct blkdev devs[BLKDEV_MAX + 1];
    CHECK_EQ(blkdev_count(), 0);
    CHECK(blkdev_get(0) == NULL);
    for (unsigned i = 0; i < BLKDEV_MAX + 1; i++)
        blkdev_register(&devs[i]);
    CHECK_EQ(blkdev_count(), BLKDEV_MAX);
    CHECK(blkdev_get(0) == &devs[0]);
    CHECK(blkdev_get(BLKDEV_MAX - 1) == &devs[BLKDEV_MAX - 1]);
    CHECK(blkdev_get(BLKDEV_MAX) == NULL);
}

TEST(error_texts)
{
    int codes[] = { 0, BLK_EIO, BLK_ENODEV, BLK_EINVAL, BLK_EROFS, BLK_ERANGE, BLK_EOPNOTSUPP };
    for (unsigned i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        CHECK(strcmp(blkdev_strerror(codes[i]), "unknown block device error") != 0);
        for (unsigned j = 0; j < i; j++)
            CHECK(strcmp(blkdev_strerror(codes[i]), blkdev_strerror(codes[j])) != 0);
    }
    CHECK(strcmp(blkdev_strerror(-12345), "unknown block device error") == 0);
    CHECK(strstr(blkdev_strerror(BLK_EROFS), "read-only") != NULL);
}

TEST_MAIN()
