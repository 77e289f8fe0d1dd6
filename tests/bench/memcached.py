#!/usr/bin/env python3
"""memcached benchmark: memcaslap against Shoal's memcached and against stock memcached in the Linux
guest, under the same QEMU flags (not a pass/fail test).

    /usr/bin/python3 tests/bench/memcached.py [--machine microvm|pc] [--runs N] [--seconds S] [--conns N]

Needs root (network namespaces, tap devices) and memcached + libmemcached-tools on the host
(scripts/install-deps.sh). Both guests are booted through scripts/run.py with the same machine,
-smp, -m 256 and tap/multiqueue flags: Shoal's build/memcached.elf (apps/memcached, `-m 64`) and the
Linux guest of scripts/linux-guest.sh running Debian's memcached 1.6 (`-m 64 -t <vCPUs>`).

For 1 and 2 vCPUs, from the host side of a namespace made for the run, memcaslap (libmemcached-tools,
the load generator of the OSv and Seastar memcached figures) runs with --conns connections
(default 32) from one thread, its default mix (9 gets : 1 set, 64-byte keys, 1 KiB values) for
--seconds (default 5). Reported: ops/s (memcaslap's TPS), and p50/p99/p999 latency read from
memcaslap's log2 histogram of all operations (-S at the end of the run; a percentile is the upper
bound of its power-of-two bucket: coarse, but the same ruler for both). Each round boots every guest once per vCPU count,
Shoal and Linux alternating; medians over --runs rounds (default 3), ratio of medians (Shoal / Linux)
and the range of per-round ratios.

Nothing is retried: a boot that fails (guest not up, memcaslap error) is printed at once, its row of
the table is marked FAILED (medians of the rounds that worked, if any), the reason is listed under the
table, and the command exits 1 at the end.
"""
import argparse
import os
import re
import sys
import time

from guests import (BUILD, ROOT, BenchError, Failures, Guest, host_tsc_khz, median_or_none, num,  # noqa: E402
                    prepare, ratio_cell)

sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from netns import NetNS  # noqa: E402

GUEST_IP, HOST_IP, PREFIX = "10.0.2.15", "10.0.2.1", 24
PORT = 11211
VCPUS = (1, 2)
READY = {"shoal": r"^memcached: ready", "linux": r"^memcached: ready"}


def percentiles(text):
    """p50/p99/p999 (us) from the 'Total Statistics' log2 histogram: row 'E: a b c d' counts
    operations in [2^E, 2^(E+1)), [2^(E+1), ...) ..."""
    total = text.rsplit("Total Statistics", 1)[-1].split("Log2 Dist:", 1)[-1].split("\n\n", 1)[0]
    buckets = []
    for m in re.finditer(r"^\s+(\d+):((?:\s+\d+)+)\s*$", total, re.M):
        e = int(m.group(1))
        for i, n in enumerate(m.group(2).split()):
            buckets.append((e + i, int(n)))
    count = sum(n for _, n in buckets)
    out = {}
    for name, q in (("p50", 0.5), ("p99", 0.99), ("p999", 0.999)):
        seen = 0
        for e, n in sorted(buckets):
            seen += n
            if count and seen >= q * count:
                out[name] = 2 ** (e + 1)
                break
    return out


def wait_port(ns, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = ns.run(sys.executable, "-c", f"import socket; socket.create_connection(('{GUEST_IP}', {PORT}), 2).close()",
                   check=False, timeout=10)
        if r.returncode == 0:
            return True
        time.sleep(0.5)
    return False


def case(kind, smp, machine, tsc_khz, args):
    with NetNS(queues=smp, addr=f"{HOST_IP}/{PREFIX}") as ns:
        timeout = int(args.seconds) + 270
        g = Guest(kind, smp, machine, tsc_khz, image=os.path.join(BUILD, "memcached.elf"),
                  shoal_cmdline=[f"ip={GUEST_IP}/{PREFIX}", "--", "-m", "64"],
                  linux_cmdline=["bench=memcached", f"shoal_ip={GUEST_IP}/{PREFIX}",
                                 f"memcached_args=-m,64,-t,{smp}", f"memcached_seconds={timeout - 30}"],
                  ns=ns, timeout=timeout)
        try:
            if not g.wait_for(READY[kind], 180) or not wait_port(ns, 60):
                raise BenchError(f"{kind} did not come up; console:\n{g.tail()}")
            r = ns.run("memcaslap", "-s", f"{GUEST_IP}:{PORT}", "-c", str(args.conns), "-T", "1",
                       "-t", f"{int(args.seconds)}s", "-S", f"{int(args.seconds)}s", check=False, timeout=args.seconds + 60)
            m = re.search(r"TPS: (\d+)", r.stdout)
            if r.returncode != 0 or not m:
                raise BenchError(f"{kind}: memcaslap failed ({r.returncode}): {r.stdout[-800:]}{r.stderr[-800:]}"
                                 f"\nconsole:\n{g.tail()}")
            return {"tps": int(m.group(1)), **percentiles(r.stdout)}
        finally:
            g.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--machine", default="microvm", choices=["microvm", "pc"])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--conns", type=int, default=32)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("memcached.py: needs root (network namespaces and tap devices)")
    t0 = time.monotonic()
    prepare("memcached.py", ("memcached",), (), ())
    khz = host_tsc_khz()
    print(f"memcached benchmark: -M {args.machine}, TCG, -m 256, Shoal memcached vs Debian memcached in the Linux "
          f"guest; memcaslap -c {args.conns} -T 1 -t {args.seconds:g}s (9:1 get:set, 1 KiB values); "
          f"{os.cpu_count()} host CPUs, {time.strftime('%Y-%m-%d')}; medians of {args.runs} rounds\n")
    print(f"{'vCPUs':>5} {'Shoal ops/s':>12} {'Linux ops/s':>12} {'Shoal/Linux':>18}   p50/p99/p999 us: Shoal | Linux")
    failures = Failures("memcached.py")
    for smp in VCPUS:
        rounds = {"shoal": [], "linux": []}       # None for a round whose boot failed
        for rnd in range(args.runs):
            for kind in ("shoal", "linux"):
                rounds[kind].append(failures.attempt(smp, f"{kind}, {smp} vCPU(s), round {rnd + 1}", case,
                                                     kind, smp, args.machine, khz, args))
        s = [r and r["tps"] for r in rounds["shoal"]]
        l = [r and r["tps"] for r in rounds["linux"]]
        lat = " | ".join("/".join(num(median_or_none(r.get(p, 0) for r in rounds[k] if r), ".0f")
                                  for p in ("p50", "p99", "p999")) for k in ("shoal", "linux"))
        print(f"{smp:>5} {num(median_or_none(s), '>12.0f'):>12} {num(median_or_none(l), '>12.0f'):>12} "
              f"{ratio_cell(s, l, digits=2):>18}   {lat}  {failures.mark(smp, 2 * args.runs)}", flush=True)
    failures.print_report()
    print(f"\n(whole run {time.monotonic() - t0:.0f} s)")
    return failures.exit_status()


if __name__ == "__main__":
    sys.exit(main())
