/* Packet buffers and the table of network devices (filled at boot, read-only afterwards). */
#include "netdev.h"
#include "../kernel/malloc.h"
#include "../kernel/percpu.h"

static struct netdev *devices[NETDEV_MAX];
static unsigned ndevices;

void netdev_register(struct netdev *d)
{
    if (ndevices < NETDEV_MAX)
        devices[ndevices++] = d;
}

struct netdev *netdev_get(unsigned index) { return index < ndevices ? devices[index] : 0; }
unsigned netdev_count(void) { return ndevices; }

struct netbuf *netbuf_alloc(void)
{
    struct netbuf *b = malloc(NETBUF_SIZE);
    if (!b)
        return 0;
    *b = (struct netbuf){ .owner = (uint16_t)this_cpu_id() };
    b->data = netbuf_base(b) + NETBUF_HEADROOM;
    return b;
}

void netbuf_free(struct netbuf *b)
{
    while (b) {
        struct netbuf *f = b->frag;
        free(b);
        b = f;
    }
}

uint32_t netbuf_frame_len(const struct netbuf *b)
{
    uint32_t n = 0;
    for (; b; b = b->frag)
        n += b->len;
    return n;
}
