#!/usr/bin/env bash
# The MobileNetV2 head fine-tune of issue 16 on the CPU, three ways on one split:
#   PyTorch          benchmarks/torch_compare.py, its plain training loop, same split and recipe
#   kiln (cached)    kiln train with --finetune head --freeze-bn and no augmentation: the cache is on
#                    (kiln compare --augment-head none runs the same recipe)
#   kiln (uncached)  the same kiln run with --feature-cache off
# imagenette_96, 300/75/75 per class, 96 px, batch 64, AdamW lr 1e-3 + cosine, weight
# decay 1e-4, frozen batch norm, no augmentation, 10 epochs. "training" is the wall
# clock of the epochs with validation, which both programs measure the same way;
# /usr/bin/time adds each process's wall and CPU seconds (image decoding, model loading
# and test evaluation included), the fairer number on a machine shared with other work.
#
#   benchmarks/bench_head_cache.sh [DATA] [OUT] [THREADS]
#
# REFERENCE_EPOCHS=N (default 10) runs PyTorch and the uncached kiln run for N epochs
# only, on a machine too busy for 2 x 10 backbone epochs: their per-epoch time (every
# epoch does the same work) then stands for the 10-epoch run, and the table says so.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
data=${1:-$here/../shared/assets/data/imagenette_96}
out=${2:-/tmp/kiln-bench-head-cache}
threads=${3:-2}
reference_epochs=${REFERENCE_EPOCHS:-10}
onnx=$here/../shared/assets/models/mobilenet_v2_imagenet_fp32.onnx
kiln=${KILN:-$here/build/kiln}
[ -x "$kiln" ] || kiln=$here/build-emu/kiln
mkdir -p "$out"
timed() { /usr/bin/time -f "$1: %e s wall, %U s user + %S s system CPU" "${@:2}"; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "threads: kiln --threads $threads, PyTorch torch.set_num_threads($threads)"
common=(--split 300/75/75 --seed 0 --batch-size 64 --cache-dir "$out/cache")
# The split (and the pack) first: a kiln run writes its split.json, which every run
# below reads. PyTorch reads the weights as kiln import writes them (no onnx module needed).
if [ ! -f "$out/split.json" ]; then
  "$kiln" train "$data" "${common[@]}" --model mobilenet_v2 --pretrained "$onnx" --finetune head --size 96 \
    --epochs 0 --quiet --no-report --run-dir "$out/split-only" >/dev/null
  cp "$out/split-only/split.json" "$out/"
fi
[ -f "$out/mobilenet_v2.safetensors" ] || "$kiln" import "$onnx" --arch mobilenet_v2 -o "$out/mobilenet_v2.safetensors"

timed torch /usr/bin/python3 "$here/benchmarks/torch_compare.py" "$data" "$out" --rows mobilenet_v2:head \
  --mobilenet-v2 "$out/mobilenet_v2.safetensors" --size-finetune 96 --epochs-finetune "$reference_epochs" --augment-head none \
  --batch-size 64 --device cpu --threads "$threads" -o "$out/torch" 2>&1 | tee "$out/torch.txt"
train=("$kiln" --threads "$threads" train "$data" --split-file "$out/split.json" --model mobilenet_v2 --pretrained "$onnx"
       --finetune head --freeze-bn --size 96 --batch-size 64 --optimizer adamw --lr 1e-3
       --weight-decay 1e-4 --schedule cosine --device cpu --quiet --no-report --cache-dir "$out/cache")
timed "kiln cached" "${train[@]}" --epochs 10 --run-dir "$out/cached" 2>&1 | tee "$out/cached.txt"
timed "kiln uncached" "${train[@]}" --epochs "$reference_epochs" --feature-cache off --run-dir "$out/uncached" 2>&1 \
  | tee "$out/uncached.txt"
