/*
 * Split virtqueue (virtio 1.2 §2.7), driver side, owned by one shard.
 *
 * Pure logic over memory the caller provides: no allocation, no device
 * access (the transport notifies), so the host unit tests drive it against
 * a simulated device. Addresses given to the device are the pointers
 * themselves: the kernel identity-maps RAM.
 *
 * Buffers go in as scatter lists (device-readable parts first, then
 * device-writable ones). A list of more than one part uses one indirect
 * descriptor when VIRTIO_RING_F_INDIRECT_DESC was negotiated, so a
 * queue of N descriptors holds N requests whatever their shape.
 */
#ifndef DRIVERS_VIRTIO_VIRTQ_H
#define DRIVERS_VIRTIO_VIRTQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/virtio_ring.h>

/* Parts per request when indirect descriptors are used. */
#define VIRTQ_MAX_INDIRECT 8

struct virtq_sg {
    void *addr;
    uint32_t len;
};

struct virtq {
    uint16_t size;              /* power of two */
    uint16_t num_free;
    uint16_t free_head;         /* free descriptors chained through .next */
    uint16_t avail_idx;         /* next avail->idx to publish */
    uint16_t kicked_idx;        /* avail idx the device was last told about */
    uint16_t last_used;         /* next used entry to consume */
    bool event_idx;             /* VIRTIO_RING_F_EVENT_IDX negotiated */
    bool indirect;              /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
    bool irq_enabled;           /* device may interrupt (shard about to sleep) */
    struct vring_desc *desc;
    struct vring_avail *avail;
    struct vring_used *used;
    struct vring_desc *indir;   /* size tables of VIRTQ_MAX_INDIRECT entries, or NULL */
    void **cookie;              /* per head descriptor */
    /* Set by the transport. */
    uint16_t index;             /* queue number on the device */
    bool irq_routed;            /* its interrupt reaches the owner; else the owner must poll */
    void *transport;            /* transport's per-queue notify data */
    uint64_t kicks, irqs_enabled;
};

/* Bytes of zeroed, 4 KiB-aligned memory virtq_init() needs. */
size_t virtq_mem_size(uint16_t size, bool indirect);
/* mem: virtq_mem_size() bytes, zeroed, 4 KiB aligned. size: a power of two. */
void virtq_init(struct virtq *vq, uint16_t size, void *mem, bool indirect, bool event_idx);

/* Device-side addresses for the transport's queue registers. */
static inline uint64_t virtq_desc_addr(const struct virtq *vq) { return (uint64_t)(uintptr_t)vq->desc; }
static inline uint64_t virtq_avail_addr(const struct virtq *vq) { return (uint64_t)(uintptr_t)vq->avail; }
static inline uint64_t virtq_used_addr(const struct virtq *vq) { return (uint64_t)(uintptr_t)vq->used; }

/*
 * Queue one buffer of `out` device-readable parts followed by `in`
 * device-writable ones; `cookie` (not NULL) comes back from virtq_get_used().
 * Not visible to the device until virtq_kick_prepare(). Returns false when
 * there are not enough free descriptors (nothing is queued then).
 */
bool virtq_add(struct virtq *vq, const struct virtq_sg *sg, unsigned out, unsigned in, void *cookie);
/* Descriptors left: a buffer of n parts fits when virtq_free_slots() >= virtq_cost(vq, n). */
static inline unsigned virtq_free_slots(const struct virtq *vq) { return vq->num_free; }
unsigned virtq_cost(const struct virtq *vq, unsigned parts);

/*
 * Publish what was added since the last call; true if the device asked to
 * be notified (event index, or the NO_NOTIFY flag without it). The caller
 * then notifies through the transport.
 */
bool virtq_kick_prepare(struct virtq *vq);

/* Buffers published to the device that it has not returned yet (not counting ones still unpublished). */
static inline uint16_t virtq_device_holds(const struct virtq *vq)
{
    return (uint16_t)(vq->kicked_idx - __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE));
}

/* Next completed buffer's cookie and written length, or NULL when none. */
void *virtq_get_used(struct virtq *vq, uint32_t *len);
bool virtq_has_used(const struct virtq *vq);

/*
 * Interrupt suppression. While its shard polls, a queue asks for no
 * interrupts. virtq_enable_irq() asks for one on the next completion and
 * returns false when completions are already waiting (the shard must not
 * sleep then); virtq_disable_irq() undoes it once the shard polls again.
 */
bool virtq_enable_irq(struct virtq *vq);
void virtq_disable_irq(struct virtq *vq);

/* The event-index test of the virtio spec: has idx moved past event since old? */
static inline bool virtq_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
    return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

#endif
