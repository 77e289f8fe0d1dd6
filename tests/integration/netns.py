"""A network namespace with one tap device, made by a test and removed after it.

Guests are booted inside the namespace (QEMU opens the tap there) and peers
run there too, so no test traffic ever leaves the namespace.
"""
import itertools
import os
import re
import subprocess
import sys
import threading
import time

from shoal_qemu import RUN, stop

_serial = itertools.count()
# Namespaces and taps need root; elsewhere (a developer's login) sudo must work without a password.
ROOT_PREFIX = [] if os.geteuid() == 0 else ["sudo", "-n"]

def sh(*args, check=True):
    return subprocess.run(ROOT_PREFIX + list(args), check=check, capture_output=True, text=True)

class NetNS:
    def __init__(self, queues=1, addr=None, mac=None):
        self.name = f"shoal-{os.getpid()}-{next(_serial)}"
        self.tap = "tap0"
        self.queues = queues
        self.addr = addr
        self.mac = mac          # the guest's MAC, when a test needs to know it in advance

    def __enter__(self):
        sh("ip", "netns", "add", self.name)
        try:
            mode = ["multi_queue"] if self.queues > 1 else []
            self.run("ip", "tuntap", "add", "dev", self.tap, "mode", "tap", *mode)
            self.run("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            self.run("sysctl", "-qw", f"net.ipv6.conf.{self.tap}.disable_ipv6=1")
            self.run("ip", "link", "set", "lo", "up")
            if self.addr:
                self.run("ip", "addr", "add", self.addr, "dev", self.tap)
            self.run("ip", "link", "set", self.tap, "up")
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        self.kill_all()
        sh("ip", "netns", "delete", self.name, check=False)

    def pids(self):
        return sh("ip", "netns", "pids", self.name, check=False).stdout.split()

    def kill_all(self, timeout=10):
        """SIGKILL every process still in the namespace (a guest's run.py and QEMU, peers, load
        generators), until none is left: deleting the namespace alone would leave them running,
        QEMU holding the tap."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.pids()
            if not pids:
                return
            if time.monotonic() > deadline:
                sys.stderr.write(f"netns: processes left in {self.name} after SIGKILL: {' '.join(pids)}\n")
                return
            sh("kill", "-9", *pids, check=False)
            time.sleep(0.05)

    def run(self, *args, check=True, timeout=120):
        return subprocess.run(ROOT_PREFIX + ["ip", "netns", "exec", self.name, *args], check=check, capture_output=True,
                              text=True, timeout=timeout)

    def echo_stats(self, ip, port):
        """apps/echo's counters (its -s PORT): one UDP question, a dict of name -> value."""
        code = ("import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(3); "
                f"s.sendto(b'?',('{ip}',{port})); sys.stdout.write(s.recvfrom(4096)[0].decode())")
        r = self.run(sys.executable, "-c", code, check=False)
        assert r.returncode == 0, f"no answer from the stats port: {r.stderr[-300:]}"
        return {k: int(v) for k, v in re.findall(r"^(\w+) (\d+)$", r.stdout, re.M)}

    def net_arg(self):
        return (f"tap:{self.tap}" + (f",queues={self.queues}" if self.queues > 1 else "") +
                (f",mac={self.mac}" if self.mac else ""))

class Guest:
    """An image booted in the background inside a namespace; its console is collected as it comes."""
    def __init__(self, ns, img, smp=1, machine="microvm", mem=256, cmdline=None, timeout=120, extra=(), argv=None):
        """Booted through run.py, or, with argv, by that command as it is (plain QEMU, say)."""
        if argv is None:
            argv = [sys.executable, RUN, img, "--smp", str(smp), "--machine", machine, "--mem", str(mem),
                    "--timeout", str(timeout), "--net", ns.net_arg(), *extra]
            if cmdline is not None:
                argv += ["--"] + cmdline.split()
        cmd = ROOT_PREFIX + ["ip", "netns", "exec", ns.name, *argv]
        self.timeout = timeout
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.out = bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for chunk in iter(lambda: self.proc.stdout.read1(4096), b""):
            self.out += chunk

    @property
    def console(self):
        return self.out.decode(errors="replace").replace("\r", "")

    def wait_for(self, text, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.console:
                return True
            if self.proc.poll() is not None:
                self.reader.join(5)
                return text in self.console
            time.sleep(0.05)
        return False

    def wait(self, timeout=60):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = None
        self.reader.join(5)
        return rc

    def kill(self):
        """SIGTERM lets run.py take QEMU down with it; SIGKILL if it does not go, and then to whatever
        was under it (sudo, run.py, QEMU) and still runs (shoal_qemu.stop)."""
        stop(self.proc)
        self.reader.join(5)

    def tail(self, n=25):
        return "\n".join(self.console.splitlines()[-n:])
