/*
 * A client's stream of requests and the replies to them, in order.
 *
 * Input is parsed as it arrives (text or binary, chosen by the first
 * byte). Each keyed command runs on the shard that owns its key: right
 * away when that is this shard, else through smp_call with a copy of the
 * key and value, its reply formatted here when the result comes back.
 * Replies wait in slots so they go out in request order whatever order
 * the shards answer in. TCP connections and UDP datagrams share this; a
 * transport says how bytes leave and when the conversation is over.
 */
#ifndef MC_CONN_H
#define MC_CONN_H
#include "../../runtime/shoal.h"
#include "command.h"
#include "outbuf.h"

struct mc_conn;

struct mc_transport {
    /* Hands bytes out; returns how many were taken (UDP takes everything at finish). */
    size_t (*send)(struct mc_conn *c, const uint8_t *data, size_t len);
    /* Every reply is out and the client asked to stop (quit) or was refused: end it. */
    void (*finish)(struct mc_conn *c);
    /* Parsing stopped (true) or restarted (false) because of waiting output: stop / restart reading. */
    void (*set_blocked)(struct mc_conn *c, bool blocked);
};

struct mc_slot {
    struct mc_slot *next;
    struct mc_out out;
    unsigned waiting;            /* answers from other shards still to come */
};

enum mc_proto { MC_PROTO_UNKNOWN, MC_PROTO_TEXT, MC_PROTO_BINARY };

struct mc_conn {
    const struct mc_transport *tp;
    void *tp_arg;                /* the transport's (shoal_tcp_conn, UDP request) */
    enum mc_proto proto;
    uint8_t *in;                 /* input not yet parsed */
    size_t in_len, in_cap;
    struct mc_out out;           /* replies in order, not yet taken by the transport */
    struct mc_slot *head, *tail; /* replies waiting behind an answer from another shard */
    unsigned nslots;
    size_t out_sent;             /* bytes at the start of out already taken */
    uint64_t swallow;            /* input still to discard: the body of a refused request */
    unsigned refs;               /* 1 for the transport + 1 per message in flight */
    void (*free_fn)(struct mc_conn *c);
    bool closing;                /* quit or a fatal error: parse nothing more */
    bool eof;                    /* the client sends nothing more: end once everything is answered */
    bool gone;                   /* the transport is closed: drop replies, free when refs is 0 */
    bool blocked;                /* too much output waiting: parsing stopped */
    bool finished;               /* tp->finish ran */
    bool yielded;                /* a batch was run and the rest of the input waits for `more` */
    bool parsing;                /* inside conn_parse: input after the current request is not yet seen */
    struct task more;            /* continues parsing after a batch, so one client cannot hog the shard */
};

void mc_conn_init(struct mc_conn *c, const struct mc_transport *tp, void *tp_arg);
/* New bytes from the client; parsed and answered as far as possible. */
void mc_conn_input(struct mc_conn *c, const uint8_t *data, size_t len);
/* The client has finished sending: answer what it asked, then finish. */
void mc_conn_eof(struct mc_conn *c);
/* The transport has room again: push replies, then resume parsing. */
void mc_conn_writable(struct mc_conn *c);
/* True when nothing is left to parse or answer (UDP: the datagram is done). */
bool mc_conn_idle(const struct mc_conn *c);
/* The transport is gone; the conn is freed (by free_fn) when no answer is in flight any more. */
void mc_conn_drop(struct mc_conn *c, void (*free_fn)(struct mc_conn *c));
/* For answers gathered from every shard (stats): a slot that waits for `waiting` answers and holds a
   reference on c; each answer is counted with mc_conn_answered(), which also drops the reference. */
struct mc_slot *mc_conn_wait_slot(struct mc_conn *c, unsigned waiting);
void mc_conn_answered(struct mc_conn *c, struct mc_slot *slot);
/* Paused by output backpressure: the TCP side stops reading while this is true. */
static inline bool mc_conn_blocked(const struct mc_conn *c) { return c->blocked; }
#endif
