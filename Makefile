# The commands README.md starts with. Everything else is meson + ninja.

.PHONY: run test build bench coverage fuzz deps clean

BUILD := build
# Where `make run` listens; for example: make run LISTEN=tcp:9000
LISTEN ?= tcp:8007:interface=127.0.0.1

run: build
	@echo "eddy echo on $(LISTEN); try: nc 127.0.0.1 8007 (Ctrl-C stops the server)"
	./$(BUILD)/eddy echo --listen $(LISTEN)

test: deps
	bash scripts/test.sh

deps:
	bash scripts/deps.sh

build: deps
	@[ -f $(BUILD)/build.ninja ] || meson setup $(BUILD) --buildtype=release -Dtests=false
	ninja -C $(BUILD)

bench: deps
	bash bench/run.sh

# Every fuzz target for FUZZ_TIME seconds each: make fuzz FUZZ_TIME=600
FUZZ_TIME ?= 60
fuzz: deps
	FUZZ_TIME=$(FUZZ_TIME) bash scripts/fuzz.sh

coverage: test
	gcovr -r . --filter 'src/' --object-directory build-test --html-details \
	  -o build-test/coverage.html build-test
	@echo "coverage report: build-test/coverage.html"

clean:
	rm -rf build build-test build-bench build-default build-fuzz
