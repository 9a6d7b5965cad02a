# bench/costs.sh - sourced by run.sh: what each measured process costs.
# CPU per operation comes from /proc/PID/stat (utime + stime, all threads)
# read before and after each run, and the client's from the shell's
# `times`; memory is RSS from /proc/PID/status after the prefill.
# Uses run.sh's TMP, TPIDS, TPNAMES, CASES, TARGETS, KEYS and KUMO_SERVERS.
# shellcheck shell=bash disable=SC2154

CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

# cpu_ticks PID: user + system CPU of the process (all its threads) so far,
# in clock ticks, from /proc/PID/stat (fields 14 and 15).
cpu_ticks() {
    local f a
    f=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    f=${f##*) }
    read -r -a a <<<"$f"
    echo $(( a[11] + a[12] ))
}

# children_us FILE: CPU (user + system, microseconds) of the children this
# shell has waited for, from the output of the `times` builtin.
children_us() {
    awk 'NR == 2 {
        t = 0
        for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
        printf "%d", t * 1e6
    }' "$1"
}

# mem_snapshot TARGET: RSS (and its anonymous and file parts) of each of
# the target's processes, and for a kumo server the size of its store
# files (KiB), into mem.tsv.
mem_snapshot() {
    local t=$1 i pids names rss anon file store f
    read -r -a pids <<<"${TPIDS[$t]}"
    read -r -a names <<<"${TPNAMES[$t]}"
    for i in "${!pids[@]}"; do
        read -r rss anon file < <(awk '/^VmRSS:/ { r = $2 } /^RssAnon:/ { a = $2 }
            /^RssFile:/ { f = $2 } END { print r + 0, a + 0, f + 0 }' "/proc/${pids[i]}/status" 2>/dev/null)
        store=0
        case "$t ${names[i]}" in
        "kumo server"*)
            for f in "$TMP/kumo/s${names[i]#server}.tch" "$TMP/kumo/s${names[i]#server}.tch.grow"; do
                [ -f "$f" ] && store=$(( store + $(stat -c %s "$f") / 1024 ))
            done
            ;;
        esac
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "${names[i]}" "${rss:-0}" "${anon:-0}" "${file:-0}" "$store" >>"$TMP/mem.tsv"
    done
}

# CPU per operation: for each case and target, the median over the runs of
# each process's CPU microseconds per operation; "total" is the target's
# processes (not the client).
cpu_table() {
    local fmt=$1
    [ -s "$TMP/cpu.tsv" ] || return 0
    awk -F'\t' -v fmt="$fmt" -v cases="$(printf '%s|' "${CASES[@]}")" -v tnames="${TARGETS[*]}" '
    function median(list,    a, n, i, j, x) {
        n = split(list, a, " ")
        for (i = 2; i <= n; i++) {
            x = a[i] + 0
            for (j = i - 1; j >= 1 && a[j] + 0 > x; j--) a[j + 1] = a[j]
            a[j + 1] = x
        }
        if (n % 2) return a[(n + 1) / 2] + 0
        return (a[n / 2] + a[n / 2 + 1]) / 2
    }
    {
        k = $1 SUBSEP $2 SUBSEP $4
        v[k] = v[k] " " $5
        if (!(($1 SUBSEP $4) in seen)) { seen[$1 SUBSEP $4] = 1; names[$1] = names[$1] " " $4 }
    }
    END {
        nc = split(cases, cl, "|"); nt = split(tnames, tl, " ")
        if (fmt == "md") {
            print "| case | target | client | target total | per process |"
            print "|---|---|---:|---:|---|"
        } else {
            printf "%-14s %-10s %8s %8s  %s\n", "case", "target", "client", "total", "per process"
        }
        for (i = 1; i <= nc; i++) {
            if (cl[i] == "") continue
            for (j = 1; j <= nt; j++) {
                t = tl[j]; np = split(names[t], pn, " ")
                if (!((t SUBSEP cl[i] SUBSEP "client") in v)) continue
                tot = 0; per = ""
                for (p = 1; p <= np; p++) {
                    if (pn[p] == "client") continue
                    m = median(v[t SUBSEP cl[i] SUBSEP pn[p]]); tot += m
                    per = per sprintf("%s %.1f  ", pn[p], m)
                }
                c = median(v[t SUBSEP cl[i] SUBSEP "client"])
                if (fmt == "md")
                    printf "| %s | %s | %.1f | %.1f | %s |\n", cl[i], t, c, tot, per
                else
                    printf "%-14s %-10s %8.1f %8.1f  %s\n", (j == 1 ? cl[i] : ""), t, c, tot, per
            }
        }
    }' "$TMP/cpu.tsv"
}

# Memory after the prefill: RSS per process, and per million items held
# (kumo: each server holds copies/servers of the keys), against memcached's
# RSS. A kumo server's RSS counts only the pages of its mapped store touched
# since the file was opened (the rest is page cache all the same), so its
# memory is taken as its anonymous RSS plus its store files, whole.
mem_table() {
    local fmt=$1 copies=$KUMO_SERVERS
    [ -s "$TMP/mem.tsv" ] || return 0
    [ "$copies" -gt 3 ] && copies=3
    awk -F'\t' -v fmt="$fmt" -v keys="$KEYS" -v ns="$KUMO_SERVERS" -v copies="$copies" '
    function mib(kb) { return kb / 1024 }
    {
        t = $1; n = $2; rss = $3; mem = rss
        if (t == "memcached") items = keys
        else if (t == "twemproxy") items = (n ~ /^mc/) ? keys / 3 : 0
        else items = (n ~ /^server/) ? keys * copies / ns : 0
        if ($6 > 0 && $4 + $6 > mem) mem = $4 + $6
        line[++nl] = t "\t" n "\t" rss "\t" $4 "\t" $5 "\t" $6 "\t" mem "\t" items
        if (t == "memcached") mc = rss / (keys / 1e6)
    }
    END {
        if (fmt == "md") {
            print "| target | process | RSS MiB | anon MiB | file MiB | store files MiB | memory MiB | items held | memory MiB per million items | / memcached |"
            print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        } else {
            printf "%-10s %-11s %8s %8s %8s %8s %8s %9s %10s %6s\n", "target", "process", "RSS MiB", "anon", "file", "store", "memory", "items", "MiB per M", "/ mc"
        }
        for (i = 1; i <= nl; i++) {
            split(line[i], f, "\t")
            per = f[8] > 0 ? sprintf("%.1f", mib(f[7]) / (f[8] / 1e6)) : "-"
            r = (f[8] > 0 && mc > 0) ? sprintf("%.2f", (f[7] / (f[8] / 1e6)) / mc) : "-"
            if (fmt == "md")
                printf "| %s | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %d | %s | %s |\n", f[1], f[2], mib(f[3]), mib(f[4]), mib(f[5]), mib(f[6]), mib(f[7]), f[8], per, r
            else
                printf "%-10s %-11s %8.1f %8.1f %8.1f %8.1f %8.1f %9d %10s %6s\n", f[1], f[2], mib(f[3]), mib(f[4]), mib(f[5]), mib(f[6]), mib(f[7]), f[8], per, r
        }
    }' "$TMP/mem.tsv"
}

