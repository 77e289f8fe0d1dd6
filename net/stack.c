/* One shard's stack: set-up, the Ethernet layer, housekeeping. */
#include "stack.h"
#include "tcp.h"
#include "../kernel/malloc.h"
#include "../kernel/string.h"

#define ICMP_BURST 50

void net_stack_init(struct net_stack *ns, const struct net_env *env, unsigned shard, const uint8_t mac[6],
                    const struct net_config *cfg)
{
    memset(ns, 0, sizeof *ns);
    ns->env = env;
    ns->shard = shard;
    memcpy(ns->mac, mac, 6);
    ns->cfg = *cfg;
    if (ns->cfg.mtu < 576 || ns->cfg.mtu > 9000)
        ns->cfg.mtu = 1500;
    ns->next_ip_id = (uint16_t)shard;
    ns->icmp_tokens = ICMP_BURST;
    ip_reass_init(&ns->reass, malloc, free);
    (void)tcp_init(ns);          /* without memory for it, TCP segments are dropped */
}

void net_set_config(struct net_stack *ns, const struct net_config *cfg)
{
    uint16_t mtu = ns->cfg.mtu;
    ns->cfg = *cfg;
    if (ns->cfg.mtu < 576 || ns->cfg.mtu > mtu)
        ns->cfg.mtu = mtu;
    if (ns->shard == 0 && cfg->configured)
        arp_announce(ns);
}

static bool for_us(const struct net_stack *ns, const uint8_t *dst)
{
    static const uint8_t broadcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    return memcmp(dst, ns->mac, 6) == 0 || memcmp(dst, broadcast, 6) == 0;
}

void net_input(struct net_stack *ns, struct netbuf *f)
{
    ns->stats.rx_frames++;
    if (f->len < ETH_HLEN || !for_us(ns, f->data)) {
        ns->stats.rx_bad_eth++;
        netbuf_free(f);
        return;
    }
    switch (rd16(f->data + 12)) {
    case ETHERTYPE_ARP:
        if (f->frag) {  /* an ARP packet is never large enough to need a second buffer */
            ns->stats.rx_bad_eth++;
            netbuf_free(f);
            return;
        }
        arp_input(ns, f);
        return;
    case ETHERTYPE_IPV4:
        ipv4_input(ns, f);
        return;
    default:
        ns->stats.rx_other_ethertype++;
        netbuf_free(f);
    }
}

static void reass_timed_out(void *ctx, const uint8_t *hdr, size_t len)
{
    icmp_send_time_exceeded(ctx, hdr, len);
}

void net_tick(struct net_stack *ns)
{
    uint64_t now = ns->env->now_ns();
    arp_tick(ns, now);
    ip_reass_expire(&ns->reass, now, reass_timed_out, ns);
}
