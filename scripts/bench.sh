#!/usr/bin/env bash
# Runs every benchmark program of a build directory; each prints its own table.
set -euo pipefail
build=${1:-build-bench}
status=0
for b in "$build"/bench/bench_*; do
  [ -x "$b" ] || continue
  echo "== $(basename "$b")"
  "$b" || status=1
  echo
done
exit $status
