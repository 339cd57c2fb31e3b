#!/usr/bin/env bash
# redis-certs.sh -- the TLS files of the throwaway Redis servers of the tests.
#
#   tests/redis-certs.sh TLSDIR [--client-auth]
#
# Makes sure TLSDIR holds ca.crt, ca.key, redis.crt and redis.key: a CA and a
# server certificate signed by it for DNS:localhost, IP:127.0.0.1, made with
# the openssl CLI. Nothing is done when all four are there; a CA that is
# there is kept (a new server certificate is signed by it). Every file is
# written under a temp name first, so an interrupted run never leaves a set
# that looks complete. tests/redis-tls.sh (one server) and
# tests/redis-cluster.sh (every node of a cluster shares the one set) use it.
#
# --client-auth: the certificate may serve as a client's too (extended key
# usage serverAuth and clientAuth). Cluster nodes need that: a node connects
# to the others' cluster bus with it, and the bus always asks for and checks
# a client certificate, whatever tls-auth-clients says. Applies to a set made
# by this run only.
set -euo pipefail

usage() {
    echo "usage: $0 TLSDIR [--client-auth]" >&2
    exit 2
}
[ $# -eq 1 ] || [ $# -eq 2 ] || usage
[ -n "$1" ] || usage
tlsdir=$1 eku=serverAuth
if [ $# -eq 2 ]; then
    [ "$2" = --client-auth ] || usage
    eku="serverAuth, clientAuth"
fi

have=yes
for f in ca.crt ca.key redis.crt redis.key; do
    [ -s "$tlsdir/$f" ] || have=no
done
[ "$have" = no ] || exit 0

# ossl ARGS...: run openssl quietly; show its output only when it fails.
ossl() {
    local out
    if ! out=$(openssl "$@" 2>&1); then
        printf '%s: openssl %s failed:\n%s\n' "$0" "$1" "$out" >&2
        exit 1
    fi
}

mkdir -p "$tlsdir"
tmp=$(mktemp -d "$tlsdir/.gen.XXXXXX")
# a half-written set must not look complete to the next run
trap 'rm -rf "$tmp"' EXIT
if [ -s "$tlsdir/ca.crt" ] && [ -s "$tlsdir/ca.key" ]; then
    cp "$tlsdir/ca.crt" "$tlsdir/ca.key" "$tmp/"
else
    ossl genrsa -out "$tmp/ca.key" 2048
    ossl req -x509 -new -nodes -sha256 -days 3650 -key "$tmp/ca.key" \
        -subj "/O=redis-chat tests/CN=redis-chat test CA" -out "$tmp/ca.crt"
fi
ossl genrsa -out "$tmp/redis.key" 2048
ossl req -new -sha256 -key "$tmp/redis.key" -subj "/O=redis-chat tests/CN=localhost" \
    -out "$tmp/redis.csr"
cat >"$tmp/ext.cnf" <<EXT
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = $eku
subjectAltName = DNS:localhost, IP:127.0.0.1
EXT
ossl x509 -req -sha256 -days 3650 -in "$tmp/redis.csr" -CA "$tmp/ca.crt" \
    -CAkey "$tmp/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
    -extfile "$tmp/ext.cnf" -out "$tmp/redis.crt"
chmod 600 "$tmp/ca.key" "$tmp/redis.key"
for f in ca.key ca.crt redis.key redis.crt; do
    mv -f "$tmp/$f" "$tlsdir/$f"
done
