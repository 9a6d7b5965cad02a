#!/usr/bin/env bash
# A local kumo cluster on 127.0.0.1, as doc/examples/local.cluster lists it:
# one manager (19700), three servers (19801-19803, stream ports
# 19901-19903), a gateway on 11211. Data, logs and pid files live in ./data
# of the checkout (KUMO_DATADIR to move them). kumocluster does the work.
#   scripts/local-cluster.sh [start]   install, build, kumocluster ... up
#   scripts/local-cluster.sh stop      kumocluster ... down
#   scripts/local-cluster.sh status    kumocluster ... status
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${KUMO_BUILDDIR:-$top/build}
file=$top/doc/examples/local.cluster
cmd=${1:-start}

kumocluster() {
    if [ -n "${KUMO_DATADIR:-}" ]; then
        # The same cluster with its folder moved: a copy of the file.
        mkdir -p "$KUMO_DATADIR"
        data=$(cd "$KUMO_DATADIR" && pwd)
        sed "s|^cluster dir=.*|cluster dir=$data|" "$file" > "$data/local.cluster"
        file=$data/local.cluster
    fi
    "$build/src/ctl/kumocluster" "$file" "$@"
}

case $cmd in
start)
    bash "$top/scripts/install-deps.sh"
    bash "$top/scripts/build.sh"
    kumocluster up
    echo
    echo "kumo is running: memcached clients can use 127.0.0.1:11211"
    echo "  try:  printf 'set hello 0 0 5\\r\\nworld\\r\\nget hello\\r\\n' | nc -q1 127.0.0.1 11211"
    echo "logs and data: ${KUMO_DATADIR:-$top/data}"
    echo "stop it with: bash scripts/local-cluster.sh stop"
    ;;
stop)
    kumocluster down
    ;;
status)
    kumocluster status
    ;;
*)
    echo "usage: $0 [start|stop|status]" >&2
    exit 1
    ;;
esac
