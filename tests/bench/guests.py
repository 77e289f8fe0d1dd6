"""What the Shoal-against-Linux benchmarks share: paths, building what they boot, booting either
guest through scripts/run.py with the same flags, and the ratio cell of their tables."""
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
from shoal_qemu import stop  # noqa: E402  (run.py and everything under it, QEMU included)
EXIT_NO_STATUS = 125      # run.py's status for a guest that powers off without one (Linux)


def sh(*cmd, **kw):
    return subprocess.run(list(cmd), check=True, **kw)


def newer(target, *sources):
    return os.path.exists(target) and all(os.path.getmtime(target) >= os.path.getmtime(s) for s in sources)


def prepare(who, apps, host_programs, guest_programs):
    """Shoal images from the tree, host-side C programs, and the Linux guest when its sources changed."""
    os.makedirs(BENCH, exist_ok=True)
    for app in apps:          # cheap when up to date, so the image matches the tree
        r = subprocess.run(["make", "-s", "-C", ROOT, f"APP={app}"], capture_output=True, text=True)
        if r.returncode != 0:
            elf = os.path.join(BUILD, f"{app}.elf")
            if not os.path.exists(elf):
                sys.exit(f"{who}: building {app} failed:\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
            print(f"{who}: WARNING: building {app} failed; measuring the existing {elf}, built "
                  f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(os.path.getmtime(elf)))}", flush=True)
    for prog in ("tsc_khz", *host_programs):
        src, out = os.path.join(HERE, f"{prog}.c"), os.path.join(BENCH, prog)
        if not newer(out, src):
            sh("gcc", "-O2", "-Wall", "-o", out, src)
    srcs = [os.path.join(ROOT, "scripts", "linux-guest.sh")] + [os.path.join(HERE, "guest", f) for f in guest_programs]
    if not newer(os.path.join(GUEST, "initrd.gz"), *srcs):
        sh(os.path.join(ROOT, "scripts", "linux-guest.sh"), stdout=subprocess.DEVNULL)


def host_tsc_khz():
    return int(subprocess.run([os.path.join(BENCH, "tsc_khz")], capture_output=True, text=True,
                              check=True).stdout.strip())


class Guest:
    """A Shoal image or the Linux guest booted through run.py in the background; console lines are
    kept with their host arrival time."""

    def __init__(self, kind, smp, machine, tsc_khz, image=None, shoal_cmdline=(), linux_cmdline=(), ns=None,
                 disk=None, timeout=120):
        if kind == "shoal":
            cmd, cmdline = [RUN, image], list(shoal_cmdline)
        else:
            cmd = [RUN, os.path.join(GUEST, "vmlinuz"), "--initrd", os.path.join(GUEST, "initrd.gz")]
            # microvm has no PIT, HPET or ACPI PM timer under TCG: Linux cannot calibrate the TSC there
            # (it can hang at boot), so it is told the host's TSC rate, which TCG guests see.
            cmdline = ["console=ttyS0", "quiet", "panic=-1", f"tsc_early_khz={tsc_khz}", "tsc=reliable",
                       *linux_cmdline]
        cmd = [sys.executable, *cmd, "--smp", str(smp), "--machine", machine, "--timeout", str(timeout)]
        if ns:
            cmd += ["--net", ns.net_arg()]
        if disk:
            cmd += ["--disk", f"{disk},readonly"]
        if cmdline:
            cmd += ["--", *cmdline]
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
        """(host time, match) of the first console line matching pattern, or None."""
        rx = re.compile(pattern)
        for t, line in list(self.lines):
            m = rx.search(line)
            if m:
                return t, m
        return None

    def wait_for(self, pattern, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.find(pattern):
                return True
            if self.proc.poll() is not None:
                self.reader.join(5)
                return bool(self.find(pattern))
            time.sleep(0.05)
        return False

    def wait(self, timeout):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = None
        self.reader.join(5)
        return rc

    def kill(self):
        """SIGTERM: run.py takes QEMU down with it; SIGKILL if it does not go, and then to whatever was
        under it and still runs (shoal_qemu.stop). Every benchmark calls this in a finally."""
        stop(self.proc)
        self.reader.join(5)

    def tail(self, n=15):
        return "\n".join(line for _, line in self.lines[-n:])

    def check_exit(self, rc, who):
        want = 0 if self.kind == "shoal" else EXIT_NO_STATUS
        if rc != want:
            raise BenchError(f"{self.kind} guest exited with {rc}, expected {want}; console:\n{self.tail()}")


class BenchError(RuntimeError):
    """A boot or a load run that failed; the message says why (with the console's tail)."""


class Failures:
    """The boots and load runs of a benchmark that failed. Nothing is retried: each failure is printed when
    it happens, marks its row of the table FAILED, is listed with its reason under the table, and makes
    the command exit non-zero at the end (exit_status)."""

    def __init__(self, who):
        self.who = who
        self.items = []             # (key, what, reason)

    def attempt(self, key, what, fn, *args, **kw):
        """fn(*args, **kw), or None when it fails; key groups failures by table row (e.g. the vCPU count)."""
        try:
            return fn(*args, **kw)
        except Exception as e:      # every failure is this boot's, reported; the others go on
            reason = str(e) if isinstance(e, BenchError) else f"{type(e).__name__}: {e}"
            self.items.append((key, what, reason))
            print(f"{self.who}: FAILED {what}: {reason[:2000]}", flush=True)
            return None

    def of(self, key):
        return [(what, reason) for k, what, reason in self.items if k == key]

    def mark(self, key, total):
        """The table's marker for a row: '' when nothing failed, else 'FAILED (n of total boots)'."""
        n = len(self.of(key))
        return f"FAILED ({n} of {total} boots)" if n else ""

    def report(self):
        """Lines for under the table: every failure with its reason (on one line, shortened)."""
        if not self.items:
            return ""
        lines = [f"\nFAILED: {len(self.items)} boot(s) or load run(s) failed (not retried; their rows are marked):"]
        for _, what, reason in self.items:
            flat = " / ".join(l.strip() for l in reason.splitlines() if l.strip()) or "?"
            lines.append(f"  {what}: {flat[:300]}")
        return "\n".join(lines)

    def print_report(self):
        if self.items:
            print(self.report(), flush=True)

    def exit_status(self):
        return 1 if self.items else 0


def median_or_none(values):
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def num(v, fmt):
    """A table cell: the number, or '-' where every run failed."""
    return "-" if v is None else format(v, fmt)


def ratio_cell(shoal, linux, digits=1):
    """Ratio of the medians, and the range of the per-round ratios (round i of Shoal against round i of Linux).
    None stands for a failed round: left out of the medians, and of the per-round ratios."""
    ms, ml = median_or_none(shoal), median_or_none(linux)
    if ms is None or not ml:
        return "-"
    per = [a / b for a, b in zip(shoal, linux) if a is not None and b]
    return f"{ms / ml:.2f}" + (f" ({min(per):.{digits}f}-{max(per):.{digits}f})" if len(per) > 1 else "")
