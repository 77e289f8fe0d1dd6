/*
 * ARP (RFC 826) for one shard: a small cache, requests for unresolved
 * next hops with their frames held (a few per address, as Linux's
 * unresolved queue), answers to requests for our address, and a
 * gratuitous announcement when an address is taken. Every mapping
 * learned here is sent to the other shards, so one exchange serves all.
 */
#include "stack.h"
#include "../kernel/string.h"

#define ARP_LEN            28
#define ARP_VALID_NS       (60ULL * 1000000000ULL)
#define ARP_RETRY_NS       (1000ULL * 1000000ULL)
#define ARP_MAX_TRIES      3

enum { ARP_FREE, ARP_PENDING, ARP_VALID };

static const uint8_t bcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

struct arp_update {
    uint32_t ip;
    uint8_t mac[6];
    bool create;
};

static struct arp_entry *find(struct net_stack *ns, uint32_t ip)
{
    for (unsigned i = 0; i < ARP_CACHE_SIZE; i++)
        if (ns->arp[i].state != ARP_FREE && ns->arp[i].ip == ip)
            return &ns->arp[i];
    return 0;
}

static void drop_pending(struct net_stack *ns, struct arp_entry *e)
{
    for (unsigned i = 0; i < e->npending; i++) {
        netbuf_free(e->pending[i]);
        ns->stats.ip_arp_dropped++;
    }
    e->npending = 0;
}

/* Entries waiting for a reply may fill at most this much of the cache. */
#define ARP_PENDING_LIMIT (ARP_CACHE_SIZE / 4)

/*
 * A slot for a new entry. Unanswered requests must not push out resolved
 * neighbours: replies to a flood of spoofed on-link sources would
 * otherwise evict the gateway and every real peer. So once
 * ARP_PENDING_LIMIT entries wait, a new one takes the oldest waiting
 * entry's slot; otherwise a free slot, else the least recently used
 * resolved entry.
 */
static struct arp_entry *slot_for(struct net_stack *ns)
{
    struct arp_entry *lru = 0, *oldest_pending = 0, *free_slot = 0;
    unsigned pending = 0;
    for (unsigned i = 0; i < ARP_CACHE_SIZE; i++) {
        struct arp_entry *e = &ns->arp[i];
        if (e->state == ARP_FREE && !free_slot)
            free_slot = e;
        if (e->state == ARP_VALID && (!lru || e->used_ns < lru->used_ns))
            lru = e;
        if (e->state == ARP_PENDING) {
            pending++;
            if (!oldest_pending || e->used_ns < oldest_pending->used_ns)
                oldest_pending = e;
        }
    }
    if (pending >= ARP_PENDING_LIMIT)
        return oldest_pending;
    if (free_slot)
        return free_slot;
    return lru ? lru : oldest_pending;
}

static void put_eth(struct netbuf *f, const uint8_t *dst, const uint8_t *src, uint16_t type)
{
    f->data -= ETH_HLEN;
    f->len += ETH_HLEN;
    memcpy(f->data, dst, 6);
    memcpy(f->data + 6, src, 6);
    wr16(f->data + 12, type);
}

static void send_arp(struct net_stack *ns, uint16_t op, const uint8_t *tha, uint32_t tpa, const uint8_t *eth_dst)
{
    struct netbuf *f = netbuf_alloc();
    if (!f) {
        ns->stats.no_memory++;
        return;
    }
    uint8_t *a = f->data;
    wr16(a, 1);                 /* Ethernet */
    wr16(a + 2, ETHERTYPE_IPV4);
    a[4] = 6;
    a[5] = 4;
    wr16(a + 6, op);
    memcpy(a + 8, ns->mac, 6);
    wr32(a + 14, ns->cfg.ip);
    memcpy(a + 18, tha, 6);
    wr32(a + 24, tpa);
    f->len = ARP_LEN;
    put_eth(f, eth_dst, ns->mac, ETHERTYPE_ARP);
    ns->stats.arp_tx++;
    ns->env->send(ns, f);
}

static void send_request(struct net_stack *ns, struct arp_entry *e, uint64_t now)
{
    static const uint8_t zero[6];
    e->tries++;
    e->expires_ns = now + ARP_RETRY_NS;
    send_arp(ns, 1, zero, e->ip, bcast_mac);
}

static void transmit(struct net_stack *ns, struct netbuf *f, const uint8_t *mac)
{
    put_eth(f, mac, ns->mac, ETHERTYPE_IPV4);
    ns->env->send(ns, f);
}

static void resolved(struct net_stack *ns, struct arp_entry *e, const uint8_t mac[6], uint64_t now)
{
    memcpy(e->mac, mac, 6);
    e->state = ARP_VALID;
    e->tries = 0;
    e->expires_ns = now + ARP_VALID_NS;
    for (unsigned i = 0; i < e->npending; i++)
        transmit(ns, e->pending[i], e->mac);
    e->npending = 0;
}

/* Record ip -> mac here; create the entry only if asked (RFC 826: only for requests aimed at us). */
static bool update(struct net_stack *ns, uint32_t ip, const uint8_t mac[6], bool create)
{
    uint64_t now = ns->env->now_ns();
    struct arp_entry *e = find(ns, ip);
    if (!e && create && (e = slot_for(ns))) {
        drop_pending(ns, e);
        e->ip = ip;
        e->used_ns = now;
    }
    if (!e)
        return false;
    resolved(ns, e, mac, now);
    return true;
}

void arp_learn_remote(struct net_stack *ns, const void *msg)
{
    const struct arp_update *u = msg;
    update(ns, u->ip, u->mac, u->create);
}

void arp_input(struct net_stack *ns, struct netbuf *f)
{
    const uint8_t *a = f->data + ETH_HLEN;
    ns->stats.arp_rx++;
    if (f->len < ETH_HLEN + ARP_LEN || rd16(a) != 1 || rd16(a + 2) != ETHERTYPE_IPV4 || a[4] != 6 || a[5] != 4 ||
        (rd16(a + 6) != 1 && rd16(a + 6) != 2) || (a[8] & 1)) {
        ns->stats.arp_bad++;
        netbuf_free(f);
        return;
    }
    uint16_t op = rd16(a + 6);
    struct arp_update u = { .ip = rd32(a + 14) };
    memcpy(u.mac, a + 8, 6);
    uint32_t tpa = rd32(a + 24);
    netbuf_free(f);
    if (!ns->cfg.configured || u.ip == 0 || u.ip == ns->cfg.ip || ipv4_is_broadcast(ns, u.ip))
        return;
    /* RFC 826: update a known sender; add it only when the packet was aimed at us (it will hear from us). */
    u.create = tpa == ns->cfg.ip;
    if (update(ns, u.ip, u.mac, u.create)) {
        ns->stats.arp_learned++;
        ns->env->broadcast(ns, arp_learn_remote, &u, sizeof u);
    }
    if (op == 1 && tpa == ns->cfg.ip) {
        ns->stats.arp_requests_answered++;
        send_arp(ns, 2, u.mac, u.ip, u.mac);
    }
}

void arp_output(struct net_stack *ns, struct netbuf *f, uint32_t next_hop)
{
    if (next_hop == 0xFFFFFFFFu || ipv4_is_broadcast(ns, next_hop)) {
        transmit(ns, f, bcast_mac);
        return;
    }
    uint64_t now = ns->env->now_ns();
    struct arp_entry *e = find(ns, next_hop);
    if (e && e->state == ARP_VALID && now < e->expires_ns) {
        e->used_ns = now;
        transmit(ns, f, e->mac);
        return;
    }
    if (!e) {
        e = slot_for(ns);
        if (!e) {
            ns->stats.ip_arp_dropped++;
            netbuf_free(f);
            return;
        }
        drop_pending(ns, e);
        *e = (struct arp_entry){ .ip = next_hop, .state = ARP_PENDING, .used_ns = now };
        send_request(ns, e, now);
    } else if (e->state == ARP_VALID) {
        /* Expired: ask again; the frame waits for the answer. */
        e->state = ARP_PENDING;
        e->tries = 0;
        send_request(ns, e, now);
    }
    if (e->npending == ARP_PENDING_MAX) {
        netbuf_free(e->pending[0]);
        ns->stats.ip_arp_dropped++;
        memmove(e->pending, e->pending + 1, sizeof e->pending[0] * (ARP_PENDING_MAX - 1));
        e->npending--;
    }
    e->pending[e->npending++] = f;
}

bool arp_lookup(struct net_stack *ns, uint32_t ip, uint8_t mac[6])
{
    struct arp_entry *e = find(ns, ip);
    if (!e || e->state != ARP_VALID)
        return false;
    memcpy(mac, e->mac, 6);
    return true;
}

void arp_tick(struct net_stack *ns, uint64_t now)
{
    for (unsigned i = 0; i < ARP_CACHE_SIZE; i++) {
        struct arp_entry *e = &ns->arp[i];
        if (e->state != ARP_PENDING || now < e->expires_ns)
            continue;
        if (e->tries < ARP_MAX_TRIES) {
            send_request(ns, e, now);
            continue;
        }
        drop_pending(ns, e);
        e->state = ARP_FREE;
    }
}

void arp_announce(struct net_stack *ns)
{
    static const uint8_t zero[6];
    /* Gratuitous ARP (RFC 5227 §3): a request for our own address, so caches update. */
    send_arp(ns, 1, zero, ns->cfg.ip, bcast_mac);
}
