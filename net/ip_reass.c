/* IPv4 fragment reassembly; the policies and their reasons are in ip_reass.h. */
#include "ip_reass.h"
#include "checksum.h"
#include "../kernel/string.h"

#define REASS_IP_MAX     65535u
#define REASS_MIN_HLEN   20u
#define REASS_FLAG_MF    0x20      /* in byte 6 */
#define REASS_FLAGS_KEPT 0xC0      /* reserved bit and DF survive reassembly */

/* An arriving fragment as read from its header, every length checked. */
struct reass_in {
    const uint8_t *hdr, *data;
    uint32_t src, dst;
    uint16_t id;
    uint8_t proto, hlen;
    uint32_t off, len, end;       /* payload bytes [off, end) of the datagram */
    bool more;
};

static uint16_t reass_be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t reass_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* False for anything that is not a well-formed fragment; such a fragment touches no datagram. */
static bool reass_parse(const uint8_t *ip, size_t ip_len, struct reass_in *f)
{
    if (!ip || ip_len < REASS_MIN_HLEN || ip[0] >> 4 != 4)
        return false;
    uint32_t hlen = (ip[0] & 0xFu) * 4, total = reass_be16(ip + 2);
    if (hlen < REASS_MIN_HLEN || total < hlen || total > ip_len)
        return false;
    f->hdr = ip;
    f->data = ip + hlen;
    f->hlen = (uint8_t)hlen;
    f->src = reass_be32(ip + 12);
    f->dst = reass_be32(ip + 16);
    f->id = reass_be16(ip + 4);
    f->proto = ip[9];
    f->more = ip[6] & REASS_FLAG_MF;
    f->off = (reass_be16(ip + 6) & 0x1FFFu) * 8;
    f->len = total - hlen;
    f->end = f->off + f->len;
    if (!f->more && f->off == 0)
        return false;             /* not a fragment: the caller's to deliver */
    if (f->len == 0 || (f->more && f->len % 8))
        return false;             /* RFC 791: every fragment but the last carries 8-byte units */
    return f->end <= REASS_IP_MAX - hlen; /* the "ping of death" */
}

static bool reass_matches(const struct ip_reass_dgram *d, const struct reass_in *f)
{
    return d->used && d->id == f->id && d->src == f->src && d->dst == f->dst && d->proto == f->proto;
}

static struct ip_reass_dgram *reass_find(struct ip_reass *r, const struct reass_in *f)
{
    for (unsigned i = 0; i < IP_REASS_MAX_DATAGRAMS; i++)
        if (reass_matches(&r->dgrams[i], f))
            return &r->dgrams[i];
    return NULL;
}

static void reass_free_data(struct ip_reass *r, struct ip_reass_dgram *d)
{
    for (unsigned i = 0; i < d->nfrags; i++) {
        r->bytes -= d->frags[i].len;
        r->release(d->frags[i].data);
    }
    d->nfrags = 0;
    d->held = 0;
}

static void reass_free(struct ip_reass *r, struct ip_reass_dgram *d)
{
    reass_free_data(r, d);
    d->used = false;
}

/* Keeps the key and the timer so that fragments still to come are discarded too (RFC 5722 erratum 3089). */
static void reass_poison(struct ip_reass *r, struct ip_reass_dgram *d, uint64_t *reason)
{
    reass_free_data(r, d);
    d->poisoned = true;
    (*reason)++;
}

/* The datagram to sacrifice for `keep`: poisoned ones (they hold only a slot) before live ones, oldest first. */
static struct ip_reass_dgram *reass_victim(struct ip_reass *r, const struct ip_reass_dgram *keep, bool need_bytes)
{
    struct ip_reass_dgram *best = NULL;
    for (unsigned i = 0; i < IP_REASS_MAX_DATAGRAMS; i++) {
        struct ip_reass_dgram *d = &r->dgrams[i];
        if (!d->used || d == keep || (need_bytes && d->held == 0))
            continue;
        if (!best || d->poisoned > best->poisoned ||
            (d->poisoned == best->poisoned && d->created_ns < best->created_ns))
            best = d;
    }
    return best;
}

static void reass_evict(struct ip_reass *r, struct ip_reass_dgram *d)
{
    if (!d->poisoned)
        r->stats.dropped_limits++;
    reass_free(r, d);
}

static struct ip_reass_dgram *reass_new(struct ip_reass *r, const struct reass_in *f, uint64_t now_ns)
{
    struct ip_reass_dgram *d = NULL;
    for (unsigned i = 0; i < IP_REASS_MAX_DATAGRAMS && !d; i++)
        if (!r->dgrams[i].used)
            d = &r->dgrams[i];
    if (!d) {
        d = reass_victim(r, NULL, false);
        reass_evict(r, d);
    }
    memset(d, 0, offsetof(struct ip_reass_dgram, frags)); /* frags[] is dead beyond nfrags */
    d->used = true;
    d->src = f->src;
    d->dst = f->dst;
    d->id = f->id;
    d->proto = f->proto;
    d->created_ns = now_ns;
    return d;
}

/* Whether f agrees with the ends and the header length already known. */
static bool reass_consistent(const struct ip_reass_dgram *d, const struct reass_in *f)
{
    if (!f->more && d->have_last && f->end != d->total)
        return false;             /* a second, different last fragment */
    if (!f->more && f->end < d->max_end)
        return false;             /* data held beyond this end */
    if (f->more && d->have_last && f->end > d->total)
        return false;             /* data beyond the known end */
    uint32_t hlen = d->have_first ? d->hdr_len : f->off == 0 ? f->hlen : 0;
    uint32_t max_end = f->end > d->max_end ? f->end : d->max_end;
    return hlen + max_end <= REASS_IP_MAX;
}

/* Index of the first held fragment that ends after off: where f goes, or where its overlap starts. */
static unsigned reass_slot(const struct ip_reass_dgram *d, uint32_t off)
{
    unsigned i = 0;
    while (i < d->nfrags && (uint32_t)d->frags[i].off + d->frags[i].len <= off)
        i++;
    return i;
}

enum reass_fit { REASS_FIT_NEW, REASS_FIT_DUPLICATE, REASS_FIT_OVERLAP };

/* A duplicate only when every byte of f is held already and equal; any other overlap is an overlap. */
static enum reass_fit reass_fit_of(const struct ip_reass_dgram *d, const struct reass_in *f, unsigned i)
{
    if (i == d->nfrags || d->frags[i].off >= f->end)
        return REASS_FIT_NEW;
    for (uint32_t pos = f->off; pos < f->end; i++) {
        if (i == d->nfrags || d->frags[i].off > pos)
            return REASS_FIT_OVERLAP; /* a gap: f brings new bytes beside overlapping ones */
        const struct ip_reass_frag *h = &d->frags[i];
        uint32_t h_end = (uint32_t)h->off + h->len;
        uint32_t stop = h_end < f->end ? h_end : f->end;
        if (memcmp(h->data + (pos - h->off), f->data + (pos - f->off), stop - pos) != 0)
            return REASS_FIT_OVERLAP;
        pos = stop;
    }
    return REASS_FIT_DUPLICATE;
}

/* Makes room for len more bytes by evicting other datagrams; false when even that is not enough. */
static bool reass_reserve(struct ip_reass *r, const struct ip_reass_dgram *keep, uint32_t len)
{
    while (r->bytes + len > IP_REASS_MAX_BYTES) {
        struct ip_reass_dgram *v = reass_victim(r, keep, true);
        if (!v)
            return false;
        reass_evict(r, v);
    }
    return true;
}

static bool reass_store(struct ip_reass *r, struct ip_reass_dgram *d, const struct reass_in *f, unsigned i)
{
    uint8_t *copy = r->alloc(f->len);
    if (!copy)
        return false;
    memcpy(copy, f->data, f->len);
    memmove(&d->frags[i + 1], &d->frags[i], (d->nfrags - i) * sizeof d->frags[0]);
    d->frags[i] = (struct ip_reass_frag){ .data = copy, .off = (uint16_t)f->off, .len = (uint16_t)f->len };
    d->nfrags++;
    d->held += f->len;
    r->bytes += f->len;
    if (f->end > d->max_end)
        d->max_end = f->end;
    if (!f->more) {
        d->have_last = true;
        d->total = f->end;
    }
    if (f->off == 0) {
        /* The header for the result, and with 8 payload bytes the quote for Time Exceeded. */
        d->have_first = true;
        d->hdr_len = f->hlen;
        memcpy(d->hdr, f->hdr, f->hlen + IP_REASS_ICMP_DATA);
    }
    return true;
}

static bool reass_complete(const struct ip_reass_dgram *d)
{
    /* Fragments never overlap and none ends past total, so the byte count settles coverage. */
    return d->have_first && d->have_last && d->held == d->total;
}

static uint8_t *reass_assemble(struct ip_reass *r, struct ip_reass_dgram *d, size_t *out_len)
{
    size_t len = (size_t)d->hdr_len + d->total;
    uint8_t *out = r->alloc(len);
    if (!out) {
        r->stats.dropped_nomem++;
        reass_free(r, d);
        return NULL;
    }
    memcpy(out, d->hdr, d->hdr_len);
    out[2] = (uint8_t)(len >> 8);
    out[3] = (uint8_t)len;
    out[6] &= REASS_FLAGS_KEPT;
    out[7] = 0;
    out[10] = out[11] = 0;
    uint16_t sum = csum_finish(csum_add(0, out, d->hdr_len));
    out[10] = (uint8_t)(sum >> 8);
    out[11] = (uint8_t)sum;
    for (unsigned i = 0; i < d->nfrags; i++)
        memcpy(out + d->hdr_len + d->frags[i].off, d->frags[i].data, d->frags[i].len);
    reass_free(r, d);
    r->stats.reassembled++;
    *out_len = len;
    return out;
}

/* Adds f to d; the reassembled datagram when it was the missing piece. */
static uint8_t *reass_add(struct ip_reass *r, struct ip_reass_dgram *d, const struct reass_in *f, size_t *out_len)
{
    if (!reass_consistent(d, f)) {
        reass_poison(r, d, &r->stats.dropped_bad);
        return NULL;
    }
    unsigned i = reass_slot(d, f->off);
    enum reass_fit fit = reass_fit_of(d, f, i);
    if (fit == REASS_FIT_DUPLICATE) {
        r->stats.duplicates++;
        return NULL;
    }
    if (fit == REASS_FIT_OVERLAP) {
        reass_poison(r, d, &r->stats.dropped_overlap);
        return NULL;
    }
    if (d->nfrags == IP_REASS_MAX_FRAGS) {
        reass_poison(r, d, &r->stats.dropped_limits);
        return NULL;
    }
    if (!reass_reserve(r, d, f->len)) {
        r->stats.dropped_limits++;
        return NULL;
    }
    if (!reass_store(r, d, f, i)) {
        r->stats.dropped_nomem++;
        return NULL;
    }
    return reass_complete(d) ? reass_assemble(r, d, out_len) : NULL;
}

void ip_reass_init(struct ip_reass *r, void *(*alloc)(size_t), void (*release)(void *))
{
    memset(r, 0, sizeof *r);
    r->alloc = alloc;
    r->release = release;
}

uint8_t *ip_reass_input(struct ip_reass *r, const uint8_t *ip, size_t ip_len, uint64_t now_ns, size_t *out_len)
{
    struct reass_in f;
    r->stats.fragments++;
    *out_len = 0;
    if (!reass_parse(ip, ip_len, &f)) {
        r->stats.dropped_bad++;
        return NULL;
    }
    struct ip_reass_dgram *d = reass_find(r, &f);
    if (d && d->poisoned) {
        r->stats.dropped_poisoned++;
        return NULL;
    }
    if (!d)
        d = reass_new(r, &f, now_ns);
    uint8_t *out = reass_add(r, d, &f, out_len);
    if (d->used && !d->poisoned && d->nfrags == 0)
        reass_free(r, d);         /* its first fragment found no room: keep no empty slot */
    return out;
}

unsigned ip_reass_expire(struct ip_reass *r, uint64_t now_ns,
                         void (*on_timeout)(void *ctx, const uint8_t *hdr, size_t len), void *ctx)
{
    unsigned dropped = 0;
    for (unsigned i = 0; i < IP_REASS_MAX_DATAGRAMS; i++) {
        struct ip_reass_dgram *d = &r->dgrams[i];
        /* A clock that went backwards makes a datagram young, not ancient. */
        if (!d->used || now_ns < d->created_ns || now_ns - d->created_ns < IP_REASS_TIMEOUT_NS)
            continue;
        if (!d->poisoned) {
            dropped++;
            r->stats.timeouts++;
            if (d->have_first && on_timeout)
                on_timeout(ctx, d->hdr, (size_t)d->hdr_len + IP_REASS_ICMP_DATA);
        }
        reass_free(r, d);
    }
    return dropped;
}

void ip_reass_clear(struct ip_reass *r)
{
    for (unsigned i = 0; i < IP_REASS_MAX_DATAGRAMS; i++)
        if (r->dgrams[i].used)
            reass_free(r, &r->dgrams[i]);
}
