/*
 * virtio-pci modern transport (virtio 1.2 §4.1). Devices are found by a
 * PCI scan at boot; vendor capabilities say in which BAR the common, notify,
 * ISR and device-specific structures live. Each queue gets its own MSI-X
 * table entry aimed at the LAPIC of the shard that owns it, with the
 * VEC_QUEUE vector: the interrupt only has to wake that shard, whose reactor
 * then polls its queues. Notifications are 16-bit writes of the queue
 * index to an address fixed when the queue is enabled, so the data path
 * never touches configuration space.
 */
#include <linux/pci_regs.h>
#include <linux/virtio_pci.h>
#include "virtio.h"
#include "virtio_pci.h"
#include "../../arch/x86_64/layout.h"
#include "../../arch/x86_64/pci.h"
#include "../../arch/x86_64/smp.h"
#include "../../kernel/console.h"
#include "../../kernel/format.h"
#include "../../kernel/malloc.h"

#define VIRTIO_PCI_VENDOR        0x1AF4
#define VIRTIO_PCI_TRANSITIONAL0 0x1000
#define VIRTIO_PCI_TRANSITIONAL1 0x103F
#define VIRTIO_PCI_MODERN0       0x1040
#define VIRTIO_PCI_MODERN1       0x107F

/* MSI message address (Intel SDM vol. 3 §11.11.1): physical destination, no redirection. */
#define MSI_ADDRESS_BASE         0xFEE00000u
#define MSI_MAX_APIC_ID          255

static struct pci_vdev *to_pci(struct virtio_dev *d) { return (struct pci_vdev *)d; }

/* ---- struct virtio_transport ---- */

static uint64_t get_features(struct virtio_dev *d)
{
    volatile struct virtio_pci_common_cfg *c = to_pci(d)->common;
    c->device_feature_select = 1;
    uint64_t hi = c->device_feature;
    c->device_feature_select = 0;
    return hi << 32 | c->device_feature;
}

static void set_features(struct virtio_dev *d, uint64_t f)
{
    volatile struct virtio_pci_common_cfg *c = to_pci(d)->common;
    c->guest_feature_select = 1;
    c->guest_feature = (uint32_t)(f >> 32);
    c->guest_feature_select = 0;
    c->guest_feature = (uint32_t)f;
}

static uint8_t get_status(struct virtio_dev *d) { return to_pci(d)->common->device_status; }
static void set_status(struct virtio_dev *d, uint8_t s) { to_pci(d)->common->device_status = s; }
static uint32_t config_generation(struct virtio_dev *d) { return to_pci(d)->common->config_generation; }

/* The device config field at off, or NULL when it lies outside the structure. */
static volatile uint8_t *device_field(struct virtio_dev *d, unsigned off, unsigned width)
{
    struct pci_vdev *v = to_pci(d);
    if (!v->device_cfg || (uint64_t)off + width > v->device_cfg_len)
        return 0;
    return v->device_cfg + off;
}

static uint32_t config_read(struct virtio_dev *d, unsigned off, unsigned width)
{
    volatile uint8_t *p = device_field(d, off, width);
    if (!p)
        return 0;
    switch (width) {
    case 1: return *p;
    case 2: return *(volatile uint16_t *)p;
    default: return *(volatile uint32_t *)p;
    }
}

static void config_write(struct virtio_dev *d, unsigned off, uint32_t v, unsigned width)
{
    volatile uint8_t *p = device_field(d, off, width);
    if (!p)
        return;
    switch (width) {
    case 1: *p = (uint8_t)v; break;
    case 2: *(volatile uint16_t *)p = (uint16_t)v; break;
    default: *(volatile uint32_t *)p = v; break;
    }
}

static uint16_t queue_max(struct virtio_dev *d, unsigned index)
{
    volatile struct virtio_pci_common_cfg *c = to_pci(d)->common;
    if (index >= c->num_queues)
        return 0;
    c->queue_select = (uint16_t)index;
    if (c->queue_enable)
        return 0;
    uint16_t n = c->queue_size;
    return n > 32768 ? 32768 : n;
}

static uint32_t msi_address(unsigned cpu) { return MSI_ADDRESS_BASE | cpu_apic_ids[cpu] << 12; }

static void msix_program(struct pci_vdev *v, uint16_t entry, unsigned cpu)
{
    volatile uint32_t *e = v->msix + (unsigned)entry * PCI_MSIX_ENTRY_SIZE / 4;
    e[PCI_MSIX_ENTRY_VECTOR_CTRL / 4] = PCI_MSIX_ENTRY_CTRL_MASKBIT;
    e[PCI_MSIX_ENTRY_LOWER_ADDR / 4] = msi_address(cpu);
    e[PCI_MSIX_ENTRY_UPPER_ADDR / 4] = 0;
    e[PCI_MSIX_ENTRY_DATA / 4] = VEC_QUEUE; /* fixed delivery, edge */
    e[PCI_MSIX_ENTRY_VECTOR_CTRL / 4] = 0;
}

/*
 * A fresh table entry for a queue of `cpu`; once the table is used up,
 * one already aimed at that CPU (the vector is the same for every queue).
 * VIRTIO_MSI_NO_VECTOR when neither exists.
 */
static uint16_t msix_entry_for(struct pci_vdev *v, unsigned cpu)
{
    if (v->msix_used < v->msix_size) {
        msix_program(v, v->msix_used, cpu);
        return v->msix_used++;
    }
    for (uint16_t i = 0; i < v->msix_size; i++)
        if (v->msix[i * PCI_MSIX_ENTRY_SIZE / 4 + PCI_MSIX_ENTRY_LOWER_ADDR / 4] == msi_address(cpu))
            return i;
    return VIRTIO_MSI_NO_VECTOR;
}

/* An MSI-X table entry aimed at `cpu` for queue `index`, or VIRTIO_MSI_NO_VECTOR (and why). */
static uint16_t msix_pick(struct pci_vdev *v, unsigned index, unsigned cpu)
{
    if (!v->msix)
        return VIRTIO_MSI_NO_VECTOR;
    if (cpu >= cpu_count || cpu_apic_ids[cpu] > MSI_MAX_APIC_ID) {
        klog("%s: cpu %u cannot be an MSI target; queue %u is polled only", v->dev.name, cpu, index);
        return VIRTIO_MSI_NO_VECTOR;
    }
    uint16_t entry = msix_entry_for(v, cpu);
    if (entry == VIRTIO_MSI_NO_VECTOR)
        klog("%s: no MSI-X entry left for queue %u; it is polled only", v->dev.name, index);
    return entry;
}

bool virtio_pci_route_queue(struct pci_vdev *v, unsigned index, unsigned cpu)
{
    uint16_t entry = msix_pick(v, index, cpu);
    if (entry == VIRTIO_MSI_NO_VECTOR)
        return false;
    if (v->set_queue_vector(v, entry) != entry) {
        klog("%s: device refused MSI-X entry %u for queue %u; it is polled only", v->dev.name,
             (unsigned)entry, index);
        return false;
    }
    return true;
}

/* With queue_select already set: where notifications of that queue go, or NULL if out of bounds. */
static volatile uint16_t *doorbell(struct pci_vdev *v)
{
    uint64_t off = (uint64_t)v->common->queue_notify_off * v->notify_mult;
    if (off + 2 > v->notify_len)
        return 0;
    return (volatile uint16_t *)(v->notify_base + off);
}

static bool queue_enable(struct virtio_dev *d, struct virtq *vq, unsigned cpu)
{
    struct pci_vdev *v = to_pci(d);
    volatile struct virtio_pci_common_cfg *c = v->common;
    c->queue_select = vq->index;
    volatile uint16_t *bell = doorbell(v);
    if (!bell) {
        klog("%s: queue %u notify address lies outside the notify region", d->name, (unsigned)vq->index);
        return false;
    }
    vq->transport = (void *)(uintptr_t)bell;
    c->queue_size = vq->size;
    c->queue_desc_lo = (uint32_t)virtq_desc_addr(vq);
    c->queue_desc_hi = (uint32_t)(virtq_desc_addr(vq) >> 32);
    c->queue_avail_lo = (uint32_t)virtq_avail_addr(vq);
    c->queue_avail_hi = (uint32_t)(virtq_avail_addr(vq) >> 32);
    c->queue_used_lo = (uint32_t)virtq_used_addr(vq);
    c->queue_used_hi = (uint32_t)(virtq_used_addr(vq) >> 32);
    vq->irq_routed = virtio_pci_route_queue(v, vq->index, cpu);
    c->queue_enable = 1;
    return c->queue_enable == 1;
}

/* The queue's owner calls this on the data path: one uncached 16-bit store, nothing else. */
static void notify(struct virtio_dev *d, struct virtq *vq)
{
    (void)d;
    *(volatile uint16_t *)vq->transport = vq->index;
}

static const struct virtio_transport pci_transport = {
    .name = "virtio-pci",
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

/* ---- discovery ---- */

/* Device type from the PCI IDs (virtio 1.2 §4.1.2.1); 0 when not a virtio device. */
static uint32_t device_type(struct pci_addr a, bool *transitional)
{
    if (pci_read16(a, PCI_VENDOR_ID) != VIRTIO_PCI_VENDOR)
        return 0;
    uint16_t id = pci_read16(a, PCI_DEVICE_ID);
    *transitional = id >= VIRTIO_PCI_TRANSITIONAL0 && id <= VIRTIO_PCI_TRANSITIONAL1;
    if (*transitional)
        return pci_read16(a, PCI_SUBSYSTEM_ID);
    if (id >= VIRTIO_PCI_MODERN0 && id <= VIRTIO_PCI_MODERN1)
        return id - VIRTIO_PCI_MODERN0;
    return 0;
}

/*
 * BAR `i`, decoded on first use: sizing a BAR toggles memory decoding,
 * which costs the hypervisor a remap each time, so BARs that no capability
 * names are never sized. NULL for an index that names no BAR.
 */
const struct pci_bar *virtio_pci_bar(struct pci_vdev *v, unsigned i)
{
    if (i >= PCI_BARS)
        return 0;
    if (!(v->bars_read >> i & 1)) {
        if (!pci_read_bar(v->addr, i, &v->bars[i]))
            v->bars[i] = (struct pci_bar){ 0 };
        v->bars_read |= (uint8_t)(1u << i);
    }
    return &v->bars[i];
}

static unsigned next_vendor_cap(struct pci_vdev *v, unsigned after)
{
    return pci_find_cap(v->addr, PCI_CAP_ID_VNDR, after);
}

/*
 * Map the first structure of `type` (the spec lets a device offer several,
 * best first) that is at least min_len long and lies in a usable memory
 * BAR. Its position in config space and length go to *pos and *len.
 */
static volatile uint8_t *map_structure(struct pci_vdev *v, uint8_t type, uint64_t min_len, unsigned *pos,
                                       uint64_t *len)
{
    for (unsigned cap = next_vendor_cap(v, 0); cap; cap = next_vendor_cap(v, cap)) {
        if (pci_read8(v->addr, cap + VIRTIO_PCI_CAP_CFG_TYPE) != type)
            continue;
        const struct pci_bar *b = virtio_pci_bar(v, pci_read8(v->addr, cap + VIRTIO_PCI_CAP_BAR));
        uint32_t off = pci_read32(v->addr, cap + VIRTIO_PCI_CAP_OFFSET);
        uint32_t n = pci_read32(v->addr, cap + VIRTIO_PCI_CAP_LENGTH);
        if (!b || n < min_len)
            continue;
        volatile uint8_t *p = pci_map_bar(b, off, n);
        if (!p)
            continue;
        *pos = cap;
        *len = n;
        return p;
    }
    return 0;
}

/* False when the device lacks the structures a modern driver needs. */
static bool map_structures(struct pci_vdev *v)
{
    unsigned pos;
    uint64_t len;
    v->common = (volatile struct virtio_pci_common_cfg *)map_structure(
        v, VIRTIO_PCI_CAP_COMMON_CFG, sizeof(struct virtio_pci_common_cfg), &pos, &len);
    v->notify_base = map_structure(v, VIRTIO_PCI_CAP_NOTIFY_CFG, 2, &pos, &v->notify_len);
    if (v->notify_base)
        v->notify_mult = pci_read32(v->addr, pos + VIRTIO_PCI_NOTIFY_CAP_MULT);
    v->isr = map_structure(v, VIRTIO_PCI_CAP_ISR_CFG, 1, &pos, &len);
    v->device_cfg = map_structure(v, VIRTIO_PCI_CAP_DEVICE_CFG, 0, &pos, &v->device_cfg_len);
    for (unsigned cap = next_vendor_cap(v, 0); cap && !v->pci_cfg_cap; cap = next_vendor_cap(v, cap))
        if (pci_read8(v->addr, cap + VIRTIO_PCI_CAP_CFG_TYPE) == VIRTIO_PCI_CAP_PCI_CFG)
            v->pci_cfg_cap = cap;
    return v->common && v->notify_base;
}

/*
 * Enable MSI-X with every entry masked; queue_enable() unmasks the entries
 * it aims at a shard. The configuration-change interrupt stays off (the
 * transport's set_msix_config): the drivers read the config space when
 * they need it.
 */
static void setup_msix(struct pci_vdev *v)
{
    unsigned cap = pci_find_cap(v->addr, PCI_CAP_ID_MSIX, 0);
    if (!cap)
        return;
    uint16_t ctrl = pci_read16(v->addr, cap + PCI_MSIX_FLAGS);
    uint32_t table = pci_read32(v->addr, cap + PCI_MSIX_TABLE);
    uint16_t size = (uint16_t)((ctrl & PCI_MSIX_FLAGS_QSIZE) + 1);
    const struct pci_bar *b = virtio_pci_bar(v, table & PCI_MSIX_TABLE_BIR);
    uint64_t bytes = (uint64_t)size * PCI_MSIX_ENTRY_SIZE;
    volatile uint32_t *t = b ? pci_map_bar(b, table & PCI_MSIX_TABLE_OFFSET, bytes) : 0;
    if (!t)
        return;
    pci_write16(v->addr, cap + PCI_MSIX_FLAGS, ctrl | PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    for (unsigned i = 0; i < size; i++)
        t[i * PCI_MSIX_ENTRY_SIZE / 4 + PCI_MSIX_ENTRY_VECTOR_CTRL / 4] = PCI_MSIX_ENTRY_CTRL_MASKBIT;
    pci_write16(v->addr, cap + PCI_MSIX_FLAGS, (ctrl | PCI_MSIX_FLAGS_ENABLE) & ~PCI_MSIX_FLAGS_MASKALL);
    v->msix = t;
    v->msix_size = size;
}

static void modern_msix_config(struct pci_vdev *v, uint16_t entry) { v->common->msix_config = entry; }
static uint16_t modern_queue_vector(struct pci_vdev *v, uint16_t entry)
{
    v->common->queue_msix_vector = entry;
    return v->common->queue_msix_vector;
}

/* The modern interface when the device has it (the spec's preference), else the legacy one. */
static bool choose_interface(struct pci_vdev *v, bool transitional)
{
    if (map_structures(v)) {
        v->dev.t = &pci_transport;
        v->set_msix_config = modern_msix_config;
        v->set_queue_vector = modern_queue_vector;
        v->decode = PCI_COMMAND_MEMORY;
        return true;
    }
    if (transitional && virtio_pci_legacy_setup(v))
        return true;
    klog("%s: no usable virtio 1.x capabilities%s, skipped", v->dev.name,
         transitional ? " and no legacy I/O BAR" : " (broken modern device)");
    return false;
}

static void probe_function(struct pci_addr a, void *arg)
{
    (void)arg;
    bool transitional = false;
    uint32_t type = device_type(a, &transitional);
    if (!type)
        return;
    struct pci_vdev *v = calloc(1, sizeof *v);
    if (!v) {
        klog("virtio-pci@%02x:%02x.%x: out of memory, skipped", a.bus, a.dev, a.fn);
        return;
    }
    v->addr = a;
    v->dev.priv = v;
    v->dev.device_id = type;
    fmt_snprintf(v->dev.name, sizeof v->dev.name, "virtio-pci@%02x:%02x.%x", a.bus, a.dev, a.fn);
    if (!choose_interface(v, transitional)) {
        free(v);
        return;
    }
    /* The MSI-X table is in a memory BAR whichever interface carries the registers. */
    pci_enable(a, v->decode | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    setup_msix(v);
    if (v->msix)
        v->set_msix_config(v, VIRTIO_MSI_NO_VECTOR);
    const char *via = v->dev.legacy ? "legacy I/O BAR" : "modern capabilities";
    if (v->msix)
        klog("%s: device type %u, %s via %s, %u MSI-X entries", v->dev.name, (unsigned)type, via,
             pci_mechanism(), (unsigned)v->msix_size);
    else
        klog("%s: device type %u, %s via %s, no MSI-X: its queues are polled only, their shards never halt longer than 1 ms",
             v->dev.name, (unsigned)type, via, pci_mechanism());
    virtio_attach(&v->dev);
}

void virtio_pci_probe(const struct acpi_info *acpi)
{
    pci_init(acpi);
    pci_scan(probe_function, 0);
}
