#!/usr/bin/env bash
# Installs dependencies, builds, and runs the whole test suite (ctest prints its summary).
#   scripts/test.sh            everything, lint included
#   scripts/test.sh --fast     without the tests labelled "slow"
# Real-slide tests read ../shared/data (or $SLIDESTREAM_TEST_DATA); without it they are
# reported as skipped, with the reason.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SLIDESTREAM_BUILD_DIR:-$root/build}"

"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"

ctest_args=(--test-dir "$build" --output-on-failure --parallel "$(nproc)" --timeout 900)
if [ "${1:-}" = "--fast" ]; then
  ctest_args+=(--label-exclude slow)
fi
ctest "${ctest_args[@]}"
