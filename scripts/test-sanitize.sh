#!/usr/bin/env bash
# Builds slidestream with a sanitizer and runs the tests it is meant for (docs/RELIABILITY.md,
# "Sanitizers"):
#   scripts/test-sanitize.sh asan   ASan + UBSan (GCC) into build-asan/, the unit suite but slow tests
#   scripts/test-sanitize.sh tsan   TSan (GCC) into build-tsan/, only the binaries of the tiling,
#                                   scheduler, segment, extract, stain-pipeline and concurrency tests,
#                                   and runs those; oneTBB is built from Debian's source with TSan
#                                   first, so its scheduler's synchronisation is seen
# Extra arguments go to ctest (e.g. -R Tiling). Any report fails the test that caused it; the
# reports are kept in BUILD/sanitizer-logs. Env: SANITIZE_JOBS (ctest -j, default nproc).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kind="${1:-asan}"
shift || true
jobs="${SANITIZE_JOBS:-$(nproc)}"
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
"$root/scripts/install-deps.sh"

case "$kind" in
  asan)
    build="$root/build-asan"
    sanitize=address
    tests=(-L unit -LE "slow|install|golden")
    targets=()
    ;;
  tsan)
    build="$root/build-tsan"
    sanitize=thread
    tests=(-R "^(TilingOnSyntheticSlide|Scheduler|Segment|Extract|ExtractBadInput|StainPipeline|Concurrency)\\." -LE slow)
    targets=(--target slidestream lock_pause_shim test_tiling test_segment test_extract
      test_stain_pipeline test_concurrency)
    ;;
  *) echo "test-sanitize: unknown sanitizer '$kind' (asan or tsan)" >&2; exit 2 ;;
esac
logs="$build/sanitizer-logs"
mkdir -p "$logs"
rm -f "$logs"/*

extra=()
if [ "$kind" = tsan ]; then
  # oneTBB of the installed libtbb-dev, from Debian's source package, built with TSan.
  tbb_version="$(dpkg-query -W -f='${source:Version}' libtbb-dev | sed 's/-[^-]*$//')"
  tbb_prefix="$build/onetbb-tsan"
  if [ ! -f "$tbb_prefix/lib/cmake/TBB/TBBConfig.cmake" ]; then
    fetch="$build/onetbb-source"
    mkdir -p "$fetch/lists/partial"
    echo "deb-src http://deb.debian.org/debian bookworm main" >"$fetch/sources.list"
    apt_options=(-o "Dir::Etc::SourceList=$fetch/sources.list" -o Dir::Etc::SourceParts=/nonexistent
      -o "Dir::State::Lists=$fetch/lists")
    apt-get "${apt_options[@]}" update -qq
    (cd "$fetch" && apt-get "${apt_options[@]}" source --download-only -qq onetbb)
    tar -xf "$fetch"/onetbb_"${tbb_version}".orig.tar.* -C "$fetch"
    cmake -S "$fetch/oneTBB-$tbb_version" -B "$fetch/build" "${generator[@]}" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTBB_TEST=OFF -DTBB_EXAMPLES=OFF -DTBBMALLOC_BUILD=OFF \
      -DTBB_STRICT=OFF -DCMAKE_CXX_FLAGS="-fsanitize=thread" -DCMAKE_C_FLAGS="-fsanitize=thread" \
      -DCMAKE_INSTALL_PREFIX="$tbb_prefix" >"$fetch/configure.log"
    cmake --build "$fetch/build" --parallel "$(nproc)" >"$fetch/build.log"
    cmake --install "$fetch/build" >/dev/null
  fi
  extra=(-DTBB_DIR="$tbb_prefix/lib/cmake/TBB")
  export LD_LIBRARY_PATH="$tbb_prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # ignore_noninstrumented_modules: the memset/memcpy that uninstrumented libraries (libjpeg
  # under libvips) call are not checked; each was a suppressed report that TSan first had to find
  # (the MoNuSeg extract took 34 minutes with them, 1 without). Our own code is still checked.
  export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ignore_noninstrumented_modules=1 \
log_path=$logs/tsan suppressions=$root/tests/sanitize/tsan.supp"
else
  export ASAN_OPTIONS="detect_leaks=1 abort_on_error=1 log_path=$logs/asan"
  export LSAN_OPTIONS="suppressions=$root/tests/sanitize/lsan.supp print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1 halt_on_error=1 log_path=$logs/ubsan"
fi

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DSLIDESTREAM_SANITIZE="$sanitize" \
    -DSLIDESTREAM_BUILD_BENCHMARKS=OFF "${extra[@]}"
fi
cmake --build "$build" --parallel "$(nproc)" "${targets[@]}"

if [ "$kind" = tsan ] && [ -d "$root/build/testdata" ]; then
  # The synthetic slides the tests make once per build folder, taken from the normal build: made
  # under TSan they take ~10 minutes each (libvips uninstrumented), and libvips' worker pool
  # hands our source callback's data between threads under GLib locks TSan cannot see.
  mkdir -p "$build/testdata"
  find "$root/build/testdata" -maxdepth 1 -type f ! -name '.*' -exec cp -n {} "$build/testdata/" \;
fi
if [ "$kind" = tsan ] && [ ! -f "$build/testdata/torchscript/colour/model.yaml" ]; then
  # The TorchScript models the concurrency tests run, exported here without the TSan libtbb on
  # LD_LIBRARY_PATH: it needs libtsan, which python3-torch cannot load ("cannot allocate memory
  # in static TLS block"), so the tests' own export would fail and they would skip.
  python="$(sed -n 's/^SLIDESTREAM_TORCH_PYTHON:FILEPATH=//p' "$build/CMakeCache.txt")"
  rm -rf "$build/testdata/torchscript.tmp"
  env -u LD_LIBRARY_PATH "$python" "$root/examples/export_torchscript.py" \
    "$build/testdata/torchscript.tmp" >/dev/null
  mv "$build/testdata/torchscript.tmp" "$build/testdata/torchscript"
fi

status=0
ctest --test-dir "$build" --output-on-failure -j "$jobs" "${tests[@]}" "$@" || status=$?
reports="$(find "$logs" -type f | wc -l)"
echo "test-sanitize: $kind: $reports report file(s) in $logs"
[ "$reports" -eq 0 ] || status=1
exit $status
