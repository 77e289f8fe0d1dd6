#!/usr/bin/env python3
"""Send malformed and hostile frames at a guest from inside the test's namespace.

    hostile_frames.py IFNAME GUEST_MAC GUEST_IP SRC_IP

Each kind is sent a few times; prints one JSON line {kind: count sent}.
Every frame is addressed to the guest's MAC, so the guest must look at it
and drop it; none of them deserves an answer.
"""
import json
import socket
import struct
import sys

MY_MAC = bytes.fromhex("0256aabbcc03")

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF

def ip_header(src, dst, proto, payload_len, ihl=5, tot=None, frag=0, ident=7, fix=True):
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, tot if tot is not None else 4 * ihl + payload_len, ident, frag,
                    64, proto, 0, src, dst) + b"\0" * (4 * max(ihl, 5) - 20)
    if fix:
        h = h[:10] + struct.pack("!H", csum(h[:4 * max(ihl, 5)])) + h[12:]
    return h

def frames(mac, gip, sip):
    eth = mac + MY_MAC + b"\x08\x00"
    udp = struct.pack("!HHHH", 5000, 7, 12, 0x1234) + b"abcd"          # wrong UDP checksum
    icmp = struct.pack("!BBHHH", 8, 0, 0xBEEF, 1, 1) + b"ping"            # wrong ICMP checksum
    good_udp = struct.pack("!HHHH", 5000, 7, 12, 0) + b"abcd"
    out = {
        "ip_bad_checksum": eth + ip_header(sip, gip, 17, 12, fix=False)[:10] + b"\x12\x34" + ip_header(sip, gip, 17, 12)[12:] + good_udp,
        "ip_truncated_header": eth + ip_header(sip, gip, 17, 12)[:12],
        "ip_total_length_beyond_frame": eth + ip_header(sip, gip, 17, 12, tot=1400) + good_udp,
        "ip_ihl_below_5": eth + ip_header(sip, gip, 17, 12, ihl=4) + good_udp,
        "ip_ihl_beyond_frame": eth + ip_header(sip, gip, 17, 0, ihl=15)[:24],
        "ip_version_6_in_v4_frame": eth + bytes([0x65]) + ip_header(sip, gip, 17, 12)[1:] + good_udp,
        "udp_bad_checksum": eth + ip_header(sip, gip, 17, len(udp)) + udp,
        "udp_length_beyond_ip": eth + ip_header(sip, gip, 17, 8) + struct.pack("!HHHH", 5000, 7, 400, 0),
        "icmp_bad_checksum": eth + ip_header(sip, gip, 1, len(icmp)) + icmp,
        "icmp_truncated": eth + ip_header(sip, gip, 1, 3) + b"\x08\x00\x00",
        "ping_of_death_fragment": eth + ip_header(sip, gip, 1, 1000, frag=(65528 // 8), ident=99) + b"\0" * 1000,
        "arp_truncated": mac + MY_MAC + b"\x08\x06" + b"\x00\x01\x08\x00\x06\x04\x00\x01",
        "eth_header_only": eth,
        "unknown_ethertype": mac + MY_MAC + b"\x88\xb6" + b"\0" * 46,
        "martian_source": eth + ip_header(bytes([127, 0, 0, 1]), gip, 17, 12) + good_udp,
    }
    return out

def main():
    ifname, mac, gip, sip = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), \
        socket.inet_aton(sys.argv[3]), socket.inet_aton(sys.argv[4])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((ifname, 0))
    sent = {}
    for kind, f in frames(mac, gip, sip).items():
        for _ in range(5):
            s.send(f)
        sent[kind] = 5
    print(json.dumps(sent))

if __name__ == "__main__":
    main()
