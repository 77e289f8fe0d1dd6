/* stats and flush_all across shards (see stats.h). */
#include "stats.h"
#include "binary.h"
#include "conn.h"
#include "shard.h"
#include "text.h"

#define MC_CLASSES_MAX 64

struct mc_shard_report {
    struct mc_store_stats st;
    struct mc_conn_stats conns;
    struct mc_class_stats cls[MC_CLASSES_MAX];
    unsigned ncls;
    struct shoal_reactor_stats reactor;
    uint64_t heap_bytes;
};

struct mc_stats_gather {
    struct mc_conn *conn;
    struct mc_slot *slot;
    struct mc_cmd cmd;
    unsigned from, pending;
    struct mc_shard_report rep[];    /* one per shard, filled by that shard */
};

struct emitter {
    struct mc_out *o;
    const struct mc_cmd *cmd;
};

static void emit(struct emitter *e, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void emit(struct emitter *e, const char *name, const char *fmt, ...)
{
    char v[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v, sizeof v, fmt, ap);
    va_end(ap);
    if (e->cmd->binary)
        mc_binary_stat(e->o, e->cmd, name, v);
    else
        mc_text_stat(e->o, name, v);
}

static void sum(struct mc_shard_report *t, const struct mc_shard_report *r)
{
    const uint64_t *a = (const uint64_t *)&r->st;
    uint64_t *b = (uint64_t *)&t->st;
    for (size_t i = 0; i < sizeof r->st / sizeof *a; i++)
        b[i] += a[i];
    const uint64_t *ca = (const uint64_t *)&r->conns;
    uint64_t *cb = (uint64_t *)&t->conns;
    for (size_t i = 0; i < sizeof r->conns / sizeof *ca; i++)
        cb[i] += ca[i];
    for (unsigned k = 0; k < r->ncls && k < MC_CLASSES_MAX; k++) {
        t->cls[k].chunk_size = r->cls[k].chunk_size;
        t->cls[k].items += r->cls[k].items;
        t->cls[k].bytes_requested += r->cls[k].bytes_requested;
        t->cls[k].evicted += r->cls[k].evicted;
        t->cls[k].expired_unfetched += r->cls[k].expired_unfetched;
        t->cls[k].evicted_unfetched += r->cls[k].evicted_unfetched;
        t->cls[k].outofmemory += r->cls[k].outofmemory;
        if (r->cls[k].age > t->cls[k].age)
            t->cls[k].age = r->cls[k].age;
    }
    if (r->ncls > t->ncls)
        t->ncls = r->ncls;
    t->reactor.busy_cycles += r->reactor.busy_cycles;
    t->reactor.idle_cycles += r->reactor.idle_cycles;
}

static void general(struct emitter *e, const struct mc_shard_report *t)
{
    const struct mc_shard *sh = mc_this_shard();
    uint64_t now = mc_now();
    const struct mc_store_stats *s = &t->st;
    emit(e, "uptime", "%llu", (unsigned long long)(now - sh->started_s));
    emit(e, "time", "%llu", (unsigned long long)now);
    emit(e, "version", "%s", MC_VERSION);
    emit(e, "pointer_size", "%u", (unsigned)(8 * sizeof(void *)));
    emit(e, "max_connections", "%u", sh->set.max_conns);
    emit(e, "curr_connections", "%llu", (unsigned long long)t->conns.curr_conns);
    emit(e, "total_connections", "%llu", (unsigned long long)t->conns.total_conns);
    emit(e, "rejected_connections", "%llu", (unsigned long long)t->conns.rejected_conns);
#define S(name) emit(e, #name, "%llu", (unsigned long long)s->name)
    S(cmd_get); S(cmd_set); S(cmd_flush); S(cmd_touch);
    emit(e, "cmd_meta", "%llu", (unsigned long long)t->conns.cmd_meta);
    S(get_hits); S(get_misses); S(get_expired); S(get_flushed); S(delete_misses); S(delete_hits);
    S(incr_misses); S(incr_hits); S(decr_misses); S(decr_hits); S(cas_misses); S(cas_hits); S(cas_badval);
    S(touch_hits); S(touch_misses); S(store_too_large); S(store_no_memory);
    emit(e, "bytes_read", "%llu", (unsigned long long)t->conns.bytes_read);
    emit(e, "bytes_written", "%llu", (unsigned long long)t->conns.bytes_written);
    emit(e, "limit_maxbytes", "%llu", (unsigned long long)sh->set.mem_limit);
    emit(e, "accepting_conns", "%u", 1u);   /* listeners never pause; refusals past -c are counted above */
    emit(e, "threads", "%u", shard_count());
    S(bytes); S(curr_items); S(total_items); S(expired_unfetched); S(evicted_unfetched); S(evictions); S(reclaimed);
#undef S
    emit(e, "shard_busy_cycles", "%llu", (unsigned long long)t->reactor.busy_cycles);
    emit(e, "shard_idle_cycles", "%llu", (unsigned long long)t->reactor.idle_cycles);
}

static void settings(struct emitter *e)
{
    const struct mc_settings *s = &mc_this_shard()->set;
    unsigned f100 = (unsigned)(s->factor * 100 + 0.5);
    emit(e, "maxbytes", "%llu", (unsigned long long)s->mem_limit);
    emit(e, "maxconns", "%u", s->max_conns);
    emit(e, "tcpport", "%u", s->tcp_port);
    emit(e, "udpport", "%u", s->udp_port);
    emit(e, "verbosity", "%u", mc_this_shard()->verbosity);
    emit(e, "evictions", "%s", s->evict ? "on" : "off");
    emit(e, "growth_factor", "%u.%02u", f100 / 100, f100 % 100);
    emit(e, "chunk_size", "%u", s->chunk_min);
    emit(e, "num_threads", "%u", shard_count());
    emit(e, "cas_enabled", "%s", s->cas_enabled ? "yes" : "no");
    emit(e, "binding_protocol", "%s", "auto-negotiate");
    emit(e, "item_size_max", "%u", s->item_size_max);
    emit(e, "flush_enabled", "%s", "yes");
}

static void items(struct emitter *e, const struct mc_shard_report *t)
{
    char name[48];
    for (unsigned k = 0; k < t->ncls; k++) {
        const struct mc_class_stats *c = &t->cls[k];
        if (!c->items)
            continue;
#define I(field, val) snprintf(name, sizeof name, "items:%u:" field, k), emit(e, name, "%llu", (unsigned long long)(val))
        I("number", c->items);
        I("age", c->age);
        I("mem_requested", c->bytes_requested);
        I("evicted", c->evicted);
        I("outofmemory", c->outofmemory);
        I("expired_unfetched", c->expired_unfetched);
        I("evicted_unfetched", c->evicted_unfetched);
#undef I
    }
}

static void slabs(struct emitter *e, const struct mc_shard_report *t)
{
    char name[48];
    unsigned active = 0;
    for (unsigned k = 0; k < t->ncls; k++) {
        const struct mc_class_stats *c = &t->cls[k];
        if (!c->items)
            continue;
        active++;
        snprintf(name, sizeof name, "%u:chunk_size", k);
        emit(e, name, "%u", c->chunk_size);
        snprintf(name, sizeof name, "%u:used_chunks", k);
        emit(e, name, "%llu", (unsigned long long)c->items);
    }
    emit(e, "active_slabs", "%u", active);
    emit(e, "total_malloced", "%llu", (unsigned long long)t->st.total_malloced);
}

/* Not in memcached: how the keys and clients are spread over shards (tests and benchmarks read it). */
static void per_shard(struct emitter *e, const struct mc_stats_gather *g)
{
    char name[48];
    for (unsigned k = 0; k < shard_count(); k++) {
        const struct mc_shard_report *r = &g->rep[k];
        snprintf(name, sizeof name, "shard:%u:curr_items", k);
        emit(e, name, "%llu", (unsigned long long)r->st.curr_items);
        snprintf(name, sizeof name, "shard:%u:curr_connections", k);
        emit(e, name, "%llu", (unsigned long long)r->conns.curr_conns);
        snprintf(name, sizeof name, "shard:%u:heap_bytes", k);
        emit(e, name, "%llu", (unsigned long long)r->heap_bytes);
        snprintf(name, sizeof name, "shard:%u:busy_cycles", k);
        emit(e, name, "%llu", (unsigned long long)r->reactor.busy_cycles);
        snprintf(name, sizeof name, "shard:%u:idle_cycles", k);
        emit(e, name, "%llu", (unsigned long long)r->reactor.idle_cycles);
    }
}

static void finish_text_or_binary(struct emitter *e)
{
    if (e->cmd->binary)
        mc_binary_stats_end(e->o, e->cmd);
    else
        mc_text_stats_end(e->o);
}

static bool group_is(const struct mc_cmd *cmd, const char *g) { return strcmp(cmd->stats_group, g) == 0; }

/* A binary client must get a binary answer: text bytes would desynchronise its stream. */
static void out_of_memory(struct mc_out *o, const struct mc_cmd *cmd)
{
    if (cmd->binary)
        mc_binary_out_of_memory(o, cmd);
    else
        mc_text_out_of_memory(o);
}

static void format(struct mc_stats_gather *g)
{
    struct mc_shard_report *t = calloc(1, sizeof *t);
    struct emitter e = { &g->slot->out, &g->cmd };
    if (!t) {
        out_of_memory(e.o, e.cmd);
        return;
    }
    for (unsigned k = 0; k < shard_count(); k++)
        sum(t, &g->rep[k]);
    t->st.cmd_flush = g->rep[0].st.cmd_flush;   /* every shard counts each flush_all */
    if (group_is(&g->cmd, ""))
        general(&e, t);
    else if (group_is(&g->cmd, "settings"))
        settings(&e);
    else if (group_is(&g->cmd, "items"))
        items(&e, t);
    else if (group_is(&g->cmd, "slabs"))
        slabs(&e, t);
    else if (group_is(&g->cmd, "shards"))
        per_shard(&e, g);
    else if (group_is(&g->cmd, "sizes"))
        emit(&e, "sizes_status", "%s", "disabled");
    else if (group_is(&g->cmd, "reset")) {
        if (g->cmd.binary)
            mc_binary_stats_end(e.o, e.cmd);
        else
            mc_out_str(e.o, "RESET\r\n");
        free(t);
        return;
    }
    finish_text_or_binary(&e);
    free(t);
}

static void part_done(void *arg)
{
    struct mc_stats_gather *g = arg;
    if (--g->pending)
        return;
    if (!g->conn->gone)
        format(g);
    mc_conn_answered(g->conn, g->slot);
    free(g);
}

static void collect(void *arg)
{
    struct mc_stats_gather *g = arg;
    struct mc_shard *sh = mc_this_shard();
    struct mc_shard_report *r = &g->rep[shard_id()];
    mc_store_stats(sh->store, &r->st);
    r->conns = sh->conns;
    r->ncls = mc_store_class_stats(sh->store, r->cls, MC_CLASSES_MAX);
    shoal_reactor_stats(shard_id(), &r->reactor);
    r->heap_bytes = shoal_heap_bytes_in_use();
    if (group_is(&g->cmd, "reset")) {
        mc_store_stats_reset(sh->store);
        struct mc_conn_stats *cs = &sh->conns;
        *cs = (struct mc_conn_stats){ .curr_conns = cs->curr_conns };
    }
    smp_call(g->from, part_done, g);
}

static bool known_group(const struct mc_cmd *cmd)
{
    static const char *const groups[] = { "", "settings", "items", "slabs", "sizes", "shards", "reset" };
    for (size_t i = 0; i < sizeof groups / sizeof *groups; i++)
        if (group_is(cmd, groups[i]))
            return true;
    return false;
}

void mc_stats_request(struct mc_conn *c, const struct mc_cmd *cmd)
{
    struct mc_slot *slot = mc_conn_wait_slot(c, 1);
    if (!slot) {
        c->closing = true;      /* a reply silently missing would shift every later reply */
        return;
    }
    if (!known_group(cmd)) {
        /* memcached answers an unknown group with ERROR. */
        if (cmd->binary)
            mc_binary_stats_end(&slot->out, cmd);
        else
            mc_out_str(&slot->out, "ERROR\r\n");
        mc_conn_answered(c, slot);
        return;
    }
    unsigned n = shard_count();
    struct mc_stats_gather *g = calloc(1, sizeof *g + n * sizeof g->rep[0]);
    if (!g) {
        out_of_memory(&slot->out, cmd);
        mc_conn_answered(c, slot);
        return;
    }
    *g = (struct mc_stats_gather){ .conn = c, .slot = slot, .cmd = *cmd, .from = shard_id(), .pending = n };
    g->cmd.key = 0;
    g->cmd.value = 0;
    for (unsigned k = 0; k < n; k++)
        smp_call(k, collect, g);
}

struct mc_flush_msg {
    uint64_t now;
    int64_t delay;
};

static void flush_here(void *arg)
{
    struct mc_flush_msg *m = arg;
    mc_store_flush(mc_this_shard()->store, m->now, m->delay);
    free(m);
}

bool mc_flush_all(int64_t delay)
{
    bool told_all = true;
    uint64_t now = mc_now();
    for (unsigned k = 0; k < shard_count(); k++) {
        if (k == shard_id()) {
            mc_store_flush(mc_this_shard()->store, now, delay);
            continue;
        }
        struct mc_flush_msg *m = malloc(sizeof *m);
        if (!m) {
            told_all = false;
            continue;
        }
        *m = (struct mc_flush_msg){ now, delay };
        smp_call(k, flush_here, m);
    }
    return told_all;
}
