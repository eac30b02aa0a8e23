#!/usr/bin/env bash
# Plants one bug at a time in a kernel of a scratch copy of kiln, builds the emulated
# GPU (KILN_CUDA=EMULATE, ASan + UBSan for the memory bug) and runs the GPU suite,
# which must fail with a message naming the kernel. Run by hand; docs/cuda.md keeps
# what it printed.
#   scripts/plant_bugs.sh [WORK_DIR]     (default /tmp/kiln-planted; ccache helps a lot)
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-/tmp/kiln-planted}"
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache) && export CCACHE_BASEDIR="$work"

# name | file | sed expression | extra cmake flags | test filter | thread order | what the output must contain
bugs=(
  "off-by-one|kernels/activation.cu|s/KILN_GRID_STRIDE_LOOP(i, n) { y\[i\] = from_float<T>(forward_of/KILN_GRID_STRIDE_LOOP(i, n - 1) { y[i] = from_float<T>(forward_of/||-tc=op table*|forward|relu"
  "no-syncthreads|kernels/row_reduce.cuh|0,/  __syncthreads();/{s//  \/\/ planted: barrier removed/}||-tc=op table*|forward|softmax"
  "wrong-shuffle-mask|kernels/common.cuh|s/__shfl_xor_sync(0xffffffffu, value, offset)/__shfl_xor_sync(0x0000ffffu, value, offset)/||-ts=gpu|forward|does not include the calling lane 16"
  "write-past-end|kernels/activation.cu|s/{ y\[i\] = from_float<T>(forward_of/{ y[i + 1] = from_float<T>(forward_of/|-DKILN_SANITIZE=ON|-tc=op table*|forward|activation_forward_kernel"
)

status=0
for bug in "${bugs[@]}"; do
  IFS='|' read -r name file expression cmake_flags filter order expect <<< "$bug"
  echo "== $name: $file"
  rm -rf "$work/$name"
  mkdir -p "$work/$name"
  git -C "$repo" ls-files -z | (cd "$repo" && xargs -0 cp --parents -t "$work/$name")
  sed -i "$expression" "$work/$name/$file"
  if diff -q "$repo/$file" "$work/$name/$file" > /dev/null; then
    echo "   the sed expression changed nothing: fix the script"; status=1; continue
  fi
  diff "$repo/$file" "$work/$name/$file" | sed 's/^/   /'
  cmake -S "$work/$name" -B "$work/$name/build" -DKILN_CUDA=EMULATE -DCMAKE_BUILD_TYPE=Release \
        ${cmake_flags:+$cmake_flags} "${launcher[@]}" > "$work/$name.configure.log" 2>&1 &&
    cmake --build "$work/$name/build" -j "$(nproc)" --target kiln_tests > "$work/$name.build.log" 2>&1 ||
    { echo "   build failed: $work/$name.build.log"; status=1; continue; }
  KILN_EMULATE_ORDER="$order" "$work/$name/build/tests/kiln_tests" "$filter" > "$work/$name.log" 2>&1
  rc=$?
  if [[ $rc -ne 0 ]] && grep -q -- "$expect" "$work/$name.log"; then
    echo "   caught (exit $rc); the report says:"
    grep -m 3 -E -- "$expect|ERROR|error" "$work/$name.log" | cut -c1-400 | sed 's/^/     /'
  else
    echo "   NOT caught (exit $rc, '$expect' in the output: $(grep -c -- "$expect" "$work/$name.log"))"; status=1
  fi
done
exit $status
