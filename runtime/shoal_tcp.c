/* The TCP part of the runtime API: this shard's stack, then net/tcp.c. */
#include "shoal.h"
#include "../net/net_kernel.h"

int shoal_tcp_listen(uint16_t port, const struct tcp_callbacks *cb, void *arg)
{
    struct net_stack *ns = net_this();
    return ns ? tcp_listen(ns, port, cb, arg) : -1;
}

int shoal_tcp_listen_cc(uint16_t port, const struct tcp_callbacks *cb, void *arg, enum tcp_cc_algo algo)
{
    struct net_stack *ns = net_this();
    /* Checked first so that a bad algo leaves no listener behind (the kernel builds both in). */
    if (!ns || (algo != TCP_CC_NEWRENO && algo != TCP_CC_CUBIC) || tcp_listen(ns, port, cb, arg))
        return -1;
    return tcp_listen_set_cc(ns, port, algo);
}

shoal_tcp_conn *shoal_tcp_connect(uint32_t ip, uint16_t port, const struct tcp_callbacks *cb, void *arg)
{
    struct net_stack *ns = net_this();
    return ns ? tcp_connect(ns, ip, port, cb, arg) : 0;
}

void shoal_tcp_set_arg(shoal_tcp_conn *c, void *arg) { tcp_set_arg(c, arg); }
int shoal_tcp_set_cc(shoal_tcp_conn *c, enum tcp_cc_algo algo) { return tcp_set_cc(c, algo); }
size_t shoal_tcp_send(shoal_tcp_conn *c, const void *data, size_t len) { return tcp_send(c, data, len); }
size_t shoal_tcp_send_space(const shoal_tcp_conn *c) { return tcp_send_space(c); }
void shoal_tcp_close(shoal_tcp_conn *c) { tcp_close(c); }
void shoal_tcp_abort(shoal_tcp_conn *c) { tcp_abort(c); }
void shoal_tcp_set_nodelay(shoal_tcp_conn *c, bool on) { tcp_set_nodelay(c, on); }
void shoal_tcp_recv_pause(shoal_tcp_conn *c) { tcp_recv_pause(c); }
void shoal_tcp_recv_resume(shoal_tcp_conn *c) { tcp_recv_resume(c); }
void shoal_tcp_peer(const shoal_tcp_conn *c, uint32_t *ip, uint16_t *port) { tcp_peer(c, ip, port); }
void shoal_tcp_info(const shoal_tcp_conn *c, struct tcp_conn_info *out) { tcp_get_info(c, out); }
