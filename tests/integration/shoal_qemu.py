"""Helpers for integration tests: boot an image through scripts/run.py and look at its console."""
import os
import re
import signal
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
    # Not subprocess.run: on its timeout (or Ctrl-C) it SIGKILLs run.py alone, and QEMU, in a session
    # of its own, is left to PR_SET_PDEATHSIG. stop() takes run.py and everything under it down.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        out, err = proc.communicate(timeout=timeout + 30)
    except BaseException:
        stop(proc)
        raise
    console = out.decode(errors="replace").replace("\r", "")
    return Boot(proc.returncode, console + err.decode(errors="replace"))

def _start_time(pid):
    """The process's start time (field 22 of /proc/PID/stat), to tell it from a later one with its pid."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None

def descendants(pid):
    """[(pid, start time)] of every process under pid (children of any of its threads, recursively)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tids:
            try:
                with open(f"/proc/{p}/task/{t}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            for k in kids:
                st = _start_time(k)
                if st is not None and (k, st) not in out:
                    out.append((k, st))
                    todo.append(k)
    return out

def _kill_left(tree):
    """SIGKILL those of tree that still run (the same processes: same pid and start time)."""
    left = [pid for pid, st in tree if _start_time(pid) == st]
    denied = []
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        except PermissionError:          # under sudo: root's processes
            denied.append(str(pid))
    if denied:
        subprocess.run(["sudo", "-n", "kill", "-9", *denied], capture_output=True)

def stop(proc, grace=5):
    """Stops a run.py started with Popen (directly or under sudo / ip netns exec) and everything under
    it, QEMU included: SIGTERM first (run.py kills QEMU's process group and exits), SIGKILL after grace
    seconds, then SIGKILL to any process that was under it and still runs."""
    if proc.poll() is not None:
        return
    tree = descendants(proc.pid)
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        tree += [t for t in descendants(proc.pid) if t not in tree]
        proc.kill()
        proc.wait()
    _kill_left(tree)

def build_variant(app, out_name, cmdline):
    out = os.path.join(BUILD, out_name)
    subprocess.run(["make", "-s", "-C", ROOT, f"APP={app}", f"BUILD={BUILD}"], check=True, capture_output=True)
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "build-image.py"), "--app", app,
                    "--build-dir", BUILD, "--cmdline", cmdline, "-o", out], check=True, cwd=ROOT,
                   capture_output=True)
    return out
