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
    """The 6-byte wire form of common/addr.c: port (big-endian), then IPv4."""
    return Bin(struct.pack(">H", port) + bytes(ip))


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


# Method ids (src/common/proto.h).
MGR_KEEPALIVE, MGR_RING_GET, MGR_SUBSCRIBE, MGR_SERVER_HELLO = 0, 1, 2, 3
MGR_RING_SYNC, MGR_COPY_END, MGR_DELETE_END, MGR_STATUS = 5, 10, 11, 99
MGR_ATTACH, MGR_DETACH, MGR_BACKUP, MGR_AUTO_REPLACE, MGR_REPLACE = 100, 101, 102, 103, 104
SRV_KEEPALIVE, SRV_RING_PUSH, SRV_REPLACE_COPY, SRV_REPLACE_DELETE = 0, 2, 8, 9
SRV_GET, SRV_STORE, SRV_DELETE, SRV_ARITH, SRV_TOUCH, SRV_FLUSH = 34, 35, 36, 37, 38, 39
SRV_REPLICATE, SRV_KEYS, SRV_HS_GET, SRV_BACKUP, SRV_STATS, SRV_SET_CONFIG = 40, 41, 95, 96, 97, 98


SRV_GET_MULTI, SRV_STREAM_BATCH = 48, 16


def rpc_server_seeds():
    # The first byte picks the port: 0 the RPC port, 1 the stream port.
    w = lambda name, *msgs: write("rpc_server", name, b"\x00" + b"".join(msgs))
    ws = lambda name, *msgs: write("rpc_server", name, b"\x01" + b"".join(msgs))
    recs = batch_records()
    raw = b"".join(pack(r) for r in recs)
    ws("stream_batch", req(1, SRV_STREAM_BATCH, [5, len(recs), len(raw), Bin(lz4_literals(raw))]),
       req(2, SRV_STREAM_BATCH, [5, 1, len(raw), Bin(lz4_literals(raw))]))
    ws("stream_bad", req(1, SRV_STREAM_BATCH, [5, 1, 1 << 30, Bin(b"\x00")]), req(2, SRV_GET, [Bin(b"k"), False, 0]))
    k = Bin(b"foo")
    w("keepalive", req(1, SRV_KEEPALIVE, []))
    w("store_get", req(1, SRV_STORE, [0, k, 5, 0, Bin(b"bar"), 0, False]),
      req(2, SRV_GET, [k, False, 0]), req(3, SRV_GET, [k, True, 100]))
    w("store_ops", *[req(i + 1, SRV_STORE, [op, k, 1, -1 if op == 3 else 60, Bin(b"v"), 0, op == 4])
                     for i, op in enumerate(range(6))])
    w("cas", req(1, SRV_STORE, [0, k, 0, 0, Bin(b"a"), 0, False]),
      req(2, SRV_GET, [k, False, 0]), req(3, SRV_STORE, [5, k, 0, 0, Bin(b"b"), 1, False]))
    w("delete", req(1, SRV_STORE, [0, k, 0, 0, Bin(b"a"), 0, False]),
      req(2, SRV_DELETE, [k, False, 0, 0]), req(3, SRV_DELETE, [k, True, 1 << 40, 0]),
      req(4, SRV_DELETE, [k, False, 0, 12345]))
    w("arith", req(1, SRV_STORE, [0, Bin(b"n"), 0, 0, Bin(b"10"), 0, False]),
      req(2, SRV_ARITH, [Bin(b"n"), True, 5, False, 0, False, 0, 0]),
      req(3, SRV_ARITH, [Bin(b"n"), False, 100, True, 0, False, 0, 0]),
      req(4, SRV_ARITH, [Bin(b"missing"), True, 1, False, 0, True, 7, 60]))
    w("touch", req(1, SRV_STORE, [0, k, 0, 0, Bin(b"a"), 0, False]), req(2, SRV_TOUCH, [k, 30, False]))
    w("flush", req(1, SRV_FLUSH, [0]), req(2, SRV_FLUSH, [10]), req(3, SRV_GET, [k, False, 0]))
    w("replicate", req(1, SRV_REPLICATE, [1 << 32, k, 1, 5 << 32, 9, 0, 0, Bin(b"r")]),
      req(2, SRV_REPLICATE, [1 << 32, k, 2, 6 << 32, 9, 0, 0, Bin(b"")]))
    w("ring_push", req(1, SRV_RING_PUSH, [hs(2 << 32, (SELF, SELF + 1, SELF + 2))]),
      req(2, SRV_STORE, [0, k, 0, 0, Bin(b"a"), 0, False]), req(3, SRV_HS_GET, []))
    w("replace", req(1, SRV_REPLACE_COPY, [3 << 32, hs(3 << 32, (SELF, SELF + 1), 2 << 32, (SELF,)), True]),
      req(2, SRV_REPLACE_DELETE, [3 << 32, hs(3 << 32, (SELF, SELF + 1))]))
    w("admin", req(1, SRV_STATS, []), req(2, SRV_SET_CONFIG, [0, True]), req(3, SRV_HS_GET, []))
    w("keys", req(1, SRV_STORE, [0, k, 0, 0, Bin(b"a"), 0, False]),
      req(2, SRV_STORE, [0, Bin(b"fox"), 0, 0, Bin(b"b"), 0, False]),
      req(3, SRV_KEYS, [None, 1, Bin(b"f")]), req(4, SRV_KEYS, [Bin(b"foo"), 10, Bin(b"")]))
    w("backup", req(1, SRV_STORE, [0, k, 0, 0, Bin(b"a"), 0, False]), req(2, SRV_BACKUP, ["b1"]),
      req(3, SRV_BACKUP, ["../x"]))
    big = Bin(b"v" * 3000)
    w("get_multi", req(1, SRV_STORE, [0, k, 0, 0, Bin(b"a"), 0, False]),
      req(2, SRV_GET_MULTI, [[k, Bin(b"missing"), k]]), req(3, SRV_GET_MULTI, [[]]),
      req(4, SRV_GET_MULTI, [[k, 5]]))
    # 100 reads of a 3000-byte value: over the answer's 256 KiB, the rest
    # answered RPC_EAGAIN.
    w("get_multi_full", req(1, SRV_STORE, [0, k, 0, 0, big, 0, False]),
      req(2, SRV_GET_MULTI, [[k] * 100]))
    w("errors", req(2, SRV_GET, [k]), req(3, SRV_GET, [1, 2, 3]), res(4, True), req(1, 200, []),
      pack([0, 5, SRV_GET]))


def rpc_manager_seeds():
    w = lambda name, *msgs: write("rpc_manager", name, b"".join(msgs))
    me = addr(SELF)
    w("hello_attach", req(1, MGR_SERVER_HELLO, [me, 19900]), req(2, MGR_KEEPALIVE, [0, 0]),
      req(3, MGR_ATTACH, [True]), res(1, True), req(4, MGR_STATUS, []))
    w("ring_get", req(1, MGR_RING_GET, []), req(2, MGR_SUBSCRIBE, []), req(3, MGR_STATUS, []))
    w("replace", req(1, MGR_SERVER_HELLO, [me, 19900]), req(6, MGR_KEEPALIVE, [0, 0]),
      req(2, MGR_ATTACH, [False]),
      req(3, MGR_REPLACE, [True]), res(1, True), res(2, True),
      req(4, MGR_COPY_END, [0, me, True]), req(5, MGR_DELETE_END, [0, me]))
    w("detach", req(1, MGR_SERVER_HELLO, [me, 19900]), req(6, MGR_KEEPALIVE, [0, 0]),
      req(2, MGR_ATTACH, [True]),
      req(3, MGR_DETACH, [True]), req(4, MGR_AUTO_REPLACE, [True]), req(5, MGR_AUTO_REPLACE, [False]))
    w("backup", req(1, MGR_SERVER_HELLO, [me, 19900]), req(6, MGR_KEEPALIVE, [0, 0]),
      req(2, MGR_ATTACH, [True]),
      req(3, MGR_BACKUP, ["b1"]), res(1, True), res(2, True), res(3, None, [6, "disk full"]))
    w("ring_sync", req(1, MGR_RING_SYNC, [addr(19701), hs(2 << 32, (SELF, SELF + 1))]),
      req(2, MGR_RING_SYNC, [addr(19999), hs()]), req(3, MGR_RING_GET, []))
    w("errors", req(2, MGR_ATTACH, []), req(3, MGR_SERVER_HELLO, [Bin(b"x"), 70000]),
      req(4, MGR_KEEPALIVE, ["a", "b"]), res(9, None, [5, "x"]), req(1, 7, []))


def main():
    ring_seeds()
    record_seeds()
    stream_batch_seeds()
    rpc_server_seeds()
    rpc_manager_seeds()
    if len(sys.argv) > 1:
        print("usage: mkseeds.py", file=sys.stderr)


if __name__ == "__main__":
    main()
