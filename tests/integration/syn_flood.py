#!/usr/bin/env python3
"""A SYN flood from spoofed addresses, and an echo client that must keep working through it.

    syn_flood.py flood HOST PORT [--count N] [--seconds S] [--src-net A.B.C]
        send N SYNs (spread over S seconds) from random addresses of HOST's /24 other than
        .1 (Linux) and HOST itself (or of A.B.C.0/24), random source ports and sequence numbers.
    syn_flood.py echo-during HOST PORT [--count N] [--seconds S] [--conns K] [--src-net A.B.C]
        open one echo connection, start the flood, keep echoing checked data over that connection
        while it lasts, and open K new echo connections during it (these need the server's SYN
        cookies: its SYN backlog is full of spoofed half-open connections). Linux offers timestamps,
        so the cookies must keep window scaling and SACK: each new connection must have them.

Needs root (a raw socket); run it inside the test's namespace. Prints one JSON line; exit status 0
on success.
"""
import argparse
import json
import os
import random
import socket
import struct
import sys
import threading
import time

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF

def syn_packet(src, dst, sport, dport, seq):
    opts = struct.pack("!BBH", 2, 4, 1460)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, (20 + len(opts)) // 4 << 4, 0x02, 64240, 0, 0) + opts
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.getrandbits(16), 0, 64, socket.IPPROTO_TCP, 0,
                     src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ip + tcp

def flood(host, port, count, seconds, src_net=None):
    """Sends up to count SYNs spread over about seconds; returns how many went out."""
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    dst = socket.inet_aton(host)
    net, me = host.rsplit(".", 1)[0], int(host.rsplit(".", 1)[1])
    if src_net:
        net, me = src_net, None
    hosts = [socket.inet_aton(f"{net}.{i}") for i in range(2, 255) if i != me]
    t0, sent = time.monotonic(), 0
    while sent < count and time.monotonic() - t0 < seconds:
        pkt = syn_packet(random.choice(hosts), dst, random.randint(1024, 65535), port, random.getrandbits(32))
        try:
            s.sendto(pkt, (host, 0))
            sent += 1
        except OSError:
            time.sleep(0.001)     # the tap's queue is full: let the guest catch up
        lag = sent * seconds / count - (time.monotonic() - t0)
        if lag > 0.002:
            time.sleep(lag)       # an even rate rather than one burst
    s.close()
    return sent

def echo_round(s, n):
    data = os.urandom(n)
    s.sendall(data)
    got = b""
    while len(got) < n:
        d = s.recv(n - len(got))
        if not d:
            raise ConnectionError("closed during echo")
        got += d
    return got == data

TCPI_OPT_TIMESTAMPS, TCPI_OPT_SACK, TCPI_OPT_WSCALE = 1, 2, 4
ALL_OPTIONS = TCPI_OPT_TIMESTAMPS | TCPI_OPT_SACK | TCPI_OPT_WSCALE

def new_conn(host, port, timeout):
    """Echo-checks a new connection; returns (ok, options): options when Linux's TCP_INFO shows
    timestamps, SACK and window scaling negotiated."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        options = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[5]
        return echo_round(s, 3000), options & ALL_OPTIONS == ALL_OPTIONS

def echo_during(a):
    res = {"syns": 0, "echo_rounds": 0, "echo_bad": 0, "new_ok": 0, "new_during_flood": 0, "new_with_options": 0,
           "errors": []}
    main = socket.create_connection((a.host, a.port), timeout=a.timeout)
    if not echo_round(main, 1000):
        res["echo_bad"] += 1
    done = threading.Event()
    def run_flood():
        res["syns"] = flood(a.host, a.port, a.count, a.seconds, a.src_net)
        done.set()
    t = threading.Thread(target=run_flood, daemon=True)
    t.start()
    time.sleep(0.5)               # the guest's backlog is full by now
    spacing = a.seconds / (a.conns + 1)
    next_new, tried = time.monotonic(), 0
    try:
        while not done.is_set() or tried < a.conns:
            res["echo_rounds"] += 1
            if not echo_round(main, 1000):
                res["echo_bad"] += 1
            if tried < a.conns and time.monotonic() >= next_new:
                tried += 1
                ok, options = new_conn(a.host, a.port, a.timeout)
                if ok:
                    res["new_ok"] += 1
                    res["new_during_flood"] += not done.is_set()
                    res["new_with_options"] += options
                else:
                    res["echo_bad"] += 1
                next_new = time.monotonic() + spacing
            time.sleep(0.05)
        if not echo_round(main, 1000):
            res["echo_bad"] += 1
        main.close()
    except OSError as e:
        res["errors"].append(f"{type(e).__name__}: {e}")
    t.join(a.seconds + 5)
    ok = (not res["errors"] and not res["echo_bad"] and res["new_during_flood"] == a.conns and
          res["new_with_options"] == a.conns and res["syns"] >= a.count // 2)
    return res, ok

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["flood", "echo-during"])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--count", type=int, default=4000)
    ap.add_argument("--seconds", type=float, default=8)
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=10)
    ap.add_argument("--src-net", help="spoof from this /24 (three octets) instead of HOST's")
    a = ap.parse_args()
    if a.cmd == "flood":
        n = flood(a.host, a.port, a.count, a.seconds, a.src_net)
        res, ok = {"syns": n}, n > 0
    else:
        res, ok = echo_during(a)
    print(json.dumps(res))
    return 0 if ok else 1

if __name__ == "__main__":
    sys.exit(main())
