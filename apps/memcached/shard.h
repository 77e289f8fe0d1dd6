/*
 * One shard's part of the cache: its store (the keys that hash to it), its
 * settings, its connection counters and the background expiry timer. Each
 * shard creates its own in app_main; other shards reach it only through
 * smp_call, never by touching it.
 */
#ifndef MC_SHARD_H
#define MC_SHARD_H
#include "../../runtime/shoal.h"
#include "settings.h"
#include "store.h"

#define MC_VERSION "1.6.18-shoal"
#define MC_MAX_SHARDS 64

struct mc_conn_stats {
    uint64_t curr_conns, total_conns, rejected_conns, bytes_read, bytes_written;
    uint64_t cmd_meta, cmd_other;
};

struct mc_shard {
    struct mc_settings set;
    struct mc_store *store;
    struct mc_conn_stats conns;
    struct timer sweep;
    uint64_t started_s;          /* Unix seconds at start (stats uptime) */
    uint32_t verbosity;
    unsigned shards_ready;       /* shard 0: shards listening so far */
};

struct mc_shard *mc_this_shard(void);
/* Unix seconds: what expiry times are measured in. */
uint64_t mc_now(void);
bool mc_shard_init(int argc, char **argv);
#endif
