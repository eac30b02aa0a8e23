#!/usr/bin/env bash
# Everything that needs a GPU, in one go, for a machine with an NVIDIA GPU, the
# CUDA toolkit, cuDNN and (for the comparisons) PyTorch:
#   1. the GPU test cases (CPU-vs-CUDA parity of every op-table row, the CUDA
#      runtime, the small-net training parity on CUDA, augmentation and optimizer
#      kernels), with their output in $OUT/gpu_tests.log when OUT is set;
#   2. `kiln bench ops` against PyTorch for the ResNet-18 convolutions, bf16 and f32;
#   3. `kiln bench train` of ResNet-18 at 64 px (batch 256, bf16), eager and with
#      --cuda-graph (the step replayed as a CUDA graph: docs/cuda_graphs.md), and the
#      CLI test that a --cuda-graph run equals the eager one on the hardware.
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
echo "== kiln bench train: ResNet-18 at 64 px, eager and --cuda-graph"
for graph in "" --cuda-graph; do
  "$BUILD/kiln" bench train --model resnet18 --classes 200 --batch 256 --size 64 --precision bf16 \
    --warmup 10 --iterations 50 $graph --json "$OUT/bench_train_graph.jsonl.tmp" 2>&1 | tee -a "$OUT/bench_train_graph.log" || status=1
  cat "$OUT/bench_train_graph.jsonl.tmp" >> "$OUT/bench_train_graph.jsonl" 2>/dev/null
done
rm -f "$OUT/bench_train_graph.jsonl.tmp"
echo "== --cuda-graph equals the eager run"
(cd "$BUILD" && ctest -R "cuda-graph equals" --output-on-failure 2>&1 | tail -15) || status=1
exit $status
