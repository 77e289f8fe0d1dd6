/*
 * Size-class (slab) allocator on top of one page allocator.
 *
 * One instance per CPU shard, used only by its owner CPU, so there is no
 * locking. Small requests (up to HEAP_MAX_SMALL bytes) come from slabs: buddy
 * blocks carved into equal objects, with the slab header at the block start.
 * Larger requests are whole buddy blocks. A caller-supplied byte per page
 * records what each page is, so a pointer finds its slab or block in O(1)
 * and frees of foreign or already-freed pointers are mostly detected and
 * ignored rather than corrupting the heap.
 */
#ifndef KERNEL_HEAP_H
#define KERNEL_HEAP_H

#include "page_alloc.h"

#define HEAP_NUM_CLASSES 24
#define HEAP_MAX_SMALL 2048
#define HEAP_MIN_ALIGN 16
/* Largest alignment heap_alloc_aligned() accepts. */
#define HEAP_MAX_ALIGN ((size_t)PAGE_SIZE << PAGE_MAX_ORDER)

struct slab; /* header at the start of each slab; see heap.c */

struct heap {
    struct page_alloc *pa;
    uint8_t *kind;                              /* one byte per page of pa */
    struct slab *partial[HEAP_NUM_CLASSES];     /* slabs with free and used objects */
    struct slab *empty[HEAP_NUM_CLASSES];       /* at most one cached empty slab per class */
    size_t bytes_in_use;
    size_t live;
    size_t bad_frees;
};

/* Bytes of kind metadata for a page allocator of npages pages. */
size_t heap_meta_size(size_t npages);

/* kind_meta: heap_meta_size(pa->npages) bytes. pa must not be used by anyone else
   while the heap owns it (the heap needs to know what every allocated page is). */
void heap_init(struct heap *h, struct page_alloc *pa, void *kind_meta);

/* 16-byte aligned; size 0 returns a valid unique pointer. NULL when out of memory. */
void *heap_alloc(struct heap *h, size_t size);

/*
 * align must be a power of two up to HEAP_MAX_ALIGN. Alignments above what a
 * slab gives come from buddy blocks, which are aligned relative to the region
 * base: if the base is not aligned enough, NULL is returned rather than a
 * misaligned pointer.
 */
void *heap_alloc_aligned(struct heap *h, size_t align, size_t size);

/* p must come from this heap; NULL is ignored. Detected bad frees are ignored and counted. */
void heap_free(struct heap *h, void *p);

/* Usable size of the live allocation p, or 0 when p is not one. */
size_t heap_usable_size(const struct heap *h, const void *p);

/*
 * Standard realloc: p NULL allocates; otherwise contents up to
 * min(old usable size, size) are kept. Returns NULL (p still valid) when
 * growing fails. Shrinking never fails. A p that is not a live allocation
 * is counted as a bad free and NULL is returned.
 */
void *heap_realloc(struct heap *h, void *p, size_t size);

/* Sum of usable sizes of live allocations. */
size_t heap_bytes_in_use(const struct heap *h);

size_t heap_live_allocations(const struct heap *h);

/* True when p lies in this heap's page region (whether or not it is live). */
bool heap_contains(const struct heap *h, const void *p);

/* Returns cached empty slabs to the page allocator; result is the pages released. */
size_t heap_trim(struct heap *h);

/* Number of heap_free() calls ignored because the pointer was not a live allocation. */
size_t heap_bad_frees(const struct heap *h);

/* Object size of class cls (0 <= cls < HEAP_NUM_CLASSES); for tests and stats. */
size_t heap_class_size(unsigned cls);

#endif
