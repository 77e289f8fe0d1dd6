/*
 * One shard's item store: a hash table of items, memory accounted in
 * memcached-style slab size classes with an LRU per class, lazy expiry on
 * access plus a bounded background sweep, and flush_all. Only the owner
 * shard touches a store; nothing here locks or reads a clock (time is
 * passed in as Unix seconds, so host tests control it).
 *
 * Items are immutable once linked as far as readers can see: key, value,
 * client flags and cas of an item never change while it is referenced. A
 * command that changes a value (append, incr on a shared item, ...) links
 * a new item and unlinks the old one, which is freed when its last
 * reference goes.
 */
#ifndef MC_STORE_H
#define MC_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "command.h"

struct mc_item {
    struct mc_item *hnext;            /* hash chain */
    struct mc_item *prev, *next;      /* LRU of its class, most recent first */
    uint64_t cas;
    uint32_t exptime;                 /* absolute Unix seconds, 0 = never */
    uint32_t time;                    /* last access, Unix seconds */
    uint32_t client_flags;
    uint32_t nbytes;                  /* value length, without the "\r\n" that follows it */
    uint32_t refs;                    /* readers holding it (owner shard only) */
    uint8_t keylen;
    uint8_t cls;                      /* slab class */
    uint8_t iflags;                   /* MC_ITEM_* */
    uint8_t _pad;
    uint32_t lru_time;                /* last move to the LRU head (bumps are rate-limited) */
    uint8_t data[];                   /* key, then value, then "\r\n" */
};
#define MC_ITEM_LINKED   0x01
#define MC_ITEM_FETCHED  0x02         /* read at least once (mg h) */
#define MC_ITEM_STALE    0x04         /* invalidated by ms/md I (mg X) */
#define MC_ITEM_WON      0x08         /* a client was handed the recache win (mg Z) */
#define MC_ITEM_KEY_B64  0x10         /* stored by ms with a base64 (b) key: mg k / me echo it encoded */

static inline const uint8_t *mc_item_key(const struct mc_item *it) { return it->data; }
static inline const uint8_t *mc_item_value(const struct mc_item *it) { return it->data + it->keylen; }

struct mc_store_config {
    uint64_t mem_limit;               /* bytes this shard may use for items (-m divided by shards) */
    uint32_t item_size_max;           /* -I, default 1 MiB: key + value + overhead */
    uint32_t chunk_min;               /* smallest class, default 48 (-n) */
    double factor;                    /* class growth factor, default 1.25 (-f) */
    bool cas_enabled;                 /* -C turns cas off */
    bool no_evict;                    /* -M: out of memory is an error instead of evicting live items */
    uint32_t cas_stride, cas_offset;  /* cas values are offset + 1 + i * stride (shard k of n: n, k) */
};

struct mc_store_stats {
    uint64_t curr_items, total_items, bytes, evictions, expired_unfetched, evicted_unfetched, reclaimed;
    uint64_t cmd_get, cmd_set, cmd_touch, cmd_flush, get_hits, get_misses, get_expired, get_flushed;
    uint64_t delete_hits, delete_misses, incr_hits, incr_misses, decr_hits, decr_misses;
    uint64_t cas_hits, cas_misses, cas_badval, touch_hits, touch_misses, store_too_large, store_no_memory;
    uint64_t limit_maxbytes, total_malloced;
};

/* Per-class figures for "stats slabs" / "stats items". */
struct mc_class_stats {
    uint32_t chunk_size;
    uint64_t items, bytes_requested, evicted, expired_unfetched, evicted_unfetched, outofmemory, age;
};

struct mc_store;
struct mc_store *mc_store_create(const struct mc_store_config *cfg, uint64_t now);
void mc_store_destroy(struct mc_store *s);

/* Runs cmd (a keyed op) on this store at time now (Unix seconds). On a hit that returns a value,
   res->item holds a reference the caller drops with mc_store_release() on this same store. */
void mc_exec(struct mc_store *s, const struct mc_cmd *cmd, uint64_t now, struct mc_result *res);
void mc_store_release(struct mc_store *s, struct mc_item *it);

/* flush_all: items last written at or before now + delay become invalid once that time comes
   (delay 0: now). Takes effect lazily, like memcached's oldest_live. */
void mc_store_flush(struct mc_store *s, uint64_t now, int64_t delay);
/* Background expiry: frees up to `budget` expired or flushed items; returns how many it examined
   (call from a timer until it returns 0). */
unsigned mc_store_sweep(struct mc_store *s, uint64_t now, unsigned budget);

void mc_store_stats(const struct mc_store *s, struct mc_store_stats *out);
/* stats reset: counters back to 0; current items and bytes stay. */
void mc_store_stats_reset(struct mc_store *s);
/* Classes in use; fills up to max entries of out (index = class number). */
unsigned mc_store_class_stats(const struct mc_store *s, struct mc_class_stats *out, unsigned max);
const struct mc_store_config *mc_store_config(const struct mc_store *s);

/* memcached's item size for a key/flags/value (its "me" size=): 48-byte header + key + 1 + 4 when
   flags != 0 + value + 2 + 8 with cas. An item is too large when this exceeds item_size_max
   (-I 1m, 1-byte key, flags 0: values up to 1048516 bytes fit). Usable on any shard: the parser can
   check it before buffering a value; a too-large set must still reach mc_exec (vlen set, value may be
   NULL) because memcached then drops the old item of the key. */
uint64_t mc_item_ntotal(const struct mc_store_config *cfg, size_t keylen, uint32_t flags, uint64_t vlen);
bool mc_item_size_ok(const struct mc_store_config *cfg, size_t keylen, uint32_t flags, uint64_t vlen);
#endif
