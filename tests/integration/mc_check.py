"""Protocol checks for a memcached server, judged against stock memcached.

    mc_check.py diff HOST PORT REF_HOST REF_PORT
        Plays the same scripted conversation (text, meta and binary commands,
        malformed requests, expiry) to the server under test and to a real
        memcached, and the same pymemcache session to both; every reply must
        be byte-for-byte the same, after renaming cas values consistently.
    mc_check.py udp HOST PORT         a get/set over the UDP frame protocol, incl. a multi-datagram reply
    mc_check.py abuse HOST PORT       bad input that must not disturb other clients
    mc_check.py spread HOST PORT N    keys land on all N shards; multi-get across shards in order

Prints one JSON line; exit status 0 when everything matched.
"""
import json
import random
import re
import socket
import struct
import sys
import time

from pymemcache.client.base import Client

TIMEOUT = 20


class Conn:
    """A raw connection that reads a reply up to a marker the request is followed by."""

    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=TIMEOUT)
        self.buf = b""

    def until(self, marker):
        deadline = time.monotonic() + TIMEOUT
        while marker not in self.buf:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {marker!r} after {self.buf[-200:]!r}")
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed before {marker!r}; had {self.buf[-200:]!r}")
            self.buf += chunk
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def text(self, req):
        """Sends req then `mn`; returns everything before the MN that answers it."""
        self.s.sendall(req + b"mn\r\n")
        return self.until(b"MN\r\n")[:-4]

    def binary(self, req):
        noop = struct.pack(">BBHBBHIIQ", 0x80, 0x0a, 0, 0, 0, 0, 0, 0xfeedface, 0)
        self.s.sendall(req + noop)
        marker = struct.pack(">BB", 0x81, 0x0a)
        data = b""
        while True:   # responses until the NOOP's (matched by its opaque)
            hdr = self.exact(24)
            body = self.exact(struct.unpack(">I", hdr[8:12])[0])
            if hdr[:2] == marker and hdr[12:16] == struct.pack(">I", 0xfeedface):
                return data
            data += hdr + body

    def exact(self, n):
        deadline = time.monotonic() + TIMEOUT
        while len(self.buf) < n:
            if time.monotonic() > deadline:
                raise TimeoutError("binary reply too short")
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed in a binary reply")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def closed_after(self, req):
        """Sends req; returns (reply bytes, whether the server closed the connection)."""
        self.s.sendall(req)
        self.s.settimeout(3)
        data = b""
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return data, True
                data += chunk
        except socket.timeout:
            return data, False
        finally:
            self.s.settimeout(TIMEOUT)

    def close(self):
        self.s.close()


def bin_req(op, key=b"", value=b"", extras=b"", cas=0, opaque=0):
    return struct.pack(">BBHBBHIIQ", 0x80, op, len(key), len(extras), 0, 0, len(extras) + len(key) + len(value),
                       opaque, cas) + extras + key + value


# The text conversation: (name, request bytes). Each request is followed by `mn`.
def text_script():
    big = b"x" * 1000000
    s = [
        ("set/get", b"set k1 5 0 3\r\nabc\r\nget k1\r\n"),
        ("gets", b"gets k1\r\n"),
        ("get many", b"set k2 0 0 2\r\nde\r\nget k1 k2 nokey k1\r\n"),
        ("add exists", b"add k1 0 0 1\r\nz\r\n"),
        ("add new", b"add k3 7 0 1\r\nz\r\nget k3\r\n"),
        ("replace", b"replace k3 8 0 2\r\nzz\r\nreplace nokey 0 0 1\r\nz\r\nget k3\r\n"),
        ("append/prepend", b"append k3 99 0 2\r\n>>\r\nprepend k3 99 0 2\r\n<<\r\nget k3\r\n"
                           b"append nokey 0 0 1\r\nz\r\nprepend nokey 0 0 1\r\nz\r\n"),
        ("cas", b"cas k1 0 0 1 999999\r\nq\r\ncas nokey 0 0 1 1\r\nq\r\n"),
        ("incr/decr", b"set n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 100\r\nincr n 18446744073709551615\r\n"
                      b"incr n 1\r\nget n\r\nincr nokey 1\r\nincr k1 1\r\nincr n abc\r\nincr n -1\r\n"
                      b"set n 0 0 3\r\n100\r\ndecr n 1\r\nget n\r\nset n 0 0 20\r\n18446744073709551615\r\nincr n 1\r\nget n\r\n"),
        ("touch/gat", b"touch k1 100\r\ntouch nokey 1\r\ngat 0 k1 nokey\r\ngats 0 k2\r\n"),
        ("delete", b"delete k2\r\ndelete k2\r\ndelete k1 0\r\ndelete k1 1\r\ndelete k1 noreply\r\nget k1\r\n"),
        ("noreply", b"set q 1 0 1 noreply\r\na\r\nadd q 0 0 1 noreply\r\nb\r\nincr q 1 noreply\r\n"
                    b"append q 0 0 1 noreply\r\nc\r\ntouch q 0 noreply\r\nget q\r\ndelete q noreply\r\nget q\r\n"),
        ("flags range", b"set f 4294967295 0 1\r\na\r\nget f\r\nset f 4294967296 0 1\r\na\r\nset f -1 0 1\r\na\r\n"),
        ("negative expiry", b"set e 0 -1 1\r\na\r\nget e\r\n"),
        ("unknown", b"bogus\r\n\r\nGET k\r\n"),
        ("key length", b"set " + b"k" * 250 + b" 0 0 1\r\na\r\nget " + b"k" * 250 + b"\r\n"
                       b"set " + b"k" * 251 + b" 0 0 1\r\na\r\n"),
        # on its own: memcached drops the unsent replies of the read that holds such a get line
        ("get key too long", b"get " + b"k" * 251 + b"\r\n"),
        ("bad lengths", b"set b 0 0 -1\r\nset b 0 0 abc\r\nset b 0 0\r\nget\r\n"),
        ("bad chunk", b"set c 0 0 3\r\nabcdef\r\nget c\r\n"),
        ("too large", b"set big 0 0 2000000\r\n" + b"y" * 2000000 + b"\r\nget big\r\n"),
        ("large ok", b"set big 0 0 1000000\r\n" + big + b"\r\nget big\r\n"),
        ("bare newline", b"set nl 0 0 1\na\r\nget nl\n"),
        ("verbosity", b"verbosity 1\r\nverbosity\r\nverbosity 0 noreply\r\n"),
        ("meta get", b"set m 33 0 5\r\nhello\r\nmg m v\r\nmg m s f t v k O123 q\r\nmg missing v\r\nmg missing v q\r\n"
                     b"mg m\r\nmg m h\r\nmg m l u\r\n"),
        ("meta set", b"ms ms1 2\r\nhi\r\nms ms1 2 F5 T0 c\r\nho\r\nmg ms1 v f\r\nms ms1 1 ME\r\nx\r\nms new 1 MR\r\nx\r\n"
                     b"ms ms1 1 MA\r\n!\r\nms ms1 1 MP\r\n^\r\nmg ms1 v\r\nms ms1 S2 q\r\nzz\r\nms ms1 2 q\r\nzz\r\nmg ms1 v\r\n"),
        ("meta delete", b"md ms1\r\nmd ms1\r\nmd ms1 q\r\nmd ms1 O9 k\r\n"),
        ("meta arith", b"ma nothere\r\nma nothere N0 J13 v\r\nma nothere v\r\nma nothere MD D20 v\r\nma nothere q\r\n"
                       b"ma nothere MI D2 v t\r\nset na 0 0 1\r\nx\r\nma na\r\n"),
        ("meta vivify", b"mg viv N30 t v\r\nmg viv N30 t v\r\nms viv 3 T30\r\nnew\r\nmg viv v t\r\n"),
        ("meta stale", b"ms st 1 T100\r\na\r\nmd st I T30\r\nmg st v c\r\nmg st v\r\n"),
        ("meta base64", b"ms Zm9v 3 b\r\nbar\r\nget foo\r\nmg Zm9v b v k\r\n"),
        ("meta errors", b"mg\r\nmg k1 !\r\nms k1\r\nms k1 abc\r\nma k1 MX\r\nmg " + b"k" * 251 + b" v\r\n"),
        ("flush", b"set fl 0 0 1\r\na\r\nflush_all\r\nget fl\r\nset fl 0 0 1\r\na\r\nflush_all 0 noreply\r\nget fl\r\n"),
        ("version", b"version\r\n"),
        ("stats groups", b"stats reset\r\nstats nosuchgroup\r\nstats sizes\r\n"),
    ]
    return s


def bin_script():
    flags_exp = lambda f, e: struct.pack(">II", f, e)
    return [
        ("bin set/get", bin_req(0x01, b"bk", b"val", flags_exp(7, 0)) + bin_req(0x00, b"bk", opaque=5)),
        ("bin getk miss", bin_req(0x0c, b"nokey", opaque=6) + bin_req(0x0d, b"nokey") + bin_req(0x0c, b"bk")),
        ("bin add/replace", bin_req(0x02, b"bk", b"x", flags_exp(0, 0)) + bin_req(0x03, b"none", b"x", flags_exp(0, 0))),
        ("bin incr", bin_req(0x05, b"cnt", extras=struct.pack(">QQI", 5, 100, 0)) +
                     bin_req(0x05, b"cnt", extras=struct.pack(">QQI", 5, 100, 0)) +
                     bin_req(0x06, b"cnt", extras=struct.pack(">QQI", 500, 0, 0)) +
                     bin_req(0x05, b"none", extras=struct.pack(">QQI", 1, 0, 0xffffffff)) +
                     bin_req(0x05, b"bk", extras=struct.pack(">QQI", 1, 0, 0))),
        ("bin append", bin_req(0x0e, b"bk", b"++") + bin_req(0x0f, b"bk", b"--") + bin_req(0x00, b"bk")),
        ("bin delete", bin_req(0x04, b"bk") + bin_req(0x04, b"bk")),
        ("bin quiet", bin_req(0x11, b"q1", b"v", flags_exp(0, 0)) + bin_req(0x09, b"q1") + bin_req(0x09, b"none")),
        ("bin touch", bin_req(0x11, b"t1", b"v", flags_exp(0, 0)) + bin_req(0x1c, b"t1", extras=struct.pack(">I", 100)) +
                      bin_req(0x1d, b"t1", extras=struct.pack(">I", 100)) + bin_req(0x1c, b"none", extras=struct.pack(">I", 1))),
        ("bin version", bin_req(0x0b)),
        ("bin flush", bin_req(0x08) + bin_req(0x00, b"q1")),
    ]


CAS_RE = re.compile(rb"^(VALUE \S+ \d+ \d+ )(\d+)(\r\n)", re.M)
META_CAS_RE = re.compile(rb"(?<= )c(\d+)")
VERSION_RE = re.compile(rb"^VERSION [^\r\n]*", re.M)
LA_RE = re.compile(rb"\b(la|exp)=-?\d+")


def normalise(data, names):
    """cas values are renamed in order of appearance, so equal stays equal and different stays different."""
    def name(v):
        return names.setdefault(v, b"%d" % (len(names) + 1))
    data = CAS_RE.sub(lambda m: m.group(1) + b"CAS" + name(m.group(2)) + m.group(3), data)
    data = META_CAS_RE.sub(lambda m: b"cCAS" + name(m.group(1)), data)
    data = VERSION_RE.sub(b"VERSION x", data)
    return LA_RE.sub(lambda m: m.group(1) + b"=n", data)


def bin_normalise(data, names):
    """Binary replies: the cas field of every header renamed; the version body replaced."""
    out, i = b"", 0
    while i + 24 <= len(data):
        hdr = bytearray(data[i:i + 24])
        blen = struct.unpack(">I", hdr[8:12])[0]
        body = data[i + 24:i + 24 + blen]
        cas = struct.unpack(">Q", hdr[16:24])[0]
        if cas:
            hdr[16:24] = struct.pack(">Q", int(names.setdefault(cas, len(names) + 1)))
        if hdr[1] == 0x0b:
            body = b"VERSION"
            hdr[8:12] = struct.pack(">I", len(body))
        out += bytes(hdr) + body
        i += 24 + blen
    return out + data[i:]


def converse(host, port):
    """The scripted conversation's replies, normalised; one connection for text, one for binary."""
    replies, names = [], {}
    c = Conn(host, port)
    c.text(b"flush_all\r\n")
    for name, req in text_script():
        replies.append((name, normalise(c.text(req), names)))
    c.text(b"set exp 0 1 1\r\na\r\n")
    time.sleep(2.2)
    replies.append(("expired", normalise(c.text(b"get exp\r\nmg exp v\r\n"), names)))
    c.close()
    b = Conn(host, port)
    bnames = {}
    for name, req in bin_script():
        replies.append((name, bin_normalise(b.binary(req), bnames)))
    b.close()
    for name, req in (("quit", b"quit\r\n"), ("line too long", b"get " + b"k" * 20000 + b"\r\n"),
                      ("bin bad magic", b"\x80\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00" + b"\x00" * 12),
                      # memcached skips 24 + extras + key + body bytes after an unknown opcode, then answers
                      ("bin get without key", bin_req(0x00)), ("bin set without extras", bin_req(0x01, b"k", b"v")),
                      ("bin unknown opcode", bin_req(0x55, b"k") + bytes(24)), ("bin long key", bin_req(0x00, b"k" * 251))):
        q = Conn(host, port)
        data, closed = q.closed_after(req)
        replies.append((name, repr((data, closed)).encode()))
        q.close()
    return replies


def pymemcache_session(host, port):
    """What a real client library sees: the same calls against both servers must return the same things."""
    c = Client((host, port), connect_timeout=TIMEOUT, timeout=TIMEOUT, default_noreply=False)
    out = []
    rec = lambda name, v: out.append((name, repr(v)))
    c.flush_all()
    rec("set", c.set("a", b"1"))
    rec("get", c.get("a"))
    rec("set_many", c.set_many({"b": b"2", "c": b"3", "d": b"x" * 100000}))
    rec("get_many", c.get_many(["a", "b", "c", "zz", "d"]))
    val, cas = c.gets("a")
    rec("gets", val)
    rec("cas ok", c.cas("a", b"5", cas))
    rec("cas stale", c.cas("a", b"6", cas))
    rec("cas missing", c.cas("nope", b"6", b"1"))
    rec("add", (c.add("a", b"x"), c.add("e", b"y")))
    rec("replace", (c.replace("a", b"r"), c.replace("nope", b"r")))
    rec("append", (c.append("a", b"+"), c.prepend("a", b"-"), c.get("a")))
    rec("incr", (c.set("n", b"41"), c.incr("n", 1), c.decr("n", 50), c.incr("nope", 1)))
    rec("touch", (c.touch("a", 100), c.touch("nope", 1)))
    rec("delete", (c.delete("a"), c.delete("a"), c.get("a")))
    rec("delete_many", c.delete_many(["b", "c"]))
    rec("flags", (c.set("f", b"v", flags=12345), c._fetch_cmd(b"get", [b"f"], False)))
    rec("expire", c.set("x", b"1", expire=1))
    time.sleep(2.1)
    rec("expired", c.get("x"))
    rec("flush", (c.flush_all(), c.get("b"), c.get("e")))
    rec("binary value", (c.set("bin", bytes(range(256)) * 4), c.get("bin") == bytes(range(256)) * 4))
    st = c.stats()
    rec("stats has", sorted(k for k in (b"curr_items", b"get_hits", b"cmd_get", b"version", b"uptime") if k in st))
    c.close()
    return out


def cmd_diff(host, port, ref_host, ref_port):
    ours = converse(host, port) + pymemcache_session(host, port)
    ref = converse(ref_host, ref_port) + pymemcache_session(ref_host, ref_port)
    diffs = [{"step": a[0], "ours": a[1][:400].decode(errors="replace") if isinstance(a[1], bytes) else a[1][:400],
              "memcached": b[1][:400].decode(errors="replace") if isinstance(b[1], bytes) else b[1][:400]}
             for a, b in zip(ours, ref) if a != b]
    print(json.dumps({"steps": len(ref), "mismatches": diffs}))
    return 0 if not diffs and len(ours) == len(ref) else 1


def cmd_udp(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)

    def ask(rid, payload, end):
        """A reply may come as one message of many numbered datagrams or (memcached) as several messages."""
        s.sendto(struct.pack(">HHHH", rid, 0, 1, 0) + payload, (host, port))
        data, datagrams, parts, total = b"", 0, {}, None
        while not data.endswith(end):
            d = s.recv(2000)
            r, seq, total, _ = struct.unpack(">HHHH", d[:8])
            assert r == rid, f"reply for request {r}, expected {rid}"
            assert len(d) <= 1400, f"datagram of {len(d)} bytes"
            datagrams += 1
            parts[seq] = d[8:]
            if len(parts) == total:
                data += b"".join(parts[i] for i in range(total))
                parts = {}
        return data, datagrams

    res = {}
    res["set"], _ = ask(1, b"set u1 3 0 5\r\nhello\r\n", b"\r\n")
    res["get"], _ = ask(2, b"get u1 nokey\r\n", b"END\r\n")
    big = bytes(random.Random(1).randrange(256) for _ in range(20000))
    # A value too big for one request datagram is stored over TCP, then fetched over UDP in many frames.
    c = Client((host, port), connect_timeout=TIMEOUT, timeout=TIMEOUT)
    c.set("u2", big, noreply=False)
    c.close()
    data, frames = ask(4, b"get u2\r\n", b"END\r\n")
    ok = (res["set"] == b"STORED\r\n" and res["get"] == b"VALUE u1 3 5\r\nhello\r\nEND\r\n" and frames > 1 and
          data == b"VALUE u2 0 %d\r\n" % len(big) + big + b"\r\nEND\r\n")
    print(json.dumps({"set": res["set"].decode(), "get": res["get"].decode(), "frames": frames, "ok": ok}))
    return 0 if ok else 1


def heap_bytes(client):
    """Shoal's heap in use, summed over shards (its `stats shards`); 0 for a server without it."""
    try:
        st = client.stats("shards")
    except Exception:
        return 0
    return sum(int(v) for k, v in st.items() if k.endswith(b":heap_bytes"))


def cmd_abuse(host, port):
    """Each bad client gets memcached's reply or a clean close; a good client is served throughout."""
    good = Client((host, port), connect_timeout=TIMEOUT, timeout=TIMEOUT, default_noreply=False)
    good.set("good", b"still here")
    heap_before = heap_bytes(good)
    results = {}
    stall = Conn(host, port)
    stall.s.sendall(b"get half_a_li")            # half a line, then nothing
    stall2 = Conn(host, port)
    stall2.s.sendall(b"set k 0 0 100\r\nonly part")
    c = Conn(host, port)
    results["overlong key"] = c.text(b"get " + b"a" * 300 + b"\r\n")
    results["negative length"] = c.text(b"set k 0 0 -5\r\n")
    results["longer block"] = c.text(b"set k 0 0 2\r\nabcdef\r\n")
    results["over limit"] = c.text(b"set k 0 0 5000000\r\n" + b"z" * 5000000 + b"\r\n")
    results["after"] = c.text(b"get good\r\n")
    c.close()
    g = Conn(host, port)
    g.s.sendall(bytes(random.Random(7).randrange(256) for _ in range(4096)))   # binary garbage
    g.closed_after(b"")
    g.close()
    p = Conn(host, port)                             # 10,000 pipelined commands in one write
    reqs = b"".join(b"set p%d 0 0 1\r\nv\r\nget p%d\r\n" % (i, i) for i in range(5000))
    p.s.sendall(reqs + b"mn\r\n")
    reply = p.until(b"MN\r\n")
    results["pipelined"] = reply.count(b"STORED\r\n") == 5000 and reply.count(b"END\r\n") == 5000
    p.close()
    for i in range(1000):                            # connections opened and dropped
        try:
            s = socket.create_connection((host, port), timeout=TIMEOUT)
        except OSError as e:
            raise SystemExit(f"connection {i} of 1000: {e}")
        s.sendall(b"get x\r\n")
        s.close()
    stall.close()
    stall2.close()
    results["good client"] = good.get("good")
    good.delete_many([f"p{i}" for i in range(5000)])
    time.sleep(1)
    heap_after = heap_bytes(good)
    # Everything the abuse left behind is gone: what the heap grew by must be a small constant
    # (no buffered 5 MB value, nothing per dropped connection). Unknown (0) for other servers.
    results["heap growth"] = heap_after - heap_before
    good.close()
    ok = (results["overlong key"].startswith(b"CLIENT_ERROR") and results["negative length"].startswith(b"CLIENT_ERROR")
          and b"CLIENT_ERROR bad data chunk" in results["longer block"]
          and results["over limit"].startswith(b"SERVER_ERROR object too large for cache")
          and results["after"] == b"VALUE good 0 10\r\nstill here\r\nEND\r\n" and results["pipelined"]
          and results["good client"] == b"still here" and results["heap growth"] < (8 << 20))
    print(json.dumps({k: (v.decode(errors="replace")[:120] if isinstance(v, bytes) else v) for k, v in results.items()}
                     | {"ok": ok}))
    return 0 if ok else 1


def cmd_spread(host, port, shards):
    c = Client((host, port), connect_timeout=TIMEOUT, timeout=TIMEOUT, default_noreply=False)
    c.flush_all()
    keys = [f"key{i}" for i in range(400)]
    for k in keys:
        c.set(k, k.encode() * 3)
    per_shard = {}
    for k, v in c.stats("shards").items():
        m = re.match(rb"shard:(\d+):curr_items", k)
        if m:
            per_shard[int(m.group(1))] = int(v)
    conn = Conn(host, port)                          # multi-get across shards, in order, some missing
    order = random.Random(3).sample(keys, 100) + ["missing1"] + keys[:5]
    reply = conn.text(b"get " + " ".join(order).encode() + b"\r\n")
    expect = b"".join(b"VALUE %s 0 %d\r\n%s\r\n" % (k.encode(), len(k) * 3, k.encode() * 3)
                      for k in order if k != "missing1") + b"END\r\n"
    conn.close()
    # flush_all is lazy (as memcached's): earlier items may still be counted until the sweep reaches them
    ok = len(per_shard) == shards and all(v > 0 for v in per_shard.values()) and sum(per_shard.values()) >= 400 \
        and reply == expect
    print(json.dumps({"per_shard": per_shard, "multi_get_in_order": reply == expect, "ok": ok}))
    return 0 if ok else 1


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "diff":
        return cmd_diff(args[0], int(args[1]), args[2], int(args[3]))
    if cmd == "udp":
        return cmd_udp(args[0], int(args[1]))
    if cmd == "abuse":
        return cmd_abuse(args[0], int(args[1]))
    if cmd == "spread":
        return cmd_spread(args[0], int(args[1]), int(args[2]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
