/*
 * The DHCP client reads UDP payloads anyone on the link can send. The first
 * byte picks how far a well-behaved exchange goes first (SELECTING,
 * REQUESTING, BOUND, RENEWING, REBINDING, or INIT after a NAK) and the
 * lease length; the rest is a script of commands: raw payloads, replies
 * with a valid header (our xid, MAC, cookie) and fuzzed options, and timer
 * runs with forward time steps of any size. After every step the state
 * invariants are checked; a violation aborts.
 *
 * Script byte c:  c & 3 == 0  raw payload of the next 4 * byte bytes
 *                            1  valid header, type, server id and lease picked
 *                               by c's high bits (see templated), then
 *                               next-byte-many option bytes
 *                            2  time += next 4 bytes << (c >> 2), then dhcp_timer
 *                            3  time = next deadline, then dhcp_timer
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../net/dhcp.c"

#define SERVER  0x0100000Au   /* any fixed values: only compared, never interpreted */
#define YOUR_IP 0x3200000Au

static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef };

struct harness {
    struct dhcp_client c;
    bool have_lease;          /* as the callbacks told it */
    uint64_t now;
    const uint8_t *in;
    size_t left;
};

static void check(bool ok)
{
    if (!ok)
        abort();
}

static void h_send(void *ctx, const uint8_t *p, size_t len, uint32_t to)
{
    struct harness *h = ctx;
    check(len == DHCP_MSG_LEN && p[OFF_OP] == BOOTREQUEST);
    check(memcmp(p + OFF_COOKIE, magic_cookie, 4) == 0 && memcmp(p + OFF_CHADDR, mac, 6) == 0);
    check(get_be32(p + OFF_XID) == h->c.xid);
    if (h->c.state == DHCP_RENEWING)
        check(to == h->c.lease.server_id && usable_addr(to));
    else
        check(to == DHCP_BROADCAST);
    /* ciaddr is ours exactly while we hold a lease */
    check(get_addr(p + OFF_CIADDR) == (has_lease(h->c.state) ? h->c.lease.ip : 0));
}

static void h_bound(void *ctx, const struct dhcp_lease *l)
{
    struct harness *h = ctx;
    check(h->c.state == DHCP_BOUND && l == &h->c.lease);
    check(usable_addr(l->ip) && l->server_id != 0 && l->lease_s != 0);
    check(l->t1_s <= l->t2_s && l->t2_s <= l->lease_s);
    h->have_lease = true;
}

static void h_lost(void *ctx)
{
    struct harness *h = ctx;
    check(h->have_lease);
    h->have_lease = false;
}

static const struct dhcp_ops ops = { h_send, h_bound, h_lost };

static void check_state(const struct harness *h)
{
    const struct dhcp_client *c = &h->c;
    check(c->state <= DHCP_REBINDING);
    check(h->have_lease == has_lease(c->state));
    check((dhcp_current_lease(c) != NULL) == has_lease(c->state));
    if (has_lease(c->state)) {
        check(usable_addr(c->lease.ip) && c->lease.server_id != 0);
        check(c->t1_ns <= c->t2_ns && c->t2_ns <= c->expiry_ns);
    }
    if (c->state == DHCP_SELECTING || c->state == DHCP_REQUESTING)
        check(c->backoff_s >= 4 && c->backoff_s <= 64);
}

/* Whatever was due has run: the next deadline is in the future. */
static void run_timer(struct harness *h)
{
    dhcp_timer(&h->c, h->now);
    check_state(h);
    uint64_t d = dhcp_next_deadline(&h->c);
    check(d == DHCP_NEVER || d > h->now);
}

static uint8_t take(struct harness *h)
{
    if (!h->left)
        return 0;
    h->left--;
    return *h->in++;
}

/* Exact-size heap copy, so a read past the end is caught. */
static void input(struct harness *h, const uint8_t *p, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, p, n);
    dhcp_input(&h->c, copy, n, h->now);
    free(copy);
    check_state(h);
}

struct reply_buf {
    uint8_t b[OFF_OPTIONS + 16 + 255];
    size_t n;
};

static void put(struct reply_buf *r, const void *v, size_t n)
{
    memcpy(r->b + r->n, v, n);
    r->n += n;
}

/* A reply that passes the header checks; options are the fuzzer's after an optional
   prefix of type and server id. */
static void header(struct reply_buf *r, const struct dhcp_client *c, uint32_t yiaddr)
{
    memset(r, 0, sizeof *r);
    r->b[OFF_OP] = BOOTREPLY;
    put_be32(r->b + OFF_XID, c->xid);
    memcpy(r->b + OFF_YIADDR, &yiaddr, 4);
    memcpy(r->b + OFF_CHADDR, c->mac, 6);
    memcpy(r->b + OFF_COOKIE, magic_cookie, 4);
    r->n = OFF_OPTIONS;
}

static void prefix(struct reply_buf *r, uint8_t type, bool with_server, uint32_t lease_s)
{
    uint8_t t[3] = { OPT_MSG_TYPE, 1, type };
    put(r, t, 3);
    if (with_server) {
        uint8_t s[2] = { OPT_SERVER_ID, 4 };
        uint32_t id = SERVER;
        put(r, s, 2);
        put(r, &id, 4);
    }
    if (lease_s) {
        uint8_t l[6] = { OPT_LEASE, 4 };
        put_be32(l + 2, lease_s);
        put(r, l, 6);
    }
}

/* cmd bits: 2-3 type (OFFER, ACK, NAK, none), 4 yiaddr ours (else fuzzed), 5 server id,
   6 lease time (fuzzed), 7 one header byte corrupted. */
static void templated(struct harness *h, uint8_t cmd)
{
    static const uint8_t types[4] = { MSG_OFFER, MSG_ACK, MSG_NAK, 0 };
    struct reply_buf r;
    header(&r, &h->c, cmd & 0x10 ? YOUR_IP : (uint32_t)take(h) << 24);
    if (cmd & 0x80) {
        uint8_t at = take(h);
        r.b[at % OFF_OPTIONS] ^= take(h);
    }
    uint8_t type = types[cmd >> 2 & 3];
    if (type)
        prefix(&r, type, cmd & 0x20, cmd & 0x40 ? take(h) : 0);
    size_t n = take(h);
    n = n < h->left ? n : h->left;
    put(&r, h->in, n);
    h->in += n, h->left -= n;
    input(h, r.b, r.n);
}

static void well_behaved_reply(struct harness *h, uint8_t type, uint32_t lease_s)
{
    struct reply_buf r;
    header(&r, &h->c, YOUR_IP);
    prefix(&r, type, true, lease_s);
    r.b[r.n++] = OPT_END;
    input(h, r.b, r.n);
}

static void setup(struct harness *h, uint8_t first)
{
    static const uint32_t leases[4] = { 3600, 60, 1, DHCP_LEASE_INFINITE };
    uint32_t lease_s = leases[first >> 4 & 3];
    unsigned steps = (first & 0xF) % 6;
    dhcp_init(&h->c, mac, 0x1234u + first, &ops, h);
    h->now = 1000;
    dhcp_start(&h->c, h->now);
    check_state(h);
    if (steps >= 1)
        well_behaved_reply(h, MSG_OFFER, 0);
    if (steps == 5)
        well_behaved_reply(h, MSG_NAK, 0);
    if (steps >= 2 && steps <= 4)
        well_behaved_reply(h, MSG_ACK, lease_s);
    if (steps >= 3 && steps <= 4 && h->c.t1_ns != DHCP_NEVER) {
        h->now = steps == 3 ? h->c.t1_ns : h->c.t2_ns;
        run_timer(h);
    }
}

static void step(struct harness *h)
{
    uint8_t cmd = take(h);
    switch (cmd & 3) {
    case 0: {
        size_t n = (size_t)take(h) * 4;
        n = n < h->left ? n : h->left;
        input(h, h->in, n);
        h->in += n, h->left -= n;
        return;
    }
    case 1:
        templated(h, cmd);
        return;
    case 2: {
        uint64_t d = 0;
        for (int i = 0; i < 4; i++)
            d = d << 8 | take(h);
        unsigned shift = cmd >> 2;
        h->now = add_sat(h->now, shift >= 32 ? d : d << shift);
        run_timer(h);
        return;
    }
    default: {
        uint64_t d = dhcp_next_deadline(&h->c);
        if (d != DHCP_NEVER && d > h->now)
            h->now = d;
        run_timer(h);
        return;
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct harness h;
    memset(&h, 0, sizeof h);
    setup(&h, data[0]);
    h.in = data + 1;
    h.left = size - 1;
    while (h.left)
        step(&h);
    return 0;
}
