#!/usr/bin/env bash
# Peak memory (max RSS) and wall time of `slidestream extract` (or `segment`) on two synthetic
# slides of different area, to check that memory does not grow with slide size
# (docs/PERFORMANCE.md).
#
#   scripts/bench-memory.sh [FOLDER]                 (default /tmp/slidestream-bench)
#   MODE=segment scripts/bench-memory.sh [FOLDER]    segment with bench_segment's small HookNet
#
# The slides are synthesised once into FOLDER (seed 1, JPEG Q90, 0.5 um/px) and reused; the
# 100000 x 100000 one takes about 4 minutes and 3.2 GB. Each extraction is restricted to a
# WINDOW x WINDOW level-0 region at the slide's centre (tiling.region), so the work per slide
# stays similar and mostly the slide area differs; WINDOW= (empty) extracts the whole slides.
# Environment:
#   SIZES="20000 100000"   square slide sizes, level-0 px
#   WINDOW=10000           side of the centred region, level-0 px
#   REGION_<size>=[x, y, w, h]   this slide's region instead (the 100000 one's centre is blank)
#   THREADS=2              extract --threads
#   SLIDESTREAM=build/pipeline/cli/slidestream
#   MODE=extract           or segment: `slidestream segment` with the model that
#                          `bench_segment --write-model` saves (4 filters, seeded weights, output
#                          70 px at OUTPUT_UM um/px, context 4x coarser), all outputs on
#   OUTPUT_UM=4            segment mode's output spacing
set -euo pipefail

folder=${1:-/tmp/slidestream-bench}
root=$(cd "$(dirname "$0")/.." && pwd)
slidestream=${SLIDESTREAM:-$root/build/pipeline/cli/slidestream}
read -r -a sizes <<<"${SIZES:-20000 100000}"
window=${WINDOW-10000}
threads=${THREADS:-2}
mode=${MODE:-extract}
case "$mode" in
  extract | segment) ;;
  *)
    echo "bench-memory: MODE must be extract or segment, not '$mode'" >&2
    exit 1
    ;;
esac

if [ ! -x /usr/bin/time ]; then
  echo "bench-memory: /usr/bin/time missing; install the Debian package 'time'" \
    "(scripts/install-deps.sh)" >&2
  exit 1
fi
if [ ! -x "$slidestream" ]; then
  echo "bench-memory: $slidestream not built; run scripts/build.sh" >&2
  exit 1
fi
mkdir -p "$folder"
model="$folder/segment-model-${OUTPUT_UM:-4}"
if [ "$mode" = segment ] && [ ! -f "$model/model.yaml" ]; then
  bench_segment=${BENCH_SEGMENT:-$root/build/benchmarks/bench_segment}
  "$bench_segment" --write-model "$model" --output-um "${OUTPUT_UM:-4}"
fi

rows=()
for size in "${sizes[@]}"; do
  slide="$folder/slide-$size.tif"
  if [ ! -f "$slide" ]; then
    echo "bench-memory: synthesising $slide (${size}x${size}) ..." >&2
    "$slidestream" synth -o "$slide" --size "${size}x${size}" --seed 1 -q
  fi
  overrides=()
  if [ "$mode" = extract ]; then
    overrides=(--set tiling.min_tissue_fraction=0.5 --set output.gzip_level=1)
  fi
  region_var="REGION_$size"  # e.g. REGION_100000="[12244, 8163, 10000, 10000]" overrides it
  if [ -n "${!region_var:-}" ]; then
    overrides+=(--set "tiling.region=${!region_var}")
  elif [ -n "$window" ]; then
    corner=$(((size - window) / 2))
    overrides+=(--set "tiling.region=[$corner, $corner, $window, $window]")
  fi
  timing="$folder/$mode-$size.time"
  if [ "$mode" = extract ]; then
    output="$folder/extract-$size.h5"
    report="$output.report.json"
    rm -f "$output" "$report"
    /usr/bin/time -v -o "$timing" \
      "$slidestream" extract "$slide" -o "$output" "${overrides[@]}" --threads "$threads" -q \
      >/dev/null
    tiles=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["slides"][0]["patches"])' \
      "$report")
  else
    output="$folder/segment-$size"
    rm -rf "$output"
    # The segment config's defaults (tissue >= 0.05, overlay, GeoJSON, ASAP XML).
    /usr/bin/time -v -o "$timing" \
      "$slidestream" segment "$slide" --model "$model" -o "$output" \
      "${overrides[@]}" --threads "$threads" -q >/dev/null
    tiles=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["tiles"]["processed"])' \
      "$output/slide-$size/report.json")
  fi
  peak_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$timing")
  seconds=$(awk -F': ' '/Elapsed \(wall clock\)/ {
    n = split($2, part, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + part[i]; print s }' \
    "$timing")
rows+=("$(printf '%-16s %8s %14.0f %9.1f' "${size}x${size}" "$tiles" \
    "$(awk -v kb="$peak_kb" 'BEGIN {print kb / 1024}')" "$seconds")")
  rm -rf "$output"
done

if [ "$mode" = extract ]; then
  echo "extract, HookNet breast, tissue >= 0.5, gzip 1, $threads threads${window:+, centred ${window}x$window region}"
else
  echo "segment, bench HookNet (output ${OUTPUT_UM:-4} um/px), $threads threads${window:+, centred ${window}x$window region}"
fi
printf '%-16s %8s %14s %9s\n' "slide (l0 px)" "tiles" "peak RSS MB" "seconds"
printf '%s\n' "${rows[@]}"
