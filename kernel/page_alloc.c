/*
 * Binary buddy page allocator. See page_alloc.h.
 *
 * Metadata: one byte per page. The head page of every block records whether
 * the block is free or allocated and its order; every other page holds 0.
 * Because only heads are marked, a pointer into the middle of a block, or
 * to a block that is already free, is recognised and rejected by page_free.
 */
#include "page_alloc.h"

void *memset(void *dst, int c, size_t n);

#define META_FREE 0x80u      /* head of a free block */
#define META_USED 0x40u      /* head of an allocated block */
#define META_ORDER_MASK 0x0fu

struct page_free_block {
    struct page_free_block *next;
    struct page_free_block *prev;
};

size_t page_alloc_meta_size(size_t npages)
{
    return npages;
}

static size_t block_pages(unsigned order)
{
    return (size_t)1 << order;
}

static size_t page_index(const struct page_alloc *pa, const void *p)
{
    return ((uintptr_t)p - pa->base) >> PAGE_SHIFT;
}

static struct page_free_block *page_at(const struct page_alloc *pa, size_t idx)
{
    return (struct page_free_block *)(pa->base + (idx << PAGE_SHIFT));
}

static void list_push(struct page_alloc *pa, size_t idx, unsigned order)
{
    struct page_free_block *b = page_at(pa, idx);

    b->prev = NULL;
    b->next = pa->free_list[order];
    if (b->next)
        b->next->prev = b;
    pa->free_list[order] = b;
    pa->meta[idx] = (uint8_t)(META_FREE | order);
}

static void list_remove(struct page_alloc *pa, size_t idx, unsigned order)
{
    struct page_free_block *b = page_at(pa, idx);

    if (b->prev)
        b->prev->next = b->next;
    else
        pa->free_list[order] = b->next;
    if (b->next)
        b->next->prev = b->prev;
    pa->meta[idx] = 0;
}

/* Largest order whose block starts at idx (alignment) and fits before end. */
static unsigned largest_fit(size_t idx, size_t end)
{
    unsigned order = 0;

    while (order < PAGE_MAX_ORDER) {
        size_t next = block_pages(order + 1);
        if ((idx & (next - 1)) != 0 || idx + next > end)
            break;
        order++;
    }
    return order;
}

void page_alloc_init(struct page_alloc *pa, uintptr_t base, size_t npages, void *meta)
{
    pa->base = base;
    pa->npages = npages;
    pa->meta = meta;
    pa->free_pages = 0;
    pa->bad_frees = 0;
    for (unsigned k = 0; k <= PAGE_MAX_ORDER; k++)
        pa->free_list[k] = NULL;
    memset(meta, 0, page_alloc_meta_size(npages));
}

static void release(struct page_alloc *pa, size_t idx, unsigned order);

void page_alloc_add_free(struct page_alloc *pa, size_t first, size_t count)
{
    size_t end = first + count;
    if (end > pa->npages || end < first)
        return;
    /* The range is carved into the largest aligned blocks that fit. */
    for (size_t idx = first; idx < end;) {
        unsigned order = largest_fit(idx, end);
        release(pa, idx, order);
        idx += block_pages(order);
    }
}

void *page_alloc(struct page_alloc *pa, unsigned order)
{
    if (order > PAGE_MAX_ORDER)
        return NULL;

    unsigned k = order;
    while (k <= PAGE_MAX_ORDER && !pa->free_list[k])
        k++;
    if (k > PAGE_MAX_ORDER)
        return NULL;

    size_t idx = page_index(pa, pa->free_list[k]);
    list_remove(pa, idx, k);
    /* Split down, returning the upper halves to the free lists. */
    while (k > order) {
        k--;
        list_push(pa, idx + block_pages(k), k);
    }
    pa->meta[idx] = (uint8_t)(META_USED | order);
    pa->free_pages -= block_pages(order);
    return page_at(pa, idx);
}

/* Index of the allocated block head at p, or npages when p is not one. */
static size_t used_head_index(const struct page_alloc *pa, const void *p)
{
    if (!page_alloc_contains(pa, p))
        return pa->npages;
    if (((uintptr_t)p - pa->base) & (PAGE_SIZE - 1))
        return pa->npages;
    size_t idx = page_index(pa, p);
    if (!(pa->meta[idx] & META_USED))
        return pa->npages;
    return idx;
}

/* The buddy of a block is free (and whole) exactly when its head says so. */
static bool buddy_is_free(const struct page_alloc *pa, size_t buddy, unsigned order)
{
    if (buddy + block_pages(order) > pa->npages)
        return false;
    return pa->meta[buddy] == (META_FREE | order);
}

/* Returns a block to the free lists, merging it with free buddies. */
static void release(struct page_alloc *pa, size_t idx, unsigned order)
{
    pa->free_pages += block_pages(order);
    while (order < PAGE_MAX_ORDER) {
        size_t buddy = idx ^ block_pages(order);
        if (!buddy_is_free(pa, buddy, order))
            break;
        list_remove(pa, buddy, order);
        if (buddy < idx)
            idx = buddy;
        order++;
    }
    list_push(pa, idx, order);
}

bool page_free(struct page_alloc *pa, void *p)
{
    size_t idx = used_head_index(pa, p);
    if (idx == pa->npages) {
        pa->bad_frees++;
        return false;
    }
    unsigned order = pa->meta[idx] & META_ORDER_MASK;
    pa->meta[idx] = 0;
    release(pa, idx, order);
    return true;
}

unsigned page_block_order(const struct page_alloc *pa, const void *p)
{
    size_t idx = used_head_index(pa, p);
    if (idx == pa->npages)
        return PAGE_ORDER_NONE;
    return pa->meta[idx] & META_ORDER_MASK;
}

size_t page_alloc_free_pages(const struct page_alloc *pa)
{
    return pa->free_pages;
}

bool page_alloc_contains(const struct page_alloc *pa, const void *p)
{
    uintptr_t a = (uintptr_t)p;
    /* Subtracting first avoids overflow of base + size at the top of memory. */
    return a >= pa->base && ((a - pa->base) >> PAGE_SHIFT) < pa->npages;
}

size_t page_alloc_bad_frees(const struct page_alloc *pa)
{
    return pa->bad_frees;
}

/* Counts the blocks on one free list, or returns npages+1 if it is corrupt
   (bad links or metadata, or two free buddies left uncoalesced). */
static size_t check_list(const struct page_alloc *pa, unsigned order, size_t *pages)
{
    size_t n = 0;
    const struct page_free_block *prev = NULL;

    for (const struct page_free_block *b = pa->free_list[order]; b; b = b->next) {
        size_t idx = page_index(pa, b);
        bool bad = !page_alloc_contains(pa, b) || b->prev != prev ||
                   (idx & (block_pages(order) - 1)) != 0 ||
                   idx + block_pages(order) > pa->npages ||
                   pa->meta[idx] != (META_FREE | order) || n > pa->npages ||
                   (order < PAGE_MAX_ORDER &&
                    buddy_is_free(pa, idx ^ block_pages(order), order));
        if (bad)
            return pa->npages + 1;
        *pages += block_pages(order);
        prev = b;
        n++;
    }
    return n;
}

bool page_alloc_check(const struct page_alloc *pa)
{
    size_t listed = 0, pages = 0, heads = 0;

    for (unsigned k = 0; k <= PAGE_MAX_ORDER; k++) {
        size_t n = check_list(pa, k, &pages);
        if (n > pa->npages)
            return false;
        listed += n;
    }
    for (size_t i = 0; i < pa->npages; i++)
        heads += (pa->meta[i] & META_FREE) != 0;
    return heads == listed && pages == pa->free_pages;
}
