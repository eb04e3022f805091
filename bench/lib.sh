# bench/lib.sh: helpers the benchmark scripts share (sourced, not run).

# A port for the servers under test, below the kernel's ephemeral range:
# one inside it may be held at any moment by a client connection's local
# end, and then a server cannot bind it. $1 varies the choice between
# benchmarks; BENCH_PORT overrides it.
bench_port() {
  local lo span
  lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  span=$((lo > 12000 ? lo - 10000 : 2000))
  echo "${BENCH_PORT:-$((10000 + ($$ + ${1:-0}) % span))}"
}

# Waits (at most 2 s) for the machine's CPUs to be less than 10% busy over
# half a second, so that a measurement does not start in the middle of
# someone else's burst; counts the measurements that started busy anyway.
busy_starts=0
cpu_busy() { # prints "busy total" jiffies of all CPUs
  local _c u n s i w q sq st _r
  read -r _c u n s i w q sq st _r </proc/stat
  echo "$((u + n + s + q + sq + st)) $((u + n + s + q + sq + st + i + w))"
}
wait_quiet() {
  local a b ta tb
  for _ in 1 2 3 4; do
    read -r a ta < <(cpu_busy)
    sleep 0.5
    read -r b tb < <(cpu_busy)
    [ $(((b - a) * 100)) -lt $((10 * (tb - ta + 1))) ] && return 0
  done
  busy_starts=$((busy_starts + 1))
}
