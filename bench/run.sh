#!/usr/bin/env bash
# bench/run.sh - one benchmark run on this machine: memcached, twemproxy in
# front of three memcached, and a local kumo cluster, each driven by
# kumo-bench over the same workload matrix; prints a table, writes markdown.
#
# Usage: bench/run.sh [--quick] [--no-kumo] [--out FILE] ...  (see --help)
# Build dir: $KUMO_BUILDDIR (default: the current directory); it must hold
# bench/kumo-bench (make bench/kumo-bench) and, for kumo, the src/ programs.

# PID lists are space-separated words on purpose (SC2086); functions are
# called through "start_$t" and traps (SC2317).
# shellcheck disable=SC2086,SC2317

set -u

SECS=4              # seconds per case run
REPS=3              # runs per case; the median is reported
KEYS=100000
SIZE=100
CONNS_LIST="1 50"
DEPTH_LIST="1 16"
OPS_LIST="get set"
MC_THREADS=""       # empty: memcached's default (-t 4)
DO_MC=1
DO_TW=1
DO_KUMO=1
KUMO_SERVERS=3
GW_ARGS=""          # more kumo-gateway options (--gateway-args)
KEEP=0
OUT=""
BUILDDIR=${KUMO_BUILDDIR:-$PWD}
BENCH=""

usage() {
    cat <<EOF
usage: bench/run.sh [options]
  --quick           ~1 minute: 2 s per case, 1 run per case
  --secs N          seconds per case run (default $SECS)
  --reps N          runs per case, median reported (default $REPS)
  --keys N          key space (default $KEYS)
  --size N          value size in bytes (default $SIZE)
  --conns "A B"     connection counts (default "$CONNS_LIST")
  --depths "A B"    pipeline depths (default "$DEPTH_LIST")
  --ops "get set"   operations (default "$OPS_LIST")
  --mc-threads N    memcached -t N (default: memcached's own default, 4)
  --no-memcached | --no-twemproxy | --no-kumo    skip a target
  --kumo-servers N  kumo storage servers, 1..3 (default 3: three copies;
                    1 gives the single-copy comparison)
  --gateway-args "ARGS"  more kumo-gateway options, e.g. "-lc 64" (its
                    local cache)
  --out FILE        markdown results (default: \$KUMO_BUILDDIR/bench-results.md)
  --bench PATH      kumo-bench binary (default: \$KUMO_BUILDDIR/bench/kumo-bench)
  --keep            keep the temp dir (logs, configs, raw results)
Environment: KUMO_BUILDDIR (default: current directory) = kumo build dir.
EOF
}

die() {
    echo "run.sh: $*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    --quick) SECS=2; REPS=1 ;;
    --secs) SECS=${2:?}; shift ;;
    --reps) REPS=${2:?}; shift ;;
    --keys) KEYS=${2:?}; shift ;;
    --size) SIZE=${2:?}; shift ;;
    --conns) CONNS_LIST=${2:?}; shift ;;
    --depths) DEPTH_LIST=${2:?}; shift ;;
    --ops) OPS_LIST=${2:?}; shift ;;
    --mc-threads) MC_THREADS=${2:?}; shift ;;
    --no-memcached) DO_MC=0 ;;
    --no-twemproxy) DO_TW=0 ;;
    --no-kumo) DO_KUMO=0 ;;
    --kumo-servers) KUMO_SERVERS=${2:?}; shift ;;
    --gateway-args) GW_ARGS=${2:?}; shift ;;
    --out) OUT=${2:?}; shift ;;
    --bench) BENCH=${2:?}; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
    shift
done

for v in SECS REPS KEYS SIZE; do
    case "${!v}" in
    ''|*[!0-9.]*) die "--${v,,} needs a number" ;;
    esac
done
case "$REPS" in *.*|0) die "--reps needs a whole number >= 1" ;; esac
for op in $OPS_LIST; do
    case "$op" in get|set) ;; *) die "--ops: unknown op '$op'" ;; esac
done

BUILDDIR=$(cd "$BUILDDIR" 2>/dev/null && pwd) || die "no such build dir: ${KUMO_BUILDDIR:-$PWD}"
BENCH=${BENCH:-$BUILDDIR/bench/kumo-bench}
[ -x "$BENCH" ] || die "$BENCH not found: run 'make bench/kumo-bench' in the build dir (or set KUMO_BUILDDIR)"
OUT=${OUT:-$BUILDDIR/bench-results.md}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/kumo-bench.XXXXXX") || die "mktemp failed"
RESULTS=$TMP/results.tsv
: >"$RESULTS"

# Only processes started here are tracked and killed, by PID.
PIDS=()
BENCH_PID=""
STATUS=0

cleanup() {
    local pid i
    trap - EXIT INT TERM
    if [ -n "$BENCH_PID" ]; then
        kill -TERM "$BENCH_PID" 2>/dev/null
    fi
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in "${PIDS[@]}"; do
        for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [ "$KEEP" = 1 ]; then
        echo "run.sh: kept $TMP" >&2
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT TERM

# start NAME CMD...: run CMD in the background, log to $TMP/NAME.log.
# Sets LAST_PID.
start() {
    local name=$1
    shift
    "$@" >"$TMP/$name.log" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
}

alive() {
    local pid
    for pid in "$@"; do
        kill -0 "$pid" 2>/dev/null || return 1
    done
    return 0
}

# free_ports N: N distinct loopback ports that bind now, outside the
# ephemeral range so client sockets do not take them in the meantime.
free_ports() {
    local n=$1
    if command -v python3 >/dev/null 2>&1; then
        python3 -c '
import random, socket, sys
n = int(sys.argv[1]); held = []; ports = []
for _ in range(2000):
    if len(ports) == n:
        break
    p = random.randint(20000, 32000)
    if p in ports:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        s.close(); continue
    held.append(s); ports.append(p)
print(" ".join(map(str, ports)))
' "$n"
    else
        local used ports="" p k=0 tries=0
        used=$(ss -ltnH 2>/dev/null | awk '{n = split($4, a, ":"); print a[n]}' | tr '\n' ' ')
        while [ $k -lt "$n" ] && [ $tries -lt 2000 ]; do
            tries=$((tries + 1))
            p=$((20000 + RANDOM % 12000))
            case " $ports $used " in *" $p "*) continue ;; esac
            ports="$ports $p"
            k=$((k + 1))
        done
        echo $ports
    fi
}

# wait_port PORT SECS PID...: until something accepts on 127.0.0.1:PORT.
wait_port() {
    local port=$1 secs=$2 i
    shift 2
    for ((i = 0; i < secs * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        alive "$@" || return 1
        sleep 0.1
    done
    return 1
}

show_log() {
    echo "---- tail of $1.log" >&2
    tail -n 15 "$TMP/$1.log" >&2
}

# --- targets -------------------------------------------------------------

TARGETS=()          # names, in table order
declare -A PORT     # target -> port kumo-bench talks to
declare -A TPIDS    # target -> its processes
declare -A STATE    # target -> up | down | skipped | failed
TNAMES=(memcached twemproxy kumo)

MC_USER=()
[ "$(id -u)" = 0 ] && MC_USER=(-u root)    # memcached refuses root without -u
MC_T=()
[ -n "$MC_THREADS" ] && MC_T=(-t "$MC_THREADS")

NPORTS=14
read -r -a P <<<"$(free_ports $NPORTS)"
[ "${#P[@]}" -eq $NPORTS ] || die "could not find $NPORTS free ports"

start_memcached() {
    local port=${P[0]}
    if ! command -v memcached >/dev/null; then
        echo "run.sh: memcached not installed; skipping" >&2
        return 1
    fi
    start memcached memcached -l 127.0.0.1 -p "$port" -U 0 "${MC_T[@]}" "${MC_USER[@]}"
    TPIDS[memcached]=$LAST_PID
    if ! wait_port "$port" 10 $LAST_PID; then
        echo "run.sh: memcached did not come up" >&2
        show_log memcached
        return 1
    fi
    PORT[memcached]=$port
}

start_twemproxy() {
    local i port=${P[4]} stats=${P[5]} pids=""
    if ! command -v nutcracker >/dev/null || ! command -v memcached >/dev/null; then
        echo "run.sh: nutcracker or memcached not installed; skipping twemproxy" >&2
        return 1
    fi
    for i in 1 2 3; do
        start "tw-mc$i" memcached -l 127.0.0.1 -p "${P[i]}" -U 0 "${MC_T[@]}" "${MC_USER[@]}"
        pids="$pids $LAST_PID"
    done
    cat >"$TMP/nutcracker.yml" <<EOF
bench:
  listen: 127.0.0.1:$port
  hash: fnv1a_64
  distribution: ketama
  timeout: 2000
  auto_eject_hosts: false
  servers:
   - 127.0.0.1:${P[1]}:1
   - 127.0.0.1:${P[2]}:1
   - 127.0.0.1:${P[3]}:1
EOF
    if ! nutcracker -t -c "$TMP/nutcracker.yml" >"$TMP/nutcracker-t.log" 2>&1; then
        echo "run.sh: bad nutcracker config" >&2
        show_log nutcracker-t
        return 1
    fi
    for i in 1 2 3; do
        wait_port "${P[i]}" 10 $pids || { echo "run.sh: twemproxy backend $i did not come up" >&2; show_log "tw-mc$i"; return 1; }
    done
    start nutcracker nutcracker -c "$TMP/nutcracker.yml" -o "$TMP/nutcracker-run.log" \
        -s "$stats" -a 127.0.0.1 -p "$TMP/nutcracker.pid"
    pids="$pids $LAST_PID"
    TPIDS[twemproxy]=$pids
    if ! wait_port "$port" 10 $pids; then
        echo "run.sh: nutcracker did not come up" >&2
        show_log nutcracker
        tail -n 15 "$TMP/nutcracker-run.log" >&2
        return 1
    fi
    PORT[twemproxy]=$port
}

# Three servers not yet attached, as listed by `kumoctl status`.
kumo_unattached() {
    timeout 5 "$BUILDDIR/src/ctl/kumoctl" "127.0.0.1:$1" status 2>/dev/null | awk '
        /^not attached node:/ { f = 1; next }
        /^[^ \t]/ { f = 0 }
        f && /[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+:[0-9]+/ { n++ }
        END { print n + 0 }'
}

start_kumo() {
    local mgr=${P[6]} gw=${P[13]} i sp ss pids="" dir=$TMP/kumo n out
    local b deadline
    for b in src/manager/kumo-manager src/server/kumo-server src/gateway/kumo-gateway src/ctl/kumoctl; do
        if [ ! -x "$BUILDDIR/$b" ]; then
            echo "run.sh: $BUILDDIR/$b not built; skipping kumo (--no-kumo to silence)" >&2
            return 1
        fi
    done
    mkdir -p "$dir"
    start kumo-manager "$BUILDDIR/src/manager/kumo-manager" -l "127.0.0.1:$mgr"
    pids=$LAST_PID
    TPIDS[kumo]=$pids
    if ! wait_port "$mgr" 10 $pids; then
        echo "run.sh: kumo-manager did not come up" >&2
        show_log kumo-manager
        return 1
    fi
    for i in $(seq 1 "$KUMO_SERVERS"); do
        sp=${P[6 + i]}
        ss=${P[9 + i]}
        start "kumo-server$i" "$BUILDDIR/src/server/kumo-server" -l "127.0.0.1:$sp" -L "$ss" \
            -m "127.0.0.1:$mgr" -s "$dir/s$i.tch"
        pids="$pids $LAST_PID"
    done
    TPIDS[kumo]=$pids
    for i in $(seq 1 "$KUMO_SERVERS"); do
        if ! wait_port "${P[6 + i]}" 10 $pids; then
            echo "run.sh: kumo-server$i did not come up" >&2
            show_log "kumo-server$i"
            return 1
        fi
    done
    start kumo-gateway "$BUILDDIR/src/gateway/kumo-gateway" -m "127.0.0.1:$mgr" -t "127.0.0.1:$gw" $GW_ARGS
    pids="$pids $LAST_PID"
    TPIDS[kumo]=$pids
    if ! wait_port "$gw" 10 $pids; then
        echo "run.sh: kumo-gateway did not come up" >&2
        show_log kumo-gateway
        return 1
    fi
    n=0
    deadline=$((SECONDS + 30))
    while [ $SECONDS -lt $deadline ]; do
        n=$(kumo_unattached "$mgr")
        [ "$n" -ge "$KUMO_SERVERS" ] && break
        alive $pids || break
        sleep 0.2
    done
    if [ "$n" -lt "$KUMO_SERVERS" ]; then
        echo "run.sh: kumoctl status lists $n of $KUMO_SERVERS servers under 'not attached node:'" >&2
        timeout 5 "$BUILDDIR/src/ctl/kumoctl" "127.0.0.1:$mgr" status >&2
        return 1
    fi
    if ! timeout 10 "$BUILDDIR/src/ctl/kumoctl" "127.0.0.1:$mgr" attach >"$TMP/kumoctl-attach.log" 2>&1; then
        echo "run.sh: kumoctl attach failed" >&2
        show_log kumoctl-attach
        return 1
    fi
    # Ready once a set then a verified get of one key go through the gateway.
    deadline=$((SECONDS + 30))
    while [ $SECONDS -lt $deadline ]; do
        out=$(timeout 15 "$BENCH" -q -c 1 -k 1 -p -n 1 -d 1 -r 1 -v "127.0.0.1:$gw" 2>/dev/null)
        case "$out" in *" errors=0 misses=0 "*) break ;; esac
        alive $pids || break
        out=""
        sleep 0.1
    done
    if [ -z "$out" ]; then
        echo "run.sh: kumo-gateway does not answer set/get after attach" >&2
        timeout 5 "$BUILDDIR/src/ctl/kumoctl" "127.0.0.1:$mgr" status >&2
        show_log kumo-gateway
        return 1
    fi
    PORT[kumo]=$gw
}

# Sets every key once so get cases hit; sets later write the same values.
prefill() {
    local t=$1 out
    out=$(timeout 200 "$BENCH" -q -c 4 -P 16 -k "$KEYS" -s "$SIZE" -p -n 0 "127.0.0.1:${PORT[$t]}")
    case "$out" in
    *" errors=0 "*) return 0 ;;
    *) echo "run.sh: prefill of $t failed: ${out:-no output}" >&2; return 1 ;;
    esac
}

for t in "${TNAMES[@]}"; do
    case $t in
    memcached) [ $DO_MC = 1 ] || { STATE[$t]=skipped; continue; } ;;
    twemproxy) [ $DO_TW = 1 ] || { STATE[$t]=skipped; continue; } ;;
    kumo) [ $DO_KUMO = 1 ] || { STATE[$t]=skipped; continue; } ;;
    esac
    echo "run.sh: starting $t" >&2
    if "start_$t" && prefill "$t"; then
        STATE[$t]=up
        TARGETS+=("$t")
    else
        STATE[$t]=failed
        STATUS=1
    fi
done
[ ${#TARGETS[@]} -gt 0 ] || die "no target is up"

# --- the matrix ----------------------------------------------------------

CASES=()
for op in $OPS_LIST; do
    for c in $CONNS_LIST; do
        for d in $DEPTH_LIST; do
            CASES+=("$op c=$c P=$d")
        done
    done
done

MCVER=$(memcached -V 2>/dev/null | head -n 1)
NCVER=$(nutcracker -V 2>&1 | head -n 1 | sed 's/^This is //')
NRUNS=$(( ${#CASES[@]} * REPS * ${#TARGETS[@]} ))
echo "run.sh: ${#CASES[@]} cases x $REPS reps x ${#TARGETS[@]} targets (${TARGETS[*]}), ${SECS}s each: about $(awk -v n=$NRUNS -v s="$SECS" 'BEGIN { printf "%d", n * (s + 0.3) }')s" >&2

# run_case TARGET OP CONNS DEPTH REP: one kumo-bench run, one results line.
run_case() {
    local t=$1 op=$2 c=$3 d=$4 rep=$5 ratio=1 verify=-v out rc
    if [ "$op" = set ]; then
        ratio=0
        verify=""
    fi
    if [ "${STATE[$t]}" != up ] || ! alive ${TPIDS[$t]}; then
        [ "${STATE[$t]}" = up ] && { echo "run.sh: $t died; no more runs on it" >&2; STATE[$t]=down; STATUS=1; }
        printf '%s\t%s\t%s\tfail\t-\t-\t-\t-\n' "$t" "$op c=$c P=$d" "$rep" >>"$RESULTS"
        return
    fi
    "$BENCH" -q -c "$c" -P "$d" -r "$ratio" $verify -k "$KEYS" -s "$SIZE" -d "$SECS" \
        "127.0.0.1:${PORT[$t]}" >"$TMP/last.out" 2>"$TMP/last.err" &
    BENCH_PID=$!
    wait "$BENCH_PID"
    rc=$?
    BENCH_PID=""
    out=$(cat "$TMP/last.out")
    echo "$t | $op c=$c P=$d | rep $rep | rc=$rc $out" >>"$TMP/raw.log"
    case "$out" in
    ops=*)
        echo "$out" | awk -v t="$t" -v cs="$op c=$c P=$d" -v rep="$rep" '{
            for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
            printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t, cs, rep,
                f["ops_per_sec"], f["p50_us"], f["p99_us"], f["errors"], f["misses"]
        }' >>"$RESULTS"
        ;;
    *)
        echo "run.sh: $t $op c=$c P=$d: kumo-bench failed (rc=$rc): $(head -c 300 "$TMP/last.err")" >&2
        printf '%s\t%s\t%s\tfail\t-\t-\t-\t-\n' "$t" "$op c=$c P=$d" "$rep" >>"$RESULTS"
        STATUS=1
        ;;
    esac
}

# Interleaved: every case runs on every target before the next case, and
# the target order rotates, so slow phases of a noisy machine spread evenly.
nt=${#TARGETS[@]}
for ((rep = 1; rep <= REPS; rep++)); do
    ci=0
    for cs in "${CASES[@]}"; do
        read -r op cw dw <<<"$cs"
        for ((k = 0; k < nt; k++)); do
            t=${TARGETS[(k + rep + ci) % nt]}
            [ -t 2 ] && printf 'run.sh: rep %d/%d  %-14s %-10s\r' "$rep" "$REPS" "$cs" "$t" >&2
            run_case "$t" "$op" "${cw#c=}" "${dw#P=}" "$rep"
        done
        ci=$((ci + 1))
    done
done
[ -t 2 ] && printf '%-60s\r' "" >&2

# --- report --------------------------------------------------------------

# One line per case: for each target, median ops/s, p50, p99 (each its own
# median), then the errors and misses summed over the reps.
summarise() {
    awk -F'\t' -v cases="$(printf '%s|' "${CASES[@]}")" -v tnames="memcached twemproxy kumo" '
    function median(list,    a, n, i, j, x) {
        n = split(list, a, " ")
        if (n == 0) return ""
        for (i = 2; i <= n; i++) {
            x = a[i] + 0
            for (j = i - 1; j >= 1 && a[j] + 0 > x; j--) a[j + 1] = a[j]
            a[j + 1] = x
        }
        if (n % 2) return a[(n + 1) / 2] + 0
        return (a[n / 2] + a[n / 2 + 1]) / 2
    }
    {
        k = $1 SUBSEP $2
        if ($4 == "fail") { fails[k]++; next }
        ops[k] = ops[k] " " $4; p50[k] = p50[k] " " $5; p99[k] = p99[k] " " $6
        err[k] += $7; miss[k] += $8
    }
    END {
        nc = split(cases, cl, "|"); nt = split(tnames, tl, " ")
        for (i = 1; i <= nc; i++) {
            if (cl[i] == "") continue
            line = cl[i]
            for (j = 1; j <= nt; j++) {
                k = tl[j] SUBSEP cl[i]
                if (ops[k] == "") { line = line "\t-\t-\t-\t0\t0\t" (fails[k] + 0); continue }
                line = line sprintf("\t%d\t%d\t%d\t%d\t%d\t%d", median(ops[k]), median(p50[k]),
                                    median(p99[k]), err[k], miss[k], fails[k] + 0)
            }
            print line
        }
    }' "$RESULTS"
}

SUMMARY=$(summarise)

# render text|md
render() {
    local fmt=$1
    echo "$SUMMARY" | awk -F'\t' -v fmt="$fmt" '
    function ratio(a, b) { return (a == "-" || b == "-" || b + 0 == 0) ? "-" : sprintf("%.2f", a / b) }
    function cell(o, p50, p99, e, m, f,    s) {
        if (o == "-") return "-"
        s = ""
        if (e + m + f > 0) s = " *"
        return o s
    }
    function lat(o, p50, p99) { return o == "-" ? "-" : p50 "/" p99 }
    BEGIN {
        if (fmt == "md") {
            print "| case | memcached ops/s | p50/p99 us | twemproxy ops/s | p50/p99 us | kumo ops/s | p50/p99 us | kumo/memcached | kumo/twemproxy |"
            print "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        } else {
            printf "%-14s %12s %12s %12s %12s %12s %12s %8s %8s\n", "case", "memcached", "p50/p99us",
                "twemproxy", "p50/p99us", "kumo", "p50/p99us", "kumo/mc", "kumo/tw"
        }
    }
    {
        mc = cell($2, $3, $4, $5, $6, $7); tw = cell($8, $9, $10, $11, $12, $13)
        ku = cell($14, $15, $16, $17, $18, $19)
        r1 = ratio($14, $2); r2 = ratio($14, $8)
        if (fmt == "md")
            printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, mc, lat($2, $3, $4),
                tw, lat($8, $9, $10), ku, lat($14, $15, $16), r1, r2
        else
            printf "%-14s %12s %12s %12s %12s %12s %12s %8s %8s\n", $1, mc, lat($2, $3, $4),
                tw, lat($8, $9, $10), ku, lat($14, $15, $16), r1, r2
    }'
}

# Runs with errors, misses or failures, one line each.
problems() {
    echo "$SUMMARY" | awk -F'\t' '{
        split("memcached twemproxy kumo", tl, " ")
        for (j = 0; j < 3; j++) {
            e = $(5 + 6 * j); m = $(6 + 6 * j); f = $(7 + 6 * j)
            if (e + m + f > 0)
                printf "- %s on %s: %d errors, %d misses, %d failed runs\n", $1, tl[j + 1], e, m, f
        }
    }'
}

STATES=""
for t in "${TNAMES[@]}"; do
    STATES="$STATES $t=${STATE[$t]:-skipped}"
done
MCDESC="memcached defaults (-t ${MC_THREADS:-4} worker threads, -m 64 MiB, -c 1024)"

echo
render text
PROB=$(problems)
if [ -n "$PROB" ]; then
    echo
    echo "* = some runs had errors, misses or failed:"
    echo "$PROB"
    STATUS=1
fi
echo
echo "targets:$STATES; $MCDESC; ${SECS}s x $REPS reps per case, median shown; raw: --keep"

{
    echo "# kumo benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "- machine: $(uname -srm), $(nproc 2>/dev/null || echo '?') CPUs, shared with the load generator"
    echo "- targets:$STATES"
    echo "- memcached: $MCVER, one instance, $MCDESC"
    echo "- twemproxy: $NCVER, ketama/fnv1a_64 over three memcached like the above, one server connection each"
    echo "- kumo: 1 manager, $KUMO_SERVERS server(s) ($KUMO_SERVERS copies of each key), 1 gateway from $BUILDDIR"
    echo "- workload: kumo-bench, keys key:0..$((KEYS - 1)), $SIZE-byte values, uniform keys, gets verified, prefilled"
    echo "- each case ${SECS}s, $REPS runs interleaved across targets, median of ops/s, p50 and p99 each"
    echo "- ratios are of ops/s; P = requests in flight per connection"
    echo
    render md
    if [ -n "$PROB" ]; then
        echo
        echo "\\* some runs had errors, misses or failed:"
        echo
        echo "$PROB"
    fi
} >"$OUT" || STATUS=1
echo "run.sh: wrote $OUT" >&2

exit $STATUS
