#!/bin/sh
# Generate ./configure (needs autoconf, automake, autoconf-archive, libtool, pkg-config).
set -e
cd "$(dirname "$0")"
autoreconf -fi
