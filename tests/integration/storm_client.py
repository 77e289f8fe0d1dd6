#!/usr/bin/env python3
"""Run inside a test's namespace: one TCP request on a flow to every shard, and one ping.

    storm_client.py GUEST_IP PORT NSHARDS PROTO [--per-shard N] [--timeout S]

PROTO is memcached (sends "version", expects "VERSION ...") or echo (expects
its bytes back). Each connection is tried once: a shard that does not answer
is a failure, never retried here (Linux's own SYN retransmissions still
happen within --timeout). Prints one JSON line: {"ok": bool, "misses": [...]}.
"""
import argparse
import json
import socket
import subprocess
import sys

from flows import ports_per_shard

def request(proto):
    return (b"version\r\n", b"VERSION ") if proto == "memcached" else (b"storm\n", b"storm\n")

def one(guest, port, sport, proto, timeout):
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
        return None if got.startswith(want) else f"reply {got[:40]!r}"
    except OSError as e:
        return f"{type(e).__name__}: {e}"
    finally:
        s.close()

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
    for shard, sports in ports_per_shard(src, a.guest, a.port, a.nshards, a.per_shard, a.first_port).items():
        for sport in sports:
            err = one(a.guest, a.port, sport, a.proto, a.timeout)
            if err:
                misses.append(f"shard {shard} (source port {sport}): {err}")
    ping = subprocess.run(["ping", "-c", "1", "-W", str(int(a.timeout)), a.guest], capture_output=True, text=True)
    if ping.returncode != 0:
        misses.append(f"ping: no reply ({ping.stdout.strip().splitlines()[-1] if ping.stdout.strip() else ping.stderr.strip()})")
    print(json.dumps({"ok": not misses, "misses": misses}))
    return 0 if not misses else 1

if __name__ == "__main__":
    sys.exit(main())
