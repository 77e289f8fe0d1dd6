"""virtio-net under l2echo: thousands of frames over many flows from a raw socket in a test-made namespace."""
import json
import os
import re
import sys

from netns import Guest, NetNS
from shoal_qemu import boot, image

HERE = os.path.dirname(os.path.abspath(__file__))
SENDER = os.path.join(HERE, "l2_sender.py")
GSO_SENDER = os.path.join(HERE, "gso_sender.py")

def shard_counts(console):
    return {int(s): int(n) for s, n in re.findall(r"^l2echo: shard (\d+) reflected (\d+) frames", console, re.M)}

def l2echo_case(machine, smp, queues, frames, steer=False, extra=(), expect=None):
    def run():
        with NetNS(queues=queues) as ns:
            g = Guest(ns, image("l2echo"), smp=smp, machine=machine, cmdline="-- steer" if steer else None,
                      extra=extra)
            try:
                assert g.wait_for("l2echo: ready"), f"l2echo did not come up; console:\n{g.tail()}"
                r = ns.run(sys.executable, SENDER, ns.tap, str(frames), "--flows", "64", "--exit", "--timeout", "60",
                           check=False)
                rc = g.wait(60)
            finally:
                g.kill()
            res = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
            assert res.get("received") == frames and res.get("bad") == 0, \
                f"sender: {r.stdout.strip()} {r.stderr.strip()[-500:]}; console:\n{g.tail()}"
            assert rc == 0, f"l2echo exit status {rc}; console:\n{g.tail()}"
            counts = shard_counts(g.console)
            print(f"  {res} per shard {counts}")
            assert sum(counts.values()) == frames, f"per-shard counts {counts} do not add up to {frames}"
            if expect:
                assert re.search(expect, g.console, re.M), f"console lacks {expect!r}:\n{g.tail()}"
            if smp > 1:
                busy = [s for s, n in counts.items() if n > 0]
                assert len(busy) > 1, f"only shards {busy} reflected frames: {counts}"
    return run

def gso_case(machine):
    """A 30 KB TCP segment as one GSO packet: mergeable receive buffers, TSO both ways, checksum offload."""
    def run():
        with NetNS() as ns:
            g = Guest(ns, image("l2echo"), machine=machine)
            try:
                assert g.wait_for("l2echo: ready"), f"l2echo did not come up; console:\n{g.tail()}"
                r = ns.run(sys.executable, GSO_SENDER, ns.tap, "--payload", "30000", check=False)
                ns.run(sys.executable, SENDER, ns.tap, "1", "--exit", check=False)
                g.wait(30)
            finally:
                g.kill()
            res = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
            assert res.get("ok"), f"gso sender: {r.stdout.strip()} {r.stderr.strip()[-500:]}; console:\n{g.tail()}"
            print(f"  {res}")
    return run

# A legacy (version 1) virtio-mmio device, as microvm offers by default, is driven through its legacy interface.
LEGACY_MMIO = ("--qemu-arg=-global", "--qemu-arg=virtio-mmio.force-legacy=true")
LEGACY_NET_LINE = r"virtio-mmio@0x[0-9a-f]+: virtio-net \(legacy interface\)"

def no_device():
    b = boot(image("l2echo"), smp=1, timeout=60)
    assert b.status == 1, f"exit status {b.status}, expected 1; tail:\n{b.tail()}"
    b.expect(r"^l2echo: no network device", "a clear message")

def cases():
    out = []
    for machine in ("microvm", "pc"):
        out.append((f"l2echo-{machine}-smp1", l2echo_case(machine, 1, 1, 3000)))
        out.append((f"l2echo-{machine}-smp4-mq4", l2echo_case(machine, 4, 4, 6000)))
    out.append(("l2echo-microvm-smp4-1queue-steered", l2echo_case("microvm", 4, 1, 4000, steer=True)))
    # No ACPI (as on Firecracker): devices from the command line, IOAPICs from the MP table, Multiboot entry.
    out.append(("l2echo-microvm-noacpi-smp2-mq2", l2echo_case("microvm", 2, 2, 2000, extra=(
        "--qemu-arg=-M", "--qemu-arg=microvm,acpi=off"))))
    out.append(("l2echo-no-device", no_device))
    out.append(("virtio-net-gso-roundtrip-microvm", gso_case("microvm")))
    out.append(("virtio-net-gso-roundtrip-pc", gso_case("pc")))
    out.append(("l2echo-microvm-legacy-mmio-smp2-mq2", l2echo_case("microvm", 2, 2, 2000, extra=LEGACY_MMIO,
                                                                   expect=LEGACY_NET_LINE)))
    return out
