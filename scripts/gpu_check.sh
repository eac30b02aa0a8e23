#!/usr/bin/env bash
# Everything that needs a GPU, in one go, for a machine with an NVIDIA GPU, the
# CUDA toolkit, cuDNN and (for the comparisons) PyTorch:
#   1. the GPU test cases (CPU-vs-CUDA parity of every op-table row, the CUDA
#      runtime, the small-net training parity on CUDA, augmentation and optimizer
#      kernels), with their output in $OUT/gpu_tests.log when OUT is set;
#   2. `kiln bench ops` against PyTorch for the ResNet-18 convolutions, bf16 and f32.
# Build first (cmake -DKILN_CUDA=ON ...) or pass the build folder: scripts/gpu_check.sh build
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
OUT=${OUT:-/tmp}
PYTHON=${PYTHON:-python3}
status=0
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$BUILD/kiln" --version
echo "== GPU tests"
"$BUILD/tests/kiln_tests" -ts=gpu 2>&1 | tee "$OUT/gpu_tests.log" | tail -40 || status=1
grep -q "Status: SUCCESS" "$OUT/gpu_tests.log" || status=1
echo "== kiln vs PyTorch: ResNet-18 convolutions"
for dtype in bf16 f32; do
  KILN="$BUILD/kiln" PYTHON="$PYTHON" benchmarks/bench_ops.sh --batch 256 --size 224 --dtype "$dtype" --layout nhwc \
    2>&1 | tee -a "$OUT/bench_ops.log" || status=1
done
exit $status
