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
  sort -u | grep -v '^tests/layering/')  # the layering probe must not compile (tests/CMakeLists.txt)
status=0

echo "lint: clang-format on ${#sources[@]} files"
if ! clang-format --dry-run -Werror "${sources[@]}"; then
  echo "lint: run 'clang-format -i' on the files above" >&2
  status=1
fi

# Layering is the build's (each module sees only the include folders of the modules it links,
# tests/layering); what the build cannot see is a relative path into another module's folder.
echo "lint: module layering"
if grep -n '#include "\.\./' $(printf '%s\n' "${sources[@]}" | grep -v '^tests/'); then
  echo "lint: include another module's headers through its public include folder, not ../" >&2
  status=1
fi

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
