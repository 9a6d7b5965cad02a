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
OPS_LIST="get set mix"
WIDTHS="100 1000"    # multi-get cases: keys per get, one connection
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
REBALANCE=0         # 1: also attach a 4th server under load (rebalance.py); 2: only that
REB_KEYS=200000
REB_SIZE=1024

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
  --ops "get set"   operations: get, set, mix (half gets, half sets)
                    (default "$OPS_LIST")
  --widths "A B"    multi-get cases, keys per get, on 1 connection with 1
                    in flight ("" for none; default "$WIDTHS")
  --mc-threads N    memcached -t N (default: memcached's own default, 4)
  --no-memcached | --no-twemproxy | --no-kumo    skip a target
  --kumo-servers N  kumo storage servers, 1..3 (default 3: three copies;
                    1 gives the single-copy comparison)
  --rebalance       then attach a 4th kumo server to 3, idle and under a
                    90% get load (bench/rebalance.py): copy rate, client
                    throughput and p99 before and during
  --rebalance-only  only that, no matrix
  --rebalance-keys N, --rebalance-size N   its data (default $REB_KEYS x $REB_SIZE bytes)
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
    --ops) OPS_LIST=${2?}; shift ;;
    --widths) WIDTHS=${2?}; shift ;;
    --mc-threads) MC_THREADS=${2:?}; shift ;;
    --no-memcached) DO_MC=0 ;;
    --no-twemproxy) DO_TW=0 ;;
    --no-kumo) DO_KUMO=0 ;;
    --kumo-servers) KUMO_SERVERS=${2:?}; shift ;;
    --rebalance) REBALANCE=1 ;;
    --rebalance-only) REBALANCE=2 ;;
    --rebalance-keys) REB_KEYS=${2:?}; shift ;;
    --rebalance-size) REB_SIZE=${2:?}; shift ;;
    --gateway-args) GW_ARGS=${2:?}; shift ;;
    --out) OUT=${2:?}; shift ;;
    --bench) BENCH=${2:?}; shift ;;
    --keep) KEEP=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
    shift
done

for v in SECS REPS KEYS SIZE REB_KEYS REB_SIZE; do
    case "${!v}" in
    ''|*[!0-9.]*) n=${v,,}; n=${n//_/-}; die "--${n/reb-/rebalance-} needs a number" ;;
    esac
done
case "$REPS" in *.*|0) die "--reps needs a whole number >= 1" ;; esac
for op in $OPS_LIST; do
    case "$op" in get|set|mix) ;; *) die "--ops: unknown op '$op'" ;; esac
done
for w in $WIDTHS; do
    case "$w" in ''|*[!0-9]*) die "--widths needs whole numbers" ;; esac
    [ "$w" -ge 2 ] && [ "$w" -le 10000 ] || die "--widths: $w is not in 2..10000"
done

BUILDDIR=$(cd "$BUILDDIR" 2>/dev/null && pwd) || die "no such build dir: ${KUMO_BUILDDIR:-$PWD}"
BENCH=${BENCH:-$BUILDDIR/bench/kumo-bench}
[ -x "$BENCH" ] || die "$BENCH not found: run 'make bench/kumo-bench' in the build dir (or set KUMO_BUILDDIR)"
OUT=${OUT:-$BUILDDIR/bench-results.md}

# --- rebalance (bench/rebalance.py): its own clusters, after the matrix ---

# run_rebalance FILE: prints the measurement, writes its markdown to FILE.
run_rebalance() {
    local md=$1 rc
    [ -x "$BUILDDIR/src/server/kumo-server" ] || { echo "run.sh: --rebalance needs kumo built in $BUILDDIR" >&2; return 1; }
    echo "run.sh: rebalance: $REB_KEYS keys of $REB_SIZE bytes, a 4th server attached idle, then under load (load: $(uptime | sed 's/.*load average: //'))" >&2
    KUMO_BUILDDIR=$BUILDDIR python3 "$(dirname "$0")/rebalance.py" --keys "$REB_KEYS" \
        --size "$REB_SIZE" --out "$md"
    rc=$?
    [ $rc = 0 ] || echo "run.sh: rebalance.py failed (rc=$rc)" >&2
    return $rc
}

if [ "$REBALANCE" = 2 ]; then
    run_rebalance "$OUT.rebalance" || exit 1
    {
        echo "# kumo rebalance, $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo
        echo "A 4th kumo server attached to 3 holding $REB_KEYS keys of $REB_SIZE bytes (bench/rebalance.py); load average at the end: $(uptime | sed 's/.*load average: //')."
        echo
        cat "$OUT.rebalance"
    } >"$OUT"
    rm -f "$OUT.rebalance"
    echo "run.sh: wrote $OUT" >&2
    exit 0
fi

LOAD0=$(uptime | sed 's/.*load average/load average/')
TMP=$(mktemp -d "${TMPDIR:-/tmp}/kumo-bench.XXXXXX") || die "mktemp failed"
RESULTS=$TMP/results.tsv
: >"$RESULTS"

# Only processes started here are tracked and killed, by PID.
PIDS=()
BENCH_PID=""
STATUS=0

# Stops every process started here: TERM, then KILL after 2 s.
stop_all() {
    local pid i
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
    PIDS=()
}

cleanup() {
    trap - EXIT INT TERM
    if [ -n "$BENCH_PID" ]; then
        kill -TERM "$BENCH_PID" 2>/dev/null
    fi
    stop_all
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

now_s() {
    date +%s.%N
}

# What each process costs (CPU per operation, memory): bench/costs.sh.
# shellcheck source=bench/costs.sh
. "$(dirname "$0")/costs.sh"
# Issue 10's targets, met or missed: bench/targets.sh.
# shellcheck source=bench/targets.sh
. "$(dirname "$0")/targets.sh"

# --- targets -------------------------------------------------------------

TARGETS=()          # names, in table order
declare -A PORT     # target -> port kumo-bench talks to
declare -A TPIDS    # target -> its processes
declare -A STATE    # target -> up | down | skipped | failed
declare -A TPNAMES  # target -> a name for each of its processes (TPIDS order)
KUMO_S1_CMD=()      # how server 1 was started (the restart measurement)
TNAMES=(memcached twemproxy kumo)

MC_USER=()
[ "$(id -u)" = 0 ] && MC_USER=(-u root)    # memcached refuses root without -u
MC_T=()
[ -n "$MC_THREADS" ] && MC_T=(-t "$MC_THREADS")
# memcached must hold every key without evicting: its default -m is 64 MiB,
# raised for big key spaces (about 1.3 x key + value + 120 bytes per item).
MC_MEM=$(( KEYS * (SIZE + 120) * 13 / 10 / 1048576 ))
[ "$MC_MEM" -lt 64 ] && MC_MEM=64
MC_T+=(-m "$MC_MEM")

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
    TPNAMES[memcached]=memcached
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
    TPNAMES[twemproxy]="mc1 mc2 mc3 nutcracker"
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
        [ "$i" = 1 ] && KUMO_S1_CMD=("$BUILDDIR/src/server/kumo-server" -l "127.0.0.1:$sp" \
            -L "$ss" -m "127.0.0.1:$mgr" -s "$dir/s$i.tch")
    done
    TPIDS[kumo]=$pids
    TPNAMES[kumo]="manager$(seq -f ' server%g' -s '' 1 "$KUMO_SERVERS") gateway"
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

# A kumo store that outgrew its hash table moves to a bigger one in the
# background (a <store>.grow file next to it): the matrix and the memory
# figures wait for the end of that (up to 10 minutes), and the wait is
# reported with the prefill.
GROW_WAIT=""
wait_grown() {
    local t0 i
    t0=$(now_s)
    for ((i = 0; i < 6000; i++)); do
        compgen -G "$TMP/kumo/*.grow" >/dev/null || break
        sleep 0.1
    done
    GROW_WAIT=$(awk -v a="$t0" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }')
}

# Sets every key once so get cases hit; sets later write the same values.
# The time it takes is reported: for kumo it includes the stores growing.
declare -A PREFILL_SECS
prefill() {
    local t=$1 out t0
    t0=$(now_s)
    out=$(timeout $((200 + KEYS / 4000)) "$BENCH" -q -c 4 -P 16 -k "$KEYS" -s "$SIZE" -p -n 0 "127.0.0.1:${PORT[$t]}")
    PREFILL_SECS[$t]=$(awk -v a="$t0" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }')
    [ "$t" = kumo ] && wait_grown
    case "$out" in
    *" errors=0 "*) mem_snapshot "$t"; return 0 ;;
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
for w in $WIDTHS; do
    CASES+=("get$w c=1 P=1")
done

MCVER=$(memcached -V 2>/dev/null | head -n 1)
NCVER=$(nutcracker -V 2>&1 | head -n 1 | sed 's/^This is //')
NRUNS=$(( ${#CASES[@]} * REPS * ${#TARGETS[@]} ))
echo "run.sh: ${#CASES[@]} cases x $REPS reps x ${#TARGETS[@]} targets (${TARGETS[*]}), ${SECS}s each: about $(awk -v n=$NRUNS -v s="$SECS" 'BEGIN { printf "%d", n * (s + 0.3) }')s" >&2

# run_case TARGET OP CONNS DEPTH REP: one kumo-bench run, one results line.
run_case() {
    local t=$1 op=$2 c=$3 d=$4 rep=$5 ratio=1 verify=-v width=1 out rc
    case $op in
    set) ratio=0; verify="" ;;
    mix) ratio=0.5 ;;
    get[0-9]*) width=${op#get} ;;
    esac
    if [ "${STATE[$t]}" != up ] || ! alive ${TPIDS[$t]}; then
        [ "${STATE[$t]}" = up ] && { echo "run.sh: $t died; no more runs on it" >&2; STATE[$t]=down; STATUS=1; }
        printf '%s\t%s\t%s\tfail\t-\t-\t-\t-\n' "$t" "$op c=$c P=$d" "$rep" >>"$RESULTS"
        return
    fi
    local pids names i t0=() t1=() c0 c1
    read -r -a pids <<<"${TPIDS[$t]}"
    read -r -a names <<<"${TPNAMES[$t]}"
    for i in "${!pids[@]}"; do t0[i]=$(cpu_ticks "${pids[i]}"); done
    times >"$TMP/times.0"
    "$BENCH" -q -c "$c" -P "$d" -m "$width" -r "$ratio" $verify -k "$KEYS" -s "$SIZE" -d "$SECS" \
        "127.0.0.1:${PORT[$t]}" >"$TMP/last.out" 2>"$TMP/last.err" &
    BENCH_PID=$!
    wait "$BENCH_PID"
    rc=$?
    BENCH_PID=""
    times >"$TMP/times.1"
    for i in "${!pids[@]}"; do t1[i]=$(cpu_ticks "${pids[i]}"); done
    c0=$(children_us "$TMP/times.0")
    c1=$(children_us "$TMP/times.1")
    out=$(cat "$TMP/last.out")
    echo "$t | $op c=$c P=$d | rep $rep | rc=$rc $out" >>"$TMP/raw.log"
    case "$out" in
    ops=*)
        # CPU microseconds per operation of the client and of each process.
        {
            echo "client $((c1 - c0))"
            for i in "${!pids[@]}"; do
                echo "${names[i]} $(( (t1[i] - t0[i]) * 1000000 / CLK_TCK ))"
            done
        } | awk -v t="$t" -v cs="$op c=$c P=$d" -v rep="$rep" -v out="$out" '
            BEGIN { n = split(out, f, " "); for (i = 1; i <= n; i++) { split(f[i], kv, "="); v[kv[1]] = kv[2] } }
            v["ops"] > 0 { printf "%s\t%s\t%s\t%s\t%.2f\n", t, cs, rep, $1, $2 / v["ops"] }' >>"$TMP/cpu.tsv"
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

# --- a restart of one kumo server on its full store ----------------------

# Stops server 1 (TERM), starts it again on the same store and times both:
# ready = listening, which it does once the store is open (page cache warm).
RESTART=""
RESTART_S=""        # seconds from the start to listening again
measure_restart() {
    local pids old new t0 t1 t2 i p recs keep=()
    read -r -a pids <<<"${TPIDS[kumo]}"
    old=${pids[1]}
    t0=$(now_s)
    kill -TERM "$old" 2>/dev/null
    for ((i = 0; i < 1200; i++)); do
        kill -0 "$old" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$old" 2>/dev/null; then
        RESTART="server1 did not stop within 60 s"
        return
    fi
    wait "$old" 2>/dev/null
    t1=$(now_s)
    start kumo-server1-restart "${KUMO_S1_CMD[@]}"
    new=$LAST_PID
    for p in "${PIDS[@]}"; do [ "$p" != "$old" ] && keep+=("$p"); done
    PIDS=("${keep[@]}")
    pids[1]=$new
    TPIDS[kumo]="${pids[*]}"
    if ! wait_port "${P[7]}" 300 "$new"; then
        RESTART="server1 did not listen again within 300 s"
        show_log kumo-server1-restart
        STATUS=1
        return
    fi
    t2=$(now_s)
    RESTART_S=$(awk -v b="$t1" -v c="$t2" 'BEGIN { printf "%.2f", c - b }')
    recs=$(( KEYS * (KUMO_SERVERS < 3 ? KUMO_SERVERS : 3) / KUMO_SERVERS ))
    RESTART=$(awk -v a="$t0" -v b="$t1" -v c="$t2" -v r="$recs" 'BEGIN {
        printf "server1 holding %d keys: stopped in %.2f s, listening again %.2f s after start", r, b - a, c - b }')
}
if [ "${STATE[kumo]:-}" = up ] && alive ${TPIDS[kumo]}; then
    echo "run.sh: restarting kumo server 1" >&2
    measure_restart
fi

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

PREFILLS=""
for t in "${TARGETS[@]}"; do
    PREFILLS="$PREFILLS $t ${PREFILL_SECS[$t]:-?} s;"
done
[ -n "$GROW_WAIT" ] && PREFILLS="$PREFILLS then kumo's stores finished growing in $GROW_WAIT s;"
KUMO_FILES=$(ls -l "$TMP"/kumo/*.tch* 2>/dev/null | awk '{ printf "%s %.0f MiB; ", $NF, $5 / 1048576 }' | sed "s|$TMP/kumo/||g")

STATES=""
for t in "${TNAMES[@]}"; do
    STATES="$STATES $t=${STATE[$t]:-skipped}"
done
MCDESC="memcached defaults (-t ${MC_THREADS:-4} worker threads, -m $MC_MEM MiB, -c 1024)"

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
echo "CPU per operation, microseconds (utime+stime from /proc/PID/stat; client = kumo-bench):"
cpu_table text
echo
echo "memory after the prefill of $KEYS keys of $SIZE bytes (prefill:$PREFILLS):"
mem_table text
[ -n "$KUMO_FILES" ] && echo "kumo store files: $KUMO_FILES"
[ -n "$RESTART" ] && echo "restart: $RESTART"
echo
echo "kumo issue 10's targets:"
targets_table text
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
    echo "- ratios are of ops/s; P = requests in flight per connection; getN = one get of N keys (key:k..key:k+N-1, on every server), counted as one op"
    echo
    render md
    if [ -n "$PROB" ]; then
        echo
        echo "\\* some runs had errors, misses or failed:"
        echo
        echo "$PROB"
    fi
    echo
    echo "CPU per operation, microseconds (utime+stime from /proc/PID/stat, median of runs; client = kumo-bench):"
    echo
    cpu_table md
    echo
    echo "Memory after the prefill of $KEYS keys of $SIZE bytes (prefill took:$PREFILLS):"
    echo
    mem_table md
    if [ -n "$KUMO_FILES" ]; then
        echo
        echo "kumo store files: $KUMO_FILES"
    fi
    if [ -n "$RESTART" ]; then
        echo
        echo "Restart: $RESTART."
    fi
    echo
    echo "Targets (kumo issue 10):"
    echo
    targets_table md
    echo
    echo "Load (uptime): $LOAD0 at the start, $(uptime | sed 's/.*load average/load average/') at the end."
} >"$OUT" || STATUS=1
if [ "$REBALANCE" = 1 ]; then
    # The matrix's processes go first: the rebalance has the machine to itself.
    stop_all
    echo
    if run_rebalance "$TMP/rebalance.md"; then
        {
            echo
            echo "Rebalance: a 4th kumo server attached to 3 holding $REB_KEYS keys of $REB_SIZE bytes (bench/rebalance.py):"
            echo
            cat "$TMP/rebalance.md"
        } >>"$OUT" || STATUS=1
    else
        STATUS=1
    fi
fi
echo "run.sh: wrote $OUT" >&2

exit $STATUS
