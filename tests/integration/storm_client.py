#!/usr/bin/env python3
"""Run inside a test's namespace: one TCP request on a flow to every shard, and one ping.

    storm_client.py GUEST_IP PORT NSHARDS PROTO [--per-shard N] [--timeout S]

PROTO is memcached (sends "version", expects "VERSION ...") or echo (expects
its bytes back). Each connection is tried once: a shard that does not answer
is a failure, never retried here (Linux's own SYN retransmissions still
happen within --timeout). With memcached the connections stay open while
`stats shards` is asked on one more, whose count of connections per shard
must match the shards this file's flow hash chose: the host and the image
agree on who owns a flow. Prints one JSON line: {"ok": bool, "misses": [...]}.
"""
import argparse
import json
import re
import socket
import subprocess
import sys

from flows import flow_shard, ports_per_shard

def request(proto):
    return (b"version\r\n", b"VERSION ") if proto == "memcached" else (b"storm\n", b"storm\n")

def one(guest, port, sport, proto, timeout):
    """(socket left open, None) on an answer, else (None, what went wrong)."""
    send, want = request(proto)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(timeout)
    try:
        s.bind(("0.0.0.0", sport))
        s.connect((guest, port))
        s.sendall(send)
        got = b""
        while len(got) < len(want):
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        if got.startswith(want):
            return s, None
        err = f"reply {got[:40]!r}"
    except OSError as e:
        err = f"{type(e).__name__}: {e}"
    s.close()
    return None, err

def shard_connections(guest, port, sport, timeout):
    """memcached's `stats shards`: {shard: curr_connections}, asked from source port sport."""
    with socket.create_connection((guest, port), timeout=timeout, source_address=("0.0.0.0", sport)) as s:
        s.sendall(b"stats shards\r\n")
        got = b""
        while not got.endswith(b"END\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    return {int(k): int(v) for k, v in re.findall(rb"STAT shard:(\d+):curr_connections (\d+)", got)}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("guest")
    ap.add_argument("port", type=int)
    ap.add_argument("nshards", type=int)
    ap.add_argument("proto", choices=["memcached", "echo"])
    ap.add_argument("--per-shard", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--first-port", type=int, default=40000)
    a = ap.parse_args()
    src = "10.0.2.1"
    misses = []
    held = {}
    plan = ports_per_shard(src, a.guest, a.port, a.nshards, a.per_shard, a.first_port)
    for shard, sports in plan.items():
        for sport in sports:
            sock, err = one(a.guest, a.port, sport, a.proto, a.timeout)
            if err:
                misses.append(f"shard {shard} (source port {sport}): {err}")
            else:
                held.setdefault(shard, []).append(sock)
    if a.proto == "memcached" and not misses:
        stats_port = max(p for v in plan.values() for p in v) + 1
        want = {k: len(held.get(k, [])) for k in range(a.nshards)}
        want[flow_shard(src, stats_port, a.guest, a.port, a.nshards)] += 1
        try:
            got = shard_connections(a.guest, a.port, stats_port, a.timeout)
            if got != want:
                misses.append(f"connections per shard {got}, the host's flow hash expects {want}")
        except OSError as e:
            misses.append(f"stats shards: {type(e).__name__}: {e}")
    for socks in held.values():
        for sock in socks:
            sock.close()
    ping = subprocess.run(["ping", "-c", "1", "-W", str(int(a.timeout)), a.guest], capture_output=True, text=True)
    if ping.returncode != 0:
        misses.append(f"ping: no reply ({ping.stdout.strip().splitlines()[-1] if ping.stdout.strip() else ping.stderr.strip()})")
    print(json.dumps({"ok": not misses, "misses": misses}))
    return 0 if not misses else 1

if __name__ == "__main__":
    sys.exit(main())
