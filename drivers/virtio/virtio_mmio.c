/*
 * virtio-mmio transport (virtio 1.2 §4.2), version 2 and the legacy
 * version 1 (§4.2.4), which is what QEMU's microvm offers unless told
 * `-global virtio-mmio.force-legacy=false`. Devices are found
 * from `virtio_mmio.device=SIZE@BASE:IRQ` words on the command line (QEMU
 * microvm with acpi=off, Firecracker) or, failing those, from the DSDT's
 * LNRO0005 devices (microvm with ACPI). Each device has one interrupt line,
 * routed through the IOAPIC to shard 0; its handler wakes every shard that
 * owns one of the device's queues.
 */
#include <linux/virtio_mmio.h>
#include "virtio.h"
#include "../../arch/x86_64/acpi.h"
#include "../../arch/x86_64/irq.h"
#include "../../arch/x86_64/paging.h"
#include "../../arch/x86_64/smp.h"
#include "../../kernel/cmdline.h"
#include "../../kernel/console.h"
#include "../../kernel/format.h"
#include "../../kernel/malloc.h"
#include "../../kernel/percpu.h"
#include "../../kernel/reactor.h"
#include "../../kernel/string.h"

#define MMIO_MAGIC 0x74726976u /* "virt" */
#define LEGACY_PAGE 4096u      /* GuestPageSize and QueueAlign we give a version 1 device */
#define MAX_MMIO_DEVICES 32

struct mmio_dev {
    struct virtio_dev dev;
    volatile uint8_t *base;
    bool irq_routed;
};

static struct mmio_dev *to_mmio(struct virtio_dev *d) { return (struct mmio_dev *)d; }
static uint32_t rd(struct virtio_dev *d, unsigned reg) { return *(volatile uint32_t *)(to_mmio(d)->base + reg); }
static void wr(struct virtio_dev *d, unsigned reg, uint32_t v) { *(volatile uint32_t *)(to_mmio(d)->base + reg) = v; }

static uint64_t get_features(struct virtio_dev *d)
{
    wr(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    uint64_t hi = rd(d, VIRTIO_MMIO_DEVICE_FEATURES);
    wr(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    return hi << 32 | rd(d, VIRTIO_MMIO_DEVICE_FEATURES);
}

static void set_features(struct virtio_dev *d, uint64_t f)
{
    wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    wr(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
    wr(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    wr(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
}

static uint8_t get_status(struct virtio_dev *d) { return (uint8_t)rd(d, VIRTIO_MMIO_STATUS); }
static void set_status(struct virtio_dev *d, uint8_t s) { wr(d, VIRTIO_MMIO_STATUS, s); }
/* Version 1 has no generation counter: config reads are taken as they come, as legacy drivers do. */
static uint32_t config_generation(struct virtio_dev *d)
{
    return d->legacy ? 0 : rd(d, VIRTIO_MMIO_CONFIG_GENERATION);
}

static uint32_t config_read(struct virtio_dev *d, unsigned off, unsigned width)
{
    volatile uint8_t *p = to_mmio(d)->base + VIRTIO_MMIO_CONFIG + off;
    switch (width) {
    case 1: return *p;
    case 2: return *(volatile uint16_t *)p;
    default: return *(volatile uint32_t *)p;
    }
}

static void config_write(struct virtio_dev *d, unsigned off, uint32_t v, unsigned width)
{
    volatile uint8_t *p = to_mmio(d)->base + VIRTIO_MMIO_CONFIG + off;
    switch (width) {
    case 1: *p = (uint8_t)v; break;
    case 2: *(volatile uint16_t *)p = (uint16_t)v; break;
    default: *(volatile uint32_t *)p = v; break;
    }
}

/* A queue in use reads QueueReady (version 2) or a non-zero QueuePFN (version 1). */
static bool queue_in_use(struct virtio_dev *d)
{
    return rd(d, d->legacy ? VIRTIO_MMIO_QUEUE_PFN : VIRTIO_MMIO_QUEUE_READY) != 0;
}

static uint16_t queue_max(struct virtio_dev *d, unsigned index)
{
    wr(d, VIRTIO_MMIO_QUEUE_SEL, index);
    if (queue_in_use(d))
        return 0;
    uint32_t n = rd(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
    return n > 32768 ? 32768 : (uint16_t)n;
}

/*
 * Version 1: one contiguous ring at a page frame number, its used ring at
 * the next QueueAlign boundary after the available ring: virtq.c's layout
 * with LEGACY_PAGE alignment (tests/unit/test_virtq.c checks that).
 */
static bool queue_enable_legacy(struct virtio_dev *d, struct virtq *vq)
{
    uint64_t addr = virtq_desc_addr(vq);
    if ((addr & (LEGACY_PAGE - 1)) || addr / LEGACY_PAGE > 0xFFFFFFFFu)
        return false;
    /* The unit of QueuePFN; written with every queue, so no reset can leave it unset. */
    wr(d, VIRTIO_MMIO_GUEST_PAGE_SIZE, LEGACY_PAGE);
    wr(d, VIRTIO_MMIO_QUEUE_NUM, vq->size);
    wr(d, VIRTIO_MMIO_QUEUE_ALIGN, LEGACY_PAGE);
    wr(d, VIRTIO_MMIO_QUEUE_PFN, (uint32_t)(addr / LEGACY_PAGE));
    return rd(d, VIRTIO_MMIO_QUEUE_PFN) == (uint32_t)(addr / LEGACY_PAGE);
}

static bool queue_enable(struct virtio_dev *d, struct virtq *vq, unsigned cpu)
{
    (void)cpu; /* one line per device: the handler wakes the owners */
    vq->irq_routed = to_mmio(d)->irq_routed;
    wr(d, VIRTIO_MMIO_QUEUE_SEL, vq->index);
    if (d->legacy)
        return queue_enable_legacy(d, vq);
    wr(d, VIRTIO_MMIO_QUEUE_NUM, vq->size);
    wr(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)virtq_desc_addr(vq));
    wr(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(virtq_desc_addr(vq) >> 32));
    wr(d, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (uint32_t)virtq_avail_addr(vq));
    wr(d, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, (uint32_t)(virtq_avail_addr(vq) >> 32));
    wr(d, VIRTIO_MMIO_QUEUE_USED_LOW, (uint32_t)virtq_used_addr(vq));
    wr(d, VIRTIO_MMIO_QUEUE_USED_HIGH, (uint32_t)(virtq_used_addr(vq) >> 32));
    wr(d, VIRTIO_MMIO_QUEUE_READY, 1);
    return rd(d, VIRTIO_MMIO_QUEUE_READY) == 1;
}

static void notify(struct virtio_dev *d, struct virtq *vq) { wr(d, VIRTIO_MMIO_QUEUE_NOTIFY, vq->index); }

static const struct virtio_transport mmio_transport = {
    .name = "virtio-mmio",
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

/* Runs on shard 0 with interrupts off: acknowledge, then wake the queue owners. */
static void mmio_irq(void *arg)
{
    struct mmio_dev *m = arg;
    uint32_t status = rd(&m->dev, VIRTIO_MMIO_INTERRUPT_STATUS);
    wr(&m->dev, VIRTIO_MMIO_INTERRUPT_ACK, status);
    uint64_t others = m->dev.owner_mask & ~(1ULL << this_cpu_id());
    for (; others; others &= others - 1)
        reactor_wake((unsigned)__builtin_ctzll(others));
}

static void probe_one(uint64_t base, uint64_t size, uint32_t gsi)
{
    if (size < 0x200 || size > 0x10000 || (base & 3))
        return;
    paging_map_mmio(base & ~0xFFFULL, ((base & 0xFFF) + size + 0xFFF) & ~0xFFFULL);
    volatile uint8_t *b = (volatile uint8_t *)(uintptr_t)base;
    uint32_t magic = *(volatile uint32_t *)(b + VIRTIO_MMIO_MAGIC_VALUE);
    uint32_t version = *(volatile uint32_t *)(b + VIRTIO_MMIO_VERSION);
    uint32_t id = *(volatile uint32_t *)(b + VIRTIO_MMIO_DEVICE_ID);
    if (magic != MMIO_MAGIC || id == 0)
        return; /* an empty slot */
    if (version != 1 && version != 2) {
        klog("virtio-mmio@0x%lx: unknown version %u, skipped", (unsigned long)base, (unsigned)version);
        return;
    }
    struct mmio_dev *m = calloc(1, sizeof *m);
    if (!m)
        return;
    m->base = b;
    m->dev.legacy = version == 1;
    m->dev.t = &mmio_transport;
    m->dev.device_id = id;
    fmt_snprintf(m->dev.name, sizeof m->dev.name, "virtio-mmio@0x%lx", (unsigned long)base);
    unsigned vec = irq_claim_vector(mmio_irq, m);
    m->irq_routed = vec && ioapic_route(gsi, (uint8_t)vec, cpu_apic_ids[0]) == 0;
    if (!m->irq_routed)
        klog("%s: cannot route irq %u; its queues are polled only", m->dev.name, (unsigned)gsi);
    virtio_attach(&m->dev);
}

/* "512@0xfeb00e00:12" (size may carry K or M), as Linux's virtio_mmio.device= takes it. */
static bool parse_device_word(const char *s, uint64_t *base, uint64_t *size, uint32_t *irq)
{
    const char *p;
    uint64_t sz, b, i;
    if (!cmdline_parse_number(s, &p, &sz))
        return false;
    if (*p == 'K' || *p == 'k')
        sz <<= 10, p++;
    else if (*p == 'M' || *p == 'm')
        sz <<= 20, p++;
    if (*p++ != '@' || !cmdline_parse_number(p, &p, &b) || *p++ != ':' || !cmdline_parse_number(p, &p, &i))
        return false;
    if ((*p && *p != ':') || i > 255)
        return false;
    *base = b, *size = sz, *irq = (uint32_t)i;
    return true;
}

/*
 * QEMU microvm's DSDT describes each transport as a Device with _HID
 * "LNRO0005" whose _CRS holds a Memory32Fixed and an Extended Interrupt
 * descriptor; both follow the _HID closely. A full AML interpreter is not
 * needed to read those two values back.
 */
static unsigned probe_dsdt(const struct acpi_info *acpi)
{
    const struct acpi_sdt_header *h = acpi ? acpi_find_table(acpi, "DSDT") : 0;
    if (!h)
        return 0;
    const uint8_t *t = (const uint8_t *)h;
    unsigned found = 0;
    for (uint32_t i = sizeof *h; i + 8 <= h->length; i++) {
        if (memcmp(t + i, "LNRO0005", 8) != 0)
            continue;
        uint64_t base = 0, size = 0;
        uint32_t gsi = 0;
        bool have_mem = false, have_irq = false;
        for (uint32_t j = i + 8; j + 12 <= h->length && j < i + 160 && !(have_mem && have_irq); j++) {
            if (!have_mem && t[j] == 0x86 && t[j + 1] == 0x09 && t[j + 2] == 0x00) {
                base = (uint32_t)(t[j + 4] | t[j + 5] << 8 | t[j + 6] << 16 | (uint32_t)t[j + 7] << 24);
                size = (uint32_t)(t[j + 8] | t[j + 9] << 8 | t[j + 10] << 16 | (uint32_t)t[j + 11] << 24);
                have_mem = true;
            } else if (!have_irq && t[j] == 0x89 && t[j + 1] >= 6 && t[j + 2] == 0 && t[j + 4] >= 1) {
                gsi = (uint32_t)(t[j + 5] | t[j + 6] << 8 | t[j + 7] << 16 | (uint32_t)t[j + 8] << 24);
                have_irq = true;
            }
        }
        if (have_mem && have_irq) {
            probe_one(base, size, gsi);
            found++;
        }
    }
    return found;
}

void virtio_mmio_probe(const struct cmdline *cmd, const struct acpi_info *acpi)
{
    const char *words[MAX_MMIO_DEVICES];
    int n = cmdline_get_all(cmd, "virtio_mmio.device", words, MAX_MMIO_DEVICES);
    for (int i = 0; i < n; i++) {
        uint64_t base, size;
        uint32_t irq;
        if (parse_device_word(words[i], &base, &size, &irq))
            probe_one(base, size, irq);
        else
            klog("virtio-mmio: cannot parse virtio_mmio.device=%s, ignored", words[i]);
    }
    if (n == 0)
        probe_dsdt(acpi);
}
