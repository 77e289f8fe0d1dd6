"""Smoke test of the comparison harness (tests/bench/compare.py, `make bench`): one short round at 1 vCPU
(`--runs 1 --seconds 1 --vcpus 1 --smoke`), so that the harness cannot rot silently. Passes when every
row (Shoal memcached, Shoal memcached on lwIP, stock memcached on Linux, apps/memcached on Linux) got
numbers and the chart was drawn. --smoke writes the markdown and the PNG into a temporary directory:
docs/ is never touched here.

The lwIP row needs build/memcached-lwip.elf (`make APP=memcached NETSTACK=lwip`, which fetches lwIP's
sources); when it cannot be built, for whatever reason, the test fails with compare.py's reason.

Then a boot that fails (`--configs shoal --break shoal`: QEMU is given a device that does not exist)
must be reported and not retried: compare.py exits non-zero, the row is "failed" with QEMU's error as
its reason, the markdown marks it FAILED, and exactly one boot was tried. Needs root, memcached and
libmemcached-tools (memcaslap), and python3-matplotlib. About 1.5 minutes (longer when the Linux guest
must be rebuilt)."""
import json
import os
import shutil
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
COMPARE = os.path.join(ROOT, "tests", "bench", "compare.py")
NUMBERS = ("ops_s", "p50", "p99", "p999", "vcpu_us_req", "qemu_us_req", "boot_ms", "image", "rss_mib")


def smoke():
    missing = [t for t in ("memcaslap", "memcached") if not shutil.which(t)]
    assert not missing, f"{' and '.join(missing)} missing: scripts/install-deps.sh"
    assert os.geteuid() == 0 or subprocess.run(["sudo", "-n", "true"]).returncode == 0, \
        "needs root (network namespaces, tap devices)"
    with tempfile.TemporaryDirectory(prefix="compare-smoke-") as tmp:
        out = os.path.join(tmp, "rows.json")
        cmd = ["/usr/bin/python3", COMPARE, "--runs", "1", "--seconds", "1", "--vcpus", "1", "--smoke",
               "--out-dir", tmp, "--json", out]
        if os.geteuid() != 0:
            cmd = ["sudo", "-n"] + cmd
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0 and os.path.exists(out), \
            f"compare.py exited {r.returncode}:\n{r.stdout[-3000:]}{r.stderr[-3000:]}"
        with open(out) as f:
            res = json.load(f)
        assert len(res["rows"]) == 4, f"expected 4 rows, got {[row['config'] for row in res['rows']]}"
        bad = []
        for row in res["rows"]:
            if row["status"] != "ok":
                bad.append(f"{row['label']}: {row['status']}: {row.get('reason', '')[:800]}")
                continue
            empty = [k for k in NUMBERS if not isinstance(row.get(k), (int, float)) or row[k] <= 0]
            if empty:
                bad.append(f"{row['label']}: no number for {', '.join(empty)}")
            if row["config"] != "linux" and not row.get("ratio_ops_s"):
                bad.append(f"{row['label']}: no ratio against stock memcached on Linux")
        assert not bad, "rows without numbers:\n  " + "\n  ".join(bad)
        assert res.get("chart") and os.path.getsize(res["chart"]) > 0, f"no chart: {res.get('chart_error')}"
        with open(res["markdown"]) as f:
            md = f.read()
        assert "<!-- compare.py begin -->" in md and "<!-- compare.py end -->" in md, "markdown block lacks markers"
        assert os.path.realpath(res["markdown"]).startswith(os.path.realpath(tmp)), "--smoke wrote outside its dir"
        assert not res["failed_boots"], f"boots failed: {res['failed_boots']}"
    broken_boot()


def broken_boot():
    """One boot that cannot work: reported FAILED with its reason, not retried, and the exit status says so."""
    with tempfile.TemporaryDirectory(prefix="compare-smoke-") as tmp:
        out = os.path.join(tmp, "rows.json")
        cmd = ["/usr/bin/python3", COMPARE, "--runs", "1", "--seconds", "1", "--vcpus", "1", "--smoke",
               "--configs", "shoal", "--break", "shoal", "--out-dir", tmp, "--json", out]
        if os.geteuid() != 0:
            cmd = ["sudo", "-n"] + cmd
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        log = f"{r.stdout[-3000:]}{r.stderr[-3000:]}"
        assert r.returncode != 0, f"compare.py exited 0 with a broken boot:\n{log}"
        assert os.path.exists(out), f"compare.py wrote no JSON for the failed run ({r.returncode}):\n{log}"
        with open(out) as f:
            res = json.load(f)
        row = next(row for row in res["rows"] if row["config"] == "shoal")
        assert row["status"] == "failed" and "compare-break-no-such-device" in row.get("reason", ""), \
            f"the broken boot's row: {row}"
        assert len(res["failed_boots"]) == 1, f"expected one failed boot, got {res['failed_boots']}"
        tried = [l for l in r.stdout.splitlines() if l.strip().startswith("round 1 1 vCPU shoal ")]
        assert len(tried) == 1 and "FAILED" in tried[0] and "retry" not in r.stdout, \
            f"the boot was not tried exactly once and reported FAILED:\n{log}"
        with open(res["markdown"]) as f:
            md = f.read()
        assert "**FAILED**" in md and "This run failed" in md, "the markdown does not mark the failure"


def cases():
    return [("compare-smoke", smoke)]
