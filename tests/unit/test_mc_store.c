/*
 * The memcached store and command semantics (apps/memcached/store.c, exec.c), checked against
 * behaviour observed on memcached 1.6.18: item size boundary, decr padding, incr/decr parsing,
 * expiry and flush_all timing, cas rules, meta commands' win/stale/recache flags, LRU eviction.
 */
#include "check.h"
#include "../../apps/memcached/store.c"
#include "../../apps/memcached/exec.c"

#include <string.h>

#define T0 1700000000ull

static struct mc_store *mk(uint64_t mem, bool cas)
{
    struct mc_store_config c = { .mem_limit = mem, .item_size_max = 1u << 20, .chunk_min = 48,
                                 .factor = 1.25, .cas_enabled = cas };
    return mc_store_create(&c, T0);
}

static struct mc_cmd keyed(enum mc_op op, const char *key)
{
    struct mc_cmd c;
    memset(&c, 0, sizeof c);
    c.op = op;
    c.key = (const uint8_t *)key;
    c.keylen = (uint8_t)strlen(key);
    c.m.delta = 1;
    return c;
}

static void meta_flag(struct mc_cmd *c, char f)
{
    c->meta = true;
    c->m.present |= MC_MF(f);
}

static enum mc_status store_full(struct mc_store *s, enum mc_store_mode mode, const char *key, const char *val,
                                 uint32_t flags, int64_t exptime, uint64_t cas, uint64_t now, uint64_t *cas_out)
{
    struct mc_cmd c = keyed(MC_OP_STORE, key);
    c.store_mode = mode;
    c.value = (const uint8_t *)val;
    c.vlen = (uint32_t)strlen(val);
    c.client_flags = flags;
    c.exptime = exptime;
    c.cas = cas;
    struct mc_result r;
    mc_exec(s, &c, now, &r);
    CHECK(r.item == NULL);
    if (cas_out)
        *cas_out = r.cas;
    return r.status;
}

static enum mc_status set(struct mc_store *s, const char *key, const char *val, int64_t exptime, uint64_t now)
{
    return store_full(s, MC_SET, key, val, 0, exptime, 0, now, NULL);
}

static char gbuf[1 << 21];
static uint32_t gflags;
static uint64_t gcas;

/* get: copies the value into gbuf (NUL-terminated), drops the reference. */
static enum mc_status get(struct mc_store *s, const char *key, uint64_t now)
{
    struct mc_cmd c = keyed(MC_OP_GET, key);
    struct mc_result r;
    mc_exec(s, &c, now, &r);
    gbuf[0] = 0;
    if (r.status == MC_ST_OK) {
        CHECK(r.item != NULL);
        CHECK_EQ(r.nbytes, r.item->nbytes);
        memcpy(gbuf, mc_item_value(r.item), r.nbytes);
        gbuf[r.nbytes] = 0;
        gflags = r.client_flags;
        gcas = r.cas;
        mc_store_release(s, r.item);
    } else {
        CHECK(r.item == NULL);
    }
    return r.status;
}

static struct mc_result arith(struct mc_store *s, const char *key, bool incr, uint64_t delta, uint64_t now)
{
    struct mc_cmd c = keyed(MC_OP_ARITH, key);
    c.arith_mode = incr ? MC_INCR : MC_DECR;
    c.delta = delta;
    struct mc_result r;
    mc_exec(s, &c, now, &r);
    CHECK(r.item == NULL);
    return r;
}

static struct mc_result run(struct mc_store *s, struct mc_cmd *c, uint64_t now)
{
    struct mc_result r;
    mc_exec(s, c, now, &r);
    return r;
}

static void drop(struct mc_store *s, struct mc_result *r)
{
    if (r->item)
        mc_store_release(s, r->item);
    r->item = NULL;
}

TEST(set_get_and_cas_unique)
{
    struct mc_store *s = mk(64 << 20, true);
    uint64_t c1, c2, c3;
    CHECK_EQ(store_full(s, MC_SET, "a", "hello", 7, 0, 0, T0, &c1), MC_ST_OK);
    CHECK_EQ(get(s, "a", T0), MC_ST_OK);
    CHECK(strcmp(gbuf, "hello") == 0);
    CHECK_EQ(gflags, 7);
    CHECK_EQ(gcas, c1);
    CHECK_EQ(store_full(s, MC_SET, "b", "x", 0, 0, 0, T0, &c2), MC_ST_OK);
    CHECK_EQ(store_full(s, MC_SET, "a", "again", 0, 0, 0, T0, &c3), MC_ST_OK);
    CHECK(c1 != 0 && c2 > c1 && c3 > c2);
    CHECK_EQ(get(s, "a", T0), MC_ST_OK);
    CHECK(strcmp(gbuf, "again") == 0);
    CHECK_EQ(gflags, 0);
    CHECK_EQ(get(s, "nope", T0), MC_ST_MISS);
    struct mc_store_stats st;
    mc_store_stats(s, &st);
    CHECK_EQ(st.curr_items, 2);
    CHECK_EQ(st.total_items, 3);
    CHECK_EQ(st.get_hits, 2);
    CHECK_EQ(st.get_misses, 1);
    CHECK_EQ(st.cmd_set, 3);
    mc_store_destroy(s);

    /* -C: cas disabled gives cas 0 */
    s = mk(64 << 20, false);
    CHECK_EQ(store_full(s, MC_SET, "a", "v", 0, 0, 0, T0, &c1), MC_ST_OK);
    CHECK_EQ(c1, 0);
    mc_store_destroy(s);
}

TEST(add_replace_append_prepend)
{
    struct mc_store *s = mk(64 << 20, true);
    CHECK_EQ(store_full(s, MC_REPLACE, "k", "v", 0, 0, 0, T0, NULL), MC_ST_NOT_STORED);
    CHECK_EQ(store_full(s, MC_APPEND, "k", "v", 0, 0, 0, T0, NULL), MC_ST_NOT_STORED);
    CHECK_EQ(store_full(s, MC_PREPEND, "k", "v", 0, 0, 0, T0, NULL), MC_ST_NOT_STORED);
    CHECK_EQ(store_full(s, MC_ADD, "k", "mid", 5, 100, 0, T0, NULL), MC_ST_OK);
    CHECK_EQ(store_full(s, MC_ADD, "k", "zzz", 0, 0, 0, T0, NULL), MC_ST_NOT_STORED);
    CHECK_EQ(store_full(s, MC_APPEND, "k", "-end", 9, 0, 0, T0, NULL), MC_ST_OK);
    CHECK_EQ(store_full(s, MC_PREPEND, "k", "start-", 9, 0, 0, T0, NULL), MC_ST_OK);
    CHECK_EQ(get(s, "k", T0), MC_ST_OK);
    CHECK(strcmp(gbuf, "start-mid-end") == 0);
    CHECK_EQ(gflags, 5);                         /* append/prepend keep flags ... */
    CHECK_EQ(get(s, "k", T0 + 100), MC_ST_MISS); /* ... and exptime */
    CHECK_EQ(set(s, "k", "a", 0, T0), MC_ST_OK);
    CHECK_EQ(store_full(s, MC_REPLACE, "k", "b", 3, 0, 0, T0, NULL), MC_ST_OK);
    CHECK_EQ(get(s, "k", T0), MC_ST_OK);
    CHECK(strcmp(gbuf, "b") == 0);
    CHECK_EQ(gflags, 3);
    mc_store_destroy(s);
}

TEST(cas_rules)
{
    struct mc_store *s = mk(64 << 20, true);
    uint64_t c;
    struct mc_store_stats st;
    CHECK_EQ(store_full(s, MC_CAS, "k", "v", 0, 0, 1, T0, NULL), MC_ST_MISS);
    CHECK_EQ(store_full(s, MC_SET, "k", "v", 0, 0, 0, T0, &c), MC_ST_OK);
    CHECK_EQ(store_full(s, MC_CAS, "k", "w", 0, 0, c + 1, T0, NULL), MC_ST_EXISTS);
    CHECK_EQ(store_full(s, MC_CAS, "k", "w", 0, 0, 0, T0, NULL), MC_ST_EXISTS);
    CHECK_EQ(store_full(s, MC_CAS, "k", "w", 0, 0, c, T0, NULL), MC_ST_OK);
    CHECK_EQ(store_full(s, MC_CAS, "k", "x", 0, 0, c, T0, NULL), MC_ST_EXISTS);
    CHECK_EQ(get(s, "k", T0), MC_ST_OK);
    CHECK(strcmp(gbuf, "w") == 0);
    mc_store_stats(s, &st);
    CHECK_EQ(st.cas_misses, 1);
    CHECK_EQ(st.cas_hits, 1);
    CHECK_EQ(st.cas_badval, 3);

    /* binary set/add/replace with a cas compare; append with a wrong cas */
    struct mc_cmd b = keyed(MC_OP_STORE, "k");
    b.binary = true;
    b.store_mode = MC_ADD;
    b.value = (const uint8_t *)"y";
    b.vlen = 1;
    b.cas = gcas;
    CHECK_EQ(run(s, &b, T0).status, MC_ST_OK);
    b.store_mode = MC_SET;
    CHECK_EQ(run(s, &b, T0).status, MC_ST_EXISTS);
    b.store_mode = MC_APPEND;
    CHECK_EQ(run(s, &b, T0).status, MC_ST_EXISTS);
    b.key = (const uint8_t *)"nokey";
    b.keylen = 5;
    b.store_mode = MC_REPLACE;
    CHECK_EQ(run(s, &b, T0).status, MC_ST_MISS);
    mc_store_destroy(s);
}

TEST(incr_decr)
{
    struct mc_store *s = mk(64 << 20, true);
    struct mc_result r;
    /* memcached: "100" decr 1 -> 99, stored in place as "99 " */
    set(s, "n", "100", 0, T0);
    r = arith(s, "n", false, 1, T0);
    CHECK_EQ(r.status, MC_ST_OK);
    CHECK_EQ(r.number, 99);
    CHECK_EQ(get(s, "n", T0), MC_ST_OK);
    CHECK(strcmp(gbuf, "99 ") == 0);
    uint64_t before = gcas;
    r = arith(s, "n", true, 5, T0);
    CHECK_EQ(r.number, 104);
    CHECK(r.cas > before);
    CHECK_EQ(get(s, "n", T0), MC_ST_OK);
    CHECK(strcmp(gbuf, "104") == 0);
    /* growing: a new item of exactly the new length */
    set(s, "n", "99", 0, T0);
    CHECK_EQ(arith(s, "n", true, 1, T0).number, 100);
    CHECK_EQ(get(s, "n", T0), MC_ST_OK);
    CHECK(strcmp(gbuf, "100") == 0);
    /* wrap at 2^64, floor at 0 */
    set(s, "n", "18446744073709551615", 0, T0);
    CHECK_EQ(arith(s, "n", true, 2, T0).number, 1);
    CHECK_EQ(get(s, "n", T0), MC_ST_OK);
    CHECK(strcmp(gbuf, "1                   ") == 0);
    CHECK_EQ(arith(s, "n", false, 5, T0).number, 0);
    /* parsing, as memcached's safe_strtoull on the data */
    set(s, "n", "12abc", 0, T0);
    CHECK_EQ(arith(s, "n", true, 1, T0).status, MC_ST_NON_NUMERIC);
    set(s, "n", "12 abc", 0, T0);
    CHECK_EQ(arith(s, "n", true, 1, T0).number, 13);
    CHECK_EQ(get(s, "n", T0), MC_ST_OK);
    CHECK(strcmp(gbuf, "13    ") == 0);
    set(s, "n", " 12", 0, T0);
    CHECK_EQ(arith(s, "n", true, 1, T0).number, 13);
    set(s, "n", "+5", 0, T0);
    CHECK_EQ(arith(s, "n", true, 1, T0).number, 6);
    set(s, "n", "-1", 0, T0);
    CHECK_EQ(arith(s, "n", true, 1, T0).status, MC_ST_NON_NUMERIC);
    set(s, "n", "", 0, T0);
    CHECK_EQ(arith(s, "n", true, 1, T0).status, MC_ST_NON_NUMERIC);
    set(s, "n", "18446744073709551616", 0, T0);
    CHECK_EQ(arith(s, "n", true, 1, T0).status, MC_ST_NON_NUMERIC);
    set(s, "n", "   ", 0, T0);
    CHECK_EQ(arith(s, "n", true, 1, T0).status, MC_ST_NON_NUMERIC);
    CHECK_EQ(arith(s, "missing", true, 1, T0).status, MC_ST_MISS);

    /* a referenced item is never changed: incr links a new one */
    set(s, "n", "5", 0, T0);
    struct mc_cmd g = keyed(MC_OP_GET, "n");
    struct mc_result held = run(s, &g, T0);
    CHECK_EQ(arith(s, "n", true, 1, T0).number, 6);
    CHECK(memcmp(mc_item_value(held.item), "5", 1) == 0);
    CHECK_EQ(held.item->cas, held.cas);
    drop(s, &held);
    CHECK_EQ(get(s, "n", T0), MC_ST_OK);
    CHECK(strcmp(gbuf, "6") == 0);

    /* binary: create with the initial value on a miss when asked to */
    struct mc_cmd b = keyed(MC_OP_ARITH, "bin");
    b.binary = true;
    b.arith_mode = MC_INCR;
    b.delta = 3;
    b.initial = 42;
    CHECK_EQ(run(s, &b, T0).status, MC_ST_MISS);
    b.arith_create = true;
    r = run(s, &b, T0);
    CHECK_EQ(r.status, MC_ST_OK);
    CHECK_EQ(r.number, 42);
    r = run(s, &b, T0);
    CHECK_EQ(r.number, 45);
    b.cas = r.cas + 100;
    CHECK_EQ(run(s, &b, T0).status, MC_ST_EXISTS);

    struct mc_store_stats st;
    mc_store_stats(s, &st);
    CHECK_EQ(st.incr_misses, 2);
    CHECK_EQ(st.decr_hits, 2);
    mc_store_destroy(s);
}

TEST(expiry)
{
    struct mc_store *s = mk(64 << 20, true);
    set(s, "rel", "v", 10, T0);
    CHECK_EQ(get(s, "rel", T0 + 9), MC_ST_OK);
    CHECK_EQ(get(s, "rel", T0 + 10), MC_ST_MISS);
    set(s, "abs", "v", (int64_t)T0 + 100, T0);
    CHECK_EQ(get(s, "abs", T0 + 99), MC_ST_OK);
    CHECK_EQ(get(s, "abs", T0 + 100), MC_ST_MISS);
    CHECK_EQ(set(s, "neg", "v", -1, T0), MC_ST_OK);   /* stored, but already gone */
    CHECK_EQ(get(s, "neg", T0), MC_ST_MISS);
    CHECK_EQ(set(s, "past", "v", (int64_t)T0 - 1000, T0), MC_ST_OK);
    CHECK_EQ(get(s, "past", T0), MC_ST_MISS);
    CHECK_EQ(set(s, "d30", "v", 2592000, T0), MC_ST_OK);   /* 30 days is still relative */
    CHECK_EQ(get(s, "d30", T0 + 2591999), MC_ST_OK);
    CHECK_EQ(set(s, "never", "v", 0, T0), MC_ST_OK);
    CHECK_EQ(get(s, "never", T0 + 100000000), MC_ST_OK);

    /* touch and gat set a new exptime */
    set(s, "t", "v", 10, T0);
    struct mc_cmd t = keyed(MC_OP_TOUCH, "t");
    t.exptime = 100;
    CHECK_EQ(run(s, &t, T0 + 5).status, MC_ST_OK);
    CHECK_EQ(get(s, "t", T0 + 50), MC_ST_OK);
    CHECK_EQ(get(s, "t", T0 + 105), MC_ST_MISS);
    CHECK_EQ(run(s, &t, T0 + 5).status, MC_ST_MISS);
    set(s, "g", "v", 10, T0);
    struct mc_cmd g = keyed(MC_OP_GET, "g");
    g.touch = true;
    g.exptime = 0;
    struct mc_result r = run(s, &g, T0 + 1);
    CHECK_EQ(r.status, MC_ST_OK);
    CHECK_EQ(r.ttl, -1);
    drop(s, &r);
    CHECK_EQ(get(s, "g", T0 + 1000), MC_ST_OK);
    g.exptime = -1;
    r = run(s, &g, T0 + 1000);
    CHECK_EQ(r.status, MC_ST_OK);
    drop(s, &r);
    CHECK_EQ(get(s, "g", T0 + 1000), MC_ST_MISS);

    struct mc_store_stats st;
    mc_store_stats(s, &st);
    CHECK_EQ(st.get_expired, 6);
    CHECK_EQ(st.touch_hits, 3);
    CHECK_EQ(st.touch_misses, 1);
    mc_store_destroy(s);
}

TEST(flush_all)
{
    for (int cas = 0; cas < 2; cas++) {
        struct mc_store *s = mk(64 << 20, cas);
        set(s, "old", "v", 0, T0);
        mc_store_flush(s, T0 + 10, 0);
        CHECK_EQ(get(s, "old", T0 + 10), MC_ST_MISS);
        set(s, "new", "v", 0, T0 + 11);
        CHECK_EQ(get(s, "new", T0 + 11), MC_ST_OK);
        CHECK_EQ(get(s, "new", T0 + 1000), MC_ST_OK);
        struct mc_store_stats st;
        mc_store_stats(s, &st);
        CHECK_EQ(st.get_flushed, 1);

        /* delayed: memcached sets oldest_live = now + delay - 1 with cas, now + delay without */
        uint64_t at = cas ? T0 + 109 : T0 + 110;
        set(s, "a", "v", 0, T0 + 100);
        mc_store_flush(s, T0 + 100, 10);
        CHECK_EQ(get(s, "a", T0 + 105), MC_ST_OK);
        set(s, "b", "v", 0, T0 + 105);
        CHECK_EQ(get(s, "b", at - 1), MC_ST_OK);
        CHECK_EQ(get(s, "a", at), MC_ST_MISS);
        CHECK_EQ(get(s, "b", at), MC_ST_MISS);
        set(s, "c", "v", 0, at + 1);
        CHECK_EQ(get(s, "c", T0 + 200), MC_ST_OK);
        mc_store_destroy(s);
    }
    /* with cas, an item stored in the same second right after an immediate flush survives */
    struct mc_store *s = mk(64 << 20, true);
    set(s, "x", "v", 0, T0);
    mc_store_flush(s, T0, 0);
    set(s, "y", "v", 0, T0);
    CHECK_EQ(get(s, "x", T0), MC_ST_MISS);
    CHECK_EQ(get(s, "y", T0), MC_ST_OK);
    CHECK_EQ(get(s, "y", T0 + 1), MC_ST_OK);
    mc_store_destroy(s);
}

TEST(lru_eviction_and_refs)
{
    /* every item here is in class 1 (96-byte chunks): room for 10 */
    struct mc_store *s = mk(960, true);
    char key[16];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "k%d", i);
        CHECK_EQ(set(s, key, "v", 0, T0 + i), MC_ST_OK);
    }
    struct mc_store_stats st;
    mc_store_stats(s, &st);
    CHECK_EQ(st.total_malloced, 960);
    CHECK_EQ(st.evictions, 0);
    /* an access within the bump interval does not move k2 */
    CHECK_EQ(get(s, "k2", T0 + 10), MC_ST_OK);
    /* k0 is accessed after the bump interval: it moves to the head, k1 becomes the tail */
    CHECK_EQ(get(s, "k0", T0 + 100), MC_ST_OK);
    CHECK_EQ(set(s, "k10", "v", 0, T0 + 100), MC_ST_OK);
    CHECK_EQ(get(s, "k1", T0 + 100), MC_ST_MISS);
    CHECK_EQ(get(s, "k0", T0 + 100), MC_ST_OK);
    mc_store_stats(s, &st);
    CHECK_EQ(st.evictions, 1);
    CHECK_EQ(st.evicted_unfetched, 1);
    /* k2 is the tail and goes next */
    CHECK_EQ(set(s, "k11", "v", 0, T0 + 101), MC_ST_OK);
    CHECK_EQ(get(s, "k2", T0 + 101), MC_ST_MISS);

    /* a referenced tail is skipped; once unlinked it stays readable until released */
    struct mc_cmd g = keyed(MC_OP_GET, "k3");
    struct mc_result held = run(s, &g, T0 + 102);
    CHECK_EQ(held.status, MC_ST_OK);
    CHECK_EQ(set(s, "k12", "v", 0, T0 + 102), MC_ST_OK);
    CHECK_EQ(get(s, "k3", T0 + 102), MC_ST_OK);       /* still there: k4 went instead */
    CHECK_EQ(get(s, "k4", T0 + 102), MC_ST_MISS);
    struct mc_cmd d = keyed(MC_OP_DELETE, "k3");
    CHECK_EQ(run(s, &d, T0 + 102).status, MC_ST_OK);
    CHECK_EQ(get(s, "k3", T0 + 102), MC_ST_MISS);
    CHECK(memcmp(mc_item_key(held.item), "k3", 2) == 0);
    CHECK(memcmp(mc_item_value(held.item), "v\r\n", 3) == 0);
    mc_store_stats(s, &st);
    CHECK_EQ(st.total_malloced, 960);                   /* still charged while referenced */
    CHECK_EQ(st.curr_items, 9);
    drop(s, &held);
    mc_store_stats(s, &st);
    CHECK_EQ(st.total_malloced, 864);
    mc_store_destroy(s);

    /* nothing evictable: out of memory */
    s = mk(192, true);
    struct mc_result h[2];
    set(s, "a", "v", 0, T0);
    set(s, "b", "v", 0, T0);
    g = keyed(MC_OP_GET, "a");
    h[0] = run(s, &g, T0);
    g = keyed(MC_OP_GET, "b");
    h[1] = run(s, &g, T0);
    CHECK_EQ(set(s, "c", "v", 0, T0), MC_ST_NO_MEMORY);
    mc_store_stats(s, &st);
    CHECK_EQ(st.store_no_memory, 1);
    drop(s, &h[0]);
    CHECK_EQ(set(s, "c", "v", 0, T0), MC_ST_OK);
    CHECK_EQ(get(s, "a", T0), MC_ST_MISS);
    drop(s, &h[1]);

    /* expired items are reclaimed before anything live is evicted */
    mc_store_destroy(s);
    s = mk(192, true);
    set(s, "live", "v", 0, T0);
    set(s, "short", "v", 5, T0 + 1);
    CHECK_EQ(set(s, "new", "v", 0, T0 + 10), MC_ST_OK);
    CHECK_EQ(get(s, "live", T0 + 10), MC_ST_OK);
    mc_store_stats(s, &st);
    CHECK_EQ(st.evictions, 0);
    CHECK_EQ(st.reclaimed, 1);

    /* another class's memory is taken when the item's own class has nothing to evict */
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    CHECK_EQ(set(s, "big", big, 0, T0 + 20), MC_ST_NO_MEMORY);   /* bigger than the limit */
    mc_store_destroy(s);
    s = mk(4096, true);
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "s%d", i);
        set(s, key, "v", 0, T0);
    }
    CHECK_EQ(set(s, "big", big, 0, T0 + 20), MC_ST_OK);
    CHECK_EQ(get(s, "big", T0 + 20), MC_ST_OK);
    CHECK_EQ(strlen(gbuf), 1999);
    mc_store_destroy(s);
}

TEST(sweep)
{
    struct mc_store *s = mk(64 << 20, true);
    char key[16];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "k%d", i);
        set(s, key, i % 2 ? "value" : "a-longer-value-in-another-class-maybe-xxxxxxxxxxxxxxxxxxxxx", i % 4 ? 10 : 0,
            T0);
    }
    unsigned total = 0, n, calls = 0;
    while ((n = mc_store_sweep(s, T0 + 20, 7)) != 0) {
        total += n;
        calls++;
        CHECK(calls < 100);
        if (calls >= 100)
            break;
    }
    CHECK_EQ(total, 100);
    struct mc_store_stats st;
    mc_store_stats(s, &st);
    CHECK_EQ(st.curr_items, 25);
    CHECK_EQ(st.reclaimed, 75);
    CHECK_EQ(st.expired_unfetched, 75);
    /* the next pass examines what is left */
    total = 0;
    while ((n = mc_store_sweep(s, T0 + 20, 1000)) != 0)
        total += n;
    CHECK_EQ(total, 25);
    /* flushed items are swept too */
    mc_store_flush(s, T0 + 30, 0);
    while (mc_store_sweep(s, T0 + 30, 3) != 0)
        ;
    mc_store_stats(s, &st);
    CHECK_EQ(st.curr_items, 0);
    mc_store_destroy(s);
}

TEST(meta_get_flags)
{
    struct mc_store *s = mk(64 << 20, true);
    set(s, "m", "a", 100, T0);
    /* like memcached: "mg m t l h c f s v" right after the set: t100 l0 h0; then h1 */
    struct mc_cmd c = keyed(MC_OP_GET, "m");
    meta_flag(&c, 'v');
    meta_flag(&c, 'h');
    meta_flag(&c, 'l');
    meta_flag(&c, 't');
    struct mc_result r = run(s, &c, T0);
    CHECK_EQ(r.status, MC_ST_OK);
    CHECK_EQ(r.ttl, 100);
    CHECK_EQ(r.hit_before, 0);
    CHECK_EQ(r.last_access, 0);
    CHECK_EQ(r.nbytes, 1);
    drop(s, &r);
    r = run(s, &c, T0 + 7);
    CHECK_EQ(r.hit_before, 1);
    CHECK_EQ(r.last_access, 7);
    CHECK_EQ(r.ttl, 93);
    drop(s, &r);
    /* u: no bump, no last-access update */
    meta_flag(&c, 'u');
    r = run(s, &c, T0 + 9);
    CHECK_EQ(r.last_access, 2);
    drop(s, &r);
    r = run(s, &c, T0 + 12);
    CHECK_EQ(r.last_access, 5);
    drop(s, &r);
    /* T: new ttl */
    c = keyed(MC_OP_GET, "m");
    meta_flag(&c, 'T');
    c.m.ttl = 500;
    r = run(s, &c, T0 + 20);
    CHECK_EQ(r.ttl, 500);
    drop(s, &r);
    struct mc_store_stats st;
    mc_store_stats(s, &st);
    CHECK_EQ(st.touch_hits, 1);
    CHECK_EQ(get(s, "m", T0 + 519), MC_ST_OK);

    /* me: exp is now - exptime (memcached's sign), la, fetch, cls, size (61 for "m"/"a") */
    set(s, "m", "a", 100, T0 + 1000);
    c = keyed(MC_OP_DEBUG, "m");
    c.meta = true;
    r = run(s, &c, T0 + 1003);
    CHECK_EQ(r.status, MC_ST_OK);
    CHECK_EQ(r.debug_exp, -97);
    CHECK_EQ(r.last_access, 3);
    CHECK_EQ(r.hit_before, 0);
    CHECK_EQ(r.cls, 1);
    CHECK_EQ(r.item_size, 61);
    CHECK(r.item == NULL);
    set(s, "m", "a", 0, T0 + 1000);
    CHECK_EQ(run(s, &c, T0 + 1003).debug_exp, -1);
    c = keyed(MC_OP_DEBUG, "zz");
    CHECK_EQ(run(s, &c, T0).status, MC_ST_MISS);
    mc_store_destroy(s);
}

TEST(meta_vivify_recache_stale)
{
    struct mc_store *s = mk(64 << 20, true);
    /* mg N30 on a miss: an empty item is created and this client wins; the next one sees Z */
    struct mc_cmd c = keyed(MC_OP_GET, "v");
    meta_flag(&c, 'N');
    meta_flag(&c, 'v');
    c.m.vivify_ttl = 30;
    struct mc_result r = run(s, &c, T0);
    CHECK_EQ(r.status, MC_ST_OK);
    CHECK(r.win && !r.won && !r.stale);
    CHECK_EQ(r.nbytes, 0);
    CHECK_EQ(r.ttl, 30);
    drop(s, &r);
    r = run(s, &c, T0 + 1);
    CHECK(!r.win && r.won);
    drop(s, &r);
    /* the winner stores: a fresh item without marks */
    CHECK_EQ(set(s, "v", "data", 0, T0 + 2), MC_ST_OK);
    r = run(s, &c, T0 + 3);
    CHECK(!r.win && !r.won);
    CHECK_EQ(r.nbytes, 4);
    drop(s, &r);

    /* R: win once when the remaining ttl is below the token */
    set(s, "r", "x", 100, T0);
    c = keyed(MC_OP_GET, "r");
    meta_flag(&c, 'R');
    c.m.recache_ttl = 30;
    r = run(s, &c, T0 + 50);
    CHECK(!r.win && !r.won);
    drop(s, &r);
    r = run(s, &c, T0 + 80);
    CHECK(r.win && !r.won);
    drop(s, &r);
    r = run(s, &c, T0 + 81);
    CHECK(!r.win && r.won);
    drop(s, &r);

    /* md I T30: stale with a new cas; the next mg wins (W X), later ones see Z X; as on memcached */
    uint64_t c0;
    CHECK_EQ(store_full(s, MC_SET, "s", "hi", 0, 0, 0, T0, &c0), MC_ST_OK);
    struct mc_cmd d = keyed(MC_OP_DELETE, "s");
    meta_flag(&d, 'I');
    meta_flag(&d, 'T');
    d.m.ttl = 30;
    r = run(s, &d, T0);
    CHECK_EQ(r.status, MC_ST_OK);
    c = keyed(MC_OP_GET, "s");
    meta_flag(&c, 'v');
    r = run(s, &c, T0);
    CHECK(r.win && r.stale && !r.won);
    CHECK_EQ(r.ttl, 30);
    CHECK_EQ(r.cas, c0 + 1);
    drop(s, &r);
    r = run(s, &c, T0);
    CHECK(!r.win && r.stale && r.won);
    drop(s, &r);
    /* ms C<old cas> I: accepted as stale, keeps the ttl and the win marker */
    struct mc_cmd m = keyed(MC_OP_STORE, "s");
    meta_flag(&m, 'C');
    meta_flag(&m, 'I');
    m.m.compare_cas = 1;
    m.value = (const uint8_t *)"new";
    m.vlen = 3;
    r = run(s, &m, T0 + 1);
    CHECK_EQ(r.status, MC_ST_OK);
    r = run(s, &c, T0 + 1);
    CHECK(!r.win && r.stale && r.won);
    CHECK_EQ(r.ttl, 29);
    CHECK(memcmp(mc_item_value(r.item), "new", 3) == 0);
    uint64_t cur = r.cas;
    drop(s, &r);
    /* ms C<current cas>: a plain store clears stale */
    m.m.present &= ~MC_MF('I');
    m.m.compare_cas = cur;
    CHECK_EQ(run(s, &m, T0 + 2).status, MC_ST_OK);
    r = run(s, &c, T0 + 2);
    CHECK(!r.win && !r.stale && !r.won);
    CHECK_EQ(r.ttl, -1);
    drop(s, &r);
    m.m.compare_cas = cur;
    CHECK_EQ(run(s, &m, T0 + 2).status, MC_ST_EXISTS);
    m.key = (const uint8_t *)"none";
    m.keylen = 4;
    CHECK_EQ(run(s, &m, T0 + 2).status, MC_ST_MISS);

    /* md I while a reader holds the item: the reader's copy keeps its cas */
    set(s, "h", "val", 0, T0);
    c = keyed(MC_OP_GET, "h");
    struct mc_result held = run(s, &c, T0);
    d = keyed(MC_OP_DELETE, "h");
    meta_flag(&d, 'I');
    CHECK_EQ(run(s, &d, T0).status, MC_ST_OK);
    CHECK_EQ(held.item->cas, held.cas);
    drop(s, &held);
    meta_flag(&c, 'v');
    r = run(s, &c, T0);
    CHECK(r.stale && r.win && r.cas > held.cas);
    CHECK(memcmp(mc_item_value(r.item), "val", 3) == 0);
    drop(s, &r);
    /* md C mismatch / plain md / q-less miss */
    d = keyed(MC_OP_DELETE, "h");
    meta_flag(&d, 'C');
    d.m.compare_cas = 12345;
    CHECK_EQ(run(s, &d, T0).status, MC_ST_EXISTS);
    d = keyed(MC_OP_DELETE, "h");
    d.meta = true;
    CHECK_EQ(run(s, &d, T0).status, MC_ST_OK);
    CHECK_EQ(run(s, &d, T0).status, MC_ST_MISS);
    mc_store_destroy(s);
}

TEST(meta_set_modes_and_arith)
{
    struct mc_store *s = mk(64 << 20, true);
    struct mc_cmd m = keyed(MC_OP_STORE, "k");
    meta_flag(&m, 'F');
    meta_flag(&m, 'T');
    m.m.client_flags = 77;
    m.m.ttl = 60;
    m.value = (const uint8_t *)"abc";
    m.vlen = 3;
    m.store_mode = MC_ADD;
    struct mc_result r = run(s, &m, T0);
    CHECK_EQ(r.status, MC_ST_OK);
    CHECK(r.cas != 0);
    CHECK_EQ(run(s, &m, T0).status, MC_ST_NOT_STORED);
    m.store_mode = MC_APPEND;
    CHECK_EQ(run(s, &m, T0).status, MC_ST_OK);
    CHECK_EQ(get(s, "k", T0), MC_ST_OK);
    CHECK(strcmp(gbuf, "abcabc") == 0);
    CHECK_EQ(gflags, 77);
    m.store_mode = MC_REPLACE;
    m.key = (const uint8_t *)"x";
    m.keylen = 1;
    CHECK_EQ(run(s, &m, T0).status, MC_ST_NOT_STORED);

    /* ma: N autovivify with J, D delta, M mode, C compare, T ttl; the value is referenced */
    struct mc_cmd a = keyed(MC_OP_ARITH, "cnt");
    a.meta = true;
    r = run(s, &a, T0);
    CHECK_EQ(r.status, MC_ST_MISS);
    meta_flag(&a, 'N');
    meta_flag(&a, 'J');
    a.m.vivify_ttl = 0;
    a.m.initial = 10;
    r = run(s, &a, T0);
    CHECK_EQ(r.status, MC_ST_OK);
    CHECK_EQ(r.number, 10);
    CHECK(r.item != NULL);
    drop(s, &r);
    a.m.delta = 5;
    r = run(s, &a, T0);
    CHECK_EQ(r.number, 15);
    uint64_t cas = r.cas;
    drop(s, &r);
    a.arith_mode = MC_DECR;
    meta_flag(&a, 'C');
    a.m.compare_cas = cas + 1;
    r = run(s, &a, T0);
    CHECK_EQ(r.status, MC_ST_EXISTS);
    a.m.compare_cas = cas;
    meta_flag(&a, 'T');
    a.m.ttl = 20;
    r = run(s, &a, T0);
    CHECK_EQ(r.status, MC_ST_OK);
    CHECK_EQ(r.number, 10);
    CHECK_EQ(r.ttl, 20);
    drop(s, &r);
    CHECK_EQ(get(s, "cnt", T0 + 20), MC_ST_MISS);
    mc_store_destroy(s);
}

TEST(item_size_limit)
{
    /* memcached 1.6.18 -I 1m: "set k 0 0 1048516" is stored, 1048517 is too large; with nonzero
       flags the limit is 4 bytes lower */
    struct mc_store *s = mk(64 << 20, true);
    static char big[1048520];
    memset(big, 'x', sizeof big);
    struct mc_cmd c = keyed(MC_OP_STORE, "k");
    c.store_mode = MC_SET;
    c.value = (const uint8_t *)big;
    c.vlen = 1048516;
    CHECK_EQ(run(s, &c, T0).status, MC_ST_OK);
    CHECK(mc_item_size_ok(mc_store_config(s), 1, 0, 1048516));
    CHECK(!mc_item_size_ok(mc_store_config(s), 1, 0, 1048517));
    CHECK(mc_item_size_ok(mc_store_config(s), 1, 5, 1048512));
    CHECK(!mc_item_size_ok(mc_store_config(s), 1, 5, 1048513));
    c.client_flags = 5;
    c.vlen = 1048512;
    CHECK_EQ(run(s, &c, T0).status, MC_ST_OK);
    c.vlen = 1048513;
    CHECK_EQ(run(s, &c, T0).status, MC_ST_TOO_LARGE);
    /* a too-large set drops the old value (memcached avoids serving stale data) */
    CHECK_EQ(get(s, "k", T0), MC_ST_MISS);
    set(s, "k", "small", 0, T0);
    c.store_mode = MC_ADD;
    c.value = NULL;                      /* the parser may not have kept the value */
    CHECK_EQ(run(s, &c, T0).status, MC_ST_TOO_LARGE);
    CHECK_EQ(get(s, "k", T0), MC_ST_OK);
    /* append beyond the limit: NOT_STORED */
    c.store_mode = MC_SET;
    c.value = (const uint8_t *)big;
    c.client_flags = 0;
    c.vlen = 1048510;
    CHECK_EQ(run(s, &c, T0).status, MC_ST_OK);
    CHECK_EQ(store_full(s, MC_APPEND, "k", "1234567", 0, 0, 0, T0, NULL), MC_ST_NOT_STORED);
    CHECK_EQ(store_full(s, MC_APPEND, "k", "123456", 0, 0, 0, T0, NULL), MC_ST_OK);
    struct mc_store_stats st;
    mc_store_stats(s, &st);
    CHECK_EQ(st.store_too_large, 2);

    /* slab classes: 96, 120, 152, ... up to 512 KiB, like memcached's defaults */
    struct mc_class_stats cs[MC_MAX_CLASSES];
    unsigned n = mc_store_class_stats(s, cs, MC_MAX_CLASSES);
    CHECK(n > 30);
    CHECK_EQ(cs[1].chunk_size, 96);
    CHECK_EQ(cs[2].chunk_size, 120);
    CHECK_EQ(cs[3].chunk_size, 152);
    CHECK_EQ(n, 40);                     /* 39 classes for -I 1m, as memcached -vv lists them */
    CHECK_EQ(cs[n - 1].chunk_size, 524288);
    /* me on a 600000-byte value: memcached says cls=39 size=600062 */
    static char v6[600001];
    memset(v6, 'y', 600000);
    CHECK_EQ(set(s, "big", v6, 0, T0), MC_ST_OK);
    struct mc_cmd me = keyed(MC_OP_DEBUG, "big");
    me.meta = true;
    struct mc_result r = run(s, &me, T0);
    CHECK_EQ(r.cls, 39);
    CHECK_EQ(r.item_size, 600062);
    CHECK_EQ(cs[31].chunk_size, 82792);
    mc_store_destroy(s);
}

TEST(hash_growth)
{
    struct mc_store *s = mk(1ull << 32, true);
    char key[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "key:%d", i);
        CHECK_EQ(set(s, key, key, 0, T0), MC_ST_OK);
        if (i % 3 == 0)
            CHECK_EQ(get(s, key, T0), MC_ST_OK);
    }
    CHECK(s->bits > 10);
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "key:%d", i);
        bad += get(s, key, T0) != MC_ST_OK || strcmp(gbuf, key) != 0;
        if (i % 2) {
            struct mc_cmd d = keyed(MC_OP_DELETE, key);
            CHECK_EQ(run(s, &d, T0).status, MC_ST_OK);
        }
    }
    CHECK_EQ(bad, 0);
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "key:%d", i);
        bad += get(s, key, T0) != (i % 2 ? MC_ST_MISS : MC_ST_OK);
    }
    CHECK_EQ(bad, 0);
    struct mc_store_stats st;
    mc_store_stats(s, &st);
    CHECK_EQ(st.curr_items, 10000);
    mc_store_destroy(s);
}

TEST_MAIN()
