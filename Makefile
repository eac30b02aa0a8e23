# The two commands of the README:
#   make demo   install missing packages, build, run the main job on its embedded default
#   make test   install missing packages, build, run the whole suite with ctest
# Build output goes to build*/ (ignored). KILN_CUDA=AUTO|ON|OFF|EMULATE picks the backend
# of `make build` / `make demo`.
#
# `make test` builds twice and runs the suite three ways (docs/cuda.md):
#   build-emulate/  KILN_CUDA=EMULATE: the whole suite, CPU tests and the GPU tests on
#                   the emulated GPU (threads of a block in forward order), then the GPU
#                   tests again with the threads in a seeded random order;
#   build-asan/     the same backend under AddressSanitizer + UndefinedBehaviorSanitizer:
#                   the GPU tests (threads in reverse order) and the emulator's own tests;
#   build-fuzz/     clang, ASan + UBSan, CPU only: every libFuzzer target over its seed
#                   corpus and regression files, then 20,000 inputs of fuzzing each
#                   from a fixed seed (make fuzz-ci; docs/reliability.md).
# The GPU passes run the doctest binary with -ts=gpu (the doctest suite), one OpenMP
# thread: the emulated cuDNN's small GEMMs lose more to OpenMP barriers than they gain.
KILN_CUDA ?= AUTO
BUILD ?= build
JOBS ?= $(shell nproc)
EMULATE_BUILD ?= build-emulate
ASAN_BUILD ?= build-asan

.PHONY: all setup build test test-emulate test-asan demo clean fuzz fuzz-ci

all: build

setup:
	bash scripts/setup.sh

build: setup
	cmake -S . -B $(BUILD) -DKILN_CUDA=$(KILN_CUDA) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j $(JOBS)

test: test-emulate test-asan fuzz-ci

test-emulate: setup
	cmake -S . -B $(EMULATE_BUILD) -DKILN_CUDA=EMULATE -DCMAKE_BUILD_TYPE=Release
	cmake --build $(EMULATE_BUILD) -j $(JOBS)
	ctest --test-dir $(EMULATE_BUILD) --output-on-failure -j $(JOBS)
	KILN_EMULATE_ORDER=random:20261204 OMP_NUM_THREADS=1 $(EMULATE_BUILD)/tests/kiln_tests -ts=gpu

test-asan: setup
	cmake -S . -B $(ASAN_BUILD) -DKILN_CUDA=EMULATE -DKILN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Release
	cmake --build $(ASAN_BUILD) -j $(JOBS) --target kiln_tests
	KILN_EMULATE_ORDER=reverse OMP_NUM_THREADS=1 bash scripts/gpu_tests_one_by_one.sh $(ASAN_BUILD)/tests/kiln_tests

# libFuzzer targets of tests/fuzz/ under ASan + UBSan (clang; docs/reliability.md).
# fuzz-ci: every target over its seed corpus and regression files, then
# FUZZ_CI_RUNS (20000) inputs of fuzzing each from a fixed seed, a search that repeats
# rather than a fresh random one per run (FUZZ_CI_SECONDS, 30, caps each target's time);
# fuzz: FUZZ_SECONDS (600) of fresh exploring per target.
FUZZ_SECONDS ?= 600
FUZZ_CI_SECONDS ?= 30
FUZZ_CI_RUNS ?= 20000
fuzz-ci:
	FUZZ_CI_SECONDS=$(FUZZ_CI_SECONDS) FUZZ_CI_RUNS=$(FUZZ_CI_RUNS) JOBS=$(JOBS) bash scripts/fuzz_ci.sh

fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) JOBS=$(JOBS) bash scripts/fuzz.sh long

demo: build
	$(BUILD)/kiln demo

clean:
	rm -rf $(BUILD) $(EMULATE_BUILD) $(ASAN_BUILD) build-fuzz
