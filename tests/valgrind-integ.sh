#!/usr/bin/env bash
# Run integration test programs with every redis-chat process (master,
# broker, workers) under valgrind memcheck: any error or definite/indirect
# leak in any process fails.
# Usage: tests/valgrind-integ.sh BUILD_DIR [TEST ...]
# (default: the chat, error-path, typed-protocol, history and RFC 6455 suites, and
# the backpressure suite, which finds processes through the master's log, and the wss:// and
# permessage-deflate suites; the process, crash,
# reload/drain, Redis-fault, storm and chaos suites find processes by their ps
# titles and time restarts, drains and outages, which valgrind hides and
# slows; the chaos suite also needs a steady message rate that valgrind
# cannot keep)
set -u
build=$1
shift
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(check_chat check_chat_errors check_typed check_history check_rfc6455 check_backpressure
    check_wss check_deflate)
src=$(cd "$(dirname "$0")/.." && pwd)
fail=0
for t in "${tests[@]}"; do
    vg=$(mktemp -d "${TMPDIR:-/tmp}/rc-vg.XXXXXX")
    if ! SRCDIR="$src" REDIS_CHAT="$build/redis-chat" REDIS_CHAT_VALGRIND="$vg" \
        "$build/tests/integ/$t" >"$vg/test.log" 2>&1; then
        echo "valgrind run FAILED: $t (the test itself)"; tail -30 "$vg/test.log"; fail=1
    fi
    nlogs=$(find "$vg" -name 'vg.*.log' | wc -l)
    bad=$(find "$vg" -name 'vg.*.log' -size +0 | sort)
    if [ "$nlogs" -eq 0 ]; then
        echo "valgrind FAILED: $t: no process ran under valgrind"; fail=1
    elif [ -n "$bad" ]; then
        echo "valgrind FAILED: $t: reports in $(echo "$bad" | wc -l) of $nlogs processes"
        for f in $bad; do head -60 "$f"; done
        fail=1
    else
        echo "valgrind clean: $t ($nlogs processes)"
    fi
    [ $fail -eq 0 ] && rm -rf "$vg"
done
exit $fail
