/* ip=A.B.C.D/N gw=A.B.C.D mtu=N from the kernel command line: one reading for every stack the image
   may carry (ours in net_kernel.c, lwIP's in runtime/lwip). */
#ifndef NET_NET_CONFIG_H
#define NET_NET_CONFIG_H
#include <stdbool.h>
#include <stdint.h>
struct cmdline;

struct net_config {
    uint32_t ip, netmask, gateway;
    uint16_t mtu;
    bool configured;              /* an address to use (static, or a DHCP lease) */
};

/* Fills cfg (configured when ip= is there and well formed; mtu 0 when mtu= is absent or out of
   576..9000). False, with a message on the console, when ip= is there but malformed. */
bool net_config_parse(const struct cmdline *cmd, struct net_config *cfg);
#endif
