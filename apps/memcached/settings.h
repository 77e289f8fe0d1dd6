/*
 * Command-line flags, compatible with memcached's (given after `--` on the
 * kernel command line, or as the Linux program's arguments). Every shard
 * parses its own copy, so nothing here is shared.
 */
#ifndef MC_SETTINGS_H
#define MC_SETTINGS_H
#include <stdbool.h>
#include <stdint.h>

struct mc_settings {
    uint16_t tcp_port;          /* -p, default 11211 */
    uint16_t udp_port;          /* -U, default 0 (off, as in memcached 1.6) */
    uint64_t mem_limit;         /* -m in MiB, stored in bytes; default 64 MiB for the whole cache */
    uint32_t max_conns;         /* -c, default 1024 for the whole server */
    uint32_t item_size_max;     /* -I, default 1 MiB, k/m suffixes */
    uint32_t threads;           /* -t: accepted and reported; shards are vCPUs */
    uint32_t verbose;           /* -v, -vv, -vvv */
    uint32_t chunk_min;         /* -n, default 48 */
    double factor;              /* -f, default 1.25 */
    bool cas_enabled;           /* -C turns it off */
    bool evict;                 /* -M turns eviction off: errors instead */
};

/* false, with a message in err, on a bad flag; the caller prints it and exits with status 64. */
bool mc_settings_parse(struct mc_settings *s, int argc, char **argv, char *err, unsigned errlen);
#endif
