#!/usr/bin/env bash
# Trains HookNet and, for comparison, U-Net on MoNuSeg 2018 train (nucleus vs background) and
# reports validation Dice per tile (docs/RESULTS.md). Everything goes to $OUT (default
# out/monuseg/, ignored by git): the data is non-commercial and the weights stay out of git.
#   scripts/train-monuseg.sh [hooknet|unet|all]      (default all)
# Environment: DATA (the monuseg2018 folder), OUT, SLIDESTREAM (the binary), THREADS (2),
# EPOCHS, FILTERS, STEPS (batches per epoch, 0 = one pass), BATCH, LR: smaller runs for CPUs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="${DATA:-$root/../shared/data/labeled/monuseg2018}"
out="${OUT:-$root/out/monuseg}"
bin="${SLIDESTREAM:-$root/build/pipeline/cli/slidestream}"
threads="${THREADS:-2}"
which="${1:-all}"
mkdir -p "$out"

# 1. Manifest: path, mpp (metadata.csv; 0.25 um/px where it is missing), id.
manifest="$out/manifest.csv"
awk -F, -v data="$data" 'NR == 1 { print "path,mpp,id"; next }
  { mpp = ($6 == "" ? "0.25" : $6); print data "/" $8 "," mpp "," $1 }' \
  "$data/metadata.csv" > "$manifest"

# 2. Patch sets + labels at the geometry of configs/extract-nuclei.yaml (0.5 and 2.0 um/px,
# 284 px in, 70 px out), tiling each whole image (no tissue filter: MoNuSeg tiles are tissue).
dataset="$out/monuseg.h5"
/usr/bin/time -f "extract: %e s wall" "$bin" extract "$manifest" -c "$root/configs/extract-nuclei.yaml" \
  --label-raster "$data/train/labels/{stem}_inst.png" --set tiling.min_tissue_fraction=0 \
  --threads "$threads" --resume -o "$dataset" -q

# 3. Training; the validation tiles are the configs' training.validation.slide_ids.
overrides=()
[ -n "${EPOCHS:-}" ] && overrides+=(--epochs "$EPOCHS")
[ -n "${FILTERS:-}" ] && overrides+=(--set "model.filters=$FILTERS")
[ -n "${STEPS:-}" ] && overrides+=(--set "training.steps_per_epoch=$STEPS")
[ -n "${BATCH:-}" ] && overrides+=(--set "training.batch_size=$BATCH")
[ -n "${LR:-}" ] && overrides+=(--set "training.learning_rate=$LR")
for arch in hooknet unet; do
  if [ "$which" != all ] && [ "$which" != "$arch" ]; then
    continue
  fi
  resume=()
  [ -f "$out/$arch/checkpoint/state.yaml" ] && resume=(--resume)
  /usr/bin/time -f "train $arch: %e s wall" "$bin" train -c "$root/configs/$arch-nuclei.yaml" \
    --data "$dataset" -o "$out/$arch" --torch-threads "$threads" --seed 0 "${overrides[@]}" \
    "${resume[@]}" 2>&1 | tee "$out/$arch.log"
  echo "validation Dice per tile ($arch, best epoch):"
  cat "$out/$arch/validation_slides.csv"
done
