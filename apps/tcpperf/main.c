/*
 * tcpperf: a TCP source and sink for bulk tests.
 *
 *   -- sink [-p PORT]                 accept on every shard, discard, count
 *   -- source [-p PORT] BYTES         accept; send BYTES of the pattern to each peer, then close
 *   -- connect A.B.C.D PORT BYTES     from shard 0: connect, send BYTES of the pattern, close,
 *                                     print the result and power off (0 on success)
 *
 * The pattern is byte i = (i * 131 + (i >> 16)) & 0xFF, so a peer can check
 * what it got without the data being stored anywhere.
 */
#include "../../runtime/shoal.h"

#define CHUNK 16384

struct flow {
    uint64_t target, sent, received;
    bool connect_mode, closing;
};

static uint8_t pattern_byte(uint64_t i) { return (uint8_t)((i * 131 + (i >> 16)) & 0xFF); }

/* Sends until the buffer is full; tcp_send taking less than asked arranges the writable() that resumes. */
static void pump(shoal_tcp_conn *c, struct flow *f)
{
    uint8_t buf[CHUNK];
    while (f->sent < f->target) {
        size_t n = f->target - f->sent < CHUNK ? (size_t)(f->target - f->sent) : CHUNK;
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern_byte(f->sent + i);
        size_t took = shoal_tcp_send(c, buf, n);
        f->sent += took;
        if (took < n)
            return;
    }
    if (!f->closing) {
        f->closing = true;
        shoal_tcp_close(c);
    }
}

static void on_accepted(shoal_tcp_conn *c, void *arg)
{
    const uint64_t *bytes = arg;
    struct flow *f = calloc(1, sizeof *f);
    if (!f) {
        shoal_tcp_abort(c);
        return;
    }
    f->target = bytes ? *bytes : 0;
    shoal_tcp_set_arg(c, f);
    if (bytes)
        pump(c, f);
}

static void on_connected(shoal_tcp_conn *c, void *arg)
{
    struct flow *f = arg;
    shoal_print("tcpperf: connected\n");
    pump(c, f);
}

static void on_recv(shoal_tcp_conn *c, void *arg, const uint8_t *data, size_t len)
{
    struct flow *f = arg;
    (void)data;
    f->received += len;
    if (len == 0 && !f->connect_mode && f->target == 0)
        shoal_tcp_close(c);
}

static void on_writable(shoal_tcp_conn *c, void *arg) { pump(c, arg); }

static void on_closed(shoal_tcp_conn *c, void *arg, enum tcp_close_reason why)
{
    (void)c;
    struct flow *f = arg;
    if (!f)
        return;
    if (f->connect_mode) {
        shoal_print("tcpperf: sent %lu of %lu bytes, connection ended (%d)\n", (unsigned long)f->sent,
                    (unsigned long)f->target, (int)why);
        shoal_exit(f->sent == f->target && why == TCP_CLOSED_NORMAL ? 0 : 1);
    }
    free(f);
}

static const struct tcp_callbacks callbacks = {
    .accepted = on_accepted, .connected = on_connected, .recv = on_recv, .writable = on_writable,
    .closed = on_closed,
};

static bool parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

static bool parse_ip(const char *s, uint32_t *out)
{
    uint32_t ip = 0;
    for (int i = 0; i < 4; i++) {
        uint32_t v = 0;
        int digits = 0;
        while (*s >= '0' && *s <= '9' && digits < 3)
            v = v * 10 + (uint32_t)(*s++ - '0'), digits++;
        if (!digits || v > 255 || (i < 3 && *s++ != '.'))
            return false;
        ip = ip << 8 | v;
    }
    *out = ip;
    return *s == '\0';
}

static void usage(void)
{
    if (shard_id() == 0) {
        shoal_print("tcpperf: usage: -- sink [-p PORT] | source [-p PORT] BYTES | connect A.B.C.D PORT BYTES\n");
        shoal_exit(2);
    }
}

void app_main(int argc, char **argv)
{
    uint64_t port = 5001, bytes = 0;
    int i = 2;
    if (argc < 2)
        return usage();
    if (strcmp(argv[1], "connect") == 0) {
        uint32_t ip;
        if (argc != 5 || !parse_ip(argv[2], &ip) || !parse_u64(argv[3], &port) || !parse_u64(argv[4], &bytes) ||
            port == 0 || port > 65535)
            return usage();
        if (shard_id() != 0)
            return;
        struct flow *f = calloc(1, sizeof *f);
        f->target = bytes;
        f->connect_mode = true;
        if (!shoal_tcp_connect(ip, (uint16_t)port, &callbacks, f)) {
            shoal_print("tcpperf: cannot start a connection\n");
            shoal_exit(1);
        }
        return;
    }
    bool source = strcmp(argv[1], "source") == 0;
    if (!source && strcmp(argv[1], "sink") != 0)
        return usage();
    if (i + 1 < argc && strcmp(argv[i], "-p") == 0) {
        if (!parse_u64(argv[i + 1], &port) || port == 0 || port > 65535)
            return usage();
        i += 2;
    }
    if (source && (i >= argc || !parse_u64(argv[i++], &bytes)))
        return usage();
    if (i != argc)
        return usage();
    uint64_t *per_shard = source ? malloc(sizeof *per_shard) : 0;
    if (per_shard)
        *per_shard = bytes;
    if ((source && !per_shard) || shoal_tcp_listen((uint16_t)port, &callbacks, per_shard) < 0) {
        shoal_print("tcpperf: cannot listen on port %lu\n", (unsigned long)port);
        shoal_exit(1);
    }
    if (shard_id() == 0)
        shoal_print("tcpperf: %s on port %lu, %u shards\n", source ? "source" : "sink", (unsigned long)port,
                    shard_count());
}
