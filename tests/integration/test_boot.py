"""Boot hello on every machine type and vCPU count; boot the fault app and read its crash report."""
import os
import re
import shutil
import struct
import time
import unittest

from shoal_qemu import BUILD, boot, build_variant, image

def check_hello(b, smp):
    assert b.status == 0, f"exit status {b.status}, expected 0; console tail:\n{b.tail()}"
    for k in range(smp):
        lines = [l for l in b.console.splitlines() if l.strip() == f"hello from cpu {k} of {smp}"]
        assert len(lines) == 1, f"expected one line 'hello from cpu {k} of {smp}', got {len(lines)}:\n{b.tail()}"
    b.expect(r"^hello: all checks passed$")
    b.expect(rf"all {smp} shards ready at \d+ us", "the boot-time report")

def hello_case(machine, smp, extra=(), mem=256):
    def run():
        check_hello(boot(image("hello"), smp=smp, machine=machine, extra=extra, mem=mem), smp)
    return run

def fault_case(mode, patterns, smp=2):
    """The fault app crashes as told; the console must explain it and the status must be non-zero."""
    def run():
        b = boot(image("fault"), smp=smp, cmdline=f"-- {mode}")
        assert b.status not in (0, 124, 125), f"fault {mode} exited with {b.status}; tail:\n{b.tail()}"
        b.expect(r"^RAX [0-9a-f]{16}", "the register dump")
        for p, what in patterns:
            b.expect(p, what)
    return run

NULL_DEREF = [
    (r"EXCEPTION 14 \(page fault\)", "the exception name"),
    (r"page fault at address 0x0 \(write", "the faulting address"),
    (r"faulting instruction: 0x[0-9a-f]+  fault_deref_null\+", "the faulting function"),
    (r"fault_caller\+0x", "the caller"),
    (r"^\s+0x[0-9a-f]+  app_main\+0x", "app_main in the backtrace"),
]

def pvh_boot():
    """With the Multiboot magic removed, QEMU falls back to the PVH note (what Firecracker uses)."""
    src = image("hello")
    dst = os.path.join(BUILD, "hello-pvh-only.elf")
    shutil.copy(src, dst)
    with open(dst, "r+b") as f:
        data = f.read(8192)
        off = data.find(struct.pack("<I", 0x1BADB002))
        assert off >= 0, "no Multiboot header to remove"
        f.seek(off)
        f.write(b"\0\0\0\0")
    b = boot(dst, smp=2, machine="microvm", cmdline="idle_poll_us=20 -- pvh-arg")
    check_hello(b, 2)
    b.expect(r"booted by PVH", "PVH boot")
    b.expect(r"idle_poll_us=20", "the command line from the PVH start info")

def cmdline_default_and_override():
    img = build_variant("hello", "hello-cmdline.elf", "idle_poll_us=77 -- a b")
    b = boot(img)
    check_hello(b, 1)
    b.expect(r"idle_poll_us=77", "the default command line embedded by build-image.py")
    b = boot(img, cmdline="idle_poll_us=33")
    check_hello(b, 1)
    b.expect(r"idle_poll_us=33", "the boot loader's command line replacing the default")

def mptable_only():
    """microvm with ACPI off has only an MP table (as Firecracker): every CPU must still be found."""
    b = boot(image("hello"), smp=2, machine="microvm", extra=["--qemu-arg=-M", "--qemu-arg=microvm,acpi=off"])
    check_hello(b, 2)
    b.expect(r"\(MP table\)", "CPU enumeration from the MP table")

def acpi_poweroff(machine, app, expected):
    """Without isa-debug-exit the guest must still power the VM off (ACPI S5) and print its status."""
    def run():
        b = boot(image(app), smp=2, machine=machine, extra=["--no-debug-exit"], timeout=60)
        assert b.status == expected, f"status {b.status}, expected {expected}; tail:\n{b.tail()}"
        b.expect(rf"shoal: exit status {expected}$", "the exit status line")
    return run

def ram_above_pci_hole():
    """q35 with 3 GiB keeps 1 GiB above 4 GiB: one shard's span crosses the hole and uses both sides."""
    b = boot(image("hello"), smp=1, machine="q35", mem=3072)
    check_hello(b, 1)
    m = re.search(r"shoal: (\d+) MiB for shards", b.console)
    assert m and int(m.group(1)) > 3000, f"expected > 3000 MiB for shards; tail:\n{b.tail()}"

def wall_clock():
    """The RTC read at boot gives Unix time from the start; QEMU's RTC follows the host's UTC clock."""
    before = time.time()
    b = boot(image("hello"), smp=1)
    after = time.time()
    check_hello(b, 1)
    m = re.search(r"shoal: wall clock (\d+)\.\d+ \(unix seconds", b.console)
    assert m, f"no wall clock line; tail:\n{b.tail()}"
    guest = int(m.group(1))
    assert before - 2 <= guest <= after + 2, f"guest wall clock {guest} not within [{before:.0f}, {after:.0f}]"

def kvm_usable():
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
        return True
    except OSError:
        return False

def wall_clock_kvmclock():
    """Under KVM the wall clock and the TSC rate come from kvmclock. Where /dev/kvm is a software
    hypervisor (PVM here) the full boot would take minutes, so the image stops right after reading
    the clock (exit_after=wallclock). -cpu host without arch-capabilities: PVM refuses that MSR."""
    if not kvm_usable():
        raise unittest.SkipTest("/dev/kvm is missing or not usable")
    before = time.time()
    b = boot(image("hello"), smp=1, cmdline="exit_after=wallclock", timeout=90,
             extra=["--accel", "kvm", "--qemu-arg=-cpu", "--qemu-arg=host,-arch-capabilities"])
    after = time.time()
    assert b.status == 0, f"exit status {b.status}; tail:\n{b.tail()}"
    m = re.search(r"shoal: wall clock (\d+)\.(\d+) \(unix seconds, from kvmclock\)", b.console)
    assert m, f"no wall clock from kvmclock; tail:\n{b.tail()}"
    guest = int(m.group(1)) + int(m.group(2)) / 1e6
    assert before - 2 <= guest <= after + 2, f"guest wall clock {guest:.3f} not within [{before:.0f}, {after:.0f}]"
    b.expect(r"shoal: tsc \d+ kHz \((kvmclock|cpuid-15h|hypervisor)\)", "a TSC rate the hypervisor stated")

def tsc_rate_given_or_calibrated():
    """run.py hands TCG guests the host's TSC rate (no calibration); without it, or with a value
    out of range, the kernel calibrates against the RTC and the LAPIC timer still works."""
    b = boot(image("hello"), smp=1)
    check_hello(b, 1)
    b.expect(r"shoal: tsc \d+ kHz \(fw_cfg opt/shoal/tsc_khz\)", "the TSC rate from run.py's fw_cfg file")
    b = boot(image("hello"), smp=1, cmdline="tsc_khz=12", extra=["--tsc-khz", "off"])
    check_hello(b, 1)
    b.expect(r"tsc: tsc_khz=12 ignored", "the rejected option")
    b.expect(r"shoal: tsc \d+ kHz \(rtc\)", "calibration against the RTC")

def cases():
    out = []
    for machine in ("microvm", "pc"):
        for smp in (1, 2, 4, 8):
            out.append((f"hello-{machine}-smp{smp}", hello_case(machine, smp)))
        out.append((f"hello-{machine}-smp64", hello_case(machine, 64, mem=1024)))
    out.append(("hello-q35-smp4", hello_case("q35", 4)))
    out.append(("hello-pc-qboot-smp2", hello_case("pc", 2, ["--bios", "/usr/share/qemu/qboot.rom"])))
    out.append(("hello-pvh-entry", pvh_boot))
    out.append(("hello-mptable-only", mptable_only))
    out.append(("cmdline-default-and-override", cmdline_default_and_override))
    out.append(("wall-clock-from-rtc", wall_clock))
    out.append(("wall-clock-from-kvmclock", wall_clock_kvmclock))
    out.append(("tsc-rate-given-or-calibrated", tsc_rate_given_or_calibrated))
    for machine in ("microvm", "pc", "q35"):
        out.append((f"acpi-poweroff-{machine}", acpi_poweroff(machine, "hello", 0)))
    out.append(("acpi-poweroff-fault-status", acpi_poweroff("pc", "fault", 3)))
    out.append(("ram-above-pci-hole", ram_above_pci_hole))
    out.append(("fault-backtrace-smp1", fault_case("null", NULL_DEREF, smp=1)))
    out.append(("fault-backtrace-smp4", fault_case("null", NULL_DEREF, smp=4)))
    out.append(("fault-stack-guard-page", fault_case("stack", [
        (r"EXCEPTION 8 \(double fault\)|EXCEPTION 14 \(page fault\)", "a fault on the guard page"),
        (r"fault_recurse\+0x", "the recursing function")])))
    out.append(("fault-nx-data", fault_case("nx", [
        (r"EXCEPTION 14 \(page fault\)", "a page fault"),
        (r"\(instruction fetch, protection violation\)", "an instruction fetch from NX memory"),
        (r"fault_exec_data\+0x", "the caller")])))
    out.append(("fault-rodata-write", fault_case("rodata", [
        (r"page fault at address 0x[0-9a-f]+ \(write, protection violation\)", "a write to read-only memory"),
        (r"fault_write_rodata\+0x", "the faulting function")])))
    return out
