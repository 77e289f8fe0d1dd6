/*
 * mc_exec(): memcached 1.6.18's semantics for every keyed command (classic text, binary and meta),
 * against one shard's store. Modelled on memcached's do_store_item(), do_add_delta(),
 * do_item_get()/do_item_bump() and the process_m*_command() functions of proto_text.c.
 */
#include "../../runtime/shoal.h"
#include "store_impl.h"

#define HAS(cmd, c) ((cmd)->meta && ((cmd)->m.present & MC_MF(c)))

static void snapshot(const struct mc_item *it, uint64_t now, struct mc_result *res)
{
    res->cas = it->cas;
    res->client_flags = it->client_flags;
    res->nbytes = it->nbytes;
    res->ttl = it->exptime == 0 ? -1 : (int64_t)it->exptime - (int64_t)now;
    res->key_binary = (it->iflags & MC_ITEM_KEY_B64) != 0;
}

static int64_t ttl_of(const struct mc_item *it, uint64_t now)
{
    return it->exptime == 0 ? -1 : (int64_t)it->exptime - (int64_t)now;
}

static void hand_out(struct mc_item *it, struct mc_result *res)
{
    it->refs++;
    res->item = it;
}

/* A new item with the same key, flags, exptime, value and marks as `it`, linked in its place. */
static struct mc_item *clone_item(struct mc_store *s, struct mc_item *it, uint64_t now)
{
    enum mc_status err;
    it->refs++;                         /* keep it from being evicted to make room for its copy */
    struct mc_item *n = mc_item_alloc(s, mc_item_key(it), it->keylen, it->client_flags, it->exptime,
                                      it->nbytes, now, &err);
    it->refs--;
    if (!n)
        return NULL;
    memcpy(n->data + n->keylen, mc_item_value(it), it->nbytes);
    uint32_t time = it->time;
    uint8_t marks = it->iflags & (MC_ITEM_FETCHED | MC_ITEM_STALE | MC_ITEM_WON | MC_ITEM_KEY_B64);
    if (!(it->iflags & MC_ITEM_LINKED)) {
        mc_item_discard(s, n);
        return NULL;
    }
    mc_store_link(s, n, it, now);
    n->time = time;
    n->iflags |= marks;
    return n;
}

/* ---- get ---- */

static void exec_get(struct mc_store *s, const struct mc_cmd *cmd, uint64_t now, struct mc_result *res)
{
    bool ttl_set = cmd->meta ? HAS(cmd, 'T') : cmd->touch;
    bool created = false;
    struct mc_item *it = mc_store_find(s, cmd->key, cmd->keylen, now);

    if (!it && HAS(cmd, 'N')) {
        enum mc_status err;
        it = mc_item_alloc(s, cmd->key, cmd->keylen, 0, 0, 0, now, &err);
        if (it) {
            mc_store_link(s, it, NULL, now);
            created = true;
        }
    }
    if (!it) {
        if (ttl_set) {
            s->st.cmd_touch++;
            s->st.touch_misses++;
        } else {
            s->st.cmd_get++;
            s->st.get_misses++;
        }
        res->status = MC_ST_MISS;
        return;
    }

    /* mg h and l report the state from before this access. */
    res->hit_before = (it->iflags & MC_ITEM_FETCHED) != 0;
    res->last_access = now > it->time ? (uint32_t)(now - it->time) : 0;

    if (cmd->meta) {
        bool won = false;
        res->ttl_before = ttl_of(it, now);
        if (ttl_set)
            it->exptime = mc_store_realtime(s, cmd->m.ttl, now);
        if (created) {
            it->exptime = mc_store_realtime(s, cmd->m.vivify_ttl, now);
            won = true;
        }
        if (HAS(cmd, 'R') && !(it->iflags & MC_ITEM_WON) && !created && it->exptime != 0 &&
            it->exptime < mc_store_realtime(s, cmd->m.recache_ttl, now))
            won = true;
        if (it->iflags & MC_ITEM_WON)
            res->won = true;                    /* Z: someone else already won */
        if (it->iflags & MC_ITEM_STALE) {
            res->stale = true;                  /* X */
            if (!(it->iflags & MC_ITEM_WON))
                won = true;
        }
        if (won) {
            res->win = true;                    /* W */
            it->iflags |= MC_ITEM_WON;
        }
        if (!HAS(cmd, 'u'))
            mc_item_bump(s, it, now);
    } else {
        mc_item_bump(s, it, now);
        if (cmd->touch)
            it->exptime = mc_store_realtime(s, cmd->exptime, now);
    }

    if (ttl_set) {
        s->st.cmd_touch++;
        s->st.touch_hits++;
    } else {
        s->st.cmd_get++;
        s->st.get_hits++;
    }
    res->status = MC_ST_OK;
    snapshot(it, now, res);
    hand_out(it, res);
}

/* ---- store ---- */

enum cas_result { CAS_NONE, CAS_MATCH, CAS_BADVAL, CAS_STALE };

static void exec_store(struct mc_store *s, const struct mc_cmd *cmd, uint64_t now, struct mc_result *res)
{
    enum mc_store_mode comm = cmd->store_mode;
    uint64_t it_cas = 0;
    bool set_stale = false;
    uint32_t flags;
    int64_t exp_in;

    if (cmd->meta) {
        flags = HAS(cmd, 'F') ? cmd->m.client_flags : 0;
        exp_in = HAS(cmd, 'T') ? cmd->m.ttl : 0;
        if (HAS(cmd, 'C')) {
            it_cas = cmd->m.compare_cas;
            if (comm == MC_SET || comm == MC_REPLACE)
                comm = MC_CAS;
        }
        set_stale = HAS(cmd, 'I') && comm == MC_CAS;
    } else {
        flags = cmd->client_flags;
        exp_in = cmd->exptime;
        if (cmd->binary) {
            it_cas = cmd->cas;
            if (it_cas && (comm == MC_SET || comm == MC_ADD || comm == MC_REPLACE))
                comm = MC_CAS;
        } else if (comm == MC_CAS) {
            it_cas = cmd->cas;
        }
    }

    enum mc_status err;
    struct mc_item *it = mc_item_alloc(s, cmd->key, cmd->keylen, flags, mc_store_realtime(s, exp_in, now),
                                       cmd->vlen, now, &err);
    if (!it) {
        if (err == MC_ST_TOO_LARGE)
            s->st.store_too_large++;
        else
            s->st.store_no_memory++;
        /* memcached: "avoid stale data persisting in cache because we failed alloc" */
        if (cmd->meta || comm == MC_SET) {
            struct mc_item *old = mc_store_find(s, cmd->key, cmd->keylen, now);
            if (old)
                mc_store_unlink(s, old);
        }
        res->status = err;
        return;
    }
    if (cmd->vlen)
        memcpy(it->data + it->keylen, cmd->value, cmd->vlen);
    if (cmd->meta && cmd->m.key_base64)
        it->iflags |= MC_ITEM_KEY_B64;
    s->st.cmd_set++;

    struct mc_item *old = mc_store_find(s, cmd->key, cmd->keylen, now);
    enum mc_status stored = MC_ST_NOT_STORED;
    bool do_store = false;

    if (old) {
        enum cas_result cr;
        if (it_cas == 0)
            cr = CAS_NONE;
        else if (it_cas == old->cas)
            cr = CAS_MATCH;
        else if (set_stale && it_cas < old->cas)
            cr = CAS_STALE;
        else
            cr = CAS_BADVAL;

        switch (comm) {
        case MC_ADD:
            mc_item_update(s, old, now);        /* add promotes the existing item */
            break;
        case MC_CAS:
            if (cr == CAS_MATCH) {
                s->st.cas_hits++;
                do_store = true;
            } else if (cr == CAS_STALE) {
                /* an older cas with I: store, but keep the TTL and mark it stale */
                it->exptime = old->exptime;
                it->iflags |= MC_ITEM_STALE | (old->iflags & MC_ITEM_WON);
                s->st.cas_hits++;
                do_store = true;
            } else {
                s->st.cas_badval++;
                stored = MC_ST_EXISTS;
            }
            break;
        case MC_APPEND:
        case MC_PREPEND: {
            if (cr != CAS_NONE && cr != CAS_MATCH) {
                stored = MC_ST_EXISTS;
                break;
            }
            old->refs++;                        /* not to be evicted for its own successor */
            struct mc_item *n = mc_item_alloc(s, cmd->key, cmd->keylen, old->client_flags, old->exptime,
                                              (uint64_t)old->nbytes + cmd->vlen, now, &err);
            old->refs--;
            if (!n)
                break;                          /* NOT_STORED, like memcached */
            uint8_t *d = n->data + n->keylen;
            if (comm == MC_APPEND) {
                memcpy(d, mc_item_value(old), old->nbytes);
                if (cmd->vlen)
                    memcpy(d + old->nbytes, cmd->value, cmd->vlen);
            } else {
                if (cmd->vlen)
                    memcpy(d, cmd->value, cmd->vlen);
                memcpy(d + cmd->vlen, mc_item_value(old), old->nbytes);
            }
            mc_item_discard(s, it);
            it = n;
            do_store = true;
            break;
        }
        case MC_REPLACE:
        case MC_SET:
            do_store = true;
            break;
        }
        if (do_store) {
            mc_store_link(s, it, old, now);
            stored = MC_ST_OK;
        }
    } else {
        switch (comm) {
        case MC_ADD:
        case MC_SET:
            mc_store_link(s, it, NULL, now);
            stored = MC_ST_OK;
            break;
        case MC_CAS:
            s->st.cas_misses++;
            stored = MC_ST_MISS;
            break;
        case MC_REPLACE:
        case MC_APPEND:
        case MC_PREPEND:
            break;
        }
    }

    res->status = stored;
    if (stored == MC_ST_OK) {
        snapshot(it, now, res);
    } else {
        mc_item_discard(s, it);
    }
}

/* ---- incr / decr ---- */

static bool is_space(uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* memcached's safe_strtoull() on an item's data (value, then "\r\n"): strtoull base 10 (leading
   white space, optional sign), which must end at white space or NUL; a "negative" result is refused. */
static bool parse_u64(const uint8_t *p, size_t n, uint64_t *out)
{
    size_t i = 0;
    while (i < n && is_space(p[i]))
        i++;
    bool neg = false;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        neg = p[i++] == '-';
    size_t start = i;
    uint64_t v = 0;
    bool overflow = false;
    while (i < n && p[i] >= '0' && p[i] <= '9') {
        unsigned d = p[i] - '0';
        if (v > (UINT64_MAX - d) / 10)
            overflow = true;
        v = v * 10 + d;
        i++;
    }
    if (i == start || overflow)
        return false;
    if (neg)
        v = -v;
    uint8_t end = i < n ? p[i] : '\r';
    if (!is_space(end) && end != 0)
        return false;
    if ((int64_t)v < 0) {
        const uint8_t *nul = memchr(p, 0, n);
        if (memchr(p, '-', nul ? (size_t)(nul - p) : n))
            return false;
    }
    *out = v;
    return true;
}

static unsigned u64_to_dec(uint64_t v, char *buf)
{
    char tmp[24];
    unsigned n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (unsigned i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

static void exec_arith(struct mc_store *s, const struct mc_cmd *cmd, uint64_t now, struct mc_result *res)
{
    bool incr = cmd->arith_mode == MC_INCR;
    uint64_t delta = cmd->meta ? cmd->m.delta : cmd->delta;
    uint64_t cas_cmp = cmd->meta ? (HAS(cmd, 'C') ? cmd->m.compare_cas : 0) : (cmd->binary ? cmd->cas : 0);
    char buf[24];
    unsigned len;
    enum mc_status err;

    struct mc_item *it = mc_store_find(s, cmd->key, cmd->keylen, now);
    if (!it) {
        bool create = cmd->meta ? HAS(cmd, 'N') : (cmd->binary && cmd->arith_create);
        if (!create) {
            if (incr)
                s->st.incr_misses++;
            else
                s->st.decr_misses++;
            res->status = MC_ST_MISS;
            return;
        }
        uint64_t initial = cmd->meta ? cmd->m.initial : cmd->initial;
        uint32_t exptime = mc_store_realtime(s, cmd->meta ? cmd->m.vivify_ttl : cmd->exptime, now);
        if (HAS(cmd, 'T'))
            exptime = mc_store_realtime(s, cmd->m.ttl, now);
        len = u64_to_dec(initial, buf);
        it = mc_item_alloc(s, cmd->key, cmd->keylen, 0, exptime, len, now, &err);
        if (!it) {
            res->status = err;
            return;
        }
        memcpy(it->data + it->keylen, buf, len);
        mc_store_link(s, it, NULL, now);
        res->status = MC_ST_OK;
        res->number = initial;
        snapshot(it, now, res);
        if (cmd->meta)
            hand_out(it, res);
        return;
    }

    if (it->nbytes == 0) {
        res->status = MC_ST_NON_NUMERIC;
        return;
    }
    if (cas_cmp != 0 && it->cas != cas_cmp) {
        res->status = MC_ST_EXISTS;
        return;
    }
    uint64_t value;
    if (!parse_u64(mc_item_value(it), it->nbytes, &value)) {
        res->status = MC_ST_NON_NUMERIC;
        return;
    }
    if (incr) {
        value += delta;
        s->st.incr_hits++;
    } else {
        value = delta > value ? 0 : value - delta;
        s->st.decr_hits++;
    }
    len = u64_to_dec(value, buf);
    if (len <= it->nbytes && it->refs == 0) {
        /* in place, padded with spaces like memcached ("100" decr 1 reads back as "99 ") */
        uint8_t *d = it->data + it->keylen;
        memcpy(d, buf, len);
        memset(d + len, ' ', it->nbytes - len);
        it->cas = mc_store_next_cas(s);
        mc_item_update(s, it, now);
    } else {
        it->refs++;
        struct mc_item *n = mc_item_alloc(s, cmd->key, cmd->keylen, it->client_flags, it->exptime, len, now, &err);
        it->refs--;
        if (!n || !(it->iflags & MC_ITEM_LINKED)) {
            if (n)
                mc_item_discard(s, n);
            res->status = MC_ST_NO_MEMORY;
            return;
        }
        memcpy(n->data + n->keylen, buf, len);
        mc_store_link(s, n, it, now);
        it = n;
    }
    res->ttl_before = ttl_of(it, now);
    if (HAS(cmd, 'T'))
        it->exptime = mc_store_realtime(s, cmd->m.ttl, now);
    res->status = MC_ST_OK;
    res->number = value;
    snapshot(it, now, res);
    if (cmd->meta)
        hand_out(it, res);
}

/* ---- touch, delete, me ---- */

static void exec_touch(struct mc_store *s, const struct mc_cmd *cmd, uint64_t now, struct mc_result *res)
{
    struct mc_item *it = mc_store_find(s, cmd->key, cmd->keylen, now);
    s->st.cmd_touch++;
    if (!it) {
        s->st.touch_misses++;
        res->status = MC_ST_MISS;
        return;
    }
    mc_item_bump(s, it, now);
    it->exptime = mc_store_realtime(s, cmd->exptime, now);
    s->st.touch_hits++;
    res->status = MC_ST_OK;
    snapshot(it, now, res);
}

static void exec_delete(struct mc_store *s, const struct mc_cmd *cmd, uint64_t now, struct mc_result *res)
{
    struct mc_item *it = mc_store_find(s, cmd->key, cmd->keylen, now);
    if (!it) {
        s->st.delete_misses++;
        res->status = MC_ST_MISS;
        return;
    }
    uint64_t cas_cmp = cmd->meta ? (HAS(cmd, 'C') ? cmd->m.compare_cas : 0) : (cmd->binary ? cmd->cas : 0);
    if (cmd->meta ? (HAS(cmd, 'C') && it->cas != cas_cmp) : (cas_cmp != 0 && it->cas != cas_cmp)) {
        if (cmd->meta)
            s->st.delete_misses++;
        res->status = MC_ST_EXISTS;
        return;
    }
    if (HAS(cmd, 'I')) {
        /* md I: keep the item, mark it stale with a new cas so the next mg wins the recache */
        if (it->refs) {
            struct mc_item *n = clone_item(s, it, now);
            if (!n) {
                res->status = MC_ST_NO_MEMORY;
                return;
            }
            it = n;                     /* linking gave the copy its new cas */
        } else {
            it->cas = mc_store_next_cas(s);
        }
        if (HAS(cmd, 'T'))
            it->exptime = mc_store_realtime(s, cmd->m.ttl, now);
        it->iflags |= MC_ITEM_STALE;
        it->iflags &= (uint8_t)~MC_ITEM_WON;
        res->status = MC_ST_OK;
        snapshot(it, now, res);
        return;
    }
    s->st.delete_hits++;
    mc_store_unlink(s, it);
    res->status = MC_ST_OK;
}

static void exec_debug(struct mc_store *s, const struct mc_cmd *cmd, uint64_t now, struct mc_result *res)
{
    struct mc_item *it = mc_store_find(s, cmd->key, cmd->keylen, now);
    if (!it) {
        res->status = MC_ST_MISS;
        return;
    }
    res->status = MC_ST_OK;
    snapshot(it, now, res);
    res->debug_exp = it->exptime == 0 ? -1 : (int64_t)now - (int64_t)it->exptime;
    res->last_access = now > it->time ? (uint32_t)(now - it->time) : 0;
    res->hit_before = (it->iflags & MC_ITEM_FETCHED) != 0;
    res->cls = it->cls;
    res->item_size = (uint32_t)mc_item_ntotal(&s->cfg, it->keylen, it->client_flags, it->nbytes);
}

void mc_exec(struct mc_store *s, const struct mc_cmd *cmd, uint64_t now, struct mc_result *res)
{
    memset(res, 0, sizeof *res);
    res->ttl = -1;
    switch (cmd->op) {
    case MC_OP_GET:
        exec_get(s, cmd, now, res);
        break;
    case MC_OP_STORE:
        exec_store(s, cmd, now, res);
        break;
    case MC_OP_ARITH:
        exec_arith(s, cmd, now, res);
        break;
    case MC_OP_TOUCH:
        exec_touch(s, cmd, now, res);
        break;
    case MC_OP_DELETE:
        exec_delete(s, cmd, now, res);
        break;
    case MC_OP_DEBUG:
        exec_debug(s, cmd, now, res);
        break;
    default:
        res->status = MC_ST_MISS;
        break;
    }
}
