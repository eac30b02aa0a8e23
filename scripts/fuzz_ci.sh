#!/usr/bin/env bash
# The CI piece of the fuzzing (make test can call it; docs/reliability.md): every
# libFuzzer target over its seed corpus and regression files, then FUZZ_CI_RUNS inputs
# of fuzzing each from a fixed seed (a search that repeats), under ASan +
# UBSan; FUZZ_CI_SECONDS caps each target's time (scripts/fuzz.sh).
exec "$(dirname "$0")/fuzz.sh" ci
