#!/usr/bin/env bash
# meson install, as a packager runs it: a fresh release build with a prefix,
# installed into a DESTDIR. Checks that the library (shared and static), the
# headers, eddy.pc, the program and its man page are there, then compiles
# tests/install/hello.c outside the tree with `pkg-config --cflags --libs
# eddy` against the installed files, once shared and once --static, and runs
# both. PKG_CONFIG_SYSROOT_DIR makes the .pc's paths point into DESTDIR.
#
# Usage: tests/install/test_install.sh. Prints one line per case and ends
# with "passed=P failed=F".
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
prefix=/opt/eddy
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest
passed=0
failed=0

ok() { echo "ok     $1"; passed=$((passed + 1)); }
bad() { echo "FAILED $1${2:+: $2}"; failed=$((failed + 1)); }
finish() { echo "passed=$passed failed=$failed"; exit $((failed > 0)); }

# ---- Build and install ----

if ! meson setup "$tmp/build" "$src" --prefix=$prefix --buildtype=release \
  -Dtests=false >"$tmp/setup.log" 2>&1; then
  cat "$tmp/setup.log"; bad "meson setup with --prefix=$prefix"; finish
fi
if ! ninja -C "$tmp/build" >"$tmp/ninja.log" 2>&1; then
  tail -40 "$tmp/ninja.log"; bad "release build"; finish
fi
if DESTDIR=$dest meson install -C "$tmp/build" --no-rebuild \
  >"$tmp/install.log" 2>&1; then
  ok "meson install into a DESTDIR"
else
  cat "$tmp/install.log"; bad "meson install into a DESTDIR"; finish
fi

root=$dest$prefix
pc=$(find "$root" -name eddy.pc | head -1)
libdir=$(dirname "$(dirname "$pc")")

# ---- What is installed ----

if [ -n "$pc" ] && [ -f "$libdir/libeddy.a" ] &&
  [ -L "$libdir/libeddy.so" ] && ls "$libdir"/libeddy.so.* >/dev/null 2>&1; then
  ok "libeddy.so (with its links), libeddy.a and eddy.pc in ${libdir#"$dest"}"
else
  bad "the libraries and eddy.pc" "$(cd "$dest" && find . -type f -o -type l)"
  finish
fi

missing=""
for h in "$src"/include/eddy.h "$src"/include/eddy/*.h; do
  rel=${h#"$src/include/"}
  [ -f "$root/include/$rel" ] || missing="$missing $rel"
done
if [ -z "$missing" ]; then
  ok "every public header (include/eddy.h, include/eddy/*.h)"
else
  bad "headers not installed (add them to eddy_headers in meson.build)" "$missing"
fi

version=$(sed -nE "s/^ *version *: *'([^']+)'.*/\1/p" "$src/meson.build" | head -1)
out=$("$root/bin/eddy" --version 2>&1)
if [ "$out" = "eddy $version" ]; then
  ok "the installed eddy --version prints 'eddy $version'"
else
  bad "the installed eddy --version" "got '$out', want 'eddy $version'"
fi

if ! command -v scdoc >/dev/null; then
  ok "man page skipped: no scdoc (scripts/deps.sh installs it)"
elif grep -q '^\.TH "eddy" "1"' "$root/share/man/man1/eddy.1" 2>/dev/null; then
  ok "the man page eddy(1) in share/man/man1"
else
  bad "the man page eddy(1) in share/man/man1"
fi

# ---- eddy.pc ----

export PKG_CONFIG_PATH=$libdir/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$dest
shared_flags=$(pkg-config --cflags --libs eddy 2>&1)
static_flags=$(pkg-config --static --cflags --libs eddy 2>&1)
if [[ " $shared_flags " == *" -I$root/include "* &&
  " $shared_flags " == *" -L$libdir "* && " $shared_flags " == *" -leddy "* ]]; then
  ok "pkg-config --cflags --libs eddy: $shared_flags"
else
  bad "pkg-config --cflags --libs eddy" "$shared_flags"
fi
if [[ " $static_flags " == *" -lssl "* && " $static_flags " == *" -lcrypto "* &&
  " $static_flags " == *" -pthread "* ]]; then
  ok "pkg-config --static adds OpenSSL and pthreads"
else
  bad "pkg-config --static --cflags --libs eddy" "$static_flags"
fi

# ---- A program built against it ----

expect_output() { # name, binary, [env...]
  local name=$1 exe=$2 out rc
  shift 2
  out=$(env "$@" timeout 10 "$exe" 2>&1)
  rc=$?
  if [ $rc -eq 0 ] && grep -qx "eddy $version" <<<"$out" &&
    grep -qx "timer fired" <<<"$out" && grep -qx "stream got: hello" <<<"$out" &&
    grep -qx "strerror: Connection refused" <<<"$out"; then
    ok "$name runs: loop, timer, streams, eddy_strerror"
  else
    bad "$name runs" "exit $rc, output: $out"
  fi
}

cc=${CC:-cc}
# shellcheck disable=SC2086 # the flags are words
if $cc -Wall -Wextra -Werror -std=c11 "$here/hello.c" -o "$tmp/hello-shared" \
  $shared_flags 2>"$tmp/cc.log"; then
  if readelf -d "$tmp/hello-shared" | grep -q 'NEEDED.*libeddy\.so'; then
    ok "hello.c compiles and links against libeddy.so"
  else
    bad "hello-shared does not need libeddy.so"
  fi
  expect_output "hello (shared)" "$tmp/hello-shared" LD_LIBRARY_PATH="$libdir"
else
  bad "hello.c against libeddy.so" "$(cat "$tmp/cc.log")"
fi

# With both libraries in one directory, -leddy picks the shared one: ask
# for the archive, and let the rest of --static's flags (OpenSSL, pthread)
# resolve as they would for anyone linking it.
static_libs=""
for w in $static_flags; do
  if [ "$w" = "-leddy" ]; then
    static_libs="$static_libs -Wl,-Bstatic -leddy -Wl,-Bdynamic"
  else
    static_libs="$static_libs $w"
  fi
done
# shellcheck disable=SC2086
if $cc -Wall -Wextra -Werror -std=c11 "$here/hello.c" -o "$tmp/hello-static" \
  $static_libs 2>"$tmp/cc.log"; then
  if readelf -d "$tmp/hello-static" | grep -q 'NEEDED.*libeddy'; then
    bad "hello-static still needs libeddy.so"
  else
    ok "hello.c links libeddy.a with pkg-config --static's flags alone"
  fi
  expect_output "hello (static, no LD_LIBRARY_PATH)" "$tmp/hello-static"
else
  bad "hello.c against libeddy.a with --static's flags" "$(cat "$tmp/cc.log")"
fi

finish
