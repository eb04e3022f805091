#!/usr/bin/env bash
# bench/http/run.sh: eddy's HTTP/1.1 server against nginx and h2o, one
# worker each, in the same run, driven by wrk.
#
# Four workloads, each for $SECONDS_PER_RUN s (default 5) with $CONNS
# (default 50) keep-alive connections, best of $RUNS (default 3),
# alternating the servers:
#   hello      a 13-byte "Hello, World!" (eddy: the route of
#              examples/hello-web.c; nginx: `return 200`; h2o: a 13-byte
#              file, its nearest equivalent)
#   pipelined  the same, 16 requests in flight per connection
#   1k, 1m     a 1 KiB and a 1 MiB static file (eddy web, nginx, h2o)
# For each: requests/s, p99 latency, and the server's CPU time per request
# (utime + stime from /proc/PID/stat across the run): on two cores wrk
# saturates before the servers on small requests, so CPU per request is
# the fairer figure there. nginx runs with sendfile off (with Debian's
# `sendfile on; tcp_nopush on` it stalls 40 ms per pipelined batch here),
# and with access logs off, as eddy and h2o are. The server is pinned to
# CPU $SERVER_CPU (default 0), wrk to $CLIENT_CPU (default 1). nginx, h2o
# and wrk are installed when missing. Exits non-zero if a run fails.
#
# Then, unless COUNTS=0, two counts per request that a busy machine does
# not blur, for hello and 1k: system calls (perf stat's
# raw_syscalls:sys_enter over 3 s of wrk, or strace -c where perf cannot
# trace), and user-space instructions under callgrind (counters zeroed
# after a warm-up, dumped after $CALLGRIND_REQUESTS requests, default
# 20000, sent one at a time on one connection: non-pipelined requests).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BENCH_BUILD:-build-bench}
runs=${RUNS:-3}
secs=${SECONDS_PER_RUN:-5}
conns=${CONNS:-50}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
. "$here/../lib.sh"
port=$(bench_port 11)

cd "$root"
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release -Dtests=false
fi
ninja -C "$build" eddy hello-web

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v h2o >/dev/null || need+=(h2o)
if [ ${#need[@]} -gt 0 ]; then
  echo "http: installing ${need[*]} (the benchmark's client and peers)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
h2o_bin=$(command -v h2o || true)

spin=() cpin=()
if taskset -c "$server_cpu" true 2>/dev/null &&
  taskset -c "$client_cpu" true 2>/dev/null; then
  spin=(taskset -c "$server_cpu")
  cpin=(taskset -c "$client_cpu")
fi

tmp=$(mktemp -d /tmp/eddy-bench-http.XXXXXX)
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
cleanup() {
  stop_server
  rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/www" "$tmp/nginx"
# nginx's and h2o's workers drop root for an unprivileged user, who must
# be able to read the files (mktemp -d makes the directory private).
chmod 755 "$tmp" "$tmp/www"
printf 'Hello, World!' >"$tmp/www/hello"
head -c 1024 /dev/urandom >"$tmp/www/1k"
head -c 1048576 /dev/urandom >"$tmp/www/1m"
chmod 644 "$tmp/www"/*

cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile off;
  keepalive_requests 1000000;
  client_body_temp_path $tmp/nginx;
  proxy_temp_path $tmp/nginx;
  fastcgi_temp_path $tmp/nginx;
  uwsgi_temp_path $tmp/nginx;
  scgi_temp_path $tmp/nginx;
  server {
    listen 127.0.0.1:$port;
    root $tmp/www;
    location = / { default_type text/plain; return 200 "Hello, World!"; }
  }
}
EOF
cat >"$tmp/h2o.conf" <<EOF
num-threads: 1
listen:
  host: 127.0.0.1
  port: $port
hosts:
  default:
    paths:
      /:
        file.dir: $tmp/www
EOF

# A wrk script that keeps 16 requests in flight on each connection.
cat >"$tmp/pipeline.lua" <<'EOF'
init = function(args)
  local r = {}
  for i = 1, 16 do r[i] = wrk.format(nil, wrk.path) end
  req = table.concat(r)
end
request = function() return req end
EOF

start_server() { # eddy-hello | eddy-web | nginx | h2o
  case $1 in
  eddy-hello) "${spin[@]}" "$build/hello-web" --listen "tcp:$port:interface=127.0.0.1" >/dev/null & ;;
  eddy-web) "${spin[@]}" "$build/eddy" --log-level error web --listen \
    "tcp:$port:interface=127.0.0.1" --path "$tmp/www" --idle-timeout 0 & ;;
  nginx) "${spin[@]}" "$nginx_bin" -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" & ;;
  h2o) "${spin[@]}" "$h2o_bin" -c "$tmp/h2o.conf" >/dev/null 2>&1 & ;;
  esac
  server_pid=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "http: $1 did not start" >&2
  exit 1
}

cpu_ticks() { # utime + stime of the server (and its children: nginx's worker)
  local total=0 pid
  for pid in $server_pid $(pgrep -P "$server_pid" || true); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}

# measure SERVER TAG PATH [wrk args...]: prints "TAG SERVER rps p99_ms cpu_us_per_req"
measure() {
  local server=$1 tag=$2 path=$3 t0 t1 out rps p99 reqs
  shift 3
  wait_quiet
  start_server "$server"
  "${cpin[@]}" wrk -t1 -c"$conns" -d1s "http://127.0.0.1:$port$path" "$@" >/dev/null
  t0=$(cpu_ticks)
  out=$("${cpin[@]}" wrk -t1 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$port$path" "$@")
  t1=$(cpu_ticks)
  stop_server
  # Errors would be measured as answers: a server that answers them fails.
  if grep -q "Non-2xx\|Socket errors" <<<"$out"; then
    echo "http: $server $tag: errors or non-2xx answers:" >&2
    echo "$out" >&2
    exit 1
  fi
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  p99=$(awk '$1 == "99%" {v = $2; if (v ~ /us$/) {sub(/us/, "", v); v /= 1000}
         else if (v ~ /ms$/) {sub(/ms/, "", v)} else if (v ~ /s$/) {sub(/s/, "", v); v *= 1000}
         print v}' <<<"$out")
  awk -v tag="$tag" -v s="$server" -v rps="$rps" -v p99="${p99:-0}" -v reqs="$reqs" \
    -v ticks="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { cpu = reqs > 0 ? ticks / hz * 1e6 / reqs : 0
             printf "%s %s %.0f %.3f %.3f\n", tag, s, rps, p99, cpu }'
}

results=$tmp/results
: >"$results"
servers=(eddy nginx)
[ -n "$h2o_bin" ] && servers+=(h2o)
for i in $(seq 1 "$runs"); do
  for s in "${servers[@]}"; do
    hello=$s path=/
    [ "$s" = eddy ] && hello=eddy-hello
    [ "$s" = h2o ] && path=/hello
    measure "$hello" hello "$path" >>"$results"
    measure "$hello" pipelined "$path" -s "$tmp/pipeline.lua" >>"$results"
    web=$s
    [ "$s" = eddy ] && web=eddy-web
    measure "$web" 1k /1k >>"$results"
    measure "$web" 1m /1m >>"$results"
  done
done
sed -i 's/ eddy-hello / eddy /; s/ eddy-web / eddy /' "$results"

awk -v runs="$runs" '
  { k = $1 SUBSEP $2
    if (!(k in rps) || $3 > rps[k]) rps[k] = $3
    if (!(k in p99) || $4 < p99[k]) p99[k] = $4
    if (!(k in cpu) || $5 < cpu[k]) cpu[k] = $5
    seen[$2] = 1 }
  END {
    n = split("hello pipelined 1k 1m", tags, " ")
    printf "%-10s %-6s %12s %10s %14s %12s %12s\n", "workload", "server", "req/s", "p99 ms",
      "CPU us/req", "eddy/x rps", "x/eddy CPU"
    for (i = 1; i <= n; i++) {
      t = tags[i]
      split("eddy nginx h2o", ss, " ")
      for (j = 1; j <= 3; j++) {
        s = ss[j]
        if (!((t, s) in rps)) continue
        r1 = rps[t, s] > 0 ? rps[t, "eddy"] / rps[t, s] : 0
        c1 = cpu[t, "eddy"] > 0 ? cpu[t, s] / cpu[t, "eddy"] : 0
        printf "%-10s %-6s %12.0f %10.2f %14.2f %12.3f %12.3f\n", t, s, rps[t, s], p99[t, s],
          cpu[t, s], r1, c1
      }
    }
    printf "(best of %d; eddy/x rps above 1 and x/eddy CPU above 1 favour eddy)\n", runs
  }' "$results"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); measurements started on a busy machine: $busy_starts"

[ "${COUNTS:-1}" = 0 ] && exit 0

server_pids() { # the server and its children, comma-separated
  local p=$server_pid
  for c in $(pgrep -P "$server_pid" || true); do p="$p,$c"; done
  echo "$p"
}

# syscalls SERVER PATH: system calls per request over 3 s of wrk.
syscalls() {
  local server=$1 path=$2 out reqs calls
  start_server "$server"
  "${cpin[@]}" wrk -t1 -c"$conns" -d1s "http://127.0.0.1:$port$path" >/dev/null
  "${cpin[@]}" wrk -t1 -c"$conns" -d3s "http://127.0.0.1:$port$path" >"$tmp/wrk.out" &
  local wrk_pid=$!
  if perf stat -x, -e raw_syscalls:sys_enter -p "$(server_pids)" -o "$tmp/perf.out" -- sleep 3 2>/dev/null; then
    calls=$(awk -F, '/raw_syscalls/ {print $1}' "$tmp/perf.out")
  else
    calls=
  fi
  wait "$wrk_pid"
  stop_server
  reqs=$(awk '/requests in/ {print $1}' "$tmp/wrk.out")
  if [ -z "$calls" ] || [ -z "$reqs" ] || [ "$reqs" -eq 0 ]; then
    echo "-"
  else
    awk -v c="$calls" -v r="$reqs" 'BEGIN { printf "%.2f", c / r }'
  fi
}

# seq.py PORT PATH N: N requests on one connection, one at a time.
cat >"$tmp/seq.py" <<'PY'
import socket, sys
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port), timeout=30)
req = f"GET {path} HTTP/1.1\r\nHost: b\r\n\r\n".encode()
for _ in range(n):
    s.sendall(req)
    got = b""
    while b"\r\n\r\n" not in got:
        got += s.recv(65536)
    head, body = got.split(b"\r\n\r\n", 1)
    length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < length:
        body += s.recv(65536)
s.close()
PY

# instructions SERVER PATH: user-space instructions per request under
# callgrind, for CALLGRIND_REQUESTS requests.
instructions() {
  local server=$1 path=$2 n=${CALLGRIND_REQUESTS:-20000} ir pid dump
  command -v valgrind >/dev/null || { echo "-"; return; }
  rm -f "$tmp"/callgrind.out.*
  case $server in
  eddy-hello) valgrind --tool=callgrind --callgrind-out-file="$tmp/callgrind.out.%p" \
    "$build/hello-web" --listen "tcp:$port:interface=127.0.0.1" >/dev/null 2>&1 & ;;
  eddy-web) valgrind --tool=callgrind --callgrind-out-file="$tmp/callgrind.out.%p" \
    "$build/eddy" --log-level error web --listen "tcp:$port:interface=127.0.0.1" \
    --path "$tmp/www" --idle-timeout 0 >/dev/null 2>&1 & ;;
  nginx) valgrind --tool=callgrind --callgrind-out-file="$tmp/callgrind.out.%p" \
    "$nginx_bin" -c "$tmp/nginx/nginx.conf" -p "$tmp/nginx" \
    -g "master_process off;" >/dev/null 2>&1 & ;; # one process, as callgrind needs
  h2o) valgrind --tool=callgrind --callgrind-out-file="$tmp/callgrind.out.%p" \
    "$h2o_bin" -c "$tmp/h2o.conf" >/dev/null 2>&1 & ;;
  esac
  server_pid=$!
  for _ in $(seq 1 600); do # slow to start under callgrind
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
  done
  timeout 60 python3 "$tmp/seq.py" "$port" "$path" 200 || true
  pid=$server_pid
  timeout 30 callgrind_control -z "$pid" >/dev/null 2>&1 || true
  timeout 300 python3 "$tmp/seq.py" "$port" "$path" "$n" || true
  timeout 60 callgrind_control -d "$pid" >/dev/null 2>&1 || true
  dump=$(ls -t "$tmp"/callgrind.out."$pid".* 2>/dev/null | head -1 || true)
  ir=
  [ -n "$dump" ] && ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
  stop_server
  if [ -z "$ir" ]; then echo "-"; else awk -v i="$ir" -v n="$n" 'BEGIN { printf "%.0f", i / n }'; fi
}

echo
printf "%-10s %-6s %14s %16s\n" workload server "syscalls/req" "instructions/req"
for tag in hello 1k; do
  for s in "${servers[@]}"; do
    srv=$s path=/
    case $tag/$s in
    hello/eddy) srv=eddy-hello ;;
    hello/h2o) path=/hello ;;
    1k/eddy) srv=eddy-web path=/1k ;;
    1k/*) path=/1k ;;
    esac
    sc=$(syscalls "$srv" "$path")
    ins=$(instructions "$srv" "$path")
    printf "%-10s %-6s %14s %16s\n" "$tag" "$s" "$sc" "$ins"
  done
done
echo "(system calls with $conns keep-alive connections under wrk; instructions in user space, one request at a time)"
