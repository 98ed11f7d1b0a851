#!/usr/bin/env bash
# The layering of src/ and kernel/ (docs/ARCHITECTURE.md), checked on the #include lines:
#   src/lib    includes no other layer
#   src/acpi   may include src/lib
#   src/vtd    may include src/lib (the ACPI table only through the public dmar/acpi.h)
#   src/dma    may include src/lib; it reaches the IOMMU only through include/dmar/dmar.h
#   kernel/arch     includes nothing of kernel/drivers or kernel/tests
#   kernel/drivers  includes nothing of kernel/tests
# Library files include another layer's header by folder ("lib/util.h"); a bare name
# only finds a header of their own folder, so these greps see every crossing.
#
#   scripts/check_layers.sh [ROOT]     exit 0 when the rules hold, 1 with the lines that
#                                      break them
#   scripts/check_layers.sh --self-test  proves the check fails on a tree that breaks a rule
set -uo pipefail

check() { # root
  local root=$1 bad=0 hits
  rule() { # folder, forbidden include pattern, what
    [ -d "$root/$1" ] || return 0
    hits=$(grep -nE "^[[:space:]]*#[[:space:]]*include[[:space:]]+\"($2)" -r "$root/$1" \
      --include='*.c' --include='*.h' --include='*.S' || true)
    if [ -n "$hits" ]; then
      printf 'layering: %s must not include %s:\n%s\n' "$1" "$3" "$hits"
      bad=1
    fi
  }
  rule src/lib 'acpi/|vtd/|dma/' 'another layer'
  rule src/acpi 'vtd/|dma/' 'src/vtd or src/dma'
  rule src/vtd 'dma/|acpi/' 'src/dma or src/acpi (use dmar/acpi.h)'
  rule src/dma 'vtd/|acpi/|dmar_internal\.h|regs\.h|pgtable\.h' 'src/vtd (use dmar/dmar.h)'
  rule kernel/arch 'drivers/|tests/|pci\.h|edu\.h|ktest\.h|tests\.h|fixture\.h|demo\.h' \
    'kernel/drivers or kernel/tests'
  rule kernel/drivers 'tests/|ktest\.h|tests\.h|fixture\.h|demo\.h' 'kernel/tests'
  return $bad
}

if [ "${1:-}" = "--self-test" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/src/dma" "$tmp/src/lib"
  printf '#include "lib/util.h"\n' >"$tmp/src/dma/ok.c"
  if ! check "$tmp" >/dev/null; then
    echo "check_layers self-test: a clean tree was refused"
    exit 1
  fi
  printf '#include "vtd/dmar_internal.h"\n' >"$tmp/src/dma/bad.c"
  if check "$tmp" >/dev/null; then
    echo "check_layers self-test: src/dma including src/vtd was not caught"
    exit 1
  fi
  echo "check_layers self-test: a crossing is caught, a clean tree passes"
  exit 0
fi

root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
check "$root" && echo "layering: every include of src/ and kernel/ follows the rules"
