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

Nothing is retried: a boot or a tcp_load run that fails is printed at once, marks its vCPU count's rows
FAILED (medians of the rounds that worked, if any), is listed with its reason under the table, and
makes the command exit 1 at the end.
"""
import argparse
import json
import os
import sys
import time

from guests import (BENCH, BUILD, GUEST, ROOT, BenchError, Failures, Guest, host_tsc_khz,  # noqa: E402
                    median_or_none, num, prepare, ratio_cell)

sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from netns import NetNS  # noqa: E402  (a namespace with a tap, removed afterwards)

GUEST_IP, HOST_IP, PREFIX = "10.0.2.15", "10.0.2.1", 24
PORT = 7
VCPUS = (1, 2)
READY = {"shoal": r"^echo: ready, TCP and UDP port 7", "linux": r"^tcp_echo: ready"}


def load(ns, guest, *args, timeout):
    r = ns.run(os.path.join(BENCH, "tcp_load"), *args, check=False, timeout=timeout)
    lines = r.stdout.strip().splitlines()
    res = json.loads(lines[-1]) if lines else {}
    if r.returncode != 0 or not res:
        raise BenchError(f"{guest.kind}: tcp_load {' '.join(args)} failed ({r.returncode}): "
                         f"{res or r.stderr[-500:]}; console:\n{guest.tail()}")
    return res


def case(kind, smp, machine, tsc_khz, args):
    """One boot: rr over 1 connection, rr over args.conns, bulk. Returns the three results."""
    out = {}
    with NetNS(queues=smp, addr=f"{HOST_IP}/{PREFIX}") as ns:
        timeout = 180
        g = Guest(kind, smp, machine, tsc_khz, image=os.path.join(BUILD, "echo.elf"),
                  shoal_cmdline=[f"ip={GUEST_IP}/{PREFIX}"],
                  # the Linux guest stops on its own before run.py's timeout
                  linux_cmdline=["bench=tcp_echo", f"shoal_ip={GUEST_IP}/{PREFIX}", f"tcp_echo_seconds={timeout - 30}"],
                  ns=ns, timeout=timeout)
        try:
            if not g.wait_for(READY[kind], 90):
                raise BenchError(f"{kind} did not come up; console:\n{g.tail()}")
            rr = ("rr", GUEST_IP, str(PORT), "size=64", "warmup=0.5", f"seconds={args.seconds}")
            out["rr1"] = load(ns, g, *rr, "conns=1", timeout=args.seconds + 30)
            out["rrN"] = load(ns, g, *rr, f"conns={args.conns}", timeout=args.seconds + 30)
            out["bulk"] = load(ns, g, "bulk", GUEST_IP, str(PORT), f"bytes={args.bulk_mib << 20}", "timeout=60",
                               timeout=90)
            if kind == "linux":
                load(ns, g, "exit", GUEST_IP, str(PORT), timeout=10)
                g.check_exit(g.wait(30), "tcp.py")
                hit = g.find(r"^tcp_echo: exit requested; (.*)")
                out["note"] = hit[1][1] if hit else ""
        finally:
            g.kill()
    return out


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
    prepare("tcp.py", ("echo",), ("tcp_load",), ("tcp_echo.c",))
    khz = host_tsc_khz()
    kver = sorted(os.listdir(os.path.join(GUEST, "pkg", "kernel", "lib", "modules")))[0]
    print(f"TCP benchmark: -M {args.machine}, TCG, -m 256, Shoal echo vs Linux {kver} tcp_echo; "
          f"host TSC {khz} kHz, {os.cpu_count()} host CPUs, {time.strftime('%Y-%m-%d')}; medians of {args.runs} "
          f"rounds, ratio of medians (range of per-round ratios)")
    print(f"64-byte transactions/s ({args.seconds:g} s after 0.5 s warm-up, one in flight per connection); "
          f"bulk: {args.bulk_mib} MiB each way through echo on one connection, MB/s each way\n")
    print(f"{'vCPUs':>5} {'test':>18} {'Shoal':>10} {'Linux':>10} {'Shoal/Linux':>18}   p50/p99 us, Shoal | Linux")
    med = median_or_none
    notes = []
    failures = Failures("tcp.py")
    for smp in VCPUS:
        rounds = {"shoal": [], "linux": []}       # None for a round whose boot or load failed
        for rnd in range(args.runs):
            for kind in ("shoal", "linux"):
                rounds[kind].append(failures.attempt(smp, f"{kind}, {smp} vCPU(s), round {rnd + 1}", case,
                                                     kind, smp, args.machine, khz, args))
        mark = failures.mark(smp, 2 * args.runs)
        for key, label, metric in (("rr1", "1 conn, trans/s", "tps"), ("rrN", f"{args.conns} conns, trans/s", "tps"),
                                   ("bulk", "bulk MB/s", "MBps")):
            s = [r and r[key][metric] for r in rounds["shoal"]]
            l = [r and r[key][metric] for r in rounds["linux"]]
            lat = ""
            if metric == "tps":
                lat = " | ".join(f"{num(med(r[key]['p50_us'] for r in rounds[k] if r), '.0f')}/"
                                 f"{num(med(r[key]['p99_us'] for r in rounds[k] if r), '.0f')}" for k in ("shoal", "linux"))
            fmt = ".0f" if metric == "tps" else ".1f"
            print(f"{smp:>5} {label:>18} {num(med(s), fmt):>10} {num(med(l), fmt):>10} {ratio_cell(s, l, digits=2):>18}"
                  f"   {lat}  {mark}", flush=True)
        last = next((r for r in reversed(rounds["linux"]) if r), None)
        notes.append(f"  {smp} vCPU: {last.get('note', '') if last else '(no Linux round worked)'}")
    failures.print_report()
    print("\nLinux tcp_echo per thread, last round (bulk connection included):")
    print("\n".join(notes))
    print(f"\n(whole run {time.monotonic() - t0:.0f} s)")
    return failures.exit_status()


if __name__ == "__main__":
    sys.exit(main())
