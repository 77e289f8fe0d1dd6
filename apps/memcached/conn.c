/* Request pipeline of one client (see conn.h). */
#include "conn.h"
#include "binary.h"
#include "shard.h"
#include "stats.h"
#include "text.h"

#define MC_SLOTS_MAX   256            /* answers awaited from other shards before parsing pauses */
#define MC_OUT_HIGH    (1u << 20)     /* unsent reply bytes before parsing pauses */
#define MC_OUT_LOW     (256u << 10)   /* ... and below which it resumes */
#define MC_BATCH       64             /* requests run per turn before the shard serves others */

/* A keyed command on its way to its owner shard and back. */
struct mc_remote {
    struct mc_conn *conn;
    struct mc_slot *slot;
    unsigned from, owner;
    struct mc_cmd cmd;
    struct mc_result res;
    uint8_t bytes[];                  /* key, then value: cmd.key and cmd.value point here */
};

static void conn_more(struct task *t);

void mc_conn_init(struct mc_conn *c, const struct mc_transport *tp, void *tp_arg)
{
    *c = (struct mc_conn){ .tp = tp, .tp_arg = tp_arg, .refs = 1 };
    mc_out_init(&c->out);
    task_init(&c->more, conn_more);
}

static void conn_free_slot(struct mc_slot *s)
{
    mc_out_free(&s->out);
    free(s);
}

static void conn_release(struct mc_conn *c)
{
    if (--c->refs)
        return;
    while (c->head) {
        struct mc_slot *s = c->head;
        c->head = s->next;
        conn_free_slot(s);
    }
    mc_out_free(&c->out);
    free(c->in);
    c->in = 0;
    if (c->free_fn)
        c->free_fn(c);
}

static struct mc_slot *conn_append_slot(struct mc_conn *c, unsigned waiting)
{
    struct mc_slot *s = calloc(1, sizeof *s);
    if (!s)
        return 0;
    s->waiting = waiting;
    if (c->tail)
        c->tail->next = s;
    else
        c->head = s;
    c->tail = s;
    c->nslots++;
    return s;
}

/* Where the next reply goes: straight out when nothing waits ahead of it, else behind the waiters. */
static struct mc_out *conn_reply_dest(struct mc_conn *c)
{
    if (!c->tail)
        return &c->out;
    if (c->tail->waiting == 0)
        return &c->tail->out;
    struct mc_slot *s = conn_append_slot(c, 0);
    return s ? &s->out : 0;
}

static size_t conn_unsent(const struct mc_conn *c) { return c->out.len - c->out_sent; }

bool mc_conn_idle(const struct mc_conn *c) { return !c->head && conn_unsent(c) == 0; }

static void conn_flush(struct mc_conn *c)
{
    if (c->gone || c->finished)
        return;
    while (c->head && c->head->waiting == 0) {
        struct mc_slot *s = c->head;
        if (c->out.len == c->out_sent) {      /* nothing ahead of it: hand the slot's buffer over, no copy */
            struct mc_out t = c->out;
            c->out = s->out;
            s->out = t;
            c->out_sent = 0;
        } else {
            mc_out_append(&c->out, s->out.buf, s->out.len);
        }
        c->head = s->next;
        if (!c->head)
            c->tail = 0;
        c->nslots--;
        conn_free_slot(s);
    }
    if (c->out.failed) {              /* no memory for replies: this client cannot be answered */
        c->closing = true;
        c->out.failed = false;
        c->out.len = c->out_sent = 0;
    }
    if (conn_unsent(c)) {
        size_t n = c->tp->send(c, c->out.buf + c->out_sent, conn_unsent(c));
        mc_this_shard()->conns.bytes_written += n;
        c->out_sent += n;
        if (c->out_sent == c->out.len)
            c->out.len = c->out_sent = 0;
        else if (c->out_sent > c->out.len / 2) {
            mc_out_consume(&c->out, c->out_sent);
            c->out_sent = 0;
        }
    }
    /* eof ends the conversation only between parses: a flush mid-batch has later requests still to run */
    bool eof_done = c->eof && !c->blocked && !c->yielded && !c->parsing;
    if ((c->closing || eof_done) && mc_conn_idle(c) && !c->finished) {
        c->finished = true;
        c->tp->finish(c);
    }
}

static void conn_format_reply(struct mc_out *o, const struct mc_cmd *cmd, const struct mc_result *res)
{
    if (cmd->binary)
        mc_binary_reply(o, cmd, res);
    else
        mc_text_reply(o, cmd, res);
}

static void conn_out_of_memory(struct mc_conn *c, const struct mc_cmd *cmd)
{
    struct mc_out *o = conn_reply_dest(c);
    if (!o) {
        c->closing = true;
        return;
    }
    if (cmd->binary)
        mc_binary_out_of_memory(o, cmd);
    else
        mc_text_out_of_memory(o);
}

static void conn_remote_release(void *arg)
{
    struct mc_remote *r = arg;
    mc_store_release(mc_this_shard()->store, r->res.item);
    free(r);
}

static void conn_resume(struct mc_conn *c);

static void conn_remote_done(void *arg)
{
    struct mc_remote *r = arg;
    struct mc_conn *c = r->conn;
    if (!c->gone)
        conn_format_reply(&r->slot->out, &r->cmd, &r->res);
    r->slot->waiting--;
    if (r->res.item)
        smp_call(r->owner, conn_remote_release, r);
    else
        free(r);
    if (!c->gone)
        conn_resume(c);
    conn_release(c);
}

static void conn_remote_exec(void *arg)
{
    struct mc_remote *r = arg;
    mc_exec(mc_this_shard()->store, &r->cmd, mc_now(), &r->res);
    smp_call(r->from, conn_remote_done, r);
}

static void conn_run_remote(struct mc_conn *c, const struct mc_cmd *cmd, unsigned owner)
{
    /* A refused too-large value travels without its bytes (value NULL): exec only needs its length. */
    size_t vlen = cmd->op == MC_OP_STORE && cmd->value ? cmd->vlen : 0;
    struct mc_remote *r = malloc(sizeof *r + cmd->keylen + vlen);
    struct mc_slot *s = r ? conn_append_slot(c, 1) : 0;
    if (!s) {
        free(r);
        conn_out_of_memory(c, cmd);
        return;
    }
    *r = (struct mc_remote){ .conn = c, .slot = s, .from = shard_id(), .owner = owner, .cmd = *cmd };
    memcpy(r->bytes, cmd->key, cmd->keylen);
    if (vlen)
        memcpy(r->bytes + cmd->keylen, cmd->value, vlen);
    r->cmd.key = r->bytes;
    r->cmd.value = vlen ? r->bytes + cmd->keylen : 0;
    c->refs++;
    smp_call(owner, conn_remote_exec, r);
}

static void conn_run_keyed(struct mc_conn *c, const struct mc_cmd *cmd)
{
    unsigned owner = mc_key_shard(cmd->key, cmd->keylen, shard_count());
    if (owner != shard_id()) {
        conn_run_remote(c, cmd, owner);
        return;
    }
    struct mc_shard *sh = mc_this_shard();
    struct mc_result res;
    mc_exec(sh->store, cmd, mc_now(), &res);
    struct mc_out *o = conn_reply_dest(c);
    if (o)
        conn_format_reply(o, cmd, &res);
    else
        c->closing = true;
    if (res.item)
        mc_store_release(sh->store, res.item);
}

/* Reply bytes a get line may buffer, and answers from other shards it may wait for, before it is cut
   short: a line naming one large value thousands of times would otherwise copy it into memory that
   many times while the shard serves nobody else. */
#define MC_GET_LINE_BYTES  (32u << 20)
#define MC_GET_LINE_REMOTE (4 * MC_SLOTS_MAX)

static size_t conn_buffered(const struct mc_conn *c) { return c->out.len + (c->tail ? c->tail->out.len : 0); }

static void conn_run_get_line(struct mc_conn *c, struct mc_cmd *cmd, struct mc_text_keys *keys)
{
    size_t bytes = 0;
    unsigned slots0 = c->nslots;
    do {
        if (cmd->op == MC_OP_ERROR) {
            struct mc_out *o = conn_reply_dest(c);
            if (o)
                mc_text_error(o, cmd);
            else
                c->closing = true;
            return;
        }
        if (bytes > MC_GET_LINE_BYTES || c->nslots - slots0 > MC_GET_LINE_REMOTE) {
            /* memcached's answer when it cannot hold a get line's response */
            struct mc_out *o = conn_reply_dest(c);
            if (o)
                mc_out_str(o, "SERVER_ERROR out of memory writing get response\r\n");
            else
                c->closing = true;
            return;
        }
        size_t before = conn_buffered(c);
        conn_run_keyed(c, cmd);
        size_t after = conn_buffered(c);
        bytes += after > before ? after - before : 0;
    } while (mc_text_next_key(keys, cmd));
    struct mc_out *o = conn_reply_dest(c);
    if (o)
        mc_text_get_end(o);
    else
        c->closing = true;      /* without END the client would wait for ever */
}

static void conn_reply_simple(struct mc_conn *c, const struct mc_cmd *cmd)
{
    struct mc_out *o = conn_reply_dest(c);
    if (!o) {
        c->closing = true;
        return;
    }
    if (cmd->op == MC_OP_ERROR) {
        if (cmd->binary)
            mc_binary_error(o, cmd);
        else
            mc_text_error(o, cmd);
        return;
    }
    if (cmd->binary)
        mc_binary_simple(o, cmd, MC_VERSION);
    else
        mc_text_simple(o, cmd, MC_VERSION);
}

static bool conn_is_keyed(enum mc_op op) { return op <= MC_OP_DEBUG; }

static void conn_set_verbosity(void *level) { mc_this_shard()->verbosity = (uint32_t)(uintptr_t)level; }

static bool conn_refused_set(const struct mc_cmd *cmd)
{
    return cmd->op == MC_OP_ERROR && cmd->error == MC_ERR_TOO_LARGE && cmd->keylen &&
           (cmd->meta || cmd->store_mode == MC_SET);
}

static void conn_run(struct mc_conn *c, struct mc_cmd *cmd, struct mc_text_keys *keys, bool fatal)
{
    struct mc_shard *sh = mc_this_shard();
    if (cmd->meta)
        sh->conns.cmd_meta++;
    if (conn_refused_set(cmd)) {
        /* memcached unlinks the old value of a set (any ms) refused as too large: the store does
           that when handed the store without its bytes, and answers too large */
        cmd->op = MC_OP_STORE;
        cmd->value = 0;
        conn_run_keyed(c, cmd);
        return;
    }
    if (conn_is_keyed(cmd->op)) {
        if (!cmd->binary && !cmd->meta && cmd->op == MC_OP_GET)
            conn_run_get_line(c, cmd, keys);
        else
            conn_run_keyed(c, cmd);
        return;
    }
    switch (cmd->op) {
    case MC_OP_STATS:
        mc_stats_request(c, cmd);
        return;
    case MC_OP_FLUSH_ALL:
        if (!mc_flush_all(cmd->flush_delay)) {
            conn_out_of_memory(c, cmd);
            return;
        }
        break;
    case MC_OP_VERBOSITY:
        for (unsigned k = 0; k < shard_count(); k++)   /* a server-wide setting: every shard's copy */
            smp_call(k, conn_set_verbosity, (void *)(uintptr_t)cmd->verbosity);
        break;
    case MC_OP_QUIT:
        c->closing = true;
        break;
    case MC_OP_ERROR:
        if (fatal || cmd->error == MC_ERR_LINE_TOO_LONG)
            c->closing = true;
        break;
    default:
        break;
    }
    conn_reply_simple(c, cmd);
}

static void conn_set_blocked(struct mc_conn *c, bool on)
{
    c->blocked = on;
    if (c->tp->set_blocked && !c->gone)
        c->tp->set_blocked(c, on);
}

static bool conn_over_limits(const struct mc_conn *c) { return c->nslots >= MC_SLOTS_MAX || conn_unsent(c) >= MC_OUT_HIGH; }

/* Parses and runs requests from buf; returns how many bytes were used. */
static size_t conn_parse(struct mc_conn *c, const uint8_t *buf, size_t len)
{
    uint32_t item_max = mc_this_shard()->set.item_size_max;
    size_t off = 0;
    c->parsing = true;
    for (unsigned n = 0; off < len && !c->closing && !c->blocked; n++) {
        if (n == MC_BATCH) {
            c->yielded = true;       /* the rest waits in c->in for conn_more */
            break;
        }
        if (c->proto == MC_PROTO_UNKNOWN)
            c->proto = buf[off] == MC_BIN_REQ_MAGIC ? MC_PROTO_BINARY : MC_PROTO_TEXT;
        struct mc_cmd cmd;
        struct mc_text_keys keys = {0};
        bool fatal = false;
        size_t used = c->proto == MC_PROTO_BINARY
                          ? mc_binary_parse_early(buf + off, len - off, item_max, &cmd, &fatal, &c->swallow)
                          : mc_text_parse(buf + off, len - off, item_max, &cmd, &keys);
        if (used == 0)
            break;
        off += used;
        if (c->proto == MC_PROTO_TEXT)
            c->swallow += cmd.swallow;
        conn_run(c, &cmd, &keys, fatal);
        if (conn_over_limits(c)) {
            conn_flush(c);
            if (conn_over_limits(c))
                conn_set_blocked(c, true);
        }
    }
    c->parsing = false;
    return off;
}

static bool conn_keep_input(struct mc_conn *c, const uint8_t *data, size_t len)
{
    if (c->in_len + len > c->in_cap) {
        size_t cap = c->in_cap ? c->in_cap : 4096;
        while (cap < c->in_len + len)
            cap *= 2;
        uint8_t *p = realloc(c->in, cap);
        if (!p)
            return false;
        c->in = p;
        c->in_cap = cap;
    }
    memmove(c->in + c->in_len, data, len);
    c->in_len += len;
    return true;
}

/* Input held beyond a whole request (a value of -I bytes and its command line) means a broken client. */
static size_t conn_input_limit(void) { return mc_this_shard()->set.item_size_max + 2 * MC_TEXT_LINE_MAX + 4096; }

static void conn_yield(struct mc_conn *c)
{
    if (!c->yielded || c->more.queued)
        return;
    c->refs++;                  /* dropped by conn_more */
    task_schedule(&c->more);
}

static void conn_parse_held(struct mc_conn *c)
{
    size_t used = conn_parse(c, c->in, c->in_len);
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    if (c->in_len > conn_input_limit())
        c->closing = true;
    if (c->in_len == 0 && c->in_cap > 65536) {
        free(c->in);            /* a large value has gone through: give its buffer back */
        c->in = 0;
        c->in_cap = 0;
    }
    conn_yield(c);
}

static void conn_more(struct task *t)
{
    struct mc_conn *c = (struct mc_conn *)((char *)t - offsetof(struct mc_conn, more));
    c->yielded = false;
    if (!c->gone && !c->closing && !c->blocked) {
        conn_parse_held(c);
        conn_flush(c);
    }
    conn_release(c);
}

void mc_conn_input(struct mc_conn *c, const uint8_t *data, size_t len)
{
    mc_this_shard()->conns.bytes_read += len;
    if (c->closing)
        return;
    if (c->swallow) {           /* the rest of a refused body: never held, just dropped */
        size_t n = c->swallow < len ? (size_t)c->swallow : len;
        c->swallow -= n;
        data += n;
        len -= n;
        if (len == 0)
            return;
    }
    c->refs++;                  /* a reply sent from here may end the transport */
    if (c->in_len == 0) {
        size_t used = conn_parse(c, data, len);
        if (used < len && !conn_keep_input(c, data + used, len - used))
            c->closing = true;
        conn_yield(c);
    } else if (conn_keep_input(c, data, len)) {
        conn_parse_held(c);
    } else {
        c->closing = true;
    }
    conn_flush(c);
    conn_release(c);
}

static void conn_resume(struct mc_conn *c)
{
    conn_flush(c);
    if (c->blocked && !c->closing && c->nslots < MC_SLOTS_MAX / 2 && conn_unsent(c) < MC_OUT_LOW) {
        conn_set_blocked(c, false);
        conn_parse_held(c);
        conn_flush(c);
    }
}

void mc_conn_writable(struct mc_conn *c)
{
    c->refs++;
    conn_resume(c);
    conn_release(c);
}

void mc_conn_eof(struct mc_conn *c)
{
    c->eof = true;
    mc_conn_writable(c);
}

void mc_conn_drop(struct mc_conn *c, void (*free_fn)(struct mc_conn *c))
{
    c->gone = true;
    c->free_fn = free_fn;
    conn_release(c);
}

struct mc_slot *mc_conn_wait_slot(struct mc_conn *c, unsigned waiting)
{
    struct mc_slot *s = conn_append_slot(c, waiting);
    if (s)
        c->refs++;
    return s;
}

void mc_conn_answered(struct mc_conn *c, struct mc_slot *slot)
{
    if (--slot->waiting == 0 && !c->gone)
        conn_resume(c);
    conn_release(c);
}
