# The two commands: `make demo` and `make test`. Both install what is missing
# (Debian packages), configure, build, and run. Other targets: build, sanitize,
# tsan, fuzz, bench, clean.
BUILD    ?= build
JOBS     ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build test demo sanitize test-sanitize tsan fuzz bench clean format

all: build

deps:
	@bash scripts/install-deps.sh

# Configures $(BUILD) when it has no cache, or when the flags differ from
# those it was configured with (kept in $(BUILD)/.veil-cmake-flags): then
# the cache is dropped first, so a flag taken out of CMAKE_FLAGS goes back to
# its default instead of staying in CMakeCache.txt. A build configured before
# the stamp existed is configured once over its cache, keeping its settings.
VEIL_CMAKE_FLAGS := -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
sq = '$(subst ','\'',$(1))'
configure:
	@want=$(call sq,$(VEIL_CMAKE_FLAGS)); stamp=$(BUILD)/.veil-cmake-flags; \
	if [ -f $(BUILD)/CMakeCache.txt ] && [ -f "$$stamp" ] && [ "$$(cat "$$stamp")" = "$$want" ]; then \
	  exit 0; \
	fi; \
	if [ -f "$$stamp" ]; then \
	  echo "make: CMAKE_FLAGS changed ('$$(cat "$$stamp")' -> '$$want'): configuring $(BUILD) anew"; \
	  rm -f $(BUILD)/CMakeCache.txt "$$stamp"; \
	fi; \
	echo cmake -S . -B $(BUILD) $(VEIL_CMAKE_FLAGS); \
	cmake -S . -B $(BUILD) $(VEIL_CMAKE_FLAGS) && printf '%s\n' "$$want" >"$$stamp"

build: deps configure
	cmake --build $(BUILD) -j $(JOBS)

# Skipped tests say why (no GPU, no Python venv...): their reasons are printed
# after the run. The exporter's venv (scripts/setup-python.sh, several minutes
# the first time) and the Triton venv (scripts/setup-triton.sh, pip bounded by
# VEIL_TRITON_PIP_TIMEOUT seconds) are made first, so no timed test waits for
# pip.
test: build
	@bash scripts/setup-python.sh >/dev/null || echo "make test: no exporter venv; exporter_pytest says why it skips (fails, under VEIL_REQUIRE_VENVS=1)"
	@bash scripts/setup-triton.sh >/dev/null || echo "make test: no Triton Inference Server venv; the triton tests say why they skip (fail, under VEIL_REQUIRE_VENVS=1)"
	cd $(BUILD) && ctest -LE slow --output-on-failure -j $(JOBS); rc=$$?; \
	  grep -h -E 'SKIPPED(:| \[)' Testing/Temporary/LastTest.log 2>/dev/null | sort -u | sed 's/^/  /'; \
	  exit $$rc

demo: build
	bash scripts/demo.sh $(BUILD)

# Every test that needs neither a GPU nor a long run (all labels but gpu and
# slow) under AddressSanitizer + UBSan, compiled at -O2 (CMakeLists.txt);
# tests run fewer samples there (tests/testutil.h VEIL_TEST_SANITIZED); CI
# runs this too. `exporter` is left
# out as well: it is Python only, no C code runs under the sanitizers there.
sanitize: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVEIL_SANITIZE=ON -DVEIL_CUDA=OFF
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest -LE 'slow|gpu|exporter' --output-on-failure -j $(JOBS)

# The server's threads (acceptor, connection workers, batcher, key store,
# metrics) under ThreadSanitizer: test_server, and the soak test shortened
# to TSAN_SOAK_SECONDS (TSan runs it several times slower). A report fails
# the test (halt_on_error). Not part of `make test` (a separate build).
TSAN_SOAK_SECONDS ?= 60
tsan: deps
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVEIL_TSAN=ON -DVEIL_CUDA=OFF
	cmake --build build-tsan -j $(JOBS) --target veil-server test_server test_server_soak
	cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  VEIL_SOAK_SECONDS=$(TSAN_SOAK_SECONDS) ctest -R '^test_server(_soak)?$$' --output-on-failure

fuzz: deps
	CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DVEIL_FUZZ=ON -DVEIL_CUDA=OFF
	cmake --build build-fuzz -j $(JOBS) --target fuzz_all
	bash scripts/fuzz.sh build-fuzz

bench: build
	bash scripts/bench.sh $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h' '*.cu' '*.cuh')

clean:
	rm -rf $(BUILD) build-asan build-tsan build-fuzz
