#!/usr/bin/env python3
"""Send one large TCP/IPv4 frame as a GSO packet into a tap and check it comes back reflected.

    gso_sender.py IFNAME [--payload N] [--mss M] [--timeout S]

The frame goes out through an AF_PACKET socket with PACKET_VNET_HDR, so
the kernel hands QEMU one GSO packet when the guest accepts TSO
(VIRTIO_NET_F_GUEST_TSO4) and MSS-sized segments otherwise. The guest
reflects what it got; the reflection may come back whole or segmented.
The TCP payload of everything that returns, put in sequence order, must
equal what was sent. Prints one JSON line:
{"ok": .., "frames_back": .., "bytes_back": .., "largest": ..}.
"""
import argparse
import json
import socket
import struct
import sys
import time

SOL_PACKET = 263
PACKET_VNET_HDR = 15
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
MY_MAC = bytes.fromhex("0256aabbcc02")
BCAST = b"\xff" * 6
VNET_HDR = struct.Struct("<BBHHHH")  # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset

def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s

def build(payload, mss, seq0):
    src, dst = bytes([10, 78, 0, 1]), bytes([10, 78, 0, 2])
    tcp_len = 20 + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + tcp_len, 1, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", (~csum(ip)) & 0xFFFF) + ip[12:]
    pseudo = csum(src + dst + struct.pack("!BBH", 0, 6, tcp_len))  # folded, not inverted: the device finishes it
    tcp = struct.pack("!HHIIBBHHH", 40000, 5001, seq0, 1, 5 << 4, 0x18, 65535, pseudo, 0)
    hdr = VNET_HDR.pack(1, 1, 14 + 20 + 20, mss, 14 + 20, 16)  # NEEDS_CSUM, GSO_TCPV4
    return hdr + BCAST + MY_MAC + b"\x08\x00" + ip + tcp + payload

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ifname")
    ap.add_argument("--payload", type=int, default=30000)
    ap.add_argument("--mss", type=int, default=1448)
    ap.add_argument("--timeout", type=float, default=20)
    a = ap.parse_args()
    payload = bytes((i * 7 + 3) & 0xFF for i in range(a.payload))
    seq0 = 1000
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    s.bind((a.ifname, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.settimeout(0.5)
    s.send(build(payload, a.mss, seq0))
    got = {}
    frames = largest = 0
    deadline = time.monotonic() + a.timeout
    while sum(len(v) for v in got.values()) < len(payload) and time.monotonic() < deadline:
        try:
            data, addr = s.recvfrom(200000)
        except socket.timeout:
            continue
        if addr[2] == PACKET_OUTGOING:
            continue
        f = data[VNET_HDR.size:]
        if f[0:6] != MY_MAC or f[12:14] != b"\x08\x00" or f[23] != 6:
            continue
        ihl = (f[14] & 0xF) * 4
        t = 14 + ihl
        doff = (f[t + 12] >> 4) * 4
        seq = struct.unpack("!I", f[t + 4:t + 8])[0]
        total = struct.unpack("!H", f[16:18])[0]
        body = f[t + doff:14 + total]
        frames += 1
        largest = max(largest, len(f))
        got[seq - seq0] = body
    back = b"".join(got[k] for k in sorted(got))
    ok = back == payload
    print(json.dumps({"ok": ok, "frames_back": frames, "bytes_back": len(back), "largest": largest}))
    return 0 if ok else 1

if __name__ == "__main__":
    sys.exit(main())
