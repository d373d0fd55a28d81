#!/bin/sh
# phase2.sh - build bench/assess/phase2.c against the libraries of a build tree (default
# build/, RelWithDebInfo) and run it: the time the catch-all assessment adds to a bulk
# job's output phase. Usage: bench/assess/phase2.sh [ROWS] [BUILD_DIR]
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
b=${2:-build}
cmake --build "$b" --target mp_job mp_store mp_bulkio mp_evidence mp_intel mp_addr mp_util -j2 >/dev/null
CFLAGS="-O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Wshadow -Wformat=2 -Wconversion -Wno-sign-conversion -Iinclude -Isrc $(pkg-config --cflags libevent icu-uc)"
LIBS="$b/libmp_job.a $b/libmp_store.a $b/libmp_bulkio.a $b/libmp_evidence.a $b/libmp_intel.a \
$b/libmp_addr.a $b/libmp_util.a $(pkg-config --libs sqlite3 icu-i18n icu-uc libidn2 jansson openssl zlib) -lcsv -lm"
cc $CFLAGS bench/assess/phase2.c $LIBS -o "$b/assess_phase2"
"$b/assess_phase2" "${1:-100000}"
