/*
 * The memcached binary protocol, as memcached 1.6.18 speaks it (see
 * binary.h). Every rule below was checked against the real server:
 *
 * - A request is a 24-byte header, then extras, key and value. The server
 *   reads header + extras + key before it looks at the opcode, so nothing is
 *   answered until those bytes are there.
 * - keylen or keylen + extlen beyond bodylen: "Unknown command" and close.
 *   A key longer than 250 bytes: "Invalid arguments" and close (before the
 *   opcode is even looked at). Wrong extras/key/body lengths for a known
 *   opcode: "Invalid arguments" and close.
 * - An unknown opcode (VERBOSITY, SASL without SASL, 0x1f, 0x25-0xff ...)
 *   answers "Unknown command" and then swallows bodylen bytes counted after
 *   the extras and key it already read: 24 + extlen + keylen + bodylen bytes
 *   in all (memcached's own accounting, kept so streams stay in step).
 * - TOUCH, GAT* and STAT read only header + extras + key; any further body
 *   bytes are parsed as the next request.
 * - A value over the item size limit answers "Too large." after the whole
 *   body has arrived and been skipped; the connection stays up.
 * - Errors are always answered, quiet variant or not; a quiet command
 *   answers nothing on success, and a quiet get nothing on a miss (hits are
 *   sent). GETK/GATK misses answer status 1 with the key and no message.
 * - A nonzero header cas turns SET, ADD and REPLACE into a compare-and-swap
 *   (ADD included); APPEND, PREPEND, DELETE, INCR and DECR compare it too.
 */
#include "binary.h"
#include "store.h"
#include "../../runtime/shoal.h"

/* ---- big-endian helpers ---- */

static inline uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t ld64(const uint8_t *p) { return (uint64_t)ld32(p) << 32 | ld32(p + 4); }
static inline void st16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v; }
static inline void st32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}
static inline void st64(uint8_t *p, uint64_t v) { st32(p, (uint32_t)(v >> 32)), st32(p + 4, (uint32_t)v); }

/* ---- item size limit: memcached's item_size_ok() ---- */

/* Header of an item (48 bytes) + key + its NUL + 4 bytes of flags when nonzero + value + "\r\n"
   + 8 bytes of cas must fit in the largest slab class (-I). Measured on 1.6.18 -I 1m: a value of
   1048576 - 59 - keylen bytes is stored with flags 0, one byte less with nonzero flags. */
#define MC_BIN_ITEM_OVERHEAD 59u

static bool too_large(uint32_t keylen, uint64_t vlen, uint32_t flags, uint32_t item_size_max)
{
    uint64_t total = MC_BIN_ITEM_OVERHEAD + (uint64_t)keylen + vlen + (flags ? 4u : 0u);
    return total > item_size_max;
}

/* ---- parsing ---- */

static size_t parse_error(struct mc_cmd *cmd, enum mc_error err, uint16_t status, bool close, bool *fatal,
                          size_t consumed)
{
    cmd->op = MC_OP_ERROR;
    cmd->error = err;
    cmd->bin_status = status;
    if (close)
        *fatal = true;
    return consumed;
}

/* A request answered with an error whose body (want bytes in all) is only skipped. Without
   swallow, nothing happens until all of it is in buf; with it, the reply can go now and the
   caller discards *swallow more bytes as they arrive. */
static size_t skip_error(struct mc_cmd *cmd, enum mc_error err, uint16_t status, bool *fatal, uint64_t want,
                         size_t len, uint64_t *swallow)
{
    if (!swallow) {
        if (len < want)
            return 0;
        return parse_error(cmd, err, status, false, fatal, (size_t)want);
    }
    size_t have = want < len ? (size_t)want : len;
    *swallow = want - have;
    return parse_error(cmd, err, status, false, fatal, have);
}

static bool prefix(const uint8_t *key, size_t keylen, const char *p)
{
    size_t n = strlen(p);
    return keylen >= n && memcmp(key, p, n) == 0;
}

static bool exact(const uint8_t *key, size_t keylen, const char *p)
{
    return keylen == strlen(p) && memcmp(key, p, keylen) == 0;
}

static void set_group(struct mc_cmd *cmd, const char *g)
{
    size_t n = strlen(g);
    if (n >= sizeof cmd->stats_group)
        n = sizeof cmd->stats_group - 1;
    memcpy(cmd->stats_group, g, n);
    cmd->stats_group[n] = '\0';
}

/* STAT's key picks a group the way memcached's process_bin_stat does: "reset", "settings" and
   "detail ..." by prefix, the rest (items, slabs, sizes, sizes_enable, sizes_disable) exactly.
   Anything else (conns included: binary has no conns stats) answers KEY_ENOENT. */
static bool stats_group(struct mc_cmd *cmd, const uint8_t *key, size_t keylen)
{
    static const char *const exact_groups[] = { "items", "slabs", "sizes", "sizes_enable", "sizes_disable" };
    if (keylen == 0)
        set_group(cmd, "");
    else if (prefix(key, keylen, "reset"))
        set_group(cmd, "reset");
    else if (prefix(key, keylen, "settings"))
        set_group(cmd, "settings");
    else if (prefix(key, keylen, "detail dump"))
        set_group(cmd, "detail dump");
    else if (prefix(key, keylen, "detail on"))
        set_group(cmd, "detail on");
    else if (prefix(key, keylen, "detail off"))
        set_group(cmd, "detail off");
    else {
        for (size_t i = 0; i < sizeof exact_groups / sizeof exact_groups[0]; i++) {
            if (exact(key, keylen, exact_groups[i])) {
                set_group(cmd, exact_groups[i]);
                return true;
            }
        }
        return false;
    }
    return true;
}

static size_t parse(const uint8_t *buf, size_t len, uint32_t item_size_max, struct mc_cmd *cmd, bool *fatal,
                    uint64_t *swallow)
{
    *fatal = false;
    if (len < MC_BIN_HEADER)
        return 0;
    memset(cmd, 0, sizeof *cmd);
    cmd->binary = true;
    cmd->bin_opcode = buf[1];
    cmd->opaque = ld32(buf + 12);
    if (buf[0] != MC_BIN_REQ_MAGIC) {
        /* memcached closes without a word */
        return parse_error(cmd, MC_ERR_NONE, 0, true, fatal, MC_BIN_HEADER);
    }
    uint32_t keylen = ld16(buf + 2);
    uint32_t extlen = buf[4];
    uint64_t bodylen = ld32(buf + 8);
    uint64_t cas = ld64(buf + 16);

    /* header, extras and key are read before anything else happens */
    size_t head = MC_BIN_HEADER + extlen + keylen;
    if (len < head)
        return 0;
    if (keylen > bodylen || keylen + extlen > bodylen)
        return parse_error(cmd, MC_ERR_UNKNOWN_COMMAND, MC_BIN_UNKNOWN_COMMAND, true, fatal, head);
    if (keylen > MC_KEY_MAX)
        return parse_error(cmd, MC_ERR_KEY_TOO_LONG, MC_BIN_EINVAL, true, fatal, head);

    const uint8_t *ext = buf + MC_BIN_HEADER;
    const uint8_t *key = ext + extlen;
    const uint8_t *value = key + keylen;
    uint64_t vlen64 = bodylen - keylen - extlen;
    uint64_t total64 = MC_BIN_HEADER + bodylen;     /* <= 2^32 + 23: fits a 64-bit size_t */
    size_t total = (size_t)total64;
    cmd->key = key;
    cmd->keylen = (uint8_t)keylen;
    cmd->cas = cas;

    uint8_t op = buf[1];
    switch (op) {
    case MC_BIN_GETQ:
    case MC_BIN_GETKQ:
        cmd->noreply = true;
        /* fall through */
    case MC_BIN_GET:
    case MC_BIN_GETK:
        if (extlen != 0 || bodylen != keylen || keylen == 0)
            goto invalid;
        cmd->op = MC_OP_GET;
        cmd->want_key = op == MC_BIN_GETK || op == MC_BIN_GETKQ;
        cmd->cas = 0;
        return total;

    case MC_BIN_SETQ:
    case MC_BIN_ADDQ:
    case MC_BIN_REPLACEQ:
        cmd->noreply = true;
        /* fall through */
    case MC_BIN_SET:
    case MC_BIN_ADD:
    case MC_BIN_REPLACE:
        if (extlen != 8 || keylen == 0 || bodylen < keylen + 8u)
            goto invalid;
        cmd->client_flags = ld32(ext);
        cmd->exptime = ld32(ext + 4);
        if (cas)
            cmd->store_mode = MC_CAS;
        else if (op == MC_BIN_SET || op == MC_BIN_SETQ)
            cmd->store_mode = MC_SET;
        else if (op == MC_BIN_ADD || op == MC_BIN_ADDQ)
            cmd->store_mode = MC_ADD;
        else
            cmd->store_mode = MC_REPLACE;
        /* a refused value keeps its mode and length: a SET's old item is unlinked, as memcached does */
        cmd->vlen = (uint32_t)vlen64;
        if (too_large(keylen, vlen64, cmd->client_flags, item_size_max))
            return skip_error(cmd, MC_ERR_TOO_LARGE, MC_BIN_E2BIG, fatal, total64, len, swallow);
        if (len < total)
            return 0;
        cmd->op = MC_OP_STORE;
        cmd->value = value;
        return total;

    case MC_BIN_APPENDQ:
    case MC_BIN_PREPENDQ:
        cmd->noreply = true;
        /* fall through */
    case MC_BIN_APPEND:
    case MC_BIN_PREPEND:
        if (keylen == 0 || extlen != 0)
            goto invalid;
        if (too_large(keylen, vlen64, 0, item_size_max))
            return skip_error(cmd, MC_ERR_TOO_LARGE, MC_BIN_E2BIG, fatal, total64, len, swallow);
        if (len < total)
            return 0;
        cmd->op = MC_OP_STORE;
        cmd->store_mode = op == MC_BIN_APPEND || op == MC_BIN_APPENDQ ? MC_APPEND : MC_PREPEND;
        cmd->value = value;
        cmd->vlen = (uint32_t)vlen64;
        return total;

    case MC_BIN_DELETEQ:
        cmd->noreply = true;
        /* fall through */
    case MC_BIN_DELETE:
        if (keylen == 0 || extlen != 0 || bodylen != keylen)
            goto invalid;
        cmd->op = MC_OP_DELETE;
        return total;

    case MC_BIN_INCREMENTQ:
    case MC_BIN_DECREMENTQ:
        cmd->noreply = true;
        /* fall through */
    case MC_BIN_INCREMENT:
    case MC_BIN_DECREMENT:
        if (keylen == 0 || extlen != 20 || bodylen != keylen + 20u)
            goto invalid;
        cmd->op = MC_OP_ARITH;
        cmd->arith_mode = op == MC_BIN_INCREMENT || op == MC_BIN_INCREMENTQ ? MC_INCR : MC_DECR;
        cmd->delta = ld64(ext);
        cmd->initial = ld64(ext + 8);
        {
            uint32_t exp = ld32(ext + 16);
            cmd->arith_create = exp != 0xffffffffu;
            cmd->exptime = cmd->arith_create ? exp : 0;
        }
        return total;

    case MC_BIN_QUITQ:
        cmd->noreply = true;
        /* fall through */
    case MC_BIN_QUIT:
        if (keylen != 0 || extlen != 0 || bodylen != 0)
            goto invalid;
        cmd->op = MC_OP_QUIT;
        cmd->cas = 0;
        return total;

    case MC_BIN_FLUSHQ:
        cmd->noreply = true;
        /* fall through */
    case MC_BIN_FLUSH:
        if (keylen != 0 || bodylen != extlen || (extlen != 0 && extlen != 4))
            goto invalid;
        cmd->op = MC_OP_FLUSH_ALL;
        cmd->flush_delay = extlen ? (int64_t)ld32(ext) : 0;
        cmd->cas = 0;
        return total;

    case MC_BIN_NOOP:
    case MC_BIN_VERSION:
        if (keylen != 0 || extlen != 0 || bodylen != 0)
            goto invalid;
        cmd->op = op == MC_BIN_NOOP ? MC_OP_NOOP : MC_OP_VERSION;
        cmd->cas = 0;
        return total;

    case MC_BIN_STAT:
        if (extlen != 0)
            goto invalid;
        cmd->cas = 0;
        if (!stats_group(cmd, key, keylen))
            return parse_error(cmd, MC_ERR_NONE, MC_BIN_KEY_ENOENT, false, fatal, head);
        cmd->op = MC_OP_STATS;
        return head;    /* a value, if any, is read as the next request */

    case MC_BIN_TOUCH:
    case MC_BIN_GAT:
    case MC_BIN_GATQ:
    case MC_BIN_GATK:
    case MC_BIN_GATKQ:
        if (extlen != 4 || keylen == 0)
            goto invalid;
        cmd->exptime = ld32(ext);
        cmd->cas = 0;
        if (op == MC_BIN_TOUCH) {
            cmd->op = MC_OP_TOUCH;
        } else {
            cmd->op = MC_OP_GET;
            cmd->touch = true;
            cmd->want_key = op == MC_BIN_GATK || op == MC_BIN_GATKQ;
            cmd->noreply = op == MC_BIN_GATQ || op == MC_BIN_GATKQ;
        }
        return head;    /* as for STAT */

    case MC_BIN_SASL_LIST_MECHS:
        /* no SASL: unknown once the request is well formed */
        if (keylen != 0 || extlen != 0 || bodylen != 0)
            goto invalid;
        cmd->noreply = false;
        return parse_error(cmd, MC_ERR_UNKNOWN_COMMAND, MC_BIN_UNKNOWN_COMMAND, false, fatal, total);

    case MC_BIN_SASL_AUTH:
    case MC_BIN_SASL_STEP:
        if (extlen != 0 || keylen == 0)
            goto invalid;
        return skip_error(cmd, MC_ERR_UNKNOWN_COMMAND, MC_BIN_UNKNOWN_COMMAND, fatal, total64, len, swallow);

    default: {
        /* answered, then bodylen more bytes after extras and key are swallowed */
        cmd->noreply = false;
        return skip_error(cmd, MC_ERR_UNKNOWN_COMMAND, MC_BIN_UNKNOWN_COMMAND, fatal, (uint64_t)head + bodylen, len,
                          swallow);
    }
    }
invalid:
    cmd->noreply = false;
    return parse_error(cmd, MC_ERR_INVALID_ARGS, MC_BIN_EINVAL, true, fatal, head);
}

size_t mc_binary_parse(const uint8_t *buf, size_t len, uint32_t item_size_max, struct mc_cmd *cmd, bool *fatal)
{
    return parse(buf, len, item_size_max, cmd, fatal, NULL);
}

size_t mc_binary_parse_early(const uint8_t *buf, size_t len, uint32_t item_size_max, struct mc_cmd *cmd, bool *fatal,
                             uint64_t *swallow)
{
    *swallow = 0;
    return parse(buf, len, item_size_max, cmd, fatal, swallow);
}

/* ---- replies ---- */

static void header(struct mc_out *o, const struct mc_cmd *cmd, uint16_t status, uint8_t extlen, uint16_t keylen,
                   uint32_t bodylen, uint64_t cas)
{
    uint8_t *p = mc_out_reserve(o, MC_BIN_HEADER);
    if (!p)
        return;
    p[0] = MC_BIN_RES_MAGIC;
    p[1] = cmd->bin_opcode;
    st16(p + 2, keylen);
    p[4] = extlen;
    p[5] = 0;                   /* raw bytes */
    st16(p + 6, status);
    st32(p + 8, bodylen);
    st32(p + 12, cmd->opaque);
    st64(p + 16, cas);
    mc_out_advance(o, MC_BIN_HEADER);
}

static const char *status_message(uint16_t status)
{
    switch (status) {
    case MC_BIN_KEY_ENOENT: return "Not found";
    case MC_BIN_KEY_EEXISTS: return "Data exists for key.";
    case MC_BIN_E2BIG: return "Too large.";
    case MC_BIN_EINVAL: return "Invalid arguments";
    case MC_BIN_NOT_STORED: return "Not stored.";
    case MC_BIN_DELTA_BADVAL: return "Non-numeric server-side value for incr or decr";
    case MC_BIN_UNKNOWN_COMMAND: return "Unknown command";
    case MC_BIN_ENOMEM: return "Out of memory";
    case MC_BIN_AUTH_ERROR: return "Auth failure.";
    default: return "";
    }
}

static void error_msg(struct mc_out *o, const struct mc_cmd *cmd, uint16_t status, const char *msg)
{
    size_t n = strlen(msg);
    header(o, cmd, status, 0, 0, (uint32_t)n, 0);
    mc_out_append(o, msg, n);
}

static void error_status(struct mc_out *o, const struct mc_cmd *cmd, uint16_t status)
{
    error_msg(o, cmd, status, status_message(status));
}

/* memcached strips "SERVER_ERROR " from its text out-of-memory message and sends the rest. */
static const char *oom_message(const struct mc_cmd *cmd)
{
    switch (cmd->op) {
    case MC_OP_STORE: return "Out of memory allocating item";
    case MC_OP_ARITH: return "Out of memory incrementing value";
    case MC_OP_STATS: return "Out of memory generating stats";
    default: return "Out of memory";
    }
}

static void value_reply(struct mc_out *o, const struct mc_cmd *cmd, const struct mc_result *res, bool with_value)
{
    const uint8_t *key = cmd->key;
    uint16_t keylen = 0;
    uint32_t vlen = with_value && res->item ? res->nbytes : 0;
    if (cmd->want_key && with_value) {
        keylen = cmd->keylen;
        if (res->item) {
            key = mc_item_key(res->item);
            keylen = res->item->keylen;
        }
    }
    header(o, cmd, MC_BIN_SUCCESS, 4, keylen, 4u + keylen + vlen, res->cas);
    uint8_t *p = mc_out_reserve(o, 4);
    if (!p)
        return;
    st32(p, res->client_flags);
    mc_out_advance(o, 4);
    if (keylen)
        mc_out_append(o, key, keylen);
    if (vlen)
        mc_out_append(o, mc_item_value(res->item), vlen);
}

/* The status a failed store answers (memcached's complete_update_bin and process_bin_update). */
static uint16_t store_failure(const struct mc_cmd *cmd, enum mc_status st)
{
    bool add = cmd->store_mode == MC_ADD, replace = cmd->store_mode == MC_REPLACE;
    bool whole = cmd->store_mode != MC_APPEND && cmd->store_mode != MC_PREPEND;
    switch (st) {
    case MC_ST_EXISTS: return MC_BIN_KEY_EEXISTS;
    case MC_ST_MISS: return MC_BIN_KEY_ENOENT;
    case MC_ST_TOO_LARGE:
        /* set/add/replace/cas: the new item could not be allocated at all */
        if (whole)
            return MC_BIN_E2BIG;
        return MC_BIN_NOT_STORED;
    case MC_ST_NO_MEMORY:
        if (whole)
            return MC_BIN_ENOMEM;
        return MC_BIN_NOT_STORED;
    default:
        return add ? MC_BIN_KEY_EEXISTS : replace ? MC_BIN_KEY_ENOENT : MC_BIN_NOT_STORED;
    }
}

void mc_binary_reply(struct mc_out *o, const struct mc_cmd *cmd, const struct mc_result *res)
{
    uint16_t status;
    switch (cmd->op) {
    case MC_OP_GET:
        if (res->status == MC_ST_OK) {
            value_reply(o, cmd, res, true);
            return;
        }
        if (res->status == MC_ST_MISS) {
            if (cmd->noreply)
                return;
            if (cmd->want_key) {
                header(o, cmd, MC_BIN_KEY_ENOENT, 0, cmd->keylen, cmd->keylen, 0);
                mc_out_append(o, cmd->key, cmd->keylen);
                return;
            }
            status = MC_BIN_KEY_ENOENT;
            break;
        }
        status = res->status == MC_ST_NO_MEMORY ? MC_BIN_ENOMEM : MC_BIN_KEY_ENOENT;
        break;

    case MC_OP_TOUCH:
        if (res->status == MC_ST_OK) {
            value_reply(o, cmd, res, false);
            return;
        }
        status = res->status == MC_ST_NO_MEMORY ? MC_BIN_ENOMEM : MC_BIN_KEY_ENOENT;
        break;

    case MC_OP_STORE:
        if (res->status == MC_ST_OK) {
            if (!cmd->noreply)
                header(o, cmd, MC_BIN_SUCCESS, 0, 0, 0, res->cas);
            return;
        }
        status = store_failure(cmd, res->status);
        break;

    case MC_OP_DELETE:
        if (res->status == MC_ST_OK) {
            if (!cmd->noreply)
                header(o, cmd, MC_BIN_SUCCESS, 0, 0, 0, 0);
            return;
        }
        status = res->status == MC_ST_EXISTS ? MC_BIN_KEY_EEXISTS : MC_BIN_KEY_ENOENT;
        break;

    case MC_OP_ARITH:
        if (res->status == MC_ST_OK) {
            if (cmd->noreply)
                return;
            header(o, cmd, MC_BIN_SUCCESS, 0, 0, 8, res->cas);
            uint8_t *p = mc_out_reserve(o, 8);
            if (!p)
                return;
            st64(p, res->number);
            mc_out_advance(o, 8);
            return;
        }
        switch (res->status) {
        case MC_ST_NON_NUMERIC: status = MC_BIN_DELTA_BADVAL; break;
        case MC_ST_EXISTS: status = MC_BIN_KEY_EEXISTS; break;
        case MC_ST_NOT_STORED: status = MC_BIN_NOT_STORED; break;
        case MC_ST_NO_MEMORY:
        case MC_ST_TOO_LARGE: status = MC_BIN_ENOMEM; break;
        default: status = MC_BIN_KEY_ENOENT; break;
        }
        break;

    case MC_OP_STATS:
        /* an unknown group; a known one is answered with mc_binary_stat/mc_binary_stats_end */
        status = res->status == MC_ST_NO_MEMORY ? MC_BIN_ENOMEM : MC_BIN_KEY_ENOENT;
        break;

    default:
        return;
    }
    if (status == MC_BIN_ENOMEM)
        error_msg(o, cmd, status, oom_message(cmd));
    else
        error_status(o, cmd, status);
}

void mc_binary_error(struct mc_out *o, const struct mc_cmd *cmd)
{
    uint16_t status = cmd->bin_status;
    if (!status) {
        switch (cmd->error) {
        case MC_ERR_NONE: return;      /* bad magic: closed without a reply */
        case MC_ERR_UNKNOWN_COMMAND: status = MC_BIN_UNKNOWN_COMMAND; break;
        case MC_ERR_TOO_LARGE: status = MC_BIN_E2BIG; break;
        default: status = MC_BIN_EINVAL; break;
        }
    }
    error_status(o, cmd, status);
}

void mc_binary_simple(struct mc_out *o, const struct mc_cmd *cmd, const char *version)
{
    switch (cmd->op) {
    case MC_OP_VERSION: {
        size_t n = version ? strlen(version) : 0;
        header(o, cmd, MC_BIN_SUCCESS, 0, 0, (uint32_t)n, 0);
        if (n)
            mc_out_append(o, version, n);
        return;
    }
    case MC_OP_NOOP:
    case MC_OP_QUIT:
    case MC_OP_FLUSH_ALL:
    case MC_OP_VERBOSITY:
        if (!cmd->noreply)
            header(o, cmd, MC_BIN_SUCCESS, 0, 0, 0, 0);
        return;
    case MC_OP_ERROR:
        mc_binary_error(o, cmd);
        return;
    default:
        return;
    }
}

void mc_binary_out_of_memory(struct mc_out *o, const struct mc_cmd *cmd)
{
    error_msg(o, cmd, MC_BIN_ENOMEM, oom_message(cmd));
}

void mc_binary_stat(struct mc_out *o, const struct mc_cmd *cmd, const char *name, const char *value)
{
    size_t kn = strlen(name), vn = value ? strlen(value) : 0;
    if (kn > 0xffff)
        kn = 0xffff;
    if (vn > 0xffffffffu - kn)
        vn = 0xffffffffu - kn;
    header(o, cmd, MC_BIN_SUCCESS, 0, (uint16_t)kn, (uint32_t)(kn + vn), 0);
    mc_out_append(o, name, kn);
    if (vn)
        mc_out_append(o, value, vn);
}

void mc_binary_stats_end(struct mc_out *o, const struct mc_cmd *cmd)
{
    header(o, cmd, MC_BIN_SUCCESS, 0, 0, 0, 0);
}
