/* memcached over TCP: a listener on every shard, each connection a struct mc_conn. */
#ifndef MC_TCP_SERVER_H
#define MC_TCP_SERVER_H
#include <stdbool.h>
#include <stdint.h>
bool mc_tcp_start(uint16_t port);
#endif
