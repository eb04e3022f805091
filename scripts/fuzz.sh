#!/usr/bin/env bash
# Builds the libFuzzer targets (every tests/fuzz/NAME.c) with clang, ASan
# and UBSan in build-fuzz/, and runs each for FUZZ_TIME seconds (default
# 60) on a scratch copy of its seed corpus tests/fuzz/corpus/NAME/, so that
# runs never grow the tree. Prints per target the executions and the
# crashes (0, or the saved input under build-fuzz/crashes/NAME/), then a
# last line "passed=P failed=F" (P targets without a crash). Exits
# non-zero if any target crashed or did not build.
#
#   FUZZ_TIME=600 scripts/fuzz.sh          every target, ten minutes each
#   scripts/fuzz.sh endpoint               one target
#
# A crash input replays with: build-fuzz/tests/fuzz/fuzz-NAME FILE
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

build=build-fuzz
time_s=${FUZZ_TIME:-60}
if ! [[ "$time_s" =~ ^[0-9]+$ ]] || [ "$time_s" -lt 1 ]; then
  echo "FUZZ_TIME must be a whole number of seconds, got '$time_s'"
  echo "passed=0 failed=1"
  exit 2
fi

if [ -f "$build/build.ninja" ]; then
  # Picks up targets added since the last setup.
  meson setup --reconfigure "$build" >/dev/null 2>&1
else
  CC=clang meson setup "$build" -Dfuzz=true -Dtests=false -Dman=disabled \
    -Db_sanitize=address,undefined -Db_lundef=false \
    --buildtype=debugoptimized >"$build.setup.log" 2>&1 || {
    cat "$build.setup.log"; rm -f "$build.setup.log"
    echo "fuzz: meson setup failed"; echo "passed=0 failed=1"; exit 1; }
  rm -f "$build.setup.log"
fi
if ! ninja -C "$build" >"$build/ninja.log" 2>&1; then
  cat "$build/ninja.log"
  echo "fuzz: build failed"
  echo "passed=0 failed=1"
  exit 1
fi

# A sanitizer finding ends the run as a crash, with its input saved.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

if [ $# -gt 0 ]; then
  names=("$@")
else
  names=()
  for src in tests/fuzz/*.c; do
    names+=("$(basename "$src" .c)")
  done
fi

passed=0
failed=0
for name in "${names[@]}"; do
  exe=$build/tests/fuzz/fuzz-$name
  if [ ! -x "$exe" ]; then
    echo "$name: no target $exe"
    failed=$((failed + 1))
    continue
  fi
  scratch=$(mktemp -d)
  mkdir -p "$scratch/corpus"
  if [ -d "tests/fuzz/corpus/$name" ]; then
    cp -r "tests/fuzz/corpus/$name/." "$scratch/corpus/"
  fi
  # -max_total_time bounds the run; the outer timeout bounds a target that
  # hangs outside libFuzzer's own clock.
  timeout $((time_s + 120)) "$exe" -max_total_time="$time_s" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$scratch/" "$scratch/corpus" >"$scratch/log" 2>&1
  rc=$?
  execs=$(grep -a 'stat::number_of_executed_units:' "$scratch/log" |
    tail -1 | awk '{print $2}')
  [ -n "$execs" ] ||
    execs=$(grep -a -oE '^#[0-9]+' "$scratch/log" | tail -1 | tr -d '#')
  crashes=()
  for f in "$scratch"/crash-* "$scratch"/leak-* "$scratch"/timeout-* \
    "$scratch"/oom-*; do
    [ -e "$f" ] || continue
    mkdir -p "$build/crashes/$name"
    cp "$f" "$build/crashes/$name/"
    crashes+=("$build/crashes/$name/$(basename "$f")")
  done
  if [ $rc -eq 0 ] && [ ${#crashes[@]} -eq 0 ]; then
    printf '%-16s %s executions in %s s, crashes: 0\n' "$name" \
      "${execs:-?}" "$time_s"
    passed=$((passed + 1))
  else
    grep -a -E -A30 'ERROR:|==[0-9]+==|runtime error|endpoint fuzz:|deadly signal' \
      "$scratch/log" | head -60
    printf '%-16s %s executions in %s s, crashes: %s (exit %d)\n' "$name" \
      "${execs:-?}" "$time_s" "${crashes[*]:-none saved}" "$rc"
    failed=$((failed + 1))
  fi
  rm -rf "$scratch"
done

echo "passed=$passed failed=$failed"
[ "$failed" -eq 0 ]
