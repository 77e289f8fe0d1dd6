/*
 * Split virtqueue, driver side. The memory holds, in order: the descriptor
 * table, the available ring (with used_event after it), the used ring on
 * its own page (with avail_event after it) so the device's writes do not
 * share cache lines with ours, the indirect tables and the cookies.
 */
#include "virtq.h"

#define USED_EVENT(vq) ((vq)->avail->ring[(vq)->size])
#define AVAIL_EVENT(vq) (*(volatile uint16_t *)&(vq)->used->ring[(vq)->size])

static size_t align_up(size_t x, size_t a) { return (x + a - 1) & ~(a - 1); }

static size_t used_offset(uint16_t size)
{
    return align_up(sizeof(struct vring_desc) * size + sizeof(uint16_t) * (3 + size), 4096);
}

static size_t indir_offset(uint16_t size)
{
    return align_up(used_offset(size) + sizeof(uint16_t) * 3 + sizeof(struct vring_used_elem) * size, 64);
}

size_t virtq_mem_size(uint16_t size, bool indirect)
{
    size_t n = indir_offset(size);
    if (indirect)
        n += (size_t)size * VIRTQ_MAX_INDIRECT * sizeof(struct vring_desc);
    return n + (size_t)size * sizeof(void *);
}

void virtq_init(struct virtq *vq, uint16_t size, void *mem, bool indirect, bool event_idx)
{
    uint8_t *m = mem;
    *vq = (struct virtq){ .size = size, .num_free = size, .indirect = indirect, .event_idx = event_idx };
    vq->desc = (struct vring_desc *)m;
    vq->avail = (struct vring_avail *)(m + sizeof(struct vring_desc) * size);
    vq->used = (struct vring_used *)(m + used_offset(size));
    size_t off = indir_offset(size);
    if (indirect) {
        vq->indir = (struct vring_desc *)(m + off);
        off += (size_t)size * VIRTQ_MAX_INDIRECT * sizeof(struct vring_desc);
    }
    vq->cookie = (void **)(m + off);
    for (uint16_t i = 0; i < size; i++)
        vq->desc[i].next = (uint16_t)(i + 1);
    /* A new queue belongs to a polling shard: no interrupts until it sleeps. */
    if (event_idx)
        USED_EVENT(vq) = (uint16_t)(vq->last_used - 1);
    else
        vq->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
}

unsigned virtq_cost(const struct virtq *vq, unsigned parts)
{
    /* §2.7.5.3.1: an indirect chain, too, is no longer than the queue size. */
    return (vq->indirect && parts > 1 && parts <= VIRTQ_MAX_INDIRECT && parts <= vq->size) ? 1 : parts;
}

static void fill(struct vring_desc *d, const struct virtq_sg *sg, bool writable)
{
    d->addr = (uint64_t)(uintptr_t)sg->addr;
    d->len = sg->len;
    d->flags = writable ? VRING_DESC_F_WRITE : 0;
}

static uint16_t add_indirect(struct virtq *vq, const struct virtq_sg *sg, unsigned out, unsigned n)
{
    uint16_t head = vq->free_head;
    struct vring_desc *table = vq->indir + (size_t)head * VIRTQ_MAX_INDIRECT;
    for (unsigned i = 0; i < n; i++) {
        fill(&table[i], &sg[i], i >= out);
        if (i + 1 < n) {
            table[i].flags |= VRING_DESC_F_NEXT;
            table[i].next = (uint16_t)(i + 1);
        }
    }
    struct vring_desc *d = &vq->desc[head];
    vq->free_head = d->next;
    vq->num_free--;
    d->addr = (uint64_t)(uintptr_t)table;
    d->len = (uint32_t)(n * sizeof(struct vring_desc));
    d->flags = VRING_DESC_F_INDIRECT;
    return head;
}

static uint16_t add_direct(struct virtq *vq, const struct virtq_sg *sg, unsigned out, unsigned n)
{
    uint16_t head = vq->free_head, i = head;
    for (unsigned k = 0; k < n; k++) {
        struct vring_desc *d = &vq->desc[i];
        uint16_t next = d->next;
        fill(d, &sg[k], k >= out);
        if (k + 1 < n)
            d->flags |= VRING_DESC_F_NEXT;
        else
            vq->free_head = next;
        d->next = next;  /* kept: the chain is freed by following it */
        i = next;
    }
    vq->num_free = (uint16_t)(vq->num_free - n);
    return head;
}

bool virtq_add(struct virtq *vq, const struct virtq_sg *sg, unsigned out, unsigned in, void *cookie)
{
    unsigned n = out + in;
    if (n == 0 || !cookie || virtq_cost(vq, n) > vq->num_free)
        return false;
    uint16_t head = virtq_cost(vq, n) == 1 && n > 1 ? add_indirect(vq, sg, out, n) : add_direct(vq, sg, out, n);
    vq->cookie[head] = cookie;
    vq->avail->ring[vq->avail_idx & (vq->size - 1)] = head;
    vq->avail_idx++;
    return true;
}

bool virtq_kick_prepare(struct virtq *vq)
{
    uint16_t old = vq->kicked_idx, new_idx = vq->avail_idx;
    if (old == new_idx)
        return false;
    /* Descriptors and ring entries before the index that publishes them. */
    __atomic_store_n(&vq->avail->idx, new_idx, __ATOMIC_RELEASE);
    vq->kicked_idx = new_idx;
    /* The index store must be visible before we read the device's wish. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    bool kick = vq->event_idx ? virtq_need_event(AVAIL_EVENT(vq), new_idx, old)
                              : !(__atomic_load_n(&vq->used->flags, __ATOMIC_RELAXED) & VRING_USED_F_NO_NOTIFY);
    vq->kicks += kick;
    return kick;
}

bool virtq_has_used(const struct virtq *vq)
{
    return __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE) != vq->last_used;
}

static void free_chain(struct virtq *vq, uint16_t head)
{
    uint16_t i = head, n = 1;
    /* Bounded: descriptors are ours, but they live in memory the device can write. */
    while ((vq->desc[i].flags & VRING_DESC_F_NEXT) && n < vq->size) {
        i = vq->desc[i].next & (vq->size - 1);
        n++;
    }
    vq->desc[i].next = vq->free_head;
    vq->free_head = head;
    vq->num_free = (uint16_t)(vq->num_free + n);
}

void *virtq_get_used(struct virtq *vq, uint32_t *len)
{
    while (virtq_has_used(vq)) {
        const struct vring_used_elem *e = &vq->used->ring[vq->last_used & (vq->size - 1)];
        uint32_t id = e->id;
        if (len)
            *len = e->len;
        vq->last_used++;
        /* A device that names a descriptor we never gave it is ignored, not trusted. */
        if (id >= vq->size || !vq->cookie[id])
            continue;
        void *cookie = vq->cookie[id];
        vq->cookie[id] = 0;
        free_chain(vq, (uint16_t)id);
        return cookie;
    }
    return 0;
}

bool virtq_enable_irq(struct virtq *vq)
{
    if (vq->event_idx)
        __atomic_store_n(&USED_EVENT(vq), vq->last_used, __ATOMIC_RELAXED);
    else
        __atomic_store_n(&vq->avail->flags, 0, __ATOMIC_RELAXED);
    vq->irq_enabled = true;
    vq->irqs_enabled++;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return !virtq_has_used(vq);
}

void virtq_disable_irq(struct virtq *vq)
{
    if (!vq->irq_enabled)
        return;
    vq->irq_enabled = false;
    /* An event index just behind what we consumed is not reached for 65535 completions. */
    if (vq->event_idx)
        __atomic_store_n(&USED_EVENT(vq), (uint16_t)(vq->last_used - 1), __ATOMIC_RELAXED);
    else
        __atomic_store_n(&vq->avail->flags, VRING_AVAIL_F_NO_INTERRUPT, __ATOMIC_RELAXED);
}
