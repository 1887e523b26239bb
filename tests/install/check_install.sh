#!/usr/bin/env bash
# The installed package works for a user (issue 12): installs BUILD_DIR into a fresh prefix,
# builds examples/ out of tree with find_package(slidestream) against it, and runs the example
# and the installed binary on a synthetic slide.
#   tests/install/check_install.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
source_dir="$1"
build_dir="$2"
work="$(mktemp -d "${TMPDIR:-/tmp}/slidestream-install.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cmake --install "$build_dir" --prefix "$work/prefix" >"$work/install.log"
for file in bin/slidestream include/slidestream/core.hpp include/slidestream/version.hpp \
  lib/cmake/slidestream/slidestreamConfig.cmake lib/cmake/slidestream/slidestreamTargets.cmake \
  lib/libslidestream_core.a lib/libslidestream_jobs.a; do
  [ -f "$work/prefix/$file" ] || { echo "install: $file was not installed" >&2; exit 1; }
done

# Out of tree: nothing of the source tree's build is visible, only the prefix.
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
cmake -S "$source_dir/examples" -B "$work/examples" "${generator[@]}" \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release >"$work/configure.log" ||
  { cat "$work/configure.log" >&2; exit 1; }
cmake --build "$work/examples" >"$work/build.log" || { cat "$work/build.log" >&2; exit 1; }

"$work/prefix/bin/slidestream" -q synth -o "$work/slide.tif" --size 2048x1536 --seed 2
"$work/examples/example_read_patch" "$work/slide.tif" 1024 768 "$work/patch"
for name in target context; do
  [ -s "$work/patch-$name.png" ] || { echo "install: the example wrote no $name patch" >&2; exit 1; }
done
echo "install: the examples build and run against the installed package ($work/prefix)"
