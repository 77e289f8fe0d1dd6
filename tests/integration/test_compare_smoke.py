"""Smoke test of the comparison harness (tests/bench/compare.py, `make bench`): one short round at 1 vCPU
(`--runs 1 --seconds 1 --vcpus 1 --smoke`), so that the harness cannot rot silently. Passes when every
row (Shoal memcached, Shoal memcached on lwIP, stock memcached on Linux, apps/memcached on Linux) got
numbers and the chart was drawn. --smoke writes the markdown and the PNG into a temporary directory:
docs/ is never touched here.

The lwIP row needs build/memcached-lwip.elf (`make APP=memcached NETSTACK=lwip`, which fetches lwIP's
sources); when it cannot be built, for whatever reason, the test fails with compare.py's reason. Needs root, memcached and libmemcached-tools (memcaslap), and
python3-matplotlib. About 1 minute (longer when the Linux guest must be rebuilt)."""
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


def cases():
    return [("compare-smoke", smoke)]
