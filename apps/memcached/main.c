/*
 * memcached: a memcached 1.6-compatible cache, sharded per vCPU.
 *
 *   -- [-p TCP_PORT] [-U UDP_PORT] [-m MEGABYTES] [-c MAX_CONNS] [-I ITEM_MAX] [-t N] [-v] ...
 *
 * Every key belongs to one shard (mc_key_shard); a connection is served on
 * the shard its flow hashes to and reaches other shards' keys by message.
 * The same source builds as a Linux program (make linux APP=memcached).
 */
#include "../../runtime/shoal.h"
#include "shard.h"
#include "tcp_server.h"
#include "udp_server.h"

/* Runs on shard 0 once per shard that listens: "ready" means every shard takes connections. */
static void shard_ready(void *arg)
{
    (void)arg;
    struct mc_shard *sh = mc_this_shard();
    if (++sh->shards_ready < shard_count())
        return;
    const struct mc_settings *s = &sh->set;
    shoal_print("memcached: ready, TCP port %u, UDP port %u, %u shards, %llu MiB, item max %u\n", s->tcp_port,
                s->udp_port, shard_count(), (unsigned long long)(s->mem_limit >> 20), s->item_size_max);
}

void app_main(int argc, char **argv)
{
    if (!mc_shard_init(argc, argv)) {
        shoal_exit(64);
        return;
    }
    const struct mc_settings *s = &mc_this_shard()->set;
    if (s->tcp_port && !mc_tcp_start(s->tcp_port)) {
        shoal_print("memcached: cannot listen on TCP port %u (shard %u)\n", s->tcp_port, shard_id());
        shoal_exit(71);
    }
    if (s->udp_port && !mc_udp_start(s->udp_port)) {
        shoal_print("memcached: cannot bind UDP port %u (shard %u)\n", s->udp_port, shard_id());
        shoal_exit(71);
    }
    smp_call(0, shard_ready, 0);
}
