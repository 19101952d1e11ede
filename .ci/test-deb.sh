#!/usr/bin/env bash
# Tests the Debian package on this machine, as root: install, what it put where, man pages,
# completions, the unit, then remove and purge, twice (history purged, then kept on request).
# usage: test-deb.sh target/debian/sysmon_VERSION_ARCH.deb
set -euo pipefail
deb=$(realpath "$1")
pkg=sysmon
fail() { echo "test-deb: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "must run as root"

# This machine's own /var/lib/sysmon, if it has one, is put back afterwards.
saved=""
if [ -e /var/lib/sysmon ]; then
    saved=$(mktemp -d)
    mv /var/lib/sysmon "$saved/"
fi
cleanup() {
    dpkg -P "$pkg" >/dev/null 2>&1 || true
    rm -rf /var/lib/sysmon
    if [ -n "$saved" ]; then mv "$saved/sysmon" /var/lib/sysmon; fi
}
trap cleanup EXIT
if dpkg -s "$pkg" >/dev/null 2>&1; then
    echo "test-deb: purging the sysmon package a previous run left installed"
    dpkg -P "$pkg" >/dev/null
fi

version=$(dpkg-deb -f "$deb" Version)
echo "-- dpkg -i $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"
dpkg -i "$deb"
dpkg -L "$pkg" | sort > /tmp/test-deb.list.$$
files=$(while read -r p; do [ -d "$p" ] || echo "$p"; done < /tmp/test-deb.list.$$)
rm -f /tmp/test-deb.list.$$
echo "$(echo "$files" | wc -l) files installed"

echo "-- /usr/bin/sysmon --version"
out=$(/usr/bin/sysmon --version)
[ "$out" = "sysmon ${version%-*}" ] || fail "--version says '$out', the package is $version"
echo "$out; $(stat -c %s /usr/bin/sysmon) bytes; $(file -b /usr/bin/sysmon | cut -d, -f1,6-)"
/usr/bin/sysmon --once --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["processes"]'

echo "-- configuration"
dpkg-query -W -f='${Conffiles}\n' "$pkg" | grep -q '^ /etc/sysmon/config.toml ' || fail "config.toml is not a conffile"
[ "$(stat -c %a /etc/sysmon/config.toml)" = 600 ] || fail "config.toml is mode $(stat -c %a /etc/sysmon/config.toml)"
/usr/bin/sysmon config check /etc/sysmon/config.toml
for f in /usr/share/doc/sysmon/examples/share-with-group.conf /usr/share/doc/sysmon/copyright \
    /usr/share/doc/sysmon/changelog.Debian.gz /usr/share/doc/sysmon/sysmon-status.schema.json \
    /usr/share/sysmon/prometheus/sysmon.rules.yml /usr/share/sysmon/grafana/sysmon-fleet.json; do
    [ -f "$f" ] || fail "$f is missing"
done

echo "-- the daemon is installed, not enabled or started"
unit=/usr/lib/systemd/system/sysmon.service
[ -f "$unit" ] || fail "$unit is missing"
if ls /etc/systemd/system/*.wants/sysmon.service >/dev/null 2>&1; then fail "the unit was enabled"; fi
if pgrep -f '^/usr/bin/sysmon --headless' >/dev/null; then fail "a daemon was started"; fi
# Removing stops it: the prerm that cargo-deb generated (systemd is not PID 1 here to show it).
prerm=$(mktemp -d)
dpkg-deb -e "$deb" "$prerm"
grep -q 'deb-systemd-invoke stop sysmon.service' "$prerm/prerm" || fail "prerm does not stop the unit"
grep -q 'deb-systemd-invoke start' "$prerm/postinst" && fail "postinst starts the unit"
rm -rf "$prerm"

echo "-- systemd-analyze verify $unit"
systemd-analyze verify "$unit"

echo "-- man pages"
pages=$(echo "$files" | grep '^/usr/share/man/man1/')
subcommands=$(/usr/bin/sysmon --help | sed -n '/^Commands:/,/^$/p' | grep -cv -e '^Commands:' -e '^  help ' -e '^$')
[ "$(echo "$pages" | wc -l)" -gt "$subcommands" ] || fail "$subcommands subcommands, but only these pages: $pages"
for page in $pages; do
    rendered=$(MANWIDTH=80 man --warnings -l "$page" 2>/tmp/test-deb.warn.$$) || fail "man -l $page failed"
    if [ -s /tmp/test-deb.warn.$$ ]; then cat /tmp/test-deb.warn.$$ >&2; fail "$page renders with warnings"; fi
    [ -n "$rendered" ] || fail "$page renders empty"
    echo "$page: $(echo "$rendered" | wc -l) lines"
done
rm -f /tmp/test-deb.warn.$$
man -w sysmon-alerts-ack >/dev/null || fail "man does not find sysmon-alerts-ack"

echo "-- completions"
for f in /usr/share/bash-completion/completions/sysmon /usr/share/zsh/vendor-completions/_sysmon \
    /usr/share/fish/vendor_completions.d/sysmon.fish; do
    [ -s "$f" ] || fail "$f is missing"
done
# bash-completion loads the script on demand; complete `sysmon al` and `sysmon alerts a`.
words=$(bash -c '
    source /usr/share/bash-completion/bash_completion
    _completion_loader sysmon
    complete -p sysmon >/dev/null || exit 1
    fn=$(complete -p sysmon | sed -E "s/.*-F ([^ ]+).*/\1/")
    COMP_WORDS=(sysmon al); COMP_CWORD=1; COMP_LINE="sysmon al"; COMP_POINT=${#COMP_LINE}
    "$fn" sysmon al sysmon; echo "${COMPREPLY[*]}"
    COMP_WORDS=(sysmon alerts a); COMP_CWORD=2; COMP_LINE="sysmon alerts a"; COMP_POINT=${#COMP_LINE}
    "$fn" sysmon a alerts; echo "${COMPREPLY[*]}"
') || fail "bash does not load the completion"
echo "$words"
echo "$words" | head -1 | grep -qw alerts || fail "bash does not complete 'sysmon al'"
echo "$words" | tail -1 | grep -qw ack || fail "bash does not complete 'sysmon alerts a'"

gone() {
    for f in $files; do
        if [ -e "$f" ] || [ -L "$f" ]; then echo "$f"; fi
    done
}

echo "-- dpkg -r, then dpkg -P"
# What the daemon would have recorded.
install -d -m 0700 /var/lib/sysmon && echo history > /var/lib/sysmon/sysmon.db
dpkg -r "$pkg"
left=$(gone)
[ "$left" = /etc/sysmon/config.toml ] || fail "after dpkg -r, expected only the conffile left, got: $left"
[ -f /var/lib/sysmon/sysmon.db ] || fail "dpkg -r removed the history"
dpkg -P "$pkg"
left=$(gone)
[ -z "$left" ] || fail "after dpkg -P these are left: $left"
for d in /etc/sysmon /var/lib/sysmon /usr/share/doc/sysmon /usr/share/sysmon; do
    [ ! -e "$d" ] || fail "after dpkg -P, $d is left"
done
echo "nothing left"

echo "-- dpkg -P keeps the history when /var/lib/sysmon/keep-on-purge exists"
dpkg -i "$deb" >/dev/null
install -d -m 0700 /var/lib/sysmon && echo history > /var/lib/sysmon/sysmon.db
touch /var/lib/sysmon/keep-on-purge
dpkg -P "$pkg"
[ -f /var/lib/sysmon/sysmon.db ] || fail "keep-on-purge did not keep the history"
left=$(gone)
[ -z "$left" ] || fail "after dpkg -P these are left: $left"
echo "package ok"
