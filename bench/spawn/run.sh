#!/usr/bin/env bash
# bench/spawn/run.sh: the subprocess benchmark, eddy against libuv's
# uv_spawn.
#
# Builds a release eddy in build-bench/ (configured once), compiles
# eddy_spawn.c, uv_spawn.c and the producer child next to it, and runs
# each program $RUNS times (default 5), alternating, pinned to CPU
# $BENCH_CPU (default 1; the children inherit the pinning). Each run:
#   spawn   spawn /bin/true and reap it, 1,000 times in a row;
#   stream  a child writes 1 GiB to its stdout, the parent reads it all:
#           through a socket pair on both sides (libuv's only kind), and
#           through eddy's default, a pipe (slower for bulk on Linux, so
#           shown against the same libuv figure for what it costs).
# Figures are the best of the runs (the least disturbed by other work on
# the machine): wall time, and the parent's CPU time. Exits non-zero if a
# build or a run fails.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build="build-bench"
runs=${RUNS:-5}
cpu=${BENCH_CPU:-1}

cd "$root"

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release -Dtests=false
fi
# Only the library: a half-edited src/app must not stop the benchmark.
ninja -C "$build" libeddy.a

cflags=(-std=c11 -O2 -Wall -Wextra)
cc "${cflags[@]}" -Iinclude "$here/eddy_spawn.c" "$build/libeddy.a" \
  -lpthread -o "$build/eddy_spawn"
# shellcheck disable=SC2046  # pkg-config output is meant to be split
cc "${cflags[@]}" "$here/uv_spawn.c" $(pkg-config --cflags --libs libuv) \
  -o "$build/uv_spawn"
cc "${cflags[@]}" "$here/producer.c" -o "$build/spawn_producer"

pin=()
if taskset -c "$cpu" true 2>/dev/null; then
  pin=(taskset -c "$cpu")
else
  echo "spawn: CPU $cpu unavailable, running unpinned" >&2
fi

out="$build/spawn-results"
rm -rf "$out"
mkdir -p "$out"
# Alternate the two programs so that a burst of load on the machine does
# not fall on one side only.
for i in $(seq 1 "$runs"); do
  for prog in eddy uv; do
    "${pin[@]}" "$build/${prog}_spawn" "$root/$build/spawn_producer" >"$out/$prog.$i"
  done
done

cat "$out"/eddy.* | sed 's/^/eddy /' >"$out/all"
cat "$out"/uv.* | sed 's/^/uv /' >>"$out/all"

awk -v runs="$runs" '
  {
    k = $1 SUBSEP $2; v = $3 + 0
    if (!(k in best) || v < best[k]) best[k] = v
  }
  function row(label, key, scale, goal,   e, u, r) {
    e = best["eddy", key] / scale; u = best["uv", key] / scale
    r = u > 0 ? e / u : 0
    printf "%-28s %10.1f %10.1f %9.3f", label, e, u, r
    if (goal != "")
      printf "   goal <= %-4s %s", goal, r <= goal + 0 ? "ok" : "MISS"
    printf "\n"
  }
  END {
    printf "%-28s %10s %10s %9s\n", "metric (best of " runs ")", "eddy",
      "libuv", "eddy/uv"
    row("spawn+reap 1000, wall (ms)", "spawn_wall_ns",  1e6, "1.0")
    row("  parent cpu (ms)",          "spawn_cpu_ns",   1e6, "")
    row("stream 1 GiB, wall (ms)",    "stream_wall_ns", 1e6, "1.0")
    row("  parent cpu (ms)",          "stream_cpu_ns",  1e6, "")
    e = best["eddy", "stream_pipe_wall_ns"] / 1e6; u = best["uv", "stream_wall_ns"] / 1e6
    printf "%-28s %10.1f %10.1f %9.3f   (eddy on a pipe)\n", "  eddy pipe, wall (ms)", e, u, e / u
  }' "$out/all"
echo "(raw results: $build/spawn-results/)"
