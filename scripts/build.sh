#!/usr/bin/env bash
# Configures and builds slidestream into build/ (or $SLIDESTREAM_BUILD_DIR).
#   scripts/build.sh [extra cmake --build arguments, e.g. --target slidestream]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SLIDESTREAM_BUILD_DIR:-$root/build}"
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}"
fi
cmake --build "$build" --parallel "$(nproc)" "$@"
