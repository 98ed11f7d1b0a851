#!/usr/bin/env bash
# `make demo`: boots the test kernel under QEMU's intel-iommu with two edu devices and
# runs its plain-words demonstration (kernel.demo=1); the second edu is named by the
# bounce tunable. Exits 0 when every step of the demonstration did what it says: QEMU's
# exit status says the kernel checked each step, and the lines below must be there.
set -uo pipefail
build=${1:-build}
kernel="$build/dmar-kernel.elf"
if [ ! -f "$kernel" ]; then
  echo "demo: $kernel not found (make build first)" >&2
  exit 1
fi
out=$(mktemp "${TMPDIR:-/tmp}/dmar-demo.XXXXXX")
trap 'rm -f "$out"' EXIT
# (QEMU's intel-iommu has interrupt remapping by default under TCG: step 6 uses it.)
timeout 60 qemu-system-x86_64 -M q35 -m 512M -display none -serial stdio -no-reboot -net none \
  -device isa-debug-exit,iobase=0xf4,iosize=4 -device intel-iommu \
  -device edu -device edu -kernel "$kernel" \
  -append 'kernel.demo=1 hw.busdma.pci0:0:3:0.bounce=1' 2>/dev/null |
  sed -n '/^=== dmar/,$p' | tee "$out"
status=${PIPESTATUS[0]}
# isa-debug-exit: the kernel writes 0 on success, which QEMU turns into exit status 1.
if [ "$status" -ne 1 ]; then
  echo "demo: QEMU exited with status $status (the demonstration failed)" >&2
  exit 1
fi
# The steps a reader is promised: the wild DMA blocked, the forged interrupt refused
# (naming the entry and the device it admits), the bounced device, the closing line.
for want in '^   The unit blocked it: the memory at physical 0x[0-9a-f]* is unchanged\.$' \
            '^   forged interrupt naming entry [0-9]*, which admits only [0-9a-f:.]* (source id 0x[0-9a-f]*)\.$' \
            '^   The unit refused it: vector 0x[0-9a-f]* never came within [0-9]* ms' \
            'busdma gives its driver bounce buffers' \
            '^Demo complete:'; do
  if ! grep -q -- "$want" "$out"; then
    echo "demo: the output lacks a line matching: $want" >&2
    exit 1
  fi
done
