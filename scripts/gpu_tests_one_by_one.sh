#!/usr/bin/env bash
# Runs every test case of the doctest "gpu" suite of a kiln_tests binary in a process
# of its own, then the emulator's and the caching allocator's own tests: what
# `make test` does under ASan + UBSan, so that a report names the one test that
# caused it. doctest splits -tc on commas, so a comma in a name is matched with '?'.
#   scripts/gpu_tests_one_by_one.sh build-asan/tests/kiln_tests
set -uo pipefail
binary="$1"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
mapfile -t names < <("$binary" -ts=gpu -ltc 2>/dev/null | grep -v -e '^\[doctest\]' -e '^====' -e '^$')
names+=("emulat*" "kiln on the emulated GPU*" "caching allocator*")
# Every GPU test runs here, the deferred-stream and CUDA graph ones included: the
# caching allocator poisons and unpoisons a device block in its stream's order
# (engine/memory/caching_allocator.cpp), so a kernel queued before a free may still
# read the block, as it may on a GPU (docs/cuda.md, "The sanitizer pass").
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
