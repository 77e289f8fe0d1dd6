"""The Linux backend of the runtime (runtime/linux/): apps/echo and apps/tcpperf built as Linux programs
(`make linux`) and run on loopback with 1 and 4 shards: many concurrent echo connections, a bulk echo
checked by SHA-256, half-close, a client that stops reading (the app pauses and resumes), UDP echo,
tcpperf's source and active open, SIGTERM, and a self-test program for smp_call, timers, tasks and the
TCP callback contract."""
import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("SHOAL_BUILD", os.path.join(ROOT, "build"))
TCP_CLIENT = os.path.join(HERE, "tcp_client.py")
UDP_CLIENT = os.path.join(HERE, "udp_client.py")
HOST = "127.0.0.1"

_built = set()

def binary(app):
    if app not in _built:
        r = subprocess.run(["make", "-s", "-C", ROOT, "linux", f"APP={app}", f"BUILD={BUILD}"],
                           capture_output=True, text=True)
        assert r.returncode == 0, f"make linux APP={app} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}"
        _built.add(app)
    return os.path.join(BUILD, "linux", app)

def free_port():
    """A port free for both TCP and UDP right now."""
    for _ in range(50):
        t = socket.socket()
        t.bind((HOST, 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("0.0.0.0", port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port")

class Proc:
    """A Linux-backend program with its output collected; always killed on exit."""
    def __init__(self, args, shards):
        env = dict(os.environ, SHOAL_SHARDS=str(shards))
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        self.out = b""
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for chunk in iter(lambda: self.p.stdout.read1(4096), b""):
            with self.lock:
                self.out += chunk

    def text(self):
        with self.lock:
            return self.out.decode(errors="replace")

    def wait_for(self, s, timeout=10):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if s in self.text():
                return True
            if self.p.poll() is not None:
                time.sleep(0.1)
                return s in self.text()
            time.sleep(0.02)
        return False

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(timeout=10)
        self.t.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()

def echo_server(shards):
    port = free_port()
    p = Proc([binary("echo"), "-p", str(port)], shards)
    if not p.wait_for(f"echo: ready, TCP and UDP port {port} on {shards} shards"):
        p.kill()
        raise AssertionError(f"echo did not come up:\n{p.text()}")
    return p, port

def run_client(*args, timeout=120):
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(args[1:])}: {r.stdout[-1000:]}{r.stderr[-1000:]}"
    return r.stdout.strip().splitlines()[-1]

def recv_all(s, n=None):
    """Everything until EOF (or n bytes); returns the bytes."""
    out = bytearray()
    while n is None or len(out) < n:
        d = s.recv(1 << 20)
        if not d:
            break
        out += d
    return bytes(out)

def echo_many(shards, conns):
    def run():
        p, port = echo_server(shards)
        with p:
            print("  " + run_client(TCP_CLIENT, "echo-many", HOST, str(port), "--conns", str(conns),
                                    "--bytes", "3000", "--timeout", "60"))
            assert p.p.poll() is None, f"echo exited:\n{p.text()}"
    return run

def echo_bulk(shards, mib):
    def run():
        p, port = echo_server(shards)
        with p:
            print("  " + run_client(TCP_CLIENT, "echo-bulk", HOST, str(port), str(mib << 20), "--timeout", "60"))
    return run

def half_close(shards):
    """The client sends, shuts down its side, and gets every byte back and then EOF (the app's FIN)."""
    def run():
        p, port = echo_server(shards)
        with p:
            for size in (1, 1000, 3 << 20):
                data = os.urandom(size)
                s = socket.create_connection((HOST, port), timeout=20)
                got = {}
                reader = threading.Thread(target=lambda: got.update(data=recv_all(s)))
                reader.start()
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                reader.join(30)
                assert not reader.is_alive(), f"no EOF after {size} bytes"
                s.close()
                assert got["data"] == data, f"{size} bytes: {len(got['data'])} came back, equal={got['data'] == data}"
    return run

def slow_reader(shards):
    """A client that sends 24 MiB before reading anything: the app must pause taking data (the window
    closes) instead of failing, then resume, and every byte still comes back in order."""
    def run():
        p, port = echo_server(shards)
        with p:
            data = os.urandom(24 << 20)
            s = socket.create_connection((HOST, port), timeout=30)
            sent = {"n": 0}
            def send():
                for i in range(0, len(data), 65536):
                    s.sendall(data[i:i + 65536])
                    sent["n"] = i + 65536
                s.shutdown(socket.SHUT_WR)
            t = threading.Thread(target=send, daemon=True)
            t.start()
            time.sleep(1.0)
            stalled = sent["n"]
            assert stalled < len(data), "the sender was never held back"
            back = recv_all(s)
            t.join(30)
            s.close()
            assert hashlib.sha256(back).digest() == hashlib.sha256(data).digest(), \
                f"{len(back)} of {len(data)} bytes came back, or differ"
            print(f"  sender held back after {stalled >> 10} KiB; all {len(data) >> 20} MiB echoed")
    return run

def udp_echo(shards):
    def run():
        p, port = echo_server(shards)
        with p:
            print("  " + run_client(UDP_CLIENT, HOST, str(port), "--flows", "32", "--count", "50",
                                    "--sizes", "1,8,512,1472,8000,65000", "--timeout", "60"))
    return run

def pattern(start, n):
    return bytes(((i * 131 + (i >> 16)) & 0xFF) for i in range(start, start + n))

def tcpperf_source_and_connect():
    """tcpperf source: several concurrent peers each get the pattern and EOF; tcpperf connect: the active
    open sends BYTES to a Python listener and exits 0, or exits 1 when the connection is refused."""
    port = free_port()
    size = 4 << 20
    with Proc([binary("tcpperf"), "source", "-p", str(port), str(size)], 4) as p:
        assert p.wait_for("tcpperf: source on port"), p.text()
        want = pattern(0, size)
        results = []
        def one():
            s = socket.create_connection((HOST, port), timeout=30)
            results.append(recv_all(s) == want)
            s.close()
        ts = [threading.Thread(target=one) for _ in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        assert results == [True] * 8, f"source results {results}"
    port = free_port()
    size = 8 << 20
    sink = subprocess.Popen([sys.executable, TCP_CLIENT, "sink-listen", str(port), str(size), "--timeout", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        r = subprocess.run([binary("tcpperf"), "connect", HOST, str(port), str(size)], capture_output=True,
                           text=True, timeout=60, env=dict(os.environ, SHOAL_SHARDS="2"))
        out, err = sink.communicate(timeout=30)
        assert r.returncode == 0 and sink.returncode == 0, f"connect: {r.stdout} {r.stderr}; sink: {out} {err}"
    finally:
        if sink.poll() is None:
            sink.kill()
            sink.wait()
    r = subprocess.run([binary("tcpperf"), "connect", HOST, str(free_port()), "1000"], capture_output=True, text=True,
                       timeout=30, env=dict(os.environ, SHOAL_SHARDS="1"))
    assert r.returncode == 1 and "connection ended (4)" in r.stdout, f"refused: {r.returncode} {r.stdout}"

def out_of_descriptors():
    """echo on 4 shards with 48 descriptors and 400 clients connecting: accept runs out of descriptors, and a
    shard whose spare descriptor another shard's thread took must back off instead of spinning on its
    level-triggered listener; once the clients are gone it serves again."""
    import resource
    port = free_port()
    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))
    p = subprocess.Popen([binary("echo"), "-p", str(port)], env=dict(os.environ, SHOAL_SHARDS="4"),
                         preexec_fn=limit, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    socks = []
    try:
        time.sleep(0.5)
        for _ in range(400):
            s = socket.socket()
            s.setblocking(False)
            socks.append(s)
            try:
                s.connect((HOST, port))
            except BlockingIOError:
                pass
        time.sleep(1.0)
        def cpu():
            f = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
        c0 = cpu()
        time.sleep(2.0)
        used = cpu() - c0
        for s in socks:
            s.close()
        socks = []
        assert used < 0.5, f"{used:.2f} s of CPU in 2 s with nothing to do: the listener spins"
        time.sleep(0.3)
        s = socket.create_connection((HOST, port), timeout=10)
        s.sendall(b"still here")
        assert recv_all(s, 10) == b"still here", "no echo after the clients left"
        s.close()
        print(f"  {used:.2f} s of CPU over 2 s while out of descriptors")
    finally:
        for s in socks:
            s.close()
        p.kill()
        p.wait(timeout=10)

def sigterm_exits_zero():
    p, port = echo_server(2)
    with p:
        p.p.send_signal(signal.SIGTERM)
        assert p.p.wait(timeout=10) == 0, f"exit status {p.p.returncode}"

# A program against the whole API surface that echo and tcpperf do not use: smp_call ordering per
# (sender, target) with smp_try_call mixed in, timers (order, never early, cancel), a self-requeuing task,
# and TCP between the shards' own sockets (close with data after it, abort inside recv with closed()
# before abort returns, a bulk send held back by recv_pause until a timer resumes). It prints
# "selftest: OK" and exits 0 through shoal_exit() on the last shard.
SELFTEST_C = r"""/* Exercises the runtime API on the Linux backend: smp_call ordering, timers, tasks, TCP callbacks. */
#include "shoal.h"

#define MSGS 20000u
#define TIMERS 200u
#define BULK (8u << 20)
#define MAXS 64

static __thread uint16_t port;
static unsigned expected_parts;
static unsigned parts_done;                      /* shard 0 */

static void fail(const char *what)
{
    shoal_print("selftest: FAIL %s (shard %u)\n", what, shard_id());
    shoal_exit(1);
}

static void final_exit(void *arg) { (void)arg; shoal_print("selftest: exiting from shard %u\n", shard_id()); shoal_exit(0); }

static void part_done(void *arg)
{
    (void)arg;
    if (++parts_done == expected_parts) {
        struct shoal_reactor_stats st;
        uint64_t msgs = 0, timers = 0, tasks = 0;
        for (unsigned s = 0; s < shard_count(); s++) {
            shoal_reactor_stats(s, &st);
            msgs += st.messages, timers += st.timers, tasks += st.tasks;
        }
        if (msgs < (uint64_t)MSGS * shard_count() * shard_count() || timers < (uint64_t)(TIMERS - TIMERS / 10) * shard_count() || tasks < 1000)
            fail("reactor stats");
        shoal_log("selftest: all %u parts done, %lu messages", parts_done, (unsigned long)msgs);
        shoal_print("selftest: OK\n");
        smp_call(shard_count() - 1, final_exit, 0);
    }
}
static void report(void) { smp_call(0, part_done, 0); }

/* ---- smp_call ordering ---- */
static __thread uint32_t next_seq[MAXS];
static __thread unsigned senders_done;
static void on_msg(void *arg)
{
    uintptr_t v = (uintptr_t)arg;
    unsigned from = (unsigned)(v >> 20), seq = (unsigned)(v & 0xFFFFF);
    if (seq != next_seq[from]++)
        fail("smp_call order");
    if (seq == MSGS - 1 && ++senders_done == shard_count())
        report();
}

/* ---- timers ---- */
struct tmr { struct timer t; uint64_t deadline; bool cancelled; };
static __thread struct tmr tmrs[TIMERS];
static __thread uint64_t last_fired;
static __thread unsigned fired, to_fire;
static void on_timer(struct timer *t)
{
    struct tmr *m = (struct tmr *)t;
    uint64_t now = now_ns();
    if (m->cancelled) fail("cancelled timer fired");
    if (now < m->deadline) fail("timer early");
    if (m->deadline < last_fired) fail("timer order");
    last_fired = m->deadline;
    if (++fired == to_fire)
        report();
}

/* ---- tasks ---- */
static __thread struct task tk;
static __thread unsigned task_runs;
static void on_task(struct task *t)
{
    if (++task_runs < 1000)
        task_schedule(t);
    else
        report();
}

/* ---- TCP ---- */
enum mode { M_CLOSE, M_ABORT, M_BULK };
struct cl { enum mode mode; uint64_t sent; bool got_eof, closing; size_t got; };
struct sv { unsigned mode; uint64_t got; bool paused; struct timer resume; shoal_tcp_conn *c; };
static __thread unsigned srv_aborted;

static void sv_resume(struct timer *t)
{
    struct sv *s = (struct sv *)((char *)t - __builtin_offsetof(struct sv, resume));
    s->paused = false;
    shoal_tcp_recv_resume(s->c);
}
static void sv_accepted(shoal_tcp_conn *c, void *arg)
{
    (void)arg;
    struct sv *s = calloc(1, sizeof *s);
    s->mode = 99;
    s->c = c;
    shoal_timer_init(&s->resume, sv_resume);
    shoal_tcp_set_arg(c, s);
    uint32_t ip; uint16_t p;
    shoal_tcp_peer(c, &ip, &p);
    if (ip != 0x7F000001 || p == 0) fail("peer");
}
static void sv_recv(shoal_tcp_conn *c, void *arg, const uint8_t *data, size_t len)
{
    struct sv *s = arg;
    if (len == 0) {
        if (s->mode == M_BULK && s->got != BULK) fail("bulk length");
        shoal_tcp_close(c);
        return;
    }
    if (s->mode == 99) {
        s->mode = data[0] == 'a' ? M_ABORT : data[0] == 0 ? M_BULK : M_CLOSE;
        if (s->mode == M_BULK) {    /* hold the sender back a while */
            s->paused = true;
            shoal_tcp_recv_pause(c);
            shoal_timer_arm(&s->resume, now_ns() + 200000000ull);
        }
    }
    if (s->mode == M_ABORT) {
        unsigned before = srv_aborted;
        shoal_tcp_abort(c);
        if (srv_aborted != before + 1) fail("closed() not run inside abort");
        shoal_tcp_abort(c);             /* harmless: it is dead */
        return;
    }
    if (s->mode == M_BULK) {
        for (size_t i = 0; i < len; i++)
            if (data[i] != (uint8_t)((s->got + i) * 7)) fail("bulk data");
        s->got += len;
        return;
    }
    if (shoal_tcp_send(c, data, len) != len) fail("echo send");
}
static void sv_closed(shoal_tcp_conn *c, void *arg, enum tcp_close_reason why)
{
    (void)c;
    struct sv *s = arg;
    if (s->mode == M_ABORT) { if (why != TCP_CLOSED_ABORTED) fail("server abort reason"); srv_aborted++; }
    else if (why != TCP_CLOSED_NORMAL) fail("server close reason");
    shoal_timer_cancel(&s->resume);
    free(s);
    report();
}
static const struct tcp_callbacks sv_cb = { .accepted = sv_accepted, .recv = sv_recv, .closed = sv_closed };

static void cl_pump(shoal_tcp_conn *c, struct cl *k)
{
    uint8_t buf[65536];
    while (k->sent < BULK) {
        size_t n = BULK - k->sent < sizeof buf ? (size_t)(BULK - k->sent) : sizeof buf;
        for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)((k->sent + i) * 7);
        size_t took = shoal_tcp_send(c, buf, n);
        k->sent += took;
        if (took < n) return;
    }
    if (!k->closing) { k->closing = true; shoal_tcp_close(c); }
}
static void cl_connected(shoal_tcp_conn *c, void *arg)
{
    struct cl *k = arg;
    if (k->mode == M_BULK) { shoal_tcp_set_nodelay(c, true); cl_pump(c, k); return; }
    const char *msg = k->mode == M_ABORT ? "abort" : "close-me";
    if (shoal_tcp_send(c, msg, strlen(msg)) != strlen(msg)) fail("client send");
    if (k->mode == M_CLOSE) { shoal_tcp_close(c); if (shoal_tcp_send(c, "x", 1) != 0) fail("send after close"); }
}
static void cl_recv(shoal_tcp_conn *c, void *arg, const uint8_t *data, size_t len)
{
    (void)c, (void)data;
    struct cl *k = arg;
    if (len == 0) { if (k->got_eof) fail("two EOFs"); k->got_eof = true; }
    k->got += len;
}
static void cl_writable(shoal_tcp_conn *c, void *arg) { cl_pump(c, arg); }
static void cl_closed(shoal_tcp_conn *c, void *arg, enum tcp_close_reason why)
{
    (void)c;
    struct cl *k = arg;
    if (k->mode == M_ABORT && why != TCP_CLOSED_RESET) fail("client reset reason");
    if (k->mode == M_CLOSE && (why != TCP_CLOSED_NORMAL || !k->got_eof || k->got != 8)) fail("client close");
    if (k->mode == M_BULK && (why != TCP_CLOSED_NORMAL || k->sent != BULK)) fail("client bulk");
    free(k);
    report();
}
static const struct tcp_callbacks cl_cb = { .connected = cl_connected, .recv = cl_recv, .writable = cl_writable, .closed = cl_closed };

static void start_clients(struct timer *t)
{
    (void)t;
    for (int m = M_CLOSE; m <= M_BULK; m++) {
        struct cl *k = calloc(1, sizeof *k);
        k->mode = (enum mode)m;
        if (!shoal_tcp_connect(0x7F000001, port, &cl_cb, k)) fail("connect");
    }
}
static void on_udp(void *arg, uint32_t ip, uint16_t sport, uint16_t dport, const uint8_t *d, size_t n)
{
    (void)arg, (void)ip, (void)sport, (void)dport, (void)d, (void)n;
}
static __thread struct timer start_t, watchdog;
static void on_watchdog(struct timer *t) { (void)t; fail("watchdog: not done in 30 s"); }

void app_main(int argc, char **argv)
{
    if (argc != 2) fail("usage: selftest PORT");
    port = 0; for (const char *p = argv[1]; *p; p++) port = (uint16_t)(port * 10 + (uint16_t)(*p - 48));
    unsigned n = shard_count();
    if (n > MAXS) fail("too many shards");
    /* parts: per shard msgs(1) + timers(1) + task(1) + 3 client + 3 server closes */
    if (shard_id() == 0)
        expected_parts = n * 9;
    if (shoal_tcp_listen(port, &sv_cb, 0) < 0) fail("listen");
    if (shoal_tcp_listen(port, &sv_cb, 0) == 0) fail("second listen on a shard must fail");
    if (shoal_udp_bind(port, 0, 0) == 0) fail("udp bind without a callback must fail");
    if (shoal_udp_bind(0, on_udp, 0) == 0 || shoal_tcp_listen(0, &sv_cb, 0) == 0) fail("port 0 must fail");
    if (shoal_tcp_listen((uint16_t)(port + 1), 0, 0) == 0) fail("listen without callbacks must fail");
    if (shoal_udp_bind(port, on_udp, 0) < 0) fail("udp bind");
    if (shoal_udp_bind(port, on_udp, 0) == 0) fail("second udp bind must fail");
    if (shoal_blk_count() != 0 || shoal_l2_info(0)) fail("devices");
    for (unsigned to = 0; to < n; to++)
        for (uint32_t i = 0; i < MSGS; i++) {
            void *arg = (void *)(((uintptr_t)shard_id() << 20) | i);
            if (!(i & 1) || !smp_try_call(to, on_msg, arg))
                smp_call(to, on_msg, arg);
        }
    uint64_t now = now_ns(), seed = shard_id() * 2654435761u + 1;
    for (unsigned i = 0; i < TIMERS; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        shoal_timer_init(&tmrs[i].t, on_timer);
        tmrs[i].deadline = now + (seed >> 33) % 50000000u;
        shoal_timer_arm(&tmrs[i].t, tmrs[i].deadline);
    }
    for (unsigned i = 0; i < TIMERS; i += 10) { tmrs[i].cancelled = shoal_timer_cancel(&tmrs[i].t); }
    to_fire = TIMERS - TIMERS / 10;
    task_init(&tk, on_task);
    task_schedule(&tk);
    task_schedule(&tk);
    shoal_timer_init(&start_t, start_clients);
    shoal_timer_arm(&start_t, now_ns() + 100000000ull);   /* every shard is listening by then */
    shoal_timer_init(&watchdog, on_watchdog);
    shoal_timer_arm(&watchdog, now_ns() + 30000000000ull);
    if (wall_ns() < 1600000000ull * 1000000000ull) fail("wall clock");
    shoal_log("selftest: shard %u of %u up", shard_id(), n);
}
"""

def selftest_binary():
    d = os.path.join(BUILD, "linux", "selftest")
    os.makedirs(d, exist_ok=True)
    src, exe = os.path.join(d, "main.c"), os.path.join(d, "selftest")
    with open(src, "w") as f:
        f.write(SELFTEST_C)
    lib = subprocess.run(["make", "-s", "-C", ROOT, "linux-runtime-src"], capture_output=True, text=True,
                         check=True).stdout.split()
    r = subprocess.run(["gcc", "-std=gnu11", "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-pthread",
                        "-I", os.path.join(ROOT, "runtime"), src, *(os.path.join(ROOT, p) for p in lib),
                        "-o", exe], capture_output=True, text=True)
    assert r.returncode == 0, f"selftest build failed:\n{r.stderr[-3000:]}"
    return exe

def api_selftest(shards):
    def run():
        r = subprocess.run([selftest_binary(), str(free_port())], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, SHOAL_SHARDS=str(shards)))
        assert r.returncode == 0 and "selftest: OK" in r.stdout, \
            f"exit {r.returncode}:\n{r.stdout[-2000:]}{r.stderr[-2000:]}"
        assert f"selftest: exiting from shard {shards - 1}" in r.stdout, r.stdout
    return run

def cases():
    out = []
    for shards in (1, 4):
        out += [
            (f"linux-echo-500-conns-shards{shards}", echo_many(shards, 500)),
            (f"linux-echo-bulk-48MiB-sha256-shards{shards}", echo_bulk(shards, 48)),
            (f"linux-echo-half-close-shards{shards}", half_close(shards)),
            (f"linux-echo-slow-reader-pause-resume-shards{shards}", slow_reader(shards)),
            (f"linux-udp-echo-shards{shards}", udp_echo(shards)),
            (f"linux-api-selftest-shards{shards}", api_selftest(shards)),
        ]
    out += [
        ("linux-tcpperf-source-and-connect", tcpperf_source_and_connect),
        ("linux-sigterm-exits-0", sigterm_exits_zero),
        ("linux-echo-out-of-descriptors-no-spin", out_of_descriptors),
    ]
    return out
