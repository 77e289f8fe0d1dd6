/*
 * Size-class allocator. See heap.h.
 *
 * Kind byte per page (h->kind, indexed like the page allocator's pages):
 *   0                      not owned by the heap (free, or never allocated)
 *   KIND_SLAB  | order     any page of a slab that is 2^order pages long;
 *                          the slab head is the page index rounded down to
 *                          2^order, since buddy blocks are aligned that way
 *   KIND_LARGE | order     head page of a large allocation (other pages 0,
 *                          so interior pointers are rejected)
 *
 * A slab hands out never-used objects by bumping `carved` and reuses freed
 * ones through an intrusive free list, so creating a slab costs nothing per
 * object. A bitmap of live objects makes double frees and interior pointers
 * detectable in O(1).
 */
#include "heap.h"

void *memset(void *dst, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);

#define KIND_NONE 0x00u
#define KIND_SLAB 0x40u
#define KIND_LARGE 0x80u
#define KIND_ORDER_MASK 0x0fu

#define SLAB_HDR 64           /* object area starts here; multiple of 16 and 64 */
#define SLAB_MAX_OBJECTS 256  /* bits in used_map */
#define SLAB_MIN_OBJECTS 8

struct slab {
    struct slab *next;        /* partial-list links */
    struct slab *prev;
    void *free;               /* freed objects, linked through their first word */
    uint64_t used_map[SLAB_MAX_OBJECTS / 64];
    uint16_t in_use;
    uint16_t carved;          /* objects [0, carved) have been handed out at least once */
    uint16_t capacity;
    uint8_t cls;
    uint8_t order;
};

_Static_assert(sizeof(struct slab) <= SLAB_HDR, "slab header outgrew SLAB_HDR");

/* Four classes per power of two above 64, so internal waste stays under 25%. */
static const uint16_t class_sizes[HEAP_NUM_CLASSES] = {
    16,   32,   48,   64,   80,   96,   112,  128,
    160,  192,  224,  256,  320,  384,  448,  512,
    640,  768,  896,  1024, 1280, 1536, 1792, 2048,
};

size_t heap_class_size(unsigned cls)
{
    return cls < HEAP_NUM_CLASSES ? class_sizes[cls] : 0;
}

/* Smallest class holding size bytes; size <= HEAP_MAX_SMALL. */
static unsigned class_of(size_t size)
{
    if (size <= 64)
        return size ? (unsigned)((size - 1) >> 4) : 0;
    /* 2^p < size <= 2^(p+1); the power-of-two range splits into 4 steps of 2^(p-2). */
    unsigned p = 63u - (unsigned)__builtin_clzll((unsigned long long)(size - 1));
    return 4 * (p - 5) + (unsigned)((size - 1 - ((size_t)1 << p)) >> (p - 2));
}

static size_t block_bytes(unsigned order)
{
    return (size_t)PAGE_SIZE << order;
}

static size_t slab_capacity(unsigned cls, unsigned order)
{
    size_t n = (block_bytes(order) - SLAB_HDR) / class_sizes[cls];
    return n < SLAB_MAX_OBJECTS ? n : SLAB_MAX_OBJECTS;
}

/* Smallest slab that holds enough objects that slab overhead stays small. */
static unsigned slab_order(unsigned cls)
{
    unsigned order = 0;
    while (order < PAGE_MAX_ORDER && slab_capacity(cls, order) < SLAB_MIN_OBJECTS)
        order++;
    return order;
}

/* Order of the buddy block for a large request, or PAGE_ORDER_NONE if too big. */
static unsigned large_order(size_t size)
{
    if (size > block_bytes(PAGE_MAX_ORDER))
        return PAGE_ORDER_NONE;
    unsigned order = 0;
    while (block_bytes(order) < size)
        order++;
    return order;
}

static size_t page_idx(const struct heap *h, const void *p)
{
    return ((uintptr_t)p - h->pa->base) >> PAGE_SHIFT;
}

static void set_kind(struct heap *h, const void *block, unsigned order, uint8_t kind)
{
    size_t idx = page_idx(h, block);
    for (size_t i = 0; i < ((size_t)1 << order); i++)
        h->kind[idx + i] = kind;
}

static unsigned kind_at(const struct heap *h, const void *p)
{
    if (!page_alloc_contains(h->pa, p))
        return KIND_NONE;
    return h->kind[page_idx(h, p)];
}

size_t heap_meta_size(size_t npages)
{
    return npages;
}

void heap_init(struct heap *h, struct page_alloc *pa, void *kind_meta)
{
    h->pa = pa;
    h->kind = kind_meta;
    for (unsigned c = 0; c < HEAP_NUM_CLASSES; c++) {
        h->partial[c] = NULL;
        h->empty[c] = NULL;
    }
    h->bytes_in_use = 0;
    h->live = 0;
    h->bad_frees = 0;
    memset(kind_meta, 0, heap_meta_size(pa->npages));
}

/* ---- slab lists ---- */

static void partial_push(struct heap *h, struct slab *s)
{
    s->prev = NULL;
    s->next = h->partial[s->cls];
    if (s->next)
        s->next->prev = s;
    h->partial[s->cls] = s;
}

static void partial_remove(struct heap *h, struct slab *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        h->partial[s->cls] = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->next = s->prev = NULL;
}

/* ---- slab lifetime ---- */

static void slab_reset(struct slab *s)
{
    s->next = s->prev = NULL;
    s->free = NULL;
    for (unsigned i = 0; i < SLAB_MAX_OBJECTS / 64; i++)
        s->used_map[i] = 0;
    s->in_use = 0;
    s->carved = 0;
}

static struct slab *slab_new(struct heap *h, unsigned cls)
{
    unsigned order = slab_order(cls);
    struct slab *s = page_alloc(h->pa, order);
    if (!s)
        return NULL;
    slab_reset(s);
    s->capacity = (uint16_t)slab_capacity(cls, order);
    s->cls = (uint8_t)cls;
    s->order = (uint8_t)order;
    set_kind(h, s, order, (uint8_t)(KIND_SLAB | order));
    return s;
}

static size_t slab_release(struct heap *h, struct slab *s)
{
    unsigned order = s->order;
    set_kind(h, s, order, KIND_NONE);
    page_free(h->pa, s);
    return (size_t)1 << order;
}

/* A slab to allocate from: partial first, then the cached empty one, then a new one. */
static struct slab *slab_for_class(struct heap *h, unsigned cls)
{
    struct slab *s = h->partial[cls];
    if (s)
        return s;
    s = h->empty[cls];
    if (s)
        h->empty[cls] = NULL;
    else
        s = slab_new(h, cls);
    if (s)
        partial_push(h, s);
    return s;
}

static char *slab_object(struct slab *s, size_t idx)
{
    return (char *)s + SLAB_HDR + idx * class_sizes[s->cls];
}

static void *slab_take(struct slab *s)
{
    char *obj = s->free;
    if (obj)
        s->free = *(void **)obj;
    else
        obj = slab_object(s, s->carved++);
    size_t idx = (size_t)(obj - slab_object(s, 0)) / class_sizes[s->cls];
    s->used_map[idx / 64] |= (uint64_t)1 << (idx % 64);
    s->in_use++;
    return obj;
}

static void *slab_alloc(struct heap *h, unsigned cls)
{
    struct slab *s = slab_for_class(h, cls);
    if (!s)
        return NULL;
    void *obj = slab_take(s);
    if (s->in_use == s->capacity)
        partial_remove(h, s);
    h->bytes_in_use += class_sizes[cls];
    h->live++;
    return obj;
}

/* Slab containing p (kind byte already says slab), or NULL if its header
   disagrees with the kind byte, which means the header was overwritten. */
static struct slab *slab_of(const struct heap *h, const void *p, unsigned kind)
{
    unsigned order = kind & KIND_ORDER_MASK;
    size_t head = page_idx(h, p) & ~(((size_t)1 << order) - 1);
    struct slab *s = (struct slab *)(h->pa->base + (head << PAGE_SHIFT));
    if (s->order != order || s->cls >= HEAP_NUM_CLASSES)
        return NULL;
    return s;
}

/* Index of the live object starting at p, or SLAB_MAX_OBJECTS when p is not one. */
static size_t slab_live_index(const struct slab *s, const void *p)
{
    uintptr_t first = (uintptr_t)s + SLAB_HDR;
    size_t size = class_sizes[s->cls];
    if ((uintptr_t)p < first || ((uintptr_t)p - first) % size != 0)
        return SLAB_MAX_OBJECTS;
    size_t idx = ((uintptr_t)p - first) / size;
    if (idx >= s->carved)
        return SLAB_MAX_OBJECTS;
    if (!(s->used_map[idx / 64] & ((uint64_t)1 << (idx % 64))))
        return SLAB_MAX_OBJECTS;
    return idx;
}

/* An emptied slab is kept if its class has no spare yet, so a class that
   oscillates around a slab boundary does not hit the page allocator each time. */
static void slab_emptied(struct heap *h, struct slab *s, bool was_full)
{
    if (!was_full)
        partial_remove(h, s);
    if (h->empty[s->cls]) {
        slab_release(h, s);
        return;
    }
    slab_reset(s);
    h->empty[s->cls] = s;
}

static void slab_free(struct heap *h, struct slab *s, void *p)
{
    size_t idx = s ? slab_live_index(s, p) : SLAB_MAX_OBJECTS;
    if (idx == SLAB_MAX_OBJECTS) {
        h->bad_frees++;
        return;
    }
    bool was_full = s->in_use == s->capacity;
    s->used_map[idx / 64] &= ~((uint64_t)1 << (idx % 64));
    *(void **)p = s->free;
    s->free = p;
    s->in_use--;
    h->bytes_in_use -= class_sizes[s->cls];
    h->live--;

    if (s->in_use == 0)
        slab_emptied(h, s, was_full);
    else if (was_full)
        partial_push(h, s);
}

/* ---- large allocations ---- */

static void *large_alloc(struct heap *h, unsigned order)
{
    if (order == PAGE_ORDER_NONE)
        return NULL;
    void *p = page_alloc(h->pa, order);
    if (!p)
        return NULL;
    h->kind[page_idx(h, p)] = (uint8_t)(KIND_LARGE | order);
    h->bytes_in_use += block_bytes(order);
    h->live++;
    return p;
}

/* Order of the live large block at p, or PAGE_ORDER_NONE. */
static unsigned large_live_order(const struct heap *h, const void *p, unsigned kind)
{
    unsigned order = kind & KIND_ORDER_MASK;
    /* The page allocator knows block heads exactly; agreeing with it rules
       out pointers into the middle of the head page. */
    if (page_block_order(h->pa, p) != order)
        return PAGE_ORDER_NONE;
    return order;
}

static void large_free(struct heap *h, void *p, unsigned kind)
{
    unsigned order = large_live_order(h, p, kind);
    if (order == PAGE_ORDER_NONE) {
        h->bad_frees++;
        return;
    }
    h->kind[page_idx(h, p)] = KIND_NONE;
    page_free(h->pa, p);
    h->bytes_in_use -= block_bytes(order);
    h->live--;
}

/* ---- public interface ---- */

void *heap_alloc(struct heap *h, size_t size)
{
    if (size <= HEAP_MAX_SMALL)
        return slab_alloc(h, class_of(size));
    return large_alloc(h, large_order(size));
}

/* Slab class whose objects all satisfy align, or HEAP_NUM_CLASSES if none. */
static unsigned aligned_class(size_t align, size_t size)
{
    if (size > HEAP_MAX_SMALL || align > SLAB_HDR || align > HEAP_MAX_SMALL)
        return HEAP_NUM_CLASSES;
    size_t rounded = (size + align - 1) & ~(align - 1);
    unsigned cls = class_of(rounded);
    if (class_sizes[cls] % align != 0)
        return HEAP_NUM_CLASSES;
    return cls;
}

void *heap_alloc_aligned(struct heap *h, size_t align, size_t size)
{
    if (align == 0 || (align & (align - 1)) != 0 || align > HEAP_MAX_ALIGN)
        return NULL;
    if (align <= HEAP_MIN_ALIGN)
        return heap_alloc(h, size);

    /* Objects sit at SLAB_HDR + i * size from a page boundary, so a class whose
       size is a multiple of align (with align dividing SLAB_HDR) is aligned. */
    unsigned cls = aligned_class(align, size);
    if (cls < HEAP_NUM_CLASSES)
        return slab_alloc(h, cls);

    void *p = large_alloc(h, large_order(size > align ? size : align));
    if (p && ((uintptr_t)p & (align - 1)) != 0) {
        heap_free(h, p); /* base not aligned enough for this alignment */
        return NULL;
    }
    return p;
}

void heap_free(struct heap *h, void *p)
{
    if (!p)
        return;
    unsigned kind = kind_at(h, p);
    if (kind & KIND_SLAB) {
        slab_free(h, slab_of(h, p, kind), p);
        return;
    }
    if (kind & KIND_LARGE) {
        large_free(h, p, kind);
        return;
    }
    h->bad_frees++;
}

size_t heap_usable_size(const struct heap *h, const void *p)
{
    unsigned kind = kind_at(h, p);
    if (kind & KIND_SLAB) {
        const struct slab *s = slab_of(h, p, kind);
        if (!s || slab_live_index(s, p) == SLAB_MAX_OBJECTS)
            return 0;
        return class_sizes[s->cls];
    }
    if (kind & KIND_LARGE) {
        unsigned order = large_live_order(h, p, kind);
        return order == PAGE_ORDER_NONE ? 0 : block_bytes(order);
    }
    return 0;
}

/* Usable size heap_alloc(size) would give, or 0 when it would fail for size. */
static size_t usable_for(size_t size)
{
    if (size <= HEAP_MAX_SMALL)
        return class_sizes[class_of(size)];
    unsigned order = large_order(size);
    return order == PAGE_ORDER_NONE ? 0 : block_bytes(order);
}

void *heap_realloc(struct heap *h, void *p, size_t size)
{
    if (!p)
        return heap_alloc(h, size);
    size_t old = heap_usable_size(h, p);
    if (old == 0) {
        h->bad_frees++;
        return NULL;
    }
    /* Same class or block size: nothing to gain by moving. */
    if (usable_for(size) == old)
        return p;

    void *q = heap_alloc(h, size);
    if (!q)
        return size <= old ? p : NULL; /* a failed shrink keeps the old block */
    memcpy(q, p, size < old ? size : old);
    heap_free(h, p);
    return q;
}

size_t heap_bytes_in_use(const struct heap *h)
{
    return h->bytes_in_use;
}

size_t heap_live_allocations(const struct heap *h)
{
    return h->live;
}

bool heap_contains(const struct heap *h, const void *p)
{
    return page_alloc_contains(h->pa, p);
}

size_t heap_trim(struct heap *h)
{
    size_t pages = 0;
    for (unsigned c = 0; c < HEAP_NUM_CLASSES; c++) {
        if (!h->empty[c])
            continue;
        pages += slab_release(h, h->empty[c]);
        h->empty[c] = NULL;
    }
    return pages;
}

size_t heap_bad_frees(const struct heap *h)
{
    return h->bad_frees;
}
