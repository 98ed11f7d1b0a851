#!/usr/bin/env bash
# Runs the bare-metal test kernel under QEMU's VT-d model in several configurations and
# summarises the TAP output.
#
#   scripts/qemu-matrix.sh BUILD_DIR [CONFIG_NAME...]
#
# BUILD_DIR holds dmar-kernel.elf. With names, only those configurations run ("watchdog"
# is the check that a hanging test is ended by the kernel's watchdog). Each run is
# wrapped in `timeout`; a configuration passes when QEMU exits with status 1 (the kernel
# wrote 0 to isa-debug-exit), every planned test printed "ok", and every test the
# configuration requires (required_tests: decided from QEMU's options and the command
# line, never from what the driver reports) printed "ok" without "# SKIP". Ends with the
# line "N passed, N failed, N skipped" (TAP results over all configurations; a required
# test that was skipped or never ran counts as failed) and exit status 1 on any failure;
# 77 when qemu-system-x86_64 is not installed.
set -uo pipefail

build=${1:?usage: qemu-matrix.sh BUILD_DIR [CONFIG...]}
shift
kernel="$build/dmar-kernel.elf"
qemu=${QEMU:-qemu-system-x86_64}
per_run_timeout=${QEMU_TIMEOUT:-120}

if ! command -v "$qemu" >/dev/null 2>&1; then
  echo "qemu-matrix: $qemu not found; skipping"
  exit 77
fi
if [ ! -f "$kernel" ]; then
  echo "qemu-matrix: $kernel not found (build the kernel first)"
  exit 1
fi

# edu's default dma_mask is 28 bits: it silently clamps bus addresses above 256 MiB,
# translated or not, which would hide IOVAs such as a 1 GiB superpage's. Most
# configurations lift it; edu_28bit_mask keeps it and checks that busdma's lowaddr keeps
# the device's addresses below 256 MiB while its buffers sit above. The second edu
# (00:03.0) is named by the bounce tunable where busdma_bounce_tunable should run.
edu="edu,dma_mask=0xffffffffffffffff"
two_edu="-device $edu -device $edu"

# The four storage controllers at fixed addresses (their bounce tunables name them):
# AHCI built into q35 at 00:1f.2, piix3-ide 00:05.0, NVMe 00:04.0, MegaRAID 00:07.0.
disk() { echo "-drive if=none,id=$1,file=@$1@,format=raw"; }
storage="$(disk ahci) -device ide-hd,drive=ahci,bus=ide.0 \
-device piix3-ide,id=pi,addr=0x5 $(disk ata) -device ide-hd,drive=ata,bus=pi.0 \
$(disk nvme) -device nvme,drive=nvme,serial=dmar0,addr=0x4 \
-device megasas,id=ms,addr=0x7 $(disk megasas) -device scsi-hd,drive=megasas,bus=ms.0,scsi-id=0,lun=0"
# The same with the MegaRAID behind a conventional PCI bridge and bus-master IDE behind a
# PCIe-to-PCI bridge (their DMA reaches the unit with the bridges' aliases).
storage_bridged="$(disk ahci) -device ide-hd,drive=ahci,bus=ide.0 \
-device pcie-pci-bridge,id=pb1,bus=pcie.0,addr=0x3 -device piix3-ide,id=pi,bus=pb1,addr=0x5 \
$(disk ata) -device ide-hd,drive=ata,bus=pi.0 \
$(disk nvme) -device nvme,drive=nvme,serial=dmar0,addr=0x4 \
-device pci-bridge,id=br1,chassis_nr=1,bus=pcie.0,addr=0x6 -device megasas,id=ms,bus=br1,addr=0x7 \
$(disk megasas) -device scsi-hd,drive=megasas,bus=ms.0,scsi-id=0,lun=0"
storage_tests="kernel.tests=acpi_dmar_parsed,ahci_rw_verify,ahci_stale_iova_faults,ata_rw_verify,ata_stale_iova_faults,nvme_rw_verify,nvme_stale_iova_faults,megasas_rw_verify,megasas_stale_iova_faults,smp_cpus_started,smp_nvme_queue_per_cpu"
network="-netdev hubport,id=h0,hubid=0 -netdev hubport,id=h1,hubid=0 \
-device e1000,netdev=h0,addr=0x8 -device e1000e,netdev=h1,addr=0x9"
network_tests="kernel.tests=acpi_dmar_parsed,e1000_to_e1000e_frames,e1000e_to_e1000_frames,em_stale_rx_buffer_faults"
usb="-device ich9-usb-uhci1,id=uhci,addr=0xa $(disk uhci) -device usb-storage,drive=uhci,bus=uhci.0 \
-device qemu-xhci,id=xhci,addr=0xb $(disk xhci) -device usb-storage,drive=xhci,bus=xhci.0 \
-device ich9-usb-ehci1,id=ehci,addr=0xc $(disk ehci) -device usb-storage,drive=ehci,bus=ehci.0"
usb_tests="kernel.tests=acpi_dmar_parsed,uhci_msd_rw_verify,ehci_msd_rw_verify,xhci_msd_rw_verify,xhci_stale_ring_faults"
# Device interrupts: the compatibility-format baseline and interrupt remapping.
ir_tests="kernel.tests=acpi_dmar_parsed,msi_compat_delivered,ioapic_timer_compat,ir_msi_delivered,ir_entry_cleared_blocks,ir_forged_msi_blocked,ir_ioapic_timer"
# Where each controller sits in $storage, as its bounce tunable names it.
declare -A storage_addr=([ahci]=0:31:2 [ata]=0:5:0 [nvme]=0:4:0 [megasas]=0:7:0)

# name | memory | intel-iommu options | extra QEMU arguments | kernel command line
# (kernel.domain_width=48 makes every translated domain of the tests a 4-level one.)
# Several CPUs (-smp N in the extra arguments; one without): the smp_* tests run on all
# of them, and the script tells the kernel how many to expect (kernel.expect_cpus=N).
configs=(
  "default|512M||-smp 4 $two_edu|hw.busdma.pci0:0:3:0.bounce=1"
  "aw48|512M|,aw-bits=48| $two_edu|kernel.domain_width=48"
  "caching_mode|512M|,caching-mode=on| $two_edu|"
  "pt_off|512M|,pt=off| $two_edu|hw.busdma.pci0:0:3:0.bounce=1"
  "register_inval|512M||-smp 2 $two_edu|hw.dmar.qi=0"
  "behind_root_port|512M||-device pcie-root-port,id=rp1,bus=pcie.0,chassis=1,slot=1 -device $edu,bus=rp1 -device $edu|"
  "high_memory|5G|| $two_edu|"
  "edu_28bit_mask|1G||-device edu -device edu|kernel.tests=acpi_dmar_parsed,edu_dma_roundtrip,busdma_edu_28bit_mask,busdma_bounce_tunable hw.busdma.pci0:0:3:0.bounce=1"
  "all_at_once|512M|,caching-mode=on,aw-bits=48,pt=off| $two_edu|hw.dmar.qi=0 kernel.domain_width=48"
  # Deferred invalidation for every busdma device (hw.dmar.strict=0).
  "deferred|512M||-smp 4 $two_edu|hw.dmar.strict=0 hw.busdma.pci0:0:3:0.bounce=1"
  "deferred_caching_mode_registers|512M|,caching-mode=on| $two_edu|hw.dmar.strict=0 hw.dmar.qi=0"
  # Behind bridges (the first edu, at the lower address, is the bridged one): a
  # conventional PCI bridge makes the unit see the bridge's id, a PCIe-to-PCI bridge
  # (secondary bus, 00.0); two edus behind one conventional bridge share one id.
  "pci_bridge|512M||-device pci-bridge,id=br1,chassis_nr=1,bus=pcie.0,addr=0x3 -device $edu,bus=br1,addr=0x3 -device $edu,addr=0x6|"
  "pcie_pci_bridge|512M|,caching-mode=on|-device pcie-pci-bridge,id=pb1,bus=pcie.0,addr=0x3 -device $edu,bus=pb1,addr=0x3 -device $edu,addr=0x6|hw.dmar.qi=0"
  "shared_alias|512M||-device pci-bridge,id=br1,chassis_nr=1,bus=pcie.0,addr=0x3 -device $edu,bus=br1,addr=0x3 -device $edu,bus=br1,addr=0x4|"
  # Storage controllers, each with its own disk image (@name@: a fresh 64 MiB raw file,
  # checked afterwards by scripts/disk_check.py against what the kernel says it wrote).
  "storage|512M||-smp 4 $storage|$storage_tests"
  "storage_caching_mode|512M|,caching-mode=on|$storage|$storage_tests"
  # (with the second-generation MegaRAID, megasas-gen2, instead of the first)
  "storage_register_inval|512M||${storage/megasas,id=ms/megasas-gen2,id=ms}|$storage_tests hw.dmar.qi=0"
  "storage_aw48|512M|,aw-bits=48|$storage|$storage_tests kernel.domain_width=48"
  "storage_bounce|512M||$storage|$storage_tests hw.busdma.pci0:0:31:2.bounce=1 hw.busdma.pci0:0:5:0.bounce=1 hw.busdma.pci0:0:4:0.bounce=1 hw.busdma.pci0:0:7:0.bounce=1"
  "storage_behind_bridges|512M||$storage_bridged|$storage_tests"
  # Two NICs on one hub (e1000 at 00:08.0, e1000e at 00:09.0), one of them bounced.
  "network|512M||$network|$network_tests"
  "network_bounce|512M||$network|$network_tests hw.busdma.pci0:0:8:0.bounce=1"
  "network_caching_mode|512M|,caching-mode=on|$network|$network_tests hw.busdma.pci0:0:9:0.bounce=1"
  "network_register_inval|512M||$network|$network_tests hw.dmar.qi=0 hw.busdma.pci0:0:8:0.bounce=1"
  "network_dmar_off|512M||$network|$network_tests hw.dmar.enable=0"
  # USB mass storage on UHCI (00:0a.0), xHCI (00:0b.0) and EHCI (00:0c.0), each with its
  # own disk image, one controller bounced.
  "usb|512M||$usb|$usb_tests"
  "usb_bounce|512M||$usb|$usb_tests hw.busdma.pci0:0:11:0.bounce=1"
  "usb_caching_mode|512M|,caching-mode=on|$usb|$usb_tests hw.busdma.pci0:0:10:0.bounce=1"
  "usb_register_inval|512M||$usb|$usb_tests hw.dmar.qi=0 hw.busdma.pci0:0:12:0.bounce=1"
  "usb_dmar_off|512M||$usb|$usb_tests hw.dmar.enable=0"
  # Remapping off: every test passes or skips with its reason; busdma bounces.
  "storage_dmar_off|512M||$storage $two_edu|hw.dmar.enable=0"
  # Interrupt remapping, named explicitly (under TCG it is QEMU 7.2's default anyway, so
  # the full-run configurations above run the IR tests too). With eim=on the unit offers
  # extended interrupt mode (ECAP.EIM; TCG refuses eim=on without x-buggy-eim=on) and the
  # driver must not use it for this xAPIC CPU. With hw.dmar.qi=0 the IR tests skip: the
  # driver refuses interrupt remapping without queued invalidation.
  "intremap|512M|,intremap=on| $two_edu|$ir_tests"
  "intremap_eim|512M|,intremap=on,eim=on,x-buggy-eim=on| $two_edu|$ir_tests"
  "intremap_caching_mode_registers|512M|,intremap=on,caching-mode=on| $two_edu|$ir_tests hw.dmar.qi=0"
)

# What QEMU 7.2's intel-iommu offers with these options, as the kernel's kernel.expect
# words: 2 MiB and 1 GiB pages in every configuration (CAP.SLLPS), caching
# mode with caching-mode=on, pass-through unless pt=off, 48-bit (4-level) tables with
# aw-bits=48, queued invalidation (ECAP.QI) unless the command line turns it off,
# interrupt remapping (ECAP.IR) unless intremap=off, and extended interrupt mode
# (ECAP.EIM) with eim=on. intremap is an OnOffAuto property: x86_iommu_realize (QEMU 7.2,
# hw/i386/x86-iommu.c) turns auto into on unless the whole irqchip is in KVM's kernel,
# so under TCG (this script's accelerator) the default unit has IR, and intremap=on
# needs no kernel-irqchip option there (kernel-irqchip=split is a KVM requirement).
# eim stays off by default under TCG (vtd_decide_config: auto means on only with a KVM
# irqchip or x-buggy-eim), and eim=on alone is refused under TCG ("eim=on requires
# accel=kvm,kernel-irqchip=split") unless x-buggy-eim=on.
# The kernel fails a test whose driver report contradicts these.
features() { # intel-iommu options, kernel command line
  local opts f="sp2m,sp1g" cm=0 pt=1 aw48=0 qi=1 ir=1 eim=0 o w
  IFS=, read -ra opts <<<"$1"
  for o in "${opts[@]}"; do
    case $o in
      caching-mode=on) cm=1 ;;
      pt=off) pt=0 ;;
      aw-bits=48) aw48=1 ;;
      intremap=off) ir=0 ;;
      eim=on) eim=1 ;;
    esac
  done
  for w in $2; do [ "$w" = hw.dmar.qi=0 ] && qi=0; done
  [ $cm = 1 ] && f+=",cm"
  [ $pt = 1 ] && f+=",pt"
  [ $aw48 = 1 ] && f+=",aw48"
  [ $qi = 1 ] && f+=",qi"
  [ $ir = 1 ] && f+=",ir"
  [ $ir = 1 ] && [ $eim = 1 ] && f+=",eim"
  echo "$f"
}

# MiB of a QEMU -m size (512M, 5G, or a plain number of MiB).
mem_mib() {
  case $1 in
    *G) echo $((${1%G} * 1024)) ;;
    *M) echo "${1%M}" ;;
    *) echo "$1" ;;
  esac
}

# The tests a configuration must run to "ok" (not "# SKIP"): from its options alone.
required_tests() { # features, memory, extra QEMU arguments, kernel command line
  local feats=",$1," mem=$2 extra=$3 append=$4 nedu w only="" t
  local -a req=(acpi_dmar_parsed ioapic_timer_compat smp_cpus_started)
  nedu=$(grep -o -- '-device edu' <<<"$extra" | wc -l)
  # Interrupt remapping runs where the unit offers it, the driver invalidates through
  # the queue (it refuses IR with register invalidation) and neither hw.dmar.enable=0
  # nor hw.dmar.ir=0 turns it off.
  local ir=0
  [[ $feats == *,ir,* && $feats == *,qi,* ]] && ir=1
  for w in $append; do
    [ "$w" = hw.dmar.enable=0 ] || [ "$w" = hw.dmar.ir=0 ] && ir=0
  done
  [ $ir = 1 ] && req+=(ir_ioapic_timer)
  if [ "$nedu" -ge 1 ]; then
    req+=(msi_compat_delivered)
    [ $ir = 1 ] && req+=(ir_msi_delivered ir_entry_cleared_blocks)
    req+=(edu_dma_untranslated edu_dma_roundtrip edu_unmapped_write_blocked
          edu_unmapped_read_faults edu_unmap_then_dma_faults edu_readonly_write_faults
          edu_partial_unmap_superpage edu_passthrough allocation_failures_leave_no_trace)
    # On every CPU at once (one under no -smp): a domain the edus share, and busdma
    # loads on their devices.
    req+=(smp_map_unmap_storm smp_busdma_loads)
    # busdma translating for the edu, unless hw.dmar.enable=0 turns busdma to bouncing;
    # then its unloads deferred too.
    [[ " $append " == *" hw.dmar.enable=0 "* ]] ||
      req+=(busdma_edu_28bit_mask deferred_window_closes deferred_no_stale_reuse
            deferred_pressure_flushes)
    [[ $feats == *,sp2m,* ]] && req+=(edu_superpage_2m)
    [[ $feats == *,sp1g,* ]] && req+=(edu_superpage_1g)
    [[ $feats == *,cm,* ]] && req+=(caching_mode_map_visible)
    [[ $feats == *,aw48,* ]] && req+=(edu_dma_48bit_iova)
    # q35 puts RAM above 4 GiB once -m reaches 2.75 GiB.
    [ "$(mem_mib "$mem")" -ge 2816 ] && req+=(edu_dma_above_4g)
    # The bounce tunables of this table name an edu (00:03.0, the second one).
    for w in $append; do
      [[ $w =~ ^hw\.busdma\.pci[0-9a-fA-F:]+\.bounce=1$ ]] && req+=(busdma_bounce_tunable)
    done
  fi
  # Edus behind bridges: which bridge ids (-device pci-bridge|pcie-pci-bridge,id=X)
  # have edus on them (bus=X), and how many.
  local shared=0 id kind n
  for kind in pci-bridge pcie-pci-bridge; do
    for id in $(grep -oE -- "-device $kind,id=[^, ]+" <<<"$extra" | sed 's/.*id=//'); do
      n=$(grep -oE -- "-device edu[^ ]*,bus=$id(,| |$)" <<<"$extra" | wc -l)
      [ "$n" -ge 1 ] && [ $kind = pci-bridge ] && req+=(alias_pci_bridge)
      [ "$n" -ge 1 ] && [ $kind = pcie-pci-bridge ] && req+=(alias_pcie_pci_bridge)
      [ "$n" -ge 2 ] && [ $kind = pci-bridge ] && req+=(alias_shared_domain) && shared=1
    done
  done
  # Storage controllers with a disk: read/write/verify always; the stale-IOVA fault only
  # where the controller's DMA is translated (not hw.dmar.enable=0, not bounced).
  local ctl off=0
  for w in $append; do [ "$w" = hw.dmar.enable=0 ] && off=1; done
  for ctl in ahci ata nvme megasas; do
    [[ $extra == *"file=@$ctl@"* ]] || continue
    req+=("${ctl}_rw_verify")
    # One I/O queue pair per CPU.
    [ $ctl = nvme ] && req+=(smp_nvme_queue_per_cpu)
    [ $off = 1 ] && continue
    [[ " $append " == *" hw.busdma.pci0:${storage_addr[$ctl]}.bounce=1 "* ]] && continue
    req+=("${ctl}_stale_iova_faults")
  done
  # USB disks: read/write/verify on each controller; the stale ring only where xHCI
  # (00:0b.0) is translated.
  for ctl in uhci ehci xhci; do
    [[ $extra == *"file=@$ctl@"* ]] && req+=("${ctl}_msd_rw_verify")
  done
  if [[ $extra == *"file=@xhci@"* ]] && [ $off = 0 ] &&
     [[ " $append " != *" hw.busdma.pci0:0:11:0.bounce=1 "* ]]; then
    req+=(xhci_stale_ring_faults)
  fi
  # Both NICs: frames both ways always; the stale receive buffer faults only where the
  # receiving e1000e (00:09.0) is translated.
  if [[ $extra == *"-device e1000,"* && $extra == *"-device e1000e,"* ]]; then
    req+=(e1000_to_e1000e_frames e1000e_to_e1000_frames)
    [ $off = 0 ] && [[ " $append " != *" hw.busdma.pci0:0:9:0.bounce=1 "* ]] &&
      req+=(em_stale_rx_buffer_faults)
  fi
  # Two edu devices: two domains, and more faults than QEMU's one recording register
  # (not when one requester id covers both: the unit cannot isolate those).
  # (and one CPU's faults drained while the others map: edu 1 faults, edu 0 maps)
  [ "$nedu" -ge 2 ] && [ $shared = 0 ] &&
    req+=(edu_isolation fault_overflow_recovers smp_fault_while_mapping)
  # ... and one of them forging the other's remapped interrupt.
  [ "$nedu" -ge 2 ] && [ $shared = 0 ] && [ $ir = 1 ] && req+=(ir_forged_msi_blocked)
  # With kernel.tests only the named tests run.
  for w in $append; do
    [[ $w == kernel.tests=* ]] && only=",${w#kernel.tests=},"
  done
  for t in "${req[@]}"; do
    if [ -z "$only" ] || [[ $only == *,$t,* ]]; then echo "$t"; fi
  done | sort -u
}

logdir=$(mktemp -d "${TMPDIR:-/tmp}/qemu-matrix.XXXXXX")
trap 'rm -rf "$logdir"' EXIT

wanted() {
  [ $# -eq 0 ] && return 0
  local n
  for n in "${@:2}"; do [ "$n" = "$1" ] && return 0; done
  return 1
}

total_pass=0
total_fail=0
total_skip=0
bad_configs=()
for entry in "${configs[@]}"; do
  IFS='|' read -r name mem iommu_opts extra append <<<"$entry"
  if [ $# -gt 0 ] && ! wanted "$name" "$@"; then
    continue
  fi
  feats=$(features "$iommu_opts" "$append")
  mapfile -t required < <(required_tests "$feats" "$mem" "$extra" "$append")
  # The CPUs QEMU gives the machine (-smp N; 1 without), which the kernel must all start.
  cpus=$(grep -oE -- '-smp [0-9]+' <<<"$extra" | awk '{print $2}')
  append="${append:+$append }kernel.expect=$feats kernel.expect_cpus=${cpus:-1}"
  log="$logdir/$name.log"
  # Fresh disk images for the @name@ placeholders.
  images=()
  for img in $(grep -oE '@[a-z0-9]+@' <<<"$extra" | sort -u); do
    img=${img//@/}
    truncate -s 64M "$logdir/$name-$img.img"
    extra=${extra//@$img@/$logdir/$name-$img.img}
    images+=("$img=$logdir/$name-$img.img")
  done
  # shellcheck disable=SC2086
  timeout --kill-after=5 "$per_run_timeout" "$qemu" -M q35 -m "$mem" -display none \
    -serial "file:$log" -monitor none -no-reboot -nic none \
    -device isa-debug-exit,iobase=0xf4,iosize=4 \
    -device "intel-iommu$iommu_opts" $extra \
    -kernel "$kernel" -append "$append" </dev/null >"$logdir/$name.qemu" 2>&1
  status=$?

  plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' "$log" | head -n1)
  ok=$(grep -cE '^ok [0-9]+ - ' "$log")
  skip=$(grep -cE '^ok [0-9]+ - .*# SKIP' "$log")
  notok=$(grep -cE '^not ok [0-9]+ - ' "$log")
  pass=$((ok - skip))
  fail=$notok
  missing=0
  if [ -n "$plan" ]; then
    missing=$((plan - ok - notok))
    [ $missing -lt 0 ] && missing=0
  fi
  fail=$((fail + missing))
  # Required tests: a skip counts as a failure (not a skip); one absent from the log
  # counts once, unless the plan's missing tests already counted it.
  req_bad=()
  req_absent=0
  for t in "${required[@]}"; do
    line=$(grep -E "^(not )?ok [0-9]+ - $t( |\$)" "$log" | head -n1)
    if [ -z "$line" ]; then
      req_bad+=("$t (did not run)")
      req_absent=$((req_absent + 1))
    elif [[ $line == "not ok"* ]]; then
      req_bad+=("$t (not ok)")
    elif [[ $line == *"# SKIP"* ]]; then
      req_bad+=("$t (skipped)")
      skip=$((skip - 1))
      fail=$((fail + 1))
    fi
  done
  [ $req_absent -gt $missing ] && fail=$((fail + req_absent - missing))
  # What the kernel wrote must be on the disks: one more test per configuration with
  # images (every rw test that passed printed the regions it wrote).
  disk_note=""
  if [ ${#images[@]} -gt 0 ]; then
    if python3 "$(dirname "$0")/disk_check.py" "$log" "${images[@]}" >"$logdir/$name.disk" 2>&1; then
      pass=$((pass + 1))
    else
      fail=$((fail + 1))
      req_bad+=("disk_check (the images do not hold what the kernel wrote)")
    fi
    disk_note="; $(tail -n1 "$logdir/$name.disk")"
  fi
  verdict=PASS
  if [ "$status" -ne 1 ] || [ -z "$plan" ] || [ $fail -gt 0 ] || [ ${#req_bad[@]} -gt 0 ]; then
    verdict=FAIL
    # A run that died without reporting anything still counts as one failure.
    [ $fail -eq 0 ] && fail=1
    bad_configs+=("$name")
  fi
  total_pass=$((total_pass + pass))
  total_fail=$((total_fail + fail))
  total_skip=$((total_skip + skip))

  echo "=== $name: -m $mem${cpus:+ -smp $cpus} intel-iommu$iommu_opts${append:+ -append '$append'}"
  echo "    requires: ${required[*]}"
  grep -E '^(ok|not ok|Bail out!|# [A-Za-z0-9_/.-]+\.c:[0-9]+: |# fault: |# CPU exception|# rax=|# em: )' "$log" | sed 's/^/    /'
  if [ "$verdict" = FAIL ] && [ -s "$logdir/$name.qemu" ]; then
    sed 's/^/    qemu: /' "$logdir/$name.qemu" | head -n 20
  fi
  case $status in
    1) why="all tests passed"
       [ ${#req_bad[@]} -gt 0 ] && why="a required test did not run to ok" ;;
    3) why="a test failed" ;;
    124|137) why="timed out after ${per_run_timeout}s" ;;
    *) why="QEMU exit status $status" ;;
  esac
  for t in "${req_bad[@]}"; do
    echo "    required test $t: this configuration must run it"
  done
  [ -s "$logdir/$name.disk" ] && grep -v ': on the disk$' "$logdir/$name.disk" | sed 's/^/    /'
  echo "--- $name: $verdict ($pass passed, $fail failed, $skip skipped; $why; ${#required[@]} required tests$disk_note)"
  if [ "$verdict" = FAIL ] && [ -n "${QEMU_MATRIX_KEEP:-}" ]; then
    cp "$log" "${QEMU_MATRIX_KEEP}/qemu-matrix-$name.log"
  fi
done

# The watchdog itself: a test that hangs on purpose must be ended as a failure.
if [ $# -eq 0 ] || wanted watchdog "$@"; then
  log="$logdir/watchdog.log"
  timeout --kill-after=5 "$per_run_timeout" "$qemu" -M q35 -m 512M -display none \
    -serial "file:$log" -monitor none -no-reboot -nic none \
    -device isa-debug-exit,iobase=0xf4,iosize=4 \
    -kernel "$kernel" -append "kernel.tests=watchdog_selftest" </dev/null >/dev/null 2>&1
  status=$?
  echo "=== watchdog: a test that hangs on purpose (kernel.tests=watchdog_selftest)"
  grep -E '^(ok|not ok|Bail out!)' "$log" | sed 's/^/    /'
  if [ "$status" -eq 3 ] && grep -qE '^not ok 1 - watchdog_selftest # watchdog' "$log"; then
    echo "--- watchdog: PASS (the watchdog ended the hung test as a failure)"
    total_pass=$((total_pass + 1))
  else
    echo "--- watchdog: FAIL (QEMU exit status $status)"
    total_fail=$((total_fail + 1))
    bad_configs+=(watchdog)
  fi
fi

[ ${#bad_configs[@]} -gt 0 ] && echo "failed configurations: ${bad_configs[*]}"
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[ $total_fail -eq 0 ] && [ $((total_pass + total_skip)) -gt 0 ]
