#!/usr/bin/env bash
# fuzz.sh BUILDDIR SECONDS - run each libFuzzer target for SECONDS (the ACPI parser
# seeded with the DMAR corpus, copied into the build directory; the IOVA allocator from
# scratch; the kernel-log line parser of dmarctl explain seeded with the fault lines of
# tests/data/fault_lines.tsv) and print executions and findings. Exit 1 on any finding.
# FUZZ_TARGETS="acpi iova explain" (the default) picks the targets.
set -u
build=${1:?usage: fuzz.sh BUILDDIR SECONDS}
secs=${2:-60}
here=$(cd "$(dirname "$0")/.." && pwd)
corpus=${DMAR_CORPUS:-$here/../shared/corpus/dmar}
status=0
for name in ${FUZZ_TARGETS:-acpi iova explain}; do
	target=$build/tests/fuzz/fuzz_$name
	if [ ! -x "$target" ]; then
		echo "fuzz.sh: $target not built (configure with CC=clang -DDMAR_FUZZ=ON)" >&2
		exit 2
	fi
	work=$build/fuzz-$name
	mkdir -p "$work/corpus" "$work/artifacts"
	if [ "$name" = acpi ] && [ -d "$corpus" ]; then
		cp -n "$corpus"/*.bin "$work/corpus/" 2>/dev/null || true
	fi
	if [ "$name" = explain ]; then # one seed per fixture row: its input column
		awk -F'\t' '!/^#/ && $1 != "id" && $3 != "" { print $3 > ("'"$work"'/corpus/row" NR) }' \
			"$here/tests/data/fault_lines.tsv"
		sed -i 's/\\n/\n/g' "$work"/corpus/row*
	fi
	log=$work/fuzz.log
	echo "fuzz_$name: ${secs}s, seeds: $(ls "$work/corpus" | wc -l), log: $log"
	"$target" -max_total_time="$secs" -max_len=65536 -print_final_stats=1 \
		-artifact_prefix="$work/artifacts/" "$work/corpus" >"$log" 2>&1
	rc=$?
	execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
	speed=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}')
	crashes=$(ls "$work/artifacts" | wc -l)
	echo "fuzz_$name: executions ${execs:-?} (${speed:-?}/s), exit $rc, findings (artifacts): $crashes"
	if [ "$crashes" -gt 0 ] || [ "$rc" -ne 0 ]; then
		grep -E 'ERROR|SUMMARY|fuzz_(iova|explain):' "$log" | head -5
		ls "$work/artifacts"
		status=1
	fi
done
exit $status
