#!/usr/bin/env python3
"""Measures a rebalance: attach a 4th server to a 3-server cluster.

Two fresh clusters from $KUMO_BUILDDIR, each loaded with --keys keys of
--size bytes (default 200k x 1 KiB) through the gateway:

1. idle: the 4th server is attached with no client load; the copy's
   duration and rate (records and bytes the servers sent).
2. loaded: client throughput and latency (kumo-bench, --ratio gets, the
   rest sets, --conns connections) for --secs seconds, then the 4th
   server is attached under the same load and the load measured again
   until the replace ends.

Prints both copies (the replace's whole time, and its copy phase alone from
the manager's log: the delete phase follows it), the client figures before
and during, and the checks of
kumo issue 10's target 5 (copy >= 100 MB/s idle; under load throughput >=
80% and p99 <= 2x of before, and the copy within 5x its idle time); --out
writes them as markdown. --skip-idle measures only the loaded copy.

Usage: bench/rebalance.py [--keys N] [--size BYTES] [--secs S] [--ratio R]
                          [--conns N] [--skip-idle] [--keep] [--out FILE]
"""
import argparse
import os
import re
import shutil
import signal
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


def log_time(line):
    """Seconds since midnight of a log line's timestamp (2026-12-04T18:35:44.173)."""
    m = re.match(r"\S+T(\d+):(\d+):([\d.]+) ", line)
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else None


def attach_stamp(mlog, addr):
    """The stamp of the hash space addr's attach made (manager's log), or
    None before it is logged."""
    m = re.search(r"attached %s\n.*?hash space changed \(attach\):[^\n]*stamp (\d+)"
                  % re.escape(addr), mlog, re.S)
    return m.group(1) if m else None


def replace_done(mlog, addr):
    """Has the replace that addr's attach started finished (copy and
    delete phases)? Not one started earlier, still in its delete phase."""
    stamp = attach_stamp(mlog, addr)
    return stamp is not None and "replace finished for stamp " + stamp in mlog


def copy_phase(mlog, addr):
    """From the manager's log: seconds from the start of the copy of the
    replace addr's attach started to the end of its copy phase (the delete
    phase, which the replace's whole time includes, comes after)."""
    stamp = attach_stamp(mlog, addr)
    start = end = None
    for line in mlog.splitlines():
        if stamp is None:
            break
        if start is None and "start replace copy for stamp " + stamp in line:
            start = log_time(line)
        elif start is not None and "replace copy finished for stamp " + stamp in line:
            end = log_time(line)
            break
    if start is None or end is None:
        return None
    return (end - start) % 86400


def rebalance(a, loaded):
    """One cluster: load it, attach a 4th server (under the mix if loaded).
    Returns the replace's figures and, if loaded, the client's before and
    during it."""
    tmp = tempfile.mkdtemp(prefix="kumo-rebalance-")
    mgr, gw = free_port(), free_port()
    srv = [(free_port(), free_port()) for _ in range(4)]
    procs = {}
    res = {}

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
        mlog = os.path.join(tmp, "mgr.log")
        # The three servers' own first replace ends before anything is measured.
        wait(lambda: replace_done(open(mlog).read(), "127.0.0.1:%d" % srv[0][0]),
             600, "the first replace")
        load = ["-k", str(a.keys), "-s", str(a.size)]
        t = time.time()
        r = bench(gw, load + ["-p", "-n", "0", "-c", "8", "-P", "16"])
        print("%s: loaded %d keys of %d bytes in %.1f s (%s errors)" %
              ("loaded" if loaded else "idle", a.keys, a.size, time.time() - t,
               r.get("prefill_errors", "?")), flush=True)
        mix = load + ["-c", str(a.conns), "-P", "1", "-r", str(a.ratio)]
        if loaded:
            res["before"] = bench(gw, mix + ["-d", str(a.secs)])
            print("  before: %s ops/s, p50 %s us, p99 %s us" %
                  (res["before"]["ops_per_sec"], res["before"]["p50_us"],
                   res["before"]["p99_us"]), flush=True)
        start_server(3)
        wait(lambda: "127.0.0.1:%d" % srv[3][0] in ctl("status"), 15, "4th server")
        loader = None
        if loaded:
            # The load runs until the replace ends (interrupted then: its
            # requests in flight count as timeouts, not as errors here).
            loader = subprocess.Popen([BUILD + "/bench/kumo-bench"] + mix +
                                      ["-d", "600", "127.0.0.1:%d" % gw],
                                      stdout=subprocess.PIPE, text=True)
            time.sleep(0.5)
        t0 = time.time()
        ctl("attach")
        wait(lambda: replace_done(open(mlog).read(), "127.0.0.1:%d" % srv[3][0]),
             600, "the replace")
        res["secs"] = time.time() - t0
        res["copy_secs"] = copy_phase(open(mlog).read(), "127.0.0.1:%d" % srv[3][0])
        if loader is not None:
            loader.send_signal(signal.SIGINT)
            out = loader.communicate(timeout=60)[0]
            res["during"] = dict(kv.split("=", 1) for kv in out.split() if "=" in kv)
        res["records"] = sum(stat(i, "replace_sent_records") for i in range(3))
        res["bytes"] = sum(stat(i, "replace_sent_bytes") for i in range(3))
        res["peak_kib"] = max(hwm(i) for i in range(4))
        print("  replace: %.1f s, %d records (%.1f MB) sent: %.0f keys/s, %.1f MB/s" %
              (res["secs"], res["records"], res["bytes"] / 1e6,
               res["records"] / res["secs"], res["bytes"] / 1e6 / res["secs"]), flush=True)
        if res["copy_secs"]:
            print("  its copy phase: %.2f s, %.1f MB/s" %
                  (res["copy_secs"], res["bytes"] / 1e6 / res["copy_secs"]), flush=True)
        if loaded:
            d = res["during"]
            print("  during: %s ops/s, p50 %s us, p99 %s us (errors %d)" %
                  (d["ops_per_sec"], d["p50_us"], d["p99_us"], errors(d)), flush=True)
            # The same load on the four servers once the replace is over:
            # what the copy costs is during against this as well as before.
            res["after"] = bench(gw, mix + ["-d", str(a.secs)])
            print("  after: %s ops/s, p50 %s us, p99 %s us" %
                  (res["after"]["ops_per_sec"], res["after"]["p50_us"],
                   res["after"]["p99_us"]), flush=True)
        return res
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if a.keep:
            print("  kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def errors(r):
    """Errors of a run, less the requests in flight when it was stopped."""
    return int(r.get("errors", 0)) - int(r.get("timeouts", 0))


def report(a, idle, busy):
    """Lines of markdown: the copies, the client, issue 10's target 5."""
    rows = ["| copy | keys | size | replace s | records sent | MB sent | keys/s | MB/s |"
            " copy phase s | its MB/s | peak server RSS MiB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def phase(r):
        if not r["copy_secs"]:
            return "- | -"
        return "%.2f | %.1f" % (r["copy_secs"], r["bytes"] / 1e6 / r["copy_secs"])

    for name, r in (("idle", idle), ("under load", busy)):
        if r:
            rows.append("| %s | %d | %d | %.1f | %d | %.1f | %.0f | %.1f | %s | %.1f |" %
                        (name, a.keys, a.size, r["secs"], r["records"], r["bytes"] / 1e6,
                         r["records"] / r["secs"], r["bytes"] / 1e6 / r["secs"], phase(r),
                         r["peak_kib"] / 1024))
    b, d = busy["before"], busy["during"]
    rows += ["", "| client load (%d%% get, c=%d, P=1) | ops/s | p50 us | p99 us | errors |"
             % (round(a.ratio * 100), a.conns), "|---|---:|---:|---:|---:|"]
    for name, r in (("before the replace (3 servers)", b), ("during it", d),
                     ("after it (4 servers)", busy["after"])):
        rows.append("| %s | %s | %s | %s | %d |" % (name, r["ops_per_sec"], r["p50_us"],
                                                  r["p99_us"], errors(r)))
    tput = float(d["ops_per_sec"]) / max(float(b["ops_per_sec"]), 1)
    p99 = float(d["p99_us"]) / max(float(b["p99_us"]), 1)
    rows += ["", "| target 5 | wanted | measured | met |", "|---|---|---:|---|"]
    if idle:
        rate = idle["bytes"] / 1e6 / idle["secs"]
        slow = busy["secs"] / idle["secs"]
        rows.append("| idle copy rate, whole replace | >= 100 MB/s | %.1f MB/s | %s |" %
                    (rate, "yes" if rate >= 100 else "no"))
        if idle["copy_secs"]:
            rate = idle["bytes"] / 1e6 / idle["copy_secs"]
            rows.append("| idle copy rate, copy phase | >= 100 MB/s | %.1f MB/s | %s |" %
                        (rate, "yes" if rate >= 100 else "no"))
    rows.append("| throughput during / before | >= 0.80 | %.2f | %s |" %
                (tput, "yes" if tput >= 0.8 else "no"))
    rows.append("| p99 during / before | <= 2.0 | %.2f | %s |" %
                (p99, "yes" if p99 <= 2 else "no"))
    if idle:
        rows.append("| copy time loaded / idle | <= 5.0 | %.2f | %s |" %
                    (slow, "yes" if slow <= 5 else "no"))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=200000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--secs", type=float, default=6)
    ap.add_argument("--ratio", type=float, default=0.9)
    ap.add_argument("--conns", type=int, default=10)
    ap.add_argument("--skip-idle", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the clusters' folders")
    ap.add_argument("--out")
    a = ap.parse_args()
    idle = None if a.skip_idle else rebalance(a, False)
    busy = rebalance(a, True)
    rows = report(a, idle, busy)
    print("\n".join(rows))
    if a.out:
        with open(a.out, "w") as f:
            f.write("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
