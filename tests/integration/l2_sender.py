#!/usr/bin/env python3
"""Send Ethernet frames into a tap device and check each comes back reflected.

    l2_sender.py IFNAME COUNT [--flows N] [--window W] [--timeout S] [--sizes a,b,..] [--exit]

Runs inside the test's network namespace. Frames are IPv4/UDP from many
flows (source port varies), each carrying its sequence number; the guest
must return every frame with source and destination MAC swapped and the
rest unchanged. At most W frames are in flight. Prints one JSON line:
{"sent": .., "received": .., "bad": .., "missing": .., "elapsed": ..}.
With --exit, finally sends the l2echo control frame that powers it off.
"""
import argparse
import json
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
MY_MAC = bytes.fromhex("0256aabbcc01")
BCAST = b"\xff" * 6

def ip_checksum(h):
    s = sum(struct.unpack(f"!{len(h) // 2}H", h))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF

def frame(seq, size, flows, dst_mac):
    flow = seq % flows
    sport, dport = 10000 + flow, 7
    payload_len = max(size - 14 - 20 - 8, 8)
    payload = struct.pack("!Q", seq) + bytes((seq + i) & 0xFF for i in range(payload_len - 8))
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    src_ip = bytes([10, 77, (flow >> 8) & 0xFF, flow & 0xFF])
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), seq & 0xFFFF, 0, 64, 17, 0, src_ip, bytes([10, 77, 255, 1]))
    ip = ip[:10] + struct.pack("!H", ip_checksum(ip)) + ip[12:]
    return dst_mac + MY_MAC + b"\x08\x00" + ip + udp

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ifname")
    ap.add_argument("count", type=int)
    ap.add_argument("--flows", type=int, default=64)
    ap.add_argument("--window", type=int, default=32)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--sizes", default="60,128,512,1514")
    ap.add_argument("--exit", action="store_true")
    a = ap.parse_args()
    sizes = [int(x) for x in a.sizes.split(",")]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((a.ifname, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.settimeout(0.2)
    expected = {}
    sent = received = bad = 0
    next_seq = 0
    t0 = time.monotonic()
    deadline = t0 + a.timeout
    last_progress = t0
    while (next_seq < a.count or expected) and time.monotonic() < deadline:
        while next_seq < a.count and len(expected) < a.window:
            f = frame(next_seq, sizes[next_seq % len(sizes)], a.flows, BCAST)
            s.send(f)
            expected[next_seq] = f[6:12] + f[0:6] + f[12:]
            next_seq += 1
            sent += 1
        try:
            data, addr = s.recvfrom(65536)
        except socket.timeout:
            # A frame lost on the way is resent after a quiet second, never forever.
            if time.monotonic() - last_progress > 1.0 and expected:
                for seq in list(expected)[: a.window]:
                    s.send(frame(seq, sizes[seq % len(sizes)], a.flows, BCAST))
                last_progress = time.monotonic()
            continue
        if addr[2] == PACKET_OUTGOING or data[0:6] != MY_MAC or len(data) < 14 + 20 + 8 + 8:
            continue
        seq = struct.unpack("!Q", data[42:50])[0]
        want = expected.pop(seq, None)
        if want is None:
            continue  # a duplicate of a resent frame
        last_progress = time.monotonic()
        received += 1
        if data[:len(want)] != want:
            bad += 1
    elapsed = time.monotonic() - t0
    if a.exit:
        s.send(BCAST + MY_MAC + struct.pack("!H", 0x88B5) + b"l2echo:exit".ljust(46, b"\0"))
    print(json.dumps({"sent": sent, "received": received, "bad": bad, "missing": len(expected),
                      "elapsed": round(elapsed, 3)}))
    return 0 if not expected and not bad else 1

if __name__ == "__main__":
    sys.exit(main())
