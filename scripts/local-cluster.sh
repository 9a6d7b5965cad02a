#!/usr/bin/env bash
# A local kumo cluster on 127.0.0.1: one manager (19700), three servers
# (19801-19803, stream ports 19901-19903), a gateway on 11211. Data, logs
# and pid files live in ./data of the checkout.
#   scripts/local-cluster.sh [start]   install, build, start, attach, status
#   scripts/local-cluster.sh stop      stop what start started
#   scripts/local-cluster.sh status    kumoctl status
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${KUMO_BUILDDIR:-$top/build}
data=${KUMO_DATADIR:-$top/data}
host=127.0.0.1
mgr=$host:19700
cmd=${1:-start}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_daemon() {   # name, command...
    local name=$1; shift
    if pid_alive "$data/$name.pid"; then
        echo "$name already running (pid $(cat "$data/$name.pid"))"
        return
    fi
    setsid "$@" -o "$data/$name.log" </dev/null >/dev/null 2>&1 &
    echo $! > "$data/$name.pid"
}

wait_for() {   # description, seconds, command...
    local what=$1 secs=$2; shift 2
    for _ in $(seq 1 $((secs * 10))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "local-cluster: timed out waiting for $what" >&2
    return 1
}

case $cmd in
start)
    bash "$top/scripts/install-deps.sh"
    bash "$top/scripts/build.sh"
    mkdir -p "$data"
    start_daemon manager "$build/src/manager/kumo-manager" -v -l $mgr -s "$data/manager.ring"
    wait_for "the manager" 10 "$build/src/ctl/kumoctl" $mgr status
    for i in 1 2 3; do
        start_daemon server$i "$build/src/server/kumo-server" -v -l $host:1980$i \
            -L 1990$i -m $mgr -s "$data/server$i.tch"
    done
    start_daemon gateway "$build/src/gateway/kumo-gateway" -v -m $mgr -t $host:11211
    # Attach the servers once all three have said hello.
    count_known() {
        "$build/src/ctl/kumoctl" $mgr status | grep -cE "^  $host:1980[123]" | grep -q '^3$'
    }
    wait_for "three servers" 15 count_known
    "$build/src/ctl/kumoctl" $mgr attach >/dev/null
    "$build/src/ctl/kumoctl" $mgr status
    wait_for "the gateway" 10 bash -c "printf 'version\r\n' | nc -q1 $host 11211 | grep -q VERSION"
    echo
    echo "kumo is running: memcached clients can use $host:11211"
    echo "  try:  printf 'set hello 0 0 5\\r\\nworld\\r\\nget hello\\r\\n' | nc -q1 $host 11211"
    echo "logs and data: $data"
    echo "stop it with: bash scripts/local-cluster.sh stop"
    ;;
stop)
    for name in gateway server1 server2 server3 manager; do
        if pid_alive "$data/$name.pid"; then
            kill -TERM "$(cat "$data/$name.pid")"
            for _ in $(seq 1 50); do
                pid_alive "$data/$name.pid" || break
                sleep 0.1
            done
            echo "stopped $name"
        fi
        rm -f "$data/$name.pid"
    done
    ;;
status)
    "$build/src/ctl/kumoctl" $mgr status
    ;;
*)
    echo "usage: $0 [start|stop|status]" >&2
    exit 1
    ;;
esac
