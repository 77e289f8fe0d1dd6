/*
 * A virtio device as the drivers see it, whatever the transport
 * (virtio-pci modern or legacy, virtio-mmio version 2 or 1). Transports find devices
 * at boot, fill in a struct virtio_dev and hand it to virtio_attach(),
 * which picks the driver by device ID. Everything here runs on the BSP
 * at boot, before the other shards start, except notify, which the
 * queue's owner calls.
 */
#ifndef DRIVERS_VIRTIO_VIRTIO_H
#define DRIVERS_VIRTIO_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ids.h>
#include "virtq.h"

struct virtio_dev;

struct virtio_transport {
    const char *name;
    uint64_t (*get_features)(struct virtio_dev *d);
    void (*set_features)(struct virtio_dev *d, uint64_t features);
    uint8_t (*get_status)(struct virtio_dev *d);
    void (*set_status)(struct virtio_dev *d, uint8_t status);
    uint32_t (*config_generation)(struct virtio_dev *d);
    /* width 1, 2 or 4 bytes, little-endian device config space */
    uint32_t (*config_read)(struct virtio_dev *d, unsigned offset, unsigned width);
    void (*config_write)(struct virtio_dev *d, unsigned offset, uint32_t value, unsigned width);
    /* Largest size queue `index` accepts; 0 when the device has no such queue. */
    uint16_t (*queue_max)(struct virtio_dev *d, unsigned index);
    /* Tell the device where vq lives, route its interrupt to `cpu`, enable it. */
    bool (*queue_enable)(struct virtio_dev *d, struct virtq *vq, unsigned cpu);
    void (*notify)(struct virtio_dev *d, struct virtq *vq);
};

#define VIRTIO_MAX_QUEUES 130   /* 64 queue pairs + control queue, rounded */

struct virtio_dev {
    const struct virtio_transport *t;
    void *priv;                 /* the transport's */
    uint32_t device_id;         /* VIRTIO_ID_* */
    uint64_t features;          /* negotiated */
    char name[24];              /* for the console: "virtio-mmio@0xfeb00e00" */
    /*
     * The device speaks only the legacy interface (virtio 1.2 "Legacy
     * Interface" sections: virtio-mmio version 1, virtio-pci through its
     * I/O BAR): 32 feature bits, no VIRTIO_F_VERSION_1 and no FEATURES_OK,
     * guest-endian (little on x86) fields, rings at page-aligned PFNs.
     */
    bool legacy;
    bool fixed_queue_size;      /* the device dictates each queue's size (legacy virtio-pci) */
    /* Which shard owns each queue: the transport routes interrupts by it. */
    uint16_t queue_owner[VIRTIO_MAX_QUEUES];
    uint64_t owner_mask;        /* bit s: shard s owns one of the queues */
};

/* Hand a discovered device to its driver. A device with no driver is reported and left alone. */
void virtio_attach(struct virtio_dev *d);

/*
 * Reset, acknowledge, offer `wanted` and check the device accepted the
 * subset it offers. A modern device must offer VIRTIO_F_VERSION_1; a
 * legacy one (d->legacy) is driven through its legacy interface, with no
 * FEATURES_OK step. On failure the device is marked FAILED, the reason
 * printed, and false returned.
 */
bool virtio_negotiate(struct virtio_dev *d, uint64_t wanted);
/* "virtio 1.x" or "legacy", for the console line that names the device. */
const char *virtio_interface(const struct virtio_dev *d);
static inline bool virtio_has(const struct virtio_dev *d, unsigned bit) { return (d->features >> bit) & 1; }
/* DRIVER_OK: queues are set up, the device may start. */
void virtio_ready(struct virtio_dev *d);
/* Mark the device FAILED and say why; the kernel goes on without it. */
void virtio_fail(struct virtio_dev *d, const char *why);

/*
 * Create queue `index` owned by shard `cpu`: memory from that shard's heap,
 * at most max_size entries (0: as large as the device allows; a legacy
 * virtio-pci device's own size whatever max_size says). NULL when the
 * device has no such queue or memory ran out.
 */
struct virtq *virtio_queue_create(struct virtio_dev *d, unsigned index, unsigned cpu, uint16_t max_size);

/*
 * On the queue's owner, once: a queue whose interrupt cannot reach its
 * shard (no MSI-X entry, no IOAPIC route) would let the shard sleep
 * through its completions, so the shard's halts are bounded instead.
 */
void virtio_queue_owner_attach(struct virtq *vq);

/* Ring the queue's doorbell whether or not the device asked (any shard may: it touches no ring). */
static inline void virtio_notify(struct virtio_dev *d, struct virtq *vq) { d->t->notify(d, vq); }

/* Publish what was queued and notify the device if it wants to be. */
static inline void virtio_kick(struct virtio_dev *d, struct virtq *vq)
{
    if (virtq_kick_prepare(vq))
        virtio_notify(d, vq);
}

/* Config space fields; 8 bytes read as two 4-byte halves under the generation counter. */
uint32_t virtio_config_read(struct virtio_dev *d, unsigned offset, unsigned width);
uint64_t virtio_config_read64(struct virtio_dev *d, unsigned offset);

/* Drivers. */
void virtio_net_attach(struct virtio_dev *d);
void virtio_blk_attach(struct virtio_dev *d);

/* Transports: discover devices and attach them. */
struct cmdline;
struct acpi_info;
void virtio_mmio_probe(const struct cmdline *cmd, const struct acpi_info *acpi);
void virtio_pci_probe(const struct acpi_info *acpi);

#endif
