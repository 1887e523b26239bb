#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz with clang (the whole project with ASan and UBSan)
# into build-fuzz/ and runs each for SECONDS (default 60) on a working copy of its seed corpus,
# one after the other (docs/RELIABILITY.md, "Fuzzing").
#   scripts/fuzz.sh [SECONDS] [TARGET...]      (default: every target; e.g. spacing manifest)
#   scripts/fuzz.sh 0                          (build only)
# Prints per target the executions, the coverage (cov/ft), the corpus size and any crash files;
# exits 1 when a target found something. The working corpora (build-fuzz/fuzz-work/TARGET/corpus)
# are kept, so a later run goes on from what an earlier one found; the committed seeds stay small.
# Env: SLIDESTREAM_FUZZ_BUILD_DIR (build-fuzz), SLIDESTREAM_FUZZ_MAX_LEN (4096 bytes),
#      SLIDESTREAM_FUZZ_TIMEOUT (10 s per input).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-60}"
shift || true
build="${SLIDESTREAM_FUZZ_BUILD_DIR:-$root/build-fuzz}"
max_len="${SLIDESTREAM_FUZZ_MAX_LEN:-4096}"
timeout="${SLIDESTREAM_FUZZ_TIMEOUT:-10}"
all_targets=(extract_config segment_config train_config annotations_geojson annotations_xml
  model_yaml stain_params manifest spacing)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")

# clang and its libFuzzer runtime (Debian 12: clang 14), installed as scripts/install-deps.sh
# installs packages: only what is missing, so a second run installs nothing.
missing=()
for package in clang libclang-rt-14-dev; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "fuzz: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# -O1 with assertions (no NDEBUG): the header-only parsers' own checks stay on.
if [ ! -f "$build/CMakeCache.txt" ]; then
  generator=()
  command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
  cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_C_COMPILER=clang \
    -DCMAKE_CXX_COMPILER=clang++ -DSLIDESTREAM_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g"
fi
cmake --build "$build" --parallel "$(nproc)" --target "${targets[@]/#/fuzz_}"
[ "$seconds" = 0 ] && exit 0

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
summary=()
for target in "${targets[@]}"; do
  work="$build/fuzz-work/$target"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp -n "$root/tests/fuzz/corpus/$target/"* "$work/corpus/" 2>/dev/null || true
  log="$work/last-run.log"
  echo "fuzz: $target for ${seconds}s (log: $log)"
  touch "$work/.started"
  rc=0
  "$build/tests/fuzz/fuzz_$target" "$work/corpus" -max_total_time="$seconds" \
    -max_len="$max_len" -timeout="$timeout" -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" >"$log" 2>&1 || rc=$?
  executions="$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
  progress="$(grep -E '^#[0-9]+' "$log" | tail -1)"
  cov="$(grep -o 'cov: [0-9]*' <<<"$progress" | grep -o '[0-9]*' || echo '?')"
  ft="$(grep -o 'ft: [0-9]*' <<<"$progress" | grep -o '[0-9]*' || echo '?')"
  corpus="$(find "$work/corpus" -type f | wc -l)"
  crashes="$(find "$work/artifacts" -type f -newer "$work/.started" | sort | tr '\n' ' ')"
  line="$target: ${seconds}s, ${executions} executions, cov ${cov}, ft ${ft}, corpus ${corpus}"
  if [ $rc -ne 0 ] || [ -n "$crashes" ]; then
    line="$line, FINDING (exit $rc): ${crashes:-see $log}"
    status=1
  fi
  echo "fuzz: $line"
  summary+=("$line")
done
echo
echo "fuzz: summary"
printf '  %s\n' "${summary[@]}"
exit $status
