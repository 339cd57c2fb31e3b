#!/usr/bin/env bash
# redis-cluster.sh -- start or stop a throwaway Redis Cluster for redis-chat tests.
#
#   tests/redis-cluster.sh DIR FIRST_PORT PRIMARIES REPLICAS PASSWORD
#   tests/redis-cluster.sh --stop DIR
#   tests/redis-cluster.sh --start-node DIR PORT
#
# The first form starts PRIMARIES * (1 + REPLICAS) nodes on 127.0.0.1, ports
# FIRST_PORT, FIRST_PORT + 1, ... (each node's cluster bus listens on its port
# + 10000, which must be free too), each daemonized in DIR/node-PORT/ with its
# redis.conf, nodes.conf, redis.log and redis.pid. TLS only: clients, the
# cluster bus and replication all speak TLS with one CA and one server
# certificate in DIR/tls/ (tests/redis-certs.sh; one that may serve as a
# client's too: the bus checks the connecting node's) shared by every node;
# `requirepass` and `masterauth` are PASSWORD (empty: none). Then
# `redis-cli --cluster create` assigns the 16384 slots to PRIMARIES primaries
# with REPLICAS replicas each, and the script waits (at most 20 s) until every
# node says cluster_state:ok, knows all the nodes and has the same current
# epoch, all nodes' CLUSTER NODES agree (ids, roles, primaries, config
# epochs, slots; all connected), `redis-cli --cluster check` finds all
# 16384 slots covered, and every replica's link to its primary is up.
# (redis-cli create returns while the others may still take a new replica
# for a primary without slots: it told the replica, gossip tells the rest.) It exits 0 then, or 1
# with the nodes stopped and the end of the logs shown. PRIMARIES >= 3
# (redis-cli refuses fewer).
#
# --stop: stop every node below DIR by its pid file (SIGTERM, SIGKILL after
# 5 s), only when that process runs in the node's directory (a stale pid file
# names someone else's process). Never by name.
# --start-node: start the node on PORT again from its own redis.conf (after a
# kill: it keeps its nodes.conf, so it rejoins the cluster) and wait until it
# answers PING.
#
# Environment: REDIS_SERVER and REDIS_CLI override the binaries (valkey-server
# and valkey-cli 8 work as well); REDIS_TLS=no makes plain TCP nodes instead;
# REDIS_CLUSTER_FULL_COVERAGE=yes sets cluster-require-full-coverage yes.
set -euo pipefail

usage() {
    echo "usage: $0 DIR FIRST_PORT PRIMARIES REPLICAS PASSWORD" >&2
    echo "       $0 --stop DIR" >&2
    echo "       $0 --start-node DIR PORT" >&2
    exit 2
}

redis_server=${REDIS_SERVER:-redis-server}
redis_cli=${REDIS_CLI:-redis-cli}
here=$(cd "$(dirname "$0")" && pwd)

# number NAME VALUE MIN MAX: VALUE is a decimal integer in MIN..MAX.
number() {
    case $2 in
        '' | *[!0-9]*) echo "$0: bad $1: $2" >&2; exit 2 ;;
    esac
    if [ "${#2}" -gt 6 ] || [ "$2" -lt "$3" ] || [ "$2" -gt "$4" ]; then
        echo "$0: $1 must be $3..$4: $2" >&2
        exit 2
    fi
}

# node_pid NODEDIR: the pid in NODEDIR/redis.pid when that process is alive
# and runs in NODEDIR (redis-server chdirs to its `dir`), else nothing.
node_pid() {
    local pid
    [ -s "$1/redis.pid" ] || return 0
    pid=$(cat "$1/redis.pid" 2>/dev/null || true)
    case $pid in '' | *[!0-9]*) return 0 ;; esac
    if [ "$(readlink "/proc/$pid/cwd" 2>/dev/null || true)" = "$1" ]; then
        echo "$pid"
    fi
}

# stop_nodes DIR: SIGTERM every node below DIR, SIGKILL those left after 5 s.
stop_nodes() {
    local d pid pids=() alive
    for d in "$1"/node-*; do
        [ -d "$d" ] || continue
        pid=$(node_pid "$d")
        if [ -n "$pid" ]; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
    done
    [ ${#pids[@]} -gt 0 ] || return 0
    for _ in $(seq 50); do
        alive=()
        for pid in "${pids[@]}"; do
            # a zombie (not reaped yet: its parent is init's) counts as gone
            if [ -e "/proc/$pid" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null; then
                alive+=("$pid")
            fi
        done
        [ ${#alive[@]} -gt 0 ] || return 0
        pids=("${alive[@]}")
        sleep 0.1
    done
    for pid in "${pids[@]}"; do
        echo "$0: node pid $pid still running 5 s after SIGTERM: SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    done
}

# cli PORT ARGS...: redis-cli against one node, TLS and password as configured.
cli() {
    local port=$1
    shift
    local args=("$redis_cli" -h 127.0.0.1 -p "$port")
    [ "$tls" = no ] || args+=(--tls --cacert "$dir/tls/ca.crt")
    [ -z "$password" ] || args+=(-a "$password" --no-auth-warning)
    timeout "${cli_timeout:-5}" "${args[@]}" "$@"
}

# wait_ping PORT NODEDIR: up to 10 s for PONG (the daemon may still fail
# after the fork: port in use, bad config, which only its log tells).
wait_ping() {
    local answer
    for _ in $(seq 100); do
        answer=$(cli "$1" PING 2>/dev/null || true)
        if [ "$answer" = PONG ] && [ -s "$2/redis.pid" ]; then
            return 0
        fi
        sleep 0.1
    done
    echo "$0: node 127.0.0.1:$1 did not answer PING within 10 s; $2/redis.log:" >&2
    tail -n 20 "$2/redis.log" >&2 2>/dev/null || true
    return 1
}

# read back what the first form wrote, for the other forms
load_settings() {
    if [ ! -s "$dir/cluster.env" ]; then
        echo "$0: $dir/cluster.env missing: no cluster was started in $dir" >&2
        exit 1
    fi
    tls=$(sed -n 's/^tls=//p' "$dir/cluster.env")
    password=$(sed -n 's/^password=//p' "$dir/cluster.env")
}

# q STRING: quote for redis.conf ("..." with \\ and \" escapes).
q() {
    local s=${1//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "$s"
}

# write_conf PORT NODEDIR
write_conf() {
    local port=$1 nd=$2
    {
        echo "# generated by tests/redis-cluster.sh"
        echo "bind 127.0.0.1"
        if [ "$tls" = yes ]; then
            echo "port 0"
            echo "tls-port $port"
            echo "tls-cert-file $(q "$dir/tls/redis.crt")"
            echo "tls-key-file $(q "$dir/tls/redis.key")"
            echo "tls-ca-cert-file $(q "$dir/tls/ca.crt")"
            # clients need no certificate; the cluster bus asks one of a
            # connecting node anyway (the shared one, see redis-certs.sh)
            echo "tls-auth-clients no"
            echo "tls-cluster yes"
            echo "tls-replication yes"
        else
            echo "port $port"
        fi
        if [ -n "$password" ]; then
            echo "requirepass $(q "$password")"
            echo "masterauth $(q "$password")"
        fi
        echo "cluster-enabled yes"
        echo "cluster-config-file nodes.conf"
        # a dead primary is failed after 2 s and its replica promoted about
        # a second later: failover tests stay short
        echo "cluster-node-timeout 2000"
        # no (Redis says yes): while one shard has no primary, the others
        # keep answering, as a chat wants (rooms on other shards go on),
        # and a test can tell a client that routes per shard from one that
        # merely waits for the whole cluster to come back
        echo "cluster-require-full-coverage $full_coverage"
        echo 'save ""'
        echo "appendonly no"
        # a replica's first sync starts at once, not 5 s later (the default
        # waits for more replicas to share one diskless transfer)
        echo "repl-diskless-sync-delay 0"
        echo "dir $(q "$nd")"
        echo "logfile $(q "$nd/redis.log")"
        echo "pidfile $(q "$nd/redis.pid")"
        echo "daemonize yes"
    } >"$nd/redis.conf.tmp"
    # the password is in there
    chmod 600 "$nd/redis.conf.tmp"
    mv -f "$nd/redis.conf.tmp" "$nd/redis.conf"
}

# start_node PORT: launch the node from its redis.conf and wait for PONG.
start_node() {
    local nd=$dir/node-$1 old
    old=$(node_pid "$nd")
    if [ -n "$old" ]; then
        echo "$0: node $1 already running with pid $old (from $nd/redis.pid)" >&2
        return 1
    fi
    rm -f "$nd/redis.pid"
    "$redis_server" "$nd/redis.conf" || return 1
    wait_ping "$1" "$nd"
}

# node_view PORT: the node's CLUSTER NODES as every node should see it once
# settled: id, flags (without "myself"), primary, config epoch, link state,
# slots; sorted. Ping times left out.
node_view() {
    cli "$1" CLUSTER NODES 2>/dev/null | tr -d '\r' |
        awk '{ f = $3; sub(/^myself,/, "", f); s = "";
               for (i = 9; i <= NF; i++) s = s " " $i;
               print $1, f, $4, $7, $8 s }' | sort
}

# cluster_ready: 0 when every node is ok, all see the same nodes, roles,
# epochs and slots (PRIMARIES primaries, the rest their replicas, all
# connected), and every replica is linked to its primary.
cluster_ready() {
    local port info epoch="" e out role view first_view=""
    for ((port = first; port < first + total; port++)); do
        view=$(node_view "$port") || return 1
        [ -n "$first_view" ] || first_view=$view
        [ "$view" = "$first_view" ] || return 1
        [ "$(awk '$2 == "master" && $5 == "connected"' <<<"$view" | wc -l)" -eq "$primaries" ] ||
            return 1
        [ "$(awk '$2 == "slave" && $5 == "connected"' <<<"$view" | wc -l)" -eq \
            $((total - primaries)) ] || return 1
        info=$(cli "$port" CLUSTER INFO 2>/dev/null | tr -d '\r') || return 1
        grep -qx 'cluster_state:ok' <<<"$info" || return 1
        grep -qx 'cluster_slots_ok:16384' <<<"$info" || return 1
        grep -qx "cluster_known_nodes:$total" <<<"$info" || return 1
        e=$(sed -n 's/^cluster_current_epoch://p' <<<"$info")
        [ -z "$epoch" ] || [ "$e" = "$epoch" ] || return 1
        epoch=$e
        out=$(cli "$port" INFO replication 2>/dev/null | tr -d '\r') || return 1
        role=$(sed -n 's/^role://p' <<<"$out")
        if [ "$role" = slave ]; then
            grep -qx 'master_link_status:up' <<<"$out" || return 1
        fi
    done
    out=$(cli "$first" --cluster check "127.0.0.1:$first" 2>&1) || return 1
    grep -q 'All nodes agree about slots configuration' <<<"$out" || return 1
    grep -q 'All 16384 slots covered' <<<"$out" || return 1
}

fail() {
    echo "$0: $*" >&2
    for ((port = first; port < first + total; port++)); do
        echo "---- end of $dir/node-$port/redis.log:" >&2
        tail -n 8 "$dir/node-$port/redis.log" >&2 2>/dev/null || true
    done
    stop_nodes "$dir"
    exit 1
}

case ${1:-} in
    --stop)
        [ $# -eq 2 ] || usage
        [ -d "$2" ] || exit 0
        dir=$(cd "$2" && pwd)
        stop_nodes "$dir"
        exit 0
        ;;
    --start-node)
        [ $# -eq 3 ] || usage
        number PORT "$3" 1 55535
        dir=$(cd "$2" && pwd)
        load_settings
        [ -s "$dir/node-$3/redis.conf" ] || { echo "$0: no node $3 in $dir" >&2; exit 1; }
        start_node "$3"
        exit $?
        ;;
    -*) usage ;;
esac

[ $# -eq 5 ] || usage
number PRIMARIES "$3" 3 100
number REPLICAS "$4" 0 10
first=$2 primaries=$3 replicas=$4 password=$5
total=$((primaries * (1 + replicas)))
number FIRST_PORT "$first" 1 $((65535 - 10000 - total + 1))
case $password in
    *[[:space:]]*) echo "$0: PASSWORD must not contain white space" >&2; exit 2 ;;
esac
tls=${REDIS_TLS:-yes}
case $tls in
    yes | no) ;;
    *) echo "$0: REDIS_TLS must be yes or no" >&2; exit 2 ;;
esac
full_coverage=${REDIS_CLUSTER_FULL_COVERAGE:-no}
case $full_coverage in
    yes | no) ;;
    *) echo "$0: REDIS_CLUSTER_FULL_COVERAGE must be yes or no" >&2; exit 2 ;;
esac

mkdir -p "$1"
dir=$(cd "$1" && pwd)
[ "$tls" = no ] || bash "$here/redis-certs.sh" "$dir/tls" --client-auth
{
    echo "tls=$tls"
    echo "password=$password"
} >"$dir/cluster.env"
chmod 600 "$dir/cluster.env"

addrs=()
for ((port = first; port < first + total; port++)); do
    nd=$dir/node-$port
    mkdir -p "$nd"
    write_conf "$port" "$nd"
    start_node "$port" || fail "node $port did not start"
    addrs+=("127.0.0.1:$port")
done

# redis-cli polls every second until the nodes have met: seconds, not 5
if ! cli_timeout=30 cli "$first" --cluster create "${addrs[@]}" --cluster-replicas "$replicas" \
    --cluster-yes >"$dir/create.log" 2>&1; then
    tail -n 20 "$dir/create.log" >&2
    fail "redis-cli --cluster create failed (all of it in $dir/create.log)"
fi

deadline=$((SECONDS + 20))
while [ "$SECONDS" -lt "$deadline" ]; do
    if cluster_ready; then
        exit 0
    fi
    sleep 0.2
done
fail "the cluster was not ready within 20 s (all nodes ok, agreeing, replicas linked)"
