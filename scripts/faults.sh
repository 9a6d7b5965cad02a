#!/usr/bin/env bash
# The fault campaign: runs each fault scenario of the integration tests on
# a fresh cluster, LOOPS times in a row (each loop injects its fault
# again), and prints a table and "N passed, N failed".
#   scripts/faults.sh [--quick] [--loops N] [SCENARIO...]
# Scenarios: zombie_delete no_resurrection min_copies no_managers
# delete_retry (it_safety), kill9_under_load rejoin_and_cas (it_faults),
# checker_catches_loss kill9_one kill9_two_at_once kill9_two_in_turn
# rolling_restart kill_during_replace gateway_kill9 managers_kill9
# sigstop_short sigstop_long burst_restart deletes_while_down
# deletes_past_gc (it_campaign, under test/kumo_check.py);
# partition_gateway_server partition_server_server partition_server_isolated
# partition_manager_split clock_skew disk_full store_corrupt slow_disk
# (environment faults).
# --quick runs each once, with short pauses; the default is 10 loops.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${KUMO_BUILDDIR:-$top/build}
loops=10 quick=0
scenarios=()
while [ $# -gt 0 ]; do
    case $1 in
    --quick) loops=1 quick=1 ;;
    --loops) loops=$2; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) scenarios+=("$1") ;;
    esac
    shift
done
all=(zombie_delete no_resurrection min_copies no_managers delete_retry
     kill9_under_load rejoin_and_cas
     checker_catches_loss kill9_one kill9_two_at_once kill9_two_in_turn
     rolling_restart kill_during_replace gateway_kill9 managers_kill9
     sigstop_short sigstop_long burst_restart deletes_while_down
     deletes_past_gc
     partition_gateway_server partition_server_server partition_server_isolated
     partition_manager_split clock_skew disk_full store_corrupt slow_disk)
[ ${#scenarios[@]} -gt 0 ] || scenarios=("${all[@]}")

bash "$top/scripts/build.sh" >/dev/null 2>&1 || { echo "faults.sh: the build failed (run scripts/build.sh)" >&2; exit 2; }
make -C "$build" -s test/integration/it_safety test/integration/it_faults >/dev/null
# The process faults under test/kumo_check.py.
make -C "$build" -s test/integration/it_campaign \
    test/integration/kumo-server-lossy >/dev/null
# The environment faults (partitions, clock, disk).
make -C "$build" -s test/integration/it_partition test/integration/it_clock \
    test/integration/it_diskfull test/integration/it_corrupt \
    test/integration/it_slowdisk test/integration/slowdisk.so >/dev/null
# it_campaign: the checker's source, the full-length pauses unless --quick.
export KUMO_BUILDDIR=$build KUMO_SRCDIR=$top KUMO_FAULT_CAMPAIGN=1
[ "$quick" = 1 ] || export KUMO_FAULT_FULL=1

# scenario -> "program filter inner": inner = the test loops itself
# (KUMO_FAULT_LOOPS); otherwise the program runs once per loop.
spec_of() {
    case $1 in
    zombie_delete|no_resurrection|no_managers|delete_retry)
        echo "it_safety test_$1 inner" ;;
    min_copies) echo "it_safety test_$1 outer" ;;
    kill9_under_load) echo "it_faults test_$1 outer" ;;
    # test_cas_failover runs on the cluster test_deletes_survive_rejoin
    # leaves (cmocka filters know only * and ?).
    rejoin_and_cas) echo "it_faults test_*s_* outer" ;;
    # Each on a fresh cluster; these two loop on theirs (at least 5 and 2
    # restarts).
    rolling_restart|burst_restart) echo "it_campaign test_$1 inner" ;;
    checker_catches_loss|kill9_one|kill9_two_at_once|kill9_two_in_turn|\
    kill_during_replace|gateway_kill9|managers_kill9|sigstop_short|\
    sigstop_long|deletes_while_down|deletes_past_gc)
        echo "it_campaign test_$1 outer" ;;
    # Environment faults under a verifying load (it_fault_run): partitions
    # in network namespaces (root), one server's clock 300 s ahead, a full
    # file system (root), a damaged store file, a slow disk (LD_PRELOAD).
    partition_gateway_server|partition_server_server|partition_server_isolated|partition_manager_split)
        echo "it_partition test_${1#partition_} inner" ;;
    clock_skew) echo "it_clock test_skew_under_load outer" ;;
    disk_full) echo "it_diskfull * outer" ;;
    store_corrupt) echo "it_corrupt * outer" ;;
    slow_disk) echo "it_slowdisk test_slow_disk inner" ;;
    *) echo "faults.sh: unknown scenario $1" >&2; exit 2 ;;
    esac
}

logdir=$(mktemp -d /tmp/kumo-faults.XXXXXX)
passed=0 failed=0
printf '%-24s %6s %6s %8s  %s\n' scenario loops faults seconds result
for sc in "${scenarios[@]}"; do
    spec=$(spec_of "$sc") || exit 2
    read -r prog filter inner <<<"$spec"
    start=$(date +%s)
    ok=0 bad=0
    if [ "$inner" = inner ]; then
        # One process runs all the loops on one cluster.
        if KUMO_FAULT_LOOPS=$loops "$build/test/integration/$prog" "$filter" \
                >"$logdir/$sc.log" 2>&1; then ok=$loops; else bad=1; fi
    else
        for ((i = 0; i < loops; i++)); do
            if "$build/test/integration/$prog" "$filter" \
                    >>"$logdir/$sc.log" 2>&1; then ok=$((ok + 1)); else bad=$((bad + 1)); fi
        done
    fi
    secs=$(($(date +%s) - start))
    # Scenarios that announce their faults ("# fault injected: ...") are
    # counted by them; the others inject one per clean loop.
    injected=$(grep -c '^# fault injected' "$logdir/$sc.log" || true)
    [ "$injected" -gt 0 ] && [ $bad -eq 0 ] && ok=$injected
    if [ $bad -eq 0 ]; then
        result=clean; passed=$((passed + 1))
    else
        result="FAILED (log: $logdir/$sc.log)"; failed=$((failed + 1))
    fi
    printf '%-24s %6d %6d %8d  %s\n' "$sc" "$loops" "$ok" "$secs" "$result"
done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ] && rm -rf "$logdir"
exit $((failed > 0))
