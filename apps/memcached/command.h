/*
 * A memcached request in protocol-neutral form, and its result.
 *
 * The protocol modules (text.c for the classic and meta text commands,
 * binary.c for the binary protocol) parse bytes into a struct mc_cmd and
 * format a struct mc_result back into bytes. exec.c runs a keyed command
 * against the store of the shard that owns the key. The connection layer
 * (conn.c) sits between them: it finds the owner of each key, runs the
 * command there (directly, or through smp_call when the owner is another
 * shard), and formats the result on the connection's own shard.
 *
 * Because a result can be formatted on another shard than the one that
 * produced it, a hit carries a reference on the item (whose key, value,
 * client flags and cas never change while referenced) plus a snapshot of
 * the metadata a reply may print; the reference is dropped with
 * mc_store_release() on the owner shard once the value has been copied out.
 *
 * Nothing here includes the runtime: protocol, exec and store code build
 * on the host for unit tests and fuzzing.
 */
#ifndef MC_COMMAND_H
#define MC_COMMAND_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MC_KEY_MAX        250         /* longest key, bytes */
#define MC_OPAQUE_MAX     32          /* longest meta O(token) */
#define MC_META_FLAGS_MAX 24          /* return flags remembered in request order */

enum mc_op {
    /* keyed: run by mc_exec() on the key's owner shard */
    MC_OP_GET,          /* get/gets/gat/gats, mg, binary GET* and GAT*: read, maybe touch */
    MC_OP_STORE,        /* set/add/replace/append/prepend/cas, ms, binary SET..PREPEND: see mode */
    MC_OP_ARITH,        /* incr/decr, ma, binary INCR/DECR */
    MC_OP_TOUCH,        /* touch, binary TOUCH */
    MC_OP_DELETE,       /* delete, md, binary DELETE */
    MC_OP_DEBUG,        /* me: item metadata */
    /* not keyed: handled by the connection layer (some on every shard) */
    MC_OP_FLUSH_ALL,    /* every shard */
    MC_OP_STATS,        /* summed over every shard; cmd.stats_group says which */
    MC_OP_VERSION,
    MC_OP_VERBOSITY,
    MC_OP_NOOP,         /* mn, binary NOOP: flushes quiet replies */
    MC_OP_QUIT,
    MC_OP_ERROR,        /* the parser found an error; cmd.error says which reply */
};

enum mc_store_mode { MC_SET, MC_ADD, MC_REPLACE, MC_APPEND, MC_PREPEND, MC_CAS };
enum mc_arith_mode { MC_INCR, MC_DECR };

/* What the protocol answers when parsing fails (text: "ERROR", "CLIENT_ERROR <msg>", ...). */
enum mc_error {
    MC_ERR_NONE,
    MC_ERR_UNKNOWN_COMMAND,     /* text "ERROR", binary UNKNOWN_COMMAND */
    MC_ERR_BAD_FORMAT,          /* "CLIENT_ERROR bad command line format" */
    MC_ERR_BAD_DATA_CHUNK,      /* "CLIENT_ERROR bad data chunk" */
    MC_ERR_KEY_TOO_LONG,        /* text: bad command line format; binary: EINVAL */
    MC_ERR_TOO_LARGE,           /* "SERVER_ERROR object too large for cache" (value discarded) */
    MC_ERR_LINE_TOO_LONG,       /* "CLIENT_ERROR line too long"; the connection is closed after */
    MC_ERR_INVALID_ARGS,        /* binary EINVAL */
};

/* Meta-command options (mg/ms/md/ma/me). Letters present are bits of `present`. */
#define MC_MF(c) ((c) >= 'a' ? 1ull << ((c) - 'a') : 1ull << ((c) - 'A' + 26))
struct mc_meta {
    uint64_t present;                 /* MC_MF('v') | MC_MF('T') ... */
    char order[MC_META_FLAGS_MAX];    /* return flags (c f h k l O s t b ...) in request order */
    uint8_t norder;
    uint8_t opaque_len;
    char opaque[MC_OPAQUE_MAX];       /* O(token) */
    int64_t ttl;                      /* T(token) */
    int64_t vivify_ttl;               /* N(token) */
    int64_t recache_ttl;              /* R(token) */
    uint64_t compare_cas;             /* C(token) */
    uint64_t initial;                 /* ma J(token), default 0 */
    uint64_t delta;                   /* ma D(token), default 1 */
    uint32_t client_flags;            /* ms F(token) */
    bool key_base64;                  /* b: key was base64 (decoded in cmd.key; re-encode when echoing) */
    bool ttl_before_touch;            /* mg/ma: t came before T, so t prints the TTL from before T
                                         (res.ttl_before), as memcached applies flags in order */
};

struct mc_cmd {
    enum mc_op op;
    enum mc_store_mode store_mode;    /* MC_OP_STORE */
    enum mc_arith_mode arith_mode;    /* MC_OP_ARITH */
    enum mc_error error;              /* MC_OP_ERROR */
    bool meta;                        /* mg/ms/md/ma/me: see meta */
    bool noreply;                     /* text "noreply", meta q, binary quiet variants */
    bool want_cas;                    /* gets/gats: print cas */
    bool touch;                       /* gat/gats, binary GAT: set exptime on hit */
    bool want_key;                    /* binary GETK/GETKQ */
    bool binary;                      /* parsed by binary.c */
    const uint8_t *key;               /* points into the parser's input (or a copy) */
    uint8_t keylen;
    const uint8_t *value;             /* MC_OP_STORE: the data block, without "\r\n" */
    uint32_t vlen;
    uint32_t client_flags;            /* classic store commands */
    int64_t exptime;                  /* as the client sent it: 0 never, <0 expired, >30 days absolute */
    uint64_t cas;                     /* classic cas / binary cas field: compare when nonzero */
    uint64_t delta, initial;          /* arith: binary also has an initial value and exptime */
    bool arith_create;                /* binary incr/decr: create with initial when exptime != 0xffffffff */
    int64_t flush_delay;              /* flush_all [delay] */
    uint32_t verbosity;
    uint32_t opaque;                  /* binary header opaque */
    uint32_t swallow;                 /* text: bytes of this request still to arrive, to be discarded */
    uint8_t bin_opcode;               /* binary: the request opcode, for the reply */
    uint16_t bin_status;              /* binary MC_OP_ERROR: the status to answer (0: none, close silently) */
    char stats_group[16];             /* "" / settings / items / slabs / sizes / conns ... */
    struct mc_meta m;
    /* text.c: for MC_OP_ERROR, the exact reply line (without "\r\n") when the error has a
       message of its own (meta flag errors, "invalid exptime argument", ...); NULL otherwise. */
    const char *errmsg;
    /* text.c: a meta key sent base64 (b flag) is decoded here and cmd.key points at it
       (a copy of the cmd must re-point key when m.key_base64 is set). */
    uint8_t key_buf[MC_KEY_MAX];
};

enum mc_status {
    MC_ST_OK,           /* get: hit; store: STORED; delete: DELETED; touch: TOUCHED; arith: done */
    MC_ST_MISS,         /* get miss; delete/touch/arith/replace/cas on a missing key: NOT_FOUND */
    MC_ST_NOT_STORED,   /* add on existing key, replace/append/prepend on missing key */
    MC_ST_EXISTS,       /* cas mismatch */
    MC_ST_NON_NUMERIC,  /* incr/decr on a value that is not a decimal number */
    MC_ST_TOO_LARGE,    /* the item would exceed the item size limit */
    MC_ST_NO_MEMORY,    /* could not allocate even after evicting */
};

struct mc_result {
    enum mc_status status;
    struct mc_item *item;     /* get hit (and ma/mg value): referenced; NULL otherwise */
    uint64_t cas;             /* the item's cas after the command (0 when none) */
    uint32_t client_flags;
    uint32_t nbytes;          /* value length */
    int64_t ttl;              /* remaining seconds, -1 when it never expires */
    uint32_t last_access;     /* seconds since last access (mg l) */
    bool hit_before;          /* mg h */
    bool win, stale, won;     /* mg W / X / Z */
    uint64_t number;          /* arith: the new value */
    /* me (MC_OP_DEBUG): "ME key exp=<debug_exp> la=<last_access> cas=<cas> fetch=<hit_before ? yes : no>
       cls=<cls> size=<item_size>" */
    int64_t debug_exp;        /* memcached prints now - exptime (negative while live), -1 when never */
    uint32_t item_size;       /* memcached's total item size */
    uint8_t cls;              /* slab class */
    bool key_binary;          /* hit: the item was stored by ms with a base64 (b) key; mg k and me
                                 then echo the key base64-encoded, as memcached does */
    int64_t ttl_before;       /* mg/ma with m.ttl_before_touch: remaining TTL (-1 never) before T */
};

/* Owner shard of a key among n shards: the same function everywhere. */
static inline unsigned mc_key_shard(const uint8_t *key, size_t len, unsigned n)
{
    uint64_t h = 0xcbf29ce484222325ull;   /* FNV-1a, then a final mix so low bits spread */
    for (size_t i = 0; i < len; i++)
        h = (h ^ key[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return n > 1 ? (unsigned)(h % n) : 0;
}
#endif
