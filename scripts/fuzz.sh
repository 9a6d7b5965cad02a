#!/usr/bin/env bash
# Builds the libFuzzer targets (configure --enable-fuzzing: clang, ASan,
# UBSan) in build-fuzz and runs each, one after another, for SECONDS.
# Prints a table: per target the seconds run (wall and CPU), executions,
# coverage (libFuzzer's final cov: and ft:), corpus size and the result;
# then, for a crash, the error and the file holding the input. Exits
# non-zero if any target crashed.
#   scripts/fuzz.sh [--cpu] [SECONDS=30] [TARGET...]
# --cpu: SECONDS are CPU seconds of each target (for long runs on a shared
# machine: run it under nice), but no more than KUMO_FUZZ_WALL wall
# seconds if that is set. Inputs that add coverage are kept in
# build-fuzz/fuzz-corpus/<target> (the seeds in test/fuzz/corpus are only
# read); crash inputs are written to build-fuzz/fuzz-crashes/. Replay one:
#   build-fuzz/test/fuzz/fuzz_<target> <file>
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${KUMO_FUZZ_BUILDDIR:-$top/build-fuzz}
all=(memtext membin memmeta rpc_server rpc_manager stream_batch ring record)
cpu_mode=0
if [ "${1:-}" = "--cpu" ]; then cpu_mode=1; shift; fi
secs=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")
usage() { echo "usage: scripts/fuzz.sh [--cpu] [SECONDS] [TARGET...]" >&2; exit 2; }
case $secs in '' | *[!0-9]*) usage ;; esac
for t in "${targets[@]}"; do
    [[ " ${all[*]} " == *" $t "* ]] || { echo "fuzz: no target $t (${all[*]})" >&2; usage; }
done

if [ ! -x "$top/configure" ] || [ "$top/configure.ac" -nt "$top/configure" ]; then
    (cd "$top" && autoreconf -fi >/dev/null 2>&1)
fi
mkdir -p "$build"
if [ ! -f "$build/Makefile" ] || [ "$top/configure" -nt "$build/Makefile" ]; then
    (cd "$build" && "$top/configure" -q --enable-fuzzing)
fi
progs=()
for t in "${targets[@]}"; do progs+=("test/fuzz/fuzz_$t"); done
if ! make -C "$build" -s -j"$(nproc)" "${progs[@]}" >"$build/fuzz-build.log" 2>&1; then
    grep -v '^ar: ' "$build/fuzz-build.log" | tail -n 40
    echo "fuzz: the targets did not build" >&2
    exit 1
fi

tick=$(getconf CLK_TCK)
# CPU seconds (user + system) the process has used so far, or nothing.
cpu_of() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    stat=${stat##*) }                  # past "pid (comm) "
    read -r -a f <<<"$stat"            # f[11], f[12]: utime, stime
    echo $(((f[11] + f[12]) / tick))
}

crashed=0
details=()
printf '%-18s %7s %7s %12s %6s %7s %7s  %s\n' \
    target seconds cpu_s execs cov ft corpus result
for t in "${targets[@]}"; do
    corpus="$build/fuzz-corpus/$t"
    crashes="$build/fuzz-crashes"
    log="$build/fuzz-$t.log"
    mkdir -p "$corpus" "$crashes"
    dict=()
    [ -f "$top/test/fuzz/$t.dict" ] && dict=(-dict="$top/test/fuzz/$t.dict")
    wall=$secs
    [ $cpu_mode -eq 1 ] && wall=${KUMO_FUZZ_WALL:-$((secs * 100))}
    # -timeout: an input that runs 10 s is a hang; -rss_limit_mb: the
    # decoders must stay bounded whatever the declared sizes.
    start=$SECONDS
    (cd "$build" && exec "./test/fuzz/fuzz_$t" -max_total_time="$wall" \
        -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        "${dict[@]}" -artifact_prefix="$crashes/$t-" \
        "$corpus" "$top/test/fuzz/corpus/$t") >"$log" 2>&1 &
    pid=$!
    cpu=0 stopped=0
    while kill -0 "$pid" 2>/dev/null; do
        c=$(cpu_of "$pid")
        [ -n "$c" ] && cpu=$c
        if [ $cpu_mode -eq 1 ] && [ "$cpu" -ge "$secs" ] && [ $stopped -eq 0 ]; then
            kill -INT "$pid"; stopped=1
        fi
        sleep 1
    done
    rc=0
    wait "$pid" || rc=$?
    elapsed=$((SECONDS - start))
    # libFuzzer's exit code for SIGINT/SIGTERM is 72: ours is the end of
    # the run, anyone else's is not a crash but not a full run either.
    [ $stopped -eq 1 ] && [ "$rc" -eq 72 ] && rc=0
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    # The last status line: "#N DONE cov: C ft: F corp: ..." (or the last
    # line before a crash).
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    [ -z "$execs" ] && execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
    if [ "$rc" -eq 0 ]; then
        result=ok
    elif [ "$rc" -eq 72 ]; then
        result="interrupted by a signal (not a crash)"
        crashed=$((crashed + 1))
    else
        result="CRASH (exit $rc)"
        crashed=$((crashed + 1))
        file=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        details+=("fuzz_$t: $(grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|fuzz_[a-z_]*: )' "$log" |
            head -n 3 | tr '\n' ' ')")
        details+=("    input: ${file:-none written}  (log: $log)")
    fi
    printf '%-18s %7s %7s %12s %6s %7s %7s  %s\n' "fuzz_$t" "$elapsed" "$cpu" \
        "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result"
done
for d in "${details[@]}"; do echo "$d"; done
# "crashed" counts every target that did not run to the end cleanly.
unit=s; [ $cpu_mode -eq 1 ] && unit="CPU s"
echo "fuzz: ${#targets[@]} targets, $crashed crashed, $secs $unit each"
[ "$crashed" -eq 0 ]
