#!/usr/bin/env python3
"""UDP echo client for the test namespace: many flows, every datagram checked.

    udp_client.py HOST PORT [--flows N] [--count M] [--sizes a,b] [--timeout S]

Each flow is its own socket (its own source port, so flows spread over
shards); each sends M numbered datagrams, at most a few in flight, and
every echo must equal what was sent. Lost datagrams are resent after a
quiet moment (UDP may drop), a bounded number of times. Prints one JSON
line: {"sent": .., "echoed": .., "bad": .., "missing": ..}.
"""
import argparse
import json
import select
import socket
import struct
import sys
import time

def payload(flow, seq, size):
    head = struct.pack("!II", flow, seq)
    body = bytes((flow * 31 + seq + i) & 0xFF for i in range(max(size - 8, 0)))
    return head + body

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--flows", type=int, default=16)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--sizes", default="8,64,512,1472,3000")
    ap.add_argument("--window", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    socks = []
    for _ in range(a.flows):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect((a.host, a.port))
        s.setblocking(False)
        socks.append(s)
    nxt = [0] * a.flows
    outstanding = [dict() for _ in range(a.flows)]
    sent = echoed = bad = 0
    deadline = time.monotonic() + a.timeout
    last = time.monotonic()
    def fill(f):
        nonlocal sent
        while nxt[f] < a.count and len(outstanding[f]) < a.window:
            p = payload(f, nxt[f], sizes[nxt[f] % len(sizes)])
            outstanding[f][nxt[f]] = p
            socks[f].send(p)
            nxt[f] += 1
            sent += 1
    for f in range(a.flows):
        fill(f)
    while any(outstanding) and time.monotonic() < deadline:
        ready, _, _ = select.select(socks, [], [], 0.3)
        if not ready:
            if time.monotonic() - last > 1.0:
                for f, o in enumerate(outstanding):
                    for p in o.values():
                        socks[f].send(p)
                last = time.monotonic()
            continue
        for s in ready:
            f = socks.index(s)
            try:
                d = s.recv(70000)
            except (BlockingIOError, ConnectionRefusedError):
                continue
            if len(d) < 8:
                bad += 1
                continue
            flow, seq = struct.unpack("!II", d[:8])
            want = outstanding[f].pop(seq, None)
            if want is None:
                continue
            last = time.monotonic()
            echoed += 1
            bad += d != want
            fill(f)
    missing = sum(len(o) for o in outstanding) + sum(a.count - n for n in nxt)
    print(json.dumps({"sent": sent, "echoed": echoed, "bad": bad, "missing": missing}))
    return 0 if not missing and not bad else 1

if __name__ == "__main__":
    sys.exit(main())
