#!/usr/bin/env python3
"""Run every Shoal test and print a final "N passed, N failed" line.

    run_tests.py [--unit-only] [--integration-only] [-k SUBSTRING]

Unit tests: each tests/unit/test_*.c is built for the host with ASan and
UBSan and run; every TEST() in it counts as one test. Fuzz targets: each
tests/fuzz/fuzz_*.c is built with clang's libFuzzer and run over a bounded
number of generated inputs; a crash fails it. Integration tests:
the cases in tests/integration/*.py, each booting real images under QEMU.
"""
import argparse
import glob
import importlib.util
import os
import re
import subprocess
import shutil
import signal
import sys
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build", "tests")
UNIT_CFLAGS = ["-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror",
               "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-I", ROOT]

class Results:
    def __init__(self):
        self.passed = 0
        self.failed = []
        self.skipped = []

    def record(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"PASS {name}", flush=True)
        else:
            self.failed.append(name)
            print(f"FAIL {name}{': ' + detail if detail else ''}", flush=True)

UNIT_TIMEOUT = 600   # a bound on one binary, not a pass/fail threshold
FUZZ_TIMEOUT = 300

def run_bounded(cmd, timeout):
    """(CompletedProcess, None), or (None, why) when the program is missing or overran `timeout`.
    Either way the run goes on: a broken suite is one FAIL line, never a lost summary."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout), None
    except FileNotFoundError:
        return None, f"missing tool {cmd[0]}"
    except subprocess.TimeoutExpired:
        return None, f"timeout after {timeout} s"

def record_unit_results(results, name, r):
    """Each declared test's PASS/FAIL line; a declared test with no result line (the binary died
    before reaching it) and a non-zero exit with no FAIL line are failures too."""
    declared = re.findall(r"^DECLARE (\S+)$", r.stdout, re.M)
    reported = {}
    for verdict, test in re.findall(r"^(PASS|FAIL) (\S+)$", r.stdout, re.M):
        reported[test] = verdict
        results.record(f"unit/{name}/{test}", verdict == "PASS")
    if r.returncode != 0:
        sys.stdout.write(r.stderr[-4000:])
    for test in declared:
        if test not in reported:
            results.record(f"unit/{name}/{test}", False, f"no result: the binary exited with status {r.returncode}")
    if not declared:
        results.record(f"unit/{name}", False, f"declared no tests (exit status {r.returncode})")
    elif r.returncode != 0 and "FAIL" not in reported.values() and len(reported) == len(declared):
        results.record(f"unit/{name}", False, f"exit status {r.returncode} with every test passed")

def run_unit(results, keyword):
    os.makedirs(BUILD, exist_ok=True)
    for src in sorted(glob.glob(os.path.join(ROOT, "tests", "unit", "test_*.c"))):
        name = os.path.splitext(os.path.basename(src))[0]
        if keyword and keyword not in name:
            continue
        exe = os.path.join(BUILD, name)
        cc, why = run_bounded(["gcc"] + UNIT_CFLAGS + [src, "-o", exe, "-lpthread"], UNIT_TIMEOUT)
        if why or cc.returncode != 0:
            results.record(f"unit/{name} (build)", False, why or cc.stderr[-2000:])
            continue
        r, why = run_bounded([exe], UNIT_TIMEOUT)
        if why:
            results.record(f"unit/{name}", False, why)
            continue
        record_unit_results(results, name, r)

FUZZ_RUNS = "200000"
FUZZ_MAX_SECONDS = "15"   # a bound on the run, not a pass/fail threshold

def run_fuzz(results, keyword):
    """Each tests/fuzz/fuzz_*.c is a libFuzzer target, run for a bounded number of inputs."""
    os.makedirs(BUILD, exist_ok=True)
    for src in sorted(glob.glob(os.path.join(ROOT, "tests", "fuzz", "fuzz_*.c"))):
        name = os.path.splitext(os.path.basename(src))[0]
        if keyword and keyword not in name:
            continue
        exe = os.path.join(BUILD, name)
        cc, why = run_bounded(["clang", "-g", "-O1", "-fsanitize=fuzzer,address,undefined",
                               "-fno-sanitize-recover=undefined", "-I", ROOT, src, "-o", exe], FUZZ_TIMEOUT)
        if why or cc.returncode != 0:
            results.record(f"fuzz/{name} (build)", False, why or cc.stderr[-2000:])
            continue
        crash_dir = os.path.join(BUILD, "fuzz-crashes")
        os.makedirs(crash_dir, exist_ok=True)
        r, why = run_bounded([exe, f"-runs={FUZZ_RUNS}", f"-max_total_time={FUZZ_MAX_SECONDS}", "-seed=1",
                              f"-artifact_prefix={crash_dir}/"], FUZZ_TIMEOUT)
        if why:
            results.record(f"fuzz/{name}", False, why)
            continue
        detail = "" if r.returncode == 0 else r.stderr[-3000:]
        results.record(f"fuzz/{name}", r.returncode == 0, detail)

# Every program the integration tests run, and the Debian package that brings it (scripts/install-deps.sh
# installs them all). A missing one fails the run up front, by name, instead of as odd failures later.
REQUIRED_TOOLS = {
    "qemu-system-x86_64": "qemu-system-x86", "ip": "iproute2", "ping": "iputils-ping", "sysctl": "procps",
    "iptables": "iptables", "nft": "nftables", "dnsmasq": "dnsmasq-base", "memcached": "memcached",
    "memcaslap": "libmemcached-tools", "memccapable": "libmemcached-tools", "memcstat": "libmemcached-tools",
    "taskset": "util-linux", "gcc": "build-essential", "clang": "clang", "make": "make",
}
REQUIRED_FILES = {"/usr/share/qemu/qboot.rom": "qemu-system-data"}
REQUIRED_PY = {"pymemcache": "python3-pymemcache", "matplotlib": "python3-matplotlib"}

def check_tools(results):
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [f"{t} ({pkg})" for t, pkg in REQUIRED_TOOLS.items() if not shutil.which(t, path=path)]
    missing += [f"{f} ({pkg})" for f, pkg in REQUIRED_FILES.items() if not os.path.exists(f)]
    missing += [f"python module {m} ({pkg})" for m, pkg in REQUIRED_PY.items()
                if importlib.util.find_spec(m) is None]
    results.record("integration/required-tools", not missing,
                   "missing " + ", ".join(missing) + "; run scripts/install-deps.sh" if missing else "")

def load_integration_cases(results):
    """Every module's cases; a module that cannot be imported, or whose cases() fails, is one FAIL."""
    cases = []
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "integration", "test_*.py"))):
        name = os.path.basename(path)[:-3]
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            cases += mod.cases()
        except Exception as e:  # SyntaxError, ImportError, a bug in cases(): the other modules still run
            results.record(f"integration/{name} (import error)", False, f"{type(e).__name__}: {e}")
    return cases

def run_integration(results, keyword):
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    for name, fn in load_integration_cases(results):
        if keyword and keyword not in name:
            continue
        t0 = time.monotonic()
        try:
            fn()
            ok, detail = True, ""
        except unittest.SkipTest as e:  # the machine lacks what the case needs: say so, count neither way
            results.skipped.append(f"{name} ({e})")
            print(f"SKIP integration/{name}: {e}", flush=True)
            continue
        except AssertionError as e:
            ok, detail = False, str(e)
        except Exception as e:  # a broken harness is a failure too, with its reason
            ok, detail = False, f"{type(e).__name__}: {e}"
        results.record(f"integration/{name} ({time.monotonic() - t0:.1f}s)", ok, detail)

def main():
    # SIGTERM unwinds like an exception, so every namespace and guest a case made is taken down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser()
    ap.add_argument("--unit-only", action="store_true")
    ap.add_argument("--integration-only", action="store_true")
    ap.add_argument("-k", dest="keyword")
    args = ap.parse_args()
    results = Results()
    if not args.integration_only:
        run_unit(results, args.keyword)
        run_fuzz(results, args.keyword)
    if not args.unit_only:
        check_tools(results)
        run_integration(results, args.keyword)
    if results.failed:
        print("\nfailed:\n  " + "\n  ".join(results.failed))
    if results.skipped:
        print("\nskipped:\n  " + "\n  ".join(results.skipped))
    print(f"{results.passed} passed, {len(results.failed)} failed, {len(results.skipped)} skipped")
    return 1 if results.failed or results.passed == 0 else 0

if __name__ == "__main__":
    sys.exit(main())
