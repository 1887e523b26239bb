#!/usr/bin/env bash
# Peak memory (max RSS) and wall time of `slidestream extract` on two synthetic slides of
# different area, to check that memory does not grow with slide size (docs/PERFORMANCE.md).
#
#   scripts/bench-memory.sh [FOLDER]     (default /tmp/slidestream-bench)
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
set -euo pipefail

folder=${1:-/tmp/slidestream-bench}
root=$(cd "$(dirname "$0")/.." && pwd)
slidestream=${SLIDESTREAM:-$root/build/pipeline/cli/slidestream}
read -r -a sizes <<<"${SIZES:-20000 100000}"
window=${WINDOW-10000}
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


rows=()
for size in "${sizes[@]}"; do
  slide="$folder/slide-$size.tif"
  if [ ! -f "$slide" ]; then
    echo "bench-memory: synthesising $slide (${size}x${size}) ..." >&2
    "$slidestream" synth -o "$slide" --size "${size}x${size}" --seed 1 -q
  fi
  overrides=(--set tiling.min_tissue_fraction=0.5 --set output.gzip_level=1)
  region_var="REGION_$size"  # e.g. REGION_100000="[12244, 8163, 10000, 10000]" overrides it
  if [ -n "${!region_var:-}" ]; then
    overrides+=(--set "tiling.region=${!region_var}")
  elif [ -n "$window" ]; then
    corner=$(((size - window) / 2))
    overrides+=(--set "tiling.region=[$corner, $corner, $window, $window]")
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

echo "extract, HookNet breast, tissue >= 0.5, gzip 1, $threads threads${window:+, centred ${window}x$window region}"
printf '%-16s %8s %14s %9s\n' "slide (l0 px)" "tiles" "peak RSS MB" "seconds"
printf '%s\n' "${rows[@]}"
