/*
 * The whole network stack (and the packet buffers) built into one host
 * test or fuzz target: include this instead of listing the stack files. The
 * includer supplies its struct net_env.
 */
#include "../../drivers/netbuf.c"
#include "../../kernel/timer_wheel.c"
#include "../../net/stack.c"
#include "../../net/arp.c"
#include "../../net/ipv4.c"
#include "../../net/icmp.c"
#include "../../net/udp.c"
#include "../../net/checksum.c"
#include "../../net/ip_reass.c"
#include "../../net/toeplitz.c"
#include "../../net/tcp_isn.c"
#include "../../net/tcp_conn.c"
#include "../../net/tcp_input.c"
#include "../../net/tcp_output.c"
#include "../../net/tcp_timer.c"
#include "../../net/tcp_cc.c"
#include "../../net/tcp_cubic.c"
