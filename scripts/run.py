#!/usr/bin/env python3
"""Boot a Shoal image under QEMU with the serial console on stdout.

    run.py IMAGE [--smp N] [--mem MB] [--machine microvm|pc|q35] [--accel kvm|tcg]
           [--net tap:IFNAME[,queues=N][,mac=M][,rss=on|off]] [--disk FILE[,readonly][,queues=N]]
           [--initrd FILE] [--tsc-khz auto|off|N] [--timeout S] [-- KERNEL_CMDLINE...]

--net and --disk add virtio devices: virtio-mmio on microvm, virtio-pci
(modern only) on pc and q35. A tap device must exist already (the tests
create theirs in a network namespace). queues defaults to 1; with more
than one, multiqueue (and RSS unless rss=off) are turned on. A disk gets
one request queue per vCPU unless queues= says otherwise.

Exits with the guest's own exit status: the image prints "shoal: exit
status N" and writes N to QEMU's isa-debug-exit port, which QEMU turns into
(N << 1) | 1. QEMU's exit code 1 is both the guest's status 0 and QEMU's own
error (a bad -device, a missing tap), so it counts as status 0 only with that
console line. A guest that stops without reporting a status (reset, triple
fault) or a QEMU that fails (its error output is repeated on stderr) gives
exit status 125; a run that exceeds --timeout gives 124; SIGTERM, SIGINT or
SIGHUP stop the run with 128 + the signal's number.

QEMU runs in a session of its own and its whole process group is killed on
every way run.py ends: QEMU's own exit, the timeout, those signals (SIGINT
and SIGHUP only when not inherited as ignored, as under nohup or in a
shell's background job), an exception; SIGKILL of run.py reaches QEMU
through PR_SET_PDEATHSIG.

KVM is used only where the CPU has hardware virtualization (vmx or svm in
/proc/cpuinfo) and /dev/kvm is usable: on machines whose /dev/kvm is a
software hypervisor, TCG is much faster.

Under TCG the guest reads the host's TSC, so the host's TSC rate
(scripts/host_tsc.py) is handed to it in the fw_cfg file opt/shoal/tsc_khz
and Shoal skips its ~10 ms TSC calibration; --tsc-khz off leaves it out
(the guest calibrates), --tsc-khz N passes N instead. Under KVM the guest
has kvmclock and nothing is passed. The file, not the command line, so that
the image's default command line is not replaced.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from host_tsc import host_tsc_khz  # noqa: E402

EXIT_NO_STATUS = 125
EXIT_TIMEOUT = 124
STATUS_LINE = re.compile(rb"shoal: exit status (-?\d+)")

def hardware_virt():
    try:
        with open("/proc/cpuinfo") as f:
            flags = re.search(r"^flags\s*:(.*)$", f.read(), re.M)
    except OSError:
        return False
    if not flags:
        return False
    words = flags.group(1).split()
    return ("vmx" in words or "svm" in words) and os.access("/dev/kvm", os.R_OK | os.W_OK)

def choose_accel(requested):
    if requested:
        return requested
    return "kvm" if hardware_virt() else "tcg"

def qemu_command(args, accel):
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        sys.exit("run.py: qemu-system-x86_64 not found (apt-get install qemu-system-x86)")
    machine = args.machine
    cmd = [qemu, "-accel", accel, "-cpu", "host" if accel == "kvm" else "max",
           "-smp", str(args.smp), "-m", str(args.mem),
           "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio", "-monitor", "none",
           "-kernel", args.image]
    if args.initrd:
        cmd += ["-initrd", args.initrd]
    if not args.no_debug_exit:
        cmd += ["-device", "isa-debug-exit,iobase=0xf4,iosize=0x01"]
    if machine == "microvm":
        cmd[1:1] = ["-M", "microvm"]
    elif machine == "pc":
        cmd[1:1] = ["-M", "pc"]
        if args.bios:
            cmd += ["-bios", args.bios]
    elif machine == "q35":
        cmd[1:1] = ["-M", "q35"]
    else:
        sys.exit(f"run.py: unknown machine {machine}")
    if machine == "microvm" and (args.net or args.disk):
        cmd += ["-global", "virtio-mmio.force-legacy=false"]
    for i, spec in enumerate(args.net):
        cmd += net_args(spec, i, machine)
    for i, spec in enumerate(args.disk):
        cmd += disk_args(spec, i, machine, args.smp)
    if args.cmdline:
        cmd += ["-append", " ".join(args.cmdline)]
    khz = tsc_khz_for_guest(args.tsc_khz, accel)
    if khz:
        cmd += ["-fw_cfg", f"name=opt/shoal/tsc_khz,string={khz}"]
    cmd += args.qemu_arg
    return cmd

def tsc_khz_for_guest(option, accel):
    """The TSC rate to tell the guest, or None: only TCG guests read the host's TSC unscaled."""
    if option == "off":
        return None
    if option != "auto":
        if not option.isdigit():
            sys.exit("run.py: --tsc-khz takes auto, off or a number of kHz")
        return int(option)
    return host_tsc_khz() if accel == "tcg" else None

def parse_opts(spec, what):
    """'X,a=1,b' -> ('X', {'a': '1', 'b': ''})"""
    head, *rest = spec.split(",")
    opts = {}
    for r in rest:
        k, _, v = r.partition("=")
        opts[k] = v
    if not head:
        sys.exit(f"run.py: {what}: empty")
    return head, opts

def net_args(spec, index, machine):
    kind, opts = parse_opts(spec, "--net")
    if not kind.startswith("tap:"):
        sys.exit("run.py: --net takes tap:IFNAME[,queues=N][,mac=M][,rss=on|off]")
    ifname = kind[4:]
    queues = int(opts.get("queues", "1") or "1")
    netdev = f"tap,id=net{index},ifname={ifname},script=no,downscript=no"
    model = "virtio-net-device" if machine == "microvm" else "virtio-net-pci,disable-legacy=on"
    dev = f"{model},netdev=net{index}"
    if queues > 1:
        netdev += f",queues={queues}"
        dev += ",mq=on"
        if opts.get("rss", "on") == "on":
            dev += ",rss=on"
        if machine != "microvm":
            dev += f",vectors={2 * queues + 2}"
    if opts.get("mac"):
        dev += f",mac={opts['mac']}"
    return ["-netdev", netdev, "-device", dev]

def disk_args(spec, index, machine, smp):
    path, opts = parse_opts(spec, "--disk")
    queues = int(opts.get("queues", str(smp)) or smp)
    drive = f"file={path},if=none,id=disk{index},format=raw,cache=writeback"
    if "readonly" in opts:
        drive += ",readonly=on"
    model = "virtio-blk-device" if machine == "microvm" else "virtio-blk-pci,disable-legacy=on"
    return ["-drive", drive, "-device", f"{model},drive=disk{index},num-queues={queues}"]

def die_with_parent(parent):
    """In QEMU's process, before exec: if run.py dies (even by SIGKILL), QEMU gets SIGKILL too.

    PR_SET_PDEATHSIG fires when the thread that forked QEMU exits, so run() must be called from
    run.py's main thread (it is: Popen runs there, and signal handlers need that thread anyway);
    it survives QEMU's exec (QEMU is not set-uid). If run.py died between the fork and the prctl
    the signal would never come: then getppid() is no longer run.py and the child leaves."""
    try:
        import ctypes
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(EXIT_NO_STATUS)

class Stopped(BaseException):
    """run.py was told to stop (SIGTERM, SIGINT, SIGHUP): QEMU is already killed when this is raised."""
    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum

# QEMU runs in a session (and process group) of its own, so that a terminal's Ctrl-C or a test
# runner's killpg reaches run.py, which then decides; these are what the signal handlers use.
_qemu = None
_timed_out = False

def kill_qemu():
    """SIGKILL to QEMU's whole process group, while QEMU is not yet reaped (its pid, which is the
    group's id, cannot have been reused). Idempotent; safe in a signal handler."""
    p = _qemu
    if p is not None and p.returncode is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

def run(cmd, timeout, quiet):
    """Stream the console to stdout; return (qemu exit code or None on timeout, console bytes).

    QEMU's process group is killed on every way out of here: QEMU's own exit (whatever it left
    behind), the timeout (SIGALRM), SIGTERM, SIGINT and SIGHUP (unless inherited as ignored, as
    nohup and shells' background jobs have them: those stay ignored), any exception (a closed
    stdout, say); and PR_SET_PDEATHSIG covers SIGKILL of run.py."""
    global _qemu
    out = bytearray()
    parent = os.getpid()

    def on_alarm(*_):
        global _timed_out
        _timed_out = True
        kill_qemu()

    def on_stop(signum, _frame):
        kill_qemu()
        raise Stopped(signum)

    stop_signals = [signal.SIGTERM]
    for s in (signal.SIGINT, signal.SIGHUP):
        if signal.getsignal(s) != signal.SIG_IGN:
            stop_signals.append(s)
    guarded = {signal.SIGALRM, *stop_signals}

    def child_setup():
        signal.pthread_sigmask(signal.SIG_UNBLOCK, guarded)
        die_with_parent(parent)

    previous = {s: signal.signal(s, on_stop) for s in stop_signals}
    previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, on_alarm)
    try:
        # No handler may run between the fork and _qemu being set (it would miss QEMU): the signals
        # wait until then. The child unblocks them before exec.
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, guarded)
        try:
            _qemu = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=child_setup)
            signal.alarm(max(1, int(timeout)))
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        for chunk in iter(lambda: _qemu.stdout.read1(4096), b""):
            out += chunk
            if not quiet:
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
        # QEMU closed the console: wait for it to exit without reaping it, so that its pid (the
        # group's id) stays ours while whatever is left of its group is killed.
        os.waitid(os.P_PID, _qemu.pid, os.WEXITED | os.WNOWAIT)
        kill_qemu()
        rc = _qemu.wait()
    finally:
        signal.alarm(0)
        kill_qemu()
        if _qemu is not None and _qemu.returncode is None:
            try:
                _qemu.wait(10)
            except subprocess.TimeoutExpired:
                pass
        for s, h in previous.items():   # QEMU is gone: a later signal has its usual effect
            signal.signal(s, h)
    return (None if _timed_out else rc), bytes(out)

def qemu_errors(console, qemu):
    """QEMU's own error lines ("qemu-system-x86_64: ..."), else the end of the output."""
    prefix = os.path.basename(qemu).encode() + b":"
    text = console.replace(b"\r", b"")
    lines = [l for l in text.splitlines() if l.startswith(prefix)]
    if not lines:
        lines = [l for l in text.splitlines() if l.strip()][-5:]
    return "\n".join(l.decode(errors="replace") for l in lines) or "(no output)"

def guest_status(qemu_rc, console):
    """(status, problem): problem is None when the status is the guest's own or a timeout.

    isa-debug-exit turns the guest's status v into QEMU exit code (v << 1) | 1, so the guest's
    status 0 gives 1, which is also QEMU's code for its own errors (a bad -device, a missing
    tap). The guest prints "shoal: exit status N" (machine_exit, arch/x86_64/shutdown.c) just
    before it writes the port, so exit code 1 counts as status 0 only with that line."""
    if qemu_rc is None:
        return EXIT_TIMEOUT, None
    lines = STATUS_LINE.findall(console)
    if qemu_rc == 1:
        if lines:
            return 0, None
        return EXIT_NO_STATUS, "failed to start"
    if qemu_rc > 0 and qemu_rc & 1:
        return qemu_rc >> 1, None
    if qemu_rc < 0:
        return EXIT_NO_STATUS, f"killed by signal {-qemu_rc}"
    if lines:
        return int(lines[-1]), None
    return EXIT_NO_STATUS, None

def main():
    argv = sys.argv[1:]
    cmdline = []
    if "--" in argv:
        i = argv.index("--")
        argv, cmdline = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description="Boot a Shoal image under QEMU.")
    ap.add_argument("image")
    ap.add_argument("--smp", type=int, default=1)
    ap.add_argument("--mem", type=int, default=256, help="MiB")
    ap.add_argument("--machine", default="microvm", choices=["microvm", "pc", "q35"])
    ap.add_argument("--accel", choices=["kvm", "tcg"])
    ap.add_argument("--bios", help="firmware for -M pc, e.g. /usr/share/qemu/qboot.rom")
    ap.add_argument("--net", action="append", default=[], metavar="tap:IFNAME[,queues=N]",
                    help="virtio-net on an existing tap device (repeatable)")
    ap.add_argument("--disk", action="append", default=[], metavar="FILE[,readonly]",
                    help="virtio-blk on a raw image file (repeatable)")
    ap.add_argument("--initrd", help="initial ramdisk, for booting a Linux guest under the same flags (benchmarks)")
    ap.add_argument("--tsc-khz", default="auto",
                    help="TSC rate handed to the guest via fw_cfg: auto (the host's, under TCG only), off, or kHz")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--quiet", action="store_true", help="do not echo the console")
    ap.add_argument("--qemu-arg", action="append", default=[], help="extra QEMU argument (repeatable)")
    ap.add_argument("--no-debug-exit", action="store_true",
                    help="leave out isa-debug-exit: the guest powers off through ACPI and the status comes from the console")
    ap.add_argument("--print-command", action="store_true")
    args = ap.parse_args(argv)
    args.cmdline = cmdline
    if not os.path.exists(args.image):
        sys.exit(f"run.py: {args.image}: no such image")
    cmd = qemu_command(args, choose_accel(args.accel))
    if args.print_command:
        print(" ".join(cmd))
        return 0
    try:
        rc, console = run(cmd, args.timeout, args.quiet)
    except Stopped as e:
        sys.stderr.write(f"run.py: stopped by {signal.Signals(e.signum).name}; QEMU killed\n")
        return 128 + e.signum
    except BrokenPipeError:
        # Whoever read the console went away; QEMU is killed (run's finally). No traceback, and no
        # second error when Python flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.stderr.write("run.py: console reader went away; QEMU killed\n")
        return 128 + signal.SIGPIPE
    status, problem = guest_status(rc, console)
    if problem == "failed to start":
        sys.stderr.write(f"run.py: QEMU failed (exit code 1 without a 'shoal: exit status' line on the console, "
                         f"so not the guest's exit); QEMU said:\n{qemu_errors(console, cmd[0])}\n")
    elif problem:
        sys.stderr.write(f"run.py: QEMU was {problem}; the guest reported no exit status\n")
    elif status == EXIT_NO_STATUS:
        sys.stderr.write(f"run.py: guest stopped without an exit status (QEMU exit code {rc})\n")
    elif status == EXIT_TIMEOUT:
        sys.stderr.write(f"run.py: timed out after {args.timeout} s\n")
    return status

if __name__ == "__main__":
    sys.exit(main())
