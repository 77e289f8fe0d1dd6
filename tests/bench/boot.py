#!/usr/bin/env python3
"""Boot-time benchmark (not a pass/fail test).

    tests/bench/boot.py [--runs N] [--machine microvm]

For 1 and 4 vCPUs: guest time (TSC since VM start, which QEMU resets to 0)
at which boot_main was entered and at which all shards were ready, and the
wall time of the whole QEMU run of hello (boot, self-test, exit). Medians
over --runs. Also the image's file size and loaded bytes.
"""
import argparse
import os
import re
import statistics
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
IMAGE = os.path.join(ROOT, "build", "hello.elf")
READY = re.compile(r"all (\d+) shards ready at (\d+) us \(boot_main entered at (\d+) us\)")

def loaded_bytes(path):
    with open(path, "rb") as f:
        data = f.read()
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    total = 0
    for i in range(phnum):
        p_type, _, _, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1:
            total += p_filesz
    return total

def one_run(smp, machine):
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "run.py"), IMAGE, "--smp", str(smp),
                        "--machine", machine, "--timeout", "120"], capture_output=True, text=True)
    wall = time.monotonic() - t0
    m = READY.search(r.stdout)
    if r.returncode != 0 or not m:
        sys.exit(f"boot.py: hello failed (status {r.returncode}):\n{r.stdout[-2000:]}")
    return int(m.group(3)), int(m.group(2)), wall * 1000

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--machine", default="microvm")
    args = ap.parse_args()
    if not os.path.exists(IMAGE):
        subprocess.run(["make", "-s", "-C", ROOT, "APP=hello"], check=True)
    print(f"image {IMAGE}: {os.path.getsize(IMAGE)} bytes on disk, {loaded_bytes(IMAGE)} bytes loaded")
    print(f"{'vCPUs':>5} {'entry ms':>9} {'ready ms':>9} {'kernel ms':>10} {'QEMU run ms':>12}   (medians of {args.runs}, -M {args.machine}, TCG)")
    for smp in (1, 4):
        runs = [one_run(smp, args.machine) for _ in range(args.runs)]
        entry = statistics.median(r[0] for r in runs) / 1000
        ready = statistics.median(r[1] for r in runs) / 1000
        kernel = statistics.median((r[1] - r[0]) for r in runs) / 1000
        wall = statistics.median(r[2] for r in runs)
        print(f"{smp:>5} {entry:>9.1f} {ready:>9.1f} {kernel:>10.1f} {wall:>12.0f}")

if __name__ == "__main__":
    main()
