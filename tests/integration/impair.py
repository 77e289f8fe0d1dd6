#!/usr/bin/env python3
"""Impair a namespace's traffic to and from a tap: drop, duplicate and reorder packets.

    impair.py QUEUE [--loss P] [--dup P] [--reorder P] [--delay-ms D] [--reinject]
                    [--drop-queue Q] [--seconds S] [--seed N]

This kernel has no netem. What iptables sends to NFQUEUE QUEUE (with
--queue-bypass, so traffic flows when nobody listens) gets its fate here,
over nfnetlink (the Python standard library is enough): accept, drop
(probability --loss), accept and inject a copy (--dup, outgoing packets
only, through a raw IP socket), or hold for --delay-ms while later packets
pass (--reorder). Every packet of --drop-queue Q is dropped.

Deciding every packet here holds a transfer to about 2.5 MB/s, so the TCP
test chooses in the kernel (iptables `statistic`) and queues only the 1%
to reorder (QUEUE, --reorder 1) and, for outgoing packets, the 1% to lose
(Q): an iptables DROP on the output path is returned to the sending TCP as
a local send failure, which it retries, not a loss; a drop verdict from
here is a loss. With --reinject an outgoing packet held for reordering is
dropped at once and a copy of it sent after the delay: while Linux's TCP
still has a segment's skb queued in the host it does not retransmit it,
which would stall recovery for the whole delay.

Runs for at most --seconds or until SIGTERM, releases what it holds, then
prints one JSON line of counts.
"""
import argparse
import json
import random
import signal
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
    ap.add_argument("--reinject", action="store_true", help="hold a copy of an outgoing packet, drop the original")
    ap.add_argument("--drop-queue", type=int, help="a second queue whose every packet is dropped")
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
    for q in [a.queue] + ([a.drop_queue] if a.drop_queue is not None else []):
        nl.send(message(NFQNL_MSG_CONFIG, q, [attr(NFQA_CFG_CMD, struct.pack("!BxH", CMD_BIND, socket.AF_INET))]))
        nl.send(message(NFQNL_MSG_CONFIG, q, [attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0xFFFF, COPY_PACKET))]))
    counts = {"seen": 0, "dropped": 0, "duplicated": 0, "reordered": 0}
    held = []   # (release_time, queue, packet_id, copy to send instead or None), in release order
    def verdict(queue, pid, v):
        nl.send(message(NFQNL_MSG_VERDICT, queue, [attr(NFQA_VERDICT_HDR, struct.pack("!II", v, pid))]))
    def inject(pkt):
        try:
            raw.sendto(pkt, (socket.inet_ntoa(pkt[16:20]), 0))
            return True
        except OSError:
            return False
    def release(queue, pid, copy):
        if copy is None:
            verdict(queue, pid, NF_ACCEPT)
        elif not inject(copy):
            counts["reinject_failed"] = counts.get("reinject_failed", 0) + 1
    deadline = time.monotonic() + a.seconds
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    nl.settimeout(0.002)
    while not stop and time.monotonic() < deadline:
        now = time.monotonic()
        while held and held[0][0] <= now:
            release(*held.pop(0)[1:])
        try:
            data = nl.recv(1 << 17)
        except (socket.timeout, InterruptedError):
            continue
        except OSError as e:   # ENOBUFS: the kernel could not queue a message to us; counted, and the test fails on it
            counts["recv_errors"] = counts.get("recv_errors", 0) + 1
            if counts["recv_errors"] > 1000:
                raise SystemExit(f"impair.py: {e}")
            continue
        off = 0
        while off + 20 <= len(data):
            ln, kind = struct.unpack_from("=IH", data, off)
            if ln < 20:
                break
            if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                queue = struct.unpack_from("!H", data, off + 18)[0]
                attrs = parse_attrs(data[off + 20:off + ln])
                pid, _, hook = struct.unpack("!IHB", attrs[NFQA_PACKET_HDR][:7])
                counts["seen"] += 1
                r = 0.0 if queue == a.drop_queue else rng.random()
                if queue == a.drop_queue or r < a.loss:
                    counts["dropped"] += 1
                    verdict(queue, pid, NF_DROP)
                elif r < a.loss + a.reorder:
                    counts["reordered"] += 1
                    copy = None
                    if a.reinject and hook == NF_INET_LOCAL_OUT and NFQA_PAYLOAD in attrs:
                        copy = attrs[NFQA_PAYLOAD]
                        verdict(queue, pid, NF_DROP)
                    held.append((now + a.delay_ms / 1000.0, queue, pid, copy))
                else:
                    verdict(queue, pid, NF_ACCEPT)
                    if hook == NF_INET_LOCAL_OUT and rng.random() < a.dup and NFQA_PAYLOAD in attrs:
                        if inject(attrs[NFQA_PAYLOAD]):
                            counts["duplicated"] += 1
            off += (ln + 3) & ~3
    for _, queue, pid, copy in held:
        release(queue, pid, copy)
    print(json.dumps(counts), flush=True)
    return 0

if __name__ == "__main__":
    sys.exit(main())
