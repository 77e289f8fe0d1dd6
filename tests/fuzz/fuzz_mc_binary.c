/*
 * The memcached binary protocol parser reads whatever a client sends. The
 * first input byte picks the item size limit (small ones reach the "too
 * large" paths); the rest is a connection's input, parsed the way the
 * connection layer does: advance by the returned length, stop on 0 or
 * fatal. Every request is checked (pointers inside what it consumed, one
 * byte less must not be enough, the same bytes parse the same), answered
 * with synthetic results, and the replies must be well-formed packets. The
 * early variant (answer now, swallow the rest) must agree with it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../apps/memcached/binary.c"
#include "../../apps/memcached/outbuf.c"

static void check_replies(const struct mc_out *o)
{
    size_t off = 0;
    while (off < o->len) {
        if (o->len - off < MC_BIN_HEADER || o->buf[off] != MC_BIN_RES_MAGIC)
            abort();
        uint32_t body = ld32(o->buf + off + 8);
        uint32_t kl = ld16(o->buf + off + 2), el = o->buf[off + 4];
        if (kl + el > body || o->len - off - MC_BIN_HEADER < body)
            abort();
        off += MC_BIN_HEADER + body;
    }
}

static void answer(struct mc_out *o, const struct mc_cmd *c, struct mc_item *it, unsigned salt)
{
    static const enum mc_status sts[] = { MC_ST_OK, MC_ST_MISS, MC_ST_NOT_STORED, MC_ST_EXISTS,
                                          MC_ST_NON_NUMERIC, MC_ST_TOO_LARGE, MC_ST_NO_MEMORY };
    struct mc_result r = { .status = sts[salt % 7], .cas = salt * 0x9e3779b97f4a7c15ull,
                           .client_flags = salt, .number = salt };
    if (r.status == MC_ST_OK && (c->op == MC_OP_GET || c->op == MC_OP_TOUCH)) {
        r.item = it;
        r.nbytes = it->nbytes;
        r.client_flags = it->client_flags;
    }
    switch (c->op) {
    case MC_OP_ERROR:
        mc_binary_error(o, c);
        break;
    case MC_OP_STATS:
        mc_binary_stat(o, c, "pid", "1");
        mc_binary_stats_end(o, c);
        mc_binary_reply(o, c, &r);
        break;
    case MC_OP_GET: case MC_OP_STORE: case MC_OP_ARITH: case MC_OP_TOUCH: case MC_OP_DELETE:
        mc_binary_reply(o, c, &r);
        break;
    default:
        mc_binary_simple(o, c, "1.6.18");
        break;
    }
    if (salt & 8)
        mc_binary_out_of_memory(o, c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const uint32_t limits[] = { 0, 1, 59, 64, 100, 300, 1024, 1 << 20 };
    uint32_t limit = limits[data[0] & 7];
    data++, size--;
    /* an exact-size copy, so reading one byte past the input is caught */
    uint8_t *in = malloc(size ? size : 1);
    memcpy(in, data, size);

    struct mc_item *it = malloc(sizeof *it + 8);
    memset(it, 0, sizeof *it);
    it->keylen = 3, it->nbytes = 3, it->client_flags = 0x01020304, it->cas = 77;
    memcpy(it->data, "keyval\r\n", 8);

    struct mc_out o;
    mc_out_init(&o);
    size_t off = 0;
    unsigned steps = 0;
    while (off < size) {
        struct mc_cmd c, c2;
        bool fatal = false, fatal2 = false;
        size_t n = mc_binary_parse(in + off, size - off, limit, &c, &fatal);
        if (n > size - off)
            abort();
        if (n == 0) {
            /* not all there: the early variant may still answer now and swallow the rest */
            struct mc_cmd e;
            bool efatal = false;
            uint64_t swallow = 0;
            size_t m = mc_binary_parse_early(in + off, size - off, limit, &e, &efatal, &swallow);
            if (m > size - off || (m && swallow == 0) || (!m && swallow) || (m && m != size - off))
                abort();
            if (m && (e.op != MC_OP_ERROR || efatal || (e.bin_status != MC_BIN_E2BIG &&
                                                         e.bin_status != MC_BIN_UNKNOWN_COMMAND)))
                abort();
            if (m) {
                mc_binary_error(&o, &e);
                check_replies(&o);
                o.len = 0;
            }
            break;
        }
        /* one byte less is never enough; the same bytes again give the same answer */
        if (mc_binary_parse(in + off, n - 1, limit, &c2, &fatal2) != 0)
            abort();
        if (mc_binary_parse(in + off, n, limit, &c2, &fatal2) != n || fatal2 != fatal || c2.op != c.op ||
            c2.bin_status != c.bin_status)
            abort();
        if (!c.binary || c.keylen > MC_KEY_MAX)
            abort();
        /* the early variant agrees, and has nothing left to swallow once the whole request is in */
        uint64_t swallow = 1;
        if (mc_binary_parse_early(in + off, n, limit, &c2, &fatal2, &swallow) != n || swallow != 0 ||
            c2.op != c.op || c2.bin_status != c.bin_status || fatal2 != fatal)
            abort();
        if (c.op != MC_OP_ERROR || c.error == MC_ERR_TOO_LARGE) {
            if (c.keylen && (c.key < in + off || c.key + c.keylen > in + off + n))
                abort();
        }
        if (c.op == MC_OP_STORE && (c.value < in + off || c.value + c.vlen > in + off + n))
            abort();
        if (c.op == MC_OP_ERROR && c.bin_status == 0 && !fatal)
            abort();
        answer(&o, &c, it, (unsigned)(off * 31 + n + steps));
        check_replies(&o);
        o.len = 0;
        off += n;
        steps++;
        if (fatal)
            break;
    }
    mc_out_free(&o);
    free(it);
    free(in);
    return 0;
}
