#!/usr/bin/env bash
# bench/tls/run.sh: the TLS server benchmark, eddy (eddy_tls_server.c, a
# small HTTP server on eddy's tls: endpoint) against nginx, both with
# the same certificate, measured in the same run.
#
# Builds a release libeddy in build-bench/ (configured once; the build
# directory can be changed with BENCH_BUILD), compiles eddy_tls_server.c
# and client.c next to it, makes a fresh ECDSA P-256 CA and leaf
# (tests/tls/mkcerts.sh) and an nginx configuration in a temporary
# directory, then measures each server $RUNS times (default 5), each
# measurement of one followed by the same of the other:
#   handshakes  full TLS 1.3 handshakes, X25519, ECDSA P-256 certificate,
#               no resumption (the client offers no session), each on a new
#               connection with one tiny GET; $HS_THREADS (default 4)
#               blocking client threads for $SECONDS_PER_RUN s (default 3):
#               handshakes/s, server CPU per handshake;
#   bulk        one connection downloading a 64 MiB file again and again
#               (HTTP/1.1 keep-alive) for $SECONDS_PER_RUN s: MB/s, server
#               CPU per MB.
# The client needs more CPU per handshake than a server (it verifies a
# signature and, with VERIFY=1, the chain), so on two CPUs it saturates
# first: then handshakes/s tends to 1.0 whatever the servers do, and the
# server CPU per handshake is the fair figure. The CPU load table at the
# end says which side was the bottleneck.
#
# Each measurement gets a fresh server process pinned to CPU $SERVER_CPU
# (default 0); the client is pinned to CPU $CLIENT_CPU (default 1). nginx
# runs as one process (master_process off) so that its CPU time is one
# /proc/PID/stat, read by the client at the two ends of the measured
# interval (which follows a 0.5 s warm-up). Figures are the best of the
# runs, per metric; next to their ratio is the median of the ratios within
# each run, which a change of load between runs does not move. Each
# measurement waits (at most 2 s) for the machine to be quiet first; the
# end of the output says how many started on a busy machine anyway.
# Everything listens on 127.0.0.1 only. About 2 minutes with the
# defaults. Exits non-zero if a build or a run fails.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BENCH_BUILD:-build-bench}
runs=${RUNS:-5}
secs=${SECONDS_PER_RUN:-3}
hs_threads=${HS_THREADS:-4}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
. "$here/../lib.sh"
port=$(bench_port 7)
verify=${VERIFY:-0}

cd "$root"

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release -Dtests=false
fi
# Only the library: a half-edited src/app must not stop the benchmark.
ninja -C "$build" libeddy.a

# nginx is this benchmark's peer; installed like the other packages of
# scripts/deps.sh when it is missing.
nginx_bin=$(command -v nginx || true)
[ -n "$nginx_bin" ] || [ ! -x /usr/sbin/nginx ] || nginx_bin=/usr/sbin/nginx
if [ -z "$nginx_bin" ]; then
  echo "tls: installing nginx (the benchmark's peer)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends nginx
  nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
fi

cflags=(-std=c11 -O2 -Wall -Wextra)
# shellcheck disable=SC2046  # pkg-config output is meant to be split
cc "${cflags[@]}" -Iinclude "$here/eddy_tls_server.c" "$build/libeddy.a" \
  $(pkg-config --libs openssl) -lpthread -o "$build/eddy_tls_server"
# shellcheck disable=SC2046
cc "${cflags[@]}" "$here/client.c" $(pkg-config --cflags --libs openssl) \
  -lpthread -o "$build/tls_client"

# Pin for stable numbers, unless this machine lacks the CPUs.
spin=() cpin=()
if taskset -c "$server_cpu" true 2>/dev/null &&
  taskset -c "$client_cpu" true 2>/dev/null; then
  spin=(taskset -c "$server_cpu")
  cpin=(taskset -c "$client_cpu")
else
  echo "tls: CPUs $server_cpu and $client_cpu unavailable, running unpinned" >&2
fi

out="$build/tls-results"
rm -rf "$out"
mkdir -p "$out"

tmp=$(mktemp -d /tmp/eddy-bench-tls.XXXXXX)
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
cleanup() {
  stop_server
  rm -rf "$tmp"
}
trap cleanup EXIT

# The certificate both servers present: ECDSA P-256, signed by a fresh CA.
bash "$root/tests/tls/mkcerts.sh" "$tmp/certs" >/dev/null
cert=$tmp/certs/server.pem key=$tmp/certs/server.key
ca_arg=()
[ "$verify" = 1 ] && ca_arg=(--ca "$tmp/certs/ca.pem")

# The bulk body: 64 MiB of random bytes, asked for again and again on one
# connection, and read by both servers from the page cache (warmed here).
# Not a sparse file: reading a hole makes the kernel allocate and zero a
# page per 4 KiB, which would cost more than the TLS being measured.
mkdir -p "$tmp/www"
head -c $((64 << 20)) /dev/urandom >"$tmp/www/bulk"
cat "$tmp/www/bulk" >/dev/null

# nginx as one process in the foreground: everything it writes stays in
# $tmp. Its defaults are kept except where the benchmark's terms need
# otherwise: TLS 1.3 only, X25519, no access log, and sendfile off (which
# TLS without kernel TLS cannot use anyway). Session tickets stay on, as
# they are in both servers by default: each offers resumption, and each
# issues its default number of tickets (nginx OpenSSL's two, eddy one);
# the clients never resume, so every handshake is a full one.
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  server {
    listen 127.0.0.1:$port ssl;
    ssl_certificate $cert;
    ssl_certificate_key $key;
    ssl_protocols TLSv1.3;
    ssl_ecdh_curve X25519;
    ssl_session_tickets on;
    root $tmp/www;
    location = /hs { default_type text/plain; return 200 "ok"; }
    location = /bulk { default_type application/octet-stream; }
  }
}
EOF
"$nginx_bin" -t -q -p "$tmp/nginx" -e "$tmp/nginx/error.log" \
  -c "$tmp/nginx/nginx.conf"

start_server() { # eddy|nginx
  # Something else answering on the port would be measured instead.
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "tls: port $port is already in use; set BENCH_PORT" >&2
    exit 1
  fi
  case $1 in
  eddy)
    "${spin[@]}" "$build/eddy_tls_server" --port "$port" --cert "$cert" \
      --key "$key" --file "$tmp/www/bulk" &
    ;;
  nginx)
    "${spin[@]}" "$nginx_bin" -p "$tmp/nginx" -e "$tmp/nginx/error.log" \
      -c "$tmp/nginx/nginx.conf" &
    ;;
  esac
  server_pid=$!
  if ! "${cpin[@]}" "$build/tls_client" wait --port "$port" ||
    ! kill -0 "$server_pid" 2>/dev/null; then
    echo "tls: the $1 server did not start on port $port" >&2
    [ "$1" = nginx ] && tail -5 "$tmp/nginx/error.log" >&2
    exit 1
  fi
}


# measure PROG MODE ARGS...: one fresh server, one client run.
measure() {
  local prog=$1 mode=$2
  shift 2
  wait_quiet
  start_server "$prog"
  if ! "${cpin[@]}" "$build/tls_client" "$mode" --port "$port" \
    --pid "$server_pid" "${ca_arg[@]}" "$@" >>"$out/$prog.$i"; then
    echo "tls: $prog $mode failed" >&2
    exit 1
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "tls: the $prog server died during $mode" >&2
    exit 1
  fi
  stop_server
}

# What each server negotiates, once: the terms must be the same (the
# session tickets a server sends are its own business, and shown).
declare -A terms
for prog in eddy nginx; do
  start_server "$prog"
  terms[$prog]=$("${cpin[@]}" "$build/tls_client" info --port "$port" \
    "${ca_arg[@]}" | sed 's/^# //')
  stop_server
  printf '%-6s %s\n' "$prog" "${terms[$prog]}"
done
if [ "${terms[eddy]% resumed=*}" != "${terms[nginx]% resumed=*}" ]; then
  echo "tls: the two servers negotiated different terms" >&2
  exit 1
fi

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# Each measurement of one server is followed at once by the same one of
# the other, and the order alternates from run to run, so that a burst of
# load on the machine is as likely to fall on either.
for i in $(seq 1 "$runs"); do
  order=(eddy nginx)
  [ $((i % 2)) -eq 0 ] && order=(nginx eddy)
  for prog in "${order[@]}"; do
    measure "$prog" hs --threads "$hs_threads" --seconds "$secs"
  done
  for prog in "${order[@]}"; do
    measure "$prog" bulk --seconds "$secs"
  done
done

for prog in eddy nginx; do
  for f in "$out/$prog".*; do
    sed "s/^/$prog ${f##*.} /" "$f"
  done
done >"$out/all"

awk -v runs="$runs" '
  # Lines: server, run, metric, value. Per metric and server: the best
  # value over the runs (the highest for rates, the lowest for costs), the
  # least disturbed by other work on the machine; for the CPU load
  # figures, the mean.
  {
    k = $1 SUBSEP $3; v = $4 + 0
    if (!(k in hi) || v > hi[k]) hi[k] = v
    if (!(k in lo) || v < lo[k]) lo[k] = v
    mean[k] += v / runs
    val[$1, $2, $3] = v
  }
  # The ratio is always "how many times better eddy is": eddy/nginx for a
  # rate, nginx/eddy for a cost, so that >= 1.0 meets the goal either way.
  function better_ratio(e, n, better) {
    if (better == "higher") return n > 0 ? e / n : 0
    return e > 0 ? n / e : 0
  }
  # The median, over the runs, of the ratio within each run: the two
  # measurements of a run follow each other, so a change of load on the
  # machine between runs cancels out of it.
  function paired(key, better,   i, m, t, j, r) {
    m = 0
    for (i = 1; i <= runs; i++)
      if (("eddy", i, key) in val && ("nginx", i, key) in val)
        r[++m] = better_ratio(val["eddy", i, key], val["nginx", i, key], better)
    for (i = 2; i <= m; i++)
      for (j = i; j > 1 && r[j - 1] > r[j]; j--) {
        t = r[j]; r[j] = r[j - 1]; r[j - 1] = t
      }
    if (m == 0) return 0
    return m % 2 ? r[(m + 1) / 2] : (r[m / 2] + r[m / 2 + 1]) / 2
  }
  function row(label, key, better,   e, n, r, p) {
    e = better == "higher" ? hi["eddy", key] : lo["eddy", key]
    n = better == "higher" ? hi["nginx", key] : lo["nginx", key]
    r = better_ratio(e, n, better)
    p = paired(key, better)
    ratio[key] = r
    pratio[key] = p
    printf "%-34s %10.2f %10.2f %8.3f %8.3f  %s\n", label, e, n, r, p,
      (r >= 1 ? "ok" : "below 1.0")
  }
  function load(label, key) {
    printf "%-34s %10.0f %10.0f\n", label, mean["eddy", key], mean["nginx", key]
  }
  END {
    printf "%-34s %10s %10s %8s %8s\n", "metric (best of " runs ")", "eddy",
      "nginx", "ratio*", "paired*"
    row("full handshakes (/s)",            "hs_s",               "higher")
    row("  server CPU per handshake (us)", "hs_cpu_us_per_hs",   "lower")
    row("bulk, one connection (MB/s)",     "bulk_mb_s",          "higher")
    row("  server CPU per MB (us)",        "bulk_cpu_us_per_mb", "lower")
    printf "* how many times better eddy is: eddy/nginx for rates, nginx/eddy for CPU\n"
    printf "  costs; goal >= 1.0. ratio: of the best figures; paired: the median of\n"
    printf "  the ratios within each run (steadier on a machine whose load changes).\n"
    printf "\nCPU load in the measured intervals (%%, mean of the runs; a side near 100 is the bottleneck):\n"
    printf "%-34s %10s %10s\n", "", "eddy", "nginx"
    load("handshakes: server", "hs_server_cpu_pct")
    load("handshakes: client", "hs_client_cpu_pct")
    load("bulk: server",       "bulk_server_cpu_pct")
    load("bulk: client",       "bulk_client_cpu_pct")
    printf "%-34s %10.2f %10.2f\n", "session tickets sent per handshake",
      mean["eddy", "hs_tickets_per_hs"], mean["nginx", "hs_tickets_per_hs"]
    printf "\ntls ratios (eddy vs nginx, best / paired; >= 1.0 is the goal):"
    printf " handshakes/s %.3f / %.3f, server CPU/handshake %.3f / %.3f,",
      ratio["hs_s"], pratio["hs_s"], ratio["hs_cpu_us_per_hs"],
      pratio["hs_cpu_us_per_hs"]
    printf " bulk MB/s %.3f / %.3f, server CPU/MB %.3f / %.3f\n",
      ratio["bulk_mb_s"], pratio["bulk_mb_s"], ratio["bulk_cpu_us_per_mb"],
      pratio["bulk_cpu_us_per_mb"]
  }' "$out/all"
echo "client verification: $([ "$verify" = 1 ] && echo "chain and name against the CA (VERIFY=1)" || echo "none beyond TLS 1.3's CertificateVerify (VERIFY=1 for chain and name)")"
echo "load average before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg);" \
  "measurements started on a busy machine: $busy_starts of $((runs * 4))"
echo "(raw results: $build/tls-results/)"
