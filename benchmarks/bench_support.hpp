// What the slide benchmarks share: the synthetic slide they run on, made once per size.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "slidestream/synth.hpp"

namespace slidestream::bench {

/// $TMPDIR/slidestream-bench-<size>.tif: a size x size synthetic slide (seed 1, JPEG Q90,
/// 0.5 um/px), synthesised on first use and reused by later runs.
inline std::filesystem::path synthetic_slide(std::int64_t size) {
  std::filesystem::path path = std::filesystem::temp_directory_path() /
                               ("slidestream-bench-" + std::to_string(size) + ".tif");
  if (!std::filesystem::exists(path)) {
    std::fprintf(stderr, "synthesising %s (%lld x %lld) once ...\n", path.c_str(),
                 static_cast<long long>(size), static_cast<long long>(size));
    SynthOptions options;
    options.size = {size, size};
    options.seed = 1;
    synthesize_slide(path, options);
  }
  return path;
}

}  // namespace slidestream::bench
