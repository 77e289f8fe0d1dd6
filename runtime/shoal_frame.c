/*
 * Frames (struct netbuf) as applications see them: raw Ethernet frames and
 * zero-copy TCP receive buffers. Plain heap objects, so the kernel and the
 * Linux backend share this file.
 */
#include "shoal.h"
#include "../drivers/netdev.h"

struct netbuf *shoal_frame_alloc(void) { return netbuf_alloc(); }
void shoal_frame_free(struct netbuf *f) { netbuf_free(f); }
uint8_t *shoal_frame_data(struct netbuf *f) { return f->data; }
uint32_t shoal_frame_len(const struct netbuf *f) { return f->len; }
uint32_t shoal_frame_room(const struct netbuf *f) { return netbuf_room(f); }
struct netbuf *shoal_frame_next(struct netbuf *f) { return f->frag; }
unsigned shoal_frame_queue(const struct netbuf *f) { return f->queue; }

void shoal_frame_set_len(struct netbuf *f, uint32_t len)
{
    uint32_t room = netbuf_room(f);
    f->len = len < room ? len : room;
}

void shoal_frame_pull(struct netbuf *f, uint32_t n)
{
    if (n > f->len)
        n = f->len;
    f->data += n;
    f->len -= n;
}

struct netbuf *shoal_frame_split(struct netbuf *f)
{
    struct netbuf *rest = f->frag;
    f->frag = 0;
    return rest;
}

void shoal_frame_join(struct netbuf *f, struct netbuf *more)
{
    while (f->frag)
        f = f->frag;
    f->frag = more;
}
