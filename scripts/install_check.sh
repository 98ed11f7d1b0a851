#!/usr/bin/env bash
# Installation, proven: installs build dir $1 into a temporary prefix through DESTDIR,
# checks what landed there (headers, libdmar.a, libdmar.so with its soname, pkg-config
# and CMake packages, dmarctl and its man page), then builds examples/sim_fault against
# that prefix twice, through pkg-config and through find_package(dmar), and runs both.
# Last line: "N passed, N failed".
set -uo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { echo "ok - $1"; pass=$((pass + 1)); }
bad() { echo "not ok - $1"; fail=$((fail + 1)); }
check() { # name, command...
  local name=$1
  shift
  if "$@" >"$tmp/out" 2>&1; then ok "$name"; else bad "$name"; sed 's/^/    /' "$tmp/out"; fi
}

prefix=/opt/dmar-install-check
root=$tmp/stage$prefix
check "cmake --install with DESTDIR and --prefix" \
  env DESTDIR="$tmp/stage" cmake --install "$build" --prefix "$prefix"
libdir=$(dirname "$(find "$root" -name libdmar.a | head -1)")
version=$(sed -nE 's/^#define DMAR_VERSION_(MAJOR|MINOR|PATCH) ([0-9]+).*/\2/p' \
  "$src/include/dmar/version.h" | paste -sd.)
major=${version%%.*}

for f in include/dmar/dmar.h include/dmar/busdma.h include/dmar/os.h include/dmar/version.h \
  include/dmar/sim/model.h include/dmar/sim/posix_machine.h bin/dmarctl \
  share/man/man1/dmarctl.1; do
  check "installed $f" test -f "$root/$f"
done
for f in libdmar.a "libdmar.so.$version" libdmar_model.a libdmar_posix.a \
  pkgconfig/dmar.pc pkgconfig/dmar-sim.pc cmake/dmar/dmarConfig.cmake; do
  check "installed lib/$f" test -e "$libdir/$f"
done
check "libdmar.so.$version has soname libdmar.so.$major" \
  bash -c "readelf -d '$libdir/libdmar.so.$version' | grep -q 'SONAME.*\[libdmar.so.$major\]'"
check "libdmar.so and libdmar.so.$major link to it" \
  bash -c "[ \"\$(readlink -f '$libdir/libdmar.so')\" = \"\$(readlink -f '$libdir/libdmar.so.$version')\" ] && [ \"\$(readlink -f '$libdir/libdmar.so.$major')\" = \"\$(readlink -f '$libdir/libdmar.so.$version')\" ]"
check "installed dmarctl runs" bash -c "'$root/bin/dmarctl' fault-reason 6 | grep -q 'read request'"
check "man page formats" bash -c "man -l '$root/share/man/man1/dmarctl.1' 2>/dev/null | grep -q 'dmarctl explain' || groff -man -Tutf8 '$root/share/man/man1/dmarctl.1' | grep -q 'dmarctl explain'"

export PKG_CONFIG_PATH="$libdir/pkgconfig"
check "pkg-config --modversion dmar is $version" \
  bash -c "[ \"\$(pkg-config --modversion dmar)\" = '$version' ]"
check "pkg-config --cflags dmar points into the prefix" \
  bash -c "[ \"\$(readlink -f \"\$(pkg-config --cflags-only-I dmar | sed 's/^ *-I//; s/ *$//')\")\" = '$root/include' ]"
cc=${CC:-cc}
check "example built through pkg-config (dmar-sim)" \
  bash -c "$cc -std=c11 -Wall -Wextra -Werror \$(pkg-config --cflags dmar-sim) \
    '$src/examples/sim_fault/main.c' -o '$tmp/sim_fault_pc' \$(pkg-config --static --libs dmar-sim)"
check "example (pkg-config) loads the installed libdmar.so.$major" \
  bash -c "LD_LIBRARY_PATH='$libdir' ldd '$tmp/sim_fault_pc' | grep -q '$libdir/libdmar.so.$major'"
check "example (pkg-config) runs" \
  bash -c "LD_LIBRARY_PATH='$libdir' '$tmp/sim_fault_pc' | tee /dev/stderr | grep -q '^sim_fault: ok$'"

check "example configured through find_package(dmar)" \
  cmake -S "$src/examples/sim_fault" -B "$tmp/cmake-build" -DCMAKE_PREFIX_PATH="$root" \
  -DCMAKE_C_COMPILER="$cc"
check "example built through CMake (dmar::posix)" cmake --build "$tmp/cmake-build"
check "example (CMake) runs" \
  bash -c "'$tmp/cmake-build/sim_fault' | tee /dev/stderr | grep -q 'wild DMA refused: .*0x7000000'"
check "example (CMake) links the static library, not the build tree" \
  bash -c "! grep -rq '$build' '$tmp/cmake-build/CMakeFiles/sim_fault.dir/link.txt'"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
