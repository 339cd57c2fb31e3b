#!/usr/bin/env bash
# bench/wait.sh -- what redis-wait-replicas costs an acknowledged send (issue 17).
#
# One primary redis-server and one replica (plain TCP, tests/redis-tls.sh),
# one redis-chat instance (2 workers, rate-limit 0, history-size 100000)
# against the primary, and bench/acks.js: S typed senders, each in its own
# room with one listener, each keeping up to W sends awaiting their answer,
# for T seconds. Two modes, alternating, on a fresh redis-chat each run and
# the same Redis pair: redis-wait-replicas 0 (an ack once the primary stored
# the message) and 1 (once WAIT 1 says the replica has it too).
#
# Per run: acks/s, ack latency (send -> ack) p50/p99/max, redis-chat CPU
# (utime + stime of every redis-chat process, /proc/PID/stat) per
# acknowledged send, the primary's and the replica's CPU per send, sends
# refused "not replicated" (0 with a healthy replica), and the WAIT commands
# the primary ran per send (INFO commandstats, cmdstat_wait): the batching.
#
#   bench/wait.sh [options] [BUILD_DIR]
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/wait.sh [options] [BUILD_DIR]
  --senders S   typed senders, one room each, one listener each (default 20)
  --window W    sends each keeps awaiting their answer, 1..64 (default 16)
  --secs T      seconds of sending per run (default 10; --smoke 2)
  --reps N      runs per mode, the modes alternating (default 3; --smoke 1)
  --timeout MS  redis-wait-timeout (default 1000, the server's)
  --smoke       short: a check that everything works, not figures
  --out DIR     results (default BUILD_DIR/bench-out/wait)
env: BUILD, REDIS_SERVER, REDIS_CLI, NODE_PATH (the ws module; else wscat's)
EOF
    exit "${1:-2}"
}

SENDERS=20 WINDOW=16 SECS="" REPS="" WTIMEOUT=1000 SMOKE=0 OUT="" BUILD_ARG=""
while (($#)); do
    case $1 in
    --senders) SENDERS=${2:?}; shift ;;
    --window) WINDOW=${2:?}; shift ;;
    --secs) SECS=${2:?}; shift ;;
    --reps) REPS=${2:?}; shift ;;
    --timeout) WTIMEOUT=${2:?}; shift ;;
    --smoke) SMOKE=1 ;;
    --out) OUT=${2:?}; shift ;;
    -h | --help) usage 0 ;;
    -*) echo "wait.sh: unknown option $1" >&2; usage ;;
    *) BUILD_ARG=$1 ;;
    esac
    shift
done
die() { echo "wait.sh: $*" >&2; exit 1; }
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
if ((SMOKE)); then SECS=${SECS:-2} REPS=${REPS:-1}; else SECS=${SECS:-10} REPS=${REPS:-3}; fi
for v in "$SENDERS" "$WINDOW" "$SECS" "$REPS" "$WTIMEOUT"; do
    [[ $v =~ ^[1-9][0-9]*$ ]] || die "bad number $v"
done
((WINDOW <= 64)) || die "--window: at most 64 (the server refuses more sends awaiting an answer)"
BUILD=${BUILD_ARG:-${BUILD:-$PWD}}
BUILD=$(cd "$BUILD" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
REDIS_CHAT=$BUILD/redis-chat
[[ -x $REDIS_CHAT ]] || die "no $REDIS_CHAT (build first)"
REDIS_SERVER=${REDIS_SERVER:-$(command -v redis-server || true)}
[[ -n $REDIS_SERVER && -x $REDIS_SERVER ]] || die "redis-server not found (set REDIS_SERVER)"
REDIS_CLI=${REDIS_CLI:-$(dirname "$REDIS_SERVER")/redis-cli}
[[ -x $REDIS_CLI ]] || REDIS_CLI=$(command -v redis-cli || true)
[[ -n $REDIS_CLI && -x $REDIS_CLI ]] || die "redis-cli not found (set REDIS_CLI)"
command -v node >/dev/null || die "no node (bench/acks.js)"
# the ws module, as run.sh's resume scenario finds it: NODE_PATH, else wscat's
MODULES=""
for d in ${NODE_PATH:+${NODE_PATH//:/ }} /usr/lib/node_modules/wscat/node_modules \
    /usr/local/lib/node_modules/wscat/node_modules "$(npm root -g 2>/dev/null)/wscat/node_modules"; do
    [[ -d $d/ws ]] && { MODULES=$d; break; }
done
[[ -n $MODULES ]] || die "no ws module (install wscat, or set NODE_PATH)"
OUT=${OUT:-$BUILD/bench-out/wait}
mkdir -p "$OUT"
TCK=$(getconf CLK_TCK)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/redis-chat-wbench.XXXXXX")
PRIMARY_PID="" REPLICA_PID="" CHAT_PID="" ACKS_PID=""
STATUS=0

cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "$ACKS_PID" "$CHAT_PID" "$REPLICA_PID" "$PRIMARY_PID"; do
        [[ -z $p ]] || kill -TERM "$p" 2>/dev/null || true
    done
    [[ -z $CHAT_PID ]] || wait "$CHAT_PID" 2>/dev/null || true
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cli() { # PORT ARGS...
    local p=$1
    shift
    timeout 10 "$REDIS_CLI" -h 127.0.0.1 -p "$p" "$@"
}
# redis-chat's master and its children (broker, workers)
chat_cpu() {
    local pids
    mapfile -t pids < <(echo "$CHAT_PID"; ps -o pid= --ppid "$CHAT_PID" 2>/dev/null | tr -d ' ' || true)
    cpu_ticks "${pids[@]}"
}
# the WAIT commands the primary has run so far
wait_calls() {
    cli "$PRIMARY_PORT" INFO commandstats | tr -d '\r' |
        awk -F'[:,=]' '$1 == "cmdstat_wait" { print $3; found = 1 } END { if (!found) print 0 }'
}
range() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { a = $1 } { b = $1 } END { if (NR > 1) printf " (%s–%s)", a, b }'; }


# ---- Redis: a primary and its replica ------------------------------------------
start_redis_pair() {
    local i
    free_port
    PRIMARY_PORT=$PORT
    REDIS_SERVER=$REDIS_SERVER REDIS_CLI=$REDIS_CLI REDIS_TLS=no \
        bash "$HERE/../tests/redis-tls.sh" "$TMP/primary" "$PRIMARY_PORT" '' >"$TMP/primary.out" 2>&1 ||
        die "the primary did not start: $(tail -5 "$TMP/primary.out")"
    PRIMARY_PID=$(cat "$TMP/primary/redis.pid")
    free_port
    REPLICA_PORT=$PORT
    echo "replicaof 127.0.0.1 $PRIMARY_PORT" >"$TMP/replica.conf"
    REDIS_SERVER=$REDIS_SERVER REDIS_CLI=$REDIS_CLI REDIS_TLS=no REDIS_EXTRA_CONF=$TMP/replica.conf \
        bash "$HERE/../tests/redis-tls.sh" "$TMP/replica" "$REPLICA_PORT" '' >"$TMP/replica.out" 2>&1 ||
        die "the replica did not start: $(tail -5 "$TMP/replica.out")"
    REPLICA_PID=$(cat "$TMP/replica/redis.pid")
    for ((i = 0; i < 100; i++)); do
        cli "$REPLICA_PORT" INFO replication | grep -q '^master_link_status:up' && return 0
        sleep 0.1
    done
    die "the replica never linked up: $(tail -5 "$TMP/replica/redis.log")"
}

# ---- redis-chat: one instance, fresh for each run ----------------------------------
healthz() { # PORT
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
        IFS= read -r -t 2 l <&3 || exit 1
        [[ $l == "HTTP/1.1 200"* ]]
    ) 2>/dev/null
}

start_chat() { # REPLICAS
    local conf=$TMP/chat.conf i ok=0
    free_port
    CHAT_PORT=$PORT
    cat >"$conf" <<EOF
# written by bench/wait.sh
bind 127.0.0.1
port $CHAT_PORT
workers 2
broker-socket $TMP/chat.sock
redis-host 127.0.0.1
redis-port $PRIMARY_PORT
log-level warn
logfile $TMP/chat.log
max-connections-per-ip 0
rate-limit 0
history-size 100000
redis-wait-replicas $1
redis-wait-timeout $WTIMEOUT
EOF
    "$REDIS_CHAT" -t -c "$conf" >"$TMP/chat.check" 2>&1 ||
        die "redis-chat refuses the generated config: $(cat "$TMP/chat.check")"
    "$REDIS_CHAT" -c "$conf" >"$TMP/chat.out" 2>&1 &
    CHAT_PID=$!
    # every worker answers /healthz on its own: want a run of answers
    for ((i = 0; i < 300; i++)); do
        kill -0 "$CHAT_PID" 2>/dev/null || die "redis-chat exited: $(tail -5 "$TMP/chat.out")"
        if healthz "$CHAT_PORT"; then
            ((++ok >= 4)) && return 0
            continue
        fi
        ok=0
        sleep 0.1
    done
    die "redis-chat never became healthy: $(tail -5 "$TMP/chat.log" 2>/dev/null)"
}

stop_chat() {
    kill -TERM "$CHAT_PID" 2>/dev/null || true
    wait "$CHAT_PID" 2>/dev/null || true
    CHAT_PID=""
}

# ---- one run ------------------------------------------------------------------------
# run REPLICAS REP: prints the figures' line "key=value ..."
declare -A RES=()
run_one() {
    local replicas=$1 rep=$2 fd line res="" rc=0 c0 c1 p0 p1 r0 r1 w0 w1 sends acks
    start_chat "$replicas"
    exec {fd}< <(NODE_PATH=$MODULES exec node "$HERE/acks.js" --hold --target "127.0.0.1:$CHAT_PORT" \
        --senders "$SENDERS" --window "$WINDOW" --secs "$SECS" --room "w${replicas}r$rep" \
        2>"$TMP/acks.err")
    ACKS_PID=$!
    while IFS= read -r -u "$fd" line; do
        case $line in
        ready)
            c0=$(chat_cpu) p0=$(cpu_ticks "$PRIMARY_PID") r0=$(cpu_ticks "$REPLICA_PID") w0=$(wait_calls)
            kill -USR2 "$ACKS_PID"
            ;;
        done)
            c1=$(chat_cpu) p1=$(cpu_ticks "$PRIMARY_PID") r1=$(cpu_ticks "$REPLICA_PID") w1=$(wait_calls)
            ;;
        *=*) res=$line ;;
        esac
    done
    exec {fd}<&-
    wait "$ACKS_PID" || rc=$?
    ACKS_PID=""
    cat "$TMP/acks.err" >>"$OUT/acks.log"
    echo "redis-wait-replicas $replicas rep $rep: $res" >>"$OUT/acks.log"
    stop_chat
    if ((rc)) || [[ -z $res || -z ${c1:-} ]]; then
        say "   acks.js failed (exit $rc): $(tail -3 "$TMP/acks.err" | tr '\n' ' ')"
        tail -5 "$TMP/chat.log" 2>/dev/null | sed 's/^/     /'
        STATUS=1
        return 0
    fi
    sends=$(kv "$res" sends) acks=$(kv "$res" acks)
    ((acks > 0)) || { say "   no acks: $res"; STATUS=1; return 0; }
    res+=" chat_cpu_us_per_ack=$(calc "($c1 - $c0) / $TCK * 1e6 / $acks" 1)"
    res+=" primary_cpu_us_per_send=$(calc "($p1 - $p0) / $TCK * 1e6 / $sends" 1)"
    res+=" replica_cpu_us_per_send=$(calc "($r1 - $r0) / $TCK * 1e6 / $sends" 1)"
    res+=" waits=$((w1 - w0)) waits_per_send=$(calc "($w1 - $w0) / $sends" 4)"
    RES[$replicas]+="$res;"
    say "   $res"
}

# one table row: the median (range) of FIGURE per mode
row() { # label figure
    local m vals r cells=""
    for m in 0 1; do
        vals=()
        IFS=';' read -ra r <<<"${RES[$m]:-}"
        for line in "${r[@]}"; do
            [[ -n $line ]] && vals+=("$(kv "$line" "$2")")
        done
        if ((${#vals[@]})); then
            cells+=" $(median "${vals[@]}")$(range "${vals[@]}") |"
        else
            cells+=" - |"
        fi
    done
    echo "| $1 |$cells"
}

say "# redis-chat: acknowledged sends with redis-wait-replicas $(date -u +%Y-%m-%dT%H:%MZ)"
HOST="$(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r), redis-server $("$REDIS_SERVER" --version | awk '{ sub(/^v=/, "", $3); print $3 }'), node $(node --version)"
say "host: $HOST"
say "redis-chat: $("$REDIS_CHAT" -v 2>&1 | head -1) ($BUILD)"
say "$SENDERS senders x $WINDOW sends awaiting an answer, $SECS s per run, $REPS run(s) per mode, redis-wait-timeout $WTIMEOUT ms"
: >"$OUT/acks.log"
start_redis_pair
for ((rep = 1; rep <= REPS; rep++)); do
    for replicas in 0 1; do
        say " - run $rep, redis-wait-replicas $replicas"
        run_one "$replicas" "$rep"
    done
done
cli "$REPLICA_PORT" INFO replication | grep -q '^master_link_status:up' ||
    { say " FAIL: the replica's link is down at the end"; STATUS=1; }
{
    echo ""
    echo "#### Acknowledged sends, redis-wait-replicas 0 and 1 ($(date -u +%Y-%m-%d))"
    echo ""
    echo "$HOST. One primary and one replica (plain TCP, loopback), one redis-chat (2 workers, rate-limit 0, history-size 100000), bench/acks.js on the same cores: $SENDERS typed senders, each in its own room with one listener, each keeping $WINDOW sends awaiting their answer, $SECS s per run; $REPS run(s) per mode, alternating; medians (range)."
    echo ""
    echo "| figure | redis-wait-replicas 0 | redis-wait-replicas 1 |"
    echo "|---|---:|---:|"
    row "acks/s" acks_per_s
    row "ack latency p50, ms" ack_p50_ms
    row "ack latency p99, ms" ack_p99_ms
    row "ack latency max, ms" ack_max_ms
    row "redis-chat CPU per ack, µs (all processes)" chat_cpu_us_per_ack
    row "primary redis-server CPU per send, µs" primary_cpu_us_per_send
    row "replica redis-server CPU per send, µs" replica_cpu_us_per_send
    row "WAIT commands per send" waits_per_send
    row "refused \"not replicated\"" not_replicated
    row "the load client's CPU, s (one node process)" client_cpu_s
} | tee "$OUT/wait.md"
((SMOKE == 0)) || say "(--smoke: a check that it works, not figures)"
exit "$STATUS"
