/*
 * UDP transport (see udp_server.h). Every datagram starts with a frame
 * header: request id, sequence number, datagram count, reserved (16 bits
 * each, big-endian). A request must fit in one datagram; the reply is cut
 * into datagrams of at most MC_UDP_PAYLOAD bytes, each with the request id,
 * its sequence number and the total, as memcached does.
 */
#include "udp_server.h"
#include "conn.h"
#include "shard.h"

#define MC_UDP_HEADER  8
#define MC_UDP_PAYLOAD 1400           /* header included, as memcached's UDP_MAX_PAYLOAD_SIZE */

struct mc_udp_req {
    struct mc_conn conn;              /* first: free_fn gets this back */
    struct mc_out reply;              /* the whole reply, framed when the request is answered */
    uint32_t ip;
    uint16_t port, local_port, id;
};

static size_t udp_take(struct mc_conn *c, const uint8_t *data, size_t len)
{
    struct mc_udp_req *r = (struct mc_udp_req *)c;
    mc_out_append(&r->reply, data, len);
    return len;
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void send_frames(const struct mc_udp_req *r)
{
    const size_t chunk = MC_UDP_PAYLOAD - MC_UDP_HEADER;
    size_t total = (r->reply.len + chunk - 1) / chunk;
    if (total == 0 || total > 65535)
        return;                       /* nothing to say (noreply), or more than the header can number */
    uint8_t dgram[MC_UDP_PAYLOAD];
    for (size_t i = 0; i < total; i++) {
        size_t off = i * chunk, n = r->reply.len - off < chunk ? r->reply.len - off : chunk;
        put16(dgram, r->id);
        put16(dgram + 2, (uint16_t)i);
        put16(dgram + 4, (uint16_t)total);
        put16(dgram + 6, 0);
        memcpy(dgram + MC_UDP_HEADER, r->reply.buf + off, n);
        shoal_udp_send(r->local_port, r->ip, r->port, dgram, MC_UDP_HEADER + n);
    }
    mc_this_shard()->conns.bytes_written += r->reply.len;
}

static void free_req(struct mc_conn *c)
{
    struct mc_udp_req *r = (struct mc_udp_req *)c;
    mc_out_free(&r->reply);
    free(r);
}

static void udp_finish(struct mc_conn *c)
{
    struct mc_udp_req *r = (struct mc_udp_req *)c;
    if (!r->reply.failed)
        send_frames(r);
    mc_conn_drop(c, free_req);
}

static const struct mc_transport udp_transport = { .send = udp_take, .finish = udp_finish };

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static void on_datagram(void *arg, uint32_t ip, uint16_t port, uint16_t local_port, const uint8_t *data, size_t len)
{
    (void)arg;
    /* A datagram without a whole header cannot be answered (no request id): dropped, as memcached does. */
    if (len < MC_UDP_HEADER)
        return;
    struct mc_udp_req *r = calloc(1, sizeof *r);
    if (!r)
        return;
    r->ip = ip;
    r->port = port;
    r->local_port = local_port;
    r->id = get16(data);
    mc_conn_init(&r->conn, &udp_transport, r);
    mc_this_shard()->conns.total_conns++;
    if (get16(data + 4) != 1 || get16(data + 2) != 0)
        mc_out_str(&r->reply, "SERVER_ERROR multi-packet request not supported\r\n");
    else
        mc_conn_input(&r->conn, data + MC_UDP_HEADER, len - MC_UDP_HEADER);
    mc_conn_eof(&r->conn);
}

bool mc_udp_start(uint16_t port) { return shoal_udp_bind(port, on_datagram, 0) == 0; }
