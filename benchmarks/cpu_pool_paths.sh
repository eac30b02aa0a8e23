#!/usr/bin/env bash
# Max pooling on the CPU three ways (kiln's reference, kiln's fast path, oneDNN's
# primitives) at the models' shapes: benchmarks/cpu_pool_paths.cpp built against a kiln
# build's engine library, run with 1 and 2 OpenMP threads, twice each (alternating).
#   BUILD=build-emu benchmarks/cpu_pool_paths.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
defines=$(sed -n 's/^CXX_DEFINES = //p' "$BUILD/CMakeFiles/kiln_engine.dir/flags.make")
includes=$(sed -n 's/^CXX_INCLUDES = //p' "$BUILD/CMakeFiles/kiln_engine.dir/flags.make")
# shellcheck disable=SC2086
${CXX:-g++} -O3 -DNDEBUG -std=gnu++17 -fopenmp $defines $includes benchmarks/cpu_pool_paths.cpp \
  "$BUILD/libkiln_engine.a" -ldnnl -lOpenCL -lz -lyaml-cpp -ldl -lpthread -o "$work/cpu_pool_paths"
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in 1 2; do
  for threads in 1 2; do
    OMP_NUM_THREADS=$threads "$work/cpu_pool_paths"
  done
done
