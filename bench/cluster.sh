#!/usr/bin/env bash
# bench/cluster.sh -- one Redis against a Redis Cluster, for issue 17.
#
# Two measurements, each printed as a table and kept in OUT/cluster.md:
#
#  pubsub  What a message costs Redis itself, without redis-chat: C channels
#          named as rooms' (chat:{rK}, spread over the slots), one subscriber
#          connection per node holding the channels that node serves, and M
#          messages of 64 bytes published round-robin over the channels, each
#          to the node that serves its channel (as a room's Lua script runs
#          there), with `redis-cli --pipe`. Three cases: one redis-server and
#          PUBLISH; the cluster and classic PUBLISH, which every node copies to
#          all the others over the cluster bus (Redis issue 3181); the cluster
#          and SPUBLISH, which stays on the shard. Per case: each node's CPU
#          (utime + stime from /proc/PID/stat, less its idle rate measured just
#          before) per message published, the sum over the nodes, and the
#          deliveries each subscriber counted (exactly M in all).
#  rooms   bench/run.sh's many-rooms scenario (redis-chat, two instances) once
#          on one redis-server and once on a cluster (--redis-cluster N), the
#          same rooms, users and rate: deliveries/s, redis-chat CPU per
#          delivery, Redis CPU per message on each node, the busiest node's,
#          and the sum. Needs the broker's cluster mode: without it run.sh
#          stops at once (the broker's commands get MOVED), and the cluster
#          column says so.
#
#   bench/cluster.sh [options] [BUILD_DIR]
set -euo pipefail

usage() {
    cat <<'EOF'
usage: bench/cluster.sh [options] [BUILD_DIR]
  --only pubsub|rooms   one of the two (default both)
  --shards N            cluster primaries (default 3)
  --reps N              repetitions (default 3; --smoke 1)
  --messages M          pubsub: messages per case (default 300000; --smoke 30000)
  --channels C          pubsub: channels (default 1000)
  --rooms N --room-size U --room-rate R --room-secs S
                        rooms: passed to run.sh (defaults here 1000, 10, 1000 msg/s, 10 s:
                        a rate at which each node's CPU per message is well above
                        the 10 ms resolution of /proc)
  --smoke               small and short (rooms: run.sh's --smoke counts)
  --out DIR             results (default BUILD_DIR/bench-out/cluster)
env: BUILD, REDIS_SERVER, REDIS_CLI
EOF
    exit "${1:-2}"
}

ONLY="" SHARDS=3 REPS="" MSGS="" CHANS=1000 SMOKE=0 OUT="" BUILD_ARG=""
ROOM_ARGS=() ROOMS_RATE_SET=0
while (($#)); do
    case $1 in
    --only) ONLY=${2:?}; shift ;;
    --shards) SHARDS=${2:?}; shift ;;
    --reps) REPS=${2:?}; shift ;;
    --messages) MSGS=${2:?}; shift ;;
    --channels) CHANS=${2:?}; shift ;;
    --rooms | --room-size | --room-secs) ROOM_ARGS+=("$1" "${2:?}"); shift ;;
    --room-rate) ROOM_ARGS+=("$1" "${2:?}"); ROOMS_RATE_SET=1; shift ;;
    --smoke) SMOKE=1 ;;
    --out) OUT=${2:?}; shift ;;
    -h | --help) usage 0 ;;
    -*) echo "cluster.sh: unknown option $1" >&2; usage ;;
    *) BUILD_ARG=$1 ;;
    esac
    shift
done
die() { echo "cluster.sh: $*" >&2; exit 1; }
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BUILD=${BUILD_ARG:-${BUILD:-$PWD}}
BUILD=$(cd "$BUILD" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
CLUSTER_SH=$HERE/../tests/redis-cluster.sh
REDIS_SERVER=${REDIS_SERVER:-$(command -v redis-server || true)}
[[ -n $REDIS_SERVER && -x $REDIS_SERVER ]] || die "redis-server not found (set REDIS_SERVER)"
REDIS_CLI=${REDIS_CLI:-$(dirname "$REDIS_SERVER")/redis-cli}
[[ -x $REDIS_CLI ]] || REDIS_CLI=$(command -v redis-cli || true)
[[ -n $REDIS_CLI && -x $REDIS_CLI ]] || die "redis-cli not found (set REDIS_CLI)"
[[ $ONLY == "" || $ONLY == pubsub || $ONLY == rooms ]] || die "--only pubsub|rooms"
if ((SMOKE)); then
    REPS=${REPS:-1} MSGS=${MSGS:-30000}
else
    REPS=${REPS:-3} MSGS=${MSGS:-300000}
    ((ROOMS_RATE_SET)) || ROOM_ARGS+=(--room-rate 1000)
fi
for v in "$SHARDS" "$REPS" "$MSGS" "$CHANS"; do
    [[ $v =~ ^[1-9][0-9]*$ ]] || die "bad number $v"
done
((SHARDS >= 3)) || die "--shards: at least 3 (redis-cli --cluster create)"
OUT=${OUT:-$BUILD/bench-out/cluster}
mkdir -p "$OUT"
TCK=$(getconf CLK_TCK)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/redis-chat-cbench.XXXXXX")
STATUS=0
SINGLE_PID="" SUB_PIDS=()

cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    for p in "${SUB_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    [[ ! -d $TMP/cluster ]] || bash "$CLUSTER_SH" --stop "$TMP/cluster" || true
    if [[ -n $SINGLE_PID ]]; then
        kill -TERM "$SINGLE_PID" 2>/dev/null || true
        wait "$SINGLE_PID" 2>/dev/null || true
    fi
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
# the range of the numbers given, "lo–hi"
range() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { a = $1 } { b = $1 } END { if (NR > 1) printf "%.2f–%.2f", a, b }'; }

# free loopback ports P..P+N-1 and their bus ports P+10000.., below 32768
free_ports() { # N
    local n=$1 p i j ok
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 2500))
        ok=1
        for ((j = 0; j < n && ok; j++)); do
            (exec 3<>"/dev/tcp/127.0.0.1/$((p + j))") 2>/dev/null && ok=0
            (exec 3<>"/dev/tcp/127.0.0.1/$((p + j + 10000))") 2>/dev/null && ok=0
        done
        ((ok)) && { echo "$p"; return 0; }
    done
    die "no run of $n free ports"
}

# ---- pubsub: the nodes' own cost of a message -------------------------------------
# PORTS[i], PIDS[i]: the Redis processes of the case; OWNER[k]: index of the
# node that serves channel k
PORTS=() PIDS=() OWNER=()

start_single() {
    local port i
    port=$(free_ports 1)
    mkdir -p "$TMP/single"
    "$REDIS_SERVER" --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$TMP/single" --logfile "$TMP/single/redis.log" --daemonize no >/dev/null 2>&1 &
    SINGLE_PID=$!
    for ((i = 0; i < 100; i++)); do
        [[ $(cli "$port" PING 2>/dev/null) == PONG ]] && { SINGLE_PORT=$port; return 0; }
        sleep 0.1
    done
    die "redis-server did not start"
}

start_cluster() {
    local first i
    first=$(free_ports "$SHARDS")
    REDIS_SERVER=$REDIS_SERVER REDIS_CLI=$REDIS_CLI REDIS_TLS=no \
        bash "$CLUSTER_SH" "$TMP/cluster" "$first" "$SHARDS" 0 '' >"$TMP/cluster.out" 2>&1 ||
        die "the cluster did not start: $(tail -5 "$TMP/cluster.out")"
    CL_PORTS=() CL_PIDS=()
    for ((i = 0; i < SHARDS; i++)); do
        CL_PORTS+=("$((first + i))")
        CL_PIDS+=("$(cat "$TMP/cluster/node-$((first + i))/redis.pid")")
    done
}

chan() { echo "chat:{r$1}"; }

# OWNER[k] for the cluster: CLUSTER KEYSLOT of every channel in one
# redis-cli session, then the slot ranges of CLUSTER NODES
map_owners() {
    local k
    OWNER=()
    mapfile -t OWNER < <(
        {
            cli "${CL_PORTS[0]}" CLUSTER NODES | awk '$3 ~ /master/ {
                split($2, a, "[:@]"); for (i = 9; i <= NF; i++) {
                    n = split($i, r, "-"); print "R", a[2], r[1], (n > 1 ? r[2] : r[1]) } }'
            for ((k = 0; k < CHANS; k++)); do echo "CLUSTER KEYSLOT $(chan "$k")"; done |
                cli "${CL_PORTS[0]}" | sed 's/^/S /'
        } | awk -v ports="${CL_PORTS[*]}" '
            BEGIN { n = split(ports, p, " "); for (i = 1; i <= n; i++) idx[p[i]] = i - 1 }
            $1 == "R" { for (s = $3; s <= $4; s++) own[s] = idx[$2]; next }
            $1 == "S" { print own[$2] }')
    ((${#OWNER[@]} == CHANS)) || die "could not map the channels to nodes"
}

# subscribe NODE_INDEX CMD: one connection to PORTS[i] holding, with CMD
# (SUBSCRIBE or SSUBSCRIBE), every channel that node serves; it counts the
# deliveries it reads into TMP/sub-i until the server closes it (QUIT)
subscribe() {
    local i=$1 cmd=$2 k chans=() fd
    for ((k = 0; k < CHANS; k++)); do
        ((OWNER[k] == i)) && chans+=("$(chan "$k")")
    done
    exec {fd}<>"/dev/tcp/127.0.0.1/${PORTS[i]}"
    # one command per channel: SSUBSCRIBE takes channels of one slot only
    for k in "${chans[@]}"; do
        printf '*2\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n' ${#cmd} "$cmd" ${#k} "$k"
    done >&"$fd"
    tr -d '\r' <&"$fd" | awk '$0 == "message" || $0 == "smessage" { n++ } END { print n + 0 }' \
        >"$TMP/sub-$i" &
    SUB_PIDS+=($!)
    SUB_FD[i]=$fd
    SUB_N[i]=${#chans[@]}
}
SUB_FD=() SUB_N=()

# until node i counts n subscriptions of its subscriber (classic or sharded)
wait_subscribed() { # i cmd
    local i=$1 n=${SUB_N[$1]} got t
    for ((t = 0; t < 100; t++)); do
        if [[ $2 == SSUBSCRIBE ]]; then
            got=$(cli "${PORTS[i]}" PUBSUB SHARDCHANNELS | grep -c . || true)
        else
            got=$(cli "${PORTS[i]}" PUBSUB CHANNELS | grep -c . || true)
        fi
        ((got >= n)) && return 0
        sleep 0.1
    done
    die "node ${PORTS[i]}: $got of $n subscriptions"
}

# the RESP commands for node i: messages k = 0..M-1 go to channel k mod C;
# those whose channel node i serves
gen_pipe() { # i CMD FILE
    local i=$1 cmd=$2 k
    {
        for ((k = 0; k < CHANS; k++)); do ((OWNER[k] == i)) && echo "$k"; done
    } | awk -v m="$MSGS" -v c="$CHANS" -v cmd="$cmd" '
        { mine[$1] = 1 }
        END {
            pay = sprintf("%064d", 0)
            for (k = 0; k < m; k++) {
                ch = k % c
                if (!(ch in mine)) continue
                name = "chat:{r" ch "}"
                printf "*3\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(cmd), cmd, length(name), name, length(pay), pay
            }
        }' >"$3"
}

# one case: PORTS/PIDS/OWNER set; SUBCMD, PUBCMD; prints "t0 ... | sum | delivered"
pubsub_case() { # label SUBCMD PUBCMD
    local label=$1 subcmd=$2 pubcmd=$3 i n=${#PORTS[@]} a=() b=() c=() ta tb tc us sum=0 line="" deliv=0 idle
    SUB_PIDS=()
    for ((i = 0; i < n; i++)); do subscribe "$i" "$subcmd"; done
    for ((i = 0; i < n; i++)); do wait_subscribed "$i" "$subcmd"; done
    for ((i = 0; i < n; i++)); do gen_pipe "$i" "$pubcmd" "$TMP/pipe-$i"; done
    # each node's idle rate (cron; the cluster bus), over 2 s
    for ((i = 0; i < n; i++)); do a[i]=$(cpu_ticks "${PIDS[i]}"); done
    ta=$EPOCHREALTIME
    sleep 2
    for ((i = 0; i < n; i++)); do b[i]=$(cpu_ticks "${PIDS[i]}"); done
    tb=$EPOCHREALTIME
    for ((i = 0; i < n; i++)); do
        cli "${PORTS[i]}" --pipe <"$TMP/pipe-$i" >"$TMP/pipe-$i.out" 2>&1 ||
            die "$label: redis-cli --pipe to ${PORTS[i]} failed: $(tail -2 "$TMP/pipe-$i.out")"
        grep -q 'errors: 0,' "$TMP/pipe-$i.out" || die "$label: $(tail -1 "$TMP/pipe-$i.out")"
    done
    # the bus copies of the last messages are read by the others a moment later
    sleep 0.5
    for ((i = 0; i < n; i++)); do c[i]=$(cpu_ticks "${PIDS[i]}"); done
    tc=$EPOCHREALTIME
    for ((i = 0; i < n; i++)); do
        printf '*1\r\n$4\r\nQUIT\r\n' >&"${SUB_FD[$i]}"
    done
    for i in "${SUB_PIDS[@]}"; do wait "$i" 2>/dev/null || true; done
    SUB_PIDS=()
    for ((i = 0; i < n; i++)); do
        idle=$(calc "(${b[i]} - ${a[i]}) * ($tc - $tb) / ($tb - $ta)" 3)
        us=$(calc "((${c[i]} - ${b[i]}) - $idle) / $TCK * 1e6 / $MSGS" 3)
        sum=$(calc "$sum + $us" 3)
        line+="$us "
        deliv=$((deliv + $(cat "$TMP/sub-$i")))
    done
    echo "${line}| $sum | $deliv"
}

run_pubsub() {
    local rep r res k
    declare -A RES=()
    say "== pubsub: $MSGS messages of 64 bytes over $CHANS channels, $REPS repetition(s)"
    start_single
    start_cluster
    map_owners
    for ((rep = 1; rep <= REPS; rep++)); do
        # one redis-server, PUBLISH
        PORTS=("$SINGLE_PORT") PIDS=("$SINGLE_PID")
        local save=("${OWNER[@]}")
        for ((k = 0; k < CHANS; k++)); do OWNER[k]=0; done
        res=$(pubsub_case single SUBSCRIBE PUBLISH)
        OWNER=("${save[@]}")
        RES[single]+="$res;"
        say " rep $rep single PUBLISH: us/message ${res%%|*}| sum ${res#*| }"
        PORTS=("${CL_PORTS[@]}") PIDS=("${CL_PIDS[@]}")
        res=$(pubsub_case classic SUBSCRIBE PUBLISH)
        RES[classic]+="$res;"
        say " rep $rep cluster PUBLISH: us/message by node ${res%%|*}| sum ${res#*| }"
        res=$(pubsub_case sharded SSUBSCRIBE SPUBLISH)
        RES[sharded]+="$res;"
        say " rep $rep cluster SPUBLISH: us/message by node ${res%%|*}| sum ${res#*| }"
        for r in "${RES[@]}"; do
            [[ ${r%;} =~ \|\ $MSGS$ ]] || { say " FAIL: a subscriber did not count every message: $r"; STATUS=1; }
        done
    done
    {
        echo ""
        echo "#### Redis alone: CPU per message, PUBLISH vs SPUBLISH ($(date -u +%Y-%m-%d))"
        echo ""
        echo "$MSGS messages of 64 bytes, round-robin over $CHANS channels \`chat:{rK}\`, each sent with \`redis-cli --pipe\` to the node serving its channel; one subscriber per node holding that node's channels; $SHARDS primaries, plain TCP; CPU = utime + stime of each redis-server less its idle rate; medians of $REPS (range)."
        echo ""
        echo "| case | CPU-µs per message, each node | busiest node | sum over nodes | messages/s when the busiest node fills a core | deliveries counted |"
        echo "|---|---|---:|---:|---:|---:|"
        pubsub_row "one redis-server, PUBLISH" "${RES[single]}"
        pubsub_row "cluster, classic PUBLISH (copied to every node)" "${RES[classic]}"
        pubsub_row "cluster, SPUBLISH (stays on its shard)" "${RES[sharded]}"
    } | tee -a "$OUT/cluster.md"
    bash "$CLUSTER_SH" --stop "$TMP/cluster"
    rm -rf "$TMP/cluster"
    kill -TERM "$SINGLE_PID" 2>/dev/null || true
    wait "$SINGLE_PID" 2>/dev/null || true
    SINGLE_PID=""
}

# a table row from "n0 n1 .. | sum | deliv;" per repetition: medians (ranges)
pubsub_row() { # label results
    local label=$1 rep nodes=() sums=() dels=() i n cells="" busy=()
    local -a reps
    IFS=';' read -ra reps <<<"$2"
    for rep in "${reps[@]}"; do
        [[ -n $rep ]] || continue
        read -ra n <<<"${rep%%|*}"
        nodes+=("${n[*]}")
        sums+=("$(awk -F'|' '{ print $2 + 0 }' <<<"$rep")")
        dels+=("$(awk -F'|' '{ print $3 + 0 }' <<<"$rep")")
        busy+=("$(printf '%s\n' "${n[@]}" | sort -g | tail -1)")
    done
    read -ra n <<<"${nodes[0]}"
    for ((i = 0; i < ${#n[@]}; i++)); do
        local col=()
        for rep in "${nodes[@]}"; do
            read -ra x <<<"$rep"
            col+=("${x[i]}")
        done
        cells+="$(printf '%.2f' "$(median "${col[@]}")") / "
    done
    local b
    b=$(median "${busy[@]}")
    echo "| $label | ${cells% / } | $(printf '%.2f' "$b") | $(printf '%.2f' "$(median "${sums[@]}")")$( ((${#sums[@]} > 1)) && echo " ($(range "${sums[@]}"))") | $(awk -v b="$b" 'BEGIN { if (b > 0) printf "%.0f", 1e6 / b; else printf "-" }') | $(median "${dels[@]}") of $MSGS |"
}

# ---- rooms: redis-chat on one Redis and on the cluster ----------------------------
run_rooms() {
    local side flags rc
    for side in single cluster; do
        flags=(--only rooms --reps "$REPS" --out "$OUT/rooms-$side" "${ROOM_ARGS[@]}")
        ((SMOKE)) && flags+=(--smoke)
        [[ $side == cluster ]] && flags+=(--redis-cluster "$SHARDS")
        say "== rooms on $side: bench/run.sh ${flags[*]}"
        rc=0
        REDIS_SERVER=$REDIS_SERVER REDIS_CLI=$REDIS_CLI bash "$HERE/run.sh" "${flags[@]}" "$BUILD" \
            >"$OUT/rooms-$side.log" 2>&1 || rc=$?
        grep -E '^ - repetition|^   [0-9]+ rooms x|^     [0-9]+ msg/s: sent|^     redis-chat CPU|^     Redis CPU per message by node|FAIL|^run.sh:|^        is the' \
            "$OUT/rooms-$side.log" | sed 's/^/  /' || true
        if ((rc)); then
            say "  (run.sh failed on the $side side, exit $rc: $OUT/rooms-$side.log)"
            STATUS=1
            ROOMS_FAILED[$side]=1
        fi
    done
    rooms_table | tee -a "$OUT/cluster.md"
}
declare -A ROOMS_FAILED=()

# the median of FIGURE from a run.sh summary (column 4 of its table)
fig() { # side figure
    local f=$OUT/rooms-$1/summary.md
    [[ -z ${ROOMS_FAILED[$1]:-} && -s $f ]] || { echo "-"; return; }
    awk -F' [|] ' -v k="$2" '$1 == "| rooms" && $2 == k { print $4; found = 1 } END { if (!found) print "-" }' "$f"
}

per_core() { awk -v u="$1" 'BEGIN { if (u + 0 > 0) printf "%.0f", 1e6 / u; else printf "-" }'; }

rooms_table() {
    local k i label pending="pending (the broker's cluster mode)"
    local c
    echo ""
    echo "#### The many-rooms scenario on one Redis and on $SHARDS shards ($(date -u +%Y-%m-%d))"
    echo ""
    echo "bench/run.sh --only rooms ${ROOM_ARGS[*]:+${ROOM_ARGS[*]} }--reps $REPS$( ((SMOKE)) && echo " --smoke"), then the same with --redis-cluster $SHARDS; medians."
    echo ""
    echo "| figure | one redis-server | cluster, $SHARDS primaries |"
    echo "|---|---:|---:|"
    for k in deliveries_per_s chat_cpu_us_per_delivery redis_cpu_us_per_message redis_cpu_us_per_message_net \
        redis_cpu_us_per_message_busiest_shard redis_cores latency_p99_ms lost; do
        c=$(fig cluster "$k")
        [[ $c != - ]] || c=$pending
        echo "| $k | $(fig single "$k") | $c |"
    done
    # what the figure is for: the message rate at which the busiest Redis
    # process would fill one core (Redis runs commands on one thread)
    c=$(fig cluster redis_cpu_us_per_message_busiest_shard)
    echo "| messages/s at which the busiest Redis fills a core | $(per_core "$(fig single redis_cpu_us_per_message_busiest_shard)") | $( [[ $c == - ]] && echo "$pending" || per_core "$c") |"
    for ((i = 0; i < SHARDS; i++)); do
        c=$(fig cluster "redis_cpu_us_per_message_shard$i")
        [[ $c != - ]] || c=$pending
        echo "| redis_cpu_us_per_message_shard$i | $( ((i == 0)) && fig single redis_cpu_us_per_message_shard0 || echo) | $c |"
    done
}

say "# redis-chat cluster benchmark $(date -u +%Y-%m-%dT%H:%MZ)"
say "host: $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r), $("$REDIS_SERVER" --version | awk '{ print $3 }')"
: >"$OUT/cluster.md"
[[ $ONLY == rooms ]] || run_pubsub
[[ $ONLY == pubsub ]] || run_rooms
say ""
say "tables in $OUT/cluster.md"
exit "$STATUS"
