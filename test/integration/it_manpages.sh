#!/bin/sh
# it_manpages.sh - the manual pages match the programs: every option a
# program's -h prints is in the OPTIONS section of its page and every option
# there is printed by -h (commands likewise, for the tools that have them);
# the pages have the usual sections and render without warnings; the
# example systemd units parse. Prints TAP.
#   KUMO_BUILDDIR: the build tree (programs); KUMO_SRCDIR: the source tree.
set -u

builddir=${KUMO_BUILDDIR:-.}
srcdir=${KUMO_SRCDIR:-.}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/it_manpages.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM

programs="kumo-manager kumo-server kumo-gateway kumoctl kumocluster kumohash kumostat kumotop kumomergedb"
units="kumo-manager.service kumo-server@.service kumo-gateway.service"
sections="NAME SYNOPSIS DESCRIPTION OPTIONS EXAMPLES EXIT_STATUS FILES SEE_ALSO"

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $*"; }
diag() { sed 's/^/# /'; }

binary() {   # program -> its path in the build tree
    case $1 in
    kumo-manager) echo "$builddir/src/manager/$1" ;;
    kumo-server|kumomergedb) echo "$builddir/src/server/$1" ;;
    kumo-gateway) echo "$builddir/src/gateway/$1" ;;
    *) echo "$builddir/src/ctl/$1" ;;
    esac
}

# The words of stdin that look like options (-l, -Rs, --listen), one per
# line, sorted; roff escapes (\-, \fB, \(lq, \e) are undone first.
option_words() {
    sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\([a-z][a-z]//g' \
        -e 's/\\[e ]/ /g' |
        tr -cs 'A-Za-z0-9_-' '\n' |
        grep -E '^--?[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*$' | sort -u
}

# The body of section $2 (".SH NAME" or ".SH \"NAME\"") of page $1.
section() {
    awk -v want="$2" '
        /^\.SH/ { s = $0; sub(/^\.SH[ \t]+/, "", s); gsub(/"/, "", s);
                  on = (s == want); next }
        on' "$1"
}

# Command names of a -h text: the "commands:" block, lines "  name ...";
# "  a | b  ..." gives a and b; "<name>" placeholders are skipped.
help_commands() {
    awk '
        /^commands:/ { on = 1; next }
        on && /^$/ { on = 0 }
        on && /^  [a-z_]/ { print $1; if ($2 == "|") print $3 }' | sort -u
}

# Command names of a page: the bold tag after each .TP of COMMANDS.
page_commands() {
    section "$1" COMMANDS | awk '
        tag && /^\.B[IR]? / { w = $2; gsub(/"/, "", w); gsub(/\\-/, "-", w);
                              print w }
        { tag = ($0 ~ /^\.TP/) }' | sort -u
}

for p in $programs; do
    bin=$(binary "$p")
    page="$srcdir/doc/$p.1"
    if [ ! -x "$bin" ] || [ ! -f "$page" ]; then
        not_ok "$p: program ($bin) and page ($page) exist"
        continue
    fi
    if "$bin" -h > "$tmp/help" 2> "$tmp/help.err" && grep -q '^usage:' "$tmp/help"; then
        ok "$p -h prints the usage and exits 0"
    else
        not_ok "$p -h prints the usage and exits 0"
        cat "$tmp/help" "$tmp/help.err" | diag
    fi

    # Every program takes -h/--help; the page may list them or not.
    { option_words < "$tmp/help"; printf -- '-h\n--help\n'; } | sort -u > "$tmp/help.opts"
    section "$page" OPTIONS | option_words > "$tmp/page.opts"
    missing=$(grep -vxF -e -h -e --help "$tmp/help.opts" | comm -23 - "$tmp/page.opts")
    if [ -z "$missing" ]; then
        ok "$p: every option of -h is in the page's OPTIONS"
    else
        not_ok "$p: every option of -h is in the page's OPTIONS"
        echo "not in $page:" $missing | diag
    fi
    extra=$(comm -13 "$tmp/help.opts" "$tmp/page.opts")
    if [ -z "$extra" ]; then
        ok "$p: every option in the page's OPTIONS is printed by -h"
    else
        not_ok "$p: every option in the page's OPTIONS is printed by -h"
        echo "not printed by $p -h:" $extra | diag
    fi

    help_commands < "$tmp/help" > "$tmp/help.cmds"
    page_commands "$page" > "$tmp/page.cmds"
    if [ -s "$tmp/help.cmds" ] || [ -s "$tmp/page.cmds" ]; then
        if cmp -s "$tmp/help.cmds" "$tmp/page.cmds"; then
            ok "$p: the commands of -h and of the page's COMMANDS are the same"
        else
            not_ok "$p: the commands of -h and of the page's COMMANDS are the same"
            diff "$tmp/help.cmds" "$tmp/page.cmds" | diag
        fi
    fi

    absent=
    for s in $sections; do
        s=$(echo "$s" | tr _ ' ')
        grep -Eq "^\\.SH \"?$s\"?\$" "$page" || absent="$absent [$s]"
    done
    if [ -z "$absent" ]; then
        ok "$p.1 has the sections $sections"
    else
        not_ok "$p.1 has the sections $sections"
        echo "missing:$absent" | diag
    fi

    if command -v groff > /dev/null 2>&1; then
        if groff -man -Tutf8 -ww -z "$page" > "$tmp/groff" 2>&1 && [ ! -s "$tmp/groff" ]; then
            ok "$p.1 renders without warnings (groff -man -ww)"
        else
            not_ok "$p.1 renders without warnings (groff -man -ww)"
            diag < "$tmp/groff"
        fi
    else
        ok "$p.1 renders without warnings # SKIP groff not installed"
    fi
done

# doc/include.am installs every page.
missing=
for p in $programs; do
    grep -q "doc/$p\\.1" "$srcdir/doc/include.am" || missing="$missing doc/$p.1"
    grep -q "doc/$p\\.md" "$srcdir/doc/include.am" || missing="$missing doc/$p.md"
done
if [ -z "$missing" ]; then
    ok "doc/include.am lists every manual page and program page"
else
    not_ok "doc/include.am lists every manual page and program page"
    echo "missing:$missing" | diag
fi

# Units: systemd-analyze verify where it works, else a syntax check. The
# ExecStart binaries are pointed at this build so that verify finds them.
mkdir "$tmp/bin" "$tmp/units"
for b in kumo-manager kumo-server kumo-gateway; do
    ln -s "$(cd "$(dirname "$(binary "$b")")" && pwd)/$b" "$tmp/bin/$b"
done

syntax_check() {   # unit file -> problems on stdout, nothing if fine
    awk '
        /^[ \t]*(#|;|$)/ { next }
        /^\[(Unit|Service|Install)\]$/ { sec = $0; seen[sec] = 1; next }
        /^\[/ { print FILENAME ":" NR ": unknown section " $0; next }
        sec == "" { print FILENAME ":" NR ": line outside a section"; next }
        !/^[A-Za-z]+=/ { print FILENAME ":" NR ": not Key=Value: " $0; next }
        {
            k = $0; sub(/=.*/, "", k)
            if (!(k in known)) print FILENAME ":" NR ": unknown key " k
            have[sec, k] = 1
            if (k ~ /^Exec/ && $0 !~ /^[A-Za-z]+=[-@:+!]*\//)
                print FILENAME ":" NR ": " k " needs an absolute path"
        }
        END {
            if (!have["[Unit]", "Description"]) print FILENAME ": no Description"
            if (!have["[Service]", "ExecStart"]) print FILENAME ": no ExecStart"
            if (!have["[Install]", "WantedBy"]) print FILENAME ": no WantedBy"
        }
        BEGIN {
            split("Description Documentation After Before Wants Requires " \
                  "BindsTo PartOf Conflicts Type User Group EnvironmentFile " \
                  "Environment ExecStart ExecStartPre ExecStartPost ExecReload " \
                  "ExecStop PIDFile RuntimeDirectory StateDirectory " \
                  "LogsDirectory Restart RestartSec TimeoutStartSec " \
                  "TimeoutStopSec LimitNOFILE KillMode KillSignal UMask " \
                  "WorkingDirectory WantedBy RequiredBy Alias", a, " ")
            for (i in a) known[a[i]] = 1
        }' "$1"
}

for u in $units; do
    f="$srcdir/doc/systemd/$u"
    if [ ! -f "$f" ]; then
        not_ok "systemd unit $u exists"
        continue
    fi
    name=$(echo "$u" | sed 's/@\./@test./')
    sed "s#/usr/local/bin/#$tmp/bin/#g" "$f" > "$tmp/units/$name"
    how="syntax check"
    problems=
    if command -v systemd-analyze > /dev/null 2>&1; then
        out=$(cd "$tmp/units" && systemd-analyze verify --man=no "./$name" 2>&1)
        rc=$?
        base=${name%.service}
        if echo "$out" | grep -qF "$base"; then
            how="systemd-analyze verify"
            problems=$out
        elif [ $rc -eq 0 ]; then
            how="systemd-analyze verify"
        fi
        # Anything else (no systemd here, trouble with system units) falls
        # back to the syntax check below.
    fi
    if [ "$how" = "syntax check" ]; then
        problems=$(syntax_check "$tmp/units/$name")
    fi
    if [ -z "$problems" ]; then
        ok "systemd unit $u parses ($how)"
    else
        not_ok "systemd unit $u parses ($how)"
        echo "$problems" | diag
    fi
done

echo "1..$n"
[ $failed -eq 0 ]
