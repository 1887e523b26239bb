#!/usr/bin/env bash
# The main job on the embedded default: installs what is missing, builds, then
#   1. synthesises a sample slide (with truth raster and QuPath annotations),
#   2. shows its metadata,
#   3. reads concentric HookNet-style patches (284 px at 0.5 and 8.0 um/px) at a tumour region,
#   4. computes its tissue mask, and
#   5. extracts labelled target/context patch sets into an HDF5 dataset (CLAM-compatible).
# Outputs go to out/demo/.
#
#   scripts/demo.sh              the synthetic sample slide
#   scripts/demo.sh SLIDE [--mpp X]   the same reads on your own slide
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SLIDESTREAM_BUILD_DIR:-$root/build}"
out="$root/out/demo"

"$root/scripts/install-deps.sh"
"$root/scripts/build.sh" --target slidestream
slidestream="$build/pipeline/cli/slidestream"
mkdir -p "$out"

if [ $# -ge 1 ]; then
  slide="$1"
  shift
else
  slide="$out/sample.tif"
  annotations="$out/sample.geojson"
  echo "== synth: a 8192 x 6144 synthetic H&E slide at 0.5 um/px"
  "$slidestream" synth -o "$slide" --size 8192x6144 --mpp 0.5 --seed 1 \
    --truth "$out/sample.truth.tif" --annotations "$out/sample.geojson"
fi

echo "== info"
"$slidestream" info "$slide" "$@"
"$slidestream" info "$slide" --json "$@" > "$out/info.json"

# The centre of the first tumour region of the sample (from its annotations), or of the slide.
center=$(python3 - "$out/info.json" "${annotations:-}" <<'PY'
import json, sys
info = json.load(open(sys.argv[1]))
center = (info["width"] // 2, info["height"] // 2)
if sys.argv[2]:
    for feature in json.load(open(sys.argv[2]))["features"]:
        if feature["properties"]["classification"]["name"] == "Tumor":
            ring = feature["geometry"]["coordinates"][0]
            center = (int(sum(p[0] for p in ring) / len(ring)), int(sum(p[1] for p in ring) / len(ring)))
            break
print(f"{center[0]},{center[1]}")
PY
)

echo "== read: target 284 px at 0.5 um/px and context 284 px at 8.0 um/px around $center"
"$slidestream" read "$slide" --spacing 0.5 --size 284 --center "$center" -o "$out/target.png" "$@"
"$slidestream" read "$slide" --spacing 8.0 --size 284 --center "$center" -o "$out/context.png" \
  --mask "$out/context.valid.png" "$@"

echo "== tissue: the tissue mask at 8 um/px"
"$slidestream" tissue "$slide" -o "$out/tissue.png" "$@"

# Every 5th output tile in each direction keeps the demo quick; drop the stride for a full set.
echo "== extract: target/context patch sets into an HDF5 dataset"
if [ -n "${annotations:-}" ]; then
  "$slidestream" extract "$slide" -c "$root/configs/extract-synthetic.yaml" \
    --annotations "$annotations" --set tiling.stride=350 -o "$out/patches.h5"
else
  "$slidestream" extract "$slide" -c "$root/configs/extract-hooknet-breast.yaml" \
    --set tiling.stride=350 -o "$out/patches.h5" "$@"
fi

echo
echo "Outputs in $out:"
ls -1 "$out"
