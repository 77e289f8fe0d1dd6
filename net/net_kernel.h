/* The kernel's side of the IPv4 stack: start-up from the command line, and this shard's stack. */
#ifndef NET_NET_KERNEL_H
#define NET_NET_KERNEL_H
struct cmdline;
struct net_stack;
/* Boot, BSP, after netif_init(): a stack per shard, configured from ip=/gw=/mtu=. */
void net_start(const struct cmdline *cmd);
/* This shard's stack, NULL without a network device. */
struct net_stack *net_this(void);
#endif
