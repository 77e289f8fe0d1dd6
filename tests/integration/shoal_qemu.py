"""Helpers for integration tests: boot an image through scripts/run.py and look at its console."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# SHOAL_BUILD lets parallel work use its own build folder.
BUILD = os.environ.get("SHOAL_BUILD", os.path.join(ROOT, "build"))
RUN = os.path.join(ROOT, "scripts", "run.py")

class Boot:
    def __init__(self, status, console):
        self.status = status
        self.console = console

    def expect(self, pattern, what=None):
        if not re.search(pattern, self.console, re.M):
            raise AssertionError(f"console lacks {what or pattern!r}; console tail:\n{self.tail()}")

    def tail(self, n=25):
        return "\n".join(self.console.splitlines()[-n:])

def image(app):
    path = os.path.join(BUILD, f"{app}.elf")
    if not os.path.exists(path):
        subprocess.run(["make", "-s", "-C", ROOT, f"APP={app}", f"BUILD={BUILD}"], check=True)
    return path

def boot(img, smp=1, machine="microvm", mem=256, cmdline=None, timeout=180, extra=()):
    cmd = [sys.executable, RUN, img, "--smp", str(smp), "--machine", machine, "--mem", str(mem),
           "--timeout", str(timeout)] + list(extra)
    if cmdline is not None:
        cmd += ["--"] + cmdline.split()
    r = subprocess.run(cmd, capture_output=True, timeout=timeout + 30)
    console = r.stdout.decode(errors="replace").replace("\r", "")
    return Boot(r.returncode, console + r.stderr.decode(errors="replace"))

def build_variant(app, out_name, cmdline):
    out = os.path.join(BUILD, out_name)
    subprocess.run(["make", "-s", "-C", ROOT, f"APP={app}", f"BUILD={BUILD}"], check=True, capture_output=True)
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "build-image.py"), "--app", app,
                    "--build-dir", BUILD, "--cmdline", cmdline, "-o", out], check=True, cwd=ROOT,
                   capture_output=True)
    return out
