#!/usr/bin/env bash
# What the CPU instruction set is worth to kiln's convolutions: benchmarks/eigen_gemm_isa.cpp
# built for the compiler's default x86-64 (how kiln builds unless -DKILN_CPU_ARCH is given),
# for x86-64-v3 (AVX2 + FMA) and for this machine (-march=native), run alternately, twice.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for arch in x86-64 x86-64-v3 native; do
  ${CXX:-g++} -O3 -DNDEBUG -march=$arch -fopenmp -isystem /usr/include/eigen3 "$here/eigen_gemm_isa.cpp" -o "$work/$arch"
done
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in 1 2; do
  for arch in x86-64 x86-64-v3 native; do
    echo "== -march=$arch (round $round)"
    "$work/$arch"
  done
done
