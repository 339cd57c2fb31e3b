#!/usr/bin/env bash
# check_deb.sh -- the Debian package, built, installed and run for real.
#
# Copies the source tree (the files git knows, as they are in the work
# tree; or all of an unpacked tarball) into a temporary directory, builds
# the .deb there (unit tests skipped: `make check` ran them already),
# checks it with lintian (no errors, no warnings), installs it with dpkg,
# and checks what it promises: the redis-chat system user, the
# configuration as a conffile, the manual pages, and the INSTALLED binary
# running with the INSTALLED /etc/redis-chat.conf as that user against a
# throwaway redis-server (port and Redis through PORT and REDIS_HOST):
# /healthz answers 200, two wscat clients chat, SIGTERM stops it with exit
# status 0. The package is purged at the end, whatever happened.
#
# Needs root (dpkg -i); without it exits 77 (skipped). Run by ./dev.sh check,
# not by make check: it installs into the system.
set -euo pipefail

say() { printf 'check_deb: %s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
    say "needs root (dpkg -i): skipped"
    exit 77
fi
top=$(cd "$(dirname "$0")/../.." && pwd)
for tool in dpkg-buildpackage redis-server wscat setpriv ss; do
    command -v "$tool" >/dev/null || fail "$tool not found (./dev.sh deps installs it)"
done
# never replace or purge a redis-chat someone installed on purpose
if dpkg-query -W -f='${Status}' redis-chat 2>/dev/null | grep -q 'ok installed'; then
    fail "a redis-chat package is already installed; remove it first (dpkg --purge redis-chat)"
fi

work=$(mktemp -d /tmp/redis-chat-deb.XXXXXX)
chmod 755 "$work" # the redis-chat user reads nothing here, but may look up its cwd
chat_pid=""
redis_pid=""
installed=""
cleanup() {
    local rc=$?
    [ -z "$chat_pid" ] || kill -KILL "$chat_pid" 2>/dev/null || true
    [ -z "$redis_pid" ] || kill -KILL "$redis_pid" 2>/dev/null || true
    if [ -n "$installed" ]; then
        timeout 120 dpkg --purge redis-chat >"$work/purge.log" 2>&1 ||
            { say "dpkg --purge failed:"; cat "$work/purge.log" >&2; rc=1; }
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# a TCP port nothing on this machine listens on
free_port() {
    local port
    for _ in $(seq 50); do
        port=$((20000 + RANDOM % 30000))
        ss -Hltn "sport = :$port" | grep -q . || { echo "$port"; return 0; }
    done
    return 1
}

# wait_for SECONDS COMMAND...: run COMMAND every 0.2 s until it succeeds
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.2
    done
}

# http_status PORT PATH: the status code of a plain GET (bash's /dev/tcp)
http_status() {
    timeout 5 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" "$2" >&3
        read -r _ code _ <&3 && echo "$code"' _ "$1" "$2" 2>/dev/null
}

# ---- build ----------------------------------------------------------------
src=$work/redis-chat
mkdir "$src"
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$top" && git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
        xargs -0 cp --parents -t "$src")
else # an unpacked release tarball
    cp -a "$top/." "$src/"
fi
version=$(cd "$src" && dpkg-parsechangelog -S Version)
say "building redis-chat $version (unit tests skipped: make check ran them)"
if ! (cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=2" \
        timeout 900 dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1; then
    tail -40 "$work/build.log" >&2
    fail "dpkg-buildpackage failed"
fi
deb=$(ls "$work"/redis-chat_"$version"_*.deb)
[ -f "$deb" ] || fail "no .deb built"
if command -v lintian >/dev/null; then
    timeout 300 lintian --allow-root --fail-on error,warning "$deb" >"$work/lintian.log" 2>&1 ||
        { cat "$work/lintian.log" >&2; fail "lintian: errors or warnings"; }
fi

# ---- install --------------------------------------------------------------
say "installing $(basename "$deb")"
installed=1
timeout 120 dpkg -i "$deb" >"$work/install.log" 2>&1 || { cat "$work/install.log" >&2; fail "dpkg -i failed"; }

getent passwd redis-chat >/dev/null || fail "no redis-chat user after install"
getent group redis-chat >/dev/null || fail "no redis-chat group after install"
[ "$(getent passwd redis-chat | cut -d: -f6)" = /nonexistent ] || fail "redis-chat's home is not /nonexistent"
[ "$(id -u redis-chat)" -lt 1000 ] || fail "redis-chat is not a system user (uid $(id -u redis-chat))"
dpkg-query -W -f='${Conffiles}\n' redis-chat | grep -q '^ /etc/redis-chat.conf ' ||
    fail "/etc/redis-chat.conf is not a conffile: $(dpkg-query -W -f='${Conffiles}' redis-chat)"
for page in /usr/share/man/man1/redis-chat.1.gz /usr/share/man/man5/redis-chat.conf.5.gz; do
    [ -f "$page" ] || fail "$page not installed"
done
if command -v man >/dev/null; then
    [ "$(man -w 5 redis-chat.conf)" = /usr/share/man/man5/redis-chat.conf.5.gz ] ||
        fail "man -w 5 redis-chat.conf: $(man -w 5 redis-chat.conf 2>&1)"
fi
/usr/bin/redis-chat -v | grep -qx "redis-chat $version" || fail "redis-chat -v: $(/usr/bin/redis-chat -v)"
/usr/bin/redis-chat -t -c /etc/redis-chat.conf >/dev/null || fail "redis-chat -t -c /etc/redis-chat.conf"

# ---- run the installed server as the redis-chat user ----------------------
redis_port=$(free_port) || fail "no free port for redis-server"
chat_port=$(free_port) || fail "no free port for redis-chat"
[ "$redis_port" != "$chat_port" ] || fail "picked one port twice: run again"
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
    --dir "$work" >"$work/redis.log" 2>&1 &
redis_pid=$!
wait_for 10 redis-cli -p "$redis_port" ping >/dev/null 2>&1 || fail "redis-server did not start"

say "running /usr/bin/redis-chat -c /etc/redis-chat.conf as redis-chat on port $chat_port"
(cd / && exec env PORT="$chat_port" REDIS_HOST="127.0.0.1:$redis_port" \
    setpriv --reuid=redis-chat --regid=redis-chat --init-groups \
    /usr/bin/redis-chat -c /etc/redis-chat.conf) >"$work/chat.log" 2>&1 &
chat_pid=$!
healthy() { [ "$(http_status "$chat_port" /healthz)" = 200 ]; }
wait_for 20 healthy || { cat "$work/chat.log" >&2; fail "GET /healthz never answered 200"; }
[ "$(ps -o user= -p "$chat_pid" | tr -d ' ')" = redis-chat ] || fail "the master does not run as redis-chat"

# alice listens (wscat quits when its stdin ends: give it an idle pipe)
url=ws://127.0.0.1:$chat_port/chat
(sleep 8 | timeout 15 wscat -c "$url/alice" -w 1 >"$work/alice.out" 2>&1 || true) &
alice=$!
wait_for 10 grep -qs 'Welcome alice!' "$work/alice.out" ||
    { cat "$work/alice.out" "$work/chat.log" >&2; fail "alice got no welcome"; }
sleep 2 | timeout 10 wscat -c "$url/bob" -x "hello from bob" -w 1 >"$work/bob.out" 2>&1 ||
    { cat "$work/bob.out" >&2; fail "wscat bob failed"; }
grep -q 'Welcome bob!' "$work/bob.out" || { cat "$work/bob.out" >&2; fail "bob got no welcome"; }
wait_for 10 grep -qs 'bob: hello from bob' "$work/alice.out" ||
    { cat "$work/alice.out" >&2; fail "alice did not hear bob"; }
wait "$alice" || true

# ---- stop -------------------------------------------------------------------
kill -TERM "$chat_pid"
stopped() { ! kill -0 "$chat_pid" 2>/dev/null; }
wait_for 30 stopped || fail "redis-chat did not stop within 30 s of SIGTERM"
rc=0
wait "$chat_pid" || rc=$?
chat_pid=""
[ "$rc" -eq 0 ] || { cat "$work/chat.log" >&2; fail "redis-chat exited $rc after SIGTERM"; }
grep -q 'stopped' "$work/chat.log" || fail "no 'stopped' in the log"
kill -TERM "$redis_pid"
wait "$redis_pid" 2>/dev/null || true
redis_pid=""

# ---- purge ------------------------------------------------------------------
installed=""
timeout 120 dpkg --purge redis-chat >"$work/purge.log" 2>&1 || { cat "$work/purge.log" >&2; fail "dpkg --purge failed"; }
[ ! -e /etc/redis-chat.conf ] || fail "/etc/redis-chat.conf left after purge"
[ ! -e /usr/bin/redis-chat ] || fail "/usr/bin/redis-chat left after purge"
! getent passwd redis-chat >/dev/null || fail "the redis-chat user is left after purge"
say "PASS: built, installed, ran as redis-chat (healthz 200, chat through Redis), stopped, purged"
