/*
 * malloc and friends on the calling shard's heap. Memory freed on a shard
 * that did not allocate it is never put on the owner's lists from here:
 * it is chained through its own first word into a per-owner batch and sent
 * home by message when the batch is full or this shard goes idle.
 */
#include <stdint.h>
#include "malloc.h"
#include "memory.h"
#include "percpu.h"
#include "smp_call.h"

#define REMOTE_FREE_BATCH 64

void *memset(void *, int, size_t);
void *memcpy(void *, const void *, size_t);

void *malloc(size_t size) { return heap_alloc(&this_cpu()->heap, size); }

void *calloc(size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total))
        return NULL;
    void *p = malloc(total);
    if (p)
        memset(p, 0, total);
    return p;
}

void *aligned_alloc(size_t align, size_t size)
{
    if (!align || (align & (align - 1)))
        return NULL;
    return heap_alloc_aligned(&this_cpu()->heap, align, size);
}

int posix_memalign(void **out, size_t align, size_t size)
{
    if (align < sizeof(void *) || (align & (align - 1)))
        return 22; /* EINVAL */
    void *p = aligned_alloc(align, size);
    if (!p)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}

static void free_batch_at_owner(void *head)
{
    struct heap *h = &this_cpu()->heap;
    while (head) {
        void *next = *(void **)head;
        heap_free(h, head);
        head = next;
    }
}

static void send_batch(struct percpu *c, unsigned owner)
{
    void *head = c->remote_free_head[owner];
    if (!head)
        return;
    c->remote_free_head[owner] = NULL;
    c->remote_free_count[owner] = 0;
    smp_call(owner, free_batch_at_owner, head);
}

void malloc_flush_remote_frees(void)
{
    struct percpu *c = this_cpu();
    for (unsigned i = 0; i < cpu_total; i++)
        send_batch(c, i);
}

void free(void *p)
{
    if (!p)
        return;
    struct percpu *c = this_cpu();
    int owner = memory_shard_of(p);
    if (owner < 0 || (unsigned)owner == c->id) {
        heap_free(&c->heap, p); /* a foreign pointer is detected and counted there */
        return;
    }
    *(void **)p = c->remote_free_head[owner];
    c->remote_free_head[owner] = p;
    if (++c->remote_free_count[owner] >= REMOTE_FREE_BATCH)
        send_batch(c, (unsigned)owner);
}

size_t malloc_usable_size(void *p)
{
    if (!p)
        return 0;
    int owner = memory_shard_of(p);
    if (owner < 0)
        return 0;
    /* A live object's size class never changes, so reading the owner's metadata is safe. */
    return heap_usable_size(&cpu_table[owner]->heap, p);
}

void *realloc(void *p, size_t size)
{
    if (!p)
        return malloc(size);
    int owner = memory_shard_of(p);
    if (owner == (int)this_cpu_id())
        return heap_realloc(&this_cpu()->heap, p, size);
    size_t old = malloc_usable_size(p);
    void *q = malloc(size);
    if (!q)
        return NULL;
    memcpy(q, p, old < size ? old : size);
    free(p);
    return q;
}
