#!/usr/bin/env bash
# Runs `kiln bench ops` and benchmarks/torch_bench_ops.py back to back on the same
# GPU with the same arguments and prints one table with the ratio PyTorch ms / kiln ms
# (> 1 means kiln is faster).
#   benchmarks/bench_ops.sh [--batch 256 --size 224 --dtype bf16 --layout nhwc]
set -euo pipefail
cd "$(dirname "$0")/.."
KILN=${KILN:-build/kiln}
PYTHON=${PYTHON:-python3}
args=("$@")
kiln_out=$(mktemp) torch_out=$(mktemp)
trap 'rm -f "$kiln_out" "$torch_out"' EXIT
"$KILN" bench ops --json "$kiln_out" "${args[@]}" >/dev/null
"$PYTHON" benchmarks/torch_bench_ops.py "${args[@]}" >"$torch_out"
"$PYTHON" - "$kiln_out" "$torch_out" "${args[*]:-defaults}" <<'PY'
import json, sys
kiln = {r["conv"]: r for r in map(json.loads, open(sys.argv[1]))}
torch = {r["conv"]: r for r in map(json.loads, open(sys.argv[2]))}
print(f"ResNet-18 convolutions, forward+backward ({sys.argv[3]})")
print(f"{'conv':18} {'kiln ms':>10} {'torch ms':>10} {'ratio':>7}")
ratios = []
for name, k in kiln.items():
    t = torch[name]
    ratios.append(t["ms"] / k["ms"])
    print(f"{name:18} {k['ms']:10.3f} {t['ms']:10.3f} {ratios[-1]:7.2f}")
print(f"{'min ratio':18} {'':10} {'':10} {min(ratios):7.2f}   (torch ms / kiln ms: > 1 means kiln is faster)")
PY
