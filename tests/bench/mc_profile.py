#!/usr/bin/env python3
"""Where a memcached image's time goes under load (not a pass/fail test).

    /usr/bin/python3 tests/bench/mc_profile.py [IMAGE ...] [--rounds N] [--seconds S] [--perf] [--cmdline "k=v ..."]

Boots each image (default build/memcached.elf) at 1 vCPU in a namespace made for the run, pins all
of QEMU to core 0 and memcaslap (-c 32 -T 1) to core 1, and reports per image: ops/s, guest busy
and idle TSC cycles over the load (from `stats shards`: busy includes the reactor's idle polling
window), busy cycles per operation, and the host CPU time of the QEMU process per operation. Several
images are measured in alternation, round after round, so an A/B comparison sees the same host noise.
--perf records QEMU with `perf record -g` during the last round of the first image and prints
the split between JIT-compiled guest code, QEMU itself and the host kernel.

Nothing is retried: a boot or a memcaslap run that fails is printed at once, marks its image's row
FAILED (medians of the rounds that worked, if any), is listed with its reason under the table, and
makes the command exit 1 at the end.
"""
import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from netns import Guest, NetNS  # noqa: E402
from guests import BenchError, Failures, median_or_none, num  # noqa: E402  (tests/bench/guests.py)

IP, PORT = "10.0.2.15", 11211


def stats(ns):
    code = (f"import socket,time\ns=socket.create_connection(('{IP}',{PORT}),5)\n"
            "s.sendall(b'stats shards\\r\\nstats\\r\\n');time.sleep(0.5);print(s.recv(200000).decode())")
    out = ns.run(sys.executable, "-c", code, check=False, timeout=30).stdout
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^STAT (\S+) (\d+)\r?$", out, re.M)}


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read()
    except OSError:
        return ""


def qemu_cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def one(img, args, perf):
    with NetNS(addr="10.0.2.1/24") as ns:
        g = Guest(ns, img, smp=1, cmdline=f"ip={IP}/24 gw=10.0.2.1 {args.cmdline} -- -m 64", timeout=300)
        rec = None
        try:
            if not g.wait_for("memcached: ready", 90):
                raise BenchError(f"{img} did not come up:\n{g.tail()}")
            time.sleep(0.5)
            pids = [int(p) for p in ns.pids() if comm(p).startswith("qemu")]   # this namespace's QEMU only
            if not pids:
                raise BenchError(f"no QEMU process in {ns.name}; console:\n{g.tail()}")
            pid = pids[0]
            for tid in os.listdir(f"/proc/{pid}/task"):
                os.sched_setaffinity(int(tid), {0})
            before, t0 = stats(ns), qemu_cpu_ticks(pid)
            if perf:
                rec = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-p", str(pid), "-o", "/tmp/mc_profile.perf",
                                        "--", "sleep", str(args.seconds)], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
            r = ns.run("taskset", "-c", "1", "memcaslap", "-s", f"{IP}:{PORT}", "-c", "32", "-T", "1",
                       "-t", f"{args.seconds}s", check=False, timeout=args.seconds + 60)
            if rec:
                rec.wait(args.seconds + 60)
            ticks, after = qemu_cpu_ticks(pid) - t0, stats(ns)
            m = re.search(r"TPS: (\d+)", r.stdout)
            if r.returncode != 0 or not m:
                raise BenchError(f"memcaslap failed ({r.returncode}): {r.stdout[-600:]}{r.stderr[-600:]}\n"
                                 f"console:\n{g.tail()}")
        finally:
            if rec and rec.poll() is None:
                rec.kill()
                rec.wait()
            g.kill()
    d = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    ops = d.get("cmd_get", 0) + d.get("cmd_set", 0)
    busy = sum(v for k, v in d.items() if k.endswith(":busy_cycles"))
    idle = sum(v for k, v in d.items() if k.endswith(":idle_cycles"))
    hz = os.sysconf("SC_CLK_TCK")
    return {"tps": int(m.group(1)), "busy_share": busy / max(busy + idle, 1),
            "busy_cycles_per_op": busy / max(ops, 1), "qemu_us_per_op": ticks / hz * 1e6 / max(ops, 1)}


def perf_split():
    r = subprocess.run(["perf", "report", "-i", "/tmp/mc_profile.perf", "--no-children", "--sort", "dso",
                        "--stdio", "-g", "none"], capture_output=True, text=True)
    return [line.strip() for line in r.stdout.splitlines() if "%" in line and not line.startswith("#")][:6]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("images", nargs="*", default=[os.path.join(ROOT, "build", "memcached.elf")])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--perf", action="store_true")
    ap.add_argument("--cmdline", default="", help="extra kernel options, e.g. idle_poll_us=0")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("mc_profile: needs root (network namespaces and tap devices)")
    res = {img: [] for img in args.images}
    failures = Failures("mc_profile")
    for rnd in range(args.rounds):
        for i, img in enumerate(args.images):
            res[img].append(failures.attempt(img, f"{img}, round {rnd + 1}", one, img, args,
                                             args.perf and i == 0 and rnd == args.rounds - 1))
    med = median_or_none
    print(f"{'image':>40} {'ops/s':>8} {'busy':>6} {'busy cyc/op':>12} {'QEMU us/op':>11}   per round ops/s")
    for img, rs in res.items():
        ok = [r for r in rs if r]
        print(f"{img[-40:]:>40} {num(med(r['tps'] for r in ok), '.0f'):>8} {num(med(r['busy_share'] for r in ok), '.0%'):>6} "
              f"{num(med(r['busy_cycles_per_op'] for r in ok), '.0f'):>12} "
              f"{num(med(r['qemu_us_per_op'] for r in ok), '.1f'):>11}   "
              f"{', '.join(str(r['tps']) if r else 'FAILED' for r in rs)}  {failures.mark(img, len(rs))}")
    failures.print_report()
    if args.perf:
        print("perf, QEMU process by DSO:\n  " + "\n  ".join(perf_split()))
    return failures.exit_status()


if __name__ == "__main__":
    sys.exit(main())
