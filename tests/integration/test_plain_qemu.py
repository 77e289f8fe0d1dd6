"""First contact: images booted with plain qemu-system-x86_64 and QEMU's default devices.

No run.py, no -nodefaults, no -global or disable-legacy flags: what a user
types. microvm then offers legacy (version 1) virtio-mmio, pc and q35 offer
transitional virtio-pci devices, qboot assigns no PCI BARs. Each boot must
answer a TCP request on a flow owned by every shard, and a ping, as soon as
the app says it is ready.
"""
import json
import shutil
import sys

from boot_storm import CLIENT, GUEST_IP, QBOOT
from netns import Guest, NetNS
from shoal_qemu import image

APPS = {"echo": ("echo: ready", 7, f"ip={GUEST_IP}/24"),
        "memcached": ("memcached: ready", 11211, f"ip={GUEST_IP}/24 --")}

def plain_boot(app, machine_args, device, smp=1):
    ready, port, cmdline = APPS[app]
    with NetNS(addr="10.0.2.1/24") as ns:
        argv = [shutil.which("qemu-system-x86_64"), *machine_args, "-accel", "tcg", "-smp", str(smp), "-nographic",
                "-kernel", image(app), "-append", cmdline,
                "-netdev", f"tap,id=n0,ifname={ns.tap},script=no,downscript=no", "-device", device]
        g = Guest(ns, None, argv=argv)
        try:
            assert g.wait_for(ready, 90), f"no '{ready}'; console:\n{g.console[-3000:]}"
            r = ns.run(sys.executable, CLIENT, GUEST_IP, str(port), str(smp), app, "--per-shard", "2", check=False)
            res = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {"ok": False,
                                                                                           "misses": [r.stderr[-500:]]}
            assert res["ok"], f"{res['misses']}; console:\n{g.console[-2500:]}"
            lines = [l for l in g.console.splitlines() if "virtio-net (" in l]
            print(f"  {lines[0].split('] ', 1)[-1] if lines else '?'}")
            return g.console
        finally:
            g.kill()

def case(app, machine_args, device, smp=1, expect=None):
    def run():
        text = plain_boot(app, machine_args, device, smp)
        if expect:
            assert expect in text, f"console lacks {expect!r}"
    return run

def cases():
    microvm = ["-M", "microvm"]
    pc_qboot = ["-M", "pc", "-bios", QBOOT]
    return [
        ("plain-qemu-microvm-echo", case("echo", microvm, "virtio-net-device,netdev=n0", 1, "(legacy interface)")),
        ("plain-qemu-microvm-memcached-smp2", case("memcached", microvm, "virtio-net-device,netdev=n0", 2,
                                                   "(legacy interface)")),
        ("plain-qemu-microvm-force-legacy-memcached", case(
            "memcached", microvm + ["-global", "virtio-mmio.force-legacy=true"], "virtio-net-device,netdev=n0", 1,
            "(legacy interface)")),
        ("plain-qemu-pc-seabios-echo", case("echo", ["-M", "pc"], "virtio-net-pci,netdev=n0", 1, "(virtio 1.x)")),
        ("plain-qemu-pc-seabios-memcached-smp2", case("memcached", ["-M", "pc"], "virtio-net-pci,netdev=n0", 2,
                                                      "(virtio 1.x)")),
        ("plain-qemu-pc-disable-modern-memcached", case(
            "memcached", ["-M", "pc"], "virtio-net-pci,netdev=n0,disable-modern=on", 1, "(legacy interface)")),
        ("plain-qemu-pc-legacy-no-any-layout-echo", case(
            "echo", ["-M", "pc"], "virtio-net-pci,netdev=n0,disable-modern=on,any_layout=off,mrg_rxbuf=off", 1,
            "(legacy interface)")),
        ("plain-qemu-pc-qboot-echo", case("echo", pc_qboot, "virtio-net-pci,netdev=n0", 1, "(virtio 1.x)")),
        ("plain-qemu-pc-qboot-memcached-smp2", case("memcached", pc_qboot, "virtio-net-pci,netdev=n0", 2)),
        ("plain-qemu-q35-echo", case("echo", ["-M", "q35"], "virtio-net-pci,netdev=n0", 1, "(virtio 1.x)")),
        ("plain-qemu-q35-qboot-memcached-smp2", case("memcached", ["-M", "q35", "-bios", QBOOT],
                                                     "virtio-net-pci,netdev=n0", 2, "(virtio 1.x)")),
    ]
