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

SIZES = ((60, "64"), (1514, "1518"))   # bytes on the wire (FCS included): 60 + 4, 1514 + 4
VCPUS = (1, 2)
WINDOW = 256
FLOWS = 256
DISK_MB = 256
EXIT_NO_STATUS = 125


def sh(*cmd, **kw):
    return subprocess.run(list(cmd), check=True, **kw)


def newer(target, *sources):
    return os.path.exists(target) and all(os.path.getmtime(target) >= os.path.getmtime(s) for s in sources)


def prepare(args):
    os.makedirs(BENCH, exist_ok=True)
    for app in ("l2echo", "blkbench"):      # cheap when up to date, so the image matches the tree
        r = subprocess.run(["make", "-s", "-C", ROOT, f"APP={app}"], capture_output=True, text=True)
        if r.returncode != 0:
            elf = os.path.join(BUILD, f"{app}.elf")
            if not os.path.exists(elf):
                sys.exit(f"virtio.py: building {app} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
            print(f"virtio.py: WARNING: building {app} failed; measuring the existing {elf}, built "
                  f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(os.path.getmtime(elf)))}", flush=True)
    for prog in ("l2load", "tsc_khz"):
        src, out = os.path.join(HERE, f"{prog}.c"), os.path.join(BENCH, prog)
        if not newer(out, src):
            sh("gcc", "-O2", "-Wall", "-o", out, src)
    guest_srcs = [os.path.join(ROOT, "scripts", "linux-guest.sh")] + \
                 [os.path.join(HERE, "guest", f) for f in ("l2reflect.c", "blkread.c")]
    if not newer(os.path.join(GUEST, "initrd.gz"), *guest_srcs):
        sh(os.path.join(ROOT, "scripts", "linux-guest.sh"), stdout=subprocess.DEVNULL)
    disk = os.path.join(BENCH, "disk.img")
    if not args.skip_blk and (not os.path.exists(disk) or os.path.getsize(disk) != DISK_MB << 20):
        with open(disk, "wb") as f:
            for _ in range(DISK_MB):
                f.write(os.urandom(1 << 20))
    return disk


def host_tsc_khz():
    return int(subprocess.run([os.path.join(BENCH, "tsc_khz")], capture_output=True, text=True,
                              check=True).stdout.strip())


class Guest:
    """A guest booted through run.py in the background; console lines are kept with their host arrival time."""

    def __init__(self, kind, smp, machine, tsc_khz, ns=None, disk=None, bench=None, app_args=(), timeout=120):
        if kind == "shoal":
            cmd = [RUN, os.path.join(BUILD, f"{bench}.elf")]
            cmdline = ["--", *app_args] if app_args else []
        else:
            cmd = [RUN, os.path.join(GUEST, "vmlinuz"), "--initrd", os.path.join(GUEST, "initrd.gz")]
            # microvm has no PIT, HPET or ACPI PM timer under TCG: Linux cannot calibrate the TSC there
            # (it hangs at boot), so it is told the host's TSC rate, which TCG guests see.
            cmdline = ["console=ttyS0", "quiet", "panic=-1", f"tsc_early_khz={tsc_khz}", "tsc=reliable",
                       f"bench={bench}"] + ([f"blkread_args={','.join(app_args)}"] if app_args else [])
        cmd = [sys.executable, *cmd, "--smp", str(smp), "--machine", machine, "--timeout", str(timeout)]
        if ns:
            cmd += ["--net", ns.net_arg()]
        if disk:
            cmd += ["--disk", f"{disk},readonly"]
        cmd += ["--", *cmdline] if cmdline else []
        if ns:
            cmd = ["ip", "netns", "exec", ns.name, *cmd]
        self.kind = kind
        self.lines = []          # (host monotonic time, line)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in iter(self.proc.stdout.readline, b""):
            self.lines.append((time.monotonic(), raw.decode(errors="replace").rstrip("\r\n")))

    def find(self, pattern):
        rx = re.compile(pattern)
        for t, line in list(self.lines):
            m = rx.search(line)
            if m:
                return t, m
        return None

    def wait_for(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            hit = self.find(pattern)
            if hit:
                return hit
            if self.proc.poll() is not None:
                self.reader.join(5)
                return self.find(pattern)
            time.sleep(0.05)
        return None

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
            # run.py starts QEMU in a session of its own: stop that child first, by its pid.
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

    def tail(self, n=15):
        return "\n".join(line for _, line in self.lines[-n:])

    def check_exit(self, rc):
        want = 0 if self.kind == "shoal" else EXIT_NO_STATUS   # Linux powers off without a status
        if rc != want:
            sys.exit(f"virtio.py: {self.kind} guest exited with {rc}, expected {want}; console:\n{self.tail()}")


def net_case(kind, smp, machine, tsc_khz, seconds):
    """Frames/s for each size, from one boot."""
    out = {}
    with NetNS(queues=smp) as ns:
        g = Guest(kind, smp, machine, tsc_khz, ns=ns, bench="l2echo" if kind == "shoal" else "l2reflect")
        try:
            if not g.wait_for(r"^(l2echo|l2reflect): ready", 90):
                sys.exit(f"virtio.py: {kind} did not come up; console:\n{g.tail()}")
            for i, (size, label) in enumerate(SIZES):
                last = i == len(SIZES) - 1
                r = ns.run(os.path.join(BENCH, "l2load"), ns.tap, f"size={size}", f"window={WINDOW}",
                           f"flows={FLOWS}", "warmup=0.5", f"seconds={seconds}", *(["exit"] if last else []),
                           timeout=seconds + 30)
                res = json.loads(r.stdout.strip().splitlines()[-1])
                if res["bad"]:
                    sys.exit(f"virtio.py: {kind} returned {res['bad']} mangled frames: {res}")
                out[label] = res
            g.check_exit(g.wait(30))
        finally:
            g.kill()
    return out


def blk_case(kind, smp, machine, tsc_khz, disk, seconds):
    """Host-timed 4 KiB IOPS and 1 MiB MB/s, and the guest's own figures."""
    name = "blkbench" if kind == "shoal" else "blkread"
    g = Guest(kind, smp, machine, tsc_khz, disk=disk, bench=name, app_args=[f"seconds={seconds}"])
    try:
        rc = g.wait(seconds * 2 + 90)
    finally:
        g.kill()
    g.check_exit(rc)
    res = {}
    for phase, unit, key in (("rand4k", "reads", "iops"), ("seq1m", "bytes", "mbps")):
        start = g.find(rf"^{name}: {phase} start")
        done = g.find(rf"^{name}: {phase} done {unit}=(\d+) seconds=([\d.]+) {key}=([\d.]+)")
        if not start or not done:
            sys.exit(f"virtio.py: {kind} printed no {phase} result; console:\n{g.tail()}")
        n, host_s = int(done[1][1]), done[0] - start[0]
        rate = n / host_s if phase == "rand4k" else n / host_s / 1e6
        res[phase] = {"host": rate, "guest": float(done[1][3]), "host_s": host_s}
    return res


def ratio_cell(shoal, linux):
    """Ratio of the medians, and the range of the per-round ratios (round i of Shoal against round i of Linux)."""
    med = statistics.median(shoal) / statistics.median(linux)
    per = [a / b for a, b in zip(shoal, linux) if b]
    return f"{med:.2f}" + (f" ({min(per):.1f}-{max(per):.1f})" if len(per) > 1 else "")


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
    disk = prepare(args)
    khz = host_tsc_khz()
    kver = sorted(os.listdir(os.path.join(GUEST, "pkg", "kernel", "lib", "modules")))[0]
    print(f"virtio benchmark: -M {args.machine}, TCG, -m 256, Shoal vs Linux {kver}; "
          f"host TSC {khz} kHz, {os.cpu_count()} host CPUs; medians of {args.runs} rounds, "
          f"ratio of medians (range of per-round ratios)")
    med = statistics.median
    if not args.skip_net:
        print(f"\nnetwork: frames/s reflected, {WINDOW} in flight, {FLOWS} flows, {args.seconds:g} s per case")
        print(f"{'vCPUs':>5} {'wire B':>8} {'Shoal fps':>10} {'Linux fps':>10} {'Shoal/Linux':>18}   "
              f"frames lost, Shoal / Linux (of them while measuring)")
        for smp in VCPUS:
            rounds = {"shoal": [], "linux": []}
            for _ in range(args.runs):
                for kind in ("shoal", "linux"):
                    rounds[kind].append(net_case(kind, smp, args.machine, khz, args.seconds))
            for _, label in SIZES:
                s = [r[label] for r in rounds["shoal"]]
                l = [r[label] for r in rounds["linux"]]
                sf, lf = [r["fps"] for r in s], [r["fps"] for r in l]
                lost = lambda rs: f"{sum(r['lost'] for r in rs)} ({sum(r['lost_measured'] for r in rs)})"
                print(f"{smp:>5} {label:>8} {med(sf):>10.0f} {med(lf):>10.0f} {ratio_cell(sf, lf):>18}"
                      f"   {lost(s)} / {lost(l)}", flush=True)
    if not args.skip_blk:
        print(f"\nblock: read-only {DISK_MB} MiB raw file, {args.blk_seconds} s per phase, host-timed "
              f"(guest's own figure in brackets)")
        print(f"{'vCPUs':>5} {'test':>22} {'Shoal':>17} {'Linux':>17} {'Shoal/Linux':>18}")
        for smp in VCPUS:
            rounds = {"shoal": [], "linux": []}
            for _ in range(args.runs):
                for kind in ("shoal", "linux"):
                    rounds[kind].append(blk_case(kind, smp, args.machine, khz, disk, args.blk_seconds))
            for phase, label in (("rand4k", "4 KiB random IOPS"), ("seq1m", "1 MiB sequential MB/s")):
                s = [r[phase] for r in rounds["shoal"]]
                l = [r[phase] for r in rounds["linux"]]
                sh_, lh = [r["host"] for r in s], [r["host"] for r in l]
                print(f"{smp:>5} {label:>22} {med(sh_):>8.0f} ({med(r['guest'] for r in s):>6.0f}) "
                      f"{med(lh):>8.0f} ({med(r['guest'] for r in l):>6.0f}) {ratio_cell(sh_, lh):>18}", flush=True)
    print(f"\n(whole run {time.monotonic() - t0:.0f} s)")


if __name__ == "__main__":
    main()
