#!/usr/bin/env python3
"""TCP benchmark: Shoal's echo against a Linux guest's, under the same QEMU flags (not a pass/fail test).

    /usr/bin/python3 tests/bench/tcp.py [--machine microvm|pc] [--runs N] [--seconds S]
                                        [--conns N] [--bulk-mib M]

Needs root (network namespaces, tap devices). Both guests are booted through
scripts/run.py with the same machine, -smp, -m and tap/multiqueue flags:
Shoal's build/echo.elf (apps/echo, `-- ip=10.0.2.15/24`) and the Linux guest
of scripts/linux-guest.sh running tcp_echo (tests/bench/guest/tcp_echo.c:
epoll, one pinned thread per vCPU with its own SO_REUSEPORT listener,
TCP_NODELAY), with eth0 given the same address (`shoal_ip=10.0.2.15/24`).

For 1 and 2 vCPUs (a multiqueue tap with one queue per vCPU), from the host
side of a namespace made for the run, build/bench/tcp_load
(tests/bench/tcp_load.c, one thread, epoll) measures, on one boot:
  - 64-byte request/response transactions per second over 1 connection and
    over --conns connections (default 32), one request in flight on each,
    counted for --seconds (default 2) after 0.5 s of warm-up;
  - bulk: one connection carrying --bulk-mib MiB (default 16) through the
    echo server (that many bytes each way, at once), timed from the connect
    to the last byte back; MB/s = bytes / time (each way).
Every byte is checked. Each round boots every guest once per vCPU count,
Shoal and Linux alternating; the table shows medians over --runs rounds
(default 3), the ratio of the medians (Shoal / Linux) and the range of the
per-round ratios. About 3 minutes with the defaults.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BUILD = os.path.join(ROOT, "build")
BENCH = os.path.join(BUILD, "bench")
GUEST = os.path.join(BUILD, "linux-guest")
RUN = os.path.join(ROOT, "scripts", "run.py")
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from netns import NetNS  # noqa: E402  (a namespace with a tap, removed afterwards)

GUEST_IP, HOST_IP, PREFIX = "10.0.2.15", "10.0.2.1", 24
PORT = 7
VCPUS = (1, 2)
EXIT_NO_STATUS = 125
READY = {"shoal": r"^echo: TCP and UDP port 7", "linux": r"^tcp_echo: ready"}


def sh(*cmd, **kw):
    return subprocess.run(list(cmd), check=True, **kw)


def newer(target, *sources):
    return os.path.exists(target) and all(os.path.getmtime(target) >= os.path.getmtime(s) for s in sources)


def prepare():
    os.makedirs(BENCH, exist_ok=True)
    r = subprocess.run(["make", "-s", "-C", ROOT, "APP=echo"], capture_output=True, text=True)
    elf = os.path.join(BUILD, "echo.elf")
    if r.returncode != 0:
        if not os.path.exists(elf):
            sys.exit(f"tcp.py: building echo failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
        print(f"tcp.py: WARNING: building echo failed; measuring the existing {elf}, built "
              f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(os.path.getmtime(elf)))}", flush=True)
    for prog in ("tcp_load", "tsc_khz"):
        src, out = os.path.join(HERE, f"{prog}.c"), os.path.join(BENCH, prog)
        if not newer(out, src):
            sh("gcc", "-O2", "-Wall", "-o", out, src)
    guest_srcs = [os.path.join(ROOT, "scripts", "linux-guest.sh"), os.path.join(HERE, "guest", "tcp_echo.c")]
    if not newer(os.path.join(GUEST, "initrd.gz"), *guest_srcs):
        sh(os.path.join(ROOT, "scripts", "linux-guest.sh"), stdout=subprocess.DEVNULL)


def host_tsc_khz():
    return int(subprocess.run([os.path.join(BENCH, "tsc_khz")], capture_output=True, text=True,
                              check=True).stdout.strip())


class Guest:
    """An echo server booted through run.py inside the namespace; console lines kept as they come."""

    def __init__(self, kind, smp, machine, tsc_khz, ns, timeout):
        if kind == "shoal":
            cmd = [RUN, os.path.join(BUILD, "echo.elf")]
            cmdline = [f"ip={GUEST_IP}/{PREFIX}"]
        else:
            cmd = [RUN, os.path.join(GUEST, "vmlinuz"), "--initrd", os.path.join(GUEST, "initrd.gz")]
            # microvm has no PIT, HPET or ACPI PM timer under TCG: Linux is told the host's TSC rate
            # (which TCG guests see) instead of calibrating, or it can hang at boot.
            cmdline = ["console=ttyS0", "quiet", "panic=-1", f"tsc_early_khz={tsc_khz}", "tsc=reliable",
                       "bench=tcp_echo", f"shoal_ip={GUEST_IP}/{PREFIX}", f"tcp_echo_seconds={int(timeout) - 30}"]  # off on its own first
        cmd = ["ip", "netns", "exec", ns.name, sys.executable, *cmd, "--smp", str(smp), "--machine", machine,
               "--timeout", str(timeout), "--net", ns.net_arg(), "--", *cmdline]
        self.kind = kind
        self.lines = []
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            self.lines.append(raw.decode(errors="replace").rstrip("\r\n"))

    def find(self, pattern):
        rx = re.compile(pattern)
        return next((m for m in (rx.search(line) for line in list(self.lines)) if m), None)

    def wait_for(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.find(pattern):
                return True
            if self.proc.poll() is not None:
                self.reader.join(5)
                return bool(self.find(pattern))
            time.sleep(0.05)
        return False

    def wait(self, timeout):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = None
        self.reader.join(5)
        return rc

    def kill(self):
        if self.proc.poll() is None:
            # `ip netns exec` execs run.py, which starts QEMU in a session of its own: stop QEMU first, by its pid.
            try:
                with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                    children = [int(c) for c in f.read().split()]
            except OSError:
                children = []
            for c in children:
                try:
                    os.kill(c, 9)
                except ProcessLookupError:
                    pass
            self.proc.kill()
            self.proc.wait()
        self.reader.join(5)

    def tail(self, n=15):
        return "\n".join(self.lines[-n:])


def load(ns, guest, *args, timeout):
    r = ns.run(os.path.join(BENCH, "tcp_load"), *args, check=False, timeout=timeout)
    lines = r.stdout.strip().splitlines()
    res = json.loads(lines[-1]) if lines else {}
    if r.returncode != 0 or not res:
        raise SystemExit(f"tcp.py: {guest.kind}: tcp_load {' '.join(args)} failed ({r.returncode}): "
                         f"{res or r.stderr[-500:]}; console:\n{guest.tail()}")
    return res


def case(kind, smp, machine, tsc_khz, args):
    """One boot: rr over 1 connection, rr over args.conns, bulk. Returns the three results."""
    out = {}
    with NetNS(queues=smp, addr=f"{HOST_IP}/{PREFIX}") as ns:
        g = Guest(kind, smp, machine, tsc_khz, ns, timeout=180)
        try:
            if not g.wait_for(READY[kind], 90):
                sys.exit(f"tcp.py: {kind} did not come up; console:\n{g.tail()}")
            rr = ("rr", GUEST_IP, str(PORT), "size=64", "warmup=0.5", f"seconds={args.seconds}")
            out["rr1"] = load(ns, g, *rr, "conns=1", timeout=args.seconds + 30)
            out["rrN"] = load(ns, g, *rr, f"conns={args.conns}", timeout=args.seconds + 30)
            out["bulk"] = load(ns, g, "bulk", GUEST_IP, str(PORT), f"bytes={args.bulk_mib << 20}", "timeout=60",
                               timeout=90)
            if kind == "linux":
                load(ns, g, "exit", GUEST_IP, str(PORT), timeout=10)
                rc = g.wait(30)
                if rc != EXIT_NO_STATUS:
                    sys.exit(f"tcp.py: linux guest exited with {rc}, expected {EXIT_NO_STATUS}; console:\n{g.tail()}")
                m = g.find(r"^tcp_echo: exit requested; (.*)")
                out["note"] = m[1] if m else ""
        finally:
            g.kill()
    return out


def ratio_cell(shoal, linux):
    """Ratio of the medians, and the range of the per-round ratios (round i of Shoal against round i of Linux)."""
    med = statistics.median(shoal) / statistics.median(linux)
    per = [a / b for a, b in zip(shoal, linux) if b]
    return f"{med:.2f}" + (f" ({min(per):.2f}-{max(per):.2f})" if len(per) > 1 else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--machine", default="microvm", choices=["microvm", "pc"])
    ap.add_argument("--runs", type=int, default=3, help="rounds; each boots every guest once per vCPU count")
    ap.add_argument("--seconds", type=float, default=2, help="measured time per transaction case (after 0.5 s warm-up)")
    ap.add_argument("--conns", type=int, default=32, help="connections for the many-connection case")
    ap.add_argument("--bulk-mib", type=int, default=16, help="MiB through the echo server (each way) in the bulk case")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("tcp.py: needs root (network namespaces and tap devices)")
    t0 = time.monotonic()
    prepare()
    khz = host_tsc_khz()
    kver = sorted(os.listdir(os.path.join(GUEST, "pkg", "kernel", "lib", "modules")))[0]
    print(f"TCP benchmark: -M {args.machine}, TCG, -m 256, Shoal echo vs Linux {kver} tcp_echo; "
          f"host TSC {khz} kHz, {os.cpu_count()} host CPUs, {time.strftime('%Y-%m-%d')}; medians of {args.runs} "
          f"rounds, ratio of medians (range of per-round ratios)")
    print(f"64-byte transactions/s ({args.seconds:g} s after 0.5 s warm-up, one in flight per connection); "
          f"bulk: {args.bulk_mib} MiB each way through echo on one connection, MB/s each way\n")
    print(f"{'vCPUs':>5} {'test':>18} {'Shoal':>10} {'Linux':>10} {'Shoal/Linux':>18}   p50/p99 us, Shoal | Linux")
    med = statistics.median
    notes = []
    for smp in VCPUS:
        rounds = {"shoal": [], "linux": []}
        for _ in range(args.runs):
            for kind in ("shoal", "linux"):
                rounds[kind].append(case(kind, smp, args.machine, khz, args))
        for key, label, metric in (("rr1", "1 conn, trans/s", "tps"), ("rrN", f"{args.conns} conns, trans/s", "tps"),
                                   ("bulk", "bulk MB/s", "MBps")):
            s = [r[key][metric] for r in rounds["shoal"]]
            l = [r[key][metric] for r in rounds["linux"]]
            lat = ""
            if metric == "tps":
                lat = " | ".join(f"{med(r[key]['p50_us'] for r in rounds[k]):.0f}/"
                                 f"{med(r[key]['p99_us'] for r in rounds[k]):.0f}" for k in ("shoal", "linux"))
            fmt = ".0f" if metric == "tps" else ".1f"
            print(f"{smp:>5} {label:>18} {med(s):>10{fmt}} {med(l):>10{fmt}} {ratio_cell(s, l):>18}   {lat}", flush=True)
        notes.append(f"  {smp} vCPU: {rounds['linux'][-1].get('note', '')}")
    print("\nLinux tcp_echo per thread, last round (bulk connection included):")
    print("\n".join(notes))
    print(f"\n(whole run {time.monotonic() - t0:.0f} s)")


if __name__ == "__main__":
    main()
