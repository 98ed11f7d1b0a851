#!/usr/bin/env bash
# Storage throughput through the IOMMU: boots the test kernel once under QEMU with the
# four storage controllers of scripts/qemu-matrix.sh (AHCI, bus-master IDE, NVMe,
# MegaRAID), each with a fresh 128 MiB disk image, runs kernel.tests=storage_bench
# (kernel/tests/bench_storage.c: untranslated, translated, deferred, premapped and bounce
# modes alternated over rounds within the boot) and prints Markdown tables of medians,
# spreads and ratios.
#
#   scripts/bench-qemu.sh BUILD_DIR
#
# BENCH_ROUNDS (7) and BENCH_MS (300, per measurement) set the length: 80 measurements
# a round, about three minutes in all with the defaults. Exit status 1 when the kernel run fails or a
# controller, mode or workload is missing from its output; 77 without QEMU.
set -uo pipefail

build=${1:?usage: bench-qemu.sh BUILD_DIR}
kernel="$build/dmar-kernel.elf"
qemu=${QEMU:-qemu-system-x86_64}
rounds=${BENCH_ROUNDS:-7}
ms=${BENCH_MS:-300}
timeout_s=${QEMU_TIMEOUT:-$((150 + rounds * ms / 6))}

if ! command -v "$qemu" >/dev/null 2>&1; then
  echo "bench-qemu: $qemu not found; skipping"
  exit 77
fi
if [ ! -f "$kernel" ]; then
  echo "bench-qemu: $kernel not found (build the kernel first)"
  exit 1
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/bench-qemu.XXXXXX")
trap 'rm -rf "$dir"' EXIT

# Fully allocated images (not sparse), so reads move data the host has.
for img in ahci ata nvme megasas; do
  dd if=/dev/zero of="$dir/$img.img" bs=1M count=128 status=none || exit 1
done
disk() { echo "-drive if=none,id=$1,file=$dir/$1.img,format=raw"; }
# The controllers at the addresses qemu-matrix.sh gives them.
storage="$(disk ahci) -device ide-hd,drive=ahci,bus=ide.0 \
-device piix3-ide,id=pi,addr=0x5 $(disk ata) -device ide-hd,drive=ata,bus=pi.0 \
$(disk nvme) -device nvme,drive=nvme,serial=dmar0,addr=0x4 \
-device megasas,id=ms,addr=0x7 $(disk megasas) -device scsi-hd,drive=megasas,bus=ms.0,scsi-id=0,lun=0"

log="$dir/bench.log"
start=$(date +%s)
# -m 6G: RAM above 4 GiB for the bounce mode's buffers.
# shellcheck disable=SC2086
timeout --kill-after=5 "$timeout_s" "$qemu" -M q35 -m 6G -display none \
  -serial "file:$log" -monitor none -no-reboot -nic none \
  -device isa-debug-exit,iobase=0xf4,iosize=4 -device intel-iommu $storage \
  -kernel "$kernel" \
  -append "kernel.tests=storage_bench kernel.bench_rounds=$rounds kernel.bench_ms=$ms" \
  </dev/null >"$dir/qemu.out" 2>&1
status=$?
elapsed=$(($(date +%s) - start))

if [ $status -ne 1 ] || ! grep -qE '^ok 1 - storage_bench$' "$log"; then
  echo "bench-qemu: the kernel run failed (QEMU exit status $status after ${elapsed}s):"
  grep -vE '^# (mem|pci|bench:) ' "$log" | tail -n 30 | sed 's/^/    /'
  sed 's/^/    qemu: /' "$dir/qemu.out" | head -n 20
  exit 1
fi

python3 - "$log" "$rounds" "$elapsed" "$("$qemu" --version | head -n1)" <<'EOF'
import re
import statistics
import sys

log, rounds, elapsed, qemu_version = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctls = [("ahci", "AHCI (ich9-ahci)"), ("ata", "bus-master IDE (piix3-ide)"),
        ("megasas", "MegaRAID (megasas)"), ("nvme", "NVMe (nvme)")]
modes = ["untranslated", "translated", "deferred", "premapped", "bounce"]
works = [("seqread", "seq read"), ("seqwrite", "seq write"),
         ("randread", "rand read 4 KiB"), ("randwrite", "rand write 4 KiB")]

cells = {}  # (ctl, mode, work) -> {round: fields}
for line in open(log, errors="replace"):
    if not line.startswith("# bench: ctl=") or " mode=" not in line:
        continue
    f = dict(kv.split("=", 1) for kv in line[len("# bench: "):].split())
    key = (f["ctl"], f["mode"], f["work"])
    cells.setdefault(key, {})[int(f["round"])] = {
        "xfer": int(f["xfer"]), "ios": int(f["ios"]), "bytes": int(f["bytes"]),
        "ns": int(f["ns"]), "drv": int(f["drv_ns_per_io"])}

missing = [f"{c}/{m}/{w}" for c, _ in ctls for m in modes for w, _ in works
           if len(cells.get((c, m, w), {})) < rounds]
if missing:
    print("bench-qemu: measurements missing for " + ", ".join(missing))
    sys.exit(1)

def mibps(r): return r["bytes"] / r["ns"] * 1e9 / 2**20
def iops(r): return r["ios"] / r["ns"] * 1e9
def us_per_io(r): return r["ns"] / r["ios"] / 1000
def med(xs): return statistics.median(xs)

def fmt(x):
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}"

def spread(xs):
    return f"{fmt(med(xs))} ({fmt(min(xs))}-{fmt(max(xs))})"

def work_label(c, w, label):
    xfer = next(iter(cells[(c, "untranslated", w)].values()))["xfer"]
    if w.startswith("seq"):
        label += f" {xfer // 1024} KiB"
        if xfer < 128 * 1024:
            label += " (the controller's largest)"
    return label

print(f"{rounds} rounds x {len(modes)} modes within one boot, {qemu_version}, TCG; medians "
      "(min-max over the rounds). Ratios: each round's figure over the same round's "
      "untranslated one, median (min-max).")
print()
print("Modes: untranslated = pass-through context, busdma hands out physical "
      "addresses (what hw.dmar.enable=0 gives); translated = own domain, strict "
      "(every unload waits for its IOTLB invalidation); deferred = the same with "
      "hw.dmar.strict=0 (unloads batched, one invalidation per 256 or per IOVA "
      "shortage); premapped = translated and strict, but the data buffer loaded once "
      "per workload and kept (no load or unload per I/O: what is left over "
      "untranslated is the emulated unit translating the device's accesses, not the "
      "driver); bounce = the device bounced: "
      "data buffers above 4 GiB (-m 6G) and a tag stating a 32-bit device (lowaddr "
      "0xffffffff), so every transfer is copied through bounce pages.")
print()
print("| controller | workload | untranslated MiB/s | IOPS | translated MiB/s | IOPS "
      "| translated / untranslated | deferred MiB/s | IOPS | deferred / untranslated "
      "| premapped MiB/s | IOPS | premapped / untranslated "
      "| bounce MiB/s | IOPS | bounce / untranslated |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for c, cname in ctls:
    for w, wl in works:
        row = [cname, work_label(c, w, wl)]
        base = cells[(c, "untranslated", w)]
        for m in modes:
            rs = cells[(c, m, w)]
            row.append(spread([mibps(r) for r in rs.values()]))
            row.append(fmt(med([iops(r) for r in rs.values()])))
            if m != "untranslated":
                ratios = [mibps(rs[k]) / mibps(base[k]) for k in rs if k in base]
                row.append(f"{med(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")
        print("| " + " | ".join(row) + " |")
print()
print("Time per I/O, median microseconds: the whole I/O / of which busdma "
      "(dmar_dmamap_load + syncs + dmar_dmamap_unload of the data buffer; the "
      "drivers' own per-command loads, the MegaRAID frame and the NVMe PRP list, "
      "count only in the whole).")
print()
print("| controller | workload | untranslated | translated | deferred | premapped | bounce |")
print("|---|---|---|---|---|---|---|")
for c, cname in ctls:
    for w, wl in works:
        row = [cname, work_label(c, w, wl)]
        for m in modes:
            rs = cells[(c, m, w)].values()
            row.append(f"{fmt(med([us_per_io(r) for r in rs]))} / "
                       f"{fmt(med([r['drv'] / 1000 for r in rs]))}")
        print("| " + " | ".join(row) + " |")
print()
print(f"bench-qemu: {elapsed} s")
EOF
