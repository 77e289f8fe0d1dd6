"""Boot storms: many boots, each checked from its first moment on every shard.

A boot passes when, as soon as the app says it is ready, a TCP request on a
flow owned by every shard is answered and a ping is answered, each tried
once. While the image boots, UDP datagrams on 32 flows keep arriving (a
static ARP entry lets them in before the guest answers ARP): that is what
exposes a queue the device delivers to before the driver has given it
buffers. Used by test_boot_storm.py (in make test) and by `make soak`.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

from netns import ROOT_PREFIX, Guest, NetNS
from shoal_qemu import image

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT = os.path.join(HERE, "storm_client.py")
CHATTER = os.path.join(HERE, "udp_chatter.py")
GUEST_IP = "10.0.2.15"
GUEST_MAC = "52:54:00:5e:00:15"
QBOOT = "/usr/share/qemu/qboot.rom"

# name -> (machine, extra run.py arguments)
CONFIGS = {
    "microvm": ("microvm", ()),
    "microvm-noacpi": ("microvm", ("--qemu-arg=-M", "--qemu-arg=microvm,acpi=off")),
    "pc-seabios": ("pc", ()),
    "pc-qboot": ("pc", ("--bios", QBOOT)),
    "q35": ("q35", ()),
    "q35-qboot": ("q35", ("--qemu-arg=-bios", f"--qemu-arg={QBOOT}")),
}

APPS = {
    "memcached": ("memcached", "memcached: ready", 11211, f"ip={GUEST_IP}/24 --"),
    "echo": ("echo", "echo: ready", 7, f"ip={GUEST_IP}/24"),
}

def storm_boot(config, smp, app="memcached", per_shard=2, chatter=True):
    """One boot; returns None when every shard and ping answered, else what went wrong."""
    machine, extra = CONFIGS[config]
    app_name, ready, port, cmdline = APPS[app]
    with NetNS(queues=smp, addr="10.0.2.1/24", mac=GUEST_MAC) as ns, tempfile.TemporaryDirectory() as tmp:
        ns.run("ip", "neigh", "replace", GUEST_IP, "lladdr", GUEST_MAC, "dev", ns.tap)
        stop = os.path.join(tmp, "stop")
        noise = None
        if chatter:
            noise = subprocess.Popen(ROOT_PREFIX + ["ip", "netns", "exec", ns.name, sys.executable, CHATTER, GUEST_IP,
                                                    stop, "--max-seconds", "150"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        g = Guest(ns, image(app_name), smp=smp, machine=machine, cmdline=cmdline, timeout=150, extra=extra)
        try:
            if not g.wait_for(ready, timeout=120):
                return f"no '{ready}' line; console:\n{g.tail()}"
            open(stop, "w").close()
            r = ns.run(sys.executable, CLIENT, GUEST_IP, str(port), str(smp), app, "--per-shard", str(per_shard),
                       check=False, timeout=120)
            try:
                res = json.loads(r.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                return f"client said {r.stdout!r} {r.stderr[-500:]!r}"
            if not res["ok"]:
                return "; ".join(res["misses"]) + f"; console:\n{g.tail(12)}"
            if "PANIC" in g.console or "panic" in g.console:
                return f"guest panicked; console:\n{g.tail()}"
            return None
        finally:
            open(stop, "w").close()
            g.kill()
            if noise:
                try:
                    noise.wait(10)
                except subprocess.TimeoutExpired:
                    noise.kill()
                    noise.wait()

def storm(plan, log=print):
    """plan: [(config, smp, app)], each booted once in order. Returns (boots, [failure lines])."""
    failures = []
    for i, (config, smp, app) in enumerate(plan):
        t0 = time.monotonic()
        err = storm_boot(config, smp, app)
        log(f"  boot {i + 1}/{len(plan)} {config} smp{smp} {app}: {'ok' if not err else 'FAILED'} "
            f"({time.monotonic() - t0:.1f}s)")
        if err:
            failures.append(f"boot {i + 1} ({config}, {smp} vCPUs, {app}): {err}")
    return len(plan), failures

def default_plan(rounds, apps=("memcached",), configs=tuple(CONFIGS), smps=(2, 4)):
    """Every configuration at each vCPU count, `rounds` times over; the apps take turns by round."""
    one = [(c, smp) for smp in smps for c in configs]
    return [(c, smp, apps[r % len(apps)]) for r in range(rounds) for c, smp in one]
