#!/usr/bin/env bash
# bench/timers/run.sh: the timer benchmark, eddy against libuv.
#
# Builds a release eddy in build-bench/ (configured once), compiles
# eddy_timers.c and uv_timers.c next to it, runs each $RUNS times (default
# 3) pinned to CPU $BENCH_CPU (default 1) and prints one table. Times are
# the best of the runs (the least disturbed by other work on the machine);
# the worst run's lateness is shown too. Exits non-zero if a build or a run
# fails.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build="build-bench"
runs=${RUNS:-3}
cpu=${BENCH_CPU:-1}

cd "$root"

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release -Dtests=false
fi
# Only the library: the benchmark needs nothing else, and a half-edited
# src/app must not stop it.
ninja -C "$build" libeddy.a

cflags=(-std=c11 -O2 -Wall -Wextra)
cc "${cflags[@]}" -Iinclude "$here/eddy_timers.c" "$build/libeddy.a" \
  -lpthread -o "$build/eddy_timers"
# shellcheck disable=SC2046  # pkg-config output is meant to be split
cc "${cflags[@]}" "$here/uv_timers.c" $(pkg-config --cflags --libs libuv) \
  -o "$build/uv_timers"

# Pin for stable numbers, unless this machine has no such CPU.
pin=()
if taskset -c "$cpu" true 2>/dev/null; then
  pin=(taskset -c "$cpu")
else
  echo "timers: CPU $cpu unavailable, running unpinned" >&2
fi

out="$build/timers-results"
rm -rf "$out"
mkdir -p "$out"
# Alternate the two programs so that a burst of load on the machine does
# not fall on one side only.
for i in $(seq 1 "$runs"); do
  for prog in eddy uv; do
    "${pin[@]}" "$build/${prog}_timers" >"$out/$prog.$i"
  done
done

cat "$out"/eddy.* | sed 's/^/eddy /' >"$out/all"
cat "$out"/uv.* | sed 's/^/uv /' >>"$out/all"

awk -v runs="$runs" '
  # Per metric and program: the best (lowest) value over the runs, the
  # least disturbed by other work on the machine; for lateness also the
  # worst, and the mean of the per-run means.
  {
    k = $1 SUBSEP $2; v = $3 + 0
    if (!(k in best) || v < best[k]) best[k] = v
    if (!(k in worst) || v > worst[k]) worst[k] = v
    mean[k] += v / runs
  }
  function row(label, key, scale, goal,   e, u, r) {
    e = best["eddy", key] / scale; u = best["uv", key] / scale
    r = u > 0 ? e / u : 0
    printf "%-24s %12.2f %12.2f %9.3f", label, e, u, r
    if (goal != "")
      printf "   goal <= %-4s %s", goal, r <= goal + 0 ? "ok" : "MISS"
    printf "\n"
  }
  END {
    printf "%-24s %12s %12s %9s\n", "metric (best of " runs ")", "eddy",
      "libuv", "eddy/uv"
    row("schedule 1M (ms)",       "schedule_ns",            1e6, "0.5")
    row("fire 1M, cpu (ms)",      "fire_cpu_ns",            1e6, "0.5")
    row("fire 1M, wall (ms)",     "fire_wall_ns",           1e6, "")
    row("start+cancel 1M (ms)",   "cancel_ns",              1e6, "0.5")
    row("  of which start (ms)",  "cancel_start_ns",        1e6, "")
    row("empty turn (ns)",        "empty_turn_best_ns_x10", 10,  "1")
    row("  mean, all turns (ns)", "empty_turn_ns_x10",      10,  "")
    e = best["eddy", "lateness_max_ns"] / 1e6
    printf "%-24s %12.2f %12.2f %9s   goal eddy < 10 ms %s\n",
      "lateness max (ms)", e, best["uv", "lateness_max_ns"] / 1e6, "",
      e < 10 ? "ok" : "MISS"
    printf "%-24s %12.2f %12.2f\n", "  worst run (ms)",
      worst["eddy", "lateness_max_ns"] / 1e6,
      worst["uv", "lateness_max_ns"] / 1e6
    printf "%-24s %12.2f %12.2f   (timers due >= 200 ms into the run)\n",
      "lateness max, steady (ms)", best["eddy", "lateness_steady_max_ns"] / 1e6,
      best["uv", "lateness_steady_max_ns"] / 1e6
    printf "%-24s %12.2f %12.2f\n", "lateness mean (ms)",
      mean["eddy", "lateness_mean_ns"] / 1e6,
      mean["uv", "lateness_mean_ns"] / 1e6
    printf "%-24s %12.3f %12.3f   (< 0: a timer fired early)\n",
      "lateness min (ms)", best["eddy", "lateness_min_ns"] / 1e6,
      best["uv", "lateness_min_ns"] / 1e6
  }' "$out/all"
echo "(raw results: $build/timers-results/)"
