#!/usr/bin/env bash
# Random search against TPE (method: bayes) at the same budget, on the CPU
# (docs/sweeps.md, "Random against bayes"). Usage:
#   benchmarks/sweep_random_vs_bayes.sh KILN WORK [SEEDS] [TRIALS] [TARGET]
# For each seed, one random and one bayes sweep of TRIALS trials over the same space:
# cnn5 (8 filters) on Imagenette at 32x32 (../shared/assets/data/imagenette_96/train,
# 100 training and 30 validation images per class, packed once), 3 epochs. Prints, per
# seed and method, the best validation accuracy and the first trial that reached
# TARGET, as a Markdown table. One CPU thread; a few seconds a trial.
set -euo pipefail
kiln=$(realpath "$1") work=$(realpath -m "$2") seeds=${3:-"0 1 2"} trials=${4:-20} target=${5:-0.35}
data=$(realpath "$(dirname "$0")/../../shared/assets/data/imagenette_96/train" 2> /dev/null || true)
[ -d "$data" ] || { echo "SKIPPED: ../shared/assets/data/imagenette_96 is absent (MANIFEST.md)"; exit 0; }
export OMP_NUM_THREADS=1
mkdir -p "$work" && cd "$work"
for seed in $seeds; do
  for method in random bayes; do
    cat > "$method-$seed.yaml" <<YAML
name: $method-$seed
method: $method
data: $data
seed: $seed
run_cap: $trials
epochs: 3
parameters:
  lr:           {distribution: log_uniform_values, min: 1.0e-4, max: 3.0e-1}
  weight_decay: {distribution: log_uniform_values, min: 1.0e-6, max: 1.0e-2}
  dropout:      {distribution: uniform, min: 0.0, max: 0.5}
  dense:        {distribution: q_log_uniform_values, min: 16, max: 128, q: 16}
  activation:   {values: [relu, gelu, silu]}
  optimizer:    {values: [adamw, sgd]}
  batch-norm:   {values: ["on", "off"]}
  filters:      {value: 8}
  size:         {value: 32}
  split:        {value: 100/30/0}
  cache-dir:    {value: $work/cache}
  batch-size:   {value: 32}
  no-report:    {value: true}
  device:       {value: cpu}
  workers:      {value: 1}
YAML
    if [ -f "sweeps/$method-$seed/journal.json" ]; then  # started before: finish it (a no-op when done)
      "$kiln" sweep --resume "sweeps/$method-$seed" --quiet >> "$method-$seed.log" 2>&1
    else
      "$kiln" sweep "$method-$seed.yaml" --quiet > "$method-$seed.log" 2>&1
    fi
  done
done
python3 - "$target" $seeds <<'PY'
import json, statistics, sys
target = float(sys.argv[1]); seeds = sys.argv[2:]
print(f"| seed | method | best val accuracy | first trial reaching {target:.2f} | best after 5 / 10 / 20 | "
      "mean of trials 6-20 | trials 6-20 at chance (<= 0.11) |")
print("|---|---|---|---|---|---|---|")
for seed in seeds:
    for method in ("random", "bayes"):
        trials = json.load(open(f"sweeps/{method}-{seed}/journal.json"))["trials"]
        m = [t["metric"] if t["metric"] is not None else 0.0 for t in trials]
        reached = next((i + 1 for i, x in enumerate(m) if x >= target), None)
        best_at = " / ".join(f"{max(m[:n]):.3f}" for n in (5, 10, 20) if n <= len(m))
        later = m[5:]
        print(f"| {seed} | {method} | {max(m):.3f} | {reached if reached else 'not reached'} | {best_at} | "
              f"{statistics.mean(later):.3f} | {sum(x <= 0.11 for x in later)} of {len(later)} |")
PY
