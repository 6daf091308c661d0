# QuantKit developer and CI entry points (GNU make).
#
#   make deps    check (as root: install) the Debian packages the tests need
#   make test    every check CI runs, one step after another; each step is also a target (make test-cmake, ...)
#   make bench   full kernel benchmark, JSON in bench-results/bench.json
#   make run     the end-to-end quantization report (quantkit demo, Fashion-MNIST), then a quick kernel benchmark
#   make clean   remove the build directories this Makefile creates
#
# Build directories (all covered by .gitignore): SwiftPM uses $(SCRATCH) (.build) and $(OPENMP_SCRATCH)
# (.build-openmp); CMake builds go under $(BUILD_ROOT)/ (build/). Override them to keep several trees apart, e.g.
#   make test SCRATCH=.build-me OPENMP_SCRATCH=.build-me-openmp BUILD_ROOT=build-me
# FAIL_FAST=1 stops `make test` at the first failing step (default: run every step, then summarise).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.NOTPARALLEL:
.DEFAULT_GOAL := test

SWIFT ?= swift
CMAKE ?= cmake
CTEST ?= ctest
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
SCRATCH ?= .build
OPENMP_SCRATCH ?= .build-openmp
BUILD_ROOT ?= build
BENCH_JSON ?= bench-results/bench.json
FAIL_FAST ?=

# Debian packages the checks use (libc6-dev-arm64-cross is only a Recommends of gcc-aarch64-linux-gnu;
# zlib1g-dev for the gzipped datasets, dataset-fashion-mnist for the Fashion-MNIST tests and demo).
DEPS_PACKAGES := cmake pkg-config libopenblas-dev libomp-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross \
                 qemu-user libsimde-dev zlib1g-dev dataset-fashion-mnist

# ISA levels `swift test` is repeated under (QUANTKIT_ISA); a level the CPU lacks is skipped with a note.
TEST_ISAS ?= scalar avx2
# Instructions the release binary must contain: the AVX-512 and VNNI kernels are compiled in with no flags (x86_64
# only). Patterns are extended regular expressions matched against objdump lines.
RELEASE_INSNS ?= %zmm vpdpbusd.*%zmm
# CMake tests run under ThreadSanitizer.
TSAN_TESTS ?= ^parallel$$
AARCH64_TOOLCHAIN ?= cmake/toolchains/aarch64-linux-gnu.cmake
AARCH64_QEMU_CPUS ?= max cortex-a53

ARCH := $(shell uname -m)

# libomp's omp.h (Debian: /usr/lib/llvm-14/lib/clang/14.0.6/include): the Swift toolchain's clang has none.
# Recursive (=) so that it is looked up when used, after `deps` may have installed libomp-dev.
OMP_INCLUDE_DIR = $(shell { dpkg -L $$(dpkg-query -W -f='$${Package}\n' 'libomp-*-dev' 2>/dev/null) 2>/dev/null; \
                            ls /usr/lib/llvm-*/lib/clang/*/include/omp.h 2>/dev/null | sort -V; } | \
                          grep '/omp\.h$$' | head -1 | xargs -r dirname)
# Debian ships libomp as libomp5.so (no libomp.so on the default path).
OPENMP_FLAGS = -Xcc -fopenmp -Xcc -idirafter -Xcc $(OMP_INCLUDE_DIR) -Xlinker -lomp5

TEST_STEPS := swift swift-isa release demo openmp cmake aarch64 tsan install downstream

.PHONY: all deps test bench run clean $(addprefix test-,$(TEST_STEPS))

all: test

# ------------------------------------------------------------------------------------------------ deps

deps:
	@echo "==> deps: Debian packages: $(DEPS_PACKAGES)"
	@command -v $(SWIFT) >/dev/null || { echo "error: '$(SWIFT)' not found (Swift 6 toolchain needed)"; exit 1; }
	@if ! command -v dpkg-query >/dev/null; then \
	    echo "warning: not a Debian system; make sure these (or their equivalents) are installed: $(DEPS_PACKAGES)"; \
	    exit 0; \
	fi; \
	missing=""; \
	for p in $(DEPS_PACKAGES); do \
	    st=$$(dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null || true); \
	    [ "$$st" = "install ok installed" ] || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "    all installed"; exit 0; fi; \
	echo "    missing:$$missing"; \
	if [ "$$(id -u)" = 0 ]; then \
	    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y$$missing; \
	else \
	    echo "error: missing Debian packages; install them with:"; \
	    echo "    sudo apt-get install -y$$missing"; \
	    exit 1; \
	fi

# ------------------------------------------------------------------------------------------------ test

# Runs every step (FAIL_FAST=1: stops at the first failure), prints a table of results and timings, and ends with
# a one-line summary. Exits non-zero if any step failed.
test: deps
	@pass=0; fail=0; report=""; start=$$(date +%s); i=0; n=$(words $(TEST_STEPS)); \
	for s in $(TEST_STEPS); do \
	    i=$$((i + 1)); t0=$$(date +%s); \
	    echo; echo "=================================================================== [$$i/$$n] test-$$s"; \
	    if $(MAKE) --no-print-directory test-$$s; then st=PASS; pass=$$((pass + 1)); \
	    else st=FAIL; fail=$$((fail + 1)); fi; \
	    dt=$$(( $$(date +%s) - t0 )); \
	    echo "==> test-$$s: $$st ($$dt s)"; \
	    report="$$report$$(printf '    %-16s %s %5d s' "test-$$s" "$$st" "$$dt")"$$'\n'; \
	    if [ "$$st" = FAIL ] && [ -n "$(FAIL_FAST)" ]; then echo "FAIL_FAST: stopping"; break; fi; \
	done; \
	echo; echo "make test: results"; printf '%s' "$$report"; \
	echo "    total            $$(( $$(date +%s) - start )) s"; \
	echo "summary: $$pass passed, $$fail failed"; \
	[ "$$fail" -eq 0 ]

# Debug build, the whole Swift test suite, and the CLI's handling of QUANTKIT_ISA.
test-swift:
	@echo "--> swift build + swift test (debug, $(SCRATCH))"
	$(SWIFT) build --scratch-path $(SCRATCH)
	$(SWIFT) test --scratch-path $(SCRATCH)
	@echo "--> quantkit info; an invalid QUANTKIT_ISA must fail cleanly (non-zero, no crash)"
	@bin=$$($(SWIFT) build --scratch-path $(SCRATCH) --show-bin-path); \
	"$$bin/quantkit" info; \
	rc=0; QUANTKIT_ISA=no-such-isa "$$bin/quantkit" info >/dev/null 2>"$(SCRATCH)/isa-error.txt" || rc=$$?; \
	cat "$(SCRATCH)/isa-error.txt"; \
	if [ $$rc -eq 0 ] || [ $$rc -ge 128 ]; then echo "error: quantkit info with QUANTKIT_ISA=no-such-isa exited $$rc"; exit 1; fi; \
	grep -q 'QUANTKIT_ISA' "$(SCRATCH)/isa-error.txt" || { echo "error: the message does not name QUANTKIT_ISA"; exit 1; }

# The Swift tests again with each forced ISA level the CPU has.
test-swift-isa:
	$(SWIFT) build --scratch-path $(SCRATCH)
	@bin=$$($(SWIFT) build --scratch-path $(SCRATCH) --show-bin-path); \
	for isa in $(TEST_ISAS); do \
	    if QUANTKIT_ISA=$$isa "$$bin/quantkit" info >/dev/null 2>&1; then \
	        echo "--> QUANTKIT_ISA=$$isa swift test"; \
	        QUANTKIT_ISA=$$isa $(SWIFT) test --scratch-path $(SCRATCH); \
	    else \
	        echo "--> QUANTKIT_ISA=$$isa: skipped (this CPU does not support it)"; \
	    fi; \
	done

# A plain release build (no flags) must contain the AVX-512 code: SIMD comes from per-function target attributes.
test-release:
	@echo "--> swift build -c release (no flags)"
	$(SWIFT) build -c release --scratch-path $(SCRATCH)
	@bin=$$($(SWIFT) build -c release --scratch-path $(SCRATCH) --show-bin-path); \
	if [ "$(ARCH)" = x86_64 ]; then \
	    objdump -d --no-show-raw-insn "$$bin/quantkit" > "$(SCRATCH)/quantkit-release.dis"; \
	    for insn in $(RELEASE_INSNS); do \
	        count=$$(grep -cE -- "$$insn" "$(SCRATCH)/quantkit-release.dis" || true); \
	        echo "--> release binary: $$count lines with '$$insn'"; \
	        [ "$$count" -gt 0 ] || { echo "error: no '$$insn' instructions in $$bin/quantkit"; exit 1; }; \
	    done; \
	fi; \
	echo "--> quantkit-bench smoke run (release)"; \
	"$$bin/quantkit-bench" --quick --threads 1 --filter '^minmax$$'

# The end-to-end report on real data (Fashion-MNIST, one quick epoch): every workflow runs and every variant is
# reported. Accuracy and speed are printed, not checked (tests never check timing).
test-demo:
	$(SWIFT) build -c release --scratch-path $(SCRATCH) --product quantkit
	@bin=$$($(SWIFT) build -c release --scratch-path $(SCRATCH) --show-bin-path); \
	"$$bin/quantkit" demo --quick --models "$(SCRATCH)/demo-models" | tee "$(SCRATCH)/demo.out"; \
	for row in 'fp32 ' 'dynamic int8' 'dynamic fp16' 'static int8' 'QAT int8' 'Targets (issue 8)'; do \
	    n=$$(grep -c -- "^$$row" "$(SCRATCH)/demo.out" || true); \
	    [ "$$n" -ge 1 ] || { echo "error: the demo report has no '$$row' line"; exit 1; }; \
	done

# SwiftPM with OpenMP (flags on the command line, never in Package.swift), and the threading tests in that build.
test-openmp:
	@test -n "$(OMP_INCLUDE_DIR)" || { echo "error: omp.h not found (install libomp-dev)"; exit 1; }
	@echo "--> OpenMP build, omp.h from $(OMP_INCLUDE_DIR)"
	$(SWIFT) build -c release --scratch-path $(OPENMP_SCRATCH) $(OPENMP_FLAGS)
	@bin=$$($(SWIFT) build -c release --scratch-path $(OPENMP_SCRATCH) $(OPENMP_FLAGS) --show-bin-path); \
	"$$bin/quantkit" info | tee "$(OPENMP_SCRATCH)/info.txt"; \
	grep -q 'openmp' "$(OPENMP_SCRATCH)/info.txt" || { echo "error: the OpenMP build does not report the openmp backend"; exit 1; }
	QUANTKIT_EXPECT_BACKEND=openmp $(SWIFT) test -c release --scratch-path $(OPENMP_SCRATCH) $(OPENMP_FLAGS) \
	    --filter ThreadingTests

# Native CMake build (gcc, OpenMP) and the C test suite.
test-cmake:
	$(CMAKE) -S . -B $(BUILD_ROOT)/native -DCMAKE_C_COMPILER=gcc -DQK_BUILD_TESTS=ON -DQK_OPENMP=ON
	$(CMAKE) --build $(BUILD_ROOT)/native -j $(JOBS)
	$(CTEST) --test-dir $(BUILD_ROOT)/native --output-on-failure

# aarch64 cross build; the C tests run under qemu-aarch64 with each CPU model (max: dotprod/fp16/i8mm paths;
# cortex-a53: plain NEON fallback). Reconfiguring only changes the emulator command, so nothing is rebuilt.
test-aarch64:
	@test -f $(AARCH64_TOOLCHAIN) || { echo "error: $(AARCH64_TOOLCHAIN) is missing"; exit 1; }
	@set -e; first=1; for cpu in $(AARCH64_QEMU_CPUS); do \
	    echo "--> aarch64, QK_QEMU_CPU=$$cpu"; \
	    ( set -x; $(CMAKE) -S . -B $(BUILD_ROOT)/aarch64 -DCMAKE_TOOLCHAIN_FILE=$(AARCH64_TOOLCHAIN) \
	        -DQK_QEMU_CPU=$$cpu -DQK_BUILD_TESTS=ON ); \
	    if [ $$first = 1 ]; then ( set -x; $(CMAKE) --build $(BUILD_ROOT)/aarch64 -j $(JOBS) ); first=0; fi; \
	    $(CTEST) --test-dir $(BUILD_ROOT)/aarch64 --show-only=json-v1 > $(BUILD_ROOT)/aarch64/tests.json; \
	    grep -q -- "\"$$cpu\"" $(BUILD_ROOT)/aarch64/tests.json || \
	        { echo "error: ctest commands do not use qemu -cpu $$cpu"; exit 1; }; \
	    ( set -x; $(CTEST) --test-dir $(BUILD_ROOT)/aarch64 --output-on-failure ); \
	done

# ThreadSanitizer (gcc; the pthread pool, since TSan does not model libgomp) on the threading tests.
test-tsan:
	$(CMAKE) -S . -B $(BUILD_ROOT)/tsan -DCMAKE_C_COMPILER=gcc -DQK_SANITIZE=thread -DQK_BUILD_TESTS=ON
	$(CMAKE) --build $(BUILD_ROOT)/tsan -j $(JOBS)
	TSAN_OPTIONS="halt_on_error=1 $${TSAN_OPTIONS:-}" $(CTEST) --test-dir $(BUILD_ROOT)/tsan --output-on-failure \
	    -R '$(TSAN_TESTS)' --no-tests=error

# cmake --install to a fresh prefix; a C program builds against it via pkg-config and via find_package.
test-install:
	rm -rf $(BUILD_ROOT)/prefix $(BUILD_ROOT)/consumer
	$(CMAKE) -S . -B $(BUILD_ROOT)/install -DCMAKE_C_COMPILER=gcc -DQK_BUILD_TESTS=OFF
	$(CMAKE) --build $(BUILD_ROOT)/install -j $(JOBS)
	$(CMAKE) --install $(BUILD_ROOT)/install --prefix $(BUILD_ROOT)/prefix
	Examples/CConsumer/check.sh $(BUILD_ROOT)/prefix $(BUILD_ROOT)/consumer

# QuantKit as a versioned (`from: "0.1.0"`) SwiftPM dependency, which SwiftPM only allows without unsafeFlags.
test-downstream:
	Examples/Downstream/check.sh

# ------------------------------------------------------------------------------------------------ bench

# OpenBLAS is pinned to an old core type on this machine (OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE); the benchmark
# unsets both so that the baseline uses the CPU's best kernel. Tests never do.
bench:
	@mkdir -p $(dir $(BENCH_JSON))
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(SWIFT) run -c release --scratch-path $(SCRATCH) \
	    quantkit-bench --json $(BENCH_JSON) --svg $(dir $(BENCH_JSON))gemm-speedup.svg $(BENCH_ARGS)

# The end-to-end report (quantkit demo: Fashion-MNIST, fp32 against dynamic, static and QAT quantization; trained
# models kept in .quantkit-demo/), then the quick kernel benchmark. The demo's fp32 baseline runs OpenBLAS's best
# kernel (the machine's OPENBLAS_* pinning unset, as in `bench`). DEMO_ARGS=--quick for a fast check.
DEMO_ARGS ?=
run:
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(SWIFT) run -c release --scratch-path $(SCRATCH) \
	    quantkit demo $(DEMO_ARGS)
	$(SWIFT) run -c release --scratch-path $(SCRATCH) quantkit-bench --quick $(BENCH_ARGS)

# ------------------------------------------------------------------------------------------------ clean

clean:
	rm -rf $(SCRATCH) $(OPENMP_SCRATCH) $(BUILD_ROOT) bench-results
