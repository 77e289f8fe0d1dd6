/*
 * Binary buddy page allocator. See page_alloc.h.
 *
 * Metadata: one byte per page. The head page of every block records whether
 * the block is free or allocated and its order; every other page holds 0.
 * Because only heads are marked, a pointer into the middle of a block, or
 * to a block that is already free, is recognised and rejected by page_free.
 *
 * Free lists are linked through a second metadata array (next/prev page
 * indices), not through the free pages themselves: setting up a region then
 * writes only its metadata, and a hypervisor never has to back a free page
 * before the shard first uses it (that was most of the boot time).
 */
#include "page_alloc.h"

void *memset(void *dst, int c, size_t n);

#define META_FREE 0x80u      /* head of a free block */
#define META_USED 0x40u      /* head of an allocated block */
#define META_ORDER_MASK 0x0fu

struct page_link { uint32_t next, prev; };

static size_t state_bytes(size_t npages)
{
    return (npages + 7) & ~(size_t)7; /* keeps the link array 8-byte aligned */
}

size_t page_alloc_meta_size(size_t npages)
{
    return state_bytes(npages) + npages * sizeof(struct page_link);
}

static size_t block_pages(unsigned order)
{
    return (size_t)1 << order;
}

static size_t page_index(const struct page_alloc *pa, const void *p)
{
    return ((uintptr_t)p - pa->base) >> PAGE_SHIFT;
}

static void *page_at(const struct page_alloc *pa, size_t idx)
{
    return (void *)(pa->base + (idx << PAGE_SHIFT));
}

static struct page_link *links(const struct page_alloc *pa)
{
    return (struct page_link *)(pa->meta + state_bytes(pa->npages));
}

static void list_push(struct page_alloc *pa, size_t idx, unsigned order)
{
    struct page_link *l = links(pa);
    l[idx].prev = PAGE_LIST_END;
    l[idx].next = pa->free_list[order];
    if (l[idx].next != PAGE_LIST_END)
        l[l[idx].next].prev = (uint32_t)idx;
    pa->free_list[order] = (uint32_t)idx;
    pa->meta[idx] = (uint8_t)(META_FREE | order);
}

static void list_remove(struct page_alloc *pa, size_t idx, unsigned order)
{
    struct page_link *l = links(pa);
    if (l[idx].prev != PAGE_LIST_END)
        l[l[idx].prev].next = l[idx].next;
    else
        pa->free_list[order] = l[idx].next;
    if (l[idx].next != PAGE_LIST_END)
        l[l[idx].next].prev = l[idx].prev;
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
        pa->free_list[k] = PAGE_LIST_END;
    memset(meta, 0, npages); /* links are only read for free heads: no need to clear them */
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
    while (k <= PAGE_MAX_ORDER && pa->free_list[k] == PAGE_LIST_END)
        k++;
    if (k > PAGE_MAX_ORDER)
        return NULL;

    size_t idx = pa->free_list[k];
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
    uint32_t prev = PAGE_LIST_END;
    const struct page_link *l = links(pa);

    for (uint32_t idx = pa->free_list[order]; idx != PAGE_LIST_END; idx = l[idx].next) {
        bool bad = idx >= pa->npages || l[idx].prev != prev ||
                   (idx & (block_pages(order) - 1)) != 0 ||
                   idx + block_pages(order) > pa->npages ||
                   pa->meta[idx] != (META_FREE | order) || n > pa->npages ||
                   (order < PAGE_MAX_ORDER &&
                    buddy_is_free(pa, idx ^ block_pages(order), order));
        if (bad)
            return pa->npages + 1;
        *pages += block_pages(order);
        prev = idx;
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
