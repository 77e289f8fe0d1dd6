/*
 * The memcached text protocol (see text.h), parsed the way memcached 1.6.18
 * parses it (proto_text.c), quirks included, because clients and test tools
 * compare our answers byte for byte with the real server's:
 *
 *  - A line ends at '\n'; one '\r' before it is dropped when the line has at
 *    least one other byte ("\r\n" alone is the command "\r": ERROR). A NUL
 *    byte ends the line early (memcached runs strlen on it).
 *  - Tokens are separated by ' ' only (a tab is part of a token). At most 23
 *    tokens are counted; argument-count checks that fail answer "ERROR".
 *  - Numbers are read like memcached's safe_strtoul/strtoull/strtol: leading
 *    whitespace and a sign are allowed, trailing whitespace ends the number,
 *    a '-' makes an unsigned number invalid only when the result looks
 *    negative, 32-bit fields are truncated from the 64-bit value
 *    (flags 4294967296 is 0, exptime 4294967295 is -1).
 *  - Classic commands with a trailing "noreply" suppress every reply,
 *    errors included; meta commands always report errors.
 *  - A storage command whose line is bad (bad number, key > 250 bytes) does
 *    not swallow its data block: the data is read as the next command. A
 *    too-large value, and ms errors found after the length was read, swallow
 *    <bytes>+2 bytes. A data block not followed by "\r\n" answers
 *    "CLIENT_ERROR bad data chunk" and exactly <bytes>+2 bytes are consumed.
 *  - With no '\n' in more than 2048 bytes, memcached closes the connection
 *    without a word unless the line starts (after at most 100 spaces) with
 *    "get " or "gets ", whose lines are unbounded there; here they are
 *    bounded by MC_TEXT_LINE_MAX ("CLIENT_ERROR line too long", then close).
 *  - An unknown command whose last token starts with "HTTP/" closes the
 *    connection silently (unless its first letter is one of g s a c i d t,
 *    which memcached dispatches on first: those answer ERROR).
 * Errors that close silently are MC_ERR_LINE_TOO_LONG with noreply set.
 */
#include "text.h"
#include "store.h"
#include "../../runtime/shoal.h"

#define MC_TXT_MAX_TOKENS 24              /* memcached's MAX_TOKENS */
#define MC_TXT_META_MAX_NTOKENS 20        /* memcached's MFLAG_MAX_OPT_LENGTH */
#define MC_TXT_OPAQUE_TOKEN_MAX 32        /* memcached's MFLAG_MAX_OPAQUE_LENGTH: 'O' included */
#define MC_TXT_ITEM_OVERHEAD 56           /* memcached's item header with cas, for the size limit */
#define MC_TXT_SHORT_LINE_MAX 2048        /* memcached closes a non-get line longer than this */

struct txt_tok {
    const uint8_t *p;
    uint32_t n;
};

static const char txt_E_BAD_FORMAT[] = "CLIENT_ERROR bad command line format";

/* ---------- numbers, as memcached's safe_strto* read them ---------- */

static bool txt_is_space(uint8_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* strtoull/strtoll over [p, p+n) (the token, which ends there). *neg: a '-' sign.
   Returns false on no digits, overflow, or trailing bytes that are not whitespace. */
static bool txt_scan_number(const uint8_t *p, uint32_t n, uint64_t *mag, bool *neg, bool *overflow)
{
    uint32_t i = 0;
    while (i < n && txt_is_space(p[i]))
        i++;
    *neg = false;
    if (i < n && (p[i] == '+' || p[i] == '-'))
        *neg = p[i++] == '-';
    uint32_t start = i;
    uint64_t v = 0;
    *overflow = false;
    while (i < n && p[i] >= '0' && p[i] <= '9') {
        unsigned d = p[i] - '0';
        if (v > (UINT64_MAX - d) / 10)
            *overflow = true;
        else
            v = v * 10 + d;
        i++;
    }
    if (i == start)
        return false;
    if (i < n && !txt_is_space(p[i]))
        return false;
    *mag = v;
    return true;
}

/* safe_strtoull (64 bits) and safe_strtoul (then truncated to 32 bits). */
static bool txt_parse_u64(const uint8_t *p, uint32_t n, uint64_t *out)
{
    uint64_t mag;
    bool neg, ovf;
    if (!txt_scan_number(p, n, &mag, &neg, &ovf) || ovf)
        return false;
    uint64_t v = neg ? (uint64_t)0 - mag : mag;
    if ((int64_t)v < 0 && neg)
        return false;
    *out = v;
    return true;
}

static bool txt_parse_u32(const uint8_t *p, uint32_t n, uint32_t *out)
{
    uint64_t v;
    if (!txt_parse_u64(p, n, &v))
        return false;
    *out = (uint32_t)v;
    return true;
}

/* safe_strtol: a 64-bit long, range-checked, then stored into an int32_t. */
static bool txt_parse_i32(const uint8_t *p, uint32_t n, int32_t *out)
{
    uint64_t mag;
    bool neg, ovf;
    if (!txt_scan_number(p, n, &mag, &neg, &ovf) || ovf)
        return false;
    if (neg ? mag > (uint64_t)INT64_MAX + 1 : mag > (uint64_t)INT64_MAX)
        return false;
    uint64_t v = neg ? (uint64_t)0 - mag : mag;
    *out = (int32_t)(uint32_t)v;
    return true;
}

/* ---------- base64, as memcached's base64.c ---------- */

static const char txt_b64_table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int8_t txt_b64_val(uint8_t c)
{
    if (c >= 'A' && c <= 'Z')
        return (int8_t)(c - 'A');
    if (c >= 'a' && c <= 'z')
        return (int8_t)(c - 'a' + 26);
    if (c >= '0' && c <= '9')
        return (int8_t)(c - '0' + 52);
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    if (c == '=')
        return 0;
    return -1;
}

/* Bytes written to out (at most out_len), 0 when the input does not decode. Characters
   outside the alphabet are skipped, like memcached does. */
static size_t txt_b64_decode(const uint8_t *src, size_t len, uint8_t *out, size_t out_len)
{
    size_t count = 0;
    for (size_t i = 0; i < len; i++)
        if (txt_b64_val(src[i]) >= 0)
            count++;
    if (count == 0 || count % 4 || count / 4 * 3 > out_len)
        return 0;
    uint8_t block[4], *pos = out;
    int pad = 0;
    count = 0;
    for (size_t i = 0; i < len; i++) {
        int8_t v = txt_b64_val(src[i]);
        if (v < 0)
            continue;
        if (src[i] == '=')
            pad++;
        block[count++] = (uint8_t)v;
        if (count == 4) {
            *pos++ = (uint8_t)((block[0] << 2) | (block[1] >> 4));
            *pos++ = (uint8_t)((block[1] << 4) | (block[2] >> 2));
            *pos++ = (uint8_t)((block[2] << 6) | block[3]);
            count = 0;
            if (pad) {
                if (pad > 2)
                    return 0;
                pos -= pad;
                break;
            }
        }
    }
    return (size_t)(pos - out);
}

static void txt_out_b64(struct mc_out *o, const uint8_t *src, size_t len)
{
    uint8_t *p = mc_out_reserve(o, (len + 2) / 3 * 4);
    if (!p)
        return;
    uint8_t *start = p;
    size_t i = 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
        *p++ = (uint8_t)txt_b64_table[v >> 18];
        *p++ = (uint8_t)txt_b64_table[(v >> 12) & 63];
        *p++ = (uint8_t)txt_b64_table[(v >> 6) & 63];
        *p++ = (uint8_t)txt_b64_table[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)src[i] << 16 | (i + 1 < len ? (uint32_t)src[i + 1] << 8 : 0);
        *p++ = (uint8_t)txt_b64_table[v >> 18];
        *p++ = (uint8_t)txt_b64_table[(v >> 12) & 63];
        *p++ = i + 1 < len ? (uint8_t)txt_b64_table[(v >> 6) & 63] : '=';
        *p++ = '=';
    }
    mc_out_advance(o, (size_t)(p - start));
}

/* ---------- tokens ---------- */

/* memcached's tokenize_command: returns ntokens as memcached counts them (real tokens, at
   most 23, plus the terminal empty one, which is t[ntokens-1] with n == 0). */
static size_t txt_tokenize(const uint8_t *s, size_t len, struct txt_tok *t)
{
    size_t nt = 0, i = 0;
    while (i < len) {
        while (i < len && s[i] == ' ')
            i++;
        if (i == len)
            break;
        size_t b = i;
        while (i < len && s[i] != ' ')
            i++;
        t[nt].p = s + b;
        t[nt].n = (uint32_t)(i - b);
        if (++nt == MC_TXT_MAX_TOKENS - 1)
            break;
    }
    t[nt].p = s + i;
    t[nt].n = 0;
    return nt + 1;
}

static bool txt_tok_is(const struct txt_tok *t, const char *s)
{
    size_t n = strlen(s);
    return t->n == n && memcmp(t->p, s, n) == 0;
}

/* ---------- parse helpers ---------- */

static void txt_set_error(struct mc_cmd *cmd, enum mc_error e, const char *msg)
{
    cmd->op = MC_OP_ERROR;
    cmd->error = e;
    cmd->errmsg = msg;
}

/* memcached's set_noreply_maybe: the last real token is "noreply". */
static bool txt_noreply_maybe(const struct txt_tok *t, size_t ntokens)
{
    return ntokens >= 2 && txt_tok_is(&t[ntokens - 2], "noreply");
}

static bool txt_key_too_large(uint32_t nkey, uint32_t vlen, uint32_t item_size_max)
{
    return (uint64_t)MC_TXT_ITEM_OVERHEAD + nkey + 1 + (uint64_t)vlen + 2 > item_size_max;
}

/* The data block after a storage line at buf[line_len]: 0 when it has not all arrived. */
static size_t txt_take_data(const uint8_t *buf, size_t len, size_t line_len, struct mc_cmd *cmd,
                        bool swallow_only)
{
    size_t need = line_len + (size_t)cmd->vlen + 2;
    if (swallow_only && len < need) {
        cmd->swallow = need - len;   /* the caller drops the rest as it arrives, never holding it */
        return len;
    }
    if (len < need)
        return 0;
    if (swallow_only)
        return need;
    cmd->value = buf + line_len;
    if (buf[line_len + cmd->vlen] != '\r' || buf[line_len + cmd->vlen + 1] != '\n') {
        bool meta = cmd->meta;
        txt_set_error(cmd, MC_ERR_BAD_DATA_CHUNK, NULL);
        if (meta)
            cmd->noreply = false;
    }
    return need;
}

/* ---------- classic commands ---------- */

/* get/gets/gat/gats: the keys start at s; every key is checked here (memcached answers
   only "CLIENT_ERROR bad command line format" for a line with any key too long). */
static void txt_parse_get_keys(const uint8_t *s, const uint8_t *end, struct mc_cmd *cmd,
                           struct mc_text_keys *keys)
{
    while (s < end && *s == ' ')
        s++;
    if (s == end) {     /* "gat 10": no key at all: just the end marker */
        txt_set_error(cmd, MC_ERR_NONE, "END");
        return;
    }
    const uint8_t *k = s;
    while (s < end && *s != ' ')
        s++;
    if (s - k > MC_KEY_MAX) {
        txt_set_error(cmd, MC_ERR_KEY_TOO_LONG, txt_E_BAD_FORMAT);
        return;
    }
    cmd->key = k;
    cmd->keylen = (uint8_t)(s - k);
    keys->cursor = s;
    keys->end = end;
    while (s < end) {   /* the rest, rarely there: check lengths only */
        if (*s == ' ') {
            s++;
            continue;
        }
        const uint8_t *b = s;
        while (s < end && *s != ' ')
            s++;
        if (s - b > MC_KEY_MAX) {
            txt_set_error(cmd, MC_ERR_KEY_TOO_LONG, txt_E_BAD_FORMAT);
            return;
        }
    }
}

bool mc_text_next_key(struct mc_text_keys *keys, struct mc_cmd *cmd)
{
    const uint8_t *s = keys->cursor, *end = keys->end;
    if (!s)
        return false;
    while (s < end && *s == ' ')
        s++;
    if (s >= end) {
        keys->cursor = end;
        return false;
    }
    const uint8_t *k = s;
    while (s < end && *s != ' ')
        s++;
    keys->cursor = s;
    if (s - k > MC_KEY_MAX) {
        txt_set_error(cmd, MC_ERR_KEY_TOO_LONG, txt_E_BAD_FORMAT);
        return true;
    }
    cmd->key = k;
    cmd->keylen = (uint8_t)(s - k);
    return true;
}

static size_t txt_parse_update(const uint8_t *buf, size_t len, size_t line_len, uint32_t item_size_max,
                           const struct txt_tok *t, size_t ntokens, enum mc_store_mode mode,
                           struct mc_cmd *cmd)
{
    cmd->op = MC_OP_STORE;
    cmd->store_mode = mode;
    cmd->noreply = txt_noreply_maybe(t, ntokens);
    if (t[1].n > MC_KEY_MAX) {
        txt_set_error(cmd, MC_ERR_KEY_TOO_LONG, txt_E_BAD_FORMAT);
        return line_len;
    }
    cmd->key = t[1].p;
    cmd->keylen = (uint8_t)t[1].n;
    int32_t exptime, vlen;
    if (!txt_parse_u32(t[2].p, t[2].n, &cmd->client_flags) || !txt_parse_i32(t[3].p, t[3].n, &exptime) ||
        !txt_parse_i32(t[4].p, t[4].n, &vlen)) {
        txt_set_error(cmd, MC_ERR_BAD_FORMAT, txt_E_BAD_FORMAT);
        return line_len;
    }
    cmd->exptime = exptime;
    if (mode == MC_CAS && !txt_parse_u64(t[5].p, t[5].n, &cmd->cas)) {
        txt_set_error(cmd, MC_ERR_BAD_FORMAT, txt_E_BAD_FORMAT);
        return line_len;
    }
    if (vlen < 0 || vlen > INT32_MAX - 2) {
        txt_set_error(cmd, MC_ERR_BAD_FORMAT, txt_E_BAD_FORMAT);
        return line_len;
    }
    cmd->vlen = (uint32_t)vlen;
    if (txt_key_too_large(cmd->keylen, cmd->vlen, item_size_max)) {
        /* key and store_mode stay set: memcached also unlinks the key of a too-large set */
        txt_set_error(cmd, MC_ERR_TOO_LARGE, NULL);
        return txt_take_data(buf, len, line_len, cmd, true);
    }
    return txt_take_data(buf, len, line_len, cmd, false);
}

static void txt_parse_arith(const struct txt_tok *t, size_t ntokens, enum mc_arith_mode mode, struct mc_cmd *cmd)
{
    cmd->op = MC_OP_ARITH;
    cmd->arith_mode = mode;
    cmd->noreply = txt_noreply_maybe(t, ntokens);
    if (t[1].n > MC_KEY_MAX) {
        txt_set_error(cmd, MC_ERR_KEY_TOO_LONG, txt_E_BAD_FORMAT);
        return;
    }
    cmd->key = t[1].p;
    cmd->keylen = (uint8_t)t[1].n;
    if (!txt_parse_u64(t[2].p, t[2].n, &cmd->delta))
        txt_set_error(cmd, MC_ERR_BAD_FORMAT, "CLIENT_ERROR invalid numeric delta argument");
}

static void txt_parse_touch(const struct txt_tok *t, size_t ntokens, struct mc_cmd *cmd)
{
    cmd->op = MC_OP_TOUCH;
    cmd->noreply = txt_noreply_maybe(t, ntokens);
    if (t[1].n > MC_KEY_MAX) {
        txt_set_error(cmd, MC_ERR_KEY_TOO_LONG, txt_E_BAD_FORMAT);
        return;
    }
    cmd->key = t[1].p;
    cmd->keylen = (uint8_t)t[1].n;
    int32_t exptime;
    if (!txt_parse_i32(t[2].p, t[2].n, &exptime)) {
        txt_set_error(cmd, MC_ERR_BAD_FORMAT, "CLIENT_ERROR invalid exptime argument");
        return;
    }
    cmd->exptime = exptime;
}

static void txt_parse_delete(const struct txt_tok *t, size_t ntokens, struct mc_cmd *cmd)
{
    cmd->op = MC_OP_DELETE;
    if (ntokens > 3) {
        bool hold_is_zero = txt_tok_is(&t[2], "0");
        bool sets_noreply = txt_noreply_maybe(t, ntokens);
        cmd->noreply = sets_noreply;
        bool valid = (ntokens == 4 && (hold_is_zero || sets_noreply)) ||
                     (ntokens == 5 && hold_is_zero && sets_noreply);
        if (!valid) {
            txt_set_error(cmd, MC_ERR_BAD_FORMAT,
                      "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]");
            return;
        }
    }
    if (t[1].n > MC_KEY_MAX) {
        txt_set_error(cmd, MC_ERR_KEY_TOO_LONG, txt_E_BAD_FORMAT);
        return;
    }
    cmd->key = t[1].p;
    cmd->keylen = (uint8_t)t[1].n;
}

static void txt_parse_stats(const struct txt_tok *t, size_t ntokens, struct mc_cmd *cmd)
{
    cmd->op = MC_OP_STATS;
    cmd->stats_group[0] = 0;
    if (ntokens == 2)
        return;
    if (t[1].n >= sizeof cmd->stats_group) {   /* no group has so long a name */
        txt_set_error(cmd, MC_ERR_UNKNOWN_COMMAND, NULL);
        return;
    }
    memcpy(cmd->stats_group, t[1].p, t[1].n);
    cmd->stats_group[t[1].n] = 0;
}

/* ---------- meta commands ---------- */

static bool txt_order_add(struct mc_meta *m, char c)
{
    if (m->norder >= MC_META_FLAGS_MAX)
        return false;
    m->order[m->norder++] = c;
    return true;
}

/* memcached's _meta_flag_preparse over t[start..]; also fills cmd->m. Returns NULL or the
   error reply. `outflags` lists the flags whose answer this command prints (kept in order). */
static const char *txt_meta_flags(struct mc_cmd *cmd, const struct txt_tok *t, size_t start, const char *outflags)
{
    struct mc_meta *m = &cmd->m;
    const char *err = NULL;
    uint8_t seen[128] = { 0 };
    for (size_t i = start; t[i].n != 0; i++) {
        uint8_t o = t[i].p[0];
        const uint8_t *arg = t[i].p + 1;
        uint32_t an = t[i].n - 1;
        if (o >= 127 || seen[o])
            return "CLIENT_ERROR duplicate flag";
        seen[o] = 1;
        int32_t v32;
        switch (o) {
        case 'b': {
            size_t n = txt_b64_decode(cmd->key, cmd->keylen, cmd->key_buf, sizeof cmd->key_buf);
            if (n == 0)
                err = "CLIENT_ERROR error decoding key";
            cmd->key = cmd->key_buf;
            cmd->keylen = (uint8_t)n;
            m->key_base64 = true;
            break;
        }
        case 'N': case 'T': case 'R':
            if (!txt_parse_i32(arg, an, &v32)) {
                err = "CLIENT_ERROR bad token in command line format";
                break;
            }
            if (o == 'N') {
                m->vivify_ttl = v32;
            } else if (o == 'T') {
                m->ttl = v32;
                m->ttl_before_touch = seen['t'];
            }
            else
                m->recache_ttl = v32;
            break;
        case 'O':
            /* memcached checks the length when it echoes it, after the other flags */
            if (t[i].n <= MC_TXT_OPAQUE_TOKEN_MAX) {
                memcpy(m->opaque, arg, an);
                m->opaque_len = (uint8_t)an;
            }
            break;
        case 'l': case 'h': case 'P': case 'L': case 'k': case 's': case 't': case 'c': case 'f':
        case 'v': case 'u': case 'q': case 'I':
            break;
        case 'F':
            if (!txt_parse_u32(arg, an, &m->client_flags) && !err)
                err = txt_E_BAD_FORMAT;
            break;
        case 'C':
            if (!txt_parse_u64(arg, an, &m->compare_cas))
                err = "CLIENT_ERROR bad token in command line format";
            break;
        case 'M':
            if (t[i].n != 2)
                err = "CLIENT_ERROR incorrect length for M token";
            break;
        case 'J':
            if (!txt_parse_u64(arg, an, &m->initial))
                err = "CLIENT_ERROR invalid numeric initial value";
            break;
        case 'D':
            if (!txt_parse_u64(arg, an, &m->delta))
                err = "CLIENT_ERROR invalid numeric delta value";
            break;
        default:
            return "CLIENT_ERROR invalid flag";
        }
        m->present |= MC_MF(o);
        if (o && strchr(outflags, o))
            txt_order_add(m, (char)o);
    }
    return err;
}

/* The echo check memcached does for O while building the reply. */
static bool txt_opaque_too_long(const struct txt_tok *t, size_t start)
{
    for (size_t i = start; t[i].n != 0; i++)
        if (t[i].p[0] == 'O' && t[i].n > MC_TXT_OPAQUE_TOKEN_MAX)
            return true;
    return false;
}

static char txt_mode_token(const struct txt_tok *t, size_t start)
{
    for (size_t i = start; t[i].n != 0; i++)
        if (t[i].p[0] == 'M')
            return t[i].n == 2 ? (char)t[i].p[1] : 0;
    return 0;
}

static void txt_meta_error(struct mc_cmd *cmd, const char *msg)
{
    txt_set_error(cmd, MC_ERR_BAD_FORMAT, msg);
    cmd->noreply = false;
}

static void txt_meta_common(struct mc_cmd *cmd, const struct txt_tok *t)
{
    cmd->meta = true;
    cmd->key = t[1].p;
    cmd->keylen = (uint8_t)t[1].n;
    cmd->m.delta = 1;
}

static void txt_parse_mg(const struct txt_tok *t, size_t ntokens, struct mc_cmd *cmd)
{
    if (ntokens < 3) {
        txt_set_error(cmd, MC_ERR_UNKNOWN_COMMAND, NULL);
        return;
    }
    if (t[1].n > MC_KEY_MAX)
        return txt_meta_error(cmd, txt_E_BAD_FORMAT);
    if (ntokens > MC_TXT_META_MAX_NTOKENS)
        return txt_meta_error(cmd, "CLIENT_ERROR options flags are too long");
    txt_meta_common(cmd, t);
    cmd->op = MC_OP_GET;
    const char *err = txt_meta_flags(cmd, t, 2, "stcflhOk");
    if (err)
        return txt_meta_error(cmd, err);
    if (txt_opaque_too_long(t, 2))
        return txt_meta_error(cmd, "CLIENT_ERROR opaque token too long");
    cmd->noreply = cmd->m.present & MC_MF('q');
    cmd->want_cas = cmd->m.present & MC_MF('c');
    if (cmd->m.present & MC_MF('T')) {
        cmd->touch = true;
        cmd->exptime = cmd->m.ttl;
    }
}

static size_t txt_parse_ms(const uint8_t *buf, size_t len, size_t line_len, uint32_t item_size_max,
                       const struct txt_tok *t, size_t ntokens, struct mc_cmd *cmd)
{
    if (ntokens < 3) {
        txt_set_error(cmd, MC_ERR_UNKNOWN_COMMAND, NULL);
        return line_len;
    }
    /* errors up to the length do not swallow the data block */
    if (t[1].n > MC_KEY_MAX || ntokens == 3) {
        txt_meta_error(cmd, txt_E_BAD_FORMAT);
        return line_len;
    }
    if (ntokens > MC_TXT_META_MAX_NTOKENS) {
        txt_meta_error(cmd, "CLIENT_ERROR options flags too long");
        return line_len;
    }
    int32_t vlen;
    if (!txt_parse_i32(t[2].p, t[2].n, &vlen) || vlen < 0 || vlen > INT32_MAX - 2) {
        txt_meta_error(cmd, txt_E_BAD_FORMAT);
        return line_len;
    }
    txt_meta_common(cmd, t);
    cmd->op = MC_OP_STORE;
    cmd->vlen = (uint32_t)vlen;
    const char *err = txt_meta_flags(cmd, t, 3, "Okc");
    if (!err) {
        char mode = txt_mode_token(t, 3);
        bool bad_opaque = txt_opaque_too_long(t, 3);
        switch (mode) {
        case 0: case 'S': cmd->store_mode = MC_SET; break;
        case 'E': cmd->store_mode = MC_ADD; break;
        case 'A': cmd->store_mode = MC_APPEND; break;
        case 'P': cmd->store_mode = MC_PREPEND; break;
        case 'R': cmd->store_mode = MC_REPLACE; break;
        default: err = "CLIENT_ERROR invalid mode for ms M token"; break;
        }
        if (!err && bad_opaque)
            err = "CLIENT_ERROR opaque token too long";
    }
    if (!err && txt_key_too_large(cmd->keylen, cmd->vlen, item_size_max)) {
        err = "SERVER_ERROR object too large for cache";
        txt_set_error(cmd, MC_ERR_TOO_LARGE, err);
        cmd->noreply = false;
        return txt_take_data(buf, len, line_len, cmd, true);
    }
    if (err) {
        txt_meta_error(cmd, err);
        return txt_take_data(buf, len, line_len, cmd, true);
    }
    struct mc_meta *m = &cmd->m;
    cmd->noreply = m->present & MC_MF('q');
    cmd->client_flags = m->client_flags;
    cmd->exptime = (m->present & MC_MF('T')) ? m->ttl : 0;
    if (m->present & MC_MF('C')) {
        cmd->cas = m->compare_cas;
        if (cmd->store_mode == MC_SET || cmd->store_mode == MC_REPLACE)
            cmd->store_mode = MC_CAS;
    }
    return txt_take_data(buf, len, line_len, cmd, false);
}

static void txt_parse_md_ma(const struct txt_tok *t, size_t ntokens, struct mc_cmd *cmd, bool arith)
{
    if (ntokens < 3) {
        txt_set_error(cmd, MC_ERR_UNKNOWN_COMMAND, NULL);
        return;
    }
    if (t[1].n > MC_KEY_MAX)
        return txt_meta_error(cmd, txt_E_BAD_FORMAT);
    if (ntokens > MC_TXT_META_MAX_NTOKENS)
        return txt_meta_error(cmd, "CLIENT_ERROR options flags too long");
    txt_meta_common(cmd, t);
    if (txt_meta_flags(cmd, t, 2, arith ? "ctOk" : "Ok"))
        return txt_meta_error(cmd, "CLIENT_ERROR invalid or duplicate flag");
    struct mc_meta *m = &cmd->m;
    if (arith) {
        cmd->op = MC_OP_ARITH;
        switch (txt_mode_token(t, 2)) {
        case 0: case 'I': case '+': cmd->arith_mode = MC_INCR; break;
        case 'D': case '-': cmd->arith_mode = MC_DECR; break;
        default: return txt_meta_error(cmd, "CLIENT_ERROR invalid mode for ma M token");
        }
        cmd->delta = m->delta;
        cmd->initial = m->initial;
        if (m->present & MC_MF('N')) {
            cmd->arith_create = true;
            cmd->exptime = m->vivify_ttl;
        }
    } else {
        cmd->op = MC_OP_DELETE;
    }
    if (txt_opaque_too_long(t, 2))
        return txt_meta_error(cmd, "CLIENT_ERROR opaque token too long");
    if (m->present & MC_MF('C'))
        cmd->cas = m->compare_cas;
    cmd->noreply = m->present & MC_MF('q');
}

static void txt_parse_me(const struct txt_tok *t, size_t ntokens, struct mc_cmd *cmd)
{
    if (ntokens < 3 || t[1].n > MC_KEY_MAX)
        return txt_meta_error(cmd, txt_E_BAD_FORMAT);
    txt_meta_common(cmd, t);
    cmd->op = MC_OP_DEBUG;
    if (ntokens >= 4 && t[2].n == 1 && t[2].p[0] == 'b') {
        size_t n = txt_b64_decode(t[1].p, t[1].n, cmd->key_buf, sizeof cmd->key_buf);
        if (n == 0)
            return txt_meta_error(cmd, txt_E_BAD_FORMAT);
        cmd->key = cmd->key_buf;
        cmd->keylen = (uint8_t)n;
        cmd->m.key_base64 = true;
        cmd->m.present |= MC_MF('b');
    }
}

/* ---------- the parser ---------- */

static bool txt_starts_with(const uint8_t *p, size_t n, const char *s)
{
    size_t l = strlen(s);
    return n >= l && memcmp(p, s, l) == 0;
}

size_t mc_text_parse(const uint8_t *buf, size_t len, uint32_t item_size_max, struct mc_cmd *cmd,
                     struct mc_text_keys *keys)
{
    const uint8_t *nl = len ? memchr(buf, '\n', len) : NULL;
    if (!nl) {
        if (len <= MC_TXT_SHORT_LINE_MAX)
            return 0;
        size_t sp = 0;
        while (sp < len && buf[sp] == ' ')
            sp++;
        bool get = sp <= 100 && (txt_starts_with(buf + sp, len - sp, "get ") || txt_starts_with(buf + sp, len - sp, "gets "));
        if (get && len <= MC_TEXT_LINE_MAX)
            return 0;
        memset(cmd, 0, offsetof(struct mc_cmd, key_buf));
        keys->cursor = keys->end = NULL;
        txt_set_error(cmd, MC_ERR_LINE_TOO_LONG, NULL);
        cmd->noreply = !get;       /* memcached closes without a word */
        return len;
    }
    size_t line_len = (size_t)(nl - buf) + 1;
    size_t n = (size_t)(nl - buf);
    if (n > 1 && buf[n - 1] == '\r')
        n--;
    const uint8_t *z = memchr(buf, 0, n);
    if (z)
        n = (size_t)(z - buf);

    /* everything but key_buf (which only b keys use), zeroed: a cheap reset on the hot path */
    memset(cmd, 0, offsetof(struct mc_cmd, key_buf));
    keys->cursor = keys->end = NULL;
    const uint8_t *end = buf + n;

    /* hot path: "get <key>..." and "gets <key>..." */
    if (n > 4 && buf[0] == 'g' && buf[1] == 'e' && buf[2] == 't') {
        size_t c = buf[3] == 's' ? 4 : 3;
        if (buf[c] == ' ') {
            const uint8_t *s = buf + c;
            while (s < end && *s == ' ')
                s++;
            if (s == end) {
                txt_set_error(cmd, MC_ERR_UNKNOWN_COMMAND, NULL);
                return line_len;
            }
            cmd->op = MC_OP_GET;
            cmd->want_cas = c == 4;
            txt_parse_get_keys(s, end, cmd, keys);
            return line_len;
        }
    }

    struct txt_tok t[MC_TXT_MAX_TOKENS];
    size_t nt = txt_tokenize(buf, n, t);
    if (nt < 2 || t[0].n < 2) {
        txt_set_error(cmd, MC_ERR_UNKNOWN_COMMAND, NULL);
        return line_len;
    }
    const struct txt_tok *c0 = &t[0];
    if (c0->p[0] == 'm' && c0->n == 2) {
        switch (c0->p[1]) {
        case 'g': txt_parse_mg(t, nt, cmd); break;
        case 's': return txt_parse_ms(buf, len, line_len, item_size_max, t, nt, cmd);
        case 'n': cmd->op = MC_OP_NOOP; cmd->meta = true; break;
        case 'd': txt_parse_md_ma(t, nt, cmd, false); break;
        case 'a': txt_parse_md_ma(t, nt, cmd, true); break;
        case 'e': txt_parse_me(t, nt, cmd); break;
        default: txt_set_error(cmd, MC_ERR_UNKNOWN_COMMAND, NULL); break;
        }
        return line_len;
    }

    bool get = txt_tok_is(c0, "get"), gets = txt_tok_is(c0, "gets");
    bool gat = txt_tok_is(c0, "gat"), gats = txt_tok_is(c0, "gats");
    if (get || gets || gat || gats) {
        if (nt < 3) {
            txt_set_error(cmd, MC_ERR_UNKNOWN_COMMAND, NULL);
            return line_len;
        }
        cmd->op = MC_OP_GET;
        cmd->want_cas = gets || gats;
        const uint8_t *s = t[1].p;
        if (gat || gats) {
            int32_t exptime;
            if (!txt_parse_i32(t[1].p, t[1].n, &exptime)) {
                txt_set_error(cmd, MC_ERR_BAD_FORMAT, "CLIENT_ERROR invalid exptime argument");
                return line_len;
            }
            cmd->touch = true;
            cmd->exptime = exptime;
            s = t[1].p + t[1].n;
        }
        txt_parse_get_keys(s, end, cmd, keys);
        return line_len;
    }

    static const struct { const char *name; enum mc_store_mode mode; } updates[] = {
        { "set", MC_SET }, { "add", MC_ADD }, { "replace", MC_REPLACE }, { "append", MC_APPEND },
        { "prepend", MC_PREPEND }, { "cas", MC_CAS },
    };
    for (size_t i = 0; i < sizeof updates / sizeof updates[0]; i++) {
        if (!txt_tok_is(c0, updates[i].name))
            continue;
        size_t want = updates[i].mode == MC_CAS ? 7 : 6;
        if (nt != want && nt != want + 1) {
            txt_set_error(cmd, MC_ERR_UNKNOWN_COMMAND, NULL);
            return line_len;
        }
        return txt_parse_update(buf, len, line_len, item_size_max, t, nt, updates[i].mode, cmd);
    }

    if (txt_tok_is(c0, "incr") || txt_tok_is(c0, "decr")) {
        if (nt != 4 && nt != 5)
            txt_set_error(cmd, MC_ERR_UNKNOWN_COMMAND, NULL);
        else
            txt_parse_arith(t, nt, c0->p[0] == 'i' ? MC_INCR : MC_DECR, cmd);
    } else if (txt_tok_is(c0, "delete")) {
        if (nt < 3 || nt > 5)
            txt_set_error(cmd, MC_ERR_UNKNOWN_COMMAND, NULL);
        else
            txt_parse_delete(t, nt, cmd);
    } else if (txt_tok_is(c0, "touch")) {
        if (nt != 4 && nt != 5)
            txt_set_error(cmd, MC_ERR_UNKNOWN_COMMAND, NULL);
        else
            txt_parse_touch(t, nt, cmd);
    } else if (txt_tok_is(c0, "stats")) {
        txt_parse_stats(t, nt, cmd);
    } else if (txt_tok_is(c0, "flush_all")) {
        if (nt > 4) {
            txt_set_error(cmd, MC_ERR_UNKNOWN_COMMAND, NULL);
        } else {
            cmd->op = MC_OP_FLUSH_ALL;
            cmd->noreply = txt_noreply_maybe(t, nt);
            int32_t delay = 0;
            if (nt != (cmd->noreply ? 3u : 2u) && !txt_parse_i32(t[1].p, t[1].n, &delay))
                txt_set_error(cmd, MC_ERR_BAD_FORMAT, "CLIENT_ERROR invalid exptime argument");
            cmd->flush_delay = delay;
        }
    } else if (txt_tok_is(c0, "version")) {
        cmd->op = MC_OP_VERSION;
    } else if (txt_tok_is(c0, "quit")) {
        cmd->op = MC_OP_QUIT;
    } else if (txt_tok_is(c0, "verbosity")) {
        if (nt != 3 && nt != 4) {
            txt_set_error(cmd, MC_ERR_UNKNOWN_COMMAND, NULL);
        } else {
            cmd->op = MC_OP_VERBOSITY;
            cmd->noreply = txt_noreply_maybe(t, nt);
            if (!txt_parse_u32(t[1].p, t[1].n, &cmd->verbosity))
                txt_set_error(cmd, MC_ERR_BAD_FORMAT, txt_E_BAD_FORMAT);
        }
    } else if (txt_tok_is(c0, "shutdown")) {
        txt_set_error(cmd, MC_ERR_NONE, "ERROR: shutdown not enabled");
    } else if (!strchr("gsacidt", c0->p[0]) && t[nt - 2].n >= 5 && memcmp(t[nt - 2].p, "HTTP/", 5) == 0) {
        /* (memcached dispatches on these first letters before it looks for HTTP) */
        txt_set_error(cmd, MC_ERR_LINE_TOO_LONG, NULL);   /* memcached hangs up on HTTP */
        cmd->noreply = true;
    } else {
        txt_set_error(cmd, MC_ERR_UNKNOWN_COMMAND, NULL);
    }
    return line_len;
}

/* ---------- replies ---------- */

static void txt_out_lit(struct mc_out *o, const char *s, size_t n) { mc_out_append(o, s, n); }
#define TXT_OUT(o, lit) txt_out_lit((o), "" lit, sizeof(lit) - 1)   /* string literals only */

static void txt_out_key(struct mc_out *o, const struct mc_cmd *cmd, bool binary)
{
    if (binary) {
        txt_out_b64(o, cmd->key, cmd->keylen);
        TXT_OUT(o, " b");
    } else {
        mc_out_append(o, cmd->key, cmd->keylen);
    }
}

/* The return flags of a meta reply, in request order. `full`: the command found its item
   (the flags that describe it are printed); otherwise only O and k. */
static void txt_meta_flags_out(struct mc_out *o, const struct mc_cmd *cmd, const struct mc_result *res,
                           bool full, bool key_binary)
{
    const struct mc_meta *m = &cmd->m;
    for (unsigned i = 0; i < m->norder; i++) {
        char f = m->order[i];
        if (f == 'O') {
            TXT_OUT(o, " O");
            mc_out_append(o, m->opaque, m->opaque_len);
            continue;
        }
        if (f == 'k') {
            TXT_OUT(o, " k");
            txt_out_key(o, cmd, key_binary);
            continue;
        }
        if (!full)
            continue;
        char hdr[2] = { ' ', f };
        mc_out_append(o, hdr, 2);
        switch (f) {
        case 's': mc_out_u64(o, res->nbytes); break;
        case 't': mc_out_i64(o, m->ttl_before_touch ? res->ttl_before : res->ttl); break;
        case 'c': mc_out_u64(o, res->cas); break;
        case 'f': mc_out_u64(o, res->client_flags); break;
        case 'l': mc_out_u64(o, res->last_access); break;
        case 'h': mc_out_str(o, res->hit_before ? "1" : "0"); break;
        }
    }
}

static void txt_out_value(struct mc_out *o, const struct mc_result *res)
{
    if (res->item)
        mc_out_append(o, mc_item_value(res->item), res->nbytes);
    TXT_OUT(o, "\r\n");
}

static void txt_reply_mg(struct mc_out *o, const struct mc_cmd *cmd, const struct mc_result *res)
{
    bool v = cmd->m.present & MC_MF('v');
    if (res->status != MC_ST_OK) {
        if (cmd->noreply)
            return;
        TXT_OUT(o, "EN");
        txt_meta_flags_out(o, cmd, res, false, cmd->m.key_base64);
        TXT_OUT(o, "\r\n");
        return;
    }
    if (v) {
        TXT_OUT(o, "VA ");
        mc_out_u64(o, res->nbytes);
    } else {
        TXT_OUT(o, "HD");
    }
    txt_meta_flags_out(o, cmd, res, true, res->key_binary);
    if (res->won)
        TXT_OUT(o, " Z");
    if (res->stale)
        TXT_OUT(o, " X");
    if (res->win)
        TXT_OUT(o, " W");
    TXT_OUT(o, "\r\n");
    if (v)
        txt_out_value(o, res);
}

static void txt_server_error_store(struct mc_out *o, enum mc_status st)
{
    if (st == MC_ST_TOO_LARGE)
        TXT_OUT(o, "SERVER_ERROR object too large for cache\r\n");
    else
        TXT_OUT(o, "SERVER_ERROR out of memory storing object\r\n");
}

static void txt_reply_ms(struct mc_out *o, const struct mc_cmd *cmd, const struct mc_result *res)
{
    switch (res->status) {
    case MC_ST_OK:
        if (cmd->noreply)
            return;
        TXT_OUT(o, "HD");
        break;
    case MC_ST_NOT_STORED: TXT_OUT(o, "NS"); break;
    case MC_ST_EXISTS: TXT_OUT(o, "EX"); break;
    case MC_ST_MISS: TXT_OUT(o, "NF"); break;
    default:
        txt_server_error_store(o, res->status);
        return;
    }
    txt_meta_flags_out(o, cmd, res, true, cmd->m.key_base64);
    TXT_OUT(o, "\r\n");
}

static void txt_reply_md(struct mc_out *o, const struct mc_cmd *cmd, const struct mc_result *res)
{
    switch (res->status) {
    case MC_ST_OK:
        if (cmd->noreply)
            return;
        TXT_OUT(o, "HD");
        break;
    case MC_ST_EXISTS: TXT_OUT(o, "EX"); break;
    default: TXT_OUT(o, "NF"); break;
    }
    txt_meta_flags_out(o, cmd, res, false, cmd->m.key_base64);
    TXT_OUT(o, "\r\n");
}

static void txt_reply_ma(struct mc_out *o, const struct mc_cmd *cmd, const struct mc_result *res)
{
    switch (res->status) {
    case MC_ST_OK: {
        if (cmd->noreply)
            return;
        char num[20];
        size_t nl = 0;
        uint64_t x = res->number;
        do {
            num[sizeof num - ++nl] = (char)('0' + x % 10);
            x /= 10;
        } while (x);
        bool v = cmd->m.present & MC_MF('v');
        if (v) {
            TXT_OUT(o, "VA ");
            mc_out_u64(o, nl);
        } else {
            TXT_OUT(o, "HD");
        }
        txt_meta_flags_out(o, cmd, res, true, cmd->m.key_base64);
        TXT_OUT(o, "\r\n");
        if (v) {
            mc_out_append(o, num + sizeof num - nl, nl);
            TXT_OUT(o, "\r\n");
        }
        return;
    }
    case MC_ST_NON_NUMERIC:
        TXT_OUT(o, "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
        return;
    case MC_ST_NO_MEMORY: case MC_ST_TOO_LARGE:
        TXT_OUT(o, "SERVER_ERROR out of memory\r\n");
        return;
    case MC_ST_EXISTS: TXT_OUT(o, "EX"); break;
    case MC_ST_NOT_STORED: TXT_OUT(o, "NS"); break;
    default: TXT_OUT(o, "NF"); break;
    }
    txt_meta_flags_out(o, cmd, res, false, cmd->m.key_base64);
    TXT_OUT(o, "\r\n");
}

static void txt_reply_me(struct mc_out *o, const struct mc_cmd *cmd, const struct mc_result *res)
{
    if (res->status != MC_ST_OK) {
        TXT_OUT(o, "EN\r\n");
        return;
    }
    TXT_OUT(o, "ME ");
    if (res->key_binary)
        txt_out_b64(o, cmd->key, cmd->keylen);
    else
        mc_out_append(o, cmd->key, cmd->keylen);
    TXT_OUT(o, " exp=");
    mc_out_i64(o, res->debug_exp);
    TXT_OUT(o, " la=");
    mc_out_u64(o, res->last_access);
    TXT_OUT(o, " cas=");
    mc_out_u64(o, res->cas);
    mc_out_str(o, res->hit_before ? " fetch=yes cls=" : " fetch=no cls=");
    mc_out_u64(o, res->cls);
    TXT_OUT(o, " size=");
    mc_out_u64(o, res->item_size);
    TXT_OUT(o, "\r\n");
}

static void txt_reply_get(struct mc_out *o, const struct mc_cmd *cmd, const struct mc_result *res)
{
    if (res->status != MC_ST_OK)
        return;
    /* "VALUE " key " " flags " " bytes [" " cas] "\r\n": one reservation, then the value */
    uint8_t *p = mc_out_reserve(o, 6 + (size_t)cmd->keylen + 3 * 21 + 2);
    if (!p)
        return;
    uint8_t *start = p;
    memcpy(p, "VALUE ", 6);
    p += 6;
    memcpy(p, cmd->key, cmd->keylen);
    p += cmd->keylen;
    uint64_t nums[3] = { res->client_flags, res->nbytes, res->cas };
    for (int i = 0; i < (cmd->want_cas ? 3 : 2); i++) {
        char tmp[20];
        size_t n = 0;
        uint64_t v = nums[i];
        do {
            tmp[sizeof tmp - ++n] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        *p++ = ' ';
        memcpy(p, tmp + sizeof tmp - n, n);
        p += n;
    }
    *p++ = '\r';
    *p++ = '\n';
    mc_out_advance(o, (size_t)(p - start));
    txt_out_value(o, res);
}

void mc_text_reply(struct mc_out *o, const struct mc_cmd *cmd, const struct mc_result *res)
{
    if (cmd->meta) {
        switch (cmd->op) {
        case MC_OP_GET: txt_reply_mg(o, cmd, res); return;
        case MC_OP_STORE: txt_reply_ms(o, cmd, res); return;
        case MC_OP_DELETE: txt_reply_md(o, cmd, res); return;
        case MC_OP_ARITH: txt_reply_ma(o, cmd, res); return;
        case MC_OP_DEBUG: txt_reply_me(o, cmd, res); return;
        default: mc_text_error(o, cmd); return;
        }
    }
    if (cmd->op == MC_OP_GET) {
        txt_reply_get(o, cmd, res);
        return;
    }
    if (cmd->noreply)
        return;
    switch (cmd->op) {
    case MC_OP_STORE:
        switch (res->status) {
        case MC_ST_OK: TXT_OUT(o, "STORED\r\n"); break;
        case MC_ST_NOT_STORED: TXT_OUT(o, "NOT_STORED\r\n"); break;
        case MC_ST_EXISTS: TXT_OUT(o, "EXISTS\r\n"); break;
        case MC_ST_MISS: TXT_OUT(o, "NOT_FOUND\r\n"); break;
        default: txt_server_error_store(o, res->status); break;
        }
        break;
    case MC_OP_ARITH:
        switch (res->status) {
        case MC_ST_OK:
            mc_out_u64(o, res->number);
            TXT_OUT(o, "\r\n");
            break;
        case MC_ST_NON_NUMERIC:
            TXT_OUT(o, "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n");
            break;
        case MC_ST_NO_MEMORY: case MC_ST_TOO_LARGE:
            TXT_OUT(o, "SERVER_ERROR out of memory\r\n");
            break;
        default: TXT_OUT(o, "NOT_FOUND\r\n"); break;
        }
        break;
    case MC_OP_TOUCH:
        if (res->status == MC_ST_OK)
            TXT_OUT(o, "TOUCHED\r\n");
        else
            TXT_OUT(o, "NOT_FOUND\r\n");
        break;
    case MC_OP_DELETE:
        if (res->status == MC_ST_OK)
            TXT_OUT(o, "DELETED\r\n");
        else
            TXT_OUT(o, "NOT_FOUND\r\n");
        break;
    default:
        mc_text_error(o, cmd);
        break;
    }
}

void mc_text_get_end(struct mc_out *o) { TXT_OUT(o, "END\r\n"); }

void mc_text_error(struct mc_out *o, const struct mc_cmd *cmd) { mc_text_simple(o, cmd, NULL); }

void mc_text_simple(struct mc_out *o, const struct mc_cmd *cmd, const char *version)
{
    if (cmd->noreply)
        return;
    switch (cmd->op) {
    case MC_OP_ERROR:
        if (cmd->errmsg) {
            mc_out_str(o, cmd->errmsg);
            TXT_OUT(o, "\r\n");
            return;
        }
        switch (cmd->error) {
        case MC_ERR_UNKNOWN_COMMAND: case MC_ERR_NONE: TXT_OUT(o, "ERROR\r\n"); break;
        case MC_ERR_BAD_DATA_CHUNK: TXT_OUT(o, "CLIENT_ERROR bad data chunk\r\n"); break;
        case MC_ERR_TOO_LARGE: TXT_OUT(o, "SERVER_ERROR object too large for cache\r\n"); break;
        case MC_ERR_LINE_TOO_LONG: TXT_OUT(o, "CLIENT_ERROR line too long\r\n"); break;
        default: TXT_OUT(o, "CLIENT_ERROR bad command line format\r\n"); break;
        }
        return;
    case MC_OP_VERSION:
        TXT_OUT(o, "VERSION ");
        mc_out_str(o, version ? version : "1.6.18");
        TXT_OUT(o, "\r\n");
        return;
    case MC_OP_FLUSH_ALL: case MC_OP_VERBOSITY:
        TXT_OUT(o, "OK\r\n");
        return;
    case MC_OP_NOOP:
        TXT_OUT(o, "MN\r\n");
        return;
    default:
        return;
    }
}

void mc_text_out_of_memory(struct mc_out *o) { TXT_OUT(o, "SERVER_ERROR out of memory\r\n"); }

void mc_text_stat(struct mc_out *o, const char *name, const char *value)
{
    TXT_OUT(o, "STAT ");
    mc_out_str(o, name);
    TXT_OUT(o, " ");
    mc_out_str(o, value);
    TXT_OUT(o, "\r\n");
}

void mc_text_stats_end(struct mc_out *o) { TXT_OUT(o, "END\r\n"); }
