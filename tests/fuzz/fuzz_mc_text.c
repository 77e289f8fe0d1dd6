/*
 * The memcached text protocol parser and formatter on arbitrary client bytes, driven the way
 * the connection layer drives them: parse requests off the front of the input until one needs
 * more bytes, walk the keys of get lines, format a reply for each (a synthetic hit or another
 * status picked from the input, or the error). Checked after every request:
 *  - it occupies at least one byte and no more than there is;
 *  - keys and values point inside the input (or the cmd's own decoded-key buffer), keys are
 *    at most 250 bytes, values are followed by "\r\n" in the input;
 *  - parsing exactly the bytes the request occupied gives the same request (a request does
 *    not depend on bytes after it);
 *  - a reply ends in "\r\n" (or is empty).
 * The first input byte picks the item size limit (small ones reach the too-large paths).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../apps/memcached/outbuf.c"
#include "../../apps/memcached/text.c"

static void check(bool ok)
{
    if (!ok)
        abort();
}

static bool inside(const uint8_t *p, size_t n, const uint8_t *lo, size_t len)
{
    return p >= lo && p + n <= lo + len;
}

static void check_key(const struct mc_cmd *c, const uint8_t *buf, size_t used)
{
    check(c->keylen <= MC_KEY_MAX);
    check(inside(c->key, c->keylen, buf, used) || inside(c->key, c->keylen, c->key_buf, sizeof c->key_buf));
}

static void check_reply(const struct mc_out *o, size_t before)
{
    check(!o->failed);
    if (o->len > before)
        check(o->len - before >= 2 && o->buf[o->len - 2] == '\r' && o->buf[o->len - 1] == '\n');
}

/* A result for c: status from the input; hits carry an item with c's key and a value. */
static struct mc_item *synth(const struct mc_cmd *c, uint8_t pick, struct mc_result *r)
{
    memset(r, 0, sizeof *r);
    static const enum mc_status st[] = { MC_ST_OK, MC_ST_MISS, MC_ST_NOT_STORED, MC_ST_EXISTS,
                                         MC_ST_NON_NUMERIC, MC_ST_TOO_LARGE, MC_ST_NO_MEMORY, MC_ST_OK };
    r->status = st[pick & 7];
    if (r->status != MC_ST_OK)
        return NULL;
    uint32_t vlen = pick >> 3;
    struct mc_item *it = malloc(sizeof *it + c->keylen + vlen + 2);
    if (!it)
        abort();
    memset(it, 0, sizeof *it);
    it->keylen = c->keylen;
    it->nbytes = vlen;
    memcpy(it->data, c->key, c->keylen);
    memset(it->data + c->keylen, 'v', vlen);
    memcpy(it->data + c->keylen + vlen, "\r\n", 2);
    r->item = it;
    r->nbytes = vlen;
    r->cas = (uint64_t)pick * 0x9e3779b97f4a7c15ull;
    r->client_flags = pick * 77u;
    r->ttl = (pick & 8) ? -1 : pick;
    r->number = r->cas;
    r->hit_before = pick & 16;
    r->win = pick & 32, r->stale = pick & 64, r->won = pick & 128;
    r->key_binary = pick & 4;
    r->debug_exp = -(int64_t)pick;
    return it;
}

static void reply_keyed(struct mc_out *o, const struct mc_cmd *c, uint8_t pick)
{
    struct mc_result r;
    size_t before = o->len;
    struct mc_item *it = synth(c, pick, &r);
    mc_text_reply(o, c, &r);
    free(it);
    if (!(c->op == MC_OP_GET && !c->meta))
        check_reply(o, before);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static const uint32_t limits[] = { 1u << 20, 64, 100, 300, 1000, 4096, 70, 2u << 20 };
    uint32_t item_max = limits[data[0] & 7];
    const uint8_t *buf = data + 1;
    size_t len = size - 1, off = 0;
    struct mc_out o;
    mc_out_init(&o);
    uint8_t pick = (uint8_t)(data[0] >> 3);
    while (off < len) {
        struct mc_cmd cmd;
        struct mc_text_keys keys;
        size_t used = mc_text_parse(buf + off, len - off, item_max, &cmd, &keys);
        if (!used)
            break;
        check(used <= len - off);
        const uint8_t *req = buf + off;

        /* the same bytes alone give the same request */
        struct mc_cmd again;
        struct mc_text_keys keys2;
        size_t used2 = mc_text_parse(req, used, item_max, &again, &keys2);
        check(used2 == used && again.op == cmd.op && again.error == cmd.error);
        check(again.keylen == cmd.keylen && again.vlen == cmd.vlen && again.noreply == cmd.noreply);

        pick = (uint8_t)(pick * 31 + used);
        if (cmd.op <= MC_OP_DEBUG) {
            check_key(&cmd, req, used);
            if (cmd.op == MC_OP_STORE) {
                check(inside(cmd.value, cmd.vlen + 2u, req, used));
                check(cmd.value[cmd.vlen] == '\r' && cmd.value[cmd.vlen + 1] == '\n');
            }
            if (cmd.op == MC_OP_GET && !cmd.meta) {
                size_t before = o.len;
                unsigned n = 0;
                do {
                    check_key(&cmd, req, used);
                    reply_keyed(&o, &cmd, (uint8_t)(pick + n));
                    check(++n <= used);
                } while (mc_text_next_key(&keys, &cmd) && cmd.op == MC_OP_GET);
                if (cmd.op == MC_OP_ERROR)
                    mc_text_error(&o, &cmd);
                mc_text_get_end(&o);
                check_reply(&o, before);
            } else {
                reply_keyed(&o, &cmd, pick);
            }
        } else {
            size_t before = o.len;
            if (cmd.op == MC_OP_STATS) {
                check(memchr(cmd.stats_group, 0, sizeof cmd.stats_group) != NULL);
                mc_text_stat(&o, "group", cmd.stats_group);
                mc_text_stats_end(&o);
            } else if (cmd.op == MC_OP_ERROR) {
                mc_text_error(&o, &cmd);
            } else {
                mc_text_simple(&o, &cmd, "1.6.18");
            }
            check_reply(&o, before);
        }
        off += used;
        if (cmd.op == MC_OP_QUIT || (cmd.op == MC_OP_ERROR && cmd.error == MC_ERR_LINE_TOO_LONG))
            break;
        if (o.len > (1u << 16))
            mc_out_consume(&o, o.len);
    }
    mc_out_free(&o);
    return 0;
}
