#!/usr/bin/env bash
# Installs the Debian packages that eddy's build, tests and benchmarks need,
# and only those that are missing. Runs apt-get update only when something
# must be installed. Safe to run again and again.
set -euo pipefail

packages=(
  build-essential pkg-config meson ninja-build   # build
  libcriterion-dev gcovr                         # tests, coverage
  clang libclang-rt-14-dev clang-format          # fuzzing (libFuzzer), format
  scdoc                                          # the man page
  libuv1-dev                                     # benchmark peer
  libssl-dev openssl ca-certificates curl        # TLS, real TLS peers
  python3 procps util-linux                      # test scripts, taskset
  socat netcat-openbsd                           # real peers in tests
  slowhttptest                                   # slowloris against eddy web
  libjansson-dev chromium python3-websockets     # eddy chat: JSON, its page's test
  zlib1g-dev python3-websockets                  # permessage-deflate, a real WebSocket peer
  python3-tornado                                # bench/comet peer
  libldns-dev                                    # DNS zone files
  bind9-dnsutils knot-dnsutils                   # dig and kdig against eddy dns
  ircd-hybrid ii                                 # eddy irc's peer server and a real client
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done

[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"

# ircd-hybrid's package starts a server on ports 6665-6669 where a service
# manager runs one; the tests start their own on free ports, so the
# machine is left without it.
if [[ " ${missing[*]} " == *" ircd-hybrid "* ]] && command -v systemctl >/dev/null 2>&1; then
  $sudo systemctl disable --now ircd-hybrid >/dev/null 2>&1 || true
fi
