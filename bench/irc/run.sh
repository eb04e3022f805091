#!/usr/bin/env bash
# bench/irc/run.sh: `eddy irc` against ircd-hybrid (Debian's, 8.2), in the
# same run, driven by load.c (one thread, epoll, built here with cc).
#
# The load: $CLIENTS clients (default 2000) in channels of $PER_CHANNEL
# (default 20, so 100 channels), all from 127.0.0.1; once every one has
# registered and joined, each sends a PRIVMSG to its channel every
# $INTERVAL_MS ms (default 1000: one line a second per client, 2,000 lines
# a second in all, each delivered to the 19 other members: 38,000
# deliveries a second offered), the clients' sends spread evenly over the
# interval. One line a second is well inside both servers' per-client
# flood control (ircd-hybrid, and eddy after it: 5 lines a second after a
# burst), so neither delays a line (at one every 250 ms, hybrid's pacing
# already holds lines back: a run fails with deliveries missing). After
# $WARMUP s (default 2) of that, a window of $SECONDS_PER_RUN s (default
# 10) is measured:
#   deliveries/s  PRIVMSGs received by the clients in the window, over its
#                 length (counted at the receivers);
#   p50, p99      delivery latency: each line carries its send time
#                 (CLOCK_MONOTONIC), the receiver subtracts it from the
#                 time it read the line;
#   CPU us/dlv    the server's utime + stime (/proc/PID/stat) over the
#                 window, per delivery; dlv/CPU-s is its inverse;
#   KB/client     the server's VmRSS once all clients have joined, minus
#                 its VmRSS before the first connected, over $CLIENTS.
#   never         deliveries that had not arrived 5 s after the last send
#                 (a server that fell behind; INTERVAL_MS=500 shows it).
# After the window the sends stop and every line sent must reach the 19
# others within 5 s: for eddy, or the run fails; a peer that falls behind
# is reported in the "never" column.
#
# ircd-hybrid runs in the foreground from a configuration written to a
# temporary directory (as nobody when run as root: it will not run as
# root), with its class limits raised for many local clients from one
# address (number_per_ip_local/global, max_number, number_per_cidr,
# default_max_clients), a 1 MB sendq, no connection throttle, no ident,
# and default_floodcount = 0: hybrid's per-channel message flood notice
# (more than 10 lines a second into one channel, from whoever, throttles
# the channel) would drop most of this load, and eddy has no such limit.
# Its per-client flood control stays on, as eddy's does. eddy irc runs
# with --max-clients above the load and a --ping-timeout longer than the
# run. Both get a descriptor limit of $CLIENTS + 1000.
#
# Each measurement: a fresh server pinned to CPU $SERVER_CPU (default 0),
# load.c pinned to CPU $CLIENT_CPU (default 1), a wait (at most 2 s) for a
# quiet machine first. Best of $RUNS (default 3), alternating the servers:
# the most deliveries/s, the lowest latencies, CPU per delivery and memory
# per client. Exits non-zero if a server does not start or a run fails.
# If the eddy built here has no `irc` command, only ircd-hybrid is
# measured. IRC_SERVERS (default "eddy hybrid") chooses who runs. About 2
# minutes with the defaults.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BENCH_BUILD:-build-bench}
runs=${RUNS:-3}
secs=${SECONDS_PER_RUN:-10}
warmup=${WARMUP:-2}
clients=${CLIENTS:-2000}
per_chan=${PER_CHANNEL:-20}
interval=${INTERVAL_MS:-1000}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
hybrid=${IRCD_HYBRID:-/usr/sbin/ircd-hybrid}
read -r -a servers <<<"${IRC_SERVERS-eddy hybrid}"
. "$here/../lib.sh"
port=$(bench_port 16)
nofile=$((clients * 2 + 1000))

cd "$root"
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release -Dtests=false
fi
ninja -C "$build" eddy
cc -std=c11 -O2 -Wall -Wextra "$here/load.c" -o "$build/irc_load"

if [ ! -x "$hybrid" ]; then
  echo "irc: installing ircd-hybrid (the benchmark's peer)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends ircd-hybrid
fi

has_eddy=1
if ! "$build/eddy" irc --help >/dev/null 2>&1; then
  has_eddy=0
  echo "irc: this eddy has no irc command; measuring ircd-hybrid only"
  keep=()
  for s in "${servers[@]}"; do [ "$s" = eddy ] || keep+=("$s"); done
  servers=("${keep[@]}")
fi
[ ${#servers[@]} -gt 0 ] || { echo "irc: no server to measure" >&2; exit 1; }

spin=() cpin=()
if taskset -c "$server_cpu" true 2>/dev/null &&
  taskset -c "$client_cpu" true 2>/dev/null; then
  spin=(taskset -c "$server_cpu")
  cpin=(taskset -c "$client_cpu")
else
  echo "irc: CPUs $server_cpu and $client_cpu unavailable, running unpinned" >&2
fi
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$nofile" ]; then
  ulimit -Hn "$nofile" 2>/dev/null || {
    echo "irc: cannot raise the descriptor limit to $nofile (hard limit $(ulimit -Hn))" >&2
    exit 1
  }
fi
ulimit -n "$nofile"

tmp=$(mktemp -d /tmp/eddy-bench-irc.XXXXXX)
server_pid='' dns_pid=''
dns_addr=${IRC_DNS_ADDR:-127.83.19.53}
stop_server() { # SIGTERM, then SIGKILL after 2 s
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
cleanup() {
  stop_server
  [ -z "$dns_pid" ] || { kill "$dns_pid" 2>/dev/null; wait "$dns_pid" 2>/dev/null; } || true
  [ -n "${IRC_DEBUG:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/hybrid"
echo "bench" >"$tmp/hybrid/motd"
max=$((clients + 100))
cat >"$tmp/hybrid/ircd.conf" <<EOF
serverinfo {
  name = "hybrid.bench"; description = "bench"; network_name = "bench"; hub = no;
  default_max_clients = $max; max_nick_length = 15; max_topic_length = 300;
};
admin { name = "bench"; description = "bench"; email = "<bench@localhost>"; };
class {
  name = "users"; ping_time = 10 minutes;
  number_per_ip_local = $max; number_per_ip_global = $max; max_number = $max;
  cidr_bitlen_ipv4 = 32; cidr_bitlen_ipv6 = 128; number_per_cidr = $max;
  sendq = 1 megabyte; recvq = 2560 bytes;
};
listen { host = "127.0.0.1"; port = $port; };
auth { user = "*@*"; class = "users"; flags = no_tilde; };
motd { mask = "*"; file = "$tmp/hybrid/motd"; };
channel { default_join_flood_count = 0; max_channels = 25; };
general {
  disable_auth = yes; throttle_time = 0; ping_cookie = no;
  invisible_on_connect = no; default_floodcount = 0;
};
modules {
  path = "/usr/lib/ircd-hybrid/modules";
  path = "/usr/lib/ircd-hybrid/modules/autoload";
};
log { use_logging = no; };
EOF
# hybrid looks up every client's address: as root, in a mount namespace
# of its own, its /etc/resolv.conf names nxdomain.py on a loopback address.
as_user=() own_dns=()
if [ "$(id -u)" -eq 0 ]; then
  chmod 755 "$tmp" # nobody must reach its directory
  echo "nameserver $dns_addr" >"$tmp/hybrid/resolv.conf"
  chown -R nobody:nogroup "$tmp/hybrid"
  as_user=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
  if unshare -m true 2>/dev/null; then
    /usr/bin/python3 "$here/nxdomain.py" "$dns_addr" >"$tmp/dns.out" 2>&1 &
    dns_pid=$!
    for _ in $(seq 1 100); do
      grep -q ready "$tmp/dns.out" 2>/dev/null && break
      kill -0 "$dns_pid" 2>/dev/null || break
      sleep 0.05
    done
    if grep -q ready "$tmp/dns.out"; then
      # shellcheck disable=SC2016  # $0 and $@ are for the inner sh
      own_dns=(unshare -m sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$tmp/hybrid/resolv.conf")
    else
      echo "irc: no local DNS for ircd-hybrid ($(cat "$tmp/dns.out")); it uses the system's" >&2
    fi
  fi
fi
[ ${#own_dns[@]} -gt 0 ] ||
  echo "irc: ircd-hybrid looks clients up with the system's resolver: slow if it drops a burst" >&2

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

start_server() { # eddy | hybrid
  local err=$tmp/$1.stderr h=$tmp/hybrid
  case $1 in
  eddy) "${spin[@]}" "$build/eddy" irc --listen "tcp:$port:interface=127.0.0.1" \
    --name irc.bench --max-clients "$max" --ping-timeout 600 2>"$err" & ;;
  hybrid) "${spin[@]}" "${own_dns[@]}" "${as_user[@]}" "$hybrid" -foreground -configfile "$h/ircd.conf" \
    -pidfile "$h/ircd.pid" -logfile "$h/ircd.log" -klinefile "$h/kline.db" \
    -dlinefile "$h/dline.db" -xlinefile "$h/xline.db" -resvfile "$h/resv.db" >"$err" 2>&1 & ;;
  esac
  server_pid=$!
  for _ in $(seq 1 100); do
    listening && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "irc: $1 did not start:" >&2
  cat "$err" "$tmp/hybrid/ircd.log" >&2 2>/dev/null || true
  exit 1
}

# measure SERVER: appends "SERVER key=value..." to the results
measure() {
  local out
  wait_quiet
  start_server "$1"
  local rc=0
  out=$("${cpin[@]}" "$build/irc_load" "$port" "$server_pid" "$clients" "$per_chan" \
    "$interval" "$warmup" "$secs") || rc=$?
  # 3: the server fell behind (deliveries never arrived): a result for a
  # peer, a failure for eddy.
  if [ "$rc" -ne 0 ] && { [ "$rc" -ne 3 ] || [ "$1" = eddy ]; }; then
    echo "irc: the load against $1 failed" >&2
    cat "$tmp/$1.stderr" >&2 2>/dev/null || true
    exit 1
  fi
  stop_server
  echo "$1 $out" >>"$results"
}

results=$tmp/results; [ -z "${IRC_KEEP:-}" ] || results=$IRC_KEEP
: >"$results"
for _ in $(seq 1 "$runs"); do
  for s in "${servers[@]}"; do
    measure "$s"
  done
done

awk -v runs="$runs" -v secs="$secs" -v n="$clients" -v per="$per_chan" -v iv="$interval" '
  { s = $1; delete f
    for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    if (!(s in seen)) { seen[s] = 1; order = order " " s }
    dps = f["delivered_per_s"]; cpu = f["cpu_s"] > 0 ? f["cpu_s"] * 1e6 / f["delivered_window"] : 0
    kb = (f["rss_after_kb"] - f["rss_before_kb"]) / n
    if (!(s in best) || dps > best[s]) best[s] = dps
    if (!(s in p50) || f["p50_us"] < p50[s]) p50[s] = f["p50_us"]
    if (!(s in p99) || f["p99_us"] < p99[s]) p99[s] = f["p99_us"]
    if (!(s in us) || cpu < us[s]) us[s] = cpu
    if (!(s in mem) || kb < mem[s]) mem[s] = kb
    if (!(s in lost) || f["lost"] < lost[s]) lost[s] = f["lost"] + 0 }
  END {
    printf "%d clients in %d channels of %d, one PRIVMSG per client every %d ms\n", n, n / per, per, iv
    printf "  %-7s %11s %8s %8s %11s %11s %10s %9s\n", "server", "dlv/s", "p50 ms", "p99 ms", "CPU us/dlv",
      "dlv/CPU-s", "KB/client", "never"
    k = split(order, ss, " ")
    for (j = 1; j <= k; j++) {
      s = ss[j]
      printf "  %-7s %11.0f %8.3f %8.3f %11.3f %11.0f %10.2f %9d\n", s, best[s], p50[s] / 1000, p99[s] / 1000,
        us[s], (us[s] > 0 ? 1e6 / us[s] : 0), mem[s], lost[s]
    }
    if (("eddy" in seen) && ("hybrid" in seen)) {
      printf "  eddy/hybrid: dlv/s %.3g, p50 %.3g, p99 %.3g, dlv/CPU-s %.3g, KB/client %.3g\n",
        best["eddy"] / best["hybrid"], p50["eddy"] / (p50["hybrid"] > 0 ? p50["hybrid"] : 1),
        p99["eddy"] / (p99["hybrid"] > 0 ? p99["hybrid"] : 1),
        (us["eddy"] > 0 ? us["hybrid"] / us["eddy"] : 0),
        (mem["hybrid"] != 0 ? mem["eddy"] / mem["hybrid"] : 0)
      print "  (dlv/CPU-s above 1 and p50, p99, KB/client below 1 favour eddy)"
    }
    printf "(best of %d; %d s measured after warm-up; never: deliveries still missing 5 s after the\n", runs, secs
    print " last send, in the best run: a server that fell behind)"
  }' "$results"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); measurements started on a busy machine: $busy_starts"
[ "$has_eddy" = 1 ] || echo "(eddy has no irc command yet: ircd-hybrid only)"
