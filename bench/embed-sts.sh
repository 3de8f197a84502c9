#!/usr/bin/env bash
# End to end, whole process included: `funnel embed` of the STS benchmark's 2,758 test sentences (both sides of
# its 1,379 pairs, in file order, as plain lines) with each precision, alternating, best of REPEATS wall times.
# Usage: bench/embed-sts.sh [REPEATS=3] [THREADS=all cores]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="${FUNNEL_SHARED:-$here/../shared}"
repeats="${1:-3}"
threads="${2:-$(nproc)}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Fields 6 and 7 (tab-separated) are the two sentences (some lines carry further fields after them).
cut -f6,7 "$shared/datasets/stsbenchmark/sts-test.csv" | tr '\t' '\n' > "$work/sentences.txt"
count="$(wc -l < "$work/sentences.txt")"
"$here/funnel" --help > /dev/null # build once, outside the timing
# Time a copy, so that a build in the checkout meanwhile changes nothing under the clock.
cp -r "$here/src/Funnel.Cli/bin/Release/publish" "$work/cli"
funnel() { dotnet "$work/cli/Funnel.Cli.dll" "$@"; }
funnel embed -i "$work/sentences.txt" --threads "$threads" > /dev/null # materialize the packaged model, outside the timing
declare -A best cpu
for ((r = 0; r < repeats; r++)); do
  for precision in fp32 int8; do
    # Wall and CPU (user + system) seconds of the whole process; on a shared machine CPU time is the steadier figure.
    /usr/bin/time -f "%e %U %S" -o "$work/time" dotnet "$work/cli/Funnel.Cli.dll" embed -i "$work/sentences.txt" --threads "$threads" \
      --precision "$precision" > "$work/$precision.jsonl" 2> /dev/null
    read -r seconds user system < "$work/time"
    [[ -z "${best[$precision]:-}" || $(echo "$seconds < ${best[$precision]}" | bc) == 1 ]] && best[$precision]=$seconds
    used=$(echo "$user + $system" | bc)
    [[ -z "${cpu[$precision]:-}" || $(echo "$used < ${cpu[$precision]}" | bc) == 1 ]] && cpu[$precision]=$used
  done
done
lines="$(wc -l < "$work/int8.jsonl")"
[[ "$lines" == "$count" ]] || { echo "int8 run printed $lines vectors for $count sentences" >&2; exit 1; }
echo "funnel embed, $count STS-B test sentences, $threads threads, best of $repeats, load average at end $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| precision | wall s | sentences/s | CPU s |\n|---|---:|---:|---:|\n'
for precision in fp32 int8; do
  printf '| %s | %.2f | %.0f | %.2f |\n' "$precision" "${best[$precision]}" "$(echo "$count / ${best[$precision]}" | bc -l)" "${cpu[$precision]}"
done
printf 'int8 speed-up, whole process: %.2f× wall, %.2f× CPU time\n' "$(echo "${best[fp32]} / ${best[int8]}" | bc -l)" "$(echo "${cpu[fp32]} / ${cpu[int8]}" | bc -l)"
