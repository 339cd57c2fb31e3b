# shellcheck shell=bash
# bench/lib.sh -- the helpers bench/run.sh, bench/wait.sh and bench/cluster.sh
# share; sourced, not run. The caller defines die() (its own prefix).

say() { printf '%s\n' "$*"; }

# calc EXPR [DECIMALS]: awk arithmetic, printed with DECIMALS (3) places
calc() { awk "BEGIN { printf \"%.${2:-3}f\", ($1) }"; }

# cpu_ticks PID...: utime + stime (clock ticks), summed; a gone PID counts 0
cpu_ticks() {
    local s=0 p f
    for p in "$@"; do
        { read -ra f <"/proc/$p/stat"; } 2>/dev/null || continue
        s=$((s + f[13] + f[14]))
    done
    echo "$s"
}

# kv "k1=v1 k2=v2 ..." KEY: KEY's value, "" when absent
kv() {
    local w
    for w in $1; do
        if [[ $w == "$2="* ]]; then
            echo "${w#*=}"
            return 0
        fi
    done
    echo ""
}

# median NUMBER...: "-" for none
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# free_port: a free loopback port below the ephemeral range (the load
# generators' own sockets take ports from 32768 up) into PORT, never one
# handed out before in this run
USED_PORTS=" "
PORT=""
free_port() {
    local p i
    for ((i = 0; i < 500; i++)); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
        [[ $USED_PORTS == *" $p "* ]] && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            USED_PORTS+="$p "
            # shellcheck disable=SC2034 # the caller's
            PORT=$p
            return 0
        fi
    done
    die "no free port found"
}
