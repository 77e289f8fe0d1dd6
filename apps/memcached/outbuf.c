/* Reply buffer (see outbuf.h). Host-buildable: shoal.h's malloc and string functions are libc's there. */
#include "outbuf.h"
#include "../../runtime/shoal.h"

void mc_out_init(struct mc_out *o) { *o = (struct mc_out){0}; }

void mc_out_free(struct mc_out *o)
{
    free(o->buf);
    *o = (struct mc_out){0};
}

uint8_t *mc_out_reserve(struct mc_out *o, size_t n)
{
    if (o->failed)
        return NULL;
    if (o->cap - o->len >= n)
        return o->buf + o->len;
    size_t cap = o->cap ? o->cap : 256;
    while (cap - o->len < n) {
        if (cap > SIZE_MAX / 2) {
            o->failed = true;
            return NULL;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(o->buf, cap);
    if (!p) {
        o->failed = true;
        return NULL;
    }
    o->buf = p;
    o->cap = cap;
    return o->buf + o->len;
}

void mc_out_append(struct mc_out *o, const void *data, size_t n)
{
    uint8_t *p = mc_out_reserve(o, n);
    if (!p)
        return;
    if (n)
        memcpy(p, data, n);
    o->len += n;
}

void mc_out_str(struct mc_out *o, const char *s) { mc_out_append(o, s, strlen(s)); }

void mc_out_u64(struct mc_out *o, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[sizeof tmp - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    mc_out_append(o, tmp + sizeof tmp - n, n);
}

void mc_out_i64(struct mc_out *o, int64_t v)
{
    if (v < 0) {
        mc_out_append(o, "-", 1);
        mc_out_u64(o, (uint64_t)0 - (uint64_t)v);
        return;
    }
    mc_out_u64(o, (uint64_t)v);
}

void mc_out_consume(struct mc_out *o, size_t n)
{
    if (n >= o->len) {
        o->len = 0;
        return;
    }
    memmove(o->buf, o->buf + n, o->len - n);
    o->len -= n;
}
