#!/usr/bin/env bash
# `make demo`: boots the test kernel under QEMU's intel-iommu with two edu devices and
# runs its plain-words demonstration (kernel.demo=1); the second edu is named by the
# bounce tunable. Exits 0 when every step of the demonstration did what it says.
set -uo pipefail
build=${1:-build}
kernel="$build/dmar-kernel.elf"
if [ ! -f "$kernel" ]; then
  echo "demo: $kernel not found (make build first)" >&2
  exit 1
fi
timeout 60 qemu-system-x86_64 -M q35 -m 512M -display none -serial stdio -no-reboot -net none \
  -device isa-debug-exit,iobase=0xf4,iosize=4 -device intel-iommu \
  -device edu -device edu -kernel "$kernel" \
  -append 'kernel.demo=1 hw.busdma.pci0:0:3:0.bounce=1' 2>/dev/null |
  sed -n '/^=== dmar/,$p'
status=${PIPESTATUS[0]}
# isa-debug-exit: the kernel writes 0 on success, which QEMU turns into exit status 1.
if [ "$status" -ne 1 ]; then
  echo "demo: QEMU exited with status $status (the demonstration failed)" >&2
  exit 1
fi
