#!/usr/bin/env bash
# bench/run.sh: runs every benchmark (bench/*/run.sh), in name order, and
# fails if any of them fails (after running the rest, so one broken
# benchmark does not hide the others' numbers). `make bench` calls this.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
failed=()
for script in "$here"/*/run.sh; do
  [ -f "$script" ] || continue
  name=$(basename "$(dirname "$script")")
  echo "== bench/$name"
  if ! bash "$script"; then
    echo "== bench/$name FAILED" >&2
    failed+=("$name")
  fi
  echo
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "bench: failed: ${failed[*]}" >&2
  exit 1
fi
