#!/usr/bin/env python3
"""TCP clients for the test namespace (Linux's TCP as the peer).

    tcp_client.py echo-many HOST PORT [--conns N] [--bytes B] [--timeout S]
        N concurrent connections to an echo server, each sending B random bytes
        while reading the echo back; every byte must come back in order.
    tcp_client.py echo-bulk HOST PORT BYTES [--timeout S]
        one connection, BYTES each way; SHA-256 of what was sent and what came back.
    tcp_client.py sink-listen PORT BYTES [--timeout S]
        accept one connection, read until EOF, check the tcpperf pattern and the length.

Prints one JSON line with the result; exit status 0 on success.
"""
import argparse
import asyncio
import hashlib
import json
import os
import resource
import socket
import sys
import time

def pattern(start, n):
    return bytes(((i * 131 + (i >> 16)) & 0xFF) for i in range(start, start + n))

async def one_echo(host, port, nbytes, results, sem):
    async with sem:
        data = os.urandom(nbytes)
        try:
            r, w = await asyncio.open_connection(host, port)
        except OSError as e:
            results["errors"].append(f"connect: {e}")
            return
        async def send():
            for i in range(0, len(data), 1400):
                w.write(data[i:i + 1400])
                await w.drain()
        sender = asyncio.ensure_future(send())
        got = await r.readexactly(len(data))
        await sender
        w.close()
        results["ok" if got == data else "bad"] += 1

async def echo_many(a):
    resource.setrlimit(resource.RLIMIT_NOFILE, (a.conns + 256, a.conns + 256))
    results = {"ok": 0, "bad": 0, "errors": []}
    sem = asyncio.Semaphore(a.conns)
    tasks = [one_echo(a.host, a.port, a.bytes, results, sem) for _ in range(a.conns)]
    try:
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=False), a.timeout)
    except asyncio.TimeoutError:
        results["errors"].append("timeout")
    except Exception as e:  # noqa: BLE001 - any failure is reported, not hidden
        results["errors"].append(f"{type(e).__name__}: {e}")
    results["errors"] = results["errors"][:5]
    return results, results["ok"] == a.conns

def echo_bulk(a):
    s = socket.create_connection((a.host, a.port), timeout=a.timeout)
    sent, back = hashlib.sha256(), hashlib.sha256()
    total = a.bytes
    deadline = time.monotonic() + a.timeout
    s.setblocking(False)
    out = rec = 0
    block = os.urandom(65536)
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    t0 = time.monotonic()
    while rec < total and time.monotonic() < deadline:
        for key, ev in sel.select(0.5):
            if ev & selectors.EVENT_WRITE and out < total:
                chunk = block[: min(len(block), total - out)]
                try:
                    n = s.send(chunk)
                except BlockingIOError:
                    n = 0
                sent.update(chunk[:n])
                out += n
                if out == total:
                    sel.modify(s, selectors.EVENT_READ)
            if ev & selectors.EVENT_READ:
                try:
                    d = s.recv(262144)
                except BlockingIOError:
                    continue
                if not d:
                    deadline = 0
                    break
                back.update(d)
                rec += len(d)
    el = time.monotonic() - t0
    s.close()
    ok = rec == total and sent.hexdigest() == back.hexdigest()
    return {"bytes": total, "echoed": rec, "sha256_match": sent.hexdigest() == back.hexdigest(),
            "seconds": round(el, 2), "MB_per_s": round(2 * rec / el / 1e6, 2) if el else 0}, ok

def sink_listen(a):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", a.port))
    ls.listen(1)
    ls.settimeout(a.timeout)
    c, peer = ls.accept()
    c.settimeout(a.timeout)
    n, good = 0, True
    while True:
        d = c.recv(65536)
        if not d:
            break
        good = good and d == pattern(n, len(d))
        n += len(d)
    return {"peer": peer[0], "bytes": n, "pattern_ok": good}, good and n == a.bytes

def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("echo-many")
    p.add_argument("host"); p.add_argument("port", type=int)
    p.add_argument("--conns", type=int, default=1000); p.add_argument("--bytes", type=int, default=2000)
    p.add_argument("--timeout", type=float, default=120)
    p = sub.add_parser("echo-bulk")
    p.add_argument("host"); p.add_argument("port", type=int); p.add_argument("bytes", type=int)
    p.add_argument("--timeout", type=float, default=300)
    p = sub.add_parser("sink-listen")
    p.add_argument("port", type=int); p.add_argument("bytes", type=int)
    p.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args()
    if a.cmd == "echo-many":
        res, ok = asyncio.run(echo_many(a))
    elif a.cmd == "echo-bulk":
        res, ok = echo_bulk(a)
    else:
        res, ok = sink_listen(a)
    print(json.dumps(res))
    return 0 if ok else 1

if __name__ == "__main__":
    sys.exit(main())
