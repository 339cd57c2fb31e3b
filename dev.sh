#!/usr/bin/env bash
# redis-chat developer entry point.
#
#   ./dev.sh up      install dependencies, build, start a throwaway TLS redis-server
#                    (generated CA, password) and run redis-chat on port 8080
#   ./dev.sh check   install dependencies, build with -Werror, run `make check`
#                    (the web page's tests in headless Chromium included),
#                    the integration suites again against Valkey 8,
#                    the unit tests and the chat integration suites under
#                    valgrind (every server process), the same suite again in an
#                    ASan/UBSan build, then each libFuzzer target for 60 s;
#                    also a 5-second smoke run of each benchmark mode (the
#                    cluster and WAIT benchmarks too), `make
#                    distcheck` (the tarball on its own, read-only source tree),
#                    and the .deb built, installed, run and purged
#                    (tests/package/check_deb.sh)
#   ./dev.sh deps    only install the packages
#
# Works on a fresh Debian 12 machine as root (and on Debian 13 / Ubuntu 24.04,
# which ship hiredis 1.x themselves).
set -euo pipefail

top=$(cd "$(dirname "$0")" && pwd)
cd "$top"

say() { printf '==> %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Debian 12's libhiredis-dev is 0.14 (no TLS); hiredis 1.x comes from
# bookworm-backports' libhiredict-shims-dev. Add that suite with the same
# mirror and component as the main suite.
add_backports() {
    local src=/etc/apt/sources.list.d/bookworm-backports.sources
    [ -f "$src" ] && return 0
    local uri="http://deb.debian.org/debian" comp="main" keyring=""
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        # first stanza naming the bookworm suite
        uri=$(awk '/^URIs:/{u=$2} /^Suites:.*bookworm( |$)/{print u; exit}' /etc/apt/sources.list.d/debian.sources)
        comp=$(awk '/^Suites:.*bookworm( |$)/{f=1} f&&/^Components:/{$1=""; print; exit}' /etc/apt/sources.list.d/debian.sources)
        keyring=$(awk '/^Suites:.*bookworm( |$)/{f=1} f&&/^Signed-By:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    elif [ -f /etc/apt/sources.list ]; then
        read -r uri comp < <(awk '$1=="deb" && $3=="bookworm" {u=$2; $1=$2=$3=""; print u, $0; exit}' /etc/apt/sources.list)
    fi
    [ -n "$uri" ] || uri="http://deb.debian.org/debian"
    [ -n "${comp// /}" ] || comp="main"
    say "adding bookworm-backports ($uri, ${comp# })"
    {
        echo "Types: deb"
        echo "URIs: $uri"
        echo "Suites: bookworm-backports"
        echo "Components:${comp}"
        [ -n "$keyring" ] && echo "Signed-By: $keyring"
    } | as_root tee "$src" >/dev/null
    apt_updated=""
}

# libFuzzer's runtime comes with the compiler-rt package of clang's version
clang_major() { apt-cache policy clang 2>/dev/null | awk '/Candidate/ {split($2, v, ":"); split(v[2], w, "."); print w[1]; exit}'; }

PUPPETEER_VERSION=25.19.0 # puppeteer-core from npm, pinned

apt_updated=""
apt_update() {
    [ -n "$apt_updated" ] && return 0
    as_root apt-get update -qq
    apt_updated=1
}

deps() {
    local base=(build-essential autoconf automake autoconf-archive libtool pkg-config
        libevent-dev libwslay-dev libssl-dev liburing-dev libjansson-dev zlib1g-dev check redis-server
        redis-tools openssl valgrind procps iproute2 clang)
    # node and npm (for wscat): Debian's packages unless a node with npm is already there
    command -v npm >/dev/null 2>&1 || base+=(nodejs npm)
    . /etc/os-release
    export DEBIAN_FRONTEND=noninteractive
    if [ "${ID:-}" = debian ] && [ "${VERSION_CODENAME:-}" = bookworm ]; then
        add_backports
        apt_update
        as_root apt-get install -y -qq --no-install-recommends "${base[@]}" libclang-rt-14-dev >/dev/null
        as_root apt-get install -y -qq --no-install-recommends -t bookworm-backports \
            libhiredict-shims-dev >/dev/null
        # Valkey 8: the integration suites run against it too; its service
        # is not started (a policy-rc.d that says no, for the install only)
        if ! command -v valkey-server >/dev/null 2>&1; then
            local policy=""
            if [ ! -e /usr/sbin/policy-rc.d ]; then
                policy=/usr/sbin/policy-rc.d
                printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
                as_root chmod 755 "$policy"
            fi
            as_root apt-get install -y -qq --no-install-recommends -t bookworm-backports \
                valkey-server valkey-tools >/dev/null
            [ -z "$policy" ] || as_root rm -f "$policy"
        fi
    else
        apt_update
        as_root apt-get install -y -qq --no-install-recommends "${base[@]}" libhiredis-dev \
            "libclang-rt-$(clang_major)-dev" >/dev/null 2>&1 ||
            as_root apt-get install -y -qq --no-install-recommends "${base[@]}" libhiredis-dev >/dev/null
    fi
    # nginx + nchan: the benchmark's peer (bench/run.sh --vs nchan); its
    # service is not started (a policy-rc.d that says no, for the install only)
    if [ ! -f /usr/share/nginx/modules/ngx_nchan_module.so ]; then
        local policy=""
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            policy=/usr/sbin/policy-rc.d
            printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
            as_root chmod 755 "$policy"
        fi
        as_root apt-get install -y -qq --no-install-recommends nginx-light libnginx-mod-nchan >/dev/null
        [ -z "$policy" ] || as_root rm -f "$policy"
    fi
    # promtool (checks /metrics; from prometheus, whose service is not
    # started, as above), sd_notify, and what builds and checks the .deb
    if ! command -v promtool >/dev/null 2>&1; then
        local policy=""
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            policy=/usr/sbin/policy-rc.d
            printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
            as_root chmod 755 "$policy"
        fi
        as_root apt-get install -y -qq --no-install-recommends prometheus >/dev/null
        [ -z "$policy" ] || as_root rm -f "$policy"
    fi
    as_root apt-get install -y -qq --no-install-recommends libsystemd-dev debhelper dh-autoreconf \
        devscripts lintian fakeroot >/dev/null
    # wscat drives the real-client test
    if ! command -v wscat >/dev/null 2>&1; then
        say "installing wscat (npm)"
        as_root npm install -g --silent wscat >/dev/null 2>&1 || say "warning: npm install wscat failed; the wscat test will be skipped"
    fi
    # the browser tests: Debian's chromium, driven by puppeteer-core (which
    # downloads no browser)
    command -v chromium >/dev/null 2>&1 ||
        as_root apt-get install -y -qq --no-install-recommends chromium >/dev/null
    if [ ! -d "$(npm root -g)/puppeteer-core" ]; then
        say "installing puppeteer-core (npm)"
        as_root npm install -g --silent "puppeteer-core@$PUPPETEER_VERSION" >/dev/null
    fi
}

# have_deps: skip apt when everything is already installed (fast re-runs)
have_deps() {
    command -v redis-server >/dev/null && command -v autoreconf >/dev/null &&
        pkg-config --exists 'hiredis >= 1.0' hiredis_ssl libevent_openssl openssl check liburing jansson 2>/dev/null &&
        [ -f /usr/include/wslay/wslay.h ] && [ -f /usr/share/aclocal/ax_check_compile_flag.m4 ] &&
        command -v wscat >/dev/null && command -v clang >/dev/null && command -v valgrind >/dev/null &&
        command -v chromium >/dev/null && [ -d "$(npm root -g 2>/dev/null)/puppeteer-core" ] &&
        [ -f /usr/share/nginx/modules/ngx_nchan_module.so ] &&
        command -v promtool >/dev/null && pkg-config --exists libsystemd 2>/dev/null &&
        { [ "$(. /etc/os-release; echo "${VERSION_CODENAME:-}")" != bookworm ] ||
            command -v valkey-server >/dev/null; } &&
        command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null && command -v lintian >/dev/null &&
        [ -f /usr/share/perl5/Debian/Debhelper/Sequence/autoreconf.pm ] &&
        echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
            clang -x c -fsanitize=fuzzer - -o /dev/null 2>/dev/null
}

ensure_deps() {
    if have_deps; then say "dependencies present"; else say "installing dependencies"; deps; fi
}

jobs() { nproc 2>/dev/null || echo 2; }

build() { # build DIR CONFIGURE-ARGS...
    local dir=$1; shift
    [ -x configure ] || autoreconf -fi
    mkdir -p "$dir"
    (cd "$dir" && "$top/configure" -q "$@" && make -s -j"$(jobs)")
}

cmd_check() {
    ensure_deps
    say "build with -Werror"
    autoreconf -fi
    build build --enable-werror
    say "make check"
    (cd build && make -s -j"$(jobs)" check) || { cat build/test-suite.log 2>/dev/null | tail -200; exit 1; }
    if ! grep -q ':test-result: PASS' build/tests/browser/check_browser.sh.trs 2>/dev/null; then
        say "the browser tests did not run: $(grep -m1 SKIP build/tests/browser/check_browser.sh.log 2>/dev/null)"
        exit 1
    fi
    # the service tests must not skip either: sd_notify needs libsystemd in
    # the build, the unit check systemd-analyze (CI runs as root, so the
    # privilege drop tests run too)
    if ! grep -q 'define HAVE_LIBSYSTEMD 1' build/autoconfig.h ||
        ! grep -q ':test-result: PASS' build/tests/service/check_unit.sh.trs 2>/dev/null; then
        say "the systemd tests did not run: $(grep -m1 SKIP build/tests/service/check_unit.sh.log 2>/dev/null)"
        exit 1
    fi
    # the same integration suites against Valkey 8 (bookworm-backports; the
    # harness starts whatever REDIS_SERVER names), where it is packaged
    local valkey
    valkey=$(command -v valkey-server || true)
    if [ -n "$valkey" ]; then
        "$valkey" --version | grep -q '^Valkey server v=8' ||
            { say "valkey-server is not Valkey 8: $("$valkey" --version)"; exit 1; }
        say "integration tests against $("$valkey" --version | cut -d' ' -f1-3)"
        # shellcheck disable=SC2016 # make expands $(INTEG_TESTS)
        (cd build && REDIS_CLI=$(command -v valkey-cli) make -s -j"$(jobs)" check \
            TESTS='$(INTEG_TESTS)' REDIS_SERVER="$valkey" TEST_SUITE_LOG=valkey-suite.log) ||
            { tail -200 build/valkey-suite.log 2>/dev/null; exit 1; }
    elif [ "$(. /etc/os-release; echo "${VERSION_CODENAME:-}")" = bookworm ]; then
        say "valkey-server missing: ./dev.sh deps installs it"
        exit 1
    fi
    say "make distcheck: the release tarball builds, passes make check and installs on its own"
    (cd build && make -s -j"$(jobs)" distcheck) ||
        { tail -200 build/redis-chat-*/_build/sub/test-suite.log 2>/dev/null; exit 1; }
    say "the Debian package: build, install, run the installed server, purge"
    as_root tests/package/check_deb.sh
    say "benchmark smoke: each load generator mode for a few seconds"
    (cd build && make -s bench-smoke BENCH_FLAGS='--vs nchan')
    # the cluster and WAIT benchmarks of issue 17: a short run of each
    (cd build && make -s bench-cluster BENCH_FLAGS=--smoke && make -s bench-wait BENCH_FLAGS=--smoke)
    say "unit tests under valgrind"
    tests/valgrind-unit.sh build
    say "integration tests with every redis-chat process under valgrind"
    tests/valgrind-integ.sh "$top/build"
    say "sanitizer build (ASan + UBSan)"
    build build-asan --enable-werror --enable-sanitizers
    # every process (servers started by the tests too) reports into one folder:
    # a sanitizer report anywhere fails the run, even from a respawned worker
    local reports=$top/build-asan/sanitizer-reports
    rm -rf "$reports" && mkdir -p "$reports"
    export ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=1"
    export UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1:halt_on_error=1"
    (cd build-asan && make -s -j"$(jobs)" check) || { cat build-asan/test-suite.log 2>/dev/null | tail -200; exit 1; }
    unset ASAN_OPTIONS UBSAN_OPTIONS
    if [ -n "$(ls -A "$reports")" ]; then
        say "sanitizer reports:"
        cat "$reports"/*
        exit 1
    fi
    say "fuzzing: 60 s per target"
    FUZZ_OUT=$top/build-fuzz fuzz/run.sh "${FUZZ_SECONDS:-60}"
    say "all tests passed (plain and sanitizer builds, valgrind, fuzzing)"
}

cmd_up() {
    ensure_deps
    autoreconf -fi
    build build
    local run=$top/run
    mkdir -p "$run"
    "$top/tests/redis-tls.sh" "$run" 6380 devpassword
    say "redis-server with TLS on 127.0.0.1:6380 (password devpassword, CA $run/tls/ca.crt)"
    cat >"$run/redis-chat.conf" <<CONF
port 8080
redis-host 127.0.0.1
redis-port 6380
redis-password devpassword
redis-tls yes
redis-tls-ca-cert $run/tls/ca.crt
redis-tls-server-name localhost
CONF
    trap 'kill "$(cat "$run/redis.pid")" 2>/dev/null || true' EXIT
    say "redis-chat: open http://localhost:8080/ in a browser, or wscat -c ws://localhost:8080/chat/<name> (Ctrl-C stops)"
    "$top/build/redis-chat" -c "$run/redis-chat.conf"
}

case "${1:-}" in
    up) cmd_up ;;
    check) cmd_check ;;
    deps) ensure_deps ;;
    *) echo "usage: $0 up|check|deps" >&2; exit 2 ;;
esac
