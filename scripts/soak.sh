#!/usr/bin/env bash
# The long run: a local cluster (1 manager, 3 servers, 1 gateway) under a
# mixed load for a while, every daemon's memory and descriptors sampled
# every 10 s. Passes when no daemon grows: the mean RSS of the last third
# of the run is at most 1.1x that of the middle third, the descriptor
# counts of the last two thirds stay within 2 of each other, and the load
# saw no error and no wrong value.
#   scripts/soak.sh [--minutes N] [--keys N] [--size BYTES]
# Defaults: 30 minutes, 200,000 keys of 500 bytes, 70% gets and 30% sets
# on 8 connections with 4 requests in flight each, values verified.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${KUMO_BUILDDIR:-$top/build}
minutes=30 keys=200000 size=500
while [ $# -gt 0 ]; do
    case $1 in
    --minutes) minutes=$2; shift ;;
    --keys) keys=$2; shift ;;
    --size) size=$2; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
case "$minutes$keys$size" in *[!0-9]*) echo "soak.sh: numbers only" >&2; exit 2 ;; esac
[ "$minutes" -ge 1 ] || { echo "soak.sh: --minutes must be at least 1" >&2; exit 2; }

bash "$top/scripts/build.sh" >/dev/null 2>&1 || { echo "soak.sh: the build failed (run scripts/build.sh)" >&2; exit 2; }
make -C "$build" -s bench/kumo-bench >/dev/null

dir=$(mktemp -d /tmp/kumo-soak.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "soak.sh: nothing listens on port $1" >&2; exit 1
}

cd "$dir"
mp=$(free_port)
"$build/src/manager/kumo-manager" -l "127.0.0.1:$mp" -s - -o manager.log & pids+=($!)
names=(manager)
wait_port "$mp"
for i in 1 2 3; do
    sp=$(free_port) lp=$(free_port)
    "$build/src/server/kumo-server" -l "127.0.0.1:$sp" -L "$lp" -m "127.0.0.1:$mp" \
        -s "server$i.tch" -o "server$i.log" & pids+=($!)
    names+=("server$i")
    wait_port "$sp"
done
"$build/src/ctl/kumoctl" "127.0.0.1:$mp" attach >/dev/null
gp=$(free_port)
"$build/src/gateway/kumo-gateway" -m "127.0.0.1:$mp" -t "$gp" -o gateway.log & pids+=($!)
names+=(gateway)
wait_port "$gp"
sleep 2

"$build/bench/kumo-bench" -q -p -n 0 -k "$keys" -s "$size" -c 4 -P 16 "$gp" >prefill.out
secs=$((minutes * 60))
"$build/bench/kumo-bench" -q -d "$secs" -r 0.7 -k "$keys" -s "$size" -c 8 -P 4 -v "$gp" >load.out 2>load.err &
bench=$!

# samples.tsv: second, daemon, RSS KiB, descriptors
start=$(date +%s)
while kill -0 "$bench" 2>/dev/null; do
    now=$(($(date +%s) - start))
    for k in "${!names[@]}"; do
        p=${pids[k]}
        rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)
        fds=$(ls "/proc/$p/fd" 2>/dev/null | wc -l)
        printf '%d\t%s\t%s\t%s\n' "$now" "${names[k]}" "$rss" "$fds" >>samples.tsv
    done
    sleep 10
done
wait "$bench" || true
load=$(cat load.out)

echo "soak: $minutes min, $keys keys of $size bytes, 70% gets; load: $load"
awk -F'\t' -v total="$secs" '
    # The last samples may fall after the load ended (its connections gone).
    $1 >= total - 15 { next }
    { t = $1; n = $2; third = t < total / 3 ? 1 : (t < 2 * total / 3 ? 2 : 3)
      if (third >= 2) { s[n, third] += $3; c[n, third]++
          if (!(n in fmin) || $4 < fmin[n]) fmin[n] = $4
          if ($4 > fmax[n]) fmax[n] = $4 }
      if (!(n in order)) { order[n] = ++k; name[k] = n } }
    END {
        bad = 0
        printf "%-10s %14s %14s %7s %10s  %s\n", "daemon", "RSS KiB 2/3", "RSS KiB 3/3", "ratio", "fds", "result"
        for (i = 1; i <= k; i++) {
            n = name[i]; m = c[n, 2] ? s[n, 2] / c[n, 2] : 0; l = c[n, 3] ? s[n, 3] / c[n, 3] : 0
            r = m > 0 ? l / m : 0
            ok = (m > 0 && r <= 1.1 && fmax[n] - fmin[n] <= 2)
            if (!ok) bad++
            printf "%-10s %14.0f %14.0f %7.3f %4d..%-4d  %s\n", n, m, l, r, fmin[n], fmax[n], ok ? "flat" : "GROWS"
        }
        exit bad > 0
    }' samples.tsv && flat=1 || flat=0
case "$load" in
*" errors=0 "*" verify_errors=0 "*) clean=1 ;;
*) clean=0 ;;
esac
if [ $flat = 1 ] && [ $clean = 1 ]; then
    rm -f "$dir"/*.tch
    echo "soak: passed (samples: $dir/samples.tsv)"
    exit 0
fi
echo "soak: FAILED (logs and samples kept in $dir)"
trap - EXIT
cleanup
exit 1
