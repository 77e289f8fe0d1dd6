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
from boot_storm import CONFIGS, storm_boot  # noqa: E402

def main():
    # SIGTERM unwinds like an exception, so every namespace and guest a case made is taken down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser()
    ap.add_argument("--boots", type=int, default=500)
    ap.add_argument("--app", choices=["memcached", "echo"], help="only this app (default: both in turn)")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated, from boot_storm.CONFIGS")
    ap.add_argument("--smp", default="2,4", help="comma-separated vCPU counts")
    a = ap.parse_args()
    one_round = [(c, int(n)) for n in a.smp.split(",") for c in a.configs.split(",")]
    failures = []
    for i in range(a.boots):
        config, smp = one_round[i % len(one_round)]
        app = a.app or ("memcached" if (i // len(one_round)) % 2 == 0 else "echo")
        err = storm_boot(config, smp, app)
        print(f"boot {i + 1}/{a.boots} {config} smp{smp} {app}: {'ok' if not err else 'FAILED'}", flush=True)
        if err:
            failures.append(f"boot {i + 1} ({config}, {smp} vCPUs, {app}): {err}")
    for f in failures:
        print(f)
    print(f"{a.boots - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0

if __name__ == "__main__":
    sys.exit(main())
