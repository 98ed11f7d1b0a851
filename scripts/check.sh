#!/usr/bin/env bash
# Every test of the project, as `make check` runs them:
#   1. gcc build (warnings are errors), all CTest tests incl. the QEMU matrix
#   2. clang build (warnings are errors), all host tests
#   3. AddressSanitizer + UndefinedBehaviorSanitizer build, all host tests
#   4. the library core compiled freestanding for x86-64 and for 32-bit (-m32), gcc and clang
# Ends with one line "check: N passed, N failed, N skipped" counting the test programs
# and steps (skipped: a test that found its input or tool absent, e.g. the corpus).
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
passed=0
failed=0
skipped=0
failures=()

step() { # name, command...
  local name=$1
  shift
  echo "== $name"
  if "$@"; then
    return 0
  fi
  failures+=("$name")
  return 1
}

# Runs ctest in a build dir and adds its counts to the totals.
run_ctest() { # builddir, extra ctest args...
  local dir=$1
  shift
  local log line nfail total nskip
  log=$(mktemp)
  (cd "$dir" && ctest --output-on-failure -j "$jobs" "$@") 2>&1 | tee "$log"
  line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1)
  # CTest counts a skipped test (exit 77) among the passed ones; count it apart.
  nskip=$(grep -cE '^[[:space:]]*[0-9]+ - .*\(Skipped\)' "$log")
  rm -f "$log"
  if [ -z "$line" ]; then
    failed=$((failed + 1))
    failures+=("ctest in $dir produced no summary")
    return
  fi
  nfail=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/')
  total=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\2/')
  passed=$((passed + total - nfail - nskip))
  skipped=$((skipped + nskip))
  failed=$((failed + nfail))
  [ "$nfail" = 0 ] || failures+=("$nfail CTest test(s) in $dir")
}

build() { # dir, cmake args...
  local dir=$1
  shift
  cmake -S . -B "$dir" "$@" >/dev/null && cmake --build "$dir" -j "$jobs"
}

if step "gcc build" build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc; then
  run_ctest build
else
  failed=$((failed + 1))
fi

if step "clang build" build build-clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang; then
  run_ctest build-clang -E qemu
else
  failed=$((failed + 1))
fi

if step "sanitizer build (ASan+UBSan)" build build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DDMAR_SANITIZE=ON; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_ctest build-asan -E qemu
else
  failed=$((failed + 1))
fi

freestanding() { # compiler, -m32|-m64
  local cc=$1 arch=$2 ok=0
  for f in src/*.c; do
    "$cc" -std=c11 -Wall -Wextra -Werror -ffreestanding -nostdlib -fno-builtin "$arch" -O2 \
      -Iinclude -Isrc -c "$f" -o /dev/null || ok=1
  done
  return $ok
}
for cc in gcc clang; do
  for arch in -m64 -m32; do
    if step "library core freestanding $cc $arch" freestanding "$cc" "$arch"; then
      passed=$((passed + 1))
    else
      failed=$((failed + 1))
    fi
  done
done

echo
if [ ${#failures[@]} -gt 0 ]; then
  printf 'failed: %s\n' "${failures[@]}"
fi
echo "check: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
