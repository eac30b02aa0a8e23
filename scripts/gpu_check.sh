#!/usr/bin/env bash
# Everything that needs a GPU, in one go (docs/cuda.md), for a machine with an NVIDIA
# GPU, the CUDA toolkit libraries and (for the comparisons) PyTorch + torchvision:
#   1. the GPU test cases (CPU-vs-CUDA parity of every op-table row, the CUDA runtime,
#      the small-net training parity, augmentation, optimizer and graph kernels);
#   2. the CLI tests that need the device: --cuda-graph equals the eager run, and
#      kill -9 / SIGINT resume on cuda:0 is bit-exact;
#   3. kiln vs PyTorch, train and infer, every benchmark model (benchmarks/bench_compare.sh);
#   4. `kiln bench train` of ResNet-18 at 64 px (batch 256, bf16), eager and --cuda-graph;
#   5. `kiln bench ops` against PyTorch for the ResNet-18 convolutions, bf16;
#   6. the course protocol at a few epochs: `kiln compare` and benchmarks/torch_compare.py
#      on the same split (Imagenette 96 px from the shared assets);
#   7. multi-label mosaics: the MobileNetV2 head run on cuda:0 within 1 point of micro-F1
#      of the same run on the cpu (issue 12's GPU bar).
#
#   scripts/gpu_check.sh [BUILD]     BUILD: a -DKILN_CUDA=ON build folder (default build)
#
# DATA (default .data, git-ignored) holds the carried assets: DATA/imagenette_96/ and
# DATA/mobilenet_v2_imagenet_fp32.onnx (scripts/gpu_check.sh prepare copies them from
# ../shared/assets); a section whose data is missing is skipped with a line saying so.
# Outputs (logs, JSON lines, the comparison tables) go to OUT (default /tmp/gpu_check).
# GPU_CHECK_QUICK=1 shrinks every size to check the plumbing on the emulated GPU
# (KILN_CUDA=EMULATE build) or a CPU-only PyTorch; its numbers mean nothing.
# Each section runs under its own time limit, and all of them under one budget,
# GPU_CHECK_SECONDS (default 450): a section gets at most what is left, and once
# nothing is left a section is not started and counts as a failure, named. The 30 s
# between 450 and 8 minutes cover what the budget does not count: the 10 s a stopped
# command gets to end, and the few checks outside the sections (nvidia-smi, kiln
# --version, PyTorch's import).
set -uo pipefail
cd "$(dirname "$0")/.."
if [[ ${1:-} == prepare ]]; then
  mkdir -p .data
  cp -r ../shared/assets/data/imagenette_96 .data/ && cp ../shared/assets/models/mobilenet_v2_imagenet_fp32.onnx .data/
  du -sh .data
  exit $?
fi
BUILD=${1:-build}
DATA=${DATA:-.data}
OUT=${OUT:-/tmp/gpu_check}
PYTHON=${PYTHON:-python3}
QUICK=${GPU_CHECK_QUICK:-0}
KILN=$BUILD/kiln
mkdir -p "$OUT"
status=0
section() { echo; echo "== $* ($(date -u +%H:%M:%S))"; }
BUDGET_SECONDS=${GPU_CHECK_SECONDS:-450}
BUDGET_END=$((SECONDS + BUDGET_SECONDS))
# run_limited SECONDS COMMAND...: a section that overruns is stopped and counts as a failure.
run_limited() {
  local limit=$1; shift
  local left=$((BUDGET_END - SECONDS))
  if ((left < 5)); then
    echo "(not started: the script's ${BUDGET_SECONDS} s budget is spent: $*)"
    return 124
  fi
  ((limit > left)) && limit=$left
  timeout --kill-after=10 "$limit" "$@"
  local rc=$?
  [[ $rc -eq 124 ]] && echo "(stopped after ${limit} s)"
  return $rc
}
have_torch() { "$PYTHON" -c "import torch, torchvision" 2> /dev/null; }

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2> /dev/null || echo "(no nvidia-smi)"
"$KILN" --version
have_torch && "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), 'device', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu')"

section "1. GPU tests"
run_limited "${GPU_TESTS_SECONDS:-150}" "$BUILD/tests/kiln_tests" -ts=gpu > "$OUT/gpu_tests.log" 2>&1
grep -E "^\[doctest\] (test cases|assertions|Status)" "$OUT/gpu_tests.log"
grep -q "Status: SUCCESS" "$OUT/gpu_tests.log" || { status=1; grep -B2 -A8 "ERROR" "$OUT/gpu_tests.log" | head -60; }

section "2. CLI tests on the device: --cuda-graph equals eager; kill -9 / SIGINT resume on cuda:0"
(cd "$BUILD" && run_limited 60 ctest -R "cuda-graph equals" --output-on-failure 2>&1 | tail -4) || status=1
run_limited 90 bash tests/cli/kill_resume.sh "$PWD/$KILN" "$OUT/kill_resume" "$PWD/tests/fixtures" cuda:0 2>&1 | tail -3
[[ ${PIPESTATUS[0]} -eq 0 ]] || status=1

if have_torch; then
  section "3. kiln vs PyTorch: train and infer of every benchmark model (bf16, images/s ratio)"
  if ((QUICK)); then compare_args=(--quick); else compare_args=(--warmup 5 --iterations 20); fi
  KILN="$KILN" PYTHON="$PYTHON" OUT="$OUT/bench_compare.jsonl" \
    run_limited 150 benchmarks/bench_compare.sh "${compare_args[@]}" 2> "$OUT/bench_compare.err" | tee "$OUT/bench_compare.txt" ||
    { status=1; tail -5 "$OUT/bench_compare.err"; }
else
  section "3. kiln vs PyTorch: skipped ($PYTHON has no torch + torchvision)"
fi

section "4. kiln bench train: ResNet-18 at 64 px, eager and --cuda-graph"
if ((QUICK)); then graph_args=(--batch 2 --size 32 --precision bf16 --warmup 3 --iterations 2)
else graph_args=(--batch 256 --size 64 --precision bf16 --warmup 10 --iterations 50); fi
for graph in "" --cuda-graph; do
  run_limited 60 "$KILN" bench train --model resnet18 --classes 200 "${graph_args[@]}" $graph \
    --json "$OUT/bench_train${graph:+_cuda_graph}.json" 2>&1 | tail -2 || status=1
done

if have_torch && ! ((QUICK)); then
  section "5. kiln vs PyTorch: ResNet-18 convolutions, bf16"
  KILN="$KILN" PYTHON="$PYTHON" run_limited 60 benchmarks/bench_ops.sh --batch 256 --size 224 --dtype bf16 --layout nhwc \
    > "$OUT/bench_ops.log" 2>&1 || status=1
  tail -25 "$OUT/bench_ops.log"
fi

section "6. the course protocol at a few epochs: kiln compare and torch_compare.py on one split"
if [[ -f $DATA/imagenette_96/classes.csv || -d $DATA/imagenette_96 ]] && [[ -f $DATA/mobilenet_v2_imagenet_fp32.onnx ]]; then
  if ((QUICK)); then
    protocol=(--split 6/2/2 --rows cnn5,mobilenet_v2:head --epochs-scratch 1 --epochs-finetune 1 --size-scratch 32
              --size-finetune 32 --batch-size 8)
  else
    protocol=(--split 300/75/75 --rows cnn5,mobilenet_v2:head,mobilenet_v2:all --epochs-scratch 3 --epochs-finetune 2
              --size-scratch 96 --size-finetune 160 --batch-size 64)
  fi
  rm -rf "$OUT/compare"
  run_limited 120 "$KILN" compare "$DATA/imagenette_96" "${protocol[@]}" --device cuda:0 \
    --mobilenet-v2 "$DATA/mobilenet_v2_imagenet_fp32.onnx" -o "$OUT/compare" > "$OUT/compare.log" 2>&1 || status=1
  tail -12 "$OUT/compare.log"
  if have_torch; then
    # The same flags without --split: torch_compare.py reads kiln's split.json instead.
    torch_protocol=() skip=0
    for arg in "${protocol[@]}"; do
      if ((skip)); then skip=0; elif [[ $arg == --split ]]; then skip=1; else torch_protocol+=("$arg"); fi
    done
    run_limited 120 "$PYTHON" benchmarks/torch_compare.py "$DATA/imagenette_96" "$OUT/compare" "${torch_protocol[@]}" \
      --mobilenet-v2 "$DATA/mobilenet_v2_imagenet_fp32.onnx" > "$OUT/torch_compare.log" 2>&1 || status=1
    tail -8 "$OUT/torch_compare.log"
  fi
else
  echo "skipped: $DATA/imagenette_96 or $DATA/mobilenet_v2_imagenet_fp32.onnx is missing (run: scripts/gpu_check.sh prepare)"
fi

section "7. multi-label on the device: the mosaic run on cuda:0 within 1 point of micro-F1 of the cpu run"
if [[ -d $DATA/imagenette_96 && -f $DATA/mobilenet_v2_imagenet_fp32.onnx ]]; then
  if ((QUICK)); then mosaic_args=(--train 24 --test 8) ml_args=(--epochs 1 --size 32)
  else mosaic_args=(--train 1200 --test 300) ml_args=(--epochs 15 --size 96); fi
  rm -rf "$OUT/mosaic" "$OUT"/multilabel-*
  run_limited 30 "$KILN" make-mosaic "$DATA/imagenette_96" -o "$OUT/mosaic" "${mosaic_args[@]}" > "$OUT/mosaic.log" 2>&1 ||
    { status=1; tail -3 "$OUT/mosaic.log"; }
  # The MobileNetV2 head on cached features (docs/multilabel.md), once per device, same split.
  for device in cuda:0 cpu; do
    run_limited 60 "$KILN" train "$OUT/mosaic/train.csv" --test-data "$OUT/mosaic/test_labels.csv" --val 0.2 \
      --threshold tune --model mobilenet_v2 --pretrained "$DATA/mobilenet_v2_imagenet_fp32.onnx" --finetune head \
      --lr 1e-3 "${ml_args[@]}" --device $device --quiet --no-report --cache-dir "$OUT/cache" \
      --run-dir "$OUT/multilabel-${device%:0}" > "$OUT/multilabel-${device%:0}.log" 2>&1 ||
      { status=1; tail -3 "$OUT/multilabel-${device%:0}.log"; }
    grep "^test micro-F1" "$OUT/multilabel-${device%:0}.log" | sed "s/^/$device: /"
  done
  micro() { tr -d ' \n' < "$1" | grep -o '"micro_avg":{[^}]*' | grep -o '"f1":[0-9.e-]*' | cut -d: -f2; }
  gpu_f1=$(micro "$OUT/multilabel-cuda/test_metrics.json" 2> /dev/null) cpu_f1=$(micro "$OUT/multilabel-cpu/test_metrics.json" 2> /dev/null)
  if [[ -n $gpu_f1 && -n $cpu_f1 ]]; then
    awk -v g="$gpu_f1" -v c="$cpu_f1" 'BEGIN { d = g - c; if (d < 0) d = -d;
      printf "micro-F1 cuda:0 %.4f, cpu %.4f: %.2f points apart (bar: within 1)\n", g, c, 100 * d; exit !(d <= 0.01) }' ||
      ((QUICK)) || status=1
  else
    echo "no test_metrics.json micro-F1 from one of the runs"; status=1
  fi
else
  echo "skipped: $DATA/imagenette_96 or $DATA/mobilenet_v2_imagenet_fp32.onnx is missing (run: scripts/gpu_check.sh prepare)"
fi

section "done: status $status"
exit $status
