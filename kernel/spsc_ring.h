/*
 * Single-producer single-consumer ring of (fn, arg) messages, used for
 * cross-core calls: one ring per (from, to) CPU pair.
 *
 * head and tail are free-running 32-bit counters (count = head - tail, mod
 * 2^32), so capacity is a power of two of at most 2^31. The producer owns
 * head, the consumer owns tail; each sits on its own cache line together
 * with that side's cached copy of the other index and a copy of the mask,
 * so an operation touches the other side's line only when the cached index
 * says the ring looks full (producer) or empty (consumer).
 *
 * Ordering: the producer writes the entry, then publishes head with release;
 * the consumer reads head with acquire before reading the entry. The
 * consumer copies the entry out, then publishes tail with release, so the
 * producer, which reads tail with acquire, never overwrites an entry still
 * being read.
 *
 * Sleep/wake protocols (consumer announces it will sleep, then checks
 * spsc_ring_empty(); producer pushes, then checks the announcement) need a
 * store-load barrier on both sides; that is the caller's business.
 */
#ifndef KERNEL_SPSC_RING_H
#define KERNEL_SPSC_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPSC_CACHE_LINE 64

struct spsc_msg {
    void (*fn)(void *);
    void *arg;
};

struct spsc_ring {
    struct {
        uint32_t head;          /* next entry to write; written by producer */
        uint32_t tail_cache;    /* producer's last view of tail */
        uint32_t mask;
    } prod __attribute__((aligned(SPSC_CACHE_LINE)));
    struct {
        uint32_t tail;          /* next entry to read; written by consumer */
        uint32_t head_cache;    /* consumer's last view of head */
        uint32_t mask;
    } cons __attribute__((aligned(SPSC_CACHE_LINE)));
    /* capacity entries follow, in the same allocation */
    struct spsc_msg entries[] __attribute__((aligned(SPSC_CACHE_LINE)));
};

_Static_assert(offsetof(struct spsc_ring, cons) % SPSC_CACHE_LINE == 0 &&
               offsetof(struct spsc_ring, cons) >= SPSC_CACHE_LINE,
               "producer and consumer indices must not share a cache line");

/* Bytes to allocate (64-byte aligned) for a ring of `capacity` entries. */
static inline size_t spsc_ring_bytes(uint32_t capacity)
{
    return sizeof(struct spsc_ring) + (size_t)capacity * sizeof(struct spsc_msg);
}

/* capacity: a power of two, 1 .. 2^31. Not concurrent with push/pop. */
static inline void spsc_ring_init(struct spsc_ring *r, uint32_t capacity)
{
    r->prod.head = 0;
    r->prod.tail_cache = 0;
    r->prod.mask = capacity - 1;
    r->cons.tail = 0;
    r->cons.head_cache = 0;
    r->cons.mask = capacity - 1;
}

/* Producer only. Returns false when the ring is full. */
static inline bool spsc_ring_push(struct spsc_ring *r, void (*fn)(void *), void *arg)
{
    uint32_t head = r->prod.head;   /* only we write it */
    uint32_t cap = r->prod.mask + 1;
    if (head - r->prod.tail_cache >= cap) {
        r->prod.tail_cache = __atomic_load_n(&r->cons.tail, __ATOMIC_ACQUIRE);
        if (head - r->prod.tail_cache >= cap)
            return false;
    }
    struct spsc_msg *e = &r->entries[head & r->prod.mask];
    e->fn = fn;
    e->arg = arg;
    __atomic_store_n(&r->prod.head, head + 1, __ATOMIC_RELEASE);
    return true;
}

/* Consumer only. Copies the oldest entry to *out and frees its slot before
 * returning, so the handler that runs it may pop again. False when empty. */
static inline bool spsc_ring_pop(struct spsc_ring *r, struct spsc_msg *out)
{
    uint32_t tail = r->cons.tail;   /* only we write it */
    if (tail == r->cons.head_cache) {
        r->cons.head_cache = __atomic_load_n(&r->prod.head, __ATOMIC_ACQUIRE);
        if (tail == r->cons.head_cache)
            return false;
    }
    *out = r->entries[tail & r->cons.mask];
    __atomic_store_n(&r->cons.tail, tail + 1, __ATOMIC_RELEASE);
    return true;
}

/* Consumer side: true if nothing is waiting. Reads the producer's index
 * fresh, as this is the last check before sleeping. */
static inline bool spsc_ring_empty(const struct spsc_ring *r)
{
    return __atomic_load_n(&r->prod.head, __ATOMIC_ACQUIRE) ==
           __atomic_load_n(&r->cons.tail, __ATOMIC_RELAXED);
}

/* Entries waiting; exact for the calling side, a snapshot for the other. */
static inline uint32_t spsc_ring_count(const struct spsc_ring *r)
{
    uint32_t tail = __atomic_load_n(&r->cons.tail, __ATOMIC_ACQUIRE);
    uint32_t head = __atomic_load_n(&r->prod.head, __ATOMIC_ACQUIRE);
    return head - tail;
}

#endif
