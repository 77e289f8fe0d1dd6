/*
 * One shard's item store (see store.h): a chained hash table that grows by
 * doubling incrementally (a few old buckets move per operation), memory
 * accounted in memcached's slab size classes, an LRU per class, lazy expiry
 * plus a resumable sweep, flush_all via oldest_live/oldest_cas, and
 * reclaim-then-evict when an allocation would exceed the memory limit.
 *
 * Items are malloc'ed; each is charged the chunk size of its class, computed
 * from memcached's own item size (48-byte header, key + 1, 4 bytes of client
 * flags when nonzero, value + "\r\n", 8 bytes of cas when enabled), so the
 * size limit, "stats slabs" chunk sizes and "me" sizes match memcached's.
 */
#include "../../runtime/shoal.h"
#include "store_impl.h"

/* ---- sizes and classes ---- */

#define MC_HDR_SIZE 48u            /* sizeof(item) in memcached 1.6 on 64-bit */

uint64_t mc_item_ntotal(const struct mc_store_config *cfg, size_t keylen, uint32_t flags, uint64_t vlen)
{
    return MC_HDR_SIZE + keylen + 1 + (flags ? 4u : 0u) + vlen + 2 + (cfg->cas_enabled ? 8u : 0u);
}

bool mc_item_size_ok(const struct mc_store_config *cfg, size_t keylen, uint32_t flags, uint64_t vlen)
{
    return mc_item_ntotal(cfg, keylen, flags, vlen) <= cfg->item_size_max;
}

static void classes_init(struct mc_store *s)
{
    const struct mc_store_config *c = &s->cfg;
    uint32_t page = c->item_size_max < (1u << 20) ? c->item_size_max : (1u << 20);
    uint32_t chunk_max = page / 2;
    if (chunk_max < 64)
        chunk_max = 64;
    double factor = c->factor > 1.0 ? c->factor : 1.25;
    double size = MC_HDR_SIZE + (c->chunk_min ? c->chunk_min : 48);
    unsigned i = 1;
    while (i < MC_MAX_CLASSES - 1 && size < chunk_max / factor) {
        uint32_t sz = (uint32_t)size;
        if (sz % 8)
            sz += 8 - sz % 8;
        s->cls[i].size = sz;
        size = sz * factor;
        i++;
    }
    s->cls[i].size = chunk_max;
    s->nclasses = i;
    s->chunk_max = chunk_max;
}

static unsigned class_of(const struct mc_store *s, uint64_t ntotal)
{
    for (unsigned i = 1; i < s->nclasses; i++)
        if (ntotal <= s->cls[i].size)
            return i;
    return s->nclasses;
}

/* Memory charged for an item of ntotal bytes in class cls. Items larger than the largest chunk are
   charged like memcached's chunked items: whole max chunks plus a chunk of the class that fits the rest. */
static uint64_t charge_of(const struct mc_store *s, unsigned cls, uint64_t ntotal)
{
    if (ntotal <= s->cls[cls].size)
        return s->cls[cls].size;
    uint64_t full = ntotal / s->chunk_max, rest = ntotal % s->chunk_max;
    uint64_t c = full * s->chunk_max;
    if (rest)
        c += s->cls[class_of(s, rest)].size;
    return c;
}

/* ---- hash table ---- */

static uint64_t key_hash(const uint8_t *key, size_t len)
{
    /* Different from mc_key_shard's so that the bucket index does not correlate with the shard. */
    uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
    for (size_t i = 0; i < len; i++)
        h = (h ^ key[i]) * 0x100000001b3ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h;
}

static inline size_t bucket_of(uint64_t h, unsigned bits) { return (size_t)(h >> (64 - bits)); }

static void hash_migrate(struct mc_store *s, unsigned nbuckets)
{
    while (s->old && nbuckets--) {
        struct mc_item *it = s->old[s->migrate_pos];
        while (it) {
            struct mc_item *next = it->hnext;
            size_t b = bucket_of(key_hash(mc_item_key(it), it->keylen), s->bits);
            it->hnext = s->table[b];
            s->table[b] = it;
            it = next;
        }
        s->old[s->migrate_pos] = NULL;
        if (++s->migrate_pos >= ((size_t)1 << (s->bits - 1))) {
            free(s->old);
            s->old = NULL;
        }
    }
}

static struct mc_item **bucket_ptr(struct mc_store *s, uint64_t h)
{
    if (s->old) {
        size_t ob = bucket_of(h, s->bits - 1);
        if (ob >= s->migrate_pos)
            return &s->old[ob];
    }
    return &s->table[bucket_of(h, s->bits)];
}

static void hash_maybe_grow(struct mc_store *s)
{
    if (s->old || s->bits >= 40 || s->st.curr_items <= ((uint64_t)3 << s->bits) / 2)
        return;
    struct mc_item **t = calloc((size_t)1 << (s->bits + 1), sizeof *t);
    if (!t)
        return;
    s->old = s->table;
    s->table = t;
    s->bits++;
    s->migrate_pos = 0;
}

static struct mc_item *hash_find(struct mc_store *s, const uint8_t *key, size_t len)
{
    hash_migrate(s, 2);
    struct mc_item *it = *bucket_ptr(s, key_hash(key, len));
    while (it && !(it->keylen == len && memcmp(mc_item_key(it), key, len) == 0))
        it = it->hnext;
    return it;
}

static void hash_insert(struct mc_store *s, struct mc_item *it)
{
    hash_migrate(s, 2);
    struct mc_item **b = bucket_ptr(s, key_hash(mc_item_key(it), it->keylen));
    it->hnext = *b;
    *b = it;
}

static void hash_remove(struct mc_store *s, struct mc_item *it)
{
    struct mc_item **p = bucket_ptr(s, key_hash(mc_item_key(it), it->keylen));
    while (*p && *p != it)
        p = &(*p)->hnext;
    if (*p)
        *p = it->hnext;
    it->hnext = NULL;
}

/* ---- LRU ---- */

static void lru_link(struct mc_store *s, struct mc_item *it)
{
    struct mc_class *c = &s->cls[it->cls];
    it->prev = NULL;
    it->next = c->head;
    if (c->head)
        c->head->prev = it;
    c->head = it;
    if (!c->tail)
        c->tail = it;
}

static void lru_unlink(struct mc_store *s, struct mc_item *it)
{
    struct mc_class *c = &s->cls[it->cls];
    if (s->sweep_cursor == it)
        s->sweep_cursor = it->prev;       /* the sweep walks tail to head */
    if (it->prev)
        it->prev->next = it->next;
    else
        c->head = it->next;
    if (it->next)
        it->next->prev = it->prev;
    else
        c->tail = it->prev;
    it->prev = it->next = NULL;
}

/* ---- items ---- */

static uint64_t item_ntotal(const struct mc_store *s, const struct mc_item *it)
{
    return mc_item_ntotal(&s->cfg, it->keylen, it->client_flags, it->nbytes);
}

static void item_free(struct mc_store *s, struct mc_item *it)
{
    uint64_t ntotal = item_ntotal(s, it);
    s->mem_used -= charge_of(s, it->cls, ntotal);
    free(it);
}

/* Shard k of n hands out k+1, k+1+n, k+1+2n...: unique across the whole cache, as memcached's are. */
uint64_t mc_store_next_cas(struct mc_store *s)
{
    if (!s->cfg.cas_enabled)
        return 0;
    uint64_t stride = s->cfg.cas_stride ? s->cfg.cas_stride : 1;
    return s->cas_id++ * stride + s->cfg.cas_offset + 1;
}

uint32_t mc_store_realtime(const struct mc_store *s, int64_t exptime, uint64_t now)
{
    if (exptime == 0)
        return 0;
    if (exptime < 0)
        exptime = MC_REALTIME_MAXDELTA + 1;
    if (exptime > MC_REALTIME_MAXDELTA) {
        if ((uint64_t)exptime <= s->started)
            return 1;
        return exptime > 0xffffffffll ? 0xffffffffu : (uint32_t)exptime;
    }
    uint64_t t = now + (uint64_t)exptime;
    return t > 0xffffffffull ? 0xffffffffu : (uint32_t)t;
}

bool mc_item_flushed(const struct mc_store *s, const struct mc_item *it, uint64_t now)
{
    if (s->oldest_live == 0 || s->oldest_live > now)
        return false;
    return it->time <= s->oldest_live || (s->oldest_cas != 0 && it->cas != 0 && it->cas < s->oldest_cas);
}

static bool item_expired(const struct mc_item *it, uint64_t now)
{
    return it->exptime != 0 && it->exptime <= now;
}

/* Frees what it can: the item is gone from the table and LRU; it stays allocated while referenced. */
void mc_store_unlink(struct mc_store *s, struct mc_item *it)
{
    if (!(it->iflags & MC_ITEM_LINKED))
        return;
    it->iflags &= (uint8_t)~MC_ITEM_LINKED;
    hash_remove(s, it);
    lru_unlink(s, it);
    struct mc_class *c = &s->cls[it->cls];
    uint64_t ntotal = item_ntotal(s, it);
    c->items--;
    c->bytes_requested -= ntotal;
    s->st.curr_items--;
    s->st.bytes -= ntotal;
    if (it->refs == 0)
        item_free(s, it);
}

/* Tries to free memory from class cls (expired/flushed first, then the LRU tail); true when it freed something. */
static bool reclaim_from(struct mc_store *s, unsigned cls, uint64_t now, bool evict)
{
    struct mc_class *c = &s->cls[cls];
    struct mc_item *it = c->tail;
    for (int tries = 0; it && tries < 5; tries++) {
        struct mc_item *prev = it->prev;
        if (it->refs == 0) {
            if (item_expired(it, now) || mc_item_flushed(s, it, now)) {
                s->st.reclaimed++;
                if (!(it->iflags & MC_ITEM_FETCHED)) {
                    s->st.expired_unfetched++;
                    c->expired_unfetched++;
                }
                mc_store_unlink(s, it);
                return true;
            }
            if (evict) {
                s->st.evictions++;
                c->evicted++;
                if (!(it->iflags & MC_ITEM_FETCHED)) {
                    s->st.evicted_unfetched++;
                    c->evicted_unfetched++;
                }
                mc_store_unlink(s, it);
                return true;
            }
        }
        it = prev;
    }
    return false;
}

/* Makes room for `charge` bytes in class cls; false when nothing more can be freed. */
static bool make_room(struct mc_store *s, unsigned cls, uint64_t charge, uint64_t now)
{
    bool evict = !s->cfg.no_evict;
    while (s->mem_used + charge > s->cfg.mem_limit) {
        if (charge > s->cfg.mem_limit)
            return false;
        if (reclaim_from(s, cls, now, false) || reclaim_from(s, cls, now, evict))
            continue;
        /* Nothing evictable in its own class (memcached would move a slab page over): take the
           least recently used tail among the other classes. */
        unsigned best = 0;
        uint32_t best_time = 0;
        for (unsigned i = 1; i <= s->nclasses; i++) {
            struct mc_item *t = s->cls[i].tail;
            if (i != cls && t && (best == 0 || t->time < best_time))
                best = i, best_time = t->time;
        }
        bool freed = false;
        if (best)
            freed = reclaim_from(s, best, now, false) || reclaim_from(s, best, now, evict);
        for (unsigned i = 1; !freed && i <= s->nclasses; i++)
            if (i != cls && i != best && s->cls[i].tail)
                freed = reclaim_from(s, i, now, evict);
        if (!freed)
            return false;
    }
    return true;
}

struct mc_item *mc_item_alloc(struct mc_store *s, const uint8_t *key, size_t keylen, uint32_t flags,
                              uint32_t exptime, uint64_t vlen, uint64_t now, enum mc_status *err)
{
    uint64_t ntotal = mc_item_ntotal(&s->cfg, keylen, flags, vlen);
    if (ntotal > s->cfg.item_size_max || keylen > MC_KEY_MAX) {
        *err = MC_ST_TOO_LARGE;
        return NULL;
    }
    unsigned cls = class_of(s, ntotal);
    uint64_t charge = charge_of(s, cls, ntotal);
    if (!make_room(s, cls, charge, now)) {
        s->cls[cls].outofmemory++;
        *err = MC_ST_NO_MEMORY;
        return NULL;
    }
    struct mc_item *it = malloc(sizeof *it + keylen + vlen + 2);
    if (!it) {
        s->cls[cls].outofmemory++;
        *err = MC_ST_NO_MEMORY;
        return NULL;
    }
    s->mem_used += charge;
    memset(it, 0, sizeof *it);
    it->exptime = exptime;
    it->time = (uint32_t)now;
    it->lru_time = (uint32_t)now;
    it->client_flags = flags;
    it->nbytes = (uint32_t)vlen;
    it->keylen = (uint8_t)keylen;
    it->cls = (uint8_t)cls;
    memcpy(it->data, key, keylen);
    it->data[keylen + vlen] = '\r';
    it->data[keylen + vlen + 1] = '\n';
    return it;
}

/* Frees an item that was never linked (and is not referenced). */
void mc_item_discard(struct mc_store *s, struct mc_item *it)
{
    item_free(s, it);
}

/* Links a new item, replacing old (which may be NULL); gives it a fresh cas. */
void mc_store_link(struct mc_store *s, struct mc_item *it, struct mc_item *old, uint64_t now)
{
    if (old)
        mc_store_unlink(s, old);
    it->cas = mc_store_next_cas(s);
    it->time = (uint32_t)now;
    it->lru_time = (uint32_t)now;
    it->iflags |= MC_ITEM_LINKED;
    hash_insert(s, it);
    lru_link(s, it);
    struct mc_class *c = &s->cls[it->cls];
    uint64_t ntotal = item_ntotal(s, it);
    c->items++;
    c->bytes_requested += ntotal;
    s->st.curr_items++;
    s->st.total_items++;
    s->st.bytes += ntotal;
    hash_maybe_grow(s);
}

/* Looks a key up, expiring it lazily (counted as get_expired / get_flushed like memcached). */
struct mc_item *mc_store_find(struct mc_store *s, const uint8_t *key, size_t len, uint64_t now)
{
    if (now > s->last_now)
        s->last_now = now;
    struct mc_item *it = hash_find(s, key, len);
    if (!it)
        return NULL;
    if (mc_item_flushed(s, it, now)) {
        s->st.get_flushed++;
        mc_store_unlink(s, it);
        return NULL;
    }
    if (item_expired(it, now)) {
        s->st.get_expired++;
        mc_store_unlink(s, it);
        return NULL;
    }
    return it;
}

/* An access: last access time now; moves to the LRU head at most once per MC_ITEM_UPDATE_INTERVAL. */
void mc_item_update(struct mc_store *s, struct mc_item *it, uint64_t now)
{
    it->time = (uint32_t)now;
    if ((it->iflags & MC_ITEM_LINKED) && it->lru_time + MC_ITEM_UPDATE_INTERVAL < now) {
        it->lru_time = (uint32_t)now;
        lru_unlink(s, it);
        lru_link(s, it);
    }
}

/* A fetch: marks the item fetched and updates it. */
void mc_item_bump(struct mc_store *s, struct mc_item *it, uint64_t now)
{
    it->iflags |= MC_ITEM_FETCHED;
    mc_item_update(s, it, now);
}

/* ---- public API ---- */

struct mc_store *mc_store_create(const struct mc_store_config *cfg, uint64_t now)
{
    struct mc_store *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cfg = *cfg;
    if (s->cfg.item_size_max < 1024)
        s->cfg.item_size_max = 1024;
    s->bits = 10;
    s->table = calloc((size_t)1 << s->bits, sizeof *s->table);
    if (!s->table) {
        free(s);
        return NULL;
    }
    s->started = now > MC_ITEM_UPDATE_INTERVAL + 2 ? now - MC_ITEM_UPDATE_INTERVAL - 2 : 0;
    s->last_now = now;
    classes_init(s);
    return s;
}

void mc_store_destroy(struct mc_store *s)
{
    if (!s)
        return;
    for (unsigned i = 1; i <= s->nclasses; i++) {
        struct mc_item *it = s->cls[i].head;
        while (it) {
            struct mc_item *next = it->next;
            free(it);
            it = next;
        }
    }
    free(s->old);
    free(s->table);
    free(s);
}

void mc_store_release(struct mc_store *s, struct mc_item *it)
{
    if (!it)
        return;
    if (it->refs)
        it->refs--;
    if (it->refs == 0 && !(it->iflags & MC_ITEM_LINKED))
        item_free(s, it);
}

void mc_store_flush(struct mc_store *s, uint64_t now, int64_t delay)
{
    /* memcached: oldest_live = realtime(delay) - 1 (now - 1 without a delay); when that is already
       past, every item with a cas older than the next one is flushed too (oldest_cas). */
    uint64_t new_oldest = delay > 0 ? mc_store_realtime(s, delay, now) : now;
    s->st.cmd_flush++;
    if (s->cfg.cas_enabled) {
        s->oldest_live = new_oldest - 1;
        if (s->oldest_live <= now)
            s->oldest_cas = mc_store_next_cas(s);
    } else {
        s->oldest_live = new_oldest;
    }
}

unsigned mc_store_sweep(struct mc_store *s, uint64_t now, unsigned budget)
{
    if (now > s->last_now)
        s->last_now = now;
    hash_migrate(s, budget);            /* also finishes a table growth on an idle shard */
    if (s->sweep_state == 2) {          /* a pass just finished: report it once */
        s->sweep_state = 0;
        return 0;
    }
    if (s->sweep_state == 0) {
        s->sweep_state = 1;
        s->sweep_cls = 1;
        s->sweep_cursor = s->cls[1].tail;
    }
    unsigned examined = 0;
    while (examined < budget) {
        struct mc_item *it = s->sweep_cursor;
        if (!it) {
            if (++s->sweep_cls > s->nclasses) {
                s->sweep_state = 2;
                break;
            }
            s->sweep_cursor = s->cls[s->sweep_cls].tail;
            continue;
        }
        examined++;
        s->sweep_cursor = it->prev;
        if (it->refs == 0 && (item_expired(it, now) || mc_item_flushed(s, it, now))) {
            s->st.reclaimed++;
            if (!(it->iflags & MC_ITEM_FETCHED)) {
                s->st.expired_unfetched++;
                s->cls[it->cls].expired_unfetched++;
            }
            mc_store_unlink(s, it);
        }
    }
    return examined;
}

void mc_store_stats(const struct mc_store *s, struct mc_store_stats *out)
{
    *out = s->st;
    out->limit_maxbytes = s->cfg.mem_limit;
    out->total_malloced = s->mem_used;
}

void mc_store_stats_reset(struct mc_store *s)
{
    /* "stats reset" clears counters, not the state they describe */
    struct mc_store_stats keep = { .curr_items = s->st.curr_items, .bytes = s->st.bytes };
    s->st = keep;
}

unsigned mc_store_class_stats(const struct mc_store *s, struct mc_class_stats *out, unsigned max)
{
    unsigned n = 0;
    for (unsigned i = 0; i <= s->nclasses && i < max; i++, n++) {
        const struct mc_class *c = &s->cls[i];
        out[i] = (struct mc_class_stats){
            .chunk_size = c->size,
            .items = c->items,
            .bytes_requested = c->bytes_requested,
            .evicted = c->evicted,
            .expired_unfetched = c->expired_unfetched,
            .evicted_unfetched = c->evicted_unfetched,
            .outofmemory = c->outofmemory,
            .age = c->tail && s->last_now > c->tail->time ? s->last_now - c->tail->time : 0,
        };
    }
    return n;
}

const struct mc_store_config *mc_store_config(const struct mc_store *s)
{
    return &s->cfg;
}
