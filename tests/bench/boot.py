#!/usr/bin/env python3
"""Boot-time benchmark (not a pass/fail test).

    tests/bench/boot.py [--runs N] [--machine microvm] [--image ELF] [--tsc-khz auto|off]

For 1 and 4 vCPUs: guest time (TSC since VM start, which QEMU resets to 0)
at which boot_main was entered and at which all shards were ready, and the
wall time of the whole QEMU run of hello (boot, self-test, exit). Medians
over --runs, then the median of each boot phase the image reports
("shoal: boot phases (us): ..."). Also the image's file size and loaded
bytes. The image is $SHOAL_BUILD/hello.elf (default build/) unless --image
names one. --tsc-khz is run.py's: auto hands the guest the host's TSC rate
under TCG (no calibration), off makes it calibrate as a plain
`qemu-system-x86_64 -kernel` boot does.

Nothing is retried: a boot that fails is printed at once, marks its row
FAILED (medians of the boots that worked, if any), is listed with its
reason under the table, and makes the command exit 1 at the end.
"""
import argparse
import os
import re
import statistics
import struct
import subprocess
import sys
import time

from guests import BenchError, Failures  # noqa: E402  (tests/bench/guests.py)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SHOAL_BUILD", os.path.join(ROOT, "build"))
READY = re.compile(r"all (\d+) shards ready at (\d+) us \(boot_main entered at (\d+) us\)")
PHASES = re.compile(r"boot phases \(us\):((?: \w+=\d+)+)")

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

def one_run(image, smp, args):
    t0 = time.monotonic()
    cmd = [sys.executable, os.path.join(ROOT, "scripts", "run.py"), image, "--smp", str(smp),
           "--machine", args.machine, "--timeout", "120"]
    if args.tsc_khz:
        cmd += ["--tsc-khz", args.tsc_khz]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)   # run.py stops at 120 s
    wall = time.monotonic() - t0
    m = READY.search(r.stdout)
    if r.returncode != 0 or not m:
        raise BenchError(f"{os.path.basename(image)} failed (status {r.returncode}) {r.stderr.strip()[-300:]}; "
                         f"console:\n{r.stdout[-800:]}")
    p = PHASES.search(r.stdout)
    phases = [(k, int(v)) for k, v in (w.split("=") for w in p.group(1).split())] if p else []
    return int(m.group(3)), int(m.group(2)), wall * 1000, phases

def median_phases(runs):
    names = [k for k, _ in runs[0][3]]
    return " ".join(f"{k}={statistics.median(dict(r[3]).get(k, 0) for r in runs):.0f}" for k in names)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--machine", default="microvm")
    ap.add_argument("--image", help="ELF to boot (default $SHOAL_BUILD/hello.elf, built if missing)")
    ap.add_argument("--tsc-khz", choices=["auto", "off"], help="run.py's --tsc-khz (default: run.py's, auto)")
    args = ap.parse_args()
    image = args.image or os.path.join(BUILD, "hello.elf")
    if not args.image and not os.path.exists(image):
        subprocess.run(["make", "-s", "-C", ROOT, "APP=hello", f"BUILD={BUILD}"], check=True)
    print(f"image {image}: {os.path.getsize(image)} bytes on disk, {loaded_bytes(image)} bytes loaded")
    print(f"{'vCPUs':>5} {'entry ms':>9} {'ready ms':>9} {'kernel ms':>10} {'QEMU run ms':>12}   (medians of {args.runs}, "
          f"-M {args.machine}, TCG, tsc_khz {args.tsc_khz or 'auto'})")
    phase_lines = []
    failures = Failures("boot.py")
    for smp in (1, 4):
        runs = [failures.attempt(smp, f"{smp} vCPU(s), boot {i + 1}", one_run, image, smp, args)
                for i in range(args.runs)]
        runs = [r for r in runs if r]
        mark = failures.mark(smp, args.runs)
        if not runs:
            print(f"{smp:>5} {'-':>9} {'-':>9} {'-':>10} {'-':>12}  {mark}", flush=True)
            continue
        entry = statistics.median(r[0] for r in runs) / 1000
        ready = statistics.median(r[1] for r in runs) / 1000
        kernel = statistics.median((r[1] - r[0]) for r in runs) / 1000
        wall = statistics.median(r[2] for r in runs)
        print(f"{smp:>5} {entry:>9.1f} {ready:>9.1f} {kernel:>10.1f} {wall:>12.0f}  {mark}", flush=True)
        if runs[0][3]:
            phase_lines.append(f"{smp} vCPU phases (us, medians): {median_phases(runs)}")
    print("\n".join(phase_lines))
    failures.print_report()
    return failures.exit_status()

if __name__ == "__main__":
    sys.exit(main())
