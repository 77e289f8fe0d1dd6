#!/usr/bin/env python3
"""Two memcached images side by side: memcaslap against each in turn, the same flags, ratio of medians.

    ab.py IMAGE_A IMAGE_B [--smp N] [--rounds R] [--seconds S] [--machine microvm|pc|q35]

For a change's cost: build the commit before it somewhere else (git worktree add DIR COMMIT;
make -C DIR APP=memcached) and pass both images. Rounds alternate A, B, A, B, ... so load on the
shared machine falls on both alike. Needs root (a namespace with a tap). Not pass/fail; a boot or
a load run that fails is reported as FAILED and the command exits 1, nothing is retried.
"""
import argparse
import os
import re
import statistics
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
from boot_storm import GUEST_IP, GUEST_MAC  # noqa: E402
from netns import Guest, NetNS  # noqa: E402

def one_round(img, a):
    with NetNS(queues=a.smp, addr="10.0.2.1/24", mac=GUEST_MAC) as ns:
        g = Guest(ns, img, smp=a.smp, machine=a.machine, cmdline=f"ip={GUEST_IP}/24 --", timeout=a.seconds + 120)
        try:
            if not g.wait_for("memcached: ready", 60):
                return None, f"did not come up: {g.tail(5)}"
            r = ns.run("memcaslap", "-s", f"{GUEST_IP}:11211", "-c", "32", "-T", "1", "-t", f"{a.seconds}s",
                       check=False, timeout=a.seconds + 60)
            tps = re.findall(r"TPS: (\d+)", r.stdout)
            if r.returncode != 0 or not tps:
                return None, f"memcaslap: rc {r.returncode} {r.stdout[-200:]} {r.stderr[-200:]}"
            return int(tps[-1]), None
        finally:
            g.kill()

def main():
    # SIGTERM unwinds like an exception, so every namespace and guest a case made is taken down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--smp", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--machine", default="microvm", choices=["microvm", "pc", "q35"])
    a = ap.parse_args()
    got = {"A": [], "B": []}
    failures = []
    for r in range(a.rounds):
        for name, img in (("A", a.a), ("B", a.b)):
            tps, err = one_round(img, a)
            print(f"round {r + 1} {name}: {tps if err is None else 'FAILED ' + err}", flush=True)
            if err:
                failures.append(f"round {r + 1} {name}: {err}")
            else:
                got[name].append(tps)
    med = {k: statistics.median(v) if v else None for k, v in got.items()}
    print(f"\n| image | ops/s (median of {a.rounds}) | rounds |\n|---|---:|---|")
    for k, img in (("A", a.a), ("B", a.b)):
        print(f"| {k} {img} | {med[k] if med[k] else 'FAILED'} | {got[k]} |")
    if med["A"] and med["B"]:
        print(f"\nB/A = {med['B'] / med['A']:.3f} ({a.smp} vCPU, {a.machine}, memcaslap -c 32 -T 1 -t {a.seconds}s)")
    for f in failures:
        print("FAILED:", f)
    return 1 if failures else 0

if __name__ == "__main__":
    sys.exit(main())
