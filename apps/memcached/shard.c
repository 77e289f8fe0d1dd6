/* Per-shard setup: settings, store, expiry sweep (see shard.h). */
#include "shard.h"

/* Written once by each shard for itself in app_main; read only by that shard. */
static struct mc_shard *shards[MC_MAX_SHARDS];

#define MC_SWEEP_PERIOD_NS 1000000000ull
#define MC_SWEEP_BUDGET    256

struct mc_shard *mc_this_shard(void) { return shards[shard_id()]; }

uint64_t mc_now(void) { return wall_ns() / 1000000000ull; }

/* Background expiry, like memcached's LRU crawler: a bounded slice per tick, so it never
   holds up requests; it runs again soon while it keeps finding work. */
static void sweep(struct timer *t)
{
    struct mc_shard *sh = mc_this_shard();
    unsigned examined = mc_store_sweep(sh->store, mc_now(), MC_SWEEP_BUDGET);
    shoal_timer_arm(t, now_ns() + (examined ? MC_SWEEP_PERIOD_NS / 100 : MC_SWEEP_PERIOD_NS));
}

bool mc_shard_init(int argc, char **argv)
{
    unsigned id = shard_id(), n = shard_count();
    if (id >= MC_MAX_SHARDS) {
        shoal_log("memcached: shard %u beyond the %u supported", id, MC_MAX_SHARDS);
        return false;
    }
    struct mc_shard *sh = calloc(1, sizeof *sh);
    char err[96];
    if (!sh)
        return false;
    if (!mc_settings_parse(&sh->set, argc, argv, err, sizeof err)) {
        if (id == 0)
            shoal_print("memcached: %s\n", err);
        free(sh);
        return false;
    }
    struct mc_store_config cfg = {
        .mem_limit = sh->set.mem_limit / n, .item_size_max = sh->set.item_size_max,
        .chunk_min = sh->set.chunk_min, .factor = sh->set.factor, .cas_enabled = sh->set.cas_enabled,
        .no_evict = !sh->set.evict, .cas_stride = n, .cas_offset = id,
    };
    sh->started_s = mc_now();
    sh->verbosity = sh->set.verbose;
    sh->store = mc_store_create(&cfg, sh->started_s);
    if (!sh->store) {
        shoal_log("memcached: no memory for the store");
        free(sh);
        return false;
    }
    shards[id] = sh;
    shoal_timer_init(&sh->sweep, sweep);
    shoal_timer_arm(&sh->sweep, now_ns() + MC_SWEEP_PERIOD_NS);
    return true;
}
