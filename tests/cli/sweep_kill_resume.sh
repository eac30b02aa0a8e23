#!/usr/bin/env bash
# kiln sweep survives kill -9 and Ctrl-C (docs/sweeps.md). Usage: sweep_kill_resume.sh KILN WORK FIXTURES
#
# Runs a small random sweep with hyperband rungs on tests/fixtures/tiny_folder once
# without interruption. Then runs it again, kill -9s the sweep while its second trial trains
# (PR_SET_PDEATHSIG takes the trial down with it), and continues with
# `kiln sweep --resume`; then once more with SIGINT instead (the sweep forwards it, the
# trial checkpoints, the sweep names the resume command and exits 130). Both continued
# sweeps must end with the same journal as the uninterrupted one: the same trials (ids,
# parameters, commands), statuses, rung decisions and metrics (training and resume
# are deterministic on the CPU). Only "created" and the epochs a stopped trial ran
# before its stop landed may differ.
set -uo pipefail
kiln=$1 work=$2 fixtures=$3
export OMP_NUM_THREADS=1
rm -rf "$work" && mkdir -p "$work/reference" "$work/killed" "$work/interrupted"
cat > "$work/sweep.yaml" <<YAML
name: kill-resume
method: random
data: $fixtures/tiny_folder
seed: 3
run_cap: 3
epochs: 16
early_terminate: {type: hyperband, min_iter: 2, eta: 2}
parameters:
  lr: {distribution: log_uniform_values, min: 1.0e-3, max: 3.0e-1}
  activation: {values: [relu, gelu, silu]}
  size: {value: 32}
  split: {value: 7/2/1}
  filters: {value: 2}
  dense: {value: 8}
  batch-size: {value: 2}
  no-report: {value: true}
  device: {value: cpu}
  workers: {value: 1}
  cache-dir: {value: $work/cache}
YAML
fail() { echo "sweep kill-resume FAILED: $*"; exit 1; }
# The journal without what may differ between an interrupted and an uninterrupted run.
comparable() { grep -v -E '"(created|epochs_done)"' "$1/sw/journal.json"; }
# Waits until trial $2 of the sweep in $1 has trained at least one epoch.
wait_for_trial() {
  for _ in $(seq 1 2000); do
    [ "$(grep -c '' "$1/sw/$2/epochs.csv" 2> /dev/null)" -ge 2 ] 2> /dev/null && return 0
    sleep 0.02
  done
  return 1
}

(cd "$work/reference" && "$kiln" sweep ../sweep.yaml --dir sw > log 2>&1) || fail "reference sweep: $(tail -5 "$work/reference/log")"
echo "reference sweep done: $(grep -c '"status": "finished"' "$work/reference/sw/journal.json") finished, $(grep -c '"status": "stopped"' "$work/reference/sw/journal.json") stopped"

# kill -9 while the second trial trains.
cd "$work/killed"
"$kiln" sweep ../sweep.yaml --dir sw > log 2>&1 &
pid=$!
wait_for_trial "$work/killed" trial-001 || fail "trial-001 never started: $(tail -3 log)"
kill -9 $pid 2> /dev/null || fail "the sweep ended before the kill; make its trials longer"
wait $pid 2> /dev/null
echo "killed the sweep during trial-001 (after epoch $(($(grep -c '' sw/trial-001/epochs.csv) - 1)) of 16)"
"$kiln" sweep --resume sw > resume.log 2>&1 || fail "resume after kill -9: $(tail -5 resume.log)"
diff <(comparable "$work/reference") <(comparable "$work/killed") > diff.txt ||
  fail "the resumed sweep's journal differs from the uninterrupted one: $(head -20 diff.txt)"
[ -z "$(find sw -name '*.tmp.*')" ] || fail "temporary files left in $work/killed/sw"
echo "kill -9 + --resume: the same trials, decisions and metrics"

# SIGINT: forwarded to the trial, which checkpoints; the sweep names the resume command.
cd "$work/interrupted"
"$kiln" sweep ../sweep.yaml --dir sw > log 2>&1 &
pid=$!
wait_for_trial "$work/interrupted" trial-000 || fail "trial-000 never started: $(tail -3 log)"
kill -INT $pid 2> /dev/null || fail "the sweep ended before SIGINT"
wait $pid
status=$?
[ $status -eq 130 ] || fail "an interrupted sweep must exit 130, got $status: $(tail -3 log)"
grep -q "kiln sweep --resume sw" log || fail "no resume command in: $(tail -3 log)"
"$kiln" sweep --resume sw > resume.log 2>&1 || fail "resume after SIGINT: $(tail -5 resume.log)"
diff <(comparable "$work/reference") <(comparable "$work/interrupted") > diff.txt ||
  fail "the sweep resumed after SIGINT differs: $(head -20 diff.txt)"
echo "SIGINT + --resume: the same trials, decisions and metrics"
echo "sweep kill-resume ok"
