/* What lwip_net.c and lwip_tcp.c share (private to runtime/lwip/). */
#ifndef RUNTIME_LWIP_RT_H
#define RUNTIME_LWIP_RT_H
#include <stdbool.h>
#include <stdint.h>

/* lwIP lives on this shard only; its state is touched nowhere else. */
#define LWIP_SHARD 0u

/* Push queued TCP segments out of the connections that sent since the last flush (lwip_tcp.c). */
void lwip_tcp_flush(void);
/* True once lwIP runs (shard 0 attached its netif). */
bool lwip_running(void);
#endif
