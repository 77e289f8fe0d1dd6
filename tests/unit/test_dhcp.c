/*
 * DHCP client against a fake server written here: every reply is built from
 * the client's last message (its xid and chaddr), as a real server would,
 * then bent where a test wants something wrong with it. Time is a plain
 * nanosecond counter.
 */
#include "check.h"
#include "../../net/dhcp.c"

#include <string.h>

#define S 1000000000ull
#define MS 1000000ull

static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

static uint32_t addr(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    uint8_t x[4] = { a, b, c, d };
    uint32_t v;
    memcpy(&v, x, 4);
    return v;
}

#define SERVER addr(10, 0, 0, 1)
#define OTHER_SERVER addr(10, 0, 0, 9)
#define YOUR_IP addr(10, 0, 0, 50)

/* ---- the client's side of the wire, recorded ---- */

struct rec {
    int sends;
    uint8_t last[DHCP_MSG_LEN];
    size_t last_len;
    uint32_t last_to;
    int bounds, losts;
    struct dhcp_lease lease;
};

static void rec_send(void *ctx, const uint8_t *p, size_t len, uint32_t to)
{
    struct rec *r = ctx;
    r->sends++;
    r->last_len = len;
    r->last_to = to;
    memcpy(r->last, p, len < sizeof r->last ? len : sizeof r->last);
}

static void rec_bound(void *ctx, const struct dhcp_lease *l)
{
    struct rec *r = ctx;
    r->bounds++;
    r->lease = *l;
}

static void rec_lost(void *ctx)
{
    ((struct rec *)ctx)->losts++;
}

static const struct dhcp_ops ops = { rec_send, rec_bound, rec_lost };

struct fix {
    struct dhcp_client c;
    struct rec r;
};

static void setup(struct fix *f, uint32_t seed)
{
    memset(f, 0, sizeof *f);
    dhcp_init(&f->c, mac, seed, &ops, &f->r);
}

/* Option `code` of the last sent message, or NULL. */
static const uint8_t *sent_option(const struct rec *r, uint8_t code, uint8_t *len)
{
    size_t i = OFF_OPTIONS;
    while (i + 1 < r->last_len && r->last[i] != OPT_END) {
        if (r->last[i] == OPT_PAD) {
            i++;
            continue;
        }
        if (r->last[i] == code) {
            *len = r->last[i + 1];
            return r->last + i + 2;
        }
        i += 2 + (size_t)r->last[i + 1];
    }
    return NULL;
}

static int sent_type(const struct rec *r)
{
    uint8_t len;
    const uint8_t *v = sent_option(r, OPT_MSG_TYPE, &len);
    return v && len == 1 ? v[0] : -1;
}

static uint32_t sent_xid(const struct rec *r)
{
    return get_be32(r->last + OFF_XID);
}

static uint32_t sent_addr_at(const struct rec *r, size_t off)
{
    return get_addr(r->last + off);
}

/* ---- the fake server ---- */

struct msg {
    uint8_t b[600];
    size_t n;
};

static void opt(struct msg *m, uint8_t code, uint8_t len, const void *v)
{
    m->b[m->n++] = code;
    m->b[m->n++] = len;
    memcpy(m->b + m->n, v, len);
    m->n += len;
}

static void opt_be32(struct msg *m, uint8_t code, uint32_t v)
{
    uint8_t x[4];
    put_be32(x, v);
    opt(m, code, 4, x);
}

/* A reply to the client's last message, options up to (not including) END. */
static void reply(struct msg *m, const struct rec *r, uint8_t type, uint32_t yiaddr, uint32_t server)
{
    memset(m, 0, sizeof *m);
    m->b[OFF_OP] = BOOTREPLY;
    m->b[OFF_HTYPE] = 1;
    m->b[OFF_HLEN] = 6;
    memcpy(m->b + OFF_XID, r->last + OFF_XID, 4);
    memcpy(m->b + OFF_YIADDR, &yiaddr, 4);
    memcpy(m->b + OFF_CHADDR, r->last + OFF_CHADDR, 16);
    memcpy(m->b + OFF_COOKIE, magic_cookie, 4);
    m->n = OFF_OPTIONS;
    opt(m, OPT_MSG_TYPE, 1, &type);
    if (server)
        opt(m, OPT_SERVER_ID, 4, &server);
}

static void end(struct msg *m)
{
    m->b[m->n++] = OPT_END;
}

static void config_options(struct msg *m, uint32_t lease_s)
{
    uint32_t mask = addr(255, 255, 255, 0), router = SERVER;
    uint32_t dns[2] = { addr(10, 0, 0, 2), addr(10, 0, 0, 3) };
    uint8_t mtu[2] = { 0x05, 0xdc };
    opt(m, OPT_SUBNET, 4, &mask);
    opt(m, OPT_ROUTER, 4, &router);
    opt(m, OPT_DNS, 8, dns);
    opt(m, OPT_MTU, 2, mtu);
    opt_be32(m, OPT_LEASE, lease_s);
}

static void feed(struct fix *f, struct msg *m, uint64_t now)
{
    dhcp_input(&f->c, m->b, m->n, now);
}

static void send_offer(struct fix *f, uint64_t now)
{
    struct msg m;
    reply(&m, &f->r, MSG_OFFER, YOUR_IP, SERVER);
    config_options(&m, 3600);
    end(&m);
    feed(f, &m, now);
}

static void send_ack(struct fix *f, uint32_t server, uint32_t lease_s, uint64_t now)
{
    struct msg m;
    reply(&m, &f->r, MSG_ACK, YOUR_IP, server);
    config_options(&m, lease_s);
    end(&m);
    feed(f, &m, now);
}

static void send_nak(struct fix *f, uint32_t server, uint64_t now)
{
    struct msg m;
    reply(&m, &f->r, MSG_NAK, 0, server);
    end(&m);
    feed(f, &m, now);
}

/* DISCOVER at t0, OFFER and REQUEST at t0 + 1 ms, ACK at t0 + 2 ms: the lease runs from t0 + 1 ms. */
static void to_bound(struct fix *f, uint64_t t0, uint32_t lease_s)
{
    dhcp_start(&f->c, t0);
    send_offer(f, t0 + MS);
    send_ack(f, SERVER, lease_s, t0 + 2 * MS);
}

/* ---- tests ---- */

TEST(discover_format)
{
    struct fix f;
    setup(&f, 1);
    CHECK_EQ(dhcp_state(&f.c), DHCP_INIT);
    CHECK_EQ(dhcp_next_deadline(&f.c), DHCP_NEVER);
    dhcp_start(&f.c, 100 * S);
    CHECK_EQ(dhcp_state(&f.c), DHCP_SELECTING);
    CHECK_EQ(f.r.sends, 1);
    CHECK_EQ(f.r.last_to, DHCP_BROADCAST);
    CHECK_EQ(f.r.last_len, 300);
    CHECK_EQ(f.r.last[OFF_OP], BOOTREQUEST);
    CHECK_EQ(f.r.last[OFF_HTYPE], 1);
    CHECK_EQ(f.r.last[OFF_HLEN], 6);
    CHECK_EQ(get_be16(f.r.last + 10), 0);   /* no BROADCAST flag */
    CHECK_EQ(sent_addr_at(&f.r, OFF_CIADDR), 0);
    CHECK(memcmp(f.r.last + OFF_CHADDR, mac, 6) == 0);
    CHECK(memcmp(f.r.last + OFF_COOKIE, magic_cookie, 4) == 0);
    CHECK_EQ(sent_type(&f.r), MSG_DISCOVER);

    uint8_t len;
    const uint8_t *v = sent_option(&f.r, OPT_CLIENT_ID, &len);
    CHECK(v && len == 7 && v[0] == 1 && memcmp(v + 1, mac, 6) == 0);
    v = sent_option(&f.r, OPT_MAX_SIZE, &len);
    CHECK(v && len == 2 && get_be16(v) == 1500);
    v = sent_option(&f.r, OPT_PARAMS, &len);
    CHECK(v != NULL);
    static const uint8_t wanted[] = { 1, 3, 6, 26, 51, 58, 59, 54 };
    for (size_t i = 0; v && i < sizeof wanted; i++)
        CHECK(memchr(v, wanted[i], len) != NULL);
    CHECK(sent_option(&f.r, OPT_REQUESTED_IP, &len) == NULL);
    CHECK(sent_option(&f.r, OPT_SERVER_ID, &len) == NULL);
}

TEST(full_exchange)
{
    struct fix f;
    setup(&f, 2);
    dhcp_start(&f.c, 10 * S);
    uint32_t xid = sent_xid(&f.r);
    send_offer(&f, 11 * S);
    CHECK_EQ(dhcp_state(&f.c), DHCP_REQUESTING);
    CHECK_EQ(f.r.sends, 2);
    CHECK_EQ(sent_type(&f.r), MSG_REQUEST);
    CHECK_EQ(f.r.last_to, DHCP_BROADCAST);
    CHECK_EQ(sent_xid(&f.r), xid);
    CHECK_EQ(sent_addr_at(&f.r, OFF_CIADDR), 0);
    CHECK_EQ(get_be16(f.r.last + OFF_SECS), 1);   /* one second into the exchange */
    uint8_t len;
    const uint8_t *v = sent_option(&f.r, OPT_REQUESTED_IP, &len);
    CHECK(v && len == 4 && get_addr(v) == YOUR_IP);
    v = sent_option(&f.r, OPT_SERVER_ID, &len);
    CHECK(v && len == 4 && get_addr(v) == SERVER);
    CHECK(sent_option(&f.r, OPT_CLIENT_ID, &len) != NULL);
    CHECK(dhcp_current_lease(&f.c) == NULL);

    send_ack(&f, SERVER, 3600, 12 * S);
    CHECK_EQ(dhcp_state(&f.c), DHCP_BOUND);
    CHECK_EQ(f.r.bounds, 1);
    CHECK_EQ(f.r.losts, 0);
    CHECK_EQ(f.r.sends, 2);
    CHECK_EQ(f.r.lease.ip, YOUR_IP);
    CHECK_EQ(f.r.lease.netmask, addr(255, 255, 255, 0));
    CHECK_EQ(f.r.lease.router, SERVER);
    CHECK_EQ(f.r.lease.server_id, SERVER);
    CHECK_EQ(f.r.lease.dns[0], addr(10, 0, 0, 2));
    CHECK_EQ(f.r.lease.dns[1], addr(10, 0, 0, 3));
    CHECK_EQ(f.r.lease.mtu, 1500);
    CHECK_EQ(f.r.lease.lease_s, 3600);
    CHECK_EQ(f.r.lease.t1_s, 1800);
    CHECK_EQ(f.r.lease.t2_s, 3150);
    CHECK(dhcp_current_lease(&f.c) != NULL);
    /* T1 counts from the REQUEST (11 s), not from the ACK */
    CHECK_EQ(dhcp_next_deadline(&f.c), 11 * S + 1800 * S);

    /* duplicate ACK and late OFFER: nothing outstanding in BOUND */
    send_ack(&f, SERVER, 3600, 13 * S);
    send_offer(&f, 13 * S);
    CHECK_EQ(f.r.bounds, 1);
    CHECK_EQ(f.r.sends, 2);
    CHECK_EQ(dhcp_state(&f.c), DHCP_BOUND);
}

TEST(server_t1_t2_used_and_checked)
{
    struct fix f;
    struct msg m;
    setup(&f, 3);
    dhcp_start(&f.c, 0);
    send_offer(&f, 0);
    reply(&m, &f.r, MSG_ACK, YOUR_IP, SERVER);
    opt_be32(&m, OPT_LEASE, 1000);
    opt_be32(&m, OPT_T1, 300);
    opt_be32(&m, OPT_T2, 600);
    end(&m);
    feed(&f, &m, 0);
    CHECK_EQ(f.r.lease.t1_s, 300);
    CHECK_EQ(f.r.lease.t2_s, 600);
    CHECK_EQ(f.r.lease.netmask, 0);   /* not sent: unknown */
    CHECK_EQ(f.r.lease.mtu, 0);

    /* T1 beyond T2 and T2 beyond the lease: defaults */
    setup(&f, 3);
    dhcp_start(&f.c, 0);
    send_offer(&f, 0);
    reply(&m, &f.r, MSG_ACK, YOUR_IP, SERVER);
    opt_be32(&m, OPT_LEASE, 1000);
    opt_be32(&m, OPT_T1, 900);
    opt_be32(&m, OPT_T2, 2000);
    end(&m);
    feed(&f, &m, 0);
    CHECK_EQ(f.r.lease.t1_s, 500);
    CHECK_EQ(f.r.lease.t2_s, 875);

    /* only T2, below the default T1: T1 follows it down */
    setup(&f, 3);
    dhcp_start(&f.c, 0);
    send_offer(&f, 0);
    reply(&m, &f.r, MSG_ACK, YOUR_IP, SERVER);
    opt_be32(&m, OPT_LEASE, 1000);
    opt_be32(&m, OPT_T2, 200);
    end(&m);
    feed(&f, &m, 0);
    CHECK_EQ(f.r.lease.t1_s, 200);
    CHECK_EQ(f.r.lease.t2_s, 200);
}

/* Offsets of successive retransmissions from the previous send, for one seed. */
static void discover_waits(uint32_t seed, uint64_t waits[8])
{
    struct fix f;
    setup(&f, seed);
    uint64_t now = 5 * S;
    dhcp_start(&f.c, now);
    uint32_t xid = sent_xid(&f.r);
    for (int i = 0; i < 8; i++) {
        uint64_t d = dhcp_next_deadline(&f.c);
        waits[i] = d - now;
        int before = f.r.sends;
        dhcp_timer(&f.c, d - 1);   /* early: nothing */
        CHECK_EQ(f.r.sends, before);
        dhcp_timer(&f.c, d);
        CHECK_EQ(f.r.sends, before + 1);
        CHECK_EQ(sent_type(&f.r), MSG_DISCOVER);
        CHECK_EQ(sent_xid(&f.r), xid);
        CHECK_EQ(f.r.last_to, DHCP_BROADCAST);
        now = d;
    }
    CHECK_EQ(dhcp_state(&f.c), DHCP_SELECTING);
}

TEST(retransmit_doubling_bounded_randomised)
{
    static const uint64_t base[8] = { 4, 8, 16, 32, 64, 64, 64, 64 };
    uint64_t first_waits[16];
    for (uint32_t seed = 1; seed <= 16; seed++) {
        uint64_t w[8];
        discover_waits(seed, w);
        for (int i = 0; i < 8; i++) {
            CHECK(w[i] >= base[i] * S - S);
            CHECK(w[i] <= base[i] * S + S);
        }
        first_waits[seed - 1] = w[0];
    }
    /* the jitter is really drawn: 16 seeds do not all land on one value */
    int distinct = 0;
    for (int i = 1; i < 16; i++)
        distinct += first_waits[i] != first_waits[0];
    CHECK(distinct > 0);
}

TEST(xid_differs_by_seed_and_exchange)
{
    struct fix a, b;
    setup(&a, 7);
    setup(&b, 8);
    dhcp_start(&a.c, 0);
    dhcp_start(&b.c, 0);
    CHECK(sent_xid(&a.r) != sent_xid(&b.r));
    uint32_t first = sent_xid(&a.r);
    dhcp_start(&a.c, S);
    CHECK(sent_xid(&a.r) != first);
    /* seed 0 still works */
    setup(&a, 0);
    dhcp_start(&a.c, 0);
    CHECK_EQ(dhcp_state(&a.c), DHCP_SELECTING);
}

TEST(request_retransmits_then_restarts)
{
    struct fix f;
    setup(&f, 4);
    dhcp_start(&f.c, 0);
    uint32_t xid = sent_xid(&f.r);
    send_offer(&f, S);
    uint64_t now = S;
    for (int i = 1; i < DHCP_REQUEST_SENDS; i++) {
        uint64_t d = dhcp_next_deadline(&f.c);
        CHECK(d - now >= (4ull << (i - 1)) * S - S && d - now <= (4ull << (i - 1)) * S + S);
        dhcp_timer(&f.c, d);
        CHECK_EQ(sent_type(&f.r), MSG_REQUEST);
        CHECK_EQ(sent_xid(&f.r), xid);
        CHECK_EQ(dhcp_state(&f.c), DHCP_REQUESTING);
        now = d;
    }
    CHECK_EQ(f.r.sends, 1 + DHCP_REQUEST_SENDS);
    dhcp_timer(&f.c, dhcp_next_deadline(&f.c));
    CHECK_EQ(dhcp_state(&f.c), DHCP_SELECTING);
    CHECK_EQ(sent_type(&f.r), MSG_DISCOVER);
    CHECK(sent_xid(&f.r) != xid);
    CHECK_EQ(f.r.losts, 0);
}

TEST(renew_at_t1_unicast)
{
    struct fix f;
    setup(&f, 5);
    to_bound(&f, 0, 3600);
    uint64_t t1 = MS + 1800 * S, t2 = MS + 3150 * S;
    int sends = f.r.sends;
    dhcp_timer(&f.c, t1 - 1);
    CHECK_EQ(f.r.sends, sends);
    CHECK_EQ(dhcp_state(&f.c), DHCP_BOUND);
    dhcp_timer(&f.c, t1);
    CHECK_EQ(dhcp_state(&f.c), DHCP_RENEWING);
    CHECK_EQ(f.r.sends, sends + 1);
    CHECK_EQ(sent_type(&f.r), MSG_REQUEST);
    CHECK_EQ(f.r.last_to, SERVER);
    CHECK_EQ(sent_addr_at(&f.r, OFF_CIADDR), YOUR_IP);
    uint8_t len;
    CHECK(sent_option(&f.r, OPT_REQUESTED_IP, &len) == NULL);
    CHECK(sent_option(&f.r, OPT_SERVER_ID, &len) == NULL);
    CHECK(dhcp_current_lease(&f.c) != NULL);   /* still ours while renewing */
    CHECK_EQ(f.r.losts, 0);

    /* retransmit at half the time left to T2: (3150 - 1800) / 2 = 675 s */
    uint64_t d = dhcp_next_deadline(&f.c);
    CHECK_EQ(d, t1 + 675 * S);
    dhcp_timer(&f.c, d);
    CHECK_EQ(f.r.sends, sends + 2);
    CHECK_EQ(f.r.last_to, SERVER);
    CHECK_EQ(dhcp_next_deadline(&f.c), d + (t2 - d) / 2);

    /* unchanged ACK: BOUND again, no bound() call, lease counted from T1 */
    uint64_t now = d + S;
    send_ack(&f, SERVER, 3600, now);
    CHECK_EQ(dhcp_state(&f.c), DHCP_BOUND);
    CHECK_EQ(f.r.bounds, 1);
    CHECK_EQ(dhcp_next_deadline(&f.c), t1 + 1800 * S);
}

TEST(renew_ack_with_changes_calls_bound)
{
    struct fix f;
    struct msg m;
    setup(&f, 6);
    to_bound(&f, 0, 3600);
    dhcp_timer(&f.c, dhcp_next_deadline(&f.c));
    CHECK_EQ(dhcp_state(&f.c), DHCP_RENEWING);
    reply(&m, &f.r, MSG_ACK, YOUR_IP, SERVER);
    uint32_t dns = addr(9, 9, 9, 9);
    opt(&m, OPT_DNS, 4, &dns);
    opt_be32(&m, OPT_LEASE, 7200);
    end(&m);
    feed(&f, &m, 1801 * S);
    CHECK_EQ(dhcp_state(&f.c), DHCP_BOUND);
    CHECK_EQ(f.r.bounds, 2);
    CHECK_EQ(f.r.lease.dns[0], dns);
    CHECK_EQ(f.r.lease.dns[1], 0);
    CHECK_EQ(f.r.lease.lease_s, 7200);

    /* ACK from another server while renewing (we asked ours): ignored */
    dhcp_timer(&f.c, dhcp_next_deadline(&f.c));
    CHECK_EQ(dhcp_state(&f.c), DHCP_RENEWING);
    send_ack(&f, OTHER_SERVER, 3600, dhcp_next_deadline(&f.c) - S);
    CHECK_EQ(dhcp_state(&f.c), DHCP_RENEWING);
}

TEST(rebind_at_t2_broadcast)
{
    struct fix f;
    setup(&f, 7);
    to_bound(&f, 0, 3600);
    uint64_t t2 = MS + 3150 * S, expiry = MS + 3600 * S;
    uint64_t now = 0;
    uint32_t renew_xid = 0;
    /* follow the deadlines: renewing retransmissions, then T2 */
    while (dhcp_state(&f.c) != DHCP_REBINDING) {
        now = dhcp_next_deadline(&f.c);
        CHECK(now <= t2);
        dhcp_timer(&f.c, now);
        if (dhcp_state(&f.c) == DHCP_RENEWING) {
            CHECK_EQ(f.r.last_to, SERVER);
            renew_xid = sent_xid(&f.r);
        }
    }
    CHECK_EQ(now, t2);
    CHECK_EQ(sent_xid(&f.r), renew_xid);   /* rebinding continues the renewal */
    CHECK_EQ(sent_type(&f.r), MSG_REQUEST);
    CHECK_EQ(f.r.last_to, DHCP_BROADCAST);
    CHECK_EQ(sent_addr_at(&f.r, OFF_CIADDR), YOUR_IP);
    uint8_t len;
    CHECK(sent_option(&f.r, OPT_REQUESTED_IP, &len) == NULL);
    CHECK(sent_option(&f.r, OPT_SERVER_ID, &len) == NULL);
    CHECK_EQ(dhcp_next_deadline(&f.c), t2 + (expiry - t2) / 2);

    /* another server may answer a rebind */
    send_ack(&f, OTHER_SERVER, 3600, t2 + S);
    CHECK_EQ(dhcp_state(&f.c), DHCP_BOUND);
    CHECK_EQ(dhcp_current_lease(&f.c)->server_id, OTHER_SERVER);
    CHECK_EQ(f.r.bounds, 1);   /* same configuration */
    CHECK_EQ(f.r.losts, 0);
}

TEST(short_lease_retransmit_floor_scales)
{
    struct fix f;
    setup(&f, 8);
    to_bound(&f, 0, 60);   /* T1 30 s, T2 52.5 s, floor 60/16 = 3.75 s */
    int renewing_sends = 0, rebinding_sends = 0;
    while (dhcp_state(&f.c) != DHCP_SELECTING) {
        dhcp_timer(&f.c, dhcp_next_deadline(&f.c));
        renewing_sends += dhcp_state(&f.c) == DHCP_RENEWING;
        rebinding_sends += dhcp_state(&f.c) == DHCP_REBINDING;
    }
    CHECK(renewing_sends >= 3);
    CHECK(rebinding_sends >= 2);
    CHECK_EQ(f.r.losts, 1);
}

TEST(expiry_calls_lost)
{
    struct fix f;
    setup(&f, 9);
    to_bound(&f, 0, 3600);
    uint32_t old_xid = sent_xid(&f.r);
    uint64_t expiry = MS + 3600 * S;
    uint64_t now = 0;
    while (f.r.losts == 0) {
        now = dhcp_next_deadline(&f.c);
        CHECK(now <= expiry);
        dhcp_timer(&f.c, now);
    }
    CHECK_EQ(now, expiry);
    CHECK_EQ(f.r.losts, 1);
    CHECK(dhcp_current_lease(&f.c) == NULL);
    /* RFC 2131 4.4.5: start over at once */
    CHECK_EQ(dhcp_state(&f.c), DHCP_SELECTING);
    CHECK_EQ(sent_type(&f.r), MSG_DISCOVER);
    CHECK_EQ(f.r.last_to, DHCP_BROADCAST);
    CHECK_EQ(sent_addr_at(&f.r, OFF_CIADDR), 0);
    CHECK(sent_xid(&f.r) != old_xid);
}

TEST(late_timer_goes_straight_to_where_the_lease_is)
{
    struct fix f;
    setup(&f, 10);
    to_bound(&f, 0, 3600);
    int sends = f.r.sends;
    dhcp_timer(&f.c, 10000 * S);   /* slept past expiry */
    CHECK_EQ(f.r.losts, 1);
    CHECK_EQ(f.r.sends, sends + 1);
    CHECK_EQ(sent_type(&f.r), MSG_DISCOVER);

    setup(&f, 10);
    to_bound(&f, 0, 3600);
    dhcp_timer(&f.c, 3200 * S);   /* past T2, before expiry: rebinding, no unicast */
    CHECK_EQ(dhcp_state(&f.c), DHCP_REBINDING);
    CHECK_EQ(f.r.last_to, DHCP_BROADCAST);
    CHECK(dhcp_next_deadline(&f.c) > 3200 * S);
}

TEST(nak_while_requesting_restarts)
{
    struct fix f;
    setup(&f, 11);
    dhcp_start(&f.c, 0);
    uint32_t xid = sent_xid(&f.r);
    send_offer(&f, S);
    send_nak(&f, OTHER_SERVER, 2 * S);   /* not the server we asked */
    CHECK_EQ(dhcp_state(&f.c), DHCP_REQUESTING);
    send_nak(&f, SERVER, 2 * S);
    CHECK_EQ(dhcp_state(&f.c), DHCP_INIT);
    CHECK_EQ(f.r.losts, 0);
    CHECK_EQ(dhcp_next_deadline(&f.c), 3 * S);
    int sends = f.r.sends;
    dhcp_timer(&f.c, 3 * S - 1);
    CHECK_EQ(f.r.sends, sends);
    dhcp_timer(&f.c, 3 * S);
    CHECK_EQ(dhcp_state(&f.c), DHCP_SELECTING);
    CHECK_EQ(sent_type(&f.r), MSG_DISCOVER);
    CHECK(sent_xid(&f.r) != xid);

    /* consecutive NAKs back off: 2 s, 4 s ... up to 64 s; an ACK resets */
    uint64_t now = 3 * S;
    for (int i = 1; i < 10; i++) {
        send_offer(&f, now);
        send_nak(&f, SERVER, now);
        uint64_t want = (i >= 6 ? 64 : 1ull << i) * S;
        CHECK_EQ(dhcp_next_deadline(&f.c) - now, want);
        now = dhcp_next_deadline(&f.c);
        dhcp_timer(&f.c, now);
    }
    send_offer(&f, now);
    send_ack(&f, SERVER, 3600, now);
    CHECK_EQ(f.c.naks, 0);
}

TEST(nak_while_renewing_loses_lease)
{
    struct fix f;
    setup(&f, 12);
    to_bound(&f, 0, 3600);
    dhcp_timer(&f.c, dhcp_next_deadline(&f.c));
    CHECK_EQ(dhcp_state(&f.c), DHCP_RENEWING);
    uint64_t now = 1801 * S;
    send_nak(&f, SERVER, now);
    CHECK_EQ(f.r.losts, 1);
    CHECK_EQ(dhcp_state(&f.c), DHCP_INIT);
    CHECK(dhcp_current_lease(&f.c) == NULL);
    CHECK_EQ(dhcp_next_deadline(&f.c), now + S);
    dhcp_timer(&f.c, now + S);
    CHECK_EQ(dhcp_state(&f.c), DHCP_SELECTING);

    /* NAK while rebinding, from any server */
    setup(&f, 12);
    to_bound(&f, 0, 3600);
    dhcp_timer(&f.c, 3200 * S);
    CHECK_EQ(dhcp_state(&f.c), DHCP_REBINDING);
    send_nak(&f, OTHER_SERVER, 3201 * S);
    CHECK_EQ(f.r.losts, 1);
    CHECK_EQ(dhcp_state(&f.c), DHCP_INIT);
}

/* Feed m to a client in SELECTING: it must neither move nor send. */
static void check_ignored(struct fix *f, struct msg *m, int line)
{
    int sends = f->r.sends;
    feed(f, m, S);
    if (dhcp_state(&f->c) != DHCP_SELECTING || f->r.sends != sends)
        fprintf(stderr, "message built at line %d was not ignored\n", line);
    CHECK_EQ(dhcp_state(&f->c), DHCP_SELECTING);
    CHECK_EQ(f->r.sends, sends);
}

#define IGNORED(f, m) check_ignored(f, m, __LINE__)

TEST(malformed_replies_ignored)
{
    struct fix f;
    struct msg m;
    setup(&f, 13);
    dhcp_start(&f.c, 0);

    reply(&m, &f.r, MSG_OFFER, YOUR_IP, SERVER);
    end(&m);
    for (size_t n = 0; n < OFF_OPTIONS; n += 7) {   /* truncated header */
        struct msg t = m;
        t.n = n;
        IGNORED(&f, &t);
    }
    struct msg t = m;
    t.n = OFF_OPTIONS + 4;   /* cut inside the server id option */
    IGNORED(&f, &t);

    t = m, t.b[OFF_OP] = BOOTREQUEST;
    IGNORED(&f, &t);
    t = m, t.b[OFF_XID + 3] ^= 1;
    IGNORED(&f, &t);
    t = m, t.b[OFF_CHADDR + 5] ^= 1;
    IGNORED(&f, &t);
    t = m, t.b[OFF_COOKIE + 2] ^= 1;
    IGNORED(&f, &t);

    /* an option whose length runs past the end */
    reply(&m, &f.r, MSG_OFFER, YOUR_IP, SERVER);
    m.b[m.n++] = OPT_DNS;
    m.b[m.n++] = 200;
    m.b[m.n++] = 8;
    IGNORED(&f, &m);
    /* a code with no length byte */
    reply(&m, &f.r, MSG_OFFER, YOUR_IP, SERVER);
    m.b[m.n++] = OPT_ROUTER;
    IGNORED(&f, &m);

    /* no message type; a message type of the wrong length */
    memset(&m, 0, sizeof m);
    reply(&m, &f.r, MSG_OFFER, YOUR_IP, SERVER);
    memmove(m.b + OFF_OPTIONS, m.b + OFF_OPTIONS + 3, 6);
    m.n -= 3;
    end(&m);
    IGNORED(&f, &m);
    reply(&m, &f.r, MSG_OFFER, YOUR_IP, SERVER);
    m.n = OFF_OPTIONS;
    uint8_t bad_type[2] = { MSG_OFFER, 0 };
    opt(&m, OPT_MSG_TYPE, 2, bad_type);
    opt(&m, OPT_SERVER_ID, 4, (uint32_t[]){ SERVER });
    end(&m);
    IGNORED(&f, &m);

    /* OFFER without server id, with server id 0, with no address */
    reply(&m, &f.r, MSG_OFFER, YOUR_IP, 0);
    end(&m);
    IGNORED(&f, &m);
    reply(&m, &f.r, MSG_OFFER, YOUR_IP, 0);
    opt(&m, OPT_SERVER_ID, 4, (uint32_t[]){ 0 });
    end(&m);
    IGNORED(&f, &m);
    reply(&m, &f.r, MSG_OFFER, 0, SERVER);
    end(&m);
    IGNORED(&f, &m);
    /* ACK and NAK while selecting: nothing was requested */
    reply(&m, &f.r, MSG_ACK, YOUR_IP, SERVER);
    opt_be32(&m, OPT_LEASE, 3600);
    end(&m);
    IGNORED(&f, &m);
    reply(&m, &f.r, MSG_NAK, 0, SERVER);
    end(&m);
    IGNORED(&f, &m);
    /* an unknown message type */
    reply(&m, &f.r, 42, YOUR_IP, SERVER);
    end(&m);
    IGNORED(&f, &m);

    /* after all that, a good OFFER still works */
    send_offer(&f, S);
    CHECK_EQ(dhcp_state(&f.c), DHCP_REQUESTING);
}

TEST(bad_acks_ignored)
{
    struct fix f;
    struct msg m;
    setup(&f, 14);
    dhcp_start(&f.c, 0);
    send_offer(&f, 0);
    int sends = f.r.sends;

    reply(&m, &f.r, MSG_ACK, YOUR_IP, SERVER);   /* no lease time */
    end(&m);
    feed(&f, &m, S);
    reply(&m, &f.r, MSG_ACK, YOUR_IP, SERVER);   /* lease 0 */
    opt_be32(&m, OPT_LEASE, 0);
    end(&m);
    feed(&f, &m, S);
    reply(&m, &f.r, MSG_ACK, addr(10, 0, 0, 51), SERVER);   /* not the address offered */
    opt_be32(&m, OPT_LEASE, 3600);
    end(&m);
    feed(&f, &m, S);
    send_ack(&f, OTHER_SERVER, 3600, S);   /* not the server we asked */
    reply(&m, &f.r, MSG_ACK, YOUR_IP, SERVER);   /* lease option of the wrong length */
    opt(&m, OPT_LEASE, 2, (uint8_t[]){ 1, 0 });
    end(&m);
    feed(&f, &m, S);
    CHECK_EQ(dhcp_state(&f.c), DHCP_REQUESTING);
    CHECK_EQ(f.r.bounds, 0);
    CHECK_EQ(f.r.sends, sends);
    send_offer(&f, S);   /* a second offer: already requesting */
    CHECK_EQ(f.r.sends, sends);
    send_ack(&f, SERVER, 3600, S);
    CHECK_EQ(dhcp_state(&f.c), DHCP_BOUND);
}

TEST(lenient_option_layout)
{
    struct fix f;
    struct msg m;
    setup(&f, 15);
    dhcp_start(&f.c, 0);
    /* pads, unknown options, overload, odd-sized values, no END: accepted */
    reply(&m, &f.r, MSG_OFFER, YOUR_IP, SERVER);
    m.b[m.n++] = OPT_PAD;
    m.b[m.n++] = OPT_PAD;
    opt(&m, 52, 1, (uint8_t[]){ 3 });
    opt(&m, 200, 0, "");
    opt(&m, OPT_SUBNET, 3, (uint8_t[]){ 1, 2, 3 });
    opt(&m, OPT_MTU, 2, (uint8_t[]){ 0, 10 });   /* below 68: ignored */
    feed(&f, &m, 0);
    CHECK_EQ(dhcp_state(&f.c), DHCP_REQUESTING);

    reply(&m, &f.r, MSG_ACK, YOUR_IP, SERVER);
    opt(&m, OPT_ROUTER, 8, (uint32_t[]){ addr(10, 0, 0, 254), SERVER });
    opt(&m, OPT_DNS, 5, (uint8_t[]){ 1, 1, 1, 1, 1 });   /* not a multiple of 4: ignored */
    opt(&m, OPT_MTU, 2, (uint8_t[]){ 0x23, 0x28 });
    opt_be32(&m, OPT_LEASE, 600);
    end(&m);
    m.b[m.n++] = OPT_DNS;   /* after END: never read */
    feed(&f, &m, 0);
    CHECK_EQ(dhcp_state(&f.c), DHCP_BOUND);
    CHECK_EQ(f.r.lease.router, addr(10, 0, 0, 254));
    CHECK_EQ(f.r.lease.dns[0], 0);
    CHECK_EQ(f.r.lease.netmask, 0);
    CHECK_EQ(f.r.lease.mtu, 9000);
}

TEST(infinite_lease)
{
    struct fix f;
    setup(&f, 16);
    to_bound(&f, 0, DHCP_LEASE_INFINITE);
    CHECK_EQ(dhcp_state(&f.c), DHCP_BOUND);
    CHECK_EQ(f.r.lease.lease_s, DHCP_LEASE_INFINITE);
    CHECK_EQ(f.r.lease.t1_s, DHCP_LEASE_INFINITE);
    CHECK_EQ(f.r.lease.t2_s, DHCP_LEASE_INFINITE);
    CHECK_EQ(dhcp_next_deadline(&f.c), DHCP_NEVER);
    int sends = f.r.sends;
    dhcp_timer(&f.c, 1ull << 62);
    dhcp_timer(&f.c, UINT64_MAX);
    CHECK_EQ(dhcp_state(&f.c), DHCP_BOUND);
    CHECK_EQ(f.r.sends, sends);
    CHECK_EQ(f.r.losts, 0);
}

TEST(huge_times_saturate)
{
    struct fix f;
    setup(&f, 17);
    to_bound(&f, UINT64_MAX - 10 * S, 0xFFFFFFFEu);
    CHECK_EQ(dhcp_state(&f.c), DHCP_BOUND);
    CHECK_EQ(dhcp_next_deadline(&f.c), DHCP_NEVER);   /* beyond the end of time */
    dhcp_timer(&f.c, UINT64_MAX);
    CHECK_EQ(dhcp_state(&f.c), DHCP_BOUND);
}

TEST(restart_while_bound_reports_loss)
{
    struct fix f;
    setup(&f, 18);
    to_bound(&f, 0, 3600);
    dhcp_start(&f.c, 10 * S);
    CHECK_EQ(f.r.losts, 1);
    CHECK_EQ(dhcp_state(&f.c), DHCP_SELECTING);
    CHECK(dhcp_current_lease(&f.c) == NULL);
}

TEST_MAIN()
