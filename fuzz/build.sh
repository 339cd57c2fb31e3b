#!/bin/sh
# build.sh OUTDIR -- compile every libFuzzer target of redis-chat into OUTDIR.
#
# clang only (-fsanitize=fuzzer,address,undefined); the sources are compiled
# straight from the tree, not from the autotools libraries, so the targets
# build without ./configure and with their own sanitizer flags. OUTDIR gets
# a minimal autoconfig.h (the Makefile passes -include autoconfig.h).
#
# Environment: FUZZ_CC (default clang), FUZZ_CFLAGS (added to the flags).
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
out=$1
top=$(cd "$(dirname "$0")/.." && pwd)
cc=${FUZZ_CC:-clang}

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "$0: $cc not found: the fuzz targets need clang with libFuzzer" >&2
    exit 1
fi
for pc in libevent openssl jansson zlib hiredis; do
    if ! pkg-config --exists "$pc"; then
        echo "$0: pkg-config cannot find $pc" >&2
        exit 1
    fi
done

mkdir -p "$out"
out=$(cd "$out" && pwd)

# What configure would find on Linux (grep HAVE_ src worker broker). The
# _GNU_SOURCE block is AC_USE_SYSTEM_EXTENSIONS.
cat >"$out/autoconfig.h.tmp" <<'CONF'
/* autoconfig.h for the fuzz targets (written by fuzz/build.sh) */
#define PACKAGE_VERSION "fuzz"
#define HAVE_ACCEPT4 1
#define HAVE_PRCTL 1
#define HAVE_SYS_PRCTL_H 1
#ifndef _GNU_SOURCE
# define _GNU_SOURCE 1
#endif
#ifndef _ALL_SOURCE
# define _ALL_SOURCE 1
#endif
#ifndef _POSIX_PTHREAD_SEMANTICS
# define _POSIX_PTHREAD_SEMANTICS 1
#endif
CONF
if cmp -s "$out/autoconfig.h.tmp" "$out/autoconfig.h" 2>/dev/null; then
    rm -f "$out/autoconfig.h.tmp"
else
    mv "$out/autoconfig.h.tmp" "$out/autoconfig.h"
fi

cflags="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined"
cflags="$cflags -fno-sanitize-recover=undefined -std=gnu11 -Wall -Wextra -Wno-unused-parameter"
cflags="$cflags -include $out/autoconfig.h -I$top/src -I$top/worker -I$top/broker"
cflags="$cflags $(pkg-config --cflags libevent openssl jansson zlib hiredis) ${FUZZ_CFLAGS:-}"
libs_event="$(pkg-config --libs libevent)"
libs_ssl="$(pkg-config --libs openssl)"
libs_json="$(pkg-config --libs jansson zlib)"
libs_hiredis="$(pkg-config --libs hiredis)"

# The server sources go into one archive, as libcommon.a and libworker.a do
# in the Makefile, so each target pulls in only the objects it needs. Left
# out: main.c, master.c, privdrop.c and service_notify.c (the master), log.c (fuzz_ws_frames.c brings a
# silent logger), worker.c (worker_main and its static worker: the ws
# frames target sets up the transport and the chat itself) and broker/
# (hiredis), whose pure files are named below for their targets.
objdir="$out/obj"
rm -rf "$objdir"
mkdir -p "$objdir"
objs=
for src in "$top"/src/*.c "$top"/worker/*.c; do
    rel=${src#"$top"/}
    case $rel in
    src/main.c | src/master.c | src/privdrop.c | src/service_notify.c | src/log.c | worker/worker.c)
        continue ;;
    esac
    obj="$objdir/$(echo "$rel" | tr / _ | sed 's/\.c$/.o/')"
    echo "  CC       $rel"
    # shellcheck disable=SC2086 # word splitting of the flag lists is wanted
    $cc $cflags -c -o "$obj" "$src"
    objs="$objs $obj"
done
# the web page's files, compiled in as the Makefile does (web/embed.sh)
(cd "$top" && sh web/embed.sh) >"$out/web_assets.c"
echo "  CC       web_assets.c"
# shellcheck disable=SC2086
$cc $cflags -c -o "$objdir/web_assets.o" "$out/web_assets.c"
objs="$objs $objdir/web_assets.o"
rm -f "$out/libfuzzsrc.a"
# shellcheck disable=SC2086
ar rcs "$out/libfuzzsrc.a" $objs

for target in fuzz_http_upgrade fuzz_ipc fuzz_config fuzz_ws_frames fuzz_jwt fuzz_chat_proto \
    fuzz_chat_payload fuzz_ws_deflate; do
    echo "  CCLD     $target"
    # shellcheck disable=SC2086
    $cc $cflags -o "$out/$target" "$top/fuzz/$target.c" "$out/libfuzzsrc.a" \
        -lwslay $libs_event $libs_ssl $libs_json
done

# the broker's subscriber replies: broker/rsub_reply.c with hiredis's reader
echo "  CCLD     fuzz_rsub_reply"
# shellcheck disable=SC2086
$cc $cflags $(pkg-config --cflags hiredis) -o "$out/fuzz_rsub_reply" "$top/fuzz/fuzz_rsub_reply.c" \
    "$top/broker/rsub_reply.c" $libs_hiredis
# broker/ files, named one by one: the slot map and its redirections
for target in fuzz_cluster_map fuzz_cluster_redirect; do
    echo "  CCLD     $target"
    # shellcheck disable=SC2086
    $cc $cflags -o "$out/$target" "$top/fuzz/$target.c" "$top/broker/cluster_map.c" \
        "$out/libfuzzsrc.a" $libs_hiredis
done
