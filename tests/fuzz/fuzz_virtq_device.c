/*
 * A hostile device against the driver's side of a split virtqueue: the
 * input decides what the driver adds and what the "device" writes into
 * the used ring (any ids, any lengths, any index jumps, the event fields).
 * The driver may lose buffers the device lies about, but must never
 * touch memory outside the queue, hand back a cookie it does not hold,
 * or corrupt its free list.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../drivers/virtio/virtq.c"

#define QSIZE 16

struct input {
    const uint8_t *p;
    size_t n;
};

static int next(struct input *in)
{
    if (in->n == 0)
        return -1;
    in->n--;
    return *in->p++;
}

/* Operands past the end of the input read as 0. */
static unsigned byte(struct input *in)
{
    int b = next(in);
    return b < 0 ? 0 : (unsigned)b;
}

static void check_free_list(struct virtq *vq)
{
    unsigned n = 0;
    for (uint16_t i = vq->free_head; n < vq->num_free; i = vq->desc[i].next, n++)
        if (i >= vq->size)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = { data, size };
    int flags = next(&in);
    if (flags < 0)
        return 0;
    bool indirect = flags & 1, event_idx = flags & 2;
    size_t bytes = virtq_mem_size(QSIZE, indirect);
    void *mem = aligned_alloc(4096, (bytes + 4095) & ~(size_t)4095);
    memset(mem, 0, bytes);
    struct virtq vq;
    virtq_init(&vq, QSIZE, mem, indirect, event_idx);
    static uint8_t buffers[QSIZE * 4][64];
    bool held[QSIZE * 4] = { 0 };
    unsigned nheld = 0;
    int op;
    while ((op = next(&in)) >= 0) {
        switch (op & 7) {
        case 0: case 1: { /* driver adds a buffer of 1..10 parts */
            unsigned parts = 1 + (unsigned)(op >> 3) % 10;
            unsigned slot = (unsigned)byte(&in) % (QSIZE * 4);
            if (held[slot])
                break;
            struct virtq_sg sg[10];
            for (unsigned i = 0; i < parts; i++)
                sg[i] = (struct virtq_sg){ buffers[slot], 64 };
            if (virtq_add(&vq, sg, parts / 2, parts - parts / 2, &held[slot])) {
                held[slot] = true;
                nheld++;
            }
            break;
        }
        case 2: /* the device writes a used entry wherever it likes */
            vq.used->ring[(unsigned)byte(&in) % QSIZE].id = byte(&in) | (uint32_t)(op >> 3) << 24;
            vq.used->ring[(unsigned)byte(&in) % QSIZE].len = byte(&in) << (op >> 4);
            break;
        case 3: /* and moves its index by any amount */
            vq.used->idx = (uint16_t)(vq.used->idx + (byte(&in) << ((op >> 3) & 7)));
            break;
        case 4: { /* the driver drains */
            uint32_t len;
            bool *cookie;
            while ((cookie = virtq_get_used(&vq, &len))) {
                if (cookie < held || cookie >= held + QSIZE * 4 || !*cookie)
                    abort(); /* a cookie the driver did not hand out, or handed back twice */
                *cookie = false;
                nheld--;
            }
            break;
        }
        case 5:
            (void)virtq_kick_prepare(&vq);
            *(uint16_t *)&vq.used->ring[QSIZE] = (uint16_t)byte(&in);
            break;
        case 6:
            (void)virtq_enable_irq(&vq);
            break;
        case 7:
            virtq_disable_irq(&vq);
            break;
        }
        if (vq.num_free > vq.size)
            abort();
        check_free_list(&vq);
    }
    free(mem);
    return 0;
}
