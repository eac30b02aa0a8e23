#!/usr/bin/env bash
# Bit-exact resume after kill -9 (docs/reliability.md).
# Usage: kill_resume.sh KILN WORK FIXTURES [DEVICE]   (DEVICE: cpu, the default, or cuda:0)
#
# Trains a small cnn5 on tests/fixtures/tiny_folder once without interruption, then
# again from scratch while SIGKILLing the process at random points (at least three
# kills that land mid-run), resuming from last.safetensors each time, and compares
# the final last.safetensors of both byte for byte. --checkpoint-every 3 puts
# checkpoints mid-epoch, so most kills land between two of them and the resumed run
# must redo steps from the right loader position, totals, optimizer state and
# dropout counters. Then SIGINT: the run must finish its step, write a checkpoint,
# say how to resume, and the resumed run must again equal the reference.
set -uo pipefail
kiln=$1 work=$2 fixtures=$3 device=${4:-cpu}
export OMP_NUM_THREADS=1  # a few threads fighting over busy CI cores make the run erratic, not different
rm -rf "$work" && mkdir -p "$work"
args=(train "$fixtures/tiny_folder" --size 32 --split 8/1/1 --epochs 30 --batch-size 2 --filters 2 --filter-org same
      --dense 4 --dropout 0.3 --augment hflip:0.5,brightness:0.2 --quiet --no-report --device "$device" --workers 1
      --cache-dir "$work/cache" --checkpoint-every 3)
fail() { echo "kill-resume FAILED: $*"; exit 1; }

start=$(date +%s%N)
"$kiln" "${args[@]}" --run-dir "$work/reference" > "$work/reference.log" 2>&1 || fail "reference run: $(tail -5 "$work/reference.log")"
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "reference run: ${elapsed_ms} ms"

RANDOM=${KILN_KILL_SEED:-$$}
kills=0 attempts=0 run="$work/killed"
while [ $attempts -lt 40 ]; do
  attempts=$((attempts + 1))
  resume=()
  [ -f "$run/last.safetensors" ] && resume=(--resume "$run/last.safetensors")
  "$kiln" "${args[@]}" --run-dir "$run" "${resume[@]}" > "$work/attempt$attempts.log" 2>&1 &
  pid=$!
  if [ $kills -lt 3 ]; then
    # A random point between 10% and 50% of the uninterrupted run's time.
    delay_ms=$(( elapsed_ms / 10 + RANDOM % (elapsed_ms * 4 / 10 + 1) ))
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    if kill -9 "$pid" 2> /dev/null; then
      wait "$pid" 2> /dev/null
      kills=$((kills + 1))
      # The checkpoint's progress (JSON inside the header's JSON, so its quotes are escaped).
      at=$(grep -ao '\\"step\\":[0-9]*\|\\"epoch_batches_done\\":[0-9]*' "$run/last.safetensors" 2> /dev/null | tr -d '\\"' | tr '\n' ' ')
      echo "kill $kills after ${delay_ms} ms (last checkpoint: ${at:-none})"
      continue
    fi
  fi
  wait "$pid" || fail "attempt $attempts exited with an error: $(tail -5 "$work/attempt$attempts.log")"
  [ $kills -ge 3 ] && break
  echo "attempt $attempts finished before its kill; starting over"
  rm -rf "$run"
  kills=0
done
[ $kills -ge 3 ] || fail "only $kills kills landed mid-run in $attempts attempts"
cmp "$work/reference/last.safetensors" "$run/last.safetensors" ||
  fail "final weights differ from the uninterrupted run after $kills kills"
[ -z "$(find "$run" -name '*.tmp.*')" ] || fail "temporary files left in $run"
echo "bit-identical after $kills kills"

# SIGINT: finish the step, write a checkpoint, name how to resume.
run="$work/interrupted"
"$kiln" "${args[@]}" --run-dir "$run" > "$work/sigint.log" 2>&1 &
pid=$!
sleep "$(printf '%d.%03d' $((elapsed_ms / 3000)) $((elapsed_ms / 3 % 1000)))"
kill -INT "$pid" 2> /dev/null || fail "the run ended before SIGINT; raise --epochs"
wait "$pid"
status=$?
[ $status -ne 0 ] || fail "an interrupted run must not exit 0"
grep -q "interrupted by SIGINT after step .* --resume $run/last.safetensors" "$work/sigint.log" ||
  fail "no resume message: $(tail -3 "$work/sigint.log")"
"$kiln" "${args[@]}" --run-dir "$run" --resume "$run/last.safetensors" > "$work/sigint_resume.log" 2>&1 ||
  fail "resume after SIGINT: $(tail -5 "$work/sigint_resume.log")"
cmp "$work/reference/last.safetensors" "$run/last.safetensors" || fail "resume after SIGINT differs"
echo "SIGINT: checkpoint written, resumed bit-identically"
# --stop-after-epoch (a sweep's halving rungs): exit 0 after exactly that epoch, go on
# with --resume (to another stop, then to the end), and end equal to the reference.
run="$work/stopped"
"$kiln" "${args[@]}" --run-dir "$run" --stop-after-epoch 7 > "$work/stop7.log" 2>&1 ||
  fail "--stop-after-epoch 7: $(tail -5 "$work/stop7.log")"
grep -q "paused after epoch 7 of 30" "$work/stop7.log" || fail "no pause line: $(tail -3 "$work/stop7.log")"
rows=$(($(wc -l < "$run/epochs.csv") - 1))
[ "$rows" -eq 7 ] || fail "--stop-after-epoch 7 trained $rows epochs"
grep -q '"after_epoch": 7' "$run/paused.json" 2> /dev/null || fail "no paused.json saying epoch 7 after the stop"
[ ! -e "$run/test_metrics.json" ] || fail "a paused run must not have test metrics yet"
cp "$run/run_info.json" "$work/run_info_before_refusal.json"
"$kiln" "${args[@]}" --run-dir "$run" --resume "$run/last.safetensors" --stop-after-epoch 5 > "$work/stop5.log" 2>&1 &&
  fail "--stop-after-epoch 5 on a run at epoch 8 must be refused"
grep -q "stop-after-epoch 5: the run would start at epoch 8" "$work/stop5.log" || fail "refusal: $(tail -2 "$work/stop5.log")"
cmp -s "$work/run_info_before_refusal.json" "$run/run_info.json" ||
  fail "the refused resume rewrote run_info.json (a refusal must leave the run folder as it was)"
"$kiln" "${args[@]}" --run-dir "$run" --resume "$run/last.safetensors" --stop-after-epoch 19 > "$work/stop19.log" 2>&1 ||
  fail "--stop-after-epoch 19: $(tail -5 "$work/stop19.log")"
"$kiln" "${args[@]}" --run-dir "$run" --resume "$run/last.safetensors" > "$work/stop_end.log" 2>&1 ||
  fail "resume after the stops: $(tail -5 "$work/stop_end.log")"
cmp "$work/reference/last.safetensors" "$run/last.safetensors" || fail "stopped at epochs 7 and 19 and resumed: differs"
[ ! -e "$run/paused.json" ] || fail "paused.json left behind after the run ended"
echo "--stop-after-epoch: stopped at 7 and 19, resumed bit-identically"
# An early stop (--patience) that falls on the --stop-after-epoch epoch ends the run: no
# pause line, no paused.json, and the test evaluation runs (a sweep must not resume it).
"$kiln" "${args[@]}" --run-dir "$work/patience" --patience 1 > "$work/patience.log" 2>&1 ||
  fail "--patience 1: $(tail -5 "$work/patience.log")"
early=$(($(wc -l < "$work/patience/epochs.csv") - 1))
[ "$early" -lt 30 ] || fail "--patience 1 trained all 30 epochs; this check needs an early stop"
"$kiln" "${args[@]}" --run-dir "$work/patience_stop" --patience 1 --stop-after-epoch "$early" \
  > "$work/patience_stop.log" 2>&1 || fail "--patience 1 --stop-after-epoch $early: $(tail -5 "$work/patience_stop.log")"
grep -q "paused after" "$work/patience_stop.log" && fail "the early stop at epoch $early was reported as a pause"
[ ! -e "$work/patience_stop/paused.json" ] || fail "paused.json written for the early stop at epoch $early"
[ -f "$work/patience_stop/test_metrics.json" ] || fail "no test metrics after the early stop at epoch $early"
echo "--patience ending the run on its --stop-after-epoch epoch ($early): ended, not paused"
echo "kill-resume ok on $device"
