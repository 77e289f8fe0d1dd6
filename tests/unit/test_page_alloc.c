/* Unit tests for the buddy page allocator. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "../../kernel/page_alloc.c"

#define MIB4 ((size_t)PAGE_SIZE << PAGE_MAX_ORDER)

struct region {
    void *mem;
    uint8_t *meta;
    uintptr_t base;
    size_t npages;
    struct page_alloc pa;
};

/* npages pages starting offset_pages past a 4 MiB boundary. */
static void region_init(struct region *r, size_t npages, size_t offset_pages)
{
    size_t bytes = (npages + offset_pages) * PAGE_SIZE;
    bytes = (bytes + MIB4 - 1) / MIB4 * MIB4 + MIB4;
    r->mem = aligned_alloc(MIB4, bytes);
    r->meta = malloc(page_alloc_meta_size(npages) + 1);
    r->base = (uintptr_t)r->mem + offset_pages * PAGE_SIZE;
    r->npages = npages;
    page_alloc_init(&r->pa, r->base, npages, r->meta);
    page_alloc_add_free(&r->pa, 0, npages);
}

static void region_fini(struct region *r)
{
    free(r->mem);
    free(r->meta);
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static size_t idx_of(const struct region *r, const void *p)
{
    return ((uintptr_t)p - r->base) / PAGE_SIZE;
}

TEST(init_whole_region_is_free)
{
    struct region r;
    region_init(&r, 2048, 0);
    CHECK_EQ(page_alloc_free_pages(&r.pa), 2048);
    CHECK(page_alloc_check(&r.pa));
    CHECK(r.pa.free_list[PAGE_MAX_ORDER] != PAGE_LIST_END);
    for (unsigned k = 0; k < PAGE_MAX_ORDER; k++)
        CHECK(r.pa.free_list[k] == PAGE_LIST_END);
    region_fini(&r);
}

TEST(split_and_coalesce)
{
    struct region r;
    region_init(&r, 1024, 0);
    void *a = page_alloc(&r.pa, 0);
    CHECK(a != NULL);
    CHECK_EQ(page_alloc_free_pages(&r.pa), 1023);
    /* Splitting a 4 MiB block for one page leaves one free block per lower order. */
    for (unsigned k = 0; k < PAGE_MAX_ORDER; k++)
        CHECK(r.pa.free_list[k] != PAGE_LIST_END);
    CHECK(page_alloc_check(&r.pa));
    CHECK(page_alloc(&r.pa, PAGE_MAX_ORDER) == NULL);

    void *b = page_alloc(&r.pa, 0);
    void *c = page_alloc(&r.pa, 3);
    CHECK(b != NULL && c != NULL);
    CHECK_EQ(page_alloc_free_pages(&r.pa), 1024 - 1 - 1 - 8);
    CHECK(page_free(&r.pa, b));
    CHECK(page_free(&r.pa, a));
    CHECK(page_free(&r.pa, c));
    CHECK_EQ(page_alloc_free_pages(&r.pa), 1024);
    CHECK(page_alloc_check(&r.pa));
    void *whole = page_alloc(&r.pa, PAGE_MAX_ORDER);
    CHECK(whole == (void *)r.base);
    CHECK(page_free(&r.pa, whole));
    region_fini(&r);
}

TEST(every_order_is_aligned)
{
    struct region r;
    region_init(&r, 4096, 0);
    for (unsigned k = 0; k <= PAGE_MAX_ORDER; k++) {
        void *blocks[4];
        for (int i = 0; i < 4; i++) {
            blocks[i] = page_alloc(&r.pa, k);
            CHECK(blocks[i] != NULL);
            CHECK_EQ(((uintptr_t)blocks[i] - r.base) % ((size_t)PAGE_SIZE << k), 0);
            CHECK_EQ((uintptr_t)blocks[i] % ((size_t)PAGE_SIZE << k), 0); /* base is 4 MiB aligned */
            CHECK_EQ(page_block_order(&r.pa, blocks[i]), k);
            CHECK(page_alloc_contains(&r.pa, (char *)blocks[i] + ((size_t)PAGE_SIZE << k) - 1));
        }
        for (int i = 0; i < 4; i++)
            CHECK(page_free(&r.pa, blocks[i]));
        CHECK_EQ(page_alloc_free_pages(&r.pa), 4096);
    }
    CHECK(page_alloc_check(&r.pa));
    region_fini(&r);
}

TEST(exhaustion_returns_null)
{
    struct region r;
    region_init(&r, 1024, 0);
    void **p = calloc(1024, sizeof(void *));
    unsigned char *seen = calloc(1024, 1);
    size_t n = 0;
    while ((p[n] = page_alloc(&r.pa, 0)) != NULL) {
        size_t i = idx_of(&r, p[n]);
        CHECK(i < 1024);
        CHECK(!seen[i]);
        seen[i] = 1;
        n++;
        if (n == 1024)
            break;
    }
    CHECK_EQ(n, 1024);
    CHECK(page_alloc(&r.pa, 0) == NULL);
    CHECK(page_alloc(&r.pa, 5) == NULL);
    CHECK_EQ(page_alloc_free_pages(&r.pa), 0);
    CHECK(page_alloc_check(&r.pa));
    for (size_t i = 0; i < n; i += 2)
        CHECK(page_free(&r.pa, p[i]));
    CHECK(page_alloc(&r.pa, 1) == NULL); /* fragmented: no two adjacent free pages */
    for (size_t i = 1; i < n; i += 2)
        CHECK(page_free(&r.pa, p[i]));
    CHECK_EQ(page_alloc_free_pages(&r.pa), 1024);
    CHECK(page_alloc_check(&r.pa));
    CHECK(page_alloc(&r.pa, PAGE_MAX_ORDER + 1) == NULL);
    free(p);
    free(seen);
    region_fini(&r);
}

TEST(bad_frees_are_rejected)
{
    struct region r;
    region_init(&r, 64, 0);
    char *a = page_alloc(&r.pa, 2);
    int outside;
    CHECK(a != NULL);
    size_t before = page_alloc_free_pages(&r.pa);
    CHECK(!page_free(&r.pa, NULL));
    CHECK(!page_free(&r.pa, &outside));
    CHECK(!page_free(&r.pa, a + 1));          /* not page aligned */
    CHECK(!page_free(&r.pa, a + PAGE_SIZE));  /* interior page */
    CHECK(!page_free(&r.pa, (void *)(r.base + 63 * PAGE_SIZE))); /* free page */
    CHECK_EQ(page_alloc_bad_frees(&r.pa), 5);
    CHECK_EQ(page_alloc_free_pages(&r.pa), before);
    CHECK_EQ(page_block_order(&r.pa, a + PAGE_SIZE), PAGE_ORDER_NONE);
    CHECK(page_free(&r.pa, a));
    CHECK(!page_free(&r.pa, a));              /* double free */
    CHECK_EQ(page_alloc_bad_frees(&r.pa), 6);
    CHECK_EQ(page_alloc_free_pages(&r.pa), 64);
    CHECK(page_alloc_check(&r.pa));
    region_fini(&r);
}

TEST(contains_bounds)
{
    struct region r;
    region_init(&r, 10, 0);
    CHECK(!page_alloc_contains(&r.pa, (void *)(r.base - 1)));
    CHECK(page_alloc_contains(&r.pa, (void *)r.base));
    CHECK(page_alloc_contains(&r.pa, (void *)(r.base + 10 * PAGE_SIZE - 1)));
    CHECK(!page_alloc_contains(&r.pa, (void *)(r.base + 10 * PAGE_SIZE)));
    region_fini(&r);
}

/* A span with a hole: nothing is ever handed out of (or written into) the
   hole, blocks never merge across it, and everything comes back. */
TEST(span_with_hole)
{
    struct region r;
    region_init(&r, 2048, 0);
    struct page_alloc pa;
    page_alloc_init(&pa, r.base, 2048, r.meta);
    page_alloc_add_free(&pa, 3, 500);       /* unaligned start, below the hole */
    page_alloc_add_free(&pa, 1024, 1024);   /* hole: pages 0-2 and 503-1023 */
    CHECK_EQ(page_alloc_free_pages(&pa), 1524);
    CHECK(page_alloc_check(&pa));
    memset((void *)(r.base + 503 * PAGE_SIZE), 0xAB, 521 * PAGE_SIZE);
    void *got[2048];
    size_t n = 0;
    for (void *p; (p = page_alloc(&pa, 0)) != NULL; n++) {
        size_t idx = ((uintptr_t)p - r.base) / PAGE_SIZE;
        CHECK(idx >= 3 && (idx < 503 || idx >= 1024));
        got[n] = p;
    }
    CHECK_EQ(n, 1524);
    const uint8_t *hole = (const uint8_t *)(r.base + 503 * PAGE_SIZE);
    size_t touched = 0;
    for (size_t i = 0; i < 521 * PAGE_SIZE; i++)
        touched += hole[i] != 0xAB;
    CHECK_EQ(touched, 0);
    for (size_t i = 0; i < n; i++)
        CHECK(page_free(&pa, got[i]));
    CHECK_EQ(page_alloc_free_pages(&pa), 1524);
    CHECK(page_alloc_check(&pa));
    CHECK(page_free(&pa, (void *)(r.base + 600 * PAGE_SIZE)) == false); /* a hole page was never allocated */
    region_fini(&r);
}

/* Setting up writes only the metadata: a hypervisor need not back free pages until they are used. */
TEST(setup_leaves_free_pages_untouched)
{
    struct region r;
    region_init(&r, 3000, 0);
    memset((void *)r.base, 0x5A, 3000 * PAGE_SIZE);
    page_alloc_init(&r.pa, r.base, 3000, r.meta);
    page_alloc_add_free(&r.pa, 0, 3000);
    size_t touched = 0;
    for (size_t i = 0; i < 3000 * PAGE_SIZE; i++)
        touched += ((const uint8_t *)r.base)[i] != 0x5A;
    CHECK_EQ(touched, 0);
    CHECK_EQ(page_alloc_free_pages(&r.pa), 3000);
    region_fini(&r);
}

TEST(adding_adjacent_ranges_coalesces)
{
    struct region r;
    region_init(&r, 1024, 0);
    page_alloc_init(&r.pa, r.base, 1024, r.meta);
    page_alloc_add_free(&r.pa, 0, 512);
    page_alloc_add_free(&r.pa, 512, 512);
    CHECK(page_alloc_check(&r.pa));
    CHECK(page_alloc(&r.pa, 10) != NULL); /* one whole 4 MiB block again */
    region_fini(&r);
}

TEST(empty_region)
{
    struct page_alloc pa;
    uint8_t meta[1];
    page_alloc_init(&pa, 0x100000, 0, meta);
    CHECK(page_alloc(&pa, 0) == NULL);
    CHECK_EQ(page_alloc_free_pages(&pa), 0);
    CHECK(page_alloc_check(&pa));
}

/* Random allocation and free, checking that no two live blocks share a page. */
static void stress(struct region *r, uint64_t seed, int rounds)
{
    enum { SLOTS = 256 };
    void *blk[SLOTS] = {0};
    unsigned ord[SLOTS] = {0};
    unsigned char *owner = calloc(r->npages, 1);
    size_t initial = page_alloc_free_pages(&r->pa);
    size_t used = 0;

    for (int i = 0; i < rounds; i++) {
        unsigned s = (unsigned)(rng_next(&seed) % SLOTS);
        if (blk[s]) {
            for (size_t j = 0; j < ((size_t)1 << ord[s]); j++)
                owner[idx_of(r, blk[s]) + j] = 0;
            CHECK(page_free(&r->pa, blk[s]));
            used -= (size_t)1 << ord[s];
            blk[s] = NULL;
            continue;
        }
        unsigned k = (unsigned)(rng_next(&seed) % 7);
        blk[s] = page_alloc(&r->pa, k);
        if (!blk[s])
            continue;
        ord[s] = k;
        used += (size_t)1 << k;
        CHECK_EQ(((uintptr_t)blk[s] - r->base) % ((size_t)PAGE_SIZE << k), 0);
        CHECK(idx_of(r, blk[s]) + ((size_t)1 << k) <= r->npages);
        for (size_t j = 0; j < ((size_t)1 << k); j++) {
            CHECK(!owner[idx_of(r, blk[s]) + j]);
            owner[idx_of(r, blk[s]) + j] = 1;
        }
        CHECK_EQ(page_alloc_free_pages(&r->pa), initial - used);
        if (i % 512 == 0)
            CHECK(page_alloc_check(&r->pa));
    }
    for (unsigned s = 0; s < SLOTS; s++)
        if (blk[s])
            CHECK(page_free(&r->pa, blk[s]));
    CHECK_EQ(page_alloc_free_pages(&r->pa), initial);
    CHECK(page_alloc_check(&r->pa));
    CHECK_EQ(page_alloc_bad_frees(&r->pa), 0);
    free(owner);
}

TEST(random_alloc_free)
{
    struct region r;
    region_init(&r, 4096, 0);
    stress(&r, 0x1234567u, 20000);
    CHECK(page_alloc(&r.pa, PAGE_MAX_ORDER) != NULL);
    region_fini(&r);
}

TEST(unaligned_base_and_odd_size)
{
    struct region r;
    region_init(&r, 1003, 3); /* base 3 pages past a 4 MiB boundary */
    CHECK_EQ(page_alloc_free_pages(&r.pa), 1003);
    CHECK(page_alloc_check(&r.pa));
    /* 1003 = 512+256+128+64+32+8+2+1: no 1024-page block exists. */
    CHECK(page_alloc(&r.pa, PAGE_MAX_ORDER) == NULL);
    void *b = page_alloc(&r.pa, 9);
    CHECK(b == (void *)r.base);
    CHECK(page_free(&r.pa, b));
    stress(&r, 0xdeadbeefu, 20000);

    size_t got = 0;
    void *p;
    while ((p = page_alloc(&r.pa, 0)) != NULL) {
        CHECK(page_alloc_contains(&r.pa, p));
        got++;
    }
    CHECK_EQ(got, 1003);
    region_fini(&r);
}

TEST_MAIN()
