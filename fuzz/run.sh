#!/bin/sh
# run.sh [SECONDS] -- build the fuzz targets and run each for SECONDS (60).
#
# Builds into $FUZZ_OUT (default fuzz/out next to this script), then runs
# every target on a fresh copy of its seed corpus (fuzz/corpus/<target>),
# so the seeds in the tree are never touched. Exits 1 if any target found
# a crash, leak, timeout or broken invariant, naming the artifact; 0 if
# all ran clean.
#
# Environment: FUZZ_OUT, FUZZ_TARGETS (space-separated subset),
# FUZZ_ARGS (extra libFuzzer flags), FUZZ_CC (see build.sh).
set -eu

secs=${1:-60}
case $secs in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS]" >&2
    exit 2
    ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
out=${FUZZ_OUT:-$here/out}
targets=${FUZZ_TARGETS:-fuzz_http_upgrade fuzz_ipc fuzz_config fuzz_ws_frames fuzz_jwt fuzz_chat_proto fuzz_chat_payload fuzz_ws_deflate fuzz_rsub_reply fuzz_cluster_map fuzz_cluster_redirect}

"$here/build.sh" "$out"
out=$(cd "$out" && pwd)

failed=
for t in $targets; do
    work="$out/corpus/$t"
    arts="$out/artifacts/$t"
    log="$out/$t.log"
    rm -rf "$work" "$arts"
    mkdir -p "$work" "$arts"
    if [ -d "$here/corpus/$t" ]; then
        cp "$here/corpus/$t"/* "$work"/
    fi
    case $t in
    fuzz_http_upgrade) extra="-max_len=9000 -dict=$here/http_upgrade.dict" ;;
    fuzz_config) extra="-max_len=4096 -dict=$here/config.dict" ;;
    fuzz_ws_frames) extra="-max_len=4096" ;;
    fuzz_jwt) extra="-max_len=4200 -dict=$here/jwt.dict" ;; # just past JWT_TOKEN_MAX
    fuzz_chat_proto) extra="-max_len=4096 -dict=$here/chat_proto.dict" ;;
    fuzz_chat_payload) extra="-max_len=1024 -dict=$here/chat_payload.dict" ;;
    fuzz_ws_deflate) extra="-max_len=2048 -dict=$here/ws_deflate.dict" ;;
    fuzz_rsub_reply) extra="-max_len=4096 -dict=$here/rsub_reply.dict" ;;
    fuzz_cluster_map) extra="-max_len=8192 -dict=$here/cluster_map.dict" ;;
    fuzz_cluster_redirect) extra="-max_len=512 -dict=$here/cluster_map.dict" ;;
    *) extra="-max_len=8192" ;;
    esac
    echo "== $t: $secs s (log: $log)"
    rc=0
    # shellcheck disable=SC2086 # word splitting of the flag lists is wanted
    "$out/$t" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=25 -print_final_stats=1 \
        -artifact_prefix="$arts/" $extra ${FUZZ_ARGS:-} "$work" >"$log" 2>&1 || rc=$?
    # the last status line: executions, coverage, corpus, exec/s, rss
    grep -E '^#[0-9]+[[:space:]]' "$log" | tail -n 1 || true
    grep -E '^stat::number_of_executed_units|^stat::average_exec_per_sec|^stat::peak_rss_mb' \
        "$log" | tr '\n' ' ' || true
    echo
    if [ "$rc" -ne 0 ]; then
        failed="$failed $t"
        echo "!! $t failed (exit $rc); last report lines:"
        grep -E 'ERROR|invariant failed|SUMMARY' "$log" | head -n 5 || true
        for a in "$arts"/*; do
            [ -e "$a" ] && echo "!! artifact: $a"
        done
    fi
done

if [ -n "$failed" ]; then
    echo "fuzz: findings in:$failed" >&2
    exit 1
fi
echo "fuzz: all targets ran clean for $secs s each"
