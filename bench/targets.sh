# bench/targets.sh - sourced by run.sh: kumo issue 10's targets, each
# checked against this run's medians and printed as met or missed, so one
# run says where kumo stands without reading the tables by hand.
# Uses run.sh's SUMMARY (one line per case: the case, then ops, p50, p99,
# errors, misses, failed runs for memcached, twemproxy and kumo), TMP
# (mem.tsv) and RESTART_S. Cases a run skipped print nothing.
# shellcheck shell=bash disable=SC2154

# targets_table text|md
targets_table() {
    local fmt=$1 memratio=""
    # The worst kumo server's memory per million items held, against
    # memcached's RSS per million (the same sums as costs.sh's mem_table).
    if [ -s "$TMP/mem.tsv" ]; then
        memratio=$(awk -F'\t' -v keys="$KEYS" -v ns="$KUMO_SERVERS" '
            { copies = ns > 3 ? 3 : ns }
            $1 == "memcached" { mc = $3 / (keys / 1e6) }
            $1 == "kumo" && $2 ~ /^server/ {
                mem = $3; if ($6 > 0 && $4 + $6 > mem) mem = $4 + $6
                per = mem / (keys * copies / ns / 1e6); if (per > worst) worst = per
            }
            END { if (mc > 0 && worst > 0) printf "%.2f", worst / mc }' "$TMP/mem.tsv")
    fi
    echo "$SUMMARY" | awk -F'\t' -v fmt="$fmt" -v memratio="$memratio" -v restart="${RESTART_S:-}" '
    function row(target, want, got, ok) {
        if (got == "") return
        if (fmt == "md") printf "| %s | %s | %s | %s |\n", target, want, got, ok ? "met" : "**missed**"
        else printf "%-44s %-12s %-10s %s\n", target, want, got, ok ? "met" : "MISSED"
        n++; if (ok) met++
    }
    BEGIN {
        if (fmt == "md") { print "| target | wanted | this run | |"; print "|---|---|---:|---|" }
        else printf "%-44s %-12s %-10s %s\n", "target", "wanted", "this run", ""
    }
    {
        c = $1; mc = $2 + 0; mc50 = $3 + 0; tw = $8 + 0; tw99 = $10 + 0
        ku = $14 + 0; ku50 = $15 + 0; ku99 = $16 + 0
        if ($14 == "-" || $14 == "") next
        wide = (c ~ /^get[0-9]/)
        if ($8 != "-" && tw > 0) {
            row("1. kumo/twemproxy ops/s, " c, ">= 1.0", sprintf("%.2f", ku / tw), ku >= tw)
            if (!wide && tw99 > 0)
                row("1. kumo/twemproxy p99, " c, "<= 1.2", sprintf("%.2f", ku99 / tw99), ku99 <= 1.2 * tw99)
        }
        if ($2 != "-" && mc > 0) {
            if (wide)
                row("4. kumo/memcached p50, " c, "<= 2.0", sprintf("%.2f", ku50 / mc50), mc50 > 0 && ku50 <= 2 * mc50)
            else {
                # A mix is half sets: it is held to the sets target.
                want = (c ~ /^get/) ? 0.8 : 0.5
                row("2. kumo/memcached ops/s, " c, ">= " want, sprintf("%.2f", ku / mc), ku >= want * mc)
            }
        }
    }
    END {
        if (memratio != "")
            row("3. kumo server memory per item / memcached", "<= 1.5", memratio, memratio + 0 <= 1.5)
        if (restart != "")
            row("3. kumo server restart on its store, s", "<= 10", restart, restart + 0 <= 10)
        if (fmt == "md") printf "\n%d of %d targets met.\n", met, n
        else printf "%d of %d targets met\n", met, n
    }'
}
