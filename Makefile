# The two commands of the README:
#   make demo   install missing packages, build, run the main job on its embedded default
#   make test   install missing packages, build, run the whole suite with ctest
# Build output goes to build/ (ignored). KILN_CUDA=AUTO|ON|OFF picks the backend.
KILN_CUDA ?= AUTO
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all setup build test demo clean

all: build

setup:
	bash scripts/setup.sh

build: setup
	cmake -S . -B $(BUILD) -DKILN_CUDA=$(KILN_CUDA) -DCMAKE_BUILD_TYPE=Release
	cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

demo: build
	$(BUILD)/kiln demo

clean:
	rm -rf $(BUILD)
