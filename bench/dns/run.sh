#!/usr/bin/env bash
# bench/dns/run.sh: `eddy dns` against NSD and Knot as authoritative
# servers, and eddy's forwarder against unbound as a cache, one server
# thread each, in the same run, driven by dnsperf.
#
# The zone (zone.awk) is generated: bench.example. with $NAMES hosts
# (default 5000), each with an A record, every second with an AAAA, every
# fourth with an MX, every fourth (others) with a TXT, and a wildcard
# *.wild.bench.example. with A, AAAA, MX and TXT. The queries (the same
# file for every server, shuffled with a fixed seed, looped over by
# dnsperf) are a mix of 70% existing names with a type they hold, 15%
# NXDOMAIN names and 15% names under the wildcard.
#
# authoritative  eddy dns --zone, NSD (server-count 1) and Knot (one UDP
#                and one TCP worker), each serving the zone from a config
#                written into a temporary directory (no system service,
#                nothing under /etc). NSD's response rate limiting is
#                off (on by default, it drops most of the wildcard and
#                NXDOMAIN answers at this rate); Knot's is off by default.
#                "resp B" is dnsperf's mean response size: NSD adds the
#                zone's NS record in the authority section, others do not.
# forwarder      eddy dns --forward and unbound (num-threads 1, the
#                iterator module alone, a forward-zone), both forwarding
#                to the same NSD serving the zone, over the first
#                $FORWARD_QUERIES lines of the mix (default 1000) repeated,
#                with the cache warmed by one pass first. The hit rate is
#                1 - upstream queries / client queries over the measured
#                run, the upstream queries counted by NSD's statistics
#                (nsd-control over a unix socket).
#
# Each measurement: a fresh server pinned to CPU $SERVER_CPU (default 0),
# dnsperf pinned to CPU $CLIENT_CPU (default 1), a wait (at most 2 s) for
# a quiet machine, 1 s of warm-up, then
#   throughput  dnsperf for $SECONDS_PER_RUN s (default 5) with $CLIENTS
#               sockets (default 4) and $OUTSTANDING queries in flight
#               (default 100): queries per second, and the server's CPU
#               time per query (utime + stime of the server process and
#               its children from /proc/PID/stat, before and after). busy%
#               is that CPU time over the run time: well under 100 means
#               the server waited for dnsperf (dnsperf saturated its core,
#               or the machine's other load, did), and then queries per
#               server-CPU-second is the fair figure.
#   latency     dnsperf 2.10 prints only a mean, so a second pass of
#               $LATENCY_SECONDS s (default 2) at a fixed $LATENCY_QPS
#               (default 20000, the same offered load for every server,
#               below saturation so that queueing in dnsperf does not
#               swamp the server's share) with dnsperf -v, which prints
#               every query's latency; p50, p99 and p99.9 are taken from
#               those. A query lost in that pass counts as a latency of
#               infinity (it is printed as such).
# Best of $RUNS (default 3), alternating the servers (busy% is that of
# the run with the most queries per second). Exits non-zero if a server does
# not start, gives a wrong answer to one of a few known questions (an A,
# an AAAA, an MX, a TXT, a NODATA, an NXDOMAIN, two wildcards), or loses more
# than 0.1% of the queries in the throughput pass; the split of response
# codes must agree between servers. dnsperf, dig, NSD, Knot and unbound are
# installed when missing. If the eddy built here has no `dns` command,
# only the peers are measured; if its forwarder is a stand-in that says
# "not implemented", only unbound is measured as a forwarder.
# DNS_SERVERS (default "eddy nsd knot") and DNS_FORWARDERS (default "eddy
# unbound") choose who runs; either empty skips its part. About 2 to 3
# minutes with the defaults.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BENCH_BUILD:-build-bench}
runs=${RUNS:-3}
secs=${SECONDS_PER_RUN:-5}
names=${NAMES:-5000}
queries=${QUERIES:-50000}
fwd_queries=${FORWARD_QUERIES:-1000}
clients=${CLIENTS:-4}
outstanding=${OUTSTANDING:-100}
lat_qps=${LATENCY_QPS:-20000}
lat_secs=${LATENCY_SECONDS:-2}
server_cpu=${SERVER_CPU:-0}
client_cpu=${CLIENT_CPU:-1}
read -r -a servers <<<"${DNS_SERVERS-eddy nsd knot}"
read -r -a forwarders <<<"${DNS_FORWARDERS-eddy unbound}"
. "$here/../lib.sh"
port=$(bench_port 14)
up_port=$(bench_port 15)
[ "$up_port" != "$port" ] || up_port=$((port + 1))

cd "$root"
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release -Dtests=false
fi
ninja -C "$build" eddy

need=()
command -v dnsperf >/dev/null || need+=(dnsperf)
command -v dig >/dev/null || need+=(bind9-dnsutils)
[ -x /usr/sbin/nsd ] || need+=(nsd)
[ -x /usr/sbin/knotd ] || need+=(knot)
[ -x /usr/sbin/unbound ] || need+=(unbound)
if [ ${#need[@]} -gt 0 ]; then
  echo "dns: installing ${need[*]} (the benchmark's client and peers)"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

drop_eddy() { # SERVER...: all but eddy
  local s out=()
  for s in "$@"; do [ "$s" = eddy ] || out+=("$s"); done
  echo "${out[*]}"
}
has_eddy=1
if ! "$build/eddy" dns --help >/dev/null 2>&1; then
  has_eddy=0
  echo "dns: this eddy has no dns command; measuring the peers only"
  read -r -a servers <<<"$(drop_eddy "${servers[@]}")"
  read -r -a forwarders <<<"$(drop_eddy "${forwarders[@]}")"
fi

spin=() cpin=()
if taskset -c "$server_cpu" true 2>/dev/null &&
  taskset -c "$client_cpu" true 2>/dev/null; then
  spin=(taskset -c "$server_cpu")
  cpin=(taskset -c "$client_cpu")
fi

tmp=$(mktemp -d /tmp/eddy-bench-dns.XXXXXX)
server_pid='' up_pid=''
stop_pid() { # PID: SIGTERM, then SIGKILL after 2 s
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
stop_server() { stop_pid "$server_pid"; server_pid=; }
cleanup() {
  stop_server
  stop_pid "$up_pid"
  rm -rf "$tmp"
}
trap cleanup EXIT

# The zone and the queries.
origin=bench.example
awk -v n="$names" -v q="$queries" -v origin="$origin" -v zone="$tmp/zone" \
  -v mix="$tmp/queries" -f "$here/zone.awk"
head -n "$fwd_queries" "$tmp/queries" >"$tmp/fwd-queries"

mkdir -p "$tmp/nsd" "$tmp/up" "$tmp/knot" "$tmp/unbound"
nsd_conf() { # DIR PORT: an NSD serving the zone on 127.0.0.1:PORT, one server process
  cat >"$1/nsd.conf" <<EOF
server:
  ip-address: 127.0.0.1
  port: $2
  server-count: 1
  username: ""
  chroot: ""
  zonesdir: "$1"
  database: ""
  zonelistfile: "$1/zone.list"
  xfrdfile: "$1/xfrd.state"
  pidfile: "$1/nsd.pid"
  logfile: "$1/nsd.log"
  verbosity: 0
  rrl-ratelimit: 0
remote-control:
  control-enable: yes
  control-interface: $1/nsd.ctl
zone:
  name: $origin
  zonefile: $tmp/zone
EOF
}
nsd_conf "$tmp/nsd" "$port"
nsd_conf "$tmp/up" "$up_port"
cat >"$tmp/knot/knot.conf" <<EOF
server:
  rundir: $tmp/knot
  listen: 127.0.0.1@$port
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
log:
  - target: stderr
    any: warning
database:
  storage: $tmp/knot
zone:
  - domain: $origin
    file: $tmp/zone
    journal-content: none
    zonefile-sync: -1
EOF
cat >"$tmp/unbound/unbound.conf" <<EOF
server:
  interface: 127.0.0.1
  port: $port
  num-threads: 1
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$tmp/unbound"
  pidfile: "$tmp/unbound/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 0
  do-ip6: no
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  module-config: "iterator"
  so-reuseport: no
  prefetch: no
remote-control:
  control-enable: no
forward-zone:
  name: "$origin."
  forward-addr: 127.0.0.1@$up_port
EOF

# dig_at PORT NAME TYPE: "RCODE first-answer-rdata" (one try, 1 s)
dig_at() {
  local out
  out=$(dig +tries=1 +time=1 -p "$1" @127.0.0.1 "$2" "$3" 2>/dev/null) || { echo "none"; return; }
  awk '/status:/ { s = $6; sub(/,/, "", s) }
       /^;; ANSWER SECTION:/ { a = 1; next }
       a && NF >= 5 { r = $5; for (i = 6; i <= NF; i++) r = r " " $i; print s, r; done = 1; exit }
       END { if (!done) print s }' <<<"$out"
}

wait_answer() { # PORT NAME: waits (at most 5 s) for NAME A to be answered
  for _ in $(seq 1 50); do
    [ "$(dig_at "$1" "$2" A)" = "NOERROR 127.0.0.1" ] && return 0
    kill -0 "$server_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

start_upstream() {
  /usr/sbin/nsd -d -c "$tmp/up/nsd.conf" 2>"$tmp/up/stderr" &
  up_pid=$!
  server_pid=$up_pid wait_answer "$up_port" "ns1.$origin" || {
    echo "dns: the upstream NSD did not start:" >&2
    cat "$tmp/up/stderr" "$tmp/up/nsd.log" >&2 2>/dev/null || true
    exit 1
  }
}
upstream_queries() { nsd-control -c "$tmp/up/nsd.conf" stats_noreset | awk -F= '$1 == "num.queries" {print $2}'; }

start_server() { # eddy | nsd | knot | eddy-fwd | unbound
  local err=$tmp/$1.stderr
  case $1 in
  eddy) "${spin[@]}" "$build/eddy" dns --listen "udp:$port:interface=127.0.0.1" \
    --listen "tcp:$port:interface=127.0.0.1" --zone "$tmp/zone" 2>"$err" & ;;
  nsd) "${spin[@]}" /usr/sbin/nsd -d -c "$tmp/nsd/nsd.conf" 2>"$err" & ;;
  knot) "${spin[@]}" /usr/sbin/knotd -c "$tmp/knot/knot.conf" 2>"$err" & ;;
  eddy-fwd) "${spin[@]}" "$build/eddy" dns --listen "udp:$port:interface=127.0.0.1" \
    --forward "127.0.0.1:$up_port" 2>"$err" & ;;
  unbound) "${spin[@]}" /usr/sbin/unbound -d -c "$tmp/unbound/unbound.conf" 2>"$err" & ;;
  esac
  server_pid=$!
  if ! wait_answer "$port" "ns1.$origin"; then
    echo "dns: $1 did not start:" >&2
    cat "$err" "$tmp/nsd/nsd.log" >&2 2>/dev/null || true
    exit 1
  fi
}

# check SERVER: a few answers every server must give alike.
check() {
  local got want q
  while IFS='|' read -r q want; do
    # shellcheck disable=SC2086
    got=$(dig_at "$port" $q)
    if [ "$got" != "$want" ]; then
      echo "dns: $1 answers '$q' with '$got', not '$want'" >&2
      exit 1
    fi
  done <<EOF
h1.$origin A|NOERROR 10.0.0.1
h2.$origin AAAA|NOERROR 2001:db8::2
h1.$origin MX|NOERROR 10 mail.$origin.
h3.$origin TXT|NOERROR "bench host 3"
h1.$origin TXT|NOERROR
nx1.$origin A|NXDOMAIN
x.y.wild.$origin A|NOERROR 192.0.2.80
q.wild.$origin TXT|NOERROR "wildcard"
EOF
}

descendants() { # PID: its children, their children, ...
  local p
  for p in $(pgrep -P "$1" || true); do
    echo "$p"
    descendants "$p"
  done
}
# utime + stime of the server and its descendants: NSD's first process
# becomes its xfrd, whose child is the main process, whose child the server.
cpu_ticks() {
  local total=0 pid
  for pid in $server_pid $(descendants "$server_pid"); do
    # fields 14 and 15, counted after the name in parentheses, which may
    # hold spaces ("nsd: server 1")
    total=$((total + $(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}' || echo 0)))
  done
  echo "$total"
}

dnsperf_at() { # FILE [args...]
  local file=$1
  shift
  "${cpin[@]}" dnsperf -s 127.0.0.1 -p "$port" -d "$file" -c "$clients" -q "$outstanding" -t 2 "$@"
}

# measure PART SERVER FILE: prints "PART SERVER qps cpu_us_per_q busy% resp_bytes
# rcodes p50_ms p99_ms p999_ms hit%"
measure() {
  local part=$1 server=$2 file=$3 t0 t1 u0 u1 out lat hit=- label=$2
  wait_quiet
  start_server "$server"
  check "$server"
  if [ "$part" = fwd ]; then
    label=${server%-fwd}
    dnsperf_at "$file" -n 1 >/dev/null # fills the cache
  fi
  dnsperf_at "$file" -l 1 >/dev/null
  [ "$part" = fwd ] && u0=$(upstream_queries)
  t0=$(cpu_ticks)
  out=$(dnsperf_at "$file" -l "$secs")
  t1=$(cpu_ticks)
  [ "$part" = fwd ] && u1=$(upstream_queries)
  lat=$(dnsperf_at "$file" -l "$lat_secs" -Q "$lat_qps" -v |
    awk '$1 == ">" { print ($3 == "timeout" || $NF !~ /^[0-9.]+$/) ? "inf" : $NF }' | sort -g |
    awk '{ v[NR] = $1 } END {
      if (NR == 0) { print "- - -"; exit }
      split("0.5 0.99 0.999", p, " ")
      for (i = 1; i <= 3; i++) { k = int(p[i] * NR + 0.999999); if (k < 1) k = 1
        x = v[k]; printf "%s%s", (x == "inf" ? "inf" : sprintf("%.3f", x * 1000)), (i < 3 ? " " : "\n") } }')
  stop_server
  local lost completed
  completed=$(awk '/Queries completed:/ {print $3}' <<<"$out")
  lost=$(awk '/Queries lost:/ {print $3}' <<<"$out")
  # A lost query holds one of the $OUTSTANDING slots for dnsperf's 2 s
  # timeout: a few are noise, more make the run a measure of timeouts.
  if [ -z "$completed" ] || [ "$completed" -eq 0 ] || [ -z "$lost" ] ||
    [ $((lost * 1000)) -gt "$completed" ]; then
    echo "dns: $label $part: no answers, or more than 0.1% of queries lost:" >&2
    grep -v '^\[Timeout\]' <<<"$out" >&2
    exit 1
  fi
  [ "$lost" -eq 0 ] || echo "dns: $label $part: $lost queries lost" >&2
  [ "$part" = fwd ] && hit=$(awk -v u="$((u1 - u0))" -v c="$completed" 'BEGIN { printf "%.3f", 100 * (1 - u / c) }')
  awk -v part="$part" -v s="$label" -v hz="$(getconf CLK_TCK)" -v ticks="$((t1 - t0))" \
    -v lat="$lat" -v hit="$hit" '
    /Queries completed:/ { n = $3 }
    /Queries per second:/ { qps = $4 }
    /Run time \(s\):/ { t = $4 }
    /Average packet size:/ { resp = $NF }
    /Response codes:/ { sub(/.*Response codes: */, ""); gsub(/ [0-9]+ \(/, ":"); gsub(/\)/, ""); gsub(/, /, ","); rc = $0 }
    END { cpu = ticks / hz
          printf "%s %s %.0f %.3f %.0f %s %s %s %s\n", part, s, qps, cpu * 1e6 / n,
            (t > 0 ? 100 * cpu / t : 0), resp, rc, lat, hit }' <<<"$out"
}

results=$tmp/results; [ -z "${DNS_KEEP:-}" ] || results=$DNS_KEEP
: >"$results"
if [ ${#forwarders[@]} -gt 0 ]; then start_upstream; fi
# An eddy whose forwarder is still a stand-in says so and stops at once:
# then only the peers are measured as forwarders.
fwd_missing=
if [[ " ${forwarders[*]} " == *" eddy "* ]]; then
  "$build/eddy" dns --listen "udp:$port:interface=127.0.0.1" --forward "127.0.0.1:$up_port" \
    2>"$tmp/probe.stderr" &
  server_pid=$!
  if ! wait_answer "$port" "ns1.$origin" && grep -qi "not implemented" "$tmp/probe.stderr"; then
    fwd_missing=$(head -n 1 "$tmp/probe.stderr")
    echo "dns: $fwd_missing; measuring the peers only as forwarders"
    read -r -a forwarders <<<"$(drop_eddy "${forwarders[@]}")"
  fi
  stop_server
fi
for _ in $(seq 1 "$runs"); do
  for s in "${servers[@]}"; do
    measure auth "$s" "$tmp/queries" >>"$results"
  done
  for s in "${forwarders[@]}"; do
    f=$s
    [ "$s" = eddy ] && f=eddy-fwd
    measure fwd "$f" "$tmp/fwd-queries" >>"$results"
  done
done

awk -v runs="$runs" -v secs="$secs" -v lq="$lat_qps" '
  function lt(a, b) { return a == "inf" ? 0 : b == "inf" ? 1 : a + 0 < b + 0 }
  # differ(A, B): whether two splits of response codes ("NOERROR:85.33%,
  # NXDOMAIN:14.67%") disagree by more than half a point on a code; runs
  # stop at different places in the looped file, so they never agree exactly.
  function differ(a, b,   x, y, i, n, kv, pa, pb, c) {
    delete pa; delete pb
    n = split(a, x, ","); for (i = 1; i <= n; i++) { split(x[i], kv, ":"); pa[kv[1]] = kv[2] + 0 }
    n = split(b, y, ","); for (i = 1; i <= n; i++) { split(y[i], kv, ":"); pb[kv[1]] = kv[2] + 0 }
    for (c in pa) if (!(c in pb) ? pa[c] > 0.5 : (pa[c] - pb[c] > 0.5 || pb[c] - pa[c] > 0.5)) return 1
    for (c in pb) if (!(c in pa) && pb[c] > 0.5) return 1
    return 0
  }
  { k = $1 SUBSEP $2
    if (!(k in qps) || $3 > qps[k]) { qps[k] = $3; busy[k] = $5 }
    if (!(k in cpu) || $4 < cpu[k]) cpu[k] = $4
    resp[k] = $6
    if ((k in rc) && differ(rc[k], $7)) bad = bad "\n  " $2 " (" $1 "): " rc[k] " then " $7
    rc[k] = $7
    if (!(k in p50) || lt($8, p50[k])) p50[k] = $8
    if (!(k in p99) || lt($9, p99[k])) p99[k] = $9
    if (!(k in p999) || lt($10, p999[k])) p999[k] = $10
    if (!(k in hit) || $11 > hit[k]) hit[k] = $11
    if (!(($1, "order") in seen)) { seen[$1, "order"] = 1 }
    if (!(k in seen)) { seen[k] = 1; order[$1] = order[$1] " " $2 } }
  END {
    split("auth fwd", parts, " ")
    for (pi = 1; pi <= 2; pi++) {
      p = parts[pi]
      if (!(p in order)) continue
      print (p == "auth" ? "authoritative (zone mix: 70% existing, 15% NXDOMAIN, 15% wildcard)" \
                         : "forwarder, cache warm (the first lines of the mix, repeated)")
      printf "  %-8s %9s %8s %10s %6s %6s %7s %7s %7s %8s %10s %10s\n", "server", "qps", "CPU us/q",
        "q/CPU-s", "busy%", "resp B", "p50 ms", "p99 ms", "p99.9ms", "hit %", "eddy/x qps", "eddy/x q/CPU"
      n = split(order[p], ss, " ")
      for (j = 1; j <= n; j++) {
        s = ss[j]; k = p SUBSEP s; e = p SUBSEP "eddy"
        r1 = (e in qps) && qps[k] > 0 ? sprintf("%.3f", qps[e] / qps[k]) : "-"
        r2 = (e in cpu) && cpu[e] > 0 ? sprintf("%.3f", cpu[k] / cpu[e]) : "-"
        printf "  %-8s %9.0f %8.3f %10.0f %6d %6d %7s %7s %7s %8s %10s %10s\n", s, qps[k], cpu[k],
          (cpu[k] > 0 ? 1e6 / cpu[k] : 0), busy[k], resp[k], p50[k], p99[k], p999[k], hit[k], r1, r2
        if (!((p, "rc") in first)) first[p, "rc"] = rc[k]
        else if (differ(first[p, "rc"], rc[k])) bad = bad "\n  " s " (" p "): " rc[k] " vs " first[p, "rc"]
      }
      print "  response codes: " first[p, "rc"]
    }
    printf "(best of %d; qps from %d s of dnsperf; latency from a second pass at %d qps with dnsperf -v;\n", runs, secs, lq
    print " busy% is the server CPU over the run: well under 100 means dnsperf, not the server, was the limit;"
    print " eddy/x above 1 favours eddy in both ratio columns)"
    if (bad != "") { print "dns: response codes differ:" bad > "/dev/stderr"; exit 1 }
  }' "$results"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); measurements started on a busy machine: $busy_starts"
[ "$has_eddy" = 1 ] || echo "(eddy has no dns command yet: peers only)"
[ -z "$fwd_missing" ] || echo "(eddy's forwarder: $fwd_missing)"
