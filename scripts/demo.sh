#!/usr/bin/env bash
# The main job on the embedded default: installs what is missing, builds, then on a synthetic
# H&E-like slide with known truth:
#   1. synth     a sample slide (pyramidal TIFF), its truth raster and QuPath annotations
#   2. info      its metadata and where the spacing came from
#   3. read      concentric HookNet patches (284 px at 0.5 and 8.0 um/px) at a tumour region
#   4. tissue    its tissue mask at 8 um/px
#   5. extract   labelled target/context patch sets into an HDF5 dataset (CLAM-compatible)
#   6. train     a small HookNet on them (about 1-2 minutes on 2 CPU cores)
#   7. segment   the whole slide with it: labels.tif, overlay.png, GeoJSON, ASAP XML, report
#   8. evaluate  the label map against the truth: per-class Dice
# Outputs go to out/demo/.
#
#   scripts/demo.sh                              the synthetic sample, end to end
#   scripts/demo.sh SLIDE --model MODEL_DIR [--mpp X]   segment your own slide with your model
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
  model=""
  extra=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --model) model="$2"; shift 2 ;;
      *) extra+=("$1"); shift ;;
    esac
  done
  if [ -z "$model" ]; then
    echo "demo: give the model to segment '$slide' with: scripts/demo.sh SLIDE --model MODEL_DIR" >&2
    exit 2
  fi
  echo "== info"
  "$slidestream" info "$slide" "${extra[@]}"
  echo "== segment $slide with $model"
  "$slidestream" segment "$slide" --model "$model" -o "$out/segment" "${extra[@]}"
  echo
  echo "Outputs in $out/segment/$(basename "${slide%.*}")/"
  exit 0
fi

slide="$out/sample.tif"
annotations="$out/sample.geojson"
echo "== synth: a 8192 x 6144 synthetic H&E slide at 0.5 um/px"
"$slidestream" synth -o "$slide" --size 8192x6144 --mpp 0.5 --seed 1 \
  --truth "$out/sample.truth.tif" --annotations "$annotations"

echo "== info"
"$slidestream" info "$slide"
"$slidestream" info "$slide" --json > "$out/info.json"

# The centre of the first tumour region of the sample (from its annotations).
center=$(python3 - "$annotations" <<'PY'
import json, sys
for feature in json.load(open(sys.argv[1]))["features"]:
    if feature["properties"]["classification"]["name"] == "Tumor":
        ring = feature["geometry"]["coordinates"][0]
        print(f"{int(sum(p[0] for p in ring) / len(ring))},{int(sum(p[1] for p in ring) / len(ring))}")
        break
PY
)
echo "== read: target 284 px at 0.5 um/px and context 284 px at 8.0 um/px around $center"
"$slidestream" read "$slide" --spacing 0.5 --size 284 --center "$center" -o "$out/target.png"
"$slidestream" read "$slide" --spacing 8.0 --size 284 --center "$center" -o "$out/context.png" \
  --mask "$out/context.valid.png"

echo "== tissue: the tissue mask at 8 um/px"
"$slidestream" tissue "$slide" -o "$out/tissue.png"

# Every 2nd output tile in each direction: enough patch sets for the demo model.
echo "== extract: labelled target/context patch sets into an HDF5 dataset"
"$slidestream" extract "$slide" -c "$root/configs/extract-synthetic.yaml" \
  --annotations "$annotations" --set tiling.stride=140 -o "$out/patches.h5"

echo "== train: a small HookNet (configs/hooknet-synthetic.yaml)"
rm -rf "$out/model"
"$slidestream" train -c "$root/configs/hooknet-synthetic.yaml" --data "$out/patches.h5" \
  -o "$out/model"

echo "== segment: the whole slide with the demo model"
"$slidestream" segment "$slide" --model "$out/model" -o "$out/segment"

echo "== evaluate: labels.tif against the truth raster"
"$slidestream" evaluate --pred "$out/segment/sample/labels.tif" --truth "$out/sample.truth.tif" \
  --classes background=0,stroma=1,tumour=2 --json "$out/evaluate.json"

echo
echo "Outputs in $out:"
echo "  segment/sample/overlay.png          thumbnail with the predicted classes and a legend"
echo "  segment/sample/labels.tif           class map (pyramidal TIFF; opens in QuPath, ASAP)"
echo "  segment/sample/annotations.geojson  QuPath annotations (annotations.xml for ASAP)"
echo "  segment/sample/report.json          run report: tiles, areas, time per stage, memory"
echo "  evaluate.json                       per-class Dice and IoU against the truth"
