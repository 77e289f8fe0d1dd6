/* Packet buffers: plain heap objects, so they build on the host for tests too. */
#include "netdev.h"
#include "../kernel/malloc.h"

struct netbuf *netbuf_init(void *mem)
{
    struct netbuf *b = mem;
    if (!b)
        return 0;
    *b = (struct netbuf){ 0 };
    b->data = netbuf_base(b) + NETBUF_HEADROOM;
    return b;
}

struct netbuf *netbuf_alloc(void) { return netbuf_init(malloc(NETBUF_SIZE)); }

struct netbuf *netbuf_alloc_frag(void)
{
    struct netbuf *b = netbuf_alloc();
    if (b)
        b->data = netbuf_base(b);
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
