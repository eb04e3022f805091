#!/usr/bin/env bash
# bench/comet/run.sh: the COMET benchmark, `eddy chat` against the same chat
# on Tornado (tornado_chat.py, Debian's python3-tornado), in the same run.
#
# Builds a release eddy in build-bench/ (configured once; the build
# directory can be changed with BENCH_BUILD) and compiles client.c next to
# it. Then, $RUNS times (default 3), for WebSocket clients (GET /ws) and
# separately for SSE clients (GET /events), each server in turn gets
# $CLIENTS clients (default 10000) on its one process and loop, and the
# client measures:
#   memory      the server's VmRSS growth per client;
#   latency     $ROUNDS broadcasts (default 10), one at a time, each a POST
#               /send: for every client the time from the post to the
#               message's arrival; p50, p99, max over all deliveries, and
#               the median fan-out time (until the last client has it);
#   throughput  posts from $PUBLISHERS connections (default 8: a room
#               where several people talk at once), on each the next as
#               soon as the last is answered, for $SECONDS_PER_RUN s
#               (default 3): deliveries per second (messages x clients /
#               s, counted at the clients, up to the last delivery), and
#               the server's CPU per delivery. PUBLISHERS=1 posts one
#               message at a time.
# And the floor under any server's fan-out on this machine: the time of one
# send() to each of $CLIENTS loopback TCP connections, from C with nothing
# else to do, on the servers' CPU (client.c's floor mode).
# Each measurement gets a fresh server, pinned to CPU $SERVER_CPU (default
# 0), with the client pinned to CPU $CLIENT_CPU (default 1); it waits (at
# most 2 s) for a quiet machine first. Figures are the best of the runs.
# The end of the output holds the issue's goals against the figures: p99
# fan-out latency under 50 ms at 10,000 clients, and at least 20x
# Tornado's broadcast throughput.
#
# If the eddy built here has no `chat` command, or its chat does not serve
# one of the two protocols yet, that part is reported as missing and only
# Tornado is measured. About 2 to 3 minutes with the defaults. Exits
# non-zero if a build or a measurement fails; stops every process it
# started.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BENCH_BUILD:-build-bench}
runs=${RUNS:-3}
clients=${CLIENTS:-10000}
rounds=${ROUNDS:-10}
secs=${SECONDS_PER_RUN:-3}
publishers=${PUBLISHERS:-8}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
# Debian's python3 with python3-tornado, not whatever python3 comes first
# on PATH.
python=${TORNADO_PYTHON:-/usr/bin/python3}
# shellcheck source=bench/lib.sh
. "$here/../lib.sh"
port=$(bench_port 13)
nofile=$((clients + 1000))

cd "$root"

if ! "$python" -c 'import tornado' 2>/dev/null; then
  echo "comet: $python cannot import tornado (scripts/deps.sh installs python3-tornado)" >&2
  exit 1
fi

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release -Dtests=false
fi
ninja -C "$build" eddy
cc -std=c11 -O2 -Wall -Wextra -pthread "$here/client.c" -o "$build/comet_client"
client=("$build/comet_client")

have_chat=1
if ! "$build/eddy" chat --help >/dev/null 2>&1; then
  have_chat=0
  echo "comet: this eddy has no 'chat' command yet: measuring Tornado only" >&2
fi

spin=() cpin=()
if taskset -c "$server_cpu" true 2>/dev/null &&
  taskset -c "$client_cpu" true 2>/dev/null; then
  spin=(taskset -c "$server_cpu")
  cpin=(taskset -c "$client_cpu")
else
  echo "comet: CPUs $server_cpu and $client_cpu unavailable, running unpinned" >&2
fi

# A descriptor per client on both sides; the client raises its own limit.
limit=()
if prlimit --nofile="$nofile:$nofile" true 2>/dev/null; then
  limit=(prlimit --nofile="$nofile:$nofile")
elif [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$nofile" ]; then
  echo "comet: cannot raise the descriptor limit to $nofile (hard limit $(ulimit -Hn))" >&2
  exit 1
else
  ulimit -n "$nofile"
fi

out="$build/comet-results"
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

start_server() { # eddy|tornado
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "comet: port $port is already in use; set BENCH_PORT" >&2
    exit 1
  fi
  case $1 in
  eddy)
    # --idle-timeout 0 and --grace 0: Tornado's server keeps no timeouts,
    # and a measured server is stopped at once.
    "${limit[@]}" "${spin[@]}" "$build/eddy" --log-level error chat \
      --idle-timeout 0 --grace 0 --listen "tcp:$port:interface=127.0.0.1" &
    ;;
  tornado)
    "${limit[@]}" "${spin[@]}" "$python" "$here/tornado_chat.py" "$port" \
      2>>"$out/tornado.log" &
    ;;
  esac
  server_pid=$!
  if ! "${cpin[@]}" "${client[@]}" wait --port "$port" ||
    ! kill -0 "$server_pid" 2>/dev/null; then
    echo "comet: the $1 server did not start on port $port" >&2
    exit 1
  fi
}

# Which of eddy's protocols to measure: those its chat serves.
declare -A skip=()
if [ "$have_chat" = 0 ]; then
  skip[ws]=1 skip[sse]=1
else
  for proto in ws sse; do
    start_server eddy
    rc=0
    "${client[@]}" probe --port "$port" --proto "$proto" || rc=$?
    stop_server
    if [ "$rc" = 2 ]; then
      echo "comet: eddy chat does not serve $proto clients yet: measuring Tornado only for $proto" >&2
      skip[$proto]=1
    elif [ "$rc" != 0 ]; then
      echo "comet: the $proto probe of eddy chat failed" >&2
      exit 1
    fi
  done
fi

# measure PROG PROTO: one fresh server, one client run.
measured=0
measure() {
  local prog=$1 proto=$2
  wait_quiet
  measured=$((measured + 1))
  start_server "$prog"
  if ! "${cpin[@]}" "${client[@]}" run --port "$port" --pid "$server_pid" \
    --proto "$proto" --clients "$clients" --rounds "$rounds" \
    --seconds "$secs" --publishers "$publishers" --tag "$proto" >>"$out/$prog.$i"; then
    echo "comet: $prog with $clients $proto clients failed" >&2
    exit 1
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "comet: the $prog server died during the $proto run" >&2
    exit 1
  fi
  stop_server
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# Each measurement of one server is followed at once by the same one of the
# other, and the order alternates from run to run.
for i in $(seq 1 "$runs"); do
  order=(eddy tornado)
  [ $((i % 2)) -eq 0 ] && order=(tornado eddy)
  for proto in ws sse; do
    for prog in "${order[@]}"; do
      [ "$prog" = eddy ] && [ -n "${skip[$proto]:-}" ] && continue
      measure "$prog" "$proto"
    done
  done
  # The machine's floor, on the servers' CPU.
  wait_quiet
  measured=$((measured + 1))
  if ! "${limit[@]}" "${spin[@]}" "${client[@]}" floor --clients "$clients" \
    --rounds "$rounds" --tag machine >>"$out/floor.$i"; then
    echo "comet: the floor measurement failed" >&2
    exit 1
  fi
done

for prog in eddy tornado floor; do
  cat "$out/$prog".* 2>/dev/null | sed "s/^/$prog /"
done >"$out/all"

awk -v runs="$runs" -v clients="$clients" '
  # Per metric and server: the best value over the runs (the highest for
  # rates, the lowest for costs and latencies); CPU loads: the mean.
  {
    k = $1 SUBSEP $2; v = $3 + 0
    if (!(k in hi) || v > hi[k]) hi[k] = v
    if (!(k in lo) || v < lo[k]) lo[k] = v
    n[k]++; sum[k] += v
  }
  function best(p, key, better) {
    if (!((p, key) in hi)) return ""
    return better == "higher" ? hi[p, key] : lo[p, key]
  }
  function row(label, key, better,   e, t) {
    e = best("eddy", key, better); t = best("tornado", key, better)
    printf "%-34s %10s %10s %9s   %s is better\n", label,
      (e == "" ? "-" : sprintf("%.2f", e)), (t == "" ? "-" : sprintf("%.2f", t)),
      (e == "" || t + 0 <= 0 ? "-" : sprintf("%.3f", e / t)), better
  }
  function mean(p, key) {
    return ((p, key) in n) ? sprintf("%.0f", sum[p, key] / n[p, key]) : "-"
  }
  function goals(proto, label,   p99, e, t, f) {
    f = best("floor", "machine_floor_us_per_send", "lower")
    p99 = best("eddy", proto "_lat_p99_ms", "lower")
    if (p99 == "")
      printf "  %s: eddy not measured\n", label
    else
      printf "  %s: p99 %.1f ms at %d clients (goal < 50 ms%s): %s; the floor is %.1f ms\n",
        label, p99, clients, (clients < 10000 ? ", set for 10000" : ""),
        (p99 < 50 ? "met" : "MISSED"), f * clients / 1000
    e = best("eddy", proto "_tp_deliveries_s", "higher")
    t = best("tornado", proto "_tp_deliveries_s", "higher")
    if (e != "" && t > 0)
      printf "  %s: broadcast throughput %.1fx Tornado'"'"'s (goal >= 20x): %s\n",
        label, e / t, (e / t >= 20 ? "met" : "MISSED")
  }
  END {
    for (pi = 1; pi <= 2; pi++) {
      proto = pi == 1 ? "ws" : "sse"
      label = pi == 1 ? "WebSocket" : "SSE"
      printf "%s, %d clients\n", label, clients
      printf "%-34s %10s %10s %9s\n", "metric (best of " runs ")", "eddy",
        "tornado", "eddy/tor"
      row("memory per client (KB)",          proto "_kb_per_client",   "lower")
      row("connect all clients (s)",         proto "_connect_s",       "lower")
      row("delivery latency p50 (ms)",       proto "_lat_p50_ms",      "lower")
      row("delivery latency p99 (ms)",       proto "_lat_p99_ms",      "lower")
      row("delivery latency max (ms)",       proto "_lat_max_ms",      "lower")
      row("fan-out to all, median (ms)",     proto "_fanout_ms",       "lower")
      row("fan-out, slowest round (ms)",     proto "_fanout_max_ms",   "lower")
      row("broadcast (deliveries/s)",        proto "_tp_deliveries_s", "higher")
      row("  messages/s",                    proto "_tp_messages_s",   "higher")
      row("  server CPU per delivery (us)",  proto "_tp_server_cpu_us_per_delivery", "lower")
      row("  deliveries lost",               proto "_tp_missing",      "lower")
      printf "  CPU load while broadcasting (%%, mean): server %s / %s, client %s / %s (eddy / tornado)\n\n",
        mean("eddy", proto "_tp_server_cpu_pct"), mean("tornado", proto "_tp_server_cpu_pct"),
        mean("eddy", proto "_tp_client_cpu_pct"), mean("tornado", proto "_tp_client_cpu_pct")
    }
    printf "The floor on this machine (one send() per client in C, nothing else): %.2f us per send, %.1f ms for %d clients\n\n",
      best("floor", "machine_floor_us_per_send", "lower"),
      best("floor", "machine_floor_fanout_ms", "lower"), clients
    print "Goals:"
    goals("ws", "WebSocket")
    goals("sse", "SSE")
  }' "$out/all"
echo "load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg);" \
  "measurements started on a busy machine: $busy_starts of $measured"
echo "(raw results: $build/comet-results/)"
