#!/usr/bin/env bash
# Builds kumo in ./build (or $KUMO_BUILDDIR), configuring it the first time.
# Extra arguments go to configure.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${KUMO_BUILDDIR:-$top/build}
mkdir -p "$build"
if [ ! -x "$top/configure" ] || [ "$top/configure.ac" -nt "$top/configure" ]; then
    (cd "$top" && autoreconf -fi >/dev/null 2>&1)
fi
cd "$build"
if [ ! -f Makefile ] || [ "$top/configure" -nt Makefile ]; then
    "$top/configure" -q "$@"
fi
make -s -j"$(nproc)" all
