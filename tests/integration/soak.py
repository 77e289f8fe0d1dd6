#!/usr/bin/env python3
"""make soak: the boot storm over many boots (500 by default), memcached and echo in turn.

    soak.py [--boots N] [--app memcached|echo] [--configs microvm,pc-seabios,...] [--smp 2,4]

Prints one line per boot, then "N passed, N failed" (boots); exits 1 on any miss.
SHOAL_BUILD=DIR boots the images of another build, e.g. an older commit's.
"""
import argparse
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from boot_storm import CONFIGS, default_plan, storm  # noqa: E402

def main():
    # SIGTERM unwinds like an exception, so every namespace and guest a case made is taken down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser()
    ap.add_argument("--boots", type=int, default=500)
    ap.add_argument("--app", choices=["memcached", "echo"], help="only this app (default: both in turn)")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated, from boot_storm.CONFIGS")
    ap.add_argument("--smp", default="2,4", help="comma-separated vCPU counts")
    a = ap.parse_args()
    configs = a.configs.split(",")
    smps = [int(n) for n in a.smp.split(",")]
    rounds = -(-a.boots // (len(configs) * len(smps)))
    plan = default_plan(rounds, (a.app,) if a.app else ("memcached", "echo"), configs, smps)[:a.boots]
    boots, failures = storm(plan, log=lambda line: print(line, flush=True))
    for f in failures:
        print(f)
    print(f"{boots - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0

if __name__ == "__main__":
    sys.exit(main())
