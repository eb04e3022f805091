#!/usr/bin/env bash
# bench/coro/run.sh: the coroutine benchmark.
#
# Builds a release eddy in build-bench/ (configured once; BENCH_BUILD
# changes the directory), compiles the programs of this folder against its
# libeddy.a, and measures:
#   switch    the cost of one context switch, eddy's own (src/async/
#             switch.c) against swapcontext(); of a yield through the loop;
#             of spawning a coroutine (switch.c; best of $RUNS runs);
#   echo      a coroutine-per-connection echo server (coro_echo.c) against
#             eddy's callback echo server (`eddy echo`), driven by
#             bench/echo/client.c: throughput over one connection, and
#             ping-pong round trips with 1 and 100 connections, each for
#             $SECONDS_PER_RUN s (default 2), best of $RUNS (default 3),
#             alternating the servers; the goal is a ratio of at least 0.95
#             for the rates and for the work per server CPU second;
#   idle      the resident memory of $IDLE_COROS (default 100000) idle
#             coroutines at the default stack size (idle.c), raising the
#             kernel's mapping limit for it when run as root, or else of
#             as many as that limit allows, with the projection;
#   deferred  the Deferred chain's cost per callback (deferred.c), when
#             that program exists.
# Servers are pinned to CPU $SERVER_CPU (default 0), clients and the
# single-process programs to CPU $CLIENT_CPU (default 1). About a minute
# and a half with the defaults. Exits non-zero if a build or a run fails.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BENCH_BUILD:-build-bench}
runs=${RUNS:-3}
secs=${SECONDS_PER_RUN:-2}
idle_coros=${IDLE_COROS:-100000}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
. "$here/../lib.sh"
port=$(bench_port 7)

cd "$root"

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release -Dtests=false
fi
ninja -C "$build" libeddy.a eddy

cflags=(-std=c11 -O2 -Wall -Wextra -Iinclude)
# shellcheck disable=SC2046  # pkg-config output is meant to be split
libs=("$build/libeddy.a" $(pkg-config --libs openssl) -lpthread)
# switch.c measures the internal switch itself: it sees src/.
cc "${cflags[@]}" -Isrc "$here/switch.c" "${libs[@]}" -o "$build/coro_switch"
cc "${cflags[@]}" "$here/coro_echo.c" "${libs[@]}" -o "$build/coro_echo"
cc "${cflags[@]}" "$here/idle.c" "${libs[@]}" -o "$build/coro_idle"
cc -std=c11 -O2 -Wall -Wextra "$here/../echo/client.c" -o "$build/echo_client"
have_deferred=0
if [ -f "$here/deferred.c" ]; then
  cc "${cflags[@]}" -Isrc "$here/deferred.c" "${libs[@]}" \
    -o "$build/coro_deferred"
  have_deferred=1
fi

spin=() cpin=()
if taskset -c "$server_cpu" true 2>/dev/null &&
  taskset -c "$client_cpu" true 2>/dev/null; then
  spin=(taskset -c "$server_cpu")
  cpin=(taskset -c "$client_cpu")
else
  echo "coro: CPUs $server_cpu and $client_cpu unavailable, running unpinned" >&2
fi

out="$build/coro-results"
rm -rf "$out"
mkdir -p "$out"

# ---- switch, spawn, deferred: one process each, best of the runs ----------
for i in $(seq 1 "$runs"); do
  wait_quiet
  "${cpin[@]}" "$build/coro_switch" >>"$out/switch"
  if [ "$have_deferred" = 1 ]; then
    "${cpin[@]}" "$build/coro_deferred" >>"$out/deferred"
  fi
done

# ---- echo: coroutines against callbacks -----------------------------------
server_pid=
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 1 40); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}
trap stop_server EXIT

start_server() { # coro|cb
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "coro: port $port is already in use; set BENCH_PORT" >&2
    exit 1
  fi
  case $1 in
  coro) "${spin[@]}" "$build/coro_echo" "$port" & ;;
  cb)
    "${spin[@]}" "$build/eddy" --log-level error echo \
      --listen "tcp:$port:interface=127.0.0.1" &
    ;;
  esac
  server_pid=$!
  if ! "${cpin[@]}" "$build/echo_client" wait --port "$port" ||
    ! kill -0 "$server_pid" 2>/dev/null; then
    echo "coro: the $1 server did not start on port $port" >&2
    exit 1
  fi
}

measure() { # PROG TAG MODE ARGS...
  local prog=$1 tag=$2 mode=$3
  shift 3
  wait_quiet
  start_server "$prog"
  if ! "${cpin[@]}" "$build/echo_client" "$mode" --port "$port" \
    --pid "$server_pid" --tag "$tag" "$@" >>"$out/$prog"; then
    echo "coro: $prog $tag failed" >&2
    exit 1
  fi
  stop_server
}

for i in $(seq 1 "$runs"); do
  order=(coro cb)
  [ $((i % 2)) -eq 0 ] && order=(cb coro)
  for prog in "${order[@]}"; do
    measure "$prog" tp throughput --seconds "$secs"
    measure "$prog" pp1 pingpong --conns 1 --seconds "$secs"
    measure "$prog" pp100 pingpong --conns 100 --seconds "$secs"
  done
done

# ---- idle memory --------------------------------------------------------------
# Each guarded stack is two mappings: the kernel's limit (65530 by default)
# stops short of 100,000 coroutines. As root the limit is raised for the
# measurement and put back after it; otherwise as many as it allows are
# measured and the rest projected.
maps_file=/proc/sys/vm/max_map_count
maps_before=$(cat "$maps_file" 2>/dev/null || echo 0)
maps_needed=$((idle_coros * 2 + 10000))
maps_raised=0
if [ "$maps_before" -lt "$maps_needed" ] && [ -w "$maps_file" ] &&
  echo "$maps_needed" >"$maps_file" 2>/dev/null; then
  maps_raised=1
fi
"${cpin[@]}" "$build/coro_idle" "$idle_coros" >"$out/idle"
[ "$maps_raised" = 1 ] && echo "$maps_before" >"$maps_file"

# ---- the report ------------------------------------------------------------------
{
  sed 's/^/switch /' "$out/switch"
  [ "$have_deferred" = 1 ] && grep . "$out/deferred" | sed 's/^/deferred /'
  sed 's/^/coro /' "$out/coro"
  sed 's/^/cb /' "$out/cb"
  sed 's/^/idle /' "$out/idle"
} >"$out/all"

awk -v runs="$runs" -v maps="$(cat /proc/sys/vm/max_map_count 2>/dev/null || echo 0)" '
  {
    k = $1 SUBSEP $2; v = $3 + 0
    if (!(k in hi) || v > hi[k]) hi[k] = v
    if (!(k in lo) || v < lo[k]) lo[k] = v
    if ($1 == "switch" && $2 ~ /^switch_kind_/) kind = substr($2, 13)
  }
  function ratio_row(label, key, better,   c, b, r) {
    c = better == "higher" ? hi["coro", key] : lo["coro", key]
    b = better == "higher" ? hi["cb", key] : lo["cb", key]
    r = b > 0 ? c / b : 0
    printf "%-34s %10.2f %10.2f %9.3f   %s is better\n", label, c, b, r, better
  }
  # Work per server CPU second: the inverse of the CPU per unit, as a
  # ratio coroutines / callbacks (higher is better).
  function per_cpu_row(label, key,   c, b) {
    c = lo["coro", key]; b = lo["cb", key]
    printf "%-34s %10.0f %10.0f %9.3f   higher is better\n", label,
      (c > 0 ? 1e6 / c : 0), (b > 0 ? 1e6 / b : 0), (c > 0 ? b / c : 0)
  }
  END {
    printf "context switch (%s; best of %d)\n", kind, runs
    printf "  %-32s %10.1f\n", "eddy switch (ns)", lo["switch", "eddy_switch_ns"]
    printf "  %-32s %10.1f\n", "ucontext swapcontext (ns)", lo["switch", "ucontext_switch_ns"]
    printf "  %-32s %10.1f\n", "eddy_coro_yield via the loop (ns)", lo["switch", "eddy_yield_ns"]
    printf "  %-32s %10.1f\n", "spawn + finish, pooled stack (ns)", lo["switch", "eddy_spawn_ns"]
    # Whatever deferred.c measures, "name value" per line: the lowest.
    for (k in lo) {
      split(k, part, SUBSEP)
      if (part[1] == "deferred")
        printf "  %-32s %10.1f\n", "Deferred " substr(part[2], 10), lo[k]
    }
    printf "\necho server, coroutine per connection against callbacks (best of %d)\n", runs
    printf "%-34s %10s %10s %9s\n", "metric", "coroutine", "callback", "coro/cb"
    ratio_row("throughput (MB/s)", "tp_mb_s", "higher")
    per_cpu_row("  MB per server CPU second", "tp_cpu_us_per_mb")
    ratio_row("ping-pong, 1 conn (rt/s)", "pp1_rt_s", "higher")
    per_cpu_row("  rt per server CPU second", "pp1_cpu_us_per_rt")
    ratio_row("ping-pong, 100 conns (rt/s)", "pp100_rt_s", "higher")
    per_cpu_row("  rt per server CPU second", "pp100_cpu_us_per_rt")
    req = hi["idle", "idle_requested"]; got = hi["idle", "idle_spawned"]
    kb = hi["idle", "idle_kb_per_coro"]
    printf "\nidle coroutines, stack %d bytes\n", hi["idle", "idle_stack_bytes"]
    printf "  %-32s %10d of %d\n", "spawned", got, req
    printf "  %-32s %10.2f\n", "RSS per coroutine (KiB)", kb
    printf "  %-32s %10.1f\n", "RSS for those spawned (MiB)", hi["idle", "idle_mb_total"]
    if (got < req) {
      printf "  %-32s %10.1f\n", "projected RSS for " req " (MiB)", kb * req / 1024
      printf "  (each stack is two mappings; vm.max_map_count is %d: %d coroutines need it above %d)\n", maps, req, 2 * req + 1000
    }
  }' "$out/all"
echo "measurements started on a busy machine: $busy_starts"
echo "(raw results: $build/coro-results/)"
