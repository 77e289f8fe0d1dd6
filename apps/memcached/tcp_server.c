/*
 * TCP transport (see tcp_server.h). Replies go straight into the
 * connection's TCP send buffer; when it is full the conn keeps them and
 * writable() resumes. While the conn is blocked on output, receiving is
 * paused, so a client that pipelines without reading is held back by the
 * TCP window, not by our memory.
 */
#include "tcp_server.h"
#include "conn.h"
#include "shard.h"

struct mc_tcp {
    struct mc_conn conn;              /* first: the conn's free_fn gets this back */
    shoal_tcp_conn *tcp;
    bool closing;
};

static size_t tcp_out(struct mc_conn *c, const uint8_t *data, size_t len)
{
    struct mc_tcp *t = (struct mc_tcp *)c;
    return t->tcp ? shoal_tcp_send(t->tcp, data, len) : len;
}

static void tcp_finish(struct mc_conn *c)
{
    struct mc_tcp *t = (struct mc_tcp *)c;
    if (t->tcp && !t->closing) {
        t->closing = true;
        shoal_tcp_close(t->tcp);
    }
}

static void tcp_set_blocked(struct mc_conn *c, bool blocked)
{
    struct mc_tcp *t = (struct mc_tcp *)c;
    if (!t->tcp)
        return;
    if (blocked)
        shoal_tcp_recv_pause(t->tcp);
    else
        shoal_tcp_recv_resume(t->tcp);
}

static const struct mc_transport tcp_transport = {
    .send = tcp_out, .finish = tcp_finish, .set_blocked = tcp_set_blocked,
};

static const char too_many[] = "ERROR Too many open connections\r\n";

static void on_accepted(shoal_tcp_conn *tcp, void *arg)
{
    (void)arg;
    struct mc_shard *sh = mc_this_shard();
    uint32_t per_shard = (sh->set.max_conns + shard_count() - 1) / shard_count();
    struct mc_tcp *t = sh->conns.curr_conns < per_shard ? calloc(1, sizeof *t) : 0;
    if (!t) {
        /* memcached's answer when it is at -c: say so, then close. */
        sh->conns.rejected_conns++;
        shoal_tcp_send(tcp, too_many, sizeof too_many - 1);
        shoal_tcp_close(tcp);
        return;
    }
    sh->conns.curr_conns++;
    sh->conns.total_conns++;
    mc_conn_init(&t->conn, &tcp_transport, t);
    t->tcp = tcp;
    shoal_tcp_set_arg(tcp, t);
    shoal_tcp_set_nodelay(tcp, true);
}

static void on_recv(shoal_tcp_conn *tcp, void *arg, const uint8_t *data, size_t len)
{
    struct mc_tcp *t = arg;
    if (!t)
        return;
    if (len == 0) {              /* the client is done sending: answer what it asked, then close */
        mc_conn_eof(&t->conn);
        return;
    }
    (void)tcp;
    mc_conn_input(&t->conn, data, len);
}

static void on_writable(shoal_tcp_conn *tcp, void *arg)
{
    (void)tcp;
    if (arg)
        mc_conn_writable(&((struct mc_tcp *)arg)->conn);
}

static void free_tcp(struct mc_conn *c) { free(c); }

static void on_closed(shoal_tcp_conn *tcp, void *arg, enum tcp_close_reason why)
{
    (void)tcp, (void)why;
    struct mc_tcp *t = arg;
    if (!t)
        return;
    mc_this_shard()->conns.curr_conns--;
    t->tcp = 0;
    mc_conn_drop(&t->conn, free_tcp);
}

static const struct tcp_callbacks mc_tcp_callbacks = {
    .accepted = on_accepted, .recv = on_recv, .writable = on_writable, .closed = on_closed,
};

bool mc_tcp_start(uint16_t port) { return shoal_tcp_listen(port, &mc_tcp_callbacks, 0) == 0; }
