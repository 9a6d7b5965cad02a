#!/usr/bin/env python3
"""Measures how long writes to a key stall when its coordinator dies.

Starts a local kumo cluster (one manager, three servers, one gateway) from
$KUMO_BUILDDIR, then for each trial: picks a key whose coordinator is a
chosen server, writes it through the gateway in a tight loop, kill -9s that
server, and records the time from the kill to the first acknowledged write
of the key (and how many writes failed meanwhile). The server is restarted
and re-attached between trials. Prints one line per trial and the median
and worst, and writes them as markdown with --out.

Usage: bench/failover.py [--trials N] [--out FILE]
"""
import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import free_port, wait

BUILD = os.environ.get("KUMO_BUILDDIR", os.getcwd())




class Cluster:
    def __init__(self, tmp):
        self.tmp = tmp
        self.mgr = free_port()
        self.gw = free_port()
        self.srv = [(free_port(), free_port()) for _ in range(3)]
        self.procs = {}

    def start(self, name, args):
        log = open(os.path.join(self.tmp, name + ".log"), "a")
        self.procs[name] = subprocess.Popen(args, stdout=log, stderr=log)

    def start_server(self, i):
        port, stream = self.srv[i]
        self.start("s%d" % i, [BUILD + "/src/server/kumo-server", "-v",
                               "-l", "127.0.0.1:%d" % port, "-L", str(stream),
                               "-m", "127.0.0.1:%d" % self.mgr,
                               "-s", os.path.join(self.tmp, "s%d.tch" % i)])

    def ctl(self, *args):
        return subprocess.run([BUILD + "/src/ctl/kumoctl", "127.0.0.1:%d" % self.mgr]
                              + list(args), capture_output=True, text=True,
                              timeout=20).stdout

    def up(self):
        self.start("mgr", [BUILD + "/src/manager/kumo-manager", "-v", "-l",
                           "127.0.0.1:%d" % self.mgr, "-Ft", "2"])
        wait(lambda: "hash space" in self.ctl("status"), 10, "manager")
        for i in range(3):
            self.start_server(i)
        self.start("gw", [BUILD + "/src/gateway/kumo-gateway", "-v", "-m",
                          "127.0.0.1:%d" % self.mgr, "-t", "127.0.0.1:%d" % self.gw])
        self.attach_all()

    def attach_all(self):
        # Attach until every server is active: a restarted server shows up
        # as "not attached" only once it has reconnected to the manager.
        def attached():
            if self.ctl("status").count("(active)") == 3:
                return True
            self.ctl("attach")
            return False
        wait(attached, 30, "attach")
        wait(lambda: mc(self.gw, b"set probe 0 0 1\r\nx\r\n") == b"STORED\r\n", 15,
             "gateway")

    def holders(self, key):
        out = subprocess.run([BUILD + "/src/ctl/kumohash", "-m", "127.0.0.1:%d" % self.mgr,
                              "assign", key], capture_output=True, text=True).stdout
        return [line.split(": ")[1].strip() for line in out.splitlines()[1:]]

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def mc(port, req, timeout=2.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(req)
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        return data


def trial(c, n):
    victim = n % 3
    addr = "127.0.0.1:%d" % c.srv[victim][0]
    key = next(k for k in ("fo%d-%d" % (n, i) for i in range(10000))
               if c.holders(k)[0] == addr)
    sock = socket.create_connection(("127.0.0.1", c.gw), timeout=10)
    f = sock.makefile("rb")

    def put(v):
        sock.sendall(b"set %s 0 0 %d\r\n%s\r\n" % (key.encode(), len(v), v))
        return f.readline()

    assert put(b"before") == b"STORED\r\n"
    c.procs["s%d" % victim].kill()          # SIGKILL
    t0 = time.monotonic()
    failures = 0
    while True:
        if put(b"after") == b"STORED\r\n":
            break
        failures += 1
        if time.monotonic() - t0 > 30:
            raise SystemExit("failover: no successful write within 30 s")
    elapsed = time.monotonic() - t0
    # Every copy still has the key, and the new value is readable.
    sock.sendall(b"get %s\r\n" % key.encode())
    reply = f.readline() + f.readline() + f.readline()
    assert b"after" in reply, reply
    sock.close()
    c.procs["s%d" % victim].wait()
    c.start_server(victim)
    c.attach_all()
    return elapsed, failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--out")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="kumo-failover-")
    c = Cluster(tmp)
    results = []
    try:
        c.up()
        for n in range(args.trials):
            elapsed, failures = trial(c, n)
            results.append(elapsed)
            print("trial %2d: first acknowledged write %.1f ms after kill -9 "
                  "(%d failed attempts)" % (n + 1, elapsed * 1000, failures),
                  flush=True)
    finally:
        c.stop()
    med, worst = statistics.median(results), max(results)
    print("median %.1f ms, worst %.1f ms over %d trials" % (med * 1000, worst * 1000,
                                                          len(results)))
    if args.out:
        with open(args.out, "w") as out:
            out.write("| trials | median (ms) | worst (ms) |\n|---|---|---|\n")
            out.write("| %d | %.1f | %.1f |\n" % (len(results), med * 1000, worst * 1000))


if __name__ == "__main__":
    sys.exit(main())
