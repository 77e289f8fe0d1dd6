/* memcached over UDP: the 8-byte frame header protocol on every shard. */
#ifndef MC_UDP_SERVER_H
#define MC_UDP_SERVER_H
#include <stdbool.h>
#include <stdint.h>
bool mc_udp_start(uint16_t port);
#endif
