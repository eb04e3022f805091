#!/usr/bin/env bash
# Builds eddy for testing (fault injection, ASan+UBSan, coverage) and runs
# the whole suite once per loop backend; then builds the default
# configuration (build-default/) and runs its tests, checks meson install
# and pkg-config (tests/install), and runs each fuzz target for a few
# seconds (scripts/fuzz.sh, build-fuzz/), and checks the formatting of
# src/, include/ and tests/ (scripts/check-format.sh). Prints coverage of
# src/, the skipped tests by name, and a last line "N passed, N failed,
# N skipped". A program that hangs is stopped, named and counted as failed.
# Exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

build=build-test
backends=(epoll poll)

# --reconfigure picks up test files added since the last setup.
if [ -f "$build/build.ninja" ]; then
  meson setup --reconfigure "$build" >/dev/null
else
  meson setup "$build" -Dfaults=true -Db_sanitize=address,undefined \
    -Db_coverage=true -Db_lundef=false --buildtype=debug >/dev/null || {
    echo "meson setup failed"; echo "0 passed, 1 failed"; exit 1; }
fi
if ! ninja -C "$build" >"$build/ninja.log" 2>&1; then
  cat "$build/ninja.log"
  echo "0 passed, 1 failed"
  exit 1
fi
find "$build" -name '*.gcda' -delete

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
passed=0
failed=0

# Every program runs under an outer time limit (seconds, about three times
# its usual duration and more than Criterion's own --timeout 60 per test):
# a program still running then is stopped (TERM, KILL 10 s later), named,
# with the test it was running, and counted as failed. A hang is a failure,
# never a wait for ever.
limited() {
  local limit=$1; shift
  timeout --signal=TERM --kill-after=10 "$limit" "$@"
}
hit_limit() { [ "$1" -eq 124 ] || [ "$1" -eq 137 ]; }

skipped=0
skip_notes=()

# Criterion runs --verbose: "[RUN ] suite::test" when a test starts, then
# "[PASS]", "[FAIL]" or "[SKIP] suite::test: why"; it ends with "Synthesis:
# Tested: T | Passing: P | Failing: F | ...", where T leaves skipped tests
# out. Tests left out by a filter or .disabled say "Test is disabled" and
# are not counted.
# run_criterion NAME LIMIT COMMAND...: the command is a Criterion program
# (perhaps with a prefix such as sudo, and arguments of its own).
run_criterion() {
  local name=$1 limit=$2 log
  shift 2
  log=$(mktemp)
  limited "$limit" "$@" --verbose --timeout 60 -j2 >"$log" 2>&1
  local rc=$?
  local line
  line=$(grep -a 'Synthesis:' "$log" | tail -1)
  if hit_limit $rc; then
    local hung
    grep -a -E '\[(FAIL|----)\]' "$log" | grep -a -v 'Criterion v' | head -60
    # Started and never finished: the test that hung.
    hung=$(sed -n -E 's/^\[RUN \] ([^ ]+).*/\1/p' "$log" | sort |
      comm -23 - <(sed -n -E 's/^\[(PASS|FAIL|SKIP)\] ([^:]+::[^:]+):.*/\2/p' "$log" | sort))
    hung=$(paste -s -d ' ' - <<<"$hung")
    echo "$name: HUNG, stopped after ${limit} s; still running: ${hung:-(no test had started)}"
    # Each hung test is a failure; a program that hung outside any, one.
    failed=$((failed + $(wc -w <<<"$hung") + 0))
    [ -n "$hung" ] || failed=$((failed + 1))
    note_skips "$name" "$log"
    printf '%-24s %s\n' "$name" "hung (limit ${limit} s)"
  elif [ -z "$line" ]; then
    cat "$log"
    echo "$name: no result (exit $rc)"
    failed=$((failed + 1))
  else
    local t p
    t=$(sed -E 's/.*Tested: ([0-9]+).*/\1/' <<<"$line")
    p=$(sed -E 's/.*Passing: ([0-9]+).*/\1/' <<<"$line")
    passed=$((passed + p))
    failed=$((failed + t - p))
    if [ "$p" != "$t" ] || [ $rc -ne 0 ]; then
      grep -a -E '\[(FAIL|----)\]' "$log" | grep -a -v 'Criterion v' | head -60
    fi
    # A sanitizer report (a leak, undefined behaviour) in a test that
    # passed its assertions is a failure too.
    if grep -q -a -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"; then
      grep -a -E -A12 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log" | head -60
      failed=$((failed + 1))
    fi
    note_skips "$name" "$log"
    printf '%-24s %s\n' "$name" "${line#*Synthesis: }"
  fi
  rm -f "$log"
}

# Skipped tests are counted and named in the summary. A build without
# fault injection skips every test that injects one (tests/nofaults.c) by
# design: those are one line with their count, not hundreds of names.
note_skips() {
  local name=$1 log=$2 skips by_design n
  skips=$(grep -a -E '^\[SKIP\] ' "$log" | grep -a -v ': Test is disabled$')
  [ -n "$skips" ] || return 0
  n=$(grep -c . <<<"$skips")
  skipped=$((skipped + n))
  by_design=$(grep -c -a 'needs fault injection' <<<"$skips")
  if [ "$by_design" -gt 0 ]; then
    skip_notes+=("$name: $by_design tests need fault injection (by design in this build)")
  fi
  while IFS= read -r l; do
    skip_notes+=("$name: ${l#\[SKIP\] }")
  done < <(grep -a -v 'needs fault injection' <<<"$skips")
}

# Script suites print "passed=P failed=F" as their last line, with
# " skipped=S" when cases could not run, and then a line "SKIP why" per
# reason before it; the Python ones print "RUN name" to stderr as each case
# starts, which names the case that hung.
run_script() {
  local name=$1 limit=$2; shift 2
  local out line rc
  out=$(limited "$limit" "$@" 2>&1)
  rc=$?
  line=$(tail -1 <<<"$out")
  if hit_limit $rc; then
    local last
    last=$(grep -a '^RUN ' <<<"$out" | tail -1)
    grep -a -v '^RUN ' <<<"$out" | tail -20
    echo "$name: HUNG, stopped after ${limit} s; still running: ${last#RUN }"
    [ -n "$last" ] || echo "  (last output: $line)"
    failed=$((failed + 1))
    line="hung (limit ${limit} s)"
  elif [[ "$line" =~ ^passed=([0-9]+)\ failed=([0-9]+)(\ skipped=([0-9]+))?$ ]]; then
    passed=$((passed + BASH_REMATCH[1]))
    failed=$((failed + BASH_REMATCH[2]))
    skipped=$((skipped + ${BASH_REMATCH[4]:-0}))
    [ "${BASH_REMATCH[2]}" = 0 ] || grep -a -v '^RUN ' <<<"$out"
    while IFS= read -r l; do
      skip_notes+=("$name: ${l#SKIP }")
    done < <(grep -a '^SKIP ' <<<"$out")
  else
    grep -a -v '^RUN ' <<<"$out"
    failed=$((failed + 1))
  fi
  printf '%-24s %s\n' "$name" "$line"
}

# The outer limit of each test program, in seconds. test-tls takes about
# 95 s, the others under 25 s; the script suites under 20 s, the fuzz and
# install checks (which build) a few minutes.
criterion_limit() {
  case $1 in
    test-tls) echo 360 ;;
    *) echo 180 ;;
  esac
}

# Test certificates (a throwaway CA and leaves), made once per build tree
# and shared by the TLS tests, which run in parallel.
export EDDY_TEST_CERTS=$PWD/$build/certs
if ! bash tests/tls/mkcerts.sh "$EDDY_TEST_CERTS" >/dev/null; then
  echo "tests/tls/mkcerts.sh failed"
  failed=$((failed + 1))
fi

for backend in "${backends[@]}"; do
  for exe in "$build"/tests/test-*; do
    [ -f "$exe" ] && [ -x "$exe" ] || continue
    EDDY_BACKEND=$backend run_criterion "$(basename "$exe") ($backend)" \
      "$(criterion_limit "$(basename "$exe")")" "$exe"
  done
done
# Tests that need root (a child's uid and gid) skip without it; where
# sudo works without a password they run again as root, so that CI covers
# them whoever it runs as.
if [ "$(id -u)" != 0 ] && sudo -n true 2>/dev/null; then
  run_criterion "test-proc (root-only, sudo)" 180 \
    sudo -n --preserve-env=ASAN_OPTIONS,LSAN_OPTIONS,UBSAN_OPTIONS \
    "$build/tests/test-proc" --filter 'spawn/*'
fi
run_script "app (cli)" 120 python3 tests/app/test_cli.py "$build/eddy"
for backend in "${backends[@]}"; do
  EDDY_BACKEND=$backend run_script "app echo ($backend)" 180 \
    python3 tests/app/test_echo.py "$build/eddy"
  EDDY_BACKEND=$backend run_script "app portforward ($backend)" 180 \
    python3 tests/app/test_portforward.py "$build/eddy"
  EDDY_BACKEND=$backend run_script "app procmon ($backend)" 180 \
    python3 tests/app/test_procmon.py "$build/eddy"
  EDDY_BACKEND=$backend run_script "app tls ($backend)" 240 \
    python3 tests/app/test_tls.py "$build/eddy"
  EDDY_BACKEND=$backend run_script "app signals ($backend)" 180 \
    python3 tests/app/test_signals.py "$build/eddy"
  EDDY_BACKEND=$backend run_script "app hardening ($backend)" 240 \
    python3 tests/app/test_hardening.py "$build/eddy"
  EDDY_BACKEND=$backend run_script "app http ($backend)" 120 \
    python3 tests/app/test_http.py "$build/hello-web"
  EDDY_BACKEND=$backend run_script "app web ($backend)" 180 \
    python3 tests/app/test_web.py "$build/eddy"
  EDDY_BACKEND=$backend run_script "app dns ($backend)" 300 python3 tests/app/test_dns.py "$build/eddy"
  EDDY_BACKEND=$backend run_script "app irc ($backend)" 240 python3 tests/app/test_irc.py "$build/eddy"
  EDDY_BACKEND=$backend run_script "app ws ($backend)" 180 \
    python3 tests/app/test_ws.py "$build/ws-echo"
  EDDY_BACKEND=$backend run_script "app dns client ($backend)" 120 \
    python3 tests/app/test_dns_client.py "$build/eddy" "$build/dns-lookup"
  # The chat examples; a program not built yet has its cases skipped.
  EDDY_BACKEND=$backend run_script "app chat ($backend)" 180 \
    python3 tests/app/test_chat.py "$build/chat-callbacks" "$build/chat-coroutines"
  EDDY_BACKEND=$backend run_script "app chat protocols ($backend)" 180 \
    python3 tests/app/test_chat_app.py "$build/eddy"
  EDDY_BACKEND=$backend run_script "app irc vs ircd-hybrid ($backend)" 180 python3 tests/app/test_irc_hybrid.py "$build/eddy"
  EDDY_BACKEND=$backend run_script "app irc with ii ($backend)" 120 python3 tests/app/test_irc_ii.py "$build/eddy"
done
# eddy chat's page in headless Chromium (skipped without it); one backend.
run_script "app chat page (chromium)" 240 python3 tests/app/test_chat_web.py "$build/eddy"

# The default configuration, as a new user builds it (`meson setup` with no
# options: no fault injection, no sanitizers), so that it cannot break
# unnoticed. Tests that need fault injection are skipped there; one backend
# is enough for what this adds.
default=build-default
if { [ -f "$default/build.ninja" ] && meson setup --reconfigure "$default" >/dev/null; } ||
  meson setup "$default" >/dev/null; then
  if ninja -C "$default" >"$default/ninja.log" 2>&1; then
    for exe in "$default"/tests/test-*; do
      [ -f "$exe" ] && [ -x "$exe" ] || continue
      EDDY_BACKEND=epoll run_criterion "$(basename "$exe") (default)" \
        "$(criterion_limit "$(basename "$exe")")" "$exe"
    done
    run_script "app (cli, default)" 120 python3 tests/app/test_cli.py "$default/eddy"
  else
    cat "$default/ninja.log"
    echo "the default configuration does not build"
    failed=$((failed + 1))
  fi
else
  echo "meson setup $default (the default configuration) failed"
  failed=$((failed + 1))
fi

# meson install into a DESTDIR, and a program built against it with
# pkg-config (shared and static).
run_script "install + pkg-config" 900 bash tests/install/test_install.sh

# Each fuzz target for a few seconds, so that none can rot; `make fuzz`
# runs them for longer.
run_script "fuzz (5 s per target)" 900 env FUZZ_TIME=5 bash scripts/fuzz.sh

# src/, include/ and tests/ are formatted as .clang-format says
# (clang-format -i FILE fixes one).
if out=$(bash scripts/check-format.sh 2>&1); then
  passed=$((passed + 1))
  printf '%-24s %s\n' "format" "$(tail -1 <<<"$out")"
else
  echo "$out"
  failed=$((failed + 1))
  printf '%-24s %s\n' "format" "not formatted"
fi

if command -v gcovr >/dev/null; then
  echo
  echo "Coverage of src/ (lines per file; totals of lines and branches):"
  gcovr -r . --filter 'src/' -s "$build" 2>/dev/null |
    grep -E '^src/|^(lines|branches):' || echo "  (no coverage data)"
  for layer in sys core net tls proc async proto app; do
    gcovr -r . --filter "src/$layer/" -s "$build" 2>/dev/null |
      grep -E '^(lines|branches):' | tr '\n' ' ' | sed "s|^|  src/$layer: |"
    echo
  done
fi

echo
if [ ${#skip_notes[@]} -gt 0 ]; then
  echo "Skipped:"
  printf '  %s\n' "${skip_notes[@]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
