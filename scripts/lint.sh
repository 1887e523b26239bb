#!/usr/bin/env bash
# The project's own code: clang-format, module layering, and clang-tidy with warnings as errors.
#   scripts/lint.sh [BUILD_DIR]     (BUILD_DIR holds compile_commands.json; default build/)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
cd "$root"

mapfile -t sources < <(git ls-files -co --exclude-standard -- \
  'pipeline/*.cpp' 'pipeline/*.hpp' 'include/*.hpp' 'models/*.cpp' 'models/*.hpp' \
  'stain/*.cpp' 'stain/*.hpp' 'tests/*.cpp' 'tests/*.hpp' 'examples/*.cpp' 'benchmarks/*.cpp' 'benchmarks/*.hpp' |
  sort -u)
status=0

echo "lint: clang-format on ${#sources[@]} files"
if ! clang-format --dry-run -Werror "${sources[@]}"; then
  echo "lint: run 'clang-format -i' on the files above" >&2
  status=1
fi

# Each module may include only the public headers of the modules below it
# (docs/ARCHITECTURE.md); the CMake links say the same, this catches a stray #include.
declare -A allowed=(
  [core]="core version"
  [geometry]="core geometry model_geometry patch_set label_class"
  [io]="core geometry model_geometry patch_set label_class io"
  [synth]="core geometry model_geometry patch_set label_class synth"
  [tissue]="core geometry model_geometry patch_set label_class io tissue"
  [annotations]="core geometry model_geometry patch_set label_class annotations"
  [export]="core geometry model_geometry patch_set label_class annotations export"
  [tiling]="core geometry model_geometry patch_set label_class io tissue tiling tile_pipeline"
  [config]="core geometry model_geometry label_class"
  [store]="core geometry model_geometry patch_set label_class io tissue tiling tile_pipeline store"
  [stitch]="core geometry model_geometry patch_set label_class io tissue annotations tiling tile_pipeline store stitch"
  [models]="core geometry model_geometry patch_set label_class models"
  [jobs]="core geometry model_geometry patch_set label_class io synth tissue annotations tiling tile_pipeline store stitch export raster stain models training segment predict jobs"
  [cli]="core geometry model_geometry patch_set label_class io synth tissue annotations tiling tile_pipeline store stitch export raster stain models training segment predict jobs"
  [stain]="core stain"
  [raster]="core geometry model_geometry patch_set label_class raster"
  [training]="core geometry model_geometry patch_set label_class io tissue annotations tiling tile_pipeline store stain models training"
)
echo "lint: module layering"
for module in "${!allowed[@]}"; do
  for file in $(ls pipeline/"$module"/*.[ch]pp "$module"/*.[ch]pp models/"$module"/*.[ch]pp include/slidestream/"$module".hpp 2>/dev/null); do
    for used in $(grep -ho '#include "slidestream/[a-z_0-9]*\.hpp"' "$file" | sed 's/.*slidestream\/\(.*\)\.hpp"/\1/'); do
      # h5.hpp is the store module's second public header (its HDF5 layer).
      [[ $used == h5 ]] && used=store
      if [[ " ${allowed[$module]} " != *" $used "* ]]; then
        echo "$file: module '$module' must not include slidestream/$used.hpp" >&2
        status=1
      fi
    done
  done
done

if [ ! -f "$build/compile_commands.json" ]; then
  echo "lint: $build/compile_commands.json is missing; build first (scripts/build.sh)" >&2
  exit 1
fi
mapfile -t units < <(printf '%s\n' "${sources[@]}" | grep '\.cpp$')
echo "lint: clang-tidy on ${#units[@]} translation units"
if ! "$root/scripts/tidy-cached.py" "$build" "${units[@]}"; then
  status=1
fi
[ $status -eq 0 ] && echo "lint: clean"
exit $status
