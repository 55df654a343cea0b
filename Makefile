# Quick start: `make demo` and `make test` do all their own set-up on a fresh
# machine (system packages, a venv in .venv, the native build).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMPS := .stamps
NATIVE_TEST_DIR := build/native-tests
TSAN_TEST_DIR := build/native-tsan
FUZZ_DIR := build/fuzz
FUZZ_SECONDS ?= 20
# Every file the installed package is built from: a change re-runs the (incremental) build.
SOURCES := $(shell find csrc singularity_proxy scheduler -type f -not -name '*.pyc' 2>/dev/null) \
           CMakeLists.txt pyproject.toml

.PHONY: all setup build test test-native test-python demo demo-fleet bench clean

all: build

$(STAMPS)/system: scripts/setup-system.sh scripts/install-criu.sh
	@mkdir -p $(STAMPS)
	scripts/setup-system.sh
	scripts/install-criu.sh
	@touch $@

$(STAMPS)/venv: $(STAMPS)/system
	@mkdir -p $(STAMPS)
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q "scikit-build-core>=0.10" "pybind11>=2.12" "cmake>=3.26" ninja
	@touch $@

$(STAMPS)/install: $(STAMPS)/venv $(SOURCES)
	$(VPY) -m pip install -q --no-build-isolation ".[test]"
	@touch $@

setup: $(STAMPS)/venv
build: $(STAMPS)/install

# Native unit tests under AddressSanitizer + UBSan, the ring under
# ThreadSanitizer, and a short run of the proxy's request-decoder fuzzer
# (libFuzzer; its backend is the installed libsimgpu.so: `python -P` so the
# source tree, which has no _native, does not shadow the installed package).
test-native: build
	$(VENV)/bin/cmake -S . -B $(NATIVE_TEST_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug \
	    -DSING_BUILD_PYTHON=OFF -DSING_BUILD_TESTS=ON -DSING_SANITIZE=ON \
	    -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV))/bin/ninja
	$(VENV)/bin/cmake --build $(NATIVE_TEST_DIR) -j2
	cd $(NATIVE_TEST_DIR) && ../../$(VENV)/bin/ctest --output-on-failure -j2
	$(VENV)/bin/cmake -S . -B $(TSAN_TEST_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DSING_BUILD_PYTHON=OFF -DSING_BUILD_TESTS=ON -DSING_SANITIZE_THREAD=ON \
	    -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV))/bin/ninja
	$(VENV)/bin/cmake --build $(TSAN_TEST_DIR) -j2 --target wire_tests
	$(TSAN_TEST_DIR)/csrc/tests/wire_tests --gtest_filter='WireRing.*'
	$(VENV)/bin/cmake -S . -B $(FUZZ_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DSING_FUZZ=ON -DSING_BUILD_PYTHON=OFF \
	    -DCMAKE_MAKE_PROGRAM=$(abspath $(VENV))/bin/ninja
	$(VENV)/bin/cmake --build $(FUZZ_DIR) -j2 --target proxy_fuzz
	mkdir -p $(FUZZ_DIR)/corpus
	SINGULARITY_FUZZ_BACKEND=$$($(VPY) -P -c "from singularity_proxy import native_paths; print(native_paths()['simgpu'])") \
	    $(FUZZ_DIR)/csrc/proxy/proxy_fuzz -max_total_time=$(FUZZ_SECONDS) -timeout=60 -rss_limit_mb=4096 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_DIR)/ $(FUZZ_DIR)/corpus csrc/proxy/fuzz/seeds > $(FUZZ_DIR)/last-run.log 2>&1 \
	    || { grep -v '^#' $(FUZZ_DIR)/last-run.log | tail -60; exit 1; }
	tail -5 $(FUZZ_DIR)/last-run.log

test-python: build
	$(VENV)/bin/pytest -n 2 tests

test: test-native test-python

demo: build
	cd /tmp && $(abspath $(VPY)) $(abspath examples/demo.py)

# The control plane on one machine: scheduler + three host daemons, a premium job preempting a basic one.
demo-fleet: build
	examples/fleet-demo.sh

bench: build
	$(VPY) benchmarks/ptx_interpreter.py

clean:
	rm -rf build $(STAMPS)
