/*
 * What the two virtio-pci interfaces share: the modern one (virtio_pci.c,
 * capabilities in memory BARs) and the legacy one (virtio_pci_legacy.c,
 * registers in I/O BAR 0, for legacy-only and transitional devices).
 * Boot-time only, on the BSP, except the notify address each queue keeps.
 */
#ifndef DRIVERS_VIRTIO_VIRTIO_PCI_H
#define DRIVERS_VIRTIO_VIRTIO_PCI_H

#include <linux/virtio_pci.h>
#include "virtio.h"
#include "../../arch/x86_64/pci.h"

#define PCI_BARS 6

struct pci_vdev {
    struct virtio_dev dev;      /* first: the transport ops get a struct virtio_dev * */
    struct pci_addr addr;
    struct pci_bar bars[PCI_BARS];
    uint8_t bars_read;          /* bitmap: which of bars[] are decoded */
    uint16_t decode;            /* PCI_COMMAND_MEMORY or _IO: where the registers are */
    /* Aim the configuration-change interrupt (VIRTIO_MSI_NO_VECTOR: none). */
    void (*set_msix_config)(struct pci_vdev *v, uint16_t entry);
    /* With the queue selected: aim its interrupt at `entry`; returns what the device kept. */
    uint16_t (*set_queue_vector)(struct pci_vdev *v, uint16_t entry);
    /* modern */
    volatile struct virtio_pci_common_cfg *common;
    volatile uint8_t *notify_base;
    uint64_t notify_len;
    uint32_t notify_mult;
    volatile uint8_t *isr;      /* only INTx needs it (§4.1.4.5); mapped so a fallback could read it */
    volatile uint8_t *device_cfg;
    uint64_t device_cfg_len;
    unsigned pci_cfg_cap;       /* VIRTIO_PCI_CAP_PCI_CFG position, 0 if none; unused: the BARs are mapped */
    /* legacy */
    uint16_t io_base;
    uint32_t io_len;
    /* both */
    volatile uint32_t *msix;    /* the MSI-X table, NULL when interrupts are not available */
    uint16_t msix_size, msix_used;
};

/* BAR i, decoded on first use; NULL for an index that names no BAR. */
const struct pci_bar *virtio_pci_bar(struct pci_vdev *v, unsigned i);
/* With the queue selected: aim its interrupt at `cpu`; true when it reaches its owner (else why, on the console). */
bool virtio_pci_route_queue(struct pci_vdev *v, unsigned index, unsigned cpu);
/* Drive v through its legacy I/O BAR: false (nothing changed) when it has none. */
bool virtio_pci_legacy_setup(struct pci_vdev *v);

#endif
