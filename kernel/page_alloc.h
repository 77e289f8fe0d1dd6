/*
 * Binary buddy page allocator over one contiguous region of pages.
 *
 * One instance per CPU shard, used only by its owner CPU, so there is no
 * locking. Free lists are intrusive (the links live in the free pages), and
 * the caller supplies one metadata byte per page, so the allocator needs no
 * memory of its own and can manage any page-aligned region.
 *
 * Blocks of order k are 2^k pages, aligned to (PAGE_SIZE << k) relative to
 * the region base. Callers that need absolute alignment align the base.
 */
#ifndef KERNEL_PAGE_ALLOC_H
#define KERNEL_PAGE_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef PAGE_SHIFT
#define PAGE_SHIFT 12
#endif
#ifndef PAGE_SIZE
#define PAGE_SIZE 4096 /* arch/x86_64/layout.h defines the same value */
#endif

#define PAGE_MAX_ORDER 10 /* largest block = 4 MiB */

/* page_block_order() of something that is not an allocated block head. */
#define PAGE_ORDER_NONE (~0u)

#define PAGE_LIST_END UINT32_MAX /* empty free list / no neighbour */

struct page_alloc {
    uintptr_t base;                 /* address of page 0, PAGE_SIZE-aligned */
    size_t npages;
    uint8_t *meta;                  /* one state byte per page, see page_alloc.c */
    size_t free_pages;
    size_t bad_frees;               /* page_free() calls that were rejected */
    uint32_t free_list[PAGE_MAX_ORDER + 1]; /* head page index per order */
};

/* Bytes of metadata needed for a region of npages pages (caller supplies that memory). */
size_t page_alloc_meta_size(size_t npages);

/*
 * An allocator over [base, base + npages pages) with nothing free yet: only
 * pages handed over with page_alloc_add_free() are ever given out or touched,
 * so the span may include holes (a PCI hole, the allocator's own metadata).
 * base must be PAGE_SIZE-aligned; meta points to page_alloc_meta_size(npages) bytes
 * (9 per page); npages < 2^32 (page indices are 32-bit).
 */
void page_alloc_init(struct page_alloc *pa, uintptr_t base, size_t npages, void *meta);

/* Pages [first, first + count) of the span become free; buddies coalesce as on page_free(). */
void page_alloc_add_free(struct page_alloc *pa, size_t first, size_t count);

/* A block of 2^order pages, or NULL when none is free or order > PAGE_MAX_ORDER. */
void *page_alloc(struct page_alloc *pa, unsigned order);

/*
 * Frees a block returned by page_alloc(); its order is remembered in the
 * metadata and buddies are coalesced. Returns false (and counts a bad free)
 * without changing anything when p is not the head of an allocated block.
 */
bool page_free(struct page_alloc *pa, void *p);

/* Order of the allocated block whose head is p, or PAGE_ORDER_NONE. */
unsigned page_block_order(const struct page_alloc *pa, const void *p);

size_t page_alloc_free_pages(const struct page_alloc *pa);

/* True when p points anywhere inside the managed region. */
bool page_alloc_contains(const struct page_alloc *pa, const void *p);

/* Number of rejected page_free() calls. */
size_t page_alloc_bad_frees(const struct page_alloc *pa);

/*
 * Walks every free list and the metadata and checks they agree with each
 * other and with the free-page count. Slow (O(npages)); for tests and
 * debugging.
 */
bool page_alloc_check(const struct page_alloc *pa);

#endif
