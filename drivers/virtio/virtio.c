/* Device status handling and feature negotiation (virtio 1.2 §3.1), common to every transport. */
#include "virtio.h"
#include "../../kernel/console.h"
#include "../../kernel/percpu.h"
#include "../../kernel/reactor.h"
#include "../../kernel/string.h"

void virtio_attach(struct virtio_dev *d)
{
    switch (d->device_id) {
    case VIRTIO_ID_NET:
        virtio_net_attach(d);
        return;
    case VIRTIO_ID_BLOCK:
        virtio_blk_attach(d);
        return;
    default:
        klog("%s: device type %u has no driver, left alone", d->name, (unsigned)d->device_id);
    }
}

void virtio_fail(struct virtio_dev *d, const char *why)
{
    d->t->set_status(d, d->t->get_status(d) | VIRTIO_CONFIG_S_FAILED);
    klog("%s: %s; device marked FAILED and skipped", d->name, why);
}

static void reset(struct virtio_dev *d)
{
    d->t->set_status(d, 0);
    /* The device says it finished resetting by reading back 0. */
    for (unsigned i = 0; i < 1000000 && d->t->get_status(d) != 0; i++)
        __asm__ volatile("pause");
}

/* Legacy devices have no FEATURES_OK: the features are final once written (virtio 1.2 §3.1.2). */
static bool negotiate_legacy(struct virtio_dev *d, uint64_t offered, uint64_t wanted)
{
    d->features = offered & wanted & 0xFFFFFFFFull;
    d->t->set_features(d, d->features);
    return true;
}

bool virtio_negotiate(struct virtio_dev *d, uint64_t wanted)
{
    reset(d);
    d->t->set_status(d, VIRTIO_CONFIG_S_ACKNOWLEDGE);
    d->t->set_status(d, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    uint64_t offered = d->t->get_features(d);
    if (d->legacy)
        return negotiate_legacy(d, offered, wanted);
    if (!((offered >> VIRTIO_F_VERSION_1) & 1)) {
        virtio_fail(d, "does not offer VIRTIO_F_VERSION_1 (legacy-only device)");
        return false;
    }
    d->features = offered & (wanted | (1ULL << VIRTIO_F_VERSION_1));
    d->t->set_features(d, d->features);
    d->t->set_status(d, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    if (!(d->t->get_status(d) & VIRTIO_CONFIG_S_FEATURES_OK)) {
        virtio_fail(d, "refused our feature set");
        return false;
    }
    return true;
}

const char *virtio_interface(const struct virtio_dev *d)
{
    return virtio_has(d, VIRTIO_F_VERSION_1) ? "virtio 1.x" : "legacy interface";
}

void virtio_ready(struct virtio_dev *d)
{
    d->t->set_status(d, d->t->get_status(d) | VIRTIO_CONFIG_S_DRIVER_OK);
}

struct virtq *virtio_queue_create(struct virtio_dev *d, unsigned index, unsigned cpu, uint16_t max_size)
{
    if (index >= VIRTIO_MAX_QUEUES || cpu >= cpu_total)
        return 0;
    uint16_t size = d->t->queue_max(d, index);
    if (size == 0)
        return 0;
    if (max_size && size > max_size && !d->fixed_queue_size)
        size = max_size;
    /* Split queues are powers of two; round a device maximum that is not down. */
    if (size & (size - 1)) {
        if (d->fixed_queue_size)
            return 0;
        while (size & (size - 1))
            size &= (uint16_t)(size - 1);
    }
    bool indirect = virtio_has(d, VIRTIO_RING_F_INDIRECT_DESC);
    struct heap *h = &cpu_table[cpu]->heap;
    size_t bytes = virtq_mem_size(size, indirect);
    void *mem = heap_alloc_aligned(h, 4096, bytes);
    struct virtq *vq = heap_alloc(h, sizeof *vq);
    if (!mem || !vq)
        return 0;
    memset(mem, 0, bytes);
    virtq_init(vq, size, mem, indirect, virtio_has(d, VIRTIO_RING_F_EVENT_IDX));
    vq->index = (uint16_t)index;
    d->queue_owner[index] = (uint16_t)cpu;
    if (!d->t->queue_enable(d, vq, cpu))
        return 0;
    d->owner_mask |= 1ULL << cpu;
    return vq;
}

/* How long a shard may halt while it owns a queue without interrupts. */
#define POLLED_QUEUE_MAX_HALT_NS 1000000ULL

void virtio_queue_owner_attach(struct virtq *vq)
{
    if (!vq->irq_routed)
        reactor_limit_halt(POLLED_QUEUE_MAX_HALT_NS);
}

uint32_t virtio_config_read(struct virtio_dev *d, unsigned offset, unsigned width)
{
    return d->t->config_read(d, offset, width);
}

uint64_t virtio_config_read64(struct virtio_dev *d, unsigned offset)
{
    for (;;) {
        uint32_t gen = d->t->config_generation(d);
        uint64_t v = d->t->config_read(d, offset, 4) | (uint64_t)d->t->config_read(d, offset + 4, 4) << 32;
        if (gen == d->t->config_generation(d))
            return v;
    }
}
