/* Unit tests for the size-class heap. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "../../kernel/page_alloc.c"
#include "../../kernel/heap.c"

#define MIB4 ((size_t)PAGE_SIZE << PAGE_MAX_ORDER)

struct fixture {
    void *mem;
    uint8_t *page_meta;
    uint8_t *kind_meta;
    size_t npages;
    size_t initial_free;
    struct page_alloc pa;
    struct heap h;
};

/* npages pages starting offset_pages past a 4 MiB boundary. */
static void fx_init(struct fixture *f, size_t npages, size_t offset_pages)
{
    size_t bytes = (npages + offset_pages) * PAGE_SIZE;
    bytes = (bytes + MIB4 - 1) / MIB4 * MIB4;
    f->mem = aligned_alloc(MIB4, bytes);
    f->page_meta = malloc(page_alloc_meta_size(npages));
    f->kind_meta = malloc(heap_meta_size(npages));
    f->npages = npages;
    page_alloc_init(&f->pa, (uintptr_t)f->mem + offset_pages * PAGE_SIZE, npages, f->page_meta);
    page_alloc_add_free(&f->pa, 0, npages);
    heap_init(&f->h, &f->pa, f->kind_meta);
    f->initial_free = page_alloc_free_pages(&f->pa);
}

/* Everything freed: the heap must be empty and, once trimmed, own no pages. */
static void fx_check_released(struct fixture *f)
{
    CHECK_EQ(heap_bytes_in_use(&f->h), 0);
    CHECK_EQ(heap_live_allocations(&f->h), 0);
    size_t cached = heap_trim(&f->h);
    CHECK_EQ(page_alloc_free_pages(&f->pa), f->initial_free);
    CHECK(page_alloc_check(&f->pa));
    CHECK_EQ(heap_trim(&f->h), 0);
    (void)cached;
    for (size_t i = 0; i < f->npages; i++)
        if (f->kind_meta[i] != 0) {
            CHECK_EQ(f->kind_meta[i], 0);
            break;
        }
}

static void fx_fini(struct fixture *f)
{
    free(f->mem);
    free(f->page_meta);
    free(f->kind_meta);
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void fill(void *p, size_t n, unsigned seed)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(seed * 31u + i * 7u);
}

static bool verify(const void *p, size_t n, unsigned seed)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)(seed * 31u + i * 7u))
            return false;
    return true;
}

TEST(class_table_and_mapping)
{
    for (unsigned c = 0; c < HEAP_NUM_CLASSES; c++) {
        CHECK_EQ(heap_class_size(c) % 16, 0);
        if (c > 0)
            CHECK(heap_class_size(c) > heap_class_size(c - 1));
        unsigned order = slab_order(c);
        CHECK(slab_capacity(c, order) >= SLAB_MIN_OBJECTS);
        CHECK(slab_capacity(c, order) <= SLAB_MAX_OBJECTS);
        CHECK(order <= 3);
    }
    CHECK_EQ(heap_class_size(HEAP_NUM_CLASSES - 1), HEAP_MAX_SMALL);
    /* class_of must pick the smallest class that fits. */
    unsigned want = 0;
    for (size_t size = 0; size <= HEAP_MAX_SMALL; size++) {
        while (heap_class_size(want) < size)
            want++;
        if (class_of(size) != want) {
            CHECK_EQ(class_of(size), want);
            break;
        }
    }
}

TEST(boundary_sizes)
{
    struct fixture f;
    fx_init(&f, 1024, 0);
    void *z1 = heap_alloc(&f.h, 0), *z2 = heap_alloc(&f.h, 0);
    CHECK(z1 != NULL && z2 != NULL && z1 != z2);
    CHECK_EQ(heap_usable_size(&f.h, z1), 16);

    static const size_t sizes[] = {1, 15, 16, 17, 32, 33, 64, 65, 1024, 1025, 2047, 2048,
                                   2049, 4096, 4097, 65536, 65537};
    static const size_t usable[] = {16, 16, 16, 32, 32, 48, 64, 80, 1024, 1280, 2048, 2048,
                                    4096, 4096, 8192, 65536, 131072};
    void *p[sizeof(sizes) / sizeof(sizes[0])];
    size_t total = 32;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        p[i] = heap_alloc(&f.h, sizes[i]);
        CHECK(p[i] != NULL);
        CHECK_EQ((uintptr_t)p[i] % 16, 0);
        CHECK_EQ(heap_usable_size(&f.h, p[i]), usable[i]);
        if (sizes[i] > HEAP_MAX_SMALL)
            CHECK_EQ((uintptr_t)p[i] % PAGE_SIZE, 0);
        memset(p[i], 0xab, usable[i]);
        total += usable[i];
    }
    CHECK_EQ(heap_bytes_in_use(&f.h), total);
    CHECK_EQ(heap_live_allocations(&f.h), 2 + sizeof(sizes) / sizeof(sizes[0]));
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        heap_free(&f.h, p[i]);
    heap_free(&f.h, z1);
    heap_free(&f.h, z2);
    heap_free(&f.h, NULL);
    CHECK_EQ(heap_bad_frees(&f.h), 0);
    fx_check_released(&f);
    fx_fini(&f);
}

TEST(too_big_and_exhaustion)
{
    struct fixture f;
    fx_init(&f, 2048, 0);
    CHECK(heap_alloc(&f.h, MIB4 + 1) == NULL);
    CHECK(heap_alloc(&f.h, SIZE_MAX) == NULL);
    void *big[2];
    big[0] = heap_alloc(&f.h, MIB4);
    big[1] = heap_alloc(&f.h, MIB4);
    CHECK(big[0] != NULL && big[1] != NULL);
    CHECK(heap_alloc(&f.h, 1) == NULL);
    CHECK(heap_alloc(&f.h, 3000) == NULL);
    heap_free(&f.h, big[1]);

    /* Fill the remaining 4 MiB with small objects until it runs out. */
    size_t n = 0, cap = 4096 * 64;
    void **objs = malloc(cap * sizeof(void *));
    while (n < cap && (objs[n] = heap_alloc(&f.h, 100)) != NULL)
        n++;
    CHECK(n > 1024 * 30);
    CHECK(n < cap);
    CHECK(heap_alloc(&f.h, 5000) == NULL);
    for (size_t i = 0; i < n; i++)
        heap_free(&f.h, objs[i]);
    heap_free(&f.h, big[0]);
    fx_check_released(&f);
    free(objs);
    fx_fini(&f);
}

TEST(every_class_many_slabs)
{
    struct fixture f;
    fx_init(&f, 4096, 0);
    enum { PER_CLASS = 600 };
    void **p = malloc(PER_CLASS * sizeof(void *));
    for (unsigned c = 0; c < HEAP_NUM_CLASSES; c++) {
        size_t size = heap_class_size(c);
        for (unsigned i = 0; i < PER_CLASS; i++) {
            p[i] = heap_alloc(&f.h, size);
            CHECK(p[i] != NULL);
            if (!p[i])
                break;
            fill(p[i], size, i + c);
        }
        CHECK_EQ(heap_bytes_in_use(&f.h), (size_t)PER_CLASS * size);
        for (unsigned i = 0; i < PER_CLASS; i++)
            CHECK(verify(p[i], size, i + c));
        /* Free in an interleaved order so slabs go partial, full, partial, empty. */
        for (unsigned i = 0; i < PER_CLASS; i += 2)
            heap_free(&f.h, p[i]);
        for (unsigned i = 0; i < PER_CLASS; i += 2)
            p[i] = heap_alloc(&f.h, size);
        for (unsigned i = 1; i < PER_CLASS; i += 2)
            CHECK(verify(p[i], size, i + c));
        for (unsigned i = 0; i < PER_CLASS; i++)
            heap_free(&f.h, p[i]);
        CHECK_EQ(heap_bytes_in_use(&f.h), 0);
        /* Only the one cached empty slab of this class may remain. */
        CHECK_EQ(f.initial_free - page_alloc_free_pages(&f.pa), (size_t)1 << slab_order(c));
        CHECK_EQ(heap_trim(&f.h), (size_t)1 << slab_order(c));
    }
    CHECK_EQ(heap_bad_frees(&f.h), 0);
    fx_check_released(&f);
    free(p);
    fx_fini(&f);
}

struct live {
    char *p;
    size_t size;
    unsigned seed;
};

static int cmp_live(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct live *)a)->p;
    uintptr_t y = (uintptr_t)((const struct live *)b)->p;
    return x < y ? -1 : x > y;
}

static void check_no_overlap(struct fixture *f, struct live *slots, size_t n)
{
    struct live *sorted = malloc(n * sizeof(*sorted));
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (slots[i].p)
            sorted[m++] = slots[i];
    qsort(sorted, m, sizeof(*sorted), cmp_live);
    for (size_t i = 1; i < m; i++) {
        size_t prev_usable = heap_usable_size(&f->h, sorted[i - 1].p);
        if (sorted[i - 1].p + prev_usable > sorted[i].p) {
            CHECK(!"overlapping allocations");
            break;
        }
    }
    free(sorted);
}

static size_t random_size(uint64_t *rng)
{
    uint64_t r = rng_next(rng);
    switch (r % 16) {
    case 0:
        return (r >> 8) % 70000;        /* large */
    case 1:
    case 2:
        return (r >> 8) % 4096;
    default:
        return (r >> 8) % 300;          /* mostly small */
    }
}

static void random_workload(struct fixture *f, uint64_t seed, size_t nslots, int rounds)
{
    struct live *slots = calloc(nslots, sizeof(*slots));
    size_t expect_bytes = 0, expect_live = 0;

    for (int i = 0; i < rounds; i++) {
        struct live *s = &slots[rng_next(&seed) % nslots];
        if (s->p) {
            CHECK(verify(s->p, s->size, s->seed));
            expect_bytes -= heap_usable_size(&f->h, s->p);
            expect_live--;
            heap_free(&f->h, s->p);
            s->p = NULL;
            continue;
        }
        s->size = random_size(&seed);
        s->seed = (unsigned)i;
        s->p = heap_alloc(&f->h, s->size);
        if (!s->p)
            continue;
        CHECK_EQ((uintptr_t)s->p % 16, 0);
        CHECK(heap_usable_size(&f->h, s->p) >= s->size);
        fill(s->p, s->size, s->seed);
        expect_bytes += heap_usable_size(&f->h, s->p);
        expect_live++;
        if (i % 4096 == 0)
            check_no_overlap(f, slots, nslots);
    }
    CHECK_EQ(heap_bytes_in_use(&f->h), expect_bytes);
    CHECK_EQ(heap_live_allocations(&f->h), expect_live);
    check_no_overlap(f, slots, nslots);

    /* Free the survivors in random order (Fisher-Yates over the slots). */
    for (size_t i = nslots - 1; i > 0; i--) {
        size_t j = rng_next(&seed) % (i + 1);
        struct live t = slots[i];
        slots[i] = slots[j];
        slots[j] = t;
    }
    for (size_t i = 0; i < nslots; i++) {
        if (!slots[i].p)
            continue;
        CHECK(verify(slots[i].p, slots[i].size, slots[i].seed));
        heap_free(&f->h, slots[i].p);
    }
    CHECK_EQ(heap_bad_frees(&f->h), 0);
    free(slots);
}

TEST(random_no_overlap_and_full_release)
{
    struct fixture f;
    fx_init(&f, 8192, 0);
    random_workload(&f, 0x9e3779b97f4a7c15ull, 4000, 200000);
    fx_check_released(&f);
    fx_fini(&f);
}

TEST(unaligned_base_works)
{
    struct fixture f;
    fx_init(&f, 3001, 5); /* base 5 pages past a 4 MiB boundary, odd size */
    random_workload(&f, 0xabcdef12345ull, 2000, 100000);
    /* Page alignment always holds; larger alignment cannot, and must not be faked. */
    void *a = heap_alloc_aligned(&f.h, PAGE_SIZE, 10);
    CHECK(a != NULL && (uintptr_t)a % PAGE_SIZE == 0);
    void *b = heap_alloc_aligned(&f.h, 8 * PAGE_SIZE, 10);
    CHECK(b == NULL || (uintptr_t)b % (8 * PAGE_SIZE) == 0);
    heap_free(&f.h, a);
    heap_free(&f.h, b);
    fx_check_released(&f);
    fx_fini(&f);
}

TEST(realloc_keeps_contents)
{
    struct fixture f;
    fx_init(&f, 2048, 0);
    char *p = heap_realloc(&f.h, NULL, 10);
    CHECK(p != NULL);
    fill(p, 10, 1);
    CHECK(heap_realloc(&f.h, p, 16) == p); /* same class: in place */

    static const size_t steps[] = {100, 2048, 3000, 20000, 300000};
    size_t cur = 10;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        p = heap_realloc(&f.h, p, steps[i]);
        CHECK(p != NULL);
        CHECK(verify(p, cur, 1));
        fill(p, steps[i], 1);
        cur = steps[i];
    }
    CHECK(heap_realloc(&f.h, p, MIB4 * 2) == NULL); /* too big: old block kept */
    CHECK(verify(p, cur, 1));

    static const size_t shrink[] = {5000, 1000, 17, 0};
    for (size_t i = 0; i < sizeof(shrink) / sizeof(shrink[0]); i++) {
        p = heap_realloc(&f.h, p, shrink[i]);
        CHECK(p != NULL);
        CHECK(verify(p, shrink[i], 1));
        CHECK_EQ(heap_usable_size(&f.h, p), usable_for(shrink[i]));
    }
    CHECK_EQ(heap_live_allocations(&f.h), 1);
    CHECK_EQ(heap_bytes_in_use(&f.h), 16);
    heap_free(&f.h, p);
    fx_check_released(&f);
    fx_fini(&f);
}

TEST(aligned_allocations)
{
    struct fixture f;
    fx_init(&f, 4096, 0);
    static const size_t sizes[] = {0, 1, 100, 2048, 5000};
    void *p[23 * 5];
    size_t n = 0;
    for (size_t align = 1; align <= MIB4; align <<= 1) {
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            void *q = heap_alloc_aligned(&f.h, align, sizes[i]);
            CHECK(q != NULL);
            if (!q)
                continue;
            CHECK_EQ((uintptr_t)q % align, 0);
            CHECK_EQ((uintptr_t)q % 16, 0);
            CHECK(heap_usable_size(&f.h, q) >= sizes[i]);
            memset(q, 0x5a, sizes[i]);
            if (align > PAGE_SIZE)
                heap_free(&f.h, q); /* keeping these would fill the region */
            else
                p[n++] = q;
        }
    }
    /* 64-byte alignment is served from slabs, not whole pages. */
    void *c = heap_alloc_aligned(&f.h, 64, 40);
    CHECK(c != NULL && (uintptr_t)c % 64 == 0 && heap_usable_size(&f.h, c) == 64);
    heap_free(&f.h, c);

    CHECK(heap_alloc_aligned(&f.h, 0, 8) == NULL);
    CHECK(heap_alloc_aligned(&f.h, 48, 8) == NULL);
    CHECK(heap_alloc_aligned(&f.h, MIB4 * 2, 8) == NULL);
    for (size_t i = 0; i < n; i++)
        heap_free(&f.h, p[i]);
    CHECK_EQ(heap_bad_frees(&f.h), 0);
    fx_check_released(&f);
    fx_fini(&f);
}

TEST(bad_frees_do_not_corrupt)
{
    struct fixture f;
    fx_init(&f, 256, 0);
    char *a = heap_alloc(&f.h, 32);
    char *b = heap_alloc(&f.h, 32);
    char *big = heap_alloc(&f.h, 3 * PAGE_SIZE);
    int on_stack;
    CHECK(a && b && big);

    heap_free(&f.h, a);
    heap_free(&f.h, a);                   /* double free (slab) */
    heap_free(&f.h, b + 16);              /* interior of a live object */
    heap_free(&f.h, b + 32 * 5);          /* never-handed-out object */
    heap_free(&f.h, &on_stack);           /* foreign */
    heap_free(&f.h, big + 16);            /* inside a large block's head page */
    heap_free(&f.h, big + PAGE_SIZE);     /* a large block's later page */
    heap_free(&f.h, (char *)f.mem + 200 * PAGE_SIZE); /* page not owned by the heap */
    CHECK_EQ(heap_bad_frees(&f.h), 7);
    CHECK_EQ(heap_live_allocations(&f.h), 2);
    CHECK_EQ(heap_bytes_in_use(&f.h), 32 + 4 * PAGE_SIZE);
    CHECK_EQ(heap_usable_size(&f.h, a), 0);
    CHECK_EQ(heap_usable_size(&f.h, big + 16), 0);
    CHECK(heap_realloc(&f.h, a, 64) == NULL);
    CHECK_EQ(heap_bad_frees(&f.h), 8);

    /* The double free must not have put `a` on the free list twice. */
    char *x = heap_alloc(&f.h, 32), *y = heap_alloc(&f.h, 32);
    CHECK(x != y && x != b && y != b);

    heap_free(&f.h, big);
    heap_free(&f.h, big);                 /* double free (large) */
    CHECK_EQ(heap_bad_frees(&f.h), 9);
    heap_free(&f.h, x);
    heap_free(&f.h, y);
    heap_free(&f.h, b);
    heap_free(&f.h, b);                   /* after its slab went to the cache */
    CHECK_EQ(heap_bad_frees(&f.h), 10);
    fx_check_released(&f);
    heap_free(&f.h, b);                   /* after its slab went back to the pages */
    CHECK_EQ(heap_bad_frees(&f.h), 11);
    CHECK(page_alloc_check(&f.pa));
    CHECK_EQ(page_alloc_free_pages(&f.pa), f.initial_free);
    fx_fini(&f);
}

TEST(empty_slab_cache_is_bounded)
{
    struct fixture f;
    fx_init(&f, 256, 0);
    /* Two slabs' worth of 16-byte objects, then all freed: one slab is cached,
       the other goes straight back to the page allocator. */
    size_t per_slab = slab_capacity(0, 0);
    void **p = malloc(2 * per_slab * sizeof(void *));
    for (size_t i = 0; i < 2 * per_slab; i++)
        p[i] = heap_alloc(&f.h, 16);
    CHECK_EQ(f.initial_free - page_alloc_free_pages(&f.pa), 2);
    for (size_t i = 0; i < 2 * per_slab; i++)
        heap_free(&f.h, p[i]);
    CHECK_EQ(f.initial_free - page_alloc_free_pages(&f.pa), 1);
    /* Reusing the cached slab does not take a new page. */
    void *q = heap_alloc(&f.h, 16);
    CHECK_EQ(f.initial_free - page_alloc_free_pages(&f.pa), 1);
    heap_free(&f.h, q);
    CHECK_EQ(heap_trim(&f.h), 1);
    CHECK_EQ(page_alloc_free_pages(&f.pa), f.initial_free);
    fx_check_released(&f);
    free(p);
    fx_fini(&f);
}

TEST(contains)
{
    struct fixture f;
    fx_init(&f, 16, 0);
    void *p = heap_alloc(&f.h, 8);
    int on_stack;
    CHECK(heap_contains(&f.h, p));
    CHECK(!heap_contains(&f.h, &on_stack));
    CHECK(!heap_contains(&f.h, (char *)f.mem + 16 * PAGE_SIZE));
    heap_free(&f.h, p);
    fx_check_released(&f);
    fx_fini(&f);
}

TEST_MAIN()
