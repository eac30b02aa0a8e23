#!/usr/bin/env bash
# A full disk while a checkpoint is written (docs/reliability.md): the run must stop
# with an error naming the file, leave the previous checkpoint byte for byte as it was,
# and leave no temporary behind. Usage: disk_full.sh KILN WORK FIXTURES
#
# The full disk is a file-size limit (`ulimit -f`, RLIMIT_FSIZE): a write past it
# fails with EFBIG, as a write to a full disk fails with ENOSPC, through the same
# ofstream error path of the atomic writer. SIGXFSZ, which the limit also raises, is
# ignored (an ignored signal stays ignored across exec), as a real full disk sends none.
set -uo pipefail
kiln=$1 work=$2 fixtures=$3
export OMP_NUM_THREADS=1
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
fail() { echo "disk-full FAILED: $*"; exit 1; }
args=(train "$fixtures/tiny_folder" --size 32 --split 8/1/1 --batch-size 4 --filters 32 --filter-org same --dense 64
      --quiet --no-report --device cpu --workers 1 --cache-dir "$work/cache" --run-dir run)
"$kiln" "${args[@]}" --epochs 1 > first.log 2>&1 || fail "first epoch: $(tail -3 first.log)"
cp run/last.safetensors before.safetensors
size=$(stat -c %s run/last.safetensors)
limit_kb=$((size / 1024 / 2))
[ "$limit_kb" -ge 8 ] || fail "the checkpoint ($size bytes) is too small for a meaningful limit"
echo "checkpoint: $size bytes; file-size limit for the resumed run: $limit_kb KiB"
status=0
(trap '' XFSZ; ulimit -f "$limit_kb"; exec "$kiln" "${args[@]}" --epochs 2 --resume run/last.safetensors) \
  > full.log 2>&1 || status=$?
[ "$status" -eq 1 ] || fail "the run exited $status, expected 1: $(tail -3 full.log)"
grep -qE "writing 'run/last.safetensors' failed: File too large \(is the disk full\?\); the previous 'run/last.safetensors' is left as it was" full.log ||
  fail "no message naming the checkpoint: $(tail -3 full.log)"
grep -qE "terminate called|Aborted|Segmentation|AddressSanitizer" full.log && fail "crashed: $(tail -3 full.log)"
cmp before.safetensors run/last.safetensors || fail "the previous checkpoint was changed"
[ -z "$(find . -name '*.tmp.*')" ] || fail "temporaries left: $(find . -name '*.tmp.*')"
# The run goes on from the intact checkpoint once there is space again.
"$kiln" "${args[@]}" --epochs 2 --resume run/last.safetensors > resumed.log 2>&1 ||
  fail "resume after the full disk: $(tail -3 resumed.log)"
echo "disk-full ok: exit 1 naming run/last.safetensors, previous checkpoint intact, no temporaries, resumable"
