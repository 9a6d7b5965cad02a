#!/usr/bin/python3
"""kumo_check.py - a verifying workload for a kumo gateway, and its checker.

Threads each own a share of the keys (one writer per key) and loop over
them: set the next generation, delete, or read. Every value says what it
is: "<key>|<generation>|<crc32>|<filler>", the CRC over the rest, so a read
tells which write it came from and whether it is intact. Every reply is
recorded: an acknowledgement (STORED, DELETED, NOT_FOUND for a delete)
makes that operation the key's known state; an error or a timeout makes it
indeterminate (it may or may not have happened). A read must return the
key's last acknowledged state or the result of an operation sent after it;
anything else is counted:

  lost         a miss (or NOT_FOUND to a delete) where a value was acknowledged
  stale        an older value than the last acknowledged write
  resurrected  a value written before an acknowledged delete
  corrupt      a value that fails its checksum or names another key
  phantom      a generation that was never sent
  unreadable   a key that still answers errors in the final reads

Runs until its standard input ends (or for --duration seconds); a line
"verify" on standard input pauses the workload, reads every key back and
prints a summary, then resumes. At the end it stops the workload, reads
every key back (retrying errors up to --final-timeout) and prints the
summary: one JSON line (machine-readable) and one human line starting with
"kumo_check:". Exit status: 0 if no invariant broke, 1 if one did (or
--max-stall / --max-errors were exceeded), 2 if it could not run.

Python 3 standard library only (run with /usr/bin/python3).
"""
import argparse
import json
import random
import re
import socket
import sys
import threading
import time
import zlib

BAD_KINDS = ("lost", "stale", "resurrected", "corrupt", "phantom",
             "unreadable")


class Indeterminate(Exception):
    """A request whose outcome the client cannot know; .kind names why."""

    def __init__(self, kind):
        super().__init__(kind)
        self.kind = kind


def error_kind(line):
    """A reply line as an error kind: numbers blanked, so that alike
    errors count together."""
    text = line.decode("latin-1", "replace").strip()
    return re.sub(r"\d+", "N", text)[:72]


class Client:
    """One memcached text connection; reconnects after any failure."""

    def __init__(self, host, port, timeout):
        self.addr = (host, port)
        self.timeout = timeout
        self.sock = None
        self.buf = b""

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf = b""

    def _connect(self):
        if self.sock is None:
            try:
                self.sock = socket.create_connection(self.addr, self.timeout)
            except socket.timeout:
                raise Indeterminate("timeout")
            except ConnectionRefusedError:
                raise Indeterminate("connection refused")
            except OSError as e:
                raise Indeterminate("connect: %s" % e.strerror)
            self.sock.settimeout(self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionResetError()
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionResetError()
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def call(self, request, reader):
        """Sends request and returns reader(self); every failure closes the
        connection and raises Indeterminate."""
        self._connect()
        try:
            self.sock.sendall(request)
            return reader(self)
        except Indeterminate:
            self.close()
            raise
        except socket.timeout:
            self.close()
            raise Indeterminate("timeout")
        except (ConnectionResetError, BrokenPipeError):
            self.close()
            raise Indeterminate("connection closed")
        except OSError as e:
            self.close()
            raise Indeterminate("socket: %s" % e.strerror)

    def set(self, key, value):
        req = b"set %s 0 0 %d\r\n%s\r\n" % (key, len(value), value)

        def read(c):
            line = c._line()
            if line == b"STORED":
                return True
            raise Indeterminate(error_kind(line))
        return self.call(req, read)

    def delete(self, key):
        """True if DELETED, False if NOT_FOUND."""
        def read(c):
            line = c._line()
            if line == b"DELETED":
                return True
            if line == b"NOT_FOUND":
                return False
            raise Indeterminate(error_kind(line))
        return self.call(b"delete %s\r\n" % key, read)

    def get(self, key):
        """The value, or None for a miss."""
        def read(c):
            line = c._line()
            if line == b"END":
                return None
            parts = line.split()
            if len(parts) != 4 or parts[0] != b"VALUE" or parts[1] != key:
                raise Indeterminate(error_kind(line))
            n = int(parts[3])
            data = c._exact(n + 2)
            if c._line() != b"END":
                raise Indeterminate("bad get reply")
            return data[:n]
        return self.call(b"get %s\r\n" % key, read)


def make_value(key, gen, size):
    rnd = random.Random(zlib.crc32(b"%s|%d" % (key, gen)))
    filler = bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz0123456789")
                   for _ in range(rnd.randrange(size + 1)))
    body = b"%s|%d|" % (key, gen)
    crc = zlib.crc32(body + filler) & 0xffffffff
    return body + b"%08x|" % crc + filler


def parse_value(key, value):
    """The generation a value carries, or None if it is corrupt or
    belongs to another key."""
    parts = value.split(b"|", 3)
    if len(parts) != 4 or parts[0] != key or not parts[1].isdigit():
        return None
    body = parts[0] + b"|" + parts[1] + b"|"
    try:
        crc = int(parts[2], 16)
    except ValueError:
        return None
    if zlib.crc32(body + parts[3]) & 0xffffffff != crc:
        return None
    return int(parts[1])


class Key:
    """One key's history since its last acknowledged operation."""

    def __init__(self, name):
        self.name = name
        self.gen = 0                # the last generation sent
        # Operations since (and including) the last acknowledged one:
        # (gen, "set" | "delete", acked). Generation 0 is "never written".
        self.ops = [(0, "delete", True)]
        self.deleted_gen = 0        # newest acknowledged delete

    def expect(self):
        """The results a read may give: generations (None for a miss)."""
        return {None if kind == "delete" else gen for gen, kind, _ in self.ops}

    def record(self, gen, kind, acked):
        if acked:
            self.ops = [(gen, kind, True)]
            if kind == "delete":
                self.deleted_gen = gen
        else:
            self.ops.append((gen, kind, False))

    def judge(self, got):
        """None if a read of got (a generation, None for a miss, -1 for a
        corrupt value) is allowed, else the kind of break."""
        if got == -1:
            return "corrupt"
        if got in self.expect():
            return None
        if got is None:
            return "lost"
        if got > self.gen:
            return "phantom"
        if got < self.deleted_gen:
            return "resurrected"
        return "stale"


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.acked_sets = self.acked_deletes = 0
        self.reads = self.indeterminate = 0
        self.breaks = {k: 0 for k in BAD_KINDS}
        self.errors = {}
        self.notes = []
        self.max_op = 0.0
        self.stall = 0.0

    def error(self, kind):
        with self.lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1

    def bad(self, kind, note):
        with self.lock:
            self.breaks[kind] += 1
            if len(self.notes) < 10:
                self.notes.append(note)


class Workload:
    def __init__(self, args):
        self.args = args
        host, port = args.gateway.rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.keys = [Key(b"%s:%d" % (args.prefix.encode(), i))
                     for i in range(args.keys)]
        self.stats = Stats()
        self.stop = threading.Event()
        self.running = threading.Event()    # cleared: threads park
        self.running.set()
        self.parked = threading.Semaphore(0)
        self.threads = []
        self.t0 = time.monotonic()

    def client(self):
        return Client(self.host, self.port, self.args.op_timeout)

    def timed(self, fn, *a):
        t = time.monotonic()
        try:
            return fn(*a)
        finally:
            d = time.monotonic() - t
            if d > self.stats.max_op:
                with self.stats.lock:
                    self.stats.max_op = max(self.stats.max_op, d)

    def read_key(self, c, k, where):
        """A read judged against k's history; errors raise Indeterminate."""
        value = self.timed(c.get, k.name)
        got = None if value is None else parse_value(k.name, value)
        if value is not None and got is None:
            got = -1
        with self.stats.lock:
            self.stats.reads += 1
        why = k.judge(got)
        if why is not None:
            self.stats.bad(why, "%s %s: read %s, expected one of %s" % (
                where, k.name.decode(), "a miss" if got is None else
                "corrupt %r" % value[:60] if got == -1 else
                "generation %d" % got,
                sorted(("miss" if g is None else g) for g in k.expect())))

    def one_op(self, c, k, rnd):
        a = self.args
        r = rnd.random()
        if r < a.get_ratio:
            self.read_key(c, k, "read")
            return
        k.gen += 1
        gen = k.gen
        if r < a.get_ratio + a.delete_ratio:
            try:
                found = self.timed(c.delete, k.name)
            except Indeterminate:
                k.record(gen, "delete", False)
                with self.stats.lock:
                    self.stats.indeterminate += 1
                raise
            # NOT_FOUND is an acknowledgement too: the key is absent. It
            # must have been allowed to be.
            if not found and None not in k.expect():
                self.stats.bad("lost", "delete %s: NOT_FOUND, expected one "
                               "of %s" % (k.name.decode(), sorted(k.expect())))
            k.record(gen, "delete", True)
            with self.stats.lock:
                self.stats.acked_deletes += 1
            return
        value = make_value(k.name, gen, a.value_size)
        try:
            self.timed(c.set, k.name, value)
        except Indeterminate:
            k.record(gen, "set", False)
            with self.stats.lock:
                self.stats.indeterminate += 1
            raise
        k.record(gen, "set", True)
        with self.stats.lock:
            self.stats.acked_sets += 1

    def worker(self, idx):
        mine = self.keys[idx::self.args.threads]
        rnd = random.Random(self.args.seed * 1000 + idx)
        c = self.client()
        last_ok = time.monotonic()
        while not self.stop.is_set():
            if not self.running.is_set():
                c.close()
                self.parked.release()
                self.running.wait()
                last_ok = time.monotonic()
                continue
            k = rnd.choice(mine)
            try:
                self.one_op(c, k, rnd)
                now = time.monotonic()
                self.note_stall(now - last_ok)
                last_ok = now
            except Indeterminate as e:
                self.stats.error(e.kind)
                self.note_stall(time.monotonic() - last_ok)
                time.sleep(0.05)
            if self.args.pause > 0:
                time.sleep(self.args.pause)
        c.close()

    def note_stall(self, s):
        if s > self.stats.stall:
            with self.stats.lock:
                self.stats.stall = max(self.stats.stall, s)

    def start(self):
        for i in range(self.args.threads):
            t = threading.Thread(target=self.worker, args=(i,), daemon=True)
            t.start()
            self.threads.append(t)

    def park(self):
        self.running.clear()
        for _ in self.threads:
            self.parked.acquire()

    def resume(self):
        self.running.set()

    def finish(self):
        self.stop.set()
        self.running.set()
        for t in self.threads:
            t.join()

    def final_reads(self, where):
        """Every key read back, errors retried until --final-timeout."""
        deadline = time.monotonic() + self.args.final_timeout
        c = self.client()
        for k in self.keys:
            while True:
                try:
                    self.read_key(c, k, where)
                    break
                except Indeterminate as e:
                    if time.monotonic() >= deadline:
                        self.stats.bad("unreadable", "%s %s: %s" % (
                            where, k.name.decode(), e.kind))
                        break
                    time.sleep(0.1)
        c.close()

    def summary(self, phase):
        s = self.stats
        a = self.args
        with s.lock:
            out = {
                "checker": "kumo_check", "phase": phase,
                "seconds": round(time.monotonic() - self.t0, 2),
                "keys": len(self.keys),
                "acked_writes": s.acked_sets + s.acked_deletes,
                "acked_sets": s.acked_sets, "acked_deletes": s.acked_deletes,
                "reads": s.reads, "indeterminate": s.indeterminate,
            }
            out.update(s.breaks)
            out["errors"] = dict(sorted(s.errors.items()))
            out["max_op_s"] = round(s.max_op, 3)
            out["stall_s"] = round(s.stall, 3)
            nerr = sum(s.errors.values())
            why = [k for k in BAD_KINDS if s.breaks[k]]
            if a.max_stall is not None and s.stall > a.max_stall:
                why.append("stall %.2f s > %.2f s" % (s.stall, a.max_stall))
            if a.max_errors is not None and nerr > a.max_errors:
                why.append("%d errors > %d" % (nerr, a.max_errors))
            if out["acked_writes"] == 0:
                why.append("no write was acknowledged")
            out["ok"] = not why
            out["broken"] = why
            out["notes"] = list(s.notes)
        return out


def human(out):
    errs = ", ".join("%s %d" % (k, v) for k, v in out["errors"].items())
    return ("kumo_check: %s after %.1f s: %d acknowledged writes (%d sets, %d "
            "deletes), %d reads, %d indeterminate; lost %d, stale %d, corrupt "
            "%d, resurrected %d, phantom %d, unreadable %d; errors %d%s; "
            "longest stall %.2f s, slowest request %.2f s: %s" % (
                out["phase"], out["seconds"], out["acked_writes"],
                out["acked_sets"], out["acked_deletes"], out["reads"],
                out["indeterminate"], out["lost"], out["stale"],
                out["corrupt"], out["resurrected"], out["phantom"],
                out["unreadable"], sum(out["errors"].values()),
                " (%s)" % errs if errs else "", out["stall_s"],
                out["max_op_s"],
                "OK" if out["ok"] else "BROKEN: " + ", ".join(out["broken"])))


def report(out):
    print(json.dumps(out, sort_keys=False), flush=True)
    print(human(out), flush=True)
    for n in out["notes"]:
        print("kumo_check:   " + n, flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--gateway", required=True, help="HOST:PORT")
    p.add_argument("--keys", type=int, default=200)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--prefix", default="ck")
    p.add_argument("--value-size", type=int, default=200,
                   help="largest filler, bytes")
    p.add_argument("--get-ratio", type=float, default=0.3)
    p.add_argument("--delete-ratio", type=float, default=0.1)
    p.add_argument("--pause", type=float, default=0.005,
                   help="seconds between a thread's requests")
    p.add_argument("--op-timeout", type=float, default=10.0)
    p.add_argument("--final-timeout", type=float, default=30.0)
    p.add_argument("--duration", type=float, default=None,
                   help="run this long instead of until end of input")
    p.add_argument("--max-stall", type=float, default=None)
    p.add_argument("--max-errors", type=int, default=None)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    if a.keys < 1 or a.threads < 1 or a.threads > a.keys:
        p.error("need 1 <= threads <= keys")

    w = Workload(a)
    try:
        w.client().call(b"version\r\n", lambda c: c._line())
    except Indeterminate as e:
        print("kumo_check: cannot reach the gateway %s: %s" % (a.gateway,
                                                               e.kind))
        return 2
    w.start()
    if a.duration is not None:
        time.sleep(a.duration)
    else:
        for line in sys.stdin:
            if line.strip() == "verify":
                w.park()
                w.final_reads("verify")
                report(w.summary("verify"))
                w.resume()
            elif line.strip() == "stop":
                break
    w.finish()
    w.final_reads("final")
    out = w.summary("final")
    report(out)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
