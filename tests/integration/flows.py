"""The image's flow steering, computed on the host: which shard owns a TCP/UDP flow.

The same Toeplitz key and indirection table as net/toeplitz.c, so a test can
pick source ports whose flows land on every shard (tests/unit/test_toeplitz.c
checks the C side against published vectors; flows_selftest() checks this
side against the same vectors).
"""
import ipaddress

FLOW_KEY = bytes([
    0x53, 0x68, 0x6f, 0x61, 0x6c, 0x2d, 0x72, 0x73, 0x73, 0x6b, 0x3c, 0x91, 0x7e, 0x05, 0xd2, 0x48,
    0xa1, 0x37, 0x6b, 0xe9, 0x14, 0xc8, 0x5f, 0x20, 0x9a, 0x73, 0x0e, 0xb6, 0x42, 0xdd, 0x81, 0x3f,
    0x66, 0x2c, 0xf4, 0x19, 0x87, 0x5a, 0xc3, 0x0b,
])
FLOW_TABLE_LEN = 128

# Microsoft's RSS verification key and two of its IPv4 TCP vectors.
_MS_KEY = bytes.fromhex("6d5a56da255b0ec24167253d43a38fb0d0ca2bcbae7b30b477cb2da38030f20c6a42b73bbeac01fa")
_MS_VECTORS = [(("66.9.149.187", 2794), ("161.142.100.80", 1766), 0x51ccc178),
               (("199.92.111.2", 14230), ("65.69.140.83", 4739), 0xc626b0ea)]

def toeplitz(key, data):
    """The 32 key bits starting at input bit i, XORed for every set input bit i."""
    k = int.from_bytes(key, "big")
    klen = len(key) * 8
    assert len(data) * 8 + 32 <= klen, "key too short for the input"
    h = 0
    for i in range(len(data) * 8):
        if data[i // 8] >> (7 - i % 8) & 1:
            h ^= (k >> (klen - 32 - i)) & 0xFFFFFFFF
    return h

def flow_hash(src, sport, dst, dport, key=FLOW_KEY):
    data = ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
    data += sport.to_bytes(2, "big") + dport.to_bytes(2, "big")
    return toeplitz(key, data)

def flow_shard(src, sport, dst, dport, nshards):
    """The shard that owns the flow src:sport -> dst:dport (flow_shard() in net/toeplitz.h)."""
    return (flow_hash(src, sport, dst, dport) & (FLOW_TABLE_LEN - 1)) % nshards

def ports_per_shard(src, dst, dport, nshards, per_shard=1, first=40000):
    """{shard: [source ports]} with per_shard ports whose flows to dst:dport land on each shard."""
    out = {s: [] for s in range(nshards)}
    port = first
    while any(len(v) < per_shard for v in out.values()):
        s = flow_shard(src, port, dst, dport, nshards)
        if len(out[s]) < per_shard:
            out[s].append(port)
        port += 1
        if port > 65535:
            raise ValueError("ran out of source ports")
    return out

def flows_selftest():
    for (src, sport), (dst, dport), want in _MS_VECTORS:
        got = flow_hash(src, sport, dst, dport, key=_MS_KEY)
        assert got == want, f"toeplitz({src}:{sport} -> {dst}:{dport}) = {got:#x}, want {want:#x}"
