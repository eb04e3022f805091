#!/usr/bin/env bash
# bench/echo/run.sh: the echo server benchmark, `eddy echo` against the same
# server on libuv (uv_echo.c).
#
# Builds a release eddy in build-bench/ (configured once; the build
# directory can be changed with BENCH_BUILD), compiles client.c and
# uv_echo.c next to it, then measures each server $RUNS times (default 3),
# each measurement of one followed by the same of the other:
#   throughput  one connection sending without pause for $SECONDS_PER_RUN
#               s (default 3): MB/s echoed, server CPU per MB;
#   ping-pong   1 and 100 connections, each with one 64-byte message in
#               flight: round trips/s, server CPU per round trip;
#   idle        $IDLE_CONNS (default 10000) idle connections: the server's
#               VmRSS growth per connection, and its CPU per connection set
#               up (accept + first echo).
# Each measurement gets a fresh server process, pinned to CPU $SERVER_CPU
# (default 0); the client is pinned to CPU $CLIENT_CPU (default 1). Server
# CPU time is utime+stime from /proc/PID/stat, read by the client at the
# two ends of the measured interval (which follows a 0.5 s warm-up).
# Figures are the best of the runs, per metric. Each measurement waits (at
# most 2 s) for the machine to be quiet first; the end of the output says
# how many started on a busy machine anyway. About 2 minutes with the
# defaults. Exits non-zero if a build or a run fails.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BENCH_BUILD:-build-bench}
runs=${RUNS:-3}
secs=${SECONDS_PER_RUN:-3}
idle_conns=${IDLE_CONNS:-10000}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
. "$here/../lib.sh"
port=$(bench_port 0)
nofile=$((idle_conns + 1000))

cd "$root"

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release -Dtests=false
fi
ninja -C "$build" eddy

cflags=(-std=c11 -O2 -Wall -Wextra)
cc "${cflags[@]}" "$here/client.c" -o "$build/echo_client"
# shellcheck disable=SC2046  # pkg-config output is meant to be split
cc "${cflags[@]}" "$here/uv_echo.c" $(pkg-config --cflags --libs libuv) \
  -o "$build/uv_echo"

# Pin for stable numbers, unless this machine lacks the CPUs.
spin=() cpin=()
if taskset -c "$server_cpu" true 2>/dev/null &&
  taskset -c "$client_cpu" true 2>/dev/null; then
  spin=(taskset -c "$server_cpu")
  cpin=(taskset -c "$client_cpu")
else
  echo "echo: CPUs $server_cpu and $client_cpu unavailable, running unpinned" >&2
fi

# The servers need a descriptor per idle connection; the client raises its
# own limit with setrlimit.
limit=()
if prlimit --nofile="$nofile:$nofile" true 2>/dev/null; then
  limit=(prlimit --nofile="$nofile:$nofile")
elif [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$nofile" ]; then
  echo "echo: cannot raise the descriptor limit to $nofile (hard limit $(ulimit -Hn))" >&2
  exit 1
else
  ulimit -n "$nofile"
fi

out="$build/echo-results"
rm -rf "$out"
mkdir -p "$out"

server_pid=
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  # Bounded: 2 s for a clean exit, then SIGKILL.
  for _ in $(seq 1 40); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}
trap stop_server EXIT

start_server() { # eddy|uv
  # Something else answering on the port would be measured instead.
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "echo: port $port is already in use; set BENCH_PORT" >&2
    exit 1
  fi
  case $1 in
  eddy)
    # --idle-timeout 0: the libuv server keeps no timeouts, so neither does
    # eddy here; both do the same work per connection.
    "${limit[@]}" "${spin[@]}" "$build/eddy" --log-level error echo --idle-timeout 0 \
      --listen "tcp:$port:interface=127.0.0.1" &
    ;;
  uv)
    "${limit[@]}" "${spin[@]}" "$build/uv_echo" "$port" &
    ;;
  esac
  server_pid=$!
  if ! "${cpin[@]}" "$build/echo_client" wait --port "$port" ||
    ! kill -0 "$server_pid" 2>/dev/null; then
    echo "echo: the $1 server did not start on port $port" >&2
    exit 1
  fi
}


# measure PROG TAG MODE ARGS...: one fresh server, one client run.
measure() {
  local prog=$1 tag=$2 mode=$3 file
  shift 3
  file="$out/$prog.$i"
  wait_quiet
  start_server "$prog"
  if ! "${cpin[@]}" "$build/echo_client" "$mode" --port "$port" \
    --pid "$server_pid" --tag "$tag" "$@" >>"$file"; then
    echo "echo: $prog $tag failed" >&2
    exit 1
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "echo: the $prog server died during $tag" >&2
    exit 1
  fi
  stop_server
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# Each measurement of one program is followed at once by the same one of
# the other, and the order alternates from run to run, so that a burst of
# load on the machine is as likely to fall on either.
for i in $(seq 1 "$runs"); do
  order=(eddy uv)
  [ $((i % 2)) -eq 0 ] && order=(uv eddy)
  for prog in "${order[@]}"; do
    measure "$prog" tp throughput --seconds "$secs"
  done
  for prog in "${order[@]}"; do
    measure "$prog" pp1 pingpong --conns 1 --seconds "$secs"
  done
  for prog in "${order[@]}"; do
    measure "$prog" pp100 pingpong --conns 100 --seconds "$secs"
  done
  for prog in "${order[@]}"; do
    measure "$prog" idle idle --conns "$idle_conns"
  done
done

for prog in eddy uv; do
  cat "$out/$prog".* | sed "s/^/$prog /"
done >"$out/all"

awk -v runs="$runs" -v conns="$idle_conns" '
  # Per metric and program: the best value over the runs (the highest for
  # rates, the lowest for costs), the least disturbed by other work on the
  # machine; for the CPU load figures, the mean.
  {
    k = $1 SUBSEP $2; v = $3 + 0
    if (!(k in hi) || v > hi[k]) hi[k] = v
    if (!(k in lo) || v < lo[k]) lo[k] = v
    mean[k] += v / runs
  }
  function row(label, key, better,   e, u, r) {
    e = better == "higher" ? hi["eddy", key] : lo["eddy", key]
    u = better == "higher" ? hi["uv", key] : lo["uv", key]
    r = u > 0 ? e / u : 0
    printf "%-32s %10.2f %10.2f %9.3f   %s is better\n", label, e, u, r, better
  }
  function load(label, key) {
    printf "%-32s %10.0f %10.0f\n", label, mean["eddy", key], mean["uv", key]
  }
  END {
    printf "%-32s %10s %10s %9s\n", "metric (best of " runs ")", "eddy",
      "libuv", "eddy/uv"
    row("throughput (MB/s)",            "tp_mb_s",                 "higher")
    row("  server CPU per MB (us)",     "tp_cpu_us_per_mb",        "lower")
    row("ping-pong, 1 conn (rt/s)",     "pp1_rt_s",                "higher")
    row("  server CPU per RT (us)",     "pp1_cpu_us_per_rt",       "lower")
    row("ping-pong, 100 conns (rt/s)",  "pp100_rt_s",              "higher")
    row("  server CPU per RT (us)",     "pp100_cpu_us_per_rt",     "lower")
    row("idle " conns ": memory/conn (KB)", "idle_kb_per_conn",    "lower")
    row("  setup CPU per conn (us)",    "idle_setup_cpu_us_per_conn", "lower")
    printf "\nCPU load in the measured intervals (%%, mean of the runs; a client near 100 would be the bottleneck):\n"
    printf "%-32s %10s %10s\n", "", "eddy", "libuv"
    load("throughput: server",   "tp_server_cpu_pct")
    load("throughput: client",   "tp_client_cpu_pct")
    load("ping-pong 1: server",  "pp1_server_cpu_pct")
    load("ping-pong 1: client",  "pp1_client_cpu_pct")
    load("ping-pong 100: server", "pp100_server_cpu_pct")
    load("ping-pong 100: client", "pp100_client_cpu_pct")
  }' "$out/all"
echo "load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg);" \
  "measurements started on a busy machine: $busy_starts of $((runs * 8))"
echo "(raw results: $build/echo-results/)"
