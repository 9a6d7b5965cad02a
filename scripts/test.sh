#!/usr/bin/env bash
# Installs what is missing, builds kumo, and runs every test (unit and
# integration): first a normal build, then one with ASan+UBSan, then
# make distcheck, then every libFuzzer target for 30 s (scripts/fuzz.sh).
#   scripts/test.sh            all of it
#   scripts/test.sh --quick    the normal build only
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bash "$top/scripts/install-deps.sh"
(cd "$top" && autoreconf -fi >/dev/null 2>&1)

status=0
totals=$(mktemp)
fuzzout=$(mktemp)
trap 'rm -f "$totals" "$fuzzout"' EXIT
run_suite() {
    local name=$1; shift
    local dir="$top/build-$name"
    rm -rf "$dir"; mkdir -p "$dir"
    echo "== $name build: configure $*"
    (cd "$dir" && "$top/configure" -q "$@")
    make -C "$dir" -s -j"$(nproc)" all
    echo "== $name build: make check"
    if ! make -C "$dir" -s -j"$(nproc)" check; then
        status=1
        find "$dir/test" -name '*.log' ! -name test-suite.log -exec grep -l -E '^(not ok|FAIL|ERROR)' {} + 2>/dev/null |
            while read -r f; do echo "---- $f"; tail -n 60 "$f"; done
    fi
    # One summary line for CI: "N passed, N failed".
    python3 - "$dir/test-suite.log" "$name" "$totals" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
def n(k):
    m = re.search(r'^# %s: +(\d+)' % k, text, re.M)
    return int(m.group(1)) if m else 0
p, f, k = n('PASS') + n('XFAIL'), n('FAIL') + n('ERROR') + n('XPASS'), n('SKIP')
print("%s: %d passed, %d failed, %d skipped" % (sys.argv[2], p, f, k))
with open(sys.argv[3], "a") as t:
    t.write("%d %d %d\n" % (p, f, k))
PY
}

run_suite normal
if [ "${1:-}" != "--quick" ]; then
    run_suite sanitizers --enable-sanitizers
    # Every source, test and doc file must be in the tarball.
    echo "== make distcheck"
    if ! make -C "$top/build-normal" -s distcheck >"$top/build-normal/distcheck.log" 2>&1; then
        tail -n 40 "$top/build-normal/distcheck.log"
        echo "0 1 0" >>"$totals"
        status=1
    else
        echo "1 0 0" >>"$totals"
    fi
    # Each fuzz target counts as one test: passed unless it crashed.
    echo "== fuzz 30 s per target"
    if ! bash "$top/scripts/fuzz.sh" 30 | tee "$fuzzout"; then
        status=1
    fi
    summary=$(sed -n 's/^fuzz: \([0-9]*\) targets, \([0-9]*\) crashed.*/\1 \2/p' "$fuzzout")
    if [ -n "$summary" ]; then
        read -r ntargets ncrashed <<<"$summary"
        echo "$((ntargets - ncrashed)) $ncrashed 0" >>"$totals"
    else
        echo "0 1 0" >>"$totals"      # the targets did not build
    fi
fi
# The closing line: every test case of every build, distcheck and the
# fuzz targets.
awk '{ p += $1; f += $2; k += $3 } END { printf "all: %d passed, %d failed, %d skipped\n", p, f, k }' "$totals"
exit $status
