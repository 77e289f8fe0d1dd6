#!/usr/bin/env python3
"""virtio benchmark: Shoal against a Linux guest under the same QEMU flags (not a pass/fail test).

    /usr/bin/python3 tests/bench/virtio.py [--machine microvm|pc] [--runs N] [--seconds S]
                                           [--blk-seconds S] [--skip-net] [--skip-blk]

Needs root (network namespaces, tap devices). Both guests are booted through
scripts/run.py with the same machine, -smp, -m, tap/multiqueue and disk
flags; Shoal's images are build/l2echo.elf and build/blkbench.elf, the Linux
guest (kernel + initramfs from Debian packages) comes from
scripts/linux-guest.sh. Everything runs in one invocation, so the ratios
compare like with like on whatever the machine is doing at the time.

Network: for 1 and 2 vCPUs (a multiqueue tap with one queue per vCPU),
build/bench/l2load (tests/bench/l2load.c) sends IPv4/UDP frames over 256
flows from a raw socket inside a namespace made for the run, with 256 in
flight, and counts what comes back: Shoal's l2echo against Linux's
l2reflect (tests/bench/guest/l2reflect.c, AF_PACKET). Frames of 64 bytes
on the wire (60 without FCS) and 1518 (a 1500-byte IP packet).
Frames/s are counted by the load generator on the host clock.

Block: the same reads on the same 256 MiB raw file, read-only: 4 KiB random
reads with 32 in flight per vCPU, then 1 MiB sequential reads with 4 in
flight per vCPU (apps/blkbench against tests/bench/guest/blkread.c, Linux
AIO with O_DIRECT). Each phase is timed on the host by the arrival of the
guest's "start" and "done" console lines, so neither guest's clock matters.

Each round boots every guest once per case, Shoal and Linux alternating;
the table shows medians over --runs rounds (default 3), the ratio of the
medians (Shoal / Linux) and the range of the per-round ratios. Takes about
4 minutes with the defaults (5 on a busy host).

Nothing is retried: a boot or a load run that fails is printed at once, marks its rows of the table
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

SIZES = ((60, "64"), (1514, "1518"))   # bytes on the wire (FCS included): 60 + 4, 1514 + 4
VCPUS = (1, 2)
WINDOW = 256
FLOWS = 256
DISK_MB = 256


def make_disk(args):
    disk = os.path.join(BENCH, "disk.img")
    if not args.skip_blk and (not os.path.exists(disk) or os.path.getsize(disk) != DISK_MB << 20):
        with open(disk, "wb") as f:
            for _ in range(DISK_MB):
                f.write(os.urandom(1 << 20))
    return disk


def net_case(kind, smp, machine, tsc_khz, seconds):
    """Frames/s for each size, from one boot."""
    out = {}
    with NetNS(queues=smp) as ns:
        g = Guest(kind, smp, machine, tsc_khz, image=os.path.join(BUILD, "l2echo.elf"),
                  linux_cmdline=["bench=l2reflect"], ns=ns)
        try:
            if not g.wait_for(r"^(l2echo|l2reflect): ready", 90):
                raise BenchError(f"{kind} did not come up; console:\n{g.tail()}")
            for i, (size, label) in enumerate(SIZES):
                last = i == len(SIZES) - 1
                r = ns.run(os.path.join(BENCH, "l2load"), ns.tap, f"size={size}", f"window={WINDOW}",
                           f"flows={FLOWS}", "warmup=0.5", f"seconds={seconds}", *(["exit"] if last else []),
                           check=False, timeout=seconds + 30)
                lines = r.stdout.strip().splitlines()
                if r.returncode != 0 or not lines:
                    raise BenchError(f"{kind}: l2load size={size} failed ({r.returncode}): {r.stderr[-500:]}; "
                                     f"console:\n{g.tail()}")
                res = json.loads(lines[-1])
                if res["bad"]:
                    raise BenchError(f"{kind} returned {res['bad']} mangled frames: {res}")
                out[label] = res
            g.check_exit(g.wait(30), "virtio.py")
        finally:
            g.kill()
    return out


def blk_case(kind, smp, machine, tsc_khz, disk, seconds):
    """Host-timed 4 KiB IOPS and 1 MiB MB/s, and the guest's own figures."""
    name = "blkbench" if kind == "shoal" else "blkread"
    g = Guest(kind, smp, machine, tsc_khz, image=os.path.join(BUILD, "blkbench.elf"),
              shoal_cmdline=["--", f"seconds={seconds}"],
              linux_cmdline=["bench=blkread", f"blkread_args=seconds={seconds}"], disk=disk)
    try:
        rc = g.wait(seconds * 2 + 90)
    finally:
        g.kill()
    g.check_exit(rc, "virtio.py")
    res = {}
    for phase, unit, key in (("rand4k", "reads", "iops"), ("seq1m", "bytes", "mbps")):
        start = g.find(rf"^{name}: {phase} start")
        done = g.find(rf"^{name}: {phase} done {unit}=(\d+) seconds=([\d.]+) {key}=([\d.]+)")
        if not start or not done:
            raise BenchError(f"{kind} printed no {phase} result; console:\n{g.tail()}")
        n, host_s = int(done[1][1]), done[0] - start[0]
        rate = n / host_s if phase == "rand4k" else n / host_s / 1e6
        res[phase] = {"host": rate, "guest": float(done[1][3]), "host_s": host_s}
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--machine", default="microvm", choices=["microvm", "pc"])
    ap.add_argument("--runs", type=int, default=3, help="rounds; each boots every guest once per case (medians shown)")
    ap.add_argument("--seconds", type=float, default=2, help="measured load per network case (after 0.5 s warm-up)")
    ap.add_argument("--blk-seconds", type=int, default=2, help="length of each block phase")
    ap.add_argument("--skip-net", action="store_true")
    ap.add_argument("--skip-blk", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("virtio.py: needs root (network namespaces and tap devices)")
    t0 = time.monotonic()
    prepare("virtio.py", ("l2echo", "blkbench"), ("l2load",), ("l2reflect.c", "blkread.c"))
    disk = make_disk(args)
    khz = host_tsc_khz()
    kver = sorted(os.listdir(os.path.join(GUEST, "pkg", "kernel", "lib", "modules")))[0]
    print(f"virtio benchmark: -M {args.machine}, TCG, -m 256, Shoal vs Linux {kver}; "
          f"host TSC {khz} kHz, {os.cpu_count()} host CPUs; medians of {args.runs} rounds, "
          f"ratio of medians (range of per-round ratios)")
    med = median_or_none
    failures = Failures("virtio.py")
    if not args.skip_net:
        print(f"\nnetwork: frames/s reflected, {WINDOW} in flight, {FLOWS} flows, {args.seconds:g} s per case")
        print(f"{'vCPUs':>5} {'wire B':>8} {'Shoal fps':>10} {'Linux fps':>10} {'Shoal/Linux':>18}   "
              f"frames lost, Shoal / Linux (of them while measuring)")
        for smp in VCPUS:
            rounds = {"shoal": [], "linux": []}   # None for a round whose boot or load failed
            for rnd in range(args.runs):
                for kind in ("shoal", "linux"):
                    rounds[kind].append(failures.attempt(("net", smp), f"network, {kind}, {smp} vCPU(s), round {rnd + 1}",
                                                         net_case, kind, smp, args.machine, khz, args.seconds))
            mark = failures.mark(("net", smp), 2 * args.runs)
            for _, label in SIZES:
                s = [r and r[label] for r in rounds["shoal"]]
                l = [r and r[label] for r in rounds["linux"]]
                sf, lf = [r and r["fps"] for r in s], [r and r["fps"] for r in l]
                lost = lambda rs: (f"{sum(r['lost'] for r in rs if r)} "
                                   f"({sum(r['lost_measured'] for r in rs if r)})")
                print(f"{smp:>5} {label:>8} {num(med(sf), '.0f'):>10} {num(med(lf), '.0f'):>10} {ratio_cell(sf, lf):>18}"
                      f"   {lost(s)} / {lost(l)}  {mark}", flush=True)
    if not args.skip_blk:
        print(f"\nblock: read-only {DISK_MB} MiB raw file, {args.blk_seconds} s per phase, host-timed "
              f"(guest's own figure in brackets)")
        print(f"{'vCPUs':>5} {'test':>22} {'Shoal':>17} {'Linux':>17} {'Shoal/Linux':>18}")
        for smp in VCPUS:
            rounds = {"shoal": [], "linux": []}   # None for a round whose boot failed
            for rnd in range(args.runs):
                for kind in ("shoal", "linux"):
                    rounds[kind].append(failures.attempt(("blk", smp), f"block, {kind}, {smp} vCPU(s), round {rnd + 1}",
                                                         blk_case, kind, smp, args.machine, khz, disk, args.blk_seconds))
            mark = failures.mark(("blk", smp), 2 * args.runs)
            for phase, label in (("rand4k", "4 KiB random IOPS"), ("seq1m", "1 MiB sequential MB/s")):
                s = [r and r[phase] for r in rounds["shoal"]]
                l = [r and r[phase] for r in rounds["linux"]]
                sh_, lh = [r and r["host"] for r in s], [r and r["host"] for r in l]
                gs, gl = med(r["guest"] for r in s if r), med(r["guest"] for r in l if r)
                print(f"{smp:>5} {label:>22} {num(med(sh_), '.0f'):>8} ({num(gs, '.0f'):>6}) "
                      f"{num(med(lh), '.0f'):>8} ({num(gl, '.0f'):>6}) {ratio_cell(sh_, lh):>18}  {mark}", flush=True)
    failures.print_report()
    print(f"\n(whole run {time.monotonic() - t0:.0f} s)")
    return failures.exit_status()


if __name__ == "__main__":
    sys.exit(main())
