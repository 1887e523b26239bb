#!/usr/bin/env bash
# Peak memory (max RSS) and wall time of `slidestream extract` on two synthetic slides of
# different area, to check that memory does not grow with slide size (docs/PERFORMANCE.md).
#
#   scripts/bench-memory.sh [FOLDER]     (default /tmp/slidestream-bench)
#
# The slides are synthesised once into FOLDER (seed 1, JPEG Q90, 0.5 um/px) and reused; the
# 100000 x 100000 one takes several minutes and about 3.5 GB. Both extractions are restricted to
# the same level-0 region (REGION), so they write the same tiles and only the slide area differs;
# REGION= (empty) extracts the whole slides. Environment:
#   SIZES="20000 100000"            square slide sizes, level-0 px
#   REGION="[0, 0, 20000, 20000]"   tiling.region, level-0 px [x, y, width, height]
#   THREADS=2                       extract --threads
#   SLIDESTREAM=build/pipeline/cli/slidestream
set -euo pipefail

folder=${1:-/tmp/slidestream-bench}
root=$(cd "$(dirname "$0")/.." && pwd)
slidestream=${SLIDESTREAM:-$root/build/pipeline/cli/slidestream}
read -r -a sizes <<<"${SIZES:-20000 100000}"
region=${REGION-[0, 0, 20000, 20000]}
threads=${THREADS:-2}

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

overrides=(--set tiling.min_tissue_fraction=0.5 --set output.gzip_level=1)
if [ -n "$region" ]; then
  overrides+=(--set "tiling.region=$region")
fi

rows=()
for size in "${sizes[@]}"; do
  slide="$folder/slide-$size.tif"
  if [ ! -f "$slide" ]; then
    echo "bench-memory: synthesising $slide (${size}x${size}) ..." >&2
    "$slidestream" synth -o "$slide" --size "${size}x${size}" --seed 1 -q
  fi
  output="$folder/extract-$size.h5"
  timing="$folder/extract-$size.time"
  rm -f "$output" "$output.report.json"
  /usr/bin/time -v -o "$timing" \
    "$slidestream" extract "$slide" -o "$output" "${overrides[@]}" --threads "$threads" -q \
    >/dev/null
  peak_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$timing")
  seconds=$(awk -F': ' '/Elapsed \(wall clock\)/ {
    n = split($2, part, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + part[i]; print s }' \
    "$timing")
  tiles=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["slides"][0]["patches"])' \
    "$output.report.json")
  rows+=("$(printf '%-16s %8s %14.0f %9.1f' "${size}x${size}" "$tiles" \
    "$(awk -v kb="$peak_kb" 'BEGIN {print kb / 1024}')" "$seconds")")
  rm -f "$output"
done

echo "extract, HookNet breast, tissue >= 0.5, gzip 1, $threads threads${region:+, region $region}"
printf '%-16s %8s %14s %9s\n' "slide (l0 px)" "tiles" "peak RSS MB" "seconds"
printf '%s\n' "${rows[@]}"
