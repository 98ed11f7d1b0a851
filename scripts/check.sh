#!/usr/bin/env bash
# Every test of the project, as `make check` runs them:
#   1. gcc build (warnings are errors), all host tests, then the QEMU matrix
#   2. clang build (warnings are errors), all host tests
#   3. AddressSanitizer + UndefinedBehaviorSanitizer build, all host tests
#   4. ThreadSanitizer build (clang), the multi-threaded host tests (CTest label
#      `threads`; any data race report fails its test: TSan exits 66)
#   5. the library core compiled freestanding for x86-64 and for 32-bit (-m32), gcc and clang
#   6. the layering rules of src/ and kernel/ (scripts/check_layers.sh, and its self-test)
# Ends with one line "check: N passed, N failed, N skipped" counting the host test
# programs, the QEMU matrix's TAP results one by one, and the steps (skipped: a test that
# found its input or tool absent, e.g. the corpus, or a test the configuration cannot
# run). The build directories are $CHECK_BUILD (default build), $CHECK_BUILD-clang,
# $CHECK_BUILD-asan and $CHECK_BUILD-tsan.
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
bdir=${CHECK_BUILD:-build}
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

# The QEMU matrix runs here rather than as its CTest test (left out of run_ctest with
# -E qemu_matrix), so that each TAP result of each configuration counts: ok / not ok /
# "# SKIP" as passed / failed / skipped, from the matrix's closing line "N passed,
# N failed, N skipped" (its watchdog check counts there as one test). Through CTest it
# would count as one test, and its skips as none; counting both would count it twice.
run_matrix() { # builddir
  local log line status p f s
  log=$(mktemp)
  bash scripts/qemu-matrix.sh "$1" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -1)
  rm -f "$log"
  if [ "$status" = 77 ]; then # no qemu-system-x86_64
    skipped=$((skipped + 1))
    return
  fi
  if [ -z "$line" ]; then
    failed=$((failed + 1))
    failures+=("QEMU matrix produced no summary (exit status $status)")
    return
  fi
  read -r p f s <<<"$(echo "$line" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped$/\1 \2 \3/')"
  # A failed configuration always counts at least one failed test; this is a guard.
  [ "$status" != 0 ] && [ "$f" = 0 ] && f=1
  passed=$((passed + p))
  failed=$((failed + f))
  skipped=$((skipped + s))
  [ "$f" = 0 ] || failures+=("$f QEMU matrix test(s)")
}

build() { # dir, cmake args...
  local dir=$1
  shift
  cmake -S . -B "$dir" "$@" >/dev/null && cmake --build "$dir" -j "$jobs"
}

if step "gcc build" build "$bdir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc; then
  run_ctest "$bdir" -E '^qemu_matrix$'
  echo "== QEMU matrix"
  run_matrix "$bdir"
else
  failed=$((failed + 1))
fi

if step "clang build" build "$bdir-clang" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang; then
  run_ctest "$bdir-clang" -E qemu
else
  failed=$((failed + 1))
fi

if step "sanitizer build (ASan+UBSan)" build "$bdir-asan" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DDMAR_SANITIZE=ON; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_ctest "$bdir-asan" -E qemu
else
  failed=$((failed + 1))
fi

# Only the programs that start threads are built and run: the others gain nothing from
# ThreadSanitizer, and the step stays short (40 s to a minute on this 2-core machine).
tsan_build() { # dir
  cmake -S . -B "$1" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DDMAR_TSAN=ON \
    -DDMAR_KERNEL=OFF >/dev/null && cmake --build "$1" -j "$jobs" --target dmar_threads_tests
}
if step "ThreadSanitizer build" tsan_build "$bdir-tsan"; then
  run_ctest "$bdir-tsan" -L threads
else
  failed=$((failed + 1))
fi

for what in "" --self-test; do
  if step "layering of src/ and kernel/ ${what}" bash scripts/check_layers.sh $what; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
  fi
done

freestanding() { # compiler, -m32|-m64
  local cc=$1 arch=$2 ok=0
  for f in src/*/*.c; do
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
