/*
 * Internals of store.c shared with exec.c (not part of the protocol-facing contract).
 */
#ifndef MC_STORE_IMPL_H
#define MC_STORE_IMPL_H
#include "store.h"

#define MC_MAX_CLASSES 64
#define MC_REALTIME_MAXDELTA 2592000      /* 30 days: larger exptimes are absolute Unix times */
#define MC_ITEM_UPDATE_INTERVAL 60

struct mc_class {
    uint32_t size;
    struct mc_item *head, *tail;
    uint64_t items, bytes_requested, evicted, expired_unfetched, evicted_unfetched, outofmemory;
};

struct mc_store {
    struct mc_store_config cfg;
    struct mc_item **table, **old;     /* old: the half-size table being migrated */
    unsigned bits;                     /* table has 1 << bits buckets */
    size_t migrate_pos;                /* old buckets below this have moved */
    struct mc_class cls[MC_MAX_CLASSES];
    unsigned nclasses;                 /* classes 1..nclasses */
    uint32_t chunk_max;
    uint64_t mem_used;
    uint64_t cas_id;
    uint64_t started;                  /* like memcached's process_started */
    uint64_t last_now;
    uint64_t oldest_live, oldest_cas;  /* flush_all */
    unsigned sweep_state, sweep_cls;   /* 0 idle, 1 in a pass, 2 pass done */
    struct mc_item *sweep_cursor;
    struct mc_store_stats st;
};

uint64_t mc_store_next_cas(struct mc_store *s);
uint32_t mc_store_realtime(const struct mc_store *s, int64_t exptime, uint64_t now);
bool mc_item_flushed(const struct mc_store *s, const struct mc_item *it, uint64_t now);
void mc_store_unlink(struct mc_store *s, struct mc_item *it);
struct mc_item *mc_item_alloc(struct mc_store *s, const uint8_t *key, size_t keylen, uint32_t flags,
                              uint32_t exptime, uint64_t vlen, uint64_t now, enum mc_status *err);
void mc_item_discard(struct mc_store *s, struct mc_item *it);
void mc_store_link(struct mc_store *s, struct mc_item *it, struct mc_item *old, uint64_t now);
struct mc_item *mc_store_find(struct mc_store *s, const uint8_t *key, size_t len, uint64_t now);
void mc_item_update(struct mc_store *s, struct mc_item *it, uint64_t now);
void mc_item_bump(struct mc_store *s, struct mc_item *it, uint64_t now);
#endif
