#!/usr/bin/env python3
"""Measures a rebalance: attach a 4th server to a loaded 3-server cluster.

Starts a local kumo cluster from $KUMO_BUILDDIR, loads --keys keys of
--size bytes (default 200k x 1 KiB) through the gateway, measures client
throughput and latency (kumo-bench, mixed gets and sets) for --secs seconds,
then starts a 4th server, attaches it and measures the same load again while
the replace runs. Prints the replace's duration, the records and bytes the
servers sent, the copy rate, the servers' peak RSS (VmHWM) and the client
figures before and during the replace; --out writes them as markdown.

Usage: bench/rebalance.py [--keys N] [--size BYTES] [--secs S] [--out FILE]
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

from benchlib import free_port, wait

BUILD = os.environ.get("KUMO_BUILDDIR", os.getcwd())




def bench(port, args):
    out = subprocess.run([BUILD + "/bench/kumo-bench"] + args + ["127.0.0.1:%d" % port],
                         capture_output=True, text=True, timeout=600).stdout
    return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=200000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--secs", type=float, default=6)
    ap.add_argument("--out")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="kumo-rebalance-")
    mgr, gw = free_port(), free_port()
    srv = [(free_port(), free_port()) for _ in range(4)]
    procs = {}

    def start(name, args):
        log = open(os.path.join(tmp, name + ".log"), "a")
        procs[name] = subprocess.Popen(args, stdout=log, stderr=log)

    def start_server(i):
        start("s%d" % i, [BUILD + "/src/server/kumo-server", "-v", "-l",
                          "127.0.0.1:%d" % srv[i][0], "-L", str(srv[i][1]), "-m",
                          "127.0.0.1:%d" % mgr, "-s", os.path.join(tmp, "s%d.tch" % i)])

    def ctl(*args):
        return subprocess.run([BUILD + "/src/ctl/kumoctl", "127.0.0.1:%d" % mgr] + list(args),
                              capture_output=True, text=True, timeout=30).stdout

    def stat(i, name):
        out = subprocess.run([BUILD + "/src/ctl/kumostat", "127.0.0.1:%d" % srv[i][0], name],
                             capture_output=True, text=True, timeout=30).stdout
        return int(out.strip() or 0)

    def hwm(i):
        with open("/proc/%d/status" % procs["s%d" % i].pid) as f:
            return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1))

    try:
        start("mgr", [BUILD + "/src/manager/kumo-manager", "-v", "-l",
                      "127.0.0.1:%d" % mgr])
        wait(lambda: "hash space" in ctl("status"), 10, "manager")
        for i in range(3):
            start_server(i)
        start("gw", [BUILD + "/src/gateway/kumo-gateway", "-m", "127.0.0.1:%d" % mgr,
                     "-t", "127.0.0.1:%d" % gw])
        wait(lambda: ctl("status").count("127.0.0.1") >= 3, 15, "servers")
        ctl("attach")
        wait(lambda: ctl("status").count("(active)") == 3, 15, "attach")
        load = ["-k", str(a.keys), "-s", str(a.size)]
        t = time.time()
        r = bench(gw, load + ["-p", "-n", "0", "-c", "8", "-P", "16"])
        print("loaded %d keys of %d bytes in %.1f s (%s errors)" %
              (a.keys, a.size, time.time() - t, r.get("prefill_errors", "?")), flush=True)
        mix = load + ["-c", "10", "-P", "1", "-r", "0.8", "-d", str(a.secs)]
        before = bench(gw, mix)
        print("before: %s ops/s, p50 %s us, p99 %s us" %
              (before["ops_per_sec"], before["p50_us"], before["p99_us"]), flush=True)
        start_server(3)
        wait(lambda: "127.0.0.1:%d" % srv[3][0] in ctl("status"), 15, "4th server")
        mlog = os.path.join(tmp, "mgr.log")
        during = {}
        loader = subprocess.Popen([BUILD + "/bench/kumo-bench"] + mix +
                                  ["127.0.0.1:%d" % gw], stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        t0 = time.time()
        ctl("attach")
        wait(lambda: "replace finished" in open(mlog).read().split("attached 127.0.0.1:%d"
                                                                  % srv[3][0])[-1],
             600, "the replace")
        elapsed = time.time() - t0
        out = loader.communicate(timeout=600)[0]
        during = dict(kv.split("=", 1) for kv in out.split() if "=" in kv)
        sent = sum(stat(i, "replace_sent_records") for i in range(3))
        sent_bytes = sum(stat(i, "replace_sent_bytes") for i in range(3))
        peak = max(hwm(i) for i in range(4))
        print("replace: %.1f s, %d records (%.1f MB) sent: %.0f keys/s, %.1f MB/s" %
              (elapsed, sent, sent_bytes / 1e6, sent / elapsed, sent_bytes / 1e6 / elapsed))
        print("during:  %s ops/s, p50 %s us, p99 %s us (errors %s)" %
              (during["ops_per_sec"], during["p50_us"], during["p99_us"],
               during["errors"]))
        print("peak RSS of the servers: %.1f MiB" % (peak / 1024))
        if a.out:
            with open(a.out, "w") as f:
                f.write("| keys | size | replace s | records sent | MB sent | keys/s | MB/s |"
                        " peak server RSS MiB |\n|---|---|---|---|---|---|---|---|\n")
                f.write("| %d | %d | %.1f | %d | %.1f | %.0f | %.1f | %.1f |\n\n" %
                        (a.keys, a.size, elapsed, sent, sent_bytes / 1e6, sent / elapsed,
                         sent_bytes / 1e6 / elapsed, peak / 1024))
                f.write("| client load (80% get, c=10) | ops/s | p50 us | p99 us |\n"
                        "|---|---|---|---|\n")
                for name, r in (("before the replace", before), ("during it", during)):
                    f.write("| %s | %s | %s | %s |\n" % (name, r["ops_per_sec"],
                                                         r["p50_us"], r["p99_us"]))
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    sys.exit(main())
