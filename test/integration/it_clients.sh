#!/usr/bin/env bash
# Real memcached clients against a 3-server kumo cluster, as a user would
# point them at it: libmemcached's conformance tester (memccapable -a) and
# load generator with verification (memcaslap -v), pymemcache, pylibmc
# (libmemcached from Python) and Perl's Cache::Memcached. TAP output.
set -uo pipefail
build=${KUMO_BUILDDIR:?KUMO_BUILDDIR is set by make check}
# Debian's clients live in the system Python, whatever python3 is first on
# PATH.
py=/usr/bin/python3

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
check() { if [ "$2" = 0 ]; then ok "$1"; else not_ok "$1"; fi; }

for tool in memccapable memcaslap; do
    if ! command -v $tool >/dev/null; then
        echo "1..0 # SKIP $tool is missing (libmemcached-tools)"
        exit 0
    fi
done

# The cluster: h_cluster_run prints "gateway PORT" and runs until its
# standard input closes.
coproc CLUSTER { "$build/test/integration/h_cluster_run" 1 3 2>"${TMPDIR:-/tmp}/it_clients.$$.err"; }
read -r -t 60 word port <&"${CLUSTER[0]}" || true
if [ "${word:-}" != gateway ]; then
    echo "1..1"; echo "not ok 1 - the cluster started"
    cat "${TMPDIR:-/tmp}/it_clients.$$.err" | sed 's/^/# /'
    exit 1
fi
server=127.0.0.1:$port

# 1. memccapable -a: every ascii test of libmemcached's conformance tester.
out=$(timeout 120 memccapable -h 127.0.0.1 -p "$port" -a 2>&1)
while read -r line; do
    case $line in
    *"[pass]") ok "memccapable ${line%%  *}" ;;
    *"[fail]"*|*"[FAIL]"*) not_ok "memccapable ${line%%  *}" ;;
    esac
done <<<"$out"
echo "$out" | grep -q "All tests passed"
check "memccapable -a: all tests passed" $?

# 2. memcaslap: 90/10 gets and sets with value verification.
out=$(timeout 60 memcaslap -s "$server" -t 3s -v 0.1 -c 8 -T 2 2>&1)
sets=$(echo "$out" | awk '/^cmd_set:/ { print $2 }')
gets=$(echo "$out" | awk '/^cmd_get:/ { print $2 }')
bad=$(echo "$out" | awk '/^verify_failed:/ { print $2 }')
echo "# memcaslap: cmd_set ${sets:-?} cmd_get ${gets:-?} verify_failed ${bad:-?}"
[ "${sets:-0}" -gt 0 ] && [ "${gets:-0}" -gt 0 ] && [ "${bad:-x}" = 0 ]
check "memcaslap -v: sets and gets ran, verify_failed 0" $?

# 3. pymemcache, pylibmc (text protocol), Cache::Memcached.
if $py - "$port" <<'PY'
import sys
from pymemcache.client.base import Client
c = Client(("127.0.0.1", int(sys.argv[1])), connect_timeout=5, timeout=5)
assert c.set("py:a", b"1") is True
assert c.get("py:a") == b"1"
assert c.add("py:a", b"2", noreply=False) is False
assert c.incr("py:a", 41) == 42
v, cas = c.gets("py:a")
assert v == b"42"
assert c.cas("py:a", b"43", cas) is True
assert c.cas("py:a", b"44", cas) is False
c.set_many({"py:k%d" % i: b"v%d" % i for i in range(50)})
got = c.get_many(["py:k%d" % i for i in range(50)])
assert len(got) == 50 and got["py:k7"] == b"v7", got
assert c.delete("py:a", noreply=False) is True
assert c.get("py:a") is None
assert c.touch("py:k1", 100, noreply=False) is True
PY
then ok "pymemcache: set, add, incr, gets/cas, get_many, delete, touch"; else not_ok "pymemcache"; fi

if $py - "$port" <<'PY'
import sys, pylibmc
c = pylibmc.Client(["127.0.0.1:%s" % sys.argv[1]], binary=False)
c.set("lm:a", "x")
assert c.get("lm:a") == "x"
assert c.add("lm:a", "y") is False
c.set_multi({"lm:k%d" % i: i for i in range(40)})
got = c.get_multi(["lm:k%d" % i for i in range(40)])
assert len(got) == 40 and got["lm:k9"] == 9, got
assert c.incr("lm:k3", 10) == 13
c.append("lm:a", "z")
assert c.get("lm:a") == "xz"
assert c.delete("lm:a") is True
assert c.get("lm:a") is None
PY
then ok "pylibmc (text): set, add, set_multi/get_multi, incr, append, delete"; else not_ok "pylibmc (text)"; fi

if perl -MCache::Memcached -e '
    my $c = Cache::Memcached->new({ servers => ["127.0.0.1:$ARGV[0]"] });
    $c->set("pl:a", "hello") or die "set";
    $c->get("pl:a") eq "hello" or die "get";
    $c->set("pl:ref", { n => 7 }) or die "set ref";
    $c->get("pl:ref")->{n} == 7 or die "get ref";
    $c->set("pl:$_", $_) for 1 .. 30;
    my $m = $c->get_multi(map { "pl:$_" } 1 .. 30);
    scalar(keys %$m) == 30 or die "get_multi";
    $c->incr("pl:5", 5) == 10 or die "incr";
    $c->delete("pl:a") or die "delete";
    defined($c->get("pl:a")) and die "deleted key";
' "$port"; then ok "Cache::Memcached (Perl): set, get, get_multi, incr, delete"
else not_ok "Cache::Memcached (Perl)"; fi

# The cluster stops cleanly (no sanitizer report, every daemon exits 0).
exec {CLUSTER[1]}>&-
wait "$CLUSTER_PID"
stopped=$?
check "the cluster stopped cleanly" $stopped
# Why it did not (exit statuses, sanitizer reports, the daemons' logs).
[ $stopped = 0 ] || sed 's/^/# /' "${TMPDIR:-/tmp}/it_clients.$$.err" | tail -n 80
rm -f "${TMPDIR:-/tmp}/it_clients.$$.err"
echo "1..$n"
[ $failed -eq 0 ]
