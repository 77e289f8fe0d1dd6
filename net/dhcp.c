/* DHCP client state machine and message format: see dhcp.h for the decisions. */
#include "dhcp.h"

/* Provided by kernel/string.c in the kernel and by libc on the host. */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#define NS_PER_S 1000000000ull
#define NS_PER_MS 1000000ull

/* BOOTP message layout (RFC 2131 figure 1). */
#define OFF_OP      0
#define OFF_HTYPE   1
#define OFF_HLEN    2
#define OFF_XID     4
#define OFF_SECS    8
#define OFF_CIADDR  12
#define OFF_YIADDR  16
#define OFF_CHADDR  28
#define OFF_COOKIE  236
#define OFF_OPTIONS 240

#define BOOTREQUEST 1
#define BOOTREPLY   2
#define HTYPE_ETHER 1

enum { MSG_DISCOVER = 1, MSG_OFFER = 2, MSG_REQUEST = 3, MSG_ACK = 5, MSG_NAK = 6 };

enum {
    OPT_PAD = 0,
    OPT_SUBNET = 1,
    OPT_ROUTER = 3,
    OPT_DNS = 6,
    OPT_MTU = 26,
    OPT_REQUESTED_IP = 50,
    OPT_LEASE = 51,
    OPT_MSG_TYPE = 53,
    OPT_SERVER_ID = 54,
    OPT_PARAMS = 55,
    OPT_MAX_SIZE = 57,
    OPT_T1 = 58,
    OPT_T2 = 59,
    OPT_CLIENT_ID = 61,
    OPT_END = 255,
};

#define RETRANSMIT_FIRST_S 4
#define RETRANSMIT_MAX_S   64
#define JITTER_MS          1000
#define RENEW_FLOOR_NS     (60 * NS_PER_S)
#define NAK_DELAY_MAX_S    64
#define MAX_MESSAGE_SIZE   1500   /* the IP datagram we can take: our MTU */
#define MIN_MTU            68     /* RFC 2132 5.1 */

static const uint8_t magic_cookie[4] = { 99, 130, 83, 99 };
static const uint8_t param_list[] = {
    OPT_SUBNET, OPT_ROUTER, OPT_DNS, OPT_MTU, OPT_LEASE, OPT_T1, OPT_T2, OPT_SERVER_ID,
};

/* Longest we ever write: header, type, client id, parameters, max size, requested ip,
   server id, end. */
_Static_assert(OFF_OPTIONS + 3 + 9 + 2 + sizeof param_list + 4 + 6 + 6 + 1 <= DHCP_MSG_LEN,
               "DHCP_MSG_LEN too short for our options");

/* ---- small helpers ---- */

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > DHCP_NEVER - b ? DHCP_NEVER : a + b;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* DHCP_NEVER is not a time, so it is never due, not even at now == UINT64_MAX. */
static bool due(uint64_t now, uint64_t deadline)
{
    return deadline != DHCP_NEVER && now >= deadline;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t get_be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v;
}

/* Addresses stay in wire order. */
static uint32_t get_addr(const uint8_t *p)
{
    uint32_t a;
    memcpy(&a, p, 4);
    return a;
}

static bool usable_addr(uint32_t a)
{
    return a != 0 && a != DHCP_BROADCAST;
}

/* xorshift32: xids and jitter only need to differ between clients, not resist guessing. */
static uint32_t next_random(struct dhcp_client *c)
{
    uint32_t x = c->rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c->rng = x;
    return x;
}

static bool has_lease(enum dhcp_state s)
{
    return s == DHCP_BOUND || s == DHCP_RENEWING || s == DHCP_REBINDING;
}

/* ---- building messages ---- */

static size_t put_option(uint8_t *m, size_t at, uint8_t code, uint8_t len, const void *val)
{
    m[at] = code;
    m[at + 1] = len;
    memcpy(m + at + 2, val, len);
    return at + 2 + len;
}

static uint16_t secs_since(uint64_t start, uint64_t now)
{
    uint64_t s = now > start ? (now - start) / NS_PER_S : 0;
    return s > 0xFFFF ? 0xFFFF : (uint16_t)s;
}

/* Header and the options every message carries; returns where the next option goes. */
static size_t begin_message(const struct dhcp_client *c, uint8_t *m, uint8_t type, uint32_t ciaddr,
                            uint64_t now)
{
    memset(m, 0, DHCP_MSG_LEN);
    m[OFF_OP] = BOOTREQUEST;
    m[OFF_HTYPE] = HTYPE_ETHER;
    m[OFF_HLEN] = 6;
    put_be32(m + OFF_XID, c->xid);
    put_be16(m + OFF_SECS, secs_since(c->start_ns, now));
    /* flags stay 0: no BROADCAST bit (dhcp.h) */
    memcpy(m + OFF_CIADDR, &ciaddr, 4);
    memcpy(m + OFF_CHADDR, c->mac, 6);
    memcpy(m + OFF_COOKIE, magic_cookie, 4);

    uint8_t client_id[7] = { HTYPE_ETHER };
    memcpy(client_id + 1, c->mac, 6);
    uint8_t max_size[2];
    put_be16(max_size, MAX_MESSAGE_SIZE);
    size_t at = put_option(m, OFF_OPTIONS, OPT_MSG_TYPE, 1, &type);
    at = put_option(m, at, OPT_CLIENT_ID, sizeof client_id, client_id);
    at = put_option(m, at, OPT_PARAMS, sizeof param_list, param_list);
    return put_option(m, at, OPT_MAX_SIZE, sizeof max_size, max_size);
}

static void finish_and_send(struct dhcp_client *c, uint8_t *m, size_t at, uint32_t to)
{
    m[at] = OPT_END;   /* the rest is already zero: padding */
    c->ops->send(c->ctx, m, DHCP_MSG_LEN, to);
}

static void send_discover(struct dhcp_client *c, uint64_t now)
{
    uint8_t m[DHCP_MSG_LEN];
    size_t at = begin_message(c, m, MSG_DISCOVER, 0, now);
    finish_and_send(c, m, at, DHCP_BROADCAST);
}

/* RFC 2131 table 5: only the REQUEST that answers an offer names the address and server;
   renewing and rebinding show the address in ciaddr instead. */
static void send_request(struct dhcp_client *c, uint64_t now)
{
    uint8_t m[DHCP_MSG_LEN];
    if (c->state == DHCP_REQUESTING) {
        size_t at = begin_message(c, m, MSG_REQUEST, 0, now);
        at = put_option(m, at, OPT_REQUESTED_IP, 4, &c->offer_ip);
        at = put_option(m, at, OPT_SERVER_ID, 4, &c->offer_server);
        finish_and_send(c, m, at, DHCP_BROADCAST);
        return;
    }
    size_t at = begin_message(c, m, MSG_REQUEST, c->lease.ip, now);
    finish_and_send(c, m, at, c->state == DHCP_RENEWING ? c->lease.server_id : DHCP_BROADCAST);
}

/* ---- retransmission ---- */

/* RFC 2131 4.1: 4 s doubling to 64 s, each randomised by -1..+1 s. */
static void schedule_backoff(struct dhcp_client *c, uint64_t now)
{
    uint64_t ms = (uint64_t)c->backoff_s * 1000 - JITTER_MS + next_random(c) % (2 * JITTER_MS + 1);
    c->next_ns = add_sat(now, ms * NS_PER_MS);
    c->backoff_s = c->backoff_s * 2 > RETRANSMIT_MAX_S ? RETRANSMIT_MAX_S : c->backoff_s * 2;
}

/* RFC 2131 4.4.5: half the time left, not under 60 s — scaled to lease/16 for short leases. */
static void schedule_renewal_retry(struct dhcp_client *c, uint64_t now, uint64_t until)
{
    uint64_t floor = min_u64(RENEW_FLOOR_NS, (uint64_t)c->lease.lease_s * NS_PER_S / 16);
    uint64_t half = until > now ? (until - now) / 2 : 0;
    c->next_ns = add_sat(now, half > floor ? half : floor);
}

/* Send the current state's message and schedule its retransmission (state first, so the
   send callback sees where we are). */
static void transmit(struct dhcp_client *c, uint64_t now)
{
    if (c->sends < 0xFF)
        c->sends++;
    switch (c->state) {
    case DHCP_SELECTING:
        schedule_backoff(c, now);
        send_discover(c, now);
        return;
    case DHCP_REQUESTING:
        schedule_backoff(c, now);
        send_request(c, now);
        return;
    case DHCP_RENEWING:
        schedule_renewal_retry(c, now, c->t2_ns);
        send_request(c, now);
        return;
    case DHCP_REBINDING:
        schedule_renewal_retry(c, now, c->expiry_ns);
        send_request(c, now);
        return;
    default:
        return;
    }
}

/* ---- transitions ---- */

static void begin_exchange(struct dhcp_client *c, enum dhcp_state s, uint64_t now)
{
    c->state = s;
    c->xid = next_random(c);
    c->start_ns = now;
    c->request_ns = now;
    c->backoff_s = RETRANSMIT_FIRST_S;
    c->sends = 0;
}

static void begin_discover(struct dhcp_client *c, uint64_t now)
{
    memset(&c->lease, 0, sizeof c->lease);
    begin_exchange(c, DHCP_SELECTING, now);
    transmit(c, now);
}

/* Leaves a bound state: the caller decides what comes next. */
static void drop_lease(struct dhcp_client *c)
{
    c->state = DHCP_INIT;
    c->next_ns = DHCP_NEVER;
    memset(&c->lease, 0, sizeof c->lease);
    c->ops->lost(c->ctx);
}

static void enter_renewing(struct dhcp_client *c, uint64_t now)
{
    begin_exchange(c, DHCP_RENEWING, now);
    transmit(c, now);
}

/* Straight from BOUND (a late timer) this is a new exchange; from RENEWING it continues
   the renewal's xid, so a late answer to a unicast REQUEST still counts. */
static void enter_rebinding(struct dhcp_client *c, uint64_t now)
{
    if (c->state == DHCP_BOUND)
        begin_exchange(c, DHCP_REBINDING, now);
    c->state = DHCP_REBINDING;
    transmit(c, now);
}

/* ---- parsing replies ---- */

enum { HAVE_SERVER = 1, HAVE_LEASE = 2, HAVE_T1 = 4, HAVE_T2 = 8 };

struct reply {
    uint8_t type;
    uint8_t have;
    uint32_t yiaddr;
    struct dhcp_lease l;   /* lease fields as sent; ip is yiaddr */
};

static void take_dns(struct reply *r, const uint8_t *v, uint8_t len)
{
    if (len < 4 || len % 4)
        return;
    r->l.dns[0] = get_addr(v);
    r->l.dns[1] = len >= 8 ? get_addr(v + 4) : 0;
}

static void take_u32(struct reply *r, uint32_t *dst, uint8_t flag, const uint8_t *v, uint8_t len)
{
    if (len != 4)
        return;
    *dst = get_be32(v);
    r->have |= flag;
}

static void take_option(struct reply *r, uint8_t code, const uint8_t *v, uint8_t len)
{
    switch (code) {
    case OPT_MSG_TYPE:
        if (len == 1)
            r->type = v[0];
        return;
    case OPT_SUBNET:
        if (len == 4)
            r->l.netmask = get_addr(v);
        return;
    case OPT_ROUTER:   /* a list in order of preference: the first is enough */
        if (len >= 4 && len % 4 == 0)
            r->l.router = get_addr(v);
        return;
    case OPT_DNS:
        take_dns(r, v, len);
        return;
    case OPT_MTU:
        if (len == 2 && get_be16(v) >= MIN_MTU)
            r->l.mtu = get_be16(v);
        return;
    case OPT_SERVER_ID:
        if (len == 4 && get_addr(v) != 0) {
            r->l.server_id = get_addr(v);
            r->have |= HAVE_SERVER;
        }
        return;
    case OPT_LEASE:
        take_u32(r, &r->l.lease_s, HAVE_LEASE, v, len);
        return;
    case OPT_T1:
        take_u32(r, &r->l.t1_s, HAVE_T1, v, len);
        return;
    case OPT_T2:
        take_u32(r, &r->l.t2_s, HAVE_T2, v, len);
        return;
    default:   /* everything else, option overload (52) included */
        return;
    }
}

/* False if an option runs past the buffer: then nothing in it can be trusted. */
static bool read_options(const uint8_t *o, size_t n, struct reply *r)
{
    size_t i = 0;
    while (i < n) {
        uint8_t code = o[i];
        if (code == OPT_END)
            return true;
        if (code == OPT_PAD) {
            i++;
            continue;
        }
        if (n - i < 2 || n - i - 2 < o[i + 1])
            return false;
        take_option(r, code, o + i + 2, o[i + 1]);
        i += 2 + (size_t)o[i + 1];
    }
    return true;
}

static bool parse_reply(const struct dhcp_client *c, const uint8_t *p, size_t len, struct reply *r)
{
    if (len < OFF_OPTIONS || p[OFF_OP] != BOOTREPLY)
        return false;
    if (get_be32(p + OFF_XID) != c->xid || memcmp(p + OFF_CHADDR, c->mac, 6) != 0)
        return false;
    if (memcmp(p + OFF_COOKIE, magic_cookie, 4) != 0)
        return false;
    memset(r, 0, sizeof *r);
    r->yiaddr = get_addr(p + OFF_YIADDR);
    if (!read_options(p + OFF_OPTIONS, len - OFF_OPTIONS, r))
        return false;
    return r->type != 0 && (r->have & HAVE_SERVER);
}

/* ---- handling replies ---- */

/* In REQUESTING and RENEWING we asked one server; in REBINDING anyone may answer; in
   SELECTING nobody was asked for an ACK or NAK. */
static bool from_expected_server(const struct dhcp_client *c, const struct reply *r)
{
    if (c->state == DHCP_REQUESTING)
        return r->l.server_id == c->offer_server;
    if (c->state == DHCP_RENEWING)
        return r->l.server_id == c->lease.server_id;
    return c->state == DHCP_REBINDING;
}

static void on_offer(struct dhcp_client *c, const struct reply *r, uint64_t now)
{
    if (c->state != DHCP_SELECTING || !usable_addr(r->yiaddr))
        return;
    c->offer_ip = r->yiaddr;
    c->offer_server = r->l.server_id;
    c->state = DHCP_REQUESTING;
    c->request_ns = now;
    c->backoff_s = RETRANSMIT_FIRST_S;
    c->sends = 0;
    transmit(c, now);
}

/* T1 <= T2 < lease, with RFC 2131 4.4.5's defaults for whatever is missing or out of order. */
static void settle_times(struct dhcp_lease *l, uint8_t have, uint64_t *t1, uint64_t *t2)
{
    uint64_t lease = (uint64_t)l->lease_s * NS_PER_S;
    uint64_t given1 = (uint64_t)l->t1_s * NS_PER_S, given2 = (uint64_t)l->t2_s * NS_PER_S;
    *t2 = (have & HAVE_T2) && given2 > 0 && given2 < lease ? given2 : lease / 8 * 7;
    *t1 = (have & HAVE_T1) && given1 > 0 && given1 <= *t2 ? given1 : lease / 2;
    if (*t1 > *t2)
        *t1 = *t2;
    l->t1_s = (uint32_t)(*t1 / NS_PER_S);
    l->t2_s = (uint32_t)(*t2 / NS_PER_S);
}

static void arm_lease(struct dhcp_client *c, const struct reply *r)
{
    c->lease = r->l;
    c->lease.ip = r->yiaddr;
    if (c->lease.lease_s == DHCP_LEASE_INFINITE) {
        c->lease.t1_s = c->lease.t2_s = DHCP_LEASE_INFINITE;
        c->t1_ns = c->t2_ns = c->expiry_ns = DHCP_NEVER;
        return;
    }
    uint64_t t1, t2;
    settle_times(&c->lease, r->have, &t1, &t2);
    c->t1_ns = add_sat(c->request_ns, t1);
    c->t2_ns = add_sat(c->request_ns, t2);
    c->expiry_ns = add_sat(c->request_ns, (uint64_t)c->lease.lease_s * NS_PER_S);
}

static bool config_changed(const struct dhcp_lease *a, const struct dhcp_lease *b)
{
    return a->ip != b->ip || a->netmask != b->netmask || a->router != b->router ||
           a->dns[0] != b->dns[0] || a->dns[1] != b->dns[1] || a->mtu != b->mtu;
}

static void on_ack(struct dhcp_client *c, const struct reply *r)
{
    if (!from_expected_server(c, r) || !usable_addr(r->yiaddr))
        return;
    if (!(r->have & HAVE_LEASE) || r->l.lease_s == 0)
        return;
    if (c->state == DHCP_REQUESTING && r->yiaddr != c->offer_ip)
        return;
    bool fresh = c->state == DHCP_REQUESTING;
    struct dhcp_lease old = c->lease;
    arm_lease(c, r);
    c->state = DHCP_BOUND;
    c->next_ns = DHCP_NEVER;
    c->naks = 0;
    if (fresh || config_changed(&old, &c->lease))
        c->ops->bound(c->ctx, &c->lease);
}

/* RFC 2131 3.1 step 5 / 4.4.5: back to INIT; restart after a delay that grows with
   consecutive NAKs. */
static void on_nak(struct dhcp_client *c, const struct reply *r, uint64_t now)
{
    if (!from_expected_server(c, r))
        return;
    bool had_lease = has_lease(c->state);
    uint64_t delay_s = c->naks >= 6 ? NAK_DELAY_MAX_S : (uint64_t)1 << c->naks;   /* 1, 2, ... 64 */
    if (c->naks < 0xFF)
        c->naks++;
    c->state = DHCP_INIT;
    c->next_ns = add_sat(now, delay_s * NS_PER_S);
    memset(&c->lease, 0, sizeof c->lease);
    if (had_lease)
        c->ops->lost(c->ctx);
}

/* ---- timers ---- */

/* BOUND, RENEWING, REBINDING: the latest due event wins, so a late timer skips
   straight to where the lease stands now. */
static void lease_timer(struct dhcp_client *c, uint64_t now)
{
    if (due(now, c->expiry_ns)) {
        drop_lease(c);
        begin_discover(c, now);
        return;
    }
    if (c->state != DHCP_REBINDING && due(now, c->t2_ns)) {
        enter_rebinding(c, now);
        return;
    }
    if (c->state == DHCP_BOUND) {
        if (due(now, c->t1_ns))
            enter_renewing(c, now);
        return;
    }
    if (due(now, c->next_ns))
        transmit(c, now);
}

/* ---- interface ---- */

void dhcp_init(struct dhcp_client *c, const uint8_t mac[6], uint32_t xid_seed,
               const struct dhcp_ops *ops, void *ctx)
{
    memset(c, 0, sizeof *c);
    c->ops = ops;
    c->ctx = ctx;
    memcpy(c->mac, mac, 6);
    c->state = DHCP_INIT;
    c->rng = xid_seed ? xid_seed : 0x9E3779B9u;   /* xorshift stays at 0 for ever */
    c->next_ns = DHCP_NEVER;
    c->t1_ns = c->t2_ns = c->expiry_ns = DHCP_NEVER;
}

void dhcp_start(struct dhcp_client *c, uint64_t now_ns)
{
    if (has_lease(c->state))
        drop_lease(c);
    c->state = DHCP_INIT;
    begin_discover(c, now_ns);
}

void dhcp_input(struct dhcp_client *c, const uint8_t *payload, size_t len, uint64_t now_ns)
{
    /* INIT and BOUND have no request outstanding: nothing to answer. */
    if (c->state == DHCP_INIT || c->state == DHCP_BOUND)
        return;
    struct reply r;
    if (!parse_reply(c, payload, len, &r))
        return;
    if (r.type == MSG_OFFER)
        on_offer(c, &r, now_ns);
    else if (r.type == MSG_ACK)
        on_ack(c, &r);
    else if (r.type == MSG_NAK)
        on_nak(c, &r, now_ns);
}

void dhcp_timer(struct dhcp_client *c, uint64_t now_ns)
{
    switch (c->state) {
    case DHCP_INIT:
        if (due(now_ns, c->next_ns))
            begin_discover(c, now_ns);
        return;
    case DHCP_SELECTING:
        if (due(now_ns, c->next_ns))
            transmit(c, now_ns);
        return;
    case DHCP_REQUESTING:
        if (!due(now_ns, c->next_ns))
            return;
        if (c->sends >= DHCP_REQUEST_SENDS)
            begin_discover(c, now_ns);   /* RFC 2131 4.4.1: no answer, start over */
        else
            transmit(c, now_ns);
        return;
    default:
        lease_timer(c, now_ns);
        return;
    }
}

uint64_t dhcp_next_deadline(const struct dhcp_client *c)
{
    switch (c->state) {
    case DHCP_BOUND:
        return min_u64(c->t1_ns, min_u64(c->t2_ns, c->expiry_ns));
    case DHCP_RENEWING:
        return min_u64(c->next_ns, min_u64(c->t2_ns, c->expiry_ns));
    case DHCP_REBINDING:
        return min_u64(c->next_ns, c->expiry_ns);
    default:
        return c->next_ns;
    }
}

enum dhcp_state dhcp_state(const struct dhcp_client *c)
{
    return c->state;
}

const struct dhcp_lease *dhcp_current_lease(const struct dhcp_client *c)
{
    return has_lease(c->state) ? &c->lease : NULL;
}
