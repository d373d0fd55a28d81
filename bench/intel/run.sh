#!/bin/sh
# run.sh - build and run the intel benchmark, the accuracy evaluation and the table-size
# report. Run from anywhere; uses build-bench-intel/ in the repository root for the
# libraries (Release, -O2) and compiles the bench programs with cc directly (no CMake
# target). Usage: bench/intel/run.sh [SECONDS]
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
b=build-bench-intel
cmake -S . -B "$b" -DCMAKE_BUILD_TYPE=Release -DMP_TESTS=OFF -DMP_LAB=OFF >/dev/null
cmake --build "$b" --target mp_intel mp_addr mp_util -j2 >/dev/null
CFLAGS="-O2 -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Wshadow -Wformat=2 -Wconversion -Wno-sign-conversion -Iinclude -Isrc -Ibench/intel"
LIBS="$b/libmp_intel.a $b/libmp_addr.a $b/libmp_util.a $(pkg-config --libs libidn2)"
cc $CFLAGS bench/intel/bench.c $LIBS -o "$b/intel_bench"
cc $CFLAGS bench/intel/eval.c $LIBS -o "$b/intel_eval"

echo "== accuracy (tests/data/intel)"
"$b/intel_eval"
echo
echo "== throughput, one core ($(cc --version | head -1))"
"$b/intel_bench" "${1:-3}"
echo
echo "== table size (size(1) of the object files, bytes)"
size "$b"/CMakeFiles/mp_intel.dir/src/intel/*.o
