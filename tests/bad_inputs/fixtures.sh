#!/usr/bin/env bash
# Builds the inputs the bad-input corpus copies into each case's folder: small synthetic
# slides, a tile, stain parameters, a patch dataset, a trained tiny model and a segmentation.
# All are made with the slidestream binary itself, so a fresh clone needs no data.
#   fixtures.sh SLIDESTREAM OUT_DIR
set -euo pipefail
ss="$1"
out="$2"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$out"
run() { "$ss" -q "$@"; }

run synth -o slide.tif --size 1536x1024 --mpp 0.5 --seed 3 \
  --truth truth.tif --annotations slide.geojson
run synth -o other.tif --size 1024x768 --mpp 0.5 --seed 4
run synth -o lossless.tif --size 1024x768 --mpp 0.5 --seed 5 --compression deflate
run synth -o nompp.tif --size 512x512 --no-mpp --seed 6
run read slide.tif --spacing 0.5 --size 256 --origin 150,120 -o tile.png
run read truth.tif --spacing 2 --size 256 --origin 0,0 -o truth-rgb.png
run stain fit --method macenko tile.png -o stain.json
run stain fit --method reinhard tile.png -o reinhard.json
cp "$here/fixtures/extract.yaml" extract.yaml
cp "$here/fixtures/train.yaml" train.yaml
run extract slide.tif -c extract.yaml --annotations slide.geojson -o patches.h5 --threads 1
run train -c train.yaml --data patches.h5 -o model > /dev/null
run segment slide.tif --model model -o segmented --threads 1 --heatmaps > /dev/null
run predict --model model tile.png --mpp 0.5 -o labels.png > /dev/null
printf 'path,mpp,id\nslide.tif,,a\nother.tif,0.5,b\n' > manifest.csv
rm -f ./*.json.tmp*
