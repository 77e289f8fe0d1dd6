/*
 * The legacy virtio-pci interface (virtio 1.2 §4.1.4.10, "Legacy
 * Interfaces: A Note on PCI Device Layout"), for legacy-only devices
 * (`disable-modern=on`) and transitional ones whose modern capabilities
 * cannot be used. Registers are in I/O BAR 0:
 *
 *   0x00 host features  0x04 guest features  0x08 queue PFN  0x0C queue size
 *   0x0E queue select   0x10 queue notify    0x12 status     0x13 ISR
 *   0x14 MSI-X config vector, 0x16 MSI-X queue vector (only while MSI-X is on)
 *
 * and the device config follows at 0x14, or at 0x18 while MSI-X is enabled.
 * A queue is one 4 KiB-aligned block (virtq.c's layout) of the size the
 * device dictates. Port I/O may be done from any CPU, so a notify is one
 * `out` to a port fixed when the queue is enabled.
 */
#include <linux/pci_regs.h>
#include "virtio_pci.h"
#include "../../arch/x86_64/cpu.h"
#include "../../kernel/console.h"

#define LEGACY_MIN_BAR  0x14
#define LEGACY_PAGE     4096u

static struct pci_vdev *to_pci(struct virtio_dev *d) { return (struct pci_vdev *)d; }
static uint16_t port(struct virtio_dev *d, unsigned reg) { return (uint16_t)(to_pci(d)->io_base + reg); }

static uint64_t get_features(struct virtio_dev *d) { return inl(port(d, VIRTIO_PCI_HOST_FEATURES)); }
static void set_features(struct virtio_dev *d, uint64_t f) { outl(port(d, VIRTIO_PCI_GUEST_FEATURES), (uint32_t)f); }
static uint8_t get_status(struct virtio_dev *d) { return inb(port(d, VIRTIO_PCI_STATUS)); }
static void set_status(struct virtio_dev *d, uint8_t s) { outb(port(d, VIRTIO_PCI_STATUS), s); }
/* No generation counter in the legacy interface. */
static uint32_t config_generation(struct virtio_dev *d) { (void)d; return 0; }

/* Port of device config byte `off`, or 0 when the field does not fit in the BAR. */
static uint16_t config_port(struct virtio_dev *d, unsigned off, unsigned width)
{
    struct pci_vdev *v = to_pci(d);
    unsigned start = VIRTIO_PCI_CONFIG_OFF(v->msix != 0) + off;
    if (start + width > v->io_len)
        return 0;
    return port(d, start);
}

static uint32_t config_read(struct virtio_dev *d, unsigned off, unsigned width)
{
    uint16_t p = config_port(d, off, width);
    if (!p)
        return 0;
    switch (width) {
    case 1: return inb(p);
    case 2: return inw(p);
    default: return inl(p);
    }
}

static void config_write(struct virtio_dev *d, unsigned off, uint32_t v, unsigned width)
{
    uint16_t p = config_port(d, off, width);
    if (!p)
        return;
    switch (width) {
    case 1: outb(p, (uint8_t)v); break;
    case 2: outw(p, (uint16_t)v); break;
    default: outl(p, v); break;
    }
}

/* The device's size for the queue (it cannot be changed here), 0 when absent or in use. */
static uint16_t queue_max(struct virtio_dev *d, unsigned index)
{
    outw(port(d, VIRTIO_PCI_QUEUE_SEL), (uint16_t)index);
    if (inl(port(d, VIRTIO_PCI_QUEUE_PFN)))
        return 0;
    uint16_t n = inw(port(d, VIRTIO_PCI_QUEUE_NUM));
    return n > 32768 ? 32768 : n;
}

static bool queue_enable(struct virtio_dev *d, struct virtq *vq, unsigned cpu)
{
    struct pci_vdev *v = to_pci(d);
    uint64_t addr = virtq_desc_addr(vq);
    outw(port(d, VIRTIO_PCI_QUEUE_SEL), vq->index);
    if (inw(port(d, VIRTIO_PCI_QUEUE_NUM)) != vq->size || (addr & (LEGACY_PAGE - 1)) ||
        addr / LEGACY_PAGE > 0xFFFFFFFFu) {
        klog("%s: queue %u cannot be placed (size %u, ring at 0x%lx)", d->name, (unsigned)vq->index,
             (unsigned)vq->size, (unsigned long)addr);
        return false;
    }
    vq->transport = (void *)(uintptr_t)port(d, VIRTIO_PCI_QUEUE_NOTIFY);
    /* The vector is set before the ring goes live, as Linux's legacy driver does. */
    vq->irq_routed = virtio_pci_route_queue(v, vq->index, cpu);
    outl(port(d, VIRTIO_PCI_QUEUE_PFN), (uint32_t)(addr / LEGACY_PAGE));
    return inl(port(d, VIRTIO_PCI_QUEUE_PFN)) == (uint32_t)(addr / LEGACY_PAGE);
}

static void notify(struct virtio_dev *d, struct virtq *vq)
{
    (void)d;
    outw((uint16_t)(uintptr_t)vq->transport, vq->index);
}

static const struct virtio_transport legacy_transport = {
    .name = "virtio-pci legacy",
    .get_features = get_features,
    .set_features = set_features,
    .get_status = get_status,
    .set_status = set_status,
    .config_generation = config_generation,
    .config_read = config_read,
    .config_write = config_write,
    .queue_max = queue_max,
    .queue_enable = queue_enable,
    .notify = notify,
};

static void set_msix_config(struct pci_vdev *v, uint16_t entry)
{
    outw(port(&v->dev, VIRTIO_MSI_CONFIG_VECTOR), entry);
}

static uint16_t set_queue_vector(struct pci_vdev *v, uint16_t entry)
{
    outw(port(&v->dev, VIRTIO_MSI_QUEUE_VECTOR), entry);
    return inw(port(&v->dev, VIRTIO_MSI_QUEUE_VECTOR));
}

bool virtio_pci_legacy_setup(struct pci_vdev *v)
{
    const struct pci_bar *b = virtio_pci_bar(v, 0);
    if (!b || !b->io || !b->base || b->base + b->size > 0x10000 || b->size < LEGACY_MIN_BAR)
        return false;
    v->io_base = (uint16_t)b->base;
    v->io_len = (uint32_t)b->size;
    v->dev.t = &legacy_transport;
    v->dev.legacy = true;
    v->dev.fixed_queue_size = true;
    v->set_msix_config = set_msix_config;
    v->set_queue_vector = set_queue_vector;
    v->decode = PCI_COMMAND_IO;
    return true;
}
