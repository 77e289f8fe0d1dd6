"""apps/memcached against real clients and against stock memcached itself.

The image boots under QEMU with a tap device in a test-made namespace; the Linux build of the same
source runs on loopback. Both are judged by (1) a scripted conversation whose every reply must equal
stock memcached's (mc_check.py diff, with memcached 1.6 running beside it), (2) libmemcached's
memccapable in ascii and binary mode, (3) UDP, bad input and multi-shard checks (mc_check.py)."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time

from netns import Guest, NetNS
from shoal_qemu import BUILD, ROOT, image

HERE = os.path.dirname(os.path.abspath(__file__))
CHECK = os.path.join(HERE, "mc_check.py")
GUEST_IP, HOST_IP = "10.0.2.15", "10.0.2.1"
PORT = 11211
REF_PORT = 21211


def result(r):
    lines = r.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1]) if lines else {"stderr": r.stderr[-800:]}
    except ValueError:
        return {"stdout": r.stdout[-800:], "stderr": r.stderr[-800:]}


def check(runner, *args, timeout=300):
    r = runner(sys.executable, CHECK, *args, timeout=timeout)
    res = result(r)
    assert r.returncode == 0, f"mc_check {args[0]}: {json.dumps(res)[:3000]}"
    print(f"  {args[0]}: {json.dumps(res)[:300]}")


def memccapable(runner, host, port, mode):
    """libmemcached's own conformance test, ascii (-a) or binary (-b); every test must pass."""
    r = runner("memccapable", "-h", host, "-p", str(port), "-t", "10", mode, timeout=300)
    out = r.stdout + r.stderr
    failed = [line for line in out.splitlines() if "[FAIL]" in line]
    passed = sum("[pass]" in line for line in out.splitlines())
    assert r.returncode == 0 and not failed and passed > 0, f"memccapable {mode}: {failed or out[-2000:]}"
    print(f"  memccapable {mode}: {passed} passed")


def reference_memcached(prefix=()):
    """Stock memcached on loopback, the judge of mc_check.py diff."""
    p = subprocess.Popen([*prefix, "memcached", "-p", str(REF_PORT), "-U", "0", "-l", "127.0.0.1", "-u", "root"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return p


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def image_suite(smp, queues, args, checks):
    def run():
        with NetNS(queues=queues, addr=f"{HOST_IP}/24") as ns:
            ns.run("ip", "link", "set", "lo", "up")
            ref = reference_memcached(["ip", "netns", "exec", ns.name])
            g = None
            try:
                g = Guest(ns, image("memcached"), smp=smp, cmdline=f"ip={GUEST_IP}/24 gw={HOST_IP} -- {args}",
                          timeout=900)
                assert g.wait_for("memcached: ready", 120), f"memcached did not come up:\n{g.tail()}"
                runner = lambda *cmd, timeout: ns.run(*cmd, check=False, timeout=timeout)
                for c in checks:
                    c(runner)
                g.reader.join(0.1)
                assert "panic" not in g.console.lower(), g.tail()
            except AssertionError as e:
                raise AssertionError(f"{e}\nconsole:\n{g.tail()}") from None
            finally:
                if g:
                    g.kill()
                stop(ref)
    return run


def linux_build():
    build = os.path.join(BUILD, "linux", "memcached")
    subprocess.run(["make", "-s", "-C", ROOT, "linux", "APP=memcached", f"BUILD={BUILD}"], check=True)
    return build


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def linux_suite(shards, checks):
    def run():
        exe = linux_build()
        port = free_port()
        env = dict(os.environ, SHOAL_SHARDS=str(shards))
        srv = subprocess.Popen([exe, "-p", str(port), "-U", str(port)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
        ref = None
        try:
            ref = reference_memcached()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            runner = lambda *cmd, timeout: subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            for c in checks(port):
                c(runner)
            assert srv.poll() is None, f"the Linux build exited: {srv.stdout.read().decode()[-2000:]}"
        finally:
            stop(srv)
            if ref:
                stop(ref)
    return run


def diff(host, port):
    return lambda run: check(run, "diff", host, str(port), "127.0.0.1", str(REF_PORT), timeout=400)


def cases():
    have_tools = shutil.which("memccapable") and shutil.which("memcached")
    if not have_tools:
        return [("memcached-tools-missing", lambda: (_ for _ in ()).throw(AssertionError(
            "memcached and libmemcached-tools are needed: scripts/install-deps.sh")))]
    g = GUEST_IP
    return [
        ("memcached-linux-build-vs-memcached-4-threads", linux_suite(4, lambda p: [
            diff("127.0.0.1", p),
            lambda run: memccapable(run, "127.0.0.1", p, "-a"),
            lambda run: memccapable(run, "127.0.0.1", p, "-b"),
            lambda run: check(run, "udp", "127.0.0.1", str(p)),
            lambda run: check(run, "spread", "127.0.0.1", str(p), "4"),
            lambda run: check(run, "abuse", "127.0.0.1", str(p)),
        ])),
        ("memcached-image-smp1-vs-memcached", image_suite(1, 1, f"-U {PORT}", [
            diff(g, PORT),
            lambda run: memccapable(run, g, PORT, "-a"),
            lambda run: memccapable(run, g, PORT, "-b"),
            lambda run: check(run, "udp", g, str(PORT)),
            lambda run: check(run, "abuse", g, str(PORT), timeout=600),
        ])),
        ("memcached-image-smp4-shards", image_suite(4, 4, f"-U {PORT}", [
            lambda run: check(run, "spread", g, str(PORT), "4"),
            diff(g, PORT),
            lambda run: memccapable(run, g, PORT, "-b"),
            lambda run: check(run, "udp", g, str(PORT)),
        ])),
    ]
