"""transcript_binary.py - memcached binary protocol cases for
it_transcript.py: request frames built here, replies compared frame by
frame (normalise_binary in it_transcript.py).
"""
import struct

from transcript_cases import Case

OP = dict(get=0x00, set=0x01, add=0x02, replace=0x03, delete=0x04,
          incr=0x05, decr=0x06, quit=0x07, flush=0x08, getq=0x09,
          noop=0x0A, version=0x0B, getk=0x0C, getkq=0x0D, append=0x0E,
          prepend=0x0F, stat=0x10, setq=0x11, addq=0x12, replaceq=0x13,
          deleteq=0x14, incrq=0x15, decrq=0x16, quitq=0x17, flushq=0x18,
          appendq=0x19, prependq=0x1A, verbosity=0x1B, touch=0x1C,
          gat=0x1D, gatq=0x1E, gatk=0x23, gatkq=0x24)


def frame(op, key=b"", extras=b"", value=b"", opaque=0, cas=0,
          magic=0x80, bodylen=None, keylen=None, extlen=None):
    """One request; the lengths may be forced to build bad headers."""
    if isinstance(op, str):
        op = OP[op]
    kl = len(key) if keylen is None else keylen
    el = len(extras) if extlen is None else extlen
    bl = len(extras) + len(key) + len(value) if bodylen is None else bodylen
    return struct.pack(">BBHBBHIIQ", magic, op, kl, el, 0, 0, bl, opaque,
                       cas) + extras + key + value


def store(op, key, value, flags=0, exptime=0, opaque=0, cas=0):
    return frame(op, key, struct.pack(">II", flags, exptime), value,
                 opaque, cas)


def arith(op, key, delta, initial=0, exptime=0, opaque=0):
    return frame(op, key, struct.pack(">QQI", delta, initial, exptime),
                 opaque=opaque)


def bcase(name, *steps, **kw):
    return Case(name, *steps, binary=True, **kw)


BINARY_CASES = [
    bcase("bin noop", frame("noop", opaque=7)),
    bcase("bin version", frame("version", opaque=1)),
    bcase("bin set get", store("set", b"k", b"hello", flags=5, opaque=1)
          + frame("get", b"k", opaque=2)),
    bcase("bin get miss", frame("get", b"nope", opaque=3)),
    bcase("bin getk hit and miss", store("set", b"k", b"v")
          + frame("getk", b"k", opaque=4) + frame("getk", b"no", opaque=5)),
    bcase("bin getq miss silent, hit shown",
          store("set", b"a", b"1") + frame("getq", b"zz", opaque=1)
          + frame("getq", b"a", opaque=2)),
    bcase("bin getkq", store("set", b"a", b"1") + frame("getkq", b"a", opaque=3)
          + frame("getkq", b"b", opaque=4)),
    bcase("bin add exists", store("set", b"k", b"1")
          + store("add", b"k", b"2", opaque=9)),
    bcase("bin add new", store("add", b"k", b"2", opaque=9)
          + frame("get", b"k")),
    bcase("bin replace missing", store("replace", b"k", b"2", opaque=3)),
    bcase("bin replace existing", store("set", b"k", b"1")
          + store("replace", b"k", b"2") + frame("get", b"k")),
    bcase("bin setq silent", store("setq", b"k", b"q", opaque=1)
          + frame("get", b"k", opaque=2)),
    bcase("bin addq exists shows error", store("set", b"k", b"1")
          + store("addq", b"k", b"2", opaque=8)),
    bcase("bin replaceq missing shows error",
          store("replaceq", b"k", b"2", opaque=8)),
    bcase("bin delete", store("set", b"k", b"1")
          + frame("delete", b"k", opaque=1) + frame("get", b"k", opaque=2)),
    bcase("bin delete missing", frame("delete", b"k", opaque=1)),
    bcase("bin deleteq silent", store("set", b"k", b"1")
          + frame("deleteq", b"k", opaque=1) + frame("get", b"k", opaque=2)),
    bcase("bin deleteq missing shows error", frame("deleteq", b"k", opaque=1)),
    bcase("bin incr existing", store("set", b"n", b"10")
          + arith("incr", b"n", 5, opaque=1) + frame("get", b"n")),
    bcase("bin incr creates with initial", arith("incr", b"n", 5, 100)
          + frame("get", b"n")),
    bcase("bin incr no create", arith("incr", b"n", 5, 100, 0xFFFFFFFF)),
    bcase("bin decr floors at 0", store("set", b"n", b"3")
          + arith("decr", b"n", 10)),
    bcase("bin incr non-numeric", store("set", b"n", b"abc")
          + arith("incr", b"n", 1)),
    bcase("bin incrq silent", store("set", b"n", b"1")
          + arith("incrq", b"n", 1) + frame("get", b"n", opaque=3)),
    bcase("bin append prepend", store("set", b"k", b"mid")
          + frame("append", b"k", value=b">>") + frame("prepend", b"k",
                                                       value=b"<<")
          + frame("get", b"k")),
    bcase("bin append missing", frame("append", b"k", value=b"x", opaque=2)),
    bcase("bin appendq silent", store("set", b"k", b"a")
          + frame("appendq", b"k", value=b"b") + frame("get", b"k")),
    bcase("bin cas mismatch", store("set", b"k", b"1")
          + store("set", b"k", b"2", cas=12345, opaque=4)),
    bcase("bin cas on missing key", store("set", b"k", b"2", cas=12345)),
    bcase("bin touch", store("set", b"k", b"v", flags=3)
          + frame("touch", b"k", struct.pack(">I", 100), opaque=6)),
    bcase("bin touch missing", frame("touch", b"k", struct.pack(">I", 100))),
    bcase("bin gat", store("set", b"k", b"v", flags=3)
          + frame("gat", b"k", struct.pack(">I", 100), opaque=6)),
    bcase("bin gatk miss", frame("gatk", b"k", struct.pack(">I", 100))),
    bcase("bin gatq miss silent", frame("gatq", b"k", struct.pack(">I", 10))),
    bcase("bin flush", store("set", b"k", b"v") + frame("flush", opaque=1)
          + frame("get", b"k", opaque=2)),
    bcase("bin flushq silent", store("set", b"k", b"v") + frame("flushq")
          + frame("get", b"k")),
    bcase("bin quit", frame("quit", opaque=5), sentinel=False),
    bcase("bin quitq", frame("quitq", opaque=5), sentinel=False),
    bcase("bin get with extras refused", frame("get", b"k", b"\0\0\0\0"),
          sentinel=False),
    bcase("bin set without extras refused", frame("set", b"k", value=b"v"),
          sentinel=False),
    bcase("bin key 251 bytes refused", frame("get", b"k" * 251),
          sentinel=False),
    bcase("bin unknown opcode", frame(0x50, b"k", opaque=9),
          known="memcached 1.6.18 skips an unknown command's body twice and "
                "eats the next request (the sentinel noop); kumo skips it once"),
    bcase("bin bad magic closes", frame("noop", magic=0x42), sentinel=False),
    bcase("bin extlen+keylen over bodylen", frame("get", b"k", bodylen=0,
                                                  keylen=1), sentinel=False),
    bcase("bin value too large", store("set", b"big", b"v" * (1024 * 1024 + 1),
                                       opaque=3) + frame("get", b"big")),
    bcase("bin pipelined mixed", store("set", b"a", b"1", opaque=1)
          + store("set", b"b", b"2", opaque=2) + frame("getq", b"a", opaque=3)
          + frame("getq", b"x", opaque=4) + frame("getk", b"b", opaque=5)
          + frame("noop", opaque=6)),
    bcase("bin split header", frame("noop", opaque=1)[:10],
          frame("noop", opaque=1)[10:]),
]
