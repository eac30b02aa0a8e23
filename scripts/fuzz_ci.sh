#!/usr/bin/env bash
# The CI piece of the fuzzing (make test can call it; docs/reliability.md): every
# libFuzzer target over its seed corpus and regression files, then a few seconds of
# fuzzing each, under ASan + UBSan. FUZZ_CI_SECONDS sets the seconds (default 5).
exec "$(dirname "$0")/fuzz.sh" ci
