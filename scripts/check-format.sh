#!/usr/bin/env bash
# Checks that every C file under src/, include/ and tests/ is formatted as
# .clang-format says (clang-format 14). Lists the files that are not, with
# how many lines clang-format would change in each, and exits 1; exits 0
# when all are formatted. Fix a file with: clang-format -i FILE
#
#   scripts/check-format.sh            every file
#   scripts/check-format.sh FILE...    only these
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

fmt=${CLANG_FORMAT:-clang-format}
if ! command -v "$fmt" >/dev/null; then
  echo "check-format: $fmt not found (scripts/deps.sh installs clang-format)"
  exit 2
fi

if [ $# -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(find src include tests -type f \( -name '*.c' -o -name '*.h' \) | sort)
fi

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
bad=0
lines=0
for f in "${files[@]}"; do
  if ! "$fmt" --style=file "$f" >"$tmp" 2>&1; then
    echo "$f: clang-format failed: $(head -3 "$tmp")"
    bad=$((bad + 1))
    continue
  fi
  n=$(diff -U0 "$f" "$tmp" | tail -n +3 | grep -c '^-')
  if [ "$n" -gt 0 ]; then
    printf '%s: %d line(s) to reformat\n' "$f" "$n"
    bad=$((bad + 1))
    lines=$((lines + n))
  fi
done

if [ "$bad" -gt 0 ]; then
  echo "check-format: $bad of ${#files[@]} file(s) not formatted ($lines line(s)); run clang-format -i on them"
  exit 1
fi
echo "check-format: ${#files[@]} file(s) formatted"
