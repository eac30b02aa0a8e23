#!/bin/sh
# Compares kiln's f16/bf16 conversions with NVIDIA's host code on every input (see the .cpp). Needs CUDA's headers only.
set -e; cd "$(dirname "$0")/.."; out="${TMPDIR:-/tmp}/check_half_conversions"
g++ -std=c++17 -O2 -fopenmp -I. -I"${CUDA_HOME:-/usr/local/cuda}/include" scripts/check_half_conversions.cpp engine/core/dtype.cpp engine/core/error.cpp -o "$out"
"$out"
