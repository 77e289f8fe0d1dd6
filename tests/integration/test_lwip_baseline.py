"""The lwIP baseline image: apps/memcached, unchanged, over lwIP 2.1.3 (runtime/lwip/) instead of our stack.

lwIP's sources come from Debian's source package (scripts/fetch-lwip.sh, which enables deb-src and
runs apt-get source); when that fails (no network, no deb-src access) the case fails with the reason:
a baseline that cannot be built is not a baseline that passed.
The image boots in a test-made namespace with a tap; pymemcache, libmemcached's memccapable (ascii
and binary) and mc_check.py's UDP check talk to it, and the console must show that lwIP, not our stack, is up."""
import contextlib
import os
import shutil
import subprocess
import sys

from netns import Guest, NetNS
from shoal_qemu import BUILD, ROOT

HERE = os.path.dirname(os.path.abspath(__file__))
GUEST_IP, HOST_IP, PORT = "10.0.2.15", "10.0.2.1", 11211
LWIP_DIR = os.path.join(ROOT, "build", "lwip-src")
# Debian's python3-pymemcache lives with the system interpreter (scripts/install-deps.sh).
SYSTEM_PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def fetch_and_build(app="memcached"):
    """The image, fetching lwIP first if needed."""
    if not os.path.exists(os.path.join(LWIP_DIR, "src", "core", "tcp.c")):
        r = subprocess.run([os.path.join(ROOT, "scripts", "fetch-lwip.sh"), LWIP_DIR], capture_output=True,
                           stdin=subprocess.DEVNULL,
                           text=True, timeout=600)
        assert r.returncode == 0, f"apt-get source lwip failed (no deb-src access?): {(r.stdout + r.stderr)[-800:]}"
    r = subprocess.run(["make", "-s", "-C", ROOT, f"APP={app}", "NETSTACK=lwip", f"BUILD={BUILD}",
                        f"LWIP_DIR={LWIP_DIR}"], capture_output=True, text=True)
    assert r.returncode == 0, f"make APP={app} NETSTACK=lwip failed:\n{(r.stdout + r.stderr)[-3000:]}"
    return os.path.join(BUILD, f"{app}-lwip.elf")


# A client that sends everything (and its FIN) before reading: apps/echo pauses taking data, so lwIP's
# window closes and the FIN arrives while data is held; resume must hand over every byte, then the FIN,
# and echo's close must end the connection (EOF) -- the pause/resume, FIN and close paths of lwip_tcp.c.
SLOW_READER = r'''
import contextlib
import hashlib, os, socket, sys, threading
host, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for n in (1, 1000, size):
    data = os.urandom(n)
    s = socket.create_connection((host, port), timeout=30)
    def send():
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    t = threading.Thread(target=send, daemon=True)
    t.start()
    if n == size:
        t.join(1.0)
        assert t.is_alive(), "the sender was never held back"
    back = bytearray()
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        back += d
    t.join(30)
    s.close()
    assert hashlib.sha256(back).digest() == hashlib.sha256(data).digest(), f"{n}: {len(back)} bytes back"
print("slow reader ok")
'''

ECHO_PORT = 7


@contextlib.contextmanager
def checked_session(g):
    """Runs the checks against guest g: no panic on its console afterwards, its console's tail on any
    failed assertion, and the guest gone at the end."""
    try:
        yield
        g.reader.join(0.1)
        assert "panic" not in g.console.lower(), "panic"
    except AssertionError as e:
        raise AssertionError(f"{e}\nconsole:\n{g.tail()}") from None
    finally:
        g.kill()


def echo_suite():
    img = fetch_and_build("echo")
    with NetNS(queues=1, addr=f"{HOST_IP}/24") as ns:
        g = Guest(ns, img, smp=1, cmdline=f"ip={GUEST_IP}/24 gw={HOST_IP} -- -p {ECHO_PORT}", timeout=120)
        with checked_session(g):
            assert g.wait_for("echo: ready, TCP and UDP port", 60), "echo did not come up"
            r = ns.run(SYSTEM_PY, "-c", SLOW_READER, GUEST_IP, str(ECHO_PORT), str(8 << 20), check=False, timeout=120)
            assert r.returncode == 0 and "slow reader ok" in r.stdout, f"slow reader: {r.stdout[-1500:]}{r.stderr[-1500:]}"
            r = ns.run(SYSTEM_PY, os.path.join(HERE, "tcp_client.py"), "echo-many", GUEST_IP, str(ECHO_PORT),
                       "--conns", "200", "--bytes", "3000", "--timeout", "60", check=False, timeout=120)
            assert r.returncode == 0, f"echo-many: {r.stdout[-1500:]}{r.stderr[-1500:]}"
            print("  slow reader (pause/resume, FIN while paused) and 200 connections echoed over lwIP")


def pymemcache_roundtrip(ns):
    script = ("from pymemcache.client.base import Client\n"
              f"c = Client(('{GUEST_IP}', {PORT}), connect_timeout=5, timeout=5)\n"
              "c.set('lwip', b'baseline')\n"
              "assert c.get('lwip') == b'baseline', c.get('lwip')\n"
              "c.set_many({'k%d' % i: b'v' * i for i in range(1, 200)})\n"
              "got = c.get_many(['k%d' % i for i in range(1, 200)])\n"
              "assert all(got['k%d' % i] == b'v' * i for i in range(1, 200))\n"
              "big = b'x' * 500000\n"
              "c.set('big', big)\n"
              "assert c.get('big') == big\n"
              "print('pymemcache ok')\n")
    r = ns.run(SYSTEM_PY, "-c", script, check=False, timeout=60)
    assert r.returncode == 0 and "pymemcache ok" in r.stdout, f"pymemcache: {r.stdout[-1500:]}{r.stderr[-1500:]}"


def memccapable(ns, mode):
    """libmemcached's conformance test, ascii (-a) or binary (-b): every test must pass."""
    r = ns.run("memccapable", "-h", GUEST_IP, "-p", str(PORT), "-t", "10", mode, check=False, timeout=120)
    lines = (r.stdout + r.stderr).splitlines()
    failed = [line for line in lines if "[FAIL]" in line]
    passed = sum("[pass]" in line for line in lines)
    assert r.returncode == 0 and not failed and passed > 0, f"memccapable {mode}: {failed or lines[-30:]}"
    print(f"  memccapable {mode}: {passed} passed")


def udp_check(ns):
    r = ns.run(SYSTEM_PY, os.path.join(HERE, "mc_check.py"), "udp", GUEST_IP, str(PORT), check=False,
               timeout=120)
    assert r.returncode == 0, f"mc_check udp: {r.stdout[-1500:]}{r.stderr[-1500:]}"


def boot_checked(ns, img, smp):
    g = Guest(ns, img, smp=smp, cmdline=f"ip={GUEST_IP}/24 gw={HOST_IP} -- -U {PORT}", timeout=120)
    try:
        assert g.wait_for("memcached: ready", 60), f"memcached did not come up\nconsole:\n{g.tail()}"
        assert "lwip: lwIP 2.1.3 on shard 0" in g.console, f"lwIP did not start\nconsole:\n{g.tail()}"
        assert "net: 10.0.2.15" not in g.console, f"our stack started too\nconsole:\n{g.tail()}"
    except BaseException:
        g.kill()
        raise
    return g


def suite(smp, checks):
    def run():
        img = fetch_and_build()
        with NetNS(queues=smp, addr=f"{HOST_IP}/24") as ns:
            g = boot_checked(ns, img, smp)
            with checked_session(g):
                r = ns.run("ping", "-c", "1", "-W", "2", GUEST_IP, check=False)
                assert r.returncode == 0, f"lwIP does not answer ping: {r.stdout}"
                for c in checks:
                    c(ns)
    return run


def cases():
    if not (shutil.which("memccapable") and shutil.which("apt-get")):
        return [("lwip-baseline-tools-missing", lambda: (_ for _ in ()).throw(AssertionError(
            "memccapable (libmemcached-tools) and apt-get are needed: scripts/install-deps.sh")))]
    return [
        ("memcached-on-lwip-smp1", suite(1, [pymemcache_roundtrip, lambda ns: memccapable(ns, "-a"),
                                             lambda ns: memccapable(ns, "-b"), udp_check])),
        # Two queues: frames reaching shard 1's queue travel to lwIP on shard 0; keys live on both shards.
        ("memcached-on-lwip-smp2", suite(2, [pymemcache_roundtrip, udp_check])),
        ("echo-on-lwip-pause-resume-fin", echo_suite),
    ]
