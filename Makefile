# The commands README.md starts with. Everything else is meson + ninja.

.PHONY: run test build bench coverage fuzz deps clean

BUILD := build
# Where `make run` listens: the chat's web side and its line side; for
# example: make run LISTEN=tcp:9000 LINE=tcp:9001
LISTEN ?= tcp:8080:interface=127.0.0.1
LINE ?= tcp:7000:interface=127.0.0.1

run: build
	@echo "eddy chat: open http://127.0.0.1:8080/ in a browser, or join from a terminal with: nc 127.0.0.1 7000 (your first line is your name). Ctrl-C stops the server."
	./$(BUILD)/eddy chat --listen $(LISTEN) --line $(LINE)

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
