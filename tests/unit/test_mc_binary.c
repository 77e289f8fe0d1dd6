/*
 * memcached binary protocol: request parsing and reply formatting, byte for
 * byte. Expected bytes, statuses, messages, consumed lengths and the
 * connection-closing cases were captured from memcached 1.6.18 (-I 1m) on
 * loopback; results are hand-built mc_result/mc_item values.
 */
#include "check.h"
#include "../../apps/memcached/binary.c"
#include "../../apps/memcached/outbuf.c"

#include <string.h>

#define MAXREQ (2u << 20)
static uint8_t req[MAXREQ + 4096];

static size_t mkreq(uint8_t *b, uint8_t magic, uint8_t op, const void *key, size_t keylen, const void *ext,
                    size_t extlen, const void *val, size_t vlen, uint64_t cas, uint32_t opaque)
{
    size_t body = extlen + keylen + vlen;
    b[0] = magic, b[1] = op;
    st16(b + 2, (uint16_t)keylen);
    b[4] = (uint8_t)extlen, b[5] = 0;
    st16(b + 6, 0);
    st32(b + 8, (uint32_t)body);
    st32(b + 12, opaque);
    st64(b + 16, cas);
    if (extlen)
        memcpy(b + 24, ext, extlen);
    if (keylen)
        memcpy(b + 24 + extlen, key, keylen);
    if (vlen)
        memcpy(b + 24 + extlen + keylen, val, vlen);
    return 24 + body;
}

/* the common case: magic 0x80, opaque 0xdeadbeef */
static size_t rq(uint8_t op, const char *key, const void *ext, size_t extlen, const char *val, uint64_t cas)
{
    return mkreq(req, 0x80, op, key, key ? strlen(key) : 0, ext, extlen, val, val ? strlen(val) : 0, cas,
                 0xdeadbeef);
}

static size_t parse_all(size_t n, struct mc_cmd *c, bool *fatal)
{
    return mc_binary_parse(req, n, 1024 * 1024, c, fatal);
}

/* An expected response. */
static size_t mkres(uint8_t *b, uint8_t op, uint16_t status, const void *ext, size_t extlen, const void *key,
                    size_t keylen, const void *val, size_t vlen, uint64_t cas, uint32_t opaque)
{
    size_t n = mkreq(b, 0x81, op, key, keylen, ext, extlen, val, vlen, cas, opaque);
    st16(b + 6, status);
    return n;
}

static bool out_is(struct mc_out *o, const uint8_t *exp, size_t n)
{
    bool ok = o->len == n && (n == 0 || memcmp(o->buf, exp, n) == 0);
    if (!ok) {
        fprintf(stderr, "got %zu bytes:", o->len);
        for (size_t i = 0; i < o->len && i < 80; i++)
            fprintf(stderr, " %02x", o->buf[i]);
        fprintf(stderr, "\nwant %zu bytes:", n);
        for (size_t i = 0; i < n && i < 80; i++)
            fprintf(stderr, " %02x", exp[i]);
        fprintf(stderr, "\n");
    }
    o->len = 0;
    return ok;
}

static bool out_err(struct mc_out *o, uint8_t op, uint16_t status, const char *msg, uint32_t opaque)
{
    uint8_t exp[128];
    size_t n = mkres(exp, op, status, NULL, 0, NULL, 0, msg, strlen(msg), 0, opaque);
    return out_is(o, exp, n);
}

static const uint8_t ext_set[8] = { 0, 0, 0, 7, 0, 0, 0x0e, 0x10 };   /* flags 7, exptime 3600 */

static struct mc_item *mkitem(const char *key, const char *val, uint32_t flags, uint64_t cas)
{
    size_t kl = strlen(key), vl = strlen(val);
    struct mc_item *it = calloc(1, sizeof *it + kl + vl + 2);
    it->keylen = (uint8_t)kl;
    it->nbytes = (uint32_t)vl;
    it->client_flags = flags;
    it->cas = cas;
    memcpy(it->data, key, kl);
    memcpy(it->data + kl, val, vl);
    memcpy(it->data + kl + vl, "\r\n", 2);
    return it;
}

static struct mc_result hit(struct mc_item *it)
{
    return (struct mc_result){ .status = MC_ST_OK, .item = it, .cas = it->cas, .client_flags = it->client_flags,
                               .nbytes = it->nbytes };
}

/* ------------------------------------------------------------------ parsing */

TEST(parse_needs_whole_header_extras_key)
{
    struct mc_cmd c;
    bool fatal;
    size_t n = rq(MC_BIN_GET, "somekey", NULL, 0, NULL, 0);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ(parse_all(i, &c, &fatal), 0);
    CHECK_EQ(parse_all(n, &c, &fatal), n);
    /* storage commands wait for the value too */
    n = rq(MC_BIN_SET, "k", ext_set, 8, "hello", 0);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ(parse_all(i, &c, &fatal), 0);
    CHECK_EQ(parse_all(n, &c, &fatal), n);
    /* a header that cannot be valid still waits for its extras and key (memcached does) */
    n = mkreq(req, 0x80, MC_BIN_GET, NULL, 0, NULL, 0, NULL, 0, 0, 0);
    st16(req + 2, 300);
    st32(req + 8, 300);
    CHECK_EQ(parse_all(24, &c, &fatal), 0);
    CHECK_EQ(parse_all(24 + 299, &c, &fatal), 0);
    memset(req + 24, 'a', 300);
    CHECK_EQ(parse_all(24 + 300, &c, &fatal), 24 + 300);
    CHECK(fatal);
    CHECK_EQ(c.bin_status, MC_BIN_EINVAL);
    (void)n;
}

TEST(parse_get_variants)
{
    static const struct { uint8_t op; bool quiet, key; } v[] = {
        { MC_BIN_GET, false, false }, { MC_BIN_GETQ, true, false },
        { MC_BIN_GETK, false, true }, { MC_BIN_GETKQ, true, true },
    };
    for (size_t i = 0; i < 4; i++) {
        struct mc_cmd c;
        bool fatal = true;
        size_t n = rq(v[i].op, "foo", NULL, 0, NULL, 77);
        CHECK_EQ(parse_all(n + 10, &c, &fatal), n);
        CHECK(!fatal);
        CHECK_EQ(c.op, MC_OP_GET);
        CHECK(c.binary);
        CHECK_EQ(c.noreply, v[i].quiet);
        CHECK_EQ(c.want_key, v[i].key);
        CHECK(!c.touch);
        CHECK_EQ(c.keylen, 3);
        CHECK(memcmp(c.key, "foo", 3) == 0);
        CHECK_EQ(c.opaque, 0xdeadbeef);
        CHECK_EQ(c.bin_opcode, v[i].op);
        CHECK_EQ(c.cas, 0);    /* a get ignores the cas field */
    }
}

TEST(parse_set_add_replace)
{
    static const struct { uint8_t op; enum mc_store_mode mode; bool quiet; } v[] = {
        { MC_BIN_SET, MC_SET, false }, { MC_BIN_ADD, MC_ADD, false }, { MC_BIN_REPLACE, MC_REPLACE, false },
        { MC_BIN_SETQ, MC_SET, true }, { MC_BIN_ADDQ, MC_ADD, true }, { MC_BIN_REPLACEQ, MC_REPLACE, true },
    };
    for (size_t i = 0; i < 6; i++) {
        struct mc_cmd c;
        bool fatal;
        const uint8_t ext[8] = { 0xfe, 0xdc, 0xba, 0x98, 0xff, 0xff, 0xff, 0xff };
        size_t n = rq(v[i].op, "key", ext, 8, "value", 0);
        CHECK_EQ(parse_all(n, &c, &fatal), n);
        CHECK(!fatal);
        CHECK_EQ(c.op, MC_OP_STORE);
        CHECK_EQ(c.store_mode, v[i].mode);
        CHECK_EQ(c.noreply, v[i].quiet);
        CHECK_EQ(c.client_flags, 0xfedcba98u);
        CHECK_EQ(c.exptime, 0xffffffffll);    /* unsigned on the wire: never negative */
        CHECK_EQ(c.vlen, 5);
        CHECK(memcmp(c.value, "value", 5) == 0);
        CHECK_EQ(c.keylen, 3);
        CHECK(memcmp(c.key, "key", 3) == 0);
        CHECK_EQ(c.cas, 0);
        /* any nonzero cas makes it a compare-and-swap, ADD and REPLACE included */
        n = rq(v[i].op, "key", ext, 8, "value", 0x0102030405060708ull);
        CHECK_EQ(parse_all(n, &c, &fatal), n);
        CHECK_EQ(c.store_mode, MC_CAS);
        CHECK_EQ(c.cas, 0x0102030405060708ull);
        CHECK_EQ(c.noreply, v[i].quiet);
    }
    /* an empty value is fine */
    struct mc_cmd c;
    bool fatal;
    size_t n = rq(MC_BIN_SET, "k", ext_set, 8, "", 0);
    CHECK_EQ(parse_all(n, &c, &fatal), n);
    CHECK_EQ(c.op, MC_OP_STORE);
    CHECK_EQ(c.vlen, 0);
    CHECK_EQ(c.client_flags, 7);
    CHECK_EQ(c.exptime, 3600);
}

TEST(parse_append_prepend)
{
    static const struct { uint8_t op; enum mc_store_mode mode; bool quiet; } v[] = {
        { MC_BIN_APPEND, MC_APPEND, false }, { MC_BIN_PREPEND, MC_PREPEND, false },
        { MC_BIN_APPENDQ, MC_APPEND, true }, { MC_BIN_PREPENDQ, MC_PREPEND, true },
    };
    for (size_t i = 0; i < 4; i++) {
        struct mc_cmd c;
        bool fatal;
        size_t n = rq(v[i].op, "kk", NULL, 0, "xyz", 99);
        CHECK_EQ(parse_all(n, &c, &fatal), n);
        CHECK_EQ(c.op, MC_OP_STORE);
        CHECK_EQ(c.store_mode, v[i].mode);    /* cas is compared, but it stays an append */
        CHECK_EQ(c.cas, 99);
        CHECK_EQ(c.noreply, v[i].quiet);
        CHECK_EQ(c.vlen, 3);
        CHECK(memcmp(c.value, "xyz", 3) == 0);
        n = rq(v[i].op, "kk", NULL, 0, "", 0);
        CHECK_EQ(parse_all(n, &c, &fatal), n);
        CHECK_EQ(c.op, MC_OP_STORE);
        CHECK_EQ(c.vlen, 0);
    }
}

TEST(parse_delete_arith)
{
    struct mc_cmd c;
    bool fatal;
    size_t n = rq(MC_BIN_DELETE, "gone", NULL, 0, NULL, 5);
    CHECK_EQ(parse_all(n, &c, &fatal), n);
    CHECK_EQ(c.op, MC_OP_DELETE);
    CHECK_EQ(c.cas, 5);
    CHECK(!c.noreply);
    n = rq(MC_BIN_DELETEQ, "gone", NULL, 0, NULL, 0);
    CHECK_EQ(parse_all(n, &c, &fatal), n);
    CHECK_EQ(c.op, MC_OP_DELETE);
    CHECK(c.noreply);

    static const struct { uint8_t op; enum mc_arith_mode mode; bool quiet; } v[] = {
        { MC_BIN_INCREMENT, MC_INCR, false }, { MC_BIN_DECREMENT, MC_DECR, false },
        { MC_BIN_INCREMENTQ, MC_INCR, true }, { MC_BIN_DECREMENTQ, MC_DECR, true },
    };
    for (size_t i = 0; i < 4; i++) {
        uint8_t ext[20];
        st64(ext, 0x1122334455667788ull);
        st64(ext + 8, 10);
        st32(ext + 16, 300);
        n = rq(v[i].op, "ctr", ext, 20, NULL, 12);
        CHECK_EQ(parse_all(n, &c, &fatal), n);
        CHECK_EQ(c.op, MC_OP_ARITH);
        CHECK_EQ(c.arith_mode, v[i].mode);
        CHECK_EQ(c.noreply, v[i].quiet);
        CHECK_EQ(c.delta, 0x1122334455667788ull);
        CHECK_EQ(c.initial, 10);
        CHECK(c.arith_create);
        CHECK_EQ(c.exptime, 300);
        CHECK_EQ(c.cas, 12);        /* memcached compares it: EEXISTS on mismatch */
        st32(ext + 16, 0xffffffff);
        n = rq(v[i].op, "ctr", ext, 20, NULL, 0);
        CHECK_EQ(parse_all(n, &c, &fatal), n);
        CHECK(!c.arith_create);
        st32(ext + 16, 0);
        n = rq(v[i].op, "ctr", ext, 20, NULL, 0);
        CHECK_EQ(parse_all(n, &c, &fatal), n);
        CHECK(c.arith_create);
        CHECK_EQ(c.exptime, 0);
    }
}

TEST(parse_unkeyed)
{
    struct mc_cmd c;
    bool fatal;
    size_t n = rq(MC_BIN_QUIT, NULL, NULL, 0, NULL, 0);
    CHECK_EQ(parse_all(n, &c, &fatal), 24);
    CHECK_EQ(c.op, MC_OP_QUIT);
    CHECK(!c.noreply);
    rq(MC_BIN_QUITQ, NULL, NULL, 0, NULL, 0);
    CHECK_EQ(parse_all(24, &c, &fatal), 24);
    CHECK_EQ(c.op, MC_OP_QUIT);
    CHECK(c.noreply);
    rq(MC_BIN_NOOP, NULL, NULL, 0, NULL, 0);
    CHECK_EQ(parse_all(24, &c, &fatal), 24);
    CHECK_EQ(c.op, MC_OP_NOOP);
    rq(MC_BIN_VERSION, NULL, NULL, 0, NULL, 0);
    CHECK_EQ(parse_all(24, &c, &fatal), 24);
    CHECK_EQ(c.op, MC_OP_VERSION);
    rq(MC_BIN_FLUSH, NULL, NULL, 0, NULL, 0);
    CHECK_EQ(parse_all(24, &c, &fatal), 24);
    CHECK_EQ(c.op, MC_OP_FLUSH_ALL);
    CHECK_EQ(c.flush_delay, 0);
    CHECK(!c.noreply);
    const uint8_t d[4] = { 0x80, 0, 0, 1 };
    n = rq(MC_BIN_FLUSHQ, NULL, d, 4, NULL, 0);
    CHECK_EQ(parse_all(n, &c, &fatal), 28);
    CHECK_EQ(c.op, MC_OP_FLUSH_ALL);
    CHECK_EQ(c.flush_delay, 0x80000001ll);
    CHECK(c.noreply);
}

TEST(parse_stat_groups)
{
    static const struct { const char *key, *group; } ok[] = {
        { "", "" }, { "reset", "reset" }, { "resetfoo", "reset" }, { "settings", "settings" },
        { "settingsX", "settings" }, { "detail on", "detail on" }, { "detail off", "detail off" },
        { "detail dump", "detail dump" }, { "items", "items" }, { "slabs", "slabs" }, { "sizes", "sizes" },
        { "sizes_enable", "sizes_enable" }, { "sizes_disable", "sizes_disable" },
    };
    struct mc_cmd c;
    bool fatal;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t n = rq(MC_BIN_STAT, ok[i].key, NULL, 0, NULL, 0);
        CHECK_EQ(parse_all(n, &c, &fatal), n);
        CHECK_EQ(c.op, MC_OP_STATS);
        CHECK(strcmp(c.stats_group, ok[i].group) == 0);
        CHECK(!fatal);
    }
    /* memcached's binary STAT answers "Not found" to these (conns exists only in text) */
    static const char *const bad[] = { "conns", "detail", "detailfoo", "nonexist", "extstore", "items ",
                                       "a-very-long-stats-group-name" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = rq(MC_BIN_STAT, bad[i], NULL, 0, NULL, 0);
        CHECK_EQ(parse_all(n, &c, &fatal), n);
        CHECK_EQ(c.op, MC_OP_ERROR);
        CHECK_EQ(c.bin_status, MC_BIN_KEY_ENOENT);
        CHECK(!fatal);
        struct mc_out o;
        mc_out_init(&o);
        mc_binary_error(&o, &c);
        CHECK(out_err(&o, MC_BIN_STAT, 1, "Not found", 0xdeadbeef));
        mc_out_free(&o);
    }
    /* a value after STAT's key is read as the next request */
    size_t n = rq(MC_BIN_STAT, "items", NULL, 0, "abcdefgh", 0);
    CHECK_EQ(parse_all(n, &c, &fatal), 24 + 5);
    CHECK_EQ(c.op, MC_OP_STATS);
    /* extras are not allowed */
    n = rq(MC_BIN_STAT, NULL, "1234", 4, NULL, 0);
    CHECK_EQ(parse_all(n, &c, &fatal), n);
    CHECK_EQ(c.op, MC_OP_ERROR);
    CHECK(fatal);
}

TEST(parse_touch_gat)
{
    static const struct { uint8_t op; enum mc_op mop; bool touch, key, quiet; } v[] = {
        { MC_BIN_TOUCH, MC_OP_TOUCH, false, false, false }, { MC_BIN_GAT, MC_OP_GET, true, false, false },
        { MC_BIN_GATQ, MC_OP_GET, true, false, true }, { MC_BIN_GATK, MC_OP_GET, true, true, false },
        { MC_BIN_GATKQ, MC_OP_GET, true, true, true },
    };
    for (size_t i = 0; i < 5; i++) {
        struct mc_cmd c;
        bool fatal;
        const uint8_t e[4] = { 0, 1, 0, 0 };
        size_t n = rq(v[i].op, "tk", e, 4, NULL, 3);
        CHECK_EQ(parse_all(n, &c, &fatal), n);
        CHECK_EQ(c.op, v[i].mop);
        CHECK_EQ(c.touch, v[i].touch);
        CHECK_EQ(c.want_key, v[i].key);
        CHECK_EQ(c.noreply, v[i].quiet);
        CHECK_EQ(c.exptime, 65536);
        CHECK_EQ(c.cas, 0);    /* touch ignores cas (checked: a wrong cas still touches) */
        /* a body after the key is the next request */
        n = rq(v[i].op, "tk", e, 4, "NEXT", 0);
        CHECK_EQ(parse_all(n, &c, &fatal), n - 4);
        CHECK_EQ(c.op, v[i].mop);
        /* no extras, or no key: invalid */
        n = rq(v[i].op, "tk", NULL, 0, NULL, 0);
        CHECK_EQ(parse_all(n, &c, &fatal), n);
        CHECK_EQ(c.op, MC_OP_ERROR);
        CHECK_EQ(c.bin_status, MC_BIN_EINVAL);
        CHECK(fatal);
        n = rq(v[i].op, NULL, e, 4, NULL, 0);
        CHECK_EQ(parse_all(n, &c, &fatal), n);
        CHECK_EQ(c.bin_status, MC_BIN_EINVAL);
        CHECK(fatal);
    }
}

/* Requests memcached answers "Invalid arguments" to and then closes the connection. */
TEST(parse_invalid_arguments)
{
    uint8_t e20[20] = { 0 };
    const struct { uint8_t op; const char *key; size_t extlen; const char *val; } v[] = {
        { MC_BIN_GET, "k", 4, NULL }, { MC_BIN_GET, NULL, 0, NULL }, { MC_BIN_GET, "k", 0, "v" },
        { MC_BIN_GETQ, NULL, 0, NULL }, { MC_BIN_GETK, "k", 4, NULL }, { MC_BIN_GETKQ, "k", 0, "v" },
        { MC_BIN_SET, "k", 4, "v" }, { MC_BIN_SET, NULL, 8, "v" }, { MC_BIN_ADD, "k", 0, "v" },
        { MC_BIN_REPLACEQ, "k", 12, "v" },
        { MC_BIN_DELETE, "k", 4, NULL }, { MC_BIN_DELETE, "k", 0, "v" }, { MC_BIN_DELETEQ, NULL, 0, NULL },
        { MC_BIN_APPEND, "k", 4, "v" }, { MC_BIN_PREPENDQ, NULL, 0, "v" },
        { MC_BIN_INCREMENT, "k", 8, NULL }, { MC_BIN_INCREMENT, "k", 20, "v" }, { MC_BIN_DECREMENTQ, NULL, 20, NULL },
        { MC_BIN_QUIT, "k", 0, NULL }, { MC_BIN_QUITQ, NULL, 0, "v" },
        { MC_BIN_FLUSH, "k", 0, NULL }, { MC_BIN_FLUSH, NULL, 2, NULL }, { MC_BIN_FLUSHQ, NULL, 4, "v" },
        { MC_BIN_NOOP, NULL, 0, "x" }, { MC_BIN_VERSION, "k", 0, NULL }, { MC_BIN_STAT, NULL, 4, NULL },
        { MC_BIN_TOUCH, "k", 0, NULL }, { MC_BIN_GAT, "k", 8, NULL },
        { MC_BIN_SASL_LIST_MECHS, NULL, 0, "x" }, { MC_BIN_SASL_AUTH, NULL, 0, "xx" },
        { MC_BIN_SASL_AUTH, "k", 1, "xx" },
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        struct mc_cmd c;
        bool fatal = false;
        size_t n = rq(v[i].op, v[i].key, e20, v[i].extlen, v[i].val, 0);
        size_t r = parse_all(n, &c, &fatal);
        CHECK(r > 0 && r <= n);
        CHECK_EQ(c.op, MC_OP_ERROR);
        CHECK_EQ(c.bin_status, MC_BIN_EINVAL);
        CHECK(fatal);
        if (c.bin_status != MC_BIN_EINVAL || !fatal)
            fprintf(stderr, "case %zu (op %#x)\n", i, v[i].op);
        struct mc_out o;
        mc_out_init(&o);
        mc_binary_error(&o, &c);
        CHECK(out_err(&o, v[i].op, 4, "Invalid arguments", 0xdeadbeef));
        mc_out_free(&o);
    }
}

TEST(parse_key_length_limit)
{
    char key[252];
    memset(key, 'a', sizeof key);
    key[250] = 0;
    struct mc_cmd c;
    bool fatal;
    size_t n = rq(MC_BIN_GET, key, NULL, 0, NULL, 0);
    CHECK_EQ(parse_all(n, &c, &fatal), n);
    CHECK_EQ(c.op, MC_OP_GET);
    CHECK_EQ(c.keylen, 250);
    key[250] = 'a', key[251] = 0;
    n = rq(MC_BIN_GET, key, NULL, 0, NULL, 0);
    CHECK_EQ(parse_all(n, &c, &fatal), n);
    CHECK_EQ(c.op, MC_OP_ERROR);
    CHECK_EQ(c.bin_status, MC_BIN_EINVAL);
    CHECK(fatal);
    /* checked before the opcode: an unknown opcode with a long key is EINVAL too */
    n = rq(0x40, key, NULL, 0, NULL, 0);
    CHECK_EQ(parse_all(n, &c, &fatal), n);
    CHECK_EQ(c.bin_status, MC_BIN_EINVAL);
    CHECK(fatal);
    n = rq(MC_BIN_SET, key, ext_set, 8, "v", 0);
    CHECK_EQ(parse_all(n, &c, &fatal), n - 1);    /* the value is never read */
    CHECK_EQ(c.bin_status, MC_BIN_EINVAL);
    CHECK(fatal);
}

TEST(parse_contradictory_lengths)
{
    struct mc_cmd c;
    bool fatal;
    /* keylen > bodylen */
    rq(MC_BIN_GET, "kkkkk", NULL, 0, NULL, 0);
    st32(req + 8, 1);
    CHECK_EQ(parse_all(29, &c, &fatal), 29);
    CHECK_EQ(c.op, MC_OP_ERROR);
    CHECK_EQ(c.bin_status, MC_BIN_UNKNOWN_COMMAND);
    CHECK(fatal);
    /* keylen + extlen > bodylen, known and unknown opcodes */
    const uint8_t ops[] = { MC_BIN_SET, 0x40 };
    for (size_t i = 0; i < 2; i++) {
        rq(ops[i], "k", ext_set, 8, NULL, 0);
        st32(req + 8, 5);
        CHECK_EQ(parse_all(24 + 9, &c, &fatal), 24 + 9);
        CHECK_EQ(c.bin_status, MC_BIN_UNKNOWN_COMMAND);
        CHECK(fatal);
        struct mc_out o;
        mc_out_init(&o);
        mc_binary_error(&o, &c);
        CHECK(out_err(&o, ops[i], 0x81, "Unknown command", 0xdeadbeef));
        mc_out_free(&o);
    }
}

TEST(parse_bad_magic_closes_silently)
{
    const uint8_t magics[] = { 0x00, 0x81, 0x7f, 0xff, 'g' };
    for (size_t i = 0; i < sizeof magics; i++) {
        struct mc_cmd c;
        bool fatal = false;
        mkreq(req, magics[i], MC_BIN_NOOP, NULL, 0, NULL, 0, NULL, 0, 0, 1);
        CHECK_EQ(parse_all(23, &c, &fatal), 0);
        CHECK(parse_all(24, &c, &fatal) > 0);
        CHECK(fatal);
        CHECK_EQ(c.op, MC_OP_ERROR);
        struct mc_out o;
        mc_out_init(&o);
        mc_binary_error(&o, &c);
        CHECK_EQ(o.len, 0);
        mc_out_free(&o);
    }
}

TEST(parse_unknown_opcode_swallow)
{
    /* memcached answers, then skips bodylen bytes after the extras and key it already read:
       24 + extlen + keylen + bodylen in all. Checked by what pipelined NOOPs come back. */
    static const struct { size_t kl, el, vl; } v[] = {
        { 0, 0, 0 }, { 0, 0, 5 }, { 1, 0, 0 }, { 1, 0, 2 }, { 0, 1, 0 }, { 1, 1, 1 }, { 2, 3, 1 }, { 0, 4, 0 },
    };
    const uint8_t ops[] = { MC_BIN_VERBOSITY, 0x1f, 0x25, 0x30, 0x3d, 0x80, 0xff };
    for (size_t j = 0; j < sizeof ops; j++) {
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
            struct mc_cmd c;
            bool fatal = true;
            size_t n = mkreq(req, 0x80, ops[j], "KKK", v[i].kl, "EEEE", v[i].el, "VVVVV", v[i].vl, 0, 9);
            size_t want = n + v[i].kl + v[i].el;
            memset(req + n, 'P', 8);
            CHECK_EQ(parse_all(want - 1, &c, &fatal), 0);
            CHECK_EQ(parse_all(want, &c, &fatal), want);
            CHECK(!fatal);
            CHECK_EQ(c.op, MC_OP_ERROR);
            CHECK_EQ(c.bin_status, MC_BIN_UNKNOWN_COMMAND);
            CHECK(!c.noreply);
        }
    }
    /* exact bytes memcached sent for opcode 0xff */
    struct mc_cmd c;
    bool fatal;
    size_t n = mkreq(req, 0x80, 0xff, NULL, 0, NULL, 0, NULL, 0, 0, 0xdeadbeef);
    CHECK_EQ(parse_all(n, &c, &fatal), 24);
    static const uint8_t real[] = {
        0x81, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x81, 0x00, 0x00, 0x00, 0x0f, 0xde, 0xad, 0xbe, 0xef,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 'U', 'n', 'k', 'n', 'o', 'w', 'n', ' ',
        'c', 'o', 'm', 'm', 'a', 'n', 'd',
    };
    struct mc_out o;
    mc_out_init(&o);
    mc_binary_error(&o, &c);
    CHECK(out_is(&o, real, sizeof real));
    mc_out_free(&o);
}

TEST(parse_sasl_without_sasl)
{
    struct mc_cmd c;
    bool fatal;
    size_t n = rq(MC_BIN_SASL_LIST_MECHS, NULL, NULL, 0, NULL, 0);
    CHECK_EQ(parse_all(n, &c, &fatal), 24);
    CHECK_EQ(c.bin_status, MC_BIN_UNKNOWN_COMMAND);
    CHECK(!fatal);
    n = rq(MC_BIN_SASL_AUTH, "PLAIN", NULL, 0, "xx", 0);
    CHECK_EQ(parse_all(n - 1, &c, &fatal), 0);
    CHECK_EQ(parse_all(n, &c, &fatal), n);
    CHECK_EQ(c.bin_status, MC_BIN_UNKNOWN_COMMAND);
    CHECK(!fatal);
    n = rq(MC_BIN_SASL_STEP, "k", NULL, 0, "xx", 0);
    CHECK_EQ(parse_all(n, &c, &fatal), n);
    CHECK_EQ(c.bin_status, MC_BIN_UNKNOWN_COMMAND);
}

/* Status memcached 1.6.18 answered to a bare 24-byte request with each opcode. */
TEST(opcode_sweep_empty_requests)
{
    for (unsigned op = 0; op < 256; op++) {
        uint16_t want;
        bool close = false, silent = false;
        switch (op) {
        case 0x07: close = true; want = 0; break;                      /* QUIT: reply, close */
        case 0x17: close = true; silent = true; want = 0; break;       /* QUITQ */
        case 0x08: case 0x0a: case 0x0b: case 0x10: want = 0; break;
        case 0x18: silent = true; want = 0; break;                     /* FLUSHQ */
        case 0x00: case 0x01: case 0x02: case 0x03: case 0x04: case 0x05: case 0x06: case 0x09:
        case 0x0c: case 0x0d: case 0x0e: case 0x0f: case 0x11: case 0x12: case 0x13: case 0x14:
        case 0x15: case 0x16: case 0x19: case 0x1a: case 0x1c: case 0x1d: case 0x1e: case 0x21:
        case 0x22: case 0x23: case 0x24:
            want = MC_BIN_EINVAL; close = true; break;
        default: want = MC_BIN_UNKNOWN_COMMAND; break;
        }
        struct mc_cmd c;
        bool fatal;
        mkreq(req, 0x80, (uint8_t)op, NULL, 0, NULL, 0, NULL, 0, 0, 1);
        CHECK_EQ(parse_all(24, &c, &fatal), 24);
        if (want) {
            CHECK_EQ(c.op, MC_OP_ERROR);
            CHECK_EQ(c.bin_status, want);
            CHECK_EQ(fatal, close);
        } else {
            CHECK(c.op != MC_OP_ERROR);
            CHECK(!fatal);
            CHECK_EQ(c.op == MC_OP_QUIT, close);
            CHECK_EQ(c.noreply, silent);
        }
        if ((want != 0 && c.bin_status != want) || (want == 0 && c.op == MC_OP_ERROR))
            fprintf(stderr, "opcode %#x\n", op);
    }
}

TEST(too_large_boundary)
{
    /* -I 1m: with flags 0 the largest value is 1048576 - 59 - keylen; nonzero flags take 4 more */
    static uint8_t val[MAXREQ];
    memset(val, 'v', sizeof val);
    const uint32_t max = 1048576;
    for (uint32_t kl = 1; kl <= 10; kl += 9) {
        for (int fl = 0; fl < 2; fl++) {
            uint32_t limit = max - 59 - kl - (fl ? 4 : 0);
            uint8_t ext[8] = { 0, 0, 0, (uint8_t)fl, 0, 0, 0, 0 };
            for (uint32_t vl = limit; vl <= limit + 1; vl++) {
                struct mc_cmd c;
                bool fatal;
                size_t n = mkreq(req, 0x80, MC_BIN_SET, "kkkkkkkkkk", kl, ext, 8, val, vl, 0, 3);
                CHECK_EQ(mc_binary_parse(req, n, max, &c, &fatal), n);
                CHECK(!fatal);
                if (vl == limit) {
                    CHECK_EQ(c.op, MC_OP_STORE);
                } else {
                    CHECK_EQ(c.op, MC_OP_ERROR);
                    CHECK_EQ(c.error, MC_ERR_TOO_LARGE);
                    CHECK_EQ(c.bin_status, MC_BIN_E2BIG);
                    CHECK_EQ(c.keylen, kl);    /* kept: SET unlinks the old item */
                }
            }
        }
    }
    /* append: flags do not count */
    struct mc_cmd c;
    bool fatal;
    size_t n = mkreq(req, 0x80, MC_BIN_APPENDQ, "k", 1, NULL, 0, val, max - 60, 0, 3);
    CHECK_EQ(mc_binary_parse(req, n, max, &c, &fatal), n);
    CHECK_EQ(c.op, MC_OP_STORE);
    n = mkreq(req, 0x80, MC_BIN_APPENDQ, "k", 1, NULL, 0, val, max - 59, 0, 3);
    CHECK_EQ(mc_binary_parse(req, n - 1, max, &c, &fatal), 0);    /* the body is skipped whole */
    CHECK_EQ(mc_binary_parse(req, n, max, &c, &fatal), n);
    CHECK_EQ(c.op, MC_OP_ERROR);
    CHECK_EQ(c.bin_status, MC_BIN_E2BIG);
    CHECK(!fatal);
    struct mc_out o;
    mc_out_init(&o);
    mc_binary_error(&o, &c);
    CHECK(out_err(&o, MC_BIN_APPENDQ, 3, "Too large.", 3));    /* quiet or not, errors are sent */
    mc_out_free(&o);
    /* a 2 MB value */
    n = mkreq(req, 0x80, MC_BIN_SET, "k", 1, ext_set, 8, val, MAXREQ, 0, 3);
    CHECK_EQ(mc_binary_parse(req, n, max, &c, &fatal), n);
    CHECK_EQ(c.bin_status, MC_BIN_E2BIG);
}

TEST(parse_early_swallow)
{
    static uint8_t val[2 * 1048576];
    struct mc_cmd c;
    bool fatal;
    uint64_t sw = 99;
    /* a too-large SET is answered once extras and key are in; the rest is swallowed */
    size_t n = mkreq(req, 0x80, MC_BIN_SETQ, "big", 3, ext_set, 8, val, sizeof val, 0, 5);
    CHECK_EQ(mc_binary_parse_early(req, 24 + 8 + 2, 1 << 20, &c, &fatal, &sw), 0);
    CHECK_EQ(sw, 0);
    CHECK_EQ(mc_binary_parse_early(req, 24 + 8 + 3, 1 << 20, &c, &fatal, &sw), 35);
    CHECK_EQ(sw, n - 35);
    CHECK_EQ(c.op, MC_OP_ERROR);
    CHECK_EQ(c.bin_status, MC_BIN_E2BIG);
    CHECK(!fatal);
    CHECK_EQ(c.keylen, 3);
    CHECK(memcmp(c.key, "big", 3) == 0);
    CHECK_EQ(mc_binary_parse_early(req, 5000, 1 << 20, &c, &fatal, &sw), 5000);
    CHECK_EQ(sw, n - 5000);
    CHECK_EQ(mc_binary_parse_early(req, n, 1 << 20, &c, &fatal, &sw), n);
    CHECK_EQ(sw, 0);
    /* unknown opcode: 24 + extlen + keylen + bodylen in all */
    n = mkreq(req, 0x80, 0x55, "kk", 2, "e", 1, "vvvv", 4, 0, 5);
    CHECK_EQ(mc_binary_parse_early(req, 27, 1 << 20, &c, &fatal, &sw), 27);
    CHECK_EQ(sw, n + 3 - 27);
    CHECK_EQ(c.bin_status, MC_BIN_UNKNOWN_COMMAND);
    /* requests that are not skipped behave exactly as mc_binary_parse */
    n = rq(MC_BIN_SET, "k", ext_set, 8, "hello", 0);
    CHECK_EQ(mc_binary_parse_early(req, n - 1, 1 << 20, &c, &fatal, &sw), 0);
    CHECK_EQ(sw, 0);
    CHECK_EQ(mc_binary_parse_early(req, n, 1 << 20, &c, &fatal, &sw), n);
    CHECK_EQ(sw, 0);
    CHECK_EQ(c.op, MC_OP_STORE);
    rq(MC_BIN_GET, "kkkkk", NULL, 0, NULL, 0);
    st32(req + 8, 1);
    CHECK_EQ(mc_binary_parse_early(req, 29, 1 << 20, &c, &fatal, &sw), 29);
    CHECK_EQ(sw, 0);
    CHECK(fatal);
}

TEST(parse_pipeline)
{
    /* several requests back to back parse one after the other */
    uint8_t buf[512];
    size_t len = 0;
    len += mkreq(buf + len, 0x80, MC_BIN_GETKQ, "a", 1, NULL, 0, NULL, 0, 0, 1);
    len += mkreq(buf + len, 0x80, MC_BIN_SETQ, "b", 1, ext_set, 8, "val", 3, 0, 2);
    len += mkreq(buf + len, 0x80, MC_BIN_TOUCH, "c", 1, "\0\0\0\1", 4, NULL, 0, 0, 3);
    len += mkreq(buf + len, 0x80, MC_BIN_NOOP, NULL, 0, NULL, 0, NULL, 0, 0, 4);
    const enum mc_op ops[] = { MC_OP_GET, MC_OP_STORE, MC_OP_TOUCH, MC_OP_NOOP };
    size_t off = 0;
    for (int i = 0; i < 4; i++) {
        struct mc_cmd c;
        bool fatal;
        size_t r = mc_binary_parse(buf + off, len - off, 1 << 20, &c, &fatal);
        CHECK(r > 0);
        CHECK_EQ(c.op, ops[i]);
        CHECK_EQ(c.opaque, (uint32_t)i + 1);
        off += r;
    }
    CHECK_EQ(off, len);
}

/* ------------------------------------------------------------------ replies */

static struct mc_cmd parsed(uint8_t op, const char *key, const void *ext, size_t extlen, const char *val,
                            uint64_t cas)
{
    struct mc_cmd c;
    bool fatal;
    size_t n = rq(op, key, ext, extlen, val, cas);
    size_t r = parse_all(n, &c, &fatal);
    CHECK(r > 0);
    CHECK(!fatal);
    return c;
}

TEST(reply_get_hit_and_miss)
{
    struct mc_out o;
    mc_out_init(&o);
    struct mc_item *it = mkitem("k", "hello", 7, 1);
    struct mc_result h = hit(it), miss = { .status = MC_ST_MISS };
    uint8_t exp[256];
    size_t n;
    const uint8_t fl7[4] = { 0, 0, 0, 7 };

    /* GET hit: 4 bytes of flags, the value, the item's cas (bytes as memcached sent them) */
    struct mc_cmd c = parsed(MC_BIN_GET, "k", NULL, 0, NULL, 0);
    mc_binary_reply(&o, &c, &h);
    static const uint8_t real_get[] = {
        0x81, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0xde, 0xad, 0xbe, 0xef,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07, 'h', 'e', 'l', 'l', 'o',
    };
    CHECK(out_is(&o, real_get, sizeof real_get));
    c = parsed(MC_BIN_GETQ, "k", NULL, 0, NULL, 0);
    mc_binary_reply(&o, &c, &h);
    n = mkres(exp, MC_BIN_GETQ, 0, fl7, 4, NULL, 0, "hello", 5, 1, 0xdeadbeef);
    CHECK(out_is(&o, exp, n));
    /* GETK hit adds the key */
    c = parsed(MC_BIN_GETK, "k", NULL, 0, NULL, 0);
    mc_binary_reply(&o, &c, &h);
    n = mkres(exp, MC_BIN_GETK, 0, fl7, 4, "k", 1, "hello", 5, 1, 0xdeadbeef);
    CHECK(out_is(&o, exp, n));
    c = parsed(MC_BIN_GETKQ, "k", NULL, 0, NULL, 0);
    mc_binary_reply(&o, &c, &h);
    n = mkres(exp, MC_BIN_GETKQ, 0, fl7, 4, "k", 1, "hello", 5, 1, 0xdeadbeef);
    CHECK(out_is(&o, exp, n));

    /* misses */
    c = parsed(MC_BIN_GET, "nokey", NULL, 0, NULL, 0);
    mc_binary_reply(&o, &c, &miss);
    CHECK(out_err(&o, MC_BIN_GET, 1, "Not found", 0xdeadbeef));
    c = parsed(MC_BIN_GETK, "nokey", NULL, 0, NULL, 0);
    mc_binary_reply(&o, &c, &miss);
    n = mkres(exp, MC_BIN_GETK, 1, NULL, 0, "nokey", 5, NULL, 0, 0, 0xdeadbeef);   /* key, no message */
    CHECK(out_is(&o, exp, n));
    c = parsed(MC_BIN_GETQ, "nokey", NULL, 0, NULL, 0);
    mc_binary_reply(&o, &c, &miss);
    CHECK_EQ(o.len, 0);
    c = parsed(MC_BIN_GETKQ, "nokey", NULL, 0, NULL, 0);
    mc_binary_reply(&o, &c, &miss);
    CHECK_EQ(o.len, 0);

    /* big flags, empty value */
    struct mc_item *e = mkitem("F", "", 0xfedcba98, 79);
    struct mc_result eh = hit(e);
    c = parsed(MC_BIN_GETK, "F", NULL, 0, NULL, 0);
    mc_binary_reply(&o, &c, &eh);
    n = mkres(exp, MC_BIN_GETK, 0, "\xfe\xdc\xba\x98", 4, "F", 1, NULL, 0, 79, 0xdeadbeef);
    CHECK(out_is(&o, exp, n));
    free(e);
    free(it);
    mc_out_free(&o);
}

TEST(reply_gat_touch)
{
    struct mc_out o;
    mc_out_init(&o);
    struct mc_item *it = mkitem("c", "v3A", 0, 7);
    struct mc_result h = hit(it), miss = { .status = MC_ST_MISS };
    uint8_t exp[256];
    size_t n;
    const uint8_t e[4] = { 0, 0, 0, 100 };
    const uint8_t z[4] = { 0 };

    struct mc_cmd c = parsed(MC_BIN_TOUCH, "c", e, 4, NULL, 0);
    struct mc_result th = { .status = MC_ST_OK, .cas = 7, .client_flags = 0 };
    mc_binary_reply(&o, &c, &th);      /* flags extras and cas, no value */
    n = mkres(exp, MC_BIN_TOUCH, 0, z, 4, NULL, 0, NULL, 0, 7, 0xdeadbeef);
    CHECK(out_is(&o, exp, n));
    mc_binary_reply(&o, &c, &h);       /* a referenced item is not printed either */
    CHECK(out_is(&o, exp, n));
    mc_binary_reply(&o, &c, &miss);
    CHECK(out_err(&o, MC_BIN_TOUCH, 1, "Not found", 0xdeadbeef));

    c = parsed(MC_BIN_GAT, "c", e, 4, NULL, 0);
    mc_binary_reply(&o, &c, &h);
    n = mkres(exp, MC_BIN_GAT, 0, z, 4, NULL, 0, "v3A", 3, 7, 0xdeadbeef);
    CHECK(out_is(&o, exp, n));
    mc_binary_reply(&o, &c, &miss);
    CHECK(out_err(&o, MC_BIN_GAT, 1, "Not found", 0xdeadbeef));
    c = parsed(MC_BIN_GATK, "c", e, 4, NULL, 0);
    mc_binary_reply(&o, &c, &h);
    n = mkres(exp, MC_BIN_GATK, 0, z, 4, "c", 1, "v3A", 3, 7, 0xdeadbeef);
    CHECK(out_is(&o, exp, n));
    c = parsed(MC_BIN_GATK, "nokey", e, 4, NULL, 0);
    mc_binary_reply(&o, &c, &miss);
    n = mkres(exp, MC_BIN_GATK, 1, NULL, 0, "nokey", 5, NULL, 0, 0, 0xdeadbeef);
    CHECK(out_is(&o, exp, n));
    c = parsed(MC_BIN_GATQ, "c", e, 4, NULL, 0);
    mc_binary_reply(&o, &c, &h);
    n = mkres(exp, MC_BIN_GATQ, 0, z, 4, NULL, 0, "v3A", 3, 7, 0xdeadbeef);
    CHECK(out_is(&o, exp, n));
    mc_binary_reply(&o, &c, &miss);
    CHECK_EQ(o.len, 0);
    c = parsed(MC_BIN_GATKQ, "c", e, 4, NULL, 0);
    mc_binary_reply(&o, &c, &h);
    n = mkres(exp, MC_BIN_GATKQ, 0, z, 4, "c", 1, "v3A", 3, 7, 0xdeadbeef);
    CHECK(out_is(&o, exp, n));
    mc_binary_reply(&o, &c, &miss);
    CHECK_EQ(o.len, 0);
    free(it);
    mc_out_free(&o);
}

TEST(reply_store)
{
    struct mc_out o;
    mc_out_init(&o);
    uint8_t exp[128];
    size_t n;
    struct mc_result ok = { .status = MC_ST_OK, .cas = 5 };

    /* success: empty body, the new cas; quiet variants say nothing */
    const uint8_t ops[] = { MC_BIN_SET, MC_BIN_ADD, MC_BIN_REPLACE, MC_BIN_APPEND, MC_BIN_PREPEND };
    const uint8_t qops[] = { MC_BIN_SETQ, MC_BIN_ADDQ, MC_BIN_REPLACEQ, MC_BIN_APPENDQ, MC_BIN_PREPENDQ };
    for (int i = 0; i < 5; i++) {
        size_t el = i < 3 ? 8 : 0;
        struct mc_cmd c = parsed(ops[i], "k", ext_set, el, "v", 0);
        mc_binary_reply(&o, &c, &ok);
        n = mkres(exp, ops[i], 0, NULL, 0, NULL, 0, NULL, 0, 5, 0xdeadbeef);
        CHECK(out_is(&o, exp, n));
        c = parsed(qops[i], "k", ext_set, el, "v", 0);
        mc_binary_reply(&o, &c, &ok);
        CHECK_EQ(o.len, 0);
    }

    /* failures, as memcached maps them (quiet or not) */
    static const struct { uint8_t op; uint64_t cas; enum mc_status st; uint16_t status; const char *msg; } f[] = {
        { MC_BIN_ADD, 0, MC_ST_NOT_STORED, 2, "Data exists for key." },
        { MC_BIN_ADDQ, 0, MC_ST_NOT_STORED, 2, "Data exists for key." },
        { MC_BIN_ADD, 0, MC_ST_EXISTS, 2, "Data exists for key." },
        { MC_BIN_REPLACE, 0, MC_ST_NOT_STORED, 1, "Not found" },
        { MC_BIN_REPLACE, 0, MC_ST_MISS, 1, "Not found" },
        { MC_BIN_APPEND, 0, MC_ST_NOT_STORED, 5, "Not stored." },
        { MC_BIN_PREPENDQ, 0, MC_ST_NOT_STORED, 5, "Not stored." },
        { MC_BIN_APPEND, 9, MC_ST_EXISTS, 2, "Data exists for key." },       /* append with a wrong cas */
        { MC_BIN_APPEND, 9, MC_ST_NOT_STORED, 5, "Not stored." },            /* append with cas, missing */
        { MC_BIN_APPEND, 0, MC_ST_TOO_LARGE, 5, "Not stored." },             /* result over the limit */
        { MC_BIN_PREPEND, 0, MC_ST_NO_MEMORY, 5, "Not stored." },
        { MC_BIN_SET, 9, MC_ST_EXISTS, 2, "Data exists for key." },
        { MC_BIN_SET, 9, MC_ST_MISS, 1, "Not found" },                        /* cas on a missing key */
        { MC_BIN_ADD, 9, MC_ST_MISS, 1, "Not found" },                        /* add with cas: a cas */
        { MC_BIN_ADD, 9, MC_ST_EXISTS, 2, "Data exists for key." },
        { MC_BIN_REPLACEQ, 9, MC_ST_EXISTS, 2, "Data exists for key." },
        { MC_BIN_SET, 9, MC_ST_NOT_STORED, 5, "Not stored." },
        { MC_BIN_SET, 0, MC_ST_TOO_LARGE, 3, "Too large." },
        { MC_BIN_SETQ, 0, MC_ST_NO_MEMORY, 0x82, "Out of memory allocating item" },
        { MC_BIN_ADD, 0, MC_ST_NO_MEMORY, 0x82, "Out of memory allocating item" },
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        bool app = f[i].op == MC_BIN_APPEND || f[i].op == MC_BIN_PREPEND || f[i].op == MC_BIN_PREPENDQ;
        struct mc_cmd c = parsed(f[i].op, "k", ext_set, app ? 0 : 8, "v", f[i].cas);
        struct mc_result r = { .status = f[i].st };
        mc_binary_reply(&o, &c, &r);
        CHECK(out_err(&o, f[i].op, f[i].status, f[i].msg, 0xdeadbeef));
        if (o.len)
            fprintf(stderr, "case %zu\n", i);
    }
    mc_out_free(&o);
}

TEST(reply_delete)
{
    struct mc_out o;
    mc_out_init(&o);
    uint8_t exp[64];
    struct mc_result ok = { .status = MC_ST_OK, .cas = 44 }, miss = { .status = MC_ST_MISS },
                     ex = { .status = MC_ST_EXISTS };
    struct mc_cmd c = parsed(MC_BIN_DELETE, "D", NULL, 0, NULL, 0);
    mc_binary_reply(&o, &c, &ok);
    size_t n = mkres(exp, MC_BIN_DELETE, 0, NULL, 0, NULL, 0, NULL, 0, 0, 0xdeadbeef);   /* cas 0 */
    CHECK(out_is(&o, exp, n));
    mc_binary_reply(&o, &c, &miss);
    CHECK(out_err(&o, MC_BIN_DELETE, 1, "Not found", 0xdeadbeef));
    mc_binary_reply(&o, &c, &ex);
    CHECK(out_err(&o, MC_BIN_DELETE, 2, "Data exists for key.", 0xdeadbeef));
    c = parsed(MC_BIN_DELETEQ, "D", NULL, 0, NULL, 0);
    mc_binary_reply(&o, &c, &ok);
    CHECK_EQ(o.len, 0);
    mc_binary_reply(&o, &c, &miss);    /* a quiet delete of a missing key still answers */
    CHECK(out_err(&o, MC_BIN_DELETEQ, 1, "Not found", 0xdeadbeef));
    mc_out_free(&o);
}

TEST(reply_arith)
{
    struct mc_out o;
    mc_out_init(&o);
    uint8_t ext[20] = { 0 };
    struct mc_cmd c = parsed(MC_BIN_INCREMENT, "n", ext, 20, NULL, 0);
    struct mc_result ok = { .status = MC_ST_OK, .cas = 9, .number = 15 };
    mc_binary_reply(&o, &c, &ok);
    static const uint8_t real_incr[] = {
        0x81, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0xde, 0xad, 0xbe, 0xef,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f,
    };
    CHECK(out_is(&o, real_incr, sizeof real_incr));
    ok.number = 0xffffffffffffffffull;
    c = parsed(MC_BIN_DECREMENT, "n", ext, 20, NULL, 0);
    mc_binary_reply(&o, &c, &ok);
    CHECK_EQ(o.len, 32);
    CHECK_EQ(o.buf[1], MC_BIN_DECREMENT);
    CHECK(memcmp(o.buf + 24, "\xff\xff\xff\xff\xff\xff\xff\xff", 8) == 0);
    o.len = 0;
    static const struct { enum mc_status st; uint16_t status; const char *msg; } f[] = {
        { MC_ST_MISS, 1, "Not found" },
        { MC_ST_NON_NUMERIC, 6, "Non-numeric server-side value for incr or decr" },
        { MC_ST_EXISTS, 2, "Data exists for key." },
        { MC_ST_NOT_STORED, 5, "Not stored." },
        { MC_ST_NO_MEMORY, 0x82, "Out of memory incrementing value" },
    };
    const uint8_t ops[] = { MC_BIN_INCREMENT, MC_BIN_DECREMENTQ };
    for (int q = 0; q < 2; q++) {
        c = parsed(ops[q], "n", ext, 20, NULL, 0);
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
            struct mc_result r = { .status = f[i].st };
            mc_binary_reply(&o, &c, &r);
            CHECK(out_err(&o, ops[q], f[i].status, f[i].msg, 0xdeadbeef));
        }
        mc_binary_reply(&o, &c, &ok);
        CHECK_EQ(o.len, q ? 0u : 32u);
        o.len = 0;
    }
    mc_out_free(&o);
}

TEST(reply_unkeyed)
{
    struct mc_out o;
    mc_out_init(&o);
    uint8_t exp[64];
    size_t n;
    struct mc_cmd c = parsed(MC_BIN_VERSION, NULL, NULL, 0, NULL, 0);
    mc_binary_simple(&o, &c, "1.6.18");
    n = mkres(exp, MC_BIN_VERSION, 0, NULL, 0, NULL, 0, "1.6.18", 6, 0, 0xdeadbeef);
    CHECK(out_is(&o, exp, n));
    const uint8_t loud[] = { MC_BIN_NOOP, MC_BIN_QUIT, MC_BIN_FLUSH };
    for (int i = 0; i < 3; i++) {
        c = parsed(loud[i], NULL, NULL, 0, NULL, 0);
        mc_binary_simple(&o, &c, "1.6.18");
        n = mkres(exp, loud[i], 0, NULL, 0, NULL, 0, NULL, 0, 0, 0xdeadbeef);
        CHECK(out_is(&o, exp, n));
    }
    c = parsed(MC_BIN_FLUSH, NULL, "\0\0\0\5", 4, NULL, 0);
    mc_binary_simple(&o, &c, "1.6.18");
    n = mkres(exp, MC_BIN_FLUSH, 0, NULL, 0, NULL, 0, NULL, 0, 0, 0xdeadbeef);
    CHECK(out_is(&o, exp, n));
    const uint8_t quiet[] = { MC_BIN_QUITQ, MC_BIN_FLUSHQ };
    for (int i = 0; i < 2; i++) {
        c = parsed(quiet[i], NULL, NULL, 0, NULL, 0);
        mc_binary_simple(&o, &c, "1.6.18");
        CHECK_EQ(o.len, 0);
    }
    /* with flush_all disabled (-F) memcached answers FLUSH and FLUSHQ "Auth failure." */
    c = parsed(MC_BIN_FLUSHQ, NULL, NULL, 0, NULL, 0);
    c.op = MC_OP_ERROR;
    c.bin_status = MC_BIN_AUTH_ERROR;
    mc_binary_error(&o, &c);
    CHECK(out_err(&o, MC_BIN_FLUSHQ, 0x20, "Auth failure.", 0xdeadbeef));
    /* the opaque is echoed as sent */
    struct mc_cmd c2;
    bool fatal;
    mkreq(req, 0x80, MC_BIN_NOOP, NULL, 0, NULL, 0, NULL, 0, 0x1234, 0x01020304);
    CHECK_EQ(mc_binary_parse(req, 24, 1 << 20, &c2, &fatal), 24);
    mc_binary_simple(&o, &c2, "x");
    n = mkres(exp, MC_BIN_NOOP, 0, NULL, 0, NULL, 0, NULL, 0, 0, 0x01020304);
    CHECK(out_is(&o, exp, n));
    mc_out_free(&o);
}

TEST(reply_stats_and_oom)
{
    struct mc_out o;
    mc_out_init(&o);
    uint8_t exp[128];
    size_t n;
    struct mc_cmd c = parsed(MC_BIN_STAT, NULL, NULL, 0, NULL, 0);
    mc_binary_stat(&o, &c, "pid", "24340");
    mc_binary_stat(&o, &c, "empty", "");
    mc_binary_stats_end(&o, &c);
    n = mkres(exp, MC_BIN_STAT, 0, NULL, 0, "pid", 3, "24340", 5, 0, 0xdeadbeef);
    n += mkres(exp + n, MC_BIN_STAT, 0, NULL, 0, "empty", 5, NULL, 0, 0, 0xdeadbeef);
    n += mkres(exp + n, MC_BIN_STAT, 0, NULL, 0, NULL, 0, NULL, 0, 0, 0xdeadbeef);
    CHECK(out_is(&o, exp, n));
    struct mc_result miss = { .status = MC_ST_MISS };
    mc_binary_reply(&o, &c, &miss);
    CHECK(out_err(&o, MC_BIN_STAT, 1, "Not found", 0xdeadbeef));
    mc_binary_out_of_memory(&o, &c);
    CHECK(out_err(&o, MC_BIN_STAT, 0x82, "Out of memory generating stats", 0xdeadbeef));
    c = parsed(MC_BIN_SETQ, "k", ext_set, 8, "v", 0);
    mc_binary_out_of_memory(&o, &c);
    CHECK(out_err(&o, MC_BIN_SETQ, 0x82, "Out of memory allocating item", 0xdeadbeef));
    c = parsed(MC_BIN_GETQ, "k", NULL, 0, NULL, 0);
    mc_binary_out_of_memory(&o, &c);
    CHECK(out_err(&o, MC_BIN_GETQ, 0x82, "Out of memory", 0xdeadbeef));
    mc_out_free(&o);
}

TEST(reply_into_failed_buffer)
{
    /* a buffer that could not grow stays failed and writes nothing */
    struct mc_out o;
    mc_out_init(&o);
    o.failed = true;
    struct mc_item *it = mkitem("k", "hello", 7, 1);
    struct mc_result h = hit(it);
    struct mc_cmd c = parsed(MC_BIN_GETK, "k", NULL, 0, NULL, 0);
    mc_binary_reply(&o, &c, &h);
    mc_binary_error(&o, &c);
    mc_binary_stat(&o, &c, "a", "b");
    CHECK_EQ(o.len, 0);
    free(it);
    mc_out_free(&o);
}

TEST_MAIN()
