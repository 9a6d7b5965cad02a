#!/usr/bin/env python3
"""it_transcript.py - kumo-gateway against memcached 1.6.18, byte for byte.

Starts a memcached 1.6.18 (the system's /usr/bin/memcached, on a free
loopback port) and a kumo cluster (test/integration/h_cluster_run: one
manager, three servers, a gateway), sends each case of
transcript_cases.py to both on fresh connections, and compares what comes
back after normalisation (rules in normalise()). Prints TAP: a case whose
replies differ is "not ok", unless the case names a known difference
("# TODO <reason>"); a known difference that has gone away is "ok # TODO",
which the TAP driver reports as an unexpected pass, so the list is kept
true.

Environment: KUMO_BUILDDIR (the build tree), MEMCACHED (the memcached
binary, default /usr/bin/memcached), TRANSCRIPT_FILTER (run only cases
whose name matches this regular expression), TRANSCRIPT_VERBOSE=1 (print both replies of every
case). Python 3 standard library only.
"""
import os
import pwd
import re
import select
import struct
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import transcript_cases  # noqa: E402

MEMCACHED_VERSION = b"1.6.18"
SENTINEL = b"version\r\n"
# The binary sentinel: a noop whose opaque no case uses.
BIN_SENTINEL_OPAQUE = 0xFEEDFACE
BIN_SENTINEL = struct.pack(">BBHBBHIIQ", 0x80, 0x0A, 0, 0, 0, 0, 0,
                           BIN_SENTINEL_OPAQUE, 0)
SENTINEL_GRACE = 0.05       # quiet time after a VERSION line at the end
IO_TIMEOUT = 10.0           # longest wait for one case's replies


def escape(data, limit=600):
    """Bytes as a readable one-line string (\\r, \\n, \\xHH)."""
    out = []
    for b in data[:limit]:
        c = chr(b)
        if c == "\r":
            out.append("\\r")
        elif c == "\n":
            out.append("\\n")
        elif c == "\\":
            out.append("\\\\")
        elif 0x20 <= b < 0x7f:
            out.append(c)
        else:
            out.append("\\x%02x" % b)
    if len(data) > limit:
        out.append("...(%d bytes)" % len(data))
    return "".join(out)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Reply:
    """What a server sent on one connection, and whether it closed it (a
    reset counts as a close: whether the close is a FIN or a reset only
    depends on whether the server had unread input)."""

    def __init__(self):
        self.data = b""
        self.end = "open"           # "open" or "closed"

    def text(self):
        body = (normalise_binary(self.data) if getattr(self, "binary", False)
                else normalise(self.data))
        return body + b"<" + self.end.encode() + b">"


def recv_into(sock, reply, deadline, done):
    """Reads into reply until done(reply) holds, EOF, or the deadline."""
    while reply.end == "open" and not done(reply):
        left = deadline - time.monotonic()
        if left <= 0:
            return
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            return
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            reply.end = "closed"
            return
        if not chunk:
            reply.end = "closed"
            return
        reply.data += chunk


def quiet_for(seconds):
    """done() for recv_into: true once nothing came for seconds."""
    state = {"len": -1, "since": 0.0}

    def done(reply):
        now = time.monotonic()
        if len(reply.data) != state["len"]:
            state["len"] = len(reply.data)
            state["since"] = now
            return False
        return now - state["since"] >= seconds
    return done


def poll_until(sock, reply, seconds, done):
    """recv_into in short slices so done() is asked again while idle."""
    deadline = time.monotonic() + seconds
    while reply.end == "open" and time.monotonic() < deadline:
        if done(reply):
            return
        recv_into(sock, reply, min(deadline, time.monotonic() + 0.01),
                  done)


META_CAS = re.compile(rb"(?m)^(?:HD|VA \d+)(?: \S+)*? c(\d+)(?= |\r)")


def last_cas(data):
    """The cas unique of the last gets/gats VALUE line, or of the last
    meta reply with a c flag, in data."""
    found = [(m.start(), m.group(1)) for m in
             re.finditer(rb"VALUE \S+ \d+ \d+ (\d+)\r\n", data)]
    found += [(m.start(), m.group(1)) for m in META_CAS.finditer(data)]
    return max(found)[1] if found else b"0"


def send(sock, reply, data):
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        if reply.end == "open":
            reply.end = "closed"


def exchange(port, case):
    """Plays case on a fresh connection to port; returns its Reply."""
    reply = Reply()
    reply.binary = case.binary
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setblocking(True)
    try:
        for i, step in enumerate(case.steps):
            step = step.replace(b"{cas}", last_cas(reply.data))
            last = i == len(case.steps) - 1
            if last and case.sentinel:
                step += BIN_SENTINEL if case.binary else SENTINEL
            send(sock, reply, step)
            if not last:
                poll_until(sock, reply, case.pause, lambda r: False)
        if case.sentinel:
            ended = quiet_for(SENTINEL_GRACE)

            def done(r):
                if case.binary:
                    return binary_sentinel_seen(r.data) and ended(r)
                return (re.search(rb"VERSION [^\r\n]*\r\n\Z", r.data)
                        is not None and ended(r))
            poll_until(sock, reply, IO_TIMEOUT, done)
        else:
            poll_until(sock, reply, IO_TIMEOUT, quiet_for(case.wait))
    finally:
        sock.close()
    return reply


STAT_LINE = re.compile(rb"STAT (\S+) [^\r\n]*\r\n")
META_FIELD = re.compile(rb" (la|cas|size)=[^ \n]*")
META_LINE = re.compile(rb"(HD|VA \d+|EN|NF|NS|EX)( [^\r\n]*)?\r\n")
ME_LINE = re.compile(rb"ME (\S+) (.*) cas=(\d+) (.*)\r\n")


def meta_cas(cas, ids):
    """A meta reply's cas value as "<mcasN>", numbered in order of first
    appearance ("0", what ms answers when nothing was stored, is kept)."""
    if cas == b"0":
        return cas
    return b"<mcas%d>" % ids.setdefault(cas, len(ids) + 1)


def coarse_ttl(v):
    """A remaining time in seconds, to the nearest 5 (-1, no expiry, kept):
    memcached and kumo read the clock at slightly different moments, and a
    second may turn between them on a loaded machine."""
    n = int(v)
    return v if n == -1 else b"~%d" % (5 * round(n / 5))


def normalise(data):
    """
    The parts of a reply that must differ between memcached and kumo,
    replaced by placeholders; everything else is kept byte for byte:
    - "VERSION <anything>" -> "VERSION <version>";
    - the cas unique of a gets/gats VALUE line -> "<cas1>", "<cas2>"...,
      numbered per key in order of first appearance: a key's cas stays
      the same between writes and changes with each write on both, but
      kumo's cas (a version clock) may be equal for two keys;
    - the value of every "STAT <name> <value>" line -> "<v>" (kumo keeps
      other statistics than memcached: stats cases are compared by name);
    - in an "lru_crawler metadump" line ("key=... exp=... la=... cas=...
      fetch=... cls=... size=...\n"), la, cas and size -> "<v>": kumo's
      are its last write, its version clock and the value's length,
      memcached's its last access, its counter and the item's memory;
    - VALUE data blocks are copied as they are, whatever they contain;
    - meta replies: the value of a c flag and the cas= of an ME line ->
      "<mcas1>", "<mcas2>"... in order of first appearance on the
      connection (meta replies need not name their key); a t flag's and an
      ME line's exp= remaining time to the nearest 5 s (coarse_ttl); VA data
      blocks are copied as they are.
    """
    out = []
    cas_ids = {}                # key -> {cas: number}
    mcas_ids = {}               # meta cas -> number
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            out.append(data[pos:])
            break
        line = data[pos:nl + 1]
        pos = nl + 1
        if line.startswith(b"VERSION "):
            line = b"VERSION <version>\r\n"
        elif line.startswith(b"STAT "):
            m = STAT_LINE.match(line)
            if m:
                line = b"STAT " + m.group(1) + b" <v>\r\n"
        elif line.startswith(b"key=") and line.endswith(b"\n"):
            line = META_FIELD.sub(rb" \1=<v>", line)
        elif line.startswith(b"VALUE ") and line.endswith(b"\r\n"):
            fields = line[:-2].split(b" ")
            if len(fields) in (4, 5) and fields[3].isdigit():
                if len(fields) == 5:
                    ids = cas_ids.setdefault(fields[1], {})
                    cas = ids.setdefault(fields[4], len(ids) + 1)
                    fields[4] = b"<cas%d>" % cas
                    line = b" ".join(fields) + b"\r\n"
                size = int(fields[3]) + 2
                out.append(line)
                out.append(data[pos:pos + size])
                pos += size
                continue
        elif META_LINE.fullmatch(line):
            words = line[:-2].split(b" ")
            first = 2 if words[0] == b"VA" else 1
            for i in range(first, len(words)):
                if re.fullmatch(rb"c\d+", words[i]):
                    words[i] = b"c" + meta_cas(words[i][1:], mcas_ids)
                elif re.fullmatch(rb"t-?\d+", words[i]):
                    words[i] = b"t" + coarse_ttl(words[i][1:])
            line = b" ".join(words) + b"\r\n"
            if words[0] == b"VA" and words[1].isdigit():
                size = int(words[1]) + 2
                out.append(line)
                out.append(data[pos:pos + size])
                pos += size
                continue
        elif line.startswith(b"ME "):
            m = ME_LINE.fullmatch(line)
            if m:
                rest = re.sub(rb"exp=(-?\d+)",
                              lambda e: b"exp=" + coarse_ttl(e.group(1)),
                              m.group(2))
                line = b"ME %s %s cas=%s %s\r\n" % (
                    m.group(1), rest, meta_cas(m.group(3), mcas_ids),
                    m.group(4))
        out.append(line)
    return b"".join(out)


def binary_frames(data):
    """Splits binary protocol responses: (list of frames, leftover)."""
    frames, pos = [], 0
    while len(data) - pos >= 24 and data[pos] == 0x81:
        bodylen = struct.unpack(">I", data[pos + 8:pos + 12])[0]
        if len(data) - pos < 24 + bodylen:
            break
        frames.append(data[pos:pos + 24 + bodylen])
        pos += 24 + bodylen
    return frames, data[pos:]


def binary_sentinel_seen(data):
    frames, _ = binary_frames(data)
    return any(struct.unpack(">I", f[12:16])[0] == BIN_SENTINEL_OPAQUE
               for f in frames)


def normalise_binary(data):
    """
    Binary responses, one line per frame, with what must differ replaced:
    the cas (any non-zero one is "<cas>", 0 kept), the body of a
    version reply, and the values of stat replies. Everything else (opcode,
    status, opaque, extras, key, value) is compared as it is.
    """
    frames, rest = binary_frames(data)
    out = []
    for f in frames:
        (magic, op, keylen, extlen, dtype, status, bodylen, opaque,
         cas) = struct.unpack(">BBHBBHIIQ", f[:24])
        ext = f[24:24 + extlen]
        key = f[24 + extlen:24 + extlen + keylen]
        val = f[24 + extlen + keylen:]
        # Two keys may share a cas in kumo (version clocks of different
        # coordinators) and a reply need not name its key: any non-zero
        # cas is only "<cas>".
        if cas:
            cas = "<cas>"
        if op == 0x0B and status == 0:
            val = b"<version>"
        if op == 0x10 and key:
            val = b"<v>"
        out.append(("op=%02x st=%04x opaque=%08x cas=%s ext=%s key=%r "
                    "val=%r dt=%d\n" % (op, status, opaque, cas, ext.hex(),
                                         key, val[:200], dtype)).encode())
    if rest:
        out.append(b"<raw " + rest[:200] + b">")
    return b"".join(out)


def flush(port):
    """Empties a server before a case (flush_all on its own connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"flush_all\r\n")
        got = b""
        while not got.endswith(b"\r\n"):
            chunk = s.recv(100)
            if not chunk:
                break
            got += chunk
    if got != b"OK\r\n":
        raise RuntimeError("flush_all on port %d: %r" % (port, got))


def start_memcached(binary):
    port = free_port()
    args = [binary, "-l", "127.0.0.1", "-p", str(port), "-U", "0",
            "-t", "1", "-m", "64"]
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("nobody")
            args += ["-u", "nobody"]
        except KeyError:
            args += ["-u", "root"]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("memcached exited: %s"
                               % proc.stderr.read().decode(errors="replace"))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("memcached did not listen on port %d" % port)


def start_kumo(builddir):
    helper = os.path.join(builddir, "test", "integration", "h_cluster_run")
    proc = subprocess.Popen([helper, "1", "3"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    line = proc.stdout.readline()
    m = re.match(rb"gateway (\d+)\n", line)
    if not m:
        proc.stdin.close()
        proc.wait()
        raise RuntimeError("h_cluster_run: %r" % line)
    return proc, int(m.group(1))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    builddir = os.environ.get("KUMO_BUILDDIR") or os.path.join(here, "..",
                                                               "..")
    binary = os.environ.get("MEMCACHED", "/usr/bin/memcached")
    wanted = os.environ.get("TRANSCRIPT_FILTER", "")
    verbose = os.environ.get("TRANSCRIPT_VERBOSE", "") == "1"

    try:
        version = subprocess.run([binary, "-V"], capture_output=True,
                                 timeout=10).stdout.split()
    except OSError:
        print("1..0 # SKIP no memcached at %s" % binary)
        return 0
    if len(version) < 2 or version[1] != MEMCACHED_VERSION:
        print("1..0 # SKIP the cases are memcached %s's replies, found %s"
              % (MEMCACHED_VERSION.decode(), b" ".join(version).decode()))
        return 0

    cases = [c for c in transcript_cases.CASES if re.search(wanted, c.name)]
    names = [c.name for c in transcript_cases.CASES]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        print("Bail out! duplicate case names: %s" % ", ".join(sorted(dup)))
        return 1
    print("1..%d" % (len(cases) + 1))
    sys.stdout.flush()

    kumo = None
    failed = 0
    try:
        mc, mc_port = start_memcached(binary)
    except (OSError, RuntimeError) as e:
        print("Bail out! %s" % e)
        return 1
    try:
        try:
            kumo, kumo_port = start_kumo(builddir)
        except (OSError, RuntimeError) as e:
            print("Bail out! %s" % e)
            return 1
        for n, case in enumerate(cases, 1):
            flush(mc_port)
            flush(kumo_port)
            got = {}

            def run(side, port, case=case):
                try:
                    got[side] = exchange(port, case).text()
                except OSError as e:
                    got[side] = ("<error %s>" % e).encode()
            threads = [threading.Thread(target=run, args=(s, p))
                       for s, p in (("memcached", mc_port),
                                    ("kumo", kumo_port))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            same = got["memcached"] == got["kumo"]
            todo = " # TODO %s" % case.known if case.known else ""
            print("%s %d - %s%s" % ("ok" if same else "not ok", n, case.name,
                                    todo))
            if not same and not case.known:
                failed += 1
            if not same or verbose:
                for side in ("memcached", "kumo"):
                    print("#   %-9s %s" % (side, escape(got[side])))
            sys.stdout.flush()
    finally:
        mc.terminate()
        mc.wait()
        if kumo is not None:
            kumo.stdin.close()
            status = kumo.wait()
            print("%s %d - the kumo cluster stopped cleanly"
                  % ("ok" if status == 0 else "not ok", len(cases) + 1))
            if status != 0:
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
