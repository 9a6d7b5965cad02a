#!/usr/bin/env bash
# Builds the libFuzzer targets (configure --enable-fuzzing: clang, ASan,
# UBSan) in build-fuzz and runs each, one after another, for SECONDS.
# Prints per target the executions, the coverage (libFuzzer's final cov:
# and ft:) and any crash with the path of the input that caused it; exits
# non-zero if any target crashed.
#   scripts/fuzz.sh [SECONDS=30] [TARGET...]
# Inputs that add coverage are kept in build-fuzz/fuzz-corpus/<target>
# (the seeds in test/fuzz/corpus are only read); crash inputs are written
# to build-fuzz/fuzz-crashes/. Replay one with:
#   build-fuzz/test/fuzz/fuzz_<target> <file>
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${KUMO_FUZZ_BUILDDIR:-$top/build-fuzz}
secs=${1:-30}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(memtext membin memmeta rpc_server rpc_manager stream_batch ring record)
fi
case $secs in
    '' | *[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac

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

crashed=0
for t in "${targets[@]}"; do
    corpus="$build/fuzz-corpus/$t"
    crashes="$build/fuzz-crashes"
    log="$build/fuzz-$t.log"
    mkdir -p "$corpus" "$crashes"
    dict=()
    [ -f "$top/test/fuzz/$t.dict" ] && dict=(-dict="$top/test/fuzz/$t.dict")
    rc=0
    # -timeout: an input that runs 10 s is a hang; -rss_limit_mb: the
    # decoders must stay bounded whatever the declared sizes.
    (cd "$build" && "./test/fuzz/fuzz_$t" -max_total_time="$secs" \
        -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        "${dict[@]}" -artifact_prefix="$crashes/$t-" \
        "$corpus" "$top/test/fuzz/corpus/$t") >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    # The last status line: "#N DONE cov: C ft: F corp: ..." (or the last
    # line before a crash).
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    if [ -z "$execs" ]; then
        execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
    fi
    corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
    if [ "$rc" -eq 0 ]; then
        printf 'fuzz_%-13s %10s execs in %s s  cov %-5s ft %-6s corpus %s\n' \
            "$t" "${execs:-?}" "$secs" "${cov:-?}" "${ft:-?}" "${corp:-?}"
    elif [ "$rc" -eq 72 ]; then
        # libFuzzer's exit code for SIGINT/SIGTERM: stopped, nothing found.
        crashed=$((crashed + 1))
        printf 'fuzz_%-13s INTERRUPTED by a signal after %s execs (not a crash)  cov %s ft %s\n' \
            "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}"
    else
        crashed=$((crashed + 1))
        file=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        printf 'fuzz_%-13s CRASH after %s execs (exit %d)  cov %s ft %s\n' \
            "$t" "${execs:-?}" "$rc" "${cov:-?}" "${ft:-?}"
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error|fuzz_[a-z_]*: )' "$log" |
            head -n 5 | sed 's/^/    /'
        echo "    crash input: ${file:-none written}  (log: $log)"
    fi
done
# "crashed" counts every target that did not run to the end cleanly.
echo "fuzz: ${#targets[@]} targets, $crashed crashed, $secs s each"
[ "$crashed" -eq 0 ]
