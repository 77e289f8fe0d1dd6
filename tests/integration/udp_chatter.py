#!/usr/bin/env python3
"""Run inside a test's namespace: UDP datagrams on many flows towards a guest that is still booting.

    udp_chatter.py GUEST_IP STOP_FILE [--flows N] [--interval S] [--max-seconds S]

Frames reach the device while the guest sets up its queues (the caller adds a
static ARP entry, so nothing waits for the guest to answer ARP), the way a
busy network or the host's own chatter does. Stops when STOP_FILE exists or
after --max-seconds, whichever comes first; sends to the discard port.
"""
import argparse
import os
import socket
import time

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("guest")
    ap.add_argument("stop_file")
    ap.add_argument("--flows", type=int, default=32)
    ap.add_argument("--interval", type=float, default=0.002)
    ap.add_argument("--max-seconds", type=float, default=120)
    a = ap.parse_args()
    socks = []
    for i in range(a.flows):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", 50000 + i))
        socks.append(s)
    deadline = time.monotonic() + a.max_seconds
    sent = 0
    while time.monotonic() < deadline and not os.path.exists(a.stop_file):
        for s in socks:
            try:
                s.sendto(b"chatter", (a.guest, 9))
                sent += 1
            except OSError:
                pass
        time.sleep(a.interval)
    print(sent)

if __name__ == "__main__":
    main()
