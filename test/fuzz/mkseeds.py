#!/usr/bin/env python3
"""Writes the msgpack seed corpora of the fuzz targets (ring, rpc_server,
rpc_manager, stream_batch, record) into test/fuzz/corpus. The files are
committed; rerun this only to change them. A small msgpack encoder is
built in, so nothing needs installing."""
import os
import struct
import sys


class Bin(bytes):
    pass


def pack(o):
    if o is None:
        return b"\xc0"
    if o is True:
        return b"\xc3"
    if o is False:
        return b"\xc2"
    if isinstance(o, int):
        if o >= 0:
            if o < 128:
                return bytes([o])
            if o < 1 << 8:
                return b"\xcc" + struct.pack(">B", o)
            if o < 1 << 16:
                return b"\xcd" + struct.pack(">H", o)
            if o < 1 << 32:
                return b"\xce" + struct.pack(">I", o)
            return b"\xcf" + struct.pack(">Q", o)
        if o >= -32:
            return struct.pack(">b", o)
        return b"\xd3" + struct.pack(">q", o)
    if isinstance(o, Bin):
        n = len(o)
        if n < 256:
            return b"\xc4" + bytes([n]) + o
        return b"\xc6" + struct.pack(">I", n) + o
    if isinstance(o, (str, bytes)):
        b = o.encode() if isinstance(o, str) else o
        n = len(b)
        if n < 32:
            return bytes([0xa0 | n]) + b
        if n < 256:
            return b"\xd9" + bytes([n]) + b
        return b"\xdb" + struct.pack(">I", n) + b
    if isinstance(o, (list, tuple)):
        n = len(o)
        h = bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n)
        return h + b"".join(pack(x) for x in o)
    if isinstance(o, dict):
        n = len(o)
        h = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
        return h + b"".join(pack(k) + pack(v) for k, v in o.items())
    raise TypeError(o)


def addr(port, ip=(127, 0, 0, 1)):
    return Bin(bytes(ip) + struct.pack(">H", port))


SELF = 19800   # the fuzzed server's own address (see fuzz_rpc_server.c)


def ring(stamp, ports, fault=(), stream=True):
    nodes = []
    for p in ports:
        n = [addr(p), p not in fault]
        if stream:
            n.append(p + 100)
        nodes.append(n)
    return [stamp, nodes]


def hs(stamp=1 << 32, ports=(SELF,), rstamp=None, rports=None):
    return [ring(stamp, ports), ring(rstamp or stamp, rports or ports)]


def req(msgid, method, params):
    return pack([0, msgid, method, params])


def res(msgid, result, err=None):
    return pack([1, msgid, err, result])


def write(target, name, data):
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def ring_seeds():
    write("ring", "single", pack(hs()))
    write("ring", "three", pack(hs(5 << 32, (SELF, SELF + 1, SELF + 2))))
    write("ring", "replacing", pack(hs(7 << 32, (SELF, SELF + 1, SELF + 2), 6 << 32, (SELF, SELF + 1))))
    write("ring", "fault", pack([ring(9, (SELF, SELF + 1), fault=(SELF + 1,)), ring(9, (SELF, SELF + 1), fault=(SELF + 1,))]))
    write("ring", "no_port", pack([ring(3, (SELF, 20000), stream=False), ring(3, (SELF,), stream=False)]))
    write("ring", "empty", pack([[0, []], [0, []]]))
    write("ring", "trailing", pack(hs()) + b"\xc1\x00")


def record_seeds():
    hdr = lambda kind, clock, node, flags, exp, data: (
        bytes([1, kind, 0, 0]) + b"\0\0\0\0" + struct.pack(">QIIII", clock, node, flags, exp, len(data)) + data)
    # first byte: 0x80 (repair) | key length
    write("record", "live", bytes([0x80 | 3]) + b"foo" + hdr(1, 5 << 32, 7, 42, 0, b"value"))
    write("record", "tombstone", bytes([0x80 | 1]) + b"k" + hdr(2, 6 << 32, 7, 0, 0, b""))
    write("record", "expiring", bytes([0x80 | 2]) + b"ab" + hdr(1, 1, 1, 0, 1700000000, b"x" * 40))
    write("record", "empty_value", bytes([0x80 | 1]) + b"e" + hdr(1, 2, 3, 4, 5, b""))
    write("record", "unrepaired", bytes([3]) + b"foo" + hdr(1, 5 << 32, 7, 42, 0, b"value"))


def lz4_literals(raw):
    """raw as one LZ4 block of literals only (valid, uncompressed)."""
    n = len(raw)
    if n < 15:
        return bytes([n << 4]) + raw
    ext, rest = b"", n - 15
    while rest >= 255:
        ext += b"\xff"
        rest -= 255
    return b"\xf0" + ext + bytes([rest]) + raw


def batch_records():
    return [
        [Bin(b"foo"), 1, 5 << 32, 7, 42, 0, Bin(b"value")],
        [Bin(b"gone"), 2, 6 << 32, 8, 0, 0, Bin(b"")],
        [Bin(b"e" * 250), 1, 1, 1, 0, 1700000000, Bin(b"x" * 300)],
        ["strkey", 1, 2, 2, 0, 0, "str data"],
    ]


def stream_batch_seeds():
    recs = batch_records()
    raw = b"".join(pack(r) for r in recs)
    # mode 1: count, raw records (the target compresses them)
    write("stream_batch", "records", b"\x01" + bytes([len(recs)]) + raw)
    write("stream_batch", "one_record", b"\x01\x01" + pack(recs[0]))
    write("stream_batch", "empty", b"\x01\x00")
    # mode 0: the wire form
    z = lz4_literals(raw)
    write("stream_batch", "wire", b"\x00" + pack([9, len(recs), len(raw), Bin(z)]))
    write("stream_batch", "wire_short_count", b"\x00" + pack([9, 9, len(raw), Bin(z)]))
    # mode 2: raw_len, count, block
    write("stream_batch", "block", b"\x02" + struct.pack(">I", len(raw)) + bytes([len(recs)]) + z)
    write("stream_batch", "bomb", b"\x02" + struct.pack(">I", 65 << 20) + b"\x01" + b"\x1f\x00\x01\x00" + b"\xff" * 40 + b"\x00")


def main():
    ring_seeds()
    record_seeds()
    stream_batch_seeds()
    if len(sys.argv) > 1:
        print("usage: mkseeds.py", file=sys.stderr)


if __name__ == "__main__":
    main()
