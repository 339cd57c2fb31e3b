#!/bin/sh
# check_unit.sh -- etc/redis-chat.service.in through `systemd-analyze verify`,
# with its paths pointing at this build's binary and the source tree's
# sample config (verify wants the ExecStart binary to exist). Skipped (77)
# without systemd-analyze.
set -u
SRCDIR=${SRCDIR:-.}
REDIS_CHAT=${REDIS_CHAT:-./redis-chat}
analyze=${SYSTEMD_ANALYZE:-}
[ -n "$analyze" ] || analyze=$(command -v systemd-analyze 2>/dev/null || true)
if [ -z "$analyze" ]; then
    echo "SKIP: systemd-analyze not found"
    exit 77
fi
in=$SRCDIR/etc/redis-chat.service.in
bin=$(cd "$(dirname "$REDIS_CHAT")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rchat-unit.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
fail=0

# the same substitution as the Makefile's, with this build's directories
sed -e "s|@bindir[@]|$bin|g" -e "s|@sysconfdir[@]|$(cd "$SRCDIR/etc" && pwd)|g" "$in" \
    > "$tmp/redis-chat.service"
if grep -n '@[a-z]*@' "$tmp/redis-chat.service"; then
    echo "FAIL: unsubstituted @...@ left in the unit"
    fail=1
fi

# the values the service depends on (a typo here is silently a different unit)
for want in 'Type=notify' 'NotifyAccess=main' 'KillMode=mixed' 'User=redis-chat' \
    "ExecStart=$bin/redis-chat -c " 'ExecReload=/bin/kill -HUP $MAINPID' 'PrivateTmp=yes'; do
    if ! grep -qF "$want" "$tmp/redis-chat.service"; then
        echo "FAIL: the unit lacks '$want'"
        fail=1
    fi
done

# verify needs no running systemd, and says nothing about a User= this
# machine lacks (redis-chat usually does not exist here): any output is a
# finding. That it does find things is checked on a broken copy first.
sed -e 's/^Type=notify$/Type=notifyy/' "$tmp/redis-chat.service" > "$tmp/broken.service"
if [ -z "$("$analyze" verify --man=no "$tmp/broken.service" 2>&1)" ]; then
    echo "FAIL: systemd-analyze verify says nothing about Type=notifyy: it checks nothing here"
    fail=1
fi
out=$("$analyze" verify --man=no "$tmp/redis-chat.service" 2>&1)
rc=$?
[ -z "$out" ] || printf '%s\n' "$out"
if [ $rc -ne 0 ] || [ -n "$out" ]; then
    echo "FAIL: systemd-analyze verify: exit $rc, output above"
    fail=1
fi

# the ExecStartPre check itself: the sample config is valid
if ! "$REDIS_CHAT" -t -c "$SRCDIR/etc/redis-chat.conf" >/dev/null; then
    echo "FAIL: redis-chat -t rejects etc/redis-chat.conf"
    fail=1
fi
[ $fail -eq 0 ] && echo "PASS: redis-chat.service verified"
exit $fail
