/*
 * The memcached text protocol parser and reply formatter (apps/memcached/text.c). The
 * expected bytes are what memcached 1.6.18 answered to the same input on loopback: error
 * strings, noreply rules, what a bad data block swallows, number parsing quirks, meta flags
 * and their reply order. Replies to keyed commands come from hand-built results (no store).
 */
#include "check.h"
#include "../../apps/memcached/outbuf.c"
#include "../../apps/memcached/text.c"

#include <string.h>

#define ISM (1u << 20)

static struct mc_cmd cmd;
static struct mc_text_keys keys;

static size_t parse_n(const char *s, size_t n)
{
    return mc_text_parse((const uint8_t *)s, n, ISM, &cmd, &keys);
}
static size_t parse(const char *s) { return parse_n(s, strlen(s)); }

static bool key_is(const char *k)
{
    return cmd.keylen == strlen(k) && memcmp(cmd.key, k, cmd.keylen) == 0;
}

/* What a connection would answer to the bytes s when every keyed command gets result r
   (get lines: r for every key): parse, walk keys, format; stops when more input is needed. */
static char outbuf_text[1 << 16];
static const char *drive_n(const char *s, size_t n, const struct mc_result *r)
{
    struct mc_out o;
    mc_out_init(&o);
    size_t off = 0;
    while (off < n) {
        size_t used = parse_n(s + off, n - off);
        if (!used)
            break;
        off += used;
        if (cmd.op == MC_OP_GET && !cmd.meta) {
            do
                mc_text_reply(&o, &cmd, r);
            while (mc_text_next_key(&keys, &cmd) && cmd.op == MC_OP_GET);
            mc_text_get_end(&o);
        } else if (cmd.op <= MC_OP_DEBUG) {
            mc_text_reply(&o, &cmd, r);
        } else {
            mc_text_simple(&o, &cmd, "1.6.18");
        }
        if (cmd.op == MC_OP_QUIT || (cmd.op == MC_OP_ERROR && cmd.error == MC_ERR_LINE_TOO_LONG))
            break;
    }
    CHECK(!o.failed && o.len < sizeof outbuf_text);
    memcpy(outbuf_text, o.buf ? (const char *)o.buf : "", o.len);
    outbuf_text[o.len] = 0;
    mc_out_free(&o);
    return outbuf_text;
}

static const struct mc_result miss = { .status = MC_ST_MISS };
static const char *drive(const char *s) { return drive_n(s, strlen(s), &miss); }

#define CHECK_OUT(input, expect)                                                     \
    do {                                                                             \
        const char *got_ = drive(input);                                             \
        check_count++;                                                               \
        if (strcmp(got_, expect) != 0) {                                             \
            check_failures++;                                                        \
            fprintf(stderr, "%s:%d: for %s\n  got    \"%s\"\n  expect \"%s\"\n",      \
                    __FILE__, __LINE__, #input, got_, expect);                       \
        }                                                                            \
    } while (0)

static const char *reply(const struct mc_result *r)
{
    struct mc_out o;
    mc_out_init(&o);
    mc_text_reply(&o, &cmd, r);
    memcpy(outbuf_text, o.buf ? (const char *)o.buf : "", o.len);
    outbuf_text[o.len] = 0;
    mc_out_free(&o);
    return outbuf_text;
}

/* A hand-built item for hit results. */
static union { struct mc_item it; uint8_t raw[sizeof(struct mc_item) + 512]; } item_mem;
static struct mc_item *mkitem(const char *key, const char *val, uint32_t flags, uint64_t cas)
{
    struct mc_item *it = &item_mem.it;
    memset(&item_mem, 0, sizeof item_mem);
    it->keylen = (uint8_t)strlen(key);
    it->nbytes = (uint32_t)strlen(val);
    it->client_flags = flags;
    it->cas = cas;
    memcpy(it->data, key, it->keylen);
    memcpy(it->data + it->keylen, val, it->nbytes);
    memcpy(it->data + it->keylen + it->nbytes, "\r\n", 2);
    return it;
}
static struct mc_result hit(const char *val, uint32_t flags, uint64_t cas)
{
    return (struct mc_result){ .status = MC_ST_OK, .item = mkitem("k", val, flags, cas), .cas = cas,
                               .client_flags = flags, .nbytes = (uint32_t)strlen(val), .ttl = -1 };
}

/* ---------------- lines and tokens ---------------- */

TEST(line_endings)
{
    CHECK_EQ(parse("get a"), 0);
    CHECK_EQ(parse("get a\n"), 6);
    CHECK(cmd.op == MC_OP_GET && key_is("a"));
    CHECK_EQ(parse("get a\r\n"), 7);
    CHECK(key_is("a"));
    CHECK_EQ(parse("get a\r\r\n"), 8);          /* only one \r is dropped: key "a\r" */
    CHECK(key_is("a\r"));
    CHECK_EQ(parse_n("get a\0b c\r\n", 11), 11); /* a NUL ends the line */
    CHECK(key_is("a") && !mc_text_next_key(&keys, &cmd));
    CHECK_OUT("\r\n", "ERROR\r\n");
    CHECK_OUT("\n", "ERROR\r\n");
    CHECK_OUT("x\r\n", "ERROR\r\n");
    CHECK_OUT("ge\r\n", "ERROR\r\n");
    CHECK_OUT("GET a\r\n", "ERROR\r\n");
    CHECK_OUT("get\r\n", "ERROR\r\n");
    CHECK_OUT("get \r\n", "ERROR\r\n");
    CHECK_OUT(" get a\r\n", "END\r\n");
    CHECK_OUT("getx a\r\n", "ERROR\r\n");
    CHECK_OUT("mx\r\n", "ERROR\r\n");
    CHECK_OUT("m\r\n", "ERROR\r\n");
    const char nul_set[] = "set a\0 0 0 1\r\nx\r\n";  /* "set a": too few tokens, then "x" */
    CHECK(strcmp(drive_n(nul_set, sizeof nul_set - 1, &miss), "ERROR\r\nERROR\r\n") == 0);
}

TEST(long_lines)
{
    static char b[MC_TEXT_LINE_MAX + 4096];
    memset(b, 'y', sizeof b);
    CHECK_EQ(parse_n(b, 2048), 0);                 /* memcached still waits */
    CHECK_EQ(parse_n(b, 2049), 2049);              /* then hangs up without a word */
    CHECK(cmd.op == MC_OP_ERROR && cmd.error == MC_ERR_LINE_TOO_LONG && cmd.noreply);
    CHECK(strcmp(drive_n(b, 2049, &miss), "") == 0);
    memcpy(b, "get ", 4);
    for (int i = 4; i < (int)sizeof b; i += 2)
        b[i] = 'a', b[i + 1] = ' ';
    CHECK_EQ(parse_n(b, MC_TEXT_LINE_MAX), 0);     /* long get lines are allowed ... */
    CHECK_EQ(parse_n(b, MC_TEXT_LINE_MAX + 1), MC_TEXT_LINE_MAX + 1);   /* ... up to our bound */
    CHECK(cmd.op == MC_OP_ERROR && cmd.error == MC_ERR_LINE_TOO_LONG && !cmd.noreply);
    CHECK(strcmp(drive_n(b, MC_TEXT_LINE_MAX + 1, &miss), "CLIENT_ERROR line too long\r\n") == 0);
    memcpy(b, "gat 1 ", 6);                        /* memcached allows only get/gets */
    CHECK_EQ(parse_n(b, 3000), 3000);
    CHECK(cmd.noreply);
    memset(b, ' ', 101);
    memcpy(b + 101, "get ", 4);                    /* more than 100 leading spaces */
    CHECK_EQ(parse_n(b, 3000), 3000);
    CHECK(cmd.error == MC_ERR_LINE_TOO_LONG && cmd.noreply);
    memcpy(b + 100, "get ", 4);
    CHECK_EQ(parse_n(b + 1, 3000), 0);
    /* a long line with its newline is parsed: extra tokens past 23 are not counted */
    char line[12100];
    int n = snprintf(line, sizeof line, "set a 0 0 1 %.*s\r\nx\r\n", 10000, b + 200);
    memset(line + 12, 'x', 10000);
    CHECK_EQ(parse_n(line, (size_t)n), (size_t)n);
    CHECK(cmd.op == MC_OP_STORE && cmd.vlen == 1 && !cmd.noreply);
}

TEST(http_closes)
{
    CHECK_EQ(parse("GET / HTTP/1.1\r\n"), 16);
    CHECK(cmd.op == MC_OP_ERROR && cmd.error == MC_ERR_LINE_TOO_LONG && cmd.noreply);
    CHECK_OUT("GET / HTTP/1.1\r\nversion\r\n", "");
    CHECK_OUT("foo HTTP/1.0 x\r\nversion\r\n", "ERROR\r\nVERSION 1.6.18\r\n");
}

/* ---------------- retrieval ---------------- */

TEST(get_keys)
{
    const char *s = "gets  a   bb ccc \r\n";
    CHECK_EQ(parse(s), strlen(s));
    CHECK(cmd.op == MC_OP_GET && cmd.want_cas && !cmd.touch && key_is("a"));
    CHECK(mc_text_next_key(&keys, &cmd) && key_is("bb"));
    CHECK(mc_text_next_key(&keys, &cmd) && key_is("ccc"));
    CHECK(!mc_text_next_key(&keys, &cmd));
    CHECK(!mc_text_next_key(&keys, &cmd));
    CHECK_EQ(parse("get k\r\n"), 7);
    CHECK(!cmd.want_cas && !mc_text_next_key(&keys, &cmd));
    /* more than 24 keys: all of them */
    char line[400] = "get";
    for (int i = 0; i < 40; i++)
        snprintf(line + strlen(line), sizeof line - strlen(line), " k%d", i);
    strcat(line, "\r\n");
    CHECK_EQ(parse(line), strlen(line));
    int nkeys = 1;
    while (mc_text_next_key(&keys, &cmd))
        nkeys++;
    CHECK_EQ(nkeys, 40);
    CHECK(key_is("k39"));
}

TEST(get_key_limits)
{
    char line[700];
    snprintf(line, sizeof line, "get %0250d\r\n", 0);
    CHECK_EQ(parse(line), strlen(line));
    CHECK(cmd.op == MC_OP_GET && cmd.keylen == 250);
    snprintf(line, sizeof line, "get %0251d\r\n", 0);
    CHECK_OUT(line, "CLIENT_ERROR bad command line format\r\n");
    /* a long key anywhere on the line: only the error, no VALUE and no END */
    snprintf(line, sizeof line, "get a %0251d a\r\n", 0);
    CHECK_EQ(parse(line), strlen(line));
    CHECK(cmd.op == MC_OP_ERROR);
    struct mc_result h = hit("x", 0, 1);
    CHECK(strcmp(drive_n(line, strlen(line), &h), "CLIENT_ERROR bad command line format\r\n") == 0);
}

TEST(gat)
{
    CHECK_EQ(parse("gat 10 a b\r\n"), 12);
    CHECK(cmd.op == MC_OP_GET && cmd.touch && !cmd.want_cas && cmd.exptime == 10 && key_is("a"));
    CHECK(mc_text_next_key(&keys, &cmd) && key_is("b"));
    CHECK_EQ(parse("gats -1 a\r\n"), 11);
    CHECK(cmd.touch && cmd.want_cas && cmd.exptime == -1);
    CHECK_OUT("gat a\r\n", "CLIENT_ERROR invalid exptime argument\r\n");
    CHECK_OUT("gat x a\r\n", "CLIENT_ERROR invalid exptime argument\r\n");
    CHECK_OUT("gat 10\r\n", "END\r\n");
    CHECK_OUT("gats 1\r\n", "END\r\n");
    CHECK_OUT("gat\r\n", "ERROR\r\n");
    CHECK_OUT("gets\r\n", "ERROR\r\n");
    CHECK_OUT("gat -1 b\r\n", "END\r\n");
}

TEST(get_reply_format)
{
    struct mc_result h = hit("hello", 42, 77);
    CHECK(strcmp(drive_n("get k\r\n", 7, &h), "VALUE k 42 5\r\nhello\r\nEND\r\n") == 0);
    CHECK(strcmp(drive_n("gets k\r\n", 8, &h), "VALUE k 42 5 77\r\nhello\r\nEND\r\n") == 0);
    h = hit("", 4294967295u, 18446744073709551615ull);
    CHECK(strcmp(drive_n("gats 0 k k\r\n", 12, &h),
                 "VALUE k 4294967295 0 18446744073709551615\r\n\r\n"
                 "VALUE k 4294967295 0 18446744073709551615\r\n\r\nEND\r\n") == 0);
    CHECK_OUT("get a b\r\n", "END\r\n");
}

/* ---------------- storage ---------------- */

TEST(set_parse)
{
    const char *s = "set foo 123 -5 3 noreply\r\nabc\r\nget";
    CHECK_EQ(parse(s), strlen(s) - 3);
    CHECK(cmd.op == MC_OP_STORE && cmd.store_mode == MC_SET && key_is("foo"));
    CHECK(cmd.client_flags == 123 && cmd.exptime == -5 && cmd.vlen == 3 && cmd.noreply);
    CHECK(memcmp(cmd.value, "abc", 3) == 0);
    CHECK_EQ(parse("set foo 1 2 3\r\nab"), 0);        /* data not all there */
    CHECK_EQ(parse("set foo 1 2 3\r\nabc\r"), 0);
    CHECK_EQ(parse("set a 0 0 1\nx\r\n"), 15);        /* bare \n on the line */
    CHECK(cmd.op == MC_OP_STORE);
    CHECK_EQ(parse("set a 0 0 1\r\r\nx\r\n"), 17);    /* "1\r": whitespace ends a number */
    CHECK(cmd.op == MC_OP_STORE && cmd.vlen == 1);
    CHECK_EQ(parse("set a 0 0 0\r\n\r\n"), 15);
    CHECK(cmd.op == MC_OP_STORE && cmd.vlen == 0);
    static const struct { const char *name; enum mc_store_mode mode; } m[] = {
        { "add", MC_ADD }, { "replace", MC_REPLACE }, { "append", MC_APPEND }, { "prepend", MC_PREPEND },
    };
    for (int i = 0; i < 4; i++) {
        char line[64];
        snprintf(line, sizeof line, "%s k 1 2 1\r\nx\r\n", m[i].name);
        CHECK_EQ(parse(line), strlen(line));
        CHECK(cmd.op == MC_OP_STORE && cmd.store_mode == m[i].mode && !cmd.noreply);
    }
    CHECK_EQ(parse("cas k 1 2 1 99 noreply\r\nx\r\n"), 27);
    CHECK(cmd.op == MC_OP_STORE && cmd.store_mode == MC_CAS && cmd.cas == 99 && cmd.noreply);
    CHECK_EQ(parse("set a 0 0 1 foo\r\nx\r\n"), 20);   /* a 7th token that is not noreply */
    CHECK(cmd.op == MC_OP_STORE && !cmd.noreply);
}

TEST(set_numbers)
{
    /* flags: unsigned, truncated to 32 bits; '-' only refused when the value looks negative */
    CHECK_EQ(parse("set a 4294967295 0 1\r\nx\r\n"), 25);
    CHECK(cmd.op == MC_OP_STORE && cmd.client_flags == 4294967295u);
    parse("set a 4294967296 0 1\r\nx\r\n");
    CHECK(cmd.op == MC_OP_STORE && cmd.client_flags == 0);
    parse("set a -0 0 1\r\nx\r\n");
    CHECK(cmd.op == MC_OP_STORE && cmd.client_flags == 0);
    parse("set a +5 0 1\r\nx\r\n");
    CHECK(cmd.op == MC_OP_STORE && cmd.client_flags == 5);
    parse("set a \t5 0 1\r\nx\r\n");
    CHECK(cmd.op == MC_OP_STORE && cmd.client_flags == 5);
    parse("set a 5\t 0 1\r\nx\r\n");
    CHECK(cmd.op == MC_OP_STORE && cmd.client_flags == 5);
    parse("set a -18446744073709551615 0 1\r\nx\r\n");
    CHECK(cmd.op == MC_OP_STORE && cmd.client_flags == 1);
    CHECK_OUT("set a -1 0 1\r\nx\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    CHECK_OUT("set a 18446744073709551616 0 1\r\nx\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    CHECK_OUT("set a 5x 0 1\r\nx\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    /* exptime: a 64-bit long stored into 32 bits */
    parse("set a 0 4294967296 1\r\nx\r\n");
    CHECK(cmd.op == MC_OP_STORE && cmd.exptime == 0);
    parse("set a 0 2147483648 1\r\nx\r\n");
    CHECK(cmd.op == MC_OP_STORE && cmd.exptime == INT32_MIN);
    parse("set a 0 4294967295 1\r\nx\r\n");
    CHECK(cmd.op == MC_OP_STORE && cmd.exptime == -1);
    parse("set a 0 -2147483649 1\r\nx\r\n");
    CHECK(cmd.op == MC_OP_STORE && cmd.exptime == INT32_MAX);
    CHECK_OUT("set a 0 9223372036854775808 1\r\nx\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    parse("set a 0 -9223372036854775808 1\r\nx\r\n");
    CHECK(cmd.op == MC_OP_STORE && cmd.exptime == 0);
    /* bytes */
    parse("set a 0 0 +1\r\nx\r\n");
    CHECK(cmd.op == MC_OP_STORE && cmd.vlen == 1);
    CHECK_OUT("set a 0 0 -1\r\nx\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    CHECK_OUT("set a 0 0 abc\r\nx\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    CHECK_OUT("set a 0 0 2147483646\r\nx\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    CHECK_OUT("cas a 0 0 1 abc\r\nx\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    CHECK_OUT("cas a 0 0 1 -1\r\nx\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n");
}

TEST(set_errors)
{
    CHECK_OUT("set a 0 0\r\nx\r\n", "ERROR\r\nERROR\r\n");
    CHECK_OUT("set a 0 0 1 2 3\r\nx\r\n", "ERROR\r\nERROR\r\n");
    CHECK_OUT("cas a 0 0 1\r\nx\r\n", "ERROR\r\nERROR\r\n");
    /* errors of a noreply line are not sent; the data is still read as a command */
    CHECK_OUT("set a 0 x 1 noreply\r\nx\r\n", "ERROR\r\n");
    CHECK_OUT("set a 0 0 noreply\r\nx\r\n", "ERROR\r\n");
    char line[400];
    snprintf(line, sizeof line, "set %0251d 0 0 1\r\nx\r\n", 0);
    CHECK_OUT(line, "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    snprintf(line, sizeof line, "set %0250d 0 0 1\r\nx\r\n", 0);
    CHECK_EQ(parse(line), strlen(line));
    CHECK(cmd.op == MC_OP_STORE && cmd.keylen == 250);
}

TEST(bad_data_chunk)
{
    /* exactly <bytes>+2 bytes are consumed; what follows is the next command */
    CHECK_EQ(parse("set a 0 0 1\r\nxyz\r\n"), 16);
    CHECK(cmd.op == MC_OP_ERROR && cmd.error == MC_ERR_BAD_DATA_CHUNK);
    CHECK_OUT("set a 0 0 1\r\nxyz\r\nget a\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\nEND\r\n");
    CHECK_OUT("set a 0 0 1\r\nxy\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n");
    CHECK_OUT("set a 0 0 1 noreply\r\nxyz\r\nget a\r\n", "ERROR\r\nEND\r\n");
    CHECK_EQ(parse("set a 0 0 1\r\nx\n"), 0);   /* memcached waits for the third byte */
}

TEST(too_large)
{
    /* memcached's limit: 56 + key + 1 + bytes + 2 <= item size max */
    char line[64];
    snprintf(line, sizeof line, "set a 0 0 %u\r\n", ISM - 60);
    size_t ll = strlen(line), total = ll + ISM - 60 + 2;
    static char buf[(1u << 20) + 100];
    memcpy(buf, line, ll);
    memset(buf + ll, 'z', ISM - 60);
    memcpy(buf + ll + ISM - 60, "\r\n", 2);
    CHECK_EQ(parse_n(buf, total), total);
    CHECK(cmd.op == MC_OP_STORE);
    snprintf(line, sizeof line, "set a 0 0 %u\r\n", ISM - 59);
    ll = strlen(line);
    total = ll + ISM - 59 + 2;
    memcpy(buf, line, ll);
    memset(buf + ll, 'z', ISM - 59);
    memcpy(buf + ll + ISM - 59, "\r\n", 2);
    CHECK_EQ(parse_n(buf, total - 1), total - 1); /* answered at once; the rest is dropped as it comes */
    CHECK_EQ(cmd.swallow, 1);
    CHECK_EQ(parse_n(buf, ll), ll);
    CHECK_EQ(cmd.swallow, ISM - 59 + 2);
    CHECK_EQ(parse_n(buf, total), total);
    CHECK_EQ(cmd.swallow, 0);
    CHECK(cmd.op == MC_OP_ERROR && cmd.error == MC_ERR_TOO_LARGE && key_is("a") &&
          cmd.store_mode == MC_SET);
    CHECK(strcmp(drive_n(buf, total, &miss), "SERVER_ERROR object too large for cache\r\n") == 0);
    memcpy(buf + total - 2, "XX", 2);            /* no data chunk check for it */
    CHECK(strcmp(drive_n(buf, total, &miss), "SERVER_ERROR object too large for cache\r\n") == 0);
    /* a noreply one says nothing */
    CHECK_EQ(parse("set a 0 0 2000000 noreply\r\n"), strlen("set a 0 0 2000000 noreply\r\n"));
    CHECK(cmd.noreply && cmd.swallow == 2000002);
}

TEST(store_replies)
{
    struct mc_result r = { .status = MC_ST_OK };
    parse("set a 0 0 1\r\nx\r\n");
    CHECK(strcmp(reply(&r), "STORED\r\n") == 0);
    r.status = MC_ST_NOT_STORED;
    CHECK(strcmp(reply(&r), "NOT_STORED\r\n") == 0);
    r.status = MC_ST_EXISTS;
    CHECK(strcmp(reply(&r), "EXISTS\r\n") == 0);
    r.status = MC_ST_MISS;
    CHECK(strcmp(reply(&r), "NOT_FOUND\r\n") == 0);
    r.status = MC_ST_TOO_LARGE;
    CHECK(strcmp(reply(&r), "SERVER_ERROR object too large for cache\r\n") == 0);
    r.status = MC_ST_NO_MEMORY;
    CHECK(strcmp(reply(&r), "SERVER_ERROR out of memory storing object\r\n") == 0);
    parse("set a 0 0 1 noreply\r\nx\r\n");
    CHECK(strcmp(reply(&r), "") == 0);
    r.status = MC_ST_OK;
    CHECK(strcmp(reply(&r), "") == 0);
}

/* ---------------- other classic commands ---------------- */

TEST(delete)
{
    CHECK_EQ(parse("delete a\r\n"), 10);
    CHECK(cmd.op == MC_OP_DELETE && key_is("a") && !cmd.noreply);
    parse("delete a 0\r\n");
    CHECK(cmd.op == MC_OP_DELETE && !cmd.noreply);
    parse("delete a noreply\r\n");
    CHECK(cmd.op == MC_OP_DELETE && cmd.noreply);
    parse("delete a 0 noreply\r\n");
    CHECK(cmd.op == MC_OP_DELETE && cmd.noreply);
    const char *usage = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n";
    CHECK_OUT("delete a 1\r\n", usage);
    CHECK_OUT("delete a 0 0\r\n", usage);
    CHECK_OUT("delete a foo\r\n", usage);
    CHECK_OUT("delete a 0 foo\r\n", usage);
    CHECK_OUT("delete a foo noreply\r\n", "");
    CHECK_OUT("delete a x y z\r\n", "ERROR\r\n");
    CHECK_OUT("delete\r\n", "ERROR\r\n");
    char line[300];
    snprintf(line, sizeof line, "delete %0251d\r\n", 0);
    CHECK_OUT(line, "CLIENT_ERROR bad command line format\r\n");
    struct mc_result r = { .status = MC_ST_OK };
    parse("delete a\r\n");
    CHECK(strcmp(reply(&r), "DELETED\r\n") == 0);
    CHECK_OUT("delete a\r\n", "NOT_FOUND\r\n");
}

TEST(incr_decr)
{
    CHECK_EQ(parse("incr n 5\r\n"), 10);
    CHECK(cmd.op == MC_OP_ARITH && cmd.arith_mode == MC_INCR && cmd.delta == 5 && key_is("n"));
    parse("decr n 18446744073709551615 noreply\r\n");
    CHECK(cmd.op == MC_OP_ARITH && cmd.arith_mode == MC_DECR && cmd.delta == UINT64_MAX && cmd.noreply);
    parse("incr n +5\r\n");
    CHECK(cmd.op == MC_OP_ARITH && cmd.delta == 5);
    parse("incr n 1 2\r\n");                    /* a 5th token that is not noreply: ignored */
    CHECK(cmd.op == MC_OP_ARITH && cmd.delta == 1 && !cmd.noreply);
    const char *bad = "CLIENT_ERROR invalid numeric delta argument\r\n";
    CHECK_OUT("incr n x\r\n", bad);
    CHECK_OUT("incr n -1\r\n", bad);
    CHECK_OUT("incr n 18446744073709551616\r\n", bad);
    CHECK_OUT("incr n x noreply\r\n", "");
    CHECK_OUT("incr n\r\n", "ERROR\r\n");
    CHECK_OUT("incr n 1 2 3\r\n", "ERROR\r\n");
    char line[300];
    snprintf(line, sizeof line, "incr %0251d 1\r\n", 0);
    CHECK_OUT(line, "CLIENT_ERROR bad command line format\r\n");
    CHECK_OUT("incr n 1\r\n", "NOT_FOUND\r\n");
    struct mc_result r = { .status = MC_ST_OK, .number = 18446744073709551615ull };
    parse("incr n 1\r\n");
    CHECK(strcmp(reply(&r), "18446744073709551615\r\n") == 0);
    r.status = MC_ST_NON_NUMERIC;
    CHECK(strcmp(reply(&r), "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n") == 0);
    r.status = MC_ST_NO_MEMORY;
    CHECK(strcmp(reply(&r), "SERVER_ERROR out of memory\r\n") == 0);
    parse("incr n 1 noreply\r\n");
    r.status = MC_ST_NON_NUMERIC;               /* noreply hides this error too */
    CHECK(strcmp(reply(&r), "") == 0);
}

TEST(touch)
{
    CHECK_EQ(parse("touch a 10\r\n"), 12);
    CHECK(cmd.op == MC_OP_TOUCH && cmd.exptime == 10 && key_is("a"));
    parse("touch a 1 2\r\n");
    CHECK(cmd.op == MC_OP_TOUCH && !cmd.noreply);
    CHECK_OUT("touch a x\r\n", "CLIENT_ERROR invalid exptime argument\r\n");
    CHECK_OUT("touch a x noreply\r\n", "");
    CHECK_OUT("touch a\r\n", "ERROR\r\n");
    CHECK_OUT("touch a 10\r\n", "NOT_FOUND\r\n");
    struct mc_result r = { .status = MC_ST_OK };
    parse("touch a 10\r\n");
    CHECK(strcmp(reply(&r), "TOUCHED\r\n") == 0);
    parse("touch a 10 noreply\r\n");
    CHECK(strcmp(reply(&r), "") == 0);
}

TEST(unkeyed)
{
    CHECK_OUT("flush_all\r\n", "OK\r\n");
    CHECK_OUT("flush_all 0\r\n", "OK\r\n");
    CHECK_OUT("flush_all noreply\r\n", "");
    CHECK_OUT("flush_all 10 noreply\r\n", "");
    CHECK_OUT("flush_all x\r\n", "CLIENT_ERROR invalid exptime argument\r\n");
    CHECK_OUT("flush_all x noreply\r\n", "");
    CHECK_OUT("flush_all -5\r\n", "OK\r\n");
    CHECK_OUT("flush_all 1 2\r\n", "OK\r\n");
    CHECK_OUT("flush_all 0 foo\r\n", "OK\r\n");
    CHECK_OUT("flush_all 1 2 3\r\n", "ERROR\r\n");
    parse("flush_all 30\r\n");
    CHECK(cmd.op == MC_OP_FLUSH_ALL && cmd.flush_delay == 30);
    CHECK_OUT("version\r\n", "VERSION 1.6.18\r\n");
    CHECK_OUT("version x\r\n", "VERSION 1.6.18\r\n");
    CHECK_OUT("verbosity 1\r\n", "OK\r\n");
    CHECK_OUT("verbosity 1 2\r\n", "OK\r\n");
    CHECK_OUT("verbosity\r\n", "ERROR\r\n");
    CHECK_OUT("verbosity 1 2 3\r\n", "ERROR\r\n");
    CHECK_OUT("verbosity x\r\n", "CLIENT_ERROR bad command line format\r\n");
    CHECK_OUT("verbosity -1\r\n", "CLIENT_ERROR bad command line format\r\n");
    CHECK_OUT("verbosity 1 noreply\r\n", "");
    CHECK_OUT("verbosity noreply\r\n", "");
    parse("verbosity 3\r\n");
    CHECK(cmd.op == MC_OP_VERBOSITY && cmd.verbosity == 3);
    CHECK_OUT("mn\r\n", "MN\r\n");
    CHECK_OUT("mn x\r\n", "MN\r\n");
    CHECK_OUT("quit x\r\nversion\r\n", "");
    parse("quit\r\n");
    CHECK(cmd.op == MC_OP_QUIT);
    CHECK_OUT("shutdown\r\n", "ERROR: shutdown not enabled\r\n");
    parse("stats\r\n");
    CHECK(cmd.op == MC_OP_STATS && cmd.stats_group[0] == 0);
    parse("stats   \r\n");
    CHECK(cmd.op == MC_OP_STATS && cmd.stats_group[0] == 0);
    parse("stats settings x\r\n");
    CHECK(cmd.op == MC_OP_STATS && strcmp(cmd.stats_group, "settings") == 0);
    CHECK_OUT("stats xxxxxxxxxxxxxxxxxxxx\r\n", "ERROR\r\n");
    struct mc_out o;
    mc_out_init(&o);
    mc_text_stat(&o, "pid", "1");
    mc_text_stats_end(&o);
    mc_text_out_of_memory(&o);
    const char *want = "STAT pid 1\r\nEND\r\nSERVER_ERROR out of memory\r\n";
    CHECK(o.len == strlen(want) && memcmp(o.buf, want, o.len) == 0);
    mc_out_free(&o);
}

/* ---------------- meta ---------------- */

TEST(mg_parse)
{
    const char *s = "mg foo s v f t c k Oxyz h l q T30\r\n";
    CHECK_EQ(parse(s), strlen(s));
    CHECK(cmd.op == MC_OP_GET && cmd.meta && key_is("foo") && cmd.noreply && cmd.want_cas);
    CHECK(cmd.touch && cmd.exptime == 30 && cmd.m.ttl == 30);
    CHECK(cmd.m.norder == 8 && memcmp(cmd.m.order, "sftckOhl", 8) == 0);
    CHECK(cmd.m.opaque_len == 3 && memcmp(cmd.m.opaque, "xyz", 3) == 0);
    CHECK(cmd.m.present == (MC_MF('s') | MC_MF('v') | MC_MF('f') | MC_MF('t') | MC_MF('c') | MC_MF('k') |
                            MC_MF('O') | MC_MF('h') | MC_MF('l') | MC_MF('q') | MC_MF('T')));
    parse("mg foo N30 R10 u\r\n");
    CHECK(cmd.op == MC_OP_GET && cmd.m.vivify_ttl == 30 && cmd.m.recache_ttl == 10 && !cmd.touch);
    CHECK(cmd.m.norder == 0);
    parse("mg b v1 k2\r\n");                     /* bytes after a flag letter are ignored */
    CHECK(cmd.op == MC_OP_GET && cmd.m.norder == 1);
    parse("mg b\tv\r\n");                         /* a tab is part of the key */
    CHECK(cmd.op == MC_OP_GET && key_is("b\tv"));
    parse("mg b MX I C5 F5 J1 D2 P L\r\n");       /* ms/ma flags are accepted by mg */
    CHECK(cmd.op == MC_OP_GET);
}

TEST(mg_errors)
{
    CHECK_OUT("mg\r\n", "ERROR\r\n");
    CHECK_OUT("mg \r\n", "ERROR\r\n");
    CHECK_OUT("mg b v v\r\n", "CLIENT_ERROR duplicate flag\r\n");
    CHECK_OUT("mg b \x80\r\n", "CLIENT_ERROR duplicate flag\r\n");
    CHECK_OUT("mg b x\r\n", "CLIENT_ERROR invalid flag\r\n");
    CHECK_OUT("mg b E\r\n", "CLIENT_ERROR invalid flag\r\n");
    CHECK_OUT("mg b Tx\r\n", "CLIENT_ERROR bad token in command line format\r\n");
    CHECK_OUT("mg b T\r\n", "CLIENT_ERROR bad token in command line format\r\n");
    CHECK_OUT("mg b T5x\r\n", "CLIENT_ERROR bad token in command line format\r\n");
    CHECK_OUT("mg b Nx\r\n", "CLIENT_ERROR bad token in command line format\r\n");
    CHECK_OUT("mg b Rx\r\n", "CLIENT_ERROR bad token in command line format\r\n");
    CHECK_OUT("mg b Cx\r\n", "CLIENT_ERROR bad token in command line format\r\n");
    CHECK_OUT("mg b Fx\r\n", "CLIENT_ERROR bad command line format\r\n");
    CHECK_OUT("mg b Fx Tx\r\n", "CLIENT_ERROR bad token in command line format\r\n");
    CHECK_OUT("mg b Tx Fx\r\n", "CLIENT_ERROR bad token in command line format\r\n");
    CHECK_OUT("mg b Tx x\r\n", "CLIENT_ERROR invalid flag\r\n");
    CHECK_OUT("mg b MXY\r\n", "CLIENT_ERROR incorrect length for M token\r\n");
    CHECK_OUT("mg b Jx\r\n", "CLIENT_ERROR invalid numeric initial value\r\n");
    CHECK_OUT("mg b Dx\r\n", "CLIENT_ERROR invalid numeric delta value\r\n");
    CHECK_OUT("mg b q Dx\r\n", "CLIENT_ERROR invalid numeric delta value\r\n");
    CHECK_OUT("mg b O" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" "\r\n", "EN Oxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n");
    CHECK_OUT("mg b O" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" "\r\n", "CLIENT_ERROR opaque token too long\r\n");
    CHECK_OUT("mg b s t v f c k O1 h l u q N0 R0 T0 P L C1 F1\r\n",
              "CLIENT_ERROR options flags are too long\r\n");
    char line[300];
    snprintf(line, sizeof line, "mg %0251d v\r\n", 0);
    CHECK_OUT(line, "CLIENT_ERROR bad command line format\r\n");
    CHECK_OUT("mg a k v b\r\n", "CLIENT_ERROR error decoding key\r\n");
    CHECK_OUT("mg YQ b v\r\n", "CLIENT_ERROR error decoding key\r\n");
    CHECK_OUT("mg ==== b v\r\n", "CLIENT_ERROR error decoding key\r\n");
    CHECK_OUT("mg !!!! b v\r\n", "CLIENT_ERROR error decoding key\r\n");
    CHECK_OUT("mg YQ==x b k\r\n", "CLIENT_ERROR error decoding key\r\n");
    CHECK_OUT("mg Y Q== b v\r\n", "CLIENT_ERROR invalid flag\r\n");
}

TEST(mg_miss_replies)
{
    CHECK_OUT("mg b\r\n", "EN\r\n");
    CHECK_OUT("mg b v\r\n", "EN\r\n");
    CHECK_OUT("mg b q v\r\n", "");
    CHECK_OUT("mg b k Oab s t q\r\nmn\r\n", "MN\r\n");
    CHECK_OUT("mg b k Oab s t\r\n", "EN kb Oab\r\n");
    CHECK_OUT("mg bb  v  k\r\n", "EN kbb\r\n");
    CHECK_OUT("mg b O\r\n", "EN O\r\n");
    CHECK_OUT("mg bm9wZQ== b k Oxx\r\n", "EN kbm9wZQ== b Oxx\r\n");
    CHECK_OUT("mg 1234 b v\r\n", "EN\r\n");
    parse("mg bm9wZQ== b k\r\n");
    CHECK(key_is("nope") && cmd.m.key_base64);
}

TEST(mg_hit_replies)
{
    parse("mg a s v f t c k Oxyz h l\r\n");
    struct mc_result r = { .status = MC_ST_OK, .item = mkitem("a", "abc", 5, 54), .cas = 54,
                           .client_flags = 5, .nbytes = 3, .ttl = -1 };
    CHECK(strcmp(reply(&r), "VA 3 s3 f5 t-1 c54 ka Oxyz h0 l0\r\nabc\r\n") == 0);
    parse("mg a\r\n");
    CHECK(strcmp(reply(&r), "HD\r\n") == 0);
    parse("mg a q\r\n");                          /* a hit is answered even with q */
    CHECK(strcmp(reply(&r), "HD\r\n") == 0);
    parse("mg a t v h l\r\n");
    r.ttl = 30, r.hit_before = true, r.last_access = 13;
    CHECK(strcmp(reply(&r), "VA 3 t30 h1 l13\r\nabc\r\n") == 0);
    /* t before T shows the TTL from before the touch (memcached: "mg k t T30" -> t100) */
    parse("mg a t T30\r\n");
    CHECK(cmd.m.ttl_before_touch && cmd.touch && cmd.exptime == 30);
    r.ttl_before = 100;
    CHECK(strcmp(reply(&r), "HD t100\r\n") == 0);
    parse("mg a T30 t\r\n");
    CHECK(!cmd.m.ttl_before_touch);
    CHECK(strcmp(reply(&r), "HD t30\r\n") == 0);
    /* W, X, Z come last, as Z X W */
    parse("mg a c\r\n");
    r.win = r.stale = r.won = true;
    CHECK(strcmp(reply(&r), "HD c54 Z X W\r\n") == 0);
    r.win = r.stale = r.won = false;
    r.win = true;
    CHECK(strcmp(reply(&r), "HD c54 W\r\n") == 0);
    /* b: the key is echoed base64 when the item was stored with a binary key */
    parse("mg YmI= b k v\r\n");
    CHECK(key_is("bb"));
    r = (struct mc_result){ .status = MC_ST_OK, .item = mkitem("bb", "x", 0, 1), .nbytes = 1,
                            .key_binary = true };
    CHECK(strcmp(reply(&r), "VA 1 kYmI= b\r\nx\r\n") == 0);
    parse("mg bb k v\r\n");
    CHECK(strcmp(reply(&r), "VA 1 kYmI= b\r\nx\r\n") == 0);
    r.key_binary = false;                          /* stored by set: plain, even asked with b */
    parse("mg YmI= b v k\r\n");
    CHECK(strcmp(reply(&r), "VA 1 kbb\r\nx\r\n") == 0);
}

TEST(ms_parse)
{
    const char *s = "ms foo 3 T30 F7 c k Oo q\r\nabc\r\n";
    CHECK_EQ(parse(s), strlen(s));
    CHECK(cmd.op == MC_OP_STORE && cmd.meta && cmd.store_mode == MC_SET && key_is("foo"));
    CHECK(cmd.vlen == 3 && memcmp(cmd.value, "abc", 3) == 0 && cmd.exptime == 30 && cmd.client_flags == 7);
    CHECK(cmd.noreply && cmd.m.norder == 3 && memcmp(cmd.m.order, "ckO", 3) == 0);
    static const struct { const char *mode; enum mc_store_mode m; } modes[] = {
        { "", MC_SET }, { " MS", MC_SET }, { " ME", MC_ADD }, { " MA", MC_APPEND }, { " MP", MC_PREPEND },
        { " MR", MC_REPLACE }, { " MS C5", MC_CAS }, { " MR C5", MC_CAS }, { " C5", MC_CAS },
        { " ME C5", MC_ADD }, { " MA C5", MC_APPEND },
    };
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        char line[64];
        snprintf(line, sizeof line, "ms k 1%s\r\nx\r\n", modes[i].mode);
        CHECK_EQ(parse(line), strlen(line));
        CHECK(cmd.op == MC_OP_STORE && cmd.store_mode == modes[i].m);
        CHECK(!strstr(modes[i].mode, "C5") || cmd.cas == 5);
    }
    parse("ms k 1 F4294967296\r\nx\r\n");
    CHECK(cmd.op == MC_OP_STORE && cmd.client_flags == 0);
    parse("ms k 1 I N30 MA\r\nx\r\n");
    CHECK(cmd.op == MC_OP_STORE && (cmd.m.present & MC_MF('I')) && cmd.m.vivify_ttl == 30);
    parse("ms YmI= 1 b\r\nx\r\n");
    CHECK(cmd.op == MC_OP_STORE && key_is("bb") && cmd.m.key_base64);
    parse("ms bb 0\r\n\r\n");
    CHECK(cmd.op == MC_OP_STORE && cmd.vlen == 0);
    CHECK_EQ(parse("ms bb 2\r\nab\r"), 0);
    parse("ms b 1 s t v f c k O1 h l u q N0 R0 T0 P L\r\nx\r\n");   /* 20 tokens: allowed */
    CHECK(cmd.op == MC_OP_STORE);
}

TEST(ms_errors)
{
    /* before the length is known: the data is read as the next command */
    CHECK_OUT("ms\r\n", "ERROR\r\n");
    CHECK_OUT("ms b\r\nx\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    CHECK_OUT("ms b x\r\nx\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    CHECK_OUT("ms b -1\r\nx\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    CHECK_OUT("ms b 1x\r\nx\r\n", "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    CHECK_OUT("ms b 2147483646\r\n", "CLIENT_ERROR bad command line format\r\n");
    char line[300];
    snprintf(line, sizeof line, "ms %0251d 1\r\nx\r\n", 0);
    CHECK_OUT(line, "CLIENT_ERROR bad command line format\r\nERROR\r\n");
    CHECK_OUT("ms b 1 s t v f c k O1 h l u q N0 R0 T0 P L C1 F1 E1 J1\r\nx\r\n",
              "CLIENT_ERROR options flags too long\r\nERROR\r\n");
    /* after it: the data block is swallowed */
    CHECK_OUT("ms b 1 Tx\r\nx\r\n", "CLIENT_ERROR bad token in command line format\r\n");
    CHECK_OUT("ms b 1 x\r\nx\r\n", "CLIENT_ERROR invalid flag\r\n");
    CHECK_OUT("ms b 1 noreply\r\nx\r\n", "CLIENT_ERROR invalid flag\r\n");
    CHECK_OUT("ms b 1 S1\r\nx\r\n", "CLIENT_ERROR invalid flag\r\n");
    CHECK_OUT("ms b 1 v v\r\nx\r\n", "CLIENT_ERROR duplicate flag\r\n");
    CHECK_OUT("ms b 1 Fx\r\nx\r\n", "CLIENT_ERROR bad command line format\r\n");
    CHECK_OUT("ms b 1 F-1\r\nx\r\n", "CLIENT_ERROR bad command line format\r\n");
    CHECK_OUT("ms b 1 Ccx\r\nx\r\n", "CLIENT_ERROR bad token in command line format\r\n");
    CHECK_OUT("ms b 1 MX\r\nx\r\n", "CLIENT_ERROR invalid mode for ms M token\r\n");
    CHECK_OUT("ms b 1 MX q\r\nx\r\n", "CLIENT_ERROR invalid mode for ms M token\r\n");
    CHECK_OUT("ms b 1 Ms\r\nx\r\n", "CLIENT_ERROR invalid mode for ms M token\r\n");
    CHECK_OUT("ms b 1 c k Oq b\r\nx\r\n", "CLIENT_ERROR error decoding key\r\n");
    CHECK_OUT("ms b 1 O" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" "\r\nx\r\n", "CLIENT_ERROR opaque token too long\r\n");
    CHECK_OUT("ms b 1 MX O" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" "\r\nx\r\n",
              "CLIENT_ERROR invalid mode for ms M token\r\n");
    CHECK_OUT("ms b 1 O" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" " MX\r\nx\r\n",
              "CLIENT_ERROR invalid mode for ms M token\r\n");
    CHECK_OUT("ms b 1 O" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" " Tx\r\nx\r\n",
              "CLIENT_ERROR bad token in command line format\r\n");
    /* a bad chunk is reported even with q */
    CHECK_OUT("ms b 1\r\nxyz\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n");
    CHECK_OUT("ms b 1 q\r\nxyz\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n");
    /* too large, even with q */
    CHECK_EQ(parse("ms b 2000000 q\r\n"), strlen("ms b 2000000 q\r\n"));
    CHECK_EQ(cmd.swallow, 2000002);
    static char big[2000100];
    int n = snprintf(big, sizeof big, "ms b 2000000 q\r\n");
    memset(big + n, 'x', 2000000);
    memcpy(big + n + 2000000, "\r\nmn\r\n", 6);
    CHECK(strcmp(drive_n(big, (size_t)n + 2000006, &miss), "SERVER_ERROR object too large for cache\r\nMN\r\n") == 0);
    n = snprintf(big, sizeof big, "ms b 2000000 MX\r\n");
    memset(big + n, 'x', 2000000);
    memcpy(big + n + 2000000, "\r\n", 2);
    CHECK(strcmp(drive_n(big, (size_t)n + 2000002, &miss), "CLIENT_ERROR invalid mode for ms M token\r\n") == 0);
}

TEST(ms_replies)
{
    struct mc_result r = { .status = MC_ST_OK, .cas = 68 };
    parse("ms YmI= 1 c k Oq b\r\nx\r\n");
    CHECK(strcmp(reply(&r), "HD c68 kYmI= b Oq\r\n") == 0);
    parse("ms zz 1 MR c k O1\r\nx\r\n");
    CHECK(strcmp(reply(&r), "HD c68 kzz O1\r\n") == 0);
    r.status = MC_ST_NOT_STORED, r.cas = 0;
    CHECK(strcmp(reply(&r), "NS c0 kzz O1\r\n") == 0);
    parse("ms b 1 q\r\nx\r\n");
    r.status = MC_ST_OK;
    CHECK(strcmp(reply(&r), "") == 0);
    r.status = MC_ST_NOT_STORED;
    CHECK(strcmp(reply(&r), "NS\r\n") == 0);
    r.status = MC_ST_EXISTS;
    CHECK(strcmp(reply(&r), "EX\r\n") == 0);
    r.status = MC_ST_MISS;
    CHECK(strcmp(reply(&r), "NF\r\n") == 0);
    r.status = MC_ST_TOO_LARGE;
    CHECK(strcmp(reply(&r), "SERVER_ERROR object too large for cache\r\n") == 0);
    r.status = MC_ST_NO_MEMORY;
    CHECK(strcmp(reply(&r), "SERVER_ERROR out of memory storing object\r\n") == 0);
}

TEST(md)
{
    parse("md foo q C9 I T30 k O1\r\n");
    CHECK(cmd.op == MC_OP_DELETE && cmd.meta && cmd.noreply && cmd.cas == 9 && key_is("foo"));
    CHECK((cmd.m.present & MC_MF('I')) && cmd.m.ttl == 30 && cmd.m.norder == 2);
    CHECK_OUT("md\r\n", "ERROR\r\n");
    CHECK_OUT("md zz\r\n", "NF\r\n");
    CHECK_OUT("md zz q\r\nmn\r\n", "NF\r\nMN\r\n");
    CHECK_OUT("md zz k O1\r\n", "NF kzz O1\r\n");
    CHECK_OUT("md b C1 k\r\n", "NF kb\r\n");
    CHECK_OUT("md b x\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n");
    CHECK_OUT("md b Tx\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n");
    CHECK_OUT("md b v v\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n");
    CHECK_OUT("md ab b\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n");
    CHECK_OUT("md b O" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" "\r\n", "CLIENT_ERROR opaque token too long\r\n");
    CHECK_OUT("md b s t v f c k O1 h l u q N0 R0 T0 P L C1 F1\r\n", "CLIENT_ERROR options flags too long\r\n");
    parse("md zz O1 k\r\n");
    struct mc_result r = { .status = MC_ST_OK };
    CHECK(strcmp(reply(&r), "HD O1 kzz\r\n") == 0);
    r.status = MC_ST_EXISTS;
    CHECK(strcmp(reply(&r), "EX O1 kzz\r\n") == 0);
    parse("md zz q\r\n");
    CHECK(strcmp(reply(&r), "EX\r\n") == 0);
    r.status = MC_ST_OK;
    CHECK(strcmp(reply(&r), "") == 0);
}

TEST(ma)
{
    parse("ma n\r\n");
    CHECK(cmd.op == MC_OP_ARITH && cmd.meta && cmd.arith_mode == MC_INCR && cmd.delta == 1 && !cmd.arith_create);
    parse("ma n N30 J10 D5 MD T7 C3 q\r\n");
    CHECK(cmd.op == MC_OP_ARITH && cmd.arith_mode == MC_DECR && cmd.delta == 5 && cmd.initial == 10);
    CHECK(cmd.arith_create && cmd.exptime == 30 && cmd.m.ttl == 7 && cmd.cas == 3 && cmd.noreply);
    parse("ma n M-\r\n");
    CHECK(cmd.arith_mode == MC_DECR);
    parse("ma n M+\r\n");
    CHECK(cmd.arith_mode == MC_INCR);
    parse("ma n MI D18446744073709551615\r\n");
    CHECK(cmd.op == MC_OP_ARITH && cmd.delta == UINT64_MAX);
    CHECK_OUT("ma\r\n", "ERROR\r\n");
    CHECK_OUT("ma zz Mx\r\n", "CLIENT_ERROR invalid mode for ma M token\r\n");
    CHECK_OUT("ma zz Md v\r\n", "CLIENT_ERROR invalid mode for ma M token\r\n");
    CHECK_OUT("ma zz Mi v\r\n", "CLIENT_ERROR invalid mode for ma M token\r\n");
    CHECK_OUT("ma b MX O" "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" "\r\n", "CLIENT_ERROR invalid mode for ma M token\r\n");
    CHECK_OUT("ma zz Dx\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n");
    CHECK_OUT("ma zz D18446744073709551616\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n");
    CHECK_OUT("ma zz Jx\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n");
    CHECK_OUT("ma zz x\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n");
    CHECK_OUT("ma zz v v\r\n", "CLIENT_ERROR invalid or duplicate flag\r\n");
    CHECK_OUT("ma b s t v f c k O1 h l u q N0 R0 T0 P L C1 F1\r\n", "CLIENT_ERROR options flags too long\r\n");
    CHECK_OUT("ma zz\r\n", "NF\r\n");
    CHECK_OUT("ma zz q\r\nmn\r\n", "NF\r\nMN\r\n");
    CHECK_OUT("ma zz O1 k\r\n", "NF O1 kzz\r\n");
    parse("ma zz v t c k O1\r\n");
    struct mc_result r = { .status = MC_ST_OK, .number = 11, .cas = 76, .ttl = -1 };
    CHECK(strcmp(reply(&r), "VA 2 t-1 c76 kzz O1\r\n11\r\n") == 0);
    parse("ma zz t c\r\n");
    CHECK(strcmp(reply(&r), "HD t-1 c76\r\n") == 0);
    parse("ma zz C1 O1 k v c t\r\n");
    r.status = MC_ST_EXISTS;
    CHECK(strcmp(reply(&r), "EX O1 kzz\r\n") == 0);
    r.status = MC_ST_NON_NUMERIC;
    CHECK(strcmp(reply(&r), "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n") == 0);
    parse("ma zz q v\r\n");
    CHECK(strcmp(reply(&r), "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n") == 0);
    r.status = MC_ST_OK;
    CHECK(strcmp(reply(&r), "") == 0);
    r.status = MC_ST_NOT_STORED;
    CHECK(strcmp(reply(&r), "NS\r\n") == 0);
}

TEST(me)
{
    parse("me zz\r\n");
    CHECK(cmd.op == MC_OP_DEBUG && key_is("zz"));
    struct mc_result r = { .status = MC_ST_OK, .debug_exp = -1, .cas = 89, .cls = 1, .item_size = 62 };
    CHECK(strcmp(reply(&r), "ME zz exp=-1 la=0 cas=89 fetch=no cls=1 size=62\r\n") == 0);
    r.hit_before = true, r.debug_exp = -100, r.last_access = 27;
    CHECK(strcmp(reply(&r), "ME zz exp=-100 la=27 cas=89 fetch=yes cls=1 size=62\r\n") == 0);
    parse("me YmI= b\r\n");
    CHECK(cmd.op == MC_OP_DEBUG && key_is("bb"));
    r.key_binary = true;
    CHECK(strcmp(reply(&r), "ME YmI= exp=-100 la=27 cas=89 fetch=yes cls=1 size=62\r\n") == 0);
    parse("me zz x\r\n");
    CHECK(cmd.op == MC_OP_DEBUG && key_is("zz"));
    CHECK_OUT("me nope\r\n", "EN\r\n");
    CHECK_OUT("me\r\n", "CLIENT_ERROR bad command line format\r\n");
    CHECK_OUT("me zz b\r\n", "CLIENT_ERROR bad command line format\r\n");
    char line[300];
    snprintf(line, sizeof line, "me %0251d\r\n", 0);
    CHECK_OUT(line, "CLIENT_ERROR bad command line format\r\n");
}

TEST(base64)
{
    /* round trips of every length through the decoder and the reply encoder */
    uint8_t raw[64], dec[64];
    for (int i = 0; i < 64; i++)
        raw[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 1; n <= 60; n++) {
        struct mc_out o;
        mc_out_init(&o);
        txt_out_b64(&o, raw, n);
        CHECK_EQ(o.len, (n + 2) / 3 * 4);
        CHECK_EQ(txt_b64_decode(o.buf, o.len, dec, sizeof dec), n);
        CHECK(memcmp(dec, raw, n) == 0);
        mc_out_free(&o);
    }
    CHECK_EQ(txt_b64_decode((const uint8_t *)"YQ==", 4, dec, 8), 1);
    CHECK_EQ(txt_b64_decode((const uint8_t *)"Y!Q==", 5, dec, 8), 1);   /* others skipped */
    CHECK_EQ(txt_b64_decode((const uint8_t *)"A===", 4, dec, 8), 0);
    CHECK_EQ(txt_b64_decode((const uint8_t *)"YQ", 2, dec, 8), 0);
}

TEST(pipeline)
{
    /* several commands in one buffer, as a client pipelines them */
    const char *s = "set a 0 0 1 noreply\r\nx\r\nget a b\r\nmg a v q\r\nmn\r\ndelete a\r\nversion\r\n";
    CHECK(strcmp(drive(s), "END\r\nMN\r\nNOT_FOUND\r\nVERSION 1.6.18\r\n") == 0);
    /* a partial command at the end waits */
    size_t n = strlen(s);
    CHECK(strcmp(drive_n(s, n - 3, &miss), "END\r\nMN\r\nNOT_FOUND\r\n") == 0);
}

TEST_MAIN()
