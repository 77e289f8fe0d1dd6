#!/usr/bin/env python3
"""memcached, Shoal against Linux and lwIP, in one run, with fixed CPU pinning (issue 6; not pass/fail).

    /usr/bin/python3 tests/bench/compare.py [--runs N] [--seconds S] [--lat-seconds S] [--vcpus 1,2]
                                            [--conns N] [--machine microvm|pc] [--smoke] [--out-dir DIR]
                                            [--json FILE]

Needs root (network namespaces, tap devices), memcached + libmemcached-tools on the host and
python3-matplotlib (scripts/install-deps.sh); run it with /usr/bin/python3. Four configurations, each
booted through scripts/run.py with the same machine, -smp, -m 256 and tap/multiqueue flags, and each
serving memcached on 10.0.2.15:11211:

  shoal       build/memcached.elf: apps/memcached on Shoal's own TCP/IP stack (`ip=10.0.2.15/24 -- -m 64`)
  shoal-lwip  build/memcached-lwip.elf: the same app on lwIP (`make APP=memcached NETSTACK=lwip`),
              same command line; reported as "not built", with the reason, while it cannot be built
  linux       Debian's memcached 1.6 in the Linux guest of scripts/linux-guest.sh (bench=memcached,
              `-m 64 -t <vCPUs>`): the baseline of every ratio
  linux-app   apps/memcached built for Linux (runtime/linux, `make linux APP=memcached`, static) in the
              same Linux guest (bench=shoal_memcached, SHOAL_SHARDS=<vCPUs>, `-p 11211 -m 64`)

For every vCPU count (--vcpus, default 1,2) and round (--runs, default 3) every configuration is booted
once (rounds outer, configurations alternating inside, so drift hits all alike), and from the host side of
a namespace made for the boot memcaslap (one thread, --conns connections, default 32, its default 9:1
get:set mix of 1 KiB values) runs for --seconds (default 5); then, from the same namespace and core,
tests/bench/mc_load.c (built into build/bench/mc_load; one thread, epoll) with the same number of
connections, each with exactly one request in flight (9:1 get:set of 1 KiB values over 10,000 keys it
first sets; every reply parsed and its value checked) runs for --lat-seconds (default min(3, --seconds))
after a 0.5 s warm-up. Per boot:

  ops/s        memcaslap's TPS (memcaslap is the throughput judge)
  p50/p99/p999 mc_load's latencies: exact percentiles (nearest rank) of every request sent after its
               warm-up, send to end of reply on the host's monotonic clock, one request in flight per
               connection (memcaslap's log2-bucket percentiles are kept in the per-boot log only);
               a boot whose mc_load finds a protocol error or a wrong or stale value fails
  vCPU us/req  CPU time (utime+stime, /proc/QEMU/task/TID/stat) of QEMU's vCPU threads ("CPU n/TCG")
               over the memcaslap run (not mc_load's), divided by memcaslap's op count; "QEMU us/req" is the same for
               the whole QEMU process (vCPUs plus the I/O thread's tap work)
  boot ms      from starting run.py to the first TCP connection accepted on port 11211 (a probe in
               the namespace connects every 10 ms; the guest's MAC is fixed and entered in the host's
               neighbour table, so ARP does not add its retry interval)
  image        bytes on disk: the ELF for Shoal; vmlinuz + initrd.gz for Linux (one initramfs holds
               both Linux memcacheds and the other benchmarks' programs)
  RSS MiB      QEMU's VmRSS after memcaslap's load (before mc_load's; of -m 256), comparable for all four
  heap KiB     the guest's heap in use after memcaslap's load (`stats shards`): summed over shards on Shoal,
               glibc's process figure for apps/memcached on Linux, not available for stock memcached

Tables give medians over the rounds; ratios are median(config) / median(linux), with the range of the
per-round ratios in brackets. Without --smoke the tool writes its block (between the markers
`<!-- compare.py begin -->` and `<!-- compare.py end -->`) into docs/performance.md with the date, the
machine and the commands, and draws docs/compare.png; with --smoke both go to --out-dir (a fresh temporary
directory by default) and docs/ is not touched. --json writes every row's numbers (or its reason).

CPU pinning (taskset semantics, applied with sched_setaffinity): the host's usable cores C0..Cn-1 (the
process's affinity mask). With n >= vCPUs + 2: vCPU i alone on C_i, QEMU's other threads (main loop =
tap I/O, RCU) on C_vCPUs, the load generator on the next core: nothing shared. With fewer cores
(--short-layout auto): when vCPUs <= n - 1, the load generator alone on the last core and QEMU on the
others, vCPU i on C_i and the I/O thread with vCPU 0 ("vcpu"); when vCPUs > n - 1, vCPU i on C_(i mod n),
the I/O thread with vCPU 0 and the load generator on the last core, shared with a vCPU ("spread"). On a
2-core host:
  1 vCPU:  vCPU 0 + QEMU I/O thread on core 0; memcaslap (then mc_load) alone on core 1.
  2 vCPUs: vCPU 0 + QEMU I/O thread on core 0; vCPU 1 + memcaslap (then mc_load) on core 1 (necessarily shared).
Measured on 2 cores before choosing (one or two 3 s rounds): at 1 vCPU, putting the I/O thread with
memcaslap instead ("load") cost Shoal 60% and Linux 25-50% of their ops/s, because memcaslap keeps its core
busy and starves the tap I/O; at 2 vCPUs, both vCPUs on core 0 ("vcpu") cost Linux 60%.
QEMU's threads start on the I/O core (run.py is started with that affinity and QEMU inherits it; QEMU runs
with `-name compare,debug-threads=on` so that its vCPU threads are named "CPU n/TCG"), and the vCPU
threads are moved as soon as they appear, before the guest has run far.

Nothing is retried. A boot that fails (guest not up, memcaslap or mc_load error) is printed at once; its
row of the table is marked FAILED (with the medians of the rounds that worked, if any) and its reason
is listed under the table; compare.py still writes its outputs and then exits 1. --break CONFIG boots
that configuration with a QEMU device that does not exist, so that its boots fail: the smoke test uses
it to check that a failure is reported and not retried.

A row whose configuration cannot be built gets its reason instead of numbers ("not built", "skipped";
these do not change the exit status); the smoke test (tests/integration/test_compare_smoke.py) runs
`--runs 1 --seconds 1 --vcpus 1 --smoke` and fails unless every row has numbers, then one broken boot
(`--configs shoal --break shoal`), which must be reported FAILED, once, with a non-zero exit. About 7 minutes on a 2-core host with the defaults (an estimate: mc_load adds 4 to 10 s
per boot, its preload of 10,000 keys taking several seconds on the slow Linux rows under TCG).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from guests import BENCH, BUILD, GUEST, ROOT, Guest, host_tsc_khz, newer, prepare  # noqa: E402
from memcached import percentiles  # noqa: E402  (memcaslap's log2 histogram, kept in the per-boot log)

sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from netns import NetNS  # noqa: E402

GUEST_IP, HOST_IP, PREFIX = "10.0.2.15", "10.0.2.1", 24
GUEST_MAC = "52:54:00:12:34:56"
PORT = 11211
MEM_MIB = 256                       # run.py's default -m, the same for all
DOCS = os.path.join(ROOT, "docs")
BEGIN, END = "<!-- compare.py begin -->", "<!-- compare.py end -->"
LWIP_ELF = os.path.join(BUILD, "memcached-lwip.elf")
MC_LOAD = os.path.join(BENCH, "mc_load")     # tests/bench/mc_load.c, built by guests.prepare
SHOAL_ELF = os.path.join(BUILD, "memcached.elf")
# Output of a build that failed because lwIP's sources could not be downloaded (no network).
NO_NETWORK = re.compile(r"Could not resolve|Temporary failure in name resolution|Network is unreachable|"
                        r"unable to access|Failed to connect|Connection refused|Connection timed out|"
                        r"could not fetch|cannot fetch|unable to fetch|fetch failed|Failed to fetch|No route to host|"
                        r"Temporary failure resolving|Unable to find a source package", re.I)

CONFIGS = [
    # key, label, kind
    ("shoal", "Shoal memcached (Shoal TCP/IP)", "shoal"),
    ("shoal-lwip", "Shoal memcached on lwIP", "shoal"),
    ("linux", "memcached 1.6 on Linux", "linux"),
    ("linux-app", "apps/memcached on Linux", "linux"),
]
BASELINE = "linux"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# --break CONFIG: QEMU refuses to start with this, so the boot fails (the smoke test's failure case).
BROKEN_DEVICE = ("-device", "compare-break-no-such-device")

# ---------------------------------------------------------------------------------------------------
# building


def tail(text, n=6):
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return " / ".join(lines[-n:])


def build_all(who):
    """Builds what can be built. Returns {config: None if usable, else (status, reason)}."""
    status = {}
    r = subprocess.run(["make", "-s", "-C", ROOT, "APP=memcached"], capture_output=True, text=True)
    if r.returncode != 0:
        if os.path.exists(SHOAL_ELF):
            print(f"{who}: WARNING: make APP=memcached failed; measuring the existing {SHOAL_ELF}", flush=True)
            status["shoal"] = None
        else:
            status["shoal"] = ("not built", "make APP=memcached failed: " + tail(r.stdout + r.stderr))
    else:
        status["shoal"] = None

    r = subprocess.run(["make", "-s", "-C", ROOT, "APP=memcached", "NETSTACK=lwip"], capture_output=True, text=True)
    out = r.stdout + r.stderr
    if r.returncode == 0 and os.path.exists(LWIP_ELF):
        status["shoal-lwip"] = None
    elif os.path.exists(LWIP_ELF) and r.returncode != 0:
        print(f"{who}: WARNING: make APP=memcached NETSTACK=lwip failed; measuring the existing {LWIP_ELF}",
              flush=True)
        status["shoal-lwip"] = None
    elif r.returncode != 0 and NO_NETWORK.search(out):
        status["shoal-lwip"] = ("skipped", "lwIP's sources could not be fetched (no network): " + tail(out, 3))
    elif r.returncode != 0:
        status["shoal-lwip"] = ("not built", "make APP=memcached NETSTACK=lwip failed: " + tail(out))
    else:
        status["shoal-lwip"] = ("not built", "make APP=memcached NETSTACK=lwip succeeded but made no "
                                "build/memcached-lwip.elf (this tree has no lwIP build yet)")

    # The Linux guest: rebuilt when linux-guest.sh or the sources of apps/memcached for Linux changed.
    srcs = [os.path.join(ROOT, "scripts", "linux-guest.sh"), os.path.join(ROOT, "runtime", "shoal.h"),
            os.path.join(ROOT, "kernel", "timer_wheel.c"), os.path.join(ROOT, "kernel", "timer_wheel.h")]
    for d in ("apps/memcached", "runtime/linux"):
        srcs += [os.path.join(ROOT, d, f) for f in os.listdir(os.path.join(ROOT, d)) if f.endswith((".c", ".h"))]
    if not newer(os.path.join(GUEST, "initrd.gz"), *srcs):
        r = subprocess.run([os.path.join(ROOT, "scripts", "linux-guest.sh")], capture_output=True, text=True)
        if r.returncode != 0:
            reason = "scripts/linux-guest.sh failed: " + tail(r.stdout + r.stderr)
            if not os.path.exists(os.path.join(GUEST, "initrd.gz")):
                status["linux"] = status["linux-app"] = ("not built", reason)
                return status
            print(f"{who}: WARNING: {reason}; using the existing Linux guest", flush=True)
        elif "WARNING" in r.stderr:
            print(f"{who}: {tail(r.stderr, 2)}", flush=True)
    prepare(who, (), ("mc_load",), ())      # tsc_khz and mc_load (the guest is up to date by now)
    rootfs = os.path.join(GUEST, "root", "bin")
    status["linux"] = None if os.path.exists(os.path.join(rootfs, "memcached")) else (
        "not built", "no memcached on the host to copy into the Linux guest (scripts/install-deps.sh)")
    status["linux-app"] = None if os.path.exists(os.path.join(rootfs, "shoal_memcached")) else (
        "not built", "make linux APP=memcached (static) failed in scripts/linux-guest.sh")
    return status


def image_bytes(key):
    if key == "shoal":
        return os.path.getsize(SHOAL_ELF)
    if key == "shoal-lwip":
        return os.path.getsize(LWIP_ELF)
    return os.path.getsize(os.path.join(GUEST, "vmlinuz")) + os.path.getsize(os.path.join(GUEST, "initrd.gz"))

# ---------------------------------------------------------------------------------------------------
# pinning


def cpu_layout(vcpus, short="auto"):
    """{'vcpu': [core per vCPU], 'io': core, 'load': core, 'note': text}"""
    cores = sorted(os.sched_getaffinity(0))
    n = len(cores)
    if short == "auto":
        short = "vcpu" if vcpus <= n - 1 else "spread"
    if n >= vcpus + 2:
        return {"vcpu": cores[:vcpus], "io": cores[vcpus], "load": cores[vcpus + 1], "note": "nothing shared"}
    if n == 1:
        return {"vcpu": [cores[0]] * vcpus, "io": cores[0], "load": cores[0], "note": "all on one core"}
    if short == "vcpu":           # the load generator alone on the last core; QEMU on the others
        vc = [cores[i % (n - 1)] for i in range(vcpus)]
        note = "load generator alone; I/O thread shares vCPU 0's core"
        if vcpus > n - 1:
            note += "; vCPUs share cores"
        return {"vcpu": vc, "io": cores[0], "load": cores[-1], "note": note}
    if short == "spread":         # vCPUs over all cores, the I/O thread with vCPU 0, load generator on the last
        vc = [cores[i % n] for i in range(vcpus)]
        return {"vcpu": vc, "io": cores[0], "load": cores[-1],
                "note": "I/O thread shares vCPU 0's core; the load generator shares the last core"}
    # short == "load": vCPUs first, one core each; the I/O thread and the load generator on the last
    load = cores[-1]
    vc = [cores[i % n] for i in range(vcpus)] if vcpus > n - 1 else cores[:vcpus]
    shared = [i for i, c in enumerate(vc) if c == load]
    note = "I/O thread shares the load generator's core"
    if shared:
        note += "; vCPU " + ",".join(map(str, shared)) + " too"
    return {"vcpu": vc, "io": load, "load": load, "note": note}


def layout_text(lay):
    v = ", ".join(f"vCPU {i}: core {c}" for i, c in enumerate(lay["vcpu"]))
    return f"{v}; QEMU I/O + other threads: core {lay['io']}; memcaslap, mc_load: core {lay['load']} ({lay['note']})"


def qemu_pid(parent, timeout=10):
    """QEMU is run.py's only child (run.py runs in `ip netns exec`, which execs it: same pid)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{parent}/task/{parent}/children") as f:
                kids = f.read().split()
        except OSError:
            return None
        for k in kids:
            try:
                with open(f"/proc/{k}/comm") as f:
                    if f.read().startswith("qemu"):
                        return int(k)
            except OSError:
                pass
        time.sleep(0.005)
    return None


def threads(pid):
    """{tid: comm} of a process."""
    out = {}
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    out[int(tid)] = f.read().strip()
            except OSError:
                pass
    except OSError:
        pass
    return out


VCPU_COMM = re.compile(r"^CPU (\d+)/(TCG|KVM)")


def vcpu_threads(pid):
    return {int(m.group(1)): tid for tid, comm in threads(pid).items() if (m := VCPU_COMM.match(comm))}


def pin(pid, lay, smp, timeout=10):
    """Moves the vCPU threads to their cores (waiting for all of them), everything else to the I/O core.
    Returns the vCPU tids."""
    deadline = time.monotonic() + timeout
    while True:
        v = vcpu_threads(pid)
        if len(v) >= smp or time.monotonic() > deadline:
            break
        time.sleep(0.002)
    vtids = set(v.values())
    for tid in threads(pid):
        try:
            os.sched_setaffinity(tid, {lay["io"]} if tid not in vtids else {lay["vcpu"][[i for i, t in v.items()
                                                                                       if t == tid][0]]})
        except OSError:
            pass
    return v


def cpu_ticks(path):
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])          # utime, stime (fields 14 and 15)


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        m = re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)
    return int(m.group(1)) if m else None

# ---------------------------------------------------------------------------------------------------
# one boot


class NamedGuest(Guest):
    """guests.Guest with QEMU's `-name compare,debug-threads=on`, so that its vCPU threads are called
    "CPU n/TCG" (QEMU 7.2 leaves every thread "qemu-system-x86" otherwise)."""

    def __init__(self, *a, qemu_args=(), **kw):
        real = subprocess.Popen

        def popen(cmd, **pkw):
            i = cmd.index("--") if "--" in cmd else len(cmd)
            extra = ["-name", "compare,debug-threads=on", *qemu_args]
            cmd = cmd[:i] + [f"--qemu-arg={a}" for a in extra] + cmd[i:]
            return real(cmd, **pkw)
        subprocess.Popen = popen
        try:
            super().__init__(*a, **kw)
        finally:
            subprocess.Popen = real


class PinnedNS(NetNS):
    """The run's namespace; the guest NIC gets a fixed MAC that the host side knows without ARP."""

    def __enter__(self):
        super().__enter__()
        try:
            self.run("ip", "neigh", "replace", GUEST_IP, "lladdr", GUEST_MAC, "dev", self.tap, "nud", "permanent")
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def net_arg(self):
        return super().net_arg() + f",mac={GUEST_MAC}"


PROBE = """
import socket, sys, time
deadline = time.monotonic() + float(sys.argv[3])
while time.monotonic() < deadline:
    s = socket.socket()
    s.settimeout(0.2)
    try:
        s.connect((sys.argv[1], int(sys.argv[2])))
        print(time.monotonic(), flush=True)
        sys.exit(0)
    except OSError:
        time.sleep(0.01)
    finally:
        s.close()
sys.exit(1)
"""

HEAP = """
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 5)
s.sendall(b"stats shards\\r\\n")
buf = b""
while not buf.endswith(b"END\\r\\n"):
    d = s.recv(65536)
    if not d:
        break
    buf += d
print(buf.decode(errors="replace"))
"""


def guest_heap(ns, key):
    if key == BASELINE:
        return None
    r = ns.run(sys.executable, "-c", HEAP, GUEST_IP, str(PORT), check=False, timeout=20)
    vals = [int(v) for v in re.findall(r"^STAT shard:\d+:heap_bytes (\d+)", r.stdout, re.M)]
    if not vals:
        return None
    return max(vals) if key == "linux-app" else sum(vals)   # glibc's figure is the process's, per shard


def lat_seconds(args):
    return args.lat_seconds if args.lat_seconds else min(3.0, args.seconds)


def mc_load_cmd(args, host=GUEST_IP):
    return [MC_LOAD, host, str(PORT), f"conns={args.conns}", f"seconds={lat_seconds(args):g}", "warmup=0.5",
            "value=1024", "keys=10000", "set_ratio=0.1"]


def run_mc_load(ns, lay, args):
    """mc_load from the namespace, on the load generator's core: exact latency percentiles (us)."""
    secs = lat_seconds(args)
    # mc_load stops itself after its preload + warm-up + run, bounded by its own deadline (60 s beyond)
    r = subprocess.run(["ip", "netns", "exec", ns.name, "taskset", "-c", str(lay["load"]), *mc_load_cmd(args)],
                       capture_output=True, text=True, timeout=secs + 90)
    line = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    try:
        out = json.loads(line)
    except ValueError:
        out = {}
    if r.returncode != 0 or not out.get("ops"):
        raise RuntimeError(f"mc_load failed ({r.returncode}): {r.stdout[-600:]}{r.stderr[-600:]}")
    return {"p50": out["p50_us"], "p99": out["p99_us"], "p999": out["p999_us"], "lat_max": out["max_us"],
            "lat_ops": out["ops"], "lat_ops_s": out["ops_per_s"], "lat_misses": out.get("misses", 0)}


def one_boot(key, smp, lay, tsc_khz, args):
    kind = dict((k, kd) for k, _, kd in CONFIGS)[key]
    timeout = int(args.seconds + lat_seconds(args)) + 150
    with PinnedNS(queues=smp, addr=f"{HOST_IP}/{PREFIX}") as ns:
        image = LWIP_ELF if key == "shoal-lwip" else SHOAL_ELF
        if key == "linux":
            lcmd = ["bench=memcached", f"memcached_args=-m,64,-t,{smp}"]
        else:
            lcmd = ["bench=shoal_memcached", "shoal_memcached_args=-p,11211,-m,64"]
        lcmd += [f"shoal_ip={GUEST_IP}/{PREFIX}", f"memcached_seconds={timeout - 30}"]
        mine = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {lay["io"]})           # run.py, and so QEMU, start on the I/O core
        try:
            t0 = time.monotonic()
            g = NamedGuest(kind, smp, args.machine, tsc_khz, image=image,
                           shoal_cmdline=[f"ip={GUEST_IP}/{PREFIX}", "--", "-m", "64"],
                           linux_cmdline=lcmd, ns=ns, timeout=timeout,
                           qemu_args=BROKEN_DEVICE if key in args.broken else ())
        finally:
            os.sched_setaffinity(0, mine)
        probe = None
        try:
            qpid = qemu_pid(g.proc.pid)
            if qpid is None:
                g.wait(10)
                raise RuntimeError(f"no QEMU process under run.py (run.py exit status {g.proc.returncode}); "
                                   f"console:\n{g.tail()}")
            vt = pin(qpid, lay, smp)
            if len(vt) < smp:
                raise RuntimeError(f"found {len(vt)} vCPU threads of {smp} in QEMU {qpid}: {threads(qpid)}")
            probe = subprocess.Popen(["ip", "netns", "exec", ns.name, "taskset", "-c", str(lay["load"]),
                                      sys.executable, "-c", PROBE, GUEST_IP, str(PORT), "120"],
                                     stdout=subprocess.PIPE, text=True)
            out, deadline = "", time.monotonic() + 130
            while True:                                # the probe's answer, unless the guest stops first
                try:
                    out, _ = probe.communicate(timeout=0.2)
                    break
                except subprocess.TimeoutExpired:
                    if g.proc.poll() is not None or time.monotonic() > deadline:
                        probe.kill()
                        probe.communicate()
                        out = ""
                        break
            if probe.returncode != 0 or not out.strip():
                if g.proc.poll() is not None:
                    g.reader.join(5)
                    raise RuntimeError(f"the guest stopped (run.py exit status {g.proc.returncode}) before port "
                                       f"{PORT} accepted a connection; console:\n{g.tail()}")
                raise RuntimeError(f"port {PORT} never accepted a connection; console:\n{g.tail()}")
            boot_ms = (float(out.split()[0]) - t0) * 1000
            if not g.wait_for(r"memcached: ready", 30):
                raise RuntimeError(f"no 'memcached: ready' line; console:\n{g.tail()}")
            vt = pin(qpid, lay, smp)                   # threads QEMU made since (none expected)
            vpaths = [f"/proc/{qpid}/task/{t}/stat" for t in vt.values()]
            v0, q0, w0 = sum(cpu_ticks(p) for p in vpaths), cpu_ticks(f"/proc/{qpid}/stat"), time.monotonic()
            secs = max(1, int(round(args.seconds)))
            r = subprocess.run(["ip", "netns", "exec", ns.name, "taskset", "-c", str(lay["load"]),
                                "memcaslap", "-s", f"{GUEST_IP}:{PORT}", "-c", str(args.conns), "-T", "1",
                                "-t", f"{secs}s", "-S", f"{secs}s"],
                               capture_output=True, text=True, timeout=secs + 60)
            v1, q1, w1 = sum(cpu_ticks(p) for p in vpaths), cpu_ticks(f"/proc/{qpid}/stat"), time.monotonic()
            m = re.search(r"Ops: (\d+) TPS: (\d+)", r.stdout)
            if r.returncode != 0 or not m:
                raise RuntimeError(f"memcaslap failed ({r.returncode}): {r.stdout[-600:]}{r.stderr[-600:]}"
                                   f"\nconsole:\n{g.tail()}")
            ops, tps = int(m.group(1)), int(m.group(2))
            res = {"ops_s": tps, "ops": ops,
                   **{"memcaslap_" + k: v for k, v in percentiles(r.stdout).items()},
                   "vcpu_us_req": (v1 - v0) / CLK_TCK / ops * 1e6,
                   "qemu_us_req": (q1 - q0) / CLK_TCK / ops * 1e6,
                   "vcpu_util": (v1 - v0) / CLK_TCK / (w1 - w0),
                   "boot_ms": boot_ms, "rss_mib": (vm_rss_kib(qpid) or 0) / 1024}
            heap = guest_heap(ns, key)
            if heap is not None:
                res["heap_kib"] = heap / 1024
            try:
                res.update(run_mc_load(ns, lay, args))       # latencies, after memcaslap
            except RuntimeError as e:
                raise RuntimeError(f"{e}\nconsole:\n{g.tail()}") from None
            return res
        finally:
            if probe and probe.poll() is None:
                probe.kill()
            g.kill()

# ---------------------------------------------------------------------------------------------------
# report

COLS = [  # key, header, format
    ("ops_s", "ops/s", "{:,.0f}"),
    ("p50", "mc_load p50 us", "{:.0f}"),
    ("p99", "mc_load p99 us", "{:.0f}"),
    ("p999", "mc_load p999 us", "{:.0f}"),
    ("vcpu_us_req", "vCPU us/req", "{:.1f}"),
    ("qemu_us_req", "QEMU us/req", "{:.1f}"),
    ("boot_ms", "boot ms", "{:,.0f}"),
    ("image", "image bytes", "{:,.0f}"),
    ("rss_mib", "RSS MiB", "{:.0f}"),
    ("heap_kib", "heap KiB", "{:,.0f}"),
]
RATIO_COLS = [("ops_s", "ops/s"), ("p99", "mc_load p99"), ("vcpu_us_req", "vCPU us/req"), ("qemu_us_req", "QEMU us/req"),
              ("boot_ms", "boot"), ("image", "image"), ("rss_mib", "RSS")]


def med(rows, k):
    vals = [r[k] for r in rows if r.get(k) is not None]
    return statistics.median(vals) if vals else None


def summarize(results, status, vcpus):
    """One row per (config, vCPUs): medians, ratios, or the reason there are none."""
    rows = []
    for smp in vcpus:
        base = results.get((BASELINE, smp), [])
        for key, label, _ in CONFIGS:
            row = {"config": key, "label": label, "vcpus": smp}
            runs = results.get((key, smp), [])
            good = [r for r in runs if "error" not in r]
            if status.get(key):
                row["status"], row["reason"] = status[key]
            elif not runs:
                row["status"], row["reason"] = "failed", "not run"
            elif len(good) < len(runs):     # any failed boot fails the row: its reasons are listed
                row["status"] = "failed"
                row["failed_runs"] = [r["error"][:1500] for r in runs if "error" in r]
                row["reason"] = (f"{len(row['failed_runs'])} of {len(runs)} boot(s) failed: "
                                 + "; ".join(e[:300] for e in row["failed_runs"]))
            else:
                row["status"] = "ok"
            if good and not status.get(key):
                row["runs"] = len(good)
                for k, _, _ in COLS:
                    row[k] = med(good, k)
                bgood = [r for r in base if "error" not in r]
                for k, _ in RATIO_COLS:
                    b = med(bgood, k)
                    if row.get(k) is not None and b:
                        row["ratio_" + k] = row[k] / b
                        per = [a[k] / c[k] for a, c in zip(runs, base)
                               if "error" not in a and "error" not in c and a.get(k) and c.get(k)]
                        if len(per) > 1:
                            row["range_" + k] = (min(per), max(per))
            rows.append(row)
    return rows


def fmt(row, k, f):
    v = row.get(k)
    return "-" if v is None else f.format(v)


def ratio(row, k):
    v = row.get("ratio_" + k)
    if v is None:
        return "-"
    rg = row.get("range_" + k)
    return f"{v:.2f}" + (f" ({rg[0]:.2f}-{rg[1]:.2f})" if rg else "")


def one_line(text):
    """A reason (which may hold console lines) as one markdown list item."""
    return " / ".join(l.strip() for l in text.splitlines() if l.strip())


def tables(rows):
    """Markdown: absolute figures, then ratios against stock memcached on Linux."""
    out = ["| configuration | vCPUs | " + " | ".join(h for _, h, _ in COLS) + " |",
           "|---|--:|" + "--:|" * len(COLS)]
    notes = []
    for r in rows:
        if r["status"] == "failed":
            n = len(r.get("failed_runs", ())) or "all"
            label = f"{r['label']} **FAILED** ({n} of {r.get('runs', 0) + len(r.get('failed_runs', ()))} boots)"
            notes.append(f"- {r['label']}, {r['vcpus']} vCPU(s): **FAILED**: {one_line(r['reason'])}")
            if not r.get("runs"):
                out.append(f"| {label} | {r['vcpus']} | FAILED: see below |" + " |" * (len(COLS) - 1))
                continue
            out.append(f"| {label} | {r['vcpus']} | " + " | ".join(fmt(r, k, f) for k, _, f in COLS) + " |")
            continue
        if r["status"] != "ok":
            out.append(f"| {r['label']} | {r['vcpus']} | {r['status']}: see below |" + " |" * (len(COLS) - 1))
            notes.append(f"- {r['label']}, {r['vcpus']} vCPU(s): **{r['status']}**: {r['reason']}")
            continue
        out.append(f"| {r['label']} | {r['vcpus']} | " + " | ".join(fmt(r, k, f) for k, _, f in COLS) + " |")
    out += ["", "Ratios against stock memcached on Linux at the same vCPU count (median / median; range of the "
            "per-round ratios in brackets; ops/s: higher is better, the rest: lower is better):", "",
            "| configuration | vCPUs | " + " | ".join(h for _, h in RATIO_COLS) + " |",
            "|---|--:|" + "--:|" * len(RATIO_COLS)]
    for r in rows:
        if r.get("runs") and r["config"] != BASELINE:
            label = r["label"] + (" **FAILED** (medians of the boots that worked)" if r["status"] == "failed" else "")
            out.append(f"| {label} | {r['vcpus']} | " + " | ".join(ratio(r, k) for k, _ in RATIO_COLS) + " |")
    if notes:
        out += [""] + notes
    return "\n".join(out)


def chart(rows, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    vcpus = sorted({r["vcpus"] for r in rows})
    keys = [k for k, _, _ in CONFIGS]
    labels = {k: l for k, l, _ in CONFIGS}
    panels = [("ops_s", "ops/s (memcaslap TPS)"), ("p99", "p99 latency, us (mc_load)"),
              ("vcpu_us_req", "vCPU CPU time per request, us"), ("boot_ms", "boot to port open, ms")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2))
    width = 0.8 / len(keys)
    for ax, (k, name) in zip(axes, panels):
        for i, key in enumerate(keys):
            xs, ys = [], []
            for j, smp in enumerate(vcpus):
                r = next((r for r in rows if r["config"] == key and r["vcpus"] == smp), None)
                if r and r.get(k) is not None:
                    xs.append(j + (i - (len(keys) - 1) / 2) * width)
                    ys.append(r[k])
            ax.bar(xs, ys, width, label=labels[key])
        ax.set_xticks(range(len(vcpus)))
        ax.set_xticklabels([f"{v} vCPU" for v in vcpus])
        ax.set_title(name, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=len(keys), fontsize=9, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def machine_facts():
    with open("/proc/cpuinfo") as f:
        m = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
    cpu = m.group(1).strip() if m else platform.processor()
    qemu = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True, text=True).stdout.splitlines()
    os_name = ""
    try:
        with open("/etc/os-release") as f:
            mm = re.search(r'^PRETTY_NAME="?([^"\n]*)', f.read(), re.M)
            os_name = mm.group(1) if mm else ""
    except OSError:
        pass
    kern = platform.release()
    with open("/proc/meminfo") as f:
        mem = int(re.search(r"MemTotal:\s+(\d+)", f.read()).group(1)) // 1024
    return {"cpu": cpu, "cores": os.cpu_count(), "usable": len(os.sched_getaffinity(0)),
            "qemu": qemu[0] if qemu else "?", "os": os_name, "kernel": kern, "mem_mib": mem,
            "host": socket.gethostname()}


def block(rows, args, facts, elapsed, layouts, png_name, cmdline, failed):
    date = datetime.datetime.now().strftime("%Y-%m-%d %H:%M %Z").strip()
    lay = "\n".join(f"  - {v} vCPU(s): {layout_text(l)}" for v, l in layouts.items())
    fail_text = (f"\n**This run failed**: {len(failed)} boot(s) failed (not retried; listed above, their rows "
                 f"marked FAILED), and compare.py exited 1.\n" if failed else "")
    return f"""{BEGIN}
## memcached: Shoal against Linux and lwIP, one run (issue 6)

Written by `tests/bench/compare.py` (do not edit between the markers; the
next run replaces this block). Date: {date}. Machine: {facts['cpu']},
{facts['cores']} cores ({facts['usable']} usable), {facts['mem_mib']} MiB, {facts['os']}, host kernel
{facts['kernel']}, {facts['qemu']}, TCG, `-M {args.machine} -cpu max -m {MEM_MIB}`.
Whole run: {elapsed:.0f} s.

Commands:
- `{cmdline}` (also run by `make bench`)
- per boot: `scripts/run.py IMAGE --smp N --machine {args.machine} --net tap:tap0[,queues=N],mac={GUEST_MAC}`
  for Shoal with `-- ip={GUEST_IP}/{PREFIX} -- -m 64` (run.py's `--`, then the image's); for Linux `build/linux-guest/vmlinuz --initrd
  build/linux-guest/initrd.gz` with `bench=memcached memcached_args=-m,64,-t,N` (Debian memcached) or
  `bench=shoal_memcached shoal_memcached_args=-p,11211,-m,64` (apps/memcached, SHOAL_SHARDS=N)
- load: `memcaslap -s {GUEST_IP}:{PORT} -c {args.conns} -T 1 -t {max(1, int(round(args.seconds)))}s -S {max(1, int(round(args.seconds)))}s` (9:1 get:set, 1 KiB values)
  from the host side of a namespace made for each boot, then on the same core
  `{" ".join(os.path.relpath(a, ROOT) if a == MC_LOAD else a for a in mc_load_cmd(args))}`
  (tests/bench/mc_load.c: sets the 10,000 keys, then one request in flight per connection)
- CPU pinning (sched_setaffinity, as taskset; QEMU starts on the I/O core, vCPU threads
  "CPU n/TCG" are moved at once):
{lay}

Medians of {args.runs} round(s) of {args.seconds:g} s per configuration and vCPU count (each round boots
every configuration once). ops/s is memcaslap's. Latencies now come from mc_load, not from
memcaslap's log2 buckets: exact percentiles (nearest rank) of the requests of its
{lat_seconds(args):g} s run after a 0.5 s warm-up, with one request in flight per connection ({args.conns}
connections), each reply parsed and its value checked, send to end of reply on the host's clock.
"us/req" is host CPU time (utime+stime from /proc) of QEMU's vCPU threads (or of the
whole QEMU process) during memcaslap's load, per memcaslap operation. "boot ms": run.py
start to the first TCP connection accepted on port {PORT}. "image": the ELF for
Shoal; vmlinuz + initrd.gz for Linux (one initramfs for both Linux rows, with the
other benchmarks' programs). "RSS": QEMU's VmRSS after memcaslap's load. "heap": guest heap in
use after memcaslap's load (`stats shards`; summed over shards on Shoal, glibc's process
figure for apps/memcached on Linux). Under TCG absolute times say little about real
hardware; the ratios are the point. Nothing is retried: a boot that fails is marked FAILED
with its reason and makes compare.py exit 1.

{tables(rows)}
{fail_text}
![memcached comparison]({png_name})
{END}"""


def write_docs(text, path):
    old = open(path).read() if os.path.exists(path) else "# Performance\n"
    if BEGIN in old and END in old:
        a = old.index(BEGIN)
        b = old.index(END) + len(END)
        new = old[:a] + text + old[b:]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    with open(path, "w") as f:
        f.write(new)

# ---------------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--machine", default="microvm", choices=["microvm", "pc"])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--lat-seconds", type=float, default=None,
                    help="mc_load's measured seconds per boot, for the latencies (default: min(3, --seconds))")
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--vcpus", default="1,2", help="comma-separated vCPU counts")
    ap.add_argument("--configs", default=",".join(k for k, _, _ in CONFIGS), help="comma-separated subset")
    ap.add_argument("--short-layout", default="auto", choices=["auto", "vcpu", "spread", "load"],
                    help="pinning when the host has fewer than vCPUs + 2 cores (see above)")
    ap.add_argument("--smoke", action="store_true", help="leave docs/ alone: write into --out-dir")
    ap.add_argument("--out-dir", help="where the markdown block and the PNG go (default: docs/, or a temporary "
                    "directory with --smoke)")
    ap.add_argument("--json", help="write every row (numbers or reason) to this file")
    ap.add_argument("--break", dest="broken", action="append", default=[], metavar="CONFIG",
                    help="boot CONFIG with a QEMU device that does not exist, so that it fails (to test the "
                    "failure reporting; repeatable)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("compare.py: needs root (network namespaces and tap devices)")
    vcpus = [int(v) for v in args.vcpus.split(",")]
    wanted = args.configs.split(",")
    t0 = time.monotonic()
    shown, skip = [], False                   # the command as documented: without where output went
    for a in sys.argv[1:]:
        if skip:
            skip = False
        elif a in ("--json", "--out-dir"):
            skip = True
        elif not a.startswith(("--json=", "--out-dir=")):
            shown.append(a)
    cmdline = "/usr/bin/python3 tests/bench/compare.py" + "".join(f" {shlex.quote(a)}" for a in shown)
    status = build_all("compare.py")
    for k, _, _ in CONFIGS:
        if k not in wanted and not status.get(k):
            status[k] = ("skipped", "not in --configs")
    khz = host_tsc_khz()
    layouts = {v: cpu_layout(v, args.short_layout) for v in vcpus}
    facts = machine_facts()
    print(f"compare.py: {facts['cpu']}, {facts['cores']} cores, {facts['qemu']}; -M {args.machine}, TCG, "
          f"-m {MEM_MIB}; memcaslap -c {args.conns} -T 1 for {args.seconds:g} s, then mc_load conns={args.conns} "
          f"for {lat_seconds(args):g} s; {args.runs} round(s)", flush=True)
    for v, l in layouts.items():
        print(f"  pinning at {v} vCPU(s): {layout_text(l)}", flush=True)
    for k, st in status.items():
        if st:
            print(f"  {k}: {st[0]}: {st[1]}", flush=True)
    results = {}
    failed = []                  # "config, N vCPU(s), round R: reason" of every boot that failed
    for rnd in range(args.runs):
        for smp in vcpus:
            for key, label, _ in CONFIGS:
                if status.get(key):
                    continue
                t = time.monotonic()
                try:                     # once: a failed boot is reported, never retried
                    res = one_boot(key, smp, layouts[smp], khz, args)
                    res["image"] = image_bytes(key)
                    msg = (f"{res['ops_s']:>8,} ops/s  mc_load p50/p99/p999 {res['p50']:.0f}/{res['p99']:.0f}/"
                           f"{res['p999']:.0f} us ({res['lat_ops_s']:,.0f} ops/s"
                           + (f", {res['lat_misses']} misses" if res.get("lat_misses") else "") +
                           f"; memcaslap {res.get('memcaslap_p50', 0)}/{res.get('memcaslap_p99', 0)}/"
                           f"{res.get('memcaslap_p999', 0)})  vCPU {res['vcpu_us_req']:.1f} us/req "
                           f"(util {res['vcpu_util']:.2f})  boot {res['boot_ms']:,.0f} ms  RSS {res['rss_mib']:.0f} MiB")
                except Exception as e:  # a row that fails keeps its reason; the others go on
                    res = {"error": f"{type(e).__name__}: {e}"}
                    msg = "FAILED: " + res["error"][:1500]
                    failed.append(f"{key}, {smp} vCPU(s), round {rnd + 1}: {res['error'][:300]}")
                results.setdefault((key, smp), []).append(res)
                print(f"  round {rnd + 1} {smp} vCPU {key:<10} {msg}  [{time.monotonic() - t:.0f} s]", flush=True)
    rows = summarize(results, status, vcpus)
    elapsed = time.monotonic() - t0
    print("\n" + tables(rows) + f"\n\n(whole run {elapsed:.0f} s)", flush=True)
    if failed:
        print(f"\ncompare.py: FAILED: {len(failed)} boot(s) failed (not retried):\n  "
              + "\n  ".join(one_line(f) for f in failed), flush=True)

    out_dir = args.out_dir or (tempfile.mkdtemp(prefix="compare-") if args.smoke else DOCS)
    os.makedirs(out_dir, exist_ok=True)
    png = os.path.join(out_dir, "compare.png")
    md = os.path.join(out_dir, "performance.md")
    chart_err = None
    try:
        chart(rows, png, f"memcached under QEMU/TCG, {facts['cpu']}, {facts['cores']} cores, "
                         f"{datetime.date.today()} (medians of {args.runs})")
    except ImportError as e:
        chart_err = f"no chart: {e} (python3-matplotlib, scripts/install-deps.sh; run with /usr/bin/python3)"
        print(f"compare.py: {chart_err}", flush=True)
    write_docs(block(rows, args, facts, elapsed, layouts, "compare.png", cmdline, failed), md)
    print(f"compare.py: wrote {md}" + ("" if chart_err else f" and {png}"), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "elapsed_s": elapsed, "failed_boots": failed, "chart": None if chart_err else png,
                       "chart_error": chart_err, "markdown": md, "layouts": {str(k): v for k, v in layouts.items()}},
                      f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
