#!/usr/bin/env python3
"""Impair a namespace's traffic to and from a tap: drop, duplicate and reorder packets.

    impair.py QUEUE [--loss P] [--dup P] [--reorder P] [--delay-ms D] [--seconds S] [--seed N]

This kernel has no netem, so the test installs iptables NFQUEUE rules
(with --queue-bypass, so traffic flows when nobody listens) and this
program decides each packet's fate over nfnetlink (the Python standard
library is enough): accept, drop (probability --loss), accept and inject a
copy (--dup, outgoing packets only, through a raw IP socket), or hold for
--delay-ms while later packets pass (--reorder). Runs for at most
--seconds, then prints one JSON line of counts.
"""
import argparse
import json
import random
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS = 1, 2
NFQA_PACKET_HDR, NFQA_VERDICT_HDR, NFQA_PAYLOAD = 1, 2, 10
CMD_BIND, CMD_PF_UNBIND, CMD_PF_BIND = 1, 4, 3
COPY_PACKET = 2
NF_DROP, NF_ACCEPT = 0, 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NF_INET_LOCAL_OUT = 3

def attr(kind, data):
    a = struct.pack("=HH", 4 + len(data), kind) + data
    return a + b"\0" * (-len(a) % 4)

def message(msg, queue, attrs, flags=NLM_F_REQUEST):
    body = struct.pack("=BBH", socket.AF_INET, 0, socket.htons(queue)) + b"".join(attrs)
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg, flags, 0, 0) + body

def parse_attrs(buf):
    out, off = {}, 0
    while off + 4 <= len(buf):
        ln, kind = struct.unpack_from("=HH", buf, off)
        if ln < 4:
            break
        out[kind & 0x7FFF] = buf[off + 4:off + ln]
        off += (ln + 3) & ~3
    return out

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("queue", type=int)
    ap.add_argument("--loss", type=float, default=0.0)
    ap.add_argument("--dup", type=float, default=0.0)
    ap.add_argument("--reorder", type=float, default=0.0)
    ap.add_argument("--delay-ms", type=float, default=20.0)
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    nl = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    nl.bind((0, 0))
    nl.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    for cmd in (CMD_PF_UNBIND, CMD_PF_BIND):
        nl.send(message(NFQNL_MSG_CONFIG, 0, [attr(NFQA_CFG_CMD, struct.pack("!BxH", cmd, socket.AF_INET))]))
    nl.send(message(NFQNL_MSG_CONFIG, a.queue, [attr(NFQA_CFG_CMD, struct.pack("!BxH", CMD_BIND, socket.AF_INET))]))
    nl.send(message(NFQNL_MSG_CONFIG, a.queue, [attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0xFFFF, COPY_PACKET))]))
    counts = {"seen": 0, "dropped": 0, "duplicated": 0, "reordered": 0}
    held = []   # (release_time, packet_id)
    def verdict(pid, v):
        nl.send(message(NFQNL_MSG_VERDICT, a.queue, [attr(NFQA_VERDICT_HDR, struct.pack("!II", v, pid))]))
    deadline = time.monotonic() + a.seconds
    nl.settimeout(0.005)
    while time.monotonic() < deadline:
        now = time.monotonic()
        while held and held[0][0] <= now:
            verdict(held.pop(0)[1], NF_ACCEPT)
        try:
            data = nl.recv(1 << 17)
        except socket.timeout:
            continue
        off = 0
        while off + 16 <= len(data):
            ln, kind = struct.unpack_from("=IH", data, off)
            if ln < 16:
                break
            if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                attrs = parse_attrs(data[off + 20:off + ln])
                pid, _, hook = struct.unpack("!IHB", attrs[NFQA_PACKET_HDR][:7])
                counts["seen"] += 1
                r = rng.random()
                if r < a.loss:
                    counts["dropped"] += 1
                    verdict(pid, NF_DROP)
                elif r < a.loss + a.reorder:
                    counts["reordered"] += 1
                    held.append((now + a.delay_ms / 1000.0, pid))
                else:
                    verdict(pid, NF_ACCEPT)
                    if hook == NF_INET_LOCAL_OUT and rng.random() < a.dup and NFQA_PAYLOAD in attrs:
                        pkt = attrs[NFQA_PAYLOAD]
                        try:
                            raw.sendto(pkt, (socket.inet_ntoa(pkt[16:20]), 0))
                            counts["duplicated"] += 1
                        except OSError:
                            pass
            off += (ln + 3) & ~3
    for _, pid in held:
        verdict(pid, NF_ACCEPT)
    print(json.dumps(counts))
    return 0

if __name__ == "__main__":
    sys.exit(main())
