#!/usr/bin/env bash
# The "faster than PyTorch" table: runs `kiln bench train|infer` and its PyTorch twin
# benchmarks/torch_bench.py back to back on the same device with the same arguments,
# for every case of the issue, and prints images/s, peak memory and the ratio
# kiln / PyTorch (> 1 means kiln is faster).
#
#   benchmarks/bench_compare.sh                    # the issue's cases, bf16, on the GPU
#   benchmarks/bench_compare.sh --precision f16    # the same cases in another precision
#   benchmarks/bench_compare.sh --quick            # tiny cases on the cpu, f32: checks the plumbing
#   benchmarks/bench_compare.sh --cpu              # the course's CPU workloads (issue 16), f32, batch 64:
#                                                  # cnn5 at 64 and 96 px, ResNet-18, MobileNetV2, VGG-11 at 96 px
#   benchmarks/bench_compare.sh --cpu --models resnet18,mobilenet_v2   # only these models' cases
#   benchmarks/bench_compare.sh --cpu --modes infer                    # only inference (train, infer or both)
#   benchmarks/bench_compare.sh --cpu --rounds 3   # each case kiln, torch, kiln, torch, kiln, torch: the
#                                                  # table shows each side's median round (a loaded machine)
#
# The table is printed twice: aligned text, then the same rows as a markdown table
# (with the machine's load average at the start and the end) to paste into
# docs/benchmarks.md.
#
# Both programs compute with the same number of CPU threads: THREADS (default: the
# machine's cores), passed as kiln's --threads and torch_bench.py's --threads, and
# printed with the table. Each case runs kiln, then PyTorch, so machine load that
# drifts during the run hits both alike.
#
# Environment: KILN (default build/kiln), PYTHON (default python3: one with torch and
# torchvision), OUT (a file that receives every JSON result line; default: none).
# OpenMP settings such as OMP_WAIT_POLICY reach both programs alike (both run on
# libgomp); the table's header prints OMP_WAIT_POLICY. On a machine shared with other
# work, OMP_WAIT_POLICY=passive keeps an idle thread from spinning on a core another
# process needs (docs/benchmarks.md measured 2-10x swings without it).
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${KILN:-build/kiln}
PYTHON=${PYTHON:-python3}
precision=bf16 quick=0 cpu=0 extra=() models="" modes="train infer" rounds=1
THREADS=${THREADS:-$(nproc)}
while (($#)); do
  case $1 in
    --quick) quick=1; precision=f32 ;;
    --cpu) cpu=1; precision=f32 ;;
    --precision) precision=$2; shift ;;
    --models) models=,$2,; shift ;;
    --modes) modes=${2//,/ }; shift ;;
    --rounds) rounds=$2; shift ;;
    *) extra+=("$1") ;;  # passed to both programs: --warmup N, --iterations N, --layout L
  esac
  shift
done

# model  batch  size  classes(0 = default)
if ((quick)); then
  cases=("cnn5 4 64 0" "resnet18 2 32 0")
  extra=(--device cpu --warmup 1 --iterations 3 "${extra[@]}")
elif ((cpu)); then
  cases=("cnn5 64 64 0" "cnn5 64 96 0" "resnet18 64 96 0" "mobilenet_v2 64 96 0" "vgg11 64 96 0")
  extra=(--device cpu --warmup 1 --iterations 5 "${extra[@]}")
else
  cases=("resnet18 256 224 0" "resnet50 256 224 0" "mobilenet_v2 256 224 0" "vgg16 128 224 0"
         "resnet18 512 64 200" "cnn5 128 256 0")
fi

if [[ -n $models ]]; then
  chosen=()
  for c in "${cases[@]}"; do [[ $models == *,${c%% *},* ]] && chosen+=("$c"); done
  ((${#chosen[@]})) || { echo "bench_compare.sh: --models ${models:1:-1} matches none of: ${cases[*]%% *}" >&2; exit 2; }
  cases=("${chosen[@]}")
fi
for mode in $modes; do
  [[ $mode == train || $mode == infer ]] || { echo "bench_compare.sh: --modes takes train and/or infer, got '$mode'" >&2; exit 2; }
done
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "bench_compare.sh: --rounds takes a positive count, got '$rounds'" >&2; exit 2; }
load_start=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
started=$(date -u +%H:%M)

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
n=0
for mode in $modes; do
  for c in "${cases[@]}"; do
    read -r model batch size classes <<<"$c"
    args=("$mode" --model "$model" --batch "$batch" --size "$size" --classes "$classes" --precision "$precision"
          "${extra[@]}")
    n=$((n + 1))
    for ((r = 1; r <= rounds; r++)); do
      echo "[$n, round $r/$rounds] $mode $model b$batch ${size}px: kiln, then torch" >&2
      "$KILN" bench "${args[@]}" --threads "$THREADS" --json "$results/$n.$r.kiln.json" >&2
      "$PYTHON" benchmarks/torch_bench.py "${args[@]}" --threads "$THREADS" --json "$results/$n.$r.torch.json" >&2
    done
  done
done
if [[ -n ${OUT:-} ]]; then cat "$results"/*.json >"$OUT"; fi

load_end=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
"$PYTHON" - "$results" "$n" "$rounds" "$started" "$load_start" "$load_end" <<'PY'
import json, os, sys
folder, n, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
started, load_start, load_end = sys.argv[4], sys.argv[5], sys.argv[6]
def median_round(i, side):  # the round whose images/s is the median (the lower middle one for even counts)
    runs = sorted((json.load(open(f"{folder}/{i}.{r}.{side}.json")) for r in range(1, rounds + 1)),
                  key=lambda run: run["images_per_second"])
    return runs[(len(runs) - 1) // 2]
rows = []
for i in range(1, n + 1):
    k, t = median_round(i, "kiln"), median_round(i, "torch")
    rows.append((k, t, k["images_per_second"] / t["images_per_second"]))
k0, t0 = rows[0][0], rows[0][1]
print(f"kiln vs PyTorch {t0['torch_version']}: {k0['precision']}, {k0['layout']} on {k0['device']}, "
      f"median of {k0['iterations']} steps after {k0['warmup']} warm-up, "
      f"CPU threads kiln {k0.get('threads')} / torch {t0.get('threads')}"
      + (f", median of {rounds} alternating rounds" if rounds > 1 else ""))
mb = lambda v: "-" if v is None else f"{v:.0f}"
print(f"{'mode':6} {'model':13} {'batch':>5} {'px':>4} {'classes':>7} {'kiln img/s':>11} {'torch img/s':>11} "
      f"{'kiln MiB':>9} {'torch MiB':>9} {'kiln/torch':>10}")
for k, t, ratio in rows:
    print(f"{k['mode']:6} {k['model']:13} {k['batch']:5} {k['size']:4} {k['classes']:7} "
          f"{k['images_per_second']:11.1f} {t['images_per_second']:11.1f} {mb(k['peak_memory_mb']):>9} "
          f"{mb(t['peak_memory_mb']):>9} {ratio:10.2f}")
print(f"min ratio {min(r for _, _, r in rows):.2f}   (kiln images/s / torch images/s: > 1 means kiln is faster)")
for k, t, _ in rows:
    if k.get("skipped_steps") or t.get("skipped_steps"):
        print(f"f16 loss scaling, {k['mode']} {k['model']}: skipped steps kiln {k.get('skipped_steps')}, "
              f"torch {t.get('skipped_steps')} (warm-up included)")
print()
wait_policy = os.environ.get("OMP_WAIT_POLICY", "unset")
print(f"Markdown (started {started} UTC; load average 1/5/15 min: {load_start} at the start, {load_end} at the end; "
      f"OMP_WAIT_POLICY {wait_policy}):")
print()
print("| mode | model | batch | px | kiln img/s | torch img/s | kiln MiB | torch MiB | kiln/torch |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for k, t, ratio in rows:
    print(f"| {k['mode']} | {k['model']} | {k['batch']} | {k['size']} | {k['images_per_second']:.1f} | "
          f"{t['images_per_second']:.1f} | {mb(k['peak_memory_mb'])} | {mb(t['peak_memory_mb'])} | {ratio:.2f} |")
PY
